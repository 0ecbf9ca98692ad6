"""
A strict I2P SAM 3.1 client, as Bitcoin Core speaks it (``src/i2p.cpp``),
for dialling ``.b32.i2p`` peers through a SAM bridge (i2pd or the Java
router, usually 127.0.0.1:7656).

Why not a library: no maintained Twisted SAM client exists.  txi2p's last
release (0.3.2, 2017) predates its own Python 3 port; the tahoe-lafs fork
txi2p-tahoe (0.3.7, 2022) runs on Python 3 but is tested only to 3.10,
parses with Parsley (last released 2015), says HELLO for 3.0 to 3.2 where
Core pins 3.1, and bounds neither reply lines nor each exchange's time.
i2psam (1.0.0, 2026) and i2plib (0.0.14, 2019, broken on Python >= 3.10)
are asyncio libraries.  The protocol is a few request lines.

Every exchange is one request line and one reply line, on a fresh
connection to the bridge that begins with ``HELLO VERSION MIN=3.1
MAX=3.1``.  A reply line is at most MAX_LINE bytes (Core's MAX_MSG_SIZE,
64 KiB; the longest known is about 1,400) and is awaited at most
``timeout`` seconds (Core: 3 minutes, as the router may have to ask the
I2P network); its first two words must answer the request (``HELLO
REPLY``...), and nothing may come before the next request is sent.

- SamSession holds one transient session for the whole crawl, on its own
  connection: ``SESSION CREATE STYLE=STREAM ID=<10 hex> DESTINATION=TRANSIENT
  SIGNATURE_TYPE=7 i2cp.leaseSetEncType=4,0 inbound.quantity=1
  outbound.quantity=1``.  If that connection dies, the next dial creates a
  new session; dials made while one is being created wait for it.
- SamClientEndpoint dials one peer: ``NAMING LOOKUP NAME=<name>.b32.i2p``
  for its destination, then ``STREAM CONNECT ID=<session>
  DESTINATION=<destination> SILENT=false``; on RESULT=OK the connection is
  the peer's.  SAM 3.1 has no ports: Core refuses any I2P port but 0.

Results, and the bitpeer error each becomes (as Core decides which are the
peer's failure and which the bridge's):

=================================  ==========================================
reply                              error
=================================  ==========================================
RESULT=OK                          (success)
STREAM STATUS CANT_REACH_PEER      I2PUnreachable
STREAM STATUS TIMEOUT              ConnectTimeout
no STREAM STATUS in time           ConnectTimeout
STREAM STATUS INVALID_ID           ProxyError, and the session is dropped
                                   (Core's Disconnect): the next dial
                                   creates a new one
any other RESULT (I2P_ERROR,       ProxyError
INVALID_KEY, KEY_NOT_FOUND,
DUPLICATED_ID, DUPLICATED_DEST,
NOVERSION...), to any request
a wrong or oversized line, no      ProxyError
HELLO/NAMING/SESSION reply in
time, the bridge closing early
the bridge not reachable           ProxyUnreachable
=================================  ==========================================

A NAMING LOOKUP of a ``.b32.i2p`` name whose lease set the router cannot
find answers KEY_NOT_FOUND: Core counts that as the bridge's error too.
"""

import re
from random import SystemRandom

from twisted.internet.address import HostnameAddress
from twisted.internet.defer import fail, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from ..errors import ConnectFailed, ConnectTimeout, I2PUnreachable, ProxyError
from ..logs import logger
from ..oneshot import OneShot
from ..wire.address import Network, NetworkAddress
from .endpoints import EndpointDialler, tcp_endpoint
from .socks5 import PROXY_CONNECT_TIMEOUT
from .tunnel import Negotiation, negotiate

#: The longest reply line, newline included (Core's MAX_MSG_SIZE).
MAX_LINE = 65536

#: Seconds each reply may take (Core's recv_timeout, 3 minutes).
REPLY_TIMEOUT = 180

#: The only port of an I2P address (Core's I2P_SAM31_PORT).
SAM31_PORT = 0

HELLO = b"HELLO VERSION MIN=3.1 MAX=3.1\n"

#: A destination in I2P's Base64 (``-`` and ``~`` for ``+`` and ``/``).
_DESTINATION = re.compile(rb"[A-Za-z0-9~=-]+\Z")


def parse_reply(line):
    """The topic (first two words) and the KEY=VALUE fields of a reply
    line; a bare word is a key with an empty value, as in Core."""
    words = line.split(b" ")
    fields = {}
    for word in words[2:]:
        key, _, value = word.partition(b"=")
        fields[key] = value
    return b" ".join(words[:2]), fields


