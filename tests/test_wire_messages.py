"""
Tests for bitpeer.wire.messages: every message round trips, every limit Core
enforces is enforced on construction and on decoding with the right error
class (Misbehaviour is fatal, MalformedMessage is not), and decode errors
name the message type and field.
"""

import struct

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.address import AddrEntry, Network, NetworkAddress
from bitpeer.wire.encoding import MAX_SIZE, compact_size, var_bytes
from bitpeer.wire.errors import MalformedMessage, Misbehaviour, ProtocolError
from bitpeer.wire.messages import (
    MAX_ADDR_TO_SEND,
    MAX_HEADERS_RESULTS,
    MAX_INV_SZ,
    MAX_LOCATOR_SZ,
    MAX_SUBVERSION_LENGTH,
    MESSAGE_TYPES,
    MSG_BLOCK,
    MSG_TX,
    MSG_WITNESS_FLAG,
    MSG_WTX,
    PROTOCOL_VERSION,
    UNSPECIFIED_ADDRESS,
    Addr,
    AddrV2,
    Alert,
    BlockHeader,
    FeeFilter,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvVector,
    MemPool,
    NotFound,
    Ping,
    Pong,
    Reject,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    UnknownMessage,
    VerAck,
    Version,
    WtxidRelay,
    decode_message,
)

from .test_wire_blocks import EXAMPLES as BLOCK_EXAMPLES

ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
IPV4 = NetworkAddress.parse("1.2.3.4:8333")
IPV6 = NetworkAddress.parse("[2001:4860::8888]:18333")
H1 = bytes(range(32))
H2 = bytes(range(32, 64))


def header(n=0):
    return BlockHeader(0x20000000, H1, H2, 1700000000 + n, 0x1D00FFFF, n)


def addr_entries(n, address=IPV4):
    return [AddrEntry(1700000000, 9, address)] * n


def inv_entries(n):
    return [InvVector(MSG_TX, H1)] * n


#: One non-trivial instance of every registered message.
EXAMPLES = {
    "verack": VerAck(),
    "getaddr": GetAddr(),
    "sendaddrv2": SendAddrV2(),
    "wtxidrelay": WtxidRelay(),
    "sendheaders": SendHeaders(),
    "mempool": MemPool(),
    "version": Version(
        version=PROTOCOL_VERSION,
        services=0x409,
        timestamp=1700000000,
        addr_recv=IPV4,
        addr_recv_services=0xC09,
        addr_from=IPV6,
        addr_from_services=1,
        nonce=0x0123456789ABCDEF,
        user_agent="/bitpeer:0.1/",
        start_height=850000,
        relay=True,
    ),
    "ping": Ping(0xFFFFFFFFFFFFFFFF),
    "pong": Pong(42),
    "addr": Addr([AddrEntry(1, 9, IPV4), AddrEntry(2**32 - 1, 0x409, IPV6)]),
    "addrv2": AddrV2(
        [
            AddrEntry(1, 9, IPV4),
            AddrEntry(2, 0xC09, ONION),
            AddrEntry(3, 0, NetworkAddress(Network.I2P, bytes(32), 0)),
            AddrEntry(4, 2**64 - 1, NetworkAddress(0x42, b"future", 1)),
        ]
    ),
    "sendcmpct": SendCmpct(True, 2),
    "feefilter": FeeFilter(1000),
    "inv": Inv([InvVector(MSG_TX, H1), InvVector(MSG_BLOCK | MSG_WITNESS_FLAG, H2)]),
    "getdata": GetData([InvVector(MSG_WTX, H2)]),
    "notfound": NotFound([InvVector(MSG_TX, H1)]),
    "getheaders": GetHeaders(70016, [H1, H2], H2),
    "getblocks": GetBlocks(70016, [H2], bytes(32)),
    "headers": Headers([header(0), header(1)]),
    "reject": Reject("tx", 0x10, "bad-txns-inputs-missingorspent", H1),
    "alert": Alert(bytes.fromhex("60010000000000000000000000ffffff7f")),
    **BLOCK_EXAMPLES,
}


