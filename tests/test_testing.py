"""
bitpeer.testing, used as a user's own tests would use it: a FakeNode
handshaken with in memory, its getaddr answer, misbehaving nodes made by
overriding the protocol's hooks, connectPeer on a FakeInternet, the
Loopback's closing rules, the README's example run as written, and a
simulated network started for a trial test.
"""

import os
import re
import unittest as pyunit

import attr
from twisted.internet import defer, reactor
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.trial import reporter
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import (
    ConnectionClosed,
    ConnectionRefused,
    HandshakeTimeout,
    ProtocolViolation,
    SelfConnection,
)
from bitpeer.factory import PeerFactory, connectPeer
from bitpeer.networks import MAINNET, REGTEST, TESTNET4
from bitpeer.protocol import BitcoinProtocol, PeerOptions
from bitpeer.testing import (
    T0,
    FakeInternet,
    FakeNode,
    Loopback,
    fake_clock,
    handshake,
    header_hash,
    start_simnet,
)
from bitpeer.wire.address import AddrEntry, NetworkAddress
from bitpeer.wire.messages import (
    MSG_BLOCK,
    MSG_TX,
    Addr,
    AddrV2,
    BlockHeader,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvVector,
    NotFound,
    Ping,
    VerAck,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
README = os.path.join(ROOT, "README.rst")
EMBEDDING = os.path.join(ROOT, "docs", "embedding.rst")


def code_blocks(path, after=""):
    """
    The Python code blocks of the reStructuredText file at ``path`` (those
    after the text ``after``), unindented: the examples of the README and
    the docs, so that tests run them as written.
    """
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    if after:
        text = text.split(after, 1)[1]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return ["\n".join(line[4:] for line in block.splitlines()) for block in blocks]


def run_example(testcase, code, path):
    """
    Run one example as written, in a namespace of its own, then the trial
    tests it defines; fail ``testcase`` if any of them fails.  Returns the
    namespace.
    """
    namespace = {"__name__": "example"}
    exec(compile(code, path, "exec"), namespace)
    for value in list(namespace.values()):
        if isinstance(value, type) and issubclass(value, SynchronousTestCase):
            result = reporter.TestResult()
            pyunit.TestLoader().loadTestsFromTestCase(value).run(result)
            testcase.assertEqual((result.errors, result.failures), ([], []))
            testcase.assertGreater(result.successes, 0)
    return namespace


def book(count):
    """``count`` IPv4 entries, as a node's address book."""
    return [AddrEntry(T0 - 60, 1, NetworkAddress.parse(f"10.0.{n // 250}.{n % 250 + 1}:8333"))
            for n in range(count)]


class HandshakeTests(SynchronousTestCase):
    """A FakeNode presents what it was given; handshake() completes on the clock."""

    def test_version_data(self):
        clock = fake_clock()
        node = FakeNode(clock, TESTNET4, version=70015, user_agent="/Knots:1/",
                        services=0x409, start_height=123)
        peer = handshake(node)
        info = peer.info
        self.assertEqual((info.version, info.user_agent, info.services, info.start_height),
                         (70015, "/Knots:1/", 0x409, 123))
        self.assertEqual(info.timestamp, T0)
        self.assertEqual(peer.address, node.address)
        [loopback] = node.connections
        self.assertIsNotNone(loopback.server.peer.info)
        self.assertTrue(loopback.server.peer.info.inbound)

    def test_own_factory(self):
        """A user's own factory (options, callbacks) is the client."""
        clock = fake_clock()
        seen = []
        factory = PeerFactory(clock, MAINNET, PeerOptions(user_agent="/mine:1/"),
                              on_peer=seen.append)
        node = FakeNode(clock)
        peer = handshake(node, factory)
        self.assertEqual(seen, [peer])
        self.assertEqual(node.connections[0].server.peer.info.user_agent, "/mine:1/")

    def test_getaddr(self):
        clock = fake_clock()
        node = FakeNode(clock, addresses=book(1000))
        peer = handshake(node)
        answer = peer.getaddr()
        clock.advance(0)
        result = self.successResultOf(answer)
        self.assertEqual(result.outcome, "answered")
        self.assertEqual(len(result.addresses), 230)  # Core: 23% of the book
        self.assertTrue(set(result.addresses) <= set(node.addresses))

    def test_latency(self):
        """Bytes take ``latency`` seconds each way."""
        clock = fake_clock()
        node = FakeNode(clock)
        loopback = node.connect(PeerFactory(clock, MAINNET), latency=0.25)
        peer = loopback.client.peer
        clock.advance(0.25)
        self.assertIsNone(peer.info)  # version there, version/verack back: 0.5 s
        clock.advance(0.25)
        self.assertIsNotNone(peer.info)
        self.assertEqual(peer.info.handshake_latency, 0.5)


def chain(length):
    """``length`` block headers, each on the one before."""
    headers, previous = [], bytes(32)
    for height in range(length):
        header = BlockHeader(4, previous, bytes([height % 256]) * 32, T0 + height * 600,
                             0x1D00FFFF, height)
        headers.append(header)
        previous = header_hash(header)
    return headers


class ScriptedNodeTests(SynchronousTestCase):
    """A FakeNode speaks at will and answers from what the test gave it."""

    def setUp(self):
        self.clock = fake_clock()

    def received(self, peer, message_class):
        seen = []
        peer.subscribe(message_class, lambda _, message: seen.append(message))
        return seen

    def test_send_inv_after_the_handshake(self):
        node = FakeNode(self.clock)
        self.assertEqual(node.send_inv([bytes(32)]), 0)  # nobody connected yet
        peer = handshake(node)
        invs = self.received(peer, Inv)
        self.assertEqual(node.send_inv([b"\x01" * 32], MSG_TX), 1)
        self.clock.advance(0)
        self.assertEqual(invs, [Inv([InvVector(MSG_TX, b"\x01" * 32)])])

    def test_send_headers_and_any_message(self):
        node = FakeNode(self.clock)
        peer = handshake(node)
        headers = self.received(peer, Headers)
        node.send_headers(chain(2))
        node.send(Ping(7))
        self.clock.advance(0)
        self.assertEqual(headers, [Headers(chain(2))])

    def test_send_addr_in_the_form_asked(self):
        node = FakeNode(self.clock)
        peer = handshake(node)
        self.assertTrue(node.peers[0].wants_addrv2)  # bitpeer asks for addrv2
        seen = self.received(peer, AddrV2)
        onion = AddrEntry(T0, 0, NetworkAddress.parse(
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333"))
        node.send_addr(book(2) + [onion])
        self.clock.advance(0)
        self.assertEqual(list(seen[0].addresses), book(2) + [onion])

    def test_getheaders_from_the_chain(self):
        headers = chain(10)
        node = FakeNode(self.clock, headers=headers)
        peer = handshake(node)
        answer = peer.expect(Headers)
        peer.send(GetHeaders(70016, [header_hash(headers[6]), header_hash(headers[3])]))
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(answer).headers, tuple(headers[7:]))
        # Unknown locator: from the start; hash_stop ends the answer.
        answer = peer.expect(Headers)
        peer.send(GetHeaders(70016, [b"\xff" * 32], header_hash(headers[2])))
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(answer).headers, tuple(headers[:3]))
        # No locator: the header hash_stop names, alone.
        answer = peer.expect(Headers)
        peer.send(GetHeaders(70016, [], header_hash(headers[5])))
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(answer).headers, (headers[5],))

    def test_getdata_and_notfound(self):
        known, unknown = b"\x01" * 32, b"\x02" * 32
        block = Inv([InvVector(MSG_BLOCK, known)])  # any message will do
        node = FakeNode(self.clock, data={known: block})
        peer = handshake(node)
        got, missing = peer.expect(Inv), peer.expect(NotFound)
        peer.send(GetData([InvVector(MSG_BLOCK, unknown), InvVector(MSG_BLOCK, known)]))
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(got), block)
        self.assertEqual(self.successResultOf(missing).inventory,
                         (InvVector(MSG_BLOCK, unknown),))

    def test_getaddr_policy(self):
        node = FakeNode(self.clock, addresses=book(4), getaddr_policy="all")
        answer = handshake(node).getaddr()
        self.clock.advance(0)
        self.assertEqual(sorted(self.successResultOf(answer).addresses), sorted(book(4)))

    def test_latency_of_the_node(self):
        node = FakeNode(self.clock, latency=0.5)
        start = self.clock.seconds()
        peer = handshake(node)
        self.assertEqual(peer.info.handshake_latency, 1.0)
        self.assertIsNotNone(node.peers[0].info)
        rtt = peer.ping()
        # A task.Clock runs what a call schedules from the advanced time:
        # advance a crossing at a time.
        self.clock.advance(0.5)
        self.assertNoResult(rtt)
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(rtt), 1.0)
        self.assertEqual(self.clock.seconds() - start, 2.5)


