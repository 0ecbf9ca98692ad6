"""
PeerService: a Twisted Service that keeps one handshaken peer to one address.

An application that follows a node (its invs, its headers, its pings) wants
the connection back when it drops, without hammering a node that is down,
and a way to ask for "the peer, once there is one".  PeerService dials with
``connectPeer`` (so a connection counts once its handshake is done), redials
with exponential backoff and jitter (Twisted's ``backoffPolicy``), pings on
an interval to notice a dead peer, and counts the traffic.

Why not Twisted's ClientService, with ``prepareConnection`` waiting for the
handshake?  Tried on Twisted 26.10 it does not fit a handshake that can
fail: when the connection closes while the handshake is awaited (a timeout,
an obsolete version, a node that drops us), the failed preparation moves
its state machine to "waiting", and the disconnect that follows, in the
same connectionLost, then raises automat's NoTransition; and stopping it
during a handshake cancels only the wait, leaving the TCP connection open
after its stop has fired.  connectPeer already closes what it cancels and
fails with the PeerError that ended the handshake, so the loop here is
short; the backoff is Twisted's own ``backoffPolicy``.
"""

import random as _random
from collections.abc import Callable

import attr
from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from .errors import ClosedLocally, PeerError
from .factory import DEFAULT_CONNECT_TIMEOUT, PeerFactory, connectPeer
from .logs import logger
from .networks import MAINNET, NetworkParams
from .peer import Peer
from .protocol import PeerOptions
from .wire.address import NetworkAddress

#: Seconds between pings to the connected peer.
DEFAULT_PING_INTERVAL = 60.0
#: Backoff: the first redial waits about INITIAL_DELAY s, each failure
#: multiplies that by FACTOR, up to MAX_DELAY, plus up to 1 s of jitter.
INITIAL_DELAY = 1.0
MAX_DELAY = 300.0
FACTOR = 2.0


@attr.frozen
class ServiceStats:
    """
    A PeerService's traffic and history, over every connection it made.

    @ivar connects: connections that completed their handshake.
    @ivar failures: attempts that ended before a handshake (refused, timed
        out, closed...).
    @ivar last_rtt: the last ping's round trip in seconds, or None.
    @ivar last_received_at: the clock's time of the last bytes received, or
        None.
    """

    connects: int
    failures: int
    last_rtt: float | None
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    last_received_at: float | None

    @property
    def reconnects(self) -> int:
        """Connections made after the first: how often the peer came back."""
        return max(self.connects - 1, 0)


