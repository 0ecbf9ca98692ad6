"""
Which way each address is dialled, and how many dials each way may run at
once: the crawl's routes across networks.

A crawl dials along a few **paths**: straight out (IPv4, IPv6, CJDNS),
through each SOCKS5 proxy (the Tor daemons of ``--onion-proxy``, and
``--proxy`` for the clearnet), and through the I2P SAM bridge
(``--i2p-sam``).  Each path has a dialler and slots of its own: a Tor
daemon builds at most 32 circuits at once (``MaxClientCircuitsPending``),
and a circuit takes seconds, so onion dials sharing the clearnet's slots
would hold the clearnet back.  With slots per path, the clearnet never
waits behind an onion, and every Tor daemon given is kept busy: onions are
spread over the proxies, one pick a path in turn.

Each network is a **lane**: its pending addresses and the paths that dial
them.  A path that serves several lanes (the direct path: IPv4, IPv6 and
CJDNS) picks among their addresses at random, as one list would.

A lane keeps its addresses in **tiers** (bitpeer.crawl.history: those that
answered last time, then the untried, then those that failed): a pick takes
from the first tier that has any, at random within it.  A crawl without
history has one tier in use, and a pick passes over the empty ones by a
count, without looking at the lanes.

A path goes **down** when its proxy or bridge cannot be reached
(ProxyUnreachable, reason ``proxy-unreachable``): nothing more is dialled
through it.  A lane whose every path is down keeps its addresses as not
dialled, with its ``down_reason`` ("onion proxy down"), rather than
calling them unreachable: the fault is ours, not theirs.
"""

import attr

from ..wire.address import Network, NetworkAddress, split_host_port
from ..wire.errors import ProtocolError
from .history import TIERS, UNTRIED

#: The reason word of ProxyUnreachable (bitpeer.errors): the SOCKS proxy or
#: SAM bridge itself could not be reached.  The crawl tells it by its word,
#: the one it stores, as it tells every failure.
PROXY_UNREACHABLE = "proxy-unreachable"

#: Why a lane's addresses are not dialled once every path of it is down.
ONION_PROXY_DOWN = "onion proxy down"
I2P_BRIDGE_DOWN = "i2p bridge down"
PROXY_DOWN = "proxy down"


def parse_endpoint(text):
    """
    ``(host, port)`` from the ``IP:PORT`` (or ``[IPV6]:PORT``) of a proxy
    or bridge; ValueError, one line, if it is not one.  The port is
    required: a proxy has no default a guess could get right.  The host is
    an IP address, as for Core's -proxy and -i2psam: a name would have to be
    looked up before every dial, or once and then go stale.
    """
    try:
        host, port = split_host_port(text)
    except ProtocolError as error:
        raise ValueError(error.rule) from None
    if port is None or not 0 < port <= 0xFFFF:
        raise ValueError(f"{text.strip()!r} is not HOST:PORT with a port in 1..65535")
    try:
        network = NetworkAddress.from_host(host, port).network
    except ProtocolError:
        network = None
    if network not in (Network.IPV4, Network.IPV6):
        raise ValueError(f"{host!r} is not an IP address (a proxy is named by its address)")
    return host, port


def endpoint_text(endpoint):
    """``host:port`` (``[v6]:port``) of an endpoint, for logs and messages."""
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@attr.s(slots=True, eq=False, repr=False)
class Path:
    """
    One way out: ``dialler`` (with the dialler contract of bitpeer.net),
    ``capacity`` dials at once, ``lanes`` it serves.  ``name`` says it in
    logs ("SOCKS5 proxy 127.0.0.1:9050").
    """

    name = attr.ib()
    dialler = attr.ib()
    capacity = attr.ib()
    lanes = attr.ib(factory=list)
    in_flight = attr.ib(default=0)
    up = attr.ib(default=True)

    def __repr__(self):
        return f"<Path {self.name} {self.in_flight}/{self.capacity}{'' if self.up else ' down'}>"


@attr.s(slots=True, eq=False, repr=False)
class Lane:
    """
    One network's pending addresses (``tiers``: a list of addresses per
    tier, each picked at random) and the ``paths`` that dial them;
    ``down_reason`` is the not-dialled reason of its addresses once every
    path is down.
    """

    network = attr.ib()
    down_reason = attr.ib()
    paths = attr.ib(factory=list)
    tiers = attr.ib(factory=lambda: [[] for _ in range(TIERS)])

    def __repr__(self):
        return f"<Lane {self.network} {sum(map(len, self.tiers))} pending>"

    @property
    def down(self):
        """Every path of the lane is down (or it has none)."""
        return not any(path.up for path in self.paths)


