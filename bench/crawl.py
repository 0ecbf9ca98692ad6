"""
Crawl speed against a simulated network in a separate process.

    python bench/crawl.py [--network sparse|realistic] [--nodes N ...]
                          [--getaddr-fraction F] [--concurrency C] [--repeat R]

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


def run_crawler(workdir, seeds, args):
    """Run the crawl to completion; return (wall seconds, rusage, start and
    end epoch times)."""
    command = [
        twistd(), "-n", "--pidfile=", "--logfile", os.path.join(workdir, "crawl.log"),
        "bitpeer-crawl", "--network", "regtest", "--seeds-file", seeds, "--allow-private",
        "--db", os.path.join(workdir, "crawl.sqlite"), "--out", os.path.join(workdir, "out"),
        "--concurrency", str(args.concurrency), "--connect-timeout", str(args.connect_timeout),
        "--getaddr-fraction", str(args.getaddr_fraction), "--fixed-seeds", "never",
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
    parser.add_argument("--network", choices=("sparse", "realistic"), default="sparse")
    parser.add_argument("--nodes", type=int, nargs="+", default=[10000])
    parser.add_argument("--getaddr-fraction", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=5000)
    parser.add_argument("--connect-timeout", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
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

if __name__ == "__main__":
    main()
