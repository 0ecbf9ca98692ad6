"""
Fakes for testing code that uses bitpeer, without a network.

Your tests can run your PeerFactory, connectPeer() or Peer code against
Bitcoin nodes that live in memory and on a task.Clock:

- ``FakeNode``: a node speaking bitpeer's own protocol from the inbound side
  (what NodeFactory serves: Core's handshake order), with the version data
  you give it, scripted: it answers getaddr, getheaders and getdata from
  the addresses, header chain and data you give it, sends inv, headers,
  addr or any message when told, and adds latency.  Its ``protocol`` may be
  a BitcoinProtocol subclass overriding the protocol's hooks, as the
  simulated network's misbehaving nodes do.
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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.interfaces import IAddress, IConnector, IProtocol, IReactorTCP
from twisted.internet.protocol import ClientFactory, Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from .factory import NodeFactory, PeerFactory
from .networks import MAINNET, NetworkParams
from .peer import Peer
from .protocol import BitcoinProtocol, PeerOptions
from .simnet.network import SimNet
from .wire.address import AddrEntry, Network, NetworkAddress
from .wire.messages import (
    MAX_HEADERS_RESULTS,
    MSG_BLOCK,
    PROTOCOL_VERSION,
    Addr,
    AddrV2,
    BlockHeader,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvVector,
    Message,
    NotFound,
)
from .wire.services import NODE_NETWORK, NODE_NETWORK_LIMITED, NODE_WITNESS

__all__ = ["FakeInternet", "FakeNode", "Loopback", "SimNet", "T0", "fake_clock",
           "handshake", "header_hash", "start_simnet"]

#: A realistic start time for fake clocks (November 2023), so that
#: timestamps in versions and address entries look like the network's.
T0 = 1_700_000_000


def fake_clock(start: float = T0) -> Clock:
    """A task.Clock set to ``start`` (seconds since the epoch)."""
    clock = Clock()
    clock.advance(start)
    return clock


def twisted_address(address: NetworkAddress) -> IPv4Address | IPv6Address:
    """The Twisted IPv4Address/IPv6Address of an IP NetworkAddress."""
    kind = IPv6Address if address.network == Network.IPV6 else IPv4Address
    return kind("TCP", address.host_text, address.port)


def _network_address(address: NetworkAddress | str) -> NetworkAddress:
    return address if isinstance(address, NetworkAddress) else NetworkAddress.parse(address)


class _End(StringTransport):
    """
    One end of a Loopback: a StringTransport whose writes travel to the other
    end instead of collecting, and whose closing ends the connection.

    @ivar owner: the protocol this end is the transport of.
    @ivar other: the other end.
    """

    def __init__(self, loopback: "Loopback[Any, Any]", owner: IProtocol,
                 host: IAddress | None, peer: IAddress | None) -> None:
        super().__init__(hostAddress=host, peerAddress=peer)  # type: ignore[no-untyped-call]
        self.loopback, self.owner = loopback, owner
        self.other: _End | None = None

    def write(self, data: bytes) -> None:
        if not self.disconnecting:
            self.loopback._carry(self, data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            super().loseConnection()  # type: ignore[no-untyped-call]
            self.loopback._close(self, aborted=False)

    def abortConnection(self) -> None:
        if not self.disconnected:
            self.disconnecting = self.disconnected = True
            self.loopback._close(self, aborted=True)


ClientT = TypeVar("ClientT", bound=IProtocol)
ServerT = TypeVar("ServerT", bound=IProtocol)


class Loopback(Generic[ClientT, ServerT]):
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

    def __init__(self, clock: Clock, client: ClientT, server: ServerT,
                 client_address: IAddress | None, server_address: IAddress | None,
                 latency: float = 0.0) -> None:
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

    def _carry(self, sender: _End, data: bytes) -> None:
        assert sender.other is not None
        self.clock.callLater(self.latency, self._deliver, sender.other.owner, data)

    def _deliver(self, receiver: IProtocol, data: bytes) -> None:
        if not (self.closed or self._aborted):
            receiver.dataReceived(data)

    def _close(self, closer: _End, aborted: bool) -> None:
        if aborted:
            self._aborted = True
        self.clock.callLater(0 if aborted else self.latency, self._end, closer, aborted)

    def _end(self, closer: _End, aborted: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for end in self._ends:
            end.connected = False
        for end in self._ends:
            reason: Exception
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
    bitpeer's protocol, built by a NodeFactory (Core's handshake order),
    presenting ``version``, ``user_agent``, ``services`` and
    ``start_height``.  It is scripted through its attributes, which a test
    may change at any time:

    - ``addresses``: AddrEntry objects; the first getaddr of a connection
      gets a sample of them sized by ``getaddr_policy`` (NodeFactory's:
      ``"core"``, 23%, or ``"all"``).
    - ``headers``: its chain of BlockHeader objects, oldest first; a
      getheaders gets the headers after the locator (``headers_for``).
    - ``data``: inventory hash (wire order) -> the message that answers a
      getdata for it (a block, a transaction); what it lacks gets a
      notfound (``data_for``).
    - ``latency``: seconds each message takes each way on the clock, for
      connections made from then on.

    It speaks at will once a connection's handshake is done: ``send``,
    ``send_inv``, ``send_headers``, ``send_addr``, to every handshaken
    connection.

    ``protocol`` is the class of its connections: BitcoinProtocol, or a
    subclass overriding the protocol's hooks to misbehave; it is built as
    NodeFactory builds BitcoinProtocol, so a subclass's ``__init__`` takes
    the same arguments.

    @ivar address: where the node is (a NetworkAddress).
    @ivar factory: the NodeFactory that builds its connections.
    @ivar connections: a Loopback per connection made to it.
    """

    def __init__(self, clock: Clock, network: NetworkParams = MAINNET, *,
                 address: NetworkAddress | str = "127.0.0.2:8333",
                 version: int = PROTOCOL_VERSION, user_agent: str = "/Satoshi:27.0.0/",
                 services: int = NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED,
                 start_height: int = 0, addresses: Iterable[AddrEntry] = (),
                 getaddr_policy: str | Callable[[int], int] = "core",
                 headers: Iterable[BlockHeader] = (),
                 data: Mapping[bytes, Message] | None = None, latency: float = 0.0,
                 protocol: type[BitcoinProtocol] = BitcoinProtocol,
                 random: _random.Random | None = None) -> None:
        self.clock, self.network, self.latency = clock, network, latency
        self.address = _network_address(address)
        self.addresses: list[AddrEntry] = list(addresses)
        self.headers: list[BlockHeader] = list(headers)
        self.data: dict[bytes, Message] = dict(data or {})
        self.random = random if random is not None else _random.Random(str(self.address))
        self.nonces: set[int] = set()
        self.connections: list[Loopback[IProtocol, BitcoinProtocol]] = []
        options = PeerOptions(user_agent=user_agent, start_height=start_height,
                              services=int(services), relay=True, version=version)
        self.factory = NodeFactory(
            clock, network, options, self.random, self.nonces,
            address_source=lambda: self.addresses, getaddr_policy=getaddr_policy,
            on_getheaders=self._on_getheaders, on_getdata=self._on_getdata,
        )
        self.factory.protocol = protocol

    @property
    def options(self) -> PeerOptions:
        """What the node presents in its version."""
        return self.factory.options

    @property
    def peers(self) -> list[Peer]:
        """The node's side of each connection still open, handshaken or not."""
        return [loopback.server.peer for loopback in self.connections
                if not loopback.closed and loopback.server.peer is not None]

    def accept(self, client_address: NetworkAddress | str) -> BitcoinProtocol:
        """A protocol for a connection from ``client_address``, not yet connected."""
        return self.factory.buildProtocol(twisted_address(_network_address(client_address)))

    def connect(self, factory: Factory, client_address: NetworkAddress | str = "127.0.0.1:50000",
                latency: float | None = None) -> Loopback[IProtocol, BitcoinProtocol]:
        """
        Connect a client built by ``factory`` (a PeerFactory, say) to this
        node over a new Loopback (``latency`` defaults to the node's), and
        return it.  The client speaks first once the clock is advanced.
        """
        client_address = _network_address(client_address)
        here, there = twisted_address(self.address), twisted_address(client_address)
        client = factory.buildProtocol(here)
        if client is None:
            raise ValueError(f"{factory!r} refused the connection")
        loopback: Loopback[IProtocol, BitcoinProtocol] = Loopback(self.clock, client, self.accept(client_address), there, here,
                            self.latency if latency is None else latency)
        self.connections.append(loopback)
        return loopback

    # -- speaking at will -------------------------------------------------------

    def send(self, message: Message) -> int:
        """
        Send ``message`` on every connection whose handshake is done (Core
        relays nothing before); returns how many got it.  It arrives once
        the clock is advanced by the latency.
        """
        handshaken = [peer for peer in self.peers if peer.info is not None]
        for peer in handshaken:
            peer.send(message)
        return len(handshaken)

    def send_inv(self, hashes: Iterable[bytes], type: int = MSG_BLOCK) -> int:
        """Announce ``hashes`` (wire order) of one inventory ``type``, as
        ``send`` does."""
        return self.send(Inv([InvVector(type, item) for item in hashes]))

    def send_headers(self, headers: Iterable[BlockHeader]) -> int:
        """Announce ``headers`` (BIP 130's way of announcing blocks), as
        ``send`` does."""
        return self.send(Headers(tuple(headers)))

    def send_addr(self, entries: Iterable[AddrEntry]) -> int:
        """
        Gossip ``entries`` unasked, as ``send`` does: in addrv2 to a peer
        that asked for it (``peer.wants_addrv2``), else in addr without the
        networks addr cannot carry.  Returns how many connections got some.
        """
        entries = list(entries)
        v1 = [entry for entry in entries if entry.address.is_v1_compatible]
        sent = 0
        for peer in self.peers:
            chosen = entries if peer.wants_addrv2 else v1
            if peer.info is not None and chosen:
                peer.send(AddrV2(chosen) if peer.wants_addrv2 else Addr(chosen))
                sent += 1
        return sent

    # -- answering ------------------------------------------------------------------

    def headers_for(self, message: GetHeaders) -> Headers:
        """
        The answer to ``message`` from ``headers``, as Core gives it: the
        headers after the first locator hash on the chain (from the chain's
        start if none is), up to ``hash_stop``, at most 2000; with an empty
        locator, the header ``hash_stop`` names alone, if known.
        """
        hashes = [header_hash(header) for header in self.headers]
        if not message.locator:
            if message.hash_stop in hashes:
                return Headers([self.headers[hashes.index(message.hash_stop)]])
            return Headers([])
        start = 0
        for known in message.locator:
            if known in hashes:
                start = hashes.index(known) + 1
                break
        answer = []
        for header, hashed in zip(self.headers[start:], hashes[start:]):
            answer.append(header)
            if hashed == message.hash_stop or len(answer) == MAX_HEADERS_RESULTS:
                break
        return Headers(answer)

    def data_for(self, message: GetData) -> list[Message]:
        """
        The answer to ``message`` from ``data``: the message for each hash
        it has, in the order asked, then one notfound for the rest (Core's
        order).
        """
        found = [self.data[item.hash] for item in message.inventory if item.hash in self.data]
        missing = [item for item in message.inventory if item.hash not in self.data]
        return found + [NotFound(missing)] if missing else found

    def _on_getheaders(self, peer: Peer, message: GetHeaders) -> Headers:
        return self.headers_for(message)

    def _on_getdata(self, peer: Peer, message: GetData) -> list[Message]:
        return self.data_for(message)


