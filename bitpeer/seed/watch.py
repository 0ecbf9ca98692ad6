"""
Every address the DNS seeder knows, what its tests showed, and when each
is tested next: the seeder's state, without a reactor or a socket.

The schedule is sipa's bitcoin-seeder's (db.cpp CAddrDb::Get_ and
CAddrInfo::Update), made explicit as a time per address:

- an address never tested (new gossip, a seed) is due at once;
- a good node is tested again MIN_RETRY (1000 s, about 17 minutes) after
  its last test;
- a node that is not good waits at least as long, and as long as its ban
  or ignore time when its windows say it is mostly down: 2 hours, 8 hours,
  1, 3, 7, 10 or 30 days (bitpeer.seed.reliability.Reliability.wait);
  sipa's seeder forgets a banned node for its ban time, and skips an
  ignored one, where here it is simply tested that much later.

Due addresses are taken oldest first, so with more due than a round holds,
none waits behind the others for ever.  The times are kept in a heap as
well as per address, so that a round finds its due addresses without
walking every address: with 50,000 known, that walk (and the sort) took
100 ms or more of the reactor at each round's start, a stall every DNS
answer waited behind.  A node is asked for addresses when
its last success is more than a day old, or it never had one (bitcoin.cpp:
``getaddr = ourLastSuccess + 86400 < now``).
"""

import heapq
import itertools

from ..store.addrbook import SeedRecord
from .good import Facts
from .reliability import MIN_RETRY, Reliability, Window

#: A node is asked for addresses when its last success is older than this.
GETADDR_AFTER = 86400
#: What "tested recently" means in the health line.
RECENT = 3600


class Watch:
    """
    The seeder's state for one network, judged by ``rule`` (a GoodRule):
    ``reliability`` and ``facts`` per address, the ``good`` addresses, and
    each address's next test.  Filled from the book with ``load``, told of
    new addresses with ``learn`` and of tests with ``tested``.
    """

    def __init__(self, rule):
        self.rule = rule
        self.reliability = {}
        self.facts = {}
        self.good = set()
        #: address -> when it is tested next: the truth.
        self.next_try = {}
        #: (when, order, address), one entry each time an address's next
        #: test was set: an entry whose time is no longer next_try's is
        #: stale, and dropped when it comes to the top.
        self._schedule = []
        self._order = itertools.count()
        #: Addresses tested since take_changed.
        self._changed = set()

    def __len__(self):
        return len(self.next_try)

    def load(self, records):
        """Take the book's SeedRecords: each address, its windows and facts."""
        for record in records:
            address = record.address
            facts = Facts(record.services, record.version, record.height)
            self.facts[address] = facts
            if not record.tries:
                self.learn(address)
                continue
            reliability = Reliability(
                record.tries, record.successes, record.last_try, record.last_success,
                tuple(Window(*window) for window in record.windows))
            self._judge(address, reliability, facts)

    def learn(self, address):
        """An address heard of (gossip, a seed): due at once if it is new."""
        if address not in self.next_try:
            self._schedule_at(address, 0.0)

    @property
    def tested_any(self):
        """Whether any address has been tested yet."""
        return bool(self.reliability)

    def tested(self, address, success, info, now):
        """
        A test of ``address`` at ``now`` succeeded (a handshake: ``info``
        is its PeerInfo) or not: its windows, facts and next test change.
        """
        facts = self.facts.get(address, Facts())
        if success:
            facts = Facts(info.services, info.version, info.start_height)
            self.facts[address] = facts
        reliability = self.reliability.get(address, Reliability()).tested(success, now)
        self._judge(address, reliability, facts)
        self._changed.add(address)

    def skipped(self, address, now):
        """``address`` was due but not dialled (its network has no way
        out): due again MIN_RETRY later, as sipa's seeder's Skipped_."""
        self._schedule_at(address, now + MIN_RETRY)

    def _judge(self, address, reliability, facts):
        self.reliability[address] = reliability
        good = self.rule.is_good(address, facts, reliability)
        if good:
            self.good.add(address)
        else:
            self.good.discard(address)
        self._schedule_at(address, reliability.last_try + reliability.retry_after(
            good, facts.version))

    def _schedule_at(self, address, when):
        self.next_try[address] = when
        heapq.heappush(self._schedule, (when, next(self._order), address))

    def due(self, now, limit):
        """Up to ``limit`` addresses whose test is due at ``now``, the
        longest overdue first: they stay due until tested or skipped."""
        schedule, next_try = self._schedule, self.next_try
        taken, seen = [], set()
        while schedule and schedule[0][0] <= now and len(taken) < limit:
            entry = heapq.heappop(schedule)
            when, _, address = entry
            if next_try.get(address) == when and address not in seen:
                seen.add(address)
                taken.append(entry)
        for entry in taken:
            heapq.heappush(schedule, entry)
        return [address for _, _, address in taken]

    def next_due(self):
        """When the next test falls due (None when nothing is known)."""
        schedule, next_try = self._schedule, self.next_try
        while schedule and next_try.get(schedule[0][2]) != schedule[0][0]:
            heapq.heappop(schedule)
        return schedule[0][0] if schedule else None

    def wants_addresses(self, address, now):
        """Whether a test of ``address`` asks it for addresses too."""
        last = self.reliability.get(address, Reliability()).last_success
        return last is None or last + GETADDR_AFTER < now

    def good_nodes(self):
        """The good nodes as (address, services) pairs."""
        return [(address, self.facts[address].services) for address in self.good]

    def take_changed(self):
        """The SeedRecords of the addresses tested since the last call."""
        changed, self._changed = self._changed, set()
        return [self.record(address) for address in changed]

    def give_back(self, records):
        """Records take_changed gave that the book could not keep: they
        are taken again next time."""
        self._changed.update(record.address for record in records)

    def record(self, address):
        """What the book keeps of a tested address: a SeedRecord."""
        r, facts = self.reliability[address], self.facts.get(address, Facts())
        return SeedRecord(
            address, facts.services, facts.version, facts.height, tries=r.tries,
            successes=r.successes, last_try=r.last_try, last_success=r.last_success,
            good=address in self.good,
            windows=tuple((w.reliability, w.count, w.weight) for w in r.windows))

    def health(self, now):
        """Known addresses, tested in the last RECENT seconds, and good
        nodes by network name."""
        recent = sum(1 for r in self.reliability.values() if r.last_try >= now - RECENT)
        by_network = {}
        for address in self.good:
            name = address.network_name
            by_network[name] = by_network.get(name, 0) + 1
        return len(self.next_try), recent, by_network

