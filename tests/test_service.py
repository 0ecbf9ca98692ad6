"""
Tests for bitpeer.service.PeerService: it keeps a handshaken peer, redials
with backoff, pings, counts, and stops cleanly.  Unit tests run against
bitpeer.testing's FakeInternet on its clock; one test restarts a simulated
node on 127.0.0.0/8.
"""

import random

from twisted.internet import defer, reactor
from twisted.internet.defer import CancelledError
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import ClosedByPeer, ClosedLocally
from bitpeer.networks import REGTEST
from bitpeer.factory import PeerFactory
from bitpeer.protocol import BitcoinProtocol, PeerOptions
from bitpeer.service import PeerService, ServiceStats
from bitpeer.testing import FakeInternet, start_simnet
from bitpeer.wire.messages import Pong, VerAck

ADDRESS = "127.0.0.2:8333"


class Mute(BitcoinProtocol):
    """A node that never answers pings."""

    def sendMessage(self, message):
        if not isinstance(message, Pong):
            super().sendMessage(message)


class NoVerack(BitcoinProtocol):
    """A node that never completes the handshake."""

    def sendMessage(self, message):
        if not isinstance(message, VerAck):
            super().sendMessage(message)


class BrokenInternet(FakeInternet):
    """A reactor whose connectTCP has a bug."""

    def connectTCP(self, *arguments, **keywords):
        raise RuntimeError("a bug")


class PeerServiceTests(SynchronousTestCase):
    """PeerService against nodes in memory."""

    def setUp(self):
        self.internet = FakeInternet()
        self.node = self.internet.add_node(address=ADDRESS)

    def service(self, **arguments):
        arguments.setdefault("random", random.Random(1))
        service = PeerService(self.internet, ADDRESS, **arguments)
        self.addCleanup(lambda: service.running and service.stopService())
        return service

    def test_keeps_a_handshaken_peer(self):
        seen = []
        service = self.service(on_peer=seen.append)
        waiting = service.whenPeer()
        service.startService()
        self.assertNoResult(waiting)
        self.internet.advance(0)
        peer = self.successResultOf(waiting)
        self.assertIsNotNone(peer.info)
        self.assertEqual(seen, [peer])
        self.assertIs(service.peer, peer)
        self.assertIs(self.successResultOf(service.whenPeer()), peer)
        self.assertEqual(service.stats().connects, 1)
        self.assertEqual(service.stats().reconnects, 0)

    def test_options_or_factory(self):
        service = PeerService(self.internet, ADDRESS, options=PeerOptions(user_agent="/me:1/"))
        self.assertEqual(service.factory.options.user_agent, "/me:1/")
        self.assertIs(service.factory.clock, self.internet)
        factory = PeerFactory(self.internet)
        self.assertIs(PeerService(self.internet, ADDRESS, factory=factory).factory, factory)
        self.assertRaises(ValueError, PeerService, self.internet, ADDRESS, factory=factory,
                          options=PeerOptions())

    def test_whenPeer_cancelled(self):
        service = self.service()
        waiting = service.whenPeer()
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        service.startService()
        self.internet.advance(0)
        self.assertIsNotNone(service.peer)

    def test_pings_on_an_interval(self):
        service = self.service(ping_interval=30)
        service.startService()
        self.internet.advance(0)
        self.assertIsNone(service.stats().last_rtt)
        pongs = []
        service.peer.subscribe(Pong, lambda peer, message: pongs.append(message))
        self.internet.advance(30)
        self.assertEqual(len(pongs), 1)
        self.assertEqual(service.stats().last_rtt, 0)
        self.internet.advance(30)
        self.assertEqual(len(pongs), 2)

    def test_redials_a_restarted_node(self):
        service = self.service()
        service.startService()
        self.internet.advance(0)
        first = service.peer
        self.internet.take_down(self.node)
        self.internet.advance(0)
        self.assertIsInstance(self.successResultOf(first.whenClosed()), ClosedByPeer)
        self.assertIsNone(service.peer)
        waiting = service.whenPeer()
        # Redials while the node is down are refused, further apart each time.
        delays = []
        for _ in range(4):
            [call] = self.internet.getDelayedCalls()
            delays.append(call.getTime() - self.internet.seconds())
            self.internet.advance(delays[-1])
            self.internet.advance(0)
        policy = random.Random(1)
        expected = [min(1.0 * 2.0 ** n, 300.0) + policy.random() for n in range(4)]
        for delay, wanted in zip(delays, expected):
            self.assertAlmostEqual(delay, wanted, places=5)
        self.assertEqual(service.stats().failures, 4)
        self.internet.bring_up(self.node)
        [call] = self.internet.getDelayedCalls()
        self.internet.advance(call.getTime() - self.internet.seconds())
        self.internet.advance(0)
        second = self.successResultOf(waiting)
        self.assertIsNot(second, first)
        self.assertIs(service.peer, second)
        stats = service.stats()
        self.assertEqual((stats.connects, stats.reconnects), (2, 1))

    def test_backoff_resets_after_a_handshake(self):
        service = self.service(random=random.Random(2))
        service.startService()
        self.internet.advance(0)
        self.internet.take_down(self.node)
        self.internet.advance(0)
        [call] = self.internet.getDelayedCalls()
        self.internet.bring_up(self.node)
        self.internet.advance(call.getTime() - self.internet.seconds())
        self.internet.advance(0)
        self.assertIsNotNone(service.peer)
        self.internet.take_down(self.node)
        self.internet.advance(0)
        [again] = self.internet.getDelayedCalls()
        self.assertLess(again.getTime() - self.internet.seconds(), 2.0)

    def test_stats_add_up_over_connections(self):
        service = self.service()
        service.startService()
        self.internet.advance(0)
        first = service.peer.stats
        self.internet.take_down(self.node)
        self.internet.advance(0)
        self.assertEqual(service.stats(), ServiceStats(
            1, 0, None, first.bytes_sent, first.bytes_received, first.messages_sent,
            first.messages_received, first.last_received_at))
        self.internet.bring_up(self.node)
        self.internet.advance(10)
        self.internet.advance(0)
        second = service.peer.stats
        stats = service.stats()
        self.assertEqual(stats.bytes_received, first.bytes_received + second.bytes_received)
        self.assertEqual(stats.messages_sent, first.messages_sent + second.messages_sent)
        self.assertEqual(stats.last_received_at, second.last_received_at)
        self.assertGreater(stats.last_received_at, first.last_received_at)

    def test_a_silent_peer_is_dropped(self):
        self.internet.take_down(self.node)
        self.node = self.internet.add_node(address=ADDRESS, protocol=Mute)
        service = self.service(ping_interval=60)
        service.startService()
        self.internet.advance(0)
        first = service.peer
        self.internet.advance(60)  # the ping
        self.internet.advance(30)  # its timeout
        self.assertIsInstance(self.successResultOf(first.whenClosed()), ClosedLocally)
        self.assertEqual(len(self.internet.getDelayedCalls()), 1)  # the redial

    def test_a_failed_handshake_is_retried(self):
        self.internet.take_down(self.node)
        self.internet.add_node(address=ADDRESS, version=300)  # obsolete
        service = self.service()
        service.startService()
        self.internet.advance(0)
        self.internet.advance(0)
        self.assertIsNone(service.peer)
        self.assertEqual(service.stats().failures, 1)
        self.assertEqual(len(self.internet.getDelayedCalls()), 1)

    def test_an_unexpected_error_is_logged_and_retried(self):
        internet = BrokenInternet()
        service = PeerService(internet, ADDRESS, random=random.Random(1))
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(service.stats().failures, 1)
        self.assertEqual(len(internet.getDelayedCalls()), 1)

    def test_stop_closes_the_peer_locally(self):
        service = self.service()
        service.startService()
        self.internet.advance(0)
        peer = service.peer
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.internet.advance(0)
        self.assertIsNone(self.successResultOf(stopped))
        closed = self.successResultOf(peer.whenClosed())
        self.assertIsInstance(closed, ClosedLocally)
        self.assertEqual(closed.reason, "closed-locally")
        [loopback] = self.node.connections
        self.assertIsInstance(self.successResultOf(loopback.server.peer.whenClosed()),
                              ClosedByPeer)
        self.assertEqual(self.internet.getDelayedCalls(), [])
        self.assertIsNone(service.peer)

    def test_stop_while_waiting_to_redial(self):
        self.internet.take_down(self.node)
        service = self.service()
        waiting = service.whenPeer()
        service.startService()
        self.internet.advance(0)
        self.assertEqual(len(self.internet.getDelayedCalls()), 1)
        self.assertIsNone(self.successResultOf(service.stopService()))
        self.assertEqual(self.internet.getDelayedCalls(), [])
        self.failureResultOf(waiting, ClosedLocally)

    def test_stop_during_the_handshake(self):
        self.internet.take_down(self.node)
        self.node = self.internet.add_node(address=ADDRESS, protocol=NoVerack)
        service = self.service()
        service.startService()
        self.internet.advance(0)
        self.assertIsNone(service.peer)
        [loopback] = self.node.connections
        self.assertFalse(loopback.closed)
        self.successResultOf(service.stopService())
        self.internet.advance(0)
        self.assertTrue(loopback.closed)
        self.assertIsNone(service.peer)
        self.assertEqual(self.internet.getDelayedCalls(), [])


