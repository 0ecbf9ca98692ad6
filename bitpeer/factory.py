"""
Factories for both directions, and ``connectPeer``.

PeerFactory builds outbound connections (we dial), NodeFactory inbound ones
(others dial us).  Both take the world as arguments: the clock, the random
source, the set of nonces used to spot self-connections.  A process that both
dials and listens should give its factories the same ``nonces`` set, as Core
does, so that a connection to itself is caught on the way in.

A factory's connection is ready for the application when its handshake is
done, not when TCP connects: ``connectPeer`` (and PeerService) fire then.
With a plain endpoint, or Twisted's ClientService, whose ``whenConnected``
fires at TCP connect, wait for ``protocol.peer.whenHandshaken()`` (as
ClientService's ``prepareConnection``, say).

Arguments both factories take, beside ``clock`` (usually the reactor),
``network``, ``options``, ``random`` and ``nonces``:

``on_peer(peer)``, if given, is called with the Peer of every new
connection, at TCP connect (before the handshake: ``peer.whenHandshaken()``
says when it is done): the hook for an application (or a simulated node)
to watch its peers.

``known_addresses`` (PeerFactory only), if given, is a set of entry keys
(``wire.addrlist.entry_keys``) shared by every connection: addr and
addrv2 entries under those keys are left out when decoding (counted in
the message's ``skipped``), so a crawler pays nothing for repeats.
Subscribers then see only the new entries.

``frame_budget``, a wire.framing.FrameBudget, bounds the bytes the
partial frames of all the factory's connections hold together, so that
peers announcing large messages and trickling them cannot pin
connections x 4 MB; by default each factory has its own
(DEFAULT_FRAME_BUDGET).  The connection whose frame is the largest when
it fills is closed with FrameBudgetExceeded.

``on_getheaders(peer, message)`` and ``on_getdata(peer, message)``, if
given, answer the peer's requests (BitcoinProtocol's
``answer_getheaders`` and ``answer_getdata`` hooks say how); without
them those requests go unanswered.

``protocol``, a factory attribute as on any Twisted factory, is the class
built for each connection: BitcoinProtocol, or a subclass overriding its
public hooks (bitpeer.testing's FakeNode sets it so).

``options`` defaults to the class's ``default_options``: PeerOptions() (a
crawler's) for PeerFactory, LISTENER_OPTIONS for NodeFactory.  Factories are not ``noisy``: a
reconnecting client would log "Starting factory" at every attempt.
"""

import random as _random
from collections.abc import Callable, Collection
from typing import Any

from twisted.internet import error as _netError
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from .errors import ClosedLocally
from .net.endpoints import classify_connect_error, tcp_endpoint
from .networks import MAINNET, NetworkParams, SeedName, parse_seed
from .peer import Peer
from .protocol import (
    GETADDR_POLICIES,
    LISTENER_OPTIONS,
    AddressSource,
    BitcoinProtocol,
    GetDataResponder,
    GetHeadersResponder,
    PeerOptions,
    address_of,
)
from .wire.address import NetworkAddress
from .wire.framing import FrameBudget

#: How long connectPeer waits for the TCP connection by default.
DEFAULT_CONNECT_TIMEOUT = 10.0


class _BitcoinFactory(Factory):
    """
    What both directions share (the arguments are described in the module
    docstring).
    """

    inbound = False
    noisy = False
    default_options = PeerOptions()
    protocol: type[BitcoinProtocol] = BitcoinProtocol

    def __init__(self, clock: IReactorTime, network: NetworkParams = MAINNET,
                 options: PeerOptions | None = None, random: _random.Random | None = None,
                 nonces: set[int] | None = None,
                 on_peer: Callable[[Peer], object] | None = None,
                 known_addresses: Collection[object] | None = None,
                 frame_budget: FrameBudget | None = None,
                 on_getheaders: GetHeadersResponder | None = None,
                 on_getdata: GetDataResponder | None = None) -> None:
        self.clock = clock
        self.frame_budget = frame_budget if frame_budget is not None else FrameBudget()
        self.network = network
        self.options = options if options is not None else self.default_options
        self.random = random if random is not None else _random.SystemRandom()
        self.nonces = nonces if nonces is not None else set()
        self.on_peer = on_peer
        self.known_addresses = known_addresses
        self.on_getheaders = on_getheaders
        self.on_getdata = on_getdata
        self.address_source: AddressSource | None = None
        self.answer_size: Callable[[int], int] = GETADDR_POLICIES["core"]

    def buildProtocol(self, addr: IAddress | None) -> BitcoinProtocol:
        protocol = self.protocol(
            self.network,
            self.options,
            self.clock,
            self.random,
            self.nonces,
            inbound=self.inbound,
            address=address_of(addr),
            address_source=self.address_source,
            on_peer=self.on_peer,
            known_addresses=self.known_addresses,
            frame_budget=self.frame_budget,
            answer_size=self.answer_size,
            on_getheaders=self.on_getheaders,
            on_getdata=self.on_getdata,
        )
        protocol.factory = self
        return protocol


class PeerFactory(_BitcoinFactory):
    """
    Outbound connections: use it with any client endpoint.  Each protocol's
    ``peer`` is the handle; ``connectPeer`` does the endpoint work for you.
    Its arguments (``on_peer`` and the rest) are described in the module
    docstring.
    """


