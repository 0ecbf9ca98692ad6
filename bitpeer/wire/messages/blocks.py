"""
Block messages: block (a header and its transactions), merkleblock (BIP37:
a header and the partial merkle tree of the transactions a bloom filter
matched) and cmpctblock (BIP152: a header, short transaction ids and the
transactions the sender expects us to lack).

Hashes (the header's, ``MerkleBlock.hashes``) are held in internal order,
the bytes the wire carries; reprs show them in display order, reversed, as
Core's RPC and explorers do (see hashes.py).

None of the three has a limit of its own in Core: each is bounded by
net.h MAX_PROTOCOL_MESSAGE_LENGTH (4,000,000), which is also consensus.h
MAX_BLOCK_SERIALIZED_SIZE.  Their counts are bounded by the bytes left
(base._bounded_count), and bytes after the last field are ignored, as Core
ignores them.
"""

import hashlib
import struct
from typing import ClassVar

import attr

from ..encoding import Reader, compact_size, var_bytes
from ..errors import MalformedMessage, Misbehaviour
from ..hashes import siphash24
from .base import (
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Message,
    _bounded_count,
    _fail,
    _hashes_repr,
    _typed,
    _uint32,
    _uint64,
)
from .headers import BlockHeader
from .transactions import MIN_TX_SIZE, Tx

#: BIP152: a short transaction id is the low 6 bytes of a SipHash-2-4.
SHORT_ID_SIZE = 6
_SHORT_ID_MAX = 2 ** (8 * SHORT_ID_SIZE) - 1
#: blockencodings.cpp InitData: a compact block of more transactions (short
#: ids and prefilled) is invalid; MAX_BLOCK_WEIGHT (4,000,000) over
#: MIN_SERIALIZABLE_TRANSACTION_WEIGHT (40).
MAX_CMPCT_TRANSACTIONS = 100_000
#: blockencodings.h PrefilledTransaction: the index is a uint16_t.
_MAX_PREFILLED_INDEX = 0xFFFF

_U64 = struct.Struct("<Q")


def _header(instance, attribute, value):
    if not isinstance(value, BlockHeader):
        _fail(instance, attribute, f"{value!r} is not a BlockHeader")


def _transactions_repr(transactions):
    count = len(transactions)
    return f"<{count} transaction{'' if count == 1 else 's'}>"


@attr.frozen
class Block(Message):
    """A block: its header and its transactions, the coinbase first."""

    command: ClassVar[str] = "block"
    #: net.h MAX_PROTOCOL_MESSAGE_LENGTH, consensus.h MAX_BLOCK_SERIALIZED_SIZE.
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    header: BlockHeader = attr.ib(validator=_header)
    transactions: tuple = attr.ib(
        converter=tuple, validator=_typed(Tx), repr=_transactions_repr
    )

    def hash(self):
        """The block hash, the header's (internal order)."""
        return self.header.hash()

    def encode_payload(self):
        return b"".join(
            [self.header.encode(), compact_size(len(self.transactions))]
            + [tx.serialize() for tx in self.transactions]
        )

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        header = BlockHeader.read(r)
        count = _bounded_count(r, "transactions", MIN_TX_SIZE)
        return cls(header, [Tx.read(r, "transactions") for _ in range(count)])


def _hashes(instance, attribute, value):
    for item in value:
        if type(item) is not bytes or len(item) != 32:
            _fail(instance, attribute, "every hash must be 32 bytes")


@attr.frozen
class MerkleBlock(Message):
    """
    BIP37: a header and a partial merkle tree (Core's CPartialMerkleTree):
    the block's transaction count, the hashes of the tree walked depth
    first, and the flag bits of that walk packed into bytes, least
    significant bit first.
    """

    command: ClassVar[str] = "merkleblock"
    #: net.h MAX_PROTOCOL_MESSAGE_LENGTH: Core sets no smaller limit.
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    header: BlockHeader = attr.ib(validator=_header)
    total_transactions: int = attr.ib(validator=_uint32)
    hashes: tuple = attr.ib(converter=tuple, validator=_hashes, repr=_hashes_repr)
    flags: bytes = attr.ib(validator=attr.validators.instance_of(bytes), repr=bytes.hex)

    def hash(self):
        """The block hash, the header's (internal order)."""
        return self.header.hash()

    def encode_payload(self):
        return (
            self.header.encode()
            + struct.pack("<I", self.total_transactions)
            + compact_size(len(self.hashes))
            + b"".join(self.hashes)
            + var_bytes(self.flags)
        )

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        header = BlockHeader.read(r)
        total = r.u32("total_transactions")
        count = _bounded_count(r, "hashes", 32)
        body = r.take(32 * count, "hashes")
        hashes = [body[i : i + 32] for i in range(0, len(body), 32)]
        return cls(header, total, hashes, r.var_bytes("flags"))


