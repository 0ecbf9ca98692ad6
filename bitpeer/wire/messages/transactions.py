"""
Transactions: Tx, the tx message, and the parts it is made of (OutPoint,
TxIn with its witness stack, TxOut).  Block and CmpctBlock carry Tx too.

A Tx is read and written exactly as Core serialises it with witnesses
(primitives/transaction.h, BIP144): version, inputs, outputs, lock time;
when any input has a witness, a 0x00 marker and a 0x01 flag follow the
version and every input's witness stack comes before the lock time.  Core
refuses a flag without a witness ("Superfluous witness record") and any
other flag bit ("Unknown transaction optional data"), and so does decode.
``txid()`` hashes the serialisation without witnesses, ``wtxid()`` the
one with (BIP141); the two are equal for a transaction without witness.

Hashes (``OutPoint.hash``, ``txid()``, ``wtxid()``) are in internal order,
the bytes the wire carries; reprs show them in display order, reversed, as
Core's RPC and explorers do (see hashes.py), and scripts and witness items
as plain hex, as Core's decoderawtransaction does.
"""

import struct
from typing import ClassVar

import attr

from ..encoding import Reader, compact_size, hash256, var_bytes
from ..errors import MalformedMessage
from ..hashes import display_hash
from .base import (
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Message,
    _bounded_count,
    _fail,
    _hash,
    _int64,
    _typed,
    _uint32,
)

#: consensus/consensus.h MIN_SERIALIZABLE_TRANSACTION_WEIGHT / 4: version,
#: two empty vectors and the lock time.  No transaction is shorter, so a
#: count of transactions is bounded by the bytes left over 10.
MIN_TX_SIZE = 10
#: Outpoint (36), empty script (1), sequence (4).
_MIN_TXIN_SIZE = 41
#: Value (8), empty script (1).
_MIN_TXOUT_SIZE = 9
#: BIP144: the marker where the input count would be, then the flag.
_WITNESS_MARKER = b"\x00\x01"

_OUTPOINT = struct.Struct("<32sI")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")


def _hex(value):
    return value.hex()


def _hexes(values):
    return "(" + ", ".join(map(_hex, values)) + ")"


def _script(instance, attribute, value):
    if type(value) is not bytes:
        _fail(instance, attribute, "must be bytes")


def _witness(instance, attribute, value):
    for item in value:
        if type(item) is not bytes:
            _fail(instance, attribute, f"{item!r} is not bytes")


@attr.frozen
class OutPoint:
    """The output an input spends: a txid (internal order) and an index."""

    hash: bytes = attr.ib(validator=_hash, repr=display_hash)
    index: int = attr.ib(validator=_uint32)


@attr.frozen
class TxIn:
    """
    One input: the outpoint it spends, its script, its sequence, and its
    witness stack (BIP141; empty for an input without witness).
    """

    prevout: OutPoint = attr.ib(validator=attr.validators.instance_of(OutPoint))
    script_sig: bytes = attr.ib(default=b"", validator=_script, repr=_hex)
    sequence: int = attr.ib(default=0xFFFFFFFF, validator=_uint32)
    witness: tuple = attr.ib(default=(), converter=tuple, validator=_witness, repr=_hexes)


@attr.frozen
class TxOut:
    """One output: a value in satoshis (Core's CAmount, an int64) and its script."""

    value: int = attr.ib(validator=_int64)
    script_pubkey: bytes = attr.ib(validator=_script, repr=_hex)


def _inputs(instance, attribute, value):
    _typed(TxIn)(instance, attribute, value)
    if not value:
        # Core deserialises it and rejects it at once (bad-txns-vin-empty);
        # refusing it here keeps every Tx encodable both ways.
        _fail(
            instance,
            attribute,
            "must not be empty: the input count 0 is the segwit marker (BIP144)",
        )


