"""
Dialling through Twisted's own client endpoints: the reference beside the
fast dialler.

EndpointDialler has the interface of bitpeer.net.dialler.Dialler, built on
TCP4ClientEndpoint and TCP6ClientEndpoint: each attempt is a
``reactor.connectTCP`` with its Connector, its timeout and, once connected,
Twisted's TCP transport.  It needs nothing of the reactor beyond IReactorTCP
(and IReactorTime for its clock), so it works on any reactor, where the fast
dialler needs IReactorFDSet; it costs more CPU per attempt (``python
bench/dial.py`` measures both), and its connections are Twisted's, with
everything they offer (producers, half-close, back-pressure).

The same machinery dials through proxies: given an ``endpoint`` function
(a NetworkAddress to an IStreamClientEndpoint), EndpointDialler connects
whatever that endpoint connects, and an endpoint that fails with a bitpeer
ConnectFailed (the SOCKS5 and SAM endpoints' ProxyError, OnionUnreachable...)
has that error reported as it is.  bitpeer.net.socks5.Socks5Dialler and
bitpeer.net.sam.SamDialler are built so.
"""

from twisted.internet import error as _netError
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from ..errors import ConnectFailed, ConnectionRefused, ConnectTimeout
from ..logs import logger
from ..wire.address import Network


def tcp_endpoint(reactor, address, timeout):
    """The client endpoint of an IPv4 or IPv6 NetworkAddress, with the
    connect ``timeout`` (seconds); ValueError for a network that needs a
    proxy."""
    # Imported here: endpoints bring in TLS (OpenSSL), start-up time that a
    # crawl on the fast dialler never uses.
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint

    if address.network == Network.IPV4:
        return TCP4ClientEndpoint(reactor, address.host_text, address.port, timeout=timeout)
    if address.network == Network.IPV6:
        return TCP6ClientEndpoint(reactor, address.host_text, address.port, timeout=timeout)
    raise ValueError(f"{address}: {address.network_name} addresses need a proxy")


def classify_connect_error(failure):
    """Turn Twisted's connect errors into bitpeer's ConnectFailed classes
    (one that is already a ConnectFailed stays as it is): None for a failure
    that is not a connect error."""
    if failure.check(ConnectFailed):
        return failure.value
    if failure.check(_netError.ConnectionRefusedError):
        return ConnectionRefused(failure.getErrorMessage())
    if failure.check(_netError.TimeoutError, _netError.TCPTimedOutError):
        return ConnectTimeout(failure.getErrorMessage())
    if failure.check(_netError.ConnectError, _netError.DNSLookupError):
        return ConnectFailed(failure.getErrorMessage())
    return None


