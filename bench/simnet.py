"""
SimNet cost: start-up time, memory and CPU per connection.

    python bench/simnet.py [--nodes 1000 10000] [--connections 500] [--concurrency 100]

For each N, a fresh process starts SimNet(reactor, nodes=N, dead=4N) and
measures start() (binding the sockets and building the population) in wall
time, the resident-memory increase it causes (VmRSS from /proc/self/status,
before and after), and the time to write the ground truth as JSON.  Then it
dials ``--connections`` honest nodes with bitpeer's connectPeer, does one
getaddr each, and closes, ``--concurrency`` at a time.

CPU per connection is the whole process's CPU time (user + system) for that
phase divided by the connections: the simulated nodes *and* the bitpeer
clients run in the same process, so it is an upper bound on the simnet's
own share, not a measure of it.
"""

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time


def rss_kib():
    """This process's resident set (VmRSS), KiB."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds():
    times = os.times()
    return times.user + times.system


def measure(nodes, connections, concurrency, seed):
    """Run in a child process: one network, one JSON line on stdout."""
    from twisted.internet import defer, reactor

    from bitpeer.errors import PeerError
    from bitpeer.factory import connectPeer
    from bitpeer.simnet.network import SimNet
    from bitpeer.networks import REGTEST as SIMNET

    out = {"nodes": nodes, "dead": 4 * nodes}

    async def run():
        gc.collect()
        rss0 = rss_kib()
        started = time.perf_counter()
        simnet = SimNet(reactor, nodes=nodes, dead=4 * nodes, seed=seed, network=SIMNET)
        truth = simnet.start()
        out["start_s"] = time.perf_counter() - started
        gc.collect()
        out["rss_mib"] = (rss_kib() - rss0) / 1024
        started = time.perf_counter()
        text = json.dumps(truth, indent=1)
        out["truth_json_s"] = time.perf_counter() - started
        out["truth_mib"] = len(text) / 2**20
        del text
        honest = [n["address"] for n in truth["nodes"] if n["kind"] == "honest"]
        chosen = random.Random(seed).sample(honest, min(connections, len(honest)))
        semaphore = defer.DeferredSemaphore(concurrency)
        answered, entries, failed = 0, 0, 0

        async def one(address):
            nonlocal answered, entries, failed
            try:
                peer = await connectPeer(reactor, address, SIMNET, connect_timeout=10,
                                         handshake_timeout=20)
                result = await peer.getaddr()
                answered += result.outcome == "answered"
                entries += len(result.addresses)
                peer.close()
                await peer.whenClosed()
            except PeerError:
                failed += 1

        def limited(address):
            return semaphore.run(lambda: defer.Deferred.fromCoroutine(one(address)))

        cpu0, started = cpu_seconds(), time.perf_counter()
        await defer.gatherResults([limited(a) for a in chosen])
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
        out.update(
            connections=len(chosen), answered=answered, failed=failed,
            mean_entries=entries / max(1, answered), connect_phase_s=wall,
            per_second=len(chosen) / wall, cpu_ms_per_connection=1000 * cpu / len(chosen),
            stats=simnet.stats()["by_kind"].get("honest", {}),
        )
        await simnet.stop()

    def done(result):
        if isinstance(result, Exception) or hasattr(result, "getTraceback"):
            out["error"] = str(getattr(result, "value", result))
        reactor.stop()

    reactor.callWhenRunning(
        lambda: defer.Deferred.fromCoroutine(run()).addBoth(done)
    )
    reactor.run()
    print(json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        measure(args.one, args.connections, args.concurrency, args.seed)
        return 0
    print(__doc__.strip().splitlines()[0])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; each N in a fresh process; "
          f"{args.connections} connections (connectPeer + getaddr), "
          f"{args.concurrency} at a time")
    print()
    header = (f"{'nodes':>7} {'dead':>7} {'start s':>8} {'RSS +MiB':>9} {'truth MiB':>9} "
              f"{'json s':>7} {'conns':>6} {'answered':>8} {'entries':>8} {'conn/s':>7} "
              f"{'CPU ms/conn*':>12}")
    print(header)
    rows = []
    for nodes in args.nodes:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(nodes), "--connections",
             str(args.connections), "--concurrency", str(args.concurrency),
             "--seed", str(args.seed)],
            capture_output=True, text=True, check=False,
        )
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        if child.returncode or not lines:
            print(f"{nodes:>7} failed (exit {child.returncode}): {child.stderr.strip()[-500:]}")
            rows.append({"nodes": nodes, "error": f"exit {child.returncode}"})
            continue
        row = json.loads(lines[-1])
        rows.append(row)
        if "error" in row:
            print(f"{nodes:>7} failed: {row['error']}")
            continue
        print(f"{row['nodes']:>7} {row['dead']:>7} {row['start_s']:>8.2f} "
              f"{row['rss_mib']:>9.1f} {row['truth_mib']:>9.1f} {row['truth_json_s']:>7.2f} "
              f"{row['connections']:>6} {row['answered']:>8} {row['mean_entries']:>8.0f} "
              f"{row['per_second']:>7.0f} {row['cpu_ms_per_connection']:>12.2f}")
    print()
    print("* CPU ms/conn: the whole process's CPU (user + system) during the connect phase")
    print("  per connection. The simulated nodes and the bitpeer clients share the process,")
    print("  so this is an upper bound on the simnet's own cost, not a measure of it.")
    parts = []
    for row in rows:
        if "error" in row:
            parts.append(f"{row['nodes']} nodes: FAILED ({row['error']})")
        else:
            parts.append(
                f"{row['nodes']} nodes/{row['dead']} dead: start {row['start_s']:.2f} s, "
                f"+{row['rss_mib']:.0f} MiB RSS, "
                f"<= {row['cpu_ms_per_connection']:.1f} ms CPU/conn (process total)"
            )
    print("SUMMARY " + "; ".join(parts))
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
