"""
Tests for bitpeer.net.endpoints.EndpointDialler, and for how a crawl picks
its dialler (bitpeer.net.dialler_for).

The dialler is driven on a MemoryReactorClock, playing Twisted's connector:
the tests build the connected protocol, or fail the attempt, through the
factory the endpoint handed to ``connectTCP``.  One TestCase then dials
127.0.0.1 for real.
"""

import socket

from twisted.internet import defer, error, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.errors import ConnectFailed, ConnectionRefused, ConnectTimeout, OnionUnreachable
from bitpeer.net import DIALLERS, dialler_for
from bitpeer.net.dialler import Dialler
from bitpeer.net.endpoints import EndpointDialler
from bitpeer.wire.address import Network, NetworkAddress

ADDRESS = NetworkAddress.from_host("127.0.0.1", 18444)
ADDRESS6 = NetworkAddress.from_host("::1", 18444)
TIMEOUT = 7


class RecordingFactory(Factory):
    """Builds plain Protocols and records the address each was built for;
    ``refuse`` makes it return None, ``broken`` raise."""

    protocol = Protocol

    def __init__(self):
        self.built = []
        self.refuse = self.broken = False

    def buildProtocol(self, addr):
        if self.broken:
            raise RuntimeError("factory bug")
        if self.refuse:
            return None
        self.built.append(addr)
        return super().buildProtocol(addr)


class EndpointDiallerTests(SynchronousTestCase):

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.factory = RecordingFactory()
        self.failures = []
        self.dialler = EndpointDialler(self.reactor, self.factory, TIMEOUT,
                                       lambda address, e: self.failures.append((address, e)))

    def connector(self, index=0):
        """What the endpoint gave connectTCP: (host, port, factory, timeout)
        and the connector."""
        host, port, factory, timeout, _ = self.reactor.tcpClients[index]
        return (host, port, factory, timeout), self.reactor.connectors[index]

    def fail(self, exception, index=0):
        """Twisted's connector reports the attempt failed."""
        (_, _, factory, _), connector = self.connector(index)
        factory.clientConnectionFailed(connector, Failure(exception))

    def assert_failed(self, kind):
        [(address, e)] = self.failures
        self.assertEqual(address, ADDRESS)
        self.assertIs(type(e), kind)
        return e

    def test_dial_connects_with_the_timeout(self):
        attempt = self.dialler.dial(ADDRESS)
        (host, port, _, timeout), _ = self.connector()
        self.assertEqual((host, port, timeout), ("127.0.0.1", 18444, TIMEOUT))
        self.assertTrue(attempt.connecting)
        self.assertEqual(attempt.address, ADDRESS)
        self.assertIn("connecting", repr(attempt))

    def test_ipv6(self):
        self.dialler.dial(ADDRESS6)
        (host, port, _, _), _ = self.connector()
        self.assertEqual((host, port), ("::1", 18444))

    def test_needs_a_proxy(self):
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        self.assertRaises(ValueError, self.dialler.dial, onion)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_connected_builds_the_protocol(self):
        """The factory builds the protocol for the address dialled; the
        dialler reports nothing, and a cancel then does nothing."""
        attempt = self.dialler.dial(ADDRESS)
        (_, _, factory, _), connector = self.connector()
        peer = IPv4Address("TCP", "127.0.0.1", 18444)
        wrapper = factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        wrapper.makeConnection(transport)
        self.assertEqual(self.factory.built, [peer])
        self.assertFalse(attempt.connecting)
        self.assertIn("done", repr(attempt))
        attempt.cancel()
        self.assertFalse(connector.stoppedConnecting)
        self.reactor.advance(TIMEOUT)
        self.assertEqual(self.failures, [])

    def test_connection_made_raises(self):
        """A protocol whose connectionMade raises: the connection is
        aborted, the bug logged and the attempt reported failed, as the fast
        dialler does (Twisted's endpoint alone would never settle it)."""
        class Broken(Protocol):
            def connectionMade(self):
                raise RuntimeError("start bug")

        self.factory.protocol = Broken
        attempt = self.dialler.dial(ADDRESS)
        (_, _, factory, _), _ = self.connector()
        peer = IPv4Address("TCP", "127.0.0.1", 18444)
        transport = StringTransport(peerAddress=peer)
        factory.buildProtocol(peer).makeConnection(transport)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(attempt.connecting)
        self.assertIn("start bug", str(self.assert_failed(ConnectFailed)))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_refused(self):
        attempt = self.dialler.dial(ADDRESS)
        self.fail(error.ConnectionRefusedError())
        self.assert_failed(ConnectionRefused)
        self.assertFalse(attempt.connecting)

    def test_timeout(self):
        """The connector's timeout (Twisted's TimeoutError) is ConnectTimeout."""
        self.dialler.dial(ADDRESS)
        self.fail(error.TimeoutError())
        self.assert_failed(ConnectTimeout)

    def test_other_connect_errors(self):
        self.dialler.dial(ADDRESS)
        self.fail(error.NoRouteError())
        self.assertIn("route", str(self.assert_failed(ConnectFailed)))

    def test_cancel(self):
        """cancel() stops the connector and reports ConnectFailed at once;
        once settled, nothing more."""
        attempt = self.dialler.dial(ADDRESS)
        attempt.cancel()
        _, connector = self.connector()
        self.assertTrue(connector.stoppedConnecting)
        self.assertIn("cancelled", str(self.assert_failed(ConnectFailed)))
        self.assertFalse(attempt.connecting)
        attempt.cancel()
        self.fail(error.ConnectionRefusedError())
        self.assertEqual(len(self.failures), 1)

    def test_factory_refuses(self):
        self.factory.refuse = True
        self.dialler.dial(ADDRESS)
        (_, _, factory, _), _ = self.connector()
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 18444)))
        self.assertIn("refused the connection", str(self.assert_failed(ConnectFailed)))

    def test_factory_raises(self):
        """A bug in the factory is logged, and the attempt still ends."""
        self.factory.broken = True
        self.dialler.dial(ADDRESS)
        (_, _, factory, _), _ = self.connector()
        factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 18444))
        self.assertIn("factory bug", str(self.assert_failed(ConnectFailed)))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failed_callback_raises(self):
        """A ``failed`` callback that raises is logged, not left in a
        Deferred."""
        def failed(address, e):
            raise KeyError("callback bug")

        dialler = EndpointDialler(self.reactor, self.factory, TIMEOUT, failed)
        dialler.dial(ADDRESS)
        self.fail(error.ConnectionRefusedError())
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)


