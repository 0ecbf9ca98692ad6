"""
``twistd bitpeer-crawl``: the crawler as a service.

    twistd -n bitpeer-crawl                      crawl mainnet once, then exit
    twistd -n bitpeer-crawl --onion-proxy 127.0.0.1:9050 --i2p-sam 127.0.0.1:7656
                                                 ... and Tor and I2P too
    twistd -n bitpeer-crawl --simnet 1000        crawl a simulated network offline

Options are checked before anything starts; a bad one prints the usage and
twistd exits non-zero.  This module holds the command line and makeService
only: the services, and the order they run in, are in bitpeer.crawl.service.
"""

import math

from twisted.application.service import MultiService
from twisted.logger import LogLevel
from twisted.python import usage

from .. import __version__
from ..application import ExitStatusService
from ..logs import levels
from ..networks import (
    NETWORKS,
    REGTEST,
    HostNameRefused,
    NetworkParams,
    get_network,
    parse_onlynet,
    parse_seed,
    parse_seed_lines,
)
from ..protocol import PeerOptions
from ..runtime import tune_garbage_collector
from ..simnet.network import SimNet
from ..simnet.presets import PRESETS, get_preset
from ..simnet.tap import SimNetRunner
from ..wire.errors import ProtocolError
from .crawler import (
    DEFAULT_CONCURRENCY,
    DEFAULT_I2P_CONCURRENCY,
    DEFAULT_I2P_TIMEOUT,
    DEFAULT_ONION_CONCURRENCY,
    DEFAULT_ONION_TIMEOUT,
    CrawlOptions,
)
from .discovery import DiscoveryOptions, make_resolver
from .history import DEFAULT_DEAD_AFTER, DEFAULT_RETRY_DEAD_EVERY, HistoryOptions
from .service import CrawlApplication, affordable
from .slots import parse_endpoint
from .timeouts import DEFAULT_FLOOR, LearningPolicy

#: The network a --simnet crawl speaks (regtest's magic, its own name).
SIMNET = NetworkParams(name="simnet", magic=REGTEST.magic, default_port=REGTEST.default_port)


def _duration(text):
    """Seconds from ``90``, ``90s``, ``15m``, ``24h`` or ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise usage.UsageError(f"{text!r} is not a duration (e.g. 30, 15m, 24h)") from None
    if not math.isfinite(value) or value < 0:
        raise usage.UsageError(f"{text!r}: a duration is a finite number, not negative")
    return value


def _whole(text):
    """An int from the command line, with a message a person can act on."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _number(text):
    """A float from the command line, finite."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class _NamedCoerce(usage.CoerceParameter):
    """
    Coerces an option's value and, when that fails, names the option as
    the user typed it (``--concurrency: 'x' is not a whole number``);
    Twisted's own message names no option.
    """

    def dispatch(self, parameterName, value):
        try:
            super().dispatch(parameterName, value)
        except usage.UsageError as error:
            message = str(error).removeprefix("Parameter type enforcement failed: ")
            raise usage.UsageError(f"--{parameterName}: {message}") from None


#: CrawlOptions and PeerOptions fields set from an option: their
#: validators name the field, the user typed the option.
_OPTION_FIELDS = {
    field: f"--{field.replace('_', '-')}" for field in (
        "concurrency", "getaddr_fraction", "max_age", "connect_timeout", "handshake_timeout",
        "getaddr_timeout", "getaddr_idle_timeout", "user_agent", "transport",
        "onion_concurrency", "onion_timeout", "i2p_concurrency", "i2p_timeout", "proxy",
        "i2p_sam", "dead_after", "retry_dead_every")
}
_OPTION_FIELDS["onion_proxies"] = "--onion-proxy"
_OPTION_FIELDS["floor"] = "--connect-timeout-floor"


def _as_typed(error):
    """A validator's message with the field named as its option."""
    field, _, rest = str(error).partition(" ")
    if field in _OPTION_FIELDS:
        return f"{_OPTION_FIELDS[field]} {rest}"
    return str(error)


