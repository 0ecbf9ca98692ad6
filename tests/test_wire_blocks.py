"""
Tests for the block and transaction messages (wire/messages/transactions.py,
wire/messages/blocks.py) and for wire/hashes.py: round trips, Core's
serialisation rules (BIP144 marker and flag, BIP152 differential indexes),
the limits, python-bitcoinlib as an independent oracle, and published
vectors:

* the mainnet genesis block (Core's chainparams.cpp: CreateGenesisBlock),
  whose hash and coinbase txid every explorer shows;
* BIP143's native P2WPKH example, a signed segwit transaction;
* rust-bitcoin's decode_segwit_transaction vector, a mainnet segwit
  transaction published with its txid and wtxid;
* the SipHash-2-4 reference vectors (the SipHash paper, also Core's
  src/test/hash_tests.cpp siphash test), on which BIP152 short ids rest.
"""

import contextlib
import io
import re
import struct

import attr
from bitcoin import core as bl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.encoding import MAX_SIZE, Reader, compact_size, hash256
from bitpeer.wire.errors import MalformedMessage, Misbehaviour, PayloadTooLarge, ProtocolError
from bitpeer.wire.framing import FrameDecoder, encode_frame
from bitpeer.wire.hashes import display_hash, merkle_root, parse_hash, siphash24
from bitpeer.wire.messages import (
    MAX_CMPCT_TRANSACTIONS,
    MAX_PAYLOADS,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Block,
    BlockHeader,
    CmpctBlock,
    GetHeaders,
    InvVector,
    MerkleBlock,
    OutPoint,
    PrefilledTx,
    Tx,
    TxIn,
    TxOut,
    decode_message,
)

MAIN = bytes.fromhex("f9beb4d9")
README = __file__.rsplit("/tests/", 1)[0] + "/README.rst"

