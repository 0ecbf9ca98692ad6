"""
Lists of addr and addrv2 entries: the hot path of a crawl.

A crawl of the real network receives some ten million gossiped entries, most
of them repeats of addresses already known.  Each decoder here takes a set of
``known`` entry keys (``entry_keys``) and builds objects only for the entries
not in it: a repeat costs a slice and a set lookup, not a decode.  For addrv2
the split is done by regular expressions over the common entry shapes (the
five known networks, one-byte lengths, canonical services), in C; any other
shape falls back to the full decoder, which applies every rule.
"""

import re
import struct
from operator import itemgetter

from .address import (
    ADDRESS_LENGTHS,
    IPV4_MAPPED_PREFIX,
    MAX_ADDRV2_SIZE,
    AddrEntry,
    Network,
    NetworkAddress,
    _NETWORK_BY_ID,
)
from .encoding import Reader, compact_size, port_bytes
from .errors import MalformedMessage


def entry_keys(address):
    """
    The keys under which the address appears in raw entries: its v2 form
    (network id, length, address, port) and, for IPv4 and IPv6, its v1 form
    (16 bytes and port).  Time and services are not part of a key.
    """
    port = port_bytes(address[2])
    v2 = address.v2_bytes() + port
    return (address.v1_bytes() + port, v2) if address.is_v1_compatible else (v2,)


#: A v1 entry (30 bytes) and its key (bytes 12..30: address and port).
_V1_SPLIT = re.compile(rb"(?s)(.{12}(.{18}))")

#: Services as a CompactSize: one byte below 0xfd, or 0xfd and a canonical
#: 16-bit value (low byte first: at least 0xfd).
_SERVICES = rb"(?:[\x00-\xfc]|\xfd(?:[\xfd-\xff]\x00|.[\x01-\xff]))"
#: Network id and length of the five known networks, then the address.
_ADDRESS = rb"(?:\x01\x04.{4}|\x02\x10.{16}|\x04\x20.{32}|\x05\x20.{32}|\x06\x10.{16})"
#: A v2 entry of a common shape, and its key (network id through port).
_V2_SPLIT = re.compile(rb"(?s)(.{4}" + _SERVICES + rb"(" + _ADDRESS + rb"..))")
_first = itemgetter(0)


def _drop_known(entries, end, known):
    """Filter decoded entries by key (the slow path's equivalent of skipping)."""
    return [e for e in entries if entry_keys(e[2])[-1] not in known], end


_V1_ENTRY = struct.Struct("<IQ16sH")
V1_ENTRY_SIZE = _V1_ENTRY.size  # 30


def decode_v1_entries(data, count, known=None):
    """
    Decode ``count`` 30-byte v1 entries filling ``data`` exactly, leaving out
    those whose key (see ``entry_keys``) is in the set ``known``.

    The port is big-endian on the wire while the rest is little-endian, so it
    is unpacked little-endian and byte-swapped: one struct call per entry.
    """
    if known:
        data = b"".join(e for e, key in _V1_SPLIT.findall(data) if key not in known)
    new, entry_cls, addr_cls = tuple.__new__, AddrEntry, NetworkAddress
    mapped, ipv4, ipv6 = IPV4_MAPPED_PREFIX, Network.IPV4, Network.IPV6
    out = []
    append = out.append
    for time, services, ip, port in _V1_ENTRY.iter_unpack(data):
        port = ((port & 0xFF) << 8) | (port >> 8)
        if ip[:12] == mapped:
            address = new(addr_cls, (ipv4, ip[12:], port))
        else:
            address = new(addr_cls, (ipv6, ip, port))
        append(new(entry_cls, (time, services, address)))
    return out


_V1_HEAD = struct.Struct("<IQ16s")


def encode_v1_entries(entries):
    """Encode entries in the 30-byte v1 form (no count prefix)."""
    pack = _V1_HEAD.pack
    return b"".join(
        pack(time, services, address.v1_bytes()) + port_bytes(address[2])
        for time, services, address in entries
    )


_U32 = struct.Struct("<I")


def decode_v2_entries(data, pos, count, known=None):
    """
    Decode ``count`` BIP155 entries from ``data`` at ``pos``; return the list
    and the position after it.  Entries whose key (see ``entry_keys``) is in
    the set ``known`` are left out of the list.

    Follows Core's deserializer: a known network with the wrong length, an
    address over 512 bytes, a non-canonical CompactSize or a short payload
    raise MalformedMessage (Core loses the whole message); an unknown network
    id is kept as an unknown, never-valid address and decoding goes on.
    """
    if known:
        pairs = _V2_SPLIT.findall(data, pos)
        # Matches never overlap, so if they hold every remaining byte they
        # are contiguous: the payload is exactly ``count`` well-formed
        # entries (the common case), and only the new ones need objects.
        if len(pairs) == count and sum(map(len, map(_first, pairs))) == len(data) - pos:
            fresh = [e for e, key in pairs if key not in known]
            return decode_v2_entries(b"".join(fresh), 0, len(fresh))[0], len(data)
        return _drop_known(*decode_v2_entries(data, pos, count), known)
    new, entry_cls, addr_cls = tuple.__new__, AddrEntry, NetworkAddress
    lengths, networks = ADDRESS_LENGTHS, _NETWORK_BY_ID
    unpack_time = _U32.unpack_from
    end = len(data)
    out = []
    append = out.append
    for _ in range(count):
        # Fast paths: services as a 1- or 3-byte CompactSize (0x409 and 0xc09
        # take 3) and a 1-byte address length, which is every entry Core
        # writes today; anything longer goes through Reader.
        if pos + 7 > end:
            raise MalformedMessage("entry truncated", field="addresses")
        (time,) = unpack_time(data, pos)
        services = data[pos + 4]
        if services < 0xFD:
            pos += 5
        elif services == 0xFD:
            services = data[pos + 5] | data[pos + 6] << 8
            if services < 0xFD:
                raise MalformedMessage("non-canonical CompactSize", field="services")
            pos += 7
        else:
            services, pos = _read_compact(data, pos + 4, "services", False)
        if pos + 2 > end:
            raise MalformedMessage("entry truncated", field="addresses")
        net_id = data[pos]
        length = data[pos + 1]
        pos += 2
        if length >= 0xFD:
            length, pos = _read_compact(data, pos - 1, "address length", True)
        network = networks.get(net_id, net_id)
        expected = lengths.get(network)
        if expected is not None and length != expected:
            raise MalformedMessage(
                f"BIP155 {network.name} address with length {length} (should be {expected})",
                field="addresses",
            )
        if length > MAX_ADDRV2_SIZE:
            raise MalformedMessage(
                f"address too long: {length} > {MAX_ADDRV2_SIZE}", field="addresses"
            )
        stop = pos + length
        if stop + 2 > end:
            raise MalformedMessage("entry truncated", field="addresses")
        address = new(addr_cls, (network, data[pos:stop], data[stop] << 8 | data[stop + 1]))
        append(new(entry_cls, (time, services, address)))
        pos = stop + 2
    return out, pos


def _read_compact(data, pos, field, range_check):
    """The slow path of decode_v2_entries: a multi-byte CompactSize at pos."""
    reader = Reader(data, pos)
    value = reader.compact_size(field, range_check)
    return value, reader.pos


def encode_v2_entries(entries):
    """Encode entries in the BIP155 form (no count prefix)."""
    return b"".join(
        _U32.pack(time) + compact_size(services) + address.v2_bytes() + port_bytes(address[2])
        for time, services, address in entries
    )
