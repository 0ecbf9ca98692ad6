"""
Crawl speed against a simulated network in a separate process.

    python bench/crawl.py [--network sparse|realistic] [--nodes N ...]
                          [--getaddr-fraction F] [--concurrency C] [--repeat R]
    python bench/crawl.py --network overlay [--proxies 1 2 4] [--onion N] [--i2p N]
    python bench/crawl.py --preset mainnet [--nodes N] [--dead N] [--concurrency C]
                          [--connect-timeout T]

For each size it starts ``twistd bitpeer-simnet`` (one process), waits for
its seeds file, runs ``twistd -n bitpeer-crawl`` against it, and prints wall
time, reachable nodes per second, connection attempts per second, gossiped
entries decoded per second, the crawler's CPU seconds and peak RSS, and
completeness against the ground truth.  The last line sums it up; with
``--repeat R`` each size runs R times and the summary gives the median wall
time with the range.

Each run also records ``yardstick``: bench/codec.py's whole-frame decode of a
1000-entry addr (frames/s) measured just before it, because the shared
machine this was written on drifts (1,800/s at its usual speed, 900/s at
its slowest seen).  It is a half-second sample and the speed can change
within a run, so it shows the drift rather than corrects for it: compare
medians of several runs.

Networks (per 10,000 nodes):
  sparse     each node answers getaddr with ~25 other nodes and ~2 refused
             addresses (dead = nodes * 2 / 25, book 118 -> 27-entry answers)
  realistic  40,000 dead addresses (30,000 refused, 10,000 blackholed) and
             full 1000-entry answers

The overlay network (``--network overlay``, its own sizes): 2,000 clearnet
nodes, 3,000 onion nodes behind SOCKS5 fronts (a Tor daemon each), three
times as many dead onions as live ones (on the real network most gossiped
onions are gone, and each costs a failed descriptor lookup), and 300 I2P
nodes behind a SAM bridge.  A circuit to a live onion takes 0.1-0.6 s, a
dead one fails after 0.5-2 s, and each front builds at most 32 circuits at
once, as Tor's MaxClientCircuitsPending.  It is crawled once without
overlays (the clearnet alone: the time the clearnet part should still take)
and then with 1, 2 and 4 fronts, each given to the crawl as an
--onion-proxy.  The onion part cannot take less than the sum of its circuit
and failure times over the circuits building at once, (live x mean circuit
time + dead x mean failure time) / (32 x proxies): each run prints that
bound beside its measured time.

A preset (``--preset mainnet``, bitpeer/simnet/presets.py: 8,000 nodes,
50,000 dead addresses, most blackholed, log-normal round trips and a share
of nodes that take seconds) is one simnet crawled three times: cold with
bitpeer-crawl's own defaults (--concurrency and --connect-timeout only if
given here), warm (the cold crawl's address book), and cold again with
``--connect-timeout 2 --fixed-connect-timeout``, a careful operator's hand
tuning.  Each prints its wall time, the reachable nodes found against the truth (and the slow ones),
the time to 90/99/100% of its final reachable count and the learnt timeouts
(from the snapshot's summary, "n/a" when it has none), and a lower bound
from the network's own parameters: max(blackholed x connect-timeout floor /
concurrency, gossip depth from the seeds x 2 round trips at the p99 of the
nodes that are not slow, 2 x the slowest node's round trip), each figure
said with where it came from.  The
last line sums the three up.
"""

import argparse
import glob
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import process_cpu, start_simnet, twistd  # noqa: E402
from codec import best_rate, sample_entries  # noqa: E402

from bitpeer.networks import MAINNET  # noqa: E402
from bitpeer.simnet.presets import PRESETS  # noqa: E402
from bitpeer.wire.address import Network  # noqa: E402
from bitpeer.wire.framing import FrameDecoder, encode_frame  # noqa: E402
from bitpeer.wire.messages import Addr  # noqa: E402


