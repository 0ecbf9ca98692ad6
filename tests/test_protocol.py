"""
Tests for bitpeer.protocol.BitcoinProtocol: the handshake in both directions,
Core's ordering rules, the framing faults and the timeouts (PROTOCOL.md
sections 1-4 and 9), driven through a StringTransport on a task.Clock.
"""

import random
import struct
import types

import attr
from twisted.internet import task
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.errors import (
    ClosedByPeer,
    ClosedLocally,
    ConnectionClosed,
    HandlerError,
    FrameBudgetExceeded,
    HandshakeTimeout,
    IdleTimeout,
    ObsoleteVersion,
    ProtocolViolation,
    SelfConnection,
)
from bitpeer.logs import levels
from bitpeer.net.stream import UnsentLimitExceeded
from bitpeer.networks import MAINNET, REGTEST, TESTNET4
from bitpeer.factory import NodeFactory, PeerFactory
from bitpeer.protocol import LISTENER_OPTIONS, BitcoinProtocol, PeerOptions
from bitpeer.wire.address import Network
from bitpeer.wire.encoding import compact_size
from bitpeer.wire.errors import (
    BadMagic,
    FrameBudgetExhausted,
    MalformedMessage,
    Misbehaviour,
    OversizeMessage,
    PayloadTooLarge,
    TooManyEntries,
)
from bitpeer.wire.framing import (
    FrameBudget,
    FrameDecoder,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    encode_frame,
    encode_raw_frame,
)
from bitpeer.wire.messages import (
    MAX_PCT_ADDR_TO_SEND,
    Addr,
    AddrV2,
    Alert,
    FeeFilter,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    NotFound,
    Inv,
    InvVector,
    Message,
    Ping,
    Pong,
    SendAddrV2,
    SendCmpct,
    UnknownMessage,
    VerAck,
    Version,
    WtxidRelay,
)

from .helpers import (
    NODE_NONCE,
    NODE_SERVICES,
    PEER,
    PEER_ADDRESS,
    SEED,
    T0,
    US,
    US_ADDRESS,
    FakeNode,
    Wire,
    i2p_entries,
    ipv4_entries,
    node_version,
    onion_entries,
)

MAGIC = MAINNET.magic


def _factory_of(protocol_class, inbound=False, **arguments):
    """A PeerFactory (or NodeFactory) on a fresh clock whose connections are
    ``protocol_class``."""
    clock = task.Clock()
    clock.advance(T0)

    class Factory(NodeFactory if inbound else PeerFactory):
        def buildProtocol(self, addr):
            protocol = super().buildProtocol(addr)
            protocol.__class__ = protocol_class
            return protocol

    return Factory(clock, options=PeerOptions(), random=random.Random(SEED), **arguments)


def hand_built_version(user_agent_length, version=70016, nonce=NODE_NONCE):
    """A version payload with a user agent of any length (the codec refuses >256)."""
    head = Version(version=version, nonce=nonce, user_agent="").encode_payload()
    # 80 bytes of fixed fields, then the user agent (empty: one 0x00 byte).
    assert head[80] == 0
    return (
        head[:80]
        + compact_size(user_agent_length)
        + b"u" * user_agent_length
        + head[81:]
    )


class OutboundVersionTests(SynchronousTestCase):
    """What we say first when we dial (PROTOCOL.md 1, 2.1, 9.1, 9.11, 9.12)."""

    def test_first_bytes_are_magic_and_version(self):
        """A v2-enabled Core stays on v1 only if the first 16 bytes are these."""
        node = FakeNode()
        self.assertEqual(node.transport.value()[:16], MAGIC + b"version\0\0\0\0\0")

    def test_first_bytes_follow_the_network(self):
        node = FakeNode(network=TESTNET4)
        self.assertEqual(
            node.transport.value()[:16], bytes.fromhex("1c163f28") + b"version" + bytes(5)
        )

    def test_our_version_fields(self):
        options = PeerOptions(user_agent="/crawler:9.9/", start_height=123_456)
        node = FakeNode(options=options)
        [version] = node.sent()
        self.assertEqual(version.version, 70016)
        self.assertEqual(version.services, 0)
        self.assertIs(version.relay, False)
        self.assertEqual(version.addr_recv, PEER_ADDRESS)
        self.assertEqual(version.timestamp, T0)
        self.assertEqual(version.user_agent, "/crawler:9.9/")
        self.assertEqual(version.start_height, 123_456)
        self.assertEqual(version.nonce, random.Random(SEED).getrandbits(64))

    def test_default_user_agent(self):
        node = FakeNode()
        [version] = node.sent()
        self.assertRegex(version.user_agent, r"^/bitpeer:[0-9.]+/$")
        self.assertEqual(version.start_height, 0)

    def test_nonce_differs_per_connection(self):
        first = FakeNode()
        second = FakeNode(factory=first.factory)
        [v1], [v2] = first.sent(), second.sent()
        self.assertNotEqual(v1.nonce, v2.nonce)
        self.assertEqual(first.factory.nonces, {v1.nonce, v2.nonce})

    def test_only_version_before_the_peer_speaks(self):
        node = FakeNode()
        self.assertEqual(len(node.sent()), 1)
        node.clock.advance(5)
        self.assertEqual(node.sent(), [])


