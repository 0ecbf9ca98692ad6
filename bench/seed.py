"""
The DNS seeder under load: queries per second and answer times while its
monitor tests a simulated network, the monitor's CPU per tested node, and
the DNS server alone.

    python bench/seed.py [--nodes 8000] [--dead 42000] [--queries 200000]
                         [--window 8] [--rate 5000] [--rate-seconds 30]
                         [--name x9] [--qtype A] [--edns] [--monitor-seconds 60]
                         [--sample 50000] [--only monitor|alone]

**The seeder.**  ``twistd bitpeer-simnet --preset mainnet`` runs in a
process of its own with ``--nodes`` reachable nodes on regtest's port (so
that they can be good) and ``--dead`` addresses that lead nowhere (most
time out), some 50,000 addresses in all; ``twistd -n bitpeer-seed`` runs
against it in another (``--seeds-file``, ``--allow-private``, DNS on a free
port of 127.0.0.1, ``--dns-rate`` and ``--dns-burst`` beyond reach: every
query comes from one address), and the load generator (below) in a third.

1. The first crawl: the seeder crawls the simnet and tests every address;
   once its good nodes are served (its log says so), the loads run with the
   monitor idle (nothing is due for 1,000 s).  Then SIGTERM.
2. The steady state.  The book's test times are moved back so that each
   address falls due at a random moment of the next 1,000 s, as in a seeder
   that has run for a while (every address tested every 1,000 s or later),
   and the seeder starts again on it: its monitor now tests some 50
   addresses a second, in rounds.  For ``--monitor-seconds`` the monitor
   runs alone: its CPU (from /proc) over the tests it saved to the book
   (the sum of the ``reliability`` table's tries, read between the saves
   that end its rounds) is the CPU per tested node.  Then the same loads
   run while the rounds go on.

Simulated nodes all live in 127.1.0.0/16, one network group, so each A
answer of the seeder holds one record where a real sample gives 29.

**The DNS server alone** (``--sample`` candidates, in this process): a
ServedSample of candidates spread over the whole address space, four in
five IPv4, one in five IPv6, with the service bits of today's nodes, so that
the draws are as diverse as on the real network (they are never dialled),
served by DNSService on 127.0.0.1 with the rate limit on the path but beyond
reach.

The load comes from a separate process (this file with ``--generate``): a
plain UDP socket that times each query from its send to its answer.  Two
loads: ``--queries`` with ``--window`` outstanding, each answer sending the
next (the most the server answers: a window of 8 keeps it busy on two
cores while the time a query waits behind the others stays small), and,
against the seeder, queries sent at ``--rate`` a second for
``--rate-seconds`` whatever the answers, as resolvers ask: there a stall of
the seeder's reactor delays every query sent meanwhile, where the first
load would only delay the few outstanding.  Printed: queries per second,
the answer time's median, 99th and 99.9th percentiles and maximum, the
records per answer, the server's CPU per answer (alone); the last line is
the SUMMARY.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import process_cpu, start_simnet, twistd  # noqa: E402

#: Service bits of the sample, with their weights: archival and pruned
#: nodes, with and without BIP324, as in a crawl of 2025.
SERVICES = ((0xC09, 45), (0x409, 20), (0xC49, 10), (0x40D, 5), (0x9, 5), (0x449, 5),
            (0x408, 5), (0x1, 5))
#: Queries sent before timing starts (the first draws fill the caches).
WARMUP = 2000
#: Seconds without an answer before the outstanding queries count as lost.
LOSS_TIMEOUT = 1.0


def sample_candidates(count, rng):
    """``count`` Candidates, one in five IPv6, spread over the address space."""
    from bitpeer.seed.sample import Candidate
    from bitpeer.wire.address import Network, NetworkAddress

    values, weights = zip(*SERVICES)
    candidates = []
    for n in range(count):
        if n % 5:
            address = NetworkAddress(Network.IPV4, bytes(
                [rng.randrange(1, 224)] + [rng.randrange(256) for _ in range(3)]), 8333)
        else:
            address = NetworkAddress(Network.IPV6, b"\x20\x01" + rng.randbytes(14), 8333)
        candidates.append(Candidate(address, rng.choices(values, weights)[0]))
    return candidates


def generate(port, name, qtype, queries, window, edns, rate=None):
    """
    The load generator's process: ``queries`` queries, with ``window``
    outstanding (after ``WARMUP``), or sent at ``rate`` a second whatever
    the answers; print the figures as one JSON line.
    """
    from twisted.names import dns

    message = dns.Message(recDes=1)
    message.queries = [dns.Query(name, getattr(dns, qtype), dns.IN)]
    if edns:
        # The OPT record a resolver sends (RFC 6891): EDNS0, 1232 bytes.
        message.additional = [dns.RRHeader(b"", dns.OPT, 1232)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    run = _Timed(sock, message.toStr())
    if rate:
        run.offered(queries, rate)
    else:
        run.closed(queries, window)
    print(json.dumps(run.figures()))


class _Timed:
    """Queries sent on ``sock`` from ``template`` (ids in turn), each timed
    from its send to its answer."""

    def __init__(self, sock, template):
        self.sock = sock
        self.body = template[2:]
        self.sent_at = {}
        self.times = []
        self.records = []
        self.lost = 0
        self.next_id = 0
        self.started = self.ended = None

    def send(self):
        query_id = self.next_id & 0xFFFF
        self.next_id += 1
        if self.sent_at.pop(query_id, None) is not None:
            self.lost += 1  # unanswered since the ids went round
        self.sent_at[query_id] = time.perf_counter()
        self.sock.send(struct.pack("!H", query_id) + self.body)

    def receive(self, timed=True):
        """One answer (socket.timeout or BlockingIOError if none comes)."""
        data = self.sock.recv(65535)
        now = time.perf_counter()
        sent = self.sent_at.pop(struct.unpack("!H", data[:2])[0], None)
        if sent is not None and timed:
            self.times.append(now - sent)
            self.records.append(struct.unpack("!H", data[6:8])[0])
            self.ended = now

    def closed(self, queries, window):
        """``window`` outstanding, each answer sending the next; the first
        WARMUP answers untimed."""
        self.sock.settimeout(LOSS_TIMEOUT)
        total = WARMUP + queries
        for _ in range(window):
            self.send()
        while len(self.times) + self.lost < queries:
            try:
                self.receive(timed=self.next_id > WARMUP + window)
            except socket.timeout:
                self.lost += len(self.sent_at)
                self.sent_at.clear()
                for _ in range(window):
                    self.send()
                continue
            if self.started is None and self.times:
                self.started = self.ended
            if self.next_id < total:
                self.send()

    def offered(self, queries, rate):
        """``queries`` sent at ``rate`` a second, on schedule whether or not
        the server keeps up (a stall delays every query sent meanwhile)."""
        start = self.started = time.perf_counter()
        sent = 0
        while sent < queries:
            now = time.perf_counter()
            while sent < queries and start + sent / rate <= now:
                self.send()
                sent += 1
            # Wait for an answer until the next send is due (0: only take
            # one that is there).
            self.sock.settimeout(max(0.0, start + sent / rate - time.perf_counter()))
            try:
                self.receive()
            except (socket.timeout, BlockingIOError):
                pass
        self.sock.settimeout(LOSS_TIMEOUT)
        try:
            while self.sent_at:
                self.receive()
        except socket.timeout:
            self.lost += len(self.sent_at)

    def figures(self):
        times = sorted(self.times)
        return {
            "qps": len(times) / (self.ended - self.started),
            "p50_ms": times[len(times) // 2] * 1e3,
            "p99_ms": times[int(len(times) * 0.99)] * 1e3,
            "p999_ms": times[int(len(times) * 0.999)] * 1e3,
            "max_ms": times[-1] * 1e3,
            "records": statistics.mean(self.records),
            "lost": self.lost,
        }


def server_alone(args):
    """Serve a sample in this process, run the load generator, return its
    figures."""
    from twisted.internet import reactor, utils

    from bitpeer.seed.dns import DNSService, SeedZone
    from bitpeer.seed.sample import ServedSample

    rng = random.Random(args.seed)
    sample = ServedSample(reactor, random=rng)
    sample.refresh(sample_candidates(args.sample, rng))
    zone = SeedZone("seed.example.org", "ns.example.org", "hostmaster.example.org")
    server = DNSService(reactor, zone, sample, port=0, interface="127.0.0.1",
                        rate=1e12, burst=1e12)
    server.startService()
    port = server.ports[0].getHost().port
    figures = {}

    def load():
        cpu = time.process_time()
        generator = utils.getProcessOutput(sys.executable, generator_argv(args, port),
                                           errortoo=True)

        def done(output):
            figures.update(json.loads(output.splitlines()[-1]))
            figures["cpu_us"] = (time.process_time() - cpu) / server.counters.answered * 1e6

        generator.addCallback(done)
        generator.addBoth(lambda result: reactor.stop() or result)
        generator.addErrback(lambda failure: print(failure.getTraceback()))

    reactor.callWhenRunning(load)
    reactor.run()
    if not figures:
        raise SystemExit("the load generator failed")
    return figures


# -- the seeder in its own process, against a simnet in another ----------------------

#: The zone the seeder serves.
HOST = "seed.example.org"
#: The port the simulated nodes listen on: regtest's, so that they can be good.
REGTEST_PORT = 18444
#: Seconds the seeder may take to serve its good nodes (its first crawl).
SERVE_TIMEOUT = 900
#: Seconds between reads of the book and of the seeder's CPU.
POLL = 0.25
#: The seeder's log lines the benchmark waits for.
LISTENING = re.compile(r"DNS: serving \S+ on UDP and TCP [\d.]+:(\d+)")
SERVED = re.compile(r"sample served: [^\n]*, now (\d+) addresses")
#: Seconds over which the steady state spreads the tests due (MIN_RETRY:
#: a good node is tested every 1,000 s).
STEADY_SPREAD = 1000.0


def generator_argv(args, port, offered=False):
    """The load generator's command line, against ``port`` on 127.0.0.1:
    ``--queries`` with ``--window`` outstanding, or (``offered``) queries at
    ``--rate`` for ``--rate-seconds``."""
    load = (["--rate", str(args.rate), "--queries", str(int(args.rate * args.rate_seconds))]
            if offered else ["--rate", "0", "--queries", str(args.queries),
                             "--window", str(args.window)])
    return [__file__, "--generate", str(port), "--name", f"{args.name}.{HOST}",
            "--qtype", args.qtype, *load, *(["--edns"] if args.edns else [])]


class Seeder:
    """``twistd -n bitpeer-seed`` against the simnet's seeds, on the book
    in ``workdir``, logging to seed-``run``.log there."""

    def __init__(self, workdir, seeds, args, run):
        self.db = os.path.join(workdir, "seed.sqlite")
        self.log = os.path.join(workdir, f"seed-{run}.log")
        tuning = ["--connect-timeout", str(args.connect_timeout)]
        if args.concurrency:
            tuning += ["--concurrency", str(args.concurrency)]
        self.process = subprocess.Popen([
            twistd(), "-n", "--pidfile=", "--logfile", self.log, "bitpeer-seed",
            "--host", HOST, "--ns", "ns.example.org", "--mbox", "hostmaster.example.org",
            "--network", "regtest", "--seeds-file", seeds, "--allow-private",
            "--fixed-seeds", "never", "--db", self.db, "--dns-port", "0",
            "--dns-interface", "127.0.0.1", "--dns-rate", "1e9", "--dns-burst", "1000000000",
            *tuning], cwd=workdir)

    def serving(self):
        """Wait until good nodes are served; the DNS port."""
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            text = self._read_log()
            port = LISTENING.search(text)
            if port and any(int(n) for n in SERVED.findall(text)):
                return int(port.group(1))
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the seeder did not serve; see {self.log}")
            time.sleep(POLL)

    def _read_log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as stream:
                return stream.read()
        except FileNotFoundError:
            return ""

    def cpu(self):
        return process_cpu(self.process.pid)

    def stop(self):
        """SIGTERM, and wait: its last windows reach the book."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait()


