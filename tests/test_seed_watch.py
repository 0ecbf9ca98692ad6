"""
Tests for bitpeer.seed.watch: the schedule of tests, and a node going down
and up over simulated days on a task.Clock, judged by the good rule.
"""

import random

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.networks import MAINNET
from bitpeer.peer import PeerInfo
from bitpeer.seed.good import GoodRule
from bitpeer.seed.reliability import MIN_RETRY
from bitpeer.seed.watch import GETADDR_AFTER, Watch
from bitpeer.store.bookdb import SeedRecord
from bitpeer.wire.address import NetworkAddress

T0 = 1_700_000_000
HOUR, DAY = 3600, 86400
NODE = NetworkAddress.parse("8.8.4.4:8333")
OTHER = NetworkAddress.parse("9.9.9.9:8333")


def handshake(address, version=70016, services=0x409, height=900_000,
              agent="/Satoshi:27.0.0/"):
    return PeerInfo(address=address, inbound=False, version=version, services=services,
                    user_agent=agent, start_height=height, relay=True,
                    their_view_of_us=None, timestamp=T0, nonce=1, clock_offset=0.0,
                    handshake_latency=0.1)


def watch():
    return Watch(GoodRule.for_network(MAINNET))


def simulate(watch, clock, until, up):
    """
    Run the watch's schedule on ``clock`` until ``until``: test what is due
    (``up(address, now)`` says whether the test succeeds), then jump to the
    next test.  Returns (hours since T0, test number, good) each time an
    address's goodness changes.
    """
    changes, good, tests = [], {}, 0
    while clock.seconds() < until:
        now = clock.seconds()
        for address in watch.due(now, 100):
            success = up(address, now)
            watch.tested(address, success, handshake(address) if success else None, now)
            tests += 1
            if good.get(address) != (address in watch.good):
                good[address] = address in watch.good
                changes.append(((now - T0) / HOUR, tests, good[address]))
        clock.advance(max(0.0, watch.next_due() - clock.seconds()))
    return changes


