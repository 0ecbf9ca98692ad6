"""
History-aware dialling (bitpeer.crawl.history, its tiers in
bitpeer.crawl.slots, and --dead-after / --retry-dead-every).

The plan and the tiers are SynchronousTestCases on plain values; the dial
order is a Crawler with a FakeDialler and a seeded random; the retry
policy runs several crawls against a book in memory (bitpeer.store.bookdb,
no thread), failing every dial as a dead network would.  One test runs
warm crawls through the crawl service against a SimNet on loopback.
"""

import json
import os
import random

from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.crawl.crawler import CrawlOptions, Crawler
from bitpeer.crawl.history import (
    ANSWERED,
    FAILED,
    UNTRIED,
    DialPlan,
    HistoryOptions,
    dial_plan,
    retried_since,
)
from bitpeer.crawl.service import crawl_params
from bitpeer.crawl.slots import Lane, Path, Slots
from bitpeer.crawl.tap import crawl_application
from bitpeer.errors import ConnectionRefused
from bitpeer.networks import REGTEST
from bitpeer.simnet.network import SimNet
from bitpeer.store.bookdb import (
    MEMORY,
    KnownAddress,
    close_book,
    end_crawl,
    insert_crawl,
    open_book,
    read_crawls,
    read_known,
    transaction,
    write_batch,
)
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress

from .helpers import connections_closed
from .test_crawler import (
    TOR_A, TOR_B, FakeBook, FakeDialler, FakeOverlayDialler, ProxyGone, onion,
)
from .test_tap import FAST, RecordingReactor, db_rows, finish, parse, read_log, tempdir, twistd

T0 = 1_700_000_000


def address(n):
    """A distinct IPv4 address in 10.0.0.0/8 for each ``n``."""
    return NetworkAddress(Network.IPV4, (0x0A000000 + n).to_bytes(4, "big"), 18444)


def known(n, attempts=0, streak=0, last_attempt=None):
    """A KnownAddress for address(n) with its attempts and failure streak."""
    return KnownAddress(
        address=address(n), services=None, gossip_time=None, first_seen=1.0, last_seen=1.0,
        attempts=attempts, successes=attempts - streak, failures=streak,
        last_attempt=last_attempt, last_success=None, last_failure_reason=None,
        failure_streak=streak,
    )


def crawl_row(started, status="finished", network="regtest"):
    """A crawl as AddressBook.crawls gives it (the fields the plan reads)."""
    return dict(network=network, started=started, status=status)


class DialPlanTests(SynchronousTestCase):
    """dial_plan and retried_since on plain values."""

    def test_tiers_by_latest_attempt(self):
        """Answered at the latest attempt: first; failed: last; never
        tried (or not in the book at all): untried, by default."""
        plan = dial_plan([known(1, attempts=3), known(2, attempts=3, streak=1), known(3)],
                         [], "regtest", HistoryOptions())
        self.assertEqual(plan.tiers, {address(1): ANSWERED, address(2): FAILED})
        self.assertEqual(plan.tiers.get(address(3), UNTRIED), UNTRIED)
        self.assertEqual(plan.skipped, {})

    def test_every_crawl_retries_by_default(self):
        """With --retry-dead-every 1 (the default) nothing is skipped: the
        dead are dialled, last."""
        plan = dial_plan([known(1, attempts=9, streak=9, last_attempt=50.0)],
                         [crawl_row(40.0)], "regtest", HistoryOptions())
        self.assertEqual((plan.tiers, plan.skipped), ({address(1): FAILED}, {}))

    def test_dead_skipped_until_their_turn(self):
        """Dead (streak >= dead_after) and attempted since the start of the
        (K-1)-th latest finished crawl: skipped, with the reason; dead but
        attempted before it, or not dead yet: dialled, last."""
        options = HistoryOptions(dead_after=2, retry_dead_every=3)
        crawls = [crawl_row(10.0), crawl_row(20.0), crawl_row(30.0)]
        plan = dial_plan([
            known(1, attempts=2, streak=2, last_attempt=25.0),  # in crawl 2: skipped
            known(2, attempts=2, streak=2, last_attempt=15.0),  # in crawl 1 only: due
            known(3, attempts=1, streak=1, last_attempt=35.0),  # not dead yet
        ], crawls, "regtest", options)
        self.assertEqual(plan.skipped, {address(1): "dead (retried every 3 crawls)"})
        self.assertEqual(plan.tiers, {address(2): FAILED, address(3): FAILED})

    def test_operator_seeds_never_skipped(self):
        options = HistoryOptions(dead_after=1, retry_dead_every=2)
        plan = dial_plan([known(1, attempts=1, streak=1, last_attempt=15.0)],
                         [crawl_row(10.0)], "regtest", options, keep=[address(1)])
        self.assertEqual((plan.tiers, plan.skipped), ({address(1): FAILED}, {}))

    def test_retried_since(self):
        """Only this network's finished crawls count: a running or abandoned
        one has no result to have judged an address by."""
        crawls = [crawl_row(10.0), crawl_row(20.0), crawl_row(25.0, "abandoned"),
                  crawl_row(30.0), crawl_row(35.0, "running"), crawl_row(40.0, "finished",
                                                                         "signet")]
        self.assertIsNone(retried_since(crawls, "regtest", 1))
        self.assertEqual(retried_since(crawls, "regtest", 2), 30.0)
        self.assertEqual(retried_since(crawls, "regtest", 3), 20.0)
        self.assertEqual(retried_since(crawls, "regtest", 9), 10.0)
        self.assertIsNone(retried_since([], "regtest", 9))

    def test_options_validated(self):
        self.assertEqual(HistoryOptions(), HistoryOptions(dead_after=3, retry_dead_every=1))
        self.assertRaises(ValueError, HistoryOptions, dead_after=0)
        self.assertRaises(ValueError, HistoryOptions, retry_dead_every=-1)