class Options(usage.Options):
    """The command line of ``twistd bitpeer-crawl``."""

    synopsis = "[options]"
    longdesc = (
        "Discover peers the way a Bitcoin node does (DNS seeds, fixed seeds, getaddr, "
        "the address book on disk), crawl every reachable node, and write a snapshot. "
        "With --simnet N the crawl runs offline against a simulated network."
    )

    optFlags = [
        ["allow-private", None, "dial private and loopback addresses learnt from gossip"],
        ["cjdns-reachable", None, "dial CJDNS (fc00::/8) directly, as IPv6: this host is on "
                                  "CJDNS (Core's -cjdnsreachable)"],
        ["forcednsseed", None, "query the DNS seeds even when the address book holds enough "
                               "good addresses"],
        ["fresh", None, "start a new crawl even if the address book holds an unfinished one"],
        ["verbose", "v", "log every connection's fate (debug level)"],
        ["fixed-connect-timeout", None, "keep --connect-timeout for every dial: learn "
                                        "nothing from the crawl's connects"],
    ]
    optParameters = [
        ["network", None, "mainnet", f"network: {', '.join(NETWORKS)}"],
        ["db", None, None, "address book (SQLite); default bitpeer.sqlite for mainnet, "
                           "bitpeer-NETWORK.sqlite for the others, in memory for --simnet"],
        ["out", None, "snapshots", "directory for JSON/CSV snapshots"],
        ["concurrency", None, None, "connections in flight at once (default: what the "
                                    f"open-file limit allows, at most {DEFAULT_CONCURRENCY})",
         _whole],
        ["getaddr-fraction", None, 1.0, "share of reachable nodes asked for addresses "
                                        "(0: none)", _number],
        ["max-age", None, 86400.0, "ignore gossiped addresses older than this", _duration],
        ["connect-timeout", None, 5.0, "TCP connect timeout; the ceiling of the one learnt "
                                       "from the crawl's own connects", _duration],
        ["connect-timeout-floor", None, DEFAULT_FLOOR,
         "the learnt connect timeout's lower bound", _duration],
        ["transport", None, "fast", "how to dial: fast (bitpeer's own, Linux epoll) or "
                                    "twisted (Twisted's endpoints, any reactor)"],
        ["proxy", None, None, "HOST:PORT of a SOCKS5 proxy for IPv4 and IPv6 dials too, and "
                              "for onions without --onion-proxy (Core's -proxy)"],
        ["onion-concurrency", None, DEFAULT_ONION_CONCURRENCY,
         "onion dials at once per SOCKS5 proxy (Tor's MaxClientCircuitsPending)", _whole],
        ["onion-timeout", None, DEFAULT_ONION_TIMEOUT,
         "connect timeout of a dial through a SOCKS5 proxy (Core's SOCKS5 timeout)",
         _duration],
        ["i2p-sam", None, None, "HOST:PORT of an I2P router's SAM 3.1 bridge: dial I2P "
                                "(e.g. 127.0.0.1:7656)"],
        ["i2p-concurrency", None, DEFAULT_I2P_CONCURRENCY, "I2P dials at once", _whole],
        ["i2p-timeout", None, DEFAULT_I2P_TIMEOUT,
         "connect timeout of an I2P dial (p2p-crawler's)", _duration],
        ["handshake-timeout", None, 20.0, "version/verack timeout", _duration],
        ["getaddr-timeout", None, 30.0, "total wait for a getaddr answer", _duration],
        ["getaddr-idle-timeout", None, 10.0, "wait since the last addr message", _duration],
        ["seeds-file", None, None, "file of HOST[:PORT] lines to start from"],
        ["dnsseed", None, "1", "1: query DNS seeds when the address book holds too few good "
                               "addresses; 0: never"],
        ["dns", None, "1", "1: resolve host names given with --seed and --seeds-file; "
                           "0: refuse them (no lookup at all with --dnsseed 0)"],
        ["fixed-seeds", None, "fallback", "fixed seeds: fallback (when nothing else gives an "
                                          "address), always, never"],
        ["dns-server", None, None, "HOST:PORT of the DNS server to ask (default: the system's)"],
        ["interval", None, 0.0, "repeat the crawl this often; 0 crawls once and exits",
         _duration],
        ["dead-after", None, DEFAULT_DEAD_AFTER, "an address whose last N attempts all "
                                                 "failed is dead", _whole],
        ["retry-dead-every", None, DEFAULT_RETRY_DEAD_EVERY,
         "dial dead addresses in one crawl of K (1: every crawl)", _whole],
        ["simnet", None, 0, "crawl an in-process simulated network of N nodes", _whole],
        ["simnet-dead", None, 0, "dead addresses in the simulated network", _whole],
        ["simnet-misbehaving", None, 0.0, "share of misbehaving simulated nodes", _number],
        ["simnet-seed", None, 1, "random seed of the simulated network", _whole],
        ["simnet-preset", None, None, f"shape the simulated network as a preset "
                                      f"({', '.join(PRESETS)}); --simnet N and --simnet-dead N, "
                                      "when not 0, set its sizes"],
        # Off unless asked for: circuits take the simulated Tor's time, and
        # a plain --simnet N crawl stays the clearnet crawl it always was.
        ["simnet-onion", None, 0, "onion nodes in the simulated network, behind its SOCKS5 "
                                  "front", _whole],
        ["simnet-i2p", None, 0, "I2P nodes in the simulated network, behind its SAM bridge",
         _whole],
        ["external-ip-url", None, None, "URL answering with our public IP (off by default)"],
        ["user-agent", None, f"/bitpeer:{__version__}/", "user agent we announce"],
    ]

    def __init__(self):
        super().__init__()
        self["seed"] = []
        self["onlynet"] = []
        self["onion-proxy"] = []
        for name, handler in self._dispatch.items():
            if type(handler) is usage.CoerceParameter:
                self._dispatch[name] = _NamedCoerce(self, handler.coerce)

    def opt_seed(self, value):
        """HOST[:PORT] to start from (repeatable; a host name is resolved at start)"""
        self["seed"].append(value)

    def opt_onion_proxy(self, value):
        """HOST:PORT of a Tor SOCKS5 port to dial onions through (repeatable: onion dials
        are spread over several Tor daemons)"""
        self["onion-proxy"].append(value)

    def opt_onlynet(self, value):
        """dial only this network (repeatable): ipv4, ipv6, onion, i2p, cjdns"""
        self["onlynet"].append(value)

    def postOptions(self):
        if self["verbose"]:
            levels.setLogLevelForNamespace("bitpeer", LogLevel.debug)
        if self["simnet-preset"] is not None:
            try:
                self["simnet-preset"] = get_preset(self["simnet-preset"])
            except ValueError as error:
                raise usage.UsageError(f"--simnet-preset: {error}") from None
            self["simnet"] = self["simnet"] or self["simnet-preset"].nodes
        try:
            self["network"] = SIMNET if self["simnet"] else get_network(self["network"])
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        network = self["network"]
        if self["db"] is None and not self["simnet"]:
            self["db"] = (
                "bitpeer.sqlite" if network.name == "mainnet" else f"bitpeer-{network.name}.sqlite"
            )
        for name in ("simnet", "simnet-dead", "simnet-onion", "simnet-i2p"):
            if self[name] < 0:
                raise usage.UsageError(f"--{name} cannot be negative")
        if not 0 <= self["simnet-misbehaving"] <= 1:
            raise usage.UsageError("--simnet-misbehaving is a share within 0..1")
        if self["max-age"] <= 0:
            raise usage.UsageError("--max-age must be more than 0")
        if self["fixed-seeds"] not in ("fallback", "always", "never"):
            raise usage.UsageError("--fixed-seeds is fallback, always or never")
        self["discovery"] = self._discovery_options()
        seeds = self._seeds(network)
        try:
            self["crawl"] = CrawlOptions(
                concurrency=(DEFAULT_CONCURRENCY if self["concurrency"] is None
                             else self["concurrency"]),
                getaddr_fraction=self["getaddr-fraction"],
                max_age=self["max-age"],
                connect_timeout=self["connect-timeout"],
                timeout_learning=None if self["fixed-connect-timeout"]
                else LearningPolicy(floor=self["connect-timeout-floor"]),
                transport=self["transport"],
                allow_private=self["allow-private"] or bool(self["simnet"]),
                networks=self["discovery"].networks,
                **self._overlay_options(),
            )
            self["peer"] = PeerOptions(
                user_agent=self["user-agent"],
                handshake_timeout=self["handshake-timeout"],
                getaddr_timeout=self["getaddr-timeout"],
                getaddr_idle_timeout=self["getaddr-idle-timeout"],
            )
            self["history"] = HistoryOptions(dead_after=self["dead-after"],
                                             retry_dead_every=self["retry-dead-every"])
        except (OSError, ValueError, ProtocolError) as error:
            raise usage.UsageError(_as_typed(error)) from None
        self["seeds"] = seeds
        if self["dns-server"]:
            try:
                make_resolver([self["dns-server"]])
            except ValueError as error:
                raise usage.UsageError(f"--dns-server: {error}") from None

    def _overlay_options(self):
        """The CrawlOptions fields of the proxies, the SAM bridge, CJDNS and
        their slots and timeouts; a bad HOST:PORT named by its option."""

        def endpoint(option, text):
            try:
                return parse_endpoint(text)
            except ValueError as error:
                raise usage.UsageError(f"--{option} {text.strip()}: {error}") from None

        return dict(
            onion_proxies=[endpoint("onion-proxy", text) for text in self["onion-proxy"]],
            proxy=self["proxy"] and endpoint("proxy", self["proxy"]),
            i2p_sam=self["i2p-sam"] and endpoint("i2p-sam", self["i2p-sam"]),
            cjdns_reachable=bool(self["cjdns-reachable"]),
            onion_concurrency=self["onion-concurrency"], onion_timeout=self["onion-timeout"],
            i2p_concurrency=self["i2p-concurrency"], i2p_timeout=self["i2p-timeout"],
        )

    def _discovery_options(self):
        """DiscoveryOptions from --dnsseed, --forcednsseed, --dns, --fixed-seeds
        and --onlynet, with Core's values and refusals."""
        for name in ("dnsseed", "dns"):
            if self[name] not in ("0", "1"):
                raise usage.UsageError(f"--{name} is 0 or 1, not {self[name]!r}")
        if self["forcednsseed"] and self["dnsseed"] == "0":
            # Core: "Cannot set -forcednsseed to true when setting -dnsseed to false."
            raise usage.UsageError("--forcednsseed cannot force DNS seeds that --dnsseed 0 "
                                   "turns off: give one or the other")
        try:
            networks = parse_onlynet(self["onlynet"])
        except ValueError as error:
            raise usage.UsageError(f"--onlynet: {error}") from None
        return DiscoveryOptions(dnsseed=self["dnsseed"] == "1",
                                forcednsseed=bool(self["forcednsseed"]),
                                fixed_seeds=self["fixed-seeds"], networks=networks)

    def _seeds(self, network):
        """--seed and --seeds-file: addresses, and host names unless --dns 0.
        A bad one is one line naming the option (and the file's line)."""
        names = self["dns"] == "1"
        # Core's MaybeFlipIPv6toCJDNS: with CJDNS reachable, fc00::/8 is CJDNS.
        cjdns = bool(self["cjdns-reachable"])
        seeds = []
        for text in self["seed"]:
            try:
                seeds.append(parse_seed(text, network.default_port, names=names,
                                        cjdns=cjdns, origin="--seed"))
            except ValueError as error:
                raise usage.UsageError(f"--seed {text.strip()}{_after_text(error, text)}"
                                       f"{_dns_hint(error)}") from None
        path = self["seeds-file"]
        if path:
            try:
                with open(path) as stream:
                    seeds += parse_seed_lines(stream, network.default_port, names=names,
                                              cjdns=cjdns, source=path)
            except (OSError, UnicodeDecodeError) as error:
                raise usage.UsageError(f"--seeds-file {path}: {error}") from None
            except ValueError as error:
                raise usage.UsageError(f"--seeds-file {error}{_dns_hint(error)}") from None
        return seeds


