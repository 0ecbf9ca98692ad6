"""
Tests for bitpeer.crawl.discovery: DNS seeds and fixed seeds.

DNS tests run a real twisted.names server on 127.0.0.1 answering from an
in-memory zone, and a resolver from make_resolver() that asks only it.
Nothing asks the system resolver or any public address.
"""

from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.names import client, common, dns, server
from twisted.names import error as dns_error
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.crawl.discovery import (
    ENOUGH_GOOD_ADDRESSES,
    MAX_IPS_PER_SEED,
    NAME_LOOKUPS_AT_ONCE,
    SEED_DEADLINE,
    SEED_SERVICE_PREFIX,
    Discovery,
    DiscoveryOptions,
    DnsSeedResult,
    NameReport,
    SeedReport,
    discover,
    make_resolver,
    query_dns_seeds,
    resolve_seed_names,
)
from bitpeer.networks import NetworkParams, SeedName
from bitpeer.wire.address import Network, NetworkAddress

from .helpers import NoLookupResolver

PORT = 18444
MAGIC = bytes.fromhex("0a0b0c0d")


def addr(text, port=PORT):
    return NetworkAddress.parse(text, port)


def params(*seeds, fixed=None):
    """A test network with these DNS seeds and, optionally, fixed seeds."""
    if fixed is None:
        return NetworkParams(name="test", magic=MAGIC, default_port=PORT, dns_seeds=seeds)
    return _FixedParams(name="test", magic=MAGIC, default_port=PORT, dns_seeds=seeds)


#: The fixed seeds of _FixedParams.
FIXED = [addr("198.51.100.201"), addr("[fd00::201]:18445"), addr("198.51.100.1")]


class _FixedParams(NetworkParams):
    """NetworkParams whose fixed seeds are FIXED, without a data file."""

    def fixed_seeds(self):
        return list(FIXED)


class _ServFail(Exception):
    """Makes the test server answer SERVFAIL (and log this error)."""


#: name -> {record type: [address text]}; names not here are NXDOMAIN.
ZONE = {
    "x9.seed.test": {dns.A: ["198.51.100.1", "198.51.100.2"], dns.AAAA: ["fd00::1"]},
    # The bare name of a seed with x9 must never be used.
    "seed.test": {dns.A: ["198.51.100.99"]},
    "bare.seed.test": {dns.A: ["198.51.100.11"], dns.AAAA: ["fd00::11"]},
    "x9.empty.seed.test": {},
    "empty.seed.test": {dns.A: ["198.51.100.21"]},
    "x9.many.seed.test": {
        dns.A: [f"198.51.100.{n}" for n in range(100, 140)],
        dns.AAAA: [f"fd00::{n:x}" for n in range(100, 110)],
    },
    "x9.dup.seed.test": {
        dns.A: ["198.51.100.1", "198.51.100.31", "198.51.100.31"],
        dns.AAAA: ["fd00::31", "fd00::31"],
    },
    "x9.v6only.seed.test": {dns.AAAA: ["fd00::41", "::ffff:198.51.100.41", "::"]},
    "x9.invalid.seed.test": {dns.A: ["0.0.0.0", "255.255.255.255"]},
    "invalid.seed.test": {},
    "slow.seed.test": {dns.A: ["198.51.100.51"]},
    "broken.seed.test": {dns.A: ["198.51.100.61"]},
}
#: Names the server never answers (the client times out).
SILENT = {"x9.slow.seed.test", "x9.silent.seed.test", "silent.seed.test"}
#: Names the server answers with SERVFAIL.
SERVFAIL = {"x9.broken.seed.test"}


class SeedZone(common.ResolverBase):
    """
    An in-memory authority for the test seeds: A and AAAA from ZONE, silence
    for SILENT, SERVFAIL for SERVFAIL, NXDOMAIN for the rest.  It records
    every query, and serves both as the local server's authority and as a
    resolver for tests that need no sockets.
    """

    def __init__(self):
        common.ResolverBase.__init__(self)
        self.queries = []

    def _lookup(self, name, cls, type, timeout):
        name = name.decode("ascii").lower().rstrip(".")
        self.queries.append((name, type))
        if name in SILENT:
            return defer.Deferred()
        if name in SERVFAIL:
            return defer.fail(_ServFail(name))
        if name not in ZONE:
            return defer.fail(dns_error.AuthoritativeDomainError(name))
        record = {dns.A: dns.Record_A, dns.AAAA: dns.Record_AAAA}.get(type)
        answers = [
            dns.RRHeader(name.encode("ascii"), type, dns.IN, 60, record(text, 60), auth=True)
            for text in ZONE[name].get(type, [])
        ]
        # A CNAME in the answer, as a recursive resolver passes on: skipped.
        answers.insert(
            0, dns.RRHeader(name.encode("ascii"), dns.CNAME, dns.IN, 60, dns.Record_CNAME(name))
        )
        return defer.succeed((answers, [], []))

    def queried(self, name):
        """The record types asked for ``name``."""
        return {type for queried, type in self.queries if queried == name}


