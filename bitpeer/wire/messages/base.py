"""
What every message class shares: the protocol versions and limits Core
enforces, the field validators, and the Message base class.

The message classes live in one module per family (handshake, addresses,
control, inventory, headers, transactions, blocks); the registry from message type to class is in
registry.py.  Keeping the validators here means every family checks its
fields with the same rules and reports a ProtocolError the same way.
"""

import struct
from typing import ClassVar

from ..encoding import UINT32_MAX, UINT64_MAX, compact_size
from ..errors import MalformedMessage, Misbehaviour, OversizeMessage, ProtocolError
from ..hashes import display_hash

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


#: A uint64, as ping, pong and sendcmpct carry it.
_U64 = struct.Struct("<Q")


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


def _typed(item_type):
    """A sequence of ``item_type``, of any length."""

    def check(instance, attribute, value):
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


def _bounded_count(reader, field, item_size):
    """
    Read the count of a vector with no limit of its own (transactions,
    inputs, witness items...) and refuse, before anything is allocated, a
    count the rest of the payload cannot hold at ``item_size`` bytes (the
    smallest encoding of one entry).  Core reads such a count and fails at
    the end of the stream: the same verdict, MalformedMessage, reached
    without building the entries first.
    """
    count = reader.compact_size(field)
    if count * item_size > reader.remaining():
        raise MalformedMessage(f"{count} entries announced, payload too short", field=field)
    return count


# -- reprs: hashes in display order (hashes.py says why) ----------------------


def _hashes_repr(values):
    return "(" + ", ".join(map(display_hash, values)) + ")"


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


class _Empty(Message):
    #: Core reads no field of these (verack, getaddr, sendaddrv2,
    #: wtxidrelay, sendheaders, mempool).
    max_payload: ClassVar[int] = 0

    def encode_payload(self):
        return b""

    @classmethod
    def decode_payload(cls, payload):
        return cls()
