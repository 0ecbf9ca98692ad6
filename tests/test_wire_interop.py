"""
Interoperability: bitpeer against python-bitcoinlib (an independent
implementation, used here only as a test oracle) in both directions, and
against published byte-exact vectors.

Vectors, copied as hex facts:

* the Bitcoin wiki's Protocol documentation examples (en.bitcoin.it,
  "Protocol_documentation": the version message of a 0.7.2 node, the verack
  and the one-entry addr), also used verbatim in other projects' test suites;
* Bitcoin Core src/test/netbase_tests.cpp (stream_addrv1_hex,
  stream_addrv2_hex: the same three CAddress in v1 and BIP155 form);
* Bitcoin Core src/test/net_tests.cpp (cnetaddr_serialize_v2 and
  cnetaddr_unserialize_v2: single BIP155 addresses without time, services
  or port, valid and invalid).
"""

import io
import struct

import bitcoin
from bitcoin import messages as bl
from bitcoin import net as bl_net
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.address import AddrEntry, Network, NetworkAddress
from bitpeer.wire.errors import MalformedMessage
from bitpeer.wire.framing import Frame, FrameDecoder, encode_frame
from bitpeer.wire.messages import (
    Addr,
    AddrV2,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Inv,
    InvVector,
    Ping,
    Pong,
    VerAck,
    Version,
    decode_message,
)

MAIN = bytes.fromhex("f9beb4d9")
H1 = bytes(range(32))
H2 = bytes(range(100, 132))

# -- golden vectors ------------------------------------------------------------------

#: Bitcoin wiki, Protocol documentation, "version" hexdump: a 0.7.2 node,
#: protocol 60002, no relay byte (100-byte payload).
WIKI_VERSION_FRAME = bytes.fromhex(
    "f9beb4d976657273696f6e0000000000640000003b648d5a"
    "62ea0000010000000000000011b2d05000000000010000000000000000000000000000000000"
    "ffff000000000000010000000000000000000000000000000000ffff0000000000003b2eb35d"
    "8ce617650f2f5361746f7368693a302e372e322fc03e0300"
)

#: Bitcoin wiki, Protocol documentation, "verack" hexdump.
WIKI_VERACK_FRAME = bytes.fromhex("f9beb4d976657261636b000000000000000000005df6e0e2")

#: Bitcoin wiki, Protocol documentation, "addr" hexdump: one entry,
#: 10.0.0.1:8333, NODE_NETWORK, time 0x4d1015e2 (2010-12-21).
WIKI_ADDR_FRAME = bytes.fromhex(
    "f9beb4d96164647200000000000000001f000000ed52399b"
    "01e215104d010000000000000000000000000000000000ffff0a000001208d"
)

#: Bitcoin Core src/test/netbase_tests.cpp stream_addrv1_hex.
CORE_ADDRV1_PAYLOAD = bytes.fromhex(
    "03"
    "61bc6649" "0000000000000000" "00000000000000000000000000000001" "0000"
    "79627683" "0100000000000000" "00000000000000000000000000000001" "00f1"
    "ffffffff" "4804000000000000" "00000000000000000000000000000001" "f1f2"
)

#: Bitcoin Core src/test/netbase_tests.cpp stream_addrv2_hex.
CORE_ADDRV2_PAYLOAD = bytes.fromhex(
    "03"
    "61bc6649" "00" "02" "10" "00000000000000000000000000000001" "0000"
    "79627683" "01" "02" "10" "00000000000000000000000000000001" "00f1"
    "ffffffff" "fd4804" "02" "10" "00000000000000000000000000000001" "f1f2"
)

LOOPBACK6 = bytes(15) + b"\x01"
#: netbase_tests.cpp fixture_addresses, which both streams above encode.
CORE_FIXTURE_ENTRIES = [
    AddrEntry(0x4966BC61, 0, NetworkAddress(Network.IPV6, LOOPBACK6, 0)),
    AddrEntry(0x83766279, 1, NetworkAddress(Network.IPV6, LOOPBACK6, 0x00F1)),
    AddrEntry(0xFFFFFFFF, 0x448, NetworkAddress(Network.IPV6, LOOPBACK6, 0xF1F2)),
]

