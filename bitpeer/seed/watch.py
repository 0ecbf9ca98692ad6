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
none waits behind the others for ever.  A node is asked for addresses when
its last success is more than a day old, or it never had one (bitcoin.cpp:
``getaddr = ourLastSuccess + 86400 < now``).
"""

import attr

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
        self.next_try = {}
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
                self.next_try.setdefault(address, 0.0)
                continue
            reliability = Reliability(
                record.tries, record.successes, record.last_try, record.last_success,
                tuple(Window(*window) for window in record.windows))
            self._judge(address, reliability, facts)

    def learn(self, address):
        """An address heard of (gossip, a seed): due at once if it is new."""
        if address not in self.next_try:
            self.next_try[address] = 0.0

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
        self.next_try[address] = now + MIN_RETRY

    def _judge(self, address, reliability, facts):
        self.reliability[address] = reliability
        good = self.rule.is_good(address, facts, reliability)
        if good:
            self.good.add(address)
        else:
            self.good.discard(address)
        self.next_try[address] = reliability.last_try + reliability.retry_after(
            good, facts.version)

    def due(self, now, limit):
        """Up to ``limit`` addresses whose test is due at ``now``, the
        longest overdue first."""
        due = [(when, address) for address, when in self.next_try.items() if when <= now]
        due.sort(key=lambda pair: pair[0])
        return [address for _, address in due[:limit]]

    def next_due(self):
        """When the next test falls due (None when nothing is known)."""
        return min(self.next_try.values(), default=None)

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
            good=address in self.good, windows=tuple(attr.astuple(w) for w in r.windows))

    def health(self, now):
        """Known addresses, tested in the last RECENT seconds, and good
        nodes by network name."""
        recent = sum(1 for r in self.reliability.values() if r.last_try >= now - RECENT)
        by_network = {}
        for address in self.good:
            name = address.network_name
            by_network[name] = by_network.get(name, 0) + 1
        return len(self.next_try), recent, by_network