class LocalDnsMixin:
    """A twisted.names server on 127.0.0.1 and a resolver that asks only it."""

    zone_class = None

    def setUp(self):
        self.zone = (self.zone_class or SeedZone)()
        factory = server.DNSServerFactory(authorities=[self.zone])
        factory.noisy = False
        self.port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.resolver = make_resolver(servers=[("127.0.0.1", self.port.getHost().port)])

    def query(self, *seeds, **kwargs):
        kwargs.setdefault("timeout", (0.2,))
        return query_dns_seeds(params(*seeds), self.resolver, **kwargs)


class QueryDnsSeedsTests(LocalDnsMixin, TestCase):
    """query_dns_seeds against a local DNS server."""

    @defer.inlineCallbacks
    def test_prefixed_name_a_and_aaaa(self):
        """Core asks x9.<seed>: A and AAAA both count, on the default port."""
        result = yield self.query("seed.test")
        self.assertIsInstance(result, DnsSeedResult)
        self.assertEqual(SEED_SERVICE_PREFIX, "x9")
        self.assertEqual(
            result.addresses,
            (addr("198.51.100.1"), addr("[fd00::1]:18444"), addr("198.51.100.2")),
        )
        self.assertEqual(result.per_seed, (SeedReport("seed.test", "x9.seed.test", 3, None),))
        self.assertFalse(result.per_seed[0].used_fallback)
        self.assertEqual(self.zone.queried("x9.seed.test"), {dns.A, dns.AAAA})
        self.assertEqual(self.zone.queried("seed.test"), set())

    @defer.inlineCallbacks
    def test_fallback_to_bare_name(self):
        """A seed without the x9 name is asked for its bare name."""
        result = yield self.query("bare.seed.test")
        self.assertEqual(result.addresses, (addr("198.51.100.11"), addr("[fd00::11]:18444")))
        (report,) = result.per_seed
        self.assertEqual(report, SeedReport("bare.seed.test", "bare.seed.test", 2, None))
        self.assertTrue(report.used_fallback)
        self.assertEqual(self.zone.queried("x9.bare.seed.test"), {dns.A, dns.AAAA})

    @defer.inlineCallbacks
    def test_empty_prefixed_answer_falls_back(self):
        """An x9 name with no records is as good as none."""
        result = yield self.query("empty.seed.test")
        self.assertEqual(result.addresses, (addr("198.51.100.21"),))
        self.assertEqual(result.per_seed[0].queried_name, "empty.seed.test")

    @defer.inlineCallbacks
    def test_timeout_falls_back(self):
        """An x9 name that never answers times out, then the bare name is used."""
        result = yield self.query("slow.seed.test", timeout=(0.1, 0.1))
        self.assertEqual(result.addresses, (addr("198.51.100.51"),))
        self.assertEqual(result.per_seed[0].queried_name, "slow.seed.test")

    @defer.inlineCallbacks
    def test_servfail_falls_back(self):
        result = yield self.query("broken.seed.test")
        self.assertEqual(result.addresses, (addr("198.51.100.61"),))
        # The test server logs the error behind its SERVFAIL.
        self.assertEqual(len(self.flushLoggedErrors(_ServFail)), 2)

    @defer.inlineCallbacks
    def test_failing_seed_reported_others_kept(self):
        """A dead seed is reported; the seeds that answer still count."""
        result = yield self.query("seed.test", "bare.seed.test", "dead.seed.test")
        self.assertEqual(len(result.addresses), 5)
        dead = result.per_seed[2]
        self.assertEqual(
            dead,
            SeedReport(
                "dead.seed.test",
                "x9.dead.seed.test",
                0,
                "x9.dead.seed.test: NXDOMAIN; dead.seed.test: NXDOMAIN",
            ),
        )
        self.assertEqual(
            [r.name for r in result.per_seed], ["seed.test", "bare.seed.test", "dead.seed.test"]
        )
        self.assertEqual([r.error for r in result.per_seed[:2]], [None, None])

    @defer.inlineCallbacks
    def test_silent_seed_times_out(self):
        result = yield self.query("silent.seed.test", timeout=(0.1,))
        self.assertEqual(result.addresses, ())
        self.assertEqual(
            result.per_seed[0].error,
            "x9.silent.seed.test: timed out; silent.seed.test: timed out",
        )

    @defer.inlineCallbacks
    def test_no_records_reported(self):
        """Names that exist without valid addresses: the reason says so."""
        result = yield self.query("invalid.seed.test")
        self.assertEqual(
            result.per_seed[0].error,
            "x9.invalid.seed.test: no A or AAAA records; invalid.seed.test: no A or AAAA records",
        )

    @defer.inlineCallbacks
    def test_cap_per_seed(self):
        """Core's nMaxIPs: 32 per seed, both families represented."""
        result = yield self.query("many.seed.test")
        self.assertEqual(MAX_IPS_PER_SEED, 32)
        self.assertEqual(len(result.addresses), 32)
        self.assertEqual(result.per_seed[0].count, 32)
        families = [a.network for a in result.addresses]
        self.assertEqual(families.count(Network.IPV6), 10)
        self.assertEqual(families.count(Network.IPV4), 22)

    @defer.inlineCallbacks
    def test_dedupe(self):
        """Duplicates within a seed and across seeds appear once, first seed first."""
        result = yield self.query("seed.test", "dup.seed.test")
        self.assertEqual(
            result.addresses,
            (
                addr("198.51.100.1"),
                addr("[fd00::1]:18444"),
                addr("198.51.100.2"),
                addr("[fd00::31]:18444"),
                addr("198.51.100.31"),
            ),
        )
        # A seed's count is what it gave, before the other seeds are removed.
        self.assertEqual([r.count for r in result.per_seed], [3, 3])

    @defer.inlineCallbacks
    def test_invalid_and_mapped_answers(self):
        """0.0.0.0 and :: are dropped; an IPv4-mapped AAAA is IPv4."""
        result = yield self.query("v6only.seed.test")
        self.assertEqual(result.addresses, (addr("[fd00::41]:18444"), addr("198.51.100.41")))

    @defer.inlineCallbacks
    def test_trailing_dot(self):
        """Core's chainparams write seeds with a trailing dot."""
        result = yield self.query("seed.test.")
        self.assertEqual(result.per_seed[0].name, "seed.test")
        self.assertEqual(len(result.addresses), 3)

    @defer.inlineCallbacks
    def test_discover_end_to_end(self):
        result = yield discover(
            params("seed.test", "bare.seed.test", "dead.seed.test"),
            self.resolver,
            extra=[addr("127.0.0.1")],
            timeout=(0.2,),
        )
        self.assertEqual(result.addresses[0], addr("127.0.0.1"))
        self.assertEqual(result.sources, (("seed-option", 1), ("dns", 5)))
        self.assertEqual(len(result.dns.per_seed), 3)


