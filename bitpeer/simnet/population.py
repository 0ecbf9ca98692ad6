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
next node (a ring), so a crawl from any seed can reach every node.
"""

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

    def as_dict(self):
        """A JSON-ready record for the ground truth."""
        return {
            "address": str(self.address),
            "index": self.index,
            "kind": self.kind,
            "expect": KINDS[self.kind],
            "version": self.version,
            "services": self.services,
            "user_agent": self.user_agent,
            "start_height": self.start_height,
            "latency": self.latency,
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

    @ivar nodes: NodeProfile per reachable node, by index.
    @ivar refused, blackholed, stale, exotic: lists of NetworkAddress.
    """

    def __init__(self, *, nodes, dead, blackholed_share, stale, exotic, book_size,
                 seed, now, ports, misbehaving=0.0, kinds=None, latency=0.0, first=0):
        rng = random.Random(seed)
        self.now = int(now)
        self.book_size = book_size
        self.answer_size = getaddr_answer_size(book_size)
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
        for index, address in enumerate(addresses["node"]):
            agent, version = _weighted(rng, _AGENTS)
            (services,) = _weighted(rng, _SERVICES)
            lag = 0 if rng.random() < 0.9 else rng.randrange(1, 2000)
            self.nodes.append(NodeProfile(
                index=index,
                address=address,
                kind=plan[index],
                version=version,
                services=int(services),
                user_agent=agent,
                start_height=TIP_HEIGHT - lag,
                latency=round(latency * rng.uniform(0.5, 1.5), 4) if latency else 0.0,
            ))
        self._build_answers(rng)

    def _build_answers(self, rng):
        """Encode every gossiped address once, in a shuffled order per category."""
        fresh = lambda: self.now - rng.randrange(0, 3 * 3600)  # noqa: E731
        services_of = {n.address: n.services for n in self.nodes}
        categories = [
            [n.address for n in self.nodes],
            self.refused,
            self.blackholed,
            self.stale,
            self.exotic,
        ]
        self._lanes = []
        for category in categories:
            entries = []
            for address in category:
                stamp = (
                    self.now - rng.randrange(2 * DAY, 10 * DAY)
                    if category is self.stale
                    else fresh()
                )
                services = services_of.get(address, int(NODE_NETWORK | NODE_WITNESS))
                entries.append(AddrEntry(stamp, services, address))
            rng.shuffle(entries)
            self._lanes.append(entries)
        self._v1 = [
            [encode_v1_entries([e]) for e in lane] for lane in self._lanes[:_V1_LANES]
        ]
        self._v2 = [[encode_v2_entries([e]) for e in lane] for lane in self._lanes]
        position = {e.address: i for i, e in enumerate(self._lanes[0])}
        self._ring = [position[n.address] for n in self.nodes]

    @property
    def total(self):
        """How many addresses can be gossiped."""
        return sum(map(len, self._lanes))

    def _windows(self, index):
        """
        Node ``index``'s answer as (lane, start, width) windows: per lane a
        width in proportion to the lane's size, the starts spaced evenly over
        the nodes so that the windows together cover each lane.
        """
        nodes, total, budget = len(self.nodes), self.total, self.answer_size
        windows = []
        for lane_no, lane in enumerate(self._lanes):
            size = len(lane)
            width = min(size, max(1, round(self.answer_size * size / total)), budget)
            if width:
                windows.append((lane_no, index * size // nodes, width))
                budget -= width
        return windows

    def _ring_position(self, index, windows):
        """The next node's position in lane 0, unless a window already holds it."""
        ring = self._ring[(index + 1) % len(self.nodes)]
        size = len(self._lanes[0])
        for lane_no, start, width in windows:
            if lane_no == 0 and (ring - start) % size < width:
                return None
        return ring

    def _pick(self, lanes, index):
        windows = self._windows(index)
        ring = self._ring_position(index, windows)
        out = [] if ring is None else [lanes[0][ring]]
        room = self.answer_size - len(out)
        for lane_no, start, width in windows:
            if lane_no >= len(lanes) or room <= 0:
                continue
            lane = lanes[lane_no]
            width = min(width, room)
            out += lane[start : start + width]
            if start + width > len(lane):
                out += lane[: start + width - len(lane)]
            room -= width
        return out

    def answer(self, index, v2):
        """
        Node ``index``'s getaddr answer as (message type, payload): addrv2
        with every network, or addr without the networks v1 cannot carry.
        """
        parts = self._pick(self._v2 if v2 else self._v1, index)
        return ("addrv2" if v2 else "addr"), compact_size(len(parts)) + b"".join(parts)

    def answer_entries(self, index, v2=True):
        """Node ``index``'s answer as AddrEntry objects (for the ground truth)."""
        return self._pick(self._lanes if v2 else self._lanes[:_V1_LANES], index)

    def gossiped(self):
        """Every address that at least one node's answer names."""
        seen = set()
        for node in self.nodes:
            seen.update(e.address for e in self.answer_entries(node.index))
        return seen


#: Lanes are nodes, refused, blackholed, stale, exotic; v1 carries all but
#: the last.
_V1_LANES = 4


def _exotic_address(rng, i):
    """Tor v3, I2P and CJDNS addresses, as on the real network (never dialled)."""
    network = (Network.TORV3, Network.I2P, Network.CJDNS)[i % 3]
    if network == Network.CJDNS:
        return NetworkAddress(network, b"\xfc" + rng.randbytes(15), 8333)
    return NetworkAddress(network, rng.randbytes(32), 0 if network == Network.I2P else 8333)
