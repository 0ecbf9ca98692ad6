"""
Tests for bitpeer.wire.address: NetworkAddress in its v1, v2 and text forms,
Core's IsValid/IsRoutable classification, AddrEntry, and the v1/v2 entry list
codecs (every cut point of a truncated entry, every CompactSize width).
"""

import pickle
import struct

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.address import (
    ADDRESS_LENGTHS,
    INTERNAL_IN_IPV6_PREFIX,
    IPV4_MAPPED_PREFIX,
    MAX_ADDRV2_SIZE,
    TORV2_IN_IPV6_PREFIX,
    AddrEntry,
    Network,
    NetworkAddress,
    split_host_port,
)
from bitpeer.wire.addrlist import (
    V1_ENTRY_SIZE,
    decode_v1_entries,
    decode_v2_entries,
    encode_v1_entries,
    encode_v2_entries,
)
from bitpeer.wire.encoding import compact_size
from bitpeer.wire.errors import MalformedMessage, ProtocolError

#: The Tor Project's own v3 onion service, which Core's netbase_tests also use.
TOR_PROJECT_ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
TOR_PROJECT_PUBKEY = bytes.fromhex(
    "79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f"
)
#: Core's src/test/net_tests.cpp (cnetaddr_unserialize_v2): a valid I2P name.
CORE_I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
CORE_I2P_HASH = bytes.fromhex(
    "a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87"
)


def ip(text, port=8333, cjdns=False):
    """A NetworkAddress from host text."""
    return NetworkAddress.from_host(text, port, cjdns=cjdns)


def v2_entry(time, services_raw, net_id, length_raw, host, port):
    """One BIP155 entry from raw pieces (services and length pre-encoded)."""
    return (
        struct.pack("<I", time)
        + services_raw
        + bytes((net_id,))
        + length_raw
        + host
        + struct.pack(">H", port)
    )


class V1FormTests(SynchronousTestCase):
    """The 16-byte form of addr and version (Core's SetLegacyIPv6)."""

    def test_ipv4_mapped_decodes_as_ipv4(self):
        address = NetworkAddress.from_v1(IPV4_MAPPED_PREFIX + b"\x01\x02\x03\x04", 8333)
        self.assertEqual(address.network, Network.IPV4)
        self.assertEqual(address.host, b"\x01\x02\x03\x04")
        self.assertEqual(str(address), "1.2.3.4:8333")
        self.assertEqual(address.v1_bytes(), bytes.fromhex("00000000000000000000ffff01020304"))

    def test_ipv6(self):
        raw = bytes.fromhex("1a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b")
        address = NetworkAddress.from_v1(raw, 18333)
        self.assertEqual(address.network, Network.IPV6)
        self.assertEqual(address.v1_bytes(), raw)
        self.assertEqual(str(address), "[1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b]:18333")
        self.assertTrue(address.is_valid())

    def test_torv2_onioncat_is_ipv6_and_invalid(self):
        raw = bytes.fromhex("fd87d87eeb43f1f2f3f4f5f6f7f8f9fa")
        address = NetworkAddress.from_v1(raw, 8333)
        self.assertEqual(address.network, Network.IPV6)
        self.assertTrue(raw.startswith(TORV2_IN_IPV6_PREFIX))
        self.assertFalse(address.is_valid())
        self.assertFalse(address.is_routable())

    def test_internal_prefix_is_ipv6_and_invalid(self):
        # Core's SetInternal("a"), from src/test/net_tests.cpp.
        raw = bytes.fromhex("fd6b88c08724ca978112ca1bbdcafac2")
        address = NetworkAddress.from_v1(raw, 8333)
        self.assertEqual(address.network, Network.IPV6)
        self.assertTrue(raw.startswith(INTERNAL_IN_IPV6_PREFIX))
        self.assertFalse(address.is_valid())

    def test_no_v1_form_for_other_networks(self):
        for address in (
            NetworkAddress(Network.TORV3, TOR_PROJECT_PUBKEY, 8333),
            NetworkAddress(Network.I2P, CORE_I2P_HASH, 0),
            NetworkAddress(Network.CJDNS, b"\xfc" + bytes(15), 8333),
            NetworkAddress(0x42, b"abcd", 1),
        ):
            self.assertFalse(address.is_v1_compatible)
            error = self.assertRaises(ProtocolError, address.v1_bytes)
            self.assertEqual(error.field, "address")

    def test_v1_compatible(self):
        self.assertTrue(ip("1.2.3.4").is_v1_compatible)
        self.assertTrue(ip("2001:4860::1").is_v1_compatible)