class RoundTripTests(SynchronousTestCase):
    """encode_payload then decode_message gives the same object."""

    def test_every_registered_type_has_an_example(self):
        self.assertEqual(set(EXAMPLES), set(MESSAGE_TYPES))

    def test_registry(self):
        for command, cls in MESSAGE_TYPES.items():
            self.assertEqual(cls.command, command)

    def test_round_trip(self):
        for command, message in EXAMPLES.items():
            self.assertIsInstance(message, MESSAGE_TYPES[command])
            decoded = decode_message(command, message.encode_payload())
            self.assertEqual(decoded, message, command)
            self.assertIs(type(decoded), type(message))

    def test_empty_messages(self):
        for cls in (VerAck, GetAddr, SendAddrV2, WtxidRelay, SendHeaders, MemPool):
            self.assertEqual(cls().encode_payload(), b"")
            self.assertEqual(decode_message(cls.command, b""), cls())

    def test_trailing_bytes_ignored(self):
        # Core reads what it needs and ignores the rest.
        for command, message in EXAMPLES.items():
            if command in ("reject", "alert"):
                continue  # these keep every remaining byte
            decoded = decode_message(command, message.encode_payload() + b"\x00junk")
            self.assertEqual(decoded, message, command)

    def test_messages_are_frozen(self):
        import attr

        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, Pong(1), "nonce", 2)


