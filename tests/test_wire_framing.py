"""
Tests for bitpeer.wire.framing: the 24-byte header, and FrameDecoder's
reactions to bad input, which follow Core's V1Transport (PROTOCOL.md 1).
"""

import struct

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.encoding import checksum
from bitpeer.wire.address import AddrEntry, NetworkAddress
from bitpeer.wire.errors import (
    BadChecksum,
    BadMagic,
    BadMessageType,
    FrameBudgetExhausted,
    Misbehaviour,
    OversizeMessage,
    PayloadTooLarge,
    ProtocolError,
    TooManyEntries,
)
from bitpeer.wire.framing import (
    DEFAULT_FRAME_BUDGET,
    HEADER_SIZE,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MESSAGE_TYPE_SIZE,
    UNRESERVED_PAYLOAD,
    Frame,
    FrameBudget,
    FrameDecoder,
    encode_frame,
    encode_raw_frame,
)
from bitpeer.wire.messages import (
    MAX_PAYLOADS,
    MESSAGE_TYPES,
    AddrV2,
    GetAddr,
    Inv,
    InvVector,
    Ping,
    UnknownMessage,
    VerAck,
    Version,
)

MAIN = bytes.fromhex("f9beb4d9")
TESTNET = bytes.fromhex("0b110907")


def raw_header(command, length, check=b"\0\0\0\0", magic=MAIN):
    """A header with any 12 raw type bytes, length and checksum."""
    return magic + command.ljust(12, b"\0") + struct.pack("<I", length) + check


class EncodeFrameTests(SynchronousTestCase):
    def test_header_layout(self):
        frame = encode_frame(MAIN, Ping(1))
        self.assertEqual(len(frame), HEADER_SIZE + 8)
        self.assertEqual(frame[:4], MAIN)
        self.assertEqual(frame[4:16], b"ping" + b"\0" * 8)
        self.assertEqual(struct.unpack("<I", frame[16:20])[0], 8)
        self.assertEqual(frame[20:24], checksum(frame[24:]))
        self.assertEqual(frame[24:], Ping(1).encode_payload())

    def test_verack_frame(self):
        # The well-known verack frame (Bitcoin wiki, Protocol documentation).
        self.assertEqual(
            encode_frame(MAIN, VerAck()).hex(),
            "f9beb4d976657261636b000000000000000000005df6e0e2",
        )

    def test_empty_payload_checksum(self):
        for message in (VerAck(), GetAddr()):
            self.assertEqual(encode_frame(TESTNET, message)[20:24], bytes.fromhex("5df6e0e2"))

    def test_twelve_character_command(self):
        frame = encode_raw_frame(MAIN, "abcdefghijkl", b"")
        self.assertEqual(frame[4:16], b"abcdefghijkl")

    def test_command_longer_than_twelve_refused(self):
        error = self.assertRaises(ProtocolError, encode_raw_frame, MAIN, "abcdefghijklm", b"")
        self.assertEqual(error.field, "command")

    def test_constants(self):
        self.assertEqual((HEADER_SIZE, MESSAGE_TYPE_SIZE), (24, 12))
        self.assertEqual(MAX_PROTOCOL_MESSAGE_LENGTH, 4_000_000)


