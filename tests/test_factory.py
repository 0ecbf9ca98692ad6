"""
Tests for bitpeer.factory: PeerFactory and NodeFactory, client_endpoint,
classify_connect_error and connectPeer, on a MemoryReactorClock; then a few
real connections on 127.0.0.1.
"""

import random

from twisted.application.internet import ClientService
from twisted.internet import defer, error, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import (
    ClosedByPeer,
    ClosedLocally,
    ConnectFailed,
    ConnectionClosed,
    ConnectionRefused,
    ConnectTimeout,
    HandshakeTimeout,
    ObsoleteVersion,
    SelfConnection,
)
from bitpeer.factory import (
    DEFAULT_CONNECT_TIMEOUT,
    NodeFactory,
    PeerFactory,
    classify_connect_error,
    client_endpoint,
    connectPeer,
)
from bitpeer.networks import MAINNET, REGTEST
from bitpeer.protocol import BitcoinProtocol, PeerOptions
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.framing import DEFAULT_FRAME_BUDGET, FrameBudget
from bitpeer.testing import FakeInternet
from bitpeer.wire.messages import GetAddr, VerAck, Version

from .helpers import SEED, T0, FakeNode, Wire, ipv4_entries, node_version, pump


class ClassifyConnectErrorTests(SynchronousTestCase):
    """Twisted's connect errors become bitpeer's PeerError classes."""

    def classify(self, exception):
        return classify_connect_error(Failure(exception))

    def test_refused(self):
        result = self.classify(error.ConnectionRefusedError("nobody home"))
        self.assertIsInstance(result, ConnectionRefused)
        self.assertEqual(result.reason, "refused")
        self.assertIn("nobody home", str(result))

    def test_timeout(self):
        result = self.classify(error.TimeoutError())
        self.assertIsInstance(result, ConnectTimeout)
        self.assertEqual(result.reason, "connect-timeout")

    def test_other_connect_errors(self):
        for exception in (
            error.ConnectError(),
            error.NoRouteError(),
            error.ConnectBindError(),
            error.DNSLookupError("no.such.name"),
        ):
            result = self.classify(exception)
            self.assertEqual(type(result), ConnectFailed, exception)
            self.assertEqual(result.reason, "connect-failed")

    def test_not_a_connect_error(self):
        self.assertIsNone(self.classify(ValueError("x")))
        self.assertIsNone(self.classify(error.ConnectionLost()))


