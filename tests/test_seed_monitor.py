"""
Tests for bitpeer.seed.monitor: rounds of tests against an in-process
simnet on loopback, their schedule on a task.Clock (the sockets are real,
the seeder's time is not), gossip learnt and tested in a later round, not
dialled in the round that heard it.
"""

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from bitpeer.seed.monitor import MonitorService
from bitpeer.seed.reliability import MIN_RETRY
from bitpeer.seed.watch import Watch
from bitpeer.simnet.network import SimNet
from bitpeer.simnet.tap import SimNetRunner
from bitpeer.store.service import AddressBookService
from bitpeer.wire.address import Network, NetworkAddress

from .helpers import wait_until
from .test_seed_service import ZONE, parse
from .test_seed_watch import handshake

#: An address the watch tested before: nothing listens there.
EARLIER = NetworkAddress.parse("127.0.0.1:1")
#: An onion address: no proxy in these tests, so never dialled.
ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 18444)


class MonitorTests(TestCase):
    """The monitor's rounds."""

    @defer.inlineCallbacks
    def test_rounds(self):
        options = parse(*ZONE, "--simnet", "20")
        clock = Clock()
        clock.advance(reactor.seconds())
        watch = Watch(options["rule"])
        # A watch that has tested before: no first crawl, rounds at once.
        watch.tested(EARLIER, True, handshake(EARLIER), clock.seconds())
        watch.learn(ONION)
        simnet = SimNetRunner(lambda: SimNet(reactor, 20, 0, seed=3, network=options["network"]))
        books = AddressBookService(None, reactor)
        faults = []
        monitor = MonitorService(options, reactor, books, watch, faults.append,
                                 simnet=simnet, clock=clock)
        crawls = []
        crawl = monitor._crawl

        def recorded(addresses, crawl_options):
            crawls.append((set(addresses), crawl_options.follow_gossip))
            return crawl(addresses, crawl_options)

        monitor._crawl = recorded
        simnet.startService()
        self.addCleanup(simnet.stopService)
        yield books.startService()
        self.addCleanup(books.stopService)
        yield monitor.startService()
        self.addCleanup(lambda: monitor.running and monitor.stopService())
        nodes = {NetworkAddress.parse(n["address"]) for n in simnet.truth["nodes"]}
        seeds = set(simnet.seeds())

        def tried(address):
            r = watch.reliability.get(address)
            return r.tries if r else 0

        # Every node is tested once, the seeds in the first round, the
        # others only in later rounds (gossip is learnt, not dialled).
        yield wait_until(lambda: all(tried(n) == 1 for n in nodes) and monitor.crawler is None,
                         "every node tested once")
        self.assertTrue(monitor.settled)
        self.assertEqual(crawls[0], (seeds, False))
        self.assertGreaterEqual(monitor.rounds, 2)
        self.assertTrue(all(not follow for _, follow in crawls))
        self.assertEqual((tried(EARLIER), tried(ONION)), (1, 0))
        self.assertEqual(watch.next_try[ONION], clock.seconds() + MIN_RETRY)  # skipped
        self.assertLessEqual(watch.good - {EARLIER}, nodes)  # young, so good for now
        self.assertTrue(watch.good & nodes)

        # MIN_RETRY later, everything is due again, the earlier one too.
        clock.advance(MIN_RETRY)
        yield wait_until(lambda: all(tried(n) == 2 for n in nodes | {EARLIER})
                         and monitor.crawler is None, "every node tested twice")
        self.assertEqual(watch.reliability[EARLIER].successes, 1)  # refused this time
        self.assertIn(EARLIER, watch.good)  # still young: half its tests succeeded

        # Stopped, it leaves its windows and its run in the book.
        yield monitor.stopService()
        records = {r.address: r for r in (yield books.book.seed_state())}
        self.assertTrue(all(records[n].tries == 2 for n in nodes))
        [run] = yield books.book.crawls()
        self.assertEqual(run["status"], "seeded")
        self.assertEqual(faults, [])
