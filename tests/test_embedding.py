"""
The README's embedding example, tested as a user would run it: a Service
that keeps one peer and logs the inventory it announces, against a
NodeFactory on 127.0.0.1, and unchanged against a node in memory
(bitpeer.testing's FakeInternet), as a user's own unit tests would run it;
then the README's PeerService example, read from the README and run against
a node in memory that restarts.
"""

# --- README example start ---
from twisted.application.service import Service
from twisted.logger import Logger

from bitpeer.factory import connectPeer
from bitpeer.networks import MAINNET
from bitpeer.wire.messages import Inv


class InvLogger(Service):
    """Connect to one node and log every inventory item it announces."""

    log = Logger()

    def __init__(self, reactor, address, network=MAINNET):
        self.reactor, self.address, self.network = reactor, address, network
        self.peer = None

    def startService(self):
        super().startService()
        self.connecting = connectPeer(self.reactor, self.address, self.network)
        self.connecting.addCallbacks(self.connected, self.failed)

    def connected(self, peer):
        self.peer = peer
        peer.subscribe(Inv, self.announced)

    def failed(self, failure):
        self.log.warn("{address}: {error}", address=self.address, error=failure.value)

    def announced(self, peer, inv):
        for item in inv.inventory:
            self.log.info("{peer} has {hash}", peer=peer.address, hash=item.hash[::-1].hex())

    def stopService(self):
        super().stopService()
        self.connecting.cancel()
        if self.peer is not None:
            self.peer.close()
            return self.peer.whenClosed()
# --- README example end ---


from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402
from twisted.internet.testing import EventLoggingObserver  # noqa: E402
from twisted.logger import formatEvent, globalLogPublisher  # noqa: E402
from twisted.trial.unittest import TestCase  # noqa: E402

from bitpeer.errors import ConnectionClosed  # noqa: E402
from bitpeer.factory import NodeFactory  # noqa: E402
from bitpeer.wire.messages import MSG_BLOCK, InvVector  # noqa: E402

#: A block hash as the wire carries it (the text form is byte-reversed).
BLOCK_HASH = bytes(range(32))


class EmbeddingTests(TestCase):
    """InvLogger against a local node that announces a block."""

    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.server_peers = []
        #: Fires when the node has announced the block and the service's
        #: side has answered a ping sent after it, so the inv was processed.
        self.announced = defer.Deferred()
        node = NodeFactory(reactor, on_peer=self.announce)
        port = reactor.listenTCP(0, node, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.address = f"127.0.0.1:{port.getHost().port}"

    def announce(self, peer):
        self.server_peers.append(peer)
        d = peer.whenHandshaken()
        d.addCallback(lambda _: peer.send(Inv([InvVector(MSG_BLOCK, BLOCK_HASH)])))
        d.addCallback(lambda _: peer.ping())
        d.chainDeferred(self.announced)

    def logged(self, service):
        return [formatEvent(e) for e in self.events if e.get("log_source") is service]

    @defer.inlineCallbacks
    def test_logs_announced_inventory(self):
        service = InvLogger(reactor, self.address)
        service.startService()
        self.assertTrue(service.running)
        yield self.announced
        self.assertEqual(
            self.logged(service), [f"{self.address} has {BLOCK_HASH[::-1].hex()}"]
        )
        self.assertIsNotNone(service.peer.info)
        closed = yield service.stopService()
        self.assertFalse(service.running)
        self.assertIsInstance(closed, ConnectionClosed)
        [server_peer] = self.server_peers
        server_closed = yield server_peer.whenClosed()
        self.assertIsInstance(server_closed, ConnectionClosed)

    @defer.inlineCallbacks
    def test_unreachable_node(self):
        probe = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        address = f"127.0.0.1:{probe.getHost().port}"
        yield probe.stopListening()
        service = InvLogger(reactor, address)
        service.startService()
        yield service.connecting
        [line] = self.logged(service)
        self.assertTrue(line.startswith(f"{address}: "), line)
        self.assertIn("refused", line)
        self.assertIsNone(service.stopService())
        self.assertIsNone(service.peer)


from twisted.trial.unittest import SynchronousTestCase  # noqa: E402

from bitpeer.testing import FakeInternet  # noqa: E402


class InMemoryEmbeddingTests(SynchronousTestCase):
    """The same InvLogger, unchanged, against a node in memory (bitpeer.testing)."""

    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def test_logs_announced_inventory(self):
        internet = FakeInternet()
        node = internet.add_node(address="127.0.0.2:8333")
        service = InvLogger(internet, str(node.address))
        service.startService()
        internet.advance(0)
        node.send_inv([BLOCK_HASH])
        internet.advance(0)
        self.assertEqual([formatEvent(e) for e in self.events if e.get("log_source") is service],
                         [f"127.0.0.2:8333 has {BLOCK_HASH[::-1].hex()}"])
        closing = service.stopService()
        internet.advance(0)
        self.assertIsInstance(self.successResultOf(closing), ConnectionClosed)
        self.assertTrue(node.connections[0].closed)


from .test_testing import README, code_blocks  # noqa: E402


def readme_service_example():
    """The README's PeerService example, run as written: its namespace."""
    code = code_blocks(README, "To keep a peer rather than dial once")[0]
    namespace = {"__name__": "readme_peer_service"}
    exec(compile(code, README, "exec"), namespace)
    return namespace


class PeerServiceExampleTests(SynchronousTestCase):
    """The README's inv_follower, against a node in memory that restarts."""

    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def logged(self):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace") == "readme_peer_service"]

    def test_follows_a_restarting_node(self):
        internet = FakeInternet()
        node = internet.add_node(address="127.0.0.2:8333")
        service = readme_service_example()["inv_follower"](internet, "127.0.0.2:8333")
        service.startService()
        internet.advance(0)
        node.send_inv([BLOCK_HASH])
        internet.advance(0)
        line = f"127.0.0.2:8333 has {BLOCK_HASH[::-1].hex()}"
        self.assertEqual(self.logged(), [line])
        first = self.successResultOf(service.whenPeer())
        internet.take_down(node)
        internet.advance(0)
        internet.bring_up(node)
        internet.advance(2)  # the redial: 1 s and the jitter
        self.assertEqual(node.send_inv([BLOCK_HASH]), 1)
        internet.advance(0)
        self.assertEqual(self.logged(), [line, line])
        self.assertIsNot(self.successResultOf(service.whenPeer()), first)
        self.assertEqual(service.stats().reconnects, 1)
        closing = service.stopService()
        internet.advance(0)
        self.assertIsNone(self.successResultOf(closing))
        self.assertTrue(node.connections[-1].closed)
