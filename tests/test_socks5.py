"""
Tests for bitpeer.net.socks5: the SOCKS5 client endpoint byte for byte
against RFC 1928 and RFC 1929 (and Tor's extended reply codes), stream
isolation, and Socks5Dialler on a MemoryReactorClock whose resolver fails
the test.  One TestCase dials through a tiny SOCKS5 server on 127.0.0.1.
"""

import socket
from random import Random

from twisted.internet import defer, error, reactor
from twisted.internet.address import HostnameAddress, IPv4Address, IPv6Address
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from bitpeer.errors import (ConnectFailed, ConnectionRefused, ConnectTimeout, OnionUnreachable,
                            ProxyError, ProxyUnreachable)
from bitpeer.net.socks5 import (PROXY_CONNECT_TIMEOUT, REPLY_TIMEOUT, Credentials,
                                Socks5ClientEndpoint, Socks5Dialler, random_credentials)
from bitpeer.protocol import address_of
from bitpeer.wire.address import Network, NetworkAddress

from . import test_endpoints

ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
ONION_NAME = ONION.host_text
PROXY = IPv4Address("TCP", "127.0.0.1", 9050)
CREDENTIALS = Credentials(b"user", b"secret")

#: A successful CONNECT reply, BND.ADDR 0.0.0.0:0 (as Tor sends it).
SUCCESS = b"\x05\x00\x00\x01" + bytes(6)


def connect_request(atyp_and_address, port=8333):
    return b"\x05\x01\x00" + atyp_and_address + port.to_bytes(2, "big")


ONION_REQUEST = connect_request(b"\x03" + bytes([len(ONION_NAME)]) + ONION_NAME.encode())


class Recorder(Protocol):
    """Records what it receives and how its connection ended."""

    def __init__(self):
        self.received = b""
        self.lost = None

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost = reason


class RecordingFactory(test_endpoints.RecordingFactory):
    """test_endpoints' factory, building Recorders."""

    protocol = Recorder


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """An endpoint to the proxy that the test connects (``accept``) or
    fails (``refuse``)."""

    def __init__(self):
        self.pending = []

    def connect(self, factory):
        connecting = defer.Deferred(
            lambda d: d.errback(error.ConnectingCancelledError(PROXY)))
        self.pending.append((factory, connecting))
        return connecting

    def accept(self):
        factory, connecting = self.pending.pop(0)
        protocol = factory.buildProtocol(PROXY)
        transport = StringTransport(peerAddress=PROXY)
        protocol.makeConnection(transport)
        connecting.callback(protocol)
        return protocol, transport

    def refuse(self, exception):
        _, connecting = self.pending.pop(0)
        connecting.errback(exception)


