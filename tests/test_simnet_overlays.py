"""
The simnet's overlays, proven from outside: the SOCKS5 and SAM 3.1 fronts
are spoken to with raw bytes over loopback (no bitpeer client), the
population's network rules and the truth are read directly.

The fronts' circuit timers run on a task.Clock given to the SimNet, so a
test decides when a circuit is built or a dead name fails; the sockets are
real, and the tests wait for conditions (bytes arrived, a connection
closed, a front's counters), never for time to pass.
"""

import base64
import hashlib
import struct

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.simnet.front import CircuitGate
from bitpeer.simnet.network import SimNet
from bitpeer.simnet.population import (
    CLEARNET_ON_OVERLAY,
    Population,
    i2p_address,
)
from bitpeer.simnet.tap import Options
from bitpeer.wire.address import Network, NetworkAddress
from tests.helpers import wait_until
from tests.test_simnet import MAGIC, frame, parse_version, version_payload

T0 = 1_700_000_000

#: A small population with every overlay: 60 clearnet nodes, 10 live and
#: 30 dead onions (three dead for each live one, as on the real network),
#: 6 live and 4 dead I2P nodes, 5 CJDNS addresses.
OVERLAYS = dict(onion=10, onion_dead=30, i2p=6, i2p_dead=4, cjdns=5)


def population(**overrides):
    args = dict(nodes=60, dead=40, blackholed_share=0.25, stale=6, exotic=9, book_size=200,
                seed=7, now=T0,
                ports={"node": 18444, "refused": 18445, "blackholed": 18446, "stale": 18445})
    args.update(overrides)
    return Population(**args)


