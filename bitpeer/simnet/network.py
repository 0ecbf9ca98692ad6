"""
SimNet: a simulated Bitcoin network on 127.0.0.0/8, in this process.

Sockets, not nodes, are what the open-file limit counts, so the whole network
needs four: one listener serving every reachable node (bound to the port on
all addresses, it tells the node by the address the dialler chose, and
accepts only loopback peers), one socket bound but not listening (connections
to it are refused), one listener that never accepts and whose backlog is kept
full (connections to it time out, as to a blackholed host), and one socket
per accepted connection.  Onion and I2P nodes are served through fronts
(socks.py: a Tor daemon's SocksPort; sam.py: an I2P router's SAM bridge),
one listener each, and by the same behaviours as clearnet nodes.
"""

import json
import random
import socket

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall

from ..files import atomic_write
from ..runtime import open_file_limit
from ..logs import logger
from ..networks import REGTEST
from ..protocol import address_of
from .behaviours import BEHAVIOURS, node_options
from .latency import as_distribution
from .population import KINDS, Population, loopback_index
from .sam import SamFront
from .socks import SocksFront

#: Sockets the simulation needs besides one per open connection.
FIXED_SOCKETS = 8

#: The shared listener's accept queue.  A crawler may open thousands of
#: connections at once; a short queue drops their SYNs and turns reachable
#: nodes into connect timeouts.  The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 65535


class _Dispatch(Protocol):
    """
    The protocol the shared listener builds: it learns which node was dialled
    from the socket's local address, then hands the connection to that node's
    behaviour and relays to it.
    """

    def __init__(self, simnet):
        self.simnet = simnet
        self.inner = None

    def connectionMade(self):
        peer = self.transport.getPeer()
        local = self.transport.getHost()
        if not peer.host.startswith("127."):
            self.transport.abortConnection()
            return
        profile = self.simnet.node_at(local.host)
        if profile is None or len(self.simnet.open) >= self.simnet.max_connections:
            # Not one of ours, or full: like a node with no free inbound slot.
            self.transport.abortConnection()
            return
        self.simnet.open.add(self)
        self.inner = self.simnet.serve(profile, self.transport)

    def dataReceived(self, data):
        self.inner.dataReceived(data)

    def connectionLost(self, reason):
        if self.inner is not None:
            self.simnet.open.discard(self)
            self.inner.connectionLost(reason)


class _DispatchFactory(Factory):
    def __init__(self, simnet):
        self.simnet = simnet

    def buildProtocol(self, addr):
        return _Dispatch(self.simnet)