class SlotsTierTests(SynchronousTestCase):
    """Slots' tiers: the first tier that has any, at random within it."""

    def setUp(self):
        self.v4, self.v6 = Lane("ipv4", None), Lane("ipv6", None)
        path = Path("direct", None, 1000, lanes=[self.v4, self.v6])
        self.v4.paths.append(path)
        self.v6.paths.append(path)
        self.slots = Slots([path], {Network.IPV4: self.v4, Network.IPV6: self.v6})

    def fill(self):
        """Two answered, three untried, two failed, over both lanes."""
        v6 = NetworkAddress.parse("[2001:db8::1]:8333")
        for lane, n, tier in [(self.v4, 1, ANSWERED), (self.v6, 2, ANSWERED),
                              (self.v4, 3, UNTRIED), (self.v4, 4, UNTRIED),
                              (self.v6, 5, UNTRIED), (self.v4, 6, FAILED),
                              (self.v6, 7, FAILED)]:
            self.slots.add(lane, v6 if n == 2 else address(n), tier)
        return v6

    def test_first_tier_first(self):
        v6 = self.fill()
        tiers = [{address(1), v6}, {address(3), address(4), address(5)},
                 {address(6), address(7)}]
        picked = [self.slots.pick(random.Random(1))[1] for _ in range(7)]
        self.assertEqual([set(picked[:2]), set(picked[2:5]), set(picked[5:])], tiers)
        self.assertIsNone(self.slots.pick(random.Random(1)))
        self.assertEqual((self.slots.pending_count, self.slots.by_tier), (0, [0, 0, 0]))

    def test_random_within_a_tier(self):
        """Each address of a tier comes first for some seed, whichever lane
        it waits in."""
        firsts = set()
        for seed in range(60):
            self.setUp()
            self.fill()
            for _ in range(2):
                self.slots.pick(random.Random(seed))
            firsts.add(self.slots.pick(random.Random(seed))[1])
        self.assertEqual(firsts, {address(3), address(4), address(5)})

    def test_pending_clear_and_path_down(self):
        self.fill()
        self.assertEqual(len(self.slots.pending()), 7)
        [(lane, addresses), (_, others)] = self.slots.path_down(self.slots.paths[0])
        self.assertEqual(addresses, [address(1), address(3), address(4), address(6)])
        self.assertEqual(len(others), 3)
        self.assertEqual((self.slots.pending_count, self.slots.by_tier), (0, [0, 0, 0]))
        self.fill()
        self.slots.clear()
        self.assertEqual((self.slots.pending(), self.slots.by_tier), ([], [0, 0, 0]))


