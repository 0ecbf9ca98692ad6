"""
Fakes for testing code that uses bitpeer, without a network.

Your tests can run your PeerFactory, connectPeer() or Peer code against
Bitcoin nodes that live in memory and on a task.Clock:

- ``FakeNode``: a node speaking bitpeer's own protocol from the inbound side
  (what NodeFactory serves: Core's handshake order, getaddr answered once
  from its address book), with the version data you give it.  Its
  ``protocol`` may be a BitcoinProtocol subclass overriding the protocol's
  hooks, as the simulated network's misbehaving nodes do.
- ``Loopback``: two protocols joined in memory; bytes cross it on the clock.
- ``handshake``: connect a client to a FakeNode and complete the handshake.
- ``FakeInternet``: a MemoryReactorClock whose connectTCP reaches FakeNodes
  by address, so that connectPeer(), and code that calls it, runs unchanged;
  a node can be taken down and brought up again (a restart).
- ``start_simnet``: a whole simulated network on 127.0.0.0/8 (real sockets,
  for trial.unittest.TestCase), stopped when the test ends.

Everything here runs on the clock it is given: nothing happens until the
clock is advanced (``clock.advance(0)`` delivers whatever is in flight).
"""

import random as _random

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from .factory import PeerFactory
from .networks import MAINNET
from .protocol import BitcoinProtocol, PeerOptions
from .simnet.network import SimNet
from .wire.address import Network, NetworkAddress
from .wire.messages import PROTOCOL_VERSION
from .wire.services import NODE_NETWORK, NODE_NETWORK_LIMITED, NODE_WITNESS

__all__ = ["FakeInternet", "FakeNode", "Loopback", "SimNet", "T0", "fake_clock",
           "handshake", "start_simnet"]

#: A realistic start time for fake clocks (November 2023), so that
#: timestamps in versions and address entries look like the network's.
T0 = 1_700_000_000


def fake_clock(start=T0):
    """A task.Clock set to ``start`` (seconds since the epoch)."""
    clock = Clock()
    clock.advance(start)
    return clock


def twisted_address(address):
    """The Twisted IPv4Address/IPv6Address of an IP NetworkAddress."""
    kind = IPv6Address if address.network == Network.IPV6 else IPv4Address
    return kind("TCP", address.host_text, address.port)


def _network_address(address):
    return address if isinstance(address, NetworkAddress) else NetworkAddress.parse(address)


class _End(StringTransport):
    """
    One end of a Loopback: a StringTransport whose writes travel to the other
    end instead of collecting, and whose closing ends the connection.

    @ivar owner: the protocol this end is the transport of.
    @ivar other: the other end.
    """

    def __init__(self, loopback, owner, host, peer):
        super().__init__(hostAddress=host, peerAddress=peer)
        self.loopback, self.owner, self.other = loopback, owner, None

    def write(self, data):
        if not self.disconnecting:
            self.loopback._carry(self, data)

    def writeSequence(self, data):
        self.write(b"".join(data))

    def loseConnection(self):
        if not self.disconnecting:
            super().loseConnection()
            self.loopback._close(self, aborted=False)

    def abortConnection(self):
        if not self.disconnected:
            self.disconnecting = self.disconnected = True
            self.loopback._close(self, aborted=True)


class Loopback:
    """
    Two protocols joined in memory as TCP would join them: what one writes
    reaches the other ``latency`` seconds later on ``clock`` (with 0, at the
    clock's next ``advance``), in order.  A clean close arrives after the
    data written before it; an abort drops what is still in flight.  Either
    way both protocols then get connectionLost, on the clock, never inside
    the call that closed (as a reactor does).

    @ivar client: the protocol that dialled.
    @ivar server: the protocol that was dialled.
    @ivar closed: True once both have had connectionLost.
    """

    def __init__(self, clock, client, server, client_address, server_address, latency=0.0):
        self.clock, self.latency = clock, latency
        self.client, self.server = client, server
        self.closed = False
        self._aborted = False
        client_end = _End(self, client, client_address, server_address)
        server_end = _End(self, server, server_address, client_address)
        client_end.other, server_end.other = server_end, client_end
        self._ends = (client_end, server_end)
        client.makeConnection(client_end)
        server.makeConnection(server_end)

    def _carry(self, sender, data):
        self.clock.callLater(self.latency, self._deliver, sender.other.owner, data)

    def _deliver(self, receiver, data):
        if not (self.closed or self._aborted):
            receiver.dataReceived(data)

    def _close(self, closer, aborted):
        if aborted:
            self._aborted = True
        self.clock.callLater(0 if aborted else self.latency, self._end, closer, aborted)

    def _end(self, closer, aborted):
        if self.closed:
            return
        self.closed = True
        for end in self._ends:
            end.connected = False
        for end in self._ends:
            if not aborted:
                reason = ConnectionDone()
            elif end is closer:
                reason = ConnectionAborted()
            else:
                reason = ConnectionLost("connection reset by peer")
            end.owner.connectionLost(Failure(reason))


