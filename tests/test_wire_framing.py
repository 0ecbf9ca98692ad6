"""
Tests for bitpeer.wire.framing: the 24-byte header, and FrameDecoder's
reactions to bad input, which follow Core's V1Transport (PROTOCOL.md 1).
"""

import struct

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.encoding import checksum
from bitpeer.wire.errors import (
    BadChecksum,
    BadMagic,
    BadMessageType,
    PayloadTooLarge,
    ProtocolError,
)
from bitpeer.wire.framing import (
    HEADER_SIZE,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MESSAGE_TYPE_SIZE,
    Frame,
    FrameDecoder,
    encode_frame,
    encode_raw_frame,
)
from bitpeer.wire.messages import (
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