class SilentVerack(BitcoinProtocol):
    """Never sends verack."""

    def sendMessage(self, message):
        if not isinstance(message, VerAck):
            super().sendMessage(message)


class FixedAnswer(BitcoinProtocol):
    """Answers getaddr with the same three addresses, in addr, always."""

    def address_answer(self):
        return Addr(book(3))


class EchoNonce(BitcoinProtocol):
    """Takes the dialler's nonce for its own, as a connection to oneself would."""

    def version_message(self):
        return attr.evolve(super().version_message(), nonce=self.peer_version.nonce)


class WrongMagic(BitcoinProtocol):
    """Frames everything for another network."""

    def frame(self, message):
        return TESTNET4.magic + super().frame(message)[4:]


class MisbehaviourTests(SynchronousTestCase):
    """A node's ``protocol`` overrides the protocol's hooks; the client copes."""

    def test_never_verack(self):
        clock = fake_clock()
        node = FakeNode(clock, protocol=SilentVerack)
        self.assertRaises(AssertionError, handshake, node)
        peer = node.connections[0].client.peer
        waiting = peer.whenHandshaken()
        clock.advance(PeerOptions().handshake_timeout)
        self.failureResultOf(waiting, HandshakeTimeout)
        self.assertTrue(node.connections[0].closed)

    def test_fixed_answer(self):
        clock = fake_clock()
        peer = handshake(FakeNode(clock, protocol=FixedAnswer, addresses=book(100)))
        answer = peer.getaddr()
        clock.advance(0)
        self.assertEqual(list(self.successResultOf(answer).addresses), book(3))

    def test_self_connection(self):
        clock = fake_clock()
        nonces = set()
        factory = PeerFactory(clock, MAINNET, nonces=nonces)
        node = FakeNode(clock, protocol=EchoNonce)
        self.assertRaises(SelfConnection, handshake, node, factory)
        self.assertEqual(nonces, set())

    def test_wrong_magic(self):
        clock = fake_clock()
        node = FakeNode(clock, protocol=WrongMagic)
        self.assertRaises(ProtocolViolation, handshake, node)


