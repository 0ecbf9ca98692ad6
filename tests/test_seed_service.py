"""
Tests for bitpeer.seed.tap and bitpeer.seed.service: the command line, the
health line, and the whole seeder end to end: an in-process simnet on
loopback crawled, its nodes judged, and served to twisted.names' client.
"""

import os

from twisted.application.service import IServiceMaker
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.names import client, dns
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.seed import dns as seed_dns
from bitpeer.seed.good import GoodRule
from bitpeer.seed.sample import ServedSample
from bitpeer.seed.service import SampleService
from bitpeer.seed.tap import Options, seed_application
from bitpeer.seed.watch import Watch
from bitpeer.store.bookdb import open_read_only, read_seed_state
from bitpeer.wire.services import NODE_NETWORK

from .helpers import wait_until
from .test_cli import scratch
from .test_seed_watch import NODE, OTHER, T0, handshake

ZONE = ["--host", "seed.example.org", "--ns", "ns.example.org",
        "--mbox", "hostmaster.example.org"]


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options


class _Sink:
    """A UDP transport that sends nothing."""

    def write(self, data, address):
        pass


class OptionsTests(SynchronousTestCase):
    """``twistd bitpeer-seed``'s command line."""

    def test_defaults(self):
        options = parse(*ZONE)
        self.assertEqual((options["dns-port"], options["dns-interface"], options["ttl"]),
                         (5353, "", 3600))
        self.assertEqual(options["zone"].host, "seed.example.org")
        self.assertEqual(options["rule"], GoodRule(8333, 880_000))
        self.assertEqual(options["db"], "bitpeer.sqlite")  # the crawler's book
        self.assertEqual((options["dns-rate"], options["dns-burst"]), (20.0, 100))

    def test_dns_rate_limit(self):
        """--dns-rate and --dns-burst are the DNS server's per-client limit:
        a client may ask the burst at once, then at the rate."""
        clock = Clock()
        options = parse(*ZONE, "--dns-rate", "2.5", "--dns-burst", "3")
        app = seed_application(options, clock)
        server = seed_dns._DatagramServer(app.dns._server)
        server.transport = _Sink()
        message = dns.Message()
        message.queries = [dns.Query(b"seed.example.org", dns.NS)]
        counters = app.dns.counters

        def ask(times):
            for _ in range(times):
                server.datagramReceived(message.toStr(), ("127.0.0.1", 5000))
            return counters.answered, counters.limited

        self.assertEqual(ask(4), (3, 1))
        clock.advance(0.4)  # one more token at 2.5 a second
        self.assertEqual(ask(2), (4, 2))

    def test_the_crawls_options(self):
        options = parse(*ZONE, "--network", "testnet4", "--min-height", "5", "--limited",
                        "--seed", "1.2.3.4", "--connect-timeout", "3")
        self.assertEqual(options["rule"], GoodRule(48333, 5, limited=True))
        self.assertEqual(options["crawl"].connect_timeout, 3.0)
        self.assertEqual(len(options["seeds"]), 1)

    def test_simnet_judges_any_port(self):
        rule = parse(*ZONE, "--simnet", "10")["rule"]
        self.assertEqual((rule.default_port, rule.allow_private), (None, True))

    def test_plugin(self):
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertEqual(makers["bitpeer-seed"].module, "bitpeer.seed.tap")

    def test_required(self):
        for name in ("host", "ns", "mbox"):
            argv = list(ZONE)
            del argv[argv.index(f"--{name}"):argv.index(f"--{name}") + 2]
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertEqual(str(error), f"--{name} is required")

    def test_bad_values_are_one_line(self):
        for argv, message in (
            (("--host", "not a name"), "--host must be a DNS name"),
            (("--ttl", "0"), "--ttl must be positive"),
            (("--dns-port", "70000"), "--dns-port must be within 0..65535"),
            (("--min-height", "-1"), "--min-height cannot be negative"),
            (("--dns-rate", "0"), "--dns-rate must be positive"),
            (("--dns-rate", "fast"), "--dns-rate: 'fast' is not a number"),
            (("--dns-burst", "-5"), "--dns-burst must be positive"),
            (("--interval", "60"), "--interval is bitpeer-crawl's"),
            (("--out", "x"), "--out is bitpeer-crawl's"),
            (("--retry-dead-every", "5"), "--retry-dead-every is bitpeer-crawl's"),
            (("--dead-after", "9"), "--dead-after is bitpeer-crawl's"),
        ):
            error = self.assertRaises(usage.UsageError, parse, *ZONE, *argv)
            self.assertTrue(str(error).startswith(message), str(error))
            self.assertNotIn("\n", str(error))