@attr.frozen
class Tx(Message):
    """
    A transaction, and the tx message that carries one.  The witness of
    each input is ``TxIn.witness``; the transaction has a witness when any
    of them is non-empty.
    """

    command: ClassVar[str] = "tx"
    #: net.h MAX_PROTOCOL_MESSAGE_LENGTH: Core has no smaller limit for a
    #: tx message (its size rules are policy, applied after decoding), and a
    #: transaction may fill a block (consensus.h MAX_BLOCK_SERIALIZED_SIZE,
    #: also 4,000,000).
    max_payload: ClassVar[int] = MAX_PROTOCOL_MESSAGE_LENGTH

    #: A uint32, as Core holds it since 28.0 (older versions read the same
    #: four bytes as an int32; the bytes, and so the hashes, are the same).
    version: int = attr.ib(validator=_uint32)
    inputs: tuple = attr.ib(converter=tuple, validator=_inputs)
    outputs: tuple = attr.ib(converter=tuple, validator=_typed(TxOut))
    lock_time: int = attr.ib(default=0, validator=_uint32)

    def has_witness(self):
        """True when any input carries a witness (Core: HasWitness)."""
        return any(txin.witness for txin in self.inputs)

    def serialize(self, witness=True):
        """
        The transaction's bytes: with its witnesses, as the tx message and
        blocks carry it, or without (``witness=False``), as txid hashes it.
        """
        parts = [_U32.pack(self.version)]
        with_witness = witness and self.has_witness()
        if with_witness:
            parts.append(_WITNESS_MARKER)
        parts.append(compact_size(len(self.inputs)))
        for txin in self.inputs:
            parts += (
                _OUTPOINT.pack(txin.prevout.hash, txin.prevout.index),
                var_bytes(txin.script_sig),
                _U32.pack(txin.sequence),
            )
        parts.append(compact_size(len(self.outputs)))
        for txout in self.outputs:
            parts += (_I64.pack(txout.value), var_bytes(txout.script_pubkey))
        if with_witness:
            for txin in self.inputs:
                parts.append(compact_size(len(txin.witness)))
                parts += map(var_bytes, txin.witness)
        parts.append(_U32.pack(self.lock_time))
        return b"".join(parts)

    def txid(self):
        """The hash of the serialisation without witnesses (internal order)."""
        return hash256(self.serialize(witness=False))

    def wtxid(self):
        """The hash of the serialisation with witnesses (BIP141; internal order)."""
        return hash256(self.serialize())

    def encode_payload(self):
        return self.serialize()

    @classmethod
    def decode_payload(cls, payload):
        # Core ignores bytes after the transaction, as for every message.
        return cls.read(Reader(payload))

    @classmethod
    def read(cls, r, field="tx"):
        """Read one transaction from a Reader, as Core's UnserializeTransaction."""
        version = r.u32(f"{field}.version")
        inputs = _read_inputs(r, field)
        flags = 0
        if inputs:
            outputs = _read_outputs(r, field)
        else:
            # The marker, or an input count of 0: either way a flag byte.
            flags = r.u8(f"{field}.flag")
            outputs = []
            if flags:
                inputs = _read_inputs(r, field)
                outputs = _read_outputs(r, field)
        witnesses = [()] * len(inputs)
        if flags & 1:
            flags ^= 1
            witnesses = [_read_witness(r, field) for _ in inputs]
            if not any(witnesses):
                raise MalformedMessage("superfluous witness record", field=f"{field}.witness")
        if flags:
            raise MalformedMessage(
                f"unknown transaction optional data (flag {flags:#04x})", field=f"{field}.flag"
            )
        lock_time = r.u32(f"{field}.lock_time")
        if not inputs:
            # Core deserialises it, then rejects it (bad-txns-vin-empty).
            raise MalformedMessage("no inputs (bad-txns-vin-empty)", field=f"{field}.inputs")
        return cls(
            version,
            [
                TxIn(OutPoint(hash_, index), script, sequence, witness)
                for (hash_, index, script, sequence), witness in zip(inputs, witnesses)
            ],
            outputs,
            lock_time,
        )


def _read_inputs(r, field):
    """The inputs' fields without their witnesses, which come later."""
    name = f"{field}.inputs"
    inputs = []
    for _ in range(_bounded_count(r, name, _MIN_TXIN_SIZE)):
        hash_, index = _OUTPOINT.unpack(r.take(_OUTPOINT.size, name))
        inputs.append((hash_, index, r.var_bytes(name), r.u32(name)))
    return inputs


def _read_outputs(r, field):
    name = f"{field}.outputs"
    return [
        TxOut(r.i64(name), r.var_bytes(name))
        for _ in range(_bounded_count(r, name, _MIN_TXOUT_SIZE))
    ]


def _read_witness(r, field):
    name = f"{field}.witness"
    return tuple(r.var_bytes(name) for _ in range(_bounded_count(r, name, 1)))
