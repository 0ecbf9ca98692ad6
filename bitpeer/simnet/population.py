"""
The simulated network's population: every address, what lives there, and what
each node says when asked for addresses.  All of it follows from the
arguments and the seed, so the same arguments give the same network.

Addresses are laid out on 127.0.0.0/8 in one sequence (reachable nodes first,
then refused, blackholed, stale); the category is also told by the port,
since each category has its own socket.

A node's getaddr answer is what Core's is: ``min(1000, 23% of its book)``
entries, the same on every connection (Core caches it for a day).  Books are
virtual, so 10,000 nodes with 4,348-entry books cost no memory: every
address is encoded once, and a node's answer is a window onto a per-category
shuffled list, each category in proportion to its size, the windows spaced
evenly so that together they cover every address.  Each node also names the
next node on its network (a ring), so a crawl from any seed can reach every
node.  A ``duplicates`` share of each answer repeats entries it already
holds (the answer stays within its size): a crawler must count each address
once.

Each node's latency is drawn from a distribution (latency.py); the ground
truth marks the slow ones, those that take seconds to answer.

Onion and I2P nodes have deterministic names drawn from the seed (valid v3
onions, .b32.i2p names that are the hash of their destination); the simnet
serves them through its SOCKS5 and SAM fronts.  Each node gossips only the
networks it is on (see Population).
"""

import hashlib
import random

import attr

from ..wire.address import AddrEntry, Network, NetworkAddress
from ..wire.addrlist import encode_v1_entries, encode_v2_entries
from ..wire.encoding import compact_size
from ..wire.messages import getaddr_answer_size
from ..wire.services import (
    NODE_BLOOM,
    NODE_COMPACT_FILTERS,
    NODE_NETWORK,
    NODE_NETWORK_LIMITED,
    NODE_P2P_V2,
    NODE_WITNESS,
)
from .latency import as_distribution

#: The misbehaving kinds, each with the verdict a correct crawler reaches.
#: ``reachable`` kinds complete the handshake.
KINDS = {
    "honest": "reachable",
    "silent": "handshake-timeout",
    "version-then-silence": "handshake-timeout",
    "never-verack": "handshake-timeout",
    "garbage": "protocol-error",
    "wrong-magic": "protocol-error",
    "bad-checksum": "protocol-error",
    "huge-header": "protocol-error",
    "too-many-addr": "reachable",
    "bad-addrv2": "reachable",
    "disconnect-mid-message": "closed",
    "slow": "handshake-timeout",
    "second-version": "reachable",
    "nonce-echo": "self-connection",
    # Handshakes, then announces a huge message and trickles it (behaviours).
    "huge-trickle": "reachable",
}

MISBEHAVING_KINDS = tuple(k for k in KINDS if k != "honest")

#: (user agent, protocol version, weight): a plausible 2026 mix.
_AGENTS = (
    ("/Satoshi:29.0.0/", 70016, 22),
    ("/Satoshi:28.1.0/", 70016, 20),
    ("/Satoshi:30.0.0/", 70016, 14),
    ("/Satoshi:27.1.0/", 70016, 10),
    ("/Satoshi:26.0.0/", 70016, 6),
    ("/Satoshi:25.0.0/", 70016, 5),
    ("/Satoshi:29.1.0/Knots:20250305/", 70016, 8),
    ("/Satoshi:0.21.1/", 70016, 4),
    ("/Satoshi:0.20.1/", 70015, 3),
    ("/btcd:0.24.2/", 70016, 3),
    ("/Satoshi:24.0.1/", 70016, 5),
)
_SERVICES = (
    (NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED | NODE_P2P_V2, 55),
    (NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED, 25),
    (NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED | NODE_COMPACT_FILTERS, 6),
    (NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED | NODE_BLOOM, 4),
    (NODE_WITNESS | NODE_NETWORK_LIMITED | NODE_P2P_V2, 10),
)
TIP_HEIGHT = 975_000

DAY = 86400


def loopback_ip(n):
    """
    The n-th address of the sequence: 127.X.Y.Z with Z in 1..254, starting at
    127.1.0.1 (127.0.0.0/16 is left to everything else on the machine).
    """
    x, rest = divmod(n, 256 * 254)
    y, z = divmod(rest, 254)
    if x >= 254:
        raise ValueError("more addresses than 127.1.0.0-127.254.255.254 holds")
    return bytes((127, x + 1, y, z + 1))