class SamNegotiation(Negotiation):
    """
    Request lines and their reply lines on one bridge connection: HELLO
    first, then what a subclass asks in ``hello_done()``.
    """

    proxy = "the SAM bridge"

    def __init__(self, clock, timeout):
        super().__init__(clock, timeout)
        self._buffer = b""
        self._topic = self._handler = self._what = None

    def begin(self):
        self.ask(HELLO, b"HELLO REPLY", self._hello)

    def hello_done(self):
        """The bridge speaks SAM 3.1: send the first request."""
        raise NotImplementedError

    def ask(self, line, topic, handler):
        """Send the request ``line``; ``handler(fields)`` gets the reply,
        which must begin with ``topic``."""
        self._topic, self._handler = topic, handler
        self._what = b" ".join(line.split(b" ")[:2]).decode("ascii").strip()
        self.request(line, self.late)

    def late(self):
        """The error when the reply does not come in time."""
        return ProxyError(f"{self.proxy} did not answer {self._what} in {self.timeout} s")

    def dropped(self):
        return ProxyError(f"{self.proxy} closed the connection before answering {self._what}")

    def refused(self, fields):
        """The ProxyError of a RESULT other than OK."""
        result = fields.get(b"RESULT", b"").decode("ascii", "replace")
        message = fields.get(b"MESSAGE", b"").decode("ascii", "replace")
        return ProxyError(f"{self.proxy} answered {self._what} with RESULT={result} {message}"
                          .rstrip())

    def take_buffer(self):
        """What came after the last reply line (the peer's bytes, once a
        stream is connected)."""
        rest, self._buffer = self._buffer, b""
        return rest

    def received(self, data):
        self._buffer += data
        line, newline, rest = self._buffer.partition(b"\n")
        if len(line) + 1 > MAX_LINE:
            raise ProxyError(f"{self.proxy} sent a reply line longer than {MAX_LINE} bytes")
        if not newline:
            return
        self._buffer = rest
        topic, fields = parse_reply(line)
        if topic != self._topic:
            raise ProxyError(f"{self.proxy} answered {self._what} with "
                             f"{line[:80].decode('ascii', 'replace')!r}")
        self._handler(fields)
        if self.result is not None and self.inner is None and self._buffer:
            raise ProxyError(f"{self.proxy} sent more than one reply line")

    def _hello(self, fields):
        if fields.get(b"RESULT") != b"OK":
            raise self.refused(fields)
        self.hello_done()


class SessionNegotiation(SamNegotiation):
    """Creates the session; the connection then holds it.  Its end is
    told to ``session``."""

    def __init__(self, session, session_id):
        super().__init__(session.clock, session.timeout)
        self.session = session
        self.session_id = session_id

    def hello_done(self):
        self.ask(b"SESSION CREATE STYLE=STREAM ID=%s DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
                 b"i2cp.leaseSetEncType=4,0 inbound.quantity=1 outbound.quantity=1\n"
                 % self.session_id.encode("ascii"),
                 b"SESSION STATUS", self._created)

    def _created(self, fields):
        if fields.get(b"RESULT") != b"OK":
            raise self.refused(fields)
        self.settle(self.session_id)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.session._lost(self)


class StreamNegotiation(SamNegotiation):
    """One dial: the destination of ``name``, then STREAM CONNECT in the
    session ``session_id``, then the tunnel to ``factory``'s protocol."""

    def __init__(self, session, session_id, name, factory, timeout):
        super().__init__(session.clock, timeout)
        self.session = session
        self.session_id = session_id
        self.name = name
        self.peer_factory = factory
        self.peer = HostnameAddress(name.encode("ascii"), SAM31_PORT)

    def hello_done(self):
        self.ask(b"NAMING LOOKUP NAME=%s\n" % self.peer.hostname, b"NAMING REPLY", self._found)

    def _found(self, fields):
        destination = fields.get(b"VALUE", b"")
        if fields.get(b"RESULT") != b"OK":
            raise self.refused(fields)
        if not _DESTINATION.match(destination):
            raise ProxyError(f"{self.proxy} gave no valid destination for {self.name}")
        self.ask(b"STREAM CONNECT ID=%s DESTINATION=%s SILENT=false\n"
                 % (self.session_id.encode("ascii"), destination),
                 b"STREAM STATUS", self._connected)

    def late(self):
        if self._topic == b"STREAM STATUS":
            return ConnectTimeout(f"no STREAM STATUS for {self.name} in {self.timeout} s")
        return super().late()

    def _connected(self, fields):
        result = fields.get(b"RESULT")
        if result == b"OK":
            self.open(self.peer_factory, self.peer, self.take_buffer())
            return
        if result == b"CANT_REACH_PEER":
            raise I2PUnreachable(f"{self.proxy} cannot reach {self.name}")
        if result == b"TIMEOUT":
            raise ConnectTimeout(f"{self.proxy} timed out reaching {self.name}")
        if result == b"INVALID_ID":
            self.session.drop(self.session_id)
        raise self.refused(fields)


