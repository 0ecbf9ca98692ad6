"""
The seeder's DNS server: UDP and TCP listeners answering for one SeedZone
from one ServedSample.

The messages are twisted.names' (``dns.Message`` decodes and encodes every
packet, in bitpeer.seed.answers); the listeners are not its
DNSDatagramProtocol and DNSServerFactory, which are a resolver's plumbing:
they log a line for every packet that does not decode (a flood of garbage
would be a flood of log lines), look each query up through Deferreds, and
have no place for a limit per client before the decoding.  Here a datagram
is checked against its sender's token bucket first, then answered at once,
and what went wrong is counted (DNSCounters), never logged per packet.

TCP takes queries as RFC 7766 has them: several on one connection, each
under the same per-client limit; a connection idle for TCP_IDLE_TIMEOUT is
closed, and at most MAX_TCP_CONNECTIONS are open at once (MAX_TCP_PER_CLIENT
from one address).
"""

import collections

import attr
from twisted.application import service
from twisted.internet import defer, protocol
from twisted.internet.interfaces import IPushProducer
from twisted.internet.error import CannotListenError
from twisted.protocols.basic import Int16StringReceiver
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from ..logs import logger
from .answers import UDP_SIZE, Responder
from .ratelimit import DEFAULT_BURST, DEFAULT_RATE, ClientBuckets, RateLimit
from .zone import SeedZone

__all__ = ["DNSService", "DNSCounters", "SeedZone"]

log = logger()

#: Seconds a TCP connection may wait for its next query (RFC 7766 6.2.3:
#: "a few seconds" when the server is busy).
TCP_IDLE_TIMEOUT = 10
#: TCP connections served at once; past it, a new one is closed at once.
MAX_TCP_CONNECTIONS = 256
#: TCP connections one client address may hold: one host cannot take every
#: slot (and with them the TCP fallback of truncated answers).
MAX_TCP_PER_CLIENT = 8
#: The largest query read: a question and an OPT record need far less, and a
#: longer datagram arrives cut short, so it does not decode.
MAX_QUERY_SIZE = UDP_SIZE
#: Tries at finding a port number free for both UDP and TCP, for port 0.
PORT_ATTEMPTS = 10


@attr.define
class DNSCounters:
    """
    What the server did since it started, for the seeder's health lines.

    @ivar received: queries received (UDP datagrams and TCP messages).
    @ivar answered: responses sent.
    @ivar malformed: queries dropped because they did not decode or were
        responses.
    @ivar limited: queries dropped because their sender was over its rate.
    @ivar unsent: UDP responses the kernel would not send (a full buffer, a
        forged source address).
    """

    received: int = 0
    answered: int = 0
    malformed: int = 0
    limited: int = 0
    unsent: int = 0


class _Server:
    """What both listeners share: the limit, the responder and the counters."""

    def __init__(self, responder, buckets, counters):
        self.responder = responder
        self.buckets = buckets
        self.counters = counters

    def respond(self, data, client, stream):
        """The response to ``data`` from ``client`` (an IP), or None."""
        counters = self.counters
        counters.received += 1
        if not self.buckets.allow(client):
            counters.limited += 1
            return None
        response = self.responder.respond(data, stream)
        if response is None:
            counters.malformed += 1
        return response


class _DatagramServer(protocol.DatagramProtocol):
    """UDP: each datagram a query, answered at once.  A response the kernel
    will not send (to a forged port 0, into a full buffer) is counted, not
    raised: Twisted would log a traceback per packet."""

    noisy = False

    def __init__(self, server):
        self._server = server

    def datagramReceived(self, data, address):
        response = self._server.respond(data, address[0], False)
        if response is None:
            return
        try:
            self.transport.write(response, address)
        except OSError:
            self._server.counters.unsent += 1
        else:
            self._server.counters.answered += 1