class FakeClockDnsTests(SynchronousTestCase):
    """query_dns_seeds' deadline, cancellation and odd resolvers, on a Clock."""

    def setUp(self):
        self.clock = task.Clock()
        self.zone = SeedZone()

    def test_in_memory_resolver(self):
        """The zone doubles as a resolver: no sockets, fires at once."""
        d = query_dns_seeds(params("seed.test", "dead.seed.test"), self.zone, clock=self.clock)
        result = self.successResultOf(d)
        self.assertEqual(len(result.addresses), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_deadline(self):
        """A resolver that never answers is cut off at the seed's deadline."""
        d = query_dns_seeds(
            params("silent.seed.test", "seed.test"), self.zone, clock=self.clock, deadline=5
        )
        self.assertNoResult(d)
        self.clock.advance(5)
        result = self.successResultOf(d)
        self.assertEqual(
            result.per_seed[0],
            SeedReport("silent.seed.test", "x9.silent.seed.test", 0, "no answer within 5 s"),
        )
        self.assertEqual(result.per_seed[1].count, 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_default_deadline(self):
        d = query_dns_seeds(params("silent.seed.test"), self.zone, clock=self.clock)
        self.clock.advance(SEED_DEADLINE - 0.1)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.successResultOf(d)

    def test_cancel(self):
        d = query_dns_seeds(params("silent.seed.test", "seed.test"), self.zone, clock=self.clock)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resolver_raising(self):
        """A resolver that raises instead of failing its Deferred is reported."""

        class Broken:
            def lookupAddress(self, name, timeout=None):
                raise OSError("no network")

            lookupIPV6Address = lookupAddress

        d = query_dns_seeds(params("seed.test"), Broken(), clock=self.clock)
        (report,) = self.successResultOf(d).per_seed
        self.assertEqual(
            report.error, "x9.seed.test: OSError: no network; seed.test: OSError: no network"
        )

    def test_as_dict(self):
        result = self.successResultOf(
            query_dns_seeds(params("bare.seed.test"), self.zone, clock=self.clock)
        )
        self.assertEqual(
            result.as_dict(),
            {
                "addresses": 2,
                "per_seed": [
                    {
                        "name": "bare.seed.test",
                        "queried_name": "bare.seed.test",
                        "count": 2,
                        "error": None,
                        "used_fallback": True,
                    }
                ],
            },
        )


class DiscoverTests(SynchronousTestCase):
    """discover(): the order of sources and the fixed-seed policy."""

    def setUp(self):
        self.clock = task.Clock()
        self.zone = SeedZone()

    def discover(self, network, **kwargs):
        kwargs.setdefault("clock", self.clock)
        return self.successResultOf(discover(network, self.zone, **kwargs))

    def test_dns_first_no_fixed(self):
        result = self.discover(params("seed.test", fixed=True))
        self.assertIsInstance(result, Discovery)
        self.assertEqual(len(result.addresses), 3)
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 3)))

    def test_fixed_when_dns_gives_nothing(self):
        result = self.discover(params("dead.seed.test", fixed=True))
        self.assertEqual(result.addresses, tuple(FIXED))
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 0), ("fixed", 3)))
        self.assertEqual(result.dns.per_seed[0].count, 0)

    def test_fixed_always(self):
        result = self.discover(params("seed.test", fixed=True), fixed_seeds="always")
        # 198.51.100.1:18444 came from DNS already.
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 3), ("fixed", 2)))
        self.assertEqual(result.addresses[3:], tuple(FIXED[:2]))

    def test_fixed_never(self):
        result = self.discover(params("dead.seed.test", fixed=True), fixed_seeds="never")
        self.assertEqual(result.addresses, ())
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 0)))

    def test_bad_fixed_seeds_value(self):
        self.assertRaises(ValueError, discover, params("seed.test"), self.zone, fixed_seeds="yes")

    def test_extra_first(self):
        extra = [addr("127.0.0.2"), addr("198.51.100.2"), addr("127.0.0.2")]
        result = self.discover(params("seed.test"), extra=extra)
        self.assertEqual(
            result.addresses,
            (
                addr("127.0.0.2"),
                addr("198.51.100.2"),
                addr("198.51.100.1"),
                addr("[fd00::1]:18444"),
            ),
        )
        self.assertEqual(result.sources, (("seed-option", 2), ("dns", 2)))

    def test_extra_does_not_stop_fixed_fallback(self):
        result = self.discover(params("dead.seed.test", fixed=True), extra=[addr("127.0.0.2")])
        self.assertEqual(result.addresses, (addr("127.0.0.2"),) + tuple(FIXED))

    def test_extra_must_be_addresses(self):
        self.assertRaises(
            ValueError, discover, params("seed.test"), self.zone, extra=["127.0.0.1:8333"]
        )

    def test_no_dns_seeds(self):
        """
        Regtest and custom networks skip DNS: no resolver needed.  With DNS
        not asked, the fixed seeds are a fallback only when the operator
        gave no seed either (Core adds them at once with -dnsseed=0 and no
        -seednode).
        """
        result = self.successResultOf(discover(params(fixed=True), None, extra=[addr("127.0.0.3")]))
        self.assertIsNone(result.dns)
        self.assertEqual(result.sources, (("seed-option", 1),))
        result = self.successResultOf(discover(params(fixed=True), None))
        self.assertEqual(result.sources, (("seed-option", 0), ("fixed", 3)))
        result = self.successResultOf(discover(params(), None))
        self.assertEqual(result.addresses, ())
        self.assertEqual(result.sources, (("seed-option", 0), ("fixed", 0)))

    def test_resolver_needed_for_dns_seeds(self):
        self.assertRaises(ValueError, discover, params("seed.test"), None)

    def test_real_fixed_seed_file(self):
        """The packaged data files work as the fallback."""
        network = NetworkParams(
            name="test",
            magic=MAGIC,
            default_port=PORT,
            dns_seeds=("dead.seed.test",),
            fixed_seeds_file="fixed_seeds_testnet4.txt",
        )
        try:
            expected = network.fixed_seeds()
        except FileNotFoundError:
            raise self.skipTest("bitpeer/data/fixed_seeds_testnet4.txt not written yet")
        result = self.discover(network)
        self.assertTrue(expected)
        self.assertEqual(result.addresses, tuple(dict.fromkeys(expected)))

    def test_as_dict(self):
        result = self.discover(params("dead.seed.test", fixed=True))
        out = result.as_dict()
        self.assertEqual(out["addresses"], 3)
        self.assertEqual(out["sources"], {"seed-option": 0, "dns": 0, "fixed": 3})
        self.assertEqual(out["dns"]["per_seed"][0]["name"], "dead.seed.test")


