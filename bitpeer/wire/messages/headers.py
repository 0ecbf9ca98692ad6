"""
Block header messages: getheaders and getblocks ask from a locator, headers
answers with up to MAX_HEADERS_RESULTS block headers; and BlockHeader, the 80
bytes that headers, block, merkleblock and cmpctblock carry.

Hashes (prev_block, merkle_root, the locator, hash_stop, BlockHeader.hash())
are held in internal order, the bytes the wire carries; reprs show them in
display order, reversed, as Core's RPC and explorers do (see hashes.py).
"""

import struct
from typing import ClassVar

import attr

from ..encoding import MAX_SIZE, Reader, compact_size, hash256
from ..errors import Misbehaviour, TooManyEntries
from ..hashes import display_hash
from .base import (
    MAX_HEADERS_RESULTS,
    MAX_LOCATOR_SZ,
    Message,
    _compact_size_length,
    _count,
    _fail,
    _hash,
    _hashes_repr,
    _int32,
    _items,
    _uint32,
)


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


@attr.frozen
class GetHeaders(_Locator):
    """Asks for up to 2000 headers after the locator."""

    command: ClassVar[str] = "getheaders"

    version: int = attr.ib(validator=_int32)
    locator: tuple = attr.ib(converter=tuple, validator=_locator_hashes, repr=_hashes_repr)
    hash_stop: bytes = attr.ib(default=bytes(32), validator=_hash, repr=display_hash)


@attr.frozen
class GetBlocks(_Locator):
    """Asks for an inv of up to 500 blocks after the locator."""

    command: ClassVar[str] = "getblocks"

    version: int = attr.ib(validator=_int32)
    locator: tuple = attr.ib(converter=tuple, validator=_locator_hashes, repr=_hashes_repr)
    hash_stop: bytes = attr.ib(default=bytes(32), validator=_hash, repr=display_hash)


_HEADER = struct.Struct("<i32s32sIII")


@attr.frozen
class BlockHeader:
    """An 80-byte block header."""

    version: int = attr.ib(validator=_int32)
    prev_block: bytes = attr.ib(validator=_hash, repr=display_hash)
    merkle_root: bytes = attr.ib(validator=_hash, repr=display_hash)
    timestamp: int = attr.ib(validator=_uint32)
    bits: int = attr.ib(validator=_uint32)
    nonce: int = attr.ib(validator=_uint32)

    def encode(self):
        """The 80 bytes of the header, as they are hashed and sent."""
        return _HEADER.pack(
            self.version, self.prev_block, self.merkle_root, self.timestamp, self.bits,
            self.nonce,
        )

    @classmethod
    def read(cls, reader, field="header"):
        """Read one header from a Reader."""
        return cls(*_HEADER.unpack(reader.take(_HEADER.size, field)))

    def hash(self):
        """
        The block hash: the double SHA-256 of the 80 bytes, in internal
        order (``display_hash`` gives the form explorers show).
        """
        return hash256(self.encode())


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
            h.encode() + b"\x00" for h in self.headers
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
            headers.append(BlockHeader.read(r, "headers"))
            r.compact_size("headers.tx_count")
        return cls(tuple(headers))