#: Bitcoin Core src/test/net_tests.cpp cnetaddr_serialize_v2 / _unserialize_v2:
#: (hex of networkID | CompactSize length | address, expected text or None
#: when the address decodes but is not valid).
CORE_V2_VALID = [
    ("010401020304", "1.2.3.4"),
    ("02100102030405060708090a0b0c0d0e0f10", "102:304:506:708:90a:b0c:d0e:f10"),
    ("02101a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b", "1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b"),
    (
        "042079bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f",
        "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion",
    ),
    (
        "042053cd5648488c4707914182655b7664034e09e66f7e8cbf1084e654eb56c5bd88",
        "kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion",
    ),
    (
        "0520a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87",
        "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p",
    ),
    ("0610fc000001000200030004000500060007", "fc00:1:2:3:4:5:6:7"),
]
CORE_V2_INVALID_BUT_DECODED = [
    "021000000000000000000000000000000000",  # ::
    "0210fd6b88c08724ca978112ca1bbdcafac2",  # embedded "internal"
    "021000000000000000000000ffff01020304",  # embedded IPv4
    "0210fd87d87eeb430102030405060708090a",  # embedded Tor v2
    "030af1f2f3f4f5f6f7f8f9fa",  # Tor v2: unknown to Core since v0.2.0 of BIP155
    "aa0401020304",  # unknown network
    "aa00",  # unknown network, empty
]
CORE_V2_REJECTED = [
    "01040102",  # IPv4, address shorter than its length
    "010501020304",  # "BIP155 IPv4 address with length 5 (should be 4)"
    "01fd010201020304",  # "Address too long: 513 > 512"
    "020400",  # "BIP155 IPv6 address with length 4 (should be 16)"
    "040000",  # "BIP155 TORv3 address with length 0 (should be 32)"
    "050300",  # "BIP155 I2P address with length 3 (should be 32)"
    "060100",  # "BIP155 CJDNS address with length 1 (should be 16)"
    "aafe0000000201020304050607",  # "Address too long: 33554432 > 512"
]


def single_addrv2(address_hex, time=1, services=b"\x09", port=8333):
    """An addrv2 payload of one entry around one of Core's CNetAddr vectors."""
    return (
        b"\x01"
        + struct.pack("<I", time)
        + services
        + bytes.fromhex(address_hex)
        + struct.pack(">H", port)
    )


class WikiVectorTests(SynchronousTestCase):
    def test_version_frame(self):
        decoder = FrameDecoder(MAIN)
        (frame,) = decoder.feed(WIKI_VERSION_FRAME)
        self.assertEqual(frame.command, "version")
        self.assertEqual(len(frame.payload), 100)
        version = frame.decode()
        self.assertEqual(version.version, 60002)
        self.assertEqual(version.services, 1)
        self.assertEqual(version.timestamp, 1355854353)  # 2012-12-18 18:12:33 UTC
        self.assertEqual(version.addr_recv_services, 1)
        self.assertEqual(version.addr_recv, NetworkAddress(Network.IPV4, bytes(4), 0))
        self.assertEqual(version.addr_from_services, 1)
        self.assertEqual(version.addr_from, NetworkAddress(Network.IPV4, bytes(4), 0))
        self.assertEqual(version.nonce, 0x6517E68C5DB32E3B)
        self.assertEqual(version.user_agent, "/Satoshi:0.7.2/")
        self.assertEqual(version.start_height, 212672)
        self.assertIsNone(version.relay)
        self.assertEqual(encode_frame(MAIN, version), WIKI_VERSION_FRAME)

    def test_verack_frame(self):
        self.assertEqual(FrameDecoder(MAIN).feed(WIKI_VERACK_FRAME), [Frame("verack", b"")])
        self.assertEqual(encode_frame(MAIN, VerAck()), WIKI_VERACK_FRAME)

    def test_addr_frame(self):
        (frame,) = FrameDecoder(MAIN).feed(WIKI_ADDR_FRAME)
        expected = Addr([AddrEntry(0x4D1015E2, 1, NetworkAddress.parse("10.0.0.1:8333"))])
        self.assertEqual(frame.decode(), expected)
        self.assertEqual(encode_frame(MAIN, expected), WIKI_ADDR_FRAME)