def loopback_index(text):
    """
    The position of a dotted address in the loopback_ip sequence; ValueError
    for anything outside 127.1.0.1-127.254.255.254.
    """
    try:
        a, x, y, z = (int(part) for part in text.split("."))
    except ValueError:
        raise ValueError(f"{text!r} is not a dotted IPv4 address") from None
    if a != 127 or not 1 <= x <= 254 or not 0 <= y <= 255 or not 1 <= z <= 254:
        raise ValueError(
            f"{text} is not in 127.1.0.1-127.254.255.254: simulated nodes live on loopback"
        )
    return (x - 1) * 256 * 254 + y * 254 + z - 1


@attr.frozen
class NodeProfile:
    """What one reachable simulated node says about itself, and how it behaves."""

    index: int
    address: NetworkAddress
    kind: str
    version: int
    services: int
    user_agent: str
    start_height: int
    latency: float
    #: Its latency is in its distribution's slow part: seconds.
    slow: bool = False

    def as_dict(self):
        """A JSON-ready record for the ground truth."""
        return {
            "address": str(self.address),
            "network": self.address.network_name,
            "index": self.index,
            "kind": self.kind,
            "expect": KINDS[self.kind],
            "version": self.version,
            "services": self.services,
            "user_agent": self.user_agent,
            "start_height": self.start_height,
            "latency": self.latency,
            "slow": self.slow,
        }


def _weighted(rng, table):
    return rng.choices([row[:-1] for row in table], weights=[row[-1] for row in table])[0]


def choose_kinds(rng, count, misbehaving, kinds):
    """
    The kind of each of ``count`` nodes: ``kinds`` maps kind to share (the
    rest honest); or ``misbehaving`` is a total share spread evenly over
    every misbehaving kind.
    """
    if kinds is None:
        kinds = {k: misbehaving / len(MISBEHAVING_KINDS) for k in MISBEHAVING_KINDS}
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown node kinds: {', '.join(sorted(unknown))}")
    if sum(kinds.values()) > 1:
        raise ValueError("the shares of node kinds add up to more than 1")
    plan = []
    for kind, share in sorted(kinds.items()):
        plan += [kind] * round(share * count)
    plan = plan[:count] + ["honest"] * (count - len(plan))
    rng.shuffle(plan)
    return plan


