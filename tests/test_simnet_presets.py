"""
The simnet's named presets and latency distributions: the mainnet preset's
parameters, the distributions it draws from (for a fixed seed), how the
population uses them (slow nodes, blackholed share, duplicates, the gossip's
depth), the command lines that name a preset, and one small crawl of a
mainnet-shaped network scaled down (latencies in milliseconds) that must
find every node, the slow ones included.
"""

import os
import random
import statistics
import subprocess
import sys

import attr
from twisted.internet import defer, reactor
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.crawl import tap as crawl_tap
from bitpeer.crawl.tap import SIMNET
from bitpeer.protocol import PeerOptions
from bitpeer.simnet.latency import LogNormal, Spread, as_distribution
from bitpeer.simnet.network import SimNet
from bitpeer.simnet.population import Population
from bitpeer.simnet.presets import MAINNET, PRESETS, get_preset
from bitpeer.simnet.tap import Options

from .test_crawler import crawl

#: The mainnet preset with its latencies scaled down a hundredfold, and a
#: larger slow share so that a small network holds several slow nodes.
SCALED = LogNormal(median=0.0008, p99=0.006, slow_share=0.1, slow=(0.2, 0.4))


def near(case, value, expected, tolerance):
    """Trial's assertAlmostEqual counts places; a tolerance is what is meant."""
    case.assertTrue(abs(value - expected) <= tolerance,
                    f"{value} is not within {tolerance} of {expected}")


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options


def parse_crawl(*argv):
    options = crawl_tap.Options()
    options.parseOptions(list(argv))
    return options