@attr.frozen
class PrefilledTx:
    """
    A transaction a compact block carries whole, and its index in the
    block.  The index here is the block's own; the wire carries the
    difference from the previous prefilled index, less one (BIP152).
    """

    index: int = attr.ib()
    tx: Tx = attr.ib(validator=attr.validators.instance_of(Tx))


def _short_ids(instance, attribute, value):
    for item in value:
        if type(item) is not int or not 0 <= item <= _SHORT_ID_MAX:
            _fail(instance, attribute, f"{item!r} is not a {SHORT_ID_SIZE}-byte short id")


def _prefilled(instance, attribute, value):
    """
    The checks of Core's PartiallyDownloadedBlock::InitData, whose failure
    is Misbehaving ("invalid compact block"): something to reconstruct,
    not too much of it, and indexes ascending within the block and within
    a uint16.
    """
    _typed(PrefilledTx)(instance, attribute, value)
    total = len(instance.short_ids) + len(value)
    if total == 0:
        _fail(instance, attribute, "no short ids and no prefilled transactions", Misbehaviour)
    if total > MAX_CMPCT_TRANSACTIONS:
        _fail(
            instance,
            attribute,
            f"{total} transactions exceed the limit of {MAX_CMPCT_TRANSACTIONS}",
            Misbehaviour,
        )
    previous = -1
    for position, item in enumerate(value):
        if type(item.index) is not int or not previous < item.index <= _MAX_PREFILLED_INDEX:
            _fail(
                instance,
                attribute,
                f"index {item.index!r} is not above {previous} and at most "
                f"{_MAX_PREFILLED_INDEX}",
                Misbehaviour,
            )
        if item.index > len(instance.short_ids) + position:
            # More transactions before it than short ids and prefilled.
            _fail(
                instance,
                attribute,
                f"index {item.index} leaves gaps that {len(instance.short_ids)} short ids "
                "cannot fill",
                Misbehaviour,
            )
        previous = item.index


@attr.frozen
class CmpctBlock(Message):
    """
    BIP152: a header, the nonce that keys the short ids, the short ids of
    the transactions the receiver is expected to have, and the prefilled
    transactions (at least the coinbase, as Core sends it).
    """

    command: ClassVar[str] = "cmpctblock"
    #: net.h MAX_PROTOCOL_MESSAGE_LENGTH: Core sets no smaller limit.
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    header: BlockHeader = attr.ib(validator=_header)
    nonce: int = attr.ib(validator=_uint64)
    short_ids: tuple = attr.ib(converter=tuple, validator=_short_ids)
    prefilled: tuple = attr.ib(converter=tuple, validator=_prefilled)

    def hash(self):
        """The block hash, the header's (internal order)."""
        return self.header.hash()

    def short_id(self, wtxid):
        """
        The short id of a transaction in this compact block (BIP152, version
        2: from its wtxid): SipHash-2-4 keyed with the first 16 bytes of the
        SHA-256 of the header and nonce, its low 6 bytes.
        """
        key = hashlib.sha256(self.header.encode() + _U64.pack(self.nonce)).digest()
        k0, k1 = struct.unpack_from("<QQ", key)
        return siphash24(k0, k1, wtxid) & _SHORT_ID_MAX

    def encode_payload(self):
        parts = [
            self.header.encode(),
            _U64.pack(self.nonce),
            compact_size(len(self.short_ids)),
            *(n.to_bytes(SHORT_ID_SIZE, "little") for n in self.short_ids),
            compact_size(len(self.prefilled)),
        ]
        previous = -1
        for item in self.prefilled:
            parts += (compact_size(item.index - previous - 1), item.tx.serialize())
            previous = item.index
        return b"".join(parts)

    @classmethod
    def decode_payload(cls, payload):
        r = Reader(payload)
        header = BlockHeader.read(r)
        nonce = r.u64("nonce")
        count = _bounded_count(r, "short_ids", SHORT_ID_SIZE)
        body = r.take(SHORT_ID_SIZE * count, "short_ids")
        short_ids = [
            int.from_bytes(body[i : i + SHORT_ID_SIZE], "little")
            for i in range(0, len(body), SHORT_ID_SIZE)
        ]
        prefilled = []
        previous = -1
        # Each at least a one-byte index and a transaction.
        for _ in range(_bounded_count(r, "prefilled", 1 + MIN_TX_SIZE)):
            difference = r.compact_size("prefilled.index")
            if difference > _MAX_PREFILLED_INDEX:
                # Core reads it into a uint16_t and throws.
                raise MalformedMessage(
                    f"index difference {difference} exceeds a uint16", field="prefilled.index"
                )
            previous += difference + 1
            prefilled.append(PrefilledTx(previous, Tx.read(r, "prefilled.tx")))
        return cls(header, nonce, short_ids, prefilled)