class PendingEndpoint:
    """An endpoint whose connects stay pending: ``connecting`` holds their
    Deferreds (plain ones: cancelling gives CancelledError)."""

    def __init__(self):
        self.connecting = []

    def connect(self, factory):
        self.connecting.append(defer.Deferred())
        return self.connecting[-1]


class EndpointFunctionTests(SynchronousTestCase):
    """EndpointDialler given an ``endpoint`` function (as the proxy
    diallers are): what that endpoint reports is the attempt's end."""

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.failures = []
        self.pending = PendingEndpoint()
        self.dialler = EndpointDialler(self.reactor, RecordingFactory(), TIMEOUT,
                                       lambda address, e: self.failures.append((address, e)),
                                       endpoint=self.endpoint)

    def endpoint(self, address):
        if address.network != Network.TORV3:
            raise ValueError("onions only")
        return self.pending

    def test_the_function_chooses(self):
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        self.dialler.dial(onion)
        self.assertEqual(len(self.pending.connecting), 1)
        self.assertRaises(ValueError, self.dialler.dial, ADDRESS)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_bitpeer_errors_kept(self):
        """A ConnectFailed subclass from the endpoint is reported as it is."""
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        self.dialler.dial(onion)
        self.pending.connecting[0].errback(OnionUnreachable("descriptor not found"))
        [(address, e)] = self.failures
        self.assertEqual(address, onion)
        self.assertIs(type(e), OnionUnreachable)

    def test_cancelled_wait(self):
        """An endpoint cancelled while it waits (CancelledError) is a
        cancelled attempt, not a bug."""
        onion = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
        attempt = self.dialler.dial(onion)
        attempt.cancel()
        [(_, e)] = self.failures
        self.assertIn("cancelled", str(e))
        self.assertEqual(self.flushLoggedErrors(), [])


class SynchronousFailureReactor(MemoryReactorClock):
    """A reactor whose connectTCP fails the attempt before it returns."""

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        connector = super().connectTCP(host, port, factory, timeout, bindAddress)
        factory.clientConnectionFailed(connector, Failure(error.ConnectionRefusedError()))
        return connector