class ClientEndpointTests(SynchronousTestCase):
    """client_endpoint picks the endpoint without resolving anything."""

    def setUp(self):
        self.reactor = MemoryReactorClock()

    def test_ipv4_text(self):
        endpoint = client_endpoint(self.reactor, "127.0.0.1:18444", timeout=3)
        self.assertIsInstance(endpoint, TCP4ClientEndpoint)
        self.assertEqual(
            (endpoint._host, endpoint._port, endpoint._timeout), ("127.0.0.1", 18444, 3)
        )

    def test_ipv4_default_port(self):
        endpoint = client_endpoint(self.reactor, "127.0.0.1", default_port=8333)
        self.assertEqual((endpoint._port, endpoint._timeout), (8333, DEFAULT_CONNECT_TIMEOUT))

    def test_ipv6_text(self):
        endpoint = client_endpoint(self.reactor, "[::1]:8333")
        self.assertIsInstance(endpoint, TCP6ClientEndpoint)
        self.assertEqual((endpoint._host, endpoint._port), ("::1", 8333))

    def test_bare_ipv6_default_port(self):
        endpoint = client_endpoint(self.reactor, "::1", default_port=18444)
        self.assertIsInstance(endpoint, TCP6ClientEndpoint)
        self.assertEqual(endpoint._port, 18444)

    def test_network_address(self):
        v4 = client_endpoint(self.reactor, NetworkAddress.parse("127.0.0.2:9"))
        v6 = client_endpoint(self.reactor, NetworkAddress.parse("[::1]:9"))
        self.assertIsInstance(v4, TCP4ClientEndpoint)
        self.assertEqual(v4._host, "127.0.0.2")
        self.assertIsInstance(v6, TCP6ClientEndpoint)

    def test_hostname(self):
        endpoint = client_endpoint(self.reactor, "localhost:8333")
        self.assertIsInstance(endpoint, HostnameEndpoint)
        self.assertEqual((endpoint._hostBytes, endpoint._port), (b"localhost", 8333))

    def test_hostname_default_port(self):
        endpoint = client_endpoint(self.reactor, "localhost", default_port=18444)
        self.assertEqual(endpoint._port, 18444)

    def test_hostname_without_port(self):
        self.assertRaises(ValueError, client_endpoint, self.reactor, "localhost")
        self.assertRaises(ValueError, client_endpoint, self.reactor, "localhost:http")

    def test_onion_refused(self):
        onion = NetworkAddress(Network.TORV3, b"\x01" * 32, 8333)
        with self.assertRaises(ValueError) as caught:
            client_endpoint(self.reactor, onion)
        self.assertIn("proxy", str(caught.exception))
        self.assertRaises(ValueError, client_endpoint, self.reactor, str(onion))
        self.assertEqual(self.reactor.tcpClients, [])

    def test_malformed_onion_is_not_looked_up(self):
        """A name that fails the .onion checksum must not reach the DNS."""
        for text in ("abcdef.onion:8333", "ABCDEF.ONION.:8333", "abc.b32.i2p:0", "x.i2p"):
            with self.assertRaises(ValueError) as caught:
                client_endpoint(self.reactor, text, default_port=8333)
            self.assertNotIn("Endpoint", repr(caught.exception))
        self.assertEqual(self.reactor.tcpClients, [])

    def test_ambiguous_and_bad_ports_refused(self):
        """``::1:8333`` is refused as ambiguous (not dialled as [::0.1.131.51]
        or as a host name), as are port 0 and ports above 65535."""
        for text, words in [("::1:8333", "ambiguous"), ("127.0.0.1:0", "port 0"),
                            ("127.0.0.1:70000", "above 65535"), ("node.example:0", "port 0")]:
            with self.assertRaises(ValueError) as caught:
                client_endpoint(self.reactor, text, default_port=8333)
            self.assertIn(words, str(caught.exception))

    def test_i2p_refused(self):
        i2p = NetworkAddress(Network.I2P, b"\x02" * 32, 0)
        self.assertRaises(ValueError, client_endpoint, self.reactor, i2p)
        self.assertRaises(ValueError, client_endpoint, self.reactor, str(i2p))