def yardstick(seconds=0.5):
    """Whole-frame decodes per second of a 1000-entry addr: the machine's
    single-thread speed right now."""
    addr = Addr(sample_entries(random.Random(1), 1000, [Network.IPV4, Network.IPV6]))
    frame = encode_frame(MAINNET.magic, addr)

    def decode():
        (decoded,) = FrameDecoder(MAINNET.magic).feed(frame)
        decoded.decode()

    return best_rate(decode, 1, seconds)


def network_args(kind, nodes):
    """simnet arguments for a network shape."""
    if kind == "sparse":
        return ["--dead", str(nodes * 2 // 25), "--blackholed", "0", "--book-size", "118",
                "--stale", "0", "--exotic", "0"]
    return ["--dead", str(nodes * 4), "--blackholed", "0.25", "--book-size", "4348"]


def run_crawler(workdir, seeds, args, extra=(), name="crawl", db="crawl.sqlite", out="out"):
    """Run the crawl to completion (``extra``: more bitpeer-crawl options;
    ``name``: its log's name; ``db`` and ``out`` in ``workdir``); return
    (wall seconds, rusage, start and end epoch times).  --concurrency and
    --connect-timeout are passed only when ``args`` has them: otherwise the
    crawl runs with bitpeer-crawl's defaults."""
    tuning = [(option, value) for option, value in (("--concurrency", args.concurrency),
                                                    ("--connect-timeout", args.connect_timeout))
              if value is not None]
    command = [
        twistd(), "-n", "--pidfile=", "--logfile", os.path.join(workdir, f"{name}.log"),
        "bitpeer-crawl", "--network", "regtest", "--seeds-file", seeds, "--allow-private",
        "--db", os.path.join(workdir, db), "--out", os.path.join(workdir, out),
        *(str(part) for pair in tuning for part in pair),
        "--getaddr-fraction", str(args.getaddr_fraction), "--fixed-seeds", "never", *extra,
    ]
    start, started_at = time.monotonic(), time.time()
    process = subprocess.Popen(command, cwd=workdir)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the crawl failed; see {workdir}/{name}.log")
    return wall, usage, started_at, time.time()


def read_snapshot(workdir, out="out"):
    """The one JSON snapshot a crawl wrote in ``workdir/out``."""
    (snapshot_path,) = glob.glob(os.path.join(workdir, out, "*-2*Z.json"))
    with open(snapshot_path) as stream:
        return json.load(stream)


def judge(workdir, truth_path):
    """Completeness: which honest reachable nodes the snapshot found."""
    with open(truth_path) as stream:
        truth = json.load(stream)
    snapshot = read_snapshot(workdir)
    expected = {n["address"] for n in truth["nodes"] if n["expect"] == "reachable"}
    found = {n["address"] for n in snapshot["nodes"]}
    summary = snapshot["summary"]
    attempts = summary["outcomes"]["reachable"] + summary["outcomes"]["unreachable"]
    dead = set(truth["refused"]) | set(truth["blackholed"])
    return {
        "started": datetime.fromisoformat(summary["started"]).timestamp(),
        "finished": datetime.fromisoformat(summary["finished"]).timestamp(),
        "expected": len(expected),
        "found": len(found & expected),
        "false_reachable": len(found & dead),
        "attempts": attempts,
        "gossiped": summary["gossip"]["entries_received"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--network", choices=("sparse", "realistic", "overlay"))
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a named simnet: cold, warm and --connect-timeout 2 crawls")
    parser.add_argument("--nodes", type=int, nargs="+",
                        help="sizes (default 10000; a preset's own, one size)")
    parser.add_argument("--dead", type=int, help="dead addresses (--preset only; default "
                                                 "the preset's)")
    parser.add_argument("--getaddr-fraction", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int,
                        help="default 5000 (a --preset: bitpeer-crawl's own)")
    parser.add_argument("--connect-timeout", type=float,
                        help="default 2 (a --preset: bitpeer-crawl's own)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size")
    overlay = parser.add_argument_group("--network overlay")
    overlay.add_argument("--proxies", type=int, nargs="+", default=[1, 2, 4],
                         help="SOCKS5 fronts (Tor daemons) of each run")
    overlay.add_argument("--clearnet", type=int, default=2000, help="clearnet nodes")
    overlay.add_argument("--onion", type=int, default=3000, help="live onion nodes")
    overlay.add_argument("--onion-dead", type=int, help="dead onions (default 3 x --onion)")
    overlay.add_argument("--i2p", type=int, default=300, help="I2P nodes")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.preset:
        if args.network or args.repeat > 1 or len(args.nodes or ()) > 1:
            parser.error("--preset runs one size once, without --network or --repeat")
        return run_preset(args)
    if args.dead is not None:
        parser.error("--dead goes with --preset (a --network sets its own)")
    args.network = args.network or "sparse"
    # The networks' crawls were always tuned by hand, and stay comparable.
    args.concurrency = 5000 if args.concurrency is None else args.concurrency
    args.connect_timeout = 2.0 if args.connect_timeout is None else args.connect_timeout
    if args.network == "overlay":
        return run_overlay(args)
    args.nodes = list(dict.fromkeys(args.nodes or [10000]))
    rows = []
    for nodes in args.nodes:
        for _ in range(args.repeat):
            row = run_once(args, nodes)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"SUMMARY {args.network} getaddr-fraction={args.getaddr_fraction} "
        f"concurrency={args.concurrency}: "
        + "; ".join(size_summary([r for r in rows if r["nodes"] == n]) for n in args.nodes)
    )


def size_summary(runs):
    """One size's runs in a few words: wall time (median and range over
    several runs), completeness, CPU per node, peak RSS, yardstick."""
    walls = [r["wall_s"] for r in runs]
    wall = f"{walls[0]} s" if len(runs) == 1 else (
        f"{statistics.median(walls):.2f} s median of {len(runs)} ({min(walls)}-{max(walls)})"
    )
    found = sorted({r["completeness"] for r in runs})
    return (
        f"{runs[0]['nodes']} nodes {wall}, {' / '.join(found)} found, "
        f"{statistics.median(r['cpu_ms_per_node'] for r in runs):.3f} ms CPU/node, "
        f"{max(r['peak_rss_mb'] for r in runs)} MB, "
        f"yardstick {statistics.median(r['yardstick'] for r in runs):,.0f}/s"
    )


def run_once(args, nodes):
    """One crawl of a fresh simnet of ``nodes`` nodes: its row of figures."""
    speed = yardstick()
    workdir = tempfile.mkdtemp(prefix=f"bitpeer-bench-{args.network}-{nodes}-")
    simnet, truth, seeds = start_simnet(
        workdir, ["--nodes", str(nodes), "--seed", str(args.seed),
                  *network_args(args.network, nodes)],
    )
    try:
        wall, usage, process_start, process_end = run_crawler(workdir, seeds, args)
        simnet_cpu = process_cpu(simnet.pid)
    finally:
        simnet.terminate()
        simnet.wait()
    verdict = judge(workdir, truth)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "nodes": nodes,
        "wall_s": round(wall, 2),
        # The process's wall time is start-up (Python, twistd, the
        # address book) + the crawl + shut-down (snapshots, last flush).
        "startup_s": round(verdict["started"] - process_start, 2),
        "crawl_s": round(verdict["finished"] - verdict["started"], 2),
        "shutdown_s": round(process_end - verdict["finished"], 2),
        "reachable_per_s": round(verdict["found"] / wall),
        "attempts_per_s": round(verdict["attempts"] / wall),
        "gossip_per_s": round(verdict["gossiped"] / wall),
        "cpu_s": round(cpu, 2),
        # Kernel time (sockets, epoll) apart from Python's.
        "cpu_sys_s": round(usage.ru_stime, 2),
        "cpu_ms_per_node": round(1000 * cpu / nodes, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "simnet_cpu_s": round(simnet_cpu, 2),
        "completeness": f"{verdict['found']}/{verdict['expected']}",
        "false_reachable": verdict["false_reachable"],
        "gossiped": verdict["gossiped"],
        "yardstick": round(speed),
        "workdir": workdir,
    }

# -- the overlay network ----------------------------------------------------------

#: The overlay network's timing, as the issue scales it down: seconds to
#: build a circuit to a live node, to fail on a dead onion, circuits
#: building at once per front.
CIRCUIT = (0.1, 0.6)
DEAD_DELAY = (0.5, 2.0)
CIRCUITS = 32


def onion_bound(live, dead, proxies):
    """The least time the onion part can take: every circuit and failure
    time, CIRCUITS at once on each proxy (the draws' means stand for their
    sum)."""
    total = live * sum(CIRCUIT) / 2 + dead * sum(DEAD_DELAY) / 2
    return total / (CIRCUITS * proxies)


def overlay_simnet_args(args, proxies, dead):
    """bitpeer-simnet arguments of the overlay network with ``proxies``
    fronts and ``dead`` dead onions (no fronts: the clearnet alone)."""
    clearnet = ["--nodes", str(args.clearnet), "--seed", str(args.seed), "--dead", "0",
                "--stale", "0", "--exotic", "0"]
    if not proxies:
        return clearnet
    return clearnet + [
        "--onion", str(args.onion), "--onion-dead", str(dead), "--i2p", str(args.i2p),
        "--circuit-latency", "-".join(map(str, CIRCUIT)),
        "--dead-delay", "-".join(map(str, DEAD_DELAY)),
        "--circuits", str(CIRCUITS), "--socks-fronts", str(proxies),
    ]


def judge_networks(workdir, truth_path):
    """Per network: the served nodes found, and any dead one counted
    reachable."""
    with open(truth_path) as stream:
        truth = json.load(stream)
    snapshot = read_snapshot(workdir)
    found = {n["address"] for n in snapshot["nodes"]}
    verdict = {}
    for name, part in truth["networks"].items():
        if part["served"]:
            expected, dead = set(part["nodes"]), set(part["dead"])
            verdict[name] = {"found": f"{len(found & expected)}/{len(expected)}",
                             "false_reachable": len(found & dead)}
    return snapshot["summary"], verdict


def run_overlay(args):
    """The clearnet alone, then the whole network with each --proxies."""
    dead = 3 * args.onion if args.onion_dead is None else args.onion_dead
    rows = []
    for proxies in [0, *args.proxies]:
        workdir = tempfile.mkdtemp(prefix=f"bitpeer-bench-overlay-{proxies}-")
        simnet, truth_path, seeds = start_simnet(workdir,
                                                 overlay_simnet_args(args, proxies, dead))
        try:
            with open(truth_path) as stream:
                fronts = json.load(stream)["fronts"]
            extra = [option for host, port in fronts["socks"]
                     for option in ("--onion-proxy", f"{host}:{port}")]
            if fronts["sam"]:
                extra += ["--i2p-sam", "{}:{}".format(*fronts["sam"])]
            # The crawl keeps at most CIRCUITS dials on a front, so none
            # waits inside it: a dial ends within DEAD_DELAY, far within 30 s.
            extra += ["--onion-concurrency", str(CIRCUITS), "--onion-timeout", "30",
                      "--i2p-timeout", "30"]
            wall, usage, _, _ = run_crawler(workdir, seeds, args, extra)
        finally:
            simnet.terminate()
            simnet.wait()
        summary, verdict = judge_networks(workdir, truth_path)
        row = {
            "proxies": proxies,
            "wall_s": round(wall, 2),
            "crawl_s": summary["elapsed_seconds"],
            "bound_s": round(onion_bound(args.onion, dead, proxies), 2) if proxies else None,
            "found": verdict,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "workdir": workdir,
        }
        row["of_bound"] = round(row["crawl_s"] / row["bound_s"], 2) if proxies else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    clearnet = rows[0]["crawl_s"]
    print("SUMMARY overlay "
          f"{args.clearnet} clearnet + {args.onion} onion ({dead} dead) + {args.i2p} I2P: "
          f"clearnet alone {clearnet} s; "
          + "; ".join(f"{r['proxies']} prox{'y' if r['proxies'] == 1 else 'ies'} "
                      f"{r['crawl_s']} s (bound {r['bound_s']} s, x{r['of_bound']}), found "
                      + ", ".join(f"{name} {v['found']}" for name, v in r["found"].items())
                      for r in rows[1:]))


# -- a preset: cold, warm and hand-tuned crawls of one network -------------------------

#: The crawls of a --preset run: (name, its address book, the options it
#: sets, more bitpeer-crawl arguments).  The warm crawl reuses the cold one's
#: book; the hand-tuned one starts afresh, with the connect timeout a careful
#: operator would fix (2 s, learning nothing).
PRESET_RUNS = (
    ("cold", "cold.sqlite", {}, ()),
    ("warm", "cold.sqlite", {}, ()),
    ("ct2", "ct2.sqlite", {"connect_timeout": 2.0}, ("--fixed-connect-timeout",)),
)


def percentile(values, share):
    """The value at ``share`` (0..1) of the sorted ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def preset_verdict(summary, truth, found, wall):
    """One crawl's figures: what it found against the truth, and the
    discovery curve and timeouts its summary gives (None where absent)."""
    expected = {n["address"] for n in truth["nodes"] if n["expect"] == "reachable"}
    slow = {n["address"] for n in truth["nodes"] if n["slow"]}
    dead = set(truth["refused"]) | set(truth["blackholed"])
    timeouts = summary.get("timeouts")
    return {
        "wall_s": round(wall, 2),
        "crawl_s": summary["elapsed_seconds"],
        "found": f"{len(found & expected)}/{len(expected)}",
        "slow_found": f"{len(found & slow)}/{len(slow)}",
        "false_reachable": len(found & dead),
        "discovery": summary.get("discovery"),
        "timeouts": timeouts,
        "concurrency": summary["params"]["concurrency"],
        "connect_timeout": summary["params"]["connect_timeout"],
        "floor": (timeouts or {}).get("connect", {}).get("floor"),
    }


def lower_bound(truth, run):
    """
    The least time a crawl of this network can take, from its own
    parameters: every blackholed address holds a slot for at least the
    connect timeout's floor (the configured timeout when the summary gives
    no floor), ``concurrency`` at once; and discovery is a chain of
    ``depth`` getaddr rounds, each a handshake and an answer (a round trip
    each) at the p99 round trip of the nodes that are not slow (the chain
    need not pass through a slow one), and the slowest node must still do
    its handshake and answer getaddr.  (bound, the formula with its
    figures, where floor and concurrency came from).
    """
    blackholed = truth["counts"]["blackholed"]
    p99 = percentile([n["latency"] for n in truth["nodes"] if not n["slow"]], 0.99)
    slowest = max(n["latency"] for n in truth["nodes"])
    depth = truth["depth"] or 0
    floor = run["floor"] if run["floor"] is not None else run["connect_timeout"]
    source = ("floor from summary.timeouts" if run["floor"] is not None
              else "no learnt floor in the summary: the configured connect timeout")
    dead_part = blackholed * floor / run["concurrency"]
    chain = depth * 2 * p99
    bound = max(dead_part, chain, 2 * slowest)
    # Not a bound: what a crawl that cannot tell slow nodes from others
    # should expect, one of them dialled as the dead addresses run out.
    estimate = dead_part + 2 * slowest
    formula = (f"max(blackholed {blackholed} x floor {floor:g} s / concurrency "
               f"{run['concurrency']} = {dead_part:.1f} s, depth {depth} x 2 x p99 RTT "
               f"{p99:.3f} s = {chain:.1f} s, 2 x slowest RTT {slowest:.1f} s = "
               f"{2 * slowest:.1f} s) = {bound:.1f} s; with a slow node dialled last, "
               f"{dead_part:.1f} + {2 * slowest:.1f} = {estimate:.1f} s")
    run["estimate_s"] = round(estimate, 1)
    return bound, formula, f"{source}; concurrency from summary.params"


def discovery_text(discovery):
    """Time to 90/99/100% of the final reachable count, or n/a."""
    if not discovery:
        return "to 90/99/100%: n/a"
    return "to 90/99/100%: " + "/".join(
        "n/a" if discovery.get(key) is None else f"{discovery[key]:.1f}"
        for key in ("to_90", "to_99", "to_100")) + " s"


def timeouts_text(timeouts):
    """The learnt timeouts, or n/a."""
    if not timeouts:
        return "timeouts: n/a"
    parts = []
    for name in ("connect", "handshake", "getaddr"):
        t = timeouts.get(name) or {}
        learnt = t.get("learnt")
        parts.append(f"{name} learnt {'n/a' if learnt is None else f'{learnt:g} s'} "
                     f"(configured {t.get('configured', 'n/a')}, p50 {t.get('p50', 'n/a')}, "
                     f"p99 {t.get('p99', 'n/a')}, {t.get('samples', 'n/a')} samples)")
    return "timeouts: " + "; ".join(parts)


def run_preset(args):
    """One simnet of the preset, crawled cold, warm (the cold crawl's book)
    and cold with --connect-timeout 2; each run's figures, the bound, and
    one summary line."""
    workdir = tempfile.mkdtemp(prefix=f"bitpeer-bench-{args.preset}-")
    simnet_args = ["--preset", args.preset, "--seed", str(args.seed)]
    if args.nodes:
        simnet_args += ["--nodes", str(args.nodes[0])]
    if args.dead is not None:
        simnet_args += ["--dead", str(args.dead)]
    simnet, truth_path, seeds = start_simnet(workdir, simnet_args)
    with open(truth_path) as stream:
        truth = json.load(stream)
    print(f"{args.preset}: {truth['counts']['nodes']} nodes ({truth['counts']['slow']} slow), "
          f"{truth['counts']['refused']} refused, {truth['counts']['blackholed']} blackholed, "
          f"gossip depth {truth['depth']} from the seeds; yardstick {yardstick():,.0f}/s; "
          f"{workdir}", flush=True)
    runs = {}
    try:
        for name, db, tuned, extra in PRESET_RUNS:
            run_args = argparse.Namespace(**{**vars(args), **tuned})
            wall, _, _, _ = run_crawler(workdir, seeds, run_args, extra, name=name, db=db,
                                        out=f"out-{name}")
            snapshot = read_snapshot(workdir, f"out-{name}")
            found = {n["address"] for n in snapshot["nodes"]}
            run = runs[name] = preset_verdict(snapshot["summary"], truth, found, wall)
            bound, formula, source = lower_bound(truth, run)
            run["bound_s"] = round(bound, 1)
            print(f"{name}: wall {run['wall_s']} s (crawl {run['crawl_s']} s), found "
                  f"{run['found']} (slow {run['slow_found']}), false reachable "
                  f"{run['false_reachable']}, concurrency {run['concurrency']}, connect "
                  f"timeout {run['connect_timeout']:g} s; {discovery_text(run['discovery'])}; "
                  f"{timeouts_text(run['timeouts'])}", flush=True)
            print(f"{name}: bound = {formula} ({source})", flush=True)
    finally:
        simnet.terminate()
        simnet.wait()
    cold, warm, ct2 = runs["cold"], runs["warm"], runs["ct2"]
    ratio = cold["wall_s"] / cold["bound_s"]
    print(f"SUMMARY {args.preset}: cold {cold['wall_s']} s, warm {warm['wall_s']} s, "
          f"ct2 {ct2['wall_s']} s, bound {cold['bound_s']} s (cold x{ratio:.1f}; slow node "
          f"dialled last {cold['estimate_s']} s, cold x{cold['wall_s'] / cold['estimate_s']:.1f}), "
          f"found "
          f"cold {cold['found']} (slow {cold['slow_found']}), warm {warm['found']} (slow "
          f"{warm['slow_found']}), ct2 {ct2['found']} (slow {ct2['slow_found']})")


if __name__ == "__main__":
    main()
