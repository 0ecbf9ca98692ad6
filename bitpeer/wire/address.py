"""
Network addresses in every form the protocol uses.

One type, NetworkAddress, covers the BIP155 networks: IPv4, IPv6, Tor v3, I2P
and CJDNS.  It knows the v1 form (16 bytes, IPv4 mapped into IPv6, big-endian
port), the v2 form (network id, CompactSize length, raw bytes), and the text
forms (dotted IPv4, RFC 5952 IPv6, 56-character ``.onion`` with its checksum,
``.b32.i2p``).

A crawl decodes millions of these, so NetworkAddress and AddrEntry are tuple
subclasses: construction and hashing run at C speed, they are immutable, and
they work as set members and dict keys.  Their public constructors validate;
the decoders here build them from bytes they have already checked.
"""

import base64
import enum
import hashlib
import socket

from .encoding import UINT32_MAX, UINT64_MAX, compact_size
from .errors import ProtocolError

#: BIP155 / Core MAX_ADDRV2_SIZE: a longer address loses the whole message.
MAX_ADDRV2_SIZE = 512


class Network(enum.IntEnum):
    """BIP155 network ids."""

    IPV4 = 1
    IPV6 = 2
    TORV2 = 3
    TORV3 = 4
    I2P = 5
    CJDNS = 6
    YGGDRASIL = 7


#: The networks Core decodes, with the only length it accepts for each.  Tor
#: v2 (retired by BIP155 v0.2.0) and Yggdrasil are unknown to Core: it skips
#: them without error, and so do the decoders here.
ADDRESS_LENGTHS = {
    Network.IPV4: 4,
    Network.IPV6: 16,
    Network.TORV3: 32,
    Network.I2P: 32,
    Network.CJDNS: 16,
}

_NETWORK_BY_ID = {n.value: n for n in Network}

IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
#: OnionCat Tor v2 in IPv6: Core decodes it as the invalid address.
TORV2_IN_IPV6_PREFIX = bytes.fromhex("fd87d87eeb43")
#: Core's internal pseudo-addresses for DNS seed names.
INTERNAL_IN_IPV6_PREFIX = bytes.fromhex("fd6b88c08724")

_TORV3_VERSION = b"\x03"


def _torv3_checksum(pubkey):
    return hashlib.sha3_256(b".onion checksum" + pubkey + _TORV3_VERSION).digest()[:2]


def _ipv4_in(host, first, second_lo=0, second_hi=255):
    return host[0] == first and second_lo <= host[1] <= second_hi


