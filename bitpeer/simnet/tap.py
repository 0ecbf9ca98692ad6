"""
``twistd bitpeer-simnet``: a simulated Bitcoin network as a service.

    twistd -n bitpeer-simnet --nodes 10000 --dead 40000 --seed 1 \\
        --truth truth.json --seeds-file seeds.txt [--misbehaving 0.05] [--latency-ms 50]

    twistd -n bitpeer-simnet --nodes 2000 --onion 3000 --onion-dead 9000 --i2p 300 \
        --circuit-latency 0.1-0.6 --dead-delay 0.5-2 --circuits 32 --socks-fronts 2

    twistd -n bitpeer-simnet --preset mainnet [--nodes 2000 ...]

It writes the ground truth and a seeds file, then serves until stopped,
logging its counters every few seconds (and writing them to --stats).
Arguments are checked before any socket is opened.  Onion nodes are served
through SOCKS5 fronts and I2P nodes through a SAM 3.1 bridge, on 127.0.0.1;
their addresses are in the log and in the truth file ("fronts").  A
``--preset`` (presets.py) sets the network's shape; any option given
explicitly overrides the preset's value.
"""

from twisted.application.service import Service
from twisted.python import usage

from ..files import atomic_write
from ..logs import logger
from ..runtime import open_file_limit, tune_garbage_collector
from ..networks import NETWORKS, get_network
from .latency import Spread
from .network import FIXED_SOCKETS, SimNet, StatsLogger, write_json
from .population import KINDS, loopback_index, loopback_ip
from .presets import PRESETS, get_preset


