"""
The public handle on one connection: what an application holds and calls.

A Peer is created by BitcoinProtocol for every connection.  It offers
Deferreds for the one-shot results (the handshake, the getaddr answer, a ping
round trip, the next message of a type) and callbacks for message streams
(``subscribe``).  Every Deferred is fresh per caller and cancellable, and
every waiter errbacks with a bitpeer.errors.PeerError when the connection is
lost.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attr
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from .errors import ClosedLocally, PeerError
from .logs import logger
from .oneshot import OneShot
from .wire.address import AddrEntry, NetworkAddress
from .wire.messages import Addr, AddrV2, GetAddr, Message, Ping, SendAddrV2, WtxidRelay
from .wire.services import describe

if TYPE_CHECKING:
    from .protocol import BitcoinProtocol

M = TypeVar("M", bound=Message)
#: A subscriber: called with the Peer and each message of its class.
Subscriber = Callable[["Peer", M], object]


@attr.frozen
class PeerInfo:
    """
    What a peer told us in its handshake.

    @ivar address: where the peer is (for inbound, where it connected from).
    @ivar their_view_of_us: ``addr_recv`` from its version: the address it
        sees us at, the raw material of the external-address vote.
    @ivar clock_offset: its timestamp minus our clock when the version
        arrived, in seconds.
    @ivar handshake_latency: seconds from TCP connect to the handshake's
        completion.
    """

    address: NetworkAddress
    inbound: bool
    version: int
    services: int
    user_agent: str
    start_height: int
    relay: bool | None
    their_view_of_us: NetworkAddress
    timestamp: int
    nonce: int
    clock_offset: float
    handshake_latency: float

    @property
    def services_text(self) -> str:
        """The service bits as names, e.g. ``NETWORK|WITNESS``."""
        return str(describe(self.services))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (addresses as text, services as number and names)."""
        out = attr.asdict(self, recurse=False)
        out["address"] = str(self.address)
        out["network"] = self.address.network_name
        out["their_view_of_us"] = str(self.their_view_of_us)
        out["services_text"] = self.services_text
        return out


@attr.frozen
class PeerStats:
    """
    The traffic of one connection so far (or until it closed).

    @ivar last_received_at: the clock's time when the peer's last bytes
        arrived, or None if nothing has.
    """

    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    last_received_at: float | None

    @classmethod
    def of(cls, protocol: "BitcoinProtocol") -> "PeerStats":
        """The counts of a BitcoinProtocol, now."""
        return cls(protocol.bytes_sent, protocol.bytes_received, protocol.messages_sent,
                   protocol.messages_received, protocol.last_received_at)


#: How long ``Peer.expect`` waits by default, in seconds.
DEFAULT_EXPECT_TIMEOUT = 60.0


@attr.frozen
class GetAddrResult:
    """
    The addresses a peer gave in answer to getaddr.

    @ivar outcome: ``answered`` (a message with more than one entry came),
        ``idle`` (no addr message for the idle timeout), ``timeout`` (the
        total timeout), or ``closed`` (the connection ended after some
        addresses had arrived).
    @ivar messages: how many addr/addrv2 messages contributed.
    @ivar announced: how many entries those messages held, including any the
        decoder left out as already known (see PeerFactory's
        ``known_addresses``).
    """

    addresses: tuple[AddrEntry, ...]
    outcome: str
    messages: int
    elapsed: float
    announced: int = 0


class _AddrCollector:
    """
    Gathers the answer to our one getaddr.

    Core answers in a single message, but may announce itself first in a
    one-entry message; so the answer is complete at the first message with
    more than one entry (Core's addr-fetch rule), else after ``idle`` seconds
    without an addr message (counted from the getaddr), else after ``total``
    seconds.  At most ``limit`` addresses are kept.
    """

    def __init__(self, clock: IReactorTime, idle: float, total: float, limit: int) -> None:
        self.clock = clock
        self.idle, self.limit = idle, limit
        self.entries: list[AddrEntry] = []
        self.messages = 0
        self.announced = 0
        self.started = clock.seconds()
        self.result: OneShot[GetAddrResult] = OneShot()
        self._idle_call: IDelayedCall | None = clock.callLater(idle, self._finish, "idle")
        self._total_call: IDelayedCall | None = clock.callLater(total, self._finish, "timeout")

    def add(self, message: Addr | AddrV2) -> None:
        if self.result.done:
            return
        entries = message.addresses
        count = len(entries) + message.skipped
        self.messages += 1
        self.announced += count
        room = self.limit - len(self.entries)
        self.entries.extend(entries[:room])
        if count > 1:
            self._finish("answered")
        elif self._idle_call is not None:
            self._idle_call.reset(self.idle)

    def _stop_timers(self) -> None:
        for call in (self._idle_call, self._total_call):
            if call is not None and call.active():
                call.cancel()
        # The calls hold methods of ours: no cycle left behind.
        self._idle_call = self._total_call = None

    def _finish(self, outcome: str) -> None:
        self._stop_timers()
        self.result.fire(
            GetAddrResult(
                tuple(self.entries),
                outcome,
                self.messages,
                self.clock.seconds() - self.started,
                self.announced,
            )
        )

    def lost(self, failure: Failure) -> None:
        """The connection ended: keep what arrived, or pass the failure on."""
        if self.entries:
            self._finish("closed")
        else:
            self._stop_timers()
            self.result.fire(failure)


