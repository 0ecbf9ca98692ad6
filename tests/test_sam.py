"""
Tests for bitpeer.net.sam: the SAM 3.1 session and stream exchanges line
for line as Bitcoin Core speaks them, the mapping of their results, the
bound on reply lines, the timeouts, the session made once and made again
when its connection dies, and SamDialler on a reactor whose resolver fails
the test.  One TestCase dials through a tiny SAM bridge on 127.0.0.1.
"""

from random import Random

from twisted.internet import defer, error, reactor
from twisted.internet.address import HostnameAddress
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import (ConnectFailed, ConnectTimeout, I2PUnreachable, ProxyError,
                            ProxyUnreachable)
from bitpeer.net.sam import (MAX_LINE, REPLY_TIMEOUT, SamClientEndpoint, SamDialler,
                             SamSession, parse_reply)
from bitpeer.net.socks5 import PROXY_CONNECT_TIMEOUT
from bitpeer.protocol import address_of
from bitpeer.wire.address import Network, NetworkAddress

from .test_socks5 import (PROXY, FakeEndpoint, NoResolverReactor, RecordingFactory,
                          forbid_resolving, ping_through)

I2P = NetworkAddress(Network.I2P, bytes(range(32)), 0)
NAME = I2P.host_text
DESTINATION = b"AbC-~" * 100 + b"AAAA"
HELLO = b"HELLO VERSION MIN=3.1 MAX=3.1\n"
HELLO_OK = b"HELLO REPLY RESULT=OK VERSION=3.1\n"
SESSION_OK = b"SESSION STATUS RESULT=OK DESTINATION=" + DESTINATION + b"AAAA\n"
FOUND = b"NAMING REPLY RESULT=OK NAME=" + NAME.encode() + b" VALUE=" + DESTINATION + b"\n"
STREAM_OK = b"STREAM STATUS RESULT=OK\n"


def session_id(seed):
    """The session ID a SamSession draws from Random(seed)."""
    return "%010x" % Random(seed).getrandbits(40)


def session_create(seed):
    return (b"SESSION CREATE STYLE=STREAM ID=%s DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
            b"i2cp.leaseSetEncType=4,0 inbound.quantity=1 outbound.quantity=1\n"
            % session_id(seed).encode())


class Bridge:
    """Plays the SAM bridge on a FakeEndpoint's connections."""

    def __init__(self, test):
        self.test = test
        self.endpoint = FakeEndpoint()

    def accept(self):
        """The next connection: (protocol, transport), after HELLO."""
        protocol, transport = self.endpoint.accept()
        self.test.assertEqual(transport.value(), HELLO)
        return protocol, transport

    def answer(self, protocol, transport, reply, expected=None):
        """Check what the client asked (when ``expected``), then reply."""
        if expected is not None:
            self.test.assertEqual(transport.value(), expected)
        transport.clear()
        protocol.dataReceived(reply)