class MakeResolverTests(SynchronousTestCase):
    """make_resolver with servers (the system default is not exercised)."""

    def test_servers(self):
        resolver = make_resolver(
            ["127.0.0.1:5353", "[::1]:53", "127.0.0.1", ("127.0.0.2", 5300)],
            timeout=(2,),
            reactor=task.Clock(),
        )
        self.assertIsInstance(resolver, client.Resolver)
        self.assertEqual(
            resolver.servers,
            [("127.0.0.1", 5353), ("::1", 53), ("127.0.0.1", 53), ("127.0.0.2", 5300)],
        )
        self.assertEqual(resolver.timeout, (2,))

    def test_bad_servers(self):
        for bad in (["dns.example:53"], ["127.0.0.1:x"], [("127.0.0.1",)], ["127.0.0.1:0"], []):
            self.assertRaises(ValueError, make_resolver, bad, reactor=task.Clock())


# -- the operator's switches: --dnsseed, --forcednsseed, --onlynet, host names ----------------


#: Host names of the operator's seeds, in a zone of their own (no x9. prefix).
NAMES = {
    "node1.test": {dns.A: ["198.51.100.71"], dns.AAAA: ["fd00::71"]},
    "node2.test": {dns.A: ["198.51.100.72"]},
}


class NamesZone(SeedZone):
    """SeedZone plus NAMES."""

    def _lookup(self, name, cls, type, timeout):
        text = name.decode("ascii").lower().rstrip(".")
        if text in NAMES:
            self.queries.append((text, type))
            record = {dns.A: dns.Record_A, dns.AAAA: dns.Record_AAAA}[type]
            answers = [dns.RRHeader(name, type, dns.IN, 60, record(t, 60))
                       for t in NAMES[text].get(type, [])]
            return defer.succeed((answers, [], []))
        return SeedZone._lookup(self, name, cls, type, timeout)