class FrameDecoderTests(SynchronousTestCase):
    def frames(self):
        return [
            encode_frame(MAIN, Version(user_agent="/t/", relay=False)),
            encode_frame(MAIN, VerAck()),
            encode_frame(MAIN, Ping(99)),
            encode_frame(MAIN, Inv([InvVector(1, bytes(32))] * 3)),
        ]

    def expected(self):
        return [
            Frame("version", Version(user_agent="/t/", relay=False).encode_payload()),
            Frame("verack", b""),
            Frame("ping", Ping(99).encode_payload()),
            Frame("inv", Inv([InvVector(1, bytes(32))] * 3).encode_payload()),
        ]

    def test_whole(self):
        decoder = FrameDecoder(MAIN)
        out = []
        for frame in self.frames():
            out += decoder.feed(frame)
        self.assertEqual(out, self.expected())
        self.assertEqual(decoder.buffered, 0)

    def test_several_frames_in_one_chunk(self):
        decoder = FrameDecoder(MAIN)
        self.assertEqual(decoder.feed(b"".join(self.frames())), self.expected())

    def test_one_byte_at_a_time(self):
        decoder = FrameDecoder(MAIN)
        out = []
        for byte in b"".join(self.frames()):
            out += decoder.feed(bytes((byte,)))
        self.assertEqual(out, self.expected())
        self.assertEqual(decoder.buffered, 0)

    def test_split_across_boundaries(self):
        data = b"".join(self.frames())
        for split in range(len(data) + 1):
            decoder = FrameDecoder(MAIN)
            out = decoder.feed(data[:split]) + decoder.feed(data[split:])
            self.assertEqual(out, self.expected(), split)

    def test_partial_frame_buffered(self):
        decoder = FrameDecoder(MAIN)
        frame = encode_frame(MAIN, Ping(1))
        self.assertEqual(decoder.feed(frame[:10]), [])
        self.assertEqual(decoder.buffered, 10)
        self.assertEqual(decoder.feed(frame[10:30]), [])
        self.assertEqual(decoder.buffered, 30)
        self.assertEqual(decoder.feed(frame[30:]), [Frame("ping", frame[24:])])
        self.assertEqual(decoder.buffered, 0)

    def test_empty_feed(self):
        decoder = FrameDecoder(MAIN)
        self.assertEqual(decoder.feed(b""), [])
        decoder.feed(b"\xf9")
        self.assertEqual(decoder.feed(b""), [])
        self.assertEqual(decoder.buffered, 1)

    def test_frame_decode(self):
        frame = FrameDecoder(MAIN).feed(encode_frame(MAIN, Ping(5)))[0]
        self.assertEqual(frame.decode(), Ping(5))

    def test_trickled_large_frame(self):
        payload = bytes(range(256)) * 400  # 102,400 bytes
        data = encode_raw_frame(MAIN, "big", payload)
        decoder = FrameDecoder(MAIN)
        out = []
        for i in range(len(data)):
            out += decoder.feed(data[i:i + 1])
        self.assertEqual(out, [Frame("big", payload)])
        self.assertEqual(decoder.buffered, 0)


