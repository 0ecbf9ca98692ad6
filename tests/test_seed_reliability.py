"""
Tests for bitpeer.seed.reliability: sipa's seeder's windows against values
worked out by hand, over simulated days on a task.Clock.
"""

import math

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.seed.reliability import (
    BAN_VERSION_TIME,
    MIN_RETRY,
    WINDOWS,
    Reliability,
    Window,
)

T0 = 1_700_000_000
HOUR, DAY = 3600, 86400


def decay(seconds, tau):
    """exp(-seconds / tau), written out in each test's terms."""
    return math.exp(-seconds / tau)


def run_tests(reliability, results, clock, every):
    """Test at the clock's time for each result, ``every`` seconds apart."""
    for good in results:
        reliability = reliability.tested(good, clock.seconds())
        clock.advance(every)
    return reliability


class WindowTests(SynchronousTestCase):
    """One window's update: reliability, count, weight."""

    def test_first_success(self):
        """A first test counts as MIN_RETRY seconds after an (imaginary)
        previous one: f = exp(-1000/7200) = 0.870325 for the 2-hour window,
        so reliability and weight are 1 - f = 0.129675, count 1."""
        window = Window().updated(True, 1000, 7200)
        self.assertAlmostEqual(window.reliability, 0.129675, places=6)
        self.assertAlmostEqual(window.weight, 0.129675, places=6)
        self.assertEqual(window.count, 1.0)

    def test_failure_decays_reliability_only(self):
        """A failure an hour after a success: reliability 0.129675 * f,
        with f = exp(-3600/7200) = 0.606531, so 0.078652; weight 0.078652 +
        (1 - f) = 0.472121; count 1 * f + 1 = 1.606531."""
        window = Window().updated(True, 1000, 7200).updated(False, 3600, 7200)
        self.assertAlmostEqual(window.reliability, 0.078652, places=6)
        self.assertAlmostEqual(window.weight, 0.472121, places=6)
        self.assertAlmostEqual(window.count, 1.606531, places=6)

    def test_unobserved_counts_as_up_for_bans(self):
        """reliability - weight + 1: a window seen all down is near 0, one
        barely seen near 1."""
        self.assertAlmostEqual(Window(0.0, 40.0, 0.99).unobserved_as_up, 0.01)
        self.assertAlmostEqual(Window(0.0, 1.0, 0.1).unobserved_as_up, 0.9)


class ReliabilityTests(SynchronousTestCase):
    """The five windows over simulated days."""

    def test_always_up_for_three_days(self):
        """A node up at every hourly test: in each window reliability and
        weight are 1 - exp(-(1000 + 71 h) / tau) (the ages add up), and the
        count the geometric sum of exp(-k h / tau) for k in 0..71."""
        clock = Clock()
        clock.advance(T0)
        r = run_tests(Reliability(), [True] * 72, clock, HOUR)
        self.assertEqual((r.tries, r.successes), (72, 72))
        self.assertEqual(r.last_success, T0 + 71 * HOUR)
        for window, (_, tau) in zip(r.windows, WINDOWS):
            covered = 1 - decay(MIN_RETRY + 71 * HOUR, tau)
            self.assertAlmostEqual(window.reliability, covered, places=9)
            self.assertAlmostEqual(window.weight, covered, places=9)
            self.assertAlmostEqual(window.count, sum(decay(k * HOUR, tau) for k in range(72)),
                                   places=9)
        # By hand for the 30-day window: 1 - exp(-256600 / 2592000)
        # = 1 - exp(-0.098997) = 1 - 0.905745 = 0.094255.
        self.assertAlmostEqual(r.window("1m").reliability, 0.094255, places=5)

    def test_down_after_a_day(self):
        """Up for a day of hourly tests, then down for a day: the 2-hour
        window forgets fast (reliability 0.99999 * exp(-24 h / 2 h) = 6.1e-6),
        the 30-day window slowly: 1 - exp(-83800 s / 30 d) = 0.031813 when
        it goes down, 0.031813 * exp(-1 d / 30 d) = 0.030770 a day later."""
        clock = Clock()
        clock.advance(T0)
        r = run_tests(Reliability(), [True] * 24, clock, HOUR)
        up = r.window("1m").reliability
        self.assertAlmostEqual(up, 1 - decay(MIN_RETRY + 23 * HOUR, 30 * DAY), places=9)
        self.assertAlmostEqual(up, 0.031813, places=6)
        r = run_tests(r, [False] * 24, clock, HOUR)
        self.assertAlmostEqual(r.window("1m").reliability, up * decay(24 * HOUR, 30 * DAY),
                               places=9)
        self.assertAlmostEqual(r.window("1m").reliability, 0.030770, places=6)
        self.assertLess(r.window("2h").reliability, 1e-5)
        self.assertEqual(r.last_success, T0 + 23 * HOUR)

    def test_a_test_at_the_same_second(self):
        """A second test in the same second has age 0: f = 1, nothing
        decays, count grows by one."""
        r = Reliability().tested(True, T0)
        again = r.tested(True, T0)
        self.assertEqual(again.window("2h").reliability, r.window("2h").reliability)
        self.assertEqual(again.window("2h").count, 2.0)


