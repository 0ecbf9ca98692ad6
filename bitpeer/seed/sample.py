"""
The good nodes a seeder's DNS answers are drawn from.

The seeder's monitor decides which nodes are good and hands them over every
few minutes (ServedSample.refresh); every DNS answer then draws from that
set, so a query costs no database work.  A draw is random and diversified as
dnsseedrs draws (REFERENCE.md 2.2): at most one node per network group, by
default an IPv4 /16 or an IPv6 /32 (or an ASN, when the caller groups by a
map), so one hosting provider's many nodes cannot fill an answer and so an
eclipse needs addresses in many networks.

Only IPv4 and IPv6 nodes can be served in A and AAAA records; onion, I2P and
CJDNS candidates are ignored here (the dump lists them).
"""

import random as _random

import attr

from ..wire.address import Network, NetworkAddress

#: Bytes of the address that make its default group: an IPv4 /16, an IPv6 /32.
GROUP_PREFIX = {Network.IPV4: 2, Network.IPV6: 4}
#: Service masks whose matching groups are kept between refreshes.  DNS asks
#: only for its served flags (about fourteen); the bound keeps an embedding
#: caller's arbitrary masks from growing the cache.
MAX_CACHED_MASKS = 64


@attr.frozen
class Candidate:
    """
    A good node the monitor offers for serving.

    @ivar address: the node; IPv4 and IPv6 are served, other networks are
        ignored by DNS.
    @ivar services: the service bits the node gave in its own version
        message (what it offers now, not what gossip claimed).
    """

    address: NetworkAddress
    services: int


def network_group(address):
    """The default diversity key: the network and its /16 (IPv4) or /32 (IPv6)."""
    return address.network, address.host[:GROUP_PREFIX[address.network]]


class ServedSample:
    """
    The good nodes DNS answers are drawn from, refreshed by the seeder every
    few minutes.

    A refresh sorts the candidates by family and group once; a pick then
    draws groups, not nodes, so its cost grows with the answer, not the
    sample.  The groups holding a node with every bit of a service mask are
    found once per mask and refresh.

    @param clock: an IReactorTime; ``refreshed`` is its time of the last
        refresh.
    @param random: a random.Random (seed it for repeatable draws).
    @param group: ``group(address)`` returns the diversity key of a served
        address (hashable); network_group by default.
    """

    def __init__(self, clock, *, random=None, group=None):
        self._clock = clock
        self._random = random if random is not None else _random.Random()
        self._group = group if group is not None else network_group
        self._refreshed = None
        self._generation = 0
        self._count = 0
        # ipv6 -> {group key: [(services, address), ...]}
        self._families = {False: {}, True: {}}
        # (ipv6, required) -> [[address, ...] per group with a match]
        self._matching = {}

    @property
    def refreshed(self):
        """The clock's time of the last refresh, or None before the first."""
        return self._refreshed

    @property
    def generation(self):
        """How many refreshes there have been: what was drawn before a change
        of it is out of date (two refreshes may come at one clock time)."""
        return self._generation

    def __len__(self):
        """The candidates held (IPv4 and IPv6 only)."""
        return self._count

    def refresh(self, candidates):
        """Serve ``candidates`` (an iterable of Candidate) from now on."""
        families = {False: {}, True: {}}
        count = 0
        for candidate in candidates:
            address = candidate.address
            if address.network == Network.IPV4:
                groups = families[False]
            elif address.network == Network.IPV6:
                groups = families[True]
            else:
                continue
            groups.setdefault(self._group(address), []).append(
                (candidate.services, address))
            count += 1
        self._families = families
        self._count = count
        self._matching = {}
        self._refreshed = self._clock.seconds()
        self._generation += 1

    def pick(self, ipv6, required, limit):
        """
        A random sample of at most ``limit`` nodes (NetworkAddress) of one
        family whose services include every bit of ``required``, at most one
        per diversity group; each call draws anew.
        """
        groups = self._matching.get((ipv6, required))
        if groups is None:
            groups = self._groups_matching(ipv6, required)
        chosen = self._random.sample(groups, min(limit, len(groups)))
        choice = self._random.choice
        return [members[0] if len(members) == 1 else choice(members) for members in chosen]

    def _groups_matching(self, ipv6, required):
        groups = [
            [address for services, address in members if services & required == required]
            for members in self._families[ipv6].values()
        ]
        groups = [members for members in groups if members]
        if len(self._matching) >= MAX_CACHED_MASKS:
            self._matching.clear()
        self._matching[(ipv6, required)] = groups
        return groups
