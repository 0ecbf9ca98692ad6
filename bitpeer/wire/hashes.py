"""
Block and transaction hashes: their two byte orders, and the merkle root.

A hash is the 32 bytes of a double SHA-256 (``encoding.hash256``), and the
wire carries those bytes as they come out of SHA-256: the *internal order*.
Every hash attribute of a message class holds that order.  Bitcoin Core's
RPC, block explorers and every text form show the same 32 bytes reversed,
as hex: the *display order*, in which a block hash starts with its zeros
(the genesis block is ``000000000019d6...``).  Core reads and prints hashes
as uint256, a little-endian number, which is why the two differ.

``display_hash`` and ``parse_hash`` convert between the two, and the reprs
of the message classes show hashes in display order so that a logged hash
can be pasted into an explorer as it is.

SipHash-2-4 is here too: BIP152's short transaction ids are made with it.
"""

import struct

from .encoding import hash256


def display_hash(hash_bytes):
    """The display form of a 32-byte hash in internal order: reversed hex."""
    return hash_bytes[::-1].hex()


def parse_hash(text):
    """
    The 32 bytes, in internal order, of a hash written in display order
    (64 hex digits, as Core's RPC prints it).  ValueError otherwise.
    """
    if type(text) is not str or len(text) != 64:
        raise ValueError(f"{text!r} is not a hash: 64 hex digits expected")
    return bytes.fromhex(text)[::-1]


def merkle_root(hashes):
    """
    The merkle root of transaction hashes in internal order, as Core computes
    it (consensus/merkle.cpp): pairs hashed level by level, the last hash of
    an odd level paired with itself.  The root of a block's txids is its
    header's merkle_root; of its wtxids (the coinbase's taken as zero), the
    segwit commitment's.  ValueError for an empty list: a block has at least
    its coinbase.
    """
    level = list(hashes)
    if not level:
        raise ValueError("no hashes: a merkle tree needs at least one")
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hash256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


_MASK64 = 2**64 - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK64


def siphash24(k0, k1, data):
    """SipHash-2-4 of ``data`` with the key (k0, k1), as Core's crypto/siphash.cpp."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(v0, v1, v2, v3, n):
        for _ in range(n):
            v0 = (v0 + v1) & _MASK64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    tail = len(data) % 8
    for (m,) in struct.iter_unpack("<Q", data[: len(data) - tail]):
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    m = int.from_bytes(data[len(data) - tail :], "little") | ((len(data) & 0xFF) << 56)
    v3 ^= m
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
    v0 ^= m
    v2 ^= 0xFF
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3