class EndpointAttempt:
    """
    One connection attempt through an endpoint.  ``address`` is what was
    dialled; ``connecting`` is True until it has connected, failed or been
    cancelled.
    """

    __slots__ = ("dialler", "address", "connecting", "_deferred", "_dialling", "_early",
                 "_error", "_start_failure")

    log = logger()

    def __init__(self, dialler, address):
        self.dialler = dialler
        self.address = address
        self.connecting = True
        #: The endpoint's Deferred of the protocol.
        self._deferred = None
        #: True while dial() runs: a failure then is reported a turn later.
        self._dialling = True
        #: The DelayedCall that reports a failure known inside dial(), and
        #: that failure.
        self._early = self._error = None
        #: What the protocol's connectionMade raised, if it did.
        self._start_failure = None

    def __repr__(self):
        state = "connecting" if self.connecting else "done"
        return f"<EndpointAttempt {self.address} {state}>"

    def cancel(self):
        """Give up on a connect under way (no-op once it has settled): the
        ``failed`` callback gets ConnectFailed."""
        if self.connecting:
            self._deferred.cancel()
        elif self._early is not None:
            self._early.cancel()
            self._report_early()

    def buildProtocol(self, addr):
        """
        The dialler's factory's protocol, its start guarded.  Twisted's
        endpoint fires its Deferred only after the protocol's
        ``makeConnection`` returns: if ``connectionMade`` raised, the
        attempt would never end.  So the error is kept, the connection
        aborted, and the attempt reported failed, as the fast dialler does.
        """
        protocol = self.dialler.factory.buildProtocol(addr)
        if protocol is not None:
            start = protocol.makeConnection

            def guarded(transport):
                try:
                    start(transport)
                except Exception:
                    self._start_failure = Failure()
                    transport.abortConnection()

            protocol.makeConnection = guarded
        return protocol

    def _connected(self, protocol):
        """The factory's protocol runs: the dialler's part is over (unless
        its start failed)."""
        self.connecting = False
        if self._start_failure is not None:
            failure, self._start_failure = self._start_failure, None
            self._failed(failure)

    def _failed(self, failure):
        self.connecting = False
        if failure.check(_netError.ConnectingCancelledError, CancelledError):
            error = ConnectFailed("connection attempt cancelled")
        elif failure.check(_netError.NoProtocol):
            error = ConnectFailed("the factory refused the connection")
        else:
            error = classify_connect_error(failure)
            if error is None:
                # A bug in the factory or its protocol: logged, and the
                # attempt still ends, or its caller would wait for it forever.
                self.log.failure("{address}: the connection could not start", failure,
                                 address=self.address)
                error = ConnectFailed(
                    f"the connection could not start: {failure.getErrorMessage()}")
        if self._dialling:
            self._error = error
            self._early = self.dialler.clock.callLater(0, self._report_early)
        else:
            self.dialler.failed(self.address, error)

    def _report_early(self):
        error, self._early, self._error = self._error, None, None
        self.dialler.failed(self.address, error)

    def _bug(self, failure):
        """The ``failed`` callback raised: logged, as the fast dialler does."""
        self.log.failure("{address}: settling the attempt went wrong", failure,
                         address=self.address)


class EndpointDialler:
    """
    Dial IPv4 and IPv6 NetworkAddresses for ``factory`` through Twisted's
    TCP client endpoints, giving up after ``timeout`` seconds (the
    Connector's own timeout, on the reactor).  ``endpoint``, a function of
    the NetworkAddress, gives other endpoints instead (raising ValueError
    for an address it cannot dial).

    ``failed(address, error)`` is called once for every attempt that does
    not connect, with a ConnectFailed (ConnectionRefused, ConnectTimeout, or
    the plain class with Twisted's words); never from inside ``dial``: a
    failure known at once is reported on a later turn of ``clock``.  A
    connected attempt calls nothing: the factory's protocol takes over.
    """

    def __init__(self, reactor, factory, timeout, failed, clock=None, *, endpoint=None):
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.factory = factory
        self.timeout = timeout
        self.failed = failed
        self.endpoint = endpoint if endpoint is not None else self._tcp_endpoint

    def _tcp_endpoint(self, address):
        return tcp_endpoint(self.reactor, address, self.timeout)

    def dial(self, address):
        """Start connecting to ``address``: its EndpointAttempt."""
        endpoint = self.endpoint(address)
        attempt = EndpointAttempt(self, address)
        attempt._deferred = endpoint.connect(_AttemptFactory(self.factory, attempt))
        attempt._deferred.addCallbacks(attempt._connected, attempt._failed)
        attempt._deferred.addErrback(attempt._bug)
        attempt._dialling = False
        return attempt


class _AttemptFactory:
    """
    What an endpoint is given to connect: the dialler's factory (started
    and stopped with it, as Twisted does), building each protocol through
    the attempt that guards its start.
    """

    def __init__(self, factory, attempt):
        self.factory, self.attempt = factory, attempt

    def doStart(self):
        self.factory.doStart()

    def doStop(self):
        self.factory.doStop()

    def buildProtocol(self, addr):
        return self.attempt.buildProtocol(addr)
