"""
BitcoinProtocol: one connection, framed, handshaken and dispatched.

It follows Bitcoin Core's rules (PROTOCOL.md sections 2-4), seen from either
side of a connection:

- outbound (we dialled): ``version`` goes first, so the first 16 bytes are
  magic + "version" and a v2-enabled node stays on v1; on the peer's version
  we send ``wtxidrelay`` (peer >= 70016), ``sendaddrv2`` and ``verack``, and
  never either of the first two after verack;
- inbound (we were dialled): we speak only after the peer's version, then
  answer in Core's order: version, wtxidrelay, sendaddrv2 (peer >= 70016),
  verack; getaddr is answered once per connection, after the handshake;
- both: messages before version are ignored, messages other than the
  handshake's before the peer's verack are ignored, a second version or
  verack is ignored, wtxidrelay/sendaddrv2 after verack close the connection,
  as do the codec's fatal faults; dropped messages are logged and skipped.

Only the message types the protocol handles, and those the embedder
subscribed to, are decoded: the payloads of the rest (blocks, transactions,
types nobody knows) are discarded as they arrive, never buffered.  Partial
frames are charged to the factory's FrameBudget; a connection it evicts is
closed with FrameBudgetExceeded.

Everything time-related runs on the injected clock.

Subclasses customise a connection through the public hooks below (see
"Extension hooks" in BitcoinProtocol): what the version says, what happens
to the feature-negotiation messages, what is done once the handshake is
complete, how getaddr, getheaders and getdata are answered, how a message
becomes frame bytes and how it is sent.  The simulated nodes
(bitpeer.simnet.behaviours) and bitpeer.testing are built on those alone.  Dispatch itself calls this
module's handlers directly, so a subclass cannot replace a handler by
naming it, only change what a hook does.
"""

import random as _random
from collections.abc import Callable, Collection, Iterable
from typing import Any

import attr
from twisted.internet.address import HostnameAddress, IPv4Address, IPv6Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.error import ConnectionClosed as _TransportClosed
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from . import __version__
from .errors import (
    ClosedByPeer,
    ClosedLocally,
    FrameBudgetExceeded,
    HandlerError,
    HandshakeTimeout,
    IdleTimeout,
    ObsoleteVersion,
    PeerError,
    ProtocolViolation,
    SelfConnection,
)
from .logs import levels, logger
from .networks import NetworkParams
from .peer import Peer, PeerInfo
from .validators import positive
from .wire.address import AddrEntry, NetworkAddress
from .wire.errors import FrameBudgetExhausted, ProtocolError
from .wire.framing import FrameBudget, FrameDecoder, encode_frame
from .wire.messages import (
    MAX_ADDR_TO_SEND,
    MESSAGE_TYPES,
    MIN_PEER_PROTO_VERSION,
    PROTOCOL_VERSION,
    WTXID_RELAY_VERSION,
    Addr,
    AddrV2,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    Message,
    Ping,
    Pong,
    UNSPECIFIED_ADDRESS,
    SendAddrV2,
    UnknownMessage,
    VerAck,
    Version,
    WtxidRelay,
    getaddr_answer_size,
)
from .wire.services import NODE_NETWORK, NODE_WITNESS

@attr.frozen
class PeerOptions:
    """
    How we present ourselves and how long we wait.  Times are seconds.

    The defaults suit a crawler: services NODE_NONE and relay off, so nodes
    neither ask us for headers nor send transaction invs; a handshake timeout
    well under Core's 60 s; getaddr answers waited for as PROTOCOL.md 9.6
    advises.  A listening node presents itself otherwise: LISTENER_OPTIONS,
    NodeFactory's default.
    """

    user_agent: str = f"/bitpeer:{__version__}/"
    start_height: int = 0
    services: int = 0
    relay: bool = False
    version: int = PROTOCOL_VERSION
    handshake_timeout: float = attr.ib(default=20.0, validator=positive)
    idle_timeout: float = attr.ib(default=180.0, validator=positive)
    getaddr_idle_timeout: float = attr.ib(default=10.0, validator=positive)
    getaddr_timeout: float = attr.ib(default=30.0, validator=positive)
    ping_timeout: float = attr.ib(default=30.0, validator=positive)
    #: Addresses kept from one getaddr answer (Core sends at most 1000 in
    #: one message, plus its self-announcement).
    max_addresses: int = attr.ib(default=2 * MAX_ADDR_TO_SEND, validator=positive)