class V2FormTests(SynchronousTestCase):
    """v2_bytes against Core's cnetaddr_serialize_v2 vectors."""

    def test_vectors(self):
        self.assertEqual(ip("1.2.3.4").v2_bytes().hex(), "010401020304")
        self.assertEqual(
            ip("1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b").v2_bytes().hex(),
            "02101a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b",
        )
        onion = ip("kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion")
        self.assertEqual(
            onion.v2_bytes().hex(),
            "042053cd5648488c4707914182655b7664034e09e66f7e8cbf1084e654eb56c5bd88",
        )

    def test_unknown_network_long_length(self):
        address = NetworkAddress(0x42, bytes(300), 1)
        self.assertEqual(address.v2_bytes()[:4], b"\x42\xfd\x2c\x01")


# (text, valid, routable) for every range in PROTOCOL.md 5.2.
CLASSIFICATION = [
    # public
    ("8.8.8.8", True, True),
    ("1.2.3.4", True, True),
    ("2001:4860:4860::8888", True, True),
    # invalid
    ("0.0.0.0", False, False),
    ("255.255.255.255", False, False),
    ("::", False, False),
    ("2001:db8::1", False, False),  # RFC3849
    ("2001:db8:ffff::1", False, False),
    ("3fff::1", False, False),  # RFC9637 3fff::/20
    ("3fff:fff:ffff::1", False, False),
    ("3fff:1000::1", True, True),  # just outside /20
    ("::ffff:0:1.2.3.4", True, True),  # RFC6145 is plain IPv6 to IsValid
    # RFC1918
    ("10.0.0.1", True, False),
    ("10.255.255.255", True, False),
    ("172.16.0.1", True, False),
    ("172.31.255.255", True, False),
    ("172.15.255.255", True, True),
    ("172.32.0.0", True, True),
    ("192.168.1.1", True, False),
    ("192.169.0.1", True, True),
    # RFC2544 198.18.0.0/15
    ("198.18.0.0", True, False),
    ("198.19.255.255", True, False),
    ("198.20.0.1", True, True),
    # RFC3927 169.254/16
    ("169.254.1.1", True, False),
    ("169.255.1.1", True, True),
    # RFC4862 fe80::/64 (Core checks exactly the /64)
    ("fe80::1", True, False),
    ("fe80::1:2:3:4", True, False),
    ("fe80:0:0:1::1", True, True),
    # RFC6598 100.64.0.0/10
    ("100.64.0.1", True, False),
    ("100.127.255.255", True, False),
    ("100.63.255.255", True, True),
    ("100.128.0.0", True, True),
    # RFC5737 documentation: valid (IsValid) but not routable
    ("192.0.2.1", True, False),
    ("198.51.100.7", True, False),
    ("203.0.113.200", True, False),
    ("192.0.3.1", True, True),
    # RFC4193 fc00::/7
    ("fc00::1", True, False),
    ("fdff:ffff::1", True, False),
    # RFC4843 2001:10::/28, RFC7343 2001:20::/28
    ("2001:10::1", True, False),
    ("2001:1f:ffff::1", True, False),
    ("2001:20::1", True, False),
    ("2001:2f::1", True, False),
    ("2001:30::1", True, True),
    # local
    ("127.0.0.1", True, False),
    ("127.255.255.254", True, False),
    ("0.1.2.3", True, False),
    ("::1", True, False),
    # 240/4 reserved, multicast
    ("240.0.0.1", True, False),
    ("254.255.255.255", True, False),
    ("224.0.0.1", True, False),
    ("239.255.255.255", True, False),
    ("ff02::1", True, False),
]