class FakeNode:
    """
    A Bitcoin node in memory: each connection to it is the inbound side of
    bitpeer's protocol (what NodeFactory serves), presenting ``version``,
    ``user_agent``, ``services`` and ``start_height``, and answering the
    first getaddr with Core's sample of ``addresses`` (AddrEntry objects; a
    list you may change between connections).

    ``protocol`` is the class of its connections: BitcoinProtocol, or a
    subclass overriding the protocol's extension hooks to misbehave.  It is
    built as NodeFactory builds BitcoinProtocol, so a subclass's
    ``__init__`` takes the same arguments.

    @ivar address: where the node is (a NetworkAddress).
    @ivar connections: a Loopback per connection made to it.
    """

    def __init__(self, clock, network=MAINNET, *, address="127.0.0.2:8333",
                 version=PROTOCOL_VERSION, user_agent="/Satoshi:27.0.0/",
                 services=NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED,
                 start_height=0, addresses=(), protocol=BitcoinProtocol, random=None):
        self.clock, self.network, self.protocol = clock, network, protocol
        self.address = _network_address(address)
        self.options = PeerOptions(user_agent=user_agent, start_height=start_height,
                                   services=int(services), relay=True, version=version)
        self.addresses = list(addresses)
        self.random = random if random is not None else _random.Random(str(self.address))
        self.nonces = set()
        self.connections = []

    def accept(self, client_address):
        """A protocol for a connection from ``client_address``, not yet connected."""
        return self.protocol(
            self.network, self.options, self.clock, self.random, self.nonces,
            inbound=True, address=_network_address(client_address),
            address_source=lambda: self.addresses,
        )

    def connect(self, factory, client_address="127.0.0.1:50000", latency=0.0):
        """
        Connect a client built by ``factory`` (a PeerFactory, say) to this
        node over a new Loopback, and return it.  The client speaks first
        once the clock is advanced.
        """
        client_address = _network_address(client_address)
        here, there = twisted_address(self.address), twisted_address(client_address)
        client = factory.buildProtocol(here)
        loopback = Loopback(self.clock, client, self.accept(client_address), there, here,
                            latency)
        self.connections.append(loopback)
        return loopback


def handshake(node, factory=None):
    """
    Connect a client to ``node`` (a FakeNode) and advance its clock until
    the handshake is done: returns the client's Peer.  ``factory`` defaults
    to a PeerFactory on the node's clock and network.  Raises the PeerError
    that ended the connection if the handshake failed, AssertionError if it
    is still waiting (a node that never answers: advance the clock yourself).
    """
    if factory is None:
        factory = PeerFactory(node.clock, node.network, random=_random.Random(0))
    loopback = node.connect(factory)
    node.clock.advance(0)
    peer = loopback.client.peer
    outcome = []
    peer.whenHandshaken().addBoth(outcome.append)
    if not outcome:
        raise AssertionError(f"the handshake with {node.address} has not completed")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return peer


class FakeInternet(MemoryReactorClock):
    """
    A MemoryReactorClock whose connectTCP reaches the FakeNodes added to it,
    by address, on its own clock: connectPeer(internet, "127.0.0.2:8333")
    and code that calls it run unchanged.  Other addresses are refused, as
    are the nodes taken down.
    """

    def __init__(self, start=T0):
        super().__init__()
        self.advance(start)
        self.nodes = {}

    def add_node(self, **node_arguments):
        """A new FakeNode on this clock (``node_arguments`` as FakeNode's)."""
        node = FakeNode(self, **node_arguments)
        self.bring_up(node)
        return node

    def take_down(self, node):
        """Stop ``node`` as a restarting node stops: it closes its open
        connections, and new ones are refused until ``bring_up(node)``."""
        del self.nodes[(node.address.host_text, node.address.port)]
        for loopback in node.connections:
            loopback.server.transport.loseConnection()

    def bring_up(self, node):
        """Let ``node`` (a FakeNode on this clock) be reached again."""
        self.nodes[(node.address.host_text, node.address.port)] = node

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        connector = super().connectTCP(host, port, factory, timeout, bindAddress)
        self.callLater(0, self._complete, connector, host, port, factory)
        return connector

    def _complete(self, connector, host, port, factory):
        if connector.stoppedConnecting:
            return
        node = self.nodes.get((host, port))
        if node is None:
            factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError(host)))
        else:
            node.connect(factory)


def start_simnet(testcase, reactor, **arguments):
    """
    Start a SimNet (``arguments`` as SimNet's) on 127.0.0.0/8 for a
    trial.unittest.TestCase, stopped when the test ends; returns it.  Its
    ``truth()`` says what lives where, ``seeds()`` gives honest nodes.
    """
    simnet = SimNet(reactor, **arguments)
    simnet.start()
    testcase.addCleanup(simnet.stop)
    return simnet