def _share(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{text} is not a share within 0..1")
    return value


def _range(text):
    """``0.1-0.6`` -> (0.1, 0.6) seconds."""
    low, dash, high = text.partition("-")
    try:
        value = (float(low), float(high if dash else low))
    except ValueError:
        raise ValueError(f"{text!r} is not a range of seconds such as 0.1-0.6") from None
    if not 0 <= value[0] <= value[1]:
        raise ValueError(f"{text!r} needs 0 <= low <= high")
    return value


def _kinds(text):
    """
    ``silent=0.1,garbage=0.05`` -> {"silent": 0.1, "garbage": 0.05}.
    UsageError, one line naming the fault and the kinds there are, for
    anything else (twistd prints it after the usage, exit status 1).
    """
    kinds = {}
    for part in filter(None, text.split(",")):
        name, equals, share = part.partition("=")
        if name not in KINDS:
            raise usage.UsageError(
                f"--kinds: unknown kind {name!r}; kinds: {', '.join(KINDS)}"
            )
        if not equals:
            raise usage.UsageError(
                f"--kinds: {name!r} needs a share, as in {name}=0.05 (within 0..1)"
            )
        try:
            kinds[name] = _share(share)
        except ValueError:
            raise usage.UsageError(
                f"--kinds: {name}={share} is not a share within 0..1"
            ) from None
    return kinds


class _Given(usage.CoerceParameter):
    """Coerces an option's value and notes that the user gave the option
    (``Options.given``), so that it overrides a preset's value."""

    def dispatch(self, parameterName, value):
        self.options.given.add(parameterName)
        super().dispatch(parameterName, value)


#: The options a preset sets, and the Preset field each takes its value
#: from (``--latency-ms`` aside: a preset's latency is a distribution).
_PRESET_OPTIONS = {
    "nodes": "nodes", "dead": "dead", "blackholed": "blackholed", "stale": "stale",
    "exotic": "exotic", "book-size": "book_size", "duplicates": "duplicates",
}


class Options(usage.Options):
    """
    The command line of ``twistd bitpeer-simnet``.  ``given`` holds the
    options the user typed; after parsing, ``latency`` is the nodes'
    latency distribution (the preset's, or ``--latency-ms``'s Spread).
    """

    synopsis = "--nodes N [options]"
    optParameters = [
        ["preset", None, None, f"a named network shape ({', '.join(PRESETS)}); options "
                               "given explicitly override its values"],
        ["nodes", None, 1000, "reachable nodes", int],
        ["dead", None, 0, "addresses that lead nowhere", int],
        ["blackholed", None, 0.25, "share of dead addresses that time out (rest refuse)",
         _share],
        ["stale", None, None, "addresses gossiped with timestamps days old "
                              "(default nodes/20)", int],
        ["exotic", None, None, "Tor v3, I2P and CJDNS addresses (default nodes/20)", int],
        ["book-size", None, 4348, "each node's address book (answers are 23%, at most 1000)",
         int],
        ["seed", None, 1, "random seed: the same arguments give the same network", int],
        ["misbehaving", None, 0.0, "share of nodes spread over every misbehaving kind",
         _share],
        ["kinds", None, None, "shares per kind instead, e.g. silent=0.1,garbage=0.05"],
        ["latency-ms", None, 0.0, "mean per-node latency of every write", float],
        ["response-delay-ms", None, 0.0, "delay before answering getaddr", float],
        ["duplicates", None, 0.0, "share of each getaddr answer that repeats entries it "
                                  "already holds", _share],
        ["network", None, "regtest", f"whose magic to speak: {', '.join(NETWORKS)}"],
        ["port", None, 0, "port of the reachable nodes (0: any free port)", int],
        ["first-address", None, "127.1.0.1", "first loopback address to use"],
        ["max-connections", None, None, "connections to serve at once "
                                        "(default: what the open-file limit allows)", int],
        ["truth", None, "truth.json", "where to write the ground truth"],
        ["seeds-file", None, "seeds.txt", "where to write the seed addresses"],
        ["stats", None, None, "where to write the counters (JSON), refreshed as they change"],
        ["stats-interval", None, 5.0, "seconds between counter reports", float],
        ["onion", None, 0, "Tor v3 nodes, served through the SOCKS5 fronts", int],
        ["onion-dead", None, 0, "onion names that lead nowhere", int],
        ["i2p", None, 0, "I2P nodes, served through the SAM 3.1 bridge", int],
        ["i2p-dead", None, 0, "I2P names that lead nowhere", int],
        ["cjdns", None, 0, "CJDNS addresses (gossiped and counted, not served)", int],
        ["circuit-latency", None, "0.1-0.6", "seconds to reach a live onion or I2P node "
                                             "(drawn per connection from LOW-HIGH)"],
        ["dead-delay", None, "0.5-2", "seconds before a dead onion or I2P name fails"],
        ["circuits", None, 32, "circuits building at once per front (Tor's "
                               "MaxClientCircuitsPending)", int],
        ["socks-fronts", None, 1, "SOCKS5 fronts (Tor daemons), each with its own cap", int],
        ["socks-port", None, 0, "port of the first SOCKS5 front, the others following "
                                "(0: any free port)", int],
        ["sam-port", None, 0, "port of the SAM bridge (0: any free port)", int],
    ]
    optFlags = [
        ["extended-errors", None, "dead onions fail with Tor's extended error 0xF0, "
                                  "not 0x04"],
    ]

    def __init__(self):
        super().__init__()
        self.given = set()
        for name, handler in self._dispatch.items():
            if isinstance(handler, usage.CoerceParameter):
                self._dispatch[name] = _Given(self, handler.coerce)

    def postOptions(self):
        preset = self._apply_preset()
        if self["kinds"] is not None:
            # Here rather than as the option's coercer: twistd would prefix
            # the message with "Parameter type enforcement failed".
            self["kinds"] = _kinds(self["kinds"])
        try:
            self["network"] = get_network(self["network"])
            loopback_index(self["first-address"])
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        if self["nodes"] < 1 or self["dead"] < 0:
            raise usage.UsageError("--nodes must be at least 1 and --dead at least 0")
        if self["book-size"] < 1:
            raise usage.UsageError("--book-size must be at least 1")
        for name in ("circuit-latency", "dead-delay"):
            try:
                self[name] = _range(self[name])
            except ValueError as error:
                raise usage.UsageError(f"--{name}: {error}") from None
        if self["circuits"] < 1 or self["socks-fronts"] < 1:
            raise usage.UsageError("--circuits and --socks-fronts must be at least 1")
        for name in ("stale", "exotic", "latency-ms", "response-delay-ms", "onion",
                     "onion-dead", "i2p", "i2p-dead", "cjdns"):
            if self[name] is not None and self[name] < 0:
                raise usage.UsageError(f"--{name} cannot be negative")
        for name in ("port", "socks-port", "sam-port"):
            if not 0 <= self[name] <= 0xFFFF:
                raise usage.UsageError(f"--{name} must be within 0..65535")
        if self["stats-interval"] <= 0:
            raise usage.UsageError("--stats-interval must be positive")
        if self["kinds"] is not None and sum(self["kinds"].values()) > 1:
            raise usage.UsageError("the --kinds shares add up to more than 1")
        stale = self["nodes"] // 20 if self["stale"] is None else self["stale"]
        last = loopback_index(self["first-address"]) + self["nodes"] + self["dead"] + stale - 1
        try:
            loopback_ip(last)
        except ValueError:
            raise usage.UsageError(
                f"{self['nodes'] + self['dead'] + stale} addresses from "
                f"{self['first-address']} do not fit in 127.1.0.1-127.254.255.254"
            ) from None
        self["latency"] = (preset.latency if preset and "latency-ms" not in self.given
                           else Spread(self["latency-ms"] / 1000))
        limit = open_file_limit()
        fronts = (self["socks-fronts"] if self["onion"] or self["onion-dead"] else 0) + (
            1 if self["i2p"] or self["i2p-dead"] else 0)
        allowed = limit - FIXED_SOCKETS - fronts
        if self["max-connections"] is None:
            self["max-connections"] = allowed
        elif self["max-connections"] < 1:
            raise usage.UsageError("--max-connections must be at least 1")
        elif self["max-connections"] > allowed:
            raise usage.UsageError(
                f"--max-connections {self['max-connections']} needs more than the open-file "
                f"limit of {limit} allows ({allowed}); raise 'ulimit -n' or ask for fewer"
            )

    def _apply_preset(self):
        """The --preset's values for every option it sets that was not
        given; the Preset, or None without --preset."""
        if self["preset"] is None:
            return None
        try:
            preset = get_preset(self["preset"])
        except ValueError as error:
            raise usage.UsageError(f"--preset: {error}") from None
        for option, field in _PRESET_OPTIONS.items():
            if option not in self.given:
                self[option] = getattr(preset, field)
        return preset


class SimNetRunner(Service):
    """
    A SimNet running while the service runs: ``build()`` makes it when the
    service starts (nothing is bound before), and it is stopped, every
    socket closed, when the service stops.  ``truth`` is what its start
    returned.  bitpeer-crawl --simnet runs one beside the crawl.
    """

    def __init__(self, build):
        self.build = build
        self.simnet = None
        self.truth = None

    def startService(self):
        super().startService()
        self.simnet = self.build()
        self.truth = self.simnet.start()

    def stopService(self):
        super().stopService()
        return self.simnet.stop() if self.simnet is not None else None

    def seeds(self):
        """A few of its honest nodes to start a crawl from (none until started)."""
        return self.simnet.seeds() if self.simnet is not None else []


class SimNetService(SimNetRunner):
    """bitpeer-simnet: runs the SimNet, writes its truth and seeds, logs its counters."""

    log = logger()

    def __init__(self, options, reactor):
        super().__init__(self._build)
        self.options = options
        self.reactor = reactor
        self.stats = None

    def _build(self):
        o = self.options
        return SimNet(
            self.reactor, o["nodes"], o["dead"], kinds=o["kinds"], seed=o["seed"],
            misbehaving=o["misbehaving"], blackholed=o["blackholed"], stale=o["stale"],
            exotic=o["exotic"], book_size=o["book-size"], latency=o["latency"],
            duplicates=o["duplicates"],
            response_delay=o["response-delay-ms"] / 1000, network=o["network"],
            port=o["port"], first_address=o["first-address"],
            max_connections=o["max-connections"], onion=o["onion"],
            onion_dead=o["onion-dead"], i2p=o["i2p"], i2p_dead=o["i2p-dead"], cjdns=o["cjdns"],
            circuit_latency=o["circuit-latency"], dead_delay=o["dead-delay"],
            circuits=o["circuits"], socks_fronts=o["socks-fronts"],
            extended_errors=bool(o["extended-errors"]), socks_port=o["socks-port"],
            sam_port=o["sam-port"],
        )

    def startService(self):
        super().startService()
        o, truth = self.options, self.truth
        write_json(o["truth"], truth)
        # Written whole, then renamed: a crawler waiting for the file to
        # appear never reads half of it.
        atomic_write(o["seeds-file"], lambda stream: stream.writelines(
            f"{address}\n" for address in self.simnet.seeds()))
        self.stats = StatsLogger(self.simnet, o["stats-interval"], o["stats"])
        self.stats.start()
        self.log.info(
            "simnet up: {nodes} nodes, {dead} dead addresses; truth in {truth}, seeds in {seeds}",
            nodes=truth["counts"]["nodes"], dead=o["dead"], truth=o["truth"],
            seeds=o["seeds-file"],
        )
        fronts = truth["fronts"]
        if fronts["socks"] or fronts["sam"]:
            self.log.info(
                "simnet overlays: SOCKS5 fronts {socks}, SAM bridge {sam}",
                socks=", ".join(f"{h}:{p}" for h, p in fronts["socks"]) or "none",
                sam=":".join(map(str, fronts["sam"])) if fronts["sam"] else "none",
            )

    def stopService(self):
        if self.stats is not None:
            self.stats.stop()
        return super().stopService()


def makeService(options):
    """twistd's entry point."""
    from twisted.internet import reactor

    tune_garbage_collector()
    return SimNetService(options, reactor)