class ClassificationTests(SynchronousTestCase):
    """is_valid / is_routable for every range of PROTOCOL.md 5.2."""

    def test_table(self):
        for text, valid, routable in CLASSIFICATION:
            address = ip(text)
            self.assertEqual(address.is_valid(), valid, f"{text} valid")
            self.assertEqual(address.is_routable(), routable, f"{text} routable")

    def test_predicates(self):
        self.assertTrue(ip("10.1.1.1").is_private())
        self.assertTrue(ip("fc00::1").is_private())
        self.assertTrue(ip("2001:10::1").is_private())
        self.assertFalse(ip("8.8.8.8").is_private())
        self.assertTrue(ip("169.254.0.1").is_link_local())
        self.assertTrue(ip("fe80::1").is_link_local())
        self.assertTrue(ip("192.0.2.1").is_documentation())
        self.assertTrue(ip("2001:db8::1").is_documentation())
        self.assertTrue(ip("3fff::1").is_documentation())
        self.assertTrue(ip("127.0.0.1").is_loopback())
        self.assertTrue(ip("::1").is_loopback())
        self.assertFalse(ip("::2").is_loopback())
        self.assertTrue(ip("224.0.0.1").is_multicast())
        self.assertTrue(ip("ff00::").is_multicast())
        self.assertTrue(ip("240.0.0.0").is_reserved())
        self.assertFalse(ip("239.0.0.0").is_reserved())

    def test_ipv6_entries_hiding_other_networks_are_invalid(self):
        # Core: an IPV6 BIP155 entry with an IPv4, Tor v2 or internal prefix.
        for prefix in (IPV4_MAPPED_PREFIX, TORV2_IN_IPV6_PREFIX, INTERNAL_IN_IPV6_PREFIX):
            host = prefix + bytes(16 - len(prefix))
            address = NetworkAddress(Network.IPV6, host[:15] + b"\x01", 8333)
            self.assertFalse(address.is_valid(), prefix.hex())

    def test_overlay_networks_are_routable(self):
        for address in (
            NetworkAddress(Network.TORV3, TOR_PROJECT_PUBKEY, 8333),
            NetworkAddress(Network.I2P, CORE_I2P_HASH, 0),
            NetworkAddress(Network.CJDNS, bytes.fromhex("fc000001000200030004000500060007"), 8333),
        ):
            self.assertTrue(address.is_known)
            self.assertTrue(address.is_valid(), address)
            self.assertTrue(address.is_routable(), address)

    def test_cjdns_outside_fc_is_invalid(self):
        address = NetworkAddress(Network.CJDNS, b"\xfd" + bytes(15), 8333)
        self.assertFalse(address.is_valid())
        self.assertFalse(address.is_routable())

    def test_unknown_networks_never_valid(self):
        for network, host in ((Network.TORV2, bytes(10)), (3, b"x" * 10), (0x42, b"abcd"),
                              (Network.YGGDRASIL, b"\x02" + bytes(15)), (0, b"")):
            address = NetworkAddress(network, host, 8333)
            self.assertFalse(address.is_known)
            self.assertFalse(address.is_valid())
            self.assertFalse(address.is_routable())