def _all_networks_fixed():
    """Fixed seeds on every network (FIXED is IPv4 and IPv6 only)."""
    onion = NetworkAddress(Network.TORV3, bytes(range(32)), PORT)
    return FIXED + [onion]


class _AllFixedParams(NetworkParams):
    def fixed_seeds(self):
        return _all_networks_fixed()


def all_fixed(*seeds):
    return _AllFixedParams(name="test", magic=MAGIC, default_port=PORT, dns_seeds=seeds,
                           fixed_seeds_file="unused.txt")


class DnsSeedSwitchTests(SynchronousTestCase):
    """--dnsseed, --forcednsseed and the book's "enough", through discover()."""

    def setUp(self):
        self.clock = task.Clock()
        self.zone = SeedZone()

    def discover(self, network, resolver=None, **kwargs):
        kwargs.setdefault("clock", self.clock)
        return self.successResultOf(
            discover(network, self.zone if resolver is None else resolver, **kwargs))

    def test_dnsseed_off_never_looks_anything_up(self):
        resolver = NoLookupResolver()
        result = self.discover(params("seed.test", fixed=True), resolver,
                               options=DiscoveryOptions(dnsseed=False),
                               extra=[addr("127.0.0.2")])
        self.assertEqual(resolver.calls, [])
        self.assertEqual(result.addresses, (addr("127.0.0.2"),))
        self.assertEqual(result.sources, (("seed-option", 1),))
        self.assertIsNone(result.dns)
        self.assertEqual(result.dns_skipped, "off (--dnsseed 0)")

    def test_dnsseed_off_needs_no_resolver(self):
        result = self.discover(params("seed.test"), NoLookupResolver(),
                               options=DiscoveryOptions(dnsseed=False))
        self.assertEqual(result.addresses, ())
        d = discover(params("seed.test"), None, options=DiscoveryOptions(dnsseed=False),
                     clock=self.clock)
        self.assertEqual(self.successResultOf(d).sources, (("seed-option", 0), ("fixed", 0)))

    def test_dnsseed_off_fixed_seeds_when_nothing_else(self):
        """Core adds fixed seeds at once with -dnsseed=0 and no -seednode."""
        off = DiscoveryOptions(dnsseed=False)
        network = params("seed.test", fixed=True)
        self.assertEqual(self.discover(network, NoLookupResolver(), options=off).addresses,
                         tuple(FIXED))
        # Not when the operator gave seeds, nor when the book has addresses.
        self.assertEqual(self.discover(network, NoLookupResolver(), options=off,
                                       extra=[addr("127.0.0.2")]).sources,
                         (("seed-option", 1),))
        self.assertEqual(self.discover(network, NoLookupResolver(), options=off,
                                       known=1).sources, (("seed-option", 0),))

    def test_enough_is_core_threshold(self):
        self.assertEqual(ENOUGH_GOOD_ADDRESSES, 1000)
        self.assertEqual(DiscoveryOptions().enough, ENOUGH_GOOD_ADDRESSES)

    def test_enough_bound(self):
        """Asked with 999 good addresses in the book; not with 1000."""
        network = params("seed.test", fixed=True)
        below = self.discover(network, known=2000, good=ENOUGH_GOOD_ADDRESSES - 1)
        self.assertEqual(below.sources, (("seed-option", 0), ("dns", 3)))
        self.assertIsNone(below.dns_skipped)
        self.zone.queries.clear()
        at = self.discover(network, known=2000, good=ENOUGH_GOOD_ADDRESSES)
        self.assertEqual(self.zone.queries, [])
        self.assertIsNone(at.dns)
        self.assertEqual(at.sources, (("seed-option", 0),))
        self.assertEqual(at.dns_skipped, "not needed: the address book holds 1000 good "
                                         "addresses (enough is 1000)")

    def test_known_but_not_good_still_asks(self):
        """Addresses never reached do not count as good."""
        result = self.discover(params("seed.test"), known=50_000, good=0)
        self.assertEqual(len(result.dns.addresses), 3)

    def test_forcednsseed(self):
        result = self.discover(params("seed.test"), known=5000, good=5000,
                               options=DiscoveryOptions(forcednsseed=True))
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 3)))

    def test_forcednsseed_needs_dnsseed(self):
        """Core refuses -forcednsseed with -dnsseed=0; so does DiscoveryOptions."""
        self.assertRaises(ValueError, DiscoveryOptions, dnsseed=False, forcednsseed=True)

    def test_book_stops_the_fixed_fallback(self):
        """Core adds fixed seeds only while addrman is empty."""
        result = self.discover(params("dead.seed.test", fixed=True), known=1)
        self.assertEqual(result.sources, (("seed-option", 0), ("dns", 0)))

    def test_fixed_seeds_option_overridden_by_keyword(self):
        result = self.discover(params("dead.seed.test", fixed=True),
                               options=DiscoveryOptions(fixed_seeds="always"),
                               fixed_seeds="never")
        self.assertEqual(result.addresses, ())

    def test_bad_options(self):
        self.assertRaises(ValueError, DiscoveryOptions, fixed_seeds="sometimes")
        self.assertRaises(ValueError, DiscoveryOptions, networks=set())
        self.assertRaises(ValueError, DiscoveryOptions, networks={"ipv4", "tor"})

    def test_as_dict(self):
        result = self.discover(params("seed.test"), NoLookupResolver(),
                               options=DiscoveryOptions(dnsseed=False))
        self.assertEqual(result.as_dict(), {"addresses": 0,
                                            "sources": {"seed-option": 0, "fixed": 0},
                                            "dns": None, "dns_skipped": "off (--dnsseed 0)",
                                            "names": []})


