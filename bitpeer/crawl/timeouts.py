"""
The connect timeout a crawl learns from its own connects.

Most addresses gossiped on mainnet lead nowhere, and most of those are
blackholed: the SYN goes unanswered and the dial ends only at its timeout.
With the configured 5 s, each holds a slot for 5 s; yet every live node a
crawl reaches connects in about one round trip.  So the crawl watches how
long its successful connects take and, once it has seen enough of them,
cuts dials at ``factor`` times a high percentile of that (``quantile``,
p99 by default), never under ``floor`` and never over the configured
timeout: a 5 s timeout then costs a blackholed address what the network's
own slowest live nodes need, not 5 s.

The floor stands for what a percentile of fast connects cannot see: a
connect whose first SYN is lost completes only after the kernel resends it,
one initial retransmission timeout later (1 s on Linux, RFC 6298's
default), so a learnt timeout below 1 s plus a round trip would turn such
live nodes into timeouts.  DEFAULT_FLOOR keeps one resend and half a
second of round trip.  ``factor`` leaves the same room above the p99 on
slow paths: a p99 of 600 ms (mainnet's round trips, bitpeer.simnet.presets)
gives 1.8 s.

A connect's time is the kernel's round-trip estimate for the socket where
the dialler can read it (bitpeer.net.dialler's Attempt.rtt, Linux), else
the time from the dial to the connection's start.  The latter also counts
the reactor's lag: a crawl busy decoding thousands of answers gets to a
finished connect late, and a timeout learnt from that lag would be the
configured one again.  The lag cannot cut a live node either way: before
timing an attempt out, the dialler asks the kernel whether its connect is
in fact over.

Nothing is learnt from fewer than ``min_samples`` connects: a small crawl
keeps its configured timeout.  Connect times go into a log-spaced histogram
(LatencyLog): constant memory and an O(1) add whatever the crawl's size,
and a percentile read off bucket edges, rounded up, so the estimate errs on
the side of waiting.

Only the connect is learnt.  The handshake and getaddr waits are measured
(LatencyLog) and reported, not cut: a node slow to answer is alive, and a
timeout learnt too tight there loses real nodes, which is worse than slow.
Overlay paths keep their configured timeouts too: a dead onion or I2P
destination fails through its proxy, it does not blackhole.
"""

import math

import attr

from ..validators import positive

#: The learnt connect timeout's lower bound (s); see the module docstring.
DEFAULT_FLOOR = 1.5
#: The percentile of successful connect times the timeout is made from, and
#: the multiple of it allowed.
DEFAULT_QUANTILE = 0.99
DEFAULT_FACTOR = 3.0
#: Successful connects needed before anything is learnt.
DEFAULT_MIN_SAMPLES = 100
#: The learnt value is recomputed after this many more connects.
RELEARN_EVERY = 32

#: LatencyLog's buckets: this many per decade, from 0.1 ms up to 1000 s
#: (each edge 12% above the one before: the percentile's resolution).
BUCKETS_PER_DECADE = 20
SMALLEST = 1e-4
DECADES = 7


class LatencyLog:
    """
    Durations (s) in log-spaced buckets: ``add`` is O(1), ``quantile``
    reads a percentile off the bucket edges (the upper edge: an estimate
    never below the true value, by at most one bucket's width, 12%).
    """

    __slots__ = ("counts", "count")

    def __init__(self):
        self.counts = [0] * (BUCKETS_PER_DECADE * DECADES + 1)
        self.count = 0

    def add(self, seconds):
        """Count one duration (anything under 0.1 ms is counted as 0.1 ms,
        anything over the top as the top)."""
        if seconds <= SMALLEST:
            index = 0
        else:
            index = min(len(self.counts) - 1,
                        math.ceil(math.log10(seconds / SMALLEST) * BUCKETS_PER_DECADE))
        self.counts[index] += 1
        self.count += 1

    def quantile(self, q):
        """The ``q`` quantile (0 < q <= 1) of what was added, None if nothing was."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return SMALLEST * 10 ** (index / BUCKETS_PER_DECADE)
        raise AssertionError("unreachable: the counts add up to count")

    def as_dict(self):
        """``samples``, ``p50`` and ``p99`` (s, rounded to 0.1 ms: a
        loopback round trip is tens of microseconds), JSON-ready."""
        return {"samples": self.count, "p50": _rounded(self.quantile(0.5)),
                "p99": _rounded(self.quantile(0.99))}


def _rounded(seconds):
    return None if seconds is None else round(seconds, 4)


def _quantile(instance, attribute, value):
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be within (0, 1], got {value!r}")


@attr.frozen
class LearningPolicy:
    """How a connect timeout is learnt (see the module docstring)."""

    floor: float = attr.ib(default=DEFAULT_FLOOR, validator=positive)
    quantile: float = attr.ib(default=DEFAULT_QUANTILE, validator=_quantile)
    factor: float = attr.ib(default=DEFAULT_FACTOR, validator=positive)
    min_samples: int = attr.ib(default=DEFAULT_MIN_SAMPLES, validator=positive)


class ConnectTimeoutLearner:
    """
    Learns the connect timeout of one path from its successful connects.

    ``observe(seconds)`` takes one connect's duration; ``timeout`` is the
    one to use now: ``configured`` until ``policy.min_samples`` connects
    are in, then ``factor`` x the ``quantile`` of them, within
    [min(floor, configured), configured].  ``learnt`` is that value, or
    None while nothing is learnt.  ``changed`` (a callable of the new
    timeout, or None) is called when the value in use changes.  With
    ``policy`` None the connect times are measured and nothing is learnt.
    """

    def __init__(self, configured, policy, changed=None):
        self.configured = configured
        self.policy = policy
        self.times = LatencyLog()
        self.learnt = None
        self.changed = changed
        self._next = policy.min_samples if policy is not None else math.inf

    @property
    def timeout(self):
        """The connect timeout to use now (s)."""
        return self.configured if self.learnt is None else self.learnt

    def observe(self, seconds):
        """One successful connect took ``seconds``."""
        times = self.times
        times.add(seconds)
        if times.count >= self._next:
            self._next = times.count + RELEARN_EVERY
            self._relearn()

    def _relearn(self):
        policy = self.policy
        wanted = policy.factor * self.times.quantile(policy.quantile)
        learnt = min(self.configured, max(min(policy.floor, self.configured), wanted))
        changed = learnt != self.timeout
        self.learnt = learnt
        if changed and self.changed is not None:
            self.changed(learnt)

    def as_dict(self):
        """What the summary reports: the configured and learnt timeouts
        (s), the floor, and the connect times it learnt from."""
        return {"configured": self.configured,
                "floor": self.policy.floor if self.policy is not None else None,
                "learnt": _rounded(self.learnt), **self.times.as_dict()}
