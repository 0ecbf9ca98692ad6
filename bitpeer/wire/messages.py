"""
One frozen attrs class per Bitcoin P2P message, and the registry from message
type to class.

Every class validates its fields against the protocol's limits when it is
built, so an invalid message cannot be constructed, let alone sent.  Decoding
accepts what Bitcoin Core accepts: trailing bytes are ignored, the optional
tail of ``version`` may be missing, and an unknown message type decodes to
UnknownMessage.  Anything else raises a ProtocolError naming the message type,
the field and the rule.
"""

import struct
from typing import ClassVar

import attr

from .address import MAX_ADDRV2_SIZE, AddrEntry, Network, NetworkAddress
from .addrlist import (
    V1_ENTRY_SIZE,
    decode_v1_entries,
    decode_v2_entries,
    encode_v1_entries,
    encode_v2_entries,
)
from .encoding import (
    MAX_SIZE,
    UINT32_MAX,
    UINT64_MAX,
    Reader,
    compact_size,
    port_bytes,
    var_str,
)
from .errors import (
    MalformedMessage,
    Misbehaviour,
    OversizeMessage,
    ProtocolError,
    TooManyEntries,
)

#: node/protocol_version.h
PROTOCOL_VERSION = 70016
MIN_PEER_PROTO_VERSION = 31800
BIP0031_VERSION = 60000
SENDHEADERS_VERSION = 70012
FEEFILTER_VERSION = 70013
SHORT_IDS_BLOCKS_VERSION = 70014
WTXID_RELAY_VERSION = 70016

#: net.h, net_processing.cpp: the limits Core enforces on what it receives.
MAX_SUBVERSION_LENGTH = 256
MAX_ADDR_TO_SEND = 1000
#: Core answers getaddr with at most this share of its address book
#: (net.h), and never more than MAX_ADDR_TO_SEND: see getaddr_answer_size.
MAX_PCT_ADDR_TO_SEND = 23
MAX_INV_SZ = 50000
MAX_HEADERS_RESULTS = 2000
MAX_LOCATOR_SZ = 101
MAX_REJECT_MESSAGE_LENGTH = 111
#: net.h MAX_PROTOCOL_MESSAGE_LENGTH: the largest payload Core takes at all.
MAX_PROTOCOL_MESSAGE_LENGTH = 4 * 1000 * 1000


