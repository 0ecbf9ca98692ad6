"""
Messages about the connection itself rather than the chain: ping and pong
keep it alive, reject (BIP61) and alert are retired but still sent by old
nodes.
"""

from typing import ClassVar

import attr

from ..encoding import Reader, var_str
from .base import (
    _U64,
    MAX_REJECT_MESSAGE_LENGTH,
    Message,
    _fail,
    _text,
    _uint8,
    _uint64,
)


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


#: The data of a reject: the hash of the transaction or block rejected.
REJECT_DATA_SIZE = 32


def _reject_data(instance, attribute, value):
    if type(value) is not bytes or len(value) > REJECT_DATA_SIZE:
        _fail(instance, attribute, f"must be at most {REJECT_DATA_SIZE} bytes")


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


@attr.frozen
class Alert(_Opaque):
    """
    The retired alert system.  Core sends one final hard-coded alert to peers
    announcing version 70012 or lower; it is kept opaque and ignored.
    """

    command: ClassVar[str] = "alert"

    payload: bytes = attr.ib(validator=attr.validators.instance_of(bytes))