class OutboundHandshakeTests(SynchronousTestCase):
    """The handshake as the dialling side (PROTOCOL.md 2.4, 3.1)."""

    def setUp(self):
        self.node = FakeNode()
        self.node.raw_sent()

    def test_reply_to_70016(self):
        """wtxidrelay, sendaddrv2, verack: in that order, before any verack."""
        self.node.send(node_version(version=70016))
        self.assertEqual(self.node.sent(), [WtxidRelay(), SendAddrV2(), VerAck()])

    def test_reply_to_newer_version(self):
        self.node.send(node_version(version=70099))
        self.assertEqual(self.node.sent(), [WtxidRelay(), SendAddrV2(), VerAck()])

    def test_reply_to_70015(self):
        """No wtxidrelay below WTXID_RELAY_VERSION."""
        self.node.send(node_version(version=70015))
        self.assertEqual(self.node.sent(), [SendAddrV2(), VerAck()])

    def test_obsolete_version(self):
        d = self.node.peer.whenHandshaken()
        self.node.send(node_version(version=31799))
        self.assertEqual(self.node.sent(), [])
        self.assertTrue(self.node.transport.disconnected)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ObsoleteVersion)
        self.assertEqual(error.reason, "obsolete-version")
        self.failureResultOf(d, ObsoleteVersion)

    def test_oldest_accepted_version(self):
        self.node.send(node_version(version=31800), VerAck())
        self.assertEqual(self.node.sent(), [SendAddrV2(), VerAck()])
        self.assertEqual(self.node.peer.info.version, 31800)

    def test_handshaken_only_after_verack(self):
        d = self.node.peer.whenHandshaken()
        self.node.send(node_version(), WtxidRelay(), SendAddrV2())
        self.assertNoResult(d)
        self.assertIsNone(self.node.peer.info)
        self.node.send(VerAck())
        info = self.successResultOf(d)
        self.assertIs(self.node.peer.info, info)

    def test_peer_info(self):
        node = self.node
        d = node.peer.whenHandshaken()
        node.clock.advance(0.25)
        node.send(node_version(relay=True))
        node.clock.advance(0.5)
        node.send(VerAck())
        info = self.successResultOf(d)
        self.assertEqual(info.address, PEER_ADDRESS)
        self.assertIs(info.inbound, False)
        self.assertEqual(info.version, 70016)
        self.assertEqual(info.services, NODE_SERVICES)
        self.assertEqual(info.user_agent, "/Satoshi:27.0.0/")
        self.assertEqual(info.start_height, 840_000)
        self.assertIs(info.relay, True)
        self.assertEqual(info.their_view_of_us, US_ADDRESS)
        self.assertEqual(info.timestamp, T0 + 7)
        self.assertEqual(info.nonce, NODE_NONCE)
        # Its clock says T0+7 when ours says T0+0.25.
        self.assertEqual(info.clock_offset, 6.75)
        self.assertEqual(info.handshake_latency, 0.75)
        self.assertEqual(info.services_text, "NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2")

    def test_version_without_relay_byte(self):
        """The BIP37 byte is optional; absent, relay is None."""
        payload = node_version().encode_payload()[:-1]
        self.node.feed(encode_raw_frame(MAGIC, "version", payload))
        self.node.send(VerAck())
        self.assertIsNone(self.node.peer.info.relay)

    def test_messages_before_version_are_ignored(self):
        d = self.node.peer.whenHandshaken()
        self.node.send(VerAck(), Ping(42), GetAddr(), WtxidRelay(), SendAddrV2())
        self.assertEqual(self.node.sent(), [])
        self.assertNoResult(d)
        self.assertFalse(self.node.transport.disconnecting)
        # The early verack did not count: a real one is still needed.
        self.node.send(node_version())
        self.assertEqual(self.node.sent(), [WtxidRelay(), SendAddrV2(), VerAck()])
        self.assertNoResult(d)
        self.node.send(VerAck())
        self.successResultOf(d)

    def test_second_version_is_ignored(self):
        self.node.send(node_version(user_agent="/first/"))
        self.node.raw_sent()
        self.node.send(node_version(user_agent="/second/", version=70015))
        self.assertEqual(self.node.sent(), [])
        self.node.send(VerAck())
        self.assertEqual(self.node.peer.info.user_agent, "/first/")
        self.assertEqual(self.node.peer.info.version, 70016)

    def test_second_verack_is_ignored(self):
        info = self.node.handshake()
        self.node.send(VerAck())
        self.assertEqual(self.node.sent(), [])
        self.assertFalse(self.node.transport.disconnecting)
        self.assertIs(self.node.peer.info, info)

    def test_wtxidrelay_after_verack_is_a_violation(self):
        d = self.node.peer.whenHandshaken()
        self.node.handshake()
        self.node.send(WtxidRelay())
        self.assertTrue(self.node.transport.disconnected)
        self.successResultOf(d)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertIn("wtxidrelay received after verack", str(error))
        self.assertIsNone(error.error)

    def test_sendaddrv2_after_verack_is_a_violation(self):
        d = self.node.peer.whenHandshaken()
        self.node.handshake()
        self.node.send(SendAddrV2())
        self.assertTrue(self.node.transport.disconnected)
        self.successResultOf(d)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertIn("sendaddrv2 received after verack", str(error))

    def test_messages_after_a_violation_are_not_processed(self):
        self.node.handshake()
        seen = []
        self.node.peer.subscribe(Ping, lambda peer, m: seen.append(m))
        self.node.send(WtxidRelay(), Ping(7))
        self.assertEqual(self.node.sent(), [])
        self.assertEqual(seen, [])

    def test_tolerates_what_core_sends_after_the_handshake(self):
        """PROTOCOL.md 3.2 and 9.14: ignore sendcmpct, feefilter, alert, unknown."""
        self.node.handshake()
        self.node.send(
            SendCmpct(False, 2),
            FeeFilter(1000),
            Alert(b"\x01\x02"),
            UnknownMessage("sendtxrcncl", b"\x01\x00\x00\x00" + bytes(8)),
            Inv([InvVector(2, bytes(32))]),
            Ping(99),
        )
        self.assertEqual(self.node.sent(), [Pong(99)])
        self.assertFalse(self.node.transport.disconnecting)

    def test_self_connection(self):
        """A version carrying our own nonce: we dialled ourselves."""
        node = FakeNode()
        [ours] = node.sent()
        d = node.peer.whenHandshaken()
        node.send(node_version(nonce=ours.nonce))
        self.assertEqual(node.sent(), [])
        self.assertTrue(node.transport.disconnected)
        self.assertIsInstance(node.close_error(self), SelfConnection)
        self.failureResultOf(d, SelfConnection)

    def test_nonce_forgotten_after_handshake(self):
        """Core's CheckIncomingNonce looks only at unfinished handshakes."""
        nonces = self.node.factory.nonces
        self.assertEqual(len(nonces), 1)
        self.node.handshake()
        self.assertEqual(nonces, set())

    def test_nonce_forgotten_when_closed(self):
        nonces = self.node.factory.nonces
        self.node.connection_lost(ConnectionDone())
        self.assertEqual(nonces, set())