class ReliableTests(SynchronousTestCase):
    """The reliability condition of "good", at each threshold."""

    def with_window(self, name, reliability, count, tries=100):
        windows = tuple(Window(reliability, count, 1.0) if n == name else Window()
                        for n, _ in WINDOWS)
        return Reliability(tries, tries // 2, T0, T0, windows)

    def test_young_node(self):
        """At most 3 tests, at least half successful."""
        self.assertTrue(Reliability(1, 1).reliable)
        self.assertTrue(Reliability(2, 1).reliable)
        self.assertTrue(Reliability(3, 2).reliable)
        self.assertFalse(Reliability(3, 1).reliable)
        self.assertFalse(Reliability(1, 0).reliable)
        self.assertFalse(Reliability(4, 4).reliable)  # no longer young, no window

    def test_each_window_at_its_thresholds(self):
        """2h > 85% with count > 2, 8h > 70% and > 4, 1d > 55% and > 8,
        1w > 45% and > 16, 30d > 35% and > 32: strictly above both."""
        for name, share, count in (("2h", 0.85, 2), ("8h", 0.70, 4), ("1d", 0.55, 8),
                                   ("1w", 0.45, 16), ("1m", 0.35, 32)):
            self.assertTrue(self.with_window(name, share + 1e-6, count + 1e-6).reliable, name)
            self.assertFalse(self.with_window(name, share, count + 1).reliable, name)
            self.assertFalse(self.with_window(name, share + 0.1, count).reliable, name)


class WaitTests(SynchronousTestCase):
    """Ban and ignore times: how long a mostly-down node waits."""

    def down(self, name, share, count):
        windows = tuple(Window(share, count, 1.0) if n == name else Window()
                        for n, _ in WINDOWS)
        return Reliability(100, 0, T0, None, windows)

    def test_old_version_is_banned_a_week(self):
        self.assertEqual(Reliability().wait(version=31800), BAN_VERSION_TIME)
        self.assertEqual(Reliability().wait(version=31900), 0)

    def test_ban_and_ignore_times(self):
        """reliability - weight + 1 (here the reliability: weight 1) under
        the figure, with the count over the minimum."""
        self.assertEqual(self.down("1m", 0.14, 33).wait(), 30 * DAY)
        self.assertEqual(self.down("1m", 0.14, 32).wait(), 10 * DAY)  # ignore: count > 2
        self.assertEqual(self.down("1m", 0.19, 33).wait(), 10 * DAY)
        self.assertEqual(self.down("1w", 0.09, 17).wait(), 7 * DAY)
        self.assertEqual(self.down("1w", 0.15, 3).wait(), 3 * DAY)
        self.assertEqual(self.down("1d", 0.04, 9).wait(), DAY)
        self.assertEqual(self.down("1d", 0.11, 3).wait(), 8 * HOUR)
        self.assertEqual(self.down("8h", 0.07, 3).wait(), 2 * HOUR)
        self.assertEqual(self.down("8h", 0.07, 2).wait(), 0)
        self.assertEqual(self.down("8h", 0.081, 3).wait(), 0)

    def test_retry_after(self):
        """A good node: MIN_RETRY; another: at least that, else its wait."""
        self.assertEqual(Reliability().retry_after(True), MIN_RETRY)
        self.assertEqual(Reliability().retry_after(False), MIN_RETRY)
        self.assertEqual(self.down("1m", 0.14, 33).retry_after(False), 30 * DAY)