def getaddr_answer_size(known):
    """How many addresses Core sends in answer to getaddr when it knows
    ``known``: 23% of them, at most 1000 (CConnman::GetAddresses)."""
    return min(MAX_ADDR_TO_SEND, known * MAX_PCT_ADDR_TO_SEND // 100)


def _compact_size_length(n):
    """Bytes of the canonical CompactSize of ``n``."""
    return len(compact_size(n))


#: The largest v2 entry (BIP155, Core's CAddress V2_NETWORK): time, services
#: as a CompactSize of up to 9 bytes (Core reads it without a range check),
#: network id, address length (CompactSize of MAX_ADDRV2_SIZE) and the
#: address, port.
MAX_V2_ENTRY_SIZE = 4 + 9 + 1 + _compact_size_length(MAX_ADDRV2_SIZE) + MAX_ADDRV2_SIZE + 2

#: Every known message type, mapped to its class.
MESSAGE_TYPES = {}


def _register(cls):
    MESSAGE_TYPES[cls.command] = cls
    return cls


# -- validators -------------------------------------------------------------


def _fail(instance, attribute, rule, error=ProtocolError):
    raise error(
        rule, field=attribute.name, message_type=getattr(instance, "command", None)
    )


def _int_range(low, high, name):
    def check(instance, attribute, value):
        if type(value) is not int or not low <= value <= high:
            _fail(instance, attribute, f"{value!r} is not {name}")

    return check


_uint8 = _int_range(0, 255, "a uint8")
_uint32 = _int_range(0, UINT32_MAX, "a uint32")
_uint64 = _int_range(0, UINT64_MAX, "a uint64")
_int32 = _int_range(-(2**31), 2**31 - 1, "an int32")
_int64 = _int_range(-(2**63), 2**63 - 1, "an int64")


def _bool(instance, attribute, value):
    if type(value) is not bool:
        _fail(instance, attribute, f"{value!r} is not a bool")


def _hash(instance, attribute, value):
    if type(value) is not bytes or len(value) != 32:
        _fail(instance, attribute, "must be 32 bytes")


def _items(item_type, limit):
    """A tuple of ``item_type``, at most ``limit`` long (Core: Misbehaving)."""

    def check(instance, attribute, value):
        if len(value) > limit:
            _fail(
                instance,
                attribute,
                f"{len(value)} entries exceed the limit of {limit}",
                Misbehaviour,
            )
        for item in value:
            if not isinstance(item, item_type):
                _fail(instance, attribute, f"{item!r} is not a {item_type.__name__}")

    return check


def _text(limit):
    def check(instance, attribute, value):
        if type(value) is not str:
            _fail(instance, attribute, "must be a str")
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > limit:
            _fail(instance, attribute, f"{size} bytes exceed the limit of {limit}")

    return check


def _count(reader, field, limit, item_size):
    """
    Read a vector's count.  A count over the limit is Misbehaviour when the
    payload holds that many entries (Core deserializes, then disconnects) and
    MalformedMessage when it does not (Core's deserialization throws first).
    """
    count = reader.compact_size(field)
    if count > limit:
        if reader.remaining() >= count * item_size:
            raise Misbehaviour(f"{count} entries exceed the limit of {limit}", field=field)
        raise MalformedMessage(f"{count} entries announced, payload too short", field=field)
    return count


class Message:
    """
    Base of every message class.

    @cvar command: the message type on the wire.
    @cvar oversize_error: the ProtocolError class for a longer payload.
    @cvar max_payload: the longest payload of this type that carries
        nothing but the fields Core reads, each at the largest size Core
        accepts (PROTOCOL.md; the figure of each class says how it is
        reached).  Core ignores bytes after the fields it reads, but no
        honest sender writes any, so FrameDecoder refuses a longer payload
        from its header alone, before buffering any of it.
    """

    command: ClassVar[str]
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH
    #: What a payload over max_payload is: OversizeMessage (dropped) for
    #: fixed fields and strings, TooManyEntries (fatal) for vectors whose
    #: count Core bounds (the classes say why).
    oversize_error: ClassVar[type] = OversizeMessage
    #: The entry limit of a vector message, for the error's text.
    max_entries: ClassVar[int | None] = None

    @classmethod
    def oversize(cls, length):
        """The ProtocolError for a header declaring ``length`` > max_payload."""
        if cls.max_entries is None:
            rule = (
                f"payload of {length} bytes exceeds {cls.max_payload}, the most "
                f"{cls.command} can carry"
            )
        else:
            rule = (
                f"payload of {length} bytes is more than {cls.max_entries} entries can fill "
                f"({cls.max_payload} bytes at most)"
            )
        return cls.oversize_error(rule, message_type=cls.command)

    def encode_payload(self):
        """The payload bytes of this message."""
        raise NotImplementedError()

    @classmethod
    def decode_payload(cls, payload):
        """Decode a payload; raise ProtocolError if Core would not accept it."""
        raise NotImplementedError()


def decode_message(command, payload, known=None):
    """
    Decode one payload by its message type.  Unknown types give an
    UnknownMessage; errors carry the message type.  ``known``, a set of
    entry keys (``addrlist.entry_keys``), makes addr and addrv2 leave out the
    entries already known, which then cost no decoding.
    """
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return UnknownMessage(command, payload)
    try:
        if known is not None and cls in (Addr, AddrV2):
            return cls.decode_payload(payload, known)
        return cls.decode_payload(payload)
    except ProtocolError as error:
        error.message_type = command
        raise


# -- messages without a payload ----------------------------------------------


class _Empty(Message):
    #: Core reads no field of these (verack, getaddr, sendaddrv2,
    #: wtxidrelay, sendheaders, mempool).
    max_payload: ClassVar[int] = 0

    def encode_payload(self):
        return b""

    @classmethod
    def decode_payload(cls, payload):
        return cls()


@_register
@attr.frozen
class VerAck(_Empty):
    """Acknowledges the peer's version."""

    command: ClassVar[str] = "verack"


@_register
@attr.frozen
class GetAddr(_Empty):
    """Asks for addresses.  Core answers once per connection, after verack."""

    command: ClassVar[str] = "getaddr"


@_register
@attr.frozen
class SendAddrV2(_Empty):
    """BIP155: send me addrv2.  Only between version and verack."""

    command: ClassVar[str] = "sendaddrv2"


@_register
@attr.frozen
class WtxidRelay(_Empty):
    """BIP339: announce transactions by wtxid.  Only before verack."""

    command: ClassVar[str] = "wtxidrelay"


@_register
@attr.frozen
class SendHeaders(_Empty):
    """BIP130: announce blocks with headers."""

    command: ClassVar[str] = "sendheaders"


@_register
@attr.frozen
class MemPool(_Empty):
    """BIP35: asks for the mempool's transaction ids."""

    command: ClassVar[str] = "mempool"


# -- version -----------------------------------------------------------------

#: ``::`` port 0: what Core puts in a version for an address it will not say.
UNSPECIFIED_ADDRESS = NetworkAddress(Network.IPV6, bytes(16), 0)


def _v1_address(instance, attribute, value):
    if not isinstance(value, NetworkAddress) or not value.is_v1_compatible:
        _fail(instance, attribute, "must be an IPv4 or IPv6 NetworkAddress")


_VERSION_HEAD = struct.Struct("<iQqQ16s")
_ADDR_FROM = struct.Struct("<Q16s")


@_register
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


# -- ping / pong ---------------------------------------------------------------

_U64 = struct.Struct("<Q")


@_register
@attr.frozen
class Ping(Message):
    """
    Keep-alive.  Since BIP31 (version 60001) it carries a nonce that the pong
    echoes; an empty ping (``nonce=None``) is the pre-BIP31 form.
    """

    command: ClassVar[str] = "ping"
    #: A uint64 nonce (none before BIP31).
    max_payload: ClassVar[int] = 8

    nonce: int | None = attr.ib(default=None, validator=attr.validators.optional(_uint64))

    def encode_payload(self):
        return b"" if self.nonce is None else _U64.pack(self.nonce)

    @classmethod
    def decode_payload(cls, payload):
        if not payload:
            return cls(None)
        return cls(Reader(payload).u64("nonce"))


@_register
@attr.frozen
class Pong(Message):
    """The answer to a ping, with the same nonce."""

    command: ClassVar[str] = "pong"
    max_payload: ClassVar[int] = 8

    nonce: int = attr.ib(validator=_uint64)

    def encode_payload(self):
        return _U64.pack(self.nonce)

    @classmethod
    def decode_payload(cls, payload):
        return cls(Reader(payload).u64("nonce"))


# -- addresses ---------------------------------------------------------------


def _trusted(cls, **fields):
    """
    Build a frozen message from fields the decoder has already checked,
    without running the validators again: a 1000-entry addr would otherwise
    pay for a thousand isinstance checks it cannot fail.
    """
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance


def _v1_entries(instance, attribute, value):
    for entry in value:
        if not entry.address.is_v1_compatible:
            _fail(
                instance,
                attribute,
                f"{entry.address.network_name} address has no v1 form; use addrv2",
            )


def _skipped():
    return attr.ib(default=0, validator=_int_range(0, MAX_ADDR_TO_SEND, "0..1000"))


@_register
@attr.frozen
class Addr(Message):
    """
    Addresses in the v1 form: IPv4 and IPv6 only, at most 1000.

    ``skipped`` counts entries the decoder left out because the caller
    already knew them (``decode_payload(payload, known)``); it is never sent.
    """

    command: ClassVar[str] = "addr"
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_ADDR_TO_SEND
    #: MAX_ADDR_TO_SEND (1000) entries of 30 bytes (PROTOCOL.md 4.4) and
    #: their count: 30,003.  More entries is Misbehaving in Core.
    max_payload: ClassVar[int] = (
        _compact_size_length(MAX_ADDR_TO_SEND) + MAX_ADDR_TO_SEND * V1_ENTRY_SIZE
    )

    addresses: tuple = attr.ib(
        converter=tuple,
        validator=[_items(AddrEntry, MAX_ADDR_TO_SEND), _v1_entries],
    )
    skipped: int = _skipped()

    def encode_payload(self):
        return compact_size(len(self.addresses)) + encode_v1_entries(self.addresses)

    @classmethod
    def decode_payload(cls, payload, known=None):
        r = Reader(payload)
        count = _count(r, "addresses", MAX_ADDR_TO_SEND, V1_ENTRY_SIZE)
        body = r.take(count * V1_ENTRY_SIZE, "addresses")
        entries = decode_v1_entries(body, count, known)
        return _trusted(cls, addresses=tuple(entries), skipped=count - len(entries))


@_register
@attr.frozen
class AddrV2(Message):
    """
    BIP155 addresses: every network, at most 1000.  Entries of networks Core
    does not know (Tor v2, future ids) are kept, never valid.  ``skipped`` is
    as for Addr.
    """

    command: ClassVar[str] = "addrv2"
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_ADDR_TO_SEND
    #: 1000 entries of the largest BIP155 form, MAX_V2_ENTRY_SIZE (531: a
    #: 512-byte address, 9-byte services), and their count: 531,003.
    max_payload: ClassVar[int] = (
        _compact_size_length(MAX_ADDR_TO_SEND) + MAX_ADDR_TO_SEND * MAX_V2_ENTRY_SIZE
    )

    addresses: tuple = attr.ib(
        converter=tuple, validator=_items(AddrEntry, MAX_ADDR_TO_SEND)
    )
    skipped: int = _skipped()

    def encode_payload(self):
        return compact_size(len(self.addresses)) + encode_v2_entries(self.addresses)

    @classmethod
    def decode_payload(cls, payload, known=None):
        r = Reader(payload)
        count = r.compact_size("addresses")
        entries, _ = decode_v2_entries(payload, r.pos, count, known)
        if count > MAX_ADDR_TO_SEND:
            raise Misbehaviour(
                f"{count} entries exceed the limit of {MAX_ADDR_TO_SEND}",
                field="addresses",
            )
        return _trusted(cls, addresses=tuple(entries), skipped=count - len(entries))


# -- relay negotiation -------------------------------------------------------


@_register
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


@_register
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


# -- inventory ---------------------------------------------------------------

#: protocol.h GetDataMsg
MSG_TX = 1
MSG_BLOCK = 2
MSG_FILTERED_BLOCK = 3
MSG_CMPCT_BLOCK = 4
MSG_WTX = 5
MSG_WITNESS_FLAG = 1 << 30


@attr.frozen
class InvVector:
    """One inventory entry: an object type and its 32-byte hash."""

    type: int = attr.ib(validator=_uint32)
    hash: bytes = attr.ib(validator=_hash)


_INV_ENTRY = struct.Struct("<I32s")


class _Inventory(Message):
    """inv, getdata and notfound share one layout; inv and getdata one limit."""

    #: More entries is Misbehaviour.
    max_items = MAX_INV_SZ
    #: MAX_INV_SZ (50,000) entries of 36 bytes and their count: 1,800,003.
    max_payload: ClassVar[int] = _compact_size_length(MAX_INV_SZ) + MAX_INV_SZ * 36
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_INV_SZ

    def encode_payload(self):
        pack = _INV_ENTRY.pack
        return compact_size(len(self.inventory)) + b"".join(
            pack(item.type, item.hash) for item in self.inventory
        )

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        count = _count(r, "inventory", cls.max_items, _INV_ENTRY.size)
        body = r.take(count * _INV_ENTRY.size, "inventory")
        return cls(tuple(InvVector(t, h) for t, h in _INV_ENTRY.iter_unpack(body)))


def _inventory(limit=MAX_INV_SZ):
    return attr.ib(converter=tuple, validator=_items(InvVector, limit))


@_register
@attr.frozen
class Inv(_Inventory):
    """Announces transactions or blocks."""

    command: ClassVar[str] = "inv"
    inventory: tuple = _inventory()


@_register
@attr.frozen
class GetData(_Inventory):
    """Asks for the objects listed."""

    command: ClassVar[str] = "getdata"
    inventory: tuple = _inventory()


@_register
@attr.frozen
class NotFound(_Inventory):
    """
    Says the objects asked for are not available.  Unlike inv and getdata,
    Core puts no limit on its length: it reads the whole vector and ignores
    it when longer than it could have asked for (net_processing.cpp,
    NOTFOUND).  Only CompactSize's MAX_SIZE and the frame size bound it.
    """

    command: ClassVar[str] = "notfound"
    max_items: ClassVar[int] = MAX_SIZE
    #: No Core limit but the frame's.
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH
    oversize_error: ClassVar[type] = OversizeMessage
    max_entries: ClassVar[int | None] = None
    inventory: tuple = _inventory(MAX_SIZE)


# -- headers and locators ----------------------------------------------------


class _Locator(Message):
    """getheaders and getblocks: a version, up to 101 locator hashes, a stop hash."""

    #: Version, MAX_LOCATOR_SZ (101) hashes and their count, the stop hash:
    #: 3,269.  A longer locator is Misbehaving in Core.
    max_payload: ClassVar[int] = (
        4 + _compact_size_length(MAX_LOCATOR_SZ) + MAX_LOCATOR_SZ * 32 + 32
    )
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_LOCATOR_SZ

    def encode_payload(self):
        return (
            struct.pack("<i", self.version)
            + compact_size(len(self.locator))
            + b"".join(self.locator)
            + self.hash_stop
        )

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        version = r.i32("version")
        count = _count(r, "locator", MAX_LOCATOR_SZ, 32)
        locator = tuple(r.take(32, "locator") for _ in range(count))
        return cls(version, locator, r.take(32, "hash_stop"))


def _locator_hashes(instance, attribute, value):
    _items(bytes, MAX_LOCATOR_SZ)(instance, attribute, value)
    for item in value:
        if len(item) != 32:
            _fail(instance, attribute, "every hash must be 32 bytes")


@_register
@attr.frozen
class GetHeaders(_Locator):
    """Asks for up to 2000 headers after the locator."""

    command: ClassVar[str] = "getheaders"

    version: int = attr.ib(validator=_int32)
    locator: tuple = attr.ib(converter=tuple, validator=_locator_hashes)
    hash_stop: bytes = attr.ib(default=bytes(32), validator=_hash)


@_register
@attr.frozen
class GetBlocks(_Locator):
    """Asks for an inv of up to 500 blocks after the locator."""

    command: ClassVar[str] = "getblocks"

    version: int = attr.ib(validator=_int32)
    locator: tuple = attr.ib(converter=tuple, validator=_locator_hashes)
    hash_stop: bytes = attr.ib(default=bytes(32), validator=_hash)


_HEADER = struct.Struct("<i32s32sIII")


@attr.frozen
class BlockHeader:
    """An 80-byte block header."""

    version: int = attr.ib(validator=_int32)
    prev_block: bytes = attr.ib(validator=_hash)
    merkle_root: bytes = attr.ib(validator=_hash)
    timestamp: int = attr.ib(validator=_uint32)
    bits: int = attr.ib(validator=_uint32)
    nonce: int = attr.ib(validator=_uint32)


@_register
@attr.frozen
class Headers(Message):
    """
    Up to 2000 block headers.  Each is followed on the wire by a transaction
    count that Core reads and ignores; it is written as 0.
    """

    command: ClassVar[str] = "headers"
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_HEADERS_RESULTS
    #: MAX_HEADERS_RESULTS (2000) headers and their count.  Each header is
    #: 80 bytes and a transaction count that honest senders write as 0 (81
    #: bytes), but Core reads the count with ReadCompactSize and ignores it,
    #: so any count up to MAX_SIZE (5 bytes) deserializes: 85 per header,
    #: 170,003 in all.
    max_payload: ClassVar[int] = (
        _compact_size_length(MAX_HEADERS_RESULTS)
        + MAX_HEADERS_RESULTS * (80 + _compact_size_length(MAX_SIZE))
    )

    headers: tuple = attr.ib(
        converter=tuple, validator=_items(BlockHeader, MAX_HEADERS_RESULTS)
    )

    def encode_payload(self):
        return compact_size(len(self.headers)) + b"".join(
            _HEADER.pack(*attr.astuple(h)) + b"\x00" for h in self.headers
        )

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        # Core reads the count alone and calls Misbehaving before reading any
        # header (net_processing.cpp, HEADERS), so the payload's length does
        # not matter here, unlike the vectors _count handles.
        count = r.compact_size("headers")
        if count > MAX_HEADERS_RESULTS:
            raise Misbehaviour(
                f"{count} entries exceed the limit of {MAX_HEADERS_RESULTS}",
                field="headers",
            )
        headers = []
        for _ in range(count):
            headers.append(BlockHeader(*_HEADER.unpack(r.take(_HEADER.size, "headers"))))
            r.compact_size("headers.tx_count")
        return cls(tuple(headers))


# -- legacy and unknown ------------------------------------------------------


#: The data of a reject: the hash of the transaction or block rejected.
REJECT_DATA_SIZE = 32


def _reject_data(instance, attribute, value):
    if type(value) is not bytes or len(value) > REJECT_DATA_SIZE:
        _fail(instance, attribute, f"must be at most {REJECT_DATA_SIZE} bytes")


@_register
@attr.frozen
class Reject(Message):
    """
    BIP61, removed from Core in 0.20 but still sent by old nodes: the message
    type rejected, a code, a reason, and optional data (usually a hash).
    """

    command: ClassVar[str] = "reject"
    #: What Core (before 0.20) read: the message type (LIMITED_STRING 12),
    #: the code, the reason (LIMITED_STRING 111) and, for tx and block, a
    #: 32-byte hash: 158.
    max_payload: ClassVar[int] = (1 + 12) + 1 + (1 + MAX_REJECT_MESSAGE_LENGTH) + REJECT_DATA_SIZE

    message: str = attr.ib(validator=_text(12))
    code: int = attr.ib(validator=_uint8)
    reason: str = attr.ib(validator=_text(MAX_REJECT_MESSAGE_LENGTH))
    data: bytes = attr.ib(default=b"", validator=_reject_data)

    def encode_payload(self):
        return var_str(self.message) + bytes((self.code,)) + var_str(self.reason) + self.data

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        return cls(
            r.var_str("message", 12),
            r.u8("code"),
            r.var_str("reason", MAX_REJECT_MESSAGE_LENGTH),
            # Core read at most the 32-byte hash and ignored what followed.
            r.rest()[:REJECT_DATA_SIZE],
        )


class _Opaque(Message):
    def encode_payload(self):
        return self.payload

    @classmethod
    def decode_payload(cls, payload):
        return cls(payload)


@_register
@attr.frozen
class Alert(_Opaque):
    """
    The retired alert system.  Core sends one final hard-coded alert to peers
    announcing version 70012 or lower; it is kept opaque and ignored.
    """

    command: ClassVar[str] = "alert"

    payload: bytes = attr.ib(validator=attr.validators.instance_of(bytes))


def _command_name(instance, attribute, value):
    if (
        type(value) is not str
        or len(value) > 12
        or not all(" " <= c <= "~" for c in value)
    ):
        _fail(instance, attribute, "must be at most 12 printable ASCII characters")


@attr.frozen
class UnknownMessage(Message):
    """
    A well-formed message of a type bitpeer does not know.  Core ignores
    these "for extensibility"; they are kept whole so subscribers can read
    them and they re-encode unchanged.
    """

    command: str = attr.ib(validator=_command_name)
    payload: bytes = attr.ib(validator=attr.validators.instance_of(bytes))

    def encode_payload(self):
        return self.payload


#: The largest legal payload of each known message type (Message.max_payload);
#: a type not listed (unknown, or known only by name such as block and tx)
#: is bounded by the frame's MAX_PROTOCOL_MESSAGE_LENGTH alone.
MAX_PAYLOADS = {command: cls.max_payload for command, cls in MESSAGE_TYPES.items()}
