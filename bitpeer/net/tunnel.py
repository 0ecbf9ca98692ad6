"""
What the SOCKS5 and SAM client endpoints share: a negotiation on a
connection to a proxy, then the connection handed to the caller's protocol
as a tunnel to the peer.

Both clients speak a short request/reply exchange on the proxy connection
and, when the proxy says the peer is connected, the same connection carries
the peer's bytes.  Negotiation is that protocol: every reply is awaited for
at most ``timeout`` seconds (a timer per exchange, as Core's per-receive
timeouts), any fault ends the connection and fails the Deferred once with a
bitpeer ConnectFailed, and a success builds the factory's protocol for the
peer's HostnameAddress and relays the connection to it.  The relay is a
Protocol rather than a swap of ``transport.protocol`` so that it works on
any transport an endpoint gives.
"""

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectingCancelledError, NoProtocol
from twisted.internet.interfaces import IConsumer, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.python.components import proxyForInterface
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConnectFailed, ProxyUnreachable


@implementer(IConsumer)
class TunnelTransport(proxyForInterface(ITCPTransport, "transport")):
    """
    The transport the peer's protocol sees: the proxy connection, except
    that ``getPeer()`` is the peer's address (the proxy is not the peer,
    and an onion or I2P peer has no IP address).
    """

    def __init__(self, transport, peer):
        super().__init__(transport)
        self.peer = peer

    def getPeer(self):
        return self.peer

    def registerProducer(self, producer, streaming):
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self):
        self.transport.unregisterProducer()


class Negotiation(Protocol):
    """
    The protocol on a proxy connection until the tunnel opens.  A subclass
    sends its first request in ``begin()``, takes the proxy's bytes in
    ``received(data)`` and ends with ``open(...)``, ``settle(value)``, or a
    ConnectFailed that ``received`` raises (or gives to ``fail``).

    ``result`` is the Deferred of the negotiation (set by ``negotiate``),
    None once settled.  ``proxy`` names the proxy in error messages.
    """

    proxy = "the proxy"

    def __init__(self, clock, timeout):
        self.clock = clock
        self.timeout = timeout
        self.result = None
        self.inner = None
        self._timer = None

    def __repr__(self):
        return f"<{type(self).__name__} {self.proxy}>"

    # -- what a subclass implements -----------------------------------------

    def begin(self):
        """Send the first request."""
        raise NotImplementedError

    def received(self, data):
        """Take bytes of the proxy's replies."""
        raise NotImplementedError

    def dropped(self):
        """The error when the proxy closes the connection before the end."""
        raise NotImplementedError

    # -- the subclass's tools -------------------------------------------------

    def request(self, data, expired):
        """Send ``data`` and wait ``timeout`` seconds for the reply: then
        fail with ``expired()``."""
        self.transport.write(data)
        self._stop_timer()
        self._timer = self.clock.callLater(self.timeout, self._expired, expired)

    def settle(self, value):
        """The negotiation succeeded with ``value``; the connection stays."""
        self._stop_timer()
        result, self.result = self.result, None
        result.callback(value)

    def fail(self, error):
        """End the connection and fail the negotiation with ``error`` (an
        exception or a Failure); nothing more once settled."""
        self._stop_timer()
        result, self.result = self.result, None
        if self.transport is not None:
            self.transport.abortConnection()
        if result is not None:
            result.errback(error)

    def open(self, factory, peer, rest=b""):
        """
        The proxy connected the peer: build ``factory``'s protocol for the
        HostnameAddress ``peer``, run it on the connection, give it ``rest``
        (bytes of the peer that came with the last reply) and settle with
        it.  A factory that refuses (None) fails with NoProtocol, one that
        raises with its error, as Twisted's own endpoints do.
        """
        self._stop_timer()
        try:
            inner = factory.buildProtocol(peer)
        except Exception:
            self.fail(Failure())
            return
        if inner is None:
            self.fail(NoProtocol())
            return
        self.inner = inner
        inner.makeConnection(TunnelTransport(self.transport, peer))
        self.settle(inner)
        if rest:
            inner.dataReceived(rest)

    # -- Protocol ----------------------------------------------------------

    def connectionMade(self):
        self.begin()

    def dataReceived(self, data):
        if self.inner is not None:
            self.inner.dataReceived(data)
        elif self.result is not None:
            try:
                self.received(data)
            except ConnectFailed as e:
                self.fail(e)

    def connectionLost(self, reason):
        if self.inner is not None:
            self.inner.connectionLost(reason)
        elif self.result is not None:
            self.transport = None
            self.fail(self.dropped())

    def _expired(self, expired):
        self._timer = None
        self.fail(expired())

    def _stop_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def negotiate(endpoint, negotiation, peer):
    """
    Connect ``endpoint`` (the proxy) and run ``negotiation`` on it: the
    Deferred of what it settles with.  A proxy that cannot be reached is
    ProxyUnreachable; cancelling fails with ConnectingCancelledError for
    ``peer``, whether the proxy connection or the negotiation was under way.
    """

    def cancel(result):
        if negotiation.transport is None:
            connecting.cancel()
        else:
            negotiation.fail(ConnectingCancelledError(peer))

    def unreachable(failure):
        result = negotiation.result
        if result is None:
            return None
        negotiation.result = None
        if failure.check(ConnectingCancelledError):
            result.errback(ConnectingCancelledError(peer))
        else:
            result.errback(ProxyUnreachable(
                f"{negotiation.proxy} cannot be reached: {failure.getErrorMessage()}"))
        return None

    negotiation.result = Deferred(cancel)
    result = negotiation.result
    connecting = endpoint.connect(Factory.forProtocol(lambda: negotiation))
    connecting.addErrback(unreachable)
    return result