class SimNet:
    """
    A simulated network of ``nodes`` reachable nodes and ``dead`` addresses
    that lead nowhere (a ``blackholed`` share of them time out, the rest are
    refused), plus ``stale`` addresses gossiped with old timestamps and
    ``exotic`` Tor v3, I2P and CJDNS addresses.

    Each reachable node answers getaddr with ``min(1000, 23% of book_size)``
    entries.  ``misbehaving`` is the share of nodes spread over every
    misbehaving kind, or ``kinds`` gives a share per kind.  ``latency``
    delays each node's writes by its own draw: a distribution (latency.py,
    such as a preset's LogNormal) or seconds, the mean of a Spread;
    ``response_delay`` (s) delays getaddr answers.  ``duplicates`` is the
    share of each getaddr answer that repeats entries it already holds.
    Addresses start at ``first_address`` (so several simnets can share the
    machine), and at most ``max_connections`` are served at once (more are
    closed at once, as a node with no free inbound slot does).

    Overlays (none by default): ``onion`` live and ``onion_dead`` Tor v3
    nodes, served through ``socks_fronts`` SOCKS5 fronts (several Tor
    daemons, each with its own cap of ``circuits`` circuits building at
    once; ``extended_errors`` as Tor's ExtendedErrors flag); ``i2p`` live
    and ``i2p_dead`` I2P nodes, served through one SAM 3.1 bridge (with the
    same cap); ``cjdns`` CJDNS addresses, gossiped and counted but not
    served (fc00::/8 is not loopback).  Reaching a live overlay node takes a
    draw from ``circuit_latency`` (lo, hi) seconds, failing on a dead one a
    draw from ``dead_delay``.  The fronts listen on 127.0.0.1 from
    ``socks_port`` (then the next ports) and ``sam_port``, any free port
    when 0; ``socks_fronts()`` and ``sam_bridge()`` say where.  Each front is
    one more socket.

    ``start()`` binds the sockets and returns the ground truth (a dict, see
    ``truth``); ``stop()`` closes every socket and returns a Deferred.
    """

    log = logger()

    def __init__(self, reactor, nodes=1000, dead=0, *, kinds=None, seed=1, misbehaving=0.0,
                 blackholed=0.25, stale=None, exotic=None, book_size=4348, latency=0.0,
                 response_delay=0.0, network=REGTEST, port=0, first_address="127.1.0.1",
                 max_connections=None, clock=None, onion=0, onion_dead=0, i2p=0,
                 i2p_dead=0, cjdns=0, circuit_latency=(0.1, 0.6), dead_delay=(0.5, 2.0),
                 circuits=32, socks_fronts=1, extended_errors=False, socks_port=0,
                 sam_port=0, duplicates=0.0):
        if nodes < 1:
            raise ValueError("a simulated network needs at least one node")
        if dead < 0 or not all(0 <= share <= 1 for share in (blackholed, misbehaving,
                                                              duplicates)):
            raise ValueError("dead must be >= 0 and the shares within 0..1")
        if min(onion, onion_dead, i2p, i2p_dead, cjdns) < 0:
            raise ValueError("overlay node counts cannot be negative")
        for low, high in (circuit_latency, dead_delay):
            if not 0 <= low <= high:
                raise ValueError("a delay range needs 0 <= low <= high")
        if circuits < 1 or socks_fronts < 1:
            raise ValueError("circuits and socks_fronts must be at least 1")
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.nodes, self.dead, self.seed = nodes, dead, seed
        self.kinds, self.misbehaving = kinds, misbehaving
        self.blackholed_share = blackholed
        self.stale = nodes // 20 if stale is None else stale
        self.exotic = nodes // 20 if exotic is None else exotic
        self.book_size, self.response_delay = book_size, response_delay
        self.latency = as_distribution(latency)
        self.duplicates = duplicates
        self.network = network
        self.port = port
        self.first = loopback_index(first_address)
        self.overlays = dict(onion=onion, onion_dead=onion_dead, i2p=i2p, i2p_dead=i2p_dead,
                             cjdns=cjdns)
        self.timing = dict(capacity=circuits, circuit_latency=tuple(circuit_latency),
                           dead_delay=tuple(dead_delay))
        self.socks_count = socks_fronts if onion or onion_dead else 0
        self.sam_count = 1 if i2p or i2p_dead else 0
        self.extended_errors = extended_errors
        self.front_ports = {"socks": socks_port, "sam": sam_port}
        self.max_connections = (
            open_file_limit() - FIXED_SOCKETS - self.socks_count - self.sam_count
            if max_connections is None else max_connections
        )
        self.nonces = set()
        self.open = set()
        self.population = None
        self.counters = {}
        self._by_ip = {}
        self._options = {}
        #: The nodes' randomness (nonces, answer samples), one stream for
        #: all (seeding a Random per connection took 5% of the simnet's
        #: time).  Not Random(seed): a crawler given the same seed would draw
        #: the same nonces and take some nodes for itself (the self-connection
        #: check).
        self.random = random.Random(f"bitpeer simnet {seed}")
        self._sockets = []
        self._listener = None
        #: (front, its listener): the SOCKS fronts, then the SAM bridge.
        self._fronts = []

    # -- lifecycle --------------------------------------------------------------

    def start(self):
        """Bind every socket, build the population; return the ground truth."""
        self._listener = self.reactor.listenTCP(
            self.port, _DispatchFactory(self), backlog=LISTEN_BACKLOG, interface="0.0.0.0"
        )
        try:
            node_port = self._listener.getHost().port
            refused_port = self._bound_socket(listen=False)
            blackhole_port = self._bound_socket(listen=True)
            self._fill_backlog(blackhole_port)
            self.population = Population(
                nodes=self.nodes, dead=self.dead, blackholed_share=self.blackholed_share,
                stale=self.stale, exotic=self.exotic, book_size=self.book_size,
                seed=self.seed, now=self.clock.seconds(), misbehaving=self.misbehaving,
                kinds=self.kinds, latency=self.latency, first=self.first,
                duplicates=self.duplicates,
                ports={"node": node_port, "refused": refused_port,
                       "blackholed": blackhole_port, "stale": refused_port},
                **self.overlays,
            )
            self._listen_fronts()
        except BaseException:
            self._close_sockets()
            self._close_fronts()
            # Forget the listener too: a later stop() must not close it twice.
            listener, self._listener = self._listener, None
            listener.stopListening()
            raise
        self._by_ip = {p.address.host_text: p for p in self.population.nodes}
        return self.truth()

    def stop(self):
        """Close every socket and connection; a Deferred that fires when done."""
        for connection in list(self.open):
            connection.transport.abortConnection()
        self._close_sockets()
        stopped = self._close_fronts()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            stopped.append(defer.maybeDeferred(listener.stopListening))
        return defer.gatherResults(stopped).addCallback(lambda _: None)

    def _listen_fronts(self):
        """One listener per SOCKS front and for the SAM bridge, on 127.0.0.1."""
        socks = [SocksFront(self, random.Random(f"bitpeer simnet socks {self.seed} {i}"),
                            extended_errors=self.extended_errors, **self.timing)
                 for i in range(self.socks_count)]
        sam = [SamFront(self, random.Random(f"bitpeer simnet sam {self.seed}"), **self.timing)
               for _ in range(self.sam_count)]
        for kind, fronts in (("socks", socks), ("sam", sam)):
            base = self.front_ports[kind]
            for i, front in enumerate(fronts):
                listener = self.reactor.listenTCP(base + i if base else 0, front,
                                                  interface="127.0.0.1")
                self._fronts.append((front, listener))

    def _close_fronts(self):
        """Stop the fronts' listeners and timers; their Deferreds."""
        fronts, self._fronts = self._fronts, []
        stopped = []
        for front, listener in fronts:
            front.gate.cancel_all()
            stopped.append(defer.maybeDeferred(listener.stopListening))
        return stopped

    def _bound_socket(self, listen):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(sock)
        sock.bind(("0.0.0.0", 0))
        if listen:
            sock.listen(0)
        return sock.getsockname()[1]

    def _fill_backlog(self, port):
        """Occupy the never-accepting listener's queue so later SYNs are dropped."""
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            self._sockets.append(filler)
            filler.connect_ex(("127.0.0.1", port))

    def _close_sockets(self):
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def socks_fronts(self):
        """[(host, port)] of the SOCKS5 fronts ([] without onions or before start)."""
        return [(l.getHost().host, l.getHost().port)
                for front, l in self._fronts if isinstance(front, SocksFront)]

    def sam_bridge(self):
        """(host, port) of the SAM 3.1 bridge, or None without I2P nodes."""
        for front, listener in self._fronts:
            if isinstance(front, SamFront):
                return listener.getHost().host, listener.getHost().port
        return None

    # -- used by the node behaviours ------------------------------------------------

    def serve(self, profile, transport):
        """Hand a connection to a node: its behaviour, connected; returns it."""
        self.count(profile.kind, "connections")
        behaviour = BEHAVIOURS[profile.kind]
        inner = behaviour(self, profile, address_of(transport.getPeer()), self.random)
        inner.makeConnection(transport)
        return inner

    def node_at(self, host):
        """The NodeProfile living at ``host`` (dotted text, onion or b32 name), or None."""
        return self._by_ip.get(host)

    def options_for(self, profile):
        """PeerOptions for a node, made once per node."""
        options = self._options.get(profile.index)
        if options is None:
            options = self._options[profile.index] = node_options(profile)
        return options

    def count(self, kind, event):
        """Count one event (connections, handshakes, getaddr) for a kind."""
        per_kind = self.counters.setdefault(kind, {})
        per_kind[event] = per_kind.get(event, 0) + 1

    # -- outputs ----------------------------------------------------------------------

    def seeds(self, count=3):
        """A few honest reachable nodes to start a crawl from."""
        honest = [n.address for n in self.population.nodes
                  if n.kind == "honest" and n.address.network_name == "ipv4"]
        return honest[:count]

    def truth(self):
        """
        The ground truth: every node with its kind, the verdict a correct
        crawler reaches and its advertised version data; the dead, stale and
        exotic addresses; per network (ipv4, onion, i2p, cjdns) its served
        nodes, its dead addresses and whether it is served; the fronts'
        addresses; counts, per network too; the ``depth`` of the clearnet's
        gossip from the seeds (Population.depth).
        """
        population = self.population
        nodes = [n.as_dict() for n in population.nodes]
        networks = population.by_network()
        return {
            "seed": self.seed,
            "network": self.network.name,
            "created": population.now,
            "answer_size": population.answer_size,
            "nodes": nodes,
            "refused": [str(a) for a in population.refused],
            "blackholed": [str(a) for a in population.blackholed],
            "stale": [str(a) for a in population.stale],
            "exotic": [str(a) for a in population.exotic],
            "networks": {
                name: {"nodes": [str(a) for a in part["nodes"]],
                       "dead": [str(a) for a in part["dead"]], "served": part["served"]}
                for name, part in networks.items()
            },
            "fronts": {"socks": [list(a) for a in self.socks_fronts()],
                       "sam": list(self.sam_bridge() or ()) or None},
            "depth": population.depth([self.node_at(a.host_text).index for a in self.seeds()]),
            "counts": {
                "nodes": len(nodes),
                "reachable": sum(KINDS[n["kind"]] == "reachable" for n in nodes),
                "honest": sum(n["kind"] == "honest" for n in nodes),
                "slow": sum(n["slow"] for n in nodes),
                "refused": len(population.refused),
                "blackholed": len(population.blackholed),
                "stale": len(population.stale),
                "exotic": len(population.exotic),
                "networks": {
                    name: {"nodes": len(part["nodes"]), "dead": len(part["dead"])}
                    for name, part in networks.items()
                },
            },
        }

    def stats(self):
        """The counters by kind, plus open connections and each front's counters."""
        stats = {"open_connections": len(self.open), "by_kind": self.counters}
        if self._fronts:
            stats["socks"] = [f.stats() for f, _ in self._fronts if isinstance(f, SocksFront)]
            stats["sam"] = [f.stats() for f, _ in self._fronts if isinstance(f, SamFront)]
        return stats


def write_json(path, data):
    """Write ``data`` as JSON, atomically (a reader never sees half a file)."""
    atomic_write(path, lambda stream: json.dump(data, stream, indent=1))


class StatsLogger:
    """Logs the counters every ``interval`` seconds and writes them to a file."""

    log = logger()

    def __init__(self, simnet, interval=5.0, path=None):
        self.simnet, self.path = simnet, path
        self._loop = LoopingCall(self.report)
        self._loop.clock = simnet.clock
        self.interval = interval

    def start(self):
        self._loop.start(self.interval, now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()
        self.report()

    def report(self):
        stats = self.simnet.stats()
        totals = {}
        for per_kind in stats["by_kind"].values():
            for event, value in per_kind.items():
                totals[event] = totals.get(event, 0) + value
        self.log.info(
            "simnet: {open} open, {connections} connections, {handshakes} handshakes, "
            "{getaddr} getaddr answers",
            open=stats["open_connections"],
            connections=totals.get("connections", 0),
            handshakes=totals.get("handshakes", 0),
            getaddr=totals.get("getaddr", 0),
        )
        if self.path:
            write_json(self.path, stats)