class OnlynetDiscoveryTests(SynchronousTestCase):
    """--onlynet in discovery: DNS seeds give only IPv4/IPv6; fixed seeds per network."""

    def setUp(self):
        self.clock = task.Clock()

    def discover(self, network, resolver, networks, **kwargs):
        d = discover(network, resolver, options=DiscoveryOptions(networks=networks),
                     clock=self.clock, **kwargs)
        return self.successResultOf(d)

    def test_onion_only_asks_no_dns_seed(self):
        resolver = NoLookupResolver()
        result = self.discover(all_fixed("seed.test"), resolver, {"onion"})
        self.assertEqual(resolver.calls, [])
        self.assertEqual(result.dns_skipped, "not asked: they give only IPv4 and IPv6, which "
                                             "--onlynet leaves out")
        # Fixed seeds of the onion network only, as Core adds them per reachable network.
        self.assertEqual([a.network_name for a in result.addresses], ["onion"])

    def test_ipv4_only(self):
        result = self.discover(all_fixed("dead.seed.test"), SeedZone(), {"ipv4"})
        self.assertEqual(result.addresses, (FIXED[0], FIXED[2]))

    def test_ipv6_asks_dns_seeds(self):
        zone = SeedZone()
        result = self.discover(all_fixed("seed.test"), zone, {"ipv6"})
        self.assertEqual(zone.queried("x9.seed.test"), {dns.A, dns.AAAA})
        # What DNS gives is passed on whole: the crawler reports IPv4 as not dialled.
        self.assertEqual(len(result.addresses), 3)