def _after_text(error, text):
    """An error about ``text``, to follow it (the message need not repeat
    it): ``" is ambiguous: ..."`` or ``": port 0 cannot be dialled"``."""
    message = str(error)
    quoted = f"{text.strip()!r}"
    if message.startswith(quoted):
        message = message[len(quoted):].lstrip(": ")
    return f" {message}" if message.startswith("is ") else f": {message}"


def _dns_hint(error):
    """Say which switch refused a host name."""
    return " (--dns 0)" if isinstance(error, HostNameRefused) else ""


def simnet_overlays(options):
    """The SimNet arguments of --simnet-onion and --simnet-i2p: only those
    asked for (a simnet without overlays is built as before)."""
    counts = {"onion": options["simnet-onion"], "i2p": options["simnet-i2p"]}
    return {name: count for name, count in counts.items() if count}


def simnet_shape(options):
    """The SimNet arguments of --simnet-dead and --simnet-preset: the
    preset's shape, and its dead addresses unless --simnet-dead says."""
    preset = options["simnet-preset"]
    if preset is None:
        return {"dead": options["simnet-dead"]}
    return {**preset.shape(), "dead": options["simnet-dead"] or preset.dead}


def crawl_application(options, reactor):
    """
    The CrawlApplication for ``options``, with the simulated network that
    ``--simnet N`` asks for (simnet_runner).
    """
    simnet, routes = simnet_runner(options, reactor)
    return CrawlApplication(options, reactor, simnet=simnet, simnet_routes=routes)