class TextFormTests(SynchronousTestCase):
    """parse / str / host_text for every network."""

    def test_ipv4_round_trip(self):
        address = NetworkAddress.parse("1.2.3.4:8333")
        self.assertEqual(address, NetworkAddress(Network.IPV4, b"\x01\x02\x03\x04", 8333))
        self.assertEqual(str(address), "1.2.3.4:8333")
        self.assertEqual(NetworkAddress.parse(str(address)), address)
        self.assertEqual(address.host_text, "1.2.3.4")
        self.assertEqual(address.network_name, "ipv4")

    def test_ipv6_bracketed_round_trip(self):
        address = NetworkAddress.parse("[2001:4860::8888]:8333")
        self.assertEqual(address.network, Network.IPV6)
        self.assertEqual(address.port, 8333)
        self.assertEqual(str(address), "[2001:4860::8888]:8333")
        self.assertEqual(NetworkAddress.parse(str(address)), address)
        self.assertEqual(address.network_name, "ipv6")

    def test_ipv6_text_is_rfc5952(self):
        address = NetworkAddress.parse("[2001:0DB8:0000:0000:0000:0000:0000:0001]:1")
        self.assertEqual(address.host_text, "2001:db8::1")

    def test_bare_ipv6_with_default_port(self):
        self.assertEqual(NetworkAddress.parse("2001:4860::8888", 18333).port, 18333)
        self.assertEqual(NetworkAddress.parse("[::1]", 1).port, 1)

    def test_default_port_used_only_without_port(self):
        self.assertEqual(NetworkAddress.parse("1.2.3.4", 8333).port, 8333)
        self.assertEqual(NetworkAddress.parse("1.2.3.4:1", 8333).port, 1)

    def test_ipv4_mapped_text_is_ipv4(self):
        address = NetworkAddress.parse("[::ffff:1.2.3.4]:8333")
        self.assertEqual(address.network, Network.IPV4)
        self.assertEqual(str(address), "1.2.3.4:8333")

    def test_whitespace_stripped(self):
        self.assertEqual(NetworkAddress.parse("  1.2.3.4:8333\n"), ip("1.2.3.4"))

    def test_generated_torv3(self):
        pubkey = bytes(range(32))
        address = NetworkAddress(Network.TORV3, pubkey, 8333)
        host = address.host_text
        self.assertEqual(len(host), 56 + len(".onion"))
        self.assertTrue(host.endswith(".onion"))
        self.assertEqual(host, host.lower())
        self.assertEqual(str(address), host + ":8333")
        self.assertEqual(NetworkAddress.parse(str(address)), address)
        self.assertEqual(NetworkAddress.parse(host.upper(), 8333), address)
        self.assertEqual(address.network_name, "onion")

    def test_real_torv3(self):
        address = NetworkAddress.parse(TOR_PROJECT_ONION, 8333)
        self.assertEqual(address.network, Network.TORV3)
        self.assertEqual(address.host, TOR_PROJECT_PUBKEY)
        self.assertEqual(address.host_text, TOR_PROJECT_ONION)

    def test_torv3_bad_checksum(self):
        # Core's net_tests: "TORv3, broken, with wrong checksum".
        error = self.assertRaises(
            ProtocolError,
            NetworkAddress.parse,
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.onion",
            8333,
        )
        self.assertEqual(error.field, "host")
        self.assertIn("checksum", error.rule)

    def test_torv3_corrupted_pubkey(self):
        name = "a" + TOR_PROJECT_ONION[1:]
        self.assertRaises(ProtocolError, NetworkAddress.parse, name, 8333)

    def test_torv3_wrong_version(self):
        # Core's net_tests: "TORv3, broken, with wrong version".
        error = self.assertRaises(
            ProtocolError,
            NetworkAddress.parse,
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscrye.onion",
            8333,
        )
        self.assertIn("version", error.rule)

    def test_torv2_name_rejected(self):
        error = self.assertRaises(
            ProtocolError, NetworkAddress.parse, "6hzph5hv6337r6p2.onion:8333"
        )
        self.assertEqual(error.field, "host")

    def test_onion_not_base32(self):
        bad = "1" * 56 + ".onion"
        error = self.assertRaises(ProtocolError, NetworkAddress.parse, bad, 8333)
        self.assertIn("base32", error.rule)

    def test_i2p(self):
        address = NetworkAddress.parse(CORE_I2P + ":0")
        self.assertEqual(address.network, Network.I2P)
        self.assertEqual(address.host, CORE_I2P_HASH)
        self.assertEqual(address.port, 0)
        self.assertEqual(str(address), CORE_I2P + ":0")
        self.assertEqual(address.network_name, "i2p")
        self.assertEqual(len(CORE_I2P) - len(".b32.i2p"), 52)
        self.assertEqual(NetworkAddress.parse(CORE_I2P.upper(), 0), address)

    def test_i2p_generated_round_trip(self):
        address = NetworkAddress(Network.I2P, bytes(range(100, 132)), 0)
        self.assertEqual(NetworkAddress.parse(str(address)), address)

    def test_i2p_wrong_length(self):
        self.assertRaises(ProtocolError, NetworkAddress.parse, CORE_I2P[1:] + ":0")

    def test_i2p_not_base32(self):
        self.assertRaises(ProtocolError, NetworkAddress.parse, "0" * 52 + ".b32.i2p:0")

    def test_i2p_non_canonical_spare_bits(self):
        # The 52nd character carries 1 data bit and 4 spare bits; "q" sets
        # the data bit only.  "r" also sets a spare bit: Core rejects it.
        self.assertEqual(CORE_I2P[51], "q")
        bad = CORE_I2P[:51] + "r" + CORE_I2P[52:]
        error = self.assertRaises(ProtocolError, NetworkAddress.parse, bad, 0)
        self.assertEqual(error.field, "host")

    def test_cjdns_only_when_asked(self):
        text = "[fc00:1:2:3:4:5:6:7]:8333"
        cjdns = NetworkAddress.parse(text, cjdns=True)
        self.assertEqual(cjdns.network, Network.CJDNS)
        self.assertEqual(cjdns.host, bytes.fromhex("fc000001000200030004000500060007"))
        self.assertEqual(str(cjdns), text)
        self.assertEqual(cjdns.network_name, "cjdns")
        plain = NetworkAddress.parse(text)
        self.assertEqual(plain.network, Network.IPV6)
        self.assertFalse(plain.is_routable())

    def test_cjdns_only_fc00_slash_8(self):
        self.assertEqual(NetworkAddress.parse("[fd00::1]:1", cjdns=True).network, Network.IPV6)
        self.assertEqual(NetworkAddress.parse("[fcff::1]:1", cjdns=True).network, Network.CJDNS)

    def test_unknown_network_text(self):
        address = NetworkAddress(0x42, b"\xab\xcd", 7)
        self.assertEqual(address.network_name, "unknown-66")
        self.assertEqual(str(address), "unknown-66:abcd:7")
        self.assertIn("unknown-66", repr(address))

    def test_repr(self):
        self.assertEqual(repr(ip("1.2.3.4")), "NetworkAddress(ipv4 1.2.3.4:8333)")