class WantedTypesTests(SynchronousTestCase):
    """
    The protocol has its decoder keep whole only the types it handles and
    those the embedder subscribed to; the rest are discarded unbuffered.
    """

    def setUp(self):
        self.node = FakeNode()
        self.node.handshake()

    def test_ignored_types_skipped(self):
        before = self.node.protocol.decoder.skipped
        self.node.send(Inv([InvVector(1, bytes(32))]))
        self.node.feed(encode_raw_frame(MAGIC, "tx", bytes(300)))
        self.node.feed(encode_raw_frame(MAGIC, "newthing", bytes(30)))
        self.assertEqual(self.node.protocol.decoder.skipped, before + 3)
        self.assertFalse(self.node.transport.disconnecting)

    def test_handled_types_wanted(self):
        wanted = self.node.protocol.decoder.wanted
        for command in ("version", "verack", "sendaddrv2", "wtxidrelay", "ping", "pong",
                        "addr", "addrv2", "getaddr", "getheaders", "getdata"):
            self.assertIn(command, wanted)
        for command in ("inv", "block", "tx", "headers", "newthing"):
            self.assertNotIn(command, wanted)

    def test_subscriptions_add_types(self):
        wanted = self.node.protocol.decoder.wanted
        seen = []
        unsubscribe = self.node.peer.subscribe(Inv, lambda p, m: seen.append(m))
        self.assertIn("inv", wanted)
        self.assertNotIn("notfound", wanted)
        self.assertNotIn("newthing", wanted)
        self.node.send(Inv([InvVector(1, bytes(32))]))
        self.assertEqual(len(seen), 1)
        unsubscribe()
        self.assertNotIn("inv", wanted)
        self.node.send(Inv([InvVector(1, bytes(32))]))
        self.assertEqual(len(seen), 1)
        self.node.peer.subscribe(UnknownMessage, lambda p, m: seen.append(m))
        self.assertIn("newthing", wanted)
        self.assertNotIn("inv", wanted)
        self.node.peer.subscribe(Message, lambda p, m: seen.append(m))
        self.assertIn("inv", wanted)

    def test_decoder_released_on_close(self):
        """connectionLost breaks decoder -> protocol (no cycle left)."""
        decoder = self.node.protocol.decoder
        self.node.connection_lost()
        self.assertIsNone(decoder.on_evicted)
        self.assertIsNone(decoder.wanted)


class FrameBudgetProtocolTests(SynchronousTestCase):
    """
    The connections of one factory share its FrameBudget: a partial frame
    holds its reservation until it completes or its connection ends, and
    the connection whose frame is largest when the budget fills is closed
    with FrameBudgetExceeded; the others carry on.
    """

    def setUp(self):
        self.budget = FrameBudget(100_000)
        clock = task.Clock()
        clock.advance(T0)
        self.factory = PeerFactory(clock, MAINNET, random=random.Random(SEED),
                                   frame_budget=self.budget)

    def node(self):
        node = FakeNode(factory=self.factory)
        node.handshake()
        return node

    def test_reserved_and_released_with_the_frame(self):
        node = self.node()
        frame = encode_raw_frame(MAGIC, "addr", bytes(30_003))
        node.feed(frame[:5000])
        self.assertEqual(self.budget.used, 30_003)
        node.feed(frame[5000:])
        self.assertEqual(self.budget.used, 0)

    def test_released_when_the_connection_is_lost(self):
        node = self.node()
        node.feed(encode_raw_frame(MAGIC, "addrv2", bytes(50_000))[:5000])
        self.assertEqual(self.budget.used, 50_000)
        node.connection_lost()
        self.assertEqual((self.budget.used, self.budget.holders), (0, 0))

    def test_largest_connection_evicted(self):
        honest, trickler = self.node(), self.node()
        honest.feed(encode_raw_frame(MAGIC, "addrv2", bytes(20_000))[:5000])
        trickler.feed(encode_raw_frame(MAGIC, "addrv2", bytes(70_000))[:60_000])
        asked = trickler.peer.getaddr()
        third = self.node()
        third.feed(encode_raw_frame(MAGIC, "addrv2", bytes(20_000))[:5000])
        # The trickler's connection is closed at once, from inside third's
        # dataReceived; its buffer is already freed.
        self.assertTrue(trickler.transport.disconnecting)
        self.assertEqual(trickler.protocol.decoder.buffered, 0)
        error = trickler.close_error(self)
        self.assertIsInstance(error, FrameBudgetExceeded)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertEqual(error.reason, "frame-budget")
        self.assertIsInstance(error.error, FrameBudgetExhausted)
        self.assertIn("100000", str(error))
        self.assertIs(self.failureResultOf(asked, FrameBudgetExceeded).value, error)
        for node in (honest, third):
            self.assertFalse(node.transport.disconnecting)
        self.assertEqual(self.budget.used, 40_000)

    def test_asker_wanting_the_most_is_closed(self):
        a, b = self.node(), self.node()
        a.feed(encode_raw_frame(MAGIC, "addrv2", bytes(50_000))[:5000])
        b.feed(encode_raw_frame(MAGIC, "addrv2", bytes(50_000))[:5000])
        greedy = self.node()
        greedy.feed(encode_raw_frame(MAGIC, "addrv2", bytes(60_000))[:5000])
        error = greedy.close_error(self)
        self.assertIsInstance(error, FrameBudgetExceeded)
        self.assertFalse(a.transport.disconnecting or b.transport.disconnecting)
        self.assertEqual(self.budget.used, 100_000)