class SessionTests(SynchronousTestCase):
    """SamSession: one transient session, made on first use."""

    def setUp(self):
        self.clock = Clock()
        self.bridge = Bridge(self)
        self.session = SamSession(self.clock, self.bridge.endpoint, random=Random(1))

    def create(self, seed=1):
        """Let the pending session be created: its (protocol, transport)."""
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.bridge.answer(protocol, transport, SESSION_OK, session_create(seed))
        return protocol, transport

    def test_created_once(self):
        """Waiters during creation share it; later callers get the ID at
        once; the connection stays open."""
        first, second = self.session.ready(), self.session.ready()
        self.assertNoResult(first)
        protocol, transport = self.create()
        self.assertEqual(self.successResultOf(first), session_id(1))
        self.assertEqual(self.successResultOf(second), session_id(1))
        self.assertEqual(self.successResultOf(self.session.ready()), session_id(1))
        self.assertEqual(self.session.id, session_id(1))
        self.assertEqual(self.bridge.endpoint.pending, [])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        protocol.dataReceived(b"anything the bridge says later\n")
        self.assertFalse(transport.disconnecting)

    def test_recreated_when_its_connection_dies(self):
        self.session.ready()
        protocol, _ = self.create()
        protocol.connectionLost(Failure(error.ConnectionLost()))
        self.assertIsNone(self.session.id)
        waiting = self.session.ready()
        self.assertNoResult(waiting)
        random = Random(1)
        random.getrandbits(40)
        second = "%010x" % random.getrandbits(40)
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.assertIn(b"ID=%s " % second.encode(), transport.value())
        self.bridge.answer(protocol, transport, SESSION_OK)
        self.assertEqual(self.successResultOf(waiting), second)

    def test_creation_results(self):
        """Every SESSION STATUS result but OK is the bridge's error; the
        next call tries again."""
        for result in (b"DUPLICATED_ID", b"DUPLICATED_DEST", b"INVALID_ID", b"INVALID_KEY",
                       b"I2P_ERROR"):
            waiting = self.session.ready()
            protocol, transport = self.bridge.accept()
            self.bridge.answer(protocol, transport, HELLO_OK)
            self.bridge.answer(protocol, transport,
                               b"SESSION STATUS RESULT=%s MESSAGE=\"no\"\n" % result)
            e = self.failureResultOf(waiting, ProxyError).value
            self.assertIn(result.decode(), str(e))
            self.assertTrue(transport.disconnected)
            self.assertIsNone(self.session.id)

    def test_hello_refused(self):
        waiting = self.session.ready()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, b"HELLO REPLY RESULT=NOVERSION\n")
        self.assertIn("NOVERSION", str(self.failureResultOf(waiting, ProxyError).value))
        self.assertEqual(transport.value(), b"")

    def test_bridge_unreachable(self):
        first, second = self.session.ready(), self.session.ready()
        self.bridge.endpoint.refuse(error.ConnectionRefusedError())
        self.failureResultOf(first, ProxyUnreachable)
        self.failureResultOf(second, ProxyUnreachable)
        self.session.ready()
        self.assertEqual(len(self.bridge.endpoint.pending), 1)

    def test_creation_timeouts(self):
        """HELLO and SESSION CREATE each wait ``timeout`` seconds."""
        waiting = self.session.ready()
        protocol, transport = self.bridge.accept()
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.assertNoResult(waiting)
        self.clock.advance(1)
        e = self.failureResultOf(waiting, ProxyError).value
        self.assertIn("did not answer SESSION CREATE", str(e))
        self.assertTrue(transport.disconnected)

    def test_dropped_during_creation(self):
        waiting = self.session.ready()
        protocol, _ = self.bridge.accept()
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertIn("closed the connection before answering HELLO",
                      str(self.failureResultOf(waiting, ProxyError).value))

    def test_cancelled_waiter(self):
        first, second = self.session.ready(), self.session.ready()
        first.cancel()
        self.failureResultOf(first, defer.CancelledError)
        self.create()
        self.assertEqual(self.successResultOf(second), session_id(1))

    def test_drop(self):
        """drop() ends the session it names, not a newer one."""
        self.session.ready()
        _, transport = self.create()
        self.session.drop("0000000000")
        self.assertFalse(transport.disconnecting)
        self.session.drop(session_id(1))
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.session.id)

    def test_repr(self):
        self.assertIn("none", repr(self.session))


