"""
``twistd bitpeer-crawl`` (bitpeer.crawl.tap): the plugins, the command line, the
service in this process (with a reactor whose stop() is only recorded), and
twistd itself in a subprocess: a whole --simnet crawl, bad options refused,
and a restart after SIGTERM / SIGKILL with the address book intact.

Nothing here asks the system resolver: a non-simnet crawl is given a
twisted.names server on 127.0.0.1 with --dns-server.
"""

import csv
import glob
import json
import os
import resource
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import types

import attr
from twisted.application.service import IServiceMaker
from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.names import common, dns, server
from twisted.names import error as dns_error
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer import runtime
from bitpeer.crawl import tap
from bitpeer.store.addrbook import AddressBookError
from bitpeer.crawl.discovery import ENOUGH_GOOD_ADDRESSES, DiscoveryOptions, discover
from bitpeer.crawl.export import CSV_FIELDS
from bitpeer.factory import NodeFactory
from bitpeer.protocol import PeerOptions
from bitpeer.networks import MAINNET, ONLYNET_CHOICES, REGTEST, TESTNET4, SeedName
from bitpeer.simnet import tap as simnet_tap
from bitpeer.simnet.network import SimNet
from bitpeer.crawl import service as crawl_service
from bitpeer.crawl.service import (
    EXIT_BOOK_INCOMPLETE,
    EXIT_FAILED,
    CrawlApplication,
    affordable_concurrency,
)
from bitpeer.crawl.crawler import DEFAULT_CONCURRENCY
from bitpeer.runtime import raise_open_file_limit
from bitpeer.crawl.tap import SIMNET, Options, _duration, crawl_application
from bitpeer.crawl.timeouts import LearningPolicy
from bitpeer.application import ExitStatusService
from bitpeer.store.service import book_path
from bitpeer.wire.address import NetworkAddress
from bitpeer.wire.text import unescape

from .helpers import NODE_KEYS, SUMMARY_KEYS, NoLookupResolver, connections_closed, wait_until


#: Short timeouts for crawls of a loopback network.
FAST = ["--connect-timeout", "0.5", "--handshake-timeout", "2", "--getaddr-idle-timeout", "1",
        "--getaddr-timeout", "3"]


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options


def tempdir(case):
    path = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, path, True)
    return path


class PluginTests(SynchronousTestCase):
    """The twistd plugins are found where twistd looks."""

    def test_plugins_listed(self):
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("bitpeer-crawl", makers)
        self.assertIn("bitpeer-simnet", makers)
        self.assertIs(makers["bitpeer-crawl"].options, tap.Options)
        self.assertIs(makers["bitpeer-simnet"].options, simnet_tap.Options)
        self.assertIs(makers["bitpeer-crawl"].makeService, tap.makeService)


class DurationTests(SynchronousTestCase):
    """Durations: seconds, or a number with s, m, h or d."""

    def test_units(self):
        for text, seconds in [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400),
                              ("7d", 604800), ("1.5h", 5400), ("0.5", 0.5), ("0", 0)]:
            self.assertEqual(_duration(text), seconds, text)

    def test_bad(self):
        for text in ["", "m", "-1", "-5m", "ten", "5x", "1e"]:
            with self.assertRaises(usage.UsageError, msg=text):
                _duration(text)

    def test_not_a_number(self):
        """nan passes a ``< 0`` check; it is no duration (``--interval nan`` crashes
        twistd after the first crawl: callLater refuses it)."""
        for text in ["nan", "nanm", "NaN"]:
            with self.assertRaises(usage.UsageError, msg=text):
                _duration(text)