class CoreVectorTests(SynchronousTestCase):
    def test_addr_v1_stream(self):
        message = decode_message("addr", CORE_ADDRV1_PAYLOAD)
        self.assertEqual(list(message.addresses), CORE_FIXTURE_ENTRIES)
        self.assertEqual(Addr(CORE_FIXTURE_ENTRIES).encode_payload(), CORE_ADDRV1_PAYLOAD)

    def test_addr_v2_stream(self):
        message = decode_message("addrv2", CORE_ADDRV2_PAYLOAD)
        self.assertEqual(list(message.addresses), CORE_FIXTURE_ENTRIES)
        self.assertEqual(AddrV2(CORE_FIXTURE_ENTRIES).encode_payload(), CORE_ADDRV2_PAYLOAD)

    def test_valid_bip155_addresses(self):
        for address_hex, text in CORE_V2_VALID:
            (entry,) = decode_message("addrv2", single_addrv2(address_hex)).addresses
            address = entry.address
            self.assertTrue(address.is_valid(), text)
            self.assertEqual(address.host_text, text)
            self.assertEqual(address.v2_bytes().hex(), address_hex)
            self.assertEqual(NetworkAddress.parse(text, 8333, cjdns=True), address)

    def test_invalid_bip155_addresses_decode(self):
        for address_hex in CORE_V2_INVALID_BUT_DECODED:
            payload = single_addrv2(address_hex)
            message = decode_message("addrv2", payload)
            self.assertFalse(message.addresses[0].address.is_valid(), address_hex)
            self.assertEqual(message.encode_payload(), payload)

    def test_rejected_bip155_addresses(self):
        for address_hex in CORE_V2_REJECTED:
            error = self.assertRaises(
                MalformedMessage, decode_message, "addrv2", single_addrv2(address_hex)
            )
            self.assertEqual(error.message_type, "addrv2", address_hex)
            self.assertFalse(error.fatal)

    def test_v1_internal_vector(self):
        # cnetaddr_serialize_v1/v2: SetInternal("a").
        address = NetworkAddress.from_v1(bytes.fromhex("fd6b88c08724ca978112ca1bbdcafac2"), 0)
        self.assertEqual(address.v2_bytes().hex(), "0210fd6b88c08724ca978112ca1bbdcafac2")


class BitcoinlibTestCase(SynchronousTestCase):
    def setUp(self):
        bitcoin.SelectParams("mainnet")
        self.assertEqual(bitcoin.params.MESSAGE_START, MAIN)


class BitpeerToBitcoinlibTests(BitcoinlibTestCase):
    """Frames bitpeer writes, read by python-bitcoinlib."""

    def parse(self, message):
        frame = encode_frame(MAIN, message)
        parsed = bl.MsgSerializable.from_bytes(frame)
        self.assertEqual(parsed.command.decode("ascii"), message.command)
        # And the payload alone through the class's own deserializer.
        again = type(parsed).msg_deser(io.BytesIO(message.encode_payload()))
        self.assertEqual(again.to_bytes(), parsed.to_bytes())
        return parsed

    def test_version(self):
        message = Version(
            version=70016,
            services=0x409,
            timestamp=1700000000,
            addr_recv=NetworkAddress.parse("1.2.3.4:8333"),
            addr_recv_services=0xC09,
            addr_from=NetworkAddress.parse("[2001:4860::8888]:18333"),
            addr_from_services=0,
            nonce=0x0123456789ABCDEF,
            user_agent="/bitpeer:0.1/",
            start_height=850000,
            relay=False,
        )
        parsed = self.parse(message)
        self.assertIsInstance(parsed, bl.msg_version)
        self.assertEqual(parsed.nVersion, 70016)
        self.assertEqual(parsed.nServices, 0x409)
        self.assertEqual(parsed.nTime, 1700000000)
        self.assertEqual(
            (parsed.addrTo.nServices, parsed.addrTo.ip, parsed.addrTo.port),
            (0xC09, "1.2.3.4", 8333),
        )
        self.assertEqual(
            (parsed.addrFrom.nServices, parsed.addrFrom.ip, parsed.addrFrom.port),
            (0, "2001:4860::8888", 18333),
        )
        self.assertEqual(parsed.nNonce, 0x0123456789ABCDEF)
        self.assertEqual(parsed.strSubVer, b"/bitpeer:0.1/")
        self.assertEqual(parsed.nStartingHeight, 850000)
        self.assertEqual(parsed.fRelay, 0)
        # bitcoinlib writes the same bytes back.
        self.assertEqual(parsed.to_bytes(), encode_frame(MAIN, message))

    def test_verack_getaddr(self):
        self.assertIsInstance(self.parse(VerAck()), bl.msg_verack)
        self.assertIsInstance(self.parse(GetAddr()), bl.msg_getaddr)

    def test_addr_ipv4_and_ipv6(self):
        message = Addr(
            [
                AddrEntry(1700000000, 9, NetworkAddress.parse("1.2.3.4:8333")),
                AddrEntry(1700000001, 0x409, NetworkAddress.parse("[2001:db8::1]:18333")),
            ]
        )
        parsed = self.parse(message)
        self.assertEqual(
            [(a.nTime, a.nServices, a.ip, a.port) for a in parsed.addrs],
            [(1700000000, 9, "1.2.3.4", 8333), (1700000001, 0x409, "2001:db8::1", 18333)],
        )

    def test_ping_pong(self):
        self.assertEqual(self.parse(Ping(0xDEADBEEF12345678)).nonce, 0xDEADBEEF12345678)
        self.assertEqual(self.parse(Pong(7)).nonce, 7)

    def test_inv(self):
        parsed = self.parse(Inv([InvVector(1, H1), InvVector(2, H2)]))
        self.assertEqual([(i.type, i.hash) for i in parsed.inv], [(1, H1), (2, H2)])
        parsed = self.parse(GetData([InvVector(2, H2)]))
        self.assertEqual([(i.type, i.hash) for i in parsed.inv], [(2, H2)])

    def test_getheaders(self):
        parsed = self.parse(GetHeaders(70016, [H1, H2], H2))
        self.assertEqual(parsed.locator.nVersion, 70016)
        self.assertEqual(parsed.locator.vHave, [H1, H2])
        self.assertEqual(parsed.hashstop, H2)
        parsed = self.parse(GetBlocks(60002, [H1]))
        self.assertEqual(parsed.hashstop, bytes(32))