class VersionTests(SynchronousTestCase):
    """The version message, PROTOCOL.md section 2."""

    FULL = EXAMPLES["version"]

    def test_defaults(self):
        version = Version()
        self.assertEqual(version.version, 70016)
        self.assertEqual(version.services, 0)
        self.assertEqual(version.addr_recv, UNSPECIFIED_ADDRESS)
        self.assertEqual(version.addr_from, NetworkAddress(Network.IPV6, bytes(16), 0))
        self.assertIs(version.relay, False)

    def test_layout(self):
        payload = self.FULL.encode_payload()
        self.assertEqual(struct.unpack_from("<i", payload, 0)[0], 70016)
        self.assertEqual(struct.unpack_from("<Q", payload, 4)[0], 0x409)
        self.assertEqual(struct.unpack_from("<q", payload, 12)[0], 1700000000)
        self.assertEqual(struct.unpack_from("<Q", payload, 20)[0], 0xC09)
        self.assertEqual(payload[28:44], bytes(10) + b"\xff\xff\x01\x02\x03\x04")
        self.assertEqual(payload[44:46], b"\x20\x8d")  # port big-endian
        self.assertEqual(struct.unpack_from("<Q", payload, 46)[0], 1)
        self.assertEqual(payload[54:70], IPV6.host)
        self.assertEqual(payload[70:72], struct.pack(">H", 18333))
        self.assertEqual(struct.unpack_from("<Q", payload, 72)[0], 0x0123456789ABCDEF)
        self.assertEqual(payload[80:94], b"\x0d/bitpeer:0.1/")
        self.assertEqual(struct.unpack_from("<i", payload, 94)[0], 850000)
        self.assertEqual(payload[98:], b"\x01")

    def test_empty_user_agent_is_86_bytes(self):
        self.assertEqual(len(Version(relay=False).encode_payload()), 86)
        self.assertEqual(len(Version(relay=True).encode_payload()), 86)
        self.assertEqual(len(Version(relay=None).encode_payload()), 85)
        self.assertEqual(Version(relay=False).encode_payload()[-1:], b"\x00")

    def test_tail_cuts_decode_with_defaults(self):
        payload = self.FULL.encode_payload()
        ua_end = 80 + 1 + len("/bitpeer:0.1/")
        after_addr_recv = decode_message("version", payload[:46])
        self.assertEqual(after_addr_recv.addr_recv, IPV4)
        self.assertEqual(after_addr_recv.addr_recv_services, 0xC09)
        self.assertEqual(after_addr_recv.addr_from, UNSPECIFIED_ADDRESS)
        self.assertEqual(after_addr_recv.addr_from_services, 0)
        self.assertEqual(after_addr_recv.nonce, 0)
        self.assertEqual(after_addr_recv.user_agent, "")
        self.assertEqual(after_addr_recv.start_height, 0)
        self.assertIsNone(after_addr_recv.relay)

        after_nonce = decode_message("version", payload[:80])
        self.assertEqual(after_nonce.addr_from, IPV6)
        self.assertEqual(after_nonce.nonce, 0x0123456789ABCDEF)
        self.assertEqual((after_nonce.user_agent, after_nonce.start_height), ("", 0))
        self.assertIsNone(after_nonce.relay)

        after_ua = decode_message("version", payload[:ua_end])
        self.assertEqual(after_ua.user_agent, "/bitpeer:0.1/")
        self.assertEqual(after_ua.start_height, 0)
        self.assertIsNone(after_ua.relay)

        after_height = decode_message("version", payload[: ua_end + 4])
        self.assertEqual(after_height.start_height, 850000)
        self.assertIsNone(after_height.relay)
        self.assertEqual(
            after_height, Version(**{**_fields(self.FULL), "relay": None})
        )
        self.assertEqual(len(after_height.encode_payload()), ua_end + 4)

    def test_cut_inside_a_field_names_it(self):
        payload = self.FULL.encode_payload()
        ua_end = 80 + 1 + len("/bitpeer:0.1/")
        for cut, field in [
            (0, "version"),
            (3, "version"),
            (10, "services"),
            (19, "timestamp"),
            (25, "addr_recv.services"),
            (30, "addr_recv.ip"),
            (45, "addr_recv.port"),
            (47, "addr_from.services"),
            (60, "addr_from.ip"),
            (71, "addr_from.port"),
            (75, "nonce"),
            (85, "user_agent"),
            (ua_end + 2, "start_height"),
        ]:
            error = self.assertRaises(
                MalformedMessage, decode_message, "version", payload[:cut]
            )
            self.assertEqual(error.field, field, cut)
            self.assertEqual(error.message_type, "version")
            self.assertFalse(error.fatal)

    def test_relay_byte(self):
        base = Version(relay=None).encode_payload()
        self.assertIs(decode_message("version", base + b"\x00").relay, False)
        self.assertIs(decode_message("version", base + b"\x01").relay, True)
        self.assertIs(decode_message("version", base + b"\x02").relay, True)
        self.assertIs(decode_message("version", base + b"\x00extra").relay, False)

    def test_user_agent_limit_on_decode(self):
        base = Version(relay=None).encode_payload()
        head = base[:80]
        ok = decode_message("version", head + var_bytes(b"u" * 256) + bytes(4))
        self.assertEqual(len(ok.user_agent), MAX_SUBVERSION_LENGTH)
        error = self.assertRaises(
            MalformedMessage,
            decode_message,
            "version",
            head + var_bytes(b"u" * 257) + bytes(4),
        )
        self.assertEqual(error.field, "user_agent")
        self.assertEqual(error.message_type, "version")
        self.assertFalse(error.fatal)

    def test_user_agent_limit_on_construction(self):
        self.assertEqual(len(Version(user_agent="u" * 256).user_agent), 256)
        for text in ("u" * 257, "é" * 129):  # 129 × 2 bytes = 258
            error = self.assertRaises(ProtocolError, Version, user_agent=text)
            self.assertEqual(error.field, "user_agent")
            self.assertEqual(error.message_type, "version")

    def test_user_agent_non_utf8_round_trip(self):
        head = Version(relay=None).encode_payload()[:80]
        payload = head + var_bytes(b"/\xff\xfe/") + bytes(4)
        version = decode_message("version", payload)
        self.assertEqual(version.encode_payload(), payload)

    def test_field_validation(self):
        for field, bad in [
            ("version", 2**31),
            ("version", "70016"),
            ("services", -1),
            ("services", 2**64),
            ("timestamp", 2**63),
            ("nonce", -1),
            ("start_height", -(2**31) - 1),
            ("addr_recv_services", 2**64),
            ("addr_from_services", True),
            ("relay", 1),
            ("user_agent", b"/x/"),
            ("addr_recv", ONION),
            ("addr_from", ("1.2.3.4", 8333)),
        ]:
            error = self.assertRaises(ProtocolError, Version, **{field: bad})
            self.assertEqual(error.field, field, (field, bad))
            self.assertEqual(error.message_type, "version")

    def test_negative_values_round_trip(self):
        version = Version(version=-1, timestamp=-5, start_height=-1)
        self.assertEqual(decode_message("version", version.encode_payload()), version)