#: What NodeFactory presents by default: a full node's services
#: (NODE_NETWORK | NODE_WITNESS) and relay on.  Core drops an outbound peer
#: whose services lack what it needs ("does not support network
#: services") before the handshake completes, so the crawler's services 0
#: would make a listener useless to the real nodes that dial it.
LISTENER_OPTIONS = PeerOptions(services=int(NODE_NETWORK | NODE_WITNESS), relay=True)


def all_addresses(count: int) -> int:
    """The "all" getaddr policy: every known address, up to Core's
    MAX_ADDR_TO_SEND (1000) in one message."""
    limit: int = MAX_ADDR_TO_SEND
    return min(count, limit)


#: How many of ``count`` known addresses a getaddr answer holds, by policy
#: name: ``core`` is Core's GetAddresses (23%, at most 1000: 4 addresses
#: give nothing), ``all`` suits a small list given on purpose.
GETADDR_POLICIES: dict[str, Callable[[int], int]] = {
    "core": getaddr_answer_size, "all": all_addresses}

#: What a connection's getaddr answer is drawn from: a callable returning
#: AddrEntry objects.
AddressSource = Callable[[], Iterable[AddrEntry]]
#: Answers a getheaders: (peer, message) -> a Headers, or None for nothing.
GetHeadersResponder = Callable[[Peer, GetHeaders], Headers | None]
#: Answers a getdata: (peer, message) -> the messages to send, or None.
GetDataResponder = Callable[[Peer, GetData], Iterable[Message] | None]


class _WantedTypes:
    """
    The message types a connection needs whole, for its FrameDecoder: those
    the protocol handles (``_HANDLED``), and those the Peer's subscribers
    asked for (by class; ``Message`` means all, ``UnknownMessage`` every
    type bitpeer does not know).  Asked once per frame header, so a
    subscription counts from the next frame.  It holds the subscribers'
    dict, not the protocol: no reference cycle.
    """

    __slots__ = ("handled", "subscribers")

    def __init__(self, handled: frozenset[str]) -> None:
        self.handled = handled
        self.subscribers: dict[type[Message], list[Callable[..., object]]] | None = None

    def __contains__(self, command: object) -> bool:
        if command in self.handled:
            return True
        if not self.subscribers:
            return False
        for cls, callbacks in self.subscribers.items():
            if callbacks and (
                cls is Message
                or (command not in MESSAGE_TYPES if cls is UnknownMessage
                    else getattr(cls, "command", None) == command)
            ):
                return True
        return False


def address_of(endpoint_address: IAddress | None) -> NetworkAddress:
    """The NetworkAddress of a Twisted IPv4Address/IPv6Address, or of the
    HostnameAddress (``b"<name>.onion"``, ``b"<name>.b32.i2p"``) that the
    SOCKS5 and SAM endpoints give for a peer behind a proxy; TypeError for
    any other address (a UNIX socket's)."""
    if isinstance(endpoint_address, HostnameAddress):
        return NetworkAddress.from_host(endpoint_address.hostname.decode("ascii"),
                                        endpoint_address.port)
    if isinstance(endpoint_address, (IPv4Address, IPv6Address)):
        host = endpoint_address.host.split("%", 1)[0]
        return NetworkAddress.from_host(host, endpoint_address.port)
    raise TypeError(f"no Bitcoin network address for {endpoint_address!r}")