class StreamTests(SynchronousTestCase):
    """SamClientEndpoint: NAMING LOOKUP, STREAM CONNECT, the tunnel."""

    def setUp(self):
        self.clock = Clock()
        self.bridge = Bridge(self)
        self.session = SamSession(self.clock, self.bridge.endpoint, random=Random(1))
        self.factory = RecordingFactory()
        self.session.ready()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.bridge.answer(protocol, transport, SESSION_OK)
        self.session_transport = transport

    def start(self, port=0):
        return SamClientEndpoint(self.session, NAME, port).connect(self.factory)

    def looked_up(self):
        """Dial, and run to the STREAM CONNECT: (Deferred, protocol,
        transport)."""
        result = self.start()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.bridge.answer(protocol, transport, FOUND,
                           b"NAMING LOOKUP NAME=" + NAME.encode() + b"\n")
        return result, protocol, transport

    def test_connect(self):
        """Core's exchange, and the peer's bytes after STREAM STATUS."""
        result, protocol, transport = self.looked_up()
        self.bridge.answer(protocol, transport, STREAM_OK + b"peer bytes",
                           b"STREAM CONNECT ID=%s DESTINATION=%s SILENT=false\n"
                           % (session_id(1).encode(), DESTINATION))
        inner = self.successResultOf(result)
        peer = HostnameAddress(NAME.encode(), 0)
        self.assertEqual(self.factory.built, [peer])
        self.assertEqual(address_of(peer), I2P)
        self.assertEqual(inner.transport.getPeer(), peer)
        self.assertEqual(inner.received, b"peer bytes")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        protocol.dataReceived(b" more")
        self.assertEqual(inner.received, b"peer bytes more")

    def test_dial_waits_for_the_session(self):
        """A dial while the session is made waits for it, then runs."""
        self.session.drop(session_id(1))
        result = self.start()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.assertEqual(self.bridge.endpoint.pending, [])
        self.bridge.answer(protocol, transport, SESSION_OK)
        self.assertNoResult(result)
        stream, _ = self.bridge.accept()
        self.assertIsNot(stream, protocol)

    def test_stream_results(self):
        expected = {b"CANT_REACH_PEER": I2PUnreachable, b"TIMEOUT": ConnectTimeout,
                    b"I2P_ERROR": ProxyError, b"INVALID_KEY": ProxyError}
        for result_word, kind in expected.items():
            result, protocol, transport = self.looked_up()
            self.bridge.answer(protocol, transport,
                               b"STREAM STATUS RESULT=%s MESSAGE=\"x\"\n" % result_word)
            self.failureResultOf(result, kind)
            self.assertTrue(transport.disconnected)
            self.assertFalse(self.session_transport.disconnecting)
        self.assertEqual(self.factory.built, [])

    def test_invalid_id_drops_the_session(self):
        """Core's Disconnect: the next dial makes a new session."""
        result, protocol, transport = self.looked_up()
        self.bridge.answer(protocol, transport, b"STREAM STATUS RESULT=INVALID_ID\n")
        self.failureResultOf(result, ProxyError)
        self.assertTrue(self.session_transport.disconnecting)
        self.assertIsNone(self.session.id)
        self.start()
        self.assertEqual(len(self.bridge.endpoint.pending), 1)

    def test_lookup_results(self):
        """A lookup that fails is the bridge's error (Core's choice)."""
        for reply in (b"NAMING REPLY RESULT=KEY_NOT_FOUND NAME=x\n",
                      b"NAMING REPLY RESULT=INVALID_KEY NAME=x\n",
                      b"NAMING REPLY RESULT=OK NAME=x\n",
                      b"NAMING REPLY RESULT=OK NAME=x VALUE=a/b\n"):
            result = self.start()
            protocol, transport = self.bridge.accept()
            self.bridge.answer(protocol, transport, HELLO_OK)
            self.bridge.answer(protocol, transport, reply)
            self.failureResultOf(result, ProxyError)
            self.assertEqual(transport.value(), b"")

    def test_wrong_topic(self):
        result = self.start()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, b"NAMING REPLY RESULT=OK\n")
        self.assertIn("answered HELLO VERSION with",
                      str(self.failureResultOf(result, ProxyError).value))

    def test_one_line_at_a_time(self):
        """Nothing may come before the next request is sent."""
        result = self.start()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK + FOUND)
        self.assertIn("more than one", str(self.failureResultOf(result, ProxyError).value))

    def test_line_bound(self):
        """A reply line of MAX_LINE bytes with its newline is taken; one
        byte more is refused, without waiting for the newline."""
        pad = b" MESSAGE=" + b"x" * (MAX_LINE - len(HELLO_OK) - len(b" MESSAGE="))
        longest = HELLO_OK[:-1] + pad + b"\n"
        self.assertEqual(len(longest), MAX_LINE)
        result = self.start()
        protocol, transport = self.bridge.accept()
        for i in range(0, MAX_LINE, 4096):
            protocol.dataReceived(longest[i:i + 4096])
        self.assertEqual(transport.value(), HELLO + b"NAMING LOOKUP NAME=" + NAME.encode()
                         + b"\n")
        transport.clear()
        protocol.dataReceived(b"N" * MAX_LINE)
        self.assertIn("longer than", str(self.failureResultOf(result, ProxyError).value))
        self.assertTrue(transport.disconnected)

    def test_timeouts(self):
        """No lookup reply in time is the bridge's fault; no STREAM STATUS
        in time is the peer's timeout."""
        result = self.start()
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.clock.advance(REPLY_TIMEOUT)
        self.assertIn("NAMING LOOKUP", str(self.failureResultOf(result, ProxyError).value))
        result, protocol, transport = self.looked_up()
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.assertNoResult(result)
        self.clock.advance(1)
        self.failureResultOf(result, ConnectTimeout)
        self.assertTrue(transport.disconnected)

    def test_bridge_drops_mid_handshake(self):
        result, protocol, transport = self.looked_up()
        protocol.dataReceived(b"STREAM STAT")
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertIn("before answering STREAM CONNECT",
                      str(self.failureResultOf(result, ProxyError).value))

    def test_bridge_unreachable(self):
        result = self.start()
        self.bridge.endpoint.refuse(error.TCPTimedOutError())
        self.failureResultOf(result, ProxyUnreachable)

    def test_port_zero_only(self):
        result = self.start(port=8333)
        self.assertIn("port 0 only", str(self.failureResultOf(result, ConnectFailed).value))
        self.assertEqual(self.bridge.endpoint.pending, [])

    def test_names_only(self):
        for bad in ("127.0.0.1", I2P.host_text[:-4]):
            self.assertRaises(ValueError, SamClientEndpoint, self.session, bad)

    def test_cancel_while_the_session_is_made(self):
        self.session.drop(session_id(1))
        result = self.start()
        result.cancel()
        self.failureResultOf(result, defer.CancelledError)
        protocol, transport = self.bridge.accept()
        self.bridge.answer(protocol, transport, HELLO_OK)
        self.bridge.answer(protocol, transport, SESSION_OK)
        self.assertEqual(self.bridge.endpoint.pending, [])

    def test_cancel_while_negotiating(self):
        result, protocol, transport = self.looked_up()
        result.cancel()
        self.failureResultOf(result, error.ConnectingCancelledError)
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_parse_reply(self):
        self.assertEqual(parse_reply(b"STREAM STATUS RESULT=OK BARE"),
                         (b"STREAM STATUS", {b"RESULT": b"OK", b"BARE": b""}))