def book_counts(db):
    """(addresses known, addresses tested, tests, good nodes) in the book."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        known = connection.execute("SELECT count(*) FROM addresses").fetchone()[0]
        tested, tests, good = connection.execute(
            "SELECT count(*), coalesce(sum(tries), 0), coalesce(sum(good), 0) "
            "FROM reliability").fetchone()
        return known, tested, tests, good
    finally:
        connection.close()


def spread_due(db, rng, now):
    """
    Move each tested address's last test (and its last success, if that
    was the same test) back to a random moment of the last STEADY_SPREAD
    seconds: each falls due within the next STEADY_SPREAD seconds, as in a
    seeder that has run for a while.  The seeder is stopped meanwhile.
    """
    connection = sqlite3.connect(db)
    try:
        with connection:
            rows = connection.execute(
                "SELECT rowid, last_try, last_success FROM reliability").fetchall()
            connection.executemany(
                "UPDATE reliability SET last_try = ?, last_success = ? WHERE rowid = ?",
                [(moved, moved if last_success == last_try else last_success, rowid)
                 for rowid, last_try, last_success in rows
                 for moved in [now - rng.uniform(0, STEADY_SPREAD)]])
    finally:
        connection.close()


def monitor_cpu(seeder, seconds):
    """
    The monitor alone for ``seconds``: CPU seconds, tests and rounds saved
    between the first and the last save seen (the book's sum of tries
    changes once a round).
    """
    saves = []
    tests = book_counts(seeder.db)[2]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(saves) < 2:
        if time.monotonic() > deadline + SERVE_TIMEOUT:
            raise SystemExit(f"the monitor saved no round; see {seeder.log}")
        time.sleep(POLL)
        now_tests = book_counts(seeder.db)[2]
        if now_tests != tests:
            tests = now_tests
            saves.append((time.monotonic(), seeder.cpu(), tests))
    (t0, cpu0, tests0), (t1, cpu1, tests1) = saves[0], saves[-1]
    return {"cpu_s": cpu1 - cpu0, "tests": tests1 - tests0, "rounds": len(saves) - 1,
            "wall_s": t1 - t0}


def load(args, port, offered=False):
    """Run the load generator against ``port`` (generator_argv); its figures."""
    output = subprocess.run([sys.executable, *generator_argv(args, port, offered)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def with_monitor(args):
    """The seeder's first crawl, the load with its monitor idle, then the
    steady state: the monitor alone, and the load while its rounds run."""
    workdir = tempfile.mkdtemp(prefix="bitpeer-bench-seed-")
    simnet, _, seeds = start_simnet(workdir, [
        "--preset", "mainnet", "--nodes", str(args.nodes), "--dead", str(args.dead),
        "--port", str(REGTEST_PORT), "--seed", str(args.seed)])
    figures = {"workdir": workdir}
    try:
        started = time.monotonic()
        seeder = Seeder(workdir, seeds, args, 1)
        try:
            port = seeder.serving()
            figures["first_crawl_s"] = time.monotonic() - started
            figures["idle"] = load(args, port)
            figures["idle_offered"] = load(args, port, offered=True)
        finally:
            seeder.stop()
        figures["book"] = book_counts(seeder.db)
        spread_due(seeder.db, random.Random(args.seed), time.time())
        seeder = Seeder(workdir, seeds, args, 2)
        try:
            port = seeder.serving()
            figures["monitor"] = monitor_cpu(seeder, args.monitor_seconds)
            tests, cpu = book_counts(seeder.db)[2], seeder.cpu()
            figures["running"] = load(args, port)
            figures["running_offered"] = load(args, port, offered=True)
            figures["tests_under_load"] = book_counts(seeder.db)[2] - tests
            figures["cpu_under_load"] = seeder.cpu() - cpu
        finally:
            seeder.stop()
    finally:
        simnet.terminate()
        simnet.wait()
    return figures


def answer_text(figures):
    return (f"{figures['qps']:,.0f} q/s, p50 {figures['p50_ms']:.2f} ms, p99 "
            f"{figures['p99_ms']:.2f} ms, p99.9 {figures['p999_ms']:.2f} ms, max "
            f"{figures['max_ms']:.1f} ms, {figures['records']:.1f} records per answer, "
            f"{figures['lost']} lost")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--nodes", type=int, default=8000, help="reachable simulated nodes")
    parser.add_argument("--dead", type=int, default=42000,
                        help="simulated addresses that lead nowhere")
    parser.add_argument("--connect-timeout", type=float, default=2.0,
                        help="the seeder's --connect-timeout")
    parser.add_argument("--concurrency", type=int, help="the seeder's --concurrency "
                                                        "(default: its own)")
    parser.add_argument("--monitor-seconds", type=float, default=60.0,
                        help="how long the monitor runs alone for its CPU figure")
    parser.add_argument("--sample", type=int, default=50000,
                        help="candidates served by the DNS server alone")
    parser.add_argument("--only", choices=("monitor", "alone"),
                        help="run only the seeder with its monitor, or only the server alone")
    parser.add_argument("--queries", type=int, default=200000)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--rate", type=int, default=5000,
                        help="queries a second offered to the seeder for its answer times "
                             "(sent on schedule, whatever the answers)")
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument("--name", default="x9", help="the label queried (x9, xd...)")
    parser.add_argument("--qtype", default="A", choices=("A", "AAAA"))
    parser.add_argument("--edns", action="store_true",
                        help="send EDNS0 queries (1232 bytes), as resolvers do")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--generate", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate(args.generate, args.name, args.qtype, args.queries, args.window, args.edns,
                 args.rate)
        return
    query = (f"{args.queries:,} {args.qtype} {args.name}{' with EDNS0' if args.edns else ''}, "
             f"window {args.window}")
    print(f"queries          {query}", flush=True)
    summary = []
    if args.only != "alone":
        seeder = with_monitor(args)
        known, tested, tests, good = seeder["book"]
        monitor, running = seeder["monitor"], seeder["running"]
        per_test = monitor["cpu_s"] / monitor["tests"] * 1e3
        print(f"seeder           {args.nodes:,} nodes and {args.dead:,} dead addresses "
              f"(simnet preset mainnet); {seeder['workdir']}")
        print(f"first crawl      {known:,} addresses in the book, {tested:,} tested, {good:,} "
              f"good, served after {seeder['first_crawl_s']:.0f} s")
        offered = f"  at {args.rate:,} q/s"
        print(f"monitor idle     {answer_text(seeder['idle'])}")
        print(f"{offered:<17}{answer_text(seeder['idle_offered'])}")
        print(f"monitor running  {answer_text(running)}")
        print(f"{offered:<17}{answer_text(seeder['running_offered'])}")
        print(f"                 meanwhile {seeder['tests_under_load']:,} tests saved, seeder "
              f"CPU {seeder['cpu_under_load']:.1f} s")
        print(f"monitor CPU      {per_test:.2f} ms per tested node ({monitor['cpu_s']:.1f} s "
              f"over {monitor['tests']:,} tests in {monitor['rounds']} rounds, "
              f"{monitor['wall_s']:.0f} s, no load)")
        at_rate = seeder["running_offered"]
        summary.append(f"seeder, {known:,}-address book, monitor running: "
                       f"{running['qps']:,.0f} q/s; at {args.rate:,} q/s p50 "
                       f"{at_rate['p50_ms']:.2f} ms, p99 {at_rate['p99_ms']:.2f} ms, max "
                       f"{at_rate['max_ms']:.0f} ms; monitor {per_test:.2f} ms CPU per "
                       f"tested node")
    if args.only != "monitor":
        alone = server_alone(args)
        print(f"server alone     {args.sample:,}-node sample: {answer_text(alone)}; "
              f"{alone['cpu_us']:.0f} us CPU per answer")
        summary.append(f"server alone, {args.sample:,} nodes: {alone['qps']:,.0f} q/s, "
                       f"p50 {alone['p50_ms']:.2f} ms, p99 {alone['p99_ms']:.2f} ms")
    print("SUMMARY seed DNS " + "; ".join(summary))


if __name__ == "__main__":
    main()