class NodeFactory(_BitcoinFactory):
    """
    Inbound connections: a node others dial.  It answers the handshake in
    Core's order, pings with pongs, and getaddr once per connection with a
    sample of ``address_source()`` (a callable returning AddrEntry objects;
    without one, getaddr goes unanswered).  Its other arguments
    (``on_peer`` and the rest) are described in the module docstring.

    It presents itself as a full node by default (LISTENER_OPTIONS: services
    NODE_NETWORK | NODE_WITNESS, relay on): real nodes drop a peer offering
    no services before the handshake.  Pass ``options`` to present
    otherwise, e.g. ``attr.evolve(LISTENER_OPTIONS, user_agent=...)``.

    ``getaddr_policy`` sizes the getaddr answer: ``"core"`` (Core's rule,
    23% of the addresses and at most 1000: a list of 4 gives nothing),
    ``"all"`` (every address, at most 1000: for a small list given on
    purpose), or a callable from the number of addresses to the number
    sent.
    """

    inbound = True
    default_options = LISTENER_OPTIONS

    def __init__(self, clock: IReactorTime, network: NetworkParams = MAINNET,
                 options: PeerOptions | None = None, random: _random.Random | None = None,
                 nonces: set[int] | None = None,
                 on_peer: Callable[[Peer], object] | None = None,
                 address_source: AddressSource | None = None,
                 frame_budget: FrameBudget | None = None,
                 getaddr_policy: str | Callable[[int], int] = "core",
                 on_getheaders: GetHeadersResponder | None = None,
                 on_getdata: GetDataResponder | None = None) -> None:
        super().__init__(clock, network, options, random, nonces, on_peer,
                         frame_budget=frame_budget, on_getheaders=on_getheaders,
                         on_getdata=on_getdata)
        self.address_source = address_source
        if callable(getaddr_policy):
            self.answer_size = getaddr_policy
        elif getaddr_policy in GETADDR_POLICIES:
            self.answer_size = GETADDR_POLICIES[getaddr_policy]
        else:
            raise ValueError(f"getaddr_policy must be one of {', '.join(GETADDR_POLICIES)} "
                             f"or a callable, not {getaddr_policy!r}")


def client_endpoint(reactor: IReactorTime, address: NetworkAddress | str,
                    timeout: float = DEFAULT_CONNECT_TIMEOUT,
                    default_port: int | None = None) -> IStreamClientEndpoint:
    """
    A client endpoint for ``address``: a NetworkAddress or ``HOST[:PORT]``
    text.  Raw IPs get TCP4/TCP6 endpoints (no resolver round trip); names
    get a HostnameEndpoint.  Tor and I2P need a proxy, which bitpeer does not
    have yet: ValueError.
    """
    # Imported here: endpoints bring in TLS (OpenSSL), 80 ms of start-up
    # that a crawl, which dials with bitpeer.net.dialler, never uses.
    from twisted.internet.endpoints import HostnameEndpoint

    if isinstance(address, str):
        # The seeds' own parser: it refuses what is ambiguous (``::1:8333``),
        # port 0, and a malformed Tor or I2P name, which must not leak to
        # the DNS (RFC 7686).
        seed = parse_seed(address, default_port)
        if isinstance(seed, SeedName):
            return HostnameEndpoint(reactor, seed.name.encode("idna"), seed.port,
                                    timeout=timeout)
        address = seed
    endpoint: IStreamClientEndpoint = tcp_endpoint(reactor, address, timeout)
    return endpoint


def connectPeer(reactor: IReactorTime, address: NetworkAddress | str,
                network: NetworkParams = MAINNET, *,
                connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                factory: PeerFactory | None = None, **options: Any) -> "Deferred[Peer]":
    """
    Dial ``address`` and complete the handshake: a Deferred of the Peer.
    ``reactor`` both dials (IReactorTCP) and times (IReactorTime): the
    reactor, or bitpeer.testing's FakeInternet.

    ``options`` are PeerOptions fields (``user_agent``, ``handshake_timeout``
    ...); or pass a ready ``factory``.  Connect failures errback with
    ConnectionRefused/ConnectTimeout/ConnectFailed, handshake failures with
    the PeerError that ended the connection.  Cancelling closes the
    connection, whatever stage it is at.
    """
    if factory is None:
        factory = PeerFactory(reactor, network, PeerOptions(**options))
    endpoint = client_endpoint(reactor, address, connect_timeout, network.default_port)
    connecting = endpoint.connect(factory)
    protocols: list[BitcoinProtocol] = []

    def cancel(result: object) -> None:
        if protocols:
            protocols[0].close(ClosedLocally("cancelled"), abort=True)
        else:
            connecting.cancel()

    result: Deferred[Peer] = Deferred(canceller=cancel)

    def connected(protocol: IProtocol) -> "Deferred[Peer]":
        assert isinstance(protocol, BitcoinProtocol)  # what the factory builds
        protocols.append(protocol)
        peer = protocol._peer
        return peer.whenHandshaken().addCallback(lambda _: peer)

    def connect_failed(failure: Failure) -> Failure:
        if failure.check(_netError.ConnectingCancelledError):
            # Our cancel: the caller gets CancelledError, as it does later on.
            return Failure(CancelledError())
        error = classify_connect_error(failure)
        return failure if error is None else Failure(error)

    def deliver(outcome: Peer | Failure) -> None:
        # After a cancel the result has already failed; the rest is moot.
        if not result.called:
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

    handshaken: Deferred[Peer] = connecting.addCallbacks(connected, connect_failed)
    handshaken.addBoth(deliver)
    return result