def header_hash(header: BlockHeader) -> bytes:
    """A block header's hash in wire order (BlockHeader.hash)."""
    hashed: bytes = header.hash()
    return hashed


def handshake(node: FakeNode, factory: Factory | None = None) -> Peer:
    """
    Connect a client to ``node`` (a FakeNode) and advance its clock until
    the handshake is done on both sides (a few times the node's latency):
    returns the client's Peer.  ``factory`` defaults to a PeerFactory on
    the node's clock and network.  Raises the PeerError that ended the
    connection if the handshake failed, AssertionError if it is still
    waiting (a node that never answers: advance the clock yourself).
    """
    if factory is None:
        factory = PeerFactory(node.clock, node.network, random=_random.Random(0))
    loopback = node.connect(factory)
    client = loopback.client
    if not isinstance(client, BitcoinProtocol) or client.peer is None:
        raise TypeError(f"{factory!r} does not build bitpeer connections")
    peer = client.peer
    outcome: list[object] = []
    peer.whenHandshaken().addBoth(outcome.append)
    # Version out, version and verack back, our verack out: three crossings.
    for step in (0.0, loopback.latency, loopback.latency, loopback.latency):
        node.clock.advance(step)
        server = loopback.server.peer
        if outcome and (loopback.closed or (server is not None and server.info is not None)):
            break
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

    def __init__(self, start: float = T0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.advance(start)
        self.nodes: dict[tuple[str, int], FakeNode] = {}

    def add_node(self, **node_arguments: Any) -> FakeNode:
        """A new FakeNode on this clock (``node_arguments`` as FakeNode's)."""
        node = FakeNode(self, **node_arguments)
        self.bring_up(node)
        return node

    def take_down(self, node: FakeNode) -> None:
        """Stop ``node`` as a restarting node stops: it closes its open
        connections, and new ones are refused until ``bring_up(node)``."""
        del self.nodes[(node.address.host_text, node.address.port)]
        for loopback in node.connections:
            if loopback.server.transport is not None:
                loopback.server.transport.loseConnection()

    def bring_up(self, node: FakeNode) -> None:
        """Let ``node`` (a FakeNode on this clock) be reached again."""
        self.nodes[(node.address.host_text, node.address.port)] = node

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> IConnector:
        connector: IConnector = super().connectTCP(  # type: ignore[no-untyped-call]
            host, port, factory, timeout, bindAddress)
        self.callLater(0, self._complete, connector, host, port, factory)
        return connector

    def _complete(self, connector: Any, host: str, port: int,
                  factory: ClientFactory) -> None:
        # ``connector`` is MemoryReactor's, which says whether it was stopped.
        if connector.stoppedConnecting:
            return
        node = self.nodes.get((host, port))
        if node is None:
            factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError(host)))
        else:
            node.connect(factory)


def start_simnet(testcase: SynchronousTestCase, reactor: IReactorTCP,
                 **arguments: Any) -> SimNet:
    """
    Start a SimNet (``arguments`` as SimNet's) on 127.0.0.0/8 for a
    trial.unittest.TestCase, stopped when the test ends; returns it.  Its
    ``truth()`` says what lives where, ``seeds()`` gives honest nodes.
    """
    simnet = SimNet(reactor, **arguments)
    simnet.start()
    testcase.addCleanup(simnet.stop)
    return simnet