def _fields(message):
    import attr

    return attr.asdict(message, recurse=False)


class PingPongTests(SynchronousTestCase):
    def test_ping_with_nonce(self):
        self.assertEqual(Ping(1).encode_payload(), b"\x01" + bytes(7))
        self.assertEqual(decode_message("ping", b"\x01" + bytes(7)), Ping(1))

    def test_ping_without_nonce(self):
        self.assertEqual(Ping().encode_payload(), b"")
        self.assertIsNone(decode_message("ping", b"").nonce)

    def test_short_ping(self):
        error = self.assertRaises(MalformedMessage, decode_message, "ping", b"\x01\x02")
        self.assertEqual((error.field, error.message_type), ("nonce", "ping"))

    def test_pong(self):
        self.assertEqual(decode_message("pong", Pong(7).encode_payload()), Pong(7))
        error = self.assertRaises(MalformedMessage, decode_message, "pong", b"")
        self.assertEqual((error.field, error.message_type), ("nonce", "pong"))
        self.assertRaises(ProtocolError, Pong, None)
        self.assertRaises(ProtocolError, Ping, 2**64)


class AddrTests(SynchronousTestCase):
    """addr: v1 entries, at most 1000 (Core: Misbehaving)."""

    def test_1000_accepted(self):
        message = Addr(addr_entries(MAX_ADDR_TO_SEND))
        payload = message.encode_payload()
        self.assertEqual(payload[:3], b"\xfd\xe8\x03")
        self.assertEqual(len(payload), 3 + 30 * 1000)
        self.assertEqual(decode_message("addr", payload), message)

    def test_1001_construction(self):
        error = self.assertRaises(Misbehaviour, Addr, addr_entries(1001))
        self.assertTrue(error.fatal)
        self.assertEqual((error.field, error.message_type), ("addresses", "addr"))

    def test_1001_decode_full_payload(self):
        payload = compact_size(1001) + Addr(addr_entries(1)).encode_payload()[1:] * 1001
        error = self.assertRaises(Misbehaviour, decode_message, "addr", payload)
        self.assertTrue(error.fatal)
        self.assertEqual((error.field, error.message_type), ("addresses", "addr"))

    def test_1001_count_short_payload(self):
        payload = compact_size(1001) + Addr(addr_entries(1)).encode_payload()[1:] * 1000
        error = self.assertRaises(MalformedMessage, decode_message, "addr", payload)
        self.assertFalse(error.fatal)
        self.assertEqual((error.field, error.message_type), ("addresses", "addr"))

    def test_truncated(self):
        payload = Addr(addr_entries(2)).encode_payload()
        for cut in range(len(payload)):
            error = self.assertRaises(
                MalformedMessage, decode_message, "addr", payload[:cut]
            )
            self.assertEqual((error.field, error.message_type), ("addresses", "addr"))

    def test_count_over_max_size(self):
        payload = b"\xfe" + (MAX_SIZE + 1).to_bytes(4, "little")
        error = self.assertRaises(MalformedMessage, decode_message, "addr", payload)
        self.assertEqual(error.field, "addresses")

    def test_non_canonical_count(self):
        payload = b"\xfd\x01\x00" + Addr(addr_entries(1)).encode_payload()[1:]
        self.assertRaises(MalformedMessage, decode_message, "addr", payload)

    def test_refuses_v2_only_networks(self):
        for address in (ONION, NetworkAddress(Network.I2P, bytes(32), 0),
                        NetworkAddress(Network.CJDNS, b"\xfc" + bytes(15), 1)):
            error = self.assertRaises(ProtocolError, Addr, [AddrEntry(0, 0, address)])
            self.assertEqual((error.field, error.message_type), ("addresses", "addr"))

    def test_refuses_non_entries(self):
        error = self.assertRaises(ProtocolError, Addr, [IPV4])
        self.assertEqual(error.field, "addresses")

    def test_ipv4_and_ipv6(self):
        message = decode_message("addr", EXAMPLES["addr"].encode_payload())
        self.assertEqual([e.address.network for e in message.addresses],
                         [Network.IPV4, Network.IPV6])


