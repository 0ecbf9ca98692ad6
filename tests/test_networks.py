"""
Tests for bitpeer.networks (chain parameters, PROTOCOL.md section 6), the
fixed-seed data files, and bitpeer.wire.services.
"""

from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.networks import (
    MAINNET,
    NETWORKS,
    REGTEST,
    SIGNET,
    TESTNET3,
    TESTNET4,
    HostNameRefused,
    NetworkParams,
    SeedName,
    custom_network,
    get_network,
    is_host_name,
    network_for_magic,
    parse_onlynet,
    parse_seed,
    parse_seed_lines,
)
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.services import (
    NODE_BLOOM,
    NODE_COMPACT_FILTERS,
    NODE_NETWORK,
    NODE_NETWORK_LIMITED,
    NODE_NONE,
    NODE_P2P_V2,
    NODE_WITNESS,
    SEEDS_SERVICE_FLAGS,
    ServiceFlags,
    describe,
    may_have_useful_address_db,
)

#: name: (magic, port, genesis) from PROTOCOL.md section 6.
CHAIN_PARAMS = {
    "mainnet": (
        "f9beb4d9",
        8333,
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    ),
    "testnet3": (
        "0b110907",
        18333,
        "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    ),
    "testnet4": (
        "1c163f28",
        48333,
        "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    ),
    "signet": (
        "0a03cf40",
        38333,
        "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    ),
    "regtest": (
        "fabfb5da",
        18444,
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    ),
}


class NamedNetworkTests(SynchronousTestCase):
    def test_names(self):
        self.assertEqual(set(NETWORKS), set(CHAIN_PARAMS))
        self.assertEqual(
            [MAINNET, TESTNET3, TESTNET4, SIGNET, REGTEST],
            [NETWORKS[n] for n in ("mainnet", "testnet3", "testnet4", "signet", "regtest")],
        )

    def test_magic_port_genesis(self):
        for name, (magic, port, genesis) in CHAIN_PARAMS.items():
            params = NETWORKS[name]
            self.assertEqual(params.name, name)
            self.assertEqual(params.magic.hex(), magic, name)
            self.assertEqual(params.default_port, port, name)
            self.assertEqual(params.genesis_hash, genesis, name)

    def test_magics_distinct(self):
        self.assertEqual(len({n.magic for n in NETWORKS.values()}), len(NETWORKS))

    def test_dns_seeds(self):
        self.assertEqual(
            MAINNET.dns_seeds,
            (
                "seed.bitcoin.sipa.be",
                "dnsseed.bluematt.me",
                "seed.bitcoin.jonasschnelli.ch",
                "seed.btc.petertodd.net",
                "seed.bitcoin.sprovoost.nl",
                "dnsseed.emzy.de",
                "seed.bitcoin.wiz.biz",
                "seed.mainnet.achownodes.xyz",
            ),
        )
        self.assertEqual(len(TESTNET3.dns_seeds), 5)
        self.assertIn("testnet-seed.bluematt.me", TESTNET3.dns_seeds)
        self.assertEqual(
            TESTNET4.dns_seeds,
            ("seed.testnet4.bitcoin.sprovoost.nl", "seed.testnet4.wiz.biz"),
        )
        self.assertEqual(
            SIGNET.dns_seeds,
            ("seed.signet.bitcoin.sprovoost.nl", "seed.signet.achownodes.xyz"),
        )
        self.assertEqual(REGTEST.dns_seeds, ())
        for params in NETWORKS.values():
            for seed in params.dns_seeds:
                self.assertFalse(seed.endswith("."), seed)  # no trailing dot

    def test_get_network(self):
        for name, params in NETWORKS.items():
            self.assertIs(get_network(name), params)

    def test_get_network_unknown_lists_choices(self):
        error = self.assertRaises(ValueError, get_network, "testnet")
        for name in NETWORKS:
            self.assertIn(name, str(error))
        self.assertIn("'testnet'", str(error))

    def test_network_for_magic(self):
        for params in NETWORKS.values():
            self.assertIs(network_for_magic(params.magic), params)
        self.assertIsNone(network_for_magic(b"\0\0\0\0"))
        self.assertIsNone(network_for_magic(b"\xf9\xbe\xb4"))

    def test_magic_validation(self):
        for bad in (b"\x01\x02\x03", b"\x01" * 5, "f9beb4d9", None):
            self.assertRaises(ValueError, NetworkParams, name="x", magic=bad, default_port=1)

    def test_frozen(self):
        import attr

        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, MAINNET, "default_port", 1)


class CustomNetworkTests(SynchronousTestCase):
    def test_hex_magic(self):
        params = custom_network("fabfb5da", 18444)
        self.assertEqual(params.magic, bytes.fromhex("fabfb5da"))
        self.assertEqual((params.name, params.default_port), ("custom", 18444))
        self.assertEqual(params.dns_seeds, ())
        self.assertEqual(params.fixed_seeds(), [])

    def test_bytes_magic_and_name(self):
        params = custom_network(b"\x01\x02\x03\x04", 1, name="mysignet")
        self.assertEqual((params.magic, params.name), (b"\x01\x02\x03\x04", "mysignet"))
        self.assertIsNone(network_for_magic(params.magic))

    def test_bad_magic(self):
        for bad in ("zzzzzzzz", "f9beb4", "f9beb4d900", b"\x01"):
            self.assertRaises(ValueError, custom_network, bad, 8333)
        error = self.assertRaises(ValueError, custom_network, "nothex!!", 8333)
        self.assertIn("not hex", str(error))

    def test_bad_port(self):
        for bad in (0, -1, 65536):
            self.assertRaises(ValueError, custom_network, "fabfb5da", bad)
        self.assertEqual(custom_network("fabfb5da", 65535).default_port, 65535)


class ParseSeedLinesTests(SynchronousTestCase):
    def test_lines(self):
        lines = [
            "# a comment",
            "",
            "1.2.3.4:8333",
            "   5.6.7.8   # trailing comment",
            "[2001:4860::1]:18333",
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333",
            "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p:0",
            "[fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa]:8333",
        ]
        seeds = parse_seed_lines(lines, 9999, cjdns=True)
        self.assertEqual(
            [s.network for s in seeds],
            [Network.IPV4, Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P,
             Network.CJDNS],
        )
        self.assertEqual(seeds[1], NetworkAddress.parse("5.6.7.8:9999"))
        self.assertEqual(seeds[4].port, 0)

    def test_cjdns_off(self):
        seeds = parse_seed_lines(["[fc32::1]:8333"], 8333)
        self.assertEqual(seeds[0].network, Network.IPV6)

    def test_error_names_line_number(self):
        lines = ["1.2.3.4:8333", "# ok", "not-an-address:8333", "5.6.7.8"]
        error = self.assertRaises(ValueError, parse_seed_lines, lines, 8333)
        self.assertTrue(str(error).startswith("line 3:"), str(error))
        error = self.assertRaises(ValueError, parse_seed_lines, ["", "1.2.3.4:99999"], 1)
        self.assertTrue(str(error).startswith("line 2:"), str(error))

    def test_empty(self):
        self.assertEqual(parse_seed_lines([], 1), [])
        self.assertEqual(parse_seed_lines(["#", "   "], 1), [])


class ParseSeedTests(SynchronousTestCase):
    """
    parse_seed(): ``--seed`` and seeds-file values.  Addresses are
    NetworkAddresses, host names SeedName promises; the ambiguous, the
    undiallable and the empty are refused with a ValueError saying why.
    """

    def test_addresses(self):
        for text, expected in [
            ("10.0.0.1", "10.0.0.1:18444"),
            ("10.0.0.1:8333", "10.0.0.1:8333"),
            ("[::1]:8333", "[::1]:8333"),
            ("::1", "[::1]:18444"),
            ("[2001:db8::1:8333]", "[2001:db8::1:8333]:18444"),
        ]:
            self.assertEqual(str(parse_seed(text, 18444)), expected, text)

    def test_host_names(self):
        for text, name, port in [
            ("node1", "node1", 18444),
            ("node1:18445", "node1", 18445),
            ("Seed.Example.ORG.", "seed.example.org", 18444),
            ("bitcoind-2.private:1", "bitcoind-2.private", 1),
            ("xn--bcher-kva.example:65535", "xn--bcher-kva.example", 65535),
        ]:
            seed = parse_seed(text, 18444, origin="--seed")
            self.assertEqual(seed, SeedName(name, port), text)
            self.assertEqual(seed.origin, "--seed")
        self.assertEqual(str(SeedName("node1", 18444)), "node1:18444")

    def test_origin_not_part_of_equality(self):
        self.assertEqual(SeedName("a", 1, "--seed"), SeedName("a", 1, "seeds.txt line 2"))

    def assertRefused(self, text, message=None, **kwargs):
        error = self.assertRaises(ValueError, parse_seed, text, 8333, **kwargs)
        if message is not None:
            self.assertEqual(str(error), message)
        return error

    def test_ambiguous_ipv6(self):
        self.assertRefused("::1:8333", "'::1:8333' is ambiguous: write [::1]:8333 for address "
                                       "::1 and port 8333, or [::1:8333] for the address ::1:8333")

    def test_port_zero(self):
        self.assertRefused("10.0.0.1:0", "'10.0.0.1:0': port 0 cannot be dialled")
        self.assertRefused("[::1]:0")
        self.assertRefused("node1:0", "'node1:0': port 0 cannot be dialled")

    def test_port_zero_on_i2p(self):
        """I2P addresses carry port 0 (Core's seed lists write ``:0``)."""
        text = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p:0"
        self.assertEqual(parse_seed(text, 8333).port, 0)

    def test_port_above_65535(self):
        self.assertRefused("10.0.0.1:65536", "'10.0.0.1:65536': port 65536 is above 65535")
        self.assertRefused("node1:65536", "'node1:65536': port 65536 is above 65535")
        self.assertRefused("[::1]:99999")

    def test_empty_host(self):
        for text in (":8333", "[]:8333", "", "   "):
            self.assertRefused(text)

    def test_not_a_name(self):
        for text in ("bad..name", "-bad.example", "bad-.example", "a b", "1.2.3.256",
                     "under_score.example", "x" * 64 + ".example", "n\u00e4me.example",
                     "host:port", "short.onion:8333", "bad.i2p"):
            self.assertRefused(text)
        self.assertRefused("1.2.3.256", "'1.2.3.256' is neither an IPv4, IPv6, .onion or "
                                        ".b32.i2p address nor a host name")

    def test_names_off(self):
        """``--dns 0``: a host name is refused, an address is not."""
        self.assertRefused("node1", "'node1' is a host name, and name lookups are off",
                           names=False)
        self.assertEqual(str(parse_seed("10.0.0.1", 8333, names=False)), "10.0.0.1:8333")
        self.assertRaises(HostNameRefused, parse_seed, "node1", 8333, names=False)
        self.assertRaises(HostNameRefused, parse_seed_lines, ["node1"], 8333)


class IsHostNameTests(SynchronousTestCase):
    """is_host_name(): RFC 1123 names, never .onion or .i2p, never all-digit at the end."""

    def test_names(self):
        for text in ("localhost", "a", "node-1", "seed.example.org", "seed.example.org.",
                     "x" * 63 + ".example", ".".join(["a" * 63] * 3) + "." + "b" * 61):
            self.assertTrue(is_host_name(text), text)

    def test_not_names(self):
        for text in ("", ".", "a..b", ".a", "x" * 64, ".".join(["a" * 63] * 4),
                     "1.2.3.4", "10", "a.1", "-a", "a-", "a_b", "é.example",
                     "abc.onion", "abc.b32.i2p", "abc.I2P"):
            self.assertFalse(is_host_name(text), text)


class ParseSeedLinesNamesTests(SynchronousTestCase):
    """parse_seed_lines() with host names allowed, and its messages."""

    def test_names_with_their_line(self):
        seeds = parse_seed_lines(["# private network", "node1", "", "10.0.0.2:18445",
                                  "node3:18446  # the third"], 18444, names=True,
                                 source="seeds.txt")
        self.assertEqual(seeds, [SeedName("node1", 18444), NetworkAddress.parse("10.0.0.2:18445"),
                                 SeedName("node3", 18446)])
        self.assertEqual([seeds[0].origin, seeds[2].origin],
                         ["seeds.txt line 2", "seeds.txt line 5"])

    def test_names_refused_by_default(self):
        """Core's fixed seeds never hold a name: parse_seed_lines refuses them unless asked."""
        error = self.assertRaises(ValueError, parse_seed_lines, ["node1"], 8333)
        self.assertEqual(str(error), "line 1: 'node1' is a host name, and name lookups are off")

    def test_error_names_the_file_and_line(self):
        error = self.assertRaises(ValueError, parse_seed_lines,
                                  ["10.0.0.1", "# ok", "::1:8333"], 8333, names=True,
                                  source="seeds.txt")
        self.assertTrue(str(error).startswith("seeds.txt line 3: '::1:8333' is ambiguous"),
                        str(error))
        for bad in ("10.0.0.1:0", "node:70000", "[]:1"):
            error = self.assertRaises(ValueError, parse_seed_lines, [bad], 8333, names=True,
                                      source="s.txt")
            self.assertTrue(str(error).startswith("s.txt line 1: "), str(error))


class ParseOnlynetTests(SynchronousTestCase):
    """parse_onlynet(): Core's -onlynet names."""

    def test_none_means_all(self):
        self.assertEqual(parse_onlynet([]), {"ipv4", "ipv6", "onion", "i2p", "cjdns"})

    def test_names(self):
        self.assertEqual(parse_onlynet(["ipv4"]), {"ipv4"})
        self.assertEqual(parse_onlynet(["IPv6", "onion", "ipv6"]), {"ipv6", "onion"})
        self.assertEqual(parse_onlynet(["tor", "i2p", "cjdns"]), {"onion", "i2p", "cjdns"})

    def test_unknown(self):
        error = self.assertRaises(ValueError, parse_onlynet, ["ipv4", "clearnet"])
        self.assertEqual(str(error), "unknown network 'clearnet'; choose among ipv4, ipv6, "
                                     "onion, i2p, cjdns")


#: PROTOCOL.md 6 "Counts at the stored commits", per network type.
EXPECTED_SEED_COUNTS = {
    "mainnet": {"cjdns": 8, "i2p": 550, "ipv4": 470, "ipv6": 540, "onion": 460},
    "testnet4": {"cjdns": 1, "i2p": 18, "ipv4": 63, "ipv6": 70, "onion": 78},
    "signet": {"cjdns": 1, "i2p": 9, "ipv4": 46, "ipv6": 46, "onion": 67},
}


class FixedSeedsTests(SynchronousTestCase):
    """Core's fixed seeds, as shipped in bitpeer/data."""

    def test_regtest_has_none(self):
        self.assertIsNone(REGTEST.fixed_seeds_file)
        self.assertEqual(REGTEST.fixed_seeds(), [])

    def test_seeds_parse_and_are_usable(self):
        for params in (MAINNET, TESTNET3, TESTNET4, SIGNET):
            seeds = params.fixed_seeds()
            self.assertTrue(seeds, params.name)
            for seed in seeds:
                self.assertIsInstance(seed, NetworkAddress)
                self.assertTrue(seed.is_routable(), (params.name, str(seed)))
                if seed.network == Network.I2P:
                    self.assertEqual(seed.port, 0, str(seed))
                else:
                    self.assertNotEqual(seed.port, 0, str(seed))

    def test_counts_roughly_match_core(self):
        for name, expected in EXPECTED_SEED_COUNTS.items():
            counts = Counter(s.network_name for s in NETWORKS[name].fixed_seeds())
            self.assertLessEqual(set(counts), set(expected), name)
            for network, n in expected.items():
                got = counts.get(network, 0)
                self.assertLessEqual(
                    abs(got - n), max(5, n // 2), f"{name} {network}: {got}, about {n}"
                )

    def test_testnet3_has_ip_seeds(self):
        counts = Counter(s.network_name for s in TESTNET3.fixed_seeds())
        self.assertGreater(counts["ipv4"] + counts["ipv6"], 0)


class ServiceFlagsTests(SynchronousTestCase):
    """PROTOCOL.md 2.3."""

    def test_values(self):
        self.assertEqual(
            [int(f) for f in (NODE_NONE, NODE_NETWORK, NODE_BLOOM, NODE_WITNESS,
                              NODE_COMPACT_FILTERS, NODE_NETWORK_LIMITED, NODE_P2P_V2)],
            [0, 1, 4, 8, 0x40, 0x400, 0x800],
        )
        self.assertEqual(int(ServiceFlags.GETUTXO), 2)
        self.assertEqual(int(ServiceFlags.XTHIN), 0x10)
        self.assertEqual(SEEDS_SERVICE_FLAGS, 9)

    def test_describe(self):
        self.assertEqual(describe(0x409), "NETWORK|WITNESS|NETWORK_LIMITED")
        self.assertEqual(describe(0), "NONE")
        self.assertEqual(describe(0xC09), "NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2")
        self.assertEqual(describe(1 << 24), "BIT24")
        self.assertEqual(describe((1 << 63) | 0x40 | (1 << 5)), "BIT5|COMPACT_FILTERS|BIT63")
        self.assertEqual(describe(NODE_BLOOM), "BLOOM")

    def test_may_have_useful_address_db(self):
        self.assertTrue(may_have_useful_address_db(0x1))
        self.assertTrue(may_have_useful_address_db(0x408))
        self.assertFalse(may_have_useful_address_db(0x8))
        self.assertFalse(may_have_useful_address_db(0))
