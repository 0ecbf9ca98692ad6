"""
Tests for bitpeer.wire.encoding and bitpeer.wire.errors: CompactSize exactly
as Core's ReadCompactSize/WriteCompactSize, var strings, the Reader cursor,
hash256 and the ProtocolError tree.
"""

import pickle

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire import errors
from bitpeer.wire.encoding import (
    MAX_SIZE,
    UINT32_MAX,
    UINT64_MAX,
    Reader,
    checksum,
    compact_size,
    hash256,
    port_bytes,
    var_bytes,
    var_str,
)
from bitpeer.wire.errors import (
    BadChecksum,
    BadMagic,
    BadMessageType,
    DroppedMessage,
    FatalProtocolError,
    MalformedMessage,
    Misbehaviour,
    PayloadTooLarge,
    ProtocolError,
)

#: (value, canonical encoding) at every boundary of the four forms.
COMPACT_SIZE_BOUNDARIES = [
    (0, "00"),
    (1, "01"),
    (0xFC, "fc"),
    (0xFD, "fdfd00"),
    (0xFFFF, "fdffff"),
    (0x10000, "fe00000100"),
    (0xFFFFFFFF, "feffffffff"),
    (0x100000000, "ff0000000001000000"),
    (UINT64_MAX, "ffffffffffffffffff"),
]


class CompactSizeEncodeTests(SynchronousTestCase):
    """compact_size writes the shortest form, as Core's WriteCompactSize."""

    def test_boundaries(self):
        for value, expected in COMPACT_SIZE_BOUNDARIES:
            self.assertEqual(compact_size(value).hex(), expected, value)

    def test_boundaries_decode_back(self):
        for value, encoded in COMPACT_SIZE_BOUNDARIES:
            reader = Reader(bytes.fromhex(encoded))
            self.assertEqual(reader.compact_size("n", range_check=False), value)
            self.assertTrue(reader.at_end())

    def test_lengths(self):
        self.assertEqual(len(compact_size(0xFC)), 1)
        self.assertEqual(len(compact_size(0xFD)), 3)
        self.assertEqual(len(compact_size(0x10000)), 5)
        self.assertEqual(len(compact_size(0x100000000)), 9)


class CompactSizeDecodeTests(SynchronousTestCase):
    """Reader.compact_size rejects what Core's ReadCompactSize rejects."""

    def assertMalformed(self, data, field="n", range_check=True):
        error = self.assertRaises(
            MalformedMessage, Reader(data).compact_size, field, range_check
        )
        self.assertEqual(error.field, field)
        self.assertFalse(error.fatal)
        return error

    def test_non_canonical_three_byte(self):
        error = self.assertMalformed(bytes.fromhex("fdfc00"))
        self.assertIn("non-canonical", error.rule)

    def test_non_canonical_three_byte_zero(self):
        self.assertMalformed(bytes.fromhex("fd0000"))

    def test_non_canonical_five_byte(self):
        self.assertMalformed(bytes.fromhex("feffff0000"), range_check=False)

    def test_non_canonical_nine_byte(self):
        self.assertMalformed(bytes.fromhex("ffffffffff00000000"), range_check=False)

    def test_smallest_canonical_forms_accepted(self):
        self.assertEqual(Reader(bytes.fromhex("fdfd00")).compact_size("n"), 0xFD)
        self.assertEqual(Reader(bytes.fromhex("fe00000100")).compact_size("n"), 0x10000)
        self.assertEqual(
            Reader(bytes.fromhex("ff0000000001000000")).compact_size("n", False),
            0x100000000,
        )

    def test_max_size_accepted(self):
        data = b"\xfe" + MAX_SIZE.to_bytes(4, "little")
        self.assertEqual(Reader(data).compact_size("n"), MAX_SIZE)

    def test_over_max_size_rejected_with_range_check(self):
        data = b"\xfe" + (MAX_SIZE + 1).to_bytes(4, "little")
        error = self.assertMalformed(data, field="count")
        self.assertIn("MAX_SIZE", error.rule)

    def test_over_max_size_accepted_without_range_check(self):
        data = b"\xfe" + (MAX_SIZE + 1).to_bytes(4, "little")
        self.assertEqual(Reader(data).compact_size("n", range_check=False), MAX_SIZE + 1)
        big = b"\xff" + UINT64_MAX.to_bytes(8, "little")
        self.assertEqual(Reader(big).compact_size("n", range_check=False), UINT64_MAX)

    def test_nine_byte_over_max_size_rejected(self):
        self.assertMalformed(bytes.fromhex("ff0000000001000000"))

    def test_truncation_names_the_field(self):
        for data in (b"", b"\xfd", b"\xfd\x01", b"\xfe\x00\x00\x01", b"\xff" + bytes(7)):
            error = self.assertMalformed(data, field="addresses")
            self.assertIn("left", error.rule)

    def test_reader_advances(self):
        reader = Reader(bytes.fromhex("fdfd00" "07"))
        self.assertEqual(reader.compact_size("a"), 0xFD)
        self.assertEqual(reader.pos, 3)
        self.assertEqual(reader.compact_size("b"), 7)
        self.assertTrue(reader.at_end())


