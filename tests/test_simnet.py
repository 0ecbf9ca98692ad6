"""
The simulated network, proven from outside.

The wire checks use a small hand-written client (RawClient below: only
socket, struct and hashlib, run in a thread with socket timeouts) so that a
bug shared by bitpeer's codec and the simulated nodes cannot hide itself: it
checks that a node's bytes follow PROTOCOL.md's order and encodings, and
that what a node answers is what the ground truth and the Population say.
The misbehaving kinds are dialled with bitpeer's own connectPeer, whose
verdict must be the one KINDS names.  Pure parts (Population, loopback
addresses, choose_kinds, the dispatcher, the slow trickle, latency) run on
fakes and task.Clock.
"""

import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import tempfile
import time

from twisted.internet import defer, reactor, task, threads
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import PeerError
from bitpeer.factory import connectPeer
from bitpeer.networks import REGTEST
from bitpeer.simnet.network import SimNet, StatsLogger, _Dispatch
from bitpeer.simnet.population import (
    _AGENTS,
    _SERVICES,
    DAY,
    KINDS,
    MISBEHAVING_KINDS,
    TIP_HEIGHT,
    Population,
    choose_kinds,
    loopback_index,
    loopback_ip,
)
from bitpeer.simnet import tap as simnet_tap
from bitpeer.simnet.behaviours import HugeTrickle, huge_trickle_plan
from bitpeer.simnet.tap import Options, SimNetService
from bitpeer.wire.address import Network

from .helpers import wait_until

# -- the independent client: socket, struct, hashlib only --------------------

#: Regtest's message start, written out here rather than taken from bitpeer.
MAGIC = bytes.fromhex("fabfb5da")
OUR_VERSION = 70016
#: Core's empty-payload checksum (PROTOCOL.md 1).
EMPTY_CHECKSUM = bytes.fromhex("5df6e0e2")
#: Network ids of BIP155 (PROTOCOL.md 5.2).
IPV4, IPV6, TORV3, I2P, CJDNS = 1, 2, 4, 5, 6
IPV4_MAPPED = bytes(10) + b"\xff\xff"
#: How long the client waits for bytes that should come (and, for silence,
#: how long it listens before deciding none will).
WAIT = 3.0
QUIET = 0.4


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def frame(command, payload=b"", magic=MAGIC):
    """One v1 frame: magic, NUL-padded command, LE length, checksum, payload."""
    return (
        magic
        + command.encode("ascii").ljust(12, b"\0")
        + struct.pack("<I", len(payload))
        + sha256d(payload)[:4]
        + payload
    )


def compact(n):
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


def read_compact(data, pos):
    """A canonical CompactSize at ``pos``: (value, next position)."""
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
    value = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
    assert value >= minimum, f"non-canonical CompactSize {value}"
    return value, pos + 1 + size


def version_payload(nonce, version=OUR_VERSION, user_agent=b"/rawclient:0.1/"):
    """A crawler's version: NODE_NONE, relay off, both addresses unspecified."""
    no_address = struct.pack("<Q", 0) + bytes(16) + struct.pack(">H", 0)
    return (
        struct.pack("<iQq", version, 0, int(time.time()))
        + no_address
        + no_address
        + struct.pack("<Q", nonce)
        + compact(len(user_agent))
        + user_agent
        + struct.pack("<i", 0)
        + b"\x00"
    )


def parse_version(payload):
    """PROTOCOL.md 2.1, field by field; every byte must be accounted for."""
    version, services, timestamp, recv_services = struct.unpack_from("<iQqQ", payload, 0)
    (recv_port,) = struct.unpack_from(">H", payload, 44)
    (from_services,) = struct.unpack_from("<Q", payload, 46)
    (from_port,) = struct.unpack_from(">H", payload, 70)
    (nonce,) = struct.unpack_from("<Q", payload, 72)
    length, pos = read_compact(payload, 80)
    assert length <= 256, "user agent over MAX_SUBVERSION_LENGTH"
    user_agent = payload[pos : pos + length].decode("ascii")
    pos += length
    (start_height,) = struct.unpack_from("<i", payload, pos)
    pos += 4
    relay = payload[pos:]
    assert relay in (b"", b"\x00", b"\x01"), f"trailing bytes {relay!r}"
    return {
        "version": version,
        "services": services,
        "timestamp": timestamp,
        "addr_recv": (payload[28:44], recv_port),
        "addr_recv_services": recv_services,
        "addr_from": (payload[54:70], from_port),
        "addr_from_services": from_services,
        "nonce": nonce,
        "user_agent": user_agent,
        "start_height": start_height,
        "relay": relay,
    }


def _v1_host(ip16):
    if ip16[:12] == IPV4_MAPPED:
        return IPV4, ip16[12:]
    return IPV6, ip16


def parse_addr(payload):
    """addr: CompactSize count, then 30-byte entries (PROTOCOL.md 4.4)."""
    count, pos = read_compact(payload, 0)
    assert len(payload) == pos + 30 * count, "addr length does not match its count"
    entries = []
    for _ in range(count):
        stamp, services = struct.unpack_from("<IQ", payload, pos)
        (port,) = struct.unpack_from(">H", payload, pos + 28)
        entries.append((stamp, services, *_v1_host(payload[pos + 12 : pos + 28]), port))
        pos += 30
    return entries


#: The only length BIP155 allows for each network id it defines.
V2_LENGTHS = {IPV4: 4, IPV6: 16, TORV3: 32, I2P: 32, CJDNS: 16}


def parse_addrv2(payload):
    """addrv2 (BIP155): time, CompactSize services, net id, CompactSize length, addr, port."""
    count, pos = read_compact(payload, 0)
    entries = []
    for _ in range(count):
        (stamp,) = struct.unpack_from("<I", payload, pos)
        services, pos = read_compact(payload, pos + 4)
        network = payload[pos]
        length, pos = read_compact(payload, pos + 1)
        if network in V2_LENGTHS and length != V2_LENGTHS[network]:
            raise ValueError(f"network {network} address of {length} bytes")
        host = payload[pos : pos + length]
        (port,) = struct.unpack_from(">H", payload, pos + length)
        pos += length + 2
        entries.append((stamp, services, network, host, port))
    assert pos == len(payload), "addrv2 has trailing bytes"
    return entries