class AddrV2Tests(SynchronousTestCase):
    """addrv2: BIP155 entries, at most 1000."""

    def test_1000_accepted(self):
        message = AddrV2(addr_entries(1000, ONION))
        self.assertEqual(decode_message("addrv2", message.encode_payload()), message)

    def test_1001_construction(self):
        error = self.assertRaises(Misbehaviour, AddrV2, addr_entries(1001, ONION))
        self.assertEqual((error.field, error.message_type), ("addresses", "addrv2"))

    def test_1001_decode(self):
        one = AddrV2(addr_entries(1, ONION)).encode_payload()[1:]
        error = self.assertRaises(
            Misbehaviour, decode_message, "addrv2", compact_size(1001) + one * 1001
        )
        self.assertTrue(error.fatal)
        self.assertEqual((error.field, error.message_type), ("addresses", "addrv2"))

    def test_1001_count_short_payload(self):
        one = AddrV2(addr_entries(1, ONION)).encode_payload()[1:]
        error = self.assertRaises(
            MalformedMessage, decode_message, "addrv2", compact_size(1001) + one * 1000
        )
        self.assertFalse(error.fatal)
        self.assertEqual(error.message_type, "addrv2")

    def test_bad_entry_loses_the_message(self):
        # Core's p2p_addrv2_relay / net_tests: known network, wrong length.
        payload = b"\x01" + struct.pack("<I", 0) + b"\x00" + b"\x01\x05" + bytes(5) + b"\x00\x01"
        error = self.assertRaises(MalformedMessage, decode_message, "addrv2", payload)
        self.assertEqual((error.field, error.message_type), ("addresses", "addrv2"))

    def test_unknown_network_entries_kept(self):
        message = decode_message("addrv2", EXAMPLES["addrv2"].encode_payload())
        future = message.addresses[3].address
        self.assertEqual(future.network, 0x42)
        self.assertFalse(future.is_valid())

    def test_empty(self):
        self.assertEqual(decode_message("addrv2", b"\x00"), AddrV2([]))
        error = self.assertRaises(MalformedMessage, decode_message, "addrv2", b"")
        self.assertEqual(error.field, "addresses")


class InventoryTests(SynchronousTestCase):
    """inv/getdata: at most 50000 (Misbehaving); notfound: no limit in Core."""

    def test_50000_accepted(self):
        message = Inv(inv_entries(MAX_INV_SZ))
        self.assertEqual(decode_message("inv", message.encode_payload()), message)

    def test_50001_construction(self):
        for cls in (Inv, GetData):
            error = self.assertRaises(Misbehaviour, cls, inv_entries(MAX_INV_SZ + 1))
            self.assertEqual((error.field, error.message_type), ("inventory", cls.command))

    def test_50001_decode(self):
        payload = compact_size(MAX_INV_SZ + 1) + (struct.pack("<I", 1) + H1) * (MAX_INV_SZ + 1)
        for command in ("inv", "getdata"):
            error = self.assertRaises(Misbehaviour, decode_message, command, payload)
            self.assertTrue(error.fatal)
            self.assertEqual((error.field, error.message_type), ("inventory", command))

    def test_50001_count_short_payload(self):
        payload = compact_size(MAX_INV_SZ + 1) + (struct.pack("<I", 1) + H1) * 10
        for command in ("inv", "getdata", "notfound"):
            error = self.assertRaises(MalformedMessage, decode_message, command, payload)
            self.assertFalse(error.fatal)
            self.assertEqual(error.message_type, command)

    def test_notfound_over_50000_is_not_misbehaviour(self):
        # net_processing.cpp NOTFOUND reads the vector and ignores a long one.
        payload = compact_size(MAX_INV_SZ + 1) + (struct.pack("<I", 1) + H1) * (MAX_INV_SZ + 1)
        message = decode_message("notfound", payload)
        self.assertEqual(len(message.inventory), MAX_INV_SZ + 1)
        self.assertEqual(message.encode_payload(), payload)

    def test_entry_validation(self):
        self.assertRaises(ProtocolError, InvVector, -1, H1)
        self.assertRaises(ProtocolError, InvVector, 2**32, H1)
        error = self.assertRaises(ProtocolError, InvVector, 1, H1[:31])
        self.assertEqual(error.field, "hash")
        self.assertRaises(ProtocolError, Inv, [(1, H1)])

    def test_truncated_entry(self):
        payload = Inv(inv_entries(1)).encode_payload()
        for cut in range(1, len(payload)):
            error = self.assertRaises(MalformedMessage, decode_message, "inv", payload[:cut])
            self.assertEqual(error.field, "inventory")


