"""
Tests for bitpeer.seed.sample: the good nodes DNS answers are drawn from.

The addresses are loopback ones (127.0.0.0/8: 256 IPv4 /16 groups) and the
IPv6 documentation prefix 3fff::/20 (4096 /32 groups); nothing is dialled.
"""

import collections
import random

import attr
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.seed.sample import MAX_CACHED_MASKS, Candidate, ServedSample, network_group
from bitpeer.wire.address import Network, NetworkAddress

T0 = 1_700_000_000


def ipv4(group, host=1, services=0x409):
    """A candidate in 127.<group>.0.0/16."""
    return Candidate(NetworkAddress(Network.IPV4, bytes([127, group, 0, host]), 8333), services)


def ipv6(group, host=1, services=0x409):
    """A candidate in 3fff:0<group>::/32."""
    prefix = bytes([0x3F, 0xFF, group >> 8, group & 0xFF])
    return Candidate(NetworkAddress(Network.IPV6, prefix + bytes(11) + bytes([host]), 8333),
                     services)


def make_sample(candidates=(), seed=1):
    clock = task.Clock()
    clock.advance(T0)
    sample = ServedSample(clock, random=random.Random(seed))
    sample.refresh(candidates)
    return sample, clock


class CandidateTests(SynchronousTestCase):
    def test_frozen_value(self):
        candidate = ipv4(1)
        self.assertEqual(candidate, ipv4(1))
        with self.assertRaises(attr.exceptions.FrozenInstanceError):
            candidate.services = 1

    def test_network_group(self):
        """An IPv4 /16 or an IPv6 /32, and the network, make the group."""
        self.assertEqual(network_group(ipv4(5, 1).address), network_group(ipv4(5, 9).address))
        self.assertNotEqual(network_group(ipv4(5).address), network_group(ipv4(6).address))
        self.assertEqual(network_group(ipv6(7, 1).address), network_group(ipv6(7, 2).address))
        self.assertNotEqual(network_group(ipv6(7).address), network_group(ipv6(8).address))


class RefreshTests(SynchronousTestCase):
    def test_before_the_first_refresh(self):
        sample = ServedSample(task.Clock())
        self.assertIsNone(sample.refreshed)
        self.assertEqual(len(sample), 0)
        self.assertEqual(sample.pick(False, 0, 10), [])

    def test_refresh_time_and_count(self):
        sample, clock = make_sample([ipv4(1), ipv6(1)])
        self.assertEqual(sample.refreshed, T0)
        self.assertEqual(len(sample), 2)
        clock.advance(300)
        sample.refresh(iter([ipv4(2)]))
        self.assertEqual(sample.refreshed, T0 + 300)
        self.assertEqual(len(sample), 1)
        self.assertEqual(sample.generation, 2)
        sample.refresh([])
        self.assertEqual((sample.refreshed, sample.generation), (T0 + 300, 3))

    def test_other_networks_ignored(self):
        """Onion, I2P and CJDNS nodes cannot be in A or AAAA records."""
        others = [
            Candidate(NetworkAddress(Network.TORV3, bytes(32), 8333), 0x409),
            Candidate(NetworkAddress(Network.I2P, bytes(32), 0), 0x409),
            Candidate(NetworkAddress(Network.CJDNS, b"\xfc" + bytes(15), 8333), 0x409),
        ]
        sample, _ = make_sample(others + [ipv4(1)])
        self.assertEqual(len(sample), 1)
        self.assertEqual(sample.pick(False, 0, 10), [ipv4(1).address])
        self.assertEqual(sample.pick(True, 0, 10), [])

    def test_refresh_replaces(self):
        """After a refresh only the new candidates are served, for every mask."""
        sample, _ = make_sample([ipv4(1)])
        self.assertEqual(sample.pick(False, 0x9, 10), [ipv4(1).address])
        sample.refresh([ipv4(2)])
        self.assertEqual(sample.pick(False, 0x9, 10), [ipv4(2).address])


class PickTests(SynchronousTestCase):
    def test_family(self):
        sample, _ = make_sample([ipv4(n) for n in range(5)] + [ipv6(n) for n in range(3)])
        self.assertEqual(len(sample.pick(False, 0, 32)), 5)
        picked = sample.pick(True, 0, 32)
        self.assertEqual(len(picked), 3)
        self.assertTrue(all(address.network == Network.IPV6 for address in picked))

    def test_every_required_bit(self):
        """A node is served for a mask only when it has every bit of it."""
        candidates = [ipv4(1, services=0x1), ipv4(2, services=0x9), ipv4(3, services=0x409),
                      ipv4(4, services=0x8), ipv4(5, services=0x449)]
        sample, _ = make_sample(candidates)

        def served(required):
            return {address.host[1] for address in sample.pick(False, required, 32)}

        self.assertEqual(served(0x9), {2, 3, 5})
        self.assertEqual(served(0x49), {5})
        self.assertEqual(served(0x400), {3, 5})
        self.assertEqual(served(0x1), {1, 2, 3, 5})
        self.assertEqual(served(0x800), set())

    def test_one_per_group(self):
        """Ten nodes in each of five /16s: five answers, one from each."""
        candidates = [ipv4(group, host) for group in range(5) for host in range(10)]
        sample, _ = make_sample(candidates)
        for _ in range(20):
            picked = sample.pick(False, 0x9, 32)
            self.assertEqual(sorted(address.host[1] for address in picked), list(range(5)))

    def test_group_member_with_the_bits(self):
        """A group's node without the bits is never the group's answer."""
        sample, _ = make_sample([ipv4(1, 1, services=0x1), ipv4(1, 2, services=0x9)])
        for _ in range(20):
            self.assertEqual(sample.pick(False, 0x9, 32), [ipv4(1, 2).address])

    def test_limit(self):
        sample, _ = make_sample([ipv4(n) for n in range(100)])
        self.assertEqual(len(sample.pick(False, 0x9, 25)), 25)
        self.assertEqual(sample.pick(False, 0x9, 0), [])

    def test_new_draw_per_call(self):
        """Every group and every node in it comes up over successive draws."""
        sample, _ = make_sample([ipv4(group, host) for group in range(50) for host in (1, 2)])
        seen = collections.Counter()
        draws = {tuple(sample.pick(False, 0x9, 10)) for _ in range(200)}
        for draw in draws:
            seen.update(draw)
        self.assertGreater(len(draws), 150)
        self.assertEqual(len(seen), 100)

    def test_custom_group(self):
        """A group function given (an ASN map) decides the diversity."""
        clock = task.Clock()
        sample = ServedSample(clock, random=random.Random(1),
                              group=lambda address: address.host[3] % 2)
        sample.refresh([ipv4(n, n) for n in range(10)])
        picked = sample.pick(False, 0x9, 32)
        self.assertEqual(sorted(address.host[3] % 2 for address in picked), [0, 1])

    def test_masks_kept_are_bounded(self):
        """An embedding caller's arbitrary masks do not grow the cache for ever."""
        sample, _ = make_sample([ipv4(n, services=0xFFFF) for n in range(3)])
        for mask in range(1, 3 * MAX_CACHED_MASKS):
            self.assertEqual(len(sample.pick(False, mask, 32)), 3)
            self.assertLessEqual(len(sample._matching), MAX_CACHED_MASKS)