class RawClient:
    """A blocking v1 peer: frames out, frames in, every header checked."""

    def __init__(self, host, port, timeout=WAIT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.frames = []

    def close(self):
        self.sock.close()

    def send(self, command, payload=b""):
        self.sock.sendall(frame(command, payload))

    def _fill(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed with {len(self.buffer)} bytes buffered")
            self.buffer += chunk

    def take(self, count):
        self._fill(count)
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def recv(self):
        """The next frame as (command, payload), after checking its header."""
        header = self.take(24)
        magic, raw_command, length, check = struct.unpack("<4s12sI4s", header)
        assert magic == MAGIC, f"wrong magic {magic.hex()}"
        command, _, padding = raw_command.partition(b"\0")
        assert command and not padding.strip(b"\0"), f"bad command field {raw_command!r}"
        assert all(0x20 <= b <= 0x7E for b in command), f"bad command {raw_command!r}"
        assert length <= 4_000_000, f"length {length}"
        payload = self.take(length)
        assert sha256d(payload)[:4] == check, f"bad checksum on {command!r}"
        if not payload:
            assert check == EMPTY_CHECKSUM
        self.frames.append((command.decode(), payload))
        return command.decode(), payload

    def recv_until(self, wanted):
        """Frames up to the first whose command is in ``wanted``: (frame, skipped)."""
        skipped = []
        while True:
            command, payload = self.recv()
            if command in wanted:
                return (command, payload), skipped
            skipped.append(command)

    def drain(self, quiet=QUIET, first=None):
        """
        Raw bytes until ``quiet`` s of silence or EOF: (bytes, closed).  The
        first bytes are waited for up to ``first`` s (default ``quiet``), so
        that a node that speaks is not taken for silent on a busy machine.
        """
        self.sock.settimeout(quiet if first is None else first)
        data, self.buffer = self.buffer, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
                self.sock.settimeout(quiet)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True


def split_frames(data):
    """Whole frames from ``data`` (which must hold nothing else), headers checked."""
    client = RawClient.__new__(RawClient)
    client.buffer, client.frames = data, []
    client.sock = None
    while client.buffer:
        client.recv()
    return client.frames


#: The nonce of our version in the probes.
NONCE = 0x1122334455667788


def expected_handshake(node_version, our_version=OUR_VERSION):
    """Core's reply to a version (PROTOCOL.md 2.4.7-8): common version gates the middle two."""
    middle = ["wtxidrelay", "sendaddrv2"] if min(node_version, our_version) >= 70016 else []
    return ["version", *middle, "verack"]


def honest_session(host, port, *, addrv2=True, our_version=OUR_VERSION, listen_first=False,
                   early_getaddr=False):
    """
    One crawler conversation in Core's safe order (PROTOCOL.md 3.1), plus
    the probes: ping, getaddr, a repeated getaddr, a second ping.  Returns
    what came back; the caller asserts.
    """
    rng = random.Random(f"{host}:{port}:{addrv2}:{our_version}")
    out = {"nonce": rng.getrandbits(64)}
    client = RawClient(host, port)
    try:
        out["local"] = client.sock.getsockname()
        if listen_first:
            # Core never speaks first on an inbound connection (2.4.7).
            out["spoke_first"], _ = client.drain(quiet=0.25)
            client.sock.settimeout(WAIT)
        client.send("version", version_payload(out["nonce"], our_version))
        handshake = []
        while not handshake or handshake[-1][0] != "verack":
            handshake.append(client.recv())
        out["handshake"] = handshake
        if addrv2:
            client.send("sendaddrv2")
        if our_version >= 70016:
            client.send("wtxidrelay")
        if early_getaddr:
            client.send("getaddr")  # before our verack: must be ignored (3.1)
        client.send("verack")
        ping = rng.getrandbits(64) or 1
        client.send("ping", struct.pack("<Q", ping))
        out["pong"], out["before_pong"] = client.recv_until({"pong", "addr", "addrv2"})
        out["ping"] = ping
        client.send("getaddr")
        out["answer"], out["before_answer"] = client.recv_until({"addr", "addrv2"})
        # A repeated getaddr is ignored; the pong that follows proves it,
        # since a node answers in order.
        client.send("getaddr")
        second = rng.getrandbits(64) or 1
        client.send("ping", struct.pack("<Q", second))
        (command, payload), skipped = client.recv_until({"pong", "addr", "addrv2"})
        out["after_second_getaddr"] = (command, payload, skipped)
        out["second_ping"] = second
    finally:
        client.close()
    return out


def entry_tuple(entry):
    """A Population AddrEntry in the raw client's terms."""
    address = entry.address
    return (entry.time, entry.services, int(address.network), address.host, address.port)


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def strip_ports(value):
    """Truth with every ':port' removed (two SimNets never share ports)."""
    return json.loads(re.sub(r'(\d+\.\d+\.\d+\.\d+):\d+"', r'\1"', json.dumps(value)))


def scratch(case):
    """A temporary directory removed after the test (trial's mktemp is
    relative to the working directory, which under pytest is the checkout)."""
    path = tempfile.mkdtemp(prefix="bitpeer-simnet-")
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def open_fds():
    return len(os.listdir("/proc/self/fd"))


#: A small network whose answers are well under its address count, so that
#: sizes, composition and windows can be told apart.  book_size 200 gives
#: answers of min(1000, 23% of 200) = 46 entries out of 115 addresses.
SMALL = dict(nodes=60, dead=40, stale=6, exotic=9, book_size=200, seed=7)


# -- pure parts ------------------------------------------------------------------


class LoopbackAddressTests(SynchronousTestCase):
    """loopback_ip and loopback_index are inverse, and stay in 127.1.0.1-127.254.255.254."""

    def test_sequence(self):
        self.assertEqual(loopback_ip(0), bytes((127, 1, 0, 1)))
        self.assertEqual(loopback_ip(253), bytes((127, 1, 0, 254)))
        self.assertEqual(loopback_ip(254), bytes((127, 1, 1, 1)))
        self.assertEqual(loopback_ip(256 * 254), bytes((127, 2, 0, 1)))

    def test_round_trip(self):
        last = 254 * 256 * 254 - 1
        for n in (0, 1, 253, 254, 255, 256 * 254 - 1, 256 * 254, 123_457, last):
            text = ".".join(map(str, loopback_ip(n)))
            self.assertEqual(loopback_index(text), n)
        self.assertEqual(loopback_ip(last), bytes((127, 254, 255, 254)))

    def test_never_network_or_broadcast_octets(self):
        for n in range(0, 3 * 256 * 254, 97):
            ip = loopback_ip(n)
            self.assertEqual(ip[0], 127)
            self.assertTrue(1 <= ip[1] <= 254 and 1 <= ip[3] <= 254, ip)

    def test_out_of_range(self):
        self.assertRaises(ValueError, loopback_ip, 254 * 256 * 254)
        for bad in ("127.0.0.1", "127.1.0.0", "127.1.0.255", "127.255.0.1", "10.1.0.1",
                    "127.1.0", "localhost", "127.1.0.x"):
            self.assertRaises(ValueError, loopback_index, bad)


class ChooseKindsTests(SynchronousTestCase):
    """Each kind gets its share, the rest are honest, and bad plans are refused."""

    def test_shares(self):
        plan = choose_kinds(random.Random(1), 1000, 0.0, {"silent": 0.1, "garbage": 0.05})
        self.assertEqual(len(plan), 1000)
        self.assertEqual(plan.count("silent"), 100)
        self.assertEqual(plan.count("garbage"), 50)
        self.assertEqual(plan.count("honest"), 850)

    def test_misbehaving_spread_over_every_kind(self):
        share = 0.26
        plan = choose_kinds(random.Random(1), 1000, share, None)
        each = round(share / len(MISBEHAVING_KINDS) * 1000)
        for kind in MISBEHAVING_KINDS:
            self.assertEqual(plan.count(kind), each, kind)
        self.assertEqual(plan.count("honest"), 1000 - each * len(MISBEHAVING_KINDS))

    def test_deterministic_and_shuffled(self):
        a = choose_kinds(random.Random(5), 200, 0.5, None)
        self.assertEqual(a, choose_kinds(random.Random(5), 200, 0.5, None))
        self.assertNotEqual(a, sorted(a))

    def test_refused(self):
        rng = random.Random(1)
        self.assertRaises(ValueError, choose_kinds, rng, 10, 0, {"bogus": 0.1})
        self.assertRaises(ValueError, choose_kinds, rng, 10, 0, {"silent": 0.6, "slow": 0.5})

    def test_every_kind_has_a_behaviour_and_verdict(self):
        from bitpeer.simnet.behaviours import BEHAVIOURS

        self.assertEqual(set(BEHAVIOURS), set(KINDS))
        self.assertEqual(KINDS["honest"], "reachable")
        self.assertNotIn("honest", MISBEHAVING_KINDS)


def population(**overrides):
    args = dict(nodes=60, dead=40, blackholed_share=0.25, stale=6, exotic=9, book_size=200,
                seed=7, now=1_700_000_000,
                ports={"node": 18444, "refused": 18445, "blackholed": 18446, "stale": 18445})
    args.update(overrides)
    return Population(**args)


class PopulationTests(SynchronousTestCase):
    """Who lives where, what they say about themselves, and what they answer."""

    def test_deterministic(self):
        a, b = population(), population()
        self.assertEqual(a.nodes, b.nodes)
        self.assertEqual((a.refused, a.blackholed, a.stale, a.exotic),
                         (b.refused, b.blackholed, b.stale, b.exotic))
        for node in a.nodes:
            for v2 in (True, False):
                self.assertEqual(a.answer(node.index, v2), b.answer(node.index, v2))
        c = population(seed=8)
        self.assertNotEqual([n.user_agent for n in a.nodes], [n.user_agent for n in c.nodes])

    def test_layout(self):
        p = population()
        self.assertEqual([loopback_index(n.address.host_text) for n in p.nodes], list(range(60)))
        self.assertEqual(len(p.refused) + len(p.blackholed), 40)
        self.assertEqual(len(p.blackholed), 10)
        self.assertEqual({a.port for a in p.refused}, {18445})
        self.assertEqual({a.port for a in p.blackholed}, {18446})
        everyone = [n.address for n in p.nodes] + p.refused + p.blackholed + p.stale
        self.assertEqual(len(set(a.host for a in everyone)), len(everyone))
        self.assertEqual({a.network for a in p.exotic},
                         {Network.TORV3, Network.I2P, Network.CJDNS})

    def test_first_offset(self):
        p = population(first=1000)
        self.assertEqual(loopback_index(p.nodes[0].address.host_text), 1000)

    def test_version_data_is_a_plausible_mix(self):
        p = population(nodes=3000, dead=0)
        agents = {(a, v) for a, v, _ in _AGENTS}
        services = {s for s, _ in _SERVICES}
        for node in p.nodes:
            self.assertIn((node.user_agent, node.version), agents)
            self.assertIn(node.services, services)
            self.assertTrue(TIP_HEIGHT - 2000 < node.start_height <= TIP_HEIGHT)
        at_tip = sum(n.start_height == TIP_HEIGHT for n in p.nodes) / len(p.nodes)
        self.assertTrue(0.85 < at_tip < 0.95, at_tip)
        self.assertGreaterEqual(len({n.user_agent for n in p.nodes}), len(_AGENTS) - 1)
        self.assertGreater(len({n.start_height for n in p.nodes}), 100)

    def test_latency_per_node(self):
        p = population(latency=0.05)
        lags = [n.latency for n in p.nodes]
        self.assertTrue(all(0.025 <= lag <= 0.075 for lag in lags), lags)
        self.assertGreater(len(set(lags)), 50)
        self.assertEqual({n.latency for n in population().nodes}, {0.0})

    def test_answer_size(self):
        p = population()
        self.assertEqual(p.answer_size, 46)  # 23% of 200
        for node in p.nodes:
            entries = p.answer_entries(node.index)
            self.assertTrue(p.answer_size - 3 <= len(entries) <= p.answer_size, len(entries))
            self.assertEqual(len({e.address for e in entries}), len(entries))
        big = population(nodes=300, dead=1500, stale=15, exotic=15, book_size=20_000)
        self.assertEqual(big.answer_size, 1000)
        self.assertTrue(all(len(big.answer_entries(n.index)) == 1000 for n in big.nodes))

    def test_composition(self):
        p = population()
        kinds = {Network.TORV3: 0, Network.I2P: 0, Network.CJDNS: 0}
        for node in p.nodes:
            v2 = p.answer_entries(node.index, v2=True)
            v1 = p.answer_entries(node.index, v2=False)
            exotic = [e for e in v2 if e.address.network != Network.IPV4]
            self.assertTrue(exotic, "every addrv2 answer names Tor v3, I2P or CJDNS")
            for e in exotic:
                kinds[e.address.network] += 1
            self.assertTrue(all(e.address.network == Network.IPV4 for e in v1))
            self.assertEqual(set(v1) - set(v2), set())
        self.assertTrue(all(kinds.values()), kinds)

    def test_timestamps(self):
        p = population()
        stale = set(p.stale)
        for node in p.nodes:
            for e in p.answer_entries(node.index):
                age = p.now - e.time
                if e.address in stale:
                    self.assertTrue(2 * DAY <= age < 10 * DAY, age)
                else:
                    self.assertTrue(0 <= age < 3 * 3600, age)

    def test_ring_and_coverage(self):
        p = population()
        for node in p.nodes:
            following = p.nodes[(node.index + 1) % len(p.nodes)].address
            self.assertIn(following, {e.address for e in p.answer_entries(node.index)})
        everything = {n.address for n in p.nodes} | set(p.refused) | set(p.blackholed)
        everything |= set(p.stale) | set(p.exotic)
        self.assertEqual(p.gossiped(), everything)

    def test_encoded_answer_is_the_entries(self):
        """The bytes a node sends parse (by hand) to exactly answer_entries."""
        p = population()
        for node in p.nodes[:10]:
            command, payload = p.answer(node.index, v2=True)
            self.assertEqual(command, "addrv2")
            self.assertEqual(parse_addrv2(payload),
                             [entry_tuple(e) for e in p.answer_entries(node.index, True)])
            command, payload = p.answer(node.index, v2=False)
            self.assertEqual(command, "addr")
            self.assertEqual(parse_addr(payload),
                             [entry_tuple(e) for e in p.answer_entries(node.index, False)])


# -- the dispatcher, on fakes ---------------------------------------------------------


class FakeNetTestCase(SynchronousTestCase):
    """A SimNet on a MemoryReactorClock and a task.Clock, fed StringTransports."""

    kinds = None

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.simnet = SimNet(MemoryReactorClock(), nodes=40, dead=4, kinds=self.kinds, seed=3,
                             book_size=200, clock=self.clock, max_connections=3)
        self.truth = self.simnet.start()
        self.addCleanup(self.simnet.stop)

    def node(self, kind="honest"):
        return next(n for n in self.truth["nodes"] if n["kind"] == kind)

    def dial(self, host, peer="127.0.0.1"):
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", host, 0),
            peerAddress=IPv4Address("TCP", peer, 40000 + len(self.simnet.open)),
        )
        dispatch = _Dispatch(self.simnet)
        dispatch.makeConnection(transport)
        return dispatch, transport

    def hang_up(self, dispatch):
        dispatch.connectionLost(Failure(ConnectionDone()))


class DispatchTests(FakeNetTestCase):
    """The shared listener's protocol: loopback peers only, our addresses only, a limit."""

    def test_routes_by_local_address(self):
        node = self.node()
        dispatch, transport = self.dial(host_port(node["address"])[0])
        self.assertEqual(dispatch.inner.profile.index, node["index"])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.simnet.counters["honest"]["connections"], 1)

    def test_non_loopback_peer_rejected(self):
        dispatch, transport = self.dial(host_port(self.node()["address"])[0], peer="10.0.0.1")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(dispatch.inner)
        self.assertEqual(self.simnet.open, set())
        self.assertEqual(self.simnet.counters, {})
        self.hang_up(dispatch)  # a rejected connection's end is harmless

    def test_unknown_address_rejected(self):
        dead = host_port(self.truth["refused"][0])[0]
        for host in (dead, "127.0.0.1"):
            dispatch, transport = self.dial(host)
            self.assertTrue(transport.disconnecting, host)
            self.assertIsNone(dispatch.inner)

    def test_max_connections(self):
        host = host_port(self.node()["address"])[0]
        held = [self.dial(host) for _ in range(3)]
        self.assertTrue(all(not t.disconnecting for _, t in held))
        extra, transport = self.dial(host)
        self.assertTrue(transport.disconnecting, "a fourth connection over max_connections=3")
        self.assertIsNone(extra.inner)
        self.hang_up(held[0][0])
        self.assertEqual(len(self.simnet.open), 2)
        _, transport = self.dial(host)
        self.assertFalse(transport.disconnecting, "a slot freed up")