class ScheduleTests(SynchronousTestCase):
    """When each address is tested."""

    def test_new_addresses_are_due_at_once(self):
        w = watch()
        w.learn(NODE)
        w.learn(OTHER)
        self.assertEqual(sorted(w.due(T0, 10)), sorted([NODE, OTHER]))
        self.assertEqual(w.due(T0, 1), [NODE])  # a round takes at most its size

    def test_learning_again_changes_nothing(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        w.learn(NODE)
        self.assertEqual(w.due(T0 + 1, 10), [])

    def test_good_node_again_after_min_retry(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        self.assertIn(NODE, w.good)
        self.assertEqual(w.next_try[NODE], T0 + MIN_RETRY)
        self.assertEqual(w.due(T0 + MIN_RETRY - 1, 10), [])
        self.assertEqual(w.due(T0 + MIN_RETRY, 10), [NODE])

    def test_old_version_waits_a_week(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE, version=31800), T0)
        self.assertNotIn(NODE, w.good)
        self.assertEqual(w.next_try[NODE], T0 + 7 * DAY)

    def test_longest_overdue_first(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0 + 10)
        w.tested(OTHER, True, handshake(OTHER), T0)
        self.assertEqual(w.due(T0 + 2 * MIN_RETRY, 10), [OTHER, NODE])
        self.assertEqual(w.next_due(), T0 + MIN_RETRY)

    def test_skipped(self):
        """Due but not dialled (no way out to its network): again later."""
        w = watch()
        w.learn(NODE)
        w.skipped(NODE, T0)
        self.assertEqual(w.due(T0, 10), [])
        self.assertEqual(w.next_try[NODE], T0 + MIN_RETRY)

    def test_due_takes_nothing(self):
        """Asking what is due twice gives the same answer: an address
        stays due until it is tested or skipped."""
        w = watch()
        w.learn(NODE)
        w.learn(OTHER)
        self.assertEqual(w.due(T0, 10), [NODE, OTHER])
        self.assertEqual(w.due(T0, 10), [NODE, OTHER])
        w.tested(NODE, True, handshake(NODE), T0)
        self.assertEqual(w.due(T0, 10), [OTHER])

    def test_rescheduled_address_only_at_its_new_time(self):
        """An address whose next test moved is due at the new time only,
        once, however often its time was set."""
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        w.due(T0 + MIN_RETRY, 10)
        w.skipped(NODE, T0 + MIN_RETRY)
        w.skipped(NODE, T0 + MIN_RETRY)
        self.assertEqual(w.due(T0 + 1.5 * MIN_RETRY, 10), [])
        self.assertEqual(w.next_due(), T0 + 2 * MIN_RETRY)
        self.assertEqual(w.due(T0 + 2 * MIN_RETRY, 10), [NODE])

    def test_due_as_a_walk_of_every_address_finds_it(self):
        """Whatever the tests, learning and skips, the due addresses and
        the next due time are what walking every address would give."""
        rng = random.Random(7)
        w = watch()
        addresses = [NetworkAddress.parse(f"8.{n // 256}.{n % 256}.1:8333") for n in range(300)]
        now = T0
        for _ in range(40):
            for address in rng.sample(addresses, 60):
                action = rng.randrange(3)
                if action == 0:
                    w.learn(address)
                elif action == 1:
                    up = rng.random() < 0.7
                    w.tested(address, up, handshake(address) if up else None, now)
                else:
                    w.skipped(address, now)
            now += rng.randrange(2 * MIN_RETRY)
            walked = sorted((when, str(address)) for address, when in w.next_try.items()
                            if when <= now)
            due = w.due(now, 50)
            self.assertEqual(len(due), min(50, len(walked)))
            self.assertEqual(sorted(w.next_try[a] for a in due),
                             [when for when, _ in walked[:len(due)]])
            self.assertEqual(w.next_due(), min(w.next_try.values()))

    def test_asked_for_addresses_once_a_day(self):
        w = watch()
        self.assertTrue(w.wants_addresses(NODE, T0))
        w.tested(NODE, True, handshake(NODE), T0)
        self.assertFalse(w.wants_addresses(NODE, T0 + GETADDR_AFTER))
        self.assertTrue(w.wants_addresses(NODE, T0 + GETADDR_AFTER + 1))
        w.tested(OTHER, False, None, T0)
        self.assertTrue(w.wants_addresses(OTHER, T0 + 1))


class GoodOverTimeTests(SynchronousTestCase):
    """A node's goodness as its windows move."""

    def test_new_node(self):
        """Always up: good while young (3 tests), then not until the 2-hour
        window passes 85% (1 - exp(-13000/7200) = 0.836 at the 13th test,
        1 - exp(-14000/7200) = 0.857 at the 14th, 1000 s apart)."""
        clock = Clock()
        clock.advance(T0)
        w = watch()
        w.learn(NODE)
        changes = simulate(w, clock, T0 + DAY, lambda address, now: True)
        self.assertEqual([(tests, good) for _, tests, good in changes],
                         [(1, True), (4, False), (14, True)])

    def test_down_leaves_and_comes_back(self):
        """
        Up two days (tested every 1000 s), down the third, up again.  Going
        down, the 1-day window holds it longest: 1 - exp(-2) = 0.8647 at
        the fall, times exp(-1000/86400) = 0.98849 per failed test, is
        under 55% from the 40th failure on (0.8647 * 0.98849^40 = 0.545),
        the 213th test (173 before the fall).  Down, it is ignored 2 hours
        at a time (the 8-hour window is all down); back up, it is good
        again within 2 hours.
        """
        clock = Clock()
        clock.advance(T0)
        w = watch()
        w.learn(NODE)
        changes = simulate(w, clock, T0 + 5 * DAY,
                           lambda address, now: not T0 + 2 * DAY <= now < T0 + 3 * DAY)
        (_, _, young), (_, _, _), (_, _, _), (left, tests, gone), (back, _, again) = changes
        self.assertEqual((young, gone, again), (True, False, True))
        self.assertEqual(tests, 173 + 40)
        self.assertAlmostEqual(left, 213_000 / HOUR - 1000 / HOUR)
        self.assertTrue(72 < back <= 74, back)
        self.assertIn(NODE, w.good)


class RecordTests(SynchronousTestCase):
    """What the book keeps, and loading it back."""

    def test_round_trip_through_records(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        w.tested(NODE, False, None, T0 + MIN_RETRY)
        w.learn(OTHER)
        [record] = w.take_changed()
        self.assertEqual(w.take_changed(), [])
        again = watch()
        again.load([record, SeedRecord(OTHER, None, None, None)])
        self.assertEqual(again.reliability, w.reliability)
        self.assertEqual(again.facts[NODE], w.facts[NODE])
        self.assertEqual(again.next_try, w.next_try)
        self.assertEqual(again.good, w.good)

    def test_give_back(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        records = w.take_changed()
        w.give_back(records)
        self.assertEqual(w.take_changed(), records)

    def test_health(self):
        w = watch()
        w.tested(NODE, True, handshake(NODE), T0)
        w.tested(OTHER, True, handshake(OTHER), T0 - 2 * HOUR)
        w.learn(NetworkAddress.parse("1.1.1.1:8333"))
        self.assertEqual(w.health(T0), (3, 1, {"ipv4": 2}))
        self.assertEqual(sorted(w.good_nodes()), sorted([(NODE, 0x409), (OTHER, 0x409)]))