class FramingFaultTests(SynchronousTestCase):
    """How bad bytes are handled (PROTOCOL.md 1, 9.14)."""

    def setUp(self):
        self.node = FakeNode()
        self.node.raw_sent()

    def test_wrong_magic(self):
        self.node.feed(encode_raw_frame(REGTEST.magic, "version", b""))
        self.assertTrue(self.node.transport.disconnected)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertIsInstance(error.error, BadMagic)
        self.assertEqual(error.reason, "protocol-error")

    def test_wrong_magic_after_handshake(self):
        self.node.handshake()
        bad = encode_raw_frame(REGTEST.magic, "ping", bytes(8))
        self.node.feed(self.node.frame(Ping(1)) + bad)
        # The good frame before the fault is still processed.
        self.assertEqual(self.node.sent(), [Pong(1)])
        self.assertIsInstance(self.node.close_error(self).error, BadMagic)

    def test_oversize_header_closes_without_buffering(self):
        header = MAGIC + b"block".ljust(12, b"\0") + struct.pack("<I", 4_000_001) + bytes(4)
        self.node.feed(header)
        self.assertTrue(self.node.transport.disconnected)
        self.assertEqual(self.node.protocol.decoder.buffered, 0)
        self.node.feed(bytes(100_000))
        self.assertEqual(self.node.protocol.decoder.buffered, 0)
        error = self.node.close_error(self)
        self.assertIsInstance(error.error, PayloadTooLarge)
        self.assertIn("4000001", str(error))

    def test_largest_payload_is_accepted(self):
        """
        A 4 MB block is legal, and of no use to the protocol: its payload is
        discarded as it arrives, not buffered, and the next frame is read.
        """
        header = (
            MAGIC
            + b"block".ljust(12, b"\0")
            + struct.pack("<I", MAX_PROTOCOL_MESSAGE_LENGTH)
            + bytes(4)
        )
        self.node.feed(header + bytes(1000))
        self.assertFalse(self.node.transport.disconnecting)
        self.assertEqual(self.node.protocol.decoder.buffered, 0)
        self.node.feed(bytes(MAX_PROTOCOL_MESSAGE_LENGTH - 1000))
        self.assertEqual(self.node.protocol.decoder.skipped, 1)
        self.node.handshake()
        self.node.send(Ping(6))
        self.assertEqual(self.node.sent(), [Pong(6)])

    def test_subscribed_type_is_kept_whole(self):
        """An embedder subscribed to a type the protocol ignores gets it."""
        self.node.handshake()
        seen = []
        self.node.peer.subscribe(UnknownMessage, lambda peer, m: seen.append(m))
        self.node.feed(encode_raw_frame(MAGIC, "futurecmd", b"\x01" * 5000))
        self.assertEqual(seen, [UnknownMessage("futurecmd", b"\x01" * 5000)])
        self.assertEqual(self.node.protocol.decoder.skipped, 0)

    def test_version_over_its_maximum_is_dropped(self):
        """
        A version longer than its fields can be (344 bytes) is lost from its
        header, as Core loses one with an oversize user agent; the timeout
        names it.
        """
        d = self.node.peer.whenHandshaken()
        payload = hand_built_version(300)
        self.assertEqual(len(payload), 388)
        self.node.feed(encode_raw_frame(MAGIC, "version", payload)[:30])
        self.assertEqual(self.node.protocol.decoder.buffered, 0)
        self.node.feed(encode_raw_frame(MAGIC, "version", payload)[30:])
        self.assertFalse(self.node.transport.disconnecting)
        self.node.clock.advance(20)
        error = self.node.close_error(self)
        self.assertIsInstance(error.error, OversizeMessage)
        self.assertEqual(error.error.message_type, "version")
        self.failureResultOf(d, ProtocolViolation)

    def test_bad_checksum_drops_one_message(self):
        self.node.handshake()
        frame = bytearray(self.node.frame(Ping(5)))
        frame[20] ^= 0xFF
        self.node.feed(bytes(frame))
        self.assertEqual(self.node.sent(), [])
        self.assertFalse(self.node.transport.disconnecting)
        self.node.send(Ping(6))
        self.assertEqual(self.node.sent(), [Pong(6)])

    def test_bad_checksum_on_version(self):
        frame = bytearray(self.node.frame(node_version()))
        frame[-1] ^= 0x01
        self.node.feed(bytes(frame) + self.node.frame(node_version(user_agent="/ok/")))
        self.assertEqual(self.node.sent(), [WtxidRelay(), SendAddrV2(), VerAck()])
        self.node.send(VerAck())
        self.assertEqual(self.node.peer.info.user_agent, "/ok/")

    def test_invalid_message_type_drops_one_message(self):
        self.node.handshake()
        self.node.feed(encode_raw_frame(MAGIC, "pi\x01g", bytes(8)))
        self.node.send(Ping(8))
        self.assertEqual(self.node.sent(), [Pong(8)])
        self.assertFalse(self.node.transport.disconnecting)

    def test_malformed_payload_drops_one_message(self):
        self.node.handshake()
        self.node.feed(encode_raw_frame(MAGIC, "ping", b"\x01\x02\x03"))
        self.node.send(Ping(9))
        self.assertEqual(self.node.sent(), [Pong(9)])
        self.assertFalse(self.node.transport.disconnecting)

    def test_addr_with_1001_entries_is_misbehaviour(self):
        self.node.handshake()
        payload = compact_size(1001) + bytes(30) * 1001
        self.node.feed(encode_raw_frame(MAGIC, "addr", payload))
        self.assertTrue(self.node.transport.disconnected)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertIsInstance(error.error, Misbehaviour)
        # Known from the header: the payload was never buffered.
        self.assertIsInstance(error.error, TooManyEntries)

    def test_addr_with_1000_entries_is_fine(self):
        self.node.handshake()
        self.node.send(Addr(ipv4_entries(1000)))
        self.assertFalse(self.node.transport.disconnecting)

    def test_version_with_oversize_user_agent(self):
        """
        Core loses the version, ignores everything after, times out.  The
        timeout names the dropped version as the cause.
        """
        d = self.node.peer.whenHandshaken()
        # 257 bytes of user agent, then nothing: within version's maximum,
        # so the codec reads it and refuses the user agent, as Core does.
        payload = hand_built_version(257)[:-5]
        self.node.feed(encode_raw_frame(MAGIC, "version", payload))
        self.assertEqual(self.node.sent(), [])
        self.assertFalse(self.node.transport.disconnecting)
        self.node.send(VerAck(), Ping(3))
        self.assertEqual(self.node.sent(), [])
        self.assertNoResult(d)
        self.node.clock.advance(19.9)
        self.assertFalse(self.node.transport.disconnecting)
        self.node.clock.advance(0.1)
        self.assertTrue(self.node.transport.disconnected)
        error = self.node.close_error(self)
        self.assertIsInstance(error, ProtocolViolation)
        self.assertIn("no version/verack within 20 s", str(error))
        self.assertIsInstance(error.error, MalformedMessage)
        self.assertEqual((error.error.message_type, error.error.field), ("version", "user_agent"))
        self.assertIs(self.failureResultOf(d, ProtocolViolation).value, error)

    def test_version_with_256_byte_user_agent(self):
        self.node.feed(encode_raw_frame(MAGIC, "version", hand_built_version(256)))
        self.node.send(VerAck())
        self.assertEqual(self.node.peer.info.user_agent, "u" * 256)

    def test_garbage(self):
        self.node.feed(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        self.assertTrue(self.node.transport.disconnected)
        self.assertIsInstance(self.node.close_error(self).error, BadMagic)

    def test_short_garbage_waits_for_a_header(self):
        self.node.feed(b"\x00" * 23)
        self.assertFalse(self.node.transport.disconnecting)
        self.node.feed(b"\x00")
        self.assertTrue(self.node.transport.disconnected)

    def test_one_byte_at_a_time(self):
        data = b"".join(
            self.node.frame(m)
            for m in (node_version(), WtxidRelay(), SendAddrV2(), VerAck(), Ping(11))
        )
        d = self.node.peer.whenHandshaken()
        for i in range(len(data)):
            self.node.feed(data[i : i + 1])
        info = self.successResultOf(d)
        self.assertEqual(info.user_agent, "/Satoshi:27.0.0/")
        self.assertEqual(
            self.node.sent(), [WtxidRelay(), SendAddrV2(), VerAck(), Pong(11)]
        )
        self.assertEqual(self.node.protocol.bytes_received, len(data))

    def test_byte_counters(self):
        node = FakeNode()
        self.assertEqual(node.protocol.bytes_sent, len(node.raw_sent()))
        node.send(Ping(1))
        self.assertEqual(node.protocol.bytes_received, 24 + 8)


class TimeoutTests(SynchronousTestCase):
    """Timeouts run on the injected clock."""

    def test_handshake_timeout(self):
        node = FakeNode()
        d = node.peer.whenHandshaken()
        node.send(node_version())
        node.clock.advance(19.999)
        self.assertFalse(node.transport.disconnecting)
        node.clock.advance(0.001)
        self.assertTrue(node.transport.disconnected)
        error = node.close_error(self)
        self.assertIsInstance(error, HandshakeTimeout)
        self.assertEqual(error.reason, "handshake-timeout")
        self.failureResultOf(d, HandshakeTimeout)

    def test_handshake_timeout_is_configurable(self):
        node = FakeNode(options=PeerOptions(handshake_timeout=5))
        node.clock.advance(5)
        self.assertIsInstance(node.close_error(self), HandshakeTimeout)

    def test_no_handshake_timeout_after_handshake(self):
        node = FakeNode()
        node.handshake()
        node.clock.advance(100)
        self.assertFalse(node.transport.disconnecting)

    def test_idle_timeout(self):
        node = FakeNode()
        node.handshake()
        node.clock.advance(179)
        node.send(Ping(1))  # anything received restarts the idle timer
        node.clock.advance(179)
        self.assertFalse(node.transport.disconnecting)
        node.clock.advance(1)
        self.assertTrue(node.transport.disconnected)
        error = node.close_error(self)
        self.assertIsInstance(error, IdleTimeout)
        self.assertEqual(error.reason, "idle-timeout")

    def test_idle_timeout_counts_from_the_last_byte(self):
        node = FakeNode(options=PeerOptions(idle_timeout=10, handshake_timeout=60))
        frame = node.frame(node_version())
        node.clock.advance(9)
        node.feed(frame[:1])
        node.clock.advance(9)
        self.assertFalse(node.transport.disconnecting)
        node.clock.advance(1)
        self.assertIsInstance(node.close_error(self), IdleTimeout)

    def test_timers_cancelled_on_close(self):
        node = FakeNode()
        node.connection_lost(ConnectionDone())
        self.assertEqual(node.clock.getDelayedCalls(), [])


class CloseTests(SynchronousTestCase):
    """Every waiter hears why the connection ended."""

    def test_all_waiters_before_handshake(self):
        node = FakeNode()
        handshake, getaddr, ping = (
            node.peer.whenHandshaken(),
            node.peer.getaddr(),
            node.peer.ping(),
        )
        closed = node.peer.whenClosed()
        node.connection_lost(ConnectionDone("bye"))
        for d in (handshake, getaddr, ping):
            failure = self.failureResultOf(d, ConnectionClosed)
            self.assertIn("bye", str(failure.value))
        self.assertIsInstance(self.successResultOf(closed), ConnectionClosed)

    def test_all_waiters_get_our_reason(self):
        node = FakeNode()
        waiters = [node.peer.whenHandshaken(), node.peer.getaddr(), node.peer.ping()]
        node.clock.advance(20)
        self.assertTrue(node.transport.disconnected)
        for d in waiters:
            self.assertNoResult(d)
        node.connection_lost()
        for d in waiters:
            self.failureResultOf(d, HandshakeTimeout)

    def test_waiters_after_handshake(self):
        node = FakeNode()
        node.handshake()
        getaddr, ping = node.peer.getaddr(), node.peer.ping()
        node.send(SendAddrV2())
        node.connection_lost()
        self.failureResultOf(getaddr, ProtocolViolation)
        self.failureResultOf(ping, ProtocolViolation)
        self.assertEqual(node.clock.getDelayedCalls(), [])

    def test_close_by_us(self):
        node = FakeNode()
        node.handshake()
        node.peer.close()
        self.assertTrue(node.transport.disconnecting)
        self.assertFalse(node.transport.disconnected)  # polite: writes are flushed
        error = node.close_error(self)
        self.assertIsInstance(error, ClosedLocally)
        self.assertIsInstance(error, ConnectionClosed)
        self.assertEqual(error.reason, "closed-locally")
        self.assertEqual(str(error), "closed by us")

    def test_closed_by_peer(self):
        node = FakeNode()
        node.handshake()
        closed = node.peer.whenClosed()
        self.assertNoResult(closed)
        node.connection_lost(ConnectionDone())
        error = self.successResultOf(closed)
        self.assertIsInstance(error, ClosedByPeer)
        self.assertEqual(error.reason, "closed")
        self.assertEqual(str(error), "connection closed by peer: Connection was closed cleanly.")

    def test_transport_closed_by_us(self):
        """Closing the transport itself (as Twisted's ClientService does on
        stopService) is a local close, not the peer's."""
        node = FakeNode()
        node.handshake()
        node.transport.loseConnection()
        error = node.close_error(self)
        self.assertIsInstance(error, ClosedLocally)
        self.assertIn("closed locally", str(error))

    def test_transport_aborted_by_us(self):
        node = FakeNode()
        node.handshake()
        node.connection_lost(ConnectionAborted())
        self.assertIsInstance(self.successResultOf(node.peer.whenClosed()), ClosedLocally)

    def test_transport_gave_up_on_a_peer_that_does_not_read(self):
        """StreamTransport's abort of a peer that does not read (a kind of
        ConnectionAborted) is ours too, and says why."""
        node = FakeNode()
        node.handshake()
        node.connection_lost(UnsentLimitExceeded("more than 4194304 bytes waiting"))
        error = self.successResultOf(node.peer.whenClosed())
        self.assertIsInstance(error, ClosedLocally)
        self.assertIn("more than 4194304 bytes waiting", str(error))

    def test_peer_reset(self):
        node = FakeNode()
        node.handshake()
        node.connection_lost(ConnectionLost("connection reset by peer"))
        error = self.successResultOf(node.peer.whenClosed())
        self.assertIsInstance(error, ClosedByPeer)
        self.assertIn("reset by peer", str(error))

    def test_exception_caught_by_the_transport(self):
        """A reactor that catches an exception of ours passes it to
        connectionLost: that is our handler's fault, not the peer's."""
        node = FakeNode()
        node.connection_lost(ZeroDivisionError("division by zero"))
        error = self.successResultOf(node.peer.whenClosed())
        self.assertIsInstance(error, HandlerError)
        self.assertEqual(error.reason, "handler-error")
        self.assertEqual(str(error), "our code raised: ZeroDivisionError: division by zero")

    def test_hook_raising_closes_with_handler_error(self):
        class Broken(BitcoinProtocol):
            def handshake_done(self, info):
                1 / 0

        node = FakeNode(factory=_factory_of(Broken))
        node.send(node_version(), WtxidRelay(), VerAck())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(node.transport.disconnected)  # aborted
        error = node.close_error(self)
        self.assertIsInstance(error, HandlerError)
        self.assertEqual(str(error), "our handler raised: ZeroDivisionError: division by zero")

    def test_first_reason_wins(self):
        node = FakeNode()
        node.send(node_version(version=100))
        node.peer.close()
        self.assertIsInstance(node.close_error(self), ObsoleteVersion)

    def test_closing_is_logged_at_debug_level_only(self):
        """
        Each connection's end is a debug line, built only when the level
        filter lets debug through (--verbose): otherwise the protocol does
        not even call its logger (the filter would drop the event, but
        building it costs more than the rest of closing).
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.addCleanup(levels.clearLogLevels)

        def close_one():
            """Close a connection; the debug calls its protocol made."""
            node = FakeNode()
            calls = []
            real = node.protocol.log

            def debug(format, **fields):
                calls.append(format)
                real.debug(format, **fields)

            node.protocol.log = types.SimpleNamespace(debug=debug)
            node.connection_lost(ConnectionDone())
            return [f for f in calls if f.endswith("closed: {error}")]

        self.assertFalse(levels.debug)
        self.assertEqual(close_one(), [])
        levels.setLogLevelForNamespace("bitpeer", LogLevel.debug)
        self.assertTrue(levels.debug)
        self.assertEqual(len(close_one()), 1)
        [event] = [e for e in events if e.get("log_format", "").endswith("closed: {error}")]
        self.assertIs(event["log_level"], LogLevel.debug)
        levels.clearLogLevels()
        self.assertFalse(levels.debug)

    def test_when_closed_after_close(self):
        node = FakeNode()
        node.connection_lost(ConnectionDone())
        first = self.successResultOf(node.peer.whenClosed())
        self.assertIs(self.successResultOf(node.peer.whenClosed()), first)
        self.failureResultOf(node.peer.whenHandshaken(), ConnectionClosed)


class InboundTests(SynchronousTestCase):
    """NodeFactory connections: we were dialled (PROTOCOL.md 2.4, 4.1)."""

    def setUp(self):
        self.book = ipv4_entries(100)
        self.node = FakeNode(inbound=True, address_source=lambda: self.book)

    def dial(self, version=70016, addrv2=True, **fields):
        """The dialler's side of the handshake; returns our reply."""
        self.node.send(node_version(version=version, **fields))
        reply = self.node.sent()
        extras = ([WtxidRelay()] if version >= 70016 else []) + (
            [SendAddrV2()] if addrv2 else []
        )
        self.node.send(*extras, VerAck())
        return reply

    def test_silent_until_version(self):
        self.assertEqual(self.node.transport.value(), b"")
        self.node.clock.advance(10)
        self.node.send(Ping(1), GetAddr(), VerAck())
        self.assertEqual(self.node.transport.value(), b"")

    def test_reply_to_70016(self):
        reply = self.dial(70016)
        self.assertEqual(
            [type(m) for m in reply], [Version, WtxidRelay, SendAddrV2, VerAck]
        )
        version = reply[0]
        self.assertEqual(version.version, 70016)
        self.assertEqual(version.services, 0)
        self.assertIs(version.relay, False)
        self.assertEqual(version.addr_recv, PEER_ADDRESS)
        self.assertEqual(version.nonce, random.Random(SEED).getrandbits(64))
        self.assertEqual(version.timestamp, T0)

    def test_inbound_reply_starts_with_version(self):
        self.node.send(node_version())
        self.assertEqual(self.node.transport.value()[:16], MAGIC + b"version" + bytes(5))

    def test_reply_to_70015(self):
        reply = self.dial(70015, addrv2=False)
        self.assertEqual([type(m) for m in reply], [Version, VerAck])

    def test_handshake_info(self):
        d = self.node.peer.whenHandshaken()
        self.dial()
        info = self.successResultOf(d)
        self.assertIs(info.inbound, True)
        self.assertEqual(info.address, PEER_ADDRESS)
        self.assertEqual(info.their_view_of_us, US_ADDRESS)

    def test_our_nonce_is_not_a_pending_nonce(self):
        """Only outbound nonces count for CheckIncomingNonce."""
        self.assertEqual(self.node.factory.nonces, set())

    def test_getaddr_before_verack_is_ignored(self):
        self.node.send(node_version(), WtxidRelay(), SendAddrV2(), GetAddr(), VerAck())
        self.assertEqual(
            [type(m) for m in self.node.sent()], [Version, WtxidRelay, SendAddrV2, VerAck]
        )
        # Ignored, not remembered: a getaddr after verack is still answered.
        self.node.send(GetAddr())
        self.assertEqual(len(self.node.sent()), 1)

    def test_getaddr_answered_once(self):
        self.dial(addrv2=False)
        self.node.raw_sent()
        self.node.send(GetAddr())
        [answer] = self.node.sent()
        self.assertIsInstance(answer, Addr)
        self.assertEqual(len(answer.addresses), 100 * MAX_PCT_ADDR_TO_SEND // 100)
        self.assertEqual(len(set(answer.addresses)), 23)
        self.assertLessEqual(set(answer.addresses), set(self.book))
        self.node.send(GetAddr())
        self.assertEqual(self.node.sent(), [])
        self.assertFalse(self.node.transport.disconnecting)

    def test_getaddr_answer_capped_at_1000(self):
        self.book = ipv4_entries(5000)
        self.dial()
        self.node.raw_sent()
        self.node.send(GetAddr())
        [answer] = self.node.sent()
        self.assertEqual(len(answer.addresses), 1000)

    def test_getaddr_answer_just_under_the_cap(self):
        self.book = ipv4_entries(4347)  # 23% is 999.81
        self.dial()
        self.node.raw_sent()
        self.node.send(GetAddr())
        [answer] = self.node.sent()
        self.assertEqual(len(answer.addresses), 999)

    def test_addrv2_when_asked(self):
        self.book = ipv4_entries(40) + onion_entries(30) + i2p_entries(30)
        self.dial(addrv2=True)
        self.node.raw_sent()
        self.node.send(GetAddr())
        [answer] = self.node.sent()
        self.assertIsInstance(answer, AddrV2)
        self.assertEqual(len(answer.addresses), 23)
        self.assertLessEqual(set(answer.addresses), set(self.book))

    def test_addr_filters_networks_v1_cannot_carry(self):
        self.book = ipv4_entries(40) + onion_entries(30) + i2p_entries(30)
        self.dial(addrv2=False)
        self.node.raw_sent()
        self.node.send(GetAddr())
        [answer] = self.node.sent()
        self.assertIsInstance(answer, Addr)
        self.assertTrue(answer.addresses)
        self.assertLess(len(answer.addresses), 23)
        self.assertLessEqual(set(answer.addresses), set(self.book[:40]))
        for entry in answer.addresses:
            self.assertEqual(entry.address.network, Network.IPV4)

    def test_addr_with_only_onion_book(self):
        self.book = onion_entries(100)
        self.dial(addrv2=False)
        self.node.raw_sent()
        self.node.send(GetAddr())
        for message in self.node.sent():
            self.assertEqual(message, Addr([]))

    def test_without_address_source_getaddr_is_unanswered(self):
        node = FakeNode(inbound=True)
        node.send(node_version(), VerAck())
        node.raw_sent()
        node.send(GetAddr())
        self.assertEqual(node.sent(), [])

    def test_ping_answered_after_handshake(self):
        self.node.send(node_version())
        self.node.raw_sent()
        self.node.send(Ping(77))
        self.assertEqual(self.node.sent(), [])  # before verack: ignored
        self.node.send(VerAck(), Ping(78))
        self.assertEqual(self.node.sent(), [Pong(78)])

    def test_handshake_timeout(self):
        self.node.clock.advance(20)
        self.assertIsInstance(self.node.close_error(self), HandshakeTimeout)
        self.assertEqual(self.node.transport.value(), b"")

    def test_obsolete_dialler(self):
        self.node.send(node_version(version=209))
        self.assertEqual(self.node.transport.value(), b"")
        self.assertIsInstance(self.node.close_error(self), ObsoleteVersion)

    def test_on_peer_hook(self):
        peers = []
        node = FakeNode(inbound=True, on_peer=peers.append)
        self.assertEqual(peers, [node.peer])
        self.assertIsNone(peers[0].info)

    def test_self_connection_with_shared_nonces(self):
        """Our outbound connection arrives at our own listener."""
        shared = set()
        outbound = FakeNode(nonces=shared, seed=1)
        inbound = FakeNode(inbound=True, nonces=shared, seed=2)
        inbound.feed(outbound.raw_sent())
        self.assertEqual(inbound.transport.value(), b"")
        self.assertTrue(inbound.transport.disconnected)
        self.assertIsInstance(inbound.close_error(self), SelfConnection)

    def test_other_nonce_with_shared_nonces(self):
        shared = set()
        FakeNode(nonces=shared, seed=1)
        inbound = FakeNode(inbound=True, nonces=shared, seed=2)
        inbound.send(node_version())
        self.assertEqual(len(inbound.sent()), 4)

    def test_subclass_use(self):
        """The protocol is what the factory builds."""
        self.assertIsInstance(self.node.protocol, BitcoinProtocol)
        self.assertIs(self.node.protocol.inbound, True)
        self.assertIs(self.node.protocol.factory, self.node.factory)


class Recording(BitcoinProtocol):
    """Records each hook call, and otherwise keeps the defaults."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def version_message(self):
        self.calls.append("version_message")
        return super().version_message()

    def feature_negotiation(self, message):
        self.calls.append(("feature_negotiation", message.command))
        super().feature_negotiation(message)

    def handshake_done(self, info):
        self.calls.append(("handshake_done", self.peer.info is info))

    def answer_getaddr(self):
        self.calls.append("answer_getaddr")
        super().answer_getaddr()

    def address_answer(self):
        self.calls.append("address_answer")
        return super().address_answer()

    def sendMessage(self, message):
        self.calls.append(("sendMessage", message.command))
        super().sendMessage(message)


def hooked(protocol_class, inbound=True, address_source=None):
    """A Wire around a ``protocol_class`` connection, on a task.Clock."""
    clock = task.Clock()
    clock.advance(T0)
    protocol = protocol_class(MAINNET, PeerOptions(), clock, random.Random(SEED), set(),
                              inbound=inbound, address=PEER_ADDRESS,
                              address_source=address_source)
    wire = Wire(protocol, StringTransport(peerAddress=PEER, hostAddress=US))
    protocol.makeConnection(wire.transport)
    return wire


class HookTests(SynchronousTestCase):
    """The extension hooks are called when their docstrings say, and only then."""

    def test_inbound_order(self):
        wire = hooked(Recording, address_source=lambda: ipv4_entries(100))
        protocol = wire.protocol
        self.assertEqual(protocol.calls, [])  # inbound: silent until the peer's version
        wire.handshake()
        self.assertEqual(protocol.calls, [
            "version_message", ("sendMessage", "version"), ("sendMessage", "wtxidrelay"),
            ("sendMessage", "sendaddrv2"), ("sendMessage", "verack"),
            ("feature_negotiation", "wtxidrelay"), ("feature_negotiation", "sendaddrv2"),
            ("handshake_done", True),
        ])
        del protocol.calls[:]
        wire.send(VerAck(), GetAddr(), GetAddr())
        self.assertEqual(protocol.calls, ["answer_getaddr", "address_answer",
                                          ("sendMessage", "addrv2")])
        self.assertEqual([type(m) for m in wire.sent()], [AddrV2])

    def test_outbound_version_first(self):
        wire = hooked(Recording, inbound=False)
        self.assertEqual(wire.protocol.calls, ["version_message", ("sendMessage", "version")])

    def test_getaddr_rules_before_the_hook(self):
        """Core's rules are checked first: no hook call before verack, outbound, or bookless."""
        for wire in (hooked(Recording), hooked(Recording, inbound=False)):
            wire.send(node_version(), GetAddr())
            self.assertNotIn("answer_getaddr", wire.protocol.calls)

    def test_overrides(self):
        """What an override returns is what goes out, Peer.send included."""

        class Custom(BitcoinProtocol):
            def version_message(self):
                return attr.evolve(super().version_message(), user_agent="/custom/")

            def feature_negotiation(self, message):
                pass  # a pre-70016 node: unknown messages, never a violation

            def address_answer(self):
                return Addr(ipv4_entries(2))

            def frame(self, message):
                return b"!" + super().frame(message)

        wire = hooked(Custom, address_source=lambda: [])
        wire.send(node_version())
        data = wire.raw_sent()
        self.assertTrue(data.startswith(b"!" + MAGIC + b"version"))
        version = FrameDecoder(MAGIC).feed(data[1:])[0].decode()
        self.assertEqual(version.user_agent, "/custom/")
        wire.send(VerAck(), SendAddrV2(), GetAddr())
        self.assertFalse(wire.transport.disconnecting)
        self.assertEqual(wire.raw_sent(), b"!" + encode_frame(MAGIC, Addr(ipv4_entries(2))))
        wire.peer.send(Ping(1))
        self.assertEqual(wire.raw_sent(), b"!" + encode_frame(MAGIC, Ping(1)))

    def test_no_answer(self):
        class Mute(BitcoinProtocol):
            def answer_getaddr(self):
                pass

        wire = hooked(Mute, address_source=lambda: ipv4_entries(100))
        wire.handshake()
        wire.send(GetAddr())
        self.assertEqual(wire.sent(), [])


class ListenerTests(SynchronousTestCase):
    """What NodeFactory offers a listening node: how it presents itself,
    how much of its book a getaddr gets, and its responders."""

    def dial(self, node):
        node.send(node_version(), WtxidRelay(), SendAddrV2(), VerAck())
        return node.sent()

    def test_presents_a_full_node_by_default(self):
        """Real nodes drop a peer without NODE_NETWORK before the handshake."""
        factory = NodeFactory(task.Clock())
        self.assertIs(factory.options, LISTENER_OPTIONS)
        self.assertEqual(LISTENER_OPTIONS.services, 9)  # NETWORK | WITNESS
        self.assertTrue(LISTENER_OPTIONS.relay)
        node = FakeNode(factory=NodeFactory(task.Clock(), random=random.Random(SEED)))
        version = self.dial(node)[0]
        self.assertEqual((version.services, version.relay), (9, True))
        # The dialling side keeps the crawler's defaults.
        self.assertEqual(PeerFactory(task.Clock()).options, PeerOptions())

    def test_factories_are_quiet(self):
        self.assertFalse(NodeFactory(task.Clock()).noisy)
        self.assertFalse(PeerFactory(task.Clock()).noisy)

    def answer(self, book, **arguments):
        clock = task.Clock()
        clock.advance(T0)
        factory = NodeFactory(clock, options=PeerOptions(), random=random.Random(SEED),
                              address_source=lambda: book, **arguments)
        node = FakeNode(factory=factory)
        self.dial(node)
        node.send(GetAddr())
        return node.sent()

    def test_core_policy_sends_nothing_for_a_small_book(self):
        self.assertEqual(self.answer(ipv4_entries(4)), [])
        self.assertEqual(self.answer(ipv4_entries(4), getaddr_policy="core"), [])

    def test_all_policy(self):
        book = ipv4_entries(4)
        [answer] = self.answer(book, getaddr_policy="all")
        self.assertEqual(sorted(answer.addresses), sorted(book))
        [answer] = self.answer(ipv4_entries(2000), getaddr_policy="all")
        self.assertEqual(len(answer.addresses), 1000)

    def test_callable_policy(self):
        [answer] = self.answer(ipv4_entries(10), getaddr_policy=lambda count: count // 2)
        self.assertEqual(len(answer.addresses), 5)

    def test_unknown_policy(self):
        with self.assertRaises(ValueError) as caught:
            NodeFactory(task.Clock(), getaddr_policy="most")
        self.assertIn("core, all", str(caught.exception))

    def responding(self, **responders):
        clock = task.Clock()
        clock.advance(T0)
        factory = NodeFactory(clock, random=random.Random(SEED), **responders)
        return FakeNode(factory=factory)

    def test_getheaders_responder(self):
        asked = []
        headers = Headers(())
        node = self.responding(
            on_getheaders=lambda peer, message: asked.append((peer, message)) or headers)
        request = GetHeaders(70016, (bytes(32),), bytes(32))
        node.send(node_version())
        node.send(request)  # before verack: Core serves nothing
        self.assertEqual(asked, [])
        node.sent()
        node.send(WtxidRelay(), VerAck(), request)
        self.assertEqual(asked, [(node.peer, request)])
        self.assertEqual(node.sent(), [headers])

    def test_getheaders_responder_declines(self):
        node = self.responding(on_getheaders=lambda peer, message: None)
        self.dial(node)
        node.send(GetHeaders(70016, (), bytes(32)))
        self.assertEqual(node.sent(), [])

    def test_getdata_responder(self):
        wanted = [InvVector(2, bytes(32)), InvVector(1, b"\x01" * 32)]
        node = self.responding(
            on_getdata=lambda peer, message: [NotFound(message.inventory)])
        self.dial(node)
        node.send(GetData(wanted))
        self.assertEqual(node.sent(), [NotFound(wanted)])

    def test_no_responders(self):
        node = self.responding()
        self.dial(node)
        node.send(GetHeaders(70016, (), bytes(32)), GetData([InvVector(2, bytes(32))]))
        self.assertEqual(node.sent(), [])
        self.assertFalse(node.transport.disconnecting)

    def test_responder_raising(self):
        node = self.responding(on_getdata=lambda peer, message: 1 / 0)
        self.dial(node)
        node.send(GetData([InvVector(2, bytes(32))]))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIsInstance(node.close_error(self), HandlerError)