class Slots:
    """
    The paths and lanes of one crawl (see the module's docstring):
    ``add`` queues an address on its network's lane, ``pick`` takes the
    next address to dial and the path with a free slot that dials it,
    ``path_down`` takes a path out.
    """

    def __init__(self, paths, lanes):
        #: The paths, in the order they take turns.
        self.paths = list(paths)
        #: Network (a wire.address.Network) -> its Lane.
        self.lanes = dict(lanes)
        #: Addresses waiting in every lane.
        self.pending_count = 0
        #: Addresses waiting in each tier, every lane together.
        self.by_tier = [0] * TIERS
        self._turn = 0

    def lane(self, address):
        """The Lane of ``address``'s network, or None if none dials it."""
        return self.lanes.get(address.network)

    def add(self, lane, address, tier=UNTRIED):
        """Queue ``address`` on ``lane``, in ``tier``."""
        lane.tiers[tier].append(address)
        self.by_tier[tier] += 1
        self.pending_count += 1

    def pending(self):
        """Every pending address, lane after lane, tier after tier (a new list)."""
        return [address for lane in self.lanes.values() for tier in lane.tiers
                for address in tier]

    def clear(self):
        """Drop every pending address (the crawl stops)."""
        for lane in self.lanes.values():
            for tier in lane.tiers:
                tier.clear()
        self.by_tier = [0] * TIERS
        self.pending_count = 0

    def pick(self, random):
        """
        ``(path, address)``: a path with a free slot, taking turns from the
        one after the last picked, and an address of its lanes drawn at
        random (``random``, a random.Random) from their first tier that has
        any; None when no path can dial.
        """
        if not self.pending_count:
            return None
        paths = self.paths
        count = len(paths)
        for step in range(count):
            index = (self._turn + step) % count
            path = paths[index]
            if not path.up or path.in_flight >= path.capacity:
                continue
            address = self._draw(path.lanes, random)
            if address is not None:
                self._turn = index + 1
                self.pending_count -= 1
                return path, address
        return None

    def _draw(self, lanes, random):
        """An address of ``lanes`` taken at random from their first tier
        that has any, each address of it as likely (one draw, as from one
        list); None if they are all empty."""
        by_tier = self.by_tier
        tier = -1
        for waiting in by_tier:
            tier += 1
            if not waiting:
                continue  # in no lane at all
            if len(lanes) == 1:
                total = len(lanes[0].tiers[tier])
            else:
                total = sum([len(lane.tiers[tier]) for lane in lanes])
            if not total:
                continue
            by_tier[tier] = waiting - 1
            i = random.randrange(total)
            for lane in lanes:
                pending = lane.tiers[tier]
                if i < len(pending):
                    # Take it without shifting the list: swap with the last.
                    pending[i], pending[-1] = pending[-1], pending[i]
                    return pending.pop()
                i -= len(pending)
            raise AssertionError("unreachable: i < total")
        return None

    def path_down(self, path):
        """
        Take ``path`` out: nothing more is dialled through it.  Returns the
        lanes that now have no path left, their pending addresses removed
        (a list of (lane, addresses)), for the crawl to keep as not dialled.
        """
        path.up = False
        emptied = []
        for lane in path.lanes:
            if lane.down:
                addresses = []
                for tier, pending in enumerate(lane.tiers):
                    addresses += pending
                    self.by_tier[tier] -= len(pending)
                    pending.clear()
                self.pending_count -= len(addresses)
                emptied.append((lane, addresses))
        return emptied


def build_slots(options, make_dialler):
    """
    The Slots of a crawl with ``options`` (a CrawlOptions):
    ``make_dialler(kind, timeout, **config)`` makes the dialler of a path,
    ``kind`` being "direct", "socks5" (config ``proxy``) or "sam" (config
    ``bridge``).  Only the paths the options ask for are made.

    - IPv4 and IPv6: direct, ``concurrency`` at once, ``connect_timeout``;
      or through ``--proxy`` (Core's -proxy), on that proxy's path;
    - onion: through each ``--onion-proxy``, or ``--proxy`` when no
      ``--onion-proxy`` is given (Core's rule: -onion overrides -proxy for
      onions);
    - each SOCKS5 proxy's path: ``onion_concurrency`` at once,
      ``onion_timeout``, whatever networks it carries;
    - I2P: through the SAM bridge, ``i2p_concurrency``, ``i2p_timeout``;
    - CJDNS: direct, as IPv6, with the clearnet's slots and timeout (it
      is routed by the operating system, like any IPv6 address).

    A proxy named both by ``--proxy`` and ``--onion-proxy`` is one path:
    its slots bound what goes through that daemon, whatever the network.
    """
    direct = Path("direct", make_dialler("direct", options.connect_timeout),
                  options.concurrency)
    paths = [direct]
    socks = {}

    def socks_path(endpoint):
        if endpoint not in socks:
            socks[endpoint] = Path(
                f"SOCKS5 proxy {endpoint_text(endpoint)}",
                make_dialler("socks5", options.onion_timeout, proxy=endpoint),
                options.onion_concurrency)
            paths.append(socks[endpoint])
        return socks[endpoint]

    clearnet = [socks_path(options.proxy)] if options.proxy else [direct]
    lanes = {
        Network.IPV4: Lane("ipv4", PROXY_DOWN, clearnet),
        Network.IPV6: Lane("ipv6", PROXY_DOWN, clearnet),
        Network.CJDNS: Lane("cjdns", None, [direct]),
        Network.TORV3: Lane("onion", ONION_PROXY_DOWN,
                            [socks_path(e) for e in options.onion_paths]),
        Network.I2P: Lane("i2p", I2P_BRIDGE_DOWN, []),
    }
    if options.i2p_sam:
        sam = Path(f"SAM bridge {endpoint_text(options.i2p_sam)}",
                   make_dialler("sam", options.i2p_timeout, bridge=options.i2p_sam),
                   options.i2p_concurrency)
        paths.append(sam)
        lanes[Network.I2P].paths.append(sam)
    for lane in lanes.values():
        for path in lane.paths:
            path.lanes.append(lane)
    return Slots(paths, lanes)