class VarBytesTests(SynchronousTestCase):
    """CompactSize-prefixed bytes and strings, with Core's LIMITED_STRING."""

    def test_encode(self):
        self.assertEqual(var_bytes(b""), b"\x00")
        self.assertEqual(var_bytes(b"abc"), b"\x03abc")
        self.assertEqual(var_bytes(b"x" * 253)[:3], b"\xfd\xfd\x00")

    def test_var_str_is_utf8(self):
        self.assertEqual(var_str("é"), b"\x02\xc3\xa9")

    def test_read(self):
        reader = Reader(b"\x03abcXY")
        self.assertEqual(reader.var_bytes("f"), b"abc")
        self.assertEqual(reader.remaining(), 2)

    def test_limit_exact_accepted(self):
        self.assertEqual(Reader(var_bytes(b"x" * 256)).var_str("ua", 256), "x" * 256)

    def test_limit_exceeded(self):
        error = self.assertRaises(
            MalformedMessage, Reader(var_bytes(b"x" * 257)).var_str, "ua", 256
        )
        self.assertEqual(error.field, "ua")
        self.assertIn("257", error.rule)

    def test_limit_checked_before_body(self):
        # A declared length over the limit fails even though the body is absent.
        error = self.assertRaises(
            MalformedMessage, Reader(b"\xfd\x00\x01").var_bytes, "blob", 10
        )
        self.assertIn("limit", error.rule)

    def test_truncated_body(self):
        error = self.assertRaises(MalformedMessage, Reader(b"\x05ab").var_bytes, "blob")
        self.assertEqual(error.field, "blob")

    def test_non_canonical_length(self):
        error = self.assertRaises(
            MalformedMessage, Reader(b"\xfd\x03\x00abc").var_bytes, "blob"
        )
        self.assertIn("non-canonical", error.rule)

    def test_surrogateescape_round_trip(self):
        raw = b"/bad\xff\xfe utf8 \xc3/"
        text = Reader(var_bytes(raw)).var_str("ua")
        self.assertIsInstance(text, str)
        self.assertEqual(var_str(text), var_bytes(raw))

    def test_valid_utf8_decodes_normally(self):
        self.assertEqual(Reader(var_str("/Satoshi:27.0.0(é)/")).var_str("ua"), "/Satoshi:27.0.0(é)/")