class Population:
    """
    Every address of a simulated network and every node's answer.

    Besides the clearnet, a population may hold ``onion`` Tor v3 and ``i2p``
    I2P nodes (served through the simnet's SOCKS5 and SAM fronts),
    ``onion_dead`` and ``i2p_dead`` names of each that lead nowhere, and
    ``cjdns`` CJDNS addresses (fc00::/8 cannot be served on loopback: they
    are gossiped and counted, never served).  As in Core, a node keeps and
    gossips only addresses of the networks it is on (``networks_of``):
    every clearnet node is on the clearnet and CLEARNET_ON_OVERLAY of them
    on each overlay network the population has (the first honest one on
    all, so a crawl from the seeds reaches them); overlay nodes are on their
    own network and OVERLAY_ON_CLEARNET of them on the clearnet too.  The
    overlay parts draw from their own random stream, so the clearnet of a
    seed is the same with or without them; without any overlay, the
    ``exotic`` addresses are gossiped by every clearnet node, as always.

    @ivar nodes: NodeProfile per served node, by index (clearnet, then
        onion, then I2P).
    @ivar refused, blackholed, stale, exotic, onion_dead, i2p_dead, cjdns:
        lists of NetworkAddress.
    @ivar destinations: the I2P destination (bytes) of every I2P name, live
        or dead, as a SAM bridge's naming service knows them.

    ``latency`` is a distribution (latency.py) or the mean of a Spread, in
    seconds; ``duplicates`` the share of each answer that repeats entries.
    """

    def __init__(self, *, nodes, dead, blackholed_share, stale, exotic, book_size,
                 seed, now, ports, misbehaving=0.0, kinds=None, latency=0.0, first=0,
                 onion=0, onion_dead=0, i2p=0, i2p_dead=0, cjdns=0, duplicates=0.0):
        rng = random.Random(seed)
        latency = as_distribution(latency)
        self.now = int(now)
        self.book_size = book_size
        self.answer_size = getaddr_answer_size(book_size)
        #: Entries of an answer that repeat others, and those that do not.
        self.copies = round(self.answer_size * duplicates)
        self.unique = self.answer_size - self.copies
        n_black = round(dead * blackholed_share)
        counts = [("node", nodes), ("refused", dead - n_black), ("blackholed", n_black),
                  ("stale", stale)]
        addresses = {}
        for category, count in counts:
            port = ports[category]
            addresses[category] = [
                NetworkAddress(Network.IPV4, loopback_ip(first + i), port) for i in range(count)
            ]
            first += count
        self.refused = addresses["refused"]
        self.blackholed = addresses["blackholed"]
        self.stale = addresses["stale"]
        self.exotic = [_exotic_address(rng, i) for i in range(exotic)]
        plan = choose_kinds(rng, nodes, misbehaving, kinds)
        self.nodes = []
        for address, kind in zip(addresses["node"], plan):
            self._add_node(rng, address, kind, latency)

        orng = random.Random(f"bitpeer simnet overlays {seed}")
        onions = [NetworkAddress(Network.TORV3, orng.randbytes(32), OVERLAY_PORT)
                  for _ in range(onion + onion_dead)]
        self.destinations = {}
        for _ in range(i2p + i2p_dead):
            destination = i2p_destination(orng)
            self.destinations[i2p_address(destination)] = destination
        i2ps = list(self.destinations)
        self.onion_dead, self.i2p_dead = onions[onion:], i2ps[i2p:]
        self.cjdns = [NetworkAddress(Network.CJDNS, b"\xfc" + orng.randbytes(15), OVERLAY_PORT)
                      for _ in range(cjdns)]
        for live in (onions[:onion], i2ps[:i2p]):
            for address, kind in zip(live, choose_kinds(orng, len(live), misbehaving, kinds)):
                self._add_node(orng, address, kind, latency)
        self.overlays = bool(onion or onion_dead or i2p or i2p_dead or cjdns)
        self.networks_of = self._memberships(orng)
        self._build_answers(rng, orng)

    def _add_node(self, rng, address, kind, latency):
        agent, version = _weighted(rng, _AGENTS)
        (services,) = _weighted(rng, _SERVICES)
        lag = 0 if rng.random() < 0.9 else rng.randrange(1, 2000)
        delay = latency.draw(rng)
        self.nodes.append(NodeProfile(
            index=len(self.nodes),
            address=address,
            kind=kind,
            version=version,
            services=int(services),
            user_agent=agent,
            start_height=TIP_HEIGHT - lag,
            latency=delay,
            slow=latency.slow_from is not None and delay >= latency.slow_from,
        ))

    def _memberships(self, rng):
        """The networks each node is on (see the class docstring)."""
        present = {a.network_name for a in self.overlay_addresses()}
        first_honest = next(
            (n.index for n in self.nodes
             if n.kind == "honest" and n.address.network == Network.IPV4), None)
        networks = []
        for node in self.nodes:
            own = node.address.network_name
            if own == "ipv4":
                others = {
                    name for name in sorted(present)
                    if node.index == first_honest or rng.random() < CLEARNET_ON_OVERLAY
                }
            else:
                others = {"ipv4"} if rng.random() < OVERLAY_ON_CLEARNET else set()
            networks.append(frozenset({own} | others))
        return networks

    def overlay_addresses(self):
        """Every address of an overlay network: nodes, dead names, CJDNS, exotic."""
        live = [n.address for n in self.nodes if n.address.network != Network.IPV4]
        return live + self.onion_dead + self.i2p_dead + self.cjdns + self.exotic

    def _build_answers(self, rng, orng):
        """Encode every gossiped address once, in a shuffled order per lane."""
        services_of = {n.address: n.services for n in self.nodes}

        def entries(addresses, random, old=False):
            out = []
            for address in addresses:
                age = random.randrange(2 * DAY, 10 * DAY) if old else random.randrange(0, 3 * 3600)
                services = services_of.get(address, int(NODE_NETWORK | NODE_WITNESS))
                out.append(AddrEntry(self.now - age, services, address))
            random.shuffle(out)
            return out

        def live(network):
            return [n.address for n in self.nodes if n.address.network == network]

        lanes = [
            ("ipv4", True, entries(live(Network.IPV4), rng)),
            ("ipv4", True, entries(self.refused, rng)),
            ("ipv4", True, entries(self.blackholed, rng)),
            ("ipv4", True, entries(self.stale, rng, old=True)),
        ]
        exotic = entries(self.exotic, rng)
        if not self.overlays:
            lanes.append((None, False, exotic))
        else:
            for network in (Network.TORV3, Network.I2P, Network.CJDNS):
                mine = [e for e in exotic if e.address.network == network]
                lanes.append((_NETWORK_OF[network], False, mine))
            lanes += [
                ("onion", False, entries(live(Network.TORV3), orng)),
                ("onion", False, entries(self.onion_dead, orng)),
                ("i2p", False, entries(live(Network.I2P), orng)),
                ("i2p", False, entries(self.i2p_dead, orng)),
                ("cjdns", False, entries(self.cjdns, orng)),
            ]
        self._lanes = []
        for network, v1, lane in lanes:
            speakers = [n.index for n in self.nodes
                        if network is None or network in self.networks_of[n.index]]
            self._lanes.append(_Lane(lane, v1, {index: i for i, index in enumerate(speakers)}))
        self._entries = {
            True: [lane.entries for lane in self._lanes],
            False: [lane.entries if lane.v1 else None for lane in self._lanes],
        }
        self._encoded = {
            True: [[encode_v2_entries([e]) for e in lane.entries] for lane in self._lanes],
            False: [[encode_v1_entries([e]) for e in lane.entries] if lane.v1 else None
                    for lane in self._lanes],
        }
        self._ring = self._make_ring()

    def _make_ring(self):
        """Per node, the (lane, position) of the next node on its own network."""
        ring = [None] * len(self.nodes)
        for lane_no, network in _LIVE_LANES.items():
            if lane_no >= len(self._lanes):
                continue
            position = {e.address: i for i, e in enumerate(self._lanes[lane_no].entries)}
            members = [n for n in self.nodes if n.address.network == network]
            for i, node in enumerate(members):
                ring[node.index] = (lane_no, position[members[(i + 1) % len(members)].address])
        return ring

    @property
    def total(self):
        """How many addresses can be gossiped."""
        return sum(len(lane.entries) for lane in self._lanes)

    def _windows(self, index):
        """
        Node ``index``'s answer as (lane, start, width) windows over the
        lanes it gossips: per lane a width in proportion to the lane's size
        (at least its share among the lane's speakers), the starts spaced
        evenly over the speakers so that together they cover each lane.
        """
        spoken = [(no, lane) for no, lane in enumerate(self._lanes) if index in lane.speakers]
        total = sum(len(lane.entries) for _, lane in spoken)
        budget = self.unique
        windows = []
        for lane_no, lane in spoken:
            size, speakers = len(lane.entries), len(lane.speakers)
            if not size:
                continue
            share = round(self.unique * size / total)
            width = min(size, max(1, share, -(-size // speakers)), budget)
            if width:
                windows.append((lane_no, lane.speakers[index] * size // speakers, width))
                budget -= width
        return windows

    def _ring_position(self, index, windows):
        """(lane, position) of the next node, or None when a window already holds it."""
        lane_no, ring = self._ring[index]
        size = len(self._lanes[lane_no].entries)
        for window_lane, start, width in windows:
            if window_lane == lane_no and (ring - start) % size < width:
                return None
        return lane_no, ring

    def _pick(self, lanes, index):
        windows = self._windows(index)
        ring = self._ring_position(index, windows)
        out = []
        if ring is not None and lanes[ring[0]] is not None:
            out.append(lanes[ring[0]][ring[1]])
        room = self.unique - len(out)
        for lane_no, start, width in windows:
            lane = lanes[lane_no]
            if lane is None or room <= 0:
                continue
            width = min(width, room)
            out += lane[start : start + width]
            if start + width > len(lane):
                out += lane[: start + width - len(lane)]
            room -= width
        return out + out[: self.copies]

    def answer(self, index, v2):
        """
        Node ``index``'s getaddr answer as (message type, payload): addrv2
        with every network it gossips, or addr without the networks v1
        cannot carry.
        """
        parts = self._pick(self._encoded[v2], index)
        return ("addrv2" if v2 else "addr"), compact_size(len(parts)) + b"".join(parts)

    def answer_entries(self, index, v2=True):
        """Node ``index``'s answer as AddrEntry objects (for the ground truth)."""
        return self._pick(self._entries[v2], index)

    def depth(self, seeds):
        """
        How many getaddr rounds a crawl from ``seeds`` (node indices) needs
        to reach every clearnet node, asking every honest one (the
        breadth-first depth of the gossip among honest clearnet nodes; None
        if some node cannot be reached that way).  It reads the answers'
        windows, not the answers, so it costs little on a large network.
        """
        lane = self._lanes[0]
        index_of = {n.address: n.index for n in self.nodes}
        at = [index_of[e.address] for e in lane.entries]
        clearnet = [n.index for n in self.nodes if n.address.network == Network.IPV4]
        level = {index: 0 for index in seeds}
        frontier = list(level)
        while frontier:
            following = []
            for index in frontier:
                if self.nodes[index].kind != "honest":
                    continue
                windows = self._windows(index)
                named = [at[self._ring[index][1]]]
                for lane_no, start, width in windows:
                    if lane_no == 0:
                        named += at[start : start + width] + at[: max(0, start + width - len(at))]
                for other in named:
                    if other not in level:
                        level[other] = level[index] + 1
                        following.append(other)
            frontier = following
        if any(index not in level for index in clearnet):
            return None
        return max(level[index] for index in clearnet)

    def gossiped(self):
        """Every address that at least one node's answer names."""
        seen = set()
        for node in self.nodes:
            seen.update(e.address for e in self.answer_entries(node.index))
        return seen

    def by_network(self):
        """
        Per network name, the addresses of its served ``nodes`` and of its
        ``dead`` ones (the clearnet's: refused, blackholed and stale), and
        whether the simnet serves it.
        """
        live = {name: [] for name in ("ipv4", "onion", "i2p", "cjdns")}
        for node in self.nodes:
            live[node.address.network_name].append(node.address)
        live["cjdns"] = list(self.cjdns)
        dead = {"ipv4": self.refused + self.blackholed + self.stale,
                "onion": self.onion_dead, "i2p": self.i2p_dead, "cjdns": []}
        return {name: {"nodes": live[name], "dead": dead[name], "served": name != "cjdns"}
                for name in live}


@attr.frozen
class _Lane:
    """
    One category of gossiped addresses: its entries in a shuffled order,
    whether addr (v1) can carry them, and the nodes that gossip it (node
    index -> position among them).
    """

    entries: list
    v1: bool
    speakers: dict


#: The network name of each overlay network.
_NETWORK_OF = {Network.TORV3: "onion", Network.I2P: "i2p", Network.CJDNS: "cjdns"}

#: The lanes of served nodes, by lane number (the overlays' only when the
#: population has overlays): each node's ring runs in its network's lane.
_LIVE_LANES = {0: Network.IPV4, 7: Network.TORV3, 9: Network.I2P}

#: Each overlay network is also spoken by this share of the clearnet nodes,
#: and this share of its own nodes is also on the clearnet.
CLEARNET_ON_OVERLAY = 0.25
OVERLAY_ON_CLEARNET = 0.5

#: The port onion and CJDNS nodes listen on (I2P has none: SAM 3.1's port 0).
OVERLAY_PORT = 8333

#: An I2P destination's certificate: a KEY certificate (type 5, 4 bytes
#: long) naming signing type 7 (Ed25519) and crypto type 0.
_I2P_KEY_CERTIFICATE = bytes((5, 0, 4, 0, 7, 0, 0))


def i2p_destination(rng):
    """A destination as a SAM bridge hands it out: 384 key bytes, then its certificate."""
    return rng.randbytes(384) + _I2P_KEY_CERTIFICATE


def i2p_address(destination):
    """A destination's .b32.i2p address: the SHA-256 of its bytes, port 0."""
    return NetworkAddress(Network.I2P, hashlib.sha256(destination).digest(), 0)


def _exotic_address(rng, i):
    """Tor v3, I2P and CJDNS addresses, as on the real network (never dialled)."""
    network = (Network.TORV3, Network.I2P, Network.CJDNS)[i % 3]
    if network == Network.CJDNS:
        return NetworkAddress(network, b"\xfc" + rng.randbytes(15), 8333)
    return NetworkAddress(network, rng.randbytes(32), 0 if network == Network.I2P else 8333)