class FactoryTests(SynchronousTestCase):
    """What the factories hand their protocols."""

    def test_peer_factory(self):
        clock, rng, nonces = MemoryReactorClock(), random.Random(1), set()
        options = PeerOptions(user_agent="/t/")
        factory = PeerFactory(clock, REGTEST, options, rng, nonces)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 18444))
        self.assertIsInstance(protocol, BitcoinProtocol)
        self.assertIs(protocol.factory, factory)
        self.assertIs(protocol.inbound, False)
        self.assertIs(protocol.clock, clock)
        self.assertIs(protocol.random, rng)
        self.assertIs(protocol.nonces, nonces)
        self.assertIs(protocol.options, options)
        self.assertIs(protocol.network, REGTEST)
        self.assertEqual(protocol.address, NetworkAddress.parse("127.0.0.1:18444"))

    def test_node_factory(self):
        book = ipv4_entries(3)
        factory = NodeFactory(MemoryReactorClock(), address_source=lambda: book)
        protocol = factory.buildProtocol(IPv6Address("TCP", "::1", 40000))
        self.assertIs(protocol.inbound, True)
        self.assertEqual(list(protocol.address_source()), book)
        self.assertEqual(protocol.address, NetworkAddress.parse("[::1]:40000"))

    def test_ipv6_scope_is_dropped(self):
        factory = PeerFactory(MemoryReactorClock())
        protocol = factory.buildProtocol(IPv6Address("TCP", "fe80::1%eth0", 8333))
        self.assertEqual(protocol.address, NetworkAddress.parse("[fe80::1]:8333"))

    def test_defaults(self):
        factory = PeerFactory(MemoryReactorClock())
        self.assertIs(factory.network, MAINNET)
        self.assertEqual(factory.options, PeerOptions())
        self.assertIsInstance(factory.random, random.SystemRandom)
        self.assertEqual(factory.nonces, set())
        self.assertIsNot(PeerFactory(MemoryReactorClock()).nonces, factory.nonces)

    def test_frame_budget_per_factory(self):
        """
        Each factory has its own FrameBudget by default, shared by all its
        connections; one given is used as it is (a process can share one
        between its factories).
        """
        factory = PeerFactory(MemoryReactorClock())
        self.assertIsInstance(factory.frame_budget, FrameBudget)
        self.assertEqual(factory.frame_budget.limit, DEFAULT_FRAME_BUDGET)
        self.assertIsNot(PeerFactory(MemoryReactorClock()).frame_budget, factory.frame_budget)
        address = IPv4Address("TCP", "127.0.0.1", 18444)
        one, two = factory.buildProtocol(address), factory.buildProtocol(address)
        self.assertIs(one.decoder.budget, factory.frame_budget)
        self.assertIs(two.decoder.budget, factory.frame_budget)
        shared = FrameBudget(1000)
        node = NodeFactory(MemoryReactorClock(), frame_budget=shared)
        self.assertIs(node.buildProtocol(address).decoder.budget, shared)
        self.assertIs(PeerFactory(MemoryReactorClock(), frame_budget=shared).frame_budget,
                      shared)

    def test_client_service_stop_is_a_local_close(self):
        """Twisted's ClientService closes the transport itself on stop: the
        peer hears a local close, not the peer's."""
        internet = FakeInternet()
        node = internet.add_node(address="127.0.0.2:8333")
        service = ClientService(TCP4ClientEndpoint(internet, "127.0.0.2", 8333),
                                PeerFactory(internet, random=random.Random(SEED)), clock=internet)
        service.startService()
        internet.advance(0)
        peer = self.successResultOf(service.whenConnected()).peer
        self.assertIsNotNone(peer.info)
        service.stopService()
        internet.advance(0)
        closed = self.successResultOf(peer.whenClosed())
        self.assertIsInstance(closed, ClosedLocally)
        self.assertEqual(closed.reason, "closed-locally")
        [loopback] = node.connections
        self.assertIsInstance(self.successResultOf(loopback.server.peer.whenClosed()),
                              ClosedByPeer)

    def test_options_validated(self):
        self.assertRaises(ValueError, PeerOptions, handshake_timeout=0)
        self.assertRaises(ValueError, PeerOptions, getaddr_timeout=-1)
        self.assertRaises(ValueError, PeerOptions, max_addresses=0)


class LoopbackTests(SynchronousTestCase):
    """A PeerFactory connection talking to a NodeFactory connection, in memory."""

    def setUp(self):
        self.book = ipv4_entries(200)
        self.client = FakeNode(seed=1, options=PeerOptions(user_agent="/client/"))
        self.server = FakeNode(
            inbound=True,
            seed=2,
            clock=self.client.clock,
            options=PeerOptions(user_agent="/server/", start_height=5),
            address_source=lambda: self.book,
        )

    def test_handshake(self):
        pump(self.client, self.server)
        client_info, server_info = self.client.peer.info, self.server.peer.info
        self.assertEqual((client_info.user_agent, client_info.start_height), ("/server/", 5))
        self.assertEqual(server_info.user_agent, "/client/")
        self.assertIs(server_info.inbound, True)
        self.assertEqual(client_info.nonce, self.server.protocol.nonce)
        self.assertEqual(server_info.nonce, self.client.protocol.nonce)

    def test_getaddr_and_ping(self):
        d = self.client.peer.getaddr()
        pump(self.client, self.server)
        result = self.successResultOf(d)
        self.assertEqual(result.outcome, "answered")
        self.assertEqual(len(result.addresses), 46)
        self.assertLessEqual(set(result.addresses), set(self.book))
        self.assertIs(self.server.protocol.wants_addrv2, True)
        ping = self.client.peer.ping()
        self.client.clock.advance(0.5)  # not pumped yet
        pump(self.client, self.server)
        self.assertEqual(self.successResultOf(ping), 0.5)

    def test_self_connection(self):
        """A process sharing its nonces between factories spots itself."""
        shared = set()
        client = FakeNode(seed=1, nonces=shared)
        server = FakeNode(inbound=True, seed=2, nonces=shared, clock=client.clock)
        pump(client, server)
        self.assertIsInstance(server.close_error(self), SelfConnection)
        client.connection_lost(error.ConnectionDone())
        self.failureResultOf(client.peer.whenHandshaken(), ConnectionClosed)
        self.assertEqual(shared, set())