def population(nodes=200, dead=1000, **overrides):
    """A population of the mainnet preset's shape, smaller."""
    shape = {**MAINNET.shape(), "stale": nodes // 10, "exotic": nodes // 20, **overrides}
    return Population(nodes=nodes, dead=dead, blackholed_share=shape.pop("blackholed"),
                      seed=4, now=1_700_000_000,
                      ports={"node": 1, "refused": 2, "blackholed": 3, "stale": 2}, **shape)


class LatencyTests(SynchronousTestCase):
    """The distributions, drawn with a fixed seed."""

    def test_log_normal_median_and_p99(self):
        rng = random.Random(1)
        plain = LogNormal(median=0.080, p99=0.600)
        draws = sorted(plain.draw(rng) for _ in range(20_000))
        near(self, statistics.median(draws), 0.080, 0.004)
        near(self, draws[int(0.99 * len(draws))], 0.600, 0.06)
        self.assertIsNone(plain.slow_from)

    def test_slow_share(self):
        rng = random.Random(2)
        draws = [MAINNET.latency.draw(rng) for _ in range(20_000)]
        slow = [d for d in draws if d >= MAINNET.latency.slow_from]
        near(self, len(slow) / len(draws), 0.02, 0.004)
        self.assertTrue(all(2.0 <= d <= 8.0 for d in slow))
        self.assertEqual(MAINNET.latency.slow_from, 2.0)

    def test_spread_is_the_old_latency(self):
        """A mean in seconds is a Spread, drawn as --latency-ms always was;
        no mean draws nothing, so the network is unchanged."""
        self.assertEqual(as_distribution(0.05), Spread(0.05))
        rng, again = random.Random(3), random.Random(3)
        self.assertEqual(Spread(0.05).draw(rng), round(0.05 * again.uniform(0.5, 1.5), 4))
        rng = random.Random(3)
        self.assertEqual(Spread(0.0).draw(rng), 0.0)
        self.assertEqual(rng.random(), random.Random(3).random())
        self.assertIs(as_distribution(MAINNET.latency), MAINNET.latency)

    def test_bad_distributions(self):
        for kwargs in (dict(median=0, p99=1), dict(median=0.2, p99=0.1),
                       dict(median=0.1, p99=1, slow_share=1.5),
                       dict(median=0.1, p99=1, slow=(3, 2))):
            self.assertRaises(ValueError, LogNormal, **kwargs)
        self.assertRaises(ValueError, Spread, -1)


class MainnetPresetTests(SynchronousTestCase):
    """The preset's values, and the population they make."""

    def test_parameters(self):
        self.assertIs(get_preset("mainnet"), MAINNET)
        self.assertEqual((MAINNET.nodes, MAINNET.dead), (8000, 50_000))
        self.assertGreater(MAINNET.blackholed, 0.5)
        shape = MAINNET.shape()
        self.assertNotIn("nodes", shape)
        self.assertNotIn("dead", shape)
        self.assertEqual(shape["latency"], LogNormal(0.080, 0.600, 0.02, (2.0, 8.0)))
        # Slow nodes answer within the crawler's default timeouts.
        defaults = PeerOptions()
        self.assertLess(MAINNET.latency.slow[1], defaults.handshake_timeout)
        self.assertLess(MAINNET.latency.slow[1], defaults.getaddr_idle_timeout)

    def test_unknown(self):
        error = self.assertRaises(ValueError, get_preset, "testnet")
        self.assertIn("'testnet'", str(error))
        self.assertIn(", ".join(PRESETS), str(error))

    def test_blackholed_share(self):
        p = population()
        self.assertEqual(len(p.blackholed), round(1000 * MAINNET.blackholed))
        self.assertEqual(len(p.refused) + len(p.blackholed), 1000)

    def test_slow_nodes_are_reachable(self):
        p = population(latency=SCALED)
        slow = [n for n in p.nodes if n.slow]
        self.assertTrue(slow)
        for node in p.nodes:
            self.assertEqual(node.slow, node.latency >= 0.2)
            self.assertEqual(node.as_dict()["expect"], "reachable")
            self.assertEqual(node.as_dict()["slow"], node.slow)

    def test_duplicates(self):
        """Answers keep their size, a share of it repeated entries; without
        duplicates every entry is distinct."""
        p = population(book_size=2000)  # 460-entry answers
        copies = round(460 * MAINNET.duplicates)
        for node in p.nodes:
            entries = p.answer_entries(node.index)
            self.assertLessEqual(len(entries), p.answer_size)
            self.assertEqual(len(entries) - len(set(entries)), copies)
            command, payload = p.answer(node.index, v2=False)
            self.assertEqual(command, "addr")
        plain = population(book_size=2000, duplicates=0.0)
        for node in plain.nodes:
            entries = plain.answer_entries(node.index)
            self.assertEqual(len(entries), len(set(entries)))

    def test_depth_is_the_gossip_breadth_first(self):
        """Population.depth against a breadth-first search over the answers
        themselves."""
        p = population(nodes=300, dead=300, book_size=400)  # 92-entry answers
        index_of = {n.address: n.index for n in p.nodes}
        seeds = [0, 1, 2]
        level, frontier = {s: 0 for s in seeds}, list(seeds)
        while frontier:
            following = []
            for index in frontier:
                for entry in p.answer_entries(index):
                    other = index_of.get(entry.address)
                    if other is not None and other not in level:
                        level[other] = level[index] + 1
                        following.append(other)
            frontier = following
        self.assertEqual(len(level), 300)
        self.assertEqual(p.depth(seeds), max(level.values()))
        self.assertGreater(p.depth(seeds), 1)

    def test_truth_counts_slow_and_depth(self):
        simnet = SimNet(reactor, 100, 100, seed=4, **{**MAINNET.shape(), "latency": SCALED})
        truth = simnet.start()
        self.addCleanup(simnet.stop)
        self.assertEqual(truth["counts"]["slow"], sum(n["slow"] for n in truth["nodes"]))
        self.assertGreater(truth["counts"]["slow"], 0)
        self.assertIsInstance(truth["depth"], int)


class SimnetOptionsTests(SynchronousTestCase):
    """twistd bitpeer-simnet --preset."""

    def test_preset(self):
        options = parse("--preset", "mainnet")
        self.assertEqual((options["nodes"], options["dead"], options["blackholed"],
                          options["stale"], options["book-size"], options["duplicates"]),
                         (8000, 50_000, MAINNET.blackholed, MAINNET.stale, 4348,
                          MAINNET.duplicates))
        self.assertEqual(options["latency"], MAINNET.latency)

    def test_given_options_override(self):
        options = parse("--preset", "mainnet", "--nodes", "300", "--blackholed", "0",
                        "--latency-ms", "20", "--duplicates", "0")
        self.assertEqual((options["nodes"], options["dead"], options["blackholed"]),
                         (300, 50_000, 0.0))
        self.assertEqual(options["latency"], Spread(0.02))
        self.assertEqual(options["duplicates"], 0.0)
        # A value given equal to the default still overrides the preset.
        self.assertEqual(parse("--preset", "mainnet", "--stale", "50")["stale"], 50)

    def test_without_preset(self):
        options = parse("--latency-ms", "50")
        self.assertEqual(options["latency"], Spread(0.05))
        self.assertEqual((options["nodes"], options["dead"], options["duplicates"]),
                         (1000, 0, 0.0))

    def test_unknown_preset(self):
        error = self.assertRaises(usage.UsageError, parse, "--preset", "bogus")
        self.assertEqual(str(error), "--preset: unknown preset 'bogus'; presets: mainnet")
        self.assertRaises(usage.UsageError, parse, "--duplicates", "1.5")

    def test_twistd_says_it_and_fails(self):
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        done = subprocess.run([twistd, "-n", "bitpeer-simnet", "--preset", "bogus"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        output = done.stdout + done.stderr
        self.assertNotIn("Traceback", output)
        self.assertIn("--preset: unknown preset 'bogus'", output.strip().splitlines()[-1])


class CrawlOptionsTests(SynchronousTestCase):
    """bitpeer-crawl --simnet-preset: the in-process simnet takes its shape."""

    def build(self, *argv):
        """The SimNet the crawl would run (built, not started)."""
        app = crawl_tap.crawl_application(parse_crawl(*argv), reactor)
        return app.simnet.build()

    def test_preset_alone(self):
        options = parse_crawl("--simnet-preset", "mainnet")
        self.assertEqual(options["simnet"], 8000)
        self.assertIs(options["network"], SIMNET)
        simnet = self.build("--simnet-preset", "mainnet")
        self.assertEqual((simnet.nodes, simnet.dead, simnet.blackholed_share, simnet.stale),
                         (8000, 50_000, MAINNET.blackholed, MAINNET.stale))
        self.assertEqual((simnet.latency, simnet.duplicates),
                         (MAINNET.latency, MAINNET.duplicates))

    def test_sizes_override(self):
        simnet = self.build("--simnet-preset", "mainnet", "--simnet", "50",
                            "--simnet-dead", "200", "--simnet-seed", "7")
        self.assertEqual((simnet.nodes, simnet.dead, simnet.seed), (50, 200, 7))
        self.assertEqual(simnet.latency, MAINNET.latency)

    def test_without_preset(self):
        simnet = self.build("--simnet", "20", "--simnet-dead", "5")
        self.assertEqual((simnet.nodes, simnet.dead, simnet.latency, simnet.duplicates),
                         (20, 5, Spread(0.0), 0.0))

    def test_unknown_preset(self):
        error = self.assertRaises(usage.UsageError, parse_crawl, "--simnet-preset", "bogus")
        self.assertEqual(str(error), "--simnet-preset: unknown preset 'bogus'; presets: mainnet")


class ScaledMainnetCrawlTests(TestCase):
    """A mainnet-shaped network, small and a hundred times faster, crawled
    on loopback: every node found, the slow ones too, nothing dead taken
    for reachable."""

    @defer.inlineCallbacks
    def test_every_node_found(self):
        preset = attr.evolve(MAINNET, nodes=80, dead=300, stale=20, exotic=4, latency=SCALED)
        simnet = SimNet(reactor, preset.nodes, preset.dead, seed=6, network=SIMNET,
                        **preset.shape())
        truth = simnet.start()
        self.addCleanup(simnet.stop)
        slow = {n["address"] for n in truth["nodes"] if n["slow"]}
        self.assertTrue(slow, "the scaled network holds slow nodes")
        _, result = yield crawl(simnet, transport="fast")
        found = {str(a) for a in result.reachable}
        self.assertEqual(found, {n["address"] for n in truth["nodes"]})
        self.assertLessEqual(slow, found)
        dead = set(truth["refused"]) | set(truth["blackholed"])
        self.assertEqual({str(a) for a in result.unreachable} & found, set())
        self.assertEqual({str(a) for a in result.unreachable}, dead)
