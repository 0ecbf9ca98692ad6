"""
The crawl policy (bitpeer.crawl.crawler).

Gossip filters and the dialling discipline are SynchronousTestCases on a
task.Clock / MemoryReactorClock (nothing is dialled for real).  The crawl
itself is proved against a SimNet on 127.x loopback, in this process,
against its ground truth: every reachable node found, no dead address
counted reachable, every misbehaving node classified by its fault (the
truth's ``expect``, which is population.KINDS[kind]), stale gossip dropped,
Tor/I2P/CJDNS recorded but not dialled.
"""

import collections
import csv
import json
import os
import random
import shutil
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.store.addrbook import AddressBook, AddressBookClosed, Verdict
from bitpeer.crawl.crawler import (
    DEFAULT_CONCURRENCY,
    MAX_FUTURE_DRIFT,
    MIN_SANE_TIME,
    CrawlOptions,
    Crawler,
    CrawlResult,
    NodeResult,
    Settled,
    Unreachable,
)
from bitpeer.errors import ConnectFailed, ConnectionRefused, ConnectTimeout
from bitpeer.logs import levels
from bitpeer.net.dialler import Dialler
from bitpeer.net.endpoints import EndpointDialler
from bitpeer.crawl.export import CSV_FIELDS, summarize, write_snapshot
from bitpeer.networks import REGTEST
from bitpeer.protocol import PeerOptions
from bitpeer.simnet.network import SimNet
from bitpeer.simnet.population import KINDS, MISBEHAVING_KINDS
from bitpeer.crawl.tap import SIMNET
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress

from .helpers import connections_closed

T0 = 1_700_000_000
SERVICES = 0x409


def ip(text, port=8333):
    """A NetworkAddress from dotted text (data only: nothing here dials it)."""
    return NetworkAddress.from_host(text, port)


def entry(address, stamp, services=SERVICES):
    """An addr entry last seen at ``stamp``."""
    return AddrEntry(int(stamp), services, address)


ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
I2P = NetworkAddress(Network.I2P, bytes(range(32, 64)), 0)
CJDNS = NetworkAddress(Network.CJDNS, b"\xfc" + bytes(range(15)), 8333)
#: Why each is not dialled without the options that reach it.
NO_OPTIONS = {ONION: "no --onion-proxy", I2P: "no --i2p-sam",
              CJDNS: "cjdns not reachable (--cjdns-reachable)"}


class FakeBook:
    """Records what the crawler hands the address book; once ``closed``,
    refuses it as a closed AddressBook does."""

    def __init__(self):
        self.gossiped = []
        self.attempts = []
        self.closed = False

    def _check(self):
        if self.closed:
            raise AddressBookClosed("address book fake is closed")

    def gossip(self, entries, source, now):
        self._check()
        self.gossiped.append((list(entries), source, now))

    def attempt(self, crawl_id, address, outcome, *, reason=None, detail=None, info=None,
                returned=None, now):
        self._check()
        self.attempts.append((crawl_id, address, outcome, reason))


class ReachedBook(FakeBook):
    """A FakeBook whose ``reached`` fires, on a later reactor turn, once
    ``count`` addresses have been recorded reachable."""

    def __init__(self, count):
        super().__init__()
        self.count = count
        self.reachable = 0
        self.reached = defer.Deferred()

    def attempt(self, crawl_id, address, outcome, **kwargs):
        super().attempt(crawl_id, address, outcome, **kwargs)
        self.reachable += outcome == "reachable"
        if outcome == "reachable" and self.reachable == self.count:
            # Not inside the crawler's own call: the waiter may stop it.
            reactor.callLater(0, self.reached.callback, None)


class CrawlOptionsTests(SynchronousTestCase):
    """The bounds are checked when the options are made."""

    def test_defaults(self):
        options = CrawlOptions()
        self.assertEqual((options.concurrency, options.getaddr_fraction, options.max_age),
                         (DEFAULT_CONCURRENCY, 1.0, 86400.0))
        self.assertFalse(options.allow_private)

    def test_bad_values(self):
        for field, value in [("concurrency", 0), ("concurrency", -1), ("getaddr_fraction", 1.5),
                             ("getaddr_fraction", -0.1), ("max_age", 0), ("connect_timeout", 0),
                             ("max_pending", 0), ("progress_interval", 0),
                             ("transport", "epoll"), ("transport", "")]:
            with self.assertRaises(ValueError, msg=field) as raised:
                CrawlOptions(**{field: value})
            self.assertIn(field, str(raised.exception))

    def test_transport(self):
        """The transport names the dialler a Crawler makes unless one is given."""
        self.assertEqual(CrawlOptions().transport, "fast")
        for transport, kind in (("fast", Dialler), ("twisted", EndpointDialler)):
            crawler = Crawler(MemoryReactorClock(), REGTEST, [],
                              options=CrawlOptions(transport=transport))
            self.assertIsInstance(crawler.dialler, kind)