class SlowTests(FakeNetTestCase):
    """'slow' trickles its version and verack one byte a second, and stops when closed."""

    kinds = {"slow": 0.1}

    def test_trickle(self):
        node = self.node("slow")
        dispatch, transport = self.dial(host_port(node["address"])[0])
        self.assertEqual(transport.value(), b"")  # never speaks first
        dispatch.dataReceived(frame("version", version_payload(1)))
        self.assertEqual(len(transport.value()), 1)
        for second in range(1, 30):
            self.clock.advance(1)
            self.assertEqual(len(transport.value()), second + 1)
        self.hang_up(dispatch)
        self.clock.advance(5)
        self.assertEqual(len(transport.value()), 30)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_whole_stream_is_version_then_verack(self):
        node = self.node("slow")
        dispatch, transport = self.dial(host_port(node["address"])[0])
        dispatch.dataReceived(frame("version", version_payload(1)))
        self.clock.pump([1] * 400)
        data = transport.value()
        length = struct.unpack_from("<I", data, 16)[0]
        version = parse_version(data[24 : 24 + length])
        self.assertEqual(version["user_agent"], node["user_agent"])
        self.assertEqual(data[:24 + length], frame("version", data[24 : 24 + length]))
        self.assertEqual(data[24 + length :], frame("verack"))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class HugeTrickleTests(FakeNetTestCase):
    """
    'huge-trickle' handshakes like Core, then announces a huge message and
    trickles its payload, never completing it; it waits while the transport
    is full and stops when closed.
    """

    kinds = {"huge-trickle": 0.2}

    def test_trickle(self):
        node = self.node("huge-trickle")
        command, length = huge_trickle_plan(node["index"])
        dispatch, transport = self.dial(host_port(node["address"])[0])
        dispatch.dataReceived(frame("version", version_payload(1)))
        handshake = transport.value()
        self.assertTrue(handshake.endswith(frame("verack")))
        dispatch.dataReceived(frame("verack"))
        # The first chunk goes at once: the header and the payload's start.
        self.assertEqual(len(transport.value()) - len(handshake), HugeTrickle.TRICKLE_CHUNK)
        announced = transport.value()[len(handshake):len(handshake) + 24]
        self.assertEqual(announced[4:16].rstrip(b"\0").decode(), command)
        self.assertEqual(struct.unpack_from("<I", announced, 16)[0], length)
        sent = len(transport.value())
        self.clock.advance(HugeTrickle.TRICKLE_INTERVAL)
        self.assertEqual(len(transport.value()) - sent, HugeTrickle.TRICKLE_CHUNK)
        # A full transport pauses it.
        transport.producer.pauseProducing()
        sent = len(transport.value())
        self.clock.advance(1)
        self.assertEqual(len(transport.value()), sent)
        transport.producer.resumeProducing()
        self.clock.advance(HugeTrickle.TRICKLE_INTERVAL)
        self.assertGreater(len(transport.value()), sent)
        self.hang_up(dispatch)
        sent = len(transport.value())
        self.clock.advance(5)
        self.assertEqual(len(transport.value()), sent)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_never_completes_the_frame(self):
        node = self.node("huge-trickle")
        command, length = huge_trickle_plan(node["index"])
        if length > 1_000_000:
            node = next(n for n in self.truth["nodes"] if n["kind"] == "huge-trickle"
                        and huge_trickle_plan(n["index"])[1] < 1_000_000)
            command, length = huge_trickle_plan(node["index"])
        dispatch, transport = self.dial(host_port(node["address"])[0])
        dispatch.dataReceived(frame("version", version_payload(1)))
        start = len(transport.value())
        dispatch.dataReceived(frame("verack"))
        self.clock.pump([HugeTrickle.TRICKLE_INTERVAL] * (length // HugeTrickle.TRICKLE_CHUNK + 5))
        self.assertEqual(len(transport.value()) - start, 24 + length - 1)
        self.hang_up(dispatch)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_plans(self):
        self.assertEqual([huge_trickle_plan(i) for i in range(4)], [
            ("block", 4_000_000), ("addrv2", 4_000_000), ("addrv2", 531_003),
            ("block", 4_000_000)])


class LatencyTests(SynchronousTestCase):
    """Per-node latency delays every write; response_delay delays the getaddr answer."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.simnet = SimNet(MemoryReactorClock(), nodes=10, seed=3, book_size=200,
                             latency=0.2, response_delay=0.5, clock=self.clock)
        self.truth = self.simnet.start()
        self.addCleanup(self.simnet.stop)
        self.node = self.truth["nodes"][0]
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", host_port(self.node["address"])[0], 0),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        self.dispatch = _Dispatch(self.simnet)
        self.dispatch.makeConnection(self.transport)

    def test_recorded(self):
        lags = [n["latency"] for n in self.truth["nodes"]]
        self.assertTrue(all(0.1 <= lag <= 0.3 for lag in lags), lags)

    def test_writes_and_answer_delayed(self):
        lag = self.node["latency"]
        self.dispatch.dataReceived(frame("version", version_payload(1)))
        self.clock.advance(lag - 0.001)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.002)
        handshake = self.transport.value()
        self.assertTrue(handshake.startswith(MAGIC + b"version\0"))
        self.assertTrue(handshake.endswith(frame("verack")))
        self.transport.clear()
        self.dispatch.dataReceived(frame("verack") + frame("getaddr"))
        self.clock.advance(0.5 - 0.001)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.001)  # the answer is made now, and written lag s later
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(lag - 0.001)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.002)
        self.assertTrue(self.transport.value().startswith(MAGIC + b"addr\0"))

    def test_nothing_left_after_close(self):
        """Delayed writes and answers die with the connection: stop() leaves no timers."""
        self.dispatch.dataReceived(frame("version", version_payload(1)))
        self.clock.advance(1)
        self.dispatch.dataReceived(frame("verack") + frame("getaddr"))
        self.assertTrue(self.clock.getDelayedCalls())
        self.transport.clear()
        self.dispatch.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])


# -- real sockets ------------------------------------------------------------------


class SimNetTestCase(TestCase):
    """A SimNet on the real reactor, stopped after each test."""

    args = SMALL

    def setUp(self):
        self.simnet = SimNet(reactor, **self.args)
        self.truth = self.simnet.start()
        self.addCleanup(self.simnet.stop)
        self.population = self.simnet.population

    def nodes(self, kind):
        return [n for n in self.truth["nodes"] if n["kind"] == kind]


class HonestWireTests(SimNetTestCase):
    """A simulated node's bytes, checked by the independent client."""

    timeout = 20

    def check_session(self, node, got, *, addrv2=True, our_version=OUR_VERSION):
        commands = [c for c, _ in got["handshake"]]
        self.assertEqual(commands, expected_handshake(node["version"], our_version))
        for command, payload in got["handshake"][1:]:
            self.assertEqual(payload, b"", command)
        version = parse_version(got["handshake"][0][1])
        for field in ("version", "services", "user_agent", "start_height"):
            self.assertEqual(version[field], node[field], field)
        self.assertEqual(version["relay"], b"\x01")
        self.assertNotEqual(version["nonce"], got["nonce"])
        self.assertLess(abs(version["timestamp"] - time.time()), 60)
        # addr_from is CService{}: 16 zero bytes, port 0 (2.1).
        self.assertEqual(version["addr_from"], (bytes(16), 0))
        # addr_recv: where the node sees us, or unspecified (loopback is not routable).
        local_ip, local_port = got["local"]
        self.assertIn(version["addr_recv"],
                      [(IPV4_MAPPED + socket.inet_aton(local_ip), local_port), (bytes(16), 0)])
        # ping -> pong with the same nonce; nothing unasked before it.
        self.assertEqual(got["pong"], ("pong", struct.pack("<Q", got["ping"])))
        self.assertNotIn("addr", got["before_pong"])
        self.assertNotIn("addrv2", got["before_pong"])
        # The answer: exactly the node's answer, in the form we asked for.
        v2 = addrv2 and node["version"] >= 70016
        command, payload = got["answer"]
        self.assertNotIn("addr", got["before_answer"])
        self.assertEqual(command, "addrv2" if v2 else "addr")
        entries = parse_addrv2(payload) if v2 else parse_addr(payload)
        expected = self.population.answer_entries(node["index"], v2=v2)
        self.assertEqual(entries, [entry_tuple(e) for e in expected])
        self.assertLessEqual(len(entries), min(1000, self.truth["answer_size"]))
        exotic = [e for e in entries if e[2] in (TORV3, I2P, CJDNS)]
        if v2:
            self.assertGreaterEqual(len(entries), self.truth["answer_size"] - 3)
            self.assertTrue(exotic, "addrv2 answers carry Tor v3/I2P/CJDNS")
        else:
            # Core's addr answer is the same sample without what v1 cannot carry.
            self.assertEqual(exotic, [])
            full = self.population.answer_entries(node["index"], v2=True)
            self.assertEqual(entries, [entry_tuple(e) for e in full
                                       if e.address.network == Network.IPV4])
        # The answer names only addresses the truth knows, with their ports.
        known = set(self.truth["refused"] + self.truth["blackholed"] + self.truth["stale"])
        known |= {n["address"] for n in self.truth["nodes"]}
        for stamp, services, network, host, port in entries:
            if network == IPV4:
                self.assertIn(f"{socket.inet_ntoa(host)}:{port}", known)
        # A second getaddr is ignored: the pong after it comes first.
        command, payload, skipped = got["after_second_getaddr"]
        self.assertEqual((command, payload), ("pong", struct.pack("<Q", got["second_ping"])))
        self.assertNotIn("addr", skipped)
        self.assertNotIn("addrv2", skipped)

    def session(self, node, **kwargs):
        host, port = host_port(node["address"])
        return threads.deferToThread(honest_session, host, port, **kwargs)

    @defer.inlineCallbacks
    def test_honest_nodes(self):
        """Several honest nodes at once, addrv2 and addr, one claiming 70015 if any."""
        honest = self.nodes("honest")
        chosen = honest[:4] + [n for n in honest if n["version"] < 70016][:1]
        self.assertTrue(any(n["version"] < 70016 for n in chosen), "seed has no 70015 node")
        cases = [(n, dict(addrv2=True)) for n in chosen] + [(honest[0], dict(addrv2=False))]
        cases.append((honest[1], dict(addrv2=True, listen_first=True, early_getaddr=True)))
        cases.append((honest[2], dict(addrv2=True, our_version=70015)))
        results = yield defer.gatherResults([self.session(n, **kw) for n, kw in cases],
                                            consumeErrors=True)
        for (node, kwargs), got in zip(cases, results):
            kwargs.pop("listen_first", None)
            kwargs.pop("early_getaddr", None)
            self.check_session(node, got, **kwargs)
        self.assertEqual(results[-2]["spoke_first"], b"")
        # Counters: every session connected, finished the handshake, got one answer.
        self.assertEqual(sum(self.simnet.counters["honest"].values()), 3 * len(cases))
        self.assertEqual(self.simnet.counters["honest"],
                         {"connections": len(cases), "handshakes": len(cases),
                          "getaddr": len(cases)})

    @defer.inlineCallbacks
    def test_stats_file(self):
        path = os.path.join(scratch(self), "stats.json")
        stats = StatsLogger(self.simnet, interval=60, path=path)
        stats.start()
        node = self.nodes("honest")[0]
        yield self.session(node)
        stats.stop()
        with open(path) as stream:
            written = json.load(stream)
        self.assertEqual(written["by_kind"]["honest"],
                         {"connections": 1, "handshakes": 1, "getaddr": 1})
        self.assertIn(written["open_connections"], (0, 1))

    def test_truth(self):
        truth = self.truth
        self.assertEqual(truth["counts"]["nodes"], 60)
        self.assertEqual(len(truth["refused"]), 30)
        self.assertEqual(len(truth["blackholed"]), 10)
        self.assertEqual(len(truth["stale"]), 6)
        self.assertEqual(len(truth["exotic"]), 9)
        self.assertEqual(truth["answer_size"], 46)
        self.assertEqual(truth["network"], "regtest")
        for node, profile in zip(truth["nodes"], self.population.nodes):
            self.assertEqual(node["address"], str(profile.address))
            self.assertEqual(node["expect"], KINDS[node["kind"]])
        self.assertTrue(any(".onion" in a for a in truth["exotic"]))
        self.assertTrue(any(".i2p" in a for a in truth["exotic"]))
        json.dumps(truth)  # JSON-ready
        for seed in self.simnet.seeds():
            self.assertEqual(self.simnet.node_at(seed.host_text).kind, "honest")


#: Every misbehaving kind, two nodes each, among a few honest ones.
ALL_KINDS = dict(nodes=40, dead=8, stale=2, exotic=3, book_size=200, seed=11, blackholed=0.5,
                 kinds={kind: 2 / 40 for kind in MISBEHAVING_KINDS})


class MisbehavingTests(SimNetTestCase):
    """Each kind reaches the verdict KINDS names, through bitpeer's own connectPeer."""

    args = ALL_KINDS
    timeout = 20

    @defer.inlineCallbacks
    def dial(self, address):
        """(reason, getaddr outcome or failure reason, number of addresses)."""
        try:
            peer = yield connectPeer(reactor, address, REGTEST, connect_timeout=0.5,
                                     handshake_timeout=1.5, getaddr_idle_timeout=0.5,
                                     getaddr_timeout=1.0)
        except PeerError as error:
            return error.reason, None, None
        try:
            result = yield peer.getaddr()
            outcome, count = result.outcome, len(result.addresses)
        except PeerError as error:
            outcome, count = error.reason, None
        peer.close()
        yield peer.whenClosed()
        return "reachable", outcome, count

    @defer.inlineCallbacks
    def test_every_kind(self):
        nodes = self.truth["nodes"]
        for kind in MISBEHAVING_KINDS:
            self.assertEqual(len(self.nodes(kind)), 2, kind)
        dead = self.truth["refused"] + self.truth["blackholed"] + self.truth["stale"]
        outcomes = yield defer.gatherResults(
            [self.dial(n["address"]) for n in nodes] + [self.dial(a) for a in dead],
            consumeErrors=True,
        )
        for node, (reason, outcome, count) in zip(nodes, outcomes):
            self.assertEqual(reason, node["expect"], node)
            expected = {
                "honest": "answered",
                "second-version": "answered",
                "too-many-addr": "protocol-error",  # Core: > 1000 entries is misbehaving
                "bad-addrv2": "idle",  # the one message is undecodable and dropped
                # The trickle is skipped or buffered until getaddr gives up;
                # a 4 MB addrv2 is more than 1000 entries: misbehaving.
                "huge-trickle": (
                    "protocol-error"
                    if huge_trickle_plan(node["index"]) == ("addrv2", 4_000_000) else "idle"
                ),
            }.get(node["kind"])
            self.assertEqual(outcome, expected, node)
            if outcome == "answered":
                v2 = node["version"] >= 70016
                self.assertEqual(count, len(self.population.answer_entries(node["index"], v2)))
        reasons = [r for r, _, _ in outcomes[len(nodes):]]
        expected = (["refused"] * len(self.truth["refused"])
                    + ["connect-timeout"] * len(self.truth["blackholed"])
                    + ["refused"] * len(self.truth["stale"]))
        self.assertEqual(reasons, expected)
        self.assertEqual(self.truth["counts"]["reachable"],
                         sum(r == "reachable" for r, _, _ in outcomes[: len(nodes)]))

    @defer.inlineCallbacks
    def test_raw_bytes(self):
        """What each kind actually puts on the wire, seen by the independent client."""

        def probe(node):
            host, port = host_port(node["address"])
            client = RawClient(host, port)
            try:
                client.send("version", version_payload(NONCE))
                if node["kind"] in ("too-many-addr", "bad-addrv2"):
                    client.recv_until({"verack"})
                    client.send("sendaddrv2")
                    client.send("wtxidrelay")
                    client.send("verack")
                    client.send("getaddr")
                    answer, _ = client.recv_until({"addr", "addrv2"})
                    return answer
                # Silence can only be judged over a window; the others speak.
                return client.drain(first=QUIET if node["kind"] == "silent" else WAIT)
            finally:
                client.close()

        chosen = [self.nodes(kind)[0] for kind in MISBEHAVING_KINDS]
        results = yield defer.gatherResults(
            [threads.deferToThread(probe, n) for n in chosen], consumeErrors=True
        )
        seen = dict(zip(MISBEHAVING_KINDS, results))
        version_frame_start = MAGIC + b"version".ljust(12, b"\0")

        data, closed = seen["silent"]
        self.assertEqual((data, closed), (b"", False))

        data, closed = seen["version-then-silence"]
        self.assertFalse(closed)
        length = struct.unpack_from("<I", data, 16)[0]
        self.assertEqual(len(data), 24 + length)
        self.assertEqual(data, frame("version", data[24:]))
        self.assertEqual(parse_version(data[24:])["user_agent"],
                         self.nodes("version-then-silence")[0]["user_agent"])

        data, closed = seen["garbage"]
        self.assertEqual(len(data), 64)
        self.assertNotEqual(data[:4], MAGIC)

        data, _ = seen["wrong-magic"]
        self.assertEqual(data[:4], bytes(b ^ 0xFF for b in MAGIC))
        self.assertEqual(data[4:16], b"version".ljust(12, b"\0"))

        data, _ = seen["bad-checksum"]
        self.assertTrue(data.startswith(version_frame_start))
        length = struct.unpack_from("<I", data, 16)[0]
        self.assertNotEqual(data[20:24], sha256d(data[24 : 24 + length])[:4])

        data, _ = seen["huge-header"]
        self.assertEqual(len(data), 24)
        self.assertEqual(data[:16], version_frame_start)
        self.assertEqual(struct.unpack_from("<I", data, 16)[0], 0xFFFFFFFF)

        data, closed = seen["disconnect-mid-message"]
        self.assertTrue(closed)
        self.assertTrue(data.startswith(version_frame_start))
        self.assertLess(len(data), 24 + struct.unpack_from("<I", data, 16)[0])

        data, closed = seen["slow"]
        self.assertEqual((data, closed), (MAGIC[:1], False))  # one byte, at once

        node = self.nodes("never-verack")[0]
        frames = split_frames(seen["never-verack"][0])
        self.assertEqual([c for c, _ in frames], expected_handshake(node["version"])[:-1])

        frames = split_frames(seen["nonce-echo"][0])
        self.assertEqual(parse_version(frames[0][1])["nonce"], NONCE)

        node = self.nodes("second-version")[0]
        frames = split_frames(seen["second-version"][0])
        self.assertEqual([c for c, _ in frames], ["version", *expected_handshake(node["version"])])
        self.assertEqual(parse_version(frames[1][1])["user_agent"], node["user_agent"])

        command, payload = seen["too-many-addr"]
        self.assertEqual(command, "addr")
        self.assertEqual(len(parse_addr(payload)), 1001)

        command, payload = seen["bad-addrv2"]
        self.assertEqual(command, "addrv2")
        self.assertRaises(ValueError, parse_addrv2, payload)


class DeterminismTests(TestCase):
    """Same arguments, same network: truth (bar ports) and every answer."""

    @defer.inlineCallbacks
    def test_same_arguments(self):
        clock = task.Clock()
        clock.advance(1_700_000_000)
        args = dict(ALL_KINDS, latency=0.05)
        a = SimNet(reactor, clock=clock, **args)
        b = SimNet(reactor, clock=clock, **args)
        c = SimNet(reactor, clock=clock, **dict(args, seed=12))
        try:
            truths = [strip_ports(s.start()) for s in (a, b, c)]
            self.assertEqual(truths[0], truths[1])
            self.assertNotEqual(truths[0]["nodes"], truths[2]["nodes"])
            for node in a.population.nodes:
                for v2 in (True, False):
                    ours = a.population.answer_entries(node.index, v2)
                    theirs = b.population.answer_entries(node.index, v2)
                    self.assertEqual([(e.time, e.services, e.address.host) for e in ours],
                                     [(e.time, e.services, e.address.host) for e in theirs])
        finally:
            yield defer.gatherResults([s.stop() for s in (a, b, c)])


class StopTests(TestCase):
    """stop() releases every socket: listeners, the refused and blackholed ports, connections."""

    timeout = 20

    @defer.inlineCallbacks
    def baseline(self):
        """This process's open descriptors, once Twisted's spare one exists."""
        # Twisted keeps one spare descriptor for accept() under EMFILE, opened
        # by the first listener of the process: open it before counting.
        # The Deferred fires once its socket is closed.
        warm = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        yield warm.stopListening()
        return open_fds()

    @defer.inlineCallbacks
    def test_no_socket_left(self):
        before = yield self.baseline()
        timers = set(reactor.getDelayedCalls())
        simnet = SimNet(reactor, **dict(ALL_KINDS, latency=0.05, response_delay=0.1))
        truth = simnet.start()
        ports = {host_port(truth[category][0])[1] for category in ("refused", "blackholed")}
        self.assertGreater(open_fds(), before)
        honest = [n for n in truth["nodes"] if n["kind"] == "honest"][:3]
        slow = [n for n in truth["nodes"] if n["kind"] in ("slow", "silent")]
        peers = yield defer.gatherResults(
            [connectPeer(reactor, n["address"], REGTEST, handshake_timeout=5) for n in honest]
        )
        pending = [connectPeer(reactor, n["address"], REGTEST, handshake_timeout=5)
                   for n in slow]
        # Answers still delayed (response_delay, latency) when we stop.
        asked = [peer.getaddr().addErrback(lambda f: f.trap(PeerError)) for peer in peers]
        yield wait_until(lambda: len(simnet.open) == len(honest) + len(slow),
                       "the simnet to accept every connection")
        self.assertEqual(len(simnet.open), len(honest) + len(slow))
        ports.add(simnet._listener.getHost().port)
        yield simnet.stop()
        self.assertEqual(simnet.open, set())
        self.assertEqual(simnet._sockets, [])
        self.assertIsNone(simnet._listener)
        # Our side sees every connection end.
        yield defer.gatherResults([p.whenClosed() for p in peers])
        for d in pending:
            d.addErrback(lambda f: f.trap(PeerError))
        yield defer.gatherResults(pending + asked)
        yield wait_until(lambda: open_fds() <= before, "every socket to close")
        # Every port is free again: the node listener, the refused and the
        # blackholed sockets (a socket still bound there would make bind fail).
        for port in ports:
            probe = socket.socket()
            try:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("0.0.0.0", port))
            finally:
                probe.close()
        # No timer is left behind (delayed answers and writes die with their
        # connection).
        self.assertEqual([c for c in reactor.getDelayedCalls()
                          if c.active() and c not in timers], [])

    @defer.inlineCallbacks
    def test_failed_start_leaves_nothing(self):
        before = yield self.baseline()
        simnet = SimNet(reactor, nodes=10, kinds={"silent": 0.7, "slow": 0.7})
        self.assertRaises(ValueError, simnet.start)
        self.assertEqual(simnet._sockets, [])
        yield simnet.stop()
        yield wait_until(lambda: open_fds() <= before, "every socket to close")

    def test_bad_arguments(self):
        self.assertRaises(ValueError, SimNet, reactor, nodes=0)
        self.assertRaises(ValueError, SimNet, reactor, nodes=5, dead=-1)
        self.assertRaises(ValueError, SimNet, reactor, nodes=5, misbehaving=1.5)
        self.assertRaises(ValueError, SimNet, reactor, nodes=5, first_address="10.0.0.1")


# -- twistd bitpeer-simnet ----------------------------------------------------------


class OptionsTests(SynchronousTestCase):
    """Bad arguments are refused before anything starts."""

    def parse(self, *args):
        options = Options()
        options.parseOptions(list(args))
        return options

    def test_defaults(self):
        options = self.parse("--nodes", "10000", "--dead", "40000", "--seed", "1",
                             "--truth", "t.json", "--seeds-file", "s.txt",
                             "--misbehaving", "0.05", "--latency-ms", "50")
        self.assertEqual((options["nodes"], options["dead"], options["seed"]), (10000, 40000, 1))
        self.assertEqual(options["misbehaving"], 0.05)
        self.assertEqual(options["latency-ms"], 50.0)
        self.assertEqual(options["network"], REGTEST)
        self.assertGreater(options["max-connections"], 0)

    def test_kinds(self):
        options = self.parse("--kinds", "silent=0.1,garbage=0.05")
        self.assertEqual(options["kinds"], {"silent": 0.1, "garbage": 0.05})

    def test_kinds_faults_said_in_one_line(self):
        """A bad --kinds names the fault and, for an unknown kind, every kind."""
        for args, words in (
            (["--kinds", "bogus=0.1"], ["unknown kind 'bogus'", "huge-trickle", "honest"]),
            (["--kinds", "garbage"], ["'garbage' needs a share", "garbage=0.05"]),
            (["--kinds", "garbage=lots"], ["garbage=lots is not a share within 0..1"]),
            (["--kinds", "garbage=2"], ["garbage=2 is not a share"]),
        ):
            error = self.assertRaises(usage.UsageError, self.parse, *args)
            text = str(error)
            self.assertEqual(text.count("\n"), 0, text)
            self.assertTrue(text.startswith("--kinds: "), text)
            self.assertNotIn("Parameter type enforcement", text)
            for word in words:
                self.assertIn(word, text)

    def test_twistd_says_it_and_fails(self):
        """Through twistd: exit status 1, the line last, no traceback."""
        import subprocess
        import sys
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        done = subprocess.run([twistd, "-n", "bitpeer-simnet", "--kinds", "garbage"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        output = done.stdout + done.stderr
        self.assertNotIn("Traceback", output)
        self.assertIn("--kinds: 'garbage' needs a share", output.strip().splitlines()[-1])

    def test_refused(self):
        for args in (
            ["--first-address", "10.0.0.1"],
            ["--first-address", "127.0.0.1"],
            ["--first-address", "nonsense"],
            ["--max-connections", "100000000"],
            ["--kinds", "bogus=0.1"],
            ["--kinds", "silent=2"],
            ["--kinds", "silent"],
            ["--kinds", "silent=0.7,garbage=0.7"],
            ["--misbehaving", "1.5"],
            ["--nodes", "0"],
            ["--nodes", "many"],
            ["--dead", "-1"],
            ["--book-size", "0"],
            ["--network", "nonet"],
            ["--blackholed", "2"],
            ["--stale", "-1"],
            ["--exotic", "-1"],
            ["--latency-ms", "-5"],
            ["--response-delay-ms", "-5"],
            ["--port", "70000"],
            ["--stats-interval", "0"],
            ["--nodes", "20000000"],
        ):
            self.assertRaises(usage.UsageError, self.parse, *args)

    def test_plugin(self):
        from twisted.plugin import getPlugins
        from twisted.application.service import IServiceMaker

        names = {p.tapname for p in getPlugins(IServiceMaker)}
        self.assertIn("bitpeer-simnet", names)

    def test_make_service_tunes_the_collector(self):
        """twistd's entry point tunes the garbage collector (as the
        crawler's does) before anything is built, and starts nothing."""
        tuned = []
        self.patch(simnet_tap, "tune_garbage_collector", lambda: tuned.append(True))
        options = Options()
        options.parseOptions(["--nodes", "3"])
        service = simnet_tap.makeService(options)
        self.assertIsInstance(service, SimNetService)
        self.assertEqual(tuned, [True])
        self.assertIsNone(service.simnet)


class ServiceTests(TestCase):
    """The twistd service writes truth, seeds and stats, and stops cleanly."""

    @defer.inlineCallbacks
    def test_files(self):
        base = scratch(self)
        options = Options()
        options.parseOptions([
            "--nodes", "30", "--dead", "10", "--seed", "1", "--misbehaving", "0.3",
            "--truth", os.path.join(base, "truth.json"),
            "--seeds-file", os.path.join(base, "seeds.txt"),
            "--stats", os.path.join(base, "stats.json"),
        ])
        service = SimNetService(options, reactor)
        service.startService()
        try:
            with open(os.path.join(base, "truth.json")) as stream:
                truth = json.load(stream)
            self.assertEqual(truth["counts"]["nodes"], 30)
            self.assertEqual(len(truth["refused"]) + len(truth["blackholed"]), 10)
            with open(os.path.join(base, "seeds.txt")) as stream:
                seeds = stream.read().split()
            honest = {n["address"] for n in truth["nodes"] if n["kind"] == "honest"}
            self.assertTrue(seeds)
            self.assertTrue(set(seeds) <= honest)
            peer = yield connectPeer(reactor, seeds[0], REGTEST, handshake_timeout=5)
            peer.close()
            yield peer.whenClosed()
            # The node counts the handshake when our verack lands.
            yield wait_until(lambda: service.simnet.counters["honest"].get("handshakes"),
                           "the node to count the handshake")
        finally:
            yield service.stopService()
        with open(os.path.join(base, "stats.json")) as stream:
            stats = json.load(stream)
        self.assertEqual(stats["by_kind"]["honest"]["handshakes"], 1)