class NetworkAddress(tuple):
    """
    A peer's address: network id, raw address bytes and port.

    ``network`` is a Network member for the ids Bitcoin knows, a plain int for
    ids from the future (kept so a message decodes and re-encodes unchanged;
    such addresses are never valid).
    """

    __slots__ = ()

    def __new__(cls, network, host, port):
        if not isinstance(network, int) or not 0 <= network <= 255:
            raise ProtocolError(f"network id {network!r} is not 0..255", field="network")
        if not isinstance(host, bytes):
            raise ProtocolError("address must be bytes", field="address")
        network = _NETWORK_BY_ID.get(network, network)
        expected = ADDRESS_LENGTHS.get(network)
        if expected is not None and len(host) != expected:
            raise ProtocolError(
                f"{network.name} address has {len(host)} bytes, needs {expected}",
                field="address",
            )
        if len(host) > MAX_ADDRV2_SIZE:
            raise ProtocolError(
                f"address of {len(host)} bytes exceeds {MAX_ADDRV2_SIZE}",
                field="address",
            )
        if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ProtocolError(f"port {port!r} is not 0..65535", field="port")
        return tuple.__new__(cls, (network, host, port))

    network = property(lambda self: self[0], doc="The BIP155 network id.")
    host = property(lambda self: self[1], doc="The raw address bytes.")
    port = property(lambda self: self[2], doc="The TCP port.")

    def __getnewargs__(self):
        return tuple(self)

    # -- construction from text and the v1 form --------------------------

    @classmethod
    def from_v1(cls, ip16, port):
        """
        Decode the 16-byte v1 form: IPv4-mapped becomes IPv4, everything else
        stays IPv6 (Tor v2 OnionCat and internal prefixes decode as IPv6 and
        are never valid, which is how Core ignores them).
        """
        if ip16[:12] == IPV4_MAPPED_PREFIX:
            return tuple.__new__(cls, (Network.IPV4, ip16[12:], port))
        return tuple.__new__(cls, (Network.IPV6, ip16, port))

    @classmethod
    def from_host(cls, text, port, *, cjdns=False):
        """
        Parse a host in text form: dotted IPv4, IPv6 (without brackets),
        ``<56 base32>.onion`` (Tor v3, checksum verified) or
        ``<52 base32>.b32.i2p``.  With ``cjdns``, an IPv6 address in
        fc00::/8 is a CJDNS address, as in Core's seed lists.
        """
        lowered = text.lower()
        if lowered.endswith(".onion"):
            return cls(Network.TORV3, _decode_onion(text), port)
        if lowered.endswith(".b32.i2p"):
            return cls(Network.I2P, _decode_i2p(text), port)
        # inet_pton raises ValueError, not OSError, for text with a NUL.
        try:
            raw = socket.inet_pton(socket.AF_INET, text)
        except (OSError, ValueError):
            pass
        else:
            return cls(Network.IPV4, raw, port)
        try:
            raw = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError):
            raise ProtocolError(
                f"{text!r} is not an IPv4, IPv6, .onion or .b32.i2p address",
                field="host",
            ) from None
        if raw[:12] == IPV4_MAPPED_PREFIX:
            return cls(Network.IPV4, raw[12:], port)
        if cjdns and raw[0] == 0xFC:
            return cls(Network.CJDNS, raw, port)
        return cls(Network.IPV6, raw, port)

    @classmethod
    def parse(cls, text, default_port=None, *, cjdns=False):
        """
        Parse ``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT``.  A bare IPv6 address
        is accepted without brackets when it has no port.  Without a port,
        ``default_port`` is used; with neither, ProtocolError.

        Refused, each with a ProtocolError saying why: an empty host; a port
        that is not a number or is above 65535; and an IPv6 address without
        brackets whose last group could be a port (``::1:8333`` is the
        address ``::0.1.131.51`` to inet_pton, but almost certainly meant
        ``[::1]:8333``): write ``[::1]:8333`` for a port, ``[::1:8333]`` for
        that address.  Port 0 is a valid field value (I2P addresses all
        carry it); what is to be dialled refuses it elsewhere
        (bitpeer.networks.parse_seed).
        """
        host, port = split_host_port(text)
        if port is None:
            if default_port is None:
                raise ProtocolError(f"{text.strip()!r} has no port", field="port")
            port = default_port
        return cls.from_host(host, port, cjdns=cjdns)

    # -- text ------------------------------------------------------------

    @property
    def host_text(self):
        """The host as people write it (no port, no brackets)."""
        network, host = self[0], self[1]
        if network == Network.IPV4:
            return socket.inet_ntop(socket.AF_INET, host)
        if network in (Network.IPV6, Network.CJDNS):
            return socket.inet_ntop(socket.AF_INET6, host)
        if network == Network.TORV3:
            raw = host + _torv3_checksum(host) + _TORV3_VERSION
            return base64.b32encode(raw).decode("ascii").lower() + ".onion"
        if network == Network.I2P:
            return base64.b32encode(host).decode("ascii").rstrip("=").lower() + ".b32.i2p"
        return f"unknown-{int(network)}:{host.hex()}"

    @property
    def network_name(self):
        """``ipv4``, ``ipv6``, ``onion``, ``i2p``, ``cjdns`` or ``unknown-N``."""
        return _NETWORK_NAMES.get(self[0]) or f"unknown-{int(self[0])}"

    def __str__(self):
        if self[0] in (Network.IPV6, Network.CJDNS):
            return f"[{self.host_text}]:{self[2]}"
        return f"{self.host_text}:{self[2]}"

    def __repr__(self):
        return f"NetworkAddress({self.network_name} {self})"

    # -- wire forms ------------------------------------------------------

    @property
    def is_v1_compatible(self):
        """True when the address fits the 16-byte v1 form (IPv4 or IPv6)."""
        return self[0] in (Network.IPV4, Network.IPV6)

    def v1_bytes(self):
        """The 16-byte v1 form; ProtocolError for networks v1 cannot carry."""
        if self[0] == Network.IPV4:
            return IPV4_MAPPED_PREFIX + self[1]
        if self[0] == Network.IPV6:
            return self[1]
        raise ProtocolError(
            f"{self.network_name} address has no v1 (addr) form; use addrv2",
            field="address",
        )

    def v2_bytes(self):
        """The BIP155 form without time, services or port."""
        return bytes((self[0],)) + compact_size(len(self[1])) + self[1]

    # -- classification (Core's netaddress.cpp) ---------------------------

    @property
    def is_known(self):
        """True for the networks Core understands (not Tor v2 or future ids)."""
        return self[0] in ADDRESS_LENGTHS

    def is_valid(self):
        """
        Core's ``IsValid``: could name a real host.  False for unknown
        networks, 0.0.0.0, 255.255.255.255, ``::``, IPv6 forms that hide
        another network (IPv4-mapped, Tor v2 OnionCat, internal), the IPv6
        documentation ranges, and CJDNS outside fc00::/8.
        """
        network, host = self[0], self[1]
        if network == Network.IPV4:
            return host not in (b"\0\0\0\0", b"\xff\xff\xff\xff")
        if network == Network.IPV6:
            return not (
                host == bytes(16)
                or host[:12] == IPV4_MAPPED_PREFIX
                or host[:6] in (TORV2_IN_IPV6_PREFIX, INTERNAL_IN_IPV6_PREFIX)
                or self.is_documentation()
            )
        if network == Network.CJDNS:
            return host[0] == 0xFC
        return network in ADDRESS_LENGTHS

    def is_loopback(self):
        """127.0.0.0/8, 0.0.0.0/8 (Core counts both as local) or ::1."""
        if self[0] == Network.IPV4:
            return self[1][0] in (127, 0)
        return self[0] == Network.IPV6 and self[1] == bytes(15) + b"\x01"

    def is_private(self):
        """
        Private and shared ranges: RFC 1918, RFC 2544 benchmarking, RFC 6598
        carrier-grade NAT, RFC 4193 unique-local IPv6, RFC 4843/7343 ORCHID.
        """
        network, host = self[0], self[1]
        if network == Network.IPV4:
            return (
                host[0] == 10
                or _ipv4_in(host, 192, 168, 168)
                or _ipv4_in(host, 172, 16, 31)
                or _ipv4_in(host, 198, 18, 19)
                or _ipv4_in(host, 100, 64, 127)
            )
        if network == Network.IPV6:
            return (host[0] & 0xFE) == 0xFC or (
                host[:3] == b"\x20\x01\x00" and (host[3] & 0xF0) in (0x10, 0x20)
            )
        return False

    def is_link_local(self):
        """RFC 3927 169.254/16 and RFC 4862 fe80::/64."""
        if self[0] == Network.IPV4:
            return self[1][:2] == b"\xa9\xfe"
        return self[0] == Network.IPV6 and self[1][:8] == b"\xfe\x80" + bytes(6)

    def is_documentation(self):
        """RFC 5737 (IPv4), RFC 3849 2001:db8::/32 and RFC 9637 3fff::/20."""
        network, host = self[0], self[1]
        if network == Network.IPV4:
            return host[:3] in (b"\xc0\x00\x02", b"\xc6\x33\x64", b"\xcb\x00\x71")
        if network == Network.IPV6:
            return host[:4] == b"\x20\x01\x0d\xb8" or (
                host[0] == 0x3F and host[1] == 0xFF and host[2] & 0xF0 == 0
            )
        return False

    def is_multicast(self):
        """224.0.0.0/4 and ff00::/8: never a peer."""
        if self[0] == Network.IPV4:
            return self[1][0] & 0xF0 == 0xE0
        return self[0] == Network.IPV6 and self[1][0] == 0xFF

    def is_reserved(self):
        """240.0.0.0/4 (which includes the broadcast address)."""
        return self[0] == Network.IPV4 and self[1][0] >= 240

    def is_routable(self):
        """
        Core's ``IsRoutable`` (valid, and not private, link-local,
        documentation or local), made stricter by also excluding multicast and
        reserved space, which no TCP peer can live at.  Tor v3, I2P and
        CJDNS addresses are routable.
        """
        return self.is_valid() and not (
            self.is_private()
            or self.is_link_local()
            or self.is_documentation()
            or self.is_loopback()
            or self.is_multicast()
            or self.is_reserved()
        )