class EndpointTests(SynchronousTestCase):
    """Socks5ClientEndpoint: the exchange, its faults and its timeouts."""

    def setUp(self):
        self.clock = Clock()
        self.proxy = FakeEndpoint()
        self.factory = RecordingFactory()

    def start(self, host=ONION_NAME, port=8333, credentials=None):
        """Connect; the proxy accepts: (Deferred, proxy protocol, transport)."""
        endpoint = Socks5ClientEndpoint(self.clock, self.proxy, host, port,
                                        credentials=credentials)
        result = endpoint.connect(self.factory)
        protocol, transport = self.proxy.accept()
        return result, protocol, transport

    def reply(self, protocol, transport, data):
        """Clear what was written, then send ``data`` from the proxy."""
        transport.clear()
        protocol.dataReceived(data)

    def connected(self, host=ONION_NAME, port=8333, credentials=None):
        """Run to the CONNECT request: (Deferred, protocol, transport)."""
        result, protocol, transport = self.start(host, port, credentials)
        self.reply(protocol, transport, b"\x05\x00")
        return result, protocol, transport

    def failure_of(self, result, kind):
        failure = self.failureResultOf(result)
        self.assertIs(failure.type, kind, failure.getErrorMessage())
        return failure.value

    def test_greeting_without_credentials(self):
        result, _, transport = self.start()
        self.assertEqual(transport.value(), b"\x05\x01\x00")
        self.assertNoResult(result)

    def test_greeting_with_credentials(self):
        """Core's greeting with isolation: no authentication or user/pass."""
        _, _, transport = self.start(credentials=CREDENTIALS)
        self.assertEqual(transport.value(), b"\x05\x02\x00\x02")

    def test_onion_connect_as_a_domain(self):
        """An onion name goes to the proxy as ATYP 3, and the tunnel opens:
        the factory builds for the onion's HostnameAddress, which is also
        the tunnel's getPeer()."""
        result, protocol, transport = self.connected()
        self.assertEqual(transport.value(), ONION_REQUEST)
        self.reply(protocol, transport, SUCCESS + b"peer bytes")
        peer = HostnameAddress(ONION_NAME.encode(), 8333)
        inner = self.successResultOf(result)
        self.assertEqual(self.factory.built, [peer])
        self.assertEqual(inner.transport.getPeer(), peer)
        self.assertEqual(inner.received, b"peer bytes")
        self.assertEqual(address_of(peer), ONION)
        inner.transport.write(b"ours")
        self.assertEqual(transport.value(), b"ours")
        protocol.dataReceived(b" more")
        self.assertEqual(inner.received, b"peer bytes more")
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertTrue(inner.lost.check(error.ConnectionDone))

    def test_ipv4_connect(self):
        result, protocol, transport = self.connected("127.0.0.1", 18444)
        self.assertEqual(transport.value(),
                         connect_request(b"\x01\x7f\x00\x00\x01", 18444))
        self.reply(protocol, transport, SUCCESS)
        self.assertEqual(self.factory.built, [IPv4Address("TCP", "127.0.0.1", 18444)])

    def test_ipv6_connect(self):
        result, protocol, transport = self.connected("2001:db8::1", 8333)
        self.assertEqual(transport.value(),
                         connect_request(b"\x04" + socket.inet_pton(socket.AF_INET6,
                                                                     "2001:db8::1")))
        self.reply(protocol, transport, SUCCESS)
        self.assertEqual(self.factory.built, [IPv6Address("TCP", "2001:db8::1", 8333)])

    def test_authentication(self):
        """RFC 1929: ``01 ULEN USER PLEN PASS``, then ``01 00`` and CONNECT."""
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x02")
        self.assertEqual(transport.value(), b"\x01\x04user\x06secret")
        self.reply(protocol, transport, b"\x01\x00")
        self.assertEqual(transport.value(), ONION_REQUEST)
        self.reply(protocol, transport, SUCCESS)
        self.successResultOf(result)

    def test_proxy_may_choose_no_authentication(self):
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x00")
        self.assertEqual(transport.value(), ONION_REQUEST)

    def test_authentication_refused(self):
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x02")
        self.reply(protocol, transport, b"\x01\x01")
        self.assertIn("refused", str(self.failure_of(result, ProxyError)))
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.factory.built, [])

    def test_authentication_reply_version(self):
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x02")
        self.reply(protocol, transport, b"\x05\x00")
        self.failure_of(result, ProxyError)

    def test_greeting_faults(self):
        """A wrong version, no acceptable method, or a method not offered."""
        for reply, words in ((b"\x04\x00", "version 4"),
                             (b"\x05\xff", "none of the authentication methods"),
                             (b"\x05\x02", "not offered"),
                             (b"\x05\x01", "not offered")):
            result, protocol, transport = self.start()
            self.reply(protocol, transport, reply)
            self.assertIn(words, str(self.failure_of(result, ProxyError)))
            self.assertTrue(transport.disconnected)
            self.assertEqual(transport.value(), b"")

    def test_oversized_short_replies(self):
        """The greeting and authentication replies are exactly 2 bytes:
        the proxy may send nothing more before the next request."""
        result, protocol, transport = self.start()
        self.reply(protocol, transport, b"\x05\x00\x00")
        self.assertIn("oversized greeting", str(self.failure_of(result, ProxyError)))
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x02")
        self.reply(protocol, transport, b"\x01\x00\x05")
        self.assertIn("oversized authentication", str(self.failure_of(result, ProxyError)))

    def test_replies_in_pieces(self):
        """Every reply may come a byte at a time."""
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        for reply in (b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x03\x05proxy\x00\x00"):
            for i in range(len(reply)):
                self.assertNoResult(result)
                protocol.dataReceived(reply[i:i + 1])
        protocol.dataReceived(b"x")
        self.assertEqual(self.successResultOf(result).received, b"x")

    def test_bound_addresses(self):
        """BND.ADDR is 4, 16 or 1+N bytes by ATYP; what follows is the peer's."""
        for bound in (b"\x01" + bytes(4), b"\x04" + bytes(16), b"\x03\x00",
                      b"\x03\xff" + b"h" * 255):
            result, protocol, transport = self.connected()
            self.reply(protocol, transport, b"\x05\x00\x00" + bound + b"\x20\x8d" + b"peer")
            self.assertEqual(self.successResultOf(result).received, b"peer")

    def test_connect_reply_faults(self):
        for reply, words in ((b"\x04\x00\x00\x01", "version 4"),
                             (b"\x05\x00\x01\x01", "reserved"),
                             (b"\x05\x00\x00\x02", "address type 0x02"),
                             (b"\x05\x00\x00\x00", "address type 0x00")):
            result, protocol, transport = self.connected()
            self.reply(protocol, transport, reply + bytes(6))
            self.assertIn(words, str(self.failure_of(result, ProxyError)))
            self.assertTrue(transport.disconnected)

    def test_reply_codes(self):
        """Every REP: the proxy's fault apart from the peer's."""
        expected = {0x01: ProxyError, 0x02: ProxyError, 0x03: OnionUnreachable,
                    0x04: OnionUnreachable, 0x05: ConnectionRefused, 0x06: ConnectTimeout,
                    0x07: ProxyError, 0x08: ProxyError,
                    0xF0: OnionUnreachable, 0xF1: OnionUnreachable, 0xF2: OnionUnreachable,
                    0xF3: OnionUnreachable, 0xF4: OnionUnreachable, 0xF5: OnionUnreachable,
                    0xF6: OnionUnreachable, 0xF7: ConnectTimeout,
                    0x09: ProxyError, 0xEF: ProxyError, 0xF8: ProxyError, 0xFF: ProxyError}
        for code, kind in expected.items():
            result, protocol, transport = self.connected()
            self.reply(protocol, transport, bytes([5, code, 0, 1]) + bytes(6))
            e = self.failure_of(result, kind)
            self.assertIn(f"0x{code:02x}", str(e))
            self.assertTrue(transport.disconnected)
        self.assertEqual(self.factory.built, [])

    def test_unreachable_clearnet_host(self):
        """Through --proxy, an unreachable IP is the plain ConnectFailed."""
        for code, words in ((0x03, "network unreachable"), (0x04, "host unreachable")):
            result, protocol, transport = self.connected("192.0.2.1")
            self.reply(protocol, transport, bytes([5, code, 0, 1]) + bytes(6))
            self.assertIn(words, str(self.failure_of(result, ConnectFailed)))

    def test_failure_code_before_the_whole_reply(self):
        """A failure is known from the first 4 bytes."""
        result, protocol, transport = self.connected()
        self.reply(protocol, transport, b"\x05\x05\x00\x01")
        self.failure_of(result, ConnectionRefused)

    def test_proxy_drops_mid_handshake(self):
        for step in range(3):
            result, protocol, transport = self.start(credentials=CREDENTIALS)
            for reply in (b"\x05\x02", b"\x01\x00")[:step]:
                self.reply(protocol, transport, reply)
            protocol.dataReceived(b"\x05")
            protocol.connectionLost(Failure(error.ConnectionDone()))
            what = ("greeting", "authentication", "CONNECT")[step]
            self.assertIn(f"closed the connection during the {what}",
                          str(self.failure_of(result, ProxyError)))

    def test_truncated_connect_reply(self):
        result, protocol, transport = self.connected()
        self.reply(protocol, transport, b"\x05\x00\x00\x03\x09short")
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.failure_of(result, ProxyError)
        self.assertEqual(self.factory.built, [])

    def test_greeting_timeout(self):
        result, protocol, transport = self.start()
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.assertNoResult(result)
        self.clock.advance(1)
        self.assertIn("did not answer the greeting", str(self.failure_of(result, ProxyError)))
        self.assertTrue(transport.disconnected)

    def test_authentication_timeout(self):
        result, protocol, transport = self.start(credentials=CREDENTIALS)
        self.reply(protocol, transport, b"\x05\x02")
        self.clock.advance(REPLY_TIMEOUT)
        self.assertIn("authentication", str(self.failure_of(result, ProxyError)))

    def test_connect_timeout_per_exchange(self):
        """Each reply has its own ``timeout``; no CONNECT reply in time is
        the peer's timeout, as Core counts it."""
        result, protocol, transport = self.start()
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.reply(protocol, transport, b"\x05\x00")
        self.clock.advance(REPLY_TIMEOUT - 1)
        self.assertNoResult(result)
        self.clock.advance(1)
        self.failure_of(result, ConnectTimeout)
        self.assertTrue(transport.disconnected)

    def test_no_timer_after_success(self):
        result, protocol, transport = self.connected()
        self.reply(protocol, transport, SUCCESS)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_proxy_unreachable(self):
        endpoint = Socks5ClientEndpoint(self.clock, self.proxy, ONION_NAME, 8333)
        result = endpoint.connect(self.factory)
        self.proxy.refuse(error.ConnectionRefusedError())
        self.assertIn("cannot be reached", str(self.failure_of(result, ProxyUnreachable)))

    def test_cancel_while_connecting_to_the_proxy(self):
        endpoint = Socks5ClientEndpoint(self.clock, self.proxy, ONION_NAME, 8333)
        result = endpoint.connect(self.factory)
        result.cancel()
        self.failure_of(result, error.ConnectingCancelledError)

    def test_cancel_while_negotiating(self):
        result, protocol, transport = self.start()
        result.cancel()
        self.failure_of(result, error.ConnectingCancelledError)
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        protocol.dataReceived(b"\x05\x00")
        self.assertEqual(transport.value(), b"\x05\x01\x00")

    def test_factory_refuses(self):
        self.factory.refuse = True
        result, protocol, transport = self.connected()
        self.reply(protocol, transport, SUCCESS)
        self.failure_of(result, error.NoProtocol)
        self.assertTrue(transport.disconnected)

    def test_factory_raises(self):
        self.factory.broken = True
        result, protocol, transport = self.connected()
        self.reply(protocol, transport, SUCCESS)
        self.failure_of(result, RuntimeError)

    def test_host_names_bounded(self):
        self.assertRaises(ValueError, Socks5ClientEndpoint, self.clock, self.proxy, "h" * 256, 1)
        self.assertRaises(ValueError, Socks5ClientEndpoint, self.clock, self.proxy, "", 1)


class CredentialsTests(SynchronousTestCase):
    """RFC 1929's bounds, and fresh credentials per connection."""

    def test_bounds(self):
        Credentials(b"u" * 255, b"p")
        for bad in (b"", b"u" * 256, "text"):
            self.assertRaises(ValueError, Credentials, bad, b"p")
            self.assertRaises(ValueError, Credentials, b"u", bad)

    def test_repr_hides_the_password(self):
        self.assertNotIn("secret", repr(CREDENTIALS))

    def test_random_credentials(self):
        """16 hex characters from the injected random, user = password
        as in Core, distinct per call."""
        drawn = [random_credentials(Random(7)) for _ in range(2)]
        self.assertEqual(drawn[0], drawn[1])
        random = Random(7)
        many = [random_credentials(random) for _ in range(100)]
        self.assertEqual(len(set(many)), 100)
        self.assertEqual(many[0], drawn[0])
        for credentials in many:
            self.assertEqual(credentials.username, credentials.password)
            self.assertRegex(credentials.username, rb"\A[0-9a-f]{16}\Z")


class FailingResolver:
    """An IHostnameResolver that fails the test."""

    def resolveHostName(self, *args, **kwargs):
        raise AssertionError(f"resolved {args!r}")


class NoResolverReactor(MemoryReactorClock):
    """A reactor whose name resolution fails the test."""

    def __init__(self):
        super().__init__()
        self.nameResolver = FailingResolver()

    def resolve(self, name, timeout=None):
        raise AssertionError(f"resolved {name!r}")


def forbid_resolving(testcase):
    """For the rest of ``testcase``, the system's resolver fails it: no
    onion or I2P name may reach DNS, by the reactor or around it."""
    def no_resolver(*args, **kwargs):
        raise AssertionError(f"resolved {args!r}")

    testcase.patch(socket, "getaddrinfo", no_resolver)
    testcase.patch(socket, "gethostbyname", no_resolver)


class DiallerTests(SynchronousTestCase):
    """Socks5Dialler: the dialler contract through the proxy."""

    def setUp(self):
        self.reactor = NoResolverReactor()
        self.factory = RecordingFactory()
        self.failures = []

        forbid_resolving(self)
        self.dialler = self.make()

    def make(self, **config):
        return Socks5Dialler(self.reactor, self.factory, 30,
                             lambda address, e: self.failures.append((address, e)),
                             proxy=("127.0.0.1", 9050), random=Random(3), **config)

    def accept(self, index=-1):
        """The proxy accepts the index-th connection: (protocol, transport)."""
        host, port, factory, timeout, _ = self.reactor.tcpClients[index]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 9050, PROXY_CONNECT_TIMEOUT))
        protocol = factory.buildProtocol(PROXY)
        transport = StringTransport(peerAddress=PROXY)
        protocol.makeConnection(transport)
        return protocol, transport

    def authenticate(self, protocol, transport):
        """Greeting and authentication: the credentials sent."""
        self.assertEqual(transport.value(), b"\x05\x02\x00\x02")
        transport.clear()
        protocol.dataReceived(b"\x05\x02")
        sent = transport.value()
        transport.clear()
        protocol.dataReceived(b"\x01\x00")
        return sent

    def test_onion(self):
        """The onion name reaches only the proxy's bytes; the factory builds
        for its HostnameAddress, which maps back to the NetworkAddress."""
        attempt = self.dialler.dial(ONION)
        protocol, transport = self.accept()
        self.authenticate(protocol, transport)
        self.assertEqual(transport.value(), ONION_REQUEST)
        protocol.dataReceived(SUCCESS)
        [built] = self.factory.built
        self.assertEqual(address_of(built), ONION)
        self.assertFalse(attempt.connecting)
        self.assertEqual(self.failures, [])

    def test_isolation(self):
        """Each connection has its own credentials, from the injected random."""
        sent = []
        for _ in range(3):
            self.dialler.dial(ONION)
            sent.append(self.authenticate(*self.accept()))
        self.assertEqual(len(set(sent)), 3)
        expected = random_credentials(Random(3))
        self.assertEqual(sent[0], b"\x01\x10" + expected.username + b"\x10" + expected.password)

    def test_without_isolation(self):
        self.make(isolate=False).dial(ONION)
        _, transport = self.accept()
        self.assertEqual(transport.value(), b"\x05\x01\x00")

    def test_clearnet_through_the_proxy(self):
        address = NetworkAddress.from_host("192.0.2.7", 8333)
        self.dialler.dial(address)
        protocol, transport = self.accept()
        self.authenticate(protocol, transport)
        self.assertEqual(transport.value(), connect_request(b"\x01\xc0\x00\x02\x07"))
        protocol.dataReceived(b"\x05\x05\x00\x01" + bytes(6))
        [(failed, e)] = self.failures
        self.assertEqual(failed, address)
        self.assertIsInstance(e, ConnectionRefused)

    def test_other_networks(self):
        for address in (NetworkAddress(Network.I2P, bytes(32), 0),
                        NetworkAddress.from_host("fc00::1", 8333, cjdns=True)):
            self.assertRaises(ValueError, self.dialler.dial, address)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_proxy_is_an_address(self):
        self.assertRaises(ValueError, Socks5Dialler, self.reactor, self.factory, 30, None,
                          proxy=("localhost", 9050))

    def test_reply_code_reported(self):
        self.dialler.dial(ONION)
        protocol, transport = self.accept()
        self.authenticate(protocol, transport)
        protocol.dataReceived(b"\x05\xf0\x00\x01" + bytes(6))
        [(address, e)] = self.failures
        self.assertEqual(address, ONION)
        self.assertEqual(e.reason, "onion-unreachable")

    def test_proxy_down(self):
        """A refused proxy is ProxyUnreachable, reported on a later turn."""
        self.dialler.dial(ONION)
        _, _, factory, _, _ = self.reactor.tcpClients[0]
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(error.ConnectionRefusedError()))
        [(address, e)] = self.failures
        self.assertEqual(e.reason, "proxy-unreachable")

    def test_timeout_on_the_clock(self):
        clock = Clock()
        dialler = Socks5Dialler(self.reactor, self.factory, 30,
                                lambda address, e: self.failures.append(e),
                                clock=clock, proxy=("127.0.0.1", 9050))
        dialler.dial(ONION)
        protocol, transport = self.accept()
        self.authenticate(protocol, transport)
        self.reactor.advance(30)
        self.assertEqual(self.failures, [])
        clock.advance(30)
        [e] = self.failures
        self.assertIsInstance(e, ConnectTimeout)
        self.assertTrue(transport.disconnected)

    def test_cancel(self):
        attempt = self.dialler.dial(ONION)
        protocol, transport = self.accept()
        attempt.cancel()
        [(_, e)] = self.failures
        self.assertIs(type(e), ConnectFailed)
        self.assertIn("cancelled", str(e))
        self.assertTrue(transport.disconnected)


