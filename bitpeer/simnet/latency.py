"""
How long each simulated node takes to answer: one latency per node, drawn
from a distribution when the population is built.

A node's latency delays every message it writes (HonestNode.sendMessage).
The crawler's side is on loopback and answers at once, so the latency is
the round trip of each exchange: our version to the node's version and
verack (the handshake), our getaddr to its answer.  The TCP connect itself
completes at once on loopback: no distribution here applies to it.

A distribution is any object with ``draw(rng)`` (seconds, from the
population's random stream) and ``slow_from`` (the latency from which a node
counts as slow in the ground truth, or None).  Spread is the simnet's
``--latency-ms``; LogNormal is the Internet's long tail, with an optional
share of nodes that take seconds.
"""

import math
from statistics import NormalDist

import attr

from ..validators import positive

#: The standard normal's 99th percentile: a log-normal's p99 is its median
#: times exp(Z99 * sigma).
Z99 = NormalDist().inv_cdf(0.99)


def _seconds(value):
    """Latencies are kept to 0.1 ms, as the ground truth writes them."""
    return round(value, 4)


def _share(instance, attribute, value):
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be a share within 0..1, not {value!r}")


def _range(instance, attribute, value):
    low, high = value
    if not 0 <= low <= high:
        raise ValueError(f"{attribute.name} needs 0 <= low <= high, not {value!r}")


@attr.frozen
class Spread:
    """
    Uniform between half and one and a half times ``mean`` seconds; no
    latency at all when ``mean`` is 0 (and then nothing is drawn, so a
    network without latency is the same with or without this object).
    """

    mean: float = attr.field(default=0.0)
    slow_from = None

    @mean.validator
    def _check(self, attribute, value):
        if not value >= 0:
            raise ValueError(f"latency must be at least 0, not {value!r}")

    def draw(self, rng):
        """One node's latency."""
        return _seconds(self.mean * rng.uniform(0.5, 1.5)) if self.mean else 0.0


@attr.frozen
class LogNormal:
    """
    Log-normal round trips with the given ``median`` and ``p99`` (seconds),
    and a ``slow_share`` of nodes drawn instead from ``slow`` (low, high)
    seconds, uniformly: nodes that take seconds to answer, yet answer.
    """

    median: float = attr.field(validator=positive)
    p99: float = attr.field(validator=positive)
    slow_share: float = attr.field(default=0.0, validator=_share)
    slow: tuple = attr.field(default=(2.0, 8.0), converter=tuple, validator=_range)

    @p99.validator
    def _above_median(self, attribute, value):
        if value < self.median:
            raise ValueError(f"p99 ({value}) cannot be below the median ({self.median})")

    @property
    def sigma(self):
        """The standard deviation of the latency's logarithm."""
        return math.log(self.p99 / self.median) / Z99

    @property
    def slow_from(self):
        """The least latency of a slow node (None without slow nodes)."""
        return self.slow[0] if self.slow_share else None

    def draw(self, rng):
        """One node's latency."""
        if self.slow_share and rng.random() < self.slow_share:
            return _seconds(rng.uniform(*self.slow))
        return _seconds(rng.lognormvariate(math.log(self.median), self.sigma))


def as_distribution(latency):
    """A distribution as given, or seconds as the mean of a Spread."""
    return Spread(float(latency)) if isinstance(latency, (int, float)) else latency