class BitcoinProtocol(Protocol):
    """
    One Bitcoin P2P connection.  ``peer`` is the application's handle on it.

    @ivar inbound: True when the peer dialled us.
    @ivar peer_version: the peer's Version message, once received.

    ``frame_budget`` (a wire.framing.FrameBudget, usually the factory's) is
    shared by the connections whose partial frames it bounds; None leaves
    only the per-type bounds.

    Extension hooks, the methods a subclass may override (each documents
    when it is called, what it does by default and what an override may do):
    ``version_message``, ``feature_negotiation``, ``handshake_done``,
    ``answer_getaddr``, ``address_answer``, ``answer_getheaders``,
    ``answer_getdata``, ``frame`` and ``sendMessage``.

    ``answer_size(count)`` says how many of ``count`` known addresses a
    getaddr answer holds (a GETADDR_POLICIES value, Core's by default);
    ``on_getheaders`` and ``on_getdata``, callables of (peer, message), are
    the default responders of the two hooks of those names.

    A subscriber never ends a connection (Peer.subscribe); any other
    exception raised while handling the peer's bytes (a hook, the
    ``address_source``, a responder) is logged with its traceback and
    closes the connection with HandlerError.
    Hooks may read ``network``, ``options``, ``clock``, ``random``,
    ``inbound``, ``address``, ``transport``, ``peer``, ``peer_version``,
    ``wants_addrv2``, ``verack_sent`` and ``verack_received``; everything
    with a leading underscore is the protocol's own and may change.
    """

    log = logger()

    def __init__(
        self,
        network: NetworkParams,
        options: PeerOptions,
        clock: IReactorTime,
        random: _random.Random,
        nonces: set[int],
        inbound: bool,
        address: NetworkAddress | None = None,
        address_source: AddressSource | None = None,
        on_peer: Callable[[Peer], object] | None = None,
        known_addresses: Collection[object] | None = None,
        frame_budget: FrameBudget | None = None,
        answer_size: Callable[[int], int] = getaddr_answer_size,
        on_getheaders: GetHeadersResponder | None = None,
        on_getdata: GetDataResponder | None = None,
    ) -> None:
        self.network = network
        self.options = options
        self.clock = clock
        self.random = random
        self.nonces = nonces
        self.inbound = inbound
        self.address = address
        self.address_source = address_source
        self.on_peer = on_peer
        self.known_addresses = known_addresses
        self.answer_size = answer_size
        self.on_getheaders = on_getheaders
        self.on_getdata = on_getdata
        self._wanted = _WantedTypes(_HANDLED)
        self.decoder = FrameDecoder(
            network.magic, wanted=self._wanted, budget=frame_budget,
            on_evicted=self._fault,
        )
        self.peer: Peer | None = None
        self.peer_version: Version | None = None
        self.verack_sent = False
        self.verack_received = False
        self.wants_addrv2 = False
        self.getaddr_answered = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.messages_sent = 0
        #: The clock's time when the peer's last bytes arrived, or None.
        self.last_received_at: float | None = None
        #: Messages lost to non-fatal faults, and the first such fault.
        self.dropped = 0
        self.first_dropped: ProtocolError | None = None
        self._close_reason: PeerError | None = None
        self._handshake_call: IDelayedCall | None = None
        self._idle_call: IDelayedCall | None = None

    @property
    def _peer(self) -> Peer:
        # The Peer exists from connectionMade on, before any byte arrives.
        assert self.peer is not None, "not connected yet"
        return self.peer

    # -- connection lifecycle -----------------------------------------------

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.address is None:
            self.address = address_of(self.transport.getPeer())
        self.peer = Peer(self, self.address)
        self._wanted.subscribers = self.peer._subscribers
        self.connected_at = self.clock.seconds()
        self.nonce = self.random.getrandbits(64)
        if not self.inbound:
            # Core's CheckIncomingNonce: our pending outbound nonces.
            self.nonces.add(self.nonce)
        self._handshake_call = self.clock.callLater(
            self.options.handshake_timeout, self._handshake_timeout
        )
        self._idle_call = self.clock.callLater(
            self.options.idle_timeout,
            self._timeout,
            IdleTimeout(f"nothing received for {self.options.idle_timeout:g} s"),
        )
        if not self.inbound:
            self.sendMessage(self.version_message())
        if self.on_peer is not None:
            self.on_peer(self.peer)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        for call in (self._handshake_call, self._idle_call):
            if call is not None and call.active():
                call.cancel()
        # A DelayedCall holds its function, a method of ours: dropping them
        # (and the Peer dropping us) leaves no cycle, so a closed
        # connection is freed at once rather than by the cyclic collector.
        self._handshake_call = self._idle_call = None
        # Gives back the frame budget and breaks decoder -> self._fault.
        self.decoder.close()
        self.nonces.discard(self.nonce)
        error = self._close_reason or self._lost_reason(reason)
        if levels.debug:
            self.log.debug("{peer} closed: {error}", peer=self.address, error=error)
        self._peer._lost(error, self)

    def _lost_reason(self, reason: Failure) -> PeerError:
        """
        Why a connection we did not close through ``close()`` ended: a
        transport closed by a call on our side (``loseConnection`` sets its
        ``disconnecting``; ``abortConnection`` gives ConnectionAborted) was
        closed locally; a reason that is no connection-closed error is an
        exception of our code that the transport caught; the rest is the peer.
        """
        message = reason.getErrorMessage()
        if not reason.check(_TransportClosed):
            return HandlerError(f"our code raised: {type(reason.value).__name__}: {message}")
        # ConnectionAborted and its kinds (StreamTransport aborts a peer that
        # does not read what we send) are our transport's doing.
        if getattr(self.transport, "disconnecting", False) or reason.check(ConnectionAborted):
            return ClosedLocally(f"connection closed locally: {message}")
        return ClosedByPeer(f"connection closed by peer: {message}")

    def close(self, error: PeerError, abort: bool = False) -> None:
        """
        End the connection; ``error`` (a PeerError) is what every waiter
        receives.  ``abort`` drops unsent data, for peers we give up on.
        """
        if self._close_reason is None:
            self._close_reason = error
        assert self.transport is not None
        if abort:
            # Every transport bitpeer runs on aborts (TCP, StreamTransport,
            # bitpeer.testing's Loopback); ITransport does not say so.
            self.transport.abortConnection()  # type: ignore[attr-defined]
        else:
            self.transport.loseConnection()

    def _timeout(self, error: PeerError) -> None:
        self.log.debug("{peer}: {error}", peer=self.address, error=error)
        self.close(error, abort=True)

    def _handshake_timeout(self) -> None:
        rule = f"no version/verack within {self.options.handshake_timeout:g} s"
        if self.first_dropped is None:
            self._timeout(HandshakeTimeout(rule))
        else:
            # The handshake failed because the peer's messages were bad:
            # that is the fault to report, not the wait.
            self._violation(
                f"{rule}; {self.dropped} messages dropped, first: {self.first_dropped}",
                self.first_dropped,
            )

    def _violation(self, rule: str, error: ProtocolError | None = None) -> None:
        self.log.debug("{peer} broke a rule: {rule}", peer=self.address, rule=rule)
        self.close(ProtocolViolation(rule, error), abort=True)

    # -- receiving ------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self.bytes_received += len(data)
        self.last_received_at = self.clock.seconds()
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.reset(self.options.idle_timeout)
        try:
            for item in self.decoder.feed(data):
                if self._close_reason is not None:
                    return
                if isinstance(item, ProtocolError):
                    self._fault(item)
                    continue
                try:
                    message = item.decode(self.known_addresses)
                except ProtocolError as error:
                    self._fault(error)
                    continue
                self._dispatch(message)
        except Exception as error:
            # A bug of ours (a hook, the address source, a responder), not
            # the peer's fault: said as such, with its traceback.
            self.log.failure("{peer}: handling its message raised", peer=self.address)
            self.close(HandlerError(f"our handler raised: {type(error).__name__}: {error}"),
                       abort=True)

    def _fault(self, error: ProtocolError) -> None:
        if isinstance(error, FrameBudgetExhausted):
            # Also called by the decoder when another connection's frame
            # evicts ours: then we are inside that one's dataReceived.
            if self._close_reason is None:
                self.log.debug("{peer}: {error}", peer=self.address, error=error)
                self.close(FrameBudgetExceeded(str(error), error), abort=True)
        elif error.fatal:
            self._violation(str(error), error)
        else:
            self.dropped += 1
            if self.first_dropped is None:
                self.first_dropped = error
            self.log.debug(
                "{peer}: dropped a message: {error}", peer=self.address, error=error
            )

    def _dispatch(self, message: Message) -> None:
        self.messages_received += 1
        handler = _HANDLERS.get(type(message))
        if self.peer_version is None and not isinstance(message, Version):
            # Core: "non-version message before version handshake".
            self.log.debug(
                "{peer}: ignored {command} before version",
                peer=self.address,
                command=message.command,
            )
        elif handler is not None:
            handler(self, message)
        if self._close_reason is None:
            self._peer._deliver(message)

    def _on_version(self, message: Version) -> None:
        if self.peer_version is not None:
            self.log.debug("{peer}: ignored redundant version", peer=self.address)
            return
        if message.version < MIN_PEER_PROTO_VERSION:
            self.close(
                ObsoleteVersion(
                    f"peer uses obsolete version {message.version} "
                    f"(< {MIN_PEER_PROTO_VERSION})"
                ),
                abort=True,
            )
            return
        if message.nonce in self.nonces:
            self.close(SelfConnection(f"connected to self at {self.address}"), abort=True)
            return
        self.peer_version = message
        self.version_received_at = self.clock.seconds()
        if self.inbound:
            self.sendMessage(self.version_message())
        # Core gates both on the common version, min(ours, theirs) >= 70016
        # (PROTOCOL.md 2.4 step 8).  As the dialler we ask for addrv2 anyway:
        # BIP155 does not gate it and older peers ignore what they don't know.
        modern = min(message.version, self.options.version) >= WTXID_RELAY_VERSION
        if modern:
            self.sendMessage(WtxidRelay())
        if modern or not self.inbound:
            self.sendMessage(SendAddrV2())
        self.sendMessage(VerAck())
        self.verack_sent = True

    def _on_verack(self, message: VerAck) -> None:
        if self.verack_received:
            return
        self.verack_received = True
        self.nonces.discard(self.nonce)
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        version = self.peer_version
        assert version is not None and self.address is not None  # dispatch's rule
        now = self.clock.seconds()
        info = PeerInfo(
            address=self.address,
            inbound=self.inbound,
            version=version.version,
            services=version.services,
            user_agent=version.user_agent,
            start_height=version.start_height,
            relay=version.relay,
            their_view_of_us=version.addr_recv,
            timestamp=version.timestamp,
            nonce=version.nonce,
            clock_offset=version.timestamp - self.version_received_at,
            handshake_latency=now - self.connected_at,
        )
        self._peer._handshaken(info)
        self.handshake_done(info)

    def _on_feature_negotiation(self, message: WtxidRelay | SendAddrV2) -> None:
        self.feature_negotiation(message)

    def _on_ping(self, message: Ping) -> None:
        if self.verack_received and message.nonce is not None:
            self.sendMessage(Pong(message.nonce))

    def _on_pong(self, message: Pong) -> None:
        if self.verack_received:
            self._peer._pong(message.nonce)

    def _on_addr(self, message: Addr | AddrV2) -> None:
        if self.verack_received:
            self._peer._addresses(message)

    def _on_getaddr(self, message: GetAddr) -> None:
        # Core answers only inbound peers, only after verack, only once.
        if (
            not self.inbound
            or not self.verack_received
            or self.getaddr_answered
            or self.address_source is None
        ):
            self.log.debug("{peer}: ignored getaddr", peer=self.address)
            return
        self.getaddr_answered = True
        self.answer_getaddr()

    def _on_getheaders(self, message: GetHeaders) -> None:
        # Core serves nothing to a peer before its verack.
        if self.verack_received:
            self.answer_getheaders(message)

    def _on_getdata(self, message: GetData) -> None:
        if self.verack_received:
            self.answer_getdata(message)

    # -- extension hooks --------------------------------------------------------

    def version_message(self) -> Version:
        """
        The Version we send: called once per connection, by the dialler on
        connecting, by the dialled side on the peer's version.  By default
        it presents ``options`` with our nonce and the clock's time.  An
        override may return any Version (another nonce, a skewed timestamp).
        """
        options = self.options
        assert self.address is not None  # set by connectionMade
        return Version(
            version=options.version,
            services=options.services,
            timestamp=int(self.clock.seconds()),
            addr_recv=(
                self.address if self.address.is_v1_compatible else UNSPECIFIED_ADDRESS
            ),
            nonce=self.nonce,
            user_agent=options.user_agent,
            start_height=options.start_height,
            relay=options.relay,
        )

    def feature_negotiation(self, message: WtxidRelay | SendAddrV2) -> None:
        """
        A wtxidrelay or sendaddrv2 arrived after the peer's version (Core's
        "feature negotiation", legal only before verack).  By default, after
        the peer's verack it closes the connection as Core does ("<type>
        received after verack"); before, a sendaddrv2 makes our getaddr
        answer addrv2.  An override may ignore them, as a node older than
        70016 that does not know them does.
        """
        if self.verack_received:
            self._violation(f"{message.command} received after verack")
        elif isinstance(message, SendAddrV2):
            self.wants_addrv2 = True

    def handshake_done(self, info: PeerInfo) -> None:
        """
        The peer's verack arrived: the handshake is complete, and the
        Peer's ``whenHandshaken`` waiters have had ``info`` (a PeerInfo).
        Called once per connection; by default it does nothing.  An
        override may count it, or start sending.
        """

    def answer_getaddr(self) -> None:
        """
        Answer the peer's getaddr: called for the first getaddr of an inbound
        connection after the peer's verack, when there is an
        ``address_source`` (Core answers nothing else).  By default it sends
        ``address_answer()`` at once, unless that is None.  An override may
        delay the answer (the connection may be gone by then) or not answer.
        """
        answer = self.address_answer()
        if answer is not None:
            self.sendMessage(answer)
        elif levels.debug:
            self.log.debug("{peer}: getaddr answered with nothing (the getaddr policy "
                           "leaves nothing of the address source)", peer=self.address)

    def address_answer(self) -> Message | None:
        """
        The message that answers getaddr, or None to send nothing.  By
        default a random sample of ``address_source()`` of the size
        ``answer_size`` gives (Core's GetAddresses: at most 1000 and 23%;
        the factory's ``getaddr_policy`` chooses), in addrv2 if the peer asked
        for it, else in addr with the networks v1 cannot carry left out;
        None when that leaves nothing to send.  An override may return any
        message with ``command`` and ``encode_payload()``, valid or not.
        """
        assert self.address_source is not None  # _on_getaddr's rule
        known = list(self.address_source())
        count = self.answer_size(len(known))
        chosen = self.random.sample(known, count)
        if not self.wants_addrv2:
            chosen = [e for e in chosen if e.address.is_v1_compatible]
        if not chosen:
            return None  # Core sends nothing rather than an empty message.
        return AddrV2(chosen) if self.wants_addrv2 else Addr(chosen)

    def answer_getheaders(self, message: GetHeaders) -> None:
        """
        A GetHeaders arrived after the peer's verack.  By default it sends
        what ``on_getheaders(peer, message)`` returns (a Headers, or None
        for nothing); without ``on_getheaders``, nothing (a node with no
        chain to serve).  An override may answer from its own chain.
        """
        if self.on_getheaders is not None:
            answer = self.on_getheaders(self._peer, message)
            if answer is not None:
                self.sendMessage(answer)

    def answer_getdata(self, message: GetData) -> None:
        """
        A GetData arrived after the peer's verack.  By default it sends, in
        order, the messages ``on_getdata(peer, message)`` returns (blocks,
        transactions, a NotFound for the rest; None or nothing for no
        answer); without ``on_getdata``, nothing.  An override may answer
        from its own store.
        """
        if self.on_getdata is not None:
            for answer in self.on_getdata(self._peer, message) or ():
                self.sendMessage(answer)

    def frame(self, message: Message) -> bytes:
        """
        The bytes ``message`` goes out as: by default its v1 frame (magic,
        command, length, checksum, payload).  An override may return any
        bytes (another network's magic, a wrong checksum).
        """
        frame: bytes = encode_frame(self.network.magic, message)
        return frame

    def sendMessage(self, message: Message) -> None:
        """
        Send one message: everything the protocol and the Peer send goes
        through here.  By default it writes ``frame(message)`` at once.  An
        override may drop, repeat, alter or delay messages (a delayed write
        must check ``transport.connected``).
        """
        frame = self.frame(message)
        self.bytes_sent += len(frame)
        self.messages_sent += 1
        assert self.transport is not None
        self.transport.write(frame)


#: The protocol's own handler for each message type it acts on.  Functions,
#: not names: what a subclass changes goes through the hooks above.
_HANDLERS: dict[type[Message], Callable[[BitcoinProtocol, Any], None]] = {
    Version: BitcoinProtocol._on_version,
    VerAck: BitcoinProtocol._on_verack,
    SendAddrV2: BitcoinProtocol._on_feature_negotiation,
    WtxidRelay: BitcoinProtocol._on_feature_negotiation,
    Ping: BitcoinProtocol._on_ping,
    Pong: BitcoinProtocol._on_pong,
    Addr: BitcoinProtocol._on_addr,
    AddrV2: BitcoinProtocol._on_addr,
    GetAddr: BitcoinProtocol._on_getaddr,
    GetHeaders: BitcoinProtocol._on_getheaders,
    GetData: BitcoinProtocol._on_getdata,
}
#: Their commands: the types a connection decodes whatever its subscribers.
_HANDLED = frozenset(cls.command for cls in _HANDLERS)
