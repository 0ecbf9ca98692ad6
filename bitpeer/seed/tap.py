"""
``twistd bitpeer-seed``: a DNS seeder, watching every node and serving
the good ones.

    twistd -n bitpeer-seed --host seed.example.org --ns ns.example.org \\
        --mbox hostmaster.example.org                  mainnet, DNS on port 5353
    twistd -n bitpeer-seed --simnet 1000 --host ...    offline, a simulated network

It takes the crawler's options as they are (bitpeer.crawl.tap.Options:
--network, --seed, --seeds-file, --db, --allow-private, the timeouts, the
proxies, --simnet N), so the same book serves both, and adds the DNS
zone's and the schedule's.  This module holds the command line and
makeService only: the services are in bitpeer.seed.service.
"""

import attr
from twisted.application.service import MultiService
from twisted.python import usage

from ..application import ExitStatusService
from ..crawl.history import DEFAULT_DEAD_AFTER, DEFAULT_RETRY_DEAD_EVERY
from ..crawl.tap import Options as CrawlTapOptions
from ..crawl.tap import _number, _whole, simnet_runner
from ..runtime import tune_garbage_collector
from .dns import DNSService
from .good import GoodRule
from .ratelimit import DEFAULT_BURST, DEFAULT_RATE
from .sample import ServedSample
from .service import SeedApplication
from .watch import Watch
from .zone import SeedZone

#: Crawl options that mean nothing to the seeder, and their defaults: given,
#: they are refused rather than silently ignored.
_CRAWL_ONLY = {"out": "snapshots", "interval": 0.0, "fresh": 0, "external-ip-url": None,
               "dead-after": DEFAULT_DEAD_AFTER, "retry-dead-every": DEFAULT_RETRY_DEAD_EVERY}


class Options(CrawlTapOptions):
    """The command line of ``twistd bitpeer-seed``: the crawl's, and the seed's."""

    longdesc = (
        "Crawl the network, then test every known node again and again, keeping sipa's "
        "seeder's reliability windows in the address book, and answer DNS queries for "
        "--host with good nodes. With --simnet N it runs offline against a simulated "
        "network."
    )

    optFlags = [
        ["limited", None, "serve NODE_NETWORK_LIMITED (pruned) nodes too, not only "
                          "NODE_NETWORK ones"],
    ]
    optParameters = [
        ["host", None, None, "the seed's domain name, e.g. seed.example.org (required)"],
        ["ns", None, None, "the name server's name for the NS record (required)"],
        ["mbox", None, None, "the zone's contact mailbox for the SOA record, e.g. "
                             "hostmaster.example.org (required)"],
        ["dns-port", None, 5353, "UDP and TCP port of the DNS server (53 in production; "
                                 "0: a free one)", _whole],
        ["dns-interface", None, "", "address the DNS server listens on (default: every "
                                    "IPv4 one; :: for IPv6 too)"],
        ["dns-rate", None, DEFAULT_RATE, "DNS queries a second one client address may keep "
                                         "asking; past it, its queries are dropped", _number],
        ["dns-burst", None, DEFAULT_BURST, "DNS queries one client address may ask at once",
         _whole],
        ["ttl", None, 3600, "TTL of the A and AAAA answers, seconds", _whole],
        ["min-height", None, None, "the height a good node has reached at least "
                                   "(default per network: mainnet 880000, testnet3 "
                                   "3600000, testnet4 65000, signet 230000, else 0)", _whole],
        ["min-good", None, 20, "warn when fewer nodes than this are good", _whole],
    ]

    def postOptions(self):
        for name, default in _CRAWL_ONLY.items():
            if self[name] != default:
                raise usage.UsageError(f"--{name} is bitpeer-crawl's; bitpeer-seed has no use "
                                       "for it")
        for name in ("host", "ns", "mbox"):
            if not self[name]:
                raise usage.UsageError(f"--{name} is required")
        if not 0 <= self["dns-port"] <= 0xFFFF:
            raise usage.UsageError("--dns-port must be within 0..65535")
        for name in ("dns-rate", "dns-burst"):
            if self[name] <= 0:
                raise usage.UsageError(f"--{name} must be positive")
        if self["min-good"] < 0:
            raise usage.UsageError("--min-good cannot be negative")
        if self["min-height"] is not None and self["min-height"] < 0:
            raise usage.UsageError("--min-height cannot be negative")
        super().postOptions()
        try:
            self["zone"] = SeedZone(self["host"], self["ns"], self["mbox"], ttl=self["ttl"])
        except ValueError as error:
            # SeedZone's validators name the field: the option of that name.
            raise usage.UsageError(f"--{error}") from None
        rule = GoodRule.for_network(
            self["network"], min_height=self["min-height"], limited=bool(self["limited"]),
            allow_private=self["crawl"].allow_private)
        if self["simnet"]:
            # Simulated nodes listen on the simulator's few ports, not on
            # a default one: any port will do.
            rule = attr.evolve(rule, default_port=None)
        self["rule"] = rule


def seed_application(options, reactor):
    """
    The SeedApplication for ``options``: its watch, sample and DNS server,
    and the simulated network ``--simnet N`` asks for (built as
    ``bitpeer-crawl`` builds it).
    """
    simnet, routes = simnet_runner(options, reactor)
    sample = ServedSample(reactor)
    dns = DNSService(reactor, options["zone"], sample, port=options["dns-port"],
                     interface=options["dns-interface"], rate=options["dns-rate"],
                     burst=options["dns-burst"])
    return SeedApplication(options, reactor, Watch(options["rule"]), sample, dns=dns,
                           simnet=simnet, simnet_routes=routes)


def makeService(options):
    """twistd's entry point: the seeder's services beside the one that gives
    the process their exit status."""
    from twisted.internet import reactor

    tune_garbage_collector()
    seed = seed_application(options, reactor)
    top = MultiService()
    ExitStatusService(seed.exit_code).setServiceParent(top)
    seed.setServiceParent(top)
    return top

