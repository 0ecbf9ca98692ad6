"""
One frozen attrs class per Bitcoin P2P message, and the registry from message
type to class.

Every class validates its fields against the protocol's limits when it is
built, so an invalid message cannot be constructed, let alone sent.  Decoding
accepts what Bitcoin Core accepts: trailing bytes are ignored, the optional
tail of ``version`` may be missing, and an unknown message type decodes to
UnknownMessage.  Anything else raises a ProtocolError naming the message type,
the field and the rule.

The classes live in one module per message family (handshake, addresses,
control, inventory, headers, transactions, blocks) over a shared base; this package is the one
place to import them from.
"""

from .addresses import MAX_V2_ENTRY_SIZE, Addr, AddrV2, GetAddr
from .base import (
    BIP0031_VERSION,
    FEEFILTER_VERSION,
    MAX_ADDR_TO_SEND,
    MAX_HEADERS_RESULTS,
    MAX_INV_SZ,
    MAX_LOCATOR_SZ,
    MAX_PCT_ADDR_TO_SEND,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MAX_REJECT_MESSAGE_LENGTH,
    MAX_SUBVERSION_LENGTH,
    MIN_PEER_PROTO_VERSION,
    PROTOCOL_VERSION,
    SENDHEADERS_VERSION,
    SHORT_IDS_BLOCKS_VERSION,
    WTXID_RELAY_VERSION,
    Message,
    getaddr_answer_size,
)
from .blocks import (
    MAX_CMPCT_TRANSACTIONS,
    SHORT_ID_SIZE,
    Block,
    CmpctBlock,
    MerkleBlock,
    PrefilledTx,
)
from .control import REJECT_DATA_SIZE, Alert, Ping, Pong, Reject
from .handshake import (
    UNSPECIFIED_ADDRESS,
    FeeFilter,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    VerAck,
    Version,
    WtxidRelay,
)
from .headers import BlockHeader, GetBlocks, GetHeaders, Headers
from .inventory import (
    MSG_BLOCK,
    MSG_CMPCT_BLOCK,
    MSG_FILTERED_BLOCK,
    MSG_TX,
    MSG_WITNESS_FLAG,
    MSG_WTX,
    GetData,
    Inv,
    InvVector,
    MemPool,
    NotFound,
)
from .transactions import MIN_TX_SIZE, OutPoint, Tx, TxIn, TxOut
from .registry import MAX_PAYLOADS, MESSAGE_TYPES, UnknownMessage, decode_message

__all__ = [
    # base: versions, limits, the Message class
    "BIP0031_VERSION",
    "FEEFILTER_VERSION",
    "MIN_PEER_PROTO_VERSION",
    "PROTOCOL_VERSION",
    "SENDHEADERS_VERSION",
    "SHORT_IDS_BLOCKS_VERSION",
    "WTXID_RELAY_VERSION",
    "MAX_ADDR_TO_SEND",
    "MAX_HEADERS_RESULTS",
    "MAX_INV_SZ",
    "MAX_LOCATOR_SZ",
    "MAX_PCT_ADDR_TO_SEND",
    "MAX_PROTOCOL_MESSAGE_LENGTH",
    "MAX_REJECT_MESSAGE_LENGTH",
    "MAX_SUBVERSION_LENGTH",
    "Message",
    "getaddr_answer_size",
    # handshake
    "UNSPECIFIED_ADDRESS",
    "FeeFilter",
    "SendAddrV2",
    "SendCmpct",
    "SendHeaders",
    "VerAck",
    "Version",
    "WtxidRelay",
    # addresses
    "MAX_V2_ENTRY_SIZE",
    "Addr",
    "AddrV2",
    "GetAddr",
    # control
    "REJECT_DATA_SIZE",
    "Alert",
    "Ping",
    "Pong",
    "Reject",
    # inventory
    "MSG_BLOCK",
    "MSG_CMPCT_BLOCK",
    "MSG_FILTERED_BLOCK",
    "MSG_TX",
    "MSG_WITNESS_FLAG",
    "MSG_WTX",
    "GetData",
    "Inv",
    "InvVector",
    "MemPool",
    "NotFound",
    # headers
    "BlockHeader",
    "GetBlocks",
    "GetHeaders",
    "Headers",
    # transactions
    "MIN_TX_SIZE",
    "OutPoint",
    "Tx",
    "TxIn",
    "TxOut",
    # blocks
    "MAX_CMPCT_TRANSACTIONS",
    "SHORT_ID_SIZE",
    "Block",
    "CmpctBlock",
    "MerkleBlock",
    "PrefilledTx",
    # registry
    "MAX_PAYLOADS",
    "MESSAGE_TYPES",
    "UnknownMessage",
    "decode_message",
]
