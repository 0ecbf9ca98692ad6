"""
The messages that set up a connection: version and verack, and the feature
announcements a peer sends around them (sendaddrv2, wtxidrelay before verack;
sendheaders, sendcmpct, feefilter after).
"""

import struct
from typing import ClassVar

import attr

from ..address import Network, NetworkAddress
from ..encoding import Reader, port_bytes, var_str
from .base import (
    _U64,
    MAX_SUBVERSION_LENGTH,
    PROTOCOL_VERSION,
    Message,
    _bool,
    _compact_size_length,
    _Empty,
    _fail,
    _int32,
    _int64,
    _text,
    _uint64,
)


@attr.frozen
class VerAck(_Empty):
    """Acknowledges the peer's version."""

    command: ClassVar[str] = "verack"


@attr.frozen
class SendAddrV2(_Empty):
    """BIP155: send me addrv2.  Only between version and verack."""

    command: ClassVar[str] = "sendaddrv2"


@attr.frozen
class WtxidRelay(_Empty):
    """BIP339: announce transactions by wtxid.  Only before verack."""

    command: ClassVar[str] = "wtxidrelay"


@attr.frozen
class SendHeaders(_Empty):
    """BIP130: announce blocks with headers."""

    command: ClassVar[str] = "sendheaders"


#: ``::`` port 0: what Core puts in a version for an address it will not say.
UNSPECIFIED_ADDRESS = NetworkAddress(Network.IPV6, bytes(16), 0)


def _v1_address(instance, attribute, value):
    if not isinstance(value, NetworkAddress) or not value.is_v1_compatible:
        _fail(instance, attribute, "must be an IPv4 or IPv6 NetworkAddress")


_VERSION_HEAD = struct.Struct("<iQqQ16s")
_ADDR_FROM = struct.Struct("<Q16s")


@attr.frozen
class Version(Message):
    """
    The first message on every connection.

    ``addr_recv`` is the address the sender sees the receiver at;
    ``addr_from`` is ignored by Core.  ``relay`` is None when the optional
    BIP37 byte is absent (Core then assumes true).  A version may end after
    ``addr_recv``; the missing fields decode to their defaults, as in Core.
    """

    command: ClassVar[str] = "version"
    #: PROTOCOL.md 2.1: 80 bytes up to the nonce, the user agent at
    #: MAX_SUBVERSION_LENGTH (256) with its 3-byte CompactSize (LIMITED_STRING
    #: throws beyond), start_height and the relay byte: 344.
    max_payload: ClassVar[int] = (
        80 + _compact_size_length(MAX_SUBVERSION_LENGTH) + MAX_SUBVERSION_LENGTH + 4 + 1
    )

    version: int = attr.ib(default=PROTOCOL_VERSION, validator=_int32)
    services: int = attr.ib(default=0, validator=_uint64)
    timestamp: int = attr.ib(default=0, validator=_int64)
    addr_recv: NetworkAddress = attr.ib(default=UNSPECIFIED_ADDRESS, validator=_v1_address)
    addr_recv_services: int = attr.ib(default=0, validator=_uint64)
    addr_from: NetworkAddress = attr.ib(default=UNSPECIFIED_ADDRESS, validator=_v1_address)
    addr_from_services: int = attr.ib(default=0, validator=_uint64)
    nonce: int = attr.ib(default=0, validator=_uint64)
    user_agent: str = attr.ib(default="", validator=_text(MAX_SUBVERSION_LENGTH))
    start_height: int = attr.ib(default=0, validator=_int32)
    relay: bool | None = attr.ib(
        default=False, validator=attr.validators.optional(_bool)
    )

    def encode_payload(self):
        parts = [
            _VERSION_HEAD.pack(
                self.version,
                self.services,
                self.timestamp,
                self.addr_recv_services,
                self.addr_recv.v1_bytes(),
            ),
            port_bytes(self.addr_recv.port),
            _ADDR_FROM.pack(self.addr_from_services, self.addr_from.v1_bytes()),
            port_bytes(self.addr_from.port),
            struct.pack("<Q", self.nonce),
            var_str(self.user_agent),
            struct.pack("<i", self.start_height),
        ]
        if self.relay is not None:
            parts.append(b"\x01" if self.relay else b"\x00")
        return b"".join(parts)

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        fields = {
            "version": r.i32("version"),
            "services": r.u64("services"),
            "timestamp": r.i64("timestamp"),
            "addr_recv_services": r.u64("addr_recv.services"),
            "addr_recv": NetworkAddress.from_v1(
                r.take(16, "addr_recv.ip"), r.port("addr_recv.port")
            ),
            "relay": None,
        }
        if not r.at_end():
            fields["addr_from_services"] = r.u64("addr_from.services")
            fields["addr_from"] = NetworkAddress.from_v1(
                r.take(16, "addr_from.ip"), r.port("addr_from.port")
            )
            fields["nonce"] = r.u64("nonce")
        if not r.at_end():
            fields["user_agent"] = r.var_str("user_agent", MAX_SUBVERSION_LENGTH)
        if not r.at_end():
            fields["start_height"] = r.i32("start_height")
        if not r.at_end():
            fields["relay"] = r.boolean("relay")
        return cls(**fields)


@attr.frozen
class SendCmpct(Message):
    """BIP152: compact block relay (announce flag, version)."""

    command: ClassVar[str] = "sendcmpct"
    #: A bool and a uint64.
    max_payload: ClassVar[int] = 9

    announce: bool = attr.ib(validator=_bool)
    version: int = attr.ib(validator=_uint64)

    def encode_payload(self):
        return (b"\x01" if self.announce else b"\x00") + _U64.pack(self.version)

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        return cls(r.boolean("announce"), r.u64("version"))


@attr.frozen
class FeeFilter(Message):
    """BIP133: do not announce transactions below this fee rate (sat/kvB)."""

    command: ClassVar[str] = "feefilter"
    #: An int64.
    max_payload: ClassVar[int] = 8

    feerate: int = attr.ib(validator=_int64)

    def encode_payload(self):
        return struct.pack("<q", self.feerate)

    @classmethod
    def decode_payload(cls, payload):
        return cls(Reader(payload).i64("feerate"))