class FatalFaultTests(SynchronousTestCase):
    """Wrong magic and oversize: the decoder stops for good."""

    def test_wrong_magic(self):
        decoder = FrameDecoder(MAIN)
        out = decoder.feed(encode_frame(TESTNET, VerAck()))
        self.assertEqual(len(out), 1)
        self.assertIsInstance(out[0], BadMagic)
        self.assertTrue(out[0].fatal)
        self.assertIs(decoder.fatal_error, out[0])
        self.assertEqual(decoder.buffered, 0)
        # Every later feed reports it again, even with good frames.
        self.assertEqual(decoder.feed(encode_frame(MAIN, VerAck())), [out[0]])
        self.assertEqual(decoder.feed(b""), [out[0]])

    def test_frames_before_bad_magic_kept(self):
        decoder = FrameDecoder(MAIN)
        data = (
            encode_frame(MAIN, VerAck())
            + encode_frame(MAIN, Ping(1))
            + encode_frame(TESTNET, Ping(2))
            + encode_frame(MAIN, Ping(3))
        )
        out = decoder.feed(data)
        self.assertEqual(out[:2], [Frame("verack", b""), Frame("ping", Ping(1).encode_payload())])
        self.assertIsInstance(out[2], BadMagic)
        self.assertEqual(len(out), 3)

    def test_bad_magic_after_trickle(self):
        decoder = FrameDecoder(MAIN)
        bad = encode_frame(TESTNET, VerAck())
        for byte in bad[:-1]:
            self.assertEqual(decoder.feed(bytes((byte,))), [])
        out = decoder.feed(bad[-1:])
        self.assertIsInstance(out[0], BadMagic)

    def test_garbage_is_bad_magic(self):
        out = FrameDecoder(MAIN).feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIsInstance(out[-1], BadMagic)

    def test_oversize_from_header_alone(self):
        decoder = FrameDecoder(MAIN)
        out = decoder.feed(raw_header(b"badmsg", 4_000_001))
        self.assertEqual(len(out), 1)
        self.assertIsInstance(out[0], PayloadTooLarge)
        self.assertTrue(out[0].fatal)
        self.assertIn("4000001", str(out[0]))
        self.assertEqual(decoder.buffered, 0)
        self.assertEqual(decoder.feed(b"x" * 100), [out[0]])
        self.assertEqual(decoder.buffered, 0)

    def test_oversize_header_trickled(self):
        decoder = FrameDecoder(MAIN)
        header = raw_header(b"badmsg", 0xFFFFFFFF)
        for byte in header[:-1]:
            self.assertEqual(decoder.feed(bytes((byte,))), [])
        self.assertIsInstance(decoder.feed(header[-1:])[0], PayloadTooLarge)

    def test_exact_limit_accepted(self):
        decoder = FrameDecoder(MAIN)
        self.assertEqual(decoder.feed(raw_header(b"block", 4_000_000)), [])
        self.assertIsNone(decoder.fatal_error)
        self.assertEqual(decoder.buffered, 24)

    def test_custom_max_payload(self):
        decoder = FrameDecoder(MAIN, max_payload=8)
        self.assertEqual(len(decoder.feed(encode_frame(MAIN, Ping(1)))), 1)
        out = decoder.feed(encode_raw_frame(MAIN, "x", bytes(9)))
        self.assertIsInstance(out[0], PayloadTooLarge)

    def test_frames_before_oversize_kept(self):
        decoder = FrameDecoder(MAIN)
        out = decoder.feed(encode_frame(MAIN, VerAck()) + raw_header(b"x", 5_000_000))
        self.assertEqual(out[0], Frame("verack", b""))
        self.assertIsInstance(out[1], PayloadTooLarge)


class DroppedFaultTests(SynchronousTestCase):
    """Bad checksum and invalid message types lose one frame only."""

    def test_bad_checksum(self):
        good = encode_frame(MAIN, Ping(1))
        bad = good[:20] + b"\0\0\0\0" + good[24:]
        decoder = FrameDecoder(MAIN)
        out = decoder.feed(bad + encode_frame(MAIN, Ping(2)))
        self.assertEqual(len(out), 2)
        self.assertIsInstance(out[0], BadChecksum)
        self.assertFalse(out[0].fatal)
        self.assertEqual(out[0].message_type, "ping")
        self.assertEqual(out[1], Frame("ping", Ping(2).encode_payload()))
        self.assertIsNone(decoder.fatal_error)

    def test_bad_checksum_on_empty_payload(self):
        # Core's p2p_invalid_messages: 24 + 2 bytes counted, peer kept.
        out = FrameDecoder(MAIN).feed(raw_header(b"verack", 0, b"\x01\x02\x03\x04"))
        self.assertIsInstance(out[0], BadChecksum)

    def test_invalid_message_types(self):
        for raw in (
            b"ping\x19",
            b"ping\x7f",
            b"\x80abc",
            b"pi\x00ng",  # non-NUL after NUL
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00x",
            b"ver sion\x00\x00\x00\x01",
        ):
            decoder = FrameDecoder(MAIN)
            frame = raw_header(raw, 8, checksum(bytes(8))) + bytes(8)
            out = decoder.feed(frame + encode_frame(MAIN, VerAck()))
            self.assertEqual(len(out), 2, raw)
            self.assertIsInstance(out[0], BadMessageType, raw)
            self.assertFalse(out[0].fatal)
            self.assertEqual(out[1], Frame("verack", b""))

    def test_printable_edges_valid(self):
        for raw in (b" ", b"~", b"a b~", b"x" * 12):
            out = FrameDecoder(MAIN).feed(raw_header(raw, 0, checksum(b"")))
            self.assertEqual(out, [Frame(raw.decode("ascii"), b"")], raw)

    def test_empty_command_valid(self):
        out = FrameDecoder(MAIN).feed(raw_header(b"", 3, checksum(b"abc")) + b"abc")
        self.assertEqual(out, [Frame("", b"abc")])
        self.assertEqual(out[0].decode(), UnknownMessage("", b"abc"))

    def test_unknown_command(self):
        frame = encode_raw_frame(MAIN, "sendtxrcncl", bytes(12))
        out = FrameDecoder(MAIN).feed(frame)
        self.assertEqual(out, [Frame("sendtxrcncl", bytes(12))])
        message = out[0].decode()
        self.assertIsInstance(message, UnknownMessage)
        self.assertEqual((message.command, message.payload), ("sendtxrcncl", bytes(12)))
        self.assertEqual(encode_frame(MAIN, message), frame)

    def test_bad_payload_is_reported_at_decode(self):
        frame = FrameDecoder(MAIN).feed(encode_raw_frame(MAIN, "pong", b"\x01"))[0]
        self.assertIsInstance(frame, Frame)
        error = self.assertRaises(ProtocolError, frame.decode)
        self.assertEqual(error.message_type, "pong")


