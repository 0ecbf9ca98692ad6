"""
Crawl speed against a simulated network in a separate process.

    python bench/crawl.py [--network sparse|realistic] [--nodes N ...]
                          [--getaddr-fraction F] [--concurrency C] [--repeat R]
    python bench/crawl.py --network overlay [--proxies 1 2 4] [--onion N] [--i2p N]

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
"""

import argparse
import glob
import json
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

from _common import start_simnet, twistd  # noqa: E402
from codec import best_rate, sample_entries  # noqa: E402

from bitpeer.networks import MAINNET  # noqa: E402
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


def run_crawler(workdir, seeds, args, extra=()):
    """Run the crawl to completion (``extra``: more bitpeer-crawl options);
    return (wall seconds, rusage, start and end epoch times)."""
    command = [
        twistd(), "-n", "--pidfile=", "--logfile", os.path.join(workdir, "crawl.log"),
        "bitpeer-crawl", "--network", "regtest", "--seeds-file", seeds, "--allow-private",
        "--db", os.path.join(workdir, "crawl.sqlite"), "--out", os.path.join(workdir, "out"),
        "--concurrency", str(args.concurrency), "--connect-timeout", str(args.connect_timeout),
        "--getaddr-fraction", str(args.getaddr_fraction), "--fixed-seeds", "never", *extra,
    ]
    start, started_at = time.monotonic(), time.time()
    process = subprocess.Popen(command, cwd=workdir)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the crawl failed; see {workdir}/crawl.log")
    return wall, usage, started_at, time.time()


def process_cpu(pid):
    """User + system CPU seconds of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def judge(workdir, truth_path):
    """Completeness: which honest reachable nodes the snapshot found."""
    with open(truth_path) as stream:
        truth = json.load(stream)
    (snapshot_path,) = glob.glob(os.path.join(workdir, "out", "*-2*Z.json"))
    with open(snapshot_path) as stream:
        snapshot = json.load(stream)
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
    parser.add_argument("--network", choices=("sparse", "realistic", "overlay"),
                        default="sparse")
    parser.add_argument("--nodes", type=int, nargs="+", default=[10000])
    parser.add_argument("--getaddr-fraction", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=5000)
    parser.add_argument("--connect-timeout", type=float, default=2.0)
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
    if args.network == "overlay":
        return run_overlay(args)
    args.nodes = list(dict.fromkeys(args.nodes))
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
    (snapshot_path,) = glob.glob(os.path.join(workdir, "out", "*-2*Z.json"))
    with open(snapshot_path) as stream:
        snapshot = json.load(stream)
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


if __name__ == "__main__":
    main()