class SamSession:
    """
    One transient SAM session, created on first use through
    ``bridge_endpoint`` (an IStreamClientEndpoint to the bridge) and held
    on its own connection; ``clock`` (default: the reactor) times each
    reply, ``timeout`` seconds; ``random`` (default: the system's) draws
    the session's ID.

    ``id`` is the session's ID while it exists, else None.
    """

    log = logger()

    def __init__(self, reactor, bridge_endpoint, *, clock=None, random=None,
                 timeout=REPLY_TIMEOUT):
        self.reactor = reactor
        self.bridge_endpoint = bridge_endpoint
        self.clock = clock if clock is not None else reactor
        self.random = random if random is not None else SystemRandom()
        self.timeout = timeout
        self.id = None
        self._connection = None
        self._creating = None

    def __repr__(self):
        return f"<SamSession {self.id or 'none'}>"

    def ready(self):
        """
        A Deferred of the session's ID: at once when the session exists,
        else when the session being created (or created now) is.  A
        creation that fails errbacks every waiter with its ProxyError or
        ProxyUnreachable; the next call tries again.
        """
        if self._creating is None:
            if self.id is not None:
                return succeed(self.id)
            self._create()
        return self._creating.when()

    def drop(self, session_id):
        """End the session ``session_id`` if it is still the one held (the
        bridge said it no longer knows it): the next dial creates another."""
        if session_id == self.id:
            self.log.info("the SAM bridge no longer knows session {id}: a new one is made "
                          "for the next dial", id=session_id)
            self.close()

    def close(self):
        """Close the session's connection (the bridge then forgets it)."""
        connection, self._connection, self.id = self._connection, None, None
        if connection is not None and connection.transport is not None:
            connection.transport.loseConnection()

    def _create(self):
        session_id = "%010x" % self.random.getrandbits(40)
        self._creating = OneShot()
        self._connection = SessionNegotiation(self, session_id)
        creation = negotiate(self.bridge_endpoint, self._connection, None)
        creation.addBoth(self._created)

    def _created(self, result):
        creating, self._creating = self._creating, None
        if isinstance(result, str):
            self.id = result
        else:
            self._connection = None
        creating.fire(result)

    def _lost(self, connection):
        if connection is self._connection and self.id is not None:
            self.log.info("the SAM session {id} ended with its connection: a new one is made "
                          "for the next dial", id=self.id)
            self._connection = self.id = None


@implementer(IStreamClientEndpoint)
class SamClientEndpoint:
    """
    Connect to the I2P peer ``b32_name`` (``<52 base32>.b32.i2p``) in
    ``session`` (a SamSession, whose bridge and clock it uses), each reply
    awaited ``timeout`` seconds.  ``connect(factory)`` fires with the
    factory's protocol, built for ``HostnameAddress(b"<name>.b32.i2p", 0)``,
    or fails with a bitpeer ConnectFailed (the table in the module's
    docstring); a port other than 0 fails at once, as Core refuses it.
    """

    def __init__(self, session, b32_name, port=SAM31_PORT, *, timeout=REPLY_TIMEOUT):
        if NetworkAddress.from_host(b32_name, port).network != Network.I2P:
            raise ValueError(f"{b32_name!r} is not a .b32.i2p name")
        self.session = session
        self.name = b32_name
        self.port = port
        self.timeout = timeout

    def connect(self, factory):
        if self.port != SAM31_PORT:
            return fail(ConnectFailed(
                f"{self.name}:{self.port}: I2P peers are dialled on port 0 only "
                "(SAM 3.1 has no ports; Core refuses any other)"))

        def connect(session_id):
            negotiation = StreamNegotiation(self.session, session_id, self.name, factory,
                                            self.timeout)
            return negotiate(self.session.bridge_endpoint, negotiation, negotiation.peer)

        # Cancelling while the session is made cancels this dial's wait;
        # once the dial's own negotiation runs, Deferred.cancel reaches it.
        return self.session.ready().addCallback(connect)


class SamDialler(EndpointDialler):
    """
    The dialler (the contract is bitpeer.net's) of I2P addresses through
    the SAM bridge at ``bridge`` (an IP address and a port), in one
    transient session (``session``, made on the first dial).  Each reply of
    a dial may take ``timeout`` seconds; the bridge itself must answer
    within PROXY_CONNECT_TIMEOUT.  ``random`` draws the session's ID.
    """

    def __init__(self, reactor, factory, timeout, failed, clock=None, *, bridge, random=None):
        super().__init__(reactor, factory, timeout, failed, clock, endpoint=self._endpoint)
        host, port = bridge
        self.bridge = NetworkAddress.from_host(host, port)
        self.session = SamSession(reactor, tcp_endpoint(reactor, self.bridge,
                                                        PROXY_CONNECT_TIMEOUT),
                                  clock=self.clock, random=random)

    def __repr__(self):
        return f"<SamDialler via {self.bridge}>"

    def _endpoint(self, address):
        if address.network != Network.I2P:
            raise ValueError(f"{address}: {address.network_name} addresses are not dialled "
                             "through SAM")
        return SamClientEndpoint(self.session, address.host_text, address.port,
                                 timeout=self.timeout)