class OptionsTests(SynchronousTestCase):
    """The command line is checked before anything starts."""

    def test_defaults(self):
        options = parse()
        self.assertIs(options["network"], MAINNET)
        self.assertEqual(options["interval"], 0)
        self.assertEqual(options["fixed-seeds"], "fallback")
        self.assertEqual(options["seeds"], [])
        crawl = options["crawl"]
        self.assertEqual((crawl.concurrency, crawl.getaddr_fraction, crawl.max_age,
                          crawl.connect_timeout, crawl.allow_private),
                         (DEFAULT_CONCURRENCY, 1.0, 86400.0, 5.0, False))
        self.assertEqual(crawl.timeout_learning, LearningPolicy())
        self.assertEqual(options["peer"].handshake_timeout, 20.0)

    def test_connect_timeout_learning(self):
        """--connect-timeout-floor sets the learnt timeout's floor;
        --fixed-connect-timeout learns nothing."""
        crawl = parse("--connect-timeout-floor", "0.5")["crawl"]
        self.assertEqual(crawl.timeout_learning, LearningPolicy(floor=0.5))
        crawl = parse("--fixed-connect-timeout", "--connect-timeout", "2")["crawl"]
        self.assertIsNone(crawl.timeout_learning)
        self.assertEqual(crawl.connect_timeout, 2.0)

    def test_bad_connect_timeout_floor(self):
        """A floor of 0 is refused in one line naming the option."""
        with self.assertRaises(usage.UsageError) as caught:
            parse("--connect-timeout-floor", "0")
        self.assertIn("--connect-timeout-floor", str(caught.exception))

    def test_concurrency_given(self):
        """An explicit --concurrency is kept, 0 is refused."""
        self.assertEqual(parse("--concurrency", "50")["crawl"].concurrency, 50)
        with self.assertRaises(usage.UsageError) as caught:
            parse("--concurrency", "0")
        self.assertIn("--concurrency", str(caught.exception))

    def test_durations_parsed(self):
        options = parse("--max-age", "24h", "--interval", "15m", "--connect-timeout", "2s",
                        "--handshake-timeout", "1m", "--getaddr-timeout", "45",
                        "--getaddr-idle-timeout", "0.5m")
        self.assertEqual(options["interval"], 900)
        self.assertEqual(options["crawl"].max_age, 86400)
        self.assertEqual(options["crawl"].connect_timeout, 2)
        peer = options["peer"]
        self.assertEqual((peer.handshake_timeout, peer.getaddr_timeout,
                          peer.getaddr_idle_timeout), (60, 45, 30))

    def test_messages_name_options_as_typed(self):
        """A bad value is named by the option the user typed, never by the
        field it ends up in, and says what is wrong with it."""
        for argv, message in [
            (["--connect-timeout", "0"], "--connect-timeout must be positive, got 0.0"),
            (["--getaddr-fraction", "2"], "--getaddr-fraction must be within 0..1, got 2.0"),
            (["--handshake-timeout", "0"], "--handshake-timeout must be positive"),
            (["--concurrency", "x"], "--concurrency: 'x' is not a whole number"),
            (["--getaddr-fraction", "nan"], "--getaddr-fraction: 'nan' is not a finite number"),
            (["--max-age", "5q"], "--max-age: '5q' is not a duration"),
            (["--transport", "epoll"],
             "--transport must be one of fast, twisted, got 'epoll'"),
        ]:
            with self.assertRaises(usage.UsageError, msg=argv) as caught:
                parse(*argv)
            self.assertTrue(str(caught.exception).startswith(message),
                            (argv, str(caught.exception)))

    def test_network(self):
        self.assertIs(parse("--network", "testnet4")["network"], TESTNET4)

    def test_transport(self):
        """--transport picks the crawl's dialler; bitpeer's own by default."""
        self.assertEqual(parse()["crawl"].transport, "fast")
        self.assertEqual(parse("--transport", "twisted")["crawl"].transport, "twisted")

    def test_simnet(self):
        options = parse("--simnet", "300", "--simnet-dead", "100")
        self.assertIs(options["network"], SIMNET)
        self.assertTrue(options["crawl"].allow_private)

    def test_seeds(self):
        directory = tempdir(self)
        path = os.path.join(directory, "seeds.txt")
        with open(path, "w") as stream:
            stream.write("# start here\n10.0.0.1\n\n10.0.0.2:18333  # comment\n")
        options = parse("--network", "testnet4", "--seed", "127.0.0.1", "--seed",
                        "[::1]:9999", "--seeds-file", path)
        self.assertEqual(options["seeds"], [
            NetworkAddress.parse("127.0.0.1:48333"), NetworkAddress.parse("[::1]:9999"),
            NetworkAddress.parse("10.0.0.1:48333"), NetworkAddress.parse("10.0.0.2:18333"),
        ])

    def assertRefused(self, *argv):
        with self.assertRaises(usage.UsageError, msg=argv):
            parse(*argv)

    def test_bad_network(self):
        self.assertRefused("--network", "moonnet")

    def test_bad_fixed_seeds(self):
        self.assertRefused("--fixed-seeds", "sometimes")

    def test_negative_durations(self):
        for option in ["--max-age", "--connect-timeout", "--handshake-timeout",
                       "--getaddr-timeout", "--getaddr-idle-timeout", "--interval"]:
            self.assertRefused(option, "-1")

    def test_zero_timeouts(self):
        for option in ["--connect-timeout", "--handshake-timeout", "--getaddr-timeout",
                       "--getaddr-idle-timeout"]:
            self.assertRefused(option, "0")

    def test_bad_seed(self):
        self.assertRefused("--seed", "not an address")
        self.assertRefused("--seed", "10.0.0.1:99999")

    def test_missing_seeds_file(self):
        self.assertRefused("--seeds-file", os.path.join(tempdir(self), "missing.txt"))

    def test_bad_seeds_file_line(self):
        path = os.path.join(tempdir(self), "seeds.txt")
        with open(path, "w") as stream:
            stream.write("10.0.0.1\nnonsense here\n")
        self.assertRefused("--seeds-file", path)

    def test_bad_numbers(self):
        self.assertRefused("--concurrency", "0")
        self.assertRefused("--concurrency", "many")
        self.assertRefused("--getaddr-fraction", "1.5")
        self.assertRefused("--getaddr-fraction", "-0.1")
        self.assertRefused("--simnet", "-1")
        self.assertRefused("--simnet-dead", "-1")

    def test_bad_dns_server(self):
        self.assertRefused("--dns-server", "dns.example")
        self.assertRefused("--dns-server", "127.0.0.1:53:53")

    def test_dns_server_port_zero(self):
        """make_resolver refuses port 0 once the crawl has started: refuse it here."""
        self.assertRefused("--dns-server", "127.0.0.1:0")

    def test_simnet_misbehaving_share(self):
        """SimNet refuses a share outside 0..1 once the crawl has started: refuse it here."""
        self.assertRefused("--simnet", "10", "--simnet-misbehaving", "1.5")

    def test_unknown_option(self):
        self.assertRefused("--no-such-option")

    def test_overlay_defaults(self):
        """No proxy, no bridge, CJDNS not reachable; per-network slots and
        timeouts at their documented defaults."""
        crawl = parse()["crawl"]
        self.assertEqual((crawl.onion_proxies, crawl.proxy, crawl.i2p_sam,
                          crawl.cjdns_reachable), ((), None, None, False))
        self.assertEqual((crawl.onion_concurrency, crawl.onion_timeout, crawl.i2p_concurrency,
                          crawl.i2p_timeout), (32, 20.0, 32, 30.0))

    def test_overlay_options(self):
        crawl = parse("--onion-proxy", "127.0.0.1:9050", "--onion-proxy", "[::1]:9150",
                      "--proxy", "127.0.0.1:1080", "--i2p-sam", "127.0.0.1:7656",
                      "--cjdns-reachable", "--onion-concurrency", "16", "--onion-timeout",
                      "1m", "--i2p-concurrency", "8", "--i2p-timeout", "45")["crawl"]
        self.assertEqual(crawl.onion_proxies, (("127.0.0.1", 9050), ("::1", 9150)))
        self.assertEqual((crawl.proxy, crawl.i2p_sam),
                         (("127.0.0.1", 1080), ("127.0.0.1", 7656)))
        self.assertTrue(crawl.cjdns_reachable)
        self.assertEqual((crawl.onion_concurrency, crawl.onion_timeout, crawl.i2p_concurrency,
                          crawl.i2p_timeout), (16, 60, 8, 45))

    def test_bad_overlay_values(self):
        """One line naming the option as typed."""
        for argv, message in [
            (["--onion-proxy", "127.0.0.1"], "--onion-proxy 127.0.0.1: '127.0.0.1' is not "
                                             "HOST:PORT"),
            (["--onion-proxy", "127.0.0.1:9050", "--onion-proxy", "127.0.0.1:9050"],
             "--onion-proxy names a proxy twice"),
            (["--proxy", "::1:1080"], "--proxy ::1:1080: '::1:1080' is ambiguous"),
            (["--proxy", "localhost:1080"], "--proxy localhost:1080: 'localhost' is not an "
                                            "IP address"),
            (["--onion-proxy", "x.onion:9050"], "--onion-proxy x.onion:9050: 'x.onion' is "
                                                "not an IP address"),
            (["--i2p-sam", "127.0.0.1:0"], "--i2p-sam 127.0.0.1:0: "),
            (["--onion-concurrency", "0"], "--onion-concurrency must be positive"),
            (["--i2p-concurrency", "x"], "--i2p-concurrency: 'x' is not a whole number"),
            (["--onion-timeout", "0"], "--onion-timeout must be positive"),
            (["--i2p-timeout", "-1"], "--i2p-timeout: '-1': a duration"),
            (["--simnet-onion", "-1"], "--simnet-onion cannot be negative"),
        ]:
            with self.assertRaises(usage.UsageError, msg=argv) as caught:
                parse(*argv)
            text = str(caught.exception)
            self.assertTrue(text.startswith(message), (argv, text))
            self.assertNotIn("\n", text)

    def test_cjdns_seeds(self):
        """With --cjdns-reachable an fc00::/8 seed is CJDNS (Core's
        MaybeFlipIPv6toCJDNS); without it, a unique-local IPv6 address."""
        for flags, network in [([], "ipv6"), (["--cjdns-reachable"], "cjdns")]:
            (seed,) = parse("--seed", "[fc00::1]:8333", *flags)["seeds"]
            self.assertEqual(seed.network_name, network)

    def test_simnet_overlays(self):
        """--simnet-onion and --simnet-i2p reach the SimNet's overlay knobs,
        only those asked for."""
        self.assertEqual(tap.simnet_overlays(parse("--simnet", "10")), {})
        options = parse("--simnet", "10", "--simnet-onion", "4", "--simnet-i2p", "2")
        self.assertEqual(tap.simnet_overlays(options), {"onion": 4, "i2p": 2})

    def test_simnet_routes(self):
        """With overlay nodes, the crawl is routed to the simnet's SOCKS5
        fronts and SAM bridge once it has started; without, not at all."""
        plain = crawl_application(parse("--simnet", "10"), reactor)
        self.assertIsNone(plain.crawl.simnet_routes)
        app = crawl_application(parse("--simnet", "10", "--simnet-onion", "3",
                                      "--simnet-i2p", "1"), reactor)
        app.simnet.simnet = types.SimpleNamespace(
            socks_fronts=lambda: [("127.0.0.1", 4001), ("127.0.0.1", 4002)],
            sam_bridge=lambda: ("127.0.0.1", 4003))
        self.assertEqual(app.crawl.simnet_routes(), {
            "onion_proxies": (("127.0.0.1", 4001), ("127.0.0.1", 4002)),
            "i2p_sam": ("127.0.0.1", 4003)})

    def test_affordable_concurrency(self):
        self.assertEqual(affordable_concurrency(1000, limit=1024), 960)
        self.assertEqual(affordable_concurrency(1000, limit=100000), 1000)
        self.assertEqual(affordable_concurrency(1000, limit=10), 1)
        # An in-process simnet holds the other end of every connection.
        self.assertEqual(affordable_concurrency(1000, limit=1024, ends=2), 480)


class FakeRlimit:
    """The resource module's open-file calls, on a (soft, hard) pair."""

    RLIMIT_NOFILE = resource.RLIMIT_NOFILE
    RLIM_INFINITY = resource.RLIM_INFINITY

    def __init__(self, soft, hard, refuse=False):
        self.limits, self.refuse = (soft, hard), refuse

    def getrlimit(self, which):
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which, limits):
        assert which == self.RLIMIT_NOFILE
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


class RaiseOpenFileLimitTests(SynchronousTestCase):
    """The soft limit is raised towards what the crawl wants, within the
    hard limit, and never lowered."""

    def test_raised_to_wanted(self):
        rlimit = FakeRlimit(1024, 524288)
        self.assertEqual(raise_open_file_limit(4160, rlimit), 4160)
        self.assertEqual(rlimit.limits, (4160, 524288))

    def test_capped_by_the_hard_limit(self):
        rlimit = FakeRlimit(1024, 2048)
        self.assertEqual(raise_open_file_limit(4160, rlimit), 2048)
        self.assertEqual(rlimit.limits, (2048, 2048))

    def test_unlimited_hard_limit(self):
        rlimit = FakeRlimit(1024, resource.RLIM_INFINITY)
        self.assertEqual(raise_open_file_limit(5000, rlimit), 5000)

    def test_never_lowered(self):
        rlimit = FakeRlimit(20000, 20000)
        self.assertEqual(raise_open_file_limit(4160, rlimit), 20000)
        self.assertEqual(rlimit.limits, (20000, 20000))

    def test_refused_keeps_the_old_limit(self):
        rlimit = FakeRlimit(1024, 524288, refuse=True)
        self.assertEqual(raise_open_file_limit(4160, rlimit), 1024)


# -- the service in this process --------------------------------------------------------


class RecordingReactor:
    """
    The global reactor, except stop(): the crawl loop stops its reactor when
    a crawl is done, which here would end the test run.  ``stopped`` fires
    when it is called.  "Before shutdown" triggers are kept here, in the
    order added, for shut_down() to fire.
    """

    def __init__(self):
        self.stops = 0
        self.stopped = defer.Deferred()
        self.shutdown_triggers = []

    def stop(self):
        self.stops += 1
        if not self.stopped.called:
            self.stopped.callback(None)

    def addSystemEventTrigger(self, phase, event, f, *args, **kwargs):
        if (phase, event) != ("before", "shutdown"):
            return reactor.addSystemEventTrigger(phase, event, f, *args, **kwargs)
        self.shutdown_triggers.append((f, args, kwargs))
        return ("kept", len(self.shutdown_triggers) - 1)

    def removeSystemEventTrigger(self, trigger):
        if isinstance(trigger, tuple) and trigger[0] == "kept":
            self.shutdown_triggers[trigger[1]] = None
        else:
            reactor.removeSystemEventTrigger(trigger)

    def shut_down(self):
        """Fire the "before shutdown" triggers in order, as a reactor that
        begins to shut down does: a Deferred of them all."""
        return defer.gatherResults([
            defer.maybeDeferred(f, *args, **kwargs)
            for f, args, kwargs in filter(None, self.shutdown_triggers)
        ])

    def __getattr__(self, name):
        return getattr(reactor, name)


class _Zone(common.ResolverBase):
    """A DNS authority: A records from ``records``, an empty answer for AAAA,
    NXDOMAIN for other names.  Records what is asked."""

    def __init__(self, records):
        common.ResolverBase.__init__(self)
        self.records = records
        self.queries = []

    def _lookup(self, name, cls, type, timeout):
        name = name.decode("ascii").lower().rstrip(".")
        self.queries.append((name, type))
        if name not in self.records:
            return defer.fail(dns_error.AuthoritativeDomainError(name))
        answers = []
        if type == dns.A:
            answers = [dns.RRHeader(name.encode("ascii"), dns.A, dns.IN, 60,
                                    dns.Record_A(text, 60), auth=True)
                       for text in self.records[name]]
        return defer.succeed((answers, [], []))


def db_rows(path, query, *args):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute(query, args).fetchall()
    finally:
        connection.close()


