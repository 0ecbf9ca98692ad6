"""
The address messages: getaddr asks, addr (v1: IPv4 and IPv6) and addrv2
(BIP155: every network) answer, at most MAX_ADDR_TO_SEND entries each.

Decoding can leave out the entries the caller already knows (``known``), so
a crawler pays nothing for the addresses it has seen before.
"""

from typing import ClassVar

import attr

from ..address import MAX_ADDRV2_SIZE, AddrEntry
from ..addrlist import (
    V1_ENTRY_SIZE,
    decode_v1_entries,
    decode_v2_entries,
    encode_v1_entries,
    encode_v2_entries,
)
from ..encoding import Reader, compact_size
from ..errors import Misbehaviour, TooManyEntries
from .base import (
    MAX_ADDR_TO_SEND,
    Message,
    _compact_size_length,
    _count,
    _Empty,
    _fail,
    _int_range,
    _items,
)

#: The largest v2 entry (BIP155, Core's CAddress V2_NETWORK): time, services
#: as a CompactSize of up to 9 bytes (Core reads it without a range check),
#: network id, address length (CompactSize of MAX_ADDRV2_SIZE) and the
#: address, port.
MAX_V2_ENTRY_SIZE = 4 + 9 + 1 + _compact_size_length(MAX_ADDRV2_SIZE) + MAX_ADDRV2_SIZE + 2


@attr.frozen
class GetAddr(_Empty):
    """Asks for addresses.  Core answers once per connection, after verack."""

    command: ClassVar[str] = "getaddr"


def _trusted(cls, **fields):
    """
    Build a frozen message from fields the decoder has already checked,
    without running the validators again: a 1000-entry addr would otherwise
    pay for a thousand isinstance checks it cannot fail.
    """
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance


def _v1_entries(instance, attribute, value):
    for entry in value:
        if not entry.address.is_v1_compatible:
            _fail(
                instance,
                attribute,
                f"{entry.address.network_name} address has no v1 form; use addrv2",
            )


def _skipped():
    return attr.ib(default=0, validator=_int_range(0, MAX_ADDR_TO_SEND, "0..1000"))


@attr.frozen
class Addr(Message):
    """
    Addresses in the v1 form: IPv4 and IPv6 only, at most 1000.

    ``skipped`` counts entries the decoder left out because the caller
    already knew them (``decode_payload(payload, known)``); it is never sent.
    """

    command: ClassVar[str] = "addr"
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_ADDR_TO_SEND
    #: MAX_ADDR_TO_SEND (1000) entries of 30 bytes (PROTOCOL.md 4.4) and
    #: their count: 30,003.  More entries is Misbehaving in Core.
    max_payload: ClassVar[int] = (
        _compact_size_length(MAX_ADDR_TO_SEND) + MAX_ADDR_TO_SEND * V1_ENTRY_SIZE
    )

    addresses: tuple = attr.ib(
        converter=tuple,
        validator=[_items(AddrEntry, MAX_ADDR_TO_SEND), _v1_entries],
    )
    skipped: int = _skipped()

    def encode_payload(self):
        return compact_size(len(self.addresses)) + encode_v1_entries(self.addresses)

    @classmethod
    def decode_payload(cls, payload, known=None):
        r = Reader(payload)
        count = _count(r, "addresses", MAX_ADDR_TO_SEND, V1_ENTRY_SIZE)
        body = r.take(count * V1_ENTRY_SIZE, "addresses")
        entries = decode_v1_entries(body, count, known)
        return _trusted(cls, addresses=tuple(entries), skipped=count - len(entries))


@attr.frozen
class AddrV2(Message):
    """
    BIP155 addresses: every network, at most 1000.  Entries of networks Core
    does not know (Tor v2, future ids) are kept, never valid.  ``skipped`` is
    as for Addr.
    """

    command: ClassVar[str] = "addrv2"
    oversize_error: ClassVar[type] = TooManyEntries
    max_entries: ClassVar[int] = MAX_ADDR_TO_SEND
    #: 1000 entries of the largest BIP155 form, MAX_V2_ENTRY_SIZE (531: a
    #: 512-byte address, 9-byte services), and their count: 531,003.
    max_payload: ClassVar[int] = (
        _compact_size_length(MAX_ADDR_TO_SEND) + MAX_ADDR_TO_SEND * MAX_V2_ENTRY_SIZE
    )

    addresses: tuple = attr.ib(
        converter=tuple, validator=_items(AddrEntry, MAX_ADDR_TO_SEND)
    )
    skipped: int = _skipped()

    def encode_payload(self):
        return compact_size(len(self.addresses)) + encode_v2_entries(self.addresses)

    @classmethod
    def decode_payload(cls, payload, known=None):
        r = Reader(payload)
        count = r.compact_size("addresses")
        entries, _ = decode_v2_entries(payload, r.pos, count, known)
        if count > MAX_ADDR_TO_SEND:
            raise Misbehaviour(
                f"{count} entries exceed the limit of {MAX_ADDR_TO_SEND}",
                field="addresses",
            )
        return _trusted(cls, addresses=tuple(entries), skipped=count - len(entries))