class LocatorTests(SynchronousTestCase):
    """getheaders/getblocks: at most 101 locator hashes (Core disconnects)."""

    def payload(self, count, present=None):
        present = count if present is None else present
        return struct.pack("<i", 70016) + compact_size(count) + H1 * present + bytes(32)

    def test_101_accepted(self):
        for cls in (GetHeaders, GetBlocks):
            message = cls(70016, [H1] * MAX_LOCATOR_SZ)
            self.assertEqual(message.hash_stop, bytes(32))
            self.assertEqual(message.encode_payload(), self.payload(101))
            self.assertEqual(decode_message(cls.command, self.payload(101)), message)

    def test_102_construction(self):
        for cls in (GetHeaders, GetBlocks):
            error = self.assertRaises(Misbehaviour, cls, 70016, [H1] * 102)
            self.assertEqual((error.field, error.message_type), ("locator", cls.command))

    def test_102_decode(self):
        for command in ("getheaders", "getblocks"):
            error = self.assertRaises(Misbehaviour, decode_message, command, self.payload(102))
            self.assertTrue(error.fatal)
            self.assertEqual((error.field, error.message_type), ("locator", command))

    def test_102_count_short_payload(self):
        for command in ("getheaders", "getblocks"):
            error = self.assertRaises(
                MalformedMessage, decode_message, command, self.payload(102, 50)
            )
            self.assertFalse(error.fatal)

    def test_missing_hash_stop(self):
        error = self.assertRaises(
            MalformedMessage, decode_message, "getheaders", self.payload(1)[:-1]
        )
        self.assertEqual(error.field, "hash_stop")

    def test_hash_validation(self):
        self.assertRaises(ProtocolError, GetHeaders, 1, [H1[:31]])
        self.assertRaises(ProtocolError, GetHeaders, 1, ["00" * 32])
        self.assertRaises(ProtocolError, GetHeaders, 1, [], b"short")


class HeadersTests(SynchronousTestCase):
    """headers: at most 2000; Core checks the count before reading any."""

    def test_2000_accepted(self):
        message = Headers([header(n) for n in range(MAX_HEADERS_RESULTS)])
        self.assertEqual(decode_message("headers", message.encode_payload()), message)

    def test_layout(self):
        payload = Headers([header(5)]).encode_payload()
        self.assertEqual(len(payload), 1 + 81)
        self.assertEqual(payload[-1:], b"\x00")  # tx count

    def test_2001_construction(self):
        error = self.assertRaises(Misbehaviour, Headers, [header()] * 2001)
        self.assertEqual((error.field, error.message_type), ("headers", "headers"))

    def test_2001_decode_full(self):
        one = Headers([header()]).encode_payload()[1:]
        error = self.assertRaises(
            Misbehaviour, decode_message, "headers", compact_size(2001) + one * 2001
        )
        self.assertTrue(error.fatal)
        self.assertEqual((error.field, error.message_type), ("headers", "headers"))

    def test_2001_count_alone_is_misbehaviour(self):
        # net_processing.cpp HEADERS: ReadCompactSize, then Misbehaving if the
        # count exceeds the limit, before any header is read.
        error = self.assertRaises(
            Misbehaviour, decode_message, "headers", compact_size(2001)
        )
        self.assertTrue(error.fatal)

    def test_tx_count_read_and_ignored(self):
        one = Headers([header()]).encode_payload()
        with_count = one[:-1] + b"\x05"
        self.assertEqual(decode_message("headers", with_count), Headers([header()]))
        error = self.assertRaises(
            MalformedMessage, decode_message, "headers", one[:-1] + b"\xfd\x05\x00"
        )
        self.assertEqual(error.field, "headers.tx_count")
        error = self.assertRaises(MalformedMessage, decode_message, "headers", one[:-1])
        self.assertEqual(error.field, "headers.tx_count")

    def test_truncated_header(self):
        error = self.assertRaises(
            MalformedMessage, decode_message, "headers", b"\x01" + bytes(79)
        )
        self.assertEqual((error.field, error.message_type), ("headers", "headers"))

    def test_header_validation(self):
        self.assertRaises(ProtocolError, BlockHeader, 1, H1, H2, 2**32, 0, 0)
        self.assertRaises(ProtocolError, BlockHeader, 1, H1[:1], H2, 0, 0, 0)
        self.assertRaises(ProtocolError, Headers, [H1])