class BitcoinlibToBitpeerTests(BitcoinlibTestCase):
    """Frames python-bitcoinlib writes, read by bitpeer's FrameDecoder."""

    def decode(self, bl_message):
        frames = FrameDecoder(MAIN).feed(bl_message.to_bytes())
        self.assertEqual(len(frames), 1)
        self.assertIsInstance(frames[0], Frame)
        return frames[0].decode()

    def test_version(self):
        message = bl.msg_version()
        message.nTime = 1700000000
        message.nNonce = 42
        message.addrTo.ip, message.addrTo.port = "5.6.7.8", 8333
        message.addrFrom.ip, message.addrFrom.port = "::1", 1
        message.nStartingHeight = 800000
        decoded = self.decode(message)
        self.assertEqual(
            decoded,
            Version(
                version=bl_net.PROTO_VERSION,
                services=1,
                timestamp=1700000000,
                addr_recv=NetworkAddress.parse("5.6.7.8:8333"),
                addr_recv_services=1,
                addr_from=NetworkAddress.parse("[::1]:1"),
                addr_from_services=1,
                nonce=42,
                user_agent=message.strSubVer.decode("ascii"),
                start_height=800000,
                # python-bitcoinlib 0.12 always writes the BIP37 byte.
                relay=True,
            ),
        )
        self.assertEqual(decoded.version, 60002)

    def test_version_relay_false(self):
        message = bl.msg_version()
        message.fRelay = False
        self.assertIs(self.decode(message).relay, False)

    def test_verack_getaddr_ping_pong(self):
        self.assertEqual(self.decode(bl.msg_verack()), VerAck())
        self.assertEqual(self.decode(bl.msg_getaddr()), GetAddr())
        self.assertEqual(self.decode(bl.msg_ping(nonce=5)), Ping(5))
        self.assertEqual(self.decode(bl.msg_pong(nonce=2**64 - 1)), Pong(2**64 - 1))

    def test_addr(self):
        message = bl.msg_addr()
        for time, services, host, port in (
            (1700000000, 1, "10.0.0.1", 8333),
            (1700000005, 0x409, "2001:db8::5", 8334),
        ):
            address = bl_net.CAddress()
            address.nTime, address.nServices, address.ip, address.port = (
                time, services, host, port)
            message.addrs.append(address)
        self.assertEqual(
            self.decode(message),
            Addr(
                [
                    AddrEntry(1700000000, 1, NetworkAddress.parse("10.0.0.1:8333")),
                    AddrEntry(1700000005, 0x409, NetworkAddress.parse("[2001:db8::5]:8334")),
                ]
            ),
        )

    def test_inv_and_getheaders(self):
        message = bl.msg_inv()
        item = bl_net.CInv()
        item.type, item.hash = 2, H1
        message.inv.append(item)
        self.assertEqual(self.decode(message), Inv([InvVector(2, H1)]))

        message = bl.msg_getheaders()
        message.locator.vHave = [H1, H2]
        message.hashstop = H2
        self.assertEqual(self.decode(message), GetHeaders(60002, [H1, H2], H2))