class PeerService(Service):
    """
    Keep a handshaken Peer to ``address`` (a NetworkAddress or
    ``HOST[:PORT]`` text) while running.

    ``reactor`` dials (connectTCP); ``clock`` (the reactor by default) times
    the pings and the redials.  ``factory`` defaults to a PeerFactory with
    ``options`` (PeerOptions, a crawler's by default).  ``random`` draws the
    jitter.  ``on_peer(peer)``, if given, is called with each new
    handshaken Peer, before ``whenPeer`` waiters (the place to subscribe).

    ``stopService`` closes the peer (its ``whenClosed`` gives ClosedLocally)
    and returns a Deferred that fires once it is closed.
    """

    log = logger()

    def __init__(self, reactor: IReactorTime, address: NetworkAddress | str,
                 network: NetworkParams = MAINNET, *, clock: IReactorTime | None = None,
                 factory: PeerFactory | None = None, options: PeerOptions | None = None,
                 on_peer: Callable[[Peer], object] | None = None,
                 ping_interval: float = DEFAULT_PING_INTERVAL,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 initial_delay: float = INITIAL_DELAY, max_delay: float = MAX_DELAY,
                 factor: float = FACTOR, random: _random.Random | None = None) -> None:
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.address = address
        self.network = network
        if factory is not None and options is not None:
            raise ValueError("give options or a factory (built with its options), not both")
        self.factory = factory if factory is not None else PeerFactory(
            self.clock, network, options)
        self.on_peer = on_peer
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        random = random if random is not None else _random.SystemRandom()
        self.retry_delay = backoffPolicy(initial_delay, max_delay, factor, jitter=random.random)
        #: The current handshaken Peer, or None.
        self.peer: Peer | None = None
        self._attempt: Deferred[Peer] | None = None
        self._retry_call: IDelayedCall | None = None
        self._pinger: LoopingCall | None = None
        self._waiters: list[Deferred[Peer]] = []
        self._failures = 0
        self._connects = 0
        self._failed_total = 0
        self._last_rtt: float | None = None
        #: Traffic of the connections already closed: bytes and messages
        #: sent and received, and the last time bytes arrived.
        self._closed_traffic: tuple[int, int, int, int, float | None] = (0, 0, 0, 0, None)

    def __repr__(self) -> str:
        return f"<PeerService {self.address}>"

    # -- the public side ---------------------------------------------------------

    def whenPeer(self) -> "Deferred[Peer]":
        """
        A Deferred of the current handshaken Peer: at once if there is one,
        else when the next handshake completes.  Cancellable; errbacks with
        ClosedLocally if the service stops first.
        """
        if self.peer is not None:
            return succeed(self.peer)
        waiter: Deferred[Peer] = Deferred(canceller=self._waiters.remove)
        self._waiters.append(waiter)
        return waiter

    def stats(self) -> ServiceStats:
        """A ServiceStats of everything so far, the current peer included."""
        sent, received, messages_sent, messages_received, last = self._closed_traffic
        if self.peer is not None:
            now = self.peer.stats
            sent += now.bytes_sent
            received += now.bytes_received
            messages_sent += now.messages_sent
            messages_received += now.messages_received
            last = now.last_received_at if now.last_received_at is not None else last
        return ServiceStats(self._connects, self._failed_total, self._last_rtt, sent, received,
                            messages_sent, messages_received, last)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._connect()

    def stopService(self) -> "Deferred[None]":
        super().stopService()  # type: ignore[no-untyped-call]
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        if self._attempt is not None:
            self._attempt.cancel()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(ClosedLocally(f"{self!r} stopped"))
        if self.peer is None:
            return succeed(None)
        closed = self.peer.whenClosed().addCallback(lambda _: None)
        self.peer.close()
        return closed

    # -- the loop ------------------------------------------------------------------

    def _connect(self) -> None:
        self._retry_call = None
        self._attempt = connectPeer(self.reactor, self.address, self.network,
                                    connect_timeout=self.connect_timeout, factory=self.factory)
        self._attempt.addCallbacks(self._connected, self._failed)

    def _connected(self, peer: Peer) -> None:
        self._attempt = None
        self._failures = 0
        self._connects += 1
        self.peer = peer
        agent = peer.info.user_agent if peer.info is not None else "?"
        self.log.info("{service}: connected to {agent} (connection {count})", service=self,
                      agent=agent, count=self._connects)
        peer.whenClosed().addCallback(self._lost, peer)
        self._pinger = LoopingCall(self._ping, peer)
        self._pinger.clock = self.clock
        self._pinger.start(self.ping_interval, now=False)
        if self.on_peer is not None:
            self.on_peer(peer)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(peer)

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        if not self.running:
            return None  # our own cancel, or an attempt cut short by the stop
        self._failures += 1
        self._failed_total += 1
        error = failure.value
        if isinstance(error, PeerError):
            self._retry(f"{error.reason}: {error}")
        else:
            # Not the peer: a bug, said with its traceback; the service
            # keeps trying, at the backoff's pace.
            self.log.failure("{service}: dialling failed", failure, service=self)
            self._retry("unexpected error")
        return None

    def _lost(self, error: PeerError, peer: Peer) -> None:
        if self._pinger is not None:
            self._pinger.stop()
            self._pinger = None
        stats = peer.stats
        sent, received, messages_sent, messages_received, last = self._closed_traffic
        self._closed_traffic = (
            sent + stats.bytes_sent, received + stats.bytes_received,
            messages_sent + stats.messages_sent, messages_received + stats.messages_received,
            stats.last_received_at if stats.last_received_at is not None else last,
        )
        self.peer = None
        if self.running:
            self._retry(f"lost: {error.reason}: {error}")

    def _retry(self, why: str) -> None:
        delay = self.retry_delay(self._failures)
        self.log.info("{service}: {why}; redialling in {delay:.1f} s", service=self, why=why,
                      delay=delay)
        self._retry_call = self.clock.callLater(delay, self._connect)

    def _ping(self, peer: Peer) -> None:
        pinged = peer.ping()
        pinged.addCallbacks(self._pinged, self._ping_failed, errbackArgs=(peer,))

    def _pinged(self, rtt: float) -> None:
        self._last_rtt = rtt

    def _ping_failed(self, failure: Failure, peer: Peer) -> None:
        if failure.check(TimeoutError):
            # A peer that does not answer is as good as gone: redial.
            self.log.info("{service}: no pong in time; closing", service=self)
            peer.close()
            return None
        failure.trap(PeerError)  # the connection ended: _lost handles it
        return None