class TinySocks5Server(Protocol):
    """The server side of RFC 1928 with RFC 1929, for one CONNECT: it
    records the request and echoes the tunnelled bytes."""

    def connectionMade(self):
        self.buffer = b""
        self.step = self.greeting

    def connectionLost(self, reason):
        self.factory.closed.callback(None)

    def dataReceived(self, data):
        self.buffer += data
        while self.step():
            pass

    def greeting(self):
        if len(self.buffer) < 4:
            return False
        assert self.buffer[:4] == b"\x05\x02\x00\x02", self.buffer
        self.buffer = self.buffer[4:]
        self.transport.write(b"\x05\x02")
        self.step = self.auth
        return True

    def auth(self):
        if len(self.buffer) < 2 or len(self.buffer) < 3 + self.buffer[1]:
            return False
        end = 3 + self.buffer[1] + self.buffer[2 + self.buffer[1]]
        if len(self.buffer) < end:
            return False
        self.buffer = self.buffer[end:]
        self.transport.write(b"\x01\x00")
        self.step = self.request
        return True

    def request(self):
        if len(self.buffer) < 5 or len(self.buffer) < 7 + self.buffer[4]:
            return False
        end = 7 + self.buffer[4]
        self.factory.requests.append(self.buffer[:end])
        self.buffer = self.buffer[end:]
        self.transport.write(SUCCESS)
        self.step = self.echo
        return True

    def echo(self):
        data, self.buffer = self.buffer, b""
        if data:
            self.transport.write(data)
        return False


