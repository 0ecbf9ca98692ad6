"""
Primitive encodings of the Bitcoin wire format.

Integers are little-endian except ports, which are big-endian.  CompactSize is
decoded exactly as Core's ``ReadCompactSize`` does: a value that fits a shorter
form is rejected as non-canonical, and (unless the caller says otherwise) a
value over ``MAX_SIZE`` is rejected as too large.  Everything here is pure: no
I/O, no Twisted.
"""

import hashlib
import struct

from .errors import MalformedMessage

#: serialize.h: the generic bound on any deserialized size.
MAX_SIZE = 0x02000000

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_PORT = struct.Struct(">H")

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def hash256(data):
    """Double SHA-256, Bitcoin's checksum and hash function."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def checksum(payload):
    """The 4-byte frame checksum of a payload."""
    if not payload:
        # verack, sendaddrv2, wtxidrelay, getaddr: most frames of a crawl.
        return _EMPTY_CHECKSUM
    return hash256(payload)[:4]


_EMPTY_CHECKSUM = hash256(b"")[:4]


def compact_size(n):
    """Encode ``n`` as a canonical CompactSize."""
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= UINT32_MAX:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def var_bytes(data):
    """Encode bytes with their CompactSize length in front."""
    return compact_size(len(data)) + data


def var_str(text):
    """
    Encode a string as CompactSize-prefixed UTF-8.  Strings decoded from the
    wire carry undecodable bytes as surrogate escapes, which go back out as the
    same bytes.
    """
    return var_bytes(text.encode("utf-8", "surrogateescape"))


def port_bytes(port):
    """A port as the two big-endian bytes the wire uses."""
    return _PORT.pack(port)


class Reader:
    """
    A cursor over one message's payload.

    Each read names the field it reads, so that a short or malformed payload
    raises MalformedMessage saying which field ran out and why.  The decoder
    that owns the reader fills in the message type.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def remaining(self):
        """How many bytes are left unread."""
        return len(self.data) - self.pos

    def at_end(self):
        """True when every byte has been read."""
        return self.pos >= len(self.data)

    def take(self, n, field):
        """Read exactly ``n`` raw bytes."""
        end = self.pos + n
        if end > len(self.data):
            raise MalformedMessage(
                f"needs {n} bytes, {len(self.data) - self.pos} left", field=field
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _unpack(self, fmt, field):
        try:
            (value,) = fmt.unpack_from(self.data, self.pos)
        except struct.error:
            raise MalformedMessage(
                f"needs {fmt.size} bytes, {len(self.data) - self.pos} left",
                field=field,
            ) from None
        self.pos += fmt.size
        return value

    def u8(self, field):
        """Read an unsigned byte."""
        if self.pos >= len(self.data):
            raise MalformedMessage("needs 1 byte, 0 left", field=field)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def boolean(self, field):
        """Read a bool: any non-zero byte is true, as in Core."""
        return self.u8(field) != 0

    def u16(self, field):
        """Read a little-endian uint16."""
        return self._unpack(_U16, field)

    def u32(self, field):
        """Read a little-endian uint32."""
        return self._unpack(_U32, field)

    def i32(self, field):
        """Read a little-endian int32."""
        return self._unpack(_I32, field)

    def u64(self, field):
        """Read a little-endian uint64."""
        return self._unpack(_U64, field)

    def i64(self, field):
        """Read a little-endian int64."""
        return self._unpack(_I64, field)

    def port(self, field):
        """Read a big-endian uint16 port."""
        return self._unpack(_PORT, field)

    def compact_size(self, field, range_check=True):
        """
        Read a canonical CompactSize.  With ``range_check`` (Core's default)
        a value over MAX_SIZE is rejected: counts and lengths use it, service
        bits in addrv2 do not.
        """
        first = self.u8(field)
        if first < 0xFD:
            return first
        if first == 0xFD:
            value, smallest = self.u16(field), 0xFD
        elif first == 0xFE:
            value, smallest = self.u32(field), 0x10000
        else:
            value, smallest = self.u64(field), 0x100000000
        if value < smallest:
            raise MalformedMessage("non-canonical CompactSize", field=field)
        if range_check and value > MAX_SIZE:
            raise MalformedMessage(
                f"CompactSize {value} exceeds MAX_SIZE {MAX_SIZE}", field=field
            )
        return value

    def var_bytes(self, field, limit=MAX_SIZE):
        """Read CompactSize-prefixed bytes of at most ``limit`` bytes."""
        length = self.compact_size(field)
        if length > limit:
            raise MalformedMessage(
                f"length {length} exceeds limit {limit}", field=field
            )
        return self.take(length, field)

    def var_str(self, field, limit=MAX_SIZE):
        """
        Read a CompactSize-prefixed string; bytes that are not UTF-8 are kept
        as surrogate escapes so that nothing is lost.
        """
        return self.var_bytes(field, limit).decode("utf-8", "surrogateescape")

    def rest(self):
        """Read every remaining byte."""
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk
