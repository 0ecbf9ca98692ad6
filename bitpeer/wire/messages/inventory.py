"""
Inventory messages: inv announces objects, getdata asks for them, notfound
says they are gone, mempool asks for an inv of the mempool.

An entry's hash is held in internal order, the bytes the wire carries; its
repr shows it in display order, reversed, as Core's RPC and explorers do
(see hashes.py).
"""

import struct
from typing import ClassVar

import attr

from ..encoding import MAX_SIZE, Reader, compact_size
from ..errors import OversizeMessage, TooManyEntries
from ..hashes import display_hash
from .base import (
    MAX_INV_SZ,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Message,
    _compact_size_length,
    _count,
    _Empty,
    _hash,
    _items,
    _uint32,
)

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
    hash: bytes = attr.ib(validator=_hash, repr=display_hash)


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


@attr.frozen
class Inv(_Inventory):
    """Announces transactions or blocks."""

    command: ClassVar[str] = "inv"
    inventory: tuple = _inventory()


@attr.frozen
class GetData(_Inventory):
    """Asks for the objects listed."""

    command: ClassVar[str] = "getdata"
    inventory: tuple = _inventory()


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


@attr.frozen
class MemPool(_Empty):
    """BIP35: asks for the mempool's transaction ids."""

    command: ClassVar[str] = "mempool"