class ParseErrorTests(SynchronousTestCase):
    """Bad text raises ProtocolError naming the part that is wrong."""

    def assertParseError(self, text, field, default_port=None, **kwargs):
        error = self.assertRaises(
            ProtocolError, NetworkAddress.parse, text, default_port, **kwargs
        )
        self.assertEqual(error.field, field, text)

    def test_no_port_no_default(self):
        self.assertParseError("1.2.3.4", "port")
        self.assertParseError("[::1]", "port")
        self.assertParseError(TOR_PROJECT_ONION, "port")

    def test_junk_host(self):
        for text in ("junk:8333", "1.2.3:8333", "1.2.3.4.5:8333", "example.com:8333",
                     ":8333", "[not-ipv6]:8333", "[zz::1]:8333"):
            self.assertParseError(text, "host")

    def test_bad_port(self):
        for text in ("1.2.3.4:x", "1.2.3.4:", "1.2.3.4:-1", "1.2.3.4:+80",
                     "1.2.3.4:65536", "1.2.3.4:99999", "[::1]:", "[::1]:port"):
            self.assertParseError(text, "port")

    def test_non_ascii_digits_in_port(self):
        # str.isdigit accepts these, int() does not (or reads them as digits).
        for text in ("1.2.3.4:²", "1.2.3.4:８３３３", "1.2.3.4:٨٣٣٣"):
            self.assertParseError(text, "port")

    def test_nul_in_host(self):
        self.assertParseError("1.2.3.4\x00:8333", "host")
        self.assertParseError("[::1\x00]:8333", "host")

    def test_brackets(self):
        self.assertParseError("[::1:8333", "host")
        self.assertParseError("[::1]8333", "host")

    def test_port_range_edges(self):
        """0 and 65535 are port values (what is dialled refuses 0 elsewhere);
        65536 does not fit."""
        self.assertEqual(NetworkAddress.parse("1.2.3.4:0").port, 0)
        self.assertEqual(NetworkAddress.parse("1.2.3.4:65535").port, 65535)
        self.assertEqual(NetworkAddress.parse("[::1]:65535").port, 65535)
        for text in ("1.2.3.4:65536", "[::1]:65536", "1.2.3.4:070000"):
            self.assertParseError(text, "port")

    def test_port_message(self):
        error = self.assertRaises(ProtocolError, NetworkAddress.parse, "1.2.3.4:70000")
        self.assertEqual(str(error), "port: '1.2.3.4:70000': port 70000 is above 65535")

    def test_empty_host(self):
        for text in ("", "  ", ":8333", "[]", "[]:8333", " :1"):
            self.assertParseError(text, "host", 8333)

    def test_ambiguous_ipv6(self):
        """
        ``::1:8333`` is a valid IPv6 address (``::0.1.131.51``), and
        Core's SplitHostPort reads it so; it is refused, saying how to
        write either meaning, whenever the last group is digits and the
        rest is an address by itself.
        """
        for text in ("::1:8333", "2001:db8::1:18333", "fe80::1:2", "::ffff:1", " ::1:80 "):
            self.assertParseError(text, "host", 8333)
        error = self.assertRaises(ProtocolError, NetworkAddress.parse, "::1:8333", 8333)
        self.assertIn("write [::1]:8333 for address ::1 and port 8333, or [::1:8333]",
                      str(error))

    def test_unambiguous_ipv6(self):
        """Bare IPv6 without a port whose last group cannot be a port, or whose
        head is no address alone, is fine; brackets settle the rest."""
        for text, expected in [
            ("::1", "[::1]:8333"),
            ("2001:db8::1", "[2001:db8::1]:8333"),
            ("2001:db8:0:0:0:0:0:1", "[2001:db8::1]:8333"),
            ("2001:db8::ab", "[2001:db8::ab]:8333"),
            ("::ffff:1.2.3.4", "1.2.3.4:8333"),
            ("[::1:8333]", "[::0.1.131.51]:8333"),
            ("[::1]:8333", "[::1]:8333"),
        ]:
            self.assertEqual(str(NetworkAddress.parse(text, 8333)), expected, text)


