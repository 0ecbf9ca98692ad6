"""
The seeder's DNS server under load: queries per second and answer times
from a sample of good nodes.

    python bench/seed.py [--nodes 50000] [--queries 100000] [--window 8]
                         [--name x9] [--qtype A] [--edns]

The server (DNSService on 127.0.0.1, the reactor of this process) serves a
ServedSample of ``--nodes`` candidates: four in five IPv4, one in five IPv6,
with the service bits of today's nodes.  Their addresses are spread over the
whole address space so that the draws are as diverse as on the real network;
they are only numbers in answers, never dialled.  The per-client rate limit
stays on the path but is set beyond reach, since every query comes from one
address.

The load comes from a second process (this file with ``--generate``): a
plain UDP socket that keeps ``--window`` queries outstanding, each answer
sending the next, and times each query from its send to its answer.  A
window of 8 keeps the server busy on two cores while the time a query
waits behind the others stays small.  Printed: queries per second, the
answer time's median and 99th percentile, the server's CPU per query, the
records per answer; the last line is the SUMMARY.
"""

import argparse
import json
import random
import socket
import statistics
import struct
import sys
import time

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


def generate(port, name, qtype, queries, window, edns):
    """
    The load generator's process: send ``WARMUP`` then ``queries`` queries
    with ``window`` outstanding; print the figures as one JSON line.
    """
    from twisted.names import dns

    message = dns.Message(recDes=1)
    message.queries = [dns.Query(name, getattr(dns, qtype), dns.IN)]
    if edns:
        # The OPT record a resolver sends (RFC 6891): EDNS0, 1232 bytes.
        message.additional = [dns.RRHeader(b"", dns.OPT, 1232)]
    template = message.toStr()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(LOSS_TIMEOUT)
    total = WARMUP + queries
    sent_at = {}
    times = []
    records = []
    lost = 0
    next_id = 0

    def send():
        nonlocal next_id
        query_id = next_id & 0xFFFF
        next_id += 1
        sent_at[query_id] = time.perf_counter()
        sock.send(struct.pack("!H", query_id) + template[2:])

    for _ in range(window):
        send()
    started = None
    while len(times) + lost < queries:
        try:
            data = sock.recv(65535)
        except socket.timeout:
            lost += len(sent_at)
            sent_at.clear()
            for _ in range(window):
                send()
            continue
        now = time.perf_counter()
        query_id, = struct.unpack("!H", data[:2])
        sent = sent_at.pop(query_id, None)
        if sent is None:
            continue
        if next_id > WARMUP + window:
            if started is None:
                started = now
            times.append(now - sent)
            records.append(struct.unpack("!H", data[6:8])[0])
        if next_id < total:
            send()
    elapsed = time.perf_counter() - started
    times.sort()
    print(json.dumps({
        "qps": len(times) / elapsed,
        "p50_ms": times[len(times) // 2] * 1e3,
        "p99_ms": times[int(len(times) * 0.99)] * 1e3,
        "records": statistics.mean(records),
        "lost": lost,
    }))


def serve_and_load(args):
    """Serve the sample, run the load generator, return its figures."""
    from twisted.internet import reactor, utils

    from bitpeer.seed.dns import DNSService, SeedZone
    from bitpeer.seed.sample import ServedSample

    rng = random.Random(args.seed)
    sample = ServedSample(reactor, random=rng)
    sample.refresh(sample_candidates(args.nodes, rng))
    zone = SeedZone("seed.example.org", "ns.example.org", "hostmaster.example.org")
    server = DNSService(reactor, zone, sample, port=0, interface="127.0.0.1",
                        rate=1e12, burst=1e12)
    server.startService()
    port = server.ports[0].getHost().port
    # Figures while the seeder's monitor runs: start the monitor here.
    figures = {}

    def load():
        cpu = time.process_time()
        generator = utils.getProcessOutput(sys.executable, [
            __file__, "--generate", str(port), "--name", f"{args.name}.{zone.host}",
            "--qtype", args.qtype, "--queries", str(args.queries),
            "--window", str(args.window), *(["--edns"] if args.edns else [])],
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--nodes", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=100000)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--name", default="x9", help="the label queried (x9, xd...)")
    parser.add_argument("--qtype", default="A", choices=("A", "AAAA"))
    parser.add_argument("--edns", action="store_true",
                        help="send EDNS0 queries (1232 bytes), as resolvers do")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--generate", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate(args.generate, args.name, args.qtype, args.queries, args.window, args.edns)
        return
    figures = serve_and_load(args)
    print(f"sample           {args.nodes:,} nodes")
    print(f"queries          {args.queries:,} {args.qtype} {args.name}"
          f"{' with EDNS0' if args.edns else ''}, "
          f"window {args.window}, {figures['lost']} lost")
    print(f"served           {figures['qps']:,.0f} queries/s")
    print(f"answer time      p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms")
    print(f"server CPU       {figures['cpu_us']:.0f} us per answer")
    print(f"records          {figures['records']:.1f} per answer")
    print(f"SUMMARY seed DNS {args.nodes:,} nodes: {figures['qps']:,.0f} q/s, "
          f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
          f"{figures['cpu_us']:.0f} us CPU per answer")


if __name__ == "__main__":
    main()
