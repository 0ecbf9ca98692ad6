"""
Tests for bitpeer.seed.good: each rule of "good" at its threshold.
"""

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.networks import MAINNET, REGTEST, SIGNET, TESTNET3, TESTNET4
from bitpeer.seed.good import REQUIRE_VERSION, Facts, GoodRule
from bitpeer.seed.reliability import Reliability
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.services import NODE_NETWORK, NODE_NETWORK_LIMITED, NODE_WITNESS

PUBLIC = NetworkAddress.parse("8.8.4.4:8333")
#: A young node with one successful test: reliable.
RELIABLE = Reliability(1, 1, 0.0, 0.0)
FACTS = Facts(NODE_NETWORK | NODE_WITNESS, 70016, 900_000)
RULE = GoodRule.for_network(MAINNET)


class GoodRuleTests(SynchronousTestCase):
    """Each rule, just passing and just failing."""

    def test_a_good_node(self):
        self.assertIsNone(RULE.why_not(PUBLIC, FACTS, RELIABLE))
        self.assertTrue(RULE.is_good(PUBLIC, FACTS, RELIABLE))

    def test_default_port(self):
        other = NetworkAddress.parse("8.8.4.4:8334")
        self.assertEqual(RULE.why_not(other, FACTS, RELIABLE), "not the default port")

    def test_i2p_has_port_zero(self):
        """I2P has no ports (sipa's IsGood exempts it; Core dials port 0)."""
        i2p = NetworkAddress(Network.I2P, bytes(range(32)), 0)
        self.assertTrue(RULE.is_good(i2p, FACTS, RELIABLE))
        self.assertEqual(RULE.why_not(NetworkAddress(Network.I2P, bytes(range(32)), 8333),
                                      FACTS, RELIABLE), "i2p port not 0")

    def test_onion_on_the_default_port(self):
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        self.assertTrue(RULE.is_good(onion, FACTS, RELIABLE))

    def test_node_network(self):
        pruned = Facts(NODE_NETWORK_LIMITED | NODE_WITNESS, 70016, 900_000)
        self.assertEqual(RULE.why_not(PUBLIC, pruned, RELIABLE), "no NODE_NETWORK")
        limited = GoodRule.for_network(MAINNET, limited=True)
        self.assertTrue(limited.is_good(PUBLIC, pruned, RELIABLE))
        self.assertEqual(limited.why_not(PUBLIC, Facts(NODE_WITNESS, 70016, 900_000),
                                         RELIABLE), "no NODE_NETWORK_LIMITED")
        self.assertEqual(RULE.why_not(PUBLIC, Facts(None, 70016, 900_000), RELIABLE),
                         "no NODE_NETWORK")

    def test_routable(self):
        local = NetworkAddress.parse("127.0.0.1:8333")
        self.assertEqual(RULE.why_not(local, FACTS, RELIABLE), "not routable")
        private = GoodRule.for_network(MAINNET, allow_private=True)
        self.assertTrue(private.is_good(local, FACTS, RELIABLE))

    def test_version(self):
        at = Facts(NODE_NETWORK, REQUIRE_VERSION, 900_000)
        under = Facts(NODE_NETWORK, REQUIRE_VERSION - 1, 900_000)
        self.assertTrue(RULE.is_good(PUBLIC, at, RELIABLE))
        self.assertEqual(RULE.why_not(PUBLIC, under, RELIABLE), "version under 70001")
        self.assertFalse(RULE.is_good(PUBLIC, Facts(NODE_NETWORK, None, 900_000), RELIABLE))

    def test_height(self):
        """At least the network's minimum; --min-height replaces it."""
        self.assertTrue(RULE.is_good(PUBLIC, Facts(NODE_NETWORK, 70016, 880_000), RELIABLE))
        self.assertEqual(RULE.why_not(PUBLIC, Facts(NODE_NETWORK, 70016, 879_999), RELIABLE),
                         "height under 880000")
        self.assertFalse(RULE.is_good(PUBLIC, Facts(NODE_NETWORK, 70016, None), RELIABLE))
        lower = GoodRule.for_network(MAINNET, min_height=100)
        self.assertTrue(lower.is_good(PUBLIC, Facts(NODE_NETWORK, 70016, 100), RELIABLE))

    def test_minimum_heights_per_network(self):
        """dnsseedrs's minimums; none for regtest."""
        self.assertEqual([GoodRule.for_network(n).min_height
                          for n in (MAINNET, TESTNET3, TESTNET4, SIGNET, REGTEST)],
                         [880_000, 3_600_000, 65_000, 230_000, 0])
        self.assertEqual(GoodRule.for_network(TESTNET4).default_port, 48333)

    def test_reliability(self):
        self.assertEqual(RULE.why_not(PUBLIC, FACTS, Reliability(3, 1, 0.0, 0.0)),
                         "not reliable")