class OtherMessageTests(SynchronousTestCase):
    def test_sendcmpct(self):
        self.assertEqual(SendCmpct(False, 2).encode_payload(), b"\x00\x02" + bytes(7))
        self.assertEqual(decode_message("sendcmpct", b"\x00\x02" + bytes(7)), SendCmpct(False, 2))
        error = self.assertRaises(MalformedMessage, decode_message, "sendcmpct", b"\x01")
        self.assertEqual((error.field, error.message_type), ("version", "sendcmpct"))
        self.assertRaises(ProtocolError, SendCmpct, 1, 2)

    def test_feefilter(self):
        self.assertEqual(decode_message("feefilter", struct.pack("<q", -1)), FeeFilter(-1))
        error = self.assertRaises(MalformedMessage, decode_message, "feefilter", bytes(7))
        self.assertEqual(error.field, "feerate")

    def test_reject(self):
        message = Reject("version", 0x11, "obsolete")
        self.assertEqual(decode_message("reject", message.encode_payload()), message)
        too_long = var_bytes(b"m" * 13) + b"\x01" + var_bytes(b"r")
        error = self.assertRaises(MalformedMessage, decode_message, "reject", too_long)
        self.assertEqual((error.field, error.message_type), ("message", "reject"))
        reason = var_bytes(b"tx") + b"\x01" + var_bytes(b"r" * 112)
        error = self.assertRaises(MalformedMessage, decode_message, "reject", reason)
        self.assertEqual(error.field, "reason")
        self.assertRaises(ProtocolError, Reject, "tx", 256, "r")

    def test_alert_opaque(self):
        self.assertEqual(decode_message("alert", b"\x01\x02"), Alert(b"\x01\x02"))

    def test_unknown_message_keeps_payload(self):
        message = decode_message("cfilter", b"\x00\x01payload")
        self.assertIsInstance(message, UnknownMessage)
        self.assertEqual(message.command, "cfilter")
        self.assertEqual(message.payload, b"\x00\x01payload")
        self.assertEqual(message.encode_payload(), b"\x00\x01payload")

    def test_unknown_message_command_validation(self):
        self.assertEqual(UnknownMessage("", b"").command, "")
        self.assertEqual(UnknownMessage("x" * 12, b"").command, "x" * 12)
        for bad in ("x" * 13, "bad\x19", "del\x7f", "nul\x00", "é", b"bytes"):
            error = self.assertRaises(ProtocolError, UnknownMessage, bad, b"")
            self.assertEqual(error.field, "command")

    def test_decode_errors_carry_message_type(self):
        for command in MESSAGE_TYPES:
            payload = {
                "version": b"\x01",
                "ping": b"\x01",
                "reject": b"\x05ab",
            }.get(command, b"\xfd")
            try:
                decode_message(command, payload)
            except ProtocolError as error:
                self.assertEqual(error.message_type, command)
            else:
                self.assertIn(command, ("verack", "getaddr", "sendaddrv2", "wtxidrelay",
                                        "sendheaders", "mempool", "alert"))
