"""
A strict SOCKS5 client (RFC 1928, with RFC 1929 username/password) for
dialling onion services through Tor, and clearnet peers through a proxy.

Why not txtorcon: its ``txtorcon.socks.TorSocksEndpoint`` takes an existing
SOCKS port, but txtorcon 26.6.0 (the latest release, read for this module)
still offers only the no-authentication method (``_send_version`` writes
``05 01 00``, ``_send_request`` asserts method 0) and
``TorClientEndpoint.connect`` raises RuntimeError when given a SOCKS user
name or password.  Without RFC 1929 there is no stream isolation (Core's
``-proxyrandomize``: fresh credentials per connection put each dial on its
own circuit, which Tor's ``IsolateSOCKSAuth`` does by default), and its
error classes stop at 0x08, so Tor's extended codes come back as a generic
error.  The protocol is small: Bitcoin Core's ``Socks5()`` is the model.

The exchange, byte for byte (every reply has a fixed or length-prefixed
size; a reply of the wrong version, size or shape is ProxyError):

- greeting ``05 01 00`` (no authentication), or ``05 02 00 02`` (no
  authentication or username/password) when credentials are given; the
  reply is exactly ``05 METHOD``, METHOD one that was offered.
- METHOD 02: ``01 ULEN USER PLEN PASS``; the reply is exactly ``01 00``
  (any other status: authentication refused, ProxyError).
- ``05 01 00 ATYP ADDR PORT``: ATYP 03 with a length-prefixed name for
  anything that is not an IP literal (an onion name is never resolved
  here), 01 for IPv4, 04 for IPv6; the reply is ``05 REP 00 ATYP BND.ADDR
  BND.PORT`` with BND.ADDR 4, 16 or 1+N bytes by ATYP.  Bytes after it are
  the peer's.

Each reply is awaited at most ``timeout`` seconds (Core waits 20 s for each
step, "ample time for negotiation for very slow proxies such as Tor"): no
greeting or authentication reply in time is ProxyError, no CONNECT reply in
time is the peer's ConnectTimeout (Core: "This is very common for Tor").

The reply codes, and the bitpeer error each becomes (Tor sends 0xF0-0xF7
only on a SocksPort with ``ExtendedErrors``, Tor proposal 304; without it,
Tor folds an onion service's failures into 0x01 or 0x04):

====  ==========================================  ===========================
REP   meaning (RFC 1928; Tor's socks extensions)  error
====  ==========================================  ===========================
0x01  general SOCKS server failure                ProxyError
0x02  connection not allowed by ruleset           ProxyError
0x03  network unreachable                         OnionUnreachable for an
                                                  onion, else ConnectFailed
0x04  host unreachable                            OnionUnreachable for an
                                                  onion, else ConnectFailed
0x05  connection refused                          ConnectionRefused
0x06  TTL expired                                 ConnectTimeout
0x07  command not supported                       ProxyError
0x08  address type not supported                  ProxyError
0xF0  onion service descriptor can not be found   OnionUnreachable
      on the hash ring
0xF1  onion service descriptor is invalid (does   OnionUnreachable
      not parse, or its signature fails)
0xF2  introduction failed: the descriptor was     OnionUnreachable
      found but the service is no longer at its
      introduction points
0xF3  rendezvous failed: the connection could     OnionUnreachable
      not be finalized
0xF4  missing client authorization: the           OnionUnreachable
      descriptor cannot be decrypted without it
0xF5  wrong client authorization (revoked)        OnionUnreachable
0xF6  invalid onion address (checksum, key or     OnionUnreachable
      encoding)
0xF7  introduction timed out                      ConnectTimeout
else  unknown                                     ProxyError
====  ==========================================  ===========================
"""

import socket
from random import SystemRandom

import attr
from twisted.internet.address import HostnameAddress, IPv4Address, IPv6Address
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from ..errors import (ConnectFailed, ConnectionRefused, ConnectTimeout, OnionUnreachable,
                      ProxyError)
from ..wire.address import Network, NetworkAddress
from .endpoints import EndpointDialler, tcp_endpoint
from .tunnel import Negotiation, negotiate

#: Seconds each SOCKS reply may take (Core's g_socks5_recv_timeout).
REPLY_TIMEOUT = 20

#: Seconds the TCP connect to the proxy may take (Core's
#: DEFAULT_CONNECT_TIMEOUT): a proxy is near, and one that does not answer
#: should be known as down quickly.
PROXY_CONNECT_TIMEOUT = 5

VERSION = 0x05
NO_AUTH, USER_PASS, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
AUTH_VERSION = 0x01
CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04

#: The size of a CONNECT reply by the ATYP of its fixed-size BND.ADDR.
BOUND_SIZES = {ATYP_IPV4: 4 + 4 + 2, ATYP_IPV6: 4 + 16 + 2}

