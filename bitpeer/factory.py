"""
Factories for both directions, and ``connectPeer``.

PeerFactory builds outbound connections (we dial), NodeFactory inbound ones
(others dial us).  Both take the world as arguments: the clock, the random
source, the set of nonces used to spot self-connections.  A process that both
dials and listens should give its factories the same ``nonces`` set, as Core
does, so that a connection to itself is caught on the way in.
"""

import random as _random

from twisted.internet import error as _netError
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from .errors import ConnectionClosed
from .net.endpoints import classify_connect_error, tcp_endpoint
from .networks import MAINNET, SeedName, parse_seed
from .protocol import BitcoinProtocol, PeerOptions, address_of
from .wire.framing import FrameBudget

#: How long connectPeer waits for the TCP connection by default.
DEFAULT_CONNECT_TIMEOUT = 10.0


class _BitcoinFactory(Factory):
    """
    What both directions share: the clock (usually the reactor), the network,
    the options, the random source and the nonce set.

    ``on_peer(peer)``, if given, is called for every new connection: the
    hook for an application (or a simulated node) to watch its peers.

    ``known_addresses``, if given, is a set of entry keys
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
    """

    inbound = False
    address_source = None

    def __init__(self, clock, network=MAINNET, options=None, random=None, nonces=None,
                 on_peer=None, known_addresses=None, frame_budget=None):
        self.clock = clock
        self.frame_budget = frame_budget if frame_budget is not None else FrameBudget()
        self.network = network
        self.options = options if options is not None else PeerOptions()
        self.random = random if random is not None else _random.SystemRandom()
        self.nonces = nonces if nonces is not None else set()
        self.on_peer = on_peer
        self.known_addresses = known_addresses

    def buildProtocol(self, addr):
        protocol = BitcoinProtocol(
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
        )
        protocol.factory = self
        return protocol


class PeerFactory(_BitcoinFactory):
    """
    Outbound connections: use it with any client endpoint.  Each protocol's
    ``peer`` is the handle; ``connectPeer`` does the endpoint work for you.
    """


class NodeFactory(_BitcoinFactory):
    """
    Inbound connections: a node others dial.  It answers the handshake in
    Core's order, pings with pongs, and getaddr once per connection with a
    sample of ``address_source()`` (a callable returning AddrEntry objects;
    without one, getaddr goes unanswered).
    """

    inbound = True

    def __init__(self, clock, network=MAINNET, options=None, random=None, nonces=None,
                 on_peer=None, address_source=None, frame_budget=None):
        super().__init__(clock, network, options, random, nonces, on_peer,
                         frame_budget=frame_budget)
        self.address_source = address_source


def client_endpoint(reactor, address, timeout=DEFAULT_CONNECT_TIMEOUT, default_port=None):
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
    return tcp_endpoint(reactor, address, timeout)


def connectPeer(reactor, address, network=MAINNET, *, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                factory=None, **options):
    """
    Dial ``address`` and complete the handshake: a Deferred of the Peer.

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
    protocols = []

    def cancel(result):
        if protocols:
            protocols[0].close(ConnectionClosed("cancelled"), abort=True)
        else:
            connecting.cancel()

    result = Deferred(canceller=cancel)

    def connected(protocol):
        protocols.append(protocol)
        return protocol.peer.whenHandshaken().addCallback(lambda _: protocol.peer)

    def connect_failed(failure):
        if failure.check(_netError.ConnectingCancelledError):
            # Our cancel: the caller gets CancelledError, as it does later on.
            return Failure(CancelledError())
        error = classify_connect_error(failure)
        return failure if error is None else Failure(error)

    def deliver(outcome):
        # After a cancel the result has already failed; the rest is moot.
        if not result.called:
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

    connecting.addCallbacks(connected, connect_failed).addBoth(deliver)
    return result