class NeverInsideDialTests(SynchronousTestCase):
    """A failure known before dial() returns is reported a turn later."""

    def setUp(self):
        self.reactor = SynchronousFailureReactor()
        self.failures = []
        self.dialler = EndpointDialler(self.reactor, RecordingFactory(), TIMEOUT,
                                       lambda address, e: self.failures.append((address, e)))

    def test_reported_on_the_next_turn(self):
        attempt = self.dialler.dial(ADDRESS)
        self.assertEqual(self.failures, [])
        self.assertFalse(attempt.connecting)
        self.reactor.advance(0)
        [(address, e)] = self.failures
        self.assertEqual(address, ADDRESS)
        self.assertIsInstance(e, ConnectionRefused)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_on_the_clock(self):
        clock = Clock()
        dialler = EndpointDialler(self.reactor, RecordingFactory(), TIMEOUT,
                                  lambda address, e: self.failures.append(e), clock=clock)
        dialler.dial(ADDRESS)
        self.reactor.advance(0)
        self.assertEqual(self.failures, [])
        clock.advance(0)
        self.assertEqual(len(self.failures), 1)

    def test_cancel_reports_at_once(self):
        attempt = self.dialler.dial(ADDRESS)
        attempt.cancel()
        self.assertEqual(len(self.failures), 1)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        attempt.cancel()
        self.reactor.advance(0)
        self.assertEqual(len(self.failures), 1)

    def test_failed_may_dial_again(self):
        """A ``failed`` callback that dials again does not recurse."""
        depth = []

        def failed(address, e):
            depth.append(len(depth))
            if len(depth) < 3:
                dialler.dial(address)

        dialler = EndpointDialler(self.reactor, RecordingFactory(), TIMEOUT, failed)
        dialler.dial(ADDRESS)
        for _ in range(3):
            self.reactor.advance(0)
        self.assertEqual(depth, [0, 1, 2])


class NoFDSetReactor:
    """A reactor with time and TCP but no IReactorFDSet (as Windows'
    IOCP reactor)."""


class SelectionTests(SynchronousTestCase):
    """dialler_for: the transport names, and the fallback of "fast"."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def test_names(self):
        self.assertEqual(DIALLERS, {"fast": Dialler, "twisted": EndpointDialler})

    def test_fast_on_a_reactor_with_fdset(self):
        self.assertIs(dialler_for("fast", MemoryReactorClock()), Dialler)
        self.assertIs(dialler_for("twisted", MemoryReactorClock()), EndpointDialler)
        self.assertEqual(self.events, [])

    def test_fast_falls_back_without_fdset(self):
        """One info line says why, and the crawl dials through endpoints."""
        self.assertIs(dialler_for("fast", NoFDSetReactor()), EndpointDialler)
        [event] = [e for e in self.events if e.get("log_namespace", "").startswith("bitpeer")]
        self.assertEqual(event["log_level"].name, "info")
        self.assertIn("IReactorFDSet", event["log_format"])
        self.assertEqual(event["reactor"], "NoFDSetReactor")

    def test_twisted_anywhere(self):
        self.assertIs(dialler_for("twisted", NoFDSetReactor()), EndpointDialler)
        self.assertEqual(self.events, [])


class Connected(Protocol):
    """Fires ``made`` with itself once connected."""

    def __init__(self, made):
        self.made = made

    def connectionMade(self):
        self.made.callback(self)


class LoopbackTests(TestCase):
    """EndpointDialler on the real reactor, to 127.0.0.1."""

    @defer.inlineCallbacks
    def test_connect_and_refused(self):
        made = defer.Deferred()
        failures = defer.Deferred()
        server = yield reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(server.stopListening)
        factory = Factory()
        factory.buildProtocol = lambda addr: Connected(made)
        dialler = EndpointDialler(reactor, factory, 5,
                                  lambda address, e: failures.callback((address, e)))
        port = server.getHost().port
        dialler.dial(NetworkAddress.from_host("127.0.0.1", port))
        protocol = yield made
        self.assertEqual(protocol.transport.getPeer(), IPv4Address("TCP", "127.0.0.1", port))
        lost = defer.Deferred()
        protocol.connectionLost = lambda reason: lost.callback(None)
        protocol.transport.loseConnection()
        yield lost
        # A port bound (so no one else takes it) but not listening.
        refuser = socket.socket()
        self.addCleanup(refuser.close)
        refuser.bind(("127.0.0.1", 0))
        refused = NetworkAddress.from_host("127.0.0.1", refuser.getsockname()[1])
        dialler.dial(refused)
        address, e = yield failures
        self.assertEqual(address, refused)
        self.assertIsInstance(e, ConnectionRefused)