#: REP -> (error class, words).  0x03 and 0x04 are the onion's fault for an
#: onion target (``UNREACHABLE_CODES``).
REPLIES = {
    0x01: (ProxyError, "general SOCKS server failure"),
    0x02: (ProxyError, "connection not allowed by ruleset"),
    0x03: (ConnectFailed, "network unreachable"),
    0x04: (ConnectFailed, "host unreachable"),
    0x05: (ConnectionRefused, "connection refused"),
    0x06: (ConnectTimeout, "TTL expired"),
    0x07: (ProxyError, "command not supported"),
    0x08: (ProxyError, "address type not supported"),
    0xF0: (OnionUnreachable, "onion service descriptor can not be found"),
    0xF1: (OnionUnreachable, "onion service descriptor is invalid"),
    0xF2: (OnionUnreachable, "onion service introduction failed"),
    0xF3: (OnionUnreachable, "onion service rendezvous failed"),
    0xF4: (OnionUnreachable, "onion service missing client authorization"),
    0xF5: (OnionUnreachable, "onion service wrong client authorization"),
    0xF6: (OnionUnreachable, "onion service invalid address"),
    0xF7: (ConnectTimeout, "onion service introduction timed out"),
}
UNREACHABLE_CODES = (0x03, 0x04)


def reply_error(code, onion):
    """The bitpeer error of a failed CONNECT's REP ``code`` (the table
    above); ``onion`` when the target was an onion name."""
    kind, words = REPLIES.get(code, (ProxyError, "unknown reply"))
    if onion and code in UNREACHABLE_CODES:
        kind = OnionUnreachable
    return kind(f"SOCKS5 reply 0x{code:02x}: {words}")


def _credential(instance, attribute, value):
    """RFC 1929's ULEN and PLEN: one byte, and at least 1."""
    if not isinstance(value, bytes) or not 1 <= len(value) <= 255:
        raise ValueError(f"a SOCKS5 {attribute.name} is 1 to 255 bytes, not {value!r}")


@attr.s(frozen=True, slots=True, repr=False)
class Credentials:
    """An RFC 1929 user name and password (1 to 255 bytes each)."""

    username = attr.ib(validator=_credential)
    password = attr.ib(validator=_credential)

    def __repr__(self):
        return f"<Credentials {self.username!r}>"


def random_credentials(random):
    """
    Fresh credentials for one connection, drawn from ``random`` (a
    random.Random): Tor gives each distinct user name and password a circuit
    of its own (``IsolateSOCKSAuth``), as Core's ``-proxyrandomize`` does.
    User name and password are the same 16 hex characters, as in Core.
    """
    word = b"%016x" % random.getrandbits(64)
    return Credentials(word, word)


def connect_request(host, port):
    """The CONNECT request for ``host``:``port`` and the peer's Twisted
    address: an IP literal is sent as one (IPv4Address, IPv6Address),
    anything else as a name (HostnameAddress), never resolved here."""
    for family, atyp, address in ((socket.AF_INET, ATYP_IPV4, IPv4Address),
                                  (socket.AF_INET6, ATYP_IPV6, IPv6Address)):
        try:
            raw = socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        peer = address("TCP", host, port)
        break
    else:
        name = host.encode("ascii")
        if not 1 <= len(name) <= 255:
            raise ValueError(f"a SOCKS5 host name has 1 to 255 bytes: {host!r}")
        atyp, raw, peer = ATYP_DOMAIN, bytes([len(name)]) + name, HostnameAddress(name, port)
    return bytes([VERSION, CONNECT, 0, atyp]) + raw + port.to_bytes(2, "big"), peer