class RestartedNodeTests(TestCase):
    """PeerService against a simulated node on 127.0.0.0/8 that stops and
    starts again: the service redials and keeps pinging."""

    timeout = 30

    @defer.inlineCallbacks
    def test_redials_and_keeps_pinging(self):
        probe = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        port = probe.getHost().port
        yield probe.stopListening()
        simnet = start_simnet(self, reactor, nodes=1, book_size=10, seed=7, port=port,
                              stale=0, exotic=0)
        [seed] = simnet.seeds(1)
        service = PeerService(reactor, str(seed), REGTEST, ping_interval=0.05,
                              initial_delay=0.05, max_delay=0.2,
                              random=_NoJitter())
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        first = yield service.whenPeer()
        yield first.expect(Pong, timeout=10)
        yield simnet.stop()
        closed = yield first.whenClosed()
        self.assertIsInstance(closed, ClosedByPeer)
        simnet.start()
        second = yield service.whenPeer()
        self.assertIsNot(second, first)
        yield second.expect(Pong, timeout=10)
        self.assertEqual(service.stats().reconnects, 1)
        self.assertIsNotNone(service.stats().last_rtt)
        yield service.stopService()
        self.assertIsInstance((yield second.whenClosed()), ClosedLocally)


class _NoJitter:
    """A random source whose jitter is nothing, so the test waits no longer
    than the backoff asks."""

    def random(self):
        return 0.0