@implementer(IPushProducer)
class _StreamServer(Int16StringReceiver, TimeoutMixin):
    """
    TCP: length-prefixed queries (RFC 1035 4.2.2), an idle timeout on the
    service's clock that only an answered query resets (junk and dropped
    queries keep nothing open), and a connection aborted past the
    connection bounds (in all, and per client) or on a query longer than
    MAX_QUERY_SIZE.  It is its transport's producer: a client that does not
    read its answers gets no more read from it once the transport's buffer
    is full, so answers cannot pile up in memory, and its idle timeout ends
    it.
    """

    MAX_LENGTH = MAX_QUERY_SIZE

    def connectionMade(self):
        factory = self.factory
        self.client = self.transport.getPeer().host
        if (len(factory.connections) >= MAX_TCP_CONNECTIONS
                or factory.per_client[self.client] >= MAX_TCP_PER_CLIENT):
            self.client = None
            self.transport.abortConnection()
            return
        factory.connections.add(self)
        factory.per_client[self.client] += 1
        self.transport.registerProducer(self, True)
        self.setTimeout(TCP_IDLE_TIMEOUT)

    def connectionLost(self, reason):
        self.setTimeout(None)
        factory = self.factory
        if self in factory.connections:
            factory.connections.discard(self)
            factory.per_client[self.client] -= 1
            if not factory.per_client[self.client]:
                del factory.per_client[self.client]

    def pauseProducing(self):
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.transport.resumeProducing()

    def stopProducing(self):
        self.transport.abortConnection()

    def callLater(self, period, func):
        return self.factory.clock.callLater(period, func)

    def stringReceived(self, data):
        server = self.factory.server
        response = server.respond(data, self.client, True)
        if response is not None:
            self.resetTimeout()
            self.sendString(response)
            server.counters.answered += 1

    def timeoutConnection(self):
        self.transport.abortConnection()

    def lengthLimitExceeded(self, length):
        self.factory.server.counters.malformed += 1
        self.transport.abortConnection()


class _StreamFactory(protocol.ServerFactory):
    """The TCP connections open, for the bound and for closing them on stop."""

    protocol = _StreamServer
    noisy = False

    def __init__(self, server, clock):
        self.server = server
        self.clock = clock
        self.connections = set()
        #: Client address -> its connections open.
        self.per_client = collections.Counter()


class DNSService(service.Service):
    """
    Serves a seed's zone over UDP and TCP while running.

    @param reactor: an IReactorUDP and IReactorTCP.
    @param zone: the SeedZone.
    @param sample: the ServedSample answers are drawn from.
    @param port: the port for both UDP and TCP; 0 picks one free for both.
    @param interface: the address to listen on (``""``: every IPv4 one;
        ``"::"``: every IPv6 and IPv4 one).
    @param clock: an IReactorTime for the rate limit, the idle timeout and
        the SOA's serial; the reactor by default.
    @param rate: queries a second one client may keep asking.
    @param burst: queries one client may ask at once.

    ``ports`` holds the listening ports (UDP, then TCP) once started;
    ``counters`` is the DNSCounters.
    """

    def __init__(self, reactor, zone, sample, *, port=5353, interface="", clock=None,
                 rate=DEFAULT_RATE, burst=DEFAULT_BURST):
        clock = clock if clock is not None else reactor
        self._reactor = reactor
        self._zone = zone
        self._port = port
        self._interface = interface
        self.counters = DNSCounters()
        self._server = _Server(
            Responder(zone, sample, clock), ClientBuckets(clock, RateLimit(rate, burst)),
            self.counters)
        self._streams = _StreamFactory(self._server, clock)
        self.ports = []

    def startService(self):
        # Listening first: a port that is taken leaves the service stopped.
        self.ports = self._listen()
        super().startService()
        log.info("DNS: serving {host} on UDP and TCP {interface}:{port}",
                 host=self._zone.host, interface=self._interface or "*",
                 port=self.ports[0].getHost().port)

    def _listen(self):
        """Listen on UDP and TCP on one port number (a free one for 0)."""
        attempts = PORT_ATTEMPTS if self._port == 0 else 1
        for attempt in range(attempts):
            udp = self._reactor.listenUDP(
                self._port, _DatagramServer(self._server), interface=self._interface,
                maxPacketSize=MAX_QUERY_SIZE)
            try:
                tcp = self._reactor.listenTCP(
                    udp.getHost().port, self._streams, interface=self._interface)
            except CannotListenError:
                udp.stopListening()
                if attempt == attempts - 1:
                    raise
            else:
                return [udp, tcp]

    def stopService(self):
        super().stopService()
        ports, self.ports = self.ports, []
        for connection in list(self._streams.connections):
            connection.transport.abortConnection()
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports])