#: The mainnet genesis block, 285 bytes (chainparams.cpp CreateGenesisBlock).
GENESIS = bytes.fromhex(
    "01000000" + "00" * 32
    + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a"
    "29ab5f49ffff001d1dac2b7c"
    "01"
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72"
    "206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff"
    "0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f"
    "61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_COINBASE_TXID = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"

#: BIP143, "Native P2WPKH": the serialized signed transaction.  One legacy
#: input (sequence 0xffffffee), one P2WPKH input with a two-item witness.
BIP143_P2WPKH = bytes.fromhex(
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f"
    "00000000494830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e"
    "5cdd30be022040529b194ba3f9281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01"
    "eeffffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a010000"
    "0000ffffffff02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d59"
    "88ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac000247"
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a022057"
    "3a954c4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee0121025476c2e831"
    "88368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee635711000000"
)

#: rust-bitcoin, decode_segwit_transaction: a mainnet P2SH-paying segwit
#: spend with its published txid and wtxid.
SEGWIT_TX = bytes.fromhex(
    "02000000000101595895ea20179de87052b4046dfe6fd515860505d6511a9004cf12a1f93cac7c"
    "0100000000ffffffff01deb807000000000017a9140f3444e271620c736808aa7b33e370bd87cb"
    "5a078702483045022100fb60dad8df4af2841adc0346638c16d0b8035f5e3f3753b88db122e70c"
    "79f9370220756e6633b17fd2710e626347d28d60b0a2d6cbb41de51740644b9fb3ba7751040121"
    "028fa937ca8cba2197a37c007176ed8941055d3bcb8627d085e94553e62f057dcc00000000"
)
SEGWIT_TXID = "f5864806e3565c34d1b41e716f72609d00b55ea5eac5b924c9719a842ef42206"
SEGWIT_WTXID = "80b7d8a82d5d5bf92905b06f2014dd699e03837ca172e3a59d51426ebbe3e7f5"

H1 = bytes(range(32))
H2 = bytes(range(32, 64))
HEADER = BlockHeader(0x20000000, H1, H2, 1_700_000_000, 0x17034219, 7)


def tx(n=0, witness=()):
    """A small transaction, distinct for each ``n``."""
    return Tx(
        2,
        [TxIn(OutPoint(H1, n), b"\x51", 0xFFFFFFFD, witness)],
        [TxOut(1000 + n, b"\x00\x14" + bytes(20))],
        n,
    )


COINBASE = Tx(1, [TxIn(OutPoint(bytes(32), 0xFFFFFFFF), b"\x03\x01\x02\x03")],
              [TxOut(50 * 10**8, b"\x51")])

#: One instance of each message type this module adds, for the tables of
#: every message type (test_wire_messages, test_resilience).
EXAMPLES = {
    "tx": tx(1, [b"\x30" * 71, b"\x02" * 33]),
    "block": Block(HEADER, [COINBASE, tx(1), tx(2, [b"", b"\x01"])]),
    "merkleblock": MerkleBlock(HEADER, 7, [H1, H2, hash256(b"x")], b"\x1d"),
    "cmpctblock": CmpctBlock(
        HEADER, 0x0123456789ABCDEF, [1, 2**48 - 1, 0xABCDEF], [PrefilledTx(0, COINBASE),
                                                                PrefilledTx(2, tx(3))]
    ),
}

# -- strategies (also test_wire_properties' for these types) --------------------

u32 = st.integers(0, 2**32 - 1)
hashes = st.binary(min_size=32, max_size=32)
scripts = st.binary(max_size=40)
witnesses = st.lists(st.binary(max_size=40), max_size=3)
tx_ins = st.builds(TxIn, st.builds(OutPoint, hashes, u32), scripts, u32, witnesses)
tx_outs = st.builds(TxOut, st.integers(-(2**63), 2**63 - 1), scripts)
txs = st.builds(Tx, u32, st.lists(tx_ins, min_size=1, max_size=3),
                st.lists(tx_outs, max_size=3), u32)
headers = st.builds(BlockHeader, st.integers(-(2**31), 2**31 - 1), hashes, hashes, u32, u32,
                    u32)


@st.composite
def cmpct_blocks(draw):
    short_ids = draw(st.lists(st.integers(0, 2**48 - 1), max_size=5))
    count = draw(st.integers(0 if short_ids else 1, 3))
    # Any ``count`` of the block's slots: sorted, each index is at most
    # the short ids before it plus its position, as Core requires.
    slots = sorted(draw(st.sets(st.integers(0, len(short_ids) + count - 1),
                                min_size=count, max_size=count)))
    prefilled = [PrefilledTx(index, draw(txs)) for index in slots]
    return CmpctBlock(draw(headers), draw(st.integers(0, 2**64 - 1)), short_ids, prefilled)


STRATEGIES = {
    "tx": txs,
    "block": st.builds(Block, headers, st.lists(txs, max_size=3)),
    "merkleblock": st.builds(MerkleBlock, headers, u32, st.lists(hashes, max_size=5),
                             st.binary(max_size=5)),
    "cmpctblock": cmpct_blocks(),
}


#: Modest example counts keep the whole suite fast.
FAST = settings(
    deadline=None,
    max_examples=40,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def to_bitcoinlib(transaction):
    """The same transaction as python-bitcoinlib's CTransaction."""
    return bl.CTransaction.deserialize(transaction.serialize())


def mutate(payload, offset, value):
    data = bytearray(payload)
    data[offset] = value
    return bytes(data)


class HashTests(SynchronousTestCase):
    """Internal order on the wire, display order reversed."""

    def test_display_and_parse(self):
        internal = bytes(31) + b"\x01"
        self.assertEqual(display_hash(internal), "01" + "00" * 31)
        self.assertEqual(parse_hash("01" + "00" * 31), internal)
        self.assertEqual(parse_hash(display_hash(H1)), H1)

    def test_parse_refuses(self):
        for bad in ("00" * 31, "00" * 33, "zz" * 32, b"00" * 32, None):
            self.assertRaises(ValueError, parse_hash, bad)

    def test_merkle_root(self):
        a, b, c = hash256(b"a"), hash256(b"b"), hash256(b"c")
        self.assertEqual(merkle_root([a]), a)
        self.assertEqual(merkle_root([a, b]), hash256(a + b))
        # An odd level pairs its last hash with itself.
        self.assertEqual(merkle_root([a, b, c]), hash256(hash256(a + b) + hash256(c + c)))
        self.assertRaises(ValueError, merkle_root, [])

    def test_siphash_reference_vectors(self):
        """The SipHash paper's key 00..0f over 00, 00 01, ..., as Core tests it."""
        k0, k1 = 0x0706050403020100, 0x0F0E0D0C0B0A0908
        self.assertEqual(siphash24(k0, k1, b""), 0x726FDB47DD0E0E31)
        self.assertEqual(siphash24(k0, k1, b"\x00"), 0x74F839C593DC67FD)
        self.assertEqual(siphash24(k0, k1, bytes(range(8))), 0x93F5F5799A932462)
        self.assertEqual(siphash24(k0, k1, bytes(range(15))), 0xA129CA6149BE45E5)

    def test_reprs_show_display_order(self):
        internal = bytes(31) + b"\xab"
        shown = "ab" + "00" * 31
        self.assertIn(f"hash={shown}", repr(InvVector(2, internal)))
        self.assertIn(f"prev_block={shown}", repr(attr.evolve(HEADER, prev_block=internal)))
        self.assertIn(f"locator=({shown}, {shown})",
                      repr(GetHeaders(70016, [internal, internal], internal)))
        self.assertIn(f"hash_stop={shown})", repr(GetHeaders(70016, [], internal)))
        self.assertIn(f"OutPoint(hash={shown}, index=3)", repr(OutPoint(internal, 3)))
        self.assertIn(f"hashes=({shown})", repr(MerkleBlock(HEADER, 1, [internal], b"\x01")))
        self.assertIn("transactions=<3 transactions>", repr(EXAMPLES["block"]))
        self.assertIn("script_pubkey=0014", repr(tx()))


class VectorTests(SynchronousTestCase):
    def test_genesis_block(self):
        block = decode_message("block", GENESIS)
        self.assertEqual(display_hash(block.hash()), GENESIS_HASH)
        self.assertEqual(block.hash(), hash256(GENESIS[:80]))
        (coinbase,) = block.transactions
        self.assertEqual(display_hash(coinbase.txid()), GENESIS_COINBASE_TXID)
        self.assertEqual(coinbase.wtxid(), coinbase.txid())
        self.assertEqual(block.header.merkle_root, coinbase.txid())
        self.assertEqual(merkle_root([coinbase.txid()]), block.header.merkle_root)
        self.assertEqual(coinbase.outputs[0].value, 50 * 10**8)
        self.assertIn(b"The Times 03/Jan/2009", coinbase.inputs[0].script_sig)
        self.assertEqual((block.header.timestamp, block.header.bits, block.header.nonce),
                         (1231006505, 0x1D00FFFF, 2083236893))
        self.assertEqual(block.encode_payload(), GENESIS)
        self.assertEqual(BlockHeader.read(Reader(GENESIS)).encode(), GENESIS[:80])

    def test_genesis_frame(self):
        frame = encode_frame(MAIN, decode_message("block", GENESIS))
        (decoded,) = FrameDecoder(MAIN).feed(frame)
        self.assertEqual(decoded.command, "block")
        self.assertEqual(display_hash(decoded.decode().hash()), GENESIS_HASH)

    def test_segwit_transaction(self):
        transaction = decode_message("tx", SEGWIT_TX)
        self.assertEqual(display_hash(transaction.txid()), SEGWIT_TXID)
        self.assertEqual(display_hash(transaction.wtxid()), SEGWIT_WTXID)
        self.assertEqual(transaction.wtxid(), hash256(SEGWIT_TX))
        self.assertEqual(transaction.encode_payload(), SEGWIT_TX)
        (txin,) = transaction.inputs
        self.assertEqual(display_hash(txin.prevout.hash),
                         "7cac3cf9a112cf04901a51d605058615d56ffe6d04b45270e89d1720ea955859")
        self.assertEqual(len(txin.witness), 2)

    def test_bip143_p2wpkh(self):
        transaction = decode_message("tx", BIP143_P2WPKH)
        legacy, segwit = transaction.inputs
        self.assertEqual((legacy.sequence, legacy.witness), (0xFFFFFFEE, ()))
        self.assertEqual(segwit.witness[1].hex(),
                         "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357")
        self.assertEqual([o.value for o in transaction.outputs], [112340000, 223450000])
        self.assertEqual(transaction.lock_time, 17)
        self.assertEqual(transaction.encode_payload(), BIP143_P2WPKH)
        # Without the witness: the marker, flag and stacks are gone.
        stripped = transaction.serialize(witness=False)
        self.assertEqual(len(BIP143_P2WPKH) - len(stripped), 2 + 1 + 1 + 71 + 1 + 33 + 1)
        self.assertEqual(transaction.txid(), hash256(stripped))
        oracle = bl.CTransaction.deserialize(BIP143_P2WPKH)
        self.assertEqual(transaction.txid(), oracle.GetTxid())
        self.assertEqual(transaction.wtxid(), oracle.GetHash())


class TxRuleTests(SynchronousTestCase):
    """Core's UnserializeTransaction, rule by rule."""

    def test_witness_only_when_present(self):
        plain = tx()
        self.assertFalse(plain.has_witness())
        self.assertEqual(plain.serialize(), plain.serialize(witness=False))
        self.assertEqual(plain.txid(), plain.wtxid())
        # One empty item is a witness (Core: a non-empty stack).
        with_empty_item = tx(witness=[b""])
        self.assertTrue(with_empty_item.has_witness())
        self.assertEqual(with_empty_item.serialize()[4:6], b"\x00\x01")
        self.assertNotEqual(with_empty_item.txid(), with_empty_item.wtxid())
        self.assertEqual(with_empty_item.txid(), plain.txid())

    def test_superfluous_witness_record(self):
        payload = tx().serialize()
        flagged = payload[:4] + b"\x00\x01" + payload[4:-4] + b"\x00" + payload[-4:]
        error = self.assertRaises(MalformedMessage, decode_message, "tx", flagged)
        self.assertEqual((error.message_type, error.field), ("tx", "tx.witness"))
        self.assertIn("superfluous", error.rule)

    def test_unknown_flag(self):
        payload = tx(witness=[b"\x01"]).serialize()
        error = self.assertRaises(MalformedMessage, decode_message, "tx", mutate(payload, 5, 3))
        self.assertEqual(error.field, "tx.flag")
        self.assertIn("0x02", error.rule)

    def test_no_inputs(self):
        # Version, an input count of 0, a flag byte of 0, lock time: Core
        # reads no outputs and then rejects the transaction.
        error = self.assertRaises(MalformedMessage, decode_message, "tx", bytes(10))
        self.assertEqual(error.field, "tx.inputs")
        error = self.assertRaises(ProtocolError, Tx, 1, [], [TxOut(1, b"")])
        self.assertEqual(error.field, "inputs")

    def test_construction_validators(self):
        good = tx()
        for field, value in [("version", -1), ("version", 2**32), ("lock_time", 2**32),
                             ("inputs", [good.outputs[0]]), ("outputs", [good.inputs[0]])]:
            error = self.assertRaises(ProtocolError, attr.evolve, good, **{field: value})
            self.assertEqual((error.message_type, error.field), ("tx", field))
        self.assertRaises(ProtocolError, TxOut, 2**63, b"")
        self.assertRaises(ProtocolError, TxOut, 1, "script")
        self.assertRaises(ProtocolError, TxIn, OutPoint(H1, 0), b"", 0, ["item"])
        self.assertRaises(ProtocolError, OutPoint, b"short", 0)

    def test_truncations(self):
        """Every strict prefix of a transaction is MalformedMessage, never another error."""
        payload = decode_message("tx", BIP143_P2WPKH).encode_payload()
        for end in range(len(payload)):
            self.assertRaises(MalformedMessage, decode_message, "tx", payload[:end])

    def test_trailing_bytes_ignored(self):
        self.assertEqual(decode_message("tx", SEGWIT_TX + b"junk").encode_payload(), SEGWIT_TX)
        self.assertEqual(decode_message("block", GENESIS + b"\x00").encode_payload(), GENESIS)

    def test_counts_bounded_by_payload(self):
        """A count the payload cannot hold is refused at once, by field."""
        version = struct.pack("<I", 1)
        for payload, field in [
            (version + compact_size(MAX_SIZE), "tx.inputs"),
            (version + b"\x00\x01" + compact_size(1000), "tx.inputs"),
            (tx().serialize()[:47] + compact_size(100_000), "tx.outputs"),
        ]:
            error = self.assertRaises(MalformedMessage, decode_message, "tx", payload)
            self.assertEqual(error.field, field)
            self.assertIn("payload too short", error.rule)
        # A witness stack of 1000 items in 999 bytes, lock time included.
        txin = tx(witness=[b"\x01"]).serialize()
        body = txin[:-4 - 3] + compact_size(1000) + bytes(995) + txin[-4:]
        error = self.assertRaises(MalformedMessage, decode_message, "tx", body)
        self.assertEqual(error.field, "tx.witness")


class BlockTests(SynchronousTestCase):
    def test_round_trips(self):
        for command, message in EXAMPLES.items():
            payload = message.encode_payload()
            self.assertEqual(decode_message(command, payload), message)
            self.assertEqual(decode_message(command, payload + b"\x00").encode_payload(),
                             payload)

    def test_block_layout(self):
        block = EXAMPLES["block"]
        self.assertEqual(
            block.encode_payload(),
            HEADER.encode() + b"\x03" + b"".join(t.serialize() for t in block.transactions))
        self.assertEqual(block.hash(), HEADER.hash())

    def test_empty_block_decodes(self):
        """Core deserialises a block with no transactions (and rejects it later)."""
        self.assertEqual(decode_message("block", HEADER.encode() + b"\x00"), Block(HEADER, []))

    def test_transaction_count_bounded_by_payload(self):
        """The count is refused before any transaction is built."""
        for count in (MAX_SIZE, 400_001, 2):
            payload = HEADER.encode() + compact_size(count) + bytes(min(10 * count - 1, 1000))
            error = self.assertRaises(MalformedMessage, decode_message, "block", payload)
            self.assertEqual((error.message_type, error.field), ("block", "transactions"))
        self.assertRaises(MalformedMessage, decode_message, "block",
                          HEADER.encode() + compact_size(MAX_SIZE + 1))

    def test_block_of_the_maximum_payload(self):
        """A 4,000,000-byte block passes the frame and decodes; a byte more is fatal."""
        # Header 80, count 1, then one transaction of version 4, input count
        # 1, outpoint 36, script length 5 + script, sequence 4, output count
        # 1, lock time 4.
        script = bytes(MAX_PROTOCOL_MESSAGE_LENGTH - 80 - 1 - 55)
        block = Block(HEADER, [Tx(1, [TxIn(OutPoint(H1, 0), script)], [])])
        payload = block.encode_payload()
        self.assertEqual(len(payload), MAX_PROTOCOL_MESSAGE_LENGTH)
        self.assertEqual(MAX_PAYLOADS["block"], MAX_PROTOCOL_MESSAGE_LENGTH)
        (frame,) = FrameDecoder(MAIN).feed(encode_frame(MAIN, block))
        self.assertEqual(frame.decode(), block)
        decoder = FrameDecoder(MAIN)
        header = encode_frame(MAIN, block)[:24]
        (error,) = decoder.feed(header[:16] + struct.pack("<I", len(payload) + 1) + header[20:])
        self.assertIsInstance(error, PayloadTooLarge)
        self.assertEqual(decoder.buffered, 0)

    def test_merkleblock_layout(self):
        message = EXAMPLES["merkleblock"]
        self.assertEqual(
            message.encode_payload(),
            HEADER.encode() + struct.pack("<I", 7) + b"\x03" + H1 + H2 + hash256(b"x")
            + b"\x01\x1d")
        self.assertEqual(message.hash(), HEADER.hash())
        payload = HEADER.encode() + struct.pack("<I", 7) + compact_size(10) + bytes(319)
        error = self.assertRaises(MalformedMessage, decode_message, "merkleblock", payload)
        self.assertEqual((error.message_type, error.field), ("merkleblock", "hashes"))
        self.assertRaises(ProtocolError, MerkleBlock, HEADER, 1, [b"short"], b"")
        self.assertRaises(ProtocolError, MerkleBlock, HEADER, -1, [], b"")


class CmpctBlockTests(SynchronousTestCase):
    """BIP152: short ids of 6 bytes, prefilled indexes differentially encoded."""

    def test_layout_by_hand(self):
        """The example's bytes, field by field as BIP152 lays them out."""
        message = EXAMPLES["cmpctblock"]
        expected = (
            HEADER.encode()
            + struct.pack("<Q", 0x0123456789ABCDEF)
            + b"\x03" + bytes.fromhex("010000000000" "ffffffffffff" "efcdab000000")
            + b"\x02"
            # Index 0: 0 - (-1) - 1 = 0.  Index 2: 2 - 0 - 1 = 1.
            + b"\x00" + COINBASE.serialize()
            + b"\x01" + tx(3).serialize()
        )
        self.assertEqual(message.encode_payload(), expected)
        self.assertEqual(decode_message("cmpctblock", expected), message)

    def test_a_compact_block_of_a_real_block(self):
        """
        Built as Core builds one: the coinbase prefilled, every other
        transaction by the short id of its wtxid; the short ids computed
        from the header and nonce find the transactions again.
        """
        block = Block(HEADER, [COINBASE] + [tx(n, [bytes([n])]) for n in range(1, 6)])
        nonce = 0x5EED
        draft = CmpctBlock(block.header, nonce, [0], [PrefilledTx(0, COINBASE)])
        short_ids = [draft.short_id(t.wtxid()) for t in block.transactions[1:]]
        message = CmpctBlock(block.header, nonce, short_ids, [PrefilledTx(0, COINBASE)])
        decoded = decode_message("cmpctblock", message.encode_payload())
        self.assertEqual(decoded, message)
        self.assertEqual(len(message.encode_payload()),
                         80 + 8 + 1 + 5 * 6 + 1 + 1 + len(COINBASE.serialize()))
        mempool = {decoded.short_id(t.wtxid()): t for t in block.transactions[1:]}
        rebuilt = [decoded.prefilled[0].tx] + [mempool[s] for s in decoded.short_ids]
        self.assertEqual(rebuilt, list(block.transactions))
        # A different nonce gives different short ids (BIP152's point).
        other = CmpctBlock(block.header, nonce + 1, [0], [PrefilledTx(0, COINBASE)])
        self.assertNotEqual(other.short_id(block.transactions[1].wtxid()), short_ids[0])
        self.assertLess(max(short_ids), 2**48)

    def test_short_id_by_hand(self):
        """SipHash-2-4 keyed by SHA-256(header || nonce), low 6 bytes (BIP152)."""
        import hashlib

        message = EXAMPLES["cmpctblock"]
        key = hashlib.sha256(HEADER.encode() + struct.pack("<Q", message.nonce)).digest()
        k0, k1 = struct.unpack("<QQ", key[:16])
        wtxid = tx(9).wtxid()
        self.assertEqual(message.short_id(wtxid), siphash24(k0, k1, wtxid) & (2**48 - 1))

    def test_invalid_compact_blocks_are_misbehaviour(self):
        """Core's InitData says READ_STATUS_INVALID: Misbehaving."""
        cases = [
            ([], []),  # nothing to reconstruct
            ([1], [PrefilledTx(2, COINBASE)]),  # a gap one short id cannot fill
            ([1, 2], [PrefilledTx(1, COINBASE), PrefilledTx(1, tx())]),  # not ascending
            ([0] * 70000, [PrefilledTx(0x10000, COINBASE)]),  # over a uint16
            ([0] * MAX_CMPCT_TRANSACTIONS, [PrefilledTx(0, COINBASE)]),  # too many
        ]
        for short_ids, prefilled in cases:
            error = self.assertRaises(Misbehaviour, CmpctBlock, HEADER, 0, short_ids, prefilled)
            self.assertEqual((error.message_type, error.field), ("cmpctblock", "prefilled"))
        # The same found while decoding: index 0 then a difference of 1 past
        # a block with no short ids.
        payload = (HEADER.encode() + bytes(8) + b"\x00" + b"\x02"
                   + b"\x00" + COINBASE.serialize() + b"\x01" + tx().serialize())
        error = self.assertRaises(Misbehaviour, decode_message, "cmpctblock", payload)
        self.assertEqual((error.message_type, error.field), ("cmpctblock", "prefilled"))

    def test_malformed_compact_blocks(self):
        base = HEADER.encode() + bytes(8)
        for payload, field in [
            (base + compact_size(100) + bytes(599), "short_ids"),
            (base + b"\x00" + compact_size(1000) + bytes(100), "prefilled"),
            # Core reads the difference into a uint16_t.
            (base + b"\x00\x01" + compact_size(0x10000) + COINBASE.serialize(),
             "prefilled.index"),
            (base + b"\x00\x01\x00" + COINBASE.serialize()[:-1], "prefilled.tx.lock_time"),
        ]:
            error = self.assertRaises(MalformedMessage, decode_message, "cmpctblock", payload)
            self.assertEqual((error.message_type, error.field), ("cmpctblock", field))

    def test_short_id_validation(self):
        for bad in (-1, 2**48, "1"):
            error = self.assertRaises(ProtocolError, CmpctBlock, HEADER, 0, [bad], [])
            self.assertEqual(error.field, "short_ids")


class PropertyTests(SynchronousTestCase):
    """Round trips of random instances, and python-bitcoinlib agreeing on each."""

    @FAST
    @given(txs)
    def test_tx_round_trip_and_oracle(self, transaction):
        payload = transaction.encode_payload()
        self.assertEqual(decode_message("tx", payload), transaction)
        if transaction.version < 2**31:  # python-bitcoinlib packs it signed
            oracle = to_bitcoinlib(transaction)
            self.assertEqual(oracle.serialize(), payload)
            self.assertEqual(oracle.GetTxid(), transaction.txid())
            self.assertEqual(oracle.GetHash(), transaction.wtxid())

    @FAST
    @given(STRATEGIES["block"])
    def test_block_round_trip_and_oracle(self, block):
        payload = block.encode_payload()
        self.assertEqual(decode_message("block", payload), block)
        if all(t.version < 2**31 for t in block.transactions):
            oracle = bl.CBlock.stream_deserialize(io.BytesIO(payload))
            self.assertEqual(oracle.serialize(), payload)
            self.assertEqual(oracle.GetHash(), block.hash())
            if block.transactions:
                self.assertEqual(oracle.calc_merkle_root(),
                                 merkle_root(t.txid() for t in block.transactions))

    @FAST
    @given(st.sampled_from(["merkleblock", "cmpctblock"]).flatmap(
        lambda c: st.tuples(st.just(c), STRATEGIES[c])))
    def test_other_round_trips(self, case):
        command, message = case
        self.assertEqual(decode_message(command, message.encode_payload()), message)

    @FAST
    @given(st.sampled_from(sorted(STRATEGIES)), st.binary(max_size=400))
    def test_arbitrary_payloads(self, command, payload):
        try:
            decode_message(command, payload)
        except ProtocolError as error:
            self.assertEqual(error.message_type, command)


class BitcoinlibToBitpeerTests(SynchronousTestCase):
    def test_bitcoinlib_transaction(self):
        oracle = bl.CMutableTransaction(
            [bl.CMutableTxIn(bl.COutPoint(H1, 3), bl.CScript(b"\x51"), 7)],
            [bl.CMutableTxOut(12345, bl.CScript(b"\x00\x14" + bytes(20)))],
            nLockTime=99,
            nVersion=2,
            witness=bl.CTxWitness([bl.CTxInWitness(bl.CScriptWitness([b"\x01\x02", b""]))]),
        )
        transaction = decode_message("tx", oracle.serialize())
        self.assertEqual(transaction.inputs[0].witness, (b"\x01\x02", b""))
        self.assertEqual(transaction.txid(), oracle.GetTxid())
        self.assertEqual(transaction.encode_payload(), oracle.serialize())

    def test_bitcoinlib_block(self):
        oracle = bl.CBlock.deserialize(GENESIS)
        block = Block(
            BlockHeader(oracle.nVersion, oracle.hashPrevBlock, oracle.hashMerkleRoot,
                        oracle.nTime, oracle.nBits, oracle.nNonce),
            [decode_message("tx", t.serialize()) for t in oracle.vtx],
        )
        self.assertEqual(block.encode_payload(), GENESIS)
        self.assertEqual(block.hash(), oracle.GetHash())


class ReadmeTests(SynchronousTestCase):
    """The README's codec example runs as written."""

    def test_example(self):
        with open(README, encoding="utf-8") as stream:
            text = stream.read()
        section = text.split("**Blocks, transactions and hashes.**", 1)[1]
        block = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", section).group(1)
        code = "\n".join(line[4:] for line in block.splitlines())
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, README, "exec"), {})
        self.assertEqual(output.getvalue(), GENESIS_HASH + "\n")