class DialOrderTests(SynchronousTestCase):
    """A crawler given a DialPlan, with a FakeDialler and a seeded random."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def crawl(self, seeds, plan, seed=1, **options):
        clock = task.Clock()
        clock.advance(T0)
        self.book = FakeBook()
        options.setdefault("concurrency", 1)
        self.crawler = Crawler(clock, REGTEST, seeds,
                               options=CrawlOptions(allow_private=True, **options),
                               book=self.book, crawl_id=1, random=random.Random(seed),
                               dialler=FakeDialler, history=plan,
                               overlay_diallers={"socks5": FakeOverlayDialler})
        return self.crawler.run()

    def dial_all(self):
        """Fail each dial as it comes (one at a time): the order dialled."""
        attempts = self.crawler.dialler.attempts
        for attempt in attempts:
            attempt.fail(ConnectionRefused("refused"))
        return [attempt.address for attempt in attempts]

    def test_answered_then_untried_then_failed(self):
        good, new, bad = range(1, 11), range(11, 21), range(21, 31)
        plan = DialPlan(tiers={**{address(n): ANSWERED for n in good},
                               **{address(n): FAILED for n in bad}})
        seeds = [address(n) for n in range(1, 31)]
        for seed in range(5):
            random.Random(seed).shuffle(seeds)
            d = self.crawl(seeds, plan, seed)
            order = self.dial_all()
            self.successResultOf(d)
            self.assertEqual([set(order[:10]), set(order[10:20]), set(order[20:])],
                             [{address(n) for n in tier} for tier in (good, new, bad)])

    def test_gossip_takes_its_tier_from_the_book(self):
        """An address learnt from gossip during the crawl is untried unless
        the plan knows it: one the book says answered jumps the queue."""
        plan = DialPlan(tiers={address(5): ANSWERED, address(6): FAILED})
        self.crawl([address(1)], plan)
        self.crawler._learn([AddrEntry(T0, 1, address(n)) for n in (2, 3, 4, 5, 6)],
                            address(1))
        order = self.dial_all()
        self.assertEqual(order[:2], [address(1), address(5)])
        self.assertEqual(set(order[2:5]), {address(2), address(3), address(4)})
        self.assertEqual(order[5], address(6))

    def test_skipped_kept_as_not_dialled(self):
        reason = "dead (retried every 2 crawls)"
        plan = DialPlan(skipped={address(2): reason, address(3): reason})
        d = self.crawl([address(n) for n in (1, 2, 3)], plan)
        self.assertEqual(self.dial_all(), [address(1)])
        result = self.successResultOf(d)
        self.assertEqual(result.not_dialled, {address(2): reason, address(3): reason})
        self.assertIn("by the address book's history: 0 that answered at their last attempt "
                      "are dialled first, then 1 never tried, then 0 that failed at their "
                      "last; 2 not dialled: dead (retried every 2 crawls)",
                      [formatEvent(e) for e in self.events])

    def test_no_history_no_line(self):
        self.successResultOf(self.crawl([], DialPlan()))
        self.assertFalse([e for e in self.events if "history" in formatEvent(e)])

    def test_proxy_down_requeues_in_its_tier(self):
        """A dial handed back when its proxy is down waits again in its own
        tier: the other proxy dials an untried onion before it."""
        failed, untried = onion(1), onion(2)
        self.crawl([failed], DialPlan(tiers={failed: FAILED}), onion_proxies=[TOR_A, TOR_B],
                   onion_concurrency=1)
        tor_a, tor_b = (path.dialler for path in self.crawler.slots.paths[1:])
        self.assertEqual([a.address for a in tor_a.attempts], [failed])
        self.crawler._consider(untried)
        tor_a.attempts[0].fail(ProxyGone("proxy gone"))
        self.assertEqual([a.address for a in tor_b.attempts], [untried])
        self.assertEqual(self.crawler.slots.by_tier, [0, 0, 1])


class MemoryBook:
    """A FakeBook whose attempts can be written to a bookdb book."""

    def __init__(self):
        self.rows = []

    def gossip(self, entries, source, now):
        pass

    def attempt(self, crawl_id, address, outcome, *, reason=None, detail=None, info=None,
                returned=None, now):
        self.rows.append((crawl_id, address, outcome, reason, detail, info, returned, now))


class RetryPolicyTests(SynchronousTestCase):
    """
    --dead-after and --retry-dead-every over several crawls: a book in
    memory, a crawler on a FakeDialler that every address refuses, and the
    service's rule (dial_plan from the book's addresses and crawls).
    """

    def setUp(self):
        self.opened = open_book(MEMORY)
        self.addCleanup(close_book, self.opened)
        self.db = self.opened.db
        self.clock = task.Clock()
        self.clock.advance(T0)

    def crawl(self, options, seeds=(), finish=True):
        """One crawl of the book's addresses (and ``seeds``), every dial
        refused: the addresses dialled and the not-dialled reasons."""
        db, clock = self.db, self.clock
        clock.advance(60)
        crawl_id = transaction(db, insert_crawl, "regtest", "{}", clock.seconds())
        in_book = read_known(db)
        plan = dial_plan(in_book, read_crawls(db), "regtest", options, keep=seeds)
        book = MemoryBook()
        crawler = Crawler(clock, REGTEST, [*seeds, *(k.address for k in in_book)],
                          options=CrawlOptions(allow_private=True), book=book,
                          crawl_id=crawl_id, random=random.Random(crawl_id),
                          dialler=FakeDialler, history=plan)
        d = crawler.run()
        clock.advance(1)
        dialled = [a.address for a in crawler.dialler.attempts]
        for attempt in list(crawler.dialler.attempts):
            attempt.fail(ConnectionRefused("refused"))
        result = self.successResultOf(d)
        write_batch(db, {}, book.rows, clock.seconds())
        if finish:
            transaction(db, end_crawl, MEMORY, crawl_id, clock.seconds(), "{}")
        return set(dialled), result.not_dialled

    def test_skipped_in_crawls_2_to_k_retried_in_k_plus_1(self):
        """Dead after 2 failures, retried every 3 crawls: dialled in crawls
        1 and 2 (dead from then on), skipped in 3 and 4, dialled in 5,
        skipped in 6 and 7...  The operator's seed is dialled every time."""
        options = HistoryOptions(dead_after=2, retry_dead_every=3)
        dead = {address(n) for n in range(1, 6)}
        seed = address(9)
        reason = "dead (retried every 3 crawls)"
        # Crawl 1 from the seed and the dead addresses (as if gossiped).
        self.crawl(options, seeds=[seed, *dead])
        expected = ["dialled", "skipped", "skipped", "dialled", "skipped", "skipped",
                    "dialled"]
        for number, verdict in enumerate(expected, start=2):
            dialled, not_dialled = self.crawl(options, seeds=[seed])
            if verdict == "dialled":
                self.assertEqual((dialled, not_dialled), (dead | {seed}, {}), number)
            else:
                self.assertEqual((dialled, not_dialled), ({seed}, dict.fromkeys(dead, reason)),
                                 number)
        streaks = {k.address: k.failure_streak for k in read_known(self.db)}
        self.assertEqual(streaks, {**dict.fromkeys(dead, 4), seed: 8})

    def test_resumed_crawl_decides_as_its_first_run(self):
        """A crawl interrupted and resumed sees the same finished crawls, so
        it leaves out the same dead addresses (its own attempts are settled
        and not dialled again anyway)."""
        options = HistoryOptions(dead_after=1, retry_dead_every=2)
        dead = {address(n) for n in range(1, 4)}
        self.crawl(options, seeds=list(dead))
        first = self.crawl(options, finish=False)
        # The resumed run: the running crawl is not among the finished ones.
        unfinished = read_crawls(self.db)[-1]
        self.assertEqual(unfinished["status"], "running")
        plan = dial_plan(read_known(self.db), read_crawls(self.db), "regtest", options)
        self.assertEqual(first, (set(), dict.fromkeys(dead, "dead (retried every 2 crawls)")))
        self.assertEqual(set(plan.skipped), dead)