class DiallerTests(SynchronousTestCase):
    """SamDialler: the dialler contract through the bridge."""

    def setUp(self):
        self.reactor = NoResolverReactor()
        self.factory = RecordingFactory()
        self.failures = []

        forbid_resolving(self)
        self.dialler = SamDialler(self.reactor, self.factory, 30,
                                  lambda address, e: self.failures.append((address, e)),
                                  bridge=("127.0.0.1", 7656), random=Random(1))

    def accept(self, index):
        host, port, factory, timeout, _ = self.reactor.tcpClients[index]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 7656, PROXY_CONNECT_TIMEOUT))
        protocol = factory.buildProtocol(PROXY)
        transport = StringTransport(peerAddress=PROXY)
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), HELLO)
        transport.clear()
        protocol.dataReceived(HELLO_OK)
        return protocol, transport

    def test_dial(self):
        """The session's connection first, then the dial's own."""
        attempt = self.dialler.dial(I2P)
        protocol, transport = self.accept(0)
        protocol.dataReceived(SESSION_OK)
        self.assertEqual(self.dialler.session.id, session_id(1))
        protocol, transport = self.accept(1)
        protocol.dataReceived(FOUND)
        protocol.dataReceived(b"STREAM STATUS RESULT=CANT_REACH_PEER\n")
        [(address, e)] = self.failures
        self.assertEqual(address, I2P)
        self.assertEqual(e.reason, "i2p-unreachable")
        self.assertFalse(attempt.connecting)
        self.dialler.dial(I2P)
        protocol, transport = self.accept(2)
        protocol.dataReceived(FOUND)
        protocol.dataReceived(STREAM_OK)
        self.assertEqual([address_of(a) for a in self.factory.built], [I2P])

    def test_bridge_down(self):
        """Every dial waiting for the session learns the bridge is down."""
        for _ in range(2):
            self.dialler.dial(I2P)
        _, _, factory, _, _ = self.reactor.tcpClients[0]
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(error.ConnectionRefusedError()))
        self.reactor.advance(0)
        self.assertEqual([e.reason for _, e in self.failures], ["proxy-unreachable"] * 2)

    def test_other_port(self):
        """Reported a turn later, as every failure known inside dial()."""
        address = NetworkAddress(Network.I2P, I2P.host, 8333)
        self.dialler.dial(address)
        self.assertEqual(self.failures, [])
        self.reactor.advance(0)
        [(failed, e)] = self.failures
        self.assertEqual((failed, e.reason), (address, "connect-failed"))
        self.assertEqual(self.reactor.tcpClients, [])

    def test_other_networks(self):
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        for address in (onion, NetworkAddress.from_host("127.0.0.1", 8333)):
            self.assertRaises(ValueError, self.dialler.dial, address)
        self.assertIn("127.0.0.1:7656", repr(self.dialler))