class Peer:
    """
    One connected peer.

    @ivar address: the peer's NetworkAddress.
    @ivar info: its PeerInfo once the handshake is done, else None.
    """

    log = logger()

    def __init__(self, protocol: "BitcoinProtocol", address: NetworkAddress) -> None:
        self._protocol: BitcoinProtocol | None = protocol
        self.address = address
        self.info: PeerInfo | None = None
        self._handshake: OneShot[PeerInfo] = OneShot()
        self._closed: OneShot[PeerError] = OneShot()
        self._collector: _AddrCollector | None = None
        self._pings: dict[int, tuple[float, Deferred[float]]] = {}
        self._subscribers: dict[type[Message], list[Subscriber[Any]]] = {}
        #: expect() waiters -> their unsubscribe functions.
        self._expected: dict[Deferred[Any], Callable[[], None]] = {}
        #: (PeerStats, wants_addrv2) as the connection ended.
        self._final: tuple[PeerStats, bool] | None = None

    @property
    def closed(self) -> bool:
        """True once the connection has ended (``whenClosed`` has fired)."""
        return self._closed.done

    @property
    def wants_addrv2(self) -> bool:
        """True if the peer sent sendaddrv2 (BIP155) in its handshake: our
        addresses go to it as addrv2."""
        if self._final is not None:
            return self._final[1]
        return self._live().wants_addrv2

    @property
    def stats(self) -> PeerStats:
        """The connection's PeerStats: now, or as it ended."""
        if self._final is not None:
            return self._final[0]
        return PeerStats.of(self._live())

    def _live(self) -> "BitcoinProtocol":
        # Until the connection ends (then _final is set) there is a protocol.
        assert self._protocol is not None, "the connection has ended"
        return self._protocol

    def __repr__(self) -> str:
        state = "handshaken" if self.info else "connecting"
        return f"<Peer {self.address} {state}>"

    # -- one-shot results ---------------------------------------------------

    def whenHandshaken(self) -> "Deferred[PeerInfo]":
        """A Deferred that fires with the PeerInfo when version/verack is done."""
        return self._handshake.when()

    def whenClosed(self) -> "Deferred[PeerError]":
        """
        A Deferred that fires when the connection has ended, with the
        PeerError saying why (it never errbacks).
        """
        return self._closed.when()

    def getaddr(self) -> "Deferred[GetAddrResult]":
        """
        Ask for addresses, once per connection (a node answers only once):
        a Deferred of GetAddrResult.  Called before the handshake is done, it
        waits for it; called again, it gives the first answer.
        """
        if self._collector is not None:
            return self._collector.result.when()
        if self._closed.done:
            return self._ended()
        if self.info is None:
            return self.whenHandshaken().addCallback(lambda _: self.getaddr())
        protocol = self._live()
        options = protocol.options
        self._collector = _AddrCollector(
            protocol.clock,
            options.getaddr_idle_timeout,
            options.getaddr_timeout,
            options.max_addresses,
        )
        result = self._collector.result.when()
        protocol.sendMessage(GetAddr())
        return result

    def ping(self, timeout: float | None = None) -> "Deferred[float]":
        """
        Send a ping; a Deferred of the round-trip time in seconds, which
        errbacks with TimeoutError after ``timeout`` seconds (by default
        ``options.ping_timeout``).
        """
        if self._closed.done:
            return self._ended()
        if self.info is None:
            return self.whenHandshaken().addCallback(lambda _: self.ping(timeout))
        protocol = self._live()
        nonce = protocol.random.getrandbits(64) or 1
        sent = protocol.clock.seconds()
        done: Deferred[float] = Deferred(canceller=lambda d: self._forget_ping(nonce))
        self._pings[nonce] = (sent, done)
        protocol.sendMessage(Ping(nonce))
        if timeout is None:
            timeout = protocol.options.ping_timeout
        return done.addTimeout(timeout, protocol.clock)

    def _forget_ping(self, nonce: int) -> None:
        self._pings.pop(nonce, None)

    def sync_with_ping(self, timeout: float | None = None) -> "Deferred[None]":
        """
        A Deferred that fires (with None) once the peer has answered a
        ping sent now: a node handles its peer's messages in order, so
        everything it sent before the pong has been delivered to our
        subscribers and waiters by then (Core's test framework's
        ``sync_with_ping``).  ``timeout`` as ``ping``'s.
        """
        return self.ping(timeout).addCallback(lambda _: None)

    def expect(self, message_class: type[M],
               timeout: float | None = DEFAULT_EXPECT_TIMEOUT) -> "Deferred[M]":
        """
        A Deferred of the next received message of ``message_class`` (as
        ``subscribe`` counts them: from the next frame on).  It errbacks
        with TimeoutError after ``timeout`` seconds on the connection's
        clock (None: no limit), with the PeerError when the connection
        ends, and cancelling it stops the wait.
        """
        if self._closed.done:
            return self._ended()

        def arrived(peer: Peer, message: M) -> None:
            self._expected.pop(waiting)()
            waiting.callback(message)

        def cancel(_: object) -> None:
            self._expected.pop(waiting)()

        waiting: Deferred[M] = Deferred(canceller=cancel)
        self._expected[waiting] = self.subscribe(message_class, arrived)
        if timeout is not None:
            waiting.addTimeout(timeout, self._live().clock)
        return waiting

    def _ended(self) -> "Deferred[Any]":
        # Asked after the connection ended: nothing would answer, so say why
        # at once rather than write to a closed transport and time out.
        return self._closed.when().addCallback(lambda error: Failure(error))

    # -- streams ------------------------------------------------------------

    def subscribe(self, message_class: type[M],
                  callback: Subscriber[M]) -> Callable[[], None]:
        """
        Call ``callback(peer, message)`` for every received message of
        ``message_class`` (``Message`` for all of them), including those the
        protocol itself ignores (anything before version, say): a subscriber
        sees the traffic as it arrived.  Only messages that close the
        connection are not delivered.  Returns a function that unsubscribes.

        A callback that raises is logged with its traceback and otherwise
        ignored: the other subscribers still get the message, the protocol
        still answers it, and the connection stays open.
        """
        callbacks = self._subscribers.setdefault(message_class, [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def send(self, message: Message) -> None:
        """
        Send any message.  ``wtxidrelay`` and ``sendaddrv2`` after our verack
        are refused: Core disconnects for them.  Once the connection has
        ended, sending does nothing (as with a Twisted transport).
        """
        if self._protocol is None:
            return
        if isinstance(message, (WtxidRelay, SendAddrV2)) and self._protocol.verack_sent:
            raise ValueError(f"{message.command} after verack makes Core disconnect")
        self._protocol.sendMessage(message)

    def close(self) -> None:
        """Close the connection politely (pending writes are flushed); once
        it has ended, this does nothing."""
        if self._protocol is not None:
            self._protocol.close(ClosedLocally("closed by us"))

    # -- called by BitcoinProtocol -------------------------------------------

    def _handshaken(self, info: PeerInfo) -> None:
        self.info = info
        self._handshake.fire(info)

    def _deliver(self, message: Message) -> None:
        for cls in (type(message), Message):
            for callback in tuple(self._subscribers.get(cls, ())):
                try:
                    callback(self, message)
                except Exception:
                    self.log.failure(
                        "{peer}: subscriber {callback!r} raised on {command}",
                        peer=self.address, callback=callback, command=message.command,
                    )

    def _addresses(self, message: Addr | AddrV2) -> None:
        if self._collector is not None:
            self._collector.add(message)

    def _pong(self, nonce: int) -> None:
        pending = self._pings.pop(nonce, None)
        if pending is not None:
            sent, done = pending
            done.callback(self._live().clock.seconds() - sent)

    def _lost(self, error: PeerError, protocol: "BitcoinProtocol") -> None:
        self._final = (PeerStats.of(protocol), protocol.wants_addrv2)
        failure = Failure(error)
        self._handshake.fire(failure)
        if self._collector is not None:
            self._collector.lost(failure)
        pings, self._pings = self._pings, {}
        for _, done in pings.values():
            done.errback(failure)
        expected, self._expected = self._expected, {}
        for waiting, unsubscribe in expected.items():
            unsubscribe()
            waiting.errback(failure)
        self._closed.fire(error)
        # The protocol points at us: without this cycle, a closed connection
        # is freed by reference counting as soon as nobody holds it.
        self._protocol = None
