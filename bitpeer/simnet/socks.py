"""
The simnet's SOCKS5 front: a Tor daemon's SocksPort, as far as a crawler
can tell.

It speaks the server side of RFC 1928 with RFC 1929 username/password (any
credentials are accepted: Tor uses them only to isolate streams, and so
prefers that method when offered), and CONNECTs by domain name (ATYP 0x03)
to ``<onion>.onion:port``.  Reaching a live onion takes a circuit-build
delay, then the front replies 0x00 and the node's behaviour talks on the
connection; a dead onion fails after its own delay with 0x04 (host
unreachable), or 0xF0 (descriptor not found) when the port has Tor's
ExtendedErrors.  Both hold one of the front's circuit slots (Tor's
MaxClientCircuitsPending).  Malformed requests close the connection; the
front reaches onions only (IPv4, IPv6 and other names get 0x02, not allowed).
"""

import struct

from ..wire.address import Network
from .front import Front, FrontConnection

SOCKS_VERSION = 5
AUTH_VERSION = 1
NO_AUTH, USER_PASS, NO_METHOD = 0x00, 0x02, 0xFF
CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
SUCCEEDED = 0x00
NOT_ALLOWED = 0x02
HOST_UNREACHABLE = 0x04
COMMAND_NOT_SUPPORTED = 0x07
ADDRESS_TYPE_NOT_SUPPORTED = 0x08
#: Tor's extended error (proposal 304): onion service descriptor can not be found.
ONION_DESCRIPTOR_NOT_FOUND = 0xF0


def reply(code):
    """A CONNECT reply as Tor sends it: BND.ADDR 0.0.0.0:0."""
    return struct.pack(">BBBB4sH", SOCKS_VERSION, code, 0, ATYP_IPV4, bytes(4), 0)


class SocksConnection(FrontConnection):
    """One client of the SOCKS5 front, from greeting to hand-over."""

    def __init__(self, front):
        super().__init__(front)
        self.step = self.greeting

    def negotiate(self):
        while self.ticket is None and not self.closing and self.step():
            pass

    def take(self, count):
        """The next ``count`` bytes, or None while fewer have arrived."""
        if len(self.buffer) < count:
            return None
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def greeting(self):
        if len(self.buffer) < 2:
            return False
        version, methods = self.buffer[0], self.buffer[1]
        if version != SOCKS_VERSION or methods == 0:
            self.close("malformed")
            return False
        if len(self.buffer) < 2 + methods:
            return False
        offered = self.take(2 + methods)[2:]
        if USER_PASS in offered:
            chosen, self.step = USER_PASS, self.authentication
        elif NO_AUTH in offered:
            chosen, self.step = NO_AUTH, self.request
        else:
            self.transport.write(bytes((SOCKS_VERSION, NO_METHOD)))
            self.close("no-method")
            return False
        self.transport.write(bytes((SOCKS_VERSION, chosen)))
        return True

    def authentication(self):
        buffer = self.buffer
        if len(buffer) < 2:
            return False
        if buffer[0] != AUTH_VERSION:
            self.close("malformed")
            return False
        user_end = 2 + buffer[1]
        if len(buffer) < user_end + 1 or len(buffer) < user_end + 1 + buffer[user_end]:
            return False
        message = self.take(user_end + 1 + buffer[user_end])
        self.front.credentials.add(message[1:])
        self.transport.write(bytes((AUTH_VERSION, 0)))
        self.step = self.request
        return True

    def request(self):
        buffer = self.buffer
        if len(buffer) < 5:
            return False
        version, command, reserved, atyp = buffer[:4]
        if version != SOCKS_VERSION or reserved != 0:
            self.close("malformed")
            return False
        length = {ATYP_IPV4: 4, ATYP_IPV6: 16, ATYP_DOMAIN: 1 + buffer[4]}.get(atyp)
        if length is None:
            self.fail(ADDRESS_TYPE_NOT_SUPPORTED, "address-type-not-supported")
            return False
        if len(buffer) < 4 + length + 2:
            return False
        message = self.take(4 + length + 2)
        (port,) = struct.unpack(">H", message[-2:])
        if command != CONNECT:
            self.fail(COMMAND_NOT_SUPPORTED, "command-not-supported")
        elif atyp != ATYP_DOMAIN:
            self.fail(NOT_ALLOWED, "not-onion")
        else:
            self.connect(message[5:-2], port)
        return False

    def connect(self, name, port):
        try:
            host = name.decode("ascii").lower()
        except UnicodeDecodeError:
            self.close("malformed")
            return
        if not host.endswith(".onion"):
            self.fail(NOT_ALLOWED, "not-onion")
            return
        profile = self.simnet.node_at(host)
        live = (profile is not None and profile.address.network == Network.TORV3
                and profile.address.port == port)
        if live:
            self.open_circuit(True, lambda: self.reached(profile))
        else:
            self.open_circuit(False, self.unreachable)

    def reached(self, profile):
        self.transport.write(reply(SUCCEEDED))
        self.hand_over(profile)

    def unreachable(self):
        code = ONION_DESCRIPTOR_NOT_FOUND if self.front.extended_errors else HOST_UNREACHABLE
        self.fail(code, "unreachable")

    def fail(self, code, event):
        """Reply with an error ``code`` and hang up, as Tor does."""
        self.transport.write(reply(code))
        self.close(event)


class SocksFront(Front):
    """
    A SOCKS5 front: ``extended_errors`` as Tor's SocksPort flag.
    ``credentials`` holds every distinct RFC 1929 username/password pair
    (as sent, length-prefixed), so tests can see stream isolation.
    """

    protocol = SocksConnection

    def __init__(self, simnet, random, *, extended_errors=False, **timing):
        super().__init__(simnet, random, **timing)
        self.extended_errors = extended_errors
        self.credentials = set()

    def stats(self):
        return {**super().stats(), "credentials": len(self.credentials)}