class LearnTests(SynchronousTestCase):
    """
    Crawler._learn: the filters on gossip, applied before anything is
    dialled, on a task.Clock at T0.
    """

    SOURCE = ip("10.9.9.9")

    def crawler(self, **options):
        clock = task.Clock()
        clock.advance(T0)
        self.book = FakeBook()
        return Crawler(clock, REGTEST, [], options=CrawlOptions(**options), book=self.book,
                       crawl_id=1, random=random.Random(1), clock=clock)

    def test_fresh_routable_is_queued(self):
        crawler = self.crawler()
        fresh = [entry(ip("1.2.3.4"), T0 - 60), entry(ip("5.6.7.8", 8334), T0)]
        crawler._learn(fresh, self.SOURCE)
        self.assertEqual(sorted(crawler.pending), sorted(e.address for e in fresh))
        self.assertEqual(self.book.gossiped, [(fresh, self.SOURCE, T0)])
        self.assertEqual(set(crawler.filtered.values()), {0})

    def test_max_age_boundary(self):
        crawler = self.crawler(max_age=3600)
        old, edge = ip("1.0.0.1"), ip("1.0.0.2")
        crawler._learn([entry(old, T0 - 3601), entry(edge, T0 - 3600)], self.SOURCE)
        self.assertEqual(crawler.pending, [edge])
        self.assertEqual(crawler.filtered["stale"], 1)
        # The book keeps only what passed the filters.
        self.assertEqual([e.address for e in self.book.gossiped[0][0]], [edge])

    def test_absurd_times(self):
        """Core's rule: at most 1e8, or more than 10 minutes ahead, is absurd."""
        crawler = self.crawler(max_age=1e10)
        absurd = [entry(ip("1.0.0.1"), 0), entry(ip("1.0.0.2"), MIN_SANE_TIME),
                  entry(ip("1.0.0.3"), T0 + MAX_FUTURE_DRIFT + 1)]
        sane = [entry(ip("1.0.0.4"), MIN_SANE_TIME + 1),
                entry(ip("1.0.0.5"), T0 + MAX_FUTURE_DRIFT)]
        crawler._learn(absurd + sane, self.SOURCE)
        self.assertEqual(crawler.filtered["absurd-time"], 3)
        self.assertEqual(sorted(crawler.pending), sorted(e.address for e in sane))

    def test_invalid(self):
        crawler = self.crawler(allow_private=True)
        crawler._learn([entry(ip("0.0.0.0"), T0), entry(ip("255.255.255.255"), T0)],
                       self.SOURCE)
        self.assertEqual(crawler.filtered["invalid"], 2)
        self.assertEqual(crawler.pending, [])
        self.assertEqual(self.book.gossiped, [])

    def test_unroutable(self):
        private = [entry(ip(h), T0) for h in ("10.0.0.1", "127.0.0.1", "192.168.1.1",
                                               "169.254.0.1", "100.64.0.1")]
        crawler = self.crawler()
        crawler._learn(private, self.SOURCE)
        self.assertEqual(crawler.filtered["unroutable"], len(private))
        self.assertEqual(crawler.pending, [])

    def test_allow_private(self):
        private = [entry(ip(h), T0) for h in ("10.0.0.1", "127.0.0.1", "192.168.1.1")]
        crawler = self.crawler(allow_private=True)
        crawler._learn(private, self.SOURCE)
        self.assertEqual(crawler.filtered["unroutable"], 0)
        self.assertEqual(sorted(crawler.pending), sorted(e.address for e in private))

    def test_exotic_kept_not_dialled(self):
        """Tor v3, I2P and CJDNS go to the book and are counted, never pending."""
        crawler = self.crawler()
        exotic = [entry(a, T0 - 10) for a in (ONION, I2P, CJDNS)]
        crawler._learn(exotic, self.SOURCE)
        crawler._learn(exotic, self.SOURCE)  # a second mention is not a second address
        self.assertEqual(crawler.pending, [])
        self.assertEqual(crawler.not_dialled, NO_OPTIONS)
        self.assertEqual(self.book.gossiped, [(exotic, self.SOURCE, T0)])

    def test_stale_exotic_is_dropped(self):
        crawler = self.crawler(max_age=3600)
        crawler._learn([entry(ONION, T0 - 7200)], self.SOURCE)
        self.assertEqual(crawler.not_dialled, {})
        self.assertEqual(crawler.filtered["stale"], 1)

    def test_once_per_crawl(self):
        crawler = self.crawler()
        a = ip("1.2.3.4")
        crawler._learn([entry(a, T0), entry(a, T0 - 5)], self.SOURCE)
        crawler._learn([entry(a, T0)], ip("10.8.8.8"))
        self.assertEqual(crawler.pending, [a])
        self.assertEqual(set(crawler.filtered.values()), {0})

    def test_stale_then_fresh(self):
        """A stale mention does not hide a later fresh one."""
        crawler = self.crawler(max_age=3600)
        a = ip("1.2.3.4")
        crawler._learn([entry(a, T0 - 7200)], self.SOURCE)
        crawler._learn([entry(a, T0 - 60)], self.SOURCE)
        self.assertEqual(crawler.pending, [a])

    def test_pending_bound(self):
        crawler = self.crawler(max_pending=3)
        crawler._learn([entry(ip(f"1.0.0.{n}"), T0) for n in range(1, 6)], self.SOURCE)
        self.assertEqual(len(crawler.pending), 3)
        self.assertEqual(crawler.filtered["pending-full"], 2)


class FakeDialler:
    """
    A stand-in for bitpeer.net.dialler.Dialler: it records the attempts and
    makes no connection; the test settles them as the network would.
    """

    def __init__(self, reactor, factory, timeout, failed, clock=None):
        self.factory, self.timeout, self.failed = factory, timeout, failed
        self.attempts = []

    def dial(self, address):
        attempt = FakeAttempt(self, address)
        self.attempts.append(attempt)
        return attempt


class FakeAttempt:
    """One recorded dial; ``fail`` settles it once, as Attempt does."""

    def __init__(self, dialler, address):
        self.dialler, self.address = dialler, address
        self.settled = self.cancelled = False

    def fail(self, error):
        if not self.settled:
            self.settled = True
            self.dialler.failed(self.address, error)

    def cancel(self):
        if not self.settled:
            self.cancelled = True
            self.fail(ConnectFailed("connection attempt cancelled"))