class BufferBoundTests(SynchronousTestCase):
    """At most one header plus max_payload bytes are ever buffered."""

    def test_bound_at_max_payload(self):
        decoder = FrameDecoder(MAIN, max_payload=1000)
        header = raw_header(b"big", 1000, checksum(bytes(1000)))
        decoder.feed(header)
        decoder.feed(bytes(999))
        self.assertEqual(decoder.buffered, HEADER_SIZE + 999)
        self.assertEqual(decoder.feed(b"\0"), [Frame("big", bytes(1000))])
        self.assertEqual(decoder.buffered, 0)

    def test_partial_header_after_frames(self):
        decoder = FrameDecoder(MAIN)
        data = encode_frame(MAIN, VerAck()) + encode_frame(MAIN, Ping(1))[:23]
        self.assertEqual(decoder.feed(data), [Frame("verack", b"")])
        self.assertEqual(decoder.buffered, 23)

    def test_never_more_than_header_plus_limit(self):
        limit = 64
        decoder = FrameDecoder(MAIN, max_payload=limit)
        stream = b"".join(
            encode_raw_frame(MAIN, "x", bytes(n)) for n in (0, 1, 63, 64, 10, 64)
        )
        for i in range(0, len(stream), 7):
            out = decoder.feed(stream[i:i + 7])
            self.assertLessEqual(decoder.buffered, HEADER_SIZE + limit)
            self.assertTrue(all(isinstance(item, Frame) for item in out))


# -- per-type bounds, skipping, the frame budget -------------------------------------


def frame_of(command, length, magic=MAIN):
    """A frame of ``command`` with ``length`` zero bytes, checksum right."""
    return encode_raw_frame(magic, command, bytes(length))