class FakeInternetTests(SynchronousTestCase):
    """connectPeer reaches FakeNodes by address; anything else is refused."""

    def test_connect_peer(self):
        internet = FakeInternet()
        internet.add_node(address="127.0.0.5:18333", user_agent="/there:1/")
        connecting = connectPeer(internet, "127.0.0.5:18333", MAINNET)
        internet.advance(0)
        peer = self.successResultOf(connecting)
        self.assertEqual(peer.info.user_agent, "/there:1/")
        self.assertEqual(str(peer.address), "127.0.0.5:18333")
        peer.close()
        internet.advance(0)
        self.assertIsInstance(self.successResultOf(peer.whenClosed()), ConnectionClosed)

    def test_refused(self):
        internet = FakeInternet()
        connecting = connectPeer(internet, "127.0.0.6:8333", MAINNET)
        internet.advance(0)
        self.failureResultOf(connecting, ConnectionRefused)

    def test_cancelled_before_connecting(self):
        internet = FakeInternet()
        node = internet.add_node()
        connecting = connectPeer(internet, str(node.address), MAINNET)
        connecting.cancel()
        self.failureResultOf(connecting, CancelledError)
        internet.advance(0)
        self.assertEqual(node.connections, [])


class Recorder(Protocol):
    """Keeps what it received and why it was closed."""

    def __init__(self):
        self.received, self.reason = b"", None

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.reason = reason


class LoopbackTests(SynchronousTestCase):
    """Bytes in order, closing after them, aborting before them, never re-entrant."""

    def setUp(self):
        self.clock = fake_clock()
        self.a, self.b = Recorder(), Recorder()
        self.loopback = Loopback(self.clock, self.a, self.b, None, None)

    def test_in_order_on_the_clock(self):
        self.a.transport.write(b"one ")
        self.a.transport.writeSequence([b"two", b"!"])
        self.b.transport.write(b"back")
        self.assertEqual(self.b.received, b"")
        self.clock.advance(0)
        self.assertEqual((self.b.received, self.a.received), (b"one two!", b"back"))

    def test_close_after_data(self):
        self.a.transport.write(b"last words")
        self.a.transport.loseConnection()
        self.a.transport.write(b"ignored")
        self.assertIsNone(self.a.reason)
        self.clock.advance(0)
        self.assertEqual(self.b.received, b"last words")
        self.assertTrue(self.a.reason.check(ConnectionDone))
        self.assertTrue(self.b.reason.check(ConnectionDone))
        self.assertFalse(self.b.transport.connected)
        self.assertTrue(self.loopback.closed)

    def test_abort_drops_what_is_in_flight(self):
        self.a.transport.write(b"lost")
        self.a.transport.abortConnection()
        self.assertIsNone(self.a.reason)  # not inside the call that aborted
        self.clock.advance(0)
        self.assertEqual(self.b.received, b"")
        self.assertTrue(self.a.reason.check(ConnectionAborted))
        self.assertTrue(self.b.reason.check(ConnectionLost))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ReadmeTests(SynchronousTestCase):
    """The README's bitpeer.testing example runs as written, and passes."""

    def test_example(self):
        code = code_blocks(README, "Testing code that uses bitpeer")[0]
        self.assertIn("GetAddrTests", run_example(self, code, README))


class EmbeddingDocTests(SynchronousTestCase):
    """Every example of docs/embedding.rst runs as written, and passes."""

    def test_examples(self):
        blocks = code_blocks(EMBEDDING)
        self.assertGreaterEqual(len(blocks), 8)
        for code in blocks:
            run_example(self, code, EMBEDDING)


class StartSimNetTests(TestCase):
    """start_simnet gives a trial test a running simulated network; trial would
    call the reactor dirty if it were not stopped after the test."""

    timeout = 20

    @defer.inlineCallbacks
    def test_dial_a_seed(self):
        simnet = start_simnet(self, reactor, nodes=5, book_size=100, seed=4)
        [seed] = simnet.seeds(1)
        peer = yield connectPeer(reactor, str(seed), REGTEST, handshake_timeout=5)
        self.assertEqual(peer.info.user_agent, simnet.node_at(seed.host_text).user_agent)
        peer.close()
        yield peer.whenClosed()
