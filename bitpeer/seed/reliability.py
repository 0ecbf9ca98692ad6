"""
How reliable a node has been: the decayed windows of sipa's bitcoin-seeder.

Each test of a node updates five windows, with time constants τ of 2 hours,
8 hours, 1 day, 1 week and 30 days (db.h's stat2H ... stat1M).  With
``age`` the seconds since the node's previous test (MIN_RETRY for its
first) and ``f = exp(-age / τ)``, a window becomes::

    reliability = reliability * f + (1 - f if the test succeeded else 0)
    count       = count * f + 1
    weight      = weight * f + (1 - f)

so ``reliability`` is the success ratio with older tests weighing less,
``count`` how many tests fell in about the last τ, and ``weight`` how much
of the window the tests have covered (``1 - weight`` is the part never
observed, counted as success by the ban and ignore rules).  The values
here are doubles where sipa's are floats; nothing else differs.

The same windows decide how often a node is tested again (``retry_after``):
never sooner than MIN_RETRY after its last test, and a node whose windows
say it is mostly down waits its ban or ignore time (db.h's GetBanTime and
GetIgnoreTime: up to 30 days), where sipa's seeder forgets or skips it.

Everything here is pure: values in, values out, no clock.
"""

import math

import attr

#: Seconds a node is not tested again after a test; also the age its first
#: test is taken to have (db.h MIN_RETRY).
MIN_RETRY = 1000

#: The windows: name, time constant in seconds (db.cpp CAddrInfo::Update).
WINDOWS = (("2h", 2 * 3600), ("8h", 8 * 3600), ("1d", 24 * 3600),
           ("1w", 7 * 24 * 3600), ("1m", 30 * 24 * 3600))
WINDOW_NAMES = tuple(name for name, _ in WINDOWS)

#: "Good" by reliability (db.h IsGood): any window whose reliability is
#: above the first figure with a count above the second.
GOOD_THRESHOLDS = ((0.85, 2), (0.70, 4), (0.55, 8), (0.45, 16), (0.35, 32))
#: ... or a young node: at most this many tests, at least half of them
#: successes.
YOUNG_TESTS = 3

#: Ban times (db.h GetBanTime): a not-good node whose window's
#: ``reliability - weight + 1`` is under the figure with a count above the
#: minimum waits that long; checked from the longest window down.
BAN_RULES = (("1m", 0.15, 32, 30 * 86400), ("1w", 0.10, 16, 7 * 86400),
             ("1d", 0.05, 8, 86400))
#: Protocol versions before this are banned for a week.
BAN_VERSION, BAN_VERSION_TIME = 31900, 7 * 86400
#: Ignore times (db.h GetIgnoreTime), the same way, each with a count > 2.
IGNORE_RULES = (("1m", 0.20, 2, 10 * 86400), ("1w", 0.16, 2, 3 * 86400),
                ("1d", 0.12, 2, 8 * 3600), ("8h", 0.08, 2, 2 * 3600))


@attr.frozen
class Window:
    """One decayed window: reliability, count and weight."""

    reliability: float = 0.0
    count: float = 0.0
    weight: float = 0.0

    def updated(self, good, age, tau):
        """The window after one test, ``age`` seconds after the last."""
        f = math.exp(-age / tau)
        return Window(self.reliability * f + ((1.0 - f) if good else 0.0),
                      self.count * f + 1.0,
                      self.weight * f + (1.0 - f))

    @property
    def unobserved_as_up(self):
        """``reliability - weight + 1``: what the ban and ignore rules
        compare (time never observed counts as up)."""
        return self.reliability - self.weight + 1.0


def _no_windows():
    return tuple(Window() for _ in WINDOWS)


@attr.frozen
class Reliability:
    """
    What the tests of one address have shown: ``tries`` and ``successes``
    (all time), the times of the last test and last success (None before
    any), and the five windows in WINDOWS order.
    """

    tries: int = 0
    successes: int = 0
    last_try: float | None = None
    last_success: float | None = None
    windows: tuple = attr.ib(factory=_no_windows)

    def tested(self, good, now):
        """The record after a test at ``now`` that succeeded or not."""
        age = MIN_RETRY if self.last_try is None else max(0.0, now - self.last_try)
        return Reliability(
            tries=self.tries + 1,
            successes=self.successes + bool(good),
            last_try=now,
            last_success=now if good else self.last_success,
            windows=tuple(window.updated(good, age, tau)
                          for window, (_, tau) in zip(self.windows, WINDOWS)),
        )

    def window(self, name):
        """The window called ``name`` (one of WINDOW_NAMES)."""
        return self.windows[WINDOW_NAMES.index(name)]

    @property
    def reliable(self):
        """sipa's reliability condition of "good": a young node with half
        its tests or more successful, or one window over its thresholds."""
        if self.tries <= YOUNG_TESTS and self.successes * 2 >= self.tries:
            return True
        return any(window.reliability > share and window.count > count
                   for window, (share, count) in zip(self.windows, GOOD_THRESHOLDS))

    def wait(self, version=None):
        """
        Seconds a node that is not good waits before its next test: its ban
        time (a version before BAN_VERSION, or a long window mostly down),
        else its ignore time, else 0.
        """
        if version and version < BAN_VERSION:
            return BAN_VERSION_TIME
        for rules in (BAN_RULES, IGNORE_RULES):
            for name, floor, count, seconds in rules:
                window = self.window(name)
                if window.unobserved_as_up < floor and window.count > count:
                    return seconds
        return 0

    def retry_after(self, good, version=None):
        """Seconds from the last test to the next: MIN_RETRY for a good
        node, at least that and up to its ban time for another."""
        return MIN_RETRY if good else max(MIN_RETRY, self.wait(version))