class PerTypeBoundTests(SynchronousTestCase):
    """
    Each message type's largest legal payload, from Core's rules, and the
    decoder's verdict one byte over it, from the header alone.
    """

    #: command -> (the maximum, how it is reached).  Written out, not
    #: computed, so that a change to a message class in wire/messages shows here.
    EXPECTED = {
        "verack": 0, "getaddr": 0, "sendaddrv2": 0, "wtxidrelay": 0, "sendheaders": 0,
        "mempool": 0,
        # 80 fixed bytes, CompactSize(256) + 256, start_height, relay.
        "version": 80 + 3 + 256 + 4 + 1,
        "ping": 8, "pong": 8, "feefilter": 8, "sendcmpct": 9,
        # 1000 entries of 30 bytes, CompactSize(1000).
        "addr": 3 + 1000 * 30,
        # 1000 x (time 4, services 9, network 1, CompactSize(512) 3, 512, port 2).
        "addrv2": 3 + 1000 * (4 + 9 + 1 + 3 + 512 + 2),
        "inv": 3 + 50000 * 36, "getdata": 3 + 50000 * 36,
        "notfound": MAX_PROTOCOL_MESSAGE_LENGTH,
        # version, CompactSize(101) + 101 hashes, stop hash.
        "getheaders": 4 + 1 + 101 * 32 + 32, "getblocks": 4 + 1 + 101 * 32 + 32,
        # 2000 x (80-byte header + tx count up to MAX_SIZE: 5 bytes).
        "headers": 3 + 2000 * 85,
        # No Core limit but the frame's (consensus.h MAX_BLOCK_SERIALIZED_SIZE
        # is the same 4,000,000).
        "tx": MAX_PROTOCOL_MESSAGE_LENGTH, "block": MAX_PROTOCOL_MESSAGE_LENGTH,
        "merkleblock": MAX_PROTOCOL_MESSAGE_LENGTH, "cmpctblock": MAX_PROTOCOL_MESSAGE_LENGTH,
        "reject": 13 + 1 + 112 + 32,
        "alert": MAX_PROTOCOL_MESSAGE_LENGTH,
    }

    def test_every_type_has_its_maximum(self):
        self.assertEqual(MAX_PAYLOADS, self.EXPECTED)
        self.assertEqual(set(MAX_PAYLOADS), set(MESSAGE_TYPES))

    def test_largest_legal_messages_fit(self):
        """The largest messages the classes can build are within their bound."""
        big_agent = Version(user_agent="u" * 256, relay=True)
        self.assertEqual(len(big_agent.encode_payload()), MAX_PAYLOADS["version"])
        torv2ish = NetworkAddress(200, bytes(512), 8333)
        entry = AddrEntry(1, 2**64 - 1, torv2ish)
        self.assertEqual(len(AddrV2([entry] * 1000).encode_payload()), MAX_PAYLOADS["addrv2"])
        self.assertEqual(
            len(Inv([InvVector(1, bytes(32))] * 50000).encode_payload()), MAX_PAYLOADS["inv"]
        )

    def test_at_the_limit_and_one_over(self):
        """
        At its maximum a frame of each type comes out whole; one byte over,
        a vector type is TooManyEntries (fatal: Core's Misbehaving), any
        other OversizeMessage (dropped: Core loses or ignores it, and keeps
        the peer), decided at the header with nothing buffered.
        """
        for command, limit in MAX_PAYLOADS.items():
            if limit >= MAX_PROTOCOL_MESSAGE_LENGTH:
                continue
            (frame,) = FrameDecoder(MAIN).feed(frame_of(command, limit))
            self.assertEqual((frame.command, len(frame.payload)), (command, limit))

            decoder = FrameDecoder(MAIN)
            (error,) = decoder.feed(raw_header(command.encode(), limit + 1))
            self.assertEqual(error.message_type, command)
            self.assertEqual(decoder.buffered, 0)
            if command in ("addr", "addrv2", "inv", "getdata", "headers", "getheaders",
                           "getblocks"):
                self.assertIsInstance(error, TooManyEntries, command)
                self.assertIsInstance(error, Misbehaviour)
                self.assertIs(decoder.fatal_error, error)
            else:
                self.assertIsInstance(error, OversizeMessage, command)
                self.assertFalse(error.fatal)
                self.assertIn(str(limit), str(error))

    def test_oversize_dropped_payload_is_discarded(self):
        """A dropped oversize frame's payload is counted down, not kept, and
        the frame after it comes out whole, in any chunking."""
        stream = frame_of("version", 5000) + encode_frame(MAIN, Ping(3))
        for size in (1, 7, 24, 1000, len(stream)):
            decoder = FrameDecoder(MAIN)
            out = []
            for pos in range(0, len(stream), size):
                out += decoder.feed(stream[pos:pos + size])
                self.assertLessEqual(decoder.buffered, HEADER_SIZE + 8)
            self.assertEqual(len(out), 2, size)
            self.assertIsInstance(out[0], OversizeMessage)
            self.assertEqual(out[1], Frame("ping", Ping(3).encode_payload()))

    def test_vector_error_names_the_entry_limit(self):
        (error,) = FrameDecoder(MAIN).feed(raw_header(b"addr", 30004))
        self.assertIn("1000 entries", str(error))

    def test_unknown_types_bounded_by_the_frame_only(self):
        decoder = FrameDecoder(MAIN)
        self.assertEqual(decoder.feed(raw_header(b"block", MAX_PROTOCOL_MESSAGE_LENGTH)), [])
        self.assertEqual(decoder.buffered, HEADER_SIZE)


