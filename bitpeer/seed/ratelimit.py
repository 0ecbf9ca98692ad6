"""
A token bucket per client, so that a DNS server cannot be used as an
amplifier.

A UDP query's source address can be forged: whoever forges a victim's
address makes the server send its answers (ten times the query's size) to
the victim.  A bucket per source address bounds what any one address can be
sent, whoever asks.  Resolvers ask a seed rarely (its answers are cached for
the zone's TTL), so the defaults are generous for them and small for a flood.

Memory is bounded: past MAX_CLIENTS addresses, the buckets that have filled
up again are forgotten (a new bucket starts full, so nothing changes for
them), then, if that was not enough, the oldest half.
"""

import itertools

import attr

from ..validators import positive

#: Queries a second one client may keep asking.
DEFAULT_RATE = 20.0
#: Queries one client may ask at once, after a quiet spell.
DEFAULT_BURST = 100
#: Clients whose buckets are remembered.
MAX_CLIENTS = 100_000


@attr.frozen
class RateLimit:
    """The limit: ``rate`` queries a second, ``burst`` at once."""

    rate: float = attr.ib(default=DEFAULT_RATE, validator=positive)
    burst: float = attr.ib(default=DEFAULT_BURST, validator=positive)


class ClientBuckets:
    """
    A token bucket per client on an injected clock.

    @param clock: an IReactorTime.
    @param limit: the RateLimit.
    @param max_clients: how many clients' buckets are remembered.
    """

    def __init__(self, clock, limit, max_clients=MAX_CLIENTS):
        self._clock = clock
        self._rate = limit.rate
        self._burst = limit.burst
        self._max_clients = max_clients
        # client -> [tokens, time they were counted]
        self._buckets = {}

    def __len__(self):
        """The clients remembered."""
        return len(self._buckets)

    def allow(self, client):
        """Take a token from ``client``'s bucket: False when it is empty."""
        now = self._clock.seconds()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget(now)
            self._buckets[client] = [self._burst - 1, now]
            return True
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return True
        bucket[0] = tokens
        return False

    def _forget(self, now):
        rate, burst = self._rate, self._burst
        full = [client for client, (tokens, then) in self._buckets.items()
                if tokens + (now - then) * rate >= burst]
        for client in full:
            del self._buckets[client]
        excess = len(self._buckets) - self._max_clients // 2
        if len(self._buckets) >= self._max_clients:
            for client in list(itertools.islice(self._buckets, excess)):
                del self._buckets[client]
