"""
Outbound TCP for the crawl: diallers, and the transport of what they connect.

A dialler makes the crawl's connections.  Two exist, with one interface:
bitpeer.net.dialler.Dialler ("fast", the default) and
bitpeer.net.endpoints.EndpointDialler ("twisted", the reference, on
Twisted's TCP client endpoints).  DIALLERS maps those names to them and
dialler_for() picks one for a reactor.

``Dialler(reactor, factory, timeout, failed, clock=None)``: ``factory`` is
any Twisted protocol factory; ``timeout`` the seconds an attempt may take to
connect; ``failed(address, error)`` the callback for attempts that do not
connect; ``clock`` (default: the reactor) times the fast dialler's
attempts.  The endpoint dialler's timeout is Twisted's Connector's, on the
reactor; its ``clock`` only schedules the report of a failure known inside
``dial``.

``dial(address)`` starts connecting to an IPv4 or IPv6 NetworkAddress (any
other network raises ValueError: it needs a proxy) and returns the attempt.
Then exactly one of these happens:

- it connects: ``factory.buildProtocol(addr)`` is called with the
  IPv4Address or IPv6Address of what was dialled, and the protocol runs on
  the connection.  The dialler calls nothing more; the protocol's own
  connectionLost tells its end.
- it fails: ``failed(address, error)`` is called once, with a
  bitpeer.errors.ConnectFailed: ConnectionRefused, ConnectTimeout (no
  connection within ``timeout``), or the plain class (unreachable, out of
  descriptors, the factory refusing the connection or raising).  Never from inside
  ``dial``: a failure known at once is reported on a later reactor turn,
  so a caller that dials again from ``failed`` does not recurse.
- ``attempt.cancel()`` gives up on it while it connects: ``failed`` is
  called at once with ConnectFailed; after it has settled, cancel does
  nothing.

The fast dialler's timeouts are decided by the kernel, not by the
reactor's lag: at the deadline, an attempt whose connect the kernel has
finished (its event not yet dispatched) is settled as what it is (the
endpoint dialler's are the Connector's timer).  Its attempts also offer
``rtt()``, the kernel's round-trip time of the connected socket
(Linux) or None; the crawl learns its connect timeout from it.

The fast dialler watches connecting sockets in an epoll set of its own
(Linux) or, elsewhere, as the reactor's writers (ReactorWriters), and its
deadlines are one FIFO queue: every attempt has the same timeout.  Both
ways, and StreamTransport, need a reactor with IReactorFDSet.  On a reactor
without it (Windows' IOCP reactor), dialler_for("fast") logs one info line
and gives the endpoint dialler, which needs only IReactorTCP: its timeout is
the Connector's, and its connections run on Twisted's TCP transport (with
producers and half-close, and no bound on what waits to be sent).

Two more diallers, with the same interface, dial through a proxy; each is an
EndpointDialler given an endpoint function, and takes its proxy as a keyword
(``dial`` raises ValueError for a network it does not carry).
bitpeer.net.socks5.Socks5Dialler(..., proxy=(HOST, PORT), isolate=True)
dials onion addresses (and IPv4 and IPv6, for a crawl behind a proxy)
through a SOCKS5 proxy such as Tor's, with fresh RFC 1929 credentials per
connection for stream isolation; bitpeer.net.sam.SamDialler(...,
bridge=(HOST, PORT)) dials I2P addresses (port 0 only) through a SAM 3.1
bridge, in one transient session made on the first dial and made again if
its connection dies.  HOST is an IP address: no name is ever resolved, and
an onion or I2P name goes only to the proxy.  Their ``timeout`` bounds each
reply of the proxy's exchange (the CONNECT or STREAM CONNECT reply being the
long one); the TCP connect to the proxy has its own, short, bound.
``factory.buildProtocol`` gets a HostnameAddress (``b"<name>.onion"``,
``b"<name>.b32.i2p"``) for an overlay peer, which
bitpeer.protocol.address_of maps back to its NetworkAddress, and
``failed`` gets the proxy's fault (bitpeer.errors.ProxyUnreachable,
ProxyError) apart from the peer's (OnionUnreachable, I2PUnreachable,
ConnectTimeout, ConnectionRefused); the modules' docstrings hold the tables
of reply codes.

bitpeer.net.stream.StreamTransport carries the fast dialler's connections.
It provides ITransport and ``abortConnection``; it is not a producer or a
consumer (no back-pressure: registerProducer does not exist), does not
half-close (end of input ends the connection) and has no TLS.  What a
protocol writes inside a handler (connectionMade, dataReceived) is sent in
one ``send`` when the handler returns; a write at any other time is sent at
once (behind anything still waiting); what the kernel will not take waits
for room.  What waits is bounded:
a write that leaves more than stream.MAX_UNSENT bytes (4 MiB) unsent aborts
the connection with UnsentLimitExceeded, for a peer that does not read.

``loseConnection`` sends what waits first, including what the same handler
writes after it (nothing more is read meanwhile), then closes;
connectionLost gets ConnectionDone.  A peer that never reads keeps that
close waiting: the protocol's own timers abort it.  ``abortConnection`` drops what
waits and closes with RST; connectionLost gets ConnectionAborted.  Either
way connectionLost runs on a later reactor turn, never inside
loseConnection, abortConnection or write; a reactor that stops first
disconnects the transport, and connectionLost gets ConnectionLost.  An OS
error on the socket ends the connection with ConnectionLost naming it.
"""

from twisted.internet.interfaces import IReactorFDSet

from ..logs import logger
from .dialler import Dialler
from .endpoints import EndpointDialler

#: The diallers by name, as CrawlOptions.transport (and --transport) name them.
DIALLERS = {"fast": Dialler, "twisted": EndpointDialler}

_log = logger()


def dialler_for(transport, reactor):
    """
    The dialler class named ``transport`` (a key of DIALLERS) for
    ``reactor``.  "fast" needs IReactorFDSet: on a reactor without it the
    endpoint dialler is given instead, with one info line, rather than a
    crawl that cannot start.
    """
    if transport == "fast" and not IReactorFDSet.providedBy(reactor):
        _log.info("the reactor ({reactor}) cannot watch descriptors (no IReactorFDSet): "
                  "the crawl dials through Twisted's endpoints instead of the fast dialler",
                  reactor=type(reactor).__name__)
        return EndpointDialler
    return DIALLERS[transport]