class HistoryOptionsTests(SynchronousTestCase):
    """--dead-after and --retry-dead-every on the command line."""

    def test_defaults_and_values(self):
        self.assertEqual(parse()["history"], HistoryOptions(dead_after=3, retry_dead_every=1))
        options = parse("--dead-after", "2", "--retry-dead-every", "4")
        self.assertEqual(options["history"], HistoryOptions(dead_after=2, retry_dead_every=4))
        params = crawl_params(options)
        self.assertEqual((params["dead_after"], params["retry_dead_every"]), (2, 4))

    def test_bad_values_one_line(self):
        for argv, message in [
            (["--dead-after", "0"], "--dead-after must be positive, got 0"),
            (["--retry-dead-every", "-1"], "--retry-dead-every must be positive, got -1"),
            (["--retry-dead-every", "often"], "--retry-dead-every: 'often' is not a whole "
                                              "number"),
            (["--dead-after", "1.5"], "--dead-after: '1.5' is not a whole number"),
        ]:
            with self.assertRaises(usage.UsageError, msg=argv) as caught:
                parse(*argv)
            self.assertEqual(str(caught.exception), message)

    def test_twistd_refuses_before_start(self):
        cwd = tempdir(self)
        process = twistd(cwd, "bitpeer-crawl", "--retry-dead-every", "0")
        self.assertNotEqual(finish(process), 0)
        output = read_log(cwd, 0)
        self.assertIn("--retry-dead-every must be positive, got 0", output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(sorted(os.listdir(cwd)), ["twistd-0.log"])


class WarmCrawlTests(TestCase):
    """
    Crawls through the crawl service (CrawlApplication) of a SimNet on
    loopback, again and again with the same --db.  One dial at a time
    (--concurrency 1), so the book's observations are in the order dialled.
    """

    NODES, DEAD = 30, 30

    def setUp(self):
        self.base = tempdir(self)
        self.db = os.path.join(self.base, "book.sqlite")
        self.out = os.path.join(self.base, "out")
        self.simnet = SimNet(reactor, self.NODES, self.DEAD, blackholed=0, stale=0, exotic=0,
                             seed=5, network=REGTEST)
        self.simnet.start()
        self.addCleanup(self.simnet.stop)

    @defer.inlineCallbacks
    def crawl(self, *argv):
        """One run of the service to its end: the crawl's outcomes in the
        order the book recorded them, and its summary (the snapshot's, as
        the book recorded it)."""
        seeds = [arg for seed in self.simnet.seeds() for arg in ("--seed", str(seed))]
        options = parse("--network", "regtest", "--db", self.db, "--out", self.out,
                        "--allow-private", "--dnsseed", "0", "--fixed-seeds", "never",
                        "--concurrency", "1", *seeds, *FAST, *argv)
        fake = RecordingReactor()
        service = crawl_application(options, fake)
        service.startService()
        yield fake.stopped
        yield service.stopService()
        yield connections_closed()
        self.assertFalse(service.outcome.failed)
        ((crawl_id, summary),) = db_rows(
            self.db, "SELECT id, summary FROM crawls WHERE id = (SELECT max(id) FROM crawls)")
        outcomes = [o for (o,) in db_rows(
            self.db, "SELECT outcome FROM observations WHERE crawl_id = ? ORDER BY id",
            crawl_id)]
        return outcomes, json.loads(summary)

    @defer.inlineCallbacks
    def test_warm_crawls_dial_the_good_first_and_the_dead_in_turn(self):
        """
        The first crawl meets nodes and dead addresses mixed; the second
        (dead after 1 failure, retried every 2 crawls) dials every node and
        leaves the dead out, counted in its snapshot; the third dials every
        node first, then the dead, last.
        """
        retry = ("--dead-after", "1", "--retry-dead-every", "2")
        reachable, unreachable = ["reachable"] * self.NODES, ["unreachable"] * self.DEAD
        cold, _ = yield self.crawl(*retry)
        self.assertEqual(sorted(cold), sorted(reachable + unreachable))
        self.assertNotEqual(cold, reachable + unreachable)  # mixed: nothing to order by
        warm, summary = yield self.crawl(*retry)
        self.assertEqual(warm, reachable)
        self.assertEqual(summary["outcomes"], {"reachable": self.NODES, "unreachable": 0,
                                               "not_dialled": self.DEAD})
        self.assertEqual(summary["not_dialled_reasons"],
                         {"dead (retried every 2 crawls)": self.DEAD})
        again, summary = yield self.crawl(*retry)
        self.assertEqual(again, reachable + unreachable)
        self.assertEqual(summary["outcomes"]["not_dialled"], 0)