class ReaderTests(SynchronousTestCase):
    """Fixed-width reads: byte order, signedness, truncation."""

    def test_integers_little_endian(self):
        data = (
            b"\x01"
            + b"\x02\x01"
            + b"\x04\x03\x02\x01"
            + b"\xff\xff\xff\xff"
            + b"\x08\x07\x06\x05\x04\x03\x02\x01"
            + b"\xff" * 8
        )
        reader = Reader(data)
        self.assertEqual(reader.u8("a"), 1)
        self.assertEqual(reader.u16("b"), 0x0102)
        self.assertEqual(reader.u32("c"), 0x01020304)
        self.assertEqual(reader.i32("d"), -1)
        self.assertEqual(reader.u64("e"), 0x0102030405060708)
        self.assertEqual(reader.i64("f"), -1)
        self.assertTrue(reader.at_end())

    def test_port_big_endian(self):
        self.assertEqual(Reader(b"\x20\x8d").port("port"), 8333)
        self.assertEqual(port_bytes(8333), b"\x20\x8d")

    def test_boolean_any_non_zero(self):
        self.assertEqual(
            [Reader(bytes([b])).boolean("relay") for b in (0, 1, 2, 255)],
            [False, True, True, True],
        )

    def test_truncated_fixed_width(self):
        cases = [
            ("u8", b""),
            ("u16", b"\x01"),
            ("u32", b"\x01\x02\x03"),
            ("i32", b""),
            ("u64", bytes(7)),
            ("i64", bytes(4)),
            ("port", b"\x01"),
            ("boolean", b""),
        ]
        for method, data in cases:
            error = self.assertRaises(
                MalformedMessage, getattr(Reader(data), method), "the_field"
            )
            self.assertEqual(error.field, "the_field", method)

    def test_take(self):
        reader = Reader(b"abcdef", 1)
        self.assertEqual(reader.take(3, "x"), b"bcd")
        error = self.assertRaises(MalformedMessage, reader.take, 3, "y")
        self.assertEqual(error.field, "y")
        self.assertEqual(error.rule, "needs 3 bytes, 2 left")
        # A failed read consumes nothing.
        self.assertEqual(reader.pos, 4)

    def test_rest(self):
        reader = Reader(b"abcdef", 2)
        self.assertEqual(reader.rest(), b"cdef")
        self.assertTrue(reader.at_end())
        self.assertEqual(reader.rest(), b"")
        self.assertEqual(reader.remaining(), 0)


class HashTests(SynchronousTestCase):
    """Double SHA-256 against published values."""

    def test_hash256_empty(self):
        self.assertEqual(
            hash256(b"").hex(),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456",
        )

    def test_empty_payload_checksum(self):
        # PROTOCOL.md 1: verack, getaddr, sendaddrv2, wtxidrelay, sendheaders.
        self.assertEqual(checksum(b""), bytes.fromhex("5df6e0e2"))

    def test_hash256_hello(self):
        # The Bitcoin wiki's "Hashes" example: sha256(sha256("hello")).
        self.assertEqual(
            hash256(b"hello").hex(),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50",
        )
        self.assertEqual(checksum(b"hello"), bytes.fromhex("9595c9df"))

    def test_limits(self):
        self.assertEqual(UINT32_MAX, 0xFFFFFFFF)
        self.assertEqual(UINT64_MAX, 0xFFFFFFFFFFFFFFFF)
        self.assertEqual(MAX_SIZE, 0x02000000)


class ErrorTreeTests(SynchronousTestCase):
    """Which faults close the connection, and what an error says."""

    def test_fatal_classes(self):
        for cls in (BadMagic, PayloadTooLarge, Misbehaviour):
            self.assertTrue(issubclass(cls, FatalProtocolError))
            self.assertTrue(cls("x").fatal, cls)

    def test_dropped_classes(self):
        for cls in (BadChecksum, BadMessageType, MalformedMessage):
            self.assertTrue(issubclass(cls, DroppedMessage))
            self.assertFalse(cls("x").fatal, cls)

    def test_protocol_error_is_value_error(self):
        self.assertTrue(issubclass(ProtocolError, ValueError))
        self.assertFalse(ProtocolError("x").fatal)

    def test_str_names_message_type_and_field(self):
        error = MalformedMessage("too long", field="user_agent", message_type="version")
        self.assertEqual(str(error), "version.user_agent: too long")
        self.assertEqual(str(MalformedMessage("short", field="nonce")), "nonce: short")
        self.assertEqual(str(BadMagic("wrong")), "wrong")

    def test_pickle_round_trip(self):
        error = Misbehaviour("1001 entries", field="addresses", message_type="addr")
        copy = pickle.loads(pickle.dumps(error))
        self.assertIs(type(copy), Misbehaviour)
        self.assertEqual(
            (copy.rule, copy.field, copy.message_type, copy.fatal),
            ("1001 entries", "addresses", "addr", True),
        )

    def test_module_exports(self):
        self.assertIs(errors.ProtocolError, ProtocolError)
