"""
Tests for bitpeer.peer: the Peer handle's Deferreds (getaddr, ping), its
message streams (subscribe) and send rules, PeerInfo and OneShot.  Driven
through a real BitcoinProtocol on a StringTransport and a task.Clock.
"""

import gc
import weakref

from twisted.internet.defer import CancelledError, TimeoutError
from twisted.internet.error import ConnectionDone
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.errors import ClosedByPeer, ConnectionClosed, IdleTimeout, PeerError
from bitpeer.oneshot import OneShot
from bitpeer.peer import DEFAULT_EXPECT_TIMEOUT, GetAddrResult, PeerInfo, PeerStats
from bitpeer.protocol import PeerOptions
from bitpeer.wire.messages import (
    Addr,
    AddrV2,
    GetAddr,
    Headers,
    Inv,
    InvVector,
    Message,
    Ping,
    Pong,
    SendAddrV2,
    SendHeaders,
    UnknownMessage,
    VerAck,
    WtxidRelay,
)

from .helpers import (
    PEER_ADDRESS,
    US_ADDRESS,
    FakeNode,
    ipv4_entries,
    node_version,
    onion_entries,
)


def handshaken(**options):
    """A FakeNode past the handshake; what the protocol wrote is consumed."""
    node = FakeNode(options=PeerOptions(**options) if options else None)
    node.handshake()
    return node