class SkipTests(SynchronousTestCase):
    """
    ``wanted`` names the types the owner reads; the payload of any other is
    discarded as it arrives, so a 4 MB block costs no memory.
    """

    def test_unwanted_frame_skipped(self):
        decoder = FrameDecoder(MAIN, wanted={"ping"})
        stream = frame_of("block", 3000) + encode_frame(MAIN, Ping(1))
        self.assertEqual(decoder.feed(stream), [Frame("ping", Ping(1).encode_payload())])
        self.assertEqual(decoder.skipped, 1)

    def test_trickled_4mb_never_buffered(self):
        """Announce 4 MB and trickle it: the decoder holds nothing, ever."""
        decoder = FrameDecoder(MAIN, wanted={"ping"})
        self.assertEqual(decoder.feed(raw_header(b"block", MAX_PROTOCOL_MESSAGE_LENGTH)), [])
        chunk = bytes(64 * 1024)
        sent = 0
        while sent + len(chunk) <= MAX_PROTOCOL_MESSAGE_LENGTH:
            self.assertEqual(decoder.feed(chunk), [])
            self.assertEqual(decoder.buffered, 0)
            sent += len(chunk)
        rest = MAX_PROTOCOL_MESSAGE_LENGTH - sent
        ping = encode_frame(MAIN, Ping(2))
        # The last bytes of the skipped payload and the next frame together.
        self.assertEqual(decoder.feed(bytes(rest) + ping),
                         [Frame("ping", Ping(2).encode_payload())])
        self.assertEqual((decoder.buffered, decoder.skipped), (0, 1))

    def test_skip_ends_exactly_at_a_chunk_end(self):
        decoder = FrameDecoder(MAIN, wanted=set())
        self.assertEqual(decoder.feed(frame_of("tx", 100)[:60]), [])
        self.assertEqual(decoder.feed(bytes(64)), [])
        self.assertEqual(decoder.feed(raw_header(b"tx", 0)), [])
        self.assertEqual(decoder.skipped, 2)
        self.assertEqual(decoder.buffered, 0)

    def test_skipped_checksum_is_not_checked(self):
        """A skipped payload is never read, so its checksum cannot be wrong."""
        decoder = FrameDecoder(MAIN, wanted=set())
        self.assertEqual(decoder.feed(raw_header(b"block", 10, b"\xff" * 4) + bytes(10)), [])

    def test_invalid_type_discarded_from_its_header(self):
        decoder = FrameDecoder(MAIN)
        (error,) = decoder.feed(raw_header(b"bad\x01", 50000) + bytes(100))
        self.assertIsInstance(error, BadMessageType)
        self.assertEqual(decoder.buffered, 0)
        self.assertEqual(decoder.feed(bytes(49900) + encode_frame(MAIN, VerAck())),
                         [Frame("verack", b"")])

    def test_fatal_faults_still_checked_on_unwanted_types(self):
        decoder = FrameDecoder(MAIN, wanted=set())
        (error,) = decoder.feed(raw_header(b"block", MAX_PROTOCOL_MESSAGE_LENGTH + 1))
        self.assertIsInstance(error, PayloadTooLarge)
        decoder = FrameDecoder(MAIN, wanted=set())
        (error,) = decoder.feed(raw_header(b"block", 1, magic=TESTNET))
        self.assertIsInstance(error, BadMagic)

    def test_wanted_asked_at_each_header(self):
        """A container that changes (subscriptions) counts from the next frame."""
        wanted = set()
        decoder = FrameDecoder(MAIN, wanted=wanted)
        self.assertEqual(decoder.feed(frame_of("cmpctblock", 10)), [])
        wanted.add("cmpctblock")
        self.assertEqual(decoder.feed(frame_of("cmpctblock", 10)),
                         [Frame("cmpctblock", bytes(10))])


