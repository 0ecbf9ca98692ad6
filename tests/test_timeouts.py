"""
Tests for bitpeer.crawl.timeouts: the latency histogram, the connect
timeout learner, and a crawl applying what it learns to its dials.
"""

import random

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.crawl.crawler import CrawlOptions, Crawler
from bitpeer.crawl.export import discovery, summarize
from bitpeer.crawl.timeouts import (
    DEFAULT_FLOOR,
    RELEARN_EVERY,
    ConnectTimeoutLearner,
    LatencyLog,
    LearningPolicy,
)
from bitpeer.errors import ConnectTimeout
from bitpeer.networks import REGTEST
from bitpeer.wire.address import NetworkAddress

from .test_crawler import FakeDialler


class LatencyLogTests(SynchronousTestCase):
    """Percentiles read off log-spaced buckets, never below the truth."""

    def test_empty(self):
        log = LatencyLog()
        self.assertIsNone(log.quantile(0.5))
        self.assertEqual(log.as_dict(), {"samples": 0, "p50": None, "p99": None})

    def test_quantiles_round_up_by_less_than_a_bucket(self):
        rng = random.Random(3)
        values = sorted(rng.lognormvariate(-2.5, 0.9) for _ in range(5000))
        log = LatencyLog()
        for value in values:
            log.add(value)
        for q in (0.5, 0.9, 0.99, 1.0):
            true = values[max(0, -(-int(q * 1000) * len(values) // 1000) - 1)]
            estimate = log.quantile(q)
            self.assertGreaterEqual(estimate, true)
            self.assertLessEqual(estimate, true * 1.13)

    def test_extremes_clamped(self):
        log = LatencyLog()
        log.add(0.0)
        log.add(-1.0)
        self.assertEqual(log.quantile(1.0), 1e-4)
        log.add(1e9)
        self.assertAlmostEqual(log.quantile(1.0), 1000.0)
        self.assertEqual(log.count, 3)


class LearnerTests(SynchronousTestCase):
    """The learnt timeout: factor x quantile, within floor and ceiling."""

    def learner(self, configured=5.0, **policy):
        self.changes = []
        return ConnectTimeoutLearner(configured, LearningPolicy(**policy),
                                     changed=self.changes.append)

    def test_nothing_learnt_before_min_samples(self):
        learner = self.learner(min_samples=10)
        for _ in range(9):
            learner.observe(0.2)
        self.assertIsNone(learner.learnt)
        self.assertEqual(learner.timeout, 5.0)
        self.assertEqual(self.changes, [])

    def test_learnt_from_the_quantile(self):
        """Ten connects of about 0.8 s: 3 x the p99 bucket edge over 0.8 s."""
        learner = self.learner(min_samples=10)
        for _ in range(10):
            learner.observe(0.8)
        p99 = learner.times.quantile(0.99)
        self.assertTrue(0.8 <= p99 <= 0.8 * 1.13)
        self.assertEqual(learner.learnt, 3 * p99)
        self.assertEqual(self.changes, [3 * p99])

    def test_floor(self):
        """Fast connects (loopback) give the floor, not a few milliseconds."""
        learner = self.learner(min_samples=10)
        for _ in range(10):
            learner.observe(0.001)
        self.assertEqual(learner.timeout, DEFAULT_FLOOR)
        self.assertEqual(learner.as_dict(), {
            "configured": 5.0, "floor": DEFAULT_FLOOR, "learnt": DEFAULT_FLOOR,
            "samples": 10, "p50": 0.001, "p99": 0.001})

    def test_ceiling(self):
        """Slow connects never push the timeout above the configured one;
        nor does a floor above it."""
        learner = self.learner(min_samples=10)
        for _ in range(10):
            learner.observe(4.0)
        self.assertEqual(learner.timeout, 5.0)
        self.assertEqual(self.changes, [])
        low = self.learner(configured=1.0, min_samples=10)
        for _ in range(10):
            low.observe(0.001)
        self.assertEqual(low.timeout, 1.0)

    def test_relearnt_as_connects_come_in(self):
        """The value follows the connects, recomputed every RELEARN_EVERY;
        ``changed`` hears each change once."""
        learner = self.learner(min_samples=10, floor=0.1)
        for _ in range(10):
            learner.observe(0.1)
        first = learner.timeout
        for _ in range(RELEARN_EVERY - 1):
            learner.observe(1.0)
        self.assertEqual(learner.timeout, first)
        learner.observe(1.0)
        self.assertGreater(learner.timeout, first)
        self.assertEqual(self.changes, [first, learner.timeout])

    def test_no_policy_measures_only(self):
        learner = ConnectTimeoutLearner(5.0, None)
        for _ in range(500):
            learner.observe(0.01)
        self.assertIsNone(learner.learnt)
        self.assertEqual(learner.timeout, 5.0)
        self.assertEqual(learner.as_dict()["floor"], None)
        self.assertEqual(learner.as_dict()["samples"], 500)

    def test_bad_policy(self):
        for bad in (dict(floor=0), dict(quantile=0), dict(quantile=1.5), dict(factor=-1),
                    dict(min_samples=0)):
            with self.assertRaises(ValueError, msg=bad):
                LearningPolicy(**bad)


def loopback(i):
    return NetworkAddress.from_host(f"127.1.0.{i + 1}", 18444)


class CrawlLearnsTests(SynchronousTestCase):
    """A crawl learns its connect timeout from the dials that connect and
    cuts the others with it, those under way included."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.protocols = []

    def crawl(self, n, **options):
        crawler = Crawler(self.clock, REGTEST, [loopback(i) for i in range(n)],
                          options=CrawlOptions(allow_private=True, **options),
                          random=random.Random(1), dialler=FakeDialler)
        done = crawler.run()
        return crawler, done

    def connect(self, attempt):
        """The attempt connects: the factory's protocol runs (no bytes)."""
        address = attempt.address
        protocol = attempt.dialler.factory.buildProtocol(
            IPv4Address("TCP", address.host_text, address.port))
        protocol.makeConnection(StringTransport())
        self.protocols.append(protocol)
        return protocol

    def hang_up(self):
        """Every connected peer's connection ends."""
        for protocol in self.protocols:
            protocol.connectionLost(Failure(ConnectionDone()))

    def test_learns_and_applies(self):
        policy = LearningPolicy(min_samples=4, floor=0.5)
        crawler, done = self.crawl(10, connect_timeout=5.0, timeout_learning=policy)
        dialler = crawler.dialler
        attempts = list(dialler.attempts)
        self.assertEqual(len(attempts), 10)
        self.clock.advance(0.05)
        for attempt in attempts[:4]:
            self.connect(attempt)
        # 3 x the p99 bucket edge over 50 ms is under the floor.
        self.assertEqual(dialler.timeout, 0.5)
        self.assertEqual(crawler.connect_timeout.learnt, 0.5)
        self.clock.advance(1)
        for attempt in attempts[4:]:
            attempt.fail(ConnectTimeout("no TCP connection within 0.5 s"))
        self.hang_up()
        self.clock.advance(30)
        result = self.successResultOf(done)
        self.assertEqual(result.timeouts["connect"]["learnt"], 0.5)
        self.assertEqual(result.timeouts["connect"]["samples"], 4)
        self.assertEqual(result.timeouts["connect"]["p50"], 0.0501)  # the bucket edge above 50 ms
        self.assertEqual(result.timeouts["handshake"]["configured"], 20.0)
        summary = summarize(result)
        self.assertEqual(summary["timeouts"], result.timeouts)
        self.assertEqual(summary["discovery"]["reachable"], 0)

    def test_fixed_timeout_learns_nothing(self):
        crawler, done = self.crawl(5, connect_timeout=3.0, timeout_learning=None)
        for attempt in list(crawler.dialler.attempts):
            self.connect(attempt)
        self.assertEqual(crawler.dialler.timeout, 3.0)
        self.hang_up()
        self.clock.advance(30)
        result = self.successResultOf(done)
        self.assertIsNone(result.timeouts["connect"]["learnt"])
        self.assertEqual(result.timeouts["connect"]["samples"], 5)


class DiscoveryTests(SynchronousTestCase):
    """The time to 90, 99 and 100% of the final reachable count."""

    def result(self, reached_at, carried=0):
        class Result:
            pass

        result = Result()
        result.reachable = dict.fromkeys(range(len(reached_at) + carried))
        result.reached_at = tuple(reached_at)
        return result

    def test_marks(self):
        times = [i / 10 for i in range(1, 201)]  # 200 nodes, the last at 20 s
        self.assertEqual(discovery(self.result(times)), {
            "reachable": 200, "to_90": 18.0, "to_99": 19.8, "to_100": 20.0})

    def test_carried_over_count_at_zero(self):
        self.assertEqual(discovery(self.result([5.0], carried=99)), {
            "reachable": 100, "to_90": 0.0, "to_99": 0.0, "to_100": 5.0})

    def test_none_found(self):
        self.assertEqual(discovery(self.result([])), {
            "reachable": 0, "to_90": None, "to_99": None, "to_100": None})