class DialTests(SynchronousTestCase):
    """
    The dialling discipline, with a FakeDialler: dials are recorded, never
    made; the test fails them as the network would.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(T0)
        self.book = FakeBook()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def crawler(self, seeds, seed=1, **options):
        options.setdefault("allow_private", True)
        self.current = Crawler(self.clock, REGTEST, seeds, options=CrawlOptions(**options),
                               book=self.book, crawl_id=9, random=random.Random(seed),
                               dialler=FakeDialler)
        return self.current

    def seeds(self, n):
        return [ip(f"10.0.{i // 250}.{i % 250 + 1}", 18444) for i in range(n)]

    def dialled(self):
        return [attempt.address for attempt in self.current.dialler.attempts]

    def fail_dial(self, index, error):
        self.current.dialler.attempts[index].fail(error)

    def test_concurrency_bound(self):
        crawler = self.crawler(self.seeds(10), concurrency=3)
        d = crawler.run()
        self.assertNoResult(d)
        self.assertEqual(len(self.dialled()), 3)
        self.assertEqual((len(crawler.in_flight), len(crawler.pending)), (3, 7))

    def test_connect_timeout_option(self):
        crawler = self.crawler(self.seeds(2), connect_timeout=0.5)
        self.assertEqual(crawler.dialler.timeout, 0.5)

    def test_random_pick(self):
        """Pending addresses are picked at random, not in the order learnt."""
        seeds = self.seeds(50)
        firsts = set()
        for seed in range(40):
            self.crawler(seeds, seed=seed, concurrency=1).run()
            firsts.add(self.dialled()[0])
        self.assertGreater(len(firsts), 15)

    def test_failures_classified_and_refilled(self):
        seeds = self.seeds(4)
        crawler = self.crawler(seeds, concurrency=2)
        d = crawler.run()
        first, second = self.dialled()
        self.fail_dial(0, ConnectionRefused("refused"))
        self.assertEqual(len(self.dialled()), 3)  # a freed slot is filled at once
        self.fail_dial(1, ConnectTimeout("no answer"))
        self.assertEqual(len(self.dialled()), 4)
        self.assertEqual(crawler.unreachable[first].reason, "refused")
        self.assertEqual(crawler.unreachable[second].reason, "connect-timeout")
        self.assertEqual(self.book.attempts[:2], [(9, first, "unreachable", "refused"),
                                                  (9, second, "unreachable",
                                                   "connect-timeout")])
        self.assertNoResult(d)
        self.fail_dial(2, ConnectionRefused("refused"))
        self.fail_dial(3, ConnectionRefused("refused"))
        result = self.successResultOf(d)
        self.assertIsInstance(result, CrawlResult)
        self.assertEqual(set(result.unreachable), set(seeds))
        self.assertEqual(result.reachable, {})
        self.assertEqual(sorted(self.dialled()), sorted(seeds))

    def test_book_closed_under_the_crawl(self):
        """
        A book closed by its owner while verdicts still come in (a reactor
        shutting down closes one itself) does not break the crawl: the
        verdicts are kept in the result, one warning says the book missed
        them, and ``unrecorded`` counts them.
        """
        seeds = self.seeds(4)
        crawler = self.crawler(seeds, concurrency=4)
        d = crawler.run()
        self.fail_dial(0, ConnectionRefused("refused"))
        self.book.closed = True
        for index in (1, 2, 3):
            self.fail_dial(index, ConnectionRefused("refused"))
        result = self.successResultOf(d)
        self.assertEqual(set(result.unreachable), set(seeds))
        self.assertEqual(len(self.book.attempts), 1)
        self.assertEqual(crawler.unrecorded, 3)
        warnings = [e for e in self.events if "address book was closed" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual([e for e in self.events if e.get("log_level") == LogLevel.critical], [])

    def test_invalid_seeds_skipped(self):
        """0.0.0.0, :: and 255.255.255.255 are not dialled (Core's IsValid);
        they are counted as invalid and a warning says so."""
        invalid = [ip("0.0.0.0", 18444), NetworkAddress.from_host("::", 18444),
                   ip("255.255.255.255", 18444)]
        crawler = self.crawler(self.seeds(1) + invalid)
        d = crawler.run()
        self.assertEqual(self.dialled(), self.seeds(1))
        self.fail_dial(0, ConnectionRefused("refused"))
        self.assertEqual(self.successResultOf(d).filtered["invalid"], 3)
        warnings = [e for e in self.events if "not a valid address" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 3)

    def test_late_dial_failure_of_a_started_connection(self):
        """
        A dial failure reported for an address whose protocol had already
        started (the dialler saw a bug after the protocol began) is left to
        the peer's own end: no second verdict, no socket counted twice.
        """
        crawler = self.crawler(self.seeds(1))
        crawler.run()
        address = self.seeds(1)[0]
        crawler.connected[address] = object()
        self.fail_dial(0, ConnectFailed("the connection could not start"))
        self.assertEqual((crawler.open_sockets, crawler.unreachable), (1, {}))
        self.assertIn(address, crawler.in_flight)

    def test_exotic_seeds_not_dialled(self):
        crawler = self.crawler(self.seeds(1) + [ONION, I2P, CJDNS])
        d = crawler.run()
        self.assertEqual(self.dialled(), self.seeds(1))
        self.fail_dial(0, ConnectionRefused("refused"))
        self.assertEqual(self.successResultOf(d).not_dialled, NO_OPTIONS)

    def test_duplicate_seeds_dialled_once(self):
        self.crawler(self.seeds(2) * 3).run()
        self.assertEqual(sorted(self.dialled()), sorted(self.seeds(2)))

    def test_no_seeds(self):
        """Nothing pending, nothing in flight: the crawl is over at once."""
        result = self.successResultOf(self.crawler([]).run())
        self.assertEqual((result.reachable, result.unreachable, result.not_dialled),
                         ({}, {}, {}))
        self.assertEqual(result.elapsed, 0)

    def test_progress_timeline(self):
        crawler = self.crawler(self.seeds(2), progress_interval=5)
        d = crawler.run()
        self.clock.advance(5)
        self.clock.advance(5)
        self.fail_dial(0, ConnectionRefused("refused"))
        self.fail_dial(1, ConnectionRefused("refused"))
        result = self.successResultOf(d)
        self.assertEqual(result.timeline, ((5.0, 0, 0, 2), (10.0, 0, 0, 2), (10.0, 0, 2, 2)))
        self.assertEqual(result.elapsed, 10)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop(self):
        """stop() ends the crawl at once: pending dropped, dials cancelled."""
        crawler = self.crawler(self.seeds(10), concurrency=3)
        d = crawler.run()
        crawler.stop()
        result = self.successResultOf(d)
        self.assertTrue(all(a.cancelled for a in crawler.dialler.attempts))
        self.assertEqual(len(self.dialled()), 3)
        self.assertEqual(crawler.pending, [])
        self.assertEqual(crawler.in_flight, {})
        self.assertEqual(result.reachable, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def messages(self):
        return [e["log_format"].format(**e) for e in self.events if "log_format" in e]

    def test_stop_says_what_it_left(self):
        """The line said on stop counts what was pending and in flight then,
        not the empty sets the stop leaves; no progress line follows it."""
        crawler = self.crawler(self.seeds(10), concurrency=3)
        d = crawler.run()
        crawler.stop()
        self.assertTrue(self.successResultOf(d).stopped)
        stopped = [m for m in self.messages() if "stopped" in m]
        self.assertEqual(stopped, ["crawl regtest stopped: 7 addresses left undialled, "
                                   "3 connections cut short, 0 reachable, 0 unreachable"])
        self.assertEqual([m for m in self.messages() if "pending" in m], [])

    def test_verbose_logs_failed_dials(self):
        """With debug on (--verbose), a dial that never connected is logged
        with its reason; without it, nothing is built."""
        crawler = self.crawler(self.seeds(2), concurrency=2)
        crawler.run()
        self.fail_dial(0, ConnectionRefused("Connection refused"))
        self.assertEqual([m for m in self.messages() if "refused" in m], [])
        levels.setLogLevelForNamespace("bitpeer", LogLevel.debug)
        self.addCleanup(levels.clearLogLevels)
        self.fail_dial(1, ConnectTimeout("no answer in 5 s"))
        self.assertEqual([m for m in self.messages() if "connect-timeout" in m],
                         [f"{self.dialled()[1]}: connect-timeout: no answer in 5 s"])

    def test_resumed_crawl_skips_settled_addresses(self):
        """Addresses settled by the interrupted run are not dialled again
        and are part of the result; the rest are dialled."""
        seeds = self.seeds(4)
        settled = Settled(
            reachable={seeds[0]: NodeResult(_info(seeds[0]), "answered", 12)},
            unreachable={seeds[1]: Unreachable("refused", "Connection refused")},
        )
        crawler = Crawler(self.clock, REGTEST, seeds, options=CrawlOptions(allow_private=True),
                          book=self.book, crawl_id=9, random=random.Random(1),
                          dialler=FakeDialler, settled=settled)
        self.current = crawler
        d = crawler.run()
        self.assertEqual(sorted(self.dialled()), sorted(seeds[2:]))
        self.fail_dial(0, ConnectionRefused("refused"))
        self.fail_dial(1, ConnectionRefused("refused"))
        result = self.successResultOf(d)
        self.assertEqual(result.resumed, 2)
        self.assertEqual(set(result.reachable), {seeds[0]})
        self.assertEqual(set(result.unreachable), set(seeds[1:]))
        # Only this run's verdicts go to the book: the others are there already.
        self.assertEqual(sorted(a[1] for a in self.book.attempts), sorted(seeds[2:]))

    def test_stop_does_not_blame_cancelled_dials(self):
        """
        A dial we cancelled says nothing about the node: it must not be stored
        as a failed attempt (which would count a failure against the address
        and set its last_failure_reason to "cancelled").
        """
        crawler = self.crawler(self.seeds(10), concurrency=3)
        crawler.run()
        crawler.stop()
        self.assertEqual(self.book.attempts, [])


def verdict(address, outcome="reachable", **fields):
    """A Verdict as AddressBook.verdicts gives it."""
    values = dict(address=address, at=T0, outcome=outcome, reason=None, detail=None,
                  version=None, user_agent=None, services=None, start_height=None,
                  relay=None, latency=None, returned=None)
    if outcome == "reachable":
        values.update(reason="answered", version=70016, user_agent="/Satoshi:29.0.0/",
                      services=SERVICES, start_height=1, relay=True, latency=0.01,
                      returned=12)
    values.update(fields)
    return Verdict(**values)


def _info(address):
    """A PeerInfo as a resumed crawl rebuilds it from the book."""
    return Settled.from_verdicts({address: verdict(address)}).reachable[address].info


class SettledTests(SynchronousTestCase):
    """Settled.from_verdicts: the verdicts of a crawl, rebuilt from the book."""

    def test_rebuilt(self):
        a, b = ip("10.0.0.1"), ip("10.0.0.2")
        settled = Settled.from_verdicts({
            a: verdict(a, user_agent="/x\udcff/", start_height=5, relay=False,
                       latency=0.25, returned=3),
            b: verdict(b, "unreachable", reason="refused", detail="refused"),
        })
        self.assertEqual(len(settled), 2)
        node = settled.reachable[a]
        self.assertEqual((node.getaddr_outcome, node.returned), ("answered", 3))
        self.assertEqual((node.info.version, node.info.user_agent, node.info.relay,
                          node.info.handshake_latency), (70016, "/x\udcff/", False, 0.25))
        self.assertEqual(settled.unreachable, {b: Unreachable("refused", "refused")})


# -- against a simulated network ------------------------------------------------------

#: Short timeouts: a crawl of a few hundred loopback nodes takes ~2-3 s.
PEER_OPTIONS = PeerOptions(handshake_timeout=2, getaddr_idle_timeout=1, getaddr_timeout=3)


def crawl_options(**options):
    values = dict(concurrency=300, connect_timeout=0.5, allow_private=True,
                  progress_interval=0.5)
    values.update(options)
    return CrawlOptions(**values)


@defer.inlineCallbacks
def crawl(simnet, seeds=None, *, book=None, crawl_id=None, **options):
    """Crawl ``simnet`` with ``options`` (CrawlOptions fields, ``transport``
    among them); the crawler and its CrawlResult once every client
    connection is gone."""
    crawler = Crawler(reactor, SIMNET, simnet.seeds() if seeds is None else seeds,
                      options=crawl_options(**options), peer_options=PEER_OPTIONS,
                      book=book, crawl_id=crawl_id, random=random.Random(3))
    result = yield crawler.run()
    yield connections_closed()
    return crawler, result


def by_text(addresses):
    return {str(a): a for a in addresses}


#: A word of the rule each protocol-error kind breaks, as the detail names it.
RULES = {
    "garbage": "message start",
    "wrong-magic": "message start",
    "huge-header": "exceeds",
    "bad-checksum": "checksum",
}


class OnTransport:
    """
    A crawl test on a real (loopback) network, run on each transport: the
    concrete classes set ``transport`` to a name of bitpeer.net.DIALLERS.
    """

    transport = None

    def crawl(self, simnet, seeds=None, **options):
        return crawl(simnet, seeds, transport=self.transport, **options)


class SimnetCrawlMixin(OnTransport):
    """
    One crawl of 210 nodes (6 of each misbehaving kind), 200 dead addresses
    (a quarter blackholed), 10 stale and 10 exotic, with an AddressBook,
    checked against the SimNet's ground truth.  The crawl runs once per
    transport; each test checks one property of what it found.
    """

    _shared = None

    def shared(self):
        cls = type(self)
        if cls._shared is not None:
            return defer.succeed(cls._shared)
        return self._crawl_once().addCallback(lambda shared: setattr(cls, "_shared", shared)
                                              or shared)

    @defer.inlineCallbacks
    def _crawl_once(self):
        base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, base, True)
        simnet = SimNet(reactor, 210, 200, kinds={k: 0.03 for k in MISBEHAVING_KINDS},
                        seed=11, network=SIMNET)
        truth = simnet.start()
        book = AddressBook(os.path.join(base, "book.sqlite"), reactor)
        try:
            yield book.open()
            crawl_id = yield book.start_crawl("simnet", {"test": True}, reactor.seconds())
            _, result = yield self.crawl(simnet, book=book, crawl_id=crawl_id)
            yield book.flush()
            yield book.finish_crawl(crawl_id, summarize(result), reactor.seconds())
            shared = dict(
                truth=truth, result=result, crawl_id=crawl_id,
                counters={k: dict(v) for k, v in simnet.counters.items()},
                observations=(yield book.observations(crawl_id)),
                known=(yield book.known()),
                crawls=(yield book.crawls()),
            )
            json_path, csv_path = write_snapshot(result, os.path.join(base, "out"))
            with open(json_path, encoding="utf-8") as stream:
                shared["json"] = json.load(stream)
            with open(csv_path, newline="", encoding="utf-8") as stream:
                shared["csv"] = list(csv.reader(stream))
            shared["snapshot_names"] = (os.path.basename(json_path),
                                        os.path.basename(csv_path))
        finally:
            yield book.close()
            yield simnet.stop()
        return shared

    @defer.inlineCallbacks
    def test_truth_is_what_it_says(self):
        """The network under test has every kind the proof needs."""
        s = yield self.shared()
        kinds = collections.Counter(n["kind"] for n in s["truth"]["nodes"])
        self.assertEqual(set(kinds), set(KINDS))
        for node in s["truth"]["nodes"]:
            self.assertEqual(node["expect"], KINDS[node["kind"]])
        counts = s["truth"]["counts"]
        self.assertEqual((counts["refused"], counts["blackholed"]), (150, 50))
        self.assertEqual((counts["stale"], counts["exotic"]), (10, 10))

    @defer.inlineCallbacks
    def test_every_reachable_node_found(self):
        s = yield self.shared()
        reachable = by_text(s["result"].reachable)
        expected = {n["address"] for n in s["truth"]["nodes"] if n["expect"] == "reachable"}
        honest = {n["address"] for n in s["truth"]["nodes"] if n["kind"] == "honest"}
        self.assertTrue(honest <= expected)
        self.assertEqual(set(reachable), expected)

    @defer.inlineCallbacks
    def test_discovery_curve_and_timeouts(self):
        """Every reachable verdict has its time, in order, and the summary
        reads the marks off them; the connect timeout was learnt from the
        connects (the floor: loopback connects at once)."""
        s = yield self.shared()
        result = s["result"]
        self.assertEqual(len(result.reached_at), len(result.reachable))
        self.assertEqual(list(result.reached_at), sorted(result.reached_at))
        marks = s["json"]["summary"]["discovery"]
        self.assertEqual(marks["reachable"], len(result.reachable))
        self.assertLessEqual(marks["to_90"], marks["to_99"])
        self.assertLessEqual(marks["to_99"], marks["to_100"])
        self.assertLessEqual(marks["to_100"], result.elapsed)
        connect = s["json"]["summary"]["timeouts"]["connect"]
        self.assertGreaterEqual(connect["samples"], len(result.reachable))
        self.assertEqual(connect["learnt"], min(connect["floor"], connect["configured"]))
        handshake = s["json"]["summary"]["timeouts"]["handshake"]
        self.assertGreaterEqual(handshake["samples"], len(result.reachable))

    @defer.inlineCallbacks
    def test_handshake_facts_match_truth(self):
        s = yield self.shared()
        reachable = by_text(s["result"].reachable)
        for node in s["truth"]["nodes"]:
            if node["expect"] != "reachable":
                continue
            info = s["result"].reachable[reachable[node["address"]]].info
            self.assertEqual(
                (info.version, info.user_agent, info.services, info.start_height),
                (node["version"], node["user_agent"], node["services"], node["start_height"]),
                node["address"],
            )

    @defer.inlineCallbacks
    def test_honest_nodes_answer_getaddr(self):
        s = yield self.shared()
        reachable = by_text(s["result"].reachable)
        for node in s["truth"]["nodes"]:
            if node["kind"] == "honest":
                answer = s["result"].reachable[reachable[node["address"]]]
                self.assertEqual(answer.getaddr_outcome, "answered", node["address"])
                self.assertGreater(answer.returned, 1)

    @defer.inlineCallbacks
    def test_dead_addresses_never_reachable(self):
        s = yield self.shared()
        result, truth = s["result"], s["truth"]
        reachable = by_text(result.reachable)
        unreachable = by_text(result.unreachable)
        for kind, reason in (("refused", "refused"), ("blackholed", "connect-timeout")):
            for address in truth[kind]:
                self.assertNotIn(address, reachable)
                self.assertIn(address, unreachable)
                self.assertEqual(result.unreachable[unreachable[address]].reason, reason,
                                 address)

    @defer.inlineCallbacks
    def test_misbehaving_classified_by_fault(self):
        s = yield self.shared()
        result = s["result"]
        unreachable = by_text(result.unreachable)
        wrong = []
        for node in s["truth"]["nodes"]:
            if node["expect"] == "reachable":
                continue
            got = unreachable.get(node["address"])
            reason = None if got is None else result.unreachable[got].reason
            if reason != node["expect"]:
                wrong.append((node["kind"], node["address"], node["expect"], reason))
        self.assertEqual(wrong, [])

    @defer.inlineCallbacks
    def test_protocol_errors_name_the_rule(self):
        s = yield self.shared()
        result = s["result"]
        unreachable = by_text(result.unreachable)
        for node in s["truth"]["nodes"]:
            if node["kind"] in RULES:
                failure = result.unreachable[unreachable[node["address"]]]
                self.assertIn(RULES[node["kind"]], failure.detail, node["kind"])

    @defer.inlineCallbacks
    def test_reachable_misbehaving_kinds(self):
        """Faults after the handshake leave the node reachable, the getaddr marked."""
        s = yield self.shared()
        result = s["result"]
        reachable = by_text(result.reachable)
        for node in s["truth"]["nodes"]:
            answer = result.reachable.get(reachable.get(node["address"]))
            if node["kind"] == "too-many-addr":
                self.assertEqual((answer.getaddr_outcome, answer.returned),
                                 ("protocol-error", 0))
                self.assertIn("1000", answer.getaddr_error)
            elif node["kind"] == "bad-addrv2":
                self.assertEqual(answer.returned, 0)
                self.assertIn(answer.getaddr_outcome, ("idle", "timeout"))
            elif node["kind"] == "second-version":
                self.assertEqual(answer.getaddr_outcome, "answered")

    @defer.inlineCallbacks
    def test_each_node_dialled_once(self):
        s = yield self.shared()
        kinds = collections.Counter(n["kind"] for n in s["truth"]["nodes"])
        connections = {k: v.get("connections", 0) for k, v in s["counters"].items()}
        self.assertEqual(connections, dict(kinds))
        result = s["result"]
        self.assertEqual(set(result.reachable) & set(result.unreachable), set())

    @defer.inlineCallbacks
    def test_stale_filtered(self):
        s = yield self.shared()
        result = s["result"]
        dialled = set(by_text(result.reachable)) | set(by_text(result.unreachable))
        known = {str(k.address) for k in s["known"]}
        for address in s["truth"]["stale"]:
            self.assertNotIn(address, dialled)
            self.assertNotIn(address, known)
        self.assertGreater(result.filtered["stale"], 0)

    @defer.inlineCallbacks
    def test_exotic_recorded_not_dialled(self):
        s = yield self.shared()
        result = s["result"]
        exotic = set(s["truth"]["exotic"])
        self.assertEqual({str(a) for a in result.not_dialled}, exotic)
        self.assertEqual(len(result.not_dialled), len(exotic))
        known = {str(k.address) for k in s["known"]}
        self.assertTrue(exotic <= known, exotic - known)
        observed = {str(o["address"]) for o in s["observations"]}
        self.assertEqual(observed & exotic, set())
        networks = {a.network for a in result.not_dialled}
        self.assertEqual(networks, {Network.TORV3, Network.I2P, Network.CJDNS})

    @defer.inlineCallbacks
    def test_every_attempt_stored(self):
        """One observation per dialled address, with the crawl's verdict."""
        s = yield self.shared()
        result = s["result"]
        verdicts = {o["address"]: (o["outcome"], o["reason"]) for o in s["observations"]}
        self.assertEqual(len(verdicts), len(s["observations"]))
        expected = {a: ("unreachable", u.reason) for a, u in result.unreachable.items()}
        expected.update(
            {a: ("reachable", n.getaddr_outcome) for a, n in result.reachable.items()}
        )
        self.assertEqual(verdicts, expected)
        for o in s["observations"]:
            if o["outcome"] == "reachable":
                self.assertIsNotNone(o["version"])
                self.assertIsNotNone(o["user_agent"])
            self.assertEqual(o["crawl_id"], s["crawl_id"])
        (row,) = s["crawls"]
        self.assertIsNotNone(row["finished"])
        self.assertEqual(row["summary"]["outcomes"]["reachable"], len(result.reachable))

    @defer.inlineCallbacks
    def test_gossip_counted(self):
        """Every entry the nodes announced is counted, filtered or not."""
        s = yield self.shared()
        result = s["result"]
        announced = sum(n.returned or 0 for n in result.reachable.values())
        self.assertGreater(announced, len(s["truth"]["nodes"]))
        self.assertEqual(result.gossiped, announced)
        self.assertEqual(s["json"]["summary"]["gossip"]["entries_received"], announced)

    @defer.inlineCallbacks
    def test_failure_reasons_in_summary(self):
        s = yield self.shared()
        truth = s["truth"]
        expected = collections.Counter(
            n["expect"] for n in truth["nodes"] if n["expect"] != "reachable"
        )
        expected["refused"] += len(truth["refused"])
        expected["connect-timeout"] += len(truth["blackholed"])
        self.assertEqual(s["json"]["summary"]["failure_reasons"], dict(expected))

    @defer.inlineCallbacks
    def test_snapshot_files(self):
        s = yield self.shared()
        result, document = s["result"], s["json"]
        self.assertRegex(s["snapshot_names"][0], r"^simnet-\d{8}T\d{6}Z\.json$")
        self.assertEqual(document["summary"]["outcomes"], {
            "reachable": len(result.reachable), "unreachable": len(result.unreachable),
            "not_dialled": len(result.not_dialled),
        })
        self.assertEqual(len(document["nodes"]), len(result.reachable))
        header, rows = s["csv"][0], s["csv"][1:]
        self.assertEqual(tuple(header), CSV_FIELDS)
        self.assertEqual(len(rows), len(result.reachable))
        self.assertGreater(len(document["summary"]["discovered_over_time"]), 1)


class SimnetCrawlFastTests(SimnetCrawlMixin, TestCase):
    transport = "fast"


class SimnetCrawlTwistedTests(SimnetCrawlMixin, TestCase):
    transport = "twisted"


class SimnetCrawlVariantsMixin(OnTransport):
    """Smaller crawls, each showing one option at work."""

    def simnet(self, nodes, dead=0, **kwargs):
        simnet = SimNet(reactor, nodes, dead, seed=5, network=SIMNET, **kwargs)
        truth = simnet.start()
        self.addCleanup(simnet.stop)
        return simnet, truth

    @defer.inlineCallbacks
    def test_getaddr_fraction_zero(self):
        """Asking no one for addresses: only the seeds are crawled."""
        simnet, _ = self.simnet(40)
        _, result = yield self.crawl(simnet, getaddr_fraction=0)
        self.assertEqual(set(result.reachable), set(simnet.seeds()))
        self.assertEqual({n.getaddr_outcome for n in result.reachable.values()}, {None})
        self.assertEqual(simnet.counters["honest"].get("getaddr", 0), 0)
        self.assertEqual(summarize(result)["getaddr"], {"not-asked": 3})

    @defer.inlineCallbacks
    def test_getaddr_fraction_half(self):
        simnet, truth = self.simnet(120, stale=0, exotic=0)
        _, result = yield self.crawl(simnet, getaddr_fraction=0.5)
        asked = sum(n.getaddr_outcome is not None for n in result.reachable.values())
        self.assertEqual(simnet.counters["honest"]["getaddr"], asked)
        # About half (the first ten are always asked).
        self.assertTrue(0.25 * len(result.reachable) < asked < 0.75 * len(result.reachable),
                        (asked, len(result.reachable)))

    @defer.inlineCallbacks
    def test_small_fraction_does_not_starve(self):
        """
        With a small fraction the seeds may all draw "don't ask": the first
        few nodes are asked anyway, and the crawl finds every node.
        """
        simnet, truth = self.simnet(200, stale=0, exotic=0)
        _, result = yield self.crawl(simnet, getaddr_fraction=0.01)
        self.assertEqual(len(result.reachable), 200)
        asked = sum(n.getaddr_outcome is not None for n in result.reachable.values())
        self.assertLess(asked, 30)

    @defer.inlineCallbacks
    def test_loopback_gossip_unroutable_without_allow_private(self):
        """Without allow_private, gossiped 127.x addresses are dropped (the seeds are not)."""
        simnet, _ = self.simnet(30, 10)
        _, result = yield self.crawl(simnet, allow_private=False)
        self.assertEqual(set(result.reachable), set(simnet.seeds()))
        self.assertEqual(result.unreachable, {})
        self.assertGreater(result.filtered["unroutable"], 0)
        self.assertEqual(len(result.not_dialled), 30 // 20)

    @defer.inlineCallbacks
    def test_max_age(self):
        """A max_age shorter than the gossip's age drops all of it."""
        simnet, _ = self.simnet(30)
        _, result = yield self.crawl(simnet, max_age=1)
        self.assertEqual(set(result.reachable), set(simnet.seeds()))
        self.assertGreater(result.filtered["stale"], 0)

    @defer.inlineCallbacks
    def test_stop_midway(self):
        """stop() (or cancelling run()) ends a crawl at once, nothing left open."""
        simnet, _ = self.simnet(30, 60, blackholed=1.0)
        book = ReachedBook(30)
        crawler = Crawler(reactor, SIMNET, simnet.seeds(), book=book,
                          options=crawl_options(connect_timeout=10, transport=self.transport),
                          peer_options=PEER_OPTIONS)
        d = crawler.run()
        # The honest nodes are done: what is left in flight are dials to the
        # blackholed addresses they gossiped, which take connect_timeout.
        yield book.reached
        self.assertTrue(crawler.in_flight, "no blackholed dial in flight")
        d.cancel()
        # Every dial is given up at once; only connections closing remain.
        self.assertLessEqual(set(crawler.in_flight), set(crawler.connected))
        result = yield d
        self.assertEqual((crawler.pending, crawler.in_flight), ([], {}))
        self.assertIsInstance(result, CrawlResult)
        self.assertTrue(result.stopped)
        yield connections_closed()


class SimnetCrawlVariantsFastTests(SimnetCrawlVariantsMixin, TestCase):
    transport = "fast"


class SimnetCrawlVariantsTwistedTests(SimnetCrawlVariantsMixin, TestCase):
    transport = "twisted"


class OnlynetTests(SynchronousTestCase):
    """
    CrawlOptions.networks (``--onlynet``): other networks are kept, counted
    and reported as not dialled, each with its reason, in the crawl
    result, the summary and the snapshot record.
    """

    V6 = NetworkAddress.parse("[2001:4860::1]:18444")

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(T0)

    def crawl(self, seeds, **options):
        options.setdefault("allow_private", True)
        self.crawler = Crawler(self.clock, REGTEST, seeds, options=CrawlOptions(**options),
                               random=random.Random(1), dialler=FakeDialler)
        return self.crawler.run()

    def dialled(self):
        return [attempt.address for attempt in self.crawler.dialler.attempts]

    def test_default_allows_every_network(self):
        options = CrawlOptions()
        self.assertEqual(options.networks, {"ipv4", "ipv6", "onion", "i2p", "cjdns"})
        self.assertIsNone(options.not_dialled_reason(ip("1.2.3.4")))
        self.assertIsNone(options.not_dialled_reason(self.V6))
        for address, reason in NO_OPTIONS.items():
            self.assertEqual(options.not_dialled_reason(address), reason)

    def test_onlynet_ipv4(self):
        """IPv6 is left out by the operator: 'onlynet'; Tor too, whatever its proxy."""
        self.crawl([ip("10.0.0.1", 18444), self.V6, ONION, I2P], networks={"ipv4"})
        self.assertEqual(self.dialled(), [ip("10.0.0.1", 18444)])
        self.assertEqual(self.crawler.not_dialled,
                         {self.V6: "onlynet", ONION: "onlynet", I2P: "onlynet"})

    def test_onlynet_onion_without_a_proxy(self):
        """--onlynet onion without --onion-proxy: clearnet is 'onlynet', onion
        'no --onion-proxy'."""
        d = self.crawl([ip("10.0.0.1", 18444), self.V6, ONION, CJDNS], networks={"onion"})
        self.assertEqual(self.dialled(), [])
        result = self.successResultOf(d)
        self.assertEqual(result.not_dialled, {ip("10.0.0.1", 18444): "onlynet",
                                              self.V6: "onlynet", ONION: "no --onion-proxy",
                                              CJDNS: "onlynet"})
        summary = summarize(result)
        self.assertEqual(summary["outcomes"]["not_dialled"], 4)
        self.assertEqual(summary["not_dialled_reasons"], {"onlynet": 3, "no --onion-proxy": 1})

    def test_gossip_on_other_networks_kept_in_the_book(self):
        """Gossip on a network left out still goes to the book (kept, not dialled)."""
        book = FakeBook()
        crawler = Crawler(self.clock, REGTEST, [], options=CrawlOptions(networks={"ipv6"}),
                          book=book, crawl_id=1, random=random.Random(1), clock=self.clock,
                          dialler=FakeDialler)
        fresh = [entry(ip("1.2.3.4"), T0), entry(self.V6, T0)]
        crawler._learn(fresh, ip("5.6.7.8"))
        self.assertEqual(crawler.pending, [self.V6])
        self.assertEqual(crawler.not_dialled, {ip("1.2.3.4"): "onlynet"})
        self.assertEqual(book.gossiped, [(fresh, ip("5.6.7.8"), T0)])

    def test_snapshot_records_the_reason(self):
        d = self.crawl([ip("10.0.0.1", 18444), ONION], networks={"ipv6", "onion"})
        result = self.successResultOf(d)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        json_path, _ = write_snapshot(result, directory)
        with open(json_path) as stream:
            document = json.load(stream)
        self.assertEqual(document["not_dialled"], [
            {"address": "10.0.0.1:18444", "network": "ipv4", "reason": "onlynet"},
            {"address": str(ONION), "network": "onion", "reason": "no --onion-proxy"},
        ])
        self.assertEqual(document["summary"]["not_dialled_reasons"],
                         {"onlynet": 1, "no --onion-proxy": 1})

    def test_bad_networks(self):
        for bad in (set(), {"ipv5"}, {"ipv4", "tor"}):
            self.assertRaises(ValueError, CrawlOptions, networks=bad)


class ProxyGone(ConnectFailed):
    """What the SOCKS5 and SAM diallers report when their proxy or bridge
    cannot be reached (bitpeer.errors' class of that reason)."""

    reason = "proxy-unreachable"


class FakeOverlayDialler(FakeDialler):
    """A FakeDialler for a proxy path: it keeps its ``proxy`` or ``bridge``."""

    def __init__(self, reactor, factory, timeout, failed, clock=None, **config):
        super().__init__(reactor, factory, timeout, failed, clock)
        self.config = config


TOR_A, TOR_B = ("127.0.0.1", 9050), ("127.0.0.1", 9150)
SAM = ("127.0.0.1", 7656)


def onion(n, port=8333):
    """The ``n``th made-up onion address."""
    return NetworkAddress(Network.TORV3, bytes([n % 256, n // 256]) * 16, port)


def i2p(n, port=0):
    return NetworkAddress(Network.I2P, bytes([n % 256, 7]) * 16, port)


class RoutingTests(SynchronousTestCase):
    """
    Each network is dialled along its own path, with its own slots and
    connect timeout (bitpeer.crawl.slots), on fake diallers: the direct
    one, and one per SOCKS5 proxy and SAM bridge.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(T0)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def crawl(self, seeds, **options):
        options.setdefault("allow_private", True)
        self.crawler = Crawler(
            self.clock, REGTEST, seeds, options=CrawlOptions(**options),
            random=random.Random(1), dialler=FakeDialler,
            overlay_diallers={"socks5": FakeOverlayDialler, "sam": FakeOverlayDialler})
        return self.crawler.run()

    def path(self, name):
        (path,) = [p for p in self.crawler.slots.paths if p.name == name]
        return path

    def dialled(self, name="direct"):
        return [a.address for a in self.path(name).dialler.attempts]

    def fail_all(self, name, error=None):
        """Fail every open attempt of a path (the ones failing meanwhile too)."""
        while True:
            open_ = [a for a in self.path(name).dialler.attempts if not a.settled]
            if not open_:
                return
            open_[0].fail(error or ConnectionRefused("refused"))

    def warnings(self):
        return [formatEvent(e) for e in self.events if e.get("log_level") == LogLevel.warn]

    def test_each_network_its_path(self):
        """IPv4 and CJDNS (as IPv6) go direct, onions through a proxy, I2P
        through the bridge; each path's dialler has its own timeout."""
        v4 = ip("10.0.0.1", 18444)
        self.crawl([v4, onion(1), i2p(1), CJDNS], onion_proxies=[TOR_A], i2p_sam=SAM,
                   cjdns_reachable=True, connect_timeout=4, onion_timeout=25,
                   i2p_timeout=40)
        twin = NetworkAddress(Network.IPV6, CJDNS[1], CJDNS[2])
        self.assertEqual(sorted(self.dialled()), sorted([v4, twin]))
        self.assertEqual(self.dialled("SOCKS5 proxy 127.0.0.1:9050"), [onion(1)])
        self.assertEqual(self.dialled("SAM bridge 127.0.0.1:7656"), [i2p(1)])
        socks = self.path("SOCKS5 proxy 127.0.0.1:9050").dialler
        sam = self.path("SAM bridge 127.0.0.1:7656").dialler
        self.assertEqual((self.crawler.dialler.timeout, socks.timeout, sam.timeout), (4, 25, 40))
        self.assertEqual((socks.config, sam.config), ({"proxy": TOR_A}, {"bridge": SAM}))
        self.assertEqual(self.crawler.not_dialled, {})
        said = [formatEvent(e) for e in self.events if "dialling" in e.get("log_format", "")]
        self.assertEqual(said, [
            "dialling ipv4, ipv6, cjdns via direct (4096 at once, 4 s); onion via SOCKS5 "
            "proxy 127.0.0.1:9050 (32 at once, 25 s); i2p via SAM bridge 127.0.0.1:7656 "
            "(32 at once, 40 s)"])

    def test_no_overlay_path_without_its_option(self):
        """Without the options, no proxy path is made (nothing imported),
        and each overlay address says which option would dial it."""
        d = self.crawl([onion(1), i2p(1), CJDNS])
        self.assertEqual([p.name for p in self.crawler.slots.paths], ["direct"])
        self.assertEqual(self.successResultOf(d).not_dialled,
                         {onion(1): "no --onion-proxy", i2p(1): "no --i2p-sam",
                          CJDNS: "cjdns not reachable (--cjdns-reachable)"})

    def test_cjdns_verdict_under_its_own_address(self):
        """A CJDNS dial fails under the CJDNS address, not its IPv6 form;
        and with --cjdns-reachable an fc00::/8 seed is CJDNS (Core's
        MaybeFlipIPv6toCJDNS)."""
        as_ipv6 = NetworkAddress.from_host("fc00::5", 8333)
        d = self.crawl([CJDNS, as_ipv6], cjdns_reachable=True)
        self.fail_all("direct", ConnectTimeout("no answer"))
        result = self.successResultOf(d)
        flipped = NetworkAddress(Network.CJDNS, as_ipv6[1], 8333)
        self.assertEqual(set(result.unreachable), {CJDNS, flipped})
        self.assertEqual(self.crawler._dialled_as, {})
        self.assertEqual(summarize(result)["by_network"]["cjdns"]["unreachable"], 2)

    def test_cjdns_routable(self):
        """CJDNS gossip is never dropped as private IPv6 (fc00::/8 lies in
        the unique-local fc00::/7): without --cjdns-reachable it is kept
        and counted, with it, dialled."""
        for reachable, pending, not_dialled in [(False, [], {CJDNS: NO_OPTIONS[CJDNS]}),
                                                (True, [CJDNS], {})]:
            crawler = Crawler(self.clock, REGTEST, [], random=random.Random(1),
                              options=CrawlOptions(cjdns_reachable=reachable),
                              dialler=FakeDialler)
            crawler._learn([entry(CJDNS, T0)], ip("1.2.3.4"))
            self.assertEqual((crawler.filtered["unroutable"], crawler.pending,
                              crawler.not_dialled), (0, pending, not_dialled))

    def test_i2p_port_not_0(self):
        """Core dials I2P on port 0 only: another port is kept, not dialled."""
        d = self.crawl([i2p(1, port=8333)], i2p_sam=SAM)
        self.assertEqual(self.successResultOf(d).not_dialled, {i2p(1, 8333): "i2p port not 0"})

    def test_slots_per_path(self):
        """Each path fills its own slots: the clearnet's concurrency does not
        bound onions, nor onions the clearnet; and a freed clearnet slot is
        refilled at once while every onion slot is taken."""
        seeds = [ip(f"10.0.0.{n}", 18444) for n in range(1, 11)]
        seeds += [onion(n) for n in range(20)] + [i2p(n) for n in range(5)]
        self.crawl(seeds, concurrency=2, onion_proxies=[TOR_A, TOR_B], onion_concurrency=3,
                   i2p_sam=SAM, i2p_concurrency=1)
        counts = {p.name: p.in_flight for p in self.crawler.slots.paths}
        self.assertEqual(counts, {"direct": 2, "SOCKS5 proxy 127.0.0.1:9050": 3,
                                  "SOCKS5 proxy 127.0.0.1:9150": 3,
                                  "SAM bridge 127.0.0.1:7656": 1})
        self.assertEqual(len(self.crawler.in_flight), 9)
        self.assertEqual(self.crawler.pending_count, 35 - 9)
        self.path("direct").dialler.attempts[0].fail(ConnectionRefused("refused"))
        self.assertEqual(len(self.dialled()), 3)
        self.assertEqual(self.path("direct").in_flight, 2)

    def test_onions_spread_over_proxies(self):
        """Fewer onions than slots: they are shared out among the proxies,
        not all given to the first."""
        self.crawl([onion(n) for n in range(4)], onion_proxies=[TOR_A, TOR_B])
        self.assertEqual([len(self.dialled(f"SOCKS5 proxy 127.0.0.1:{port}"))
                          for port in (9050, 9150)], [2, 2])

    def test_proxy_serves_clearnet_and_onions(self):
        """--proxy alone: IPv4 and IPv6 go through it (Core's -proxy), and
        onions too, sharing its slots; CJDNS stays direct."""
        v4, v6 = ip("10.0.0.1", 18444), NetworkAddress.parse("[2001:4860::1]:18444")
        self.crawl([v4, v6, onion(1), CJDNS], proxy="127.0.0.1:9050", cjdns_reachable=True)
        self.assertEqual(sorted(self.dialled("SOCKS5 proxy 127.0.0.1:9050")),
                         sorted([v4, v6, onion(1)]))
        self.assertEqual(len(self.dialled()), 1)
        self.assertEqual(self.crawler.options.onion_paths, (TOR_A,))

    def test_onion_proxy_overrides_proxy_for_onions(self):
        """--proxy with --onion-proxy: onions take the onion proxies only."""
        self.crawl([ip("10.0.0.1", 18444), onion(1)], proxy=("127.0.0.1", 1080),
                   onion_proxies=[TOR_A])
        self.assertEqual(self.dialled("SOCKS5 proxy 127.0.0.1:9050"), [onion(1)])
        self.assertEqual(self.dialled("SOCKS5 proxy 127.0.0.1:1080"), [ip("10.0.0.1", 18444)])

    def test_proxy_down_one_warning_others_take_over(self):
        """A proxy that cannot be reached: one warning however many of its
        dials fail so; those onions are dialled through the other proxy,
        never counted unreachable."""
        onions = [onion(n) for n in range(6)]
        d = self.crawl(onions, onion_proxies=[TOR_A, TOR_B], onion_concurrency=2)
        self.fail_all("SOCKS5 proxy 127.0.0.1:9050", ProxyGone("connection refused"))
        self.assertEqual(len(self.warnings()), 1, self.warnings())
        self.assertIn("SOCKS5 proxy 127.0.0.1:9050 cannot be reached (connection refused)",
                      self.warnings()[0])
        self.assertEqual(self.crawler.unreachable, {})
        self.fail_all("SOCKS5 proxy 127.0.0.1:9150", ConnectTimeout("no answer"))
        result = self.successResultOf(d)
        self.assertEqual(set(result.unreachable), set(onions))
        self.assertEqual(set(self.dialled("SOCKS5 proxy 127.0.0.1:9150")), set(onions))
        self.assertEqual(result.not_dialled, {})
        self.assertEqual(len(self.warnings()), 1)

    def test_every_proxy_down(self):
        """The only proxy down: its onions in flight and pending, and those
        learnt later, are not dialled ("onion proxy down"), never
        unreachable; the clearnet goes on."""
        v4 = ip("10.0.0.1", 18444)
        onions = [onion(n) for n in range(5)]
        d = self.crawl([v4] + onions, onion_proxies=[TOR_A], onion_concurrency=2)
        self.fail_all("SOCKS5 proxy 127.0.0.1:9050", ProxyGone("connection refused"))
        self.assertEqual(len(self.warnings()), 1)
        self.assertIn("its addresses are kept as not dialled (onion proxy down)",
                      self.warnings()[0])
        self.assertEqual(len(self.dialled("SOCKS5 proxy 127.0.0.1:9050")), 2)
        self.crawler._learn([entry(onion(99), T0)], v4)
        self.fail_all("direct")
        result = self.successResultOf(d)
        self.assertEqual(result.not_dialled,
                         dict.fromkeys(onions + [onion(99)], "onion proxy down"))
        self.assertEqual(set(result.unreachable), {v4})
        self.assertEqual(summarize(result)["by_network"]["onion"]["not_dialled_reasons"],
                         {"onion proxy down": 6})

    def test_i2p_bridge_down(self):
        d = self.crawl([i2p(n) for n in range(3)], i2p_sam=SAM)
        self.fail_all("SAM bridge 127.0.0.1:7656", ProxyGone("connection refused"))
        result = self.successResultOf(d)
        self.assertEqual(result.not_dialled,
                         dict.fromkeys([i2p(n) for n in range(3)], "i2p bridge down"))
        self.assertEqual(len(self.warnings()), 1)

    def test_proxy_errors_are_the_peers_or_the_proxys(self):
        """Any other failure through a proxy is a verdict on the address,
        with its own reason word (onion-unreachable, proxy-error...)."""

        class OnionGone(ConnectFailed):
            reason = "onion-unreachable"

        d = self.crawl([onion(1)], onion_proxies=[TOR_A])
        self.fail_all("SOCKS5 proxy 127.0.0.1:9050", OnionGone("descriptor not found"))
        result = self.successResultOf(d)
        self.assertEqual(result.unreachable[onion(1)].reason, "onion-unreachable")
        self.assertEqual(self.warnings(), [])

    def test_stop_with_a_proxy_down(self):
        """Dials cancelled by stop() are not mistaken for a proxy down."""
        d = self.crawl([onion(n) for n in range(3)], onion_proxies=[TOR_A])
        self.crawler.stop()
        result = self.successResultOf(d)
        self.assertEqual((result.unreachable, result.not_dialled), ({}, {}))
        self.assertEqual(self.warnings(), [])


class OverlayOptionsTests(SynchronousTestCase):
    """The overlay fields of CrawlOptions: defaults and refusals."""

    def test_defaults(self):
        options = CrawlOptions()
        self.assertEqual((options.onion_proxies, options.proxy, options.i2p_sam,
                          options.cjdns_reachable), ((), None, None, False))
        self.assertEqual((options.onion_concurrency, options.onion_timeout,
                          options.i2p_concurrency, options.i2p_timeout), (32, 20.0, 32, 30.0))
        self.assertEqual(options.onion_paths, ())

    def test_endpoints_from_text(self):
        options = CrawlOptions(onion_proxies=["127.0.0.1:9050", "[::1]:9150"],
                               i2p_sam="127.0.0.1:7656")
        self.assertEqual(options.onion_proxies, (TOR_A, ("::1", 9150)))
        self.assertEqual(options.i2p_sam, SAM)

    def test_bad_values(self):
        for field, value in [("onion_concurrency", 0), ("onion_timeout", 0),
                             ("i2p_concurrency", -1), ("i2p_timeout", 0),
                             ("onion_proxies", [TOR_A, TOR_A]),
                             ("onion_proxies", [("127.0.0.1", 0)]),
                             ("proxy", ("", 9050)), ("i2p_sam", ("127.0.0.1", "x"))]:
            with self.assertRaises(ValueError, msg=field) as raised:
                CrawlOptions(**{field: value})
            self.assertIn(field, str(raised.exception))
        for text in ["127.0.0.1", "127.0.0.1:0", "::1:9050", ":9050"]:
            self.assertRaises(ValueError, CrawlOptions, proxy=text)