class SplitHostPortTests(SynchronousTestCase):
    """split_host_port(): the syntax alone, whatever the host names."""

    def test_forms(self):
        for text, expected in [
            ("example.org", ("example.org", None)),
            ("example.org:8333", ("example.org", 8333)),
            ("1.2.3.4:1", ("1.2.3.4", 1)),
            ("[::1]", ("::1", None)),
            ("[::1]:18444", ("::1", 18444)),
            ("::1", ("::1", None)),
            (" seed.example:0 ", ("seed.example", 0)),
        ]:
            self.assertEqual(split_host_port(text), expected, text)

    def test_refused(self):
        for text in ("", ":1", "[]:1", "host:", "host:x", "host:65536", "::1:8333",
                     "[::1", "[::1]x"):
            self.assertRaises(ProtocolError, split_host_port, text)


class ConstructorTests(SynchronousTestCase):
    """NetworkAddress and AddrEntry refuse what cannot be on the wire."""

    def test_known_network_lengths(self):
        for network, length in ADDRESS_LENGTHS.items():
            self.assertEqual(NetworkAddress(network, b"\xfc" * length, 1).host, b"\xfc" * length)
            for wrong in (0, length - 1, length + 1):
                error = self.assertRaises(
                    ProtocolError, NetworkAddress, network, b"\xfc" * wrong, 1
                )
                self.assertEqual(error.field, "address", (network, wrong))

    def test_expected_lengths(self):
        self.assertEqual(
            ADDRESS_LENGTHS,
            {Network.IPV4: 4, Network.IPV6: 16, Network.TORV3: 32, Network.I2P: 32,
             Network.CJDNS: 16},
        )

    def test_unknown_network_any_length_up_to_512(self):
        self.assertEqual(len(NetworkAddress(0x42, bytes(MAX_ADDRV2_SIZE), 1).host), 512)
        self.assertEqual(NetworkAddress(Network.TORV2, bytes(7), 1).network, Network.TORV2)
        error = self.assertRaises(ProtocolError, NetworkAddress, 0x42, bytes(513), 1)
        self.assertEqual(error.field, "address")

    def test_network_id(self):
        self.assertIs(NetworkAddress(1, bytes(4), 1).network, Network.IPV4)
        self.assertEqual(type(NetworkAddress(0x42, b"", 1).network), int)
        for bad in (-1, 256, "1", None, 1.0):
            error = self.assertRaises(ProtocolError, NetworkAddress, bad, bytes(4), 1)
            self.assertEqual(error.field, "network")

    def test_host_must_be_bytes(self):
        for bad in ("1234", bytearray(4), memoryview(bytes(4)), None):
            error = self.assertRaises(ProtocolError, NetworkAddress, Network.IPV4, bad, 1)
            self.assertEqual(error.field, "address")

    def test_port_range(self):
        for bad in (-1, 65536, "80", None, 80.0):
            error = self.assertRaises(
                ProtocolError, NetworkAddress, Network.IPV4, bytes(4), bad
            )
            self.assertEqual(error.field, "port")
        self.assertEqual(NetworkAddress(Network.IPV4, bytes(4), 65535).port, 65535)

    def test_addr_entry_fields(self):
        address = ip("1.2.3.4")
        entry = AddrEntry(2**32 - 1, 2**64 - 1, address)
        self.assertEqual((entry.time, entry.services, entry.address),
                         (2**32 - 1, 2**64 - 1, address))
        self.assertIn("services=0xffffffffffffffff", repr(entry))

    def test_addr_entry_time(self):
        for bad in (-1, 2**32, "0", None):
            error = self.assertRaises(ProtocolError, AddrEntry, bad, 0, ip("1.2.3.4"))
            self.assertEqual(error.field, "time")

    def test_addr_entry_services(self):
        for bad in (-1, 2**64, "1"):
            error = self.assertRaises(ProtocolError, AddrEntry, 0, bad, ip("1.2.3.4"))
            self.assertEqual(error.field, "services")

    def test_addr_entry_address(self):
        for bad in (("1.2.3.4", 8333), "1.2.3.4:8333", None):
            error = self.assertRaises(ProtocolError, AddrEntry, 0, 0, bad)
            self.assertEqual(error.field, "address")

    def test_value_semantics(self):
        a, b = ip("1.2.3.4"), NetworkAddress.parse("1.2.3.4:8333")
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual(len({a, b, ip("1.2.3.4", 1)}), 2)
        entry = AddrEntry(1, 9, a)
        self.assertEqual({entry: 1}[AddrEntry(1, 9, b)], 1)

    def test_pickle(self):
        for obj in (ip("1.2.3.4"), NetworkAddress(0x42, b"xy", 3),
                    AddrEntry(5, 9, NetworkAddress(Network.TORV3, TOR_PROJECT_PUBKEY, 1))):
            copy = pickle.loads(pickle.dumps(obj))
            self.assertEqual(copy, obj)
            self.assertIs(type(copy), type(obj))