class CircuitGateTests(SynchronousTestCase):
    """At most ``capacity`` circuits build at once; the rest wait their turn."""

    def setUp(self):
        self.clock = task.Clock()
        self.gate = CircuitGate(self.clock, 2)
        self.done = []

    def build(self, name, delay=1.0):
        return self.gate.build(delay, lambda: self.done.append(name))

    def test_cap_and_order(self):
        for name in "abcde":
            self.build(name)
        self.assertEqual((len(self.gate.building), len(self.gate.waiting)), (2, 3))
        self.clock.advance(1.0)
        self.assertEqual(self.done, ["a", "b"])
        self.clock.advance(1.0)
        self.clock.advance(1.0)
        self.assertEqual(self.done, list("abcde"))
        self.assertEqual(self.gate.stats(), {
            "building": 0, "waiting": 0, "peak_building": 2, "peak_waiting": 3,
            "built": 5, "busy_seconds": 5.0, "capacity": 2})

    def test_cancel_frees_the_slot(self):
        a = self.build("a")
        self.build("b")
        c = self.build("c")
        self.build("d")
        self.gate.cancel(c)
        self.gate.cancel(a)
        self.assertEqual(len(self.gate.building), 2)
        self.clock.advance(1.0)
        self.assertEqual(self.done, ["b", "d"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel_all_leaves_no_timer(self):
        for name in "abc":
            self.build(name)
        self.gate.cancel_all()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertRaises(ValueError, CircuitGate, self.clock, 0)


class OverlayPopulationTests(SynchronousTestCase):
    """Names from the seed, networks per node, and who gossips what."""

    def test_names_are_valid_and_deterministic(self):
        p, again = population(**OVERLAYS), population(**OVERLAYS)
        self.assertEqual(p.nodes, again.nodes)
        self.assertEqual(p.destinations, again.destinations)
        onions = [n.address for n in p.nodes if n.address.network == Network.TORV3]
        self.assertEqual(len(onions), 10)
        for address in onions + p.onion_dead:
            # parse checks the v3 checksum and version byte.
            self.assertEqual(NetworkAddress.parse(str(address)), address)
        for address, destination in p.destinations.items():
            self.assertEqual(NetworkAddress.parse(str(address)), address)
            self.assertEqual(address.host, hashlib.sha256(destination).digest())
            self.assertEqual(address.port, 0)
        self.assertEqual(len(p.destinations), 10)
        self.assertTrue(all(a.host[0] == 0xFC for a in p.cjdns))
        other = population(seed=8, **OVERLAYS)
        self.assertNotEqual(p.onion_dead, other.onion_dead)

    def test_clearnet_unchanged_by_overlays(self):
        plain, mixed = population(), population(**OVERLAYS)
        self.assertEqual(plain.nodes, mixed.nodes[:60])
        self.assertEqual((plain.refused, plain.blackholed, plain.stale, plain.exotic),
                         (mixed.refused, mixed.blackholed, mixed.stale, mixed.exotic))

    def test_nodes_gossip_only_their_networks(self):
        p = population(**OVERLAYS)
        clearnet_only = 0
        for node in p.nodes:
            networks = p.networks_of[node.index]
            self.assertIn(node.address.network_name, networks)
            gossiped = {e.address.network_name for e in p.answer_entries(node.index)}
            self.assertLessEqual(gossiped, networks, node)
            v1 = p.answer_entries(node.index, v2=False)
            self.assertTrue(all(e.address.network == Network.IPV4 for e in v1))
            if networks == {"ipv4"}:
                clearnet_only += 1
                self.assertNotIn("onion", gossiped)
        self.assertGreater(clearnet_only, 20)
        on_tor = sum("onion" in p.networks_of[i] for i in range(60))
        self.assertTrue(1 <= on_tor <= 60 * CLEARNET_ON_OVERLAY * 2, on_tor)

    def test_every_address_reached(self):
        p = population(**OVERLAYS)
        networks = p.by_network()
        everything = {a for part in networks.values() for a in part["nodes"] + part["dead"]}
        self.assertEqual(p.gossiped(), everything | set(p.exotic))
        # Each node names the next node of its own network.
        for network in (Network.IPV4, Network.TORV3, Network.I2P):
            ring = [n for n in p.nodes if n.address.network == network]
            for i, node in enumerate(ring):
                following = ring[(i + 1) % len(ring)].address
                self.assertIn(following, {e.address for e in p.answer_entries(node.index)})
        # The first honest clearnet node leads from the seeds to every overlay.
        first = next(n for n in p.nodes if n.kind == "honest")
        self.assertEqual(p.networks_of[first.index], {"ipv4", "onion", "i2p", "cjdns"})

    def test_by_network(self):
        p = population(**OVERLAYS)
        networks = p.by_network()
        counts = {name: (len(part["nodes"]), len(part["dead"]), part["served"])
                  for name, part in networks.items()}
        self.assertEqual(counts, {"ipv4": (60, 46, True), "onion": (10, 30, True),
                                  "i2p": (6, 4, True), "cjdns": (5, 0, False)})


class RawSide(Protocol):
    """A client that keeps what it receives and notes when it is closed."""

    def __init__(self):
        self.received = bytearray()
        self.closed = False

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.closed = True

    def take(self, count):
        data = bytes(self.received[:count])
        del self.received[:count]
        return data


class FrontTestCase(TestCase):
    """A SimNet with overlays on loopback, its fronts' timers on a task.Clock."""

    options = {}

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(T0)
        arguments = dict(nodes=20, dead=0, stale=0, exotic=0, book_size=200, seed=3,
                         circuit_latency=(1.0, 2.0), dead_delay=(3.0, 4.0), clock=self.clock,
                         **OVERLAYS)
        arguments.update(self.options)
        self.simnet = SimNet(reactor, **arguments)
        self.truth = self.simnet.start()
        self.addCleanup(self.simnet.stop)
        self.clients = []
        self.addCleanup(self.close_clients)

    @defer.inlineCallbacks
    def close_clients(self):
        for client in self.clients:
            client.transport.abortConnection()
        yield wait_until(lambda: all(c.closed for c in self.clients), "clients closed")

    @defer.inlineCallbacks
    def connect(self, address):
        host, port = address
        client = yield connectProtocol(TCP4ClientEndpoint(reactor, host, port), RawSide())
        self.clients.append(client)
        return client

    @defer.inlineCallbacks
    def receive(self, client, count):
        """The next ``count`` bytes the client gets."""
        yield wait_until(lambda: len(client.received) >= count, f"{count} bytes")
        return client.take(count)

    @defer.inlineCallbacks
    def line(self, client):
        """The next line the client gets, without its newline."""
        yield wait_until(lambda: b"\n" in client.received, "a line")
        line = client.received.split(b"\n", 1)[0]
        return client.take(len(line) + 1)[:-1].decode("ascii")

    def closed(self, client, what="the front to hang up"):
        return wait_until(lambda: client.closed, what)

    def finish_circuits(self, front, count=1):
        """Wait until ``count`` circuits build at ``front``, then let their time pass."""
        d = wait_until(lambda: len(front.gate.building) >= count, f"{count} circuits building")
        return d.addCallback(lambda _: self.clock.advance(5.0))

    @defer.inlineCallbacks
    def node_version(self, client):
        """Say version, and return the version the node answers (parsed)."""
        client.transport.write(frame("version", version_payload(0x5EED)))
        header = yield self.receive(client, 24)
        self.assertEqual(header[:4], MAGIC)
        self.assertEqual(header[4:16].rstrip(b"\0"), b"version")
        (length,) = struct.unpack_from("<I", header, 16)
        payload = yield self.receive(client, length)
        return parse_version(payload)

    def fronts(self, kind):
        return [f for f, _ in self.simnet._fronts if type(f).__name__ == kind]

    def live(self, network):
        return [n for n in self.simnet.population.nodes if n.address.network == network]


def connect_request(host, port, command=1, atyp=3):
    name = host.encode("ascii")
    return (bytes((5, command, 0, atyp, len(name))) + name + struct.pack(">H", port))


class SocksFrontTests(FrontTestCase):
    """RFC 1928 + RFC 1929, server side, as a Tor SocksPort answers."""

    @defer.inlineCallbacks
    def socks(self, *, auth=True):
        """A client past the greeting (and authentication) on the first front."""
        client = yield self.connect(self.simnet.socks_fronts()[0])
        if auth:
            client.transport.write(b"\x05\x02\x00\x02")
            self.assertEqual((yield self.receive(client, 2)), b"\x05\x02")
            client.transport.write(b"\x01\x05alice\x06secret")
            self.assertEqual((yield self.receive(client, 2)), b"\x01\x00")
        else:
            client.transport.write(b"\x05\x01\x00")
            self.assertEqual((yield self.receive(client, 2)), b"\x05\x00")
        return client

    @defer.inlineCallbacks
    def test_live_onion_then_the_node(self):
        node = self.live(Network.TORV3)[0]
        client = yield self.socks()
        client.transport.write(connect_request(node.address.host_text, 8333))
        yield self.finish_circuits(self.fronts("SocksFront")[0])
        self.assertEqual((yield self.receive(client, 10)), b"\x05\x00\x00\x01" + bytes(6))
        version = yield self.node_version(client)
        self.assertEqual(version["user_agent"], node.user_agent)
        self.assertEqual(version["start_height"], node.start_height)
        stats = self.simnet.stats()["socks"][0]
        self.assertEqual((stats["served"], stats["credentials"]), (1, 1))

    @defer.inlineCallbacks
    def test_without_authentication(self):
        node = self.live(Network.TORV3)[1]
        client = yield self.socks(auth=False)
        client.transport.write(connect_request(node.address.host_text, 8333))
        yield self.finish_circuits(self.fronts("SocksFront")[0])
        self.assertEqual((yield self.receive(client, 2)), b"\x05\x00")

    @defer.inlineCallbacks
    def test_dead_onion_after_its_delay(self):
        front = self.fronts("SocksFront")[0]
        client = yield self.socks()
        client.transport.write(connect_request(self.simnet.population.onion_dead[0].host_text,
                                               8333))
        yield wait_until(lambda: len(front.gate.building) == 1, "the lookup building")
        self.clock.advance(2.9)
        self.assertEqual(front.counters.get("unreachable"), None)
        self.clock.advance(1.2)
        self.assertEqual((yield self.receive(client, 10)), b"\x05\x04\x00\x01" + bytes(6))
        yield self.closed(client)
        self.assertEqual(front.counters["unreachable"], 1)

    @defer.inlineCallbacks
    def test_unknown_onion_and_wrong_port_are_dead(self):
        unknown = NetworkAddress(Network.TORV3, bytes(32), 8333).host_text
        live = self.live(Network.TORV3)[0].address.host_text
        for host, port in ((unknown, 8333), (live, 18333)):
            client = yield self.socks()
            client.transport.write(connect_request(host, port))
            yield self.finish_circuits(self.fronts("SocksFront")[0])
            self.assertEqual((yield self.receive(client, 2)), b"\x05\x04")
            yield self.closed(client)

    @defer.inlineCallbacks
    def test_circuit_cap(self):
        """With a cap of 2 and 5 requests, 2 build while 3 wait (the front's counters)."""
        yield self.simnet.stop()
        self.simnet = SimNet(reactor, 20, 0, stale=0, exotic=0, book_size=200, seed=3,
                             clock=self.clock, circuits=2, circuit_latency=(1.0, 1.0),
                             onion=5)
        self.simnet.start()
        self.addCleanup(self.simnet.stop)
        front = self.fronts("SocksFront")[0]
        clients = []
        for node in self.live(Network.TORV3):
            client = yield self.socks()
            client.transport.write(connect_request(node.address.host_text, 8333))
            clients.append(client)
        yield wait_until(lambda: len(front.gate.waiting) == 3, "three requests waiting")
        self.assertEqual(len(front.gate.building), 2)
        for _ in range(3):
            self.clock.advance(1.0)
        yield wait_until(lambda: all(len(c.received) >= 10 for c in clients), "five replies")
        self.assertEqual([c.take(2) for c in clients], [b"\x05\x00"] * 5)
        stats = front.stats()
        self.assertEqual((stats["peak_building"], stats["peak_waiting"], stats["built"]),
                         (2, 3, 5))

    @defer.inlineCallbacks
    def test_malformed_closes(self):
        for greeting in (b"\x04\x01\x00", b"\x05\x00"):
            client = yield self.connect(self.simnet.socks_fronts()[0])
            client.transport.write(greeting)
            yield self.closed(client)
            self.assertEqual(client.received, b"")
        client = yield self.socks()
        client.transport.write(b"\x05\x01\x01\x03\x05abcde\x00\x01")  # RSV not 0
        yield self.closed(client)
        self.assertEqual(client.received, b"")
        client = yield self.connect(self.simnet.socks_fronts()[0])
        client.transport.write(b"\x05\x02\x00\x02\x02\x05alice")  # auth version 2
        yield self.closed(client)
        self.assertEqual(client.received, b"\x05\x02")

    @defer.inlineCallbacks
    def test_refusals_with_a_code(self):
        client = yield self.connect(self.simnet.socks_fronts()[0])
        client.transport.write(b"\x05\x01\x01")  # GSSAPI only
        self.assertEqual((yield self.receive(client, 2)), b"\x05\xff")
        yield self.closed(client)
        onion = self.live(Network.TORV3)[0].address.host_text
        cases = [
            (connect_request(onion, 8333, command=2), 0x07),  # BIND
            (b"\x05\x01\x00\x01\x7f\x00\x00\x01\x20\x8d", 0x02),  # IPv4: onions only
            (connect_request("example.com", 8333), 0x02),
            (b"\x05\x01\x00\x05\x00", 0x08),
        ]
        for request, code in cases:
            client = yield self.socks()
            client.transport.write(request)
            self.assertEqual((yield self.receive(client, 10)),
                             bytes((5, code, 0, 1)) + bytes(6))
            yield self.closed(client)

    @defer.inlineCallbacks
    def test_client_leaving_frees_its_circuit(self):
        front = self.fronts("SocksFront")[0]
        client = yield self.socks()
        client.transport.write(connect_request(self.live(Network.TORV3)[0].address.host_text,
                                               8333))
        yield wait_until(lambda: len(front.gate.building) == 1, "a circuit building")
        client.transport.loseConnection()
        yield wait_until(lambda: not front.gate.building, "the circuit given up")


class ExtendedErrorsTests(FrontTestCase):
    """With Tor's ExtendedErrors, a dead onion is 0xF0; several fronts, each its own cap."""

    options = dict(extended_errors=True, socks_fronts=2)

    @defer.inlineCallbacks
    def test_dead_onion_extended(self):
        first, second = self.simnet.socks_fronts()
        self.assertNotEqual(first, second)
        client = yield self.connect(second)
        client.transport.write(b"\x05\x01\x00")
        self.assertEqual((yield self.receive(client, 2)), b"\x05\x00")
        client.transport.write(connect_request(self.simnet.population.onion_dead[1].host_text,
                                               8333))
        first_front, second_front = self.fronts("SocksFront")
        yield self.finish_circuits(second_front)
        self.assertEqual((yield self.receive(client, 2)), b"\x05\xf0")
        self.assertEqual(first_front.gate.built, 0)
        self.assertEqual(second_front.gate.built, 1)


class SamFrontTests(FrontTestCase):
    """SAM 3.1 as Bitcoin Core speaks it (i2p.cpp)."""

    @defer.inlineCallbacks
    def sam(self, *lines):
        """A client past HELLO that has sent ``lines``; returns it and their replies."""
        client = yield self.connect(self.simnet.sam_bridge())
        client.transport.write(b"HELLO VERSION MIN=3.1 MAX=3.1\n")
        self.assertEqual((yield self.line(client)), "HELLO REPLY RESULT=OK VERSION=3.1")
        replies = []
        for line in lines:
            client.transport.write(line.encode("ascii") + b"\n")
            replies.append((yield self.line(client)))
        return client, replies

    def session(self, name="s1"):
        return self.sam(f"SESSION CREATE STYLE=STREAM ID={name} DESTINATION=TRANSIENT "
                        "SIGNATURE_TYPE=7 i2cp.leaseSetEncType=4,0 inbound.quantity=1 "
                        "outbound.quantity=1")

    def b64(self, address):
        destination = self.simnet.population.destinations[address]
        return base64.b64encode(destination, altchars=b"-~").decode("ascii")

    @defer.inlineCallbacks
    def test_session_lookup_connect_then_the_node(self):
        control, (status,) = yield self.session()
        self.assertTrue(status.startswith("SESSION STATUS RESULT=OK DESTINATION="), status)
        private = base64.b64decode(status.split("DESTINATION=")[1], altchars=b"-~")
        self.assertEqual(len(private), 391 + 288)
        node = self.live(Network.I2P)[0]
        name = node.address.host_text
        stream, (reply,) = yield self.sam(f"NAMING LOOKUP NAME={name}")
        self.assertEqual(
            reply, f"NAMING REPLY RESULT=OK NAME={name} VALUE={self.b64(node.address)}")
        value = base64.b64decode(reply.split("VALUE=")[1], altchars=b"-~")
        self.assertEqual(i2p_address(value), node.address)
        stream.transport.write(f"STREAM CONNECT ID=s1 DESTINATION={self.b64(node.address)} "
                               "SILENT=false\n".encode("ascii"))
        yield self.finish_circuits(self.fronts("SamFront")[0])
        self.assertEqual((yield self.line(stream)), "STREAM STATUS RESULT=OK")
        version = yield self.node_version(stream)
        self.assertEqual(version["user_agent"], node.user_agent)

    @defer.inlineCallbacks
    def test_dead_and_unknown(self):
        yield self.session()
        dead = self.simnet.population.i2p_dead[0]
        client, (reply,) = yield self.sam(f"NAMING LOOKUP NAME={dead.host_text}")
        self.assertIn("RESULT=OK", reply)
        client.transport.write(f"STREAM CONNECT ID=s1 DESTINATION={self.b64(dead)} "
                               "SILENT=false\n".encode("ascii"))
        front = self.fronts("SamFront")[0]
        yield wait_until(lambda: len(front.gate.building) == 1, "a tunnel building")
        self.clock.advance(2.9)
        self.assertEqual(client.received, b"")
        self.clock.advance(1.2)
        self.assertEqual((yield self.line(client)), "STREAM STATUS RESULT=CANT_REACH_PEER")
        yield self.closed(client)
        unknown = NetworkAddress(Network.I2P, bytes(32), 0).host_text
        _, (reply,) = yield self.sam(f"NAMING LOOKUP NAME={unknown}")
        self.assertEqual(reply, f"NAMING REPLY RESULT=KEY_NOT_FOUND NAME={unknown}")

    @defer.inlineCallbacks
    def test_sessions_by_id(self):
        control, _ = yield self.session("abc")
        _, (reply,) = yield self.session("abc")
        self.assertEqual(reply, "SESSION STATUS RESULT=DUPLICATED_ID")
        node = self.live(Network.I2P)[0].address
        line = f"STREAM CONNECT ID=other DESTINATION={self.b64(node)} SILENT=false"
        client, (reply,) = yield self.sam(line)
        self.assertEqual(reply, "STREAM STATUS RESULT=INVALID_ID")
        yield self.closed(client)
        # A session lives as long as its control connection.
        control.transport.loseConnection()
        yield wait_until(lambda: not self.fronts("SamFront")[0].sessions, "the session gone")
        _, (reply,) = yield self.sam(line.replace("other", "abc"))
        self.assertEqual(reply, "STREAM STATUS RESULT=INVALID_ID")

    @defer.inlineCallbacks
    def test_streams_end_with_their_session(self):
        control, _ = yield self.session()
        node = self.live(Network.I2P)[1].address
        stream, _ = yield self.sam()
        stream.transport.write(f"STREAM CONNECT ID=s1 DESTINATION={self.b64(node)}\n"
                               .encode("ascii"))
        yield self.finish_circuits(self.fronts("SamFront")[0])
        self.assertEqual((yield self.line(stream)), "STREAM STATUS RESULT=OK")
        control.transport.loseConnection()
        yield self.closed(stream, "the stream to end with its session")

    @defer.inlineCallbacks
    def test_versions_and_malformed(self):
        client = yield self.connect(self.simnet.sam_bridge())
        client.transport.write(b"HELLO VERSION MIN=3.2 MAX=3.3\n")
        self.assertEqual((yield self.line(client)), "HELLO REPLY RESULT=NOVERSION")
        yield self.closed(client)
        for data in (b"NAMING LOOKUP NAME=x.b32.i2p\n", b"HELLO\n", b"x" * 70000):
            client = yield self.connect(self.simnet.sam_bridge())
            client.transport.write(data)
            yield self.closed(client)
            self.assertEqual(client.received, b"")
        client, _ = yield self.sam()
        client.transport.write(b"STREAM CONNECT ID=s1 DESTINATION=%%% SILENT=false\n")
        yield self.closed(client)


class TruthTests(FrontTestCase):
    """The truth lists every node per network, and where the fronts are."""

    def test_truth_per_network(self):
        truth, simnet = self.truth, self.simnet
        self.assertEqual(truth["counts"]["networks"], {
            "ipv4": {"nodes": 20, "dead": 0}, "onion": {"nodes": 10, "dead": 30},
            "i2p": {"nodes": 6, "dead": 4}, "cjdns": {"nodes": 5, "dead": 0}})
        onions = truth["networks"]["onion"]["nodes"]
        self.assertEqual(onions, [str(n.address) for n in self.live(Network.TORV3)])
        self.assertTrue(all(a.endswith(".onion:8333") for a in onions))
        self.assertTrue(all(a.endswith(".b32.i2p:0") for a in truth["networks"]["i2p"]["dead"]))
        self.assertFalse(truth["networks"]["cjdns"]["served"])
        self.assertEqual(truth["counts"]["nodes"], 36)
        self.assertEqual(truth["fronts"]["socks"], [list(a) for a in simnet.socks_fronts()])
        self.assertEqual(truth["fronts"]["sam"], list(simnet.sam_bridge()))
        self.assertEqual({n["network"] for n in truth["nodes"]}, {"ipv4", "onion", "i2p"})
        self.assertTrue(all(s.network == Network.IPV4 for s in simnet.seeds()))

    def test_no_fronts_without_overlays(self):
        plain = SimNet(reactor, 5, 0, stale=0, exotic=0, clock=self.clock)
        plain.start()
        self.addCleanup(plain.stop)
        self.assertEqual((plain.socks_fronts(), plain.sam_bridge()), ([], None))
        self.assertEqual(plain.truth()["fronts"], {"socks": [], "sam": None})
        self.assertEqual(len(plain._fronts), 0)


class OverlayOptionsTests(SynchronousTestCase):
    """twistd bitpeer-simnet's overlay options."""

    def test_options(self):
        options = Options()
        options.parseOptions(["--nodes", "10", "--onion", "3", "--onion-dead", "9",
                              "--i2p", "2", "--circuit-latency", "0.2-0.4", "--dead-delay", "1",
                              "--circuits", "8", "--socks-fronts", "2", "--extended-errors"])
        self.assertEqual((options["circuit-latency"], options["dead-delay"]),
                         ((0.2, 0.4), (1.0, 1.0)))
        self.assertEqual((options["onion"], options["onion-dead"], options["circuits"]),
                         (3, 9, 8))
        self.assertTrue(options["extended-errors"])

    def test_refused(self):
        for bad in (["--circuit-latency", "fast"], ["--dead-delay", "2-1"],
                    ["--circuits", "0"], ["--socks-fronts", "0"], ["--onion", "-1"],
                    ["--i2p-dead", "-2"], ["--sam-port", "70000"]):
            self.assertRaises(usage.UsageError, Options().parseOptions, bad)
