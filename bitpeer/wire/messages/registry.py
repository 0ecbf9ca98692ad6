"""
The registry from message type to class, the largest payload of each type,
and decode_message, which looks a payload's type up there.

The registry is one explicit list rather than a decorator on each class, so
its order does not depend on the order the family modules are imported in.
"""

import attr

from ..errors import ProtocolError
from .addresses import Addr, AddrV2, GetAddr
from .base import Message, _fail
from .blocks import Block, CmpctBlock, MerkleBlock
from .control import Alert, Ping, Pong, Reject
from .handshake import FeeFilter, SendAddrV2, SendCmpct, SendHeaders, VerAck, Version, WtxidRelay
from .headers import GetBlocks, GetHeaders, Headers
from .inventory import GetData, Inv, MemPool, NotFound
from .transactions import Tx

#: Every known message type, mapped to its class.
MESSAGE_TYPES = {
    cls.command: cls
    for cls in (
        VerAck,
        GetAddr,
        SendAddrV2,
        WtxidRelay,
        SendHeaders,
        MemPool,
        Version,
        Ping,
        Pong,
        Addr,
        AddrV2,
        SendCmpct,
        FeeFilter,
        Inv,
        GetData,
        NotFound,
        GetHeaders,
        GetBlocks,
        Headers,
        Tx,
        Block,
        MerkleBlock,
        CmpctBlock,
        Reject,
        Alert,
    )
}

#: The largest legal payload of each known message type (Message.max_payload);
#: a type not listed (unknown) is bounded by the frame's
#: MAX_PROTOCOL_MESSAGE_LENGTH alone.
MAX_PAYLOADS = {command: cls.max_payload for command, cls in MESSAGE_TYPES.items()}


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