class GetAddrTests(SynchronousTestCase):
    """peer.getaddr(): one request, an answer by Core's addr-fetch rule."""

    def test_sent_only_after_the_handshake(self):
        node = FakeNode()
        node.raw_sent()
        d = node.peer.getaddr()
        node.send(node_version())
        # Never before our verack (PROTOCOL.md 9.3).
        self.assertEqual(node.sent(), [WtxidRelay(), SendAddrV2(), VerAck()])
        node.send(WtxidRelay(), SendAddrV2())
        self.assertEqual(node.sent(), [])
        node.send(VerAck())
        self.assertEqual(node.sent(), [GetAddr()])
        self.assertNoResult(d)

    def test_sent_once_for_two_callers(self):
        node = handshaken()
        first, second = node.peer.getaddr(), node.peer.getaddr()
        self.assertEqual(node.sent(), [GetAddr()])
        node.send(Addr(ipv4_entries(5)))
        result = self.successResultOf(first)
        self.assertIs(self.successResultOf(second), result)
        # A caller after the answer gets it at once, and nothing is sent.
        self.assertIs(self.successResultOf(node.peer.getaddr()), result)
        self.assertEqual(node.sent(), [])

    def test_sent_once_for_two_callers_before_handshake(self):
        node = FakeNode()
        first, second = node.peer.getaddr(), node.peer.getaddr()
        node.handshake()  # consumes what was written, so check the count
        node.send(Addr(ipv4_entries(3)))
        self.assertIs(self.successResultOf(first), self.successResultOf(second))
        self.assertEqual(node.peer._collector.messages, 1)

    def test_exactly_one_getaddr_frame(self):
        node = FakeNode()
        node.raw_sent()
        node.peer.getaddr()
        node.peer.getaddr()
        node.send(node_version(), VerAck())
        node.peer.getaddr()
        self.assertEqual(node.sent().count(GetAddr()), 1)

    def test_answered(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.clock.advance(1)
        node.send(Addr(ipv4_entries(5)))
        result = self.successResultOf(d)
        self.assertEqual(
            result, GetAddrResult(tuple(ipv4_entries(5)), "answered", 1, 1.0, announced=5)
        )

    def test_self_announcement_first_is_kept(self):
        """A one-entry message is not the answer (PROTOCOL.md 9.6)."""
        node = handshaken()
        d = node.peer.getaddr()
        announcement = ipv4_entries(1, first=500)
        node.send(Addr(announcement))
        self.assertNoResult(d)
        node.clock.advance(2)
        node.send(AddrV2(ipv4_entries(3) + onion_entries(2)))
        result = self.successResultOf(d)
        self.assertEqual(result.outcome, "answered")
        self.assertEqual(result.messages, 2)
        self.assertEqual(
            result.addresses, tuple(announcement + ipv4_entries(3) + onion_entries(2))
        )
        self.assertEqual(result.elapsed, 2)

    def test_messages_after_the_answer_are_not_added(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.send(Addr(ipv4_entries(2)), Addr(ipv4_entries(4, first=100)))
        self.assertEqual(len(self.successResultOf(d).addresses), 2)

    def test_idle(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.clock.advance(4)
        node.send(Addr(ipv4_entries(1)))  # restarts the 10 s idle wait
        node.clock.advance(9.9)
        self.assertNoResult(d)
        node.clock.advance(0.1)
        result = self.successResultOf(d)
        self.assertEqual(result.outcome, "idle")
        self.assertEqual(result.addresses, tuple(ipv4_entries(1)))
        self.assertEqual(result.messages, 1)
        self.assertEqual(result.elapsed, 14)

    def test_idle_with_nothing(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.clock.advance(10)
        self.assertEqual(self.successResultOf(d), GetAddrResult((), "idle", 0, 10.0))
        self.assertFalse(node.transport.disconnecting)

    def test_timeout(self):
        node = handshaken()
        d = node.peer.getaddr()
        for n in range(3):
            node.clock.advance(9)
            node.send(Addr(ipv4_entries(1, first=n + 1)))
        node.clock.advance(2.9)
        self.assertNoResult(d)
        node.clock.advance(0.1)
        result = self.successResultOf(d)
        self.assertEqual(result.outcome, "timeout")
        self.assertEqual(result.addresses, tuple(ipv4_entries(3)))
        self.assertEqual(result.messages, 3)
        self.assertEqual(result.elapsed, 30)

    def test_timeouts_are_options(self):
        node = handshaken(getaddr_idle_timeout=2, getaddr_timeout=3)
        d = node.peer.getaddr()
        node.clock.advance(1.5)
        node.send(Addr(ipv4_entries(1)))
        node.clock.advance(1.5)
        self.assertEqual(self.successResultOf(d).outcome, "timeout")

    def test_max_addresses(self):
        node = handshaken(max_addresses=3)
        d = node.peer.getaddr()
        node.send(Addr(ipv4_entries(1, first=900)), Addr(ipv4_entries(5)))
        result = self.successResultOf(d)
        self.assertEqual(result.addresses, tuple(ipv4_entries(1, first=900) + ipv4_entries(2)))
        self.assertEqual(result.outcome, "answered")

    def test_default_max_addresses(self):
        self.assertEqual(PeerOptions().max_addresses, 2000)
        node = handshaken()
        d = node.peer.getaddr()
        for n in range(3):
            node.send(Addr(ipv4_entries(1000, first=n * 1000 + 1)[:1]))
        node.send(Addr(ipv4_entries(1000, first=10_000)))
        self.assertEqual(len(self.successResultOf(d).addresses), 1003)

    def test_bound_reached_by_single_entries(self):
        node = handshaken(max_addresses=2)
        d = node.peer.getaddr()
        for n in range(4):
            node.send(Addr(ipv4_entries(1, first=n + 1)))
        node.clock.advance(10)
        self.assertEqual(self.successResultOf(d).addresses, tuple(ipv4_entries(2)))

    def test_closed_after_partial_answer(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.clock.advance(3)
        node.send(Addr(ipv4_entries(1)))
        node.connection_lost(ConnectionDone())
        result = self.successResultOf(d)
        self.assertEqual(result, GetAddrResult(tuple(ipv4_entries(1)), "closed", 1, 3.0, announced=1))
        self.assertEqual(node.clock.getDelayedCalls(), [])

    def test_closed_with_nothing(self):
        node = handshaken()
        d = node.peer.getaddr()
        node.connection_lost(ConnectionDone())
        failure = self.failureResultOf(d, PeerError)
        self.assertIsInstance(failure.value, ConnectionClosed)

    def test_cancel_one_caller(self):
        node = handshaken()
        first, second = node.peer.getaddr(), node.peer.getaddr()
        first.cancel()
        self.failureResultOf(first, CancelledError)
        node.send(Addr(ipv4_entries(4)))
        self.assertEqual(self.successResultOf(second).outcome, "answered")

    def test_cancel_before_handshake(self):
        node = FakeNode()
        first, second = node.peer.getaddr(), node.peer.getaddr()
        first.cancel()
        self.failureResultOf(first, CancelledError)
        node.handshake()
        node.send(Addr(ipv4_entries(4)))
        self.assertEqual(len(self.successResultOf(second).addresses), 4)

    def test_cancel_every_caller_and_ask_again(self):
        node = handshaken()
        d = node.peer.getaddr()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        again = node.peer.getaddr()
        self.assertEqual(node.sent(), [GetAddr()])
        node.send(Addr(ipv4_entries(2)))
        self.assertEqual(len(self.successResultOf(again).addresses), 2)

    def test_addr_without_getaddr_is_ignored(self):
        node = handshaken()
        node.send(Addr(ipv4_entries(5)))
        d = node.peer.getaddr()
        node.clock.advance(10)
        self.assertEqual(self.successResultOf(d).addresses, ())

    def test_after_the_connection_ended(self):
        """A late caller hears why the connection ended, at once."""
        node = handshaken()
        node.peer.close()
        error = node.close_error(self)
        failure = self.failureResultOf(node.peer.getaddr(), ConnectionClosed)
        self.assertIs(failure.value, error)
        self.assertEqual(node.sent(), [])
        self.assertEqual(node.clock.getDelayedCalls(), [])


class PingTests(SynchronousTestCase):
    """peer.ping() and answering the peer's pings."""

    def test_round_trip_time(self):
        node = handshaken()
        d = node.peer.ping()
        [ping] = node.sent()
        self.assertIsInstance(ping, Ping)
        self.assertNotEqual(ping.nonce, 0)
        node.clock.advance(0.125)
        node.send(Pong(ping.nonce))
        self.assertEqual(self.successResultOf(d), 0.125)
        self.assertEqual(node.clock.getDelayedCalls(), [node.protocol._idle_call])

    def test_wrong_nonce_is_ignored(self):
        node = handshaken()
        d = node.peer.ping()
        [ping] = node.sent()
        node.send(Pong(ping.nonce ^ 1))
        self.assertNoResult(d)
        node.send(Pong(ping.nonce))
        self.assertEqual(self.successResultOf(d), 0)

    def test_two_pings(self):
        node = handshaken()
        first = node.peer.ping()
        node.clock.advance(1)
        second = node.peer.ping()
        one, two = node.sent()
        self.assertNotEqual(one.nonce, two.nonce)
        node.clock.advance(1)
        node.send(Pong(two.nonce), Pong(one.nonce))
        self.assertEqual(self.successResultOf(first), 2)
        self.assertEqual(self.successResultOf(second), 1)

    def test_timeout(self):
        node = handshaken()
        d = node.peer.ping()
        [ping] = node.sent()
        node.clock.advance(29.9)
        self.assertNoResult(d)
        node.clock.advance(0.1)
        self.failureResultOf(d, TimeoutError)
        # A late pong is harmless.
        node.send(Pong(ping.nonce))
        self.assertFalse(node.transport.disconnecting)

    def test_timeout_option(self):
        node = handshaken(ping_timeout=2)
        d = node.peer.ping()
        node.clock.advance(2)
        self.failureResultOf(d, TimeoutError)

    def test_cancel(self):
        node = handshaken()
        d = node.peer.ping()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(node.peer._pings, {})

    def test_waits_for_the_handshake(self):
        node = FakeNode()
        node.raw_sent()
        d = node.peer.ping()
        self.assertEqual(node.sent(), [])
        node.handshake()
        self.assertNoResult(d)
        # handshake() consumed the ping; it is still pending under its nonce.
        [nonce] = node.peer._pings
        node.send(Pong(nonce))
        self.assertEqual(self.successResultOf(d), 0)

    def test_lost(self):
        node = handshaken(ping_timeout=600)
        d = node.peer.ping()
        node.clock.advance(180)
        self.assertTrue(node.transport.disconnected)
        node.connection_lost()
        self.failureResultOf(d, IdleTimeout)

    def test_after_the_connection_ended(self):
        node = handshaken()
        node.connection_lost(ConnectionDone())
        self.failureResultOf(node.peer.ping(), ConnectionClosed)
        self.assertEqual(node.sent(), [])

    def test_peer_ping_answered_with_same_nonce(self):
        node = handshaken()
        node.send(Ping(0xFFFFFFFFFFFFFFFF), Ping(0))
        self.assertEqual(node.sent(), [Pong(0xFFFFFFFFFFFFFFFF), Pong(0)])

    def test_peer_ping_not_answered_before_handshake(self):
        node = FakeNode()
        node.raw_sent()
        node.send(Ping(1))
        node.send(node_version())
        node.raw_sent()
        node.send(Ping(2))  # after version, before its verack: Core ignores it too
        self.assertEqual(node.sent(), [])
        node.send(VerAck(), Ping(3))
        self.assertEqual(node.sent(), [Pong(3)])

    def test_nonceless_ping_is_not_answered(self):
        """Pre-BIP31 pings have no pong."""
        node = handshaken()
        node.send(Ping(None))
        self.assertEqual(node.sent(), [])


class SubscribeTests(SynchronousTestCase):
    """peer.subscribe(): callbacks for message streams."""

    def test_by_class(self):
        node = handshaken()
        seen = []
        node.peer.subscribe(Inv, lambda peer, message: seen.append((peer, message)))
        inv = Inv([InvVector(2, b"\x11" * 32)])
        node.send(Ping(1), inv, SendHeaders(), inv)
        self.assertEqual(seen, [(node.peer, inv), (node.peer, inv)])

    def test_everything(self):
        node = FakeNode()
        seen = []
        node.peer.subscribe(Message, lambda peer, message: seen.append(message))
        unknown = UnknownMessage("xyzzy", b"\x00")
        node.send(node_version(), WtxidRelay(), VerAck(), Ping(4), unknown)
        self.assertEqual(
            seen, [node_version(), WtxidRelay(), VerAck(), Ping(4), unknown]
        )

    def test_both_kinds_in_order(self):
        node = handshaken()
        seen = []
        node.peer.subscribe(Message, lambda p, m: seen.append(("all", m)))
        node.peer.subscribe(Ping, lambda p, m: seen.append(("ping", m)))
        node.send(Ping(5))
        self.assertEqual(seen, [("ping", Ping(5)), ("all", Ping(5))])

    def test_unsubscribe(self):
        node = handshaken()
        seen = []
        unsubscribe = node.peer.subscribe(Ping, lambda p, m: seen.append(m))
        node.send(Ping(1))
        unsubscribe()
        node.send(Ping(2))
        self.assertEqual(seen, [Ping(1)])
        unsubscribe()  # twice is harmless

    def test_unsubscribe_during_delivery(self):
        node = handshaken()
        seen = []

        def once(peer, message):
            seen.append(message)
            unsubscribe()

        unsubscribe = node.peer.subscribe(Ping, once)
        node.peer.subscribe(Ping, lambda p, m: seen.append("second"))
        node.send(Ping(1), Ping(2))
        self.assertEqual(seen, [Ping(1), "second", "second"])

    def test_same_callback_twice(self):
        node = handshaken()
        seen = []
        callback = lambda p, m: seen.append(m)  # noqa: E731
        node.peer.subscribe(Ping, callback)
        node.peer.subscribe(Ping, callback)
        node.send(Ping(1))
        self.assertEqual(seen, [Ping(1), Ping(1)])

    def test_nothing_delivered_after_a_fatal_fault(self):
        node = handshaken()
        seen = []
        node.peer.subscribe(Message, lambda p, m: seen.append(m))
        node.send(SendAddrV2())
        self.assertEqual(seen, [])


class SubscriberIsolationTests(SynchronousTestCase):
    """A subscriber that raises costs nothing but its own call."""

    def test_others_still_served_and_the_ping_answered(self):
        node = handshaken()
        seen = []
        node.peer.subscribe(Ping, lambda p, m: seen.append(("first", m)))
        node.peer.subscribe(Ping, lambda p, m: 1 / 0)
        node.peer.subscribe(Message, lambda p, m: seen.append(("all", m)))
        node.send(Ping(5), Ping(6))
        self.assertEqual(seen, [("first", Ping(5)), ("all", Ping(5)),
                                ("first", Ping(6)), ("all", Ping(6))])
        self.assertEqual(node.sent(), [Pong(5), Pong(6)])
        self.assertFalse(node.transport.disconnecting)
        self.assertFalse(node.peer.closed)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)

    def test_logged_with_its_traceback(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        node = handshaken()
        node.peer.subscribe(Ping, lambda p, m: 1 / 0)
        node.send(Ping(5))
        self.flushLoggedErrors(ZeroDivisionError)
        [event] = [e for e in events if "log_failure" in e]
        self.assertIs(event["log_failure"].type, ZeroDivisionError)
        self.assertIn("raised on ping", formatEvent(event))
        self.assertIn(str(node.peer.address), formatEvent(event))


class ExpectTests(SynchronousTestCase):
    """peer.expect(): a Deferred of the next message of a type."""

    def test_next_message(self):
        node = handshaken()
        first = node.peer.expect(Inv)
        inv = Inv([InvVector(2, b"\x11" * 32)])
        node.send(Ping(1), inv, Inv([]))
        self.assertEqual(self.successResultOf(first), inv)
        self.assertEqual(node.peer._subscribers[Inv], [])
        self.assertEqual(node.peer._expected, {})

    def test_decodes_types_nobody_else_wants(self):
        node = handshaken()
        self.assertNotIn("headers", node.protocol.decoder.wanted)
        waiting = node.peer.expect(Headers)
        self.assertIn("headers", node.protocol.decoder.wanted)
        node.send(Headers(()))
        self.assertEqual(self.successResultOf(waiting), Headers(()))
        self.assertNotIn("headers", node.protocol.decoder.wanted)

    def test_timeout_on_the_clock(self):
        node = handshaken()
        waiting = node.peer.expect(Inv, timeout=5)
        node.clock.advance(4.9)
        self.assertNoResult(waiting)
        node.clock.advance(0.1)
        self.failureResultOf(waiting, TimeoutError)
        self.assertEqual(node.peer._subscribers[Inv], [])

    def test_default_timeout(self):
        node = handshaken(idle_timeout=1000)
        waiting = node.peer.expect(Inv)
        node.clock.advance(DEFAULT_EXPECT_TIMEOUT)
        self.failureResultOf(waiting, TimeoutError)

    def test_no_timeout(self):
        node = handshaken(idle_timeout=10_000)
        waiting = node.peer.expect(Inv, timeout=None)
        node.clock.advance(5000)
        self.assertNoResult(waiting)

    def test_cancel(self):
        node = handshaken()
        waiting = node.peer.expect(Inv)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(node.peer._subscribers[Inv], [])
        self.assertEqual(node.clock.getDelayedCalls(), [node.protocol._idle_call])

    def test_connection_lost(self):
        node = handshaken()
        waiting = node.peer.expect(Inv)
        node.connection_lost(ConnectionDone())
        self.failureResultOf(waiting, ClosedByPeer)
        self.assertEqual(node.clock.getDelayedCalls(), [])

    def test_after_close(self):
        node = handshaken()
        node.connection_lost(ConnectionDone())
        self.failureResultOf(node.peer.expect(Inv), ClosedByPeer)

    def test_two_waiters_get_the_same_message(self):
        node = handshaken()
        one, two = node.peer.expect(Ping), node.peer.expect(Message)
        node.send(Ping(3))
        self.assertEqual(self.successResultOf(one), Ping(3))
        self.assertEqual(self.successResultOf(two), Ping(3))


class SyncWithPingTests(SynchronousTestCase):
    """peer.sync_with_ping(): all the peer sent before is delivered."""

    def test_everything_before_the_pong_delivered(self):
        node = handshaken()
        seen = []
        node.peer.subscribe(Inv, lambda p, m: seen.append(m))
        synced = node.peer.sync_with_ping()
        [ping] = node.sent()
        inv = Inv([InvVector(1, bytes(32))])
        node.send(inv)
        self.assertNoResult(synced)
        node.send(Pong(ping.nonce))
        self.assertIsNone(self.successResultOf(synced))
        self.assertEqual(seen, [inv])

    def test_timeout(self):
        node = handshaken()
        synced = node.peer.sync_with_ping(timeout=2)
        node.clock.advance(2)
        self.failureResultOf(synced, TimeoutError)

    def test_waits_for_the_handshake(self):
        node = FakeNode()
        node.raw_sent()
        synced = node.peer.sync_with_ping()
        self.assertEqual(node.sent(), [])
        node.send(node_version(), WtxidRelay(), VerAck())
        ping = node.sent()[-1]
        self.assertIsInstance(ping, Ping)
        self.assertNoResult(synced)
        node.send(Pong(ping.nonce))
        self.assertIsNone(self.successResultOf(synced))


class PeerStateTests(SynchronousTestCase):
    """closed, wants_addrv2 and stats: the connection's state, public."""

    def test_closed(self):
        node = handshaken()
        self.assertFalse(node.peer.closed)
        node.peer.close()
        self.assertFalse(node.peer.closed)  # closing, not closed yet
        node.connection_lost()
        self.assertTrue(node.peer.closed)

    def test_wants_addrv2(self):
        node = FakeNode()
        self.assertFalse(node.peer.wants_addrv2)
        node.handshake(addrv2=True)
        self.assertTrue(node.peer.wants_addrv2)
        node.connection_lost()
        self.assertTrue(node.peer.wants_addrv2)
        other = FakeNode()
        other.handshake(addrv2=False)
        self.assertFalse(other.peer.wants_addrv2)
        with self.assertRaises(AttributeError):
            other.peer.wants_addrv2 = True

    def test_stats(self):
        node = FakeNode()
        self.assertEqual(node.peer.stats, PeerStats(len(node.transport.value()), 0, 1, 0, None))
        node.clock.advance(3)
        node.handshake()
        stats = node.peer.stats
        self.assertEqual(stats.messages_received, 4)  # version, wtxidrelay, sendaddrv2, verack
        self.assertEqual(stats.messages_received, node.protocol.messages_received)
        self.assertEqual(stats.messages_sent, 4)  # version, wtxidrelay, sendaddrv2, verack
        self.assertEqual(stats.bytes_received, node.protocol.bytes_received)
        self.assertEqual(stats.last_received_at, node.clock.seconds())
        node.clock.advance(1)
        node.connection_lost()
        self.assertEqual(node.peer.stats, stats)


class SendTests(SynchronousTestCase):
    """peer.send() and peer.close()."""

    def test_send(self):
        node = handshaken()
        inv = Inv([InvVector(1, bytes(32))])
        node.peer.send(inv)
        self.assertEqual(node.sent(), [inv])

    def test_wtxidrelay_after_verack_refused(self):
        node = handshaken()
        self.assertRaises(ValueError, node.peer.send, WtxidRelay())
        self.assertRaises(ValueError, node.peer.send, SendAddrV2())
        self.assertEqual(node.sent(), [])

    def test_refused_once_our_verack_is_sent(self):
        """Our verack goes out on the peer's version, before its verack."""
        node = FakeNode()
        node.send(node_version())
        node.raw_sent()
        self.assertRaises(ValueError, node.peer.send, SendAddrV2())
        self.assertEqual(node.sent(), [])

    def test_allowed_before_our_verack(self):
        node = FakeNode()
        node.raw_sent()
        node.peer.send(SendAddrV2())
        self.assertEqual(node.sent(), [SendAddrV2()])

    def test_close(self):
        node = handshaken()
        node.peer.close()
        self.assertTrue(node.transport.disconnecting)
        self.assertFalse(node.transport.disconnected)


class ClosedConnectionTests(SynchronousTestCase):
    """
    After the connection ends, nothing points back from the Peer to the
    protocol, nor from a timer to its owner: a crawl's tens of thousands of
    closed connections are freed by reference counting, not left for the
    cyclic collector (they were, before: 150,000 objects per 10,000 nodes).
    """

    def setUp(self):
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)

    def test_protocol_freed_without_the_collector(self):
        node = FakeNode()
        node.handshake()
        peer = node.peer
        asked = peer.getaddr()
        pinged = peer.ping()
        collector = weakref.ref(peer._collector)
        protocol = weakref.ref(node.protocol)
        node.connection_lost()
        del node
        self.assertIsNone(protocol())
        self.failureResultOf(asked, ConnectionClosed)
        self.failureResultOf(pinged, ConnectionClosed)
        del peer._collector
        self.assertIsNone(collector())

    def test_peer_after_the_end(self):
        """send() and close() do nothing once the connection has ended; the
        one-shot results say why it ended."""
        node = FakeNode()
        node.handshake()
        peer = node.peer
        node.connection_lost()
        node.raw_sent()
        peer.send(Ping(7))
        peer.close()
        self.assertEqual(node.raw_sent(), b"")
        self.assertIsInstance(self.successResultOf(peer.whenClosed()), ConnectionClosed)
        self.failureResultOf(peer.getaddr(), ConnectionClosed)
        self.failureResultOf(peer.ping(), ConnectionClosed)


class PeerInfoTests(SynchronousTestCase):
    """PeerInfo, GetAddrResult and the Peer's repr."""

    def test_as_dict(self):
        node = FakeNode()
        info = node.handshake()
        out = info.as_dict()
        self.assertEqual(out["address"], "127.0.0.1:8333")
        self.assertEqual(out["network"], "ipv4")
        self.assertEqual(out["their_view_of_us"], "127.0.0.1:50000")
        self.assertEqual(out["services"], 0x0C09)
        self.assertEqual(out["services_text"], "NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2")
        self.assertEqual(out["user_agent"], "/Satoshi:27.0.0/")
        self.assertIs(out["inbound"], False)
        self.assertEqual(
            set(out),
            {
                "address", "inbound", "version", "services", "user_agent",
                "start_height", "relay", "their_view_of_us", "timestamp", "nonce",
                "clock_offset", "handshake_latency", "network", "services_text",
            },
        )

    def test_frozen(self):
        info = FakeNode().handshake()
        self.assertIsInstance(info, PeerInfo)
        self.assertRaises(AttributeError, setattr, info, "version", 1)

    def test_peer_address_and_repr(self):
        node = FakeNode()
        self.assertEqual(node.peer.address, PEER_ADDRESS)
        self.assertEqual(repr(node.peer), "<Peer 127.0.0.1:8333 connecting>")
        node.handshake()
        self.assertEqual(repr(node.peer), "<Peer 127.0.0.1:8333 handshaken>")
        self.assertEqual(node.peer.info.their_view_of_us, US_ADDRESS)


class OneShotTests(SynchronousTestCase):
    """OneShot: many waiters, one result."""

    def test_many_waiters(self):
        shot = OneShot()
        a, b = shot.when(), shot.when()
        shot.fire("x")
        self.assertEqual((self.successResultOf(a), self.successResultOf(b)), ("x", "x"))
        self.assertEqual(self.successResultOf(shot.when()), "x")

    def test_fires_once(self):
        shot = OneShot()
        shot.fire(1)
        shot.fire(2)
        self.assertEqual(self.successResultOf(shot.when()), 1)

    def test_failure(self):
        shot = OneShot()
        early = shot.when()
        shot.fire(Failure(ConnectionClosed("gone")))
        self.failureResultOf(early, ConnectionClosed)
        self.failureResultOf(shot.when(), ConnectionClosed)

    def test_cancel(self):
        shot = OneShot()
        a, b = shot.when(), shot.when()
        a.cancel()
        self.failureResultOf(a, CancelledError)
        shot.fire(3)
        self.assertEqual(self.successResultOf(b), 3)