class SeedNameResolutionTests(SynchronousTestCase):
    """Host names given as seeds, resolved at start through the injected resolver."""

    def setUp(self):
        self.clock = task.Clock()
        self.zone = NamesZone()
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def warnings(self):
        return [formatEvent(e) for e in self.logged if e.get("log_level") == LogLevel.warn]

    def test_resolved_in_place(self):
        """Each name's A and AAAA addresses stand where the name was given, on its port."""
        extra = [addr("127.0.0.2"), SeedName("node1.test", 18445, "--seed"),
                 addr("127.0.0.3")]
        result = self.successResultOf(discover(
            params("seed.test"), self.zone, extra=extra, clock=self.clock,
            options=DiscoveryOptions(dnsseed=False)))
        self.assertEqual(result.addresses[:4], (
            addr("127.0.0.2"), addr("198.51.100.71", 18445), addr("[fd00::71]:18445"),
            addr("127.0.0.3")))
        self.assertEqual(result.sources, (("seed-option", 4),))
        self.assertEqual(result.names, (NameReport(SeedName("node1.test", 18445), 2),))
        # The name as given: no x9. prefix, and with --dnsseed 0 no DNS seed asked.
        self.assertEqual({q for q, _ in self.zone.queries}, {"node1.test"})
        self.assertEqual(self.warnings(), [])

    def test_unresolved_is_one_warning(self):
        """A name that gives nothing: one warning line, and the crawl goes on."""
        extra = [SeedName("nowhere.test", 8333, "seeds.txt line 4"),
                 SeedName("node2.test", 8333, "--seed")]
        result = self.successResultOf(discover(
            params(), self.zone, extra=extra, clock=self.clock))
        self.assertEqual(result.addresses, (addr("198.51.100.72", 8333),))
        self.assertEqual(result.names[0].error, "NXDOMAIN")
        self.assertEqual(self.warnings(), [
            "seeds.txt line 4 nowhere.test: the name gave no address (NXDOMAIN); "
            "the crawl goes on without it"])
        self.assertEqual(result.as_dict()["names"][0],
                         {"name": "nowhere.test:8333", "origin": "seeds.txt line 4",
                          "count": 0, "error": "NXDOMAIN"})

    def test_silent_name_times_out(self):
        SILENT.add("silent-node.test")
        self.addCleanup(SILENT.discard, "silent-node.test")
        d = discover(params(), self.zone, extra=[SeedName("silent-node.test", 1)],
                     clock=self.clock, deadline=5)
        self.assertNoResult(d)
        self.clock.advance(5)
        result = self.successResultOf(d)
        self.assertEqual(result.names[0].error, "no answer within 5 s")
        self.assertEqual(len(self.warnings()), 1)

    def test_cancel(self):
        SILENT.add("silent-node.test")
        self.addCleanup(SILENT.discard, "silent-node.test")
        d = discover(params(), self.zone, extra=[SeedName("silent-node.test", 1)],
                     clock=self.clock)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_names_need_a_resolver(self):
        self.assertRaises(ValueError, discover, params(), None,
                          extra=[SeedName("node1.test", 1)])

    def test_capped(self):
        many = {f"198.51.100.{n}" for n in range(100, 140)}
        NAMES["many.test"] = {dns.A: sorted(many)}
        self.addCleanup(NAMES.pop, "many.test")
        result = self.successResultOf(discover(params(), self.zone,
                                               extra=[SeedName("many.test", 1)],
                                               clock=self.clock))
        self.assertEqual(len(result.addresses), MAX_IPS_PER_SEED)

    def test_lookups_at_once_bound(self):
        """NAME_LOOKUPS_AT_ONCE names are looked up at a time; the next start
        as the first end, each with its full deadline."""

        class Silent:
            def __init__(self):
                self.asked = []

            def lookupAddress(self, name, timeout=None):
                self.asked.append(name)
                return defer.Deferred()

            lookupIPV6Address = lookupAddress

        resolver = Silent()
        names = [SeedName(f"n{i}.test", 1) for i in range(NAME_LOOKUPS_AT_ONCE + 8)]
        d = resolve_seed_names(names, resolver, clock=self.clock, deadline=5)
        self.assertEqual(len(resolver.asked), 2 * NAME_LOOKUPS_AT_ONCE)
        self.clock.advance(5)
        self.assertEqual(len(resolver.asked), 2 * len(names))
        self.assertNoResult(d)
        self.clock.advance(5)
        outcomes = self.successResultOf(d)
        self.assertEqual({report.error for report, _ in outcomes}, {"no answer within 5 s"})
        self.assertEqual(len(self.warnings()), len(names))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resolve_seed_names_alone(self):
        d = resolve_seed_names([SeedName("node2.test", 7), SeedName("gone.test", 7)],
                               self.zone, clock=self.clock)
        (first, found), (second, nothing) = self.successResultOf(d)
        self.assertEqual((first.count, found), (1, (addr("198.51.100.72", 7),)))
        self.assertEqual((second.error, nothing), ("NXDOMAIN", ()))