class V1EntriesTests(SynchronousTestCase):
    """The 30-byte addr entry."""

    def test_round_trip(self):
        entries = [
            AddrEntry(0x4D1015E2, 1, ip("10.0.0.1")),
            AddrEntry(0xFFFFFFFF, 0x409, ip("2001:4860::1", 65535)),
            AddrEntry(0, 0, NetworkAddress.from_v1(bytes.fromhex("fd87d87eeb43f1f2f3f4f5f6f7f8f9fa"), 1)),
        ]
        data = encode_v1_entries(entries)
        self.assertEqual(len(data), 3 * V1_ENTRY_SIZE)
        self.assertEqual(decode_v1_entries(data, 3), entries)

    def test_layout(self):
        data = encode_v1_entries([AddrEntry(0x4D1015E2, 1, ip("10.0.0.1"))])
        # The Bitcoin wiki's addr example entry.
        self.assertEqual(
            data.hex(), "e215104d010000000000000000000000000000000000ffff0a000001208d"
        )

    def test_encode_refuses_v2_only(self):
        entry = AddrEntry(0, 0, NetworkAddress(Network.TORV3, TOR_PROJECT_PUBKEY, 1))
        self.assertRaises(ProtocolError, encode_v1_entries, [entry])


class V2EntriesTests(SynchronousTestCase):
    """decode_v2_entries follows Core's CAddress/CNetAddr V2 deserializer."""

    def decode_one(self, data):
        entries, pos = decode_v2_entries(data, 0, 1)
        self.assertEqual(pos, len(data))
        self.assertEqual(len(entries), 1)
        return entries[0]

    def assertMalformed(self, data, count=1, field=None):
        error = self.assertRaises(MalformedMessage, decode_v2_entries, data, 0, count)
        if field is not None:
            self.assertEqual(error.field, field)
        self.assertFalse(error.fatal)
        return error

    def test_round_trip_every_network(self):
        entries = [
            AddrEntry(1, 0, ip("1.2.3.4")),
            AddrEntry(2, 0x409, ip("2001:4860::1")),
            AddrEntry(3, 0xC09, NetworkAddress(Network.TORV3, TOR_PROJECT_PUBKEY, 8333)),
            AddrEntry(4, 0x10000, NetworkAddress(Network.I2P, CORE_I2P_HASH, 0)),
            AddrEntry(5, 2**64 - 1, NetworkAddress(Network.CJDNS, b"\xfc" + bytes(15), 8333)),
            AddrEntry(6, 1, NetworkAddress(Network.TORV2, bytes(10), 8333)),
            AddrEntry(7, 1, NetworkAddress(0x42, bytes(300), 1)),
            AddrEntry(8, 1, NetworkAddress(0, b"", 0)),
        ]
        data = b"junk" + encode_v2_entries(entries) + b"tail"
        decoded, pos = decode_v2_entries(data, 4, len(entries))
        self.assertEqual(decoded, entries)
        self.assertEqual(pos, len(data) - 4)

    def test_known_network_wrong_length(self):
        for net_id, length in ((1, 5), (1, 3), (2, 4), (2, 17), (4, 0), (5, 3), (6, 1)):
            data = v2_entry(0, b"\x00", net_id, bytes((length,)), bytes(length), 1)
            error = self.assertMalformed(data, field="addresses")
            self.assertIn(f"length {length}", error.rule)

    def test_unknown_network_kept_and_decoding_continues(self):
        data = (
            v2_entry(10, b"\x01", 3, b"\x0a", bytes.fromhex("f1f2f3f4f5f6f7f8f9fa"), 8333)
            + v2_entry(11, b"\x01", 0x42, b"\x04", b"\x01\x02\x03\x04", 1)
            + v2_entry(12, b"\x01", 0xAA, b"\x00", b"", 2)
            + v2_entry(13, b"\x09", 1, b"\x04", b"\x01\x02\x03\x04", 8333)
        )
        entries, pos = decode_v2_entries(data, 0, 4)
        self.assertEqual(pos, len(data))
        torv2, unknown, empty, ipv4 = (e.address for e in entries)
        self.assertEqual(torv2.network, Network.TORV2)
        self.assertEqual(unknown.network, 0x42)
        self.assertEqual(unknown.host, b"\x01\x02\x03\x04")
        self.assertEqual(empty.network, 0xAA)
        for address in (torv2, unknown, empty):
            self.assertFalse(address.is_valid())
        self.assertEqual(entries[3], AddrEntry(13, 9, ip("1.2.3.4")))
        self.assertEqual(encode_v2_entries(entries), data)

    def test_address_over_512_bytes(self):
        data = v2_entry(0, b"\x00", 0x42, compact_size(513), bytes(513), 1)
        error = self.assertMalformed(data, field="addresses")
        self.assertIn("513 > 512", error.rule)

    def test_known_network_over_512_bytes(self):
        # Core's net_tests: IPv4 with length fd0102 (513).
        data = v2_entry(0, b"\x00", 1, bytes.fromhex("fd0102"), b"\x01\x02\x03\x04", 1)
        self.assertMalformed(data, field="addresses")

    def test_length_max_size(self):
        # Core's net_tests: unknown id with length fe00000002 (MAX_SIZE).
        data = v2_entry(0, b"\x00", 0xAA, bytes.fromhex("fe00000002"), bytes(7), 1)
        self.assertMalformed(data, field="addresses")

    def test_length_over_max_size(self):
        data = v2_entry(0, b"\x00", 0xAA, bytes.fromhex("fe01000002"), bytes(7), 1)
        self.assertMalformed(data, field="address length")

    def test_address_512_bytes_accepted(self):
        entry = self.decode_one(v2_entry(0, b"\x00", 0x42, compact_size(512), bytes(512), 1))
        self.assertEqual(len(entry.address.host), 512)

    def test_non_canonical_address_length(self):
        data = v2_entry(0, b"\x00", 1, bytes.fromhex("fd0400"), b"\x01\x02\x03\x04", 1)
        error = self.assertMalformed(data, field="address length")
        self.assertIn("non-canonical", error.rule)

    def test_services_widths(self):
        for raw, value in (
            (b"\x00", 0),
            (b"\xfc", 0xFC),
            (bytes.fromhex("fdfd00"), 0xFD),
            (bytes.fromhex("fd0904"), 0x409),
            (bytes.fromhex("fd090c"), 0xC09),
            (bytes.fromhex("fe00000100"), 0x10000),
            (bytes.fromhex("feffffffff"), 0xFFFFFFFF),
            (bytes.fromhex("ff0000000001000000"), 0x100000000),
            (bytes.fromhex("ff0000000000000080"), 2**63),  # over MAX_SIZE: allowed
            (bytes.fromhex("ffffffffffffffffff"), 2**64 - 1),
        ):
            entry = self.decode_one(v2_entry(7, raw, 1, b"\x04", b"\x01\x02\x03\x04", 8333))
            self.assertEqual(entry.services, value, raw.hex())
            self.assertEqual(entry.address, ip("1.2.3.4"))
            self.assertEqual(encode_v2_entries([entry])[4:4 + len(raw)], raw)

    def test_services_non_canonical(self):
        for raw in (
            bytes.fromhex("fd0900"),
            bytes.fromhex("fdfc00"),
            bytes.fromhex("feffff0000"),
            bytes.fromhex("ffffffffff00000000"),
        ):
            data = v2_entry(7, raw, 1, b"\x04", b"\x01\x02\x03\x04", 8333)
            error = self.assertMalformed(data, field="services")
            self.assertIn("non-canonical", error.rule)

    def test_truncated_at_every_cut_point(self):
        entries = [
            v2_entry(1, b"\x09", 1, b"\x04", b"\x01\x02\x03\x04", 8333),
            v2_entry(1, bytes.fromhex("fd0904"), 2, b"\x10", bytes(15) + b"\x01", 8333),
            v2_entry(1, bytes.fromhex("fe00000100"), 4, b"\x20", TOR_PROJECT_PUBKEY, 1),
            v2_entry(1, bytes.fromhex("ff0000000001000000"), 5, b"\x20", CORE_I2P_HASH, 0),
            v2_entry(1, b"\x00", 0x42, compact_size(300), bytes(300), 2),
            v2_entry(1, b"\x00", 0xAA, b"\x00", b"", 2),
        ]
        for full in entries:
            self.decode_one(full)
            for cut in range(len(full)):
                self.assertMalformed(full[:cut])
                # With a complete entry before it, the count runs past the data.
                self.assertMalformed(full + full[:cut], count=2)

    def test_count_larger_than_entries(self):
        one = v2_entry(1, b"\x00", 1, b"\x04", bytes(4), 1)
        self.assertMalformed(one * 3, count=4, field="addresses")

    def test_zero_count(self):
        self.assertEqual(decode_v2_entries(b"anything", 3, 0), ([], 3))