_NETWORK_NAMES = {
    Network.IPV4: "ipv4",
    Network.IPV6: "ipv6",
    Network.TORV2: "torv2",
    Network.TORV3: "onion",
    Network.I2P: "i2p",
    Network.CJDNS: "cjdns",
    Network.YGGDRASIL: "yggdrasil",
}


def _decode_onion(text):
    label = text[: -len(".onion")]
    if len(label) != 56:
        raise ProtocolError(
            f"{text!r}: a Tor v3 name has 56 base32 characters (Tor v2 is retired)",
            field="host",
        )
    try:
        raw = base64.b32decode(label.upper())
    except ValueError:
        raise ProtocolError(f"{text!r} is not base32", field="host") from None
    pubkey, check, version = raw[:32], raw[32:34], raw[34:]
    if version != _TORV3_VERSION:
        raise ProtocolError(f"{text!r}: version byte is not 3", field="host")
    if check != _torv3_checksum(pubkey):
        raise ProtocolError(f"{text!r}: bad Tor v3 checksum", field="host")
    return pubkey


def _decode_i2p(text):
    label = text[: -len(".b32.i2p")]
    if len(label) != 52:
        raise ProtocolError(
            f"{text!r}: an I2P name has 52 base32 characters", field="host"
        )
    try:
        raw = base64.b32decode(label.upper() + "====")
    except ValueError:
        raise ProtocolError(f"{text!r} is not base32", field="host") from None
    # 52 characters carry 260 bits; Core (ConvertBits without padding)
    # rejects a name whose 4 spare bits are not zero.
    if base64.b32encode(raw).decode("ascii").rstrip("=") != label.upper():
        raise ProtocolError(f"{text!r} is not canonical base32", field="host")
    return raw