class Pinger(Protocol):
    """Sends ``ping`` once connected and fires ``echoed`` with what comes
    back."""

    def __init__(self, echoed):
        self.echoed = echoed

    def connectionMade(self):
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.echoed.callback((self, data))


@defer.inlineCallbacks
def ping_through(testcase, server_factory, address, make_dialler):
    """
    Serve ``server_factory`` (a proxy or bridge) on 127.0.0.1, dial
    ``address`` through it with ``make_dialler(factory, failed, port)``, and
    give (the dialler, the Pinger protocol, the bytes it got back).
    """
    server = yield reactor.listenTCP(0, server_factory, interface="127.0.0.1")
    testcase.addCleanup(server.stopListening)
    echoed = defer.Deferred()
    factory = Factory()
    factory.buildProtocol = lambda addr: Pinger(echoed)
    dialler = make_dialler(factory, lambda address, e: echoed.errback(e),
                           server.getHost().port)
    dialler.dial(address)
    protocol, data = yield echoed
    return dialler, protocol, data


class LoopbackTests(TestCase):
    """Socks5Dialler through a SOCKS5 server on 127.0.0.1."""

    @defer.inlineCallbacks
    def test_onion_through_a_local_server(self):
        server_factory = Factory.forProtocol(TinySocks5Server)
        server_factory.requests, server_factory.closed = [], defer.Deferred()
        _, protocol, data = yield ping_through(
            self, server_factory, ONION,
            lambda factory, failed, port: Socks5Dialler(reactor, factory, 5, failed,
                                                        proxy=("127.0.0.1", port)))
        self.assertEqual(data, b"ping")
        self.assertEqual(server_factory.requests, [ONION_REQUEST])
        self.assertEqual(protocol.transport.getPeer(), HostnameAddress(ONION_NAME.encode(), 8333))
        protocol.transport.loseConnection()
        yield server_factory.closed
