"""
Memory under hostile peers: a crawl of a simulated network where most nodes
complete the handshake, then announce a huge message and trickle it
(``--kinds huge-trickle``: a 4 MB block, a 4 MB addrv2, or an addrv2 at its
legal maximum, never completed), alongside honest nodes.

    python bench/hostile.py [--honest 200] [--hostile 1000] [--seed 1]
                            [--crawler-code PATH]

The simnet runs in its own process (``twistd bitpeer-simnet``, from this
tree).  The crawl runs in a second process, this file with ``--child``: it
imports bitpeer from ``--crawler-code`` when given (a checkout of another
commit, for before/after figures), measures its RSS just before the crawl
starts (the baseline) and its peak (VmHWM) when it ends.  Printed: baseline
RSS, peak RSS, their difference, honest nodes found, wall time; the last
line is the SUMMARY.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import start_simnet


def status_kb(field):
    """A field of /proc/self/status in kB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(seeds_path, out_path, idle_timeout):
    """Crawl from the seeds with the bitpeer on sys.path; write the figures."""
    import gc
    import random

    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall

    from bitpeer.crawl.crawler import CrawlOptions, Crawler
    from bitpeer.networks import REGTEST
    from bitpeer.protocol import PeerOptions
    from bitpeer.wire.address import NetworkAddress

    with open(seeds_path) as stream:
        seeds = [NetworkAddress.parse(line.strip()) for line in stream if line.strip()]
    crawler = Crawler(
        reactor, REGTEST, seeds,
        options=CrawlOptions(concurrency=1000, connect_timeout=5, allow_private=True),
        peer_options=PeerOptions(getaddr_idle_timeout=idle_timeout),
        random=random.Random(1),
    )
    figures = {}
    sampled = [0]

    def sample():
        sampled[0] = max(sampled[0], status_kb("VmRSS"))

    def done(result):
        figures.update(
            peak_kb=status_kb("VmHWM"),
            sampled_peak_kb=sampled[0],
            elapsed=time.monotonic() - started[0],
            reachable=sorted(str(a) for a in result.reachable),
            reasons=sorted({u.reason for u in result.unreachable.values()}),
            getaddr=sorted({r.getaddr_outcome or "-" for r in result.reachable.values()}),
        )
        reactor.stop()

    def failed(failure):
        figures["error"] = failure.getTraceback()
        reactor.stop()

    def begin():
        gc.collect()
        figures["baseline_kb"] = status_kb("VmRSS")
        sampler.start(0.05)
        started[0] = time.monotonic()
        crawler.run().addCallbacks(done, failed)

    started = [0.0]
    sampler = LoopingCall(sample)
    reactor.callWhenRunning(begin)
    reactor.run()
    with open(out_path, "w") as stream:
        json.dump(figures, stream)


def run(honest, hostile, seed=1, crawler_code=None, idle_timeout=10.0, workdir=None):
    """One hostile crawl in two child processes: the figures, as a dict."""
    workdir = workdir or tempfile.mkdtemp(prefix="bitpeer-hostile-")
    nodes = honest + hostile
    simnet, truth_path, seeds = start_simnet(
        workdir, ["--nodes", str(nodes), "--kinds", f"huge-trickle={hostile / nodes}",
                  "--stale", "0", "--exotic", "0", "--seed", str(seed)],
    )
    out = os.path.join(workdir, "crawl.json")
    env = dict(os.environ)
    if crawler_code:
        env["PYTHONPATH"] = os.path.abspath(crawler_code)
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", seeds, out,
             str(idle_timeout)],
            cwd=crawler_code or workdir, env=env, check=True, timeout=1800,
        )
    finally:
        simnet.terminate()
        simnet.wait()
    wall = time.monotonic() - started
    with open(out) as stream:
        figures = json.load(stream)
    if "error" in figures:
        raise SystemExit(figures["error"])
    with open(truth_path) as stream:
        truth = json.load(stream)
    honest_nodes = {n["address"] for n in truth["nodes"] if n["kind"] == "honest"}
    found = honest_nodes & set(figures["reachable"])
    return {
        "honest": len(honest_nodes),
        "hostile": sum(n["kind"] == "huge-trickle" for n in truth["nodes"]),
        "honest_found": len(found),
        "reachable": len(figures["reachable"]),
        "baseline_rss_mb": round(figures["baseline_kb"] / 1024, 1),
        "peak_rss_mb": round(figures["peak_kb"] / 1024, 1),
        "growth_mb": round((figures["peak_kb"] - figures["baseline_kb"]) / 1024, 1),
        "crawl_s": round(figures["elapsed"], 1),
        "wall_s": round(wall, 1),
        "unreachable_reasons": figures["reasons"],
        "getaddr_outcomes": figures["getaddr"],
        "workdir": workdir,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2], float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--honest", type=int, default=200)
    parser.add_argument("--hostile", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--idle-timeout", type=float, default=10.0,
                        help="the crawler's getaddr idle timeout (how long a trickler is held)")
    parser.add_argument("--crawler-code", default=None,
                        help="a checkout whose bitpeer the crawl runs (default: this one)")
    args = parser.parse_args(argv)
    row = run(args.honest, args.hostile, args.seed, args.crawler_code, args.idle_timeout)
    for key, value in row.items():
        print(f"{key:<22} {value}")
    print(
        f"SUMMARY {row['hostile']} huge-trickle peers, {row['honest']} honest: "
        f"RSS {row['baseline_rss_mb']} -> {row['peak_rss_mb']} MB "
        f"(+{row['growth_mb']} MB), {row['honest_found']}/{row['honest']} honest found, "
        f"crawl {row['crawl_s']} s"
        + (f" [crawler code: {args.crawler_code}]" if args.crawler_code else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