class TinySamBridge(LineOnlyReceiver):
    """The bridge's side of SAM 3.1 for one session and its streams: it
    records every request and echoes a connected stream."""

    delimiter = b"\n"
    replies = {b"HELLO VERSION": HELLO_OK, b"SESSION CREATE": SESSION_OK,
               b"NAMING LOOKUP": FOUND, b"STREAM CONNECT": STREAM_OK}

    def connectionLost(self, reason):
        self.factory.closed.append(reason)
        if len(self.factory.closed) == 2:
            self.factory.all_closed.callback(None)

    def lineReceived(self, line):
        self.factory.requests.append(line)
        self.transport.write(self.replies[b" ".join(line.split(b" ")[:2])])
        if line.startswith(b"STREAM CONNECT"):
            self.setRawMode()

    def rawDataReceived(self, data):
        self.transport.write(data)

    def setRawMode(self):
        self.dataReceived = self.rawDataReceived


class LoopbackTests(TestCase):
    """SamDialler through a SAM bridge on 127.0.0.1."""

    @defer.inlineCallbacks
    def test_i2p_through_a_local_bridge(self):
        bridge_factory = Factory.forProtocol(TinySamBridge)
        bridge_factory.requests, bridge_factory.closed = [], []
        bridge_factory.all_closed = defer.Deferred()
        dialler, protocol, data = yield ping_through(
            self, bridge_factory, I2P,
            lambda factory, failed, port: SamDialler(reactor, factory, 5, failed,
                                                     bridge=("127.0.0.1", port)))
        self.assertEqual(data, b"ping")
        self.assertEqual([r.split(b" ")[:2] for r in bridge_factory.requests],
                         [[b"HELLO", b"VERSION"], [b"SESSION", b"CREATE"],
                          [b"HELLO", b"VERSION"], [b"NAMING", b"LOOKUP"],
                          [b"STREAM", b"CONNECT"]])
        self.assertEqual(protocol.transport.getPeer(), HostnameAddress(NAME.encode(), 0))
        protocol.transport.loseConnection()
        dialler.session.close()
        yield bridge_factory.all_closed
        self.assertIsNone(dialler.session.id)