class SeedNameLocalServerTests(LocalDnsMixin, TestCase):
    """A host name resolved through a twisted.names server on 127.0.0.1."""

    zone_class = NamesZone

    @defer.inlineCallbacks
    def test_name_over_udp(self):
        result = yield discover(params(), self.resolver, extra=[SeedName("node1.test", 18444)])
        self.assertEqual(set(result.addresses),
                         {addr("198.51.100.71"), addr("[fd00::71]:18444")})


class DescribeTests(SynchronousTestCase):
    """The one line logged at start: which sources, in which order."""

    def test_default_mainnet(self):
        from bitpeer.networks import MAINNET

        self.assertEqual(DiscoveryOptions().describe(MAINNET), (
            "discovery sources, in order: --seed/--seeds-file: none; the address book; "
            "DNS seeds (8): when the address book holds fewer than 1000 good addresses; "
            "fixed seeds: fallback; getaddr to the nodes reached. "
            "Networks dialled: ipv4, ipv6, onion, i2p, cjdns"))

    def test_switches(self):
        from bitpeer.networks import MAINNET, REGTEST

        seeds = [addr("127.0.0.1"), addr("127.0.0.2"), SeedName("node1", 1)]
        line = DiscoveryOptions(dnsseed=False, fixed_seeds="never",
                                networks={"onion", "ipv4"}).describe(MAINNET, seeds)
        self.assertIn("--seed/--seeds-file: 2 addresses and 1 host name (resolved at start)",
                      line)
        self.assertIn("DNS seeds: off (--dnsseed 0); fixed seeds: never;", line)
        self.assertTrue(line.endswith("Networks dialled: ipv4, onion"), line)
        self.assertIn("DNS seeds (8): always (--forcednsseed)",
                      DiscoveryOptions(forcednsseed=True).describe(MAINNET))
        self.assertIn("DNS seeds: regtest has none; fixed seeds: none",
                      DiscoveryOptions().describe(REGTEST))

    def test_needs_resolver(self):
        from bitpeer.networks import MAINNET, REGTEST

        self.assertTrue(DiscoveryOptions().needs_resolver(MAINNET))
        self.assertFalse(DiscoveryOptions(dnsseed=False).needs_resolver(MAINNET))
        self.assertFalse(DiscoveryOptions(networks={"onion"}).needs_resolver(MAINNET))
        self.assertFalse(DiscoveryOptions().needs_resolver(REGTEST, [addr("127.0.0.1")]))
        self.assertTrue(DiscoveryOptions(dnsseed=False).needs_resolver(
            REGTEST, [SeedName("node1", 1)]))