class ConnectPeerTests(SynchronousTestCase):
    """connectPeer on a MemoryReactorClock: connect, handshake, cancel."""

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(T0)

    def connect(self, address="127.0.0.1:8333", network=MAINNET, **kwargs):
        if "factory" not in kwargs and "user_agent" not in kwargs:
            kwargs["factory"] = PeerFactory(self.reactor, network, random=random.Random(SEED))
        d = connectPeer(self.reactor, address, network, **kwargs)
        self.host, self.port, self.wrapping, self.timeout, _ = self.reactor.tcpClients[-1]
        self.connector = self.reactor.connectors[-1]
        return d

    def accept(self, network=MAINNET):
        """The TCP connection succeeds: the endpoint builds the protocol."""
        wrapper = self.wrapping.buildProtocol(IPv4Address("TCP", self.host, self.port))
        transport = StringTransport(peerAddress=IPv4Address("TCP", self.host, self.port))
        wrapper.makeConnection(transport)
        protocol = wrapper._wrappedProtocol
        self.assertIsInstance(protocol, BitcoinProtocol)
        return Wire(wrapper, transport, network, protocol)

    def test_dials_the_address(self):
        self.connect("127.0.0.1:8333")
        self.assertEqual((self.host, self.port, self.timeout), ("127.0.0.1", 8333, 10.0))

    def test_connect_timeout(self):
        self.connect("127.0.0.1:8333", connect_timeout=2.5)
        self.assertEqual(self.timeout, 2.5)

    def test_network_default_port_and_magic(self):
        self.connect("127.0.0.1", REGTEST)
        self.assertEqual(self.port, 18444)
        wire = self.accept(REGTEST)
        self.assertEqual(wire.transport.value()[:16], REGTEST.magic + b"version" + bytes(5))

    def test_ipv6(self):
        self.connect("[::1]:8333")
        self.assertEqual((self.host, self.port), ("::1", 8333))

    def test_options_as_keywords(self):
        self.connect("127.0.0.1:8333", user_agent="/embedded:1/", start_height=7)
        [version] = self.accept().sent()
        self.assertEqual((version.user_agent, version.start_height), ("/embedded:1/", 7))

    def test_onion_refused_at_once(self):
        onion = NetworkAddress(Network.TORV3, b"\x01" * 32, 8333)
        self.assertRaises(ValueError, connectPeer, self.reactor, onion)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_fires_with_the_peer_after_handshake(self):
        d = self.connect()
        wire = self.accept()
        [version] = wire.sent()
        self.assertIsInstance(version, Version)
        self.assertNoResult(d)
        wire.send(node_version())
        self.assertNoResult(d)
        wire.send(VerAck())
        peer = self.successResultOf(d)
        self.assertIs(peer, wire.peer)
        self.assertEqual(peer.info.user_agent, "/Satoshi:27.0.0/")
        # The peer is usable: getaddr goes out at once.
        peer.getaddr()
        self.assertEqual(wire.sent()[-1], GetAddr())

    def test_refused(self):
        d = self.connect()
        self.wrapping.clientConnectionFailed(
            self.connector, Failure(error.ConnectionRefusedError("Connection refused"))
        )
        failure = self.failureResultOf(d, ConnectionRefused)
        self.assertEqual(failure.value.reason, "refused")

    def test_connect_timeout_error(self):
        d = self.connect()
        self.wrapping.clientConnectionFailed(self.connector, Failure(error.TimeoutError()))
        self.failureResultOf(d, ConnectTimeout)

    def test_unclassified_error_passes_through(self):
        d = self.connect()
        self.wrapping.clientConnectionFailed(self.connector, Failure(ZeroDivisionError()))
        self.failureResultOf(d, ZeroDivisionError)

    def test_cancel_while_connecting(self):
        d = self.connect()
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertTrue(self.connector.stoppedConnecting)

    def test_cancel_during_handshake(self):
        d = self.connect()
        wire = self.accept()
        wire.send(node_version())
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertTrue(wire.transport.disconnected)
        wire.connection_lost()
        closed = self.successResultOf(wire.peer.whenClosed())
        self.assertIsInstance(closed, ConnectionClosed)
        self.assertEqual(str(closed), "cancelled")
        self.assertIsInstance(closed, ClosedLocally)

    def test_cancel_after_handshake_does_nothing(self):
        d = self.connect()
        wire = self.accept()
        wire.handshake()
        peer = self.successResultOf(d)
        d.cancel()
        self.assertFalse(wire.transport.disconnecting)
        self.assertIsNotNone(peer.info)

    def test_handshake_failure(self):
        d = self.connect()
        wire = self.accept()
        wire.send(node_version(version=300))
        self.assertNoResult(d)
        wire.connection_lost()
        self.failureResultOf(d, ObsoleteVersion)

    def test_handshake_timeout_on_the_reactor_clock(self):
        d = self.connect()
        wire = self.accept()
        self.reactor.advance(19)
        self.assertFalse(wire.transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(wire.transport.disconnected)
        wire.connection_lost()
        self.failureResultOf(d, HandshakeTimeout)

    def test_closed_by_peer_during_handshake(self):
        d = self.connect()
        wire = self.accept()
        wire.connection_lost(error.ConnectionDone())
        self.failureResultOf(d, ConnectionClosed)


class RealSocketTests(TestCase):
    """A NodeFactory listening on 127.0.0.1, dialled with connectPeer."""

    def setUp(self):
        self.book = ipv4_entries(100)
        self.server_peers = []
        self.node = NodeFactory(
            reactor,
            options=PeerOptions(user_agent="/loopback-node:1/", start_height=77),
            address_source=lambda: self.book,
            on_peer=self.server_peers.append,
        )
        self.port = reactor.listenTCP(0, self.node, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.address = f"127.0.0.1:{self.port.getHost().port}"

    @defer.inlineCallbacks
    def test_handshake_getaddr_ping(self):
        peer = yield connectPeer(reactor, self.address, connect_timeout=5)
        try:
            self.assertEqual(peer.info.user_agent, "/loopback-node:1/")
            self.assertEqual(peer.info.start_height, 77)
            self.assertEqual(peer.info.version, 70016)
            self.assertEqual(str(peer.address), self.address)
            self.assertGreaterEqual(peer.info.handshake_latency, 0)
            result = yield peer.getaddr()
            self.assertEqual(result.outcome, "answered")
            self.assertEqual(len(result.addresses), 23)
            self.assertLessEqual(set(result.addresses), set(self.book))
            rtt = yield peer.ping()
            self.assertGreaterEqual(rtt, 0)
            [server_peer] = self.server_peers
            self.assertIs(server_peer.info.inbound, True)
            self.assertEqual(server_peer.info.nonce, peer._protocol.nonce)
        finally:
            peer.close()
        closed = yield peer.whenClosed()
        self.assertEqual(str(closed), "closed by us")
        server_closed = yield self.server_peers[0].whenClosed()
        self.assertIsInstance(server_closed, ConnectionClosed)

    @defer.inlineCallbacks
    def test_refused(self):
        # A port that was just free: nothing listens there now.
        probe = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        port = probe.getHost().port
        yield probe.stopListening()
        with self.assertRaises(ConnectionRefused) as caught:
            yield connectPeer(reactor, f"127.0.0.1:{port}", connect_timeout=5)
        self.assertEqual(caught.exception.reason, "refused")