class SampleServiceTests(SynchronousTestCase):
    """The refresh of the served sample and the health line."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.clock = Clock()
        self.clock.advance(T0)
        self.watch = Watch(GoodRule(8333))
        self.sample = ServedSample(self.clock)
        self.ready = True
        self.service = SampleService(self.watch, self.sample, min_good=2, clock=self.clock,
                                     ready=lambda: self.ready)

    def lines(self, level):
        return [e for e in self.events
                if e.get("log_namespace", "").startswith("bitpeer.seed.service")
                and e["log_level"].name == level]

    def test_refreshes_and_says_so(self):
        self.watch.tested(NODE, True, handshake(NODE), T0 - 10)
        self.watch.tested(OTHER, False, None, T0 - 10)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertEqual(len(self.sample), 1)
        [info] = self.lines("info")
        self.assertEqual((info["known"], info["recent"], info["good"], info["networks"],
                          info["before"], info["served"]),
                         (2, 2, 1, "ipv4 1", "none yet", 1))
        self.assertEqual(len(self.lines("warn")), 1)  # 1 good, floor 2
        self.watch.tested(OTHER, True, handshake(OTHER), T0 + 100)
        self.clock.advance(300)
        self.assertEqual(len(self.sample), 2)
        self.assertEqual(self.lines("info")[-1]["before"], "1 addresses, 300 s old")
        self.assertEqual(len(self.lines("warn")), 1)

    def test_no_warning_before_the_first_crawl(self):
        self.ready = False
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertEqual(self.lines("warn"), [])


class SeederTests(TestCase):
    """The whole seeder on loopback: a simnet crawled, tested and served."""

    @defer.inlineCallbacks
    def test_serves_the_simnets_good_nodes(self):
        directory = scratch(self)
        path = os.path.join(directory, "seed.sqlite")
        options = parse(*ZONE, "--simnet", "40", "--db", path, "--dns-port", "0",
                        "--dns-interface", "127.0.0.1", "--concurrency", "50")
        app = seed_application(options, reactor)
        app.startService()
        self.addCleanup(lambda: app.running and app.stopService())
        yield wait_until(lambda: app.monitor.settled and len(app.sample.sample) > 0
                         and app.dns.ports, "the first crawl's nodes served")
        port = app.dns.ports[0].getHost().port
        resolver = client.Resolver(servers=[("127.0.0.1", port)], reactor=reactor)
        answers, authority, _ = yield resolver.lookupAddress("seed.example.org")
        self.assertTrue(answers)
        for record in answers:
            self.assertEqual(record.type, dns.A)
            self.assertTrue(record.payload.dottedQuad().startswith("127."))
            self.assertEqual(record.ttl, 3600)
        answers, _, _ = yield resolver.lookupAddress("x9.seed.example.org")
        self.assertTrue(answers)
        # Good: every simulated node that says NODE_NETWORK and 70001+
        # (the simnet has pruned and old ones too).
        expected = {node["address"] for node in app.simnet.truth["nodes"]
                    if node["services"] & NODE_NETWORK and node["version"] >= 70001}
        self.assertTrue(0 < len(expected) < 40)
        self.assertEqual({str(a) for a in app.monitor.watch.good}, expected)
        yield app.stopService()
        self.assertEqual(app.exit_code(), 0)
        # The windows reached the book, and the run ended there.
        db, _ = open_read_only(path)
        try:
            tested = [r for r in read_seed_state(db) if r.tries]
            statuses = [s for (s,) in db.execute("SELECT status FROM crawls")]
        finally:
            db.close()
        self.assertEqual(len(tested), 40)
        self.assertTrue(all(len(r.windows) == 5 for r in tested))
        self.assertEqual(statuses, ["seeded"])
