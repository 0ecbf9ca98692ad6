"""
Dialler cost: CPU per refused connection attempt, with the connecting sockets
watched as the reactor's writers and in the dialler's own epoll set (the
fast dialler), and through Twisted's endpoints (the "twisted" transport).

    python bench/dial.py [--attempts N] [--concurrency C] [--rounds R]

Every attempt goes to a bound, not listening socket on 127.0.0.1 (the kernel
refuses it at once), ``C`` at a time, each refusal dialling the next one,
until N have been refused; the figure is the process's CPU time over N.
Rounds alternate between the ways, to share the machine's drift; the
best round of each is printed.  The last line sums it up.
"""

import argparse
import functools
import select
import socket
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.protocol import Factory, Protocol

from bitpeer.net.dialler import Dialler, EpollSet, ReactorWriters
from bitpeer.net.endpoints import EndpointDialler
from bitpeer.wire.address import NetworkAddress


def refused_attempts(dialler_class, address, attempts, concurrency):
    """Dial until ``attempts`` are refused: a Deferred of microseconds of
    CPU per attempt."""
    done = Deferred()
    counts = {"started": 0, "failed": 0}

    def failed(_, error):
        counts["failed"] += 1
        if counts["started"] < attempts:
            counts["started"] += 1
            dialler.dial(address)
        elif counts["failed"] == attempts:
            done.callback((time.process_time() - start) / attempts * 1e6)

    dialler = dialler_class(reactor, Factory.forProtocol(Protocol), 30, failed)
    start = time.process_time()
    for _ in range(concurrency):
        counts["started"] += 1
        dialler.dial(address)
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--attempts", type=int, default=40000)
    parser.add_argument("--concurrency", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    refuser = socket.socket()
    refuser.bind(("127.0.0.1", 0))
    address = NetworkAddress.from_host("127.0.0.1", refuser.getsockname()[1])
    ways = {"reactor writers": functools.partial(Dialler, watch=ReactorWriters)}
    if hasattr(select, "epoll"):
        ways["epoll set"] = functools.partial(Dialler, watch=EpollSet)
    ways["twisted endpoints"] = EndpointDialler
    best = {}

    async def run():
        for _ in range(args.rounds):
            for name, dialler_class in ways.items():
                cost = await refused_attempts(dialler_class, address, args.attempts,
                                              args.concurrency)
                best[name] = min(cost, best.get(name, cost))
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(run()))
    reactor.run()
    for name, cost in best.items():
        print(f"{name:<17} {cost:6.1f} us CPU per refused attempt "
              f"({1e6 / cost:,.0f} attempts per CPU second)")
    print("SUMMARY refused attempt: " + ", ".join(
        f"{name} {cost:.1f} us" for name, cost in best.items()))


if __name__ == "__main__":
    main()