def split_host_port(text):
    """
    ``(host, port)`` from ``HOST``, ``HOST:PORT``, ``[IPV6]`` or
    ``[IPV6]:PORT`` text: the host without brackets, the port an int or None
    when absent.  Only the syntax is checked here (what the host names is
    the caller's business):

    * the host is not empty;
    * a port is decimal digits within 0..65535 (0 is left to the caller:
      I2P addresses carry it, nothing else can be dialled on it);
    * an IPv6 address with a port is bracketed, and one without brackets
      whose last group is all digits while the rest is an IPv6 address by
      itself (``::1:8333``, ``2001:db8::1:80``) is refused as ambiguous
      rather than read as the address Core's ``SplitHostPort`` makes of it.

    @raise ProtocolError: naming the text and the rule.
    """
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ProtocolError(f"{text!r}: missing ']'", field="host")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ProtocolError(f"{text!r}: junk after ']'", field="host")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
        if text.count(":") > 1:
            head, _, tail = text.rpartition(":")
            if tail.isascii() and tail.isdigit() and _is_ipv6_text(head):
                raise ProtocolError(
                    f"{text!r} is ambiguous: write [{head}]:{tail} for address {head} "
                    f"and port {tail}, or [{text}] for the address {text}",
                    field="host",
                )
    if not host.strip():
        raise ProtocolError(f"{text!r}: the host is empty", field="host")
    if port is None:
        return host, None
    if not (port.isascii() and port.isdigit()):
        raise ProtocolError(f"{text!r}: port {port!r} is not a number", field="port")
    number = int(port)
    if number > 0xFFFF:
        raise ProtocolError(f"{text!r}: port {number} is above 65535", field="port")
    return host, number


def _is_ipv6_text(text):
    try:
        socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return False
    return True


class AddrEntry(tuple):
    """
    One entry of an addr or addrv2 message: the time the address was last
    seen (uint32 Unix seconds), its service bits, and the address.
    """

    __slots__ = ()

    def __new__(cls, time, services, address):
        if not isinstance(time, int) or not 0 <= time <= UINT32_MAX:
            raise ProtocolError(f"time {time!r} is not a uint32", field="time")
        if not isinstance(services, int) or not 0 <= services <= UINT64_MAX:
            raise ProtocolError(f"services {services!r} is not a uint64", field="services")
        if not isinstance(address, NetworkAddress):
            raise ProtocolError("address must be a NetworkAddress", field="address")
        return tuple.__new__(cls, (time, services, address))

    time = property(lambda self: self[0], doc="Last seen, uint32 Unix seconds.")
    services = property(lambda self: self[1], doc="Service bits.")
    address = property(lambda self: self[2], doc="The NetworkAddress.")

    def __getnewargs__(self):
        return tuple(self)

    def __repr__(self):
        return f"AddrEntry(time={self[0]}, services={self[1]:#x}, {self[2]!r})"