class ServiceTests(TestCase):
    """CrawlApplication in this process, against a SimNet (or a local DNS server)."""

    def setUp(self):
        self.base = tempdir(self)
        self.db = os.path.join(self.base, "book.sqlite")
        self.out = os.path.join(self.base, "out")

    def service(self, *argv):
        options = parse("--db", self.db, "--out", self.out, *argv)
        self.reactor = RecordingReactor()
        return crawl_application(options, self.reactor)

    @defer.inlineCallbacks
    def settle(self, service):
        """Stop the service and wait until every connection it made is gone."""
        yield service.stopService()
        yield connections_closed()

    @defer.inlineCallbacks
    def test_last_flush_failing_marks_the_book_incomplete(self):
        """If the address book's last flush fails when the service stops,
        what it held is lost from the book (the snapshot has it): one error
        line, no traceback, and exit status EXIT_BOOK_INCOMPLETE."""
        service = self.service("--simnet", "20", "--db", self.db, *FAST)
        service.startService()
        yield self.reactor.stopped

        real_close = service.books.book.close

        def broken_close():
            # The book really closes (no thread left behind), then says the
            # last flush failed.
            return real_close().addCallback(
                lambda _: Failure(AddressBookError("disk full")))

        service.books.book.close = broken_close
        yield service.stopService()
        self.assertEqual((service.outcome.failed, service.exit_code()),
                         (False, EXIT_BOOK_INCOMPLETE))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(len(glob.glob(os.path.join(self.out, "simnet-2*Z.json"))), 1)
        yield connections_closed()

    @defer.inlineCallbacks
    def test_overlay_crawl_finds_every_network(self):
        """--simnet with onion and I2P nodes: the crawl dials them through
        the simnet's SOCKS5 front and SAM bridge and finds every node of
        every network, with nothing dead taken for reachable."""
        service = self.service("--simnet", "40", "--simnet-dead", "10",
                               "--simnet-onion", "12", "--simnet-i2p", "6", *FAST,
                               "--onion-timeout", "10", "--i2p-timeout", "10")
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertFalse(service.outcome.failed)
        (json_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.json"))
        with open(json_path) as stream:
            document = json.load(stream)
        by_network = document["summary"]["by_network"]
        self.assertEqual({name: by_network[name]["reachable"]
                          for name in ("ipv4", "onion", "i2p")},
                         {"ipv4": 40, "onion": 12, "i2p": 6})
        reachable = {node["address"] for node in document["nodes"]}
        truth = service.simnet.truth
        expected = {n["address"] for n in truth["nodes"] if n["expect"] == "reachable"}
        self.assertEqual(reachable, expected)

    @defer.inlineCallbacks
    def test_one_crawl(self):
        """Without --interval: one crawl, its snapshot and DB rows, then reactor.stop()."""
        service = self.service("--simnet", "60", "--simnet-dead", "20", *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertFalse(service.outcome.failed)
        self.assertEqual(self.reactor.stops, 1)
        (json_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.json"))
        (csv_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.csv"))
        with open(json_path) as stream:
            document = json.load(stream)
        self.assertEqual(document["summary"]["outcomes"],
                         {"reachable": 60, "unreachable": 20, "not_dialled": 3})
        with open(csv_path, newline="") as stream:
            self.assertEqual(len(list(csv.DictReader(stream))), 60)
        ((crawl_id, network, finished, params, summary),) = db_rows(
            self.db, "SELECT id, network, finished, params, summary FROM crawls")
        self.assertEqual(network, "simnet")
        self.assertIsNotNone(finished)
        self.assertEqual(json.loads(params)["simnet"], 60)
        self.assertEqual(json.loads(summary)["outcomes"], document["summary"]["outcomes"])
        observations = db_rows(self.db, "SELECT outcome, count(*) FROM observations "
                                        "WHERE crawl_id = ? GROUP BY outcome", crawl_id)
        self.assertEqual(dict(observations), {"reachable": 60, "unreachable": 20})

    @defer.inlineCallbacks
    def test_encoding_ahead_fails(self):
        """
        If encoding nodes ahead of the snapshot fails (a bug), that is
        logged once and the crawl goes on: its snapshot is written whole,
        and the run does not fail.  (With 20 dead addresses, a 0.5 s
        connect timeout outlasts the encoding's 50 ms ticks.)
        """
        calls = []

        def broken(crawler, encoded):
            calls.append(len(crawler.pending))
            if not crawler.pending:
                raise RuntimeError("bug in encoding ahead")

        self.patch(crawl_service, "_encode_ahead", broken)
        service = self.service("--simnet", "60", "--simnet-dead", "20", *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(service.outcome.failed)
        self.assertIn(0, calls)
        (csv_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.csv"))
        with open(csv_path, newline="") as stream:
            self.assertEqual(len(list(csv.DictReader(stream))), 60)

    @defer.inlineCallbacks
    def test_interval_repeats(self):
        """With --interval: crawl, wait, crawl again from the book; never reactor.stop()."""
        waits = []
        service = self.service("--simnet", "40", "--interval", "1.1", *FAST)

        def wait(clock, delay, *args, **kwargs):
            waits.append(delay)
            if len(waits) == 2:
                # Stop while the service waits for its third crawl.
                self.stopping = service.stopService()
                delay = 0
            return task.deferLater(clock, delay, *args, **kwargs)

        self.patch(crawl_service, "deferLater", wait)
        service.startService()
        yield service.crawl.whenDone()
        yield self.stopping
        yield connections_closed()
        self.assertFalse(service.outcome.failed)
        self.assertEqual(self.reactor.stops, 0)
        # The next crawl starts 1.1 s after the last one started.
        self.assertEqual(len(waits), 2)
        self.assertTrue(all(0 <= wait < 1.1 for wait in waits), waits)
        crawls = db_rows(self.db, "SELECT id, finished FROM crawls ORDER BY id")
        self.assertEqual([c[0] for c in crawls], [1, 2])
        self.assertTrue(all(finished is not None for _, finished in crawls))
        self.assertEqual(len(glob.glob(os.path.join(self.out, "simnet-2*Z.json"))), 2)
        # The second crawl started from the book: it dialled everything the first knew.
        dialled = db_rows(self.db, "SELECT crawl_id, count(*) FROM observations "
                                   "GROUP BY crawl_id ORDER BY crawl_id")
        self.assertEqual(dialled, [(1, 40), (2, 40)])

    @defer.inlineCallbacks
    def test_dns_seeds_from_a_local_server(self):
        """A non-simnet network asks its DNS seeds of --dns-server (here, 127.0.0.1)."""
        zone, dns_server = self.local_dns(
            {"x9.seed.testnet4.bitcoin.sprovoost.nl": ["127.0.0.1"]})
        service = self.service("--network", "testnet4", "--dns-server", dns_server,
                               "--fixed-seeds", "never", *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertFalse(service.outcome.failed)
        self.assertIn(("x9.seed.testnet4.bitcoin.sprovoost.nl", dns.A), zone.queries)
        self.assertIn(("x9.seed.testnet4.wiz.biz", dns.A), zone.queries)
        # The one address DNS gave was dialled (whatever, if anything, listens there).
        (observed,) = db_rows(self.db, "SELECT host, port FROM observations")
        self.assertEqual(observed, (bytes([127, 0, 0, 1]), 48333))
        self.assertEqual(db_rows(self.db, "SELECT network FROM crawls"), [("testnet4",)])
        self.assertEqual(len(glob.glob(os.path.join(self.out, "testnet4-2*Z.json"))), 1)

    def local_dns(self, records):
        """A twisted.names server on 127.0.0.1; its zone and its --dns-server text."""
        zone = _Zone(records)
        factory = server.DNSServerFactory(authorities=[zone])
        factory.noisy = False
        port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return zone, f"127.0.0.1:{port.getHost().port}"

    @defer.inlineCallbacks
    def test_book_of_another_network_not_dialled(self):
        """
        A book holds one network's addresses: a testnet4 crawl given the
        database of a simnet crawl refuses to start (saying why) rather than
        dial simnet addresses.
        """
        first = self.service("--simnet", "30", *FAST)
        first.startService()
        yield self.reactor.stopped
        yield self.settle(first)
        _, dns_server = self.local_dns({})
        second = self.service("--network", "testnet4", "--dns-server", dns_server,
                              "--fixed-seeds", "never", *FAST)
        second.startService()
        yield self.reactor.stopped
        yield self.settle(second)
        self.assertTrue(second.outcome.failed)
        self.assertEqual(db_rows(self.db, "SELECT network FROM crawls"), [("simnet",)])
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM observations WHERE crawl_id = 2"),
                         [(0,)])

    def warnings(self):
        """The service's warnings so far (collected by ``watch_log``)."""
        return [e["log_format"].format(**e) for e in self.events
                if e.get("log_level") == LogLevel.warn]

    def watch_log(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    @defer.inlineCallbacks
    def test_unroutable_gossip_explained(self):
        """
        Crawling a loopback network without --allow-private finds only the
        seeds (gossip of loopback addresses is dropped, as Core drops it):
        a warning says so, with the option that changes it.
        """
        simnet = SimNet(reactor, 30, 0, network=REGTEST)
        simnet.start()
        self.addCleanup(simnet.stop)
        self.watch_log()
        service = self.service("--network", "regtest", "--seed", str(simnet.seeds()[0]),
                               *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        (warning,) = [w for w in self.warnings() if "unroutable" in w]
        self.assertIn("add --allow-private", warning)
        self.assertRegex(warning, r"^\d+ gossiped addresses were private")

    @defer.inlineCallbacks
    def test_nothing_to_start_from(self):
        """No seed, no DNS seed, no fixed seed, an empty book: a warning
        says what to give, and the (empty) crawl still ends cleanly."""
        self.watch_log()
        service = self.service("--network", "regtest", *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertFalse(service.outcome.failed)
        (warning,) = [w for w in self.warnings() if "no address to start from" in w]
        self.assertIn("--seed HOST[:PORT]", warning)

    @defer.inlineCallbacks
    def test_hostile_user_agents_end_to_end(self):
        """
        Nodes whose user agents are not UTF-8, hold line breaks, NUL, a
        backslash or U+2028 (the issue's ``ff fe c3 28`` among them): the
        crawl succeeds, the book keeps the raw bytes, the JSON and CSV hold
        the escaped form on one line each, and unescaping it gives the
        bytes back.
        """
        agents = [b"\xff\xfe\xc3\x28", b"/evil\n\x00agent\\x41/", "/\u2028ok/".encode(),
                  b"/Satoshi:29.0.0/"]
        seeds = []
        for agent in agents:
            factory = NodeFactory(reactor, REGTEST, PeerOptions(
                user_agent=agent.decode("utf-8", "surrogateescape")))
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")
            self.addCleanup(port.stopListening)
            seeds += ["--seed", f"127.0.0.1:{port.getHost().port}"]
        service = self.service("--network", "regtest", "--dnsseed", "0", *seeds, *FAST)
        service.startService()
        yield self.reactor.stopped
        yield self.settle(service)
        self.assertEqual((service.outcome.failed, service.exit_code()), (False, 0))
        stored = db_rows(self.db, "SELECT coalesce(user_agent_raw, CAST(user_agent AS BLOB)), "
                                  "user_agent FROM observations")
        self.assertEqual(sorted(raw for raw, _ in stored), sorted(agents))
        for raw, text in stored:
            self.assertEqual(unescape(text), raw)
        (json_path,) = glob.glob(os.path.join(self.out, "regtest-2*Z.json"))
        with open(json_path, "rb") as stream:
            data = stream.read()
        data.decode("utf-8")  # strict: valid UTF-8 (ASCII in fact)
        node_lines = [line for line in data.splitlines() if b'"user_agent"' in line]
        self.assertEqual(len(node_lines), len(agents))
        shown = [json.loads(line.rstrip(b",").decode())["user_agent"] for line in node_lines]
        self.assertEqual(sorted(unescape(text) for text in shown), sorted(agents))
        with open(json_path[:-5] + ".csv", encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual(sorted(unescape(row["user_agent"]) for row in rows), sorted(agents))

    @defer.inlineCallbacks
    def test_simnet_does_not_inherit_another_simnets_addresses(self):
        """A --simnet crawl given a --db that holds an earlier simnet's
        addresses dials none of them: that network is gone."""
        for seed in ("1", "2"):
            service = self.service("--simnet", "30", "--simnet-seed", seed, *FAST)
            service.startService()
            yield self.reactor.stopped
            yield self.settle(service)
        self.assertEqual(db_rows(self.db, "SELECT crawl_id, outcome, count(*) FROM observations "
                                          "GROUP BY crawl_id, outcome"),
                         [(1, "reachable", 30), (2, "reachable", 30)])

    def test_default_book_per_network(self):
        """Without --db, each network gets its own book file."""
        self.assertEqual(parse()["db"], "bitpeer.sqlite")
        self.assertEqual(parse("--network", "testnet4")["db"], "bitpeer-testnet4.sqlite")
        # A simulated network lives as long as its crawl: so does its book.
        self.assertIsNone(parse("--simnet", "10")["db"])
        self.assertEqual(book_path(None), ":memory:")

    @defer.inlineCallbacks
    def test_shutdown_while_nodes_are_asked(self):
        """
        twistd stops the service from a shutdown trigger added after the
        service started, so after the address book opened.  Nodes still
        being asked for addresses then are recorded in the book, as
        reachable, and nothing is logged as an error: the book is not
        closed under the crawl by a trigger of its own.
        """
        service = self.service("--simnet", "40", *FAST)

        def slow_simnet(*args, **kwargs):
            # The answers would come after the getaddr timeout: the three
            # seeds, all asked, are still being asked when the reactor
            # shuts down.
            simnet = SimNet(*args, **kwargs)
            simnet.response_delay = 60
            return simnet

        self.patch(tap, "SimNet", slow_simnet)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        # As twistd's startApplication does once the service has started.
        self.reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
        yield wait_until(lambda: service.crawl.crawler is not None and sum(
            peer.info is not None for peer in service.crawl.crawler.connected.values()
        ) >= 3, "three nodes to be asked")
        yield self.reactor.shut_down()
        yield connections_closed()
        errors = [e.getErrorMessage() for e in self.flushLoggedErrors()]
        self.assertEqual((service.outcome.failed, errors), (False, []))
        asked = db_rows(self.db, "SELECT count(*) FROM observations "
                                 "WHERE outcome = 'reachable' AND reason IS NOT NULL")
        self.assertEqual(asked, [(3,)])

    @defer.inlineCallbacks
    def test_stop_midway(self):
        """
        Stopping the service mid-crawl (SIGTERM) is a normal shutdown: no
        "crawl failed", no error logged, and the crawl is left unfinished in
        the database (it was not completed).
        """
        # Blackholed dials with an hour to time out: once every node has
        # answered, the crawl is midway for as long as the test needs.
        service = self.service("--simnet", "60", "--simnet-dead", "60", *FAST,
                               "--connect-timeout", "3600")
        service.startService()
        yield wait_until(lambda: service.crawl.crawler is not None
                         and len(service.crawl.crawler.reachable) == 60
                         and service.crawl.crawler.in_flight, "the crawl to get midway")
        yield self.settle(service)
        yield service.crawl.whenDone()
        errors = [e.getErrorMessage() for e in self.flushLoggedErrors()]
        self.assertEqual((service.outcome.failed, errors), (False, []))
        self.assertEqual(db_rows(self.db, "SELECT id, finished FROM crawls"), [(1, None)])


# -- twistd in a subprocess ---------------------------------------------------------------

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; "
                                "sys.argv[0] = 'twistd'; run()"]


def twistd(cwd, *argv, **kwargs):
    """Popen of ``twistd -n --pidfile= ARGV`` in ``cwd``, output to cwd/twistd-N.log."""
    number = len(glob.glob(os.path.join(cwd, "twistd-*.log")))
    log = open(os.path.join(cwd, f"twistd-{number}.log"), "wb")
    try:
        return subprocess.Popen(TWISTD + ["-n", "--pidfile="] + list(argv), cwd=cwd,
                                stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                                **kwargs)
    finally:
        log.close()


def finish(process, timeout=60):
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def read_log(cwd, number):
    with open(os.path.join(cwd, f"twistd-{number}.log"), encoding="utf-8",
              errors="replace") as stream:
        return stream.read()


class ExitTests(SynchronousTestCase):
    """The exit status makeService arranges under twistd (ExitStatusService
    with CrawlApplication.exit_code), with at-exit hooks and os._exit recorded."""

    def setUp(self):
        self.hooks, self.exits = [], []
        self.patch(tap, "tune_garbage_collector", lambda: None)
        top = tap.makeService(parse("--simnet", "10"))
        self.status, self.crawl = list(top)
        self.status._at_exit = self.hooks.append
        self.status._exit = self.exits.append

    def test_status_service_first(self):
        """Started before the crawl's services, so a crawl that cannot
        start still ends with its status."""
        self.assertIsInstance(self.status, ExitStatusService)
        self.assertIsInstance(self.crawl, CrawlApplication)
        self.assertEqual(self.status.code, self.crawl.exit_code)

    def test_not_started(self):
        """twistd gave up before starting the services (a bad --logfile,
        say): no hook, so twistd's own status stands."""
        self.assertEqual(self.hooks, [])

    def test_status_is_the_crawls(self):
        self.status.startService()
        self.status.startService()
        (hook,) = self.hooks
        hook()
        self.crawl.books.lost = True
        hook()
        self.crawl.outcome.book_incomplete = True
        hook()
        self.crawl.outcome.failed = True
        hook()
        self.assertEqual(self.exits, [0, EXIT_BOOK_INCOMPLETE, EXIT_BOOK_INCOMPLETE,
                                      EXIT_FAILED])

    def test_uncaught_exception(self):
        """An exception that ended the process is a failure, whatever the crawl says."""
        had, before = hasattr(sys, "last_value"), getattr(sys, "last_value", None)
        sys.last_value = RuntimeError("bug")
        self.addCleanup(lambda: setattr(sys, "last_value", before) if had
                        else delattr(sys, "last_value"))
        self.status.startService()
        self.hooks[0]()
        self.assertEqual(self.exits, [1])


class EncodeAheadTests(SynchronousTestCase):
    """tap._encode_ahead: nodes are encoded for the snapshot only once
    nothing is left to dial, a bounded number a turn."""

    def test_waits_for_an_empty_pending_list(self):
        reachable = {NetworkAddress.parse(f"198.51.100.{i}:8333"): object() for i in range(3)}
        crawler = types.SimpleNamespace(pending_count=1, reachable=reachable)
        calls = []
        encoded = types.SimpleNamespace(catch_up=lambda *args: calls.append(args))
        crawl_service._encode_ahead(crawler, encoded)
        self.assertEqual(calls, [])
        crawler.pending_count = 0
        crawl_service._encode_ahead(crawler, encoded)
        self.assertEqual(calls, [(reachable, crawl_service.ENCODE_AHEAD_BATCH)])


class GarbageCollectorTests(SynchronousTestCase):
    """runtime.tune_garbage_collector, on a stand-in for the gc module (the
    test process's own collector is left alone)."""

    def test_freezes_then_raises_the_thresholds(self):
        calls = []
        fake = types.SimpleNamespace(
            freeze=lambda: calls.append("freeze"),
            set_threshold=lambda *limits: calls.append(limits),
        )
        self.patch(runtime, "gc", fake)
        runtime.tune_garbage_collector()
        self.assertEqual(calls, ["freeze", (200_000, 20, 50)])


class TwistdTests(SynchronousTestCase):
    """``twistd -n bitpeer-crawl`` as an operator runs it."""

    def setUp(self):
        self.cwd = tempdir(self)
        self.db = os.path.join(self.cwd, "book.sqlite")
        self.out = os.path.join(self.cwd, "out")

    def test_simnet_crawl_on_twisted_transport(self):
        """--transport twisted: the same crawl through Twisted's endpoints."""
        process = twistd(self.cwd, "bitpeer-crawl", "--simnet", "300", "--simnet-dead", "30",
                         "--transport", "twisted", "--out", self.out)
        self.assertEqual(finish(process), 0, read_log(self.cwd, 0))
        (json_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.json"))
        with open(json_path) as stream:
            summary = json.load(stream)["summary"]
        self.assertEqual(summary["outcomes"],
                         {"reachable": 300, "unreachable": 30, "not_dialled": 15})

    def test_simnet_crawl(self):
        process = twistd(self.cwd, "bitpeer-crawl", "--simnet", "300", "--db", self.db,
                         "--out", self.out)
        self.assertEqual(finish(process), 0, read_log(self.cwd, 0))
        # The process ends at once after twistd's shutdown (tap.exit_now):
        # its last log line is written all the same.
        self.assertTrue(read_log(self.cwd, 0).rstrip().endswith("Server Shut Down."))
        (json_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.json"))
        (csv_path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.csv"))
        self.assertEqual(json_path[:-5], csv_path[:-4])
        self.assertRegex(os.path.basename(json_path), r"^simnet-\d{8}T\d{6}Z\.json$")
        with open(json_path) as stream:
            document = json.load(stream)
        summary = document["summary"]
        self.assertTrue(SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary))
        self.assertEqual(summary["outcomes"],
                         {"reachable": 300, "unreachable": 0, "not_dialled": 15})
        self.assertEqual(summary["network_types"],
                         {"ipv4": 300, "onion": 5, "i2p": 5, "cjdns": 5})
        self.assertEqual(sum(summary["protocol_versions"].values()), 300)
        self.assertGreater(len(summary["discovered_over_time"]), 0)
        self.assertEqual(len(document["nodes"]), 300)
        for record in document["nodes"]:
            self.assertTrue(NODE_KEYS <= set(record), NODE_KEYS - set(record))
            self.assertEqual(record["getaddr"], "answered")
        with open(csv_path, newline="") as stream:
            rows = list(csv.reader(stream))
        self.assertEqual(tuple(rows[0]), CSV_FIELDS)
        self.assertEqual(len(rows) - 1, summary["outcomes"]["reachable"])
        crawls = db_rows(self.db, "SELECT finished IS NOT NULL FROM crawls")
        self.assertEqual(crawls, [(1,)])
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM observations"), [(300,)])
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM addresses"), [(315,)])

    def test_failed_crawl_exits_non_zero(self):
        """twistd exits 0 once its reactor stops; a crawl that failed must not."""
        with open(self.db, "w") as stream:
            stream.write("this is not an address book\n" * 20)
        process = twistd(self.cwd, "bitpeer-crawl", "--simnet", "10", "--db", self.db,
                         "--out", self.out)
        self.assertEqual(finish(process), 1)
        log = read_log(self.cwd, 0)
        self.assertIn("the crawl cannot run: ", log)
        self.assertIn("is not a SQLite database", log)
        self.assertNotIn("Traceback", log)
        self.assertFalse(os.path.exists(self.out))

    def test_bad_option_refused_before_start(self):
        process = twistd(self.cwd, "bitpeer-crawl", "--network", "moonnet")
        self.assertNotEqual(finish(process), 0)
        output = read_log(self.cwd, 0)
        self.assertIn("unknown network 'moonnet'", output)
        self.assertIn("Usage:", output)
        self.assertIn("--simnet", output)
        self.assertEqual(sorted(os.listdir(self.cwd)), ["twistd-0.log"])

    def simnet(self, *argv):
        """A separate ``twistd bitpeer-simnet`` in cwd (seeds.txt, stats.json); its
        process, once its seeds are written."""
        process = twistd(self.cwd, "bitpeer-simnet", "--stats", "stats.json",
                         "--stats-interval", "0.2", *argv)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        seeds = os.path.join(self.cwd, "seeds.txt")
        started = time.monotonic()
        while not os.path.exists(seeds):
            self.assertIsNone(process.poll(), "the simnet ended:\n" + read_log(self.cwd, 0))
            self.assertLess(time.monotonic() - started, 30, "the simnet did not start")
            time.sleep(0.05)
        return process

    def crawl(self, *argv):
        """A crawl of the separate simnet."""
        return twistd(self.cwd, "bitpeer-crawl", "--network", "regtest", "--allow-private",
                      "--seeds-file", "seeds.txt", "--db", self.db, "--out", self.out,
                      "--concurrency", "20", *argv)

    def kill_midway(self, sig, after):
        """Crawl the simnet, kill the crawler with ``sig`` once the book holds
        ``after`` verdicts, and return its exit status."""
        process = self.crawl("--connect-timeout", "3")
        started = time.monotonic()
        try:
            while True:
                self.assertIsNone(process.poll(), "twistd ended early:\n" + read_log(self.cwd, 1))
                self.assertLess(time.monotonic() - started, 30, "no observations")
                time.sleep(0.02)
                try:
                    rows = db_rows(self.db, "SELECT count(*) FROM observations")
                except sqlite3.Error:
                    continue
                if rows[0][0] >= after:
                    break
            process.send_signal(sig)
        finally:
            status = finish(process)
        self.assertEqual(db_rows(self.db, "PRAGMA integrity_check"), [("ok",)])
        self.assertEqual(db_rows(self.db, "SELECT id, finished FROM crawls"), [(1, None)],
                         "killed too late: the crawl was finished")
        return status

    def resume(self, slack):
        """
        Crawl again to completion: the same crawl goes on and ends with its
        snapshot, every address holds exactly one verdict in it (none
        settled before the kill was dialled again), and the simnet's nodes
        were connected to about once: at most ``slack`` times more in all.
        """
        process = self.crawl("--connect-timeout", "0.5")
        self.assertEqual(finish(process), 0, read_log(self.cwd, 2))
        self.assertIn("resuming it", read_log(self.cwd, 2))
        self.assertEqual(db_rows(self.db, "PRAGMA integrity_check"), [("ok",)])
        self.assertEqual(db_rows(self.db, "SELECT id, finished IS NOT NULL FROM crawls"),
                         [(1, 1)])
        per_address = db_rows(self.db, "SELECT count(*) FROM observations "
                                       "GROUP BY network, host, port")
        self.assertEqual({n for (n,) in per_address}, {1})
        self.assertEqual(len(per_address), 600)
        (snapshot,) = glob.glob(os.path.join(self.out, "regtest-2*Z.json"))
        with open(snapshot) as stream:
            summary = json.load(stream)["summary"]
        self.assertEqual(summary["outcomes"]["reachable"], 300)
        self.assertEqual(summary["outcomes"]["unreachable"], 300)
        self.simnet_process.send_signal(signal.SIGTERM)
        finish(self.simnet_process)
        with open(os.path.join(self.cwd, "stats.json")) as stream:
            stats = json.load(stream)
        connections = sum(kind.get("connections", 0) for kind in stats["by_kind"].values())
        self.assertGreaterEqual(connections, 300)
        self.assertLessEqual(connections, 300 + slack)

    def start_simnet(self):
        self.simnet_process = self.simnet("--nodes", "300", "--dead", "300",
                                          "--latency-ms", "5")

    def test_resume_after_sigterm(self):
        """SIGTERM: every verdict reached is kept, so only the dials cut short
        (at most --concurrency) are made again."""
        self.start_simnet()
        status = self.kill_midway(signal.SIGTERM, after=random.randint(1, 250))
        # twistd shuts down and ends with the signal it was sent.
        self.assertIn(status, (0, -signal.SIGTERM))
        self.resume(slack=20)

    def test_resume_after_sigkill(self):
        """
        SIGKILL at a random point: verdicts not yet flushed (up to a second
        of them) are lost with the dials in flight, and only those are
        made again: far fewer than a second crawl.
        """
        self.start_simnet()
        status = self.kill_midway(signal.SIGKILL, after=random.randint(1, 250))
        self.assertEqual(status, -signal.SIGKILL)
        self.resume(slack=150)

    def test_fresh_starts_over(self):
        """--fresh closes the unfinished crawl as abandoned and crawls anew."""
        self.start_simnet()
        self.kill_midway(signal.SIGTERM, after=1)
        process = self.crawl("--connect-timeout", "0.5", "--fresh")
        self.assertEqual(finish(process), 0, read_log(self.cwd, 2))
        self.assertEqual(db_rows(self.db, "SELECT id, status, end_reason FROM crawls"),
                         [(1, "abandoned", "--fresh"), (2, "finished", None)])
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM observations "
                                          "WHERE crawl_id = 2"), [(600,)])

    def test_readme_separate_simnet_recipe(self):
        """The README's script for crawling a separate simnet runs as written
        and finds every node of it."""
        with open(os.path.join(os.path.dirname(__file__), "..", "README.rst")) as stream:
            readme = stream.read()
        start = readme.index("    twistd -n --pidfile= bitpeer-simnet")
        end = readme.index("    kill %1\n", start) + len("    kill %1\n")
        script = "".join(line[4:] + "\n" for line in readme[start:end].splitlines())
        # Should the crawl fail, the simnet must not outlive the test.
        script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                   + os.environ.get("PATH", ""))
        done = subprocess.run(["bash", "-e", "-c", script], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        (snapshot,) = glob.glob(os.path.join(self.cwd, "simnet-snapshots", "regtest-2*Z.json"))
        with open(snapshot) as stream:
            outcomes = json.load(stream)["summary"]["outcomes"]
        self.assertEqual((outcomes["reachable"], outcomes["unreachable"]), (1000, 2000))


# -- discovery under the operator's control ------------------------------------------------


class DiscoveryOptionsTests(SynchronousTestCase):
    """--dnsseed, --forcednsseed, --dns, --onlynet and host-name seeds on the command line."""

    def assertRefusedWith(self, message, *argv):
        error = self.assertRaises(usage.UsageError, parse, *argv)
        self.assertEqual(str(error), message)
        self.assertNotIn("\n", str(error))

    def test_defaults(self):
        options = parse()
        self.assertEqual(options["discovery"], DiscoveryOptions())
        self.assertEqual(options["crawl"].networks, set(ONLYNET_CHOICES))

    def test_dnsseed(self):
        self.assertFalse(parse("--dnsseed", "0")["discovery"].dnsseed)
        self.assertTrue(parse("--dnsseed", "1")["discovery"].dnsseed)
        for bad in ("2", "no", "", "true"):
            self.assertRefusedWith(f"--dnsseed is 0 or 1, not {bad!r}", "--dnsseed", bad)

    def test_forcednsseed(self):
        self.assertTrue(parse("--forcednsseed")["discovery"].forcednsseed)
        self.assertRefusedWith("--forcednsseed cannot force DNS seeds that --dnsseed 0 turns "
                               "off: give one or the other", "--forcednsseed", "--dnsseed", "0")

    def test_onlynet(self):
        options = parse("--onlynet", "ipv4", "--onlynet", "tor")
        self.assertEqual(options["discovery"].networks, {"ipv4", "onion"})
        self.assertEqual(options["crawl"].networks, {"ipv4", "onion"})
        self.assertRefusedWith("--onlynet: unknown network 'ipv5'; choose among ipv4, ipv6, "
                               "onion, i2p, cjdns", "--onlynet", "ipv5")

    def test_host_names_are_promises(self):
        """Names are kept as SeedNames: nothing is looked up while options are read."""
        self.patch(tap, "make_resolver", lambda *a, **k: self.fail("resolver built"))
        options = parse("--network", "regtest", "--seed", "node1", "--seed",
                        "Seed.Example.ORG:18445", "--seed", "10.0.0.1")
        self.assertEqual(options["seeds"], [
            SeedName("node1", 18444), SeedName("seed.example.org", 18445),
            NetworkAddress.parse("10.0.0.1:18444")])
        self.assertEqual(options["seeds"][0].origin, "--seed")

    def test_dns_0_refuses_host_names(self):
        self.assertRefusedWith("--seed node1 is a host name, and name lookups are off "
                               "(--dns 0)", "--dns", "0", "--seed", "node1")
        self.assertEqual(len(parse("--dns", "0", "--seed", "10.0.0.1")["seeds"]), 1)
        self.assertRefusedWith("--dns is 0 or 1, not 'off'", "--dns", "off")

    def test_bad_seeds_are_one_line_naming_the_option(self):
        self.assertRefusedWith(
            "--seed ::1:8333 is ambiguous: write [::1]:8333 for address ::1 and port 8333, "
            "or [::1:8333] for the address ::1:8333", "--seed", "::1:8333")
        self.assertRefusedWith("--seed 10.0.0.1:0: port 0 cannot be dialled",
                               "--seed", "10.0.0.1:0")
        self.assertRefusedWith("--seed node1:0: port 0 cannot be dialled", "--seed", "node1:0")
        self.assertRefusedWith("--seed 10.0.0.1:65536: port 65536 is above 65535",
                               "--seed", "10.0.0.1:65536")
        self.assertRefusedWith("--seed :8333: the host is empty", "--seed", ":8333")
        self.assertRefusedWith("--seed [::1]:0: port 0 cannot be dialled", "--seed", "[::1]:0")
        # A bare IPv6 without a port is fine, and so is one in brackets with a port.
        self.assertEqual(parse("--seed", "::1", "--seed", "[::1]:8334")["seeds"],
                         [NetworkAddress.parse("[::1]:8333"), NetworkAddress.parse("[::1]:8334")])

    def test_bad_seeds_file_line_names_file_and_line(self):
        path = os.path.join(tempdir(self), "seeds.txt")
        with open(path, "w") as stream:
            stream.write("# mine\nnode1\n10.0.0.1\n::1:8333\n")
        self.assertRefusedWith(
            f"--seeds-file {path} line 4: '::1:8333' is ambiguous: write [::1]:8333 for "
            "address ::1 and port 8333, or [::1:8333] for the address ::1:8333",
            "--seeds-file", path)
        with open(path, "w") as stream:
            stream.write("node1\n")
        self.assertRefusedWith(
            f"--seeds-file {path} line 1: 'node1' is a host name, and name lookups are off "
            "(--dns 0)", "--seeds-file", path, "--dns", "0")
        (seed,) = parse("--seeds-file", path)["seeds"]
        self.assertEqual((seed, seed.origin), (SeedName("node1", 8333), f"{path} line 1"))


class _Recorder:
    """Stands in for tap.make_resolver: records each call, returns ``resolver``."""

    def __init__(self, resolver):
        self.resolver = resolver
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.resolver


class SimnetCrawlMixin:
    """Whole crawls of the service against a SimNet of this process."""

    def setUp(self):
        self.base = tempdir(self)
        self.db = os.path.join(self.base, "book.sqlite")
        self.out = os.path.join(self.base, "out")
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def simnet(self, network, nodes=20):
        simnet = SimNet(reactor, nodes, network=network)
        simnet.start()
        self.addCleanup(simnet.stop)
        return simnet

    def options(self, *argv, seeds=None):
        """Options for ``argv``, writing to this test's book and snapshot
        directory; ``seeds`` replaces the seeds, and gossip of loopback
        addresses is dialled (the simnet lives on 127.1.0.0/16)."""
        options = parse(*argv, "--db", self.db, "--out", self.out, *FAST)
        if seeds is not None:
            options["seeds"] = list(seeds)
        options["crawl"] = attr.evolve(options["crawl"], allow_private=True)
        return options

    @defer.inlineCallbacks
    def crawl(self, options):
        """Run one crawl of ``options``; its snapshot document."""
        self.reactor = RecordingReactor()
        service = crawl_application(options, self.reactor)
        service.startService()
        yield self.reactor.stopped
        yield service.stopService()
        yield connections_closed()
        self.assertFalse(service.outcome.failed)
        (json_path,) = glob.glob(os.path.join(self.out, "*-2*Z.json"))
        with open(json_path) as stream:
            return json.load(stream)

    def messages(self, prefix):
        return [text for text in map(formatEvent, self.logged) if text.startswith(prefix)]


class DiscoveryServiceTests(SimnetCrawlMixin, TestCase):
    """The switches in a whole crawl, against a SimNet on loopback."""

    @defer.inlineCallbacks
    def test_dnsseed_0_asks_nothing_of_the_dns_server(self):
        """
        --dnsseed 0 with --dns-server given: no resolver is even built, and
        the local DNS server hears nothing; the crawl runs from --seed.
        """
        zone, dns_server = ServiceTests.local_dns(self, {})
        simnet = self.simnet(TESTNET4)
        options = self.options("--network", "testnet4", "--dnsseed", "0",
                               "--dns-server", dns_server,
                               *[arg for seed in simnet.seeds() for arg in ("--seed", str(seed))])
        recorder = _Recorder(NoLookupResolver())
        self.patch(crawl_service, "make_resolver", recorder)
        document = yield self.crawl(options)
        self.assertEqual((zone.queries, recorder.calls, recorder.resolver.calls), ([], [], []))
        self.assertEqual(document["summary"]["outcomes"]["reachable"], 20)
        self.assertEqual(len(self.messages("discovery sources")), 1)
        self.assertIn("DNS seeds: off (--dnsseed 0)", self.messages("discovery sources")[0])

    @defer.inlineCallbacks
    def test_host_names_resolved_at_start(self):
        """
        --seed names are resolved when the crawl starts, through the DNS
        server given (even with --dnsseed 0, as Core resolves -seednode);
        one that does not resolve is one warning, and the crawl goes on.
        """
        simnet = self.simnet(TESTNET4)
        first = simnet.seeds()[0]
        zone, dns_server = ServiceTests.local_dns(self, {"node1.test": [first.host_text]})
        options = self.options("--network", "testnet4", "--dnsseed", "0",
                               "--dns-server", dns_server,
                               "--seed", f"node1.test:{first.port}",
                               "--seed", f"gone.test:{first.port}")
        self.assertEqual(zone.queries, [])  # nothing asked while reading options
        document = yield self.crawl(options)
        self.assertEqual({name for name, _ in zone.queries}, {"node1.test", "gone.test"})
        self.assertEqual(document["summary"]["outcomes"]["reachable"], 20)
        warnings = [formatEvent(e) for e in self.logged if e.get("log_level") == LogLevel.warn]
        self.assertEqual(warnings, ["--seed gone.test: the name gave no address (NXDOMAIN); "
                                    "the crawl goes on without it"])

    @defer.inlineCallbacks
    def test_onlynet_reported_per_reason(self):
        """--onlynet ipv6 against an IPv4 simnet: the seeds are kept, not
        dialled, each reported with its reason."""
        self.patch(crawl_service, "make_resolver", _Recorder(NoLookupResolver()))
        simnet = self.simnet(TESTNET4)
        options = self.options("--network", "testnet4", "--onlynet", "ipv6",
                               "--fixed-seeds", "never", "--dnsseed", "0",
                               seeds=simnet.seeds())
        document = yield self.crawl(options)
        self.assertEqual(document["summary"]["outcomes"],
                         {"reachable": 0, "unreachable": 0, "not_dialled": 3})
        self.assertEqual(document["summary"]["not_dialled_reasons"], {"onlynet": 3})
        self.assertEqual({r["reason"] for r in document["not_dialled"]}, {"onlynet"})


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "README.rst")


def readme_discovery_examples():
    """The ``twistd -n bitpeer-crawl`` lines of README's discovery section, as argv lists."""
    with open(README, encoding="utf-8") as stream:
        text = stream.read()
    section = text[text.index("It discovers peers as a node does"):text.index("\nOptions\n")]
    prefix = "    twistd -n bitpeer-crawl "
    return [shlex.split(line[len(prefix):]) for line in section.splitlines()
            if line.startswith(prefix)]


class ReadmeDiscoveryExamplesTests(SimnetCrawlMixin, TestCase):
    """
    README's discovery examples, parsed as written and run against a
    SimNet.  A run writes to this test's book and directory, dials the
    loopback gossip of the simnet, and stands loopback addresses in for
    the example's (tests touch only 127.0.0.0/8).
    """

    NO_DNS = ["--dnsseed", "0", "--dns", "0", "--seeds-file", "seeds.txt"]
    ONION = ["--onlynet", "onion"]
    PRIVATE = ["--network", "regtest", "--seed", "node1", "--seed", "10.0.0.12:18445",
               "--allow-private"]
    FORCE = ["--forcednsseed"]

    def test_the_examples_are_these(self):
        """Every example in the README is one tested here."""
        self.assertEqual(readme_discovery_examples(),
                         [self.NO_DNS, self.ONION, self.PRIVATE, self.FORCE])

    @defer.inlineCallbacks
    def test_no_dns_at_all(self):
        recorder = _Recorder(NoLookupResolver())
        self.patch(crawl_service, "make_resolver", recorder)
        simnet = self.simnet(MAINNET)
        # The example's relative seeds.txt, in a directory of its own.
        here = os.getcwd()
        os.chdir(tempdir(self))
        self.addCleanup(os.chdir, here)
        with open("seeds.txt", "w") as stream:
            stream.write("# my seeds\n" + "\n".join(map(str, simnet.seeds())) + "\n")
        options = self.options(*self.NO_DNS)
        self.assertEqual(options["discovery"], DiscoveryOptions(dnsseed=False))
        self.assertEqual(options["seeds"], simnet.seeds())
        document = yield self.crawl(options)
        self.assertEqual(recorder.calls, [])
        self.assertEqual(document["summary"]["outcomes"]["reachable"], 20)
        # Names are refused outright: not a lookup, not even later.
        with open("seeds.txt", "a") as stream:
            stream.write("node1\n")
        self.assertRaises(usage.UsageError, parse, *self.NO_DNS)

    @defer.inlineCallbacks
    def test_only_onion(self):
        """No DNS seed asked, no resolver built; the onion fixed seeds are
        kept and reported "no --onion-proxy" (none is given)."""
        recorder = _Recorder(NoLookupResolver())
        self.patch(crawl_service, "make_resolver", recorder)
        options = self.options(*self.ONION)
        self.assertEqual(options["crawl"].networks, {"onion"})
        document = yield self.crawl(options)
        self.assertEqual(recorder.calls, [])
        onion = [a for a in MAINNET.fixed_seeds() if a.network_name == "onion"]
        self.assertTrue(onion)
        self.assertEqual(document["summary"]["outcomes"],
                         {"reachable": 0, "unreachable": 0, "not_dialled": len(onion)})
        self.assertEqual(document["summary"]["not_dialled_reasons"], {"no --onion-proxy": len(onion)})

    @defer.inlineCallbacks
    def test_private_network(self):
        """node1 is resolved at start through the injected resolver; the
        simnet's loopback addresses stand in for the LAN's."""
        options = self.options(*self.PRIVATE)
        self.assertEqual(options["seeds"], [SeedName("node1", 18444),
                                            NetworkAddress.parse("10.0.0.12:18445")])
        self.assertTrue(options["crawl"].allow_private)
        simnet = self.simnet(REGTEST)
        first, second = simnet.seeds()[:2]
        zone = _Zone({"node1": [first.host_text]})
        self.patch(crawl_service, "make_resolver", _Recorder(zone))
        options["seeds"] = [SeedName("node1", first.port, "--seed"), second]
        document = yield self.crawl(options)
        self.assertIn(("node1", dns.A), zone.queries)
        self.assertEqual(document["summary"]["outcomes"]["reachable"], 20)

    def test_forcednsseed(self):
        """With a book of enough good addresses, DNS seeds are asked only
        with --forcednsseed (discover(), with an in-memory DNS zone)."""
        records = {f"x9.{seed}": ["127.0.0.1"] for seed in MAINNET.dns_seeds}
        for argv, asked in [(self.FORCE, True), ([], False)]:
            zone = _Zone(records)
            options = parse(*argv)
            d = discover(MAINNET, zone, options=options["discovery"], known=5000,
                         good=ENOUGH_GOOD_ADDRESSES, clock=task.Clock())
            found = self.successResultOf(d)
            self.assertEqual(bool(zone.queries), asked, argv)
            self.assertEqual(found.dns is not None, asked, argv)


class BadSeedTwistdTests(SynchronousTestCase):
    """Under twistd, a bad --seed is one clear line, no traceback, a non-zero exit."""

    def test_ambiguous_ipv6(self):
        cwd = tempdir(self)
        process = twistd(cwd, "bitpeer-crawl", "--seed", "::1:8333")
        self.assertNotEqual(finish(process), 0)
        output = read_log(cwd, 0)
        self.assertNotIn("Traceback", output)
        self.assertIn("--seed ::1:8333 is ambiguous: write [::1]:8333 for address ::1 and port "
                      "8333, or [::1:8333] for the address ::1:8333\n", output)
        self.assertEqual(sorted(os.listdir(cwd)), ["twistd-0.log"])