def simnet_runner(options, reactor):
    """
    The SimNetRunner that ``--simnet N`` asks for (served from this
    process, on loopback) and the function giving the routes to its
    overlays, or (None, None).  With overlay nodes, the crawl dials its
    onions through the simnet's SOCKS5 fronts and its I2P nodes through
    its SAM bridge, whose ports are known once it has started.
    """
    simnet = routes = None
    if options["simnet"]:
        overlays = simnet_overlays(options)
        simnet = SimNetRunner(lambda: SimNet(
            reactor, options["simnet"], **simnet_shape(options),
            misbehaving=options["simnet-misbehaving"], seed=options["simnet-seed"],
            network=options["network"],
            # The crawler's connections, and a moment's overlap as they close.
            max_connections=2 * affordable(options).concurrency,
            **overlays,
        ))
        if overlays:
            def routes():
                # The simnet's fronts, bound once it has started.
                return {"onion_proxies": tuple(simnet.simnet.socks_fronts()),
                        "i2p_sam": simnet.simnet.sam_bridge()}
    return simnet, routes


def makeService(options):
    """
    twistd's entry point: the crawl's services (service.CrawlApplication)
    beside the one that gives the process their exit status.
    """
    from twisted.internet import reactor

    tune_garbage_collector()
    crawl = crawl_application(options, reactor)
    top = MultiService()
    # Started first, so that a crawl that fails to start still sets the status.
    ExitStatusService(crawl.exit_code).setServiceParent(top)
    crawl.setServiceParent(top)
    return top