class _Owner:
    """Stands for the protocol: records what the decoder reports."""

    def __init__(self, budget, wanted=None):
        self.evicted = []
        self.decoder = FrameDecoder(MAIN, budget=budget, wanted=wanted,
                                    on_evicted=self.evicted.append)


class FrameBudgetTests(SynchronousTestCase):
    """
    The partial frames of all the decoders sharing a FrameBudget together
    hold at most its limit; reservations come back when frames complete and
    when connections close; when it is full, the largest (then oldest)
    frame's connection goes.
    """

    def partial(self, owner, command, length, sent=100):
        """Feed the header and ``sent`` bytes of a ``length`` frame."""
        return owner.decoder.feed(frame_of(command, length)[:HEADER_SIZE + sent])

    def test_default_and_validation(self):
        self.assertEqual(FrameBudget().limit, DEFAULT_FRAME_BUDGET)
        self.assertEqual(DEFAULT_FRAME_BUDGET, 32_000_000)
        self.assertRaises(ValueError, FrameBudget, 0)

    def test_small_partial_frames_are_not_charged(self):
        budget = FrameBudget(10_000)
        owner = _Owner(budget)
        self.assertEqual(self.partial(owner, "unknown1", UNRESERVED_PAYLOAD), [])
        self.assertEqual((budget.used, budget.holders), (0, 0))
        owner = _Owner(budget)
        self.assertEqual(self.partial(owner, "unknown1", UNRESERVED_PAYLOAD + 1), [])
        self.assertEqual(budget.used, UNRESERVED_PAYLOAD + 1)

    def test_whole_frames_in_one_feed_are_not_charged(self):
        budget = FrameBudget(10_000)
        owner = _Owner(budget)
        (frame,) = owner.decoder.feed(frame_of("addr", 30_003))
        self.assertEqual(len(frame.payload), 30_003)
        self.assertEqual(budget.used, 0)

    def test_reserved_until_the_frame_completes(self):
        budget = FrameBudget(100_000)
        owner = _Owner(budget)
        frame = frame_of("addr", 30_003) + encode_frame(MAIN, Ping(1))
        self.assertEqual(owner.decoder.feed(frame[:1000]), [])
        self.assertEqual(budget.held_by(owner.decoder), 30_003)
        self.assertEqual(owner.decoder.feed(frame[1000:20_000]), [])
        self.assertEqual(budget.used, 30_003)
        out = owner.decoder.feed(frame[20_000:])
        self.assertEqual([f.command for f in out], ["addr", "ping"])
        self.assertEqual((budget.used, budget.holders), (0, 0))

    def test_next_partial_frame_reserves_anew(self):
        budget = FrameBudget(100_000)
        owner = _Owner(budget)
        first, second = frame_of("addr", 20_000), frame_of("addrv2", 40_000)
        owner.decoder.feed(first[:500])
        out = owner.decoder.feed(first[500:] + second[:500])
        self.assertEqual([f.command for f in out], ["addr"])
        self.assertEqual(budget.used, 40_000)
        self.assertEqual(budget.held_by(owner.decoder), 40_000)

    def test_released_when_the_connection_closes(self):
        budget = FrameBudget(100_000)
        owner = _Owner(budget)
        self.partial(owner, "addr", 30_000)
        owner.decoder.close()
        self.assertEqual((budget.used, budget.holders), (0, 0))
        self.assertEqual(owner.decoder.buffered, 0)
        owner.decoder.close()  # twice is harmless
        self.assertEqual(budget.used, 0)

    def test_released_on_a_fatal_fault(self):
        budget = FrameBudget(100_000)
        owner = _Owner(budget)
        frame = frame_of("addr", 30_000)
        owner.decoder.feed(frame[:500])
        out = owner.decoder.feed(frame[500:] + raw_header(b"ping", 8, magic=TESTNET))
        self.assertEqual(out[0].command, "addr")
        self.assertIsInstance(out[1], BadMagic)
        self.assertEqual(budget.used, 0)

    def test_released_on_a_bad_checksum(self):
        budget = FrameBudget(100_000)
        owner = _Owner(budget)
        frame = bytearray(frame_of("addr", 30_000))
        frame[20] ^= 1
        owner.decoder.feed(bytes(frame[:500]))
        (error,) = owner.decoder.feed(bytes(frame[500:]))
        self.assertIsInstance(error, BadChecksum)
        self.assertEqual(budget.used, 0)

    def test_at_the_bound(self):
        """Reservations up to the limit exactly are granted; one byte more
        is not, without taking from someone holding as much."""
        budget = FrameBudget(60_000)
        a, b = _Owner(budget), _Owner(budget)
        self.partial(a, "addr", 30_000)
        self.partial(b, "addr", 30_000)
        self.assertEqual(budget.used, 60_000)
        self.assertEqual((a.evicted, b.evicted), ([], []))
        # Asking for more than anyone holds: the asker wants the most.
        c = _Owner(budget)
        (error,) = self.partial(c, "addrv2", 30_001)
        self.assertIsInstance(error, FrameBudgetExhausted)
        self.assertTrue(error.fatal)
        self.assertEqual((budget.used, budget.refused, c.decoder.buffered), (60_000, 1, 0))
        self.assertEqual((a.evicted, b.evicted), ([], []))

    def test_largest_holder_evicted(self):
        """The largest partial frame goes, however it compares with the
        asker's, and its memory is freed at once."""
        budget = FrameBudget(100_000)
        honest, trickler = _Owner(budget), _Owner(budget)
        self.partial(honest, "addrv2", 20_000)
        self.partial(trickler, "addrv2", 70_000, sent=60_000)
        newcomer = _Owner(budget)
        self.assertEqual(self.partial(newcomer, "addrv2", 20_000), [])
        (error,) = trickler.evicted
        self.assertIsInstance(error, FrameBudgetExhausted)
        self.assertIn("70000 bytes", str(error))
        self.assertIs(trickler.decoder.fatal_error, error)
        self.assertEqual(trickler.decoder.buffered, 0)
        self.assertEqual(trickler.decoder.feed(bytes(10)), [error])
        self.assertEqual(honest.evicted, [])
        self.assertEqual(budget.used, 40_000)
        self.assertEqual(budget.evicted, 1)
        # The evicted decoder's close gives back nothing twice.
        trickler.decoder.close()
        self.assertEqual(budget.used, 40_000)

    def test_oldest_of_equals_evicted(self):
        budget = FrameBudget(60_000)
        owners = [_Owner(budget) for _ in range(3)]
        for owner in owners:
            self.partial(owner, "addr", 30_000)
        self.assertEqual([len(o.evicted) for o in owners], [1, 0, 0])
        self.assertEqual(budget.used, 60_000)

    def test_honest_frames_complete_while_a_trickler_is_evicted(self):
        """Many honest partial frames and tricklers sharing a small budget:
        every honest frame completes, the used total never passes the
        limit, and nothing is left reserved."""
        budget = FrameBudget(400_000)
        honest = [_Owner(budget) for _ in range(20)]
        tricklers = [_Owner(budget) for _ in range(10)]
        answers = [frame_of("addrv2", 15_000) for _ in honest]
        for t in tricklers:
            self.partial(t, "addrv2", 531_003 // 10, sent=100)
            self.assertLessEqual(budget.used, budget.limit)
        for owner, frame in zip(honest, answers):
            self.assertEqual(owner.decoder.feed(frame[:7000]), [])
            self.assertLessEqual(budget.used, budget.limit)
        for owner, frame in zip(honest, answers):
            (done,) = owner.decoder.feed(frame[7000:])
            self.assertEqual(done.command, "addrv2")
        self.assertEqual([o.evicted for o in honest], [[]] * 20)
        self.assertGreater(sum(len(t.evicted) for t in tricklers), 0)
        for t in tricklers:
            t.decoder.close()
        self.assertEqual((budget.used, budget.holders), (0, 0))