class Socks5Negotiation(Negotiation):
    """The client's side of one SOCKS5 exchange, then the tunnel."""

    proxy = "the SOCKS5 proxy"

    def __init__(self, clock, timeout, factory, request, peer, credentials):
        super().__init__(clock, timeout)
        self.peer_factory = factory
        self.peer = peer
        self.credentials = credentials
        self.onion = (isinstance(peer, HostnameAddress)
                      and peer.hostname.lower().endswith(b".onion"))
        self._connect_request = request
        self._buffer = b""
        self._step = self._what = None

    def begin(self):
        methods = bytes([NO_AUTH]) if self.credentials is None else bytes([NO_AUTH, USER_PASS])
        self._ask(self._greeted, bytes([VERSION, len(methods)]) + methods, "greeting")

    def dropped(self):
        return ProxyError(f"{self.proxy} closed the connection during the {self._what}")

    def received(self, data):
        self._buffer += data
        self._step()

    def _ask(self, step, data, what):
        self._step, self._what = step, what
        self.request(data, self._late)

    def _late(self):
        if self._step == self._connected:
            return ConnectTimeout(f"no SOCKS5 CONNECT reply in {self.timeout} s")
        return ProxyError(f"{self.proxy} did not answer the {self._what} in {self.timeout} s")

    def _short_reply(self):
        """The 2-byte reply of the greeting or the authentication, or None
        while it is incomplete; anything longer is a fault (the proxy may
        send nothing more before our next request)."""
        if len(self._buffer) < 2:
            return None
        if len(self._buffer) > 2:
            raise ProxyError(f"{self.proxy} sent an oversized {self._what} reply: "
                             f"{self._buffer[:16].hex()}")
        reply, self._buffer = self._buffer, b""
        return reply

    def _greeted(self):
        reply = self._short_reply()
        if reply is None:
            return
        version, method = reply
        if version != VERSION:
            raise ProxyError(f"{self.proxy} answered with SOCKS version {version}")
        if method == NO_ACCEPTABLE:
            raise ProxyError(f"{self.proxy} accepts none of the authentication methods offered")
        if method == NO_AUTH:
            self._ask(self._connected, self._connect_request, "CONNECT")
        elif method == USER_PASS and self.credentials is not None:
            user, password = self.credentials.username, self.credentials.password
            self._ask(self._authenticated,
                      bytes([AUTH_VERSION, len(user)]) + user + bytes([len(password)]) + password,
                      "authentication")
        else:
            raise ProxyError(f"{self.proxy} chose method 0x{method:02x}, not offered")

    def _authenticated(self):
        reply = self._short_reply()
        if reply is None:
            return
        version, status = reply
        if version != AUTH_VERSION:
            raise ProxyError(f"{self.proxy} answered the authentication with version {version}")
        if status != 0:
            raise ProxyError(f"{self.proxy} refused the user name and password "
                             f"(status 0x{status:02x})")
        self._ask(self._connected, self._connect_request, "CONNECT")

    def _connected(self):
        buffer = self._buffer
        if len(buffer) < 4:
            return
        version, code, reserved, atyp = buffer[:4]
        if version != VERSION:
            raise ProxyError(f"{self.proxy} answered the CONNECT with SOCKS version {version}")
        if code != 0:
            raise reply_error(code, self.onion)
        if reserved != 0:
            raise ProxyError(f"{self.proxy} set the reserved byte of its reply: "
                             f"0x{reserved:02x}")
        if atyp == ATYP_DOMAIN:
            if len(buffer) < 5:
                return
            size = 4 + 1 + buffer[4] + 2
        elif atyp in BOUND_SIZES:
            size = BOUND_SIZES[atyp]
        else:
            raise ProxyError(f"{self.proxy} replied with address type 0x{atyp:02x}")
        if len(buffer) >= size:
            self._buffer = b""
            self.open(self.peer_factory, self.peer, buffer[size:])


@implementer(IStreamClientEndpoint)
class Socks5ClientEndpoint:
    """
    Connect to ``host``:``port`` through the SOCKS5 proxy that
    ``proxy_endpoint`` (any IStreamClientEndpoint) reaches, with RFC 1929
    ``credentials`` (a Credentials) when given.  ``reactor`` times the
    replies (``timeout`` seconds each).  ``connect(factory)`` fires with the
    factory's protocol, built for the peer's address (a HostnameAddress for
    a name, IPv4Address or IPv6Address for an IP literal), or fails with a
    bitpeer ConnectFailed (the table in the module's docstring).
    """

    def __init__(self, reactor, proxy_endpoint, host, port, *, credentials=None,
                 timeout=REPLY_TIMEOUT):
        self.reactor = reactor
        self.proxy_endpoint = proxy_endpoint
        self.request, self.peer = connect_request(host, port)
        self.credentials = credentials
        self.timeout = timeout

    def connect(self, factory):
        negotiation = Socks5Negotiation(self.reactor, self.timeout, factory, self.request,
                                        self.peer, self.credentials)
        return negotiate(self.proxy_endpoint, negotiation, self.peer)


class Socks5Dialler(EndpointDialler):
    """
    The dialler (the contract is bitpeer.net's) of onion addresses, and of
    IPv4 and IPv6 addresses for a crawl behind a proxy, through the SOCKS5
    proxy at ``proxy`` (an IP address and a port, never a name to resolve).
    Each CONNECT reply may take ``timeout`` seconds; the proxy itself must
    answer within PROXY_CONNECT_TIMEOUT.  With ``isolate`` (the default),
    every connection has fresh credentials from ``random`` (default: the
    system's), so Tor builds each its own circuit.
    """

    def __init__(self, reactor, factory, timeout, failed, clock=None, *, proxy, isolate=True,
                 random=None):
        super().__init__(reactor, factory, timeout, failed, clock, endpoint=self._endpoint)
        host, port = proxy
        self.proxy = NetworkAddress.from_host(host, port)
        self.isolate = isolate
        self.random = random if random is not None else SystemRandom()
        self._proxy_endpoint = tcp_endpoint(reactor, self.proxy, PROXY_CONNECT_TIMEOUT)

    def __repr__(self):
        return f"<Socks5Dialler via {self.proxy}>"

    def _endpoint(self, address):
        if address.network not in (Network.TORV3, Network.IPV4, Network.IPV6):
            raise ValueError(f"{address}: {address.network_name} addresses are not dialled "
                             "through SOCKS5")
        credentials = random_credentials(self.random) if self.isolate else None
        return Socks5ClientEndpoint(self.clock, self._proxy_endpoint, address.host_text,
                                    address.port, credentials=credentials,
                                    timeout=self.timeout)
