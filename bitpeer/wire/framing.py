"""
The v1 message frame: a 24-byte header (magic, 12-byte message type, payload
length, checksum) followed by the payload.

FrameDecoder takes bytes in chunks of any size and returns whole frames.  It
reacts to bad input the way Core's V1Transport does: a wrong magic or a
declared length over the limit is fatal (the connection must close), and the
length is checked from the header alone, before any payload is buffered.  A
bad checksum or an invalid message type loses that one frame: the decoder
reports it and carries on with the next.
"""

import functools
import struct

import attr

from .encoding import checksum
from .errors import (
    BadChecksum,
    BadMagic,
    BadMessageType,
    PayloadTooLarge,
    ProtocolError,
)
from .messages import decode_message

HEADER_SIZE = 24
MESSAGE_TYPE_SIZE = 12
#: net.h: the largest payload Core accepts.
MAX_PROTOCOL_MESSAGE_LENGTH = 4 * 1000 * 1000

_HEADER = struct.Struct("<4s12sI4s")


@functools.lru_cache(maxsize=256)
def _message_type(raw):
    """
    The message type in a header's 12 bytes, or None if Core's
    IsMessageTypeValid refuses it (printable ASCII, then only NULs).  A
    crawl sees a handful of types millions of times: cached.
    """
    name, _, padding = raw.partition(b"\0")
    if padding.strip(b"\0") or not all(0x20 <= b <= 0x7E for b in name):
        return None
    return name.decode("ascii")


def encode_frame(magic, message):
    """The complete frame of a message object for the network ``magic``."""
    return encode_raw_frame(magic, message.command, message.encode_payload())


def encode_raw_frame(magic, command, payload):
    """A frame from a message type and payload bytes."""
    raw_type = command.encode("ascii")
    if len(raw_type) > MESSAGE_TYPE_SIZE:
        # struct's "12s" would silently cut it to another message type.
        raise ProtocolError(
            f"message type {command!r} is longer than {MESSAGE_TYPE_SIZE} bytes",
            field="command",
            message_type=command,
        )
    return _HEADER.pack(magic, raw_type, len(payload), checksum(payload)) + payload


@attr.frozen
class Frame:
    """One received frame: message type and payload, checksum verified."""

    command: str
    payload: bytes

    def decode(self, known=None):
        """
        The message object; ProtocolError if the payload is bad.  ``known``
        is passed to decode_message (addr entries to leave out).
        """
        return decode_message(self.command, self.payload, known)


class FrameDecoder:
    """
    Incremental decoder of v1 frames.

    ``feed(data)`` returns, in order, a Frame for each complete frame and a
    ProtocolError for each fault.  A DroppedMessage (bad checksum, invalid
    message type) stands where its frame would have been and decoding goes
    on.  A FatalProtocolError (wrong magic, oversize) ends the list, and every
    later ``feed`` returns it again: after it the stream cannot be
    resynchronised and the connection must close.  Frames completed before a
    fault are never lost.

    At most one header plus ``max_payload`` bytes are buffered, and bytes
    trickling in are only appended until the frame they belong to is whole.
    """

    def __init__(self, magic, max_payload=MAX_PROTOCOL_MESSAGE_LENGTH):
        self.magic = magic
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._need = HEADER_SIZE
        self.fatal_error = None

    @property
    def buffered(self):
        """How many received bytes are waiting for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data):
        """Add received bytes; return the frames and faults they complete."""
        if self.fatal_error is not None:
            return [self.fatal_error]
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            data = bytes(self._buffer)
            self._buffer.clear()
        out = []
        pos = 0
        size = len(data)
        unpack_from, magic, limit = _HEADER.unpack_from, self.magic, self.max_payload
        while True:
            if size - pos < HEADER_SIZE:
                need = HEADER_SIZE
                break
            got_magic, raw_type, length, check = unpack_from(data, pos)
            if got_magic != magic:
                return self._die(
                    out,
                    BadMagic(f"wrong message start {got_magic.hex()}, expected {magic.hex()}"),
                )
            if length > limit:
                return self._die(
                    out, PayloadTooLarge(f"payload of {length} bytes exceeds {limit}")
                )
            end = pos + HEADER_SIZE + length
            if end > size:
                need = HEADER_SIZE + length
                break
            payload = data[pos + HEADER_SIZE : end]
            pos = end
            command = _message_type(raw_type)
            if command is None:
                out.append(BadMessageType(f"invalid message type {raw_type!r}"))
                continue
            if checksum(payload) != check:
                out.append(
                    BadChecksum(
                        f"checksum {check.hex()} does not match payload",
                        message_type=command,
                    )
                )
                continue
            out.append(Frame(command, payload))
        if pos < size:
            self._buffer += memoryview(data)[pos:]
        self._need = need
        return out

    def _die(self, out, error):
        self.fatal_error = error
        self._buffer.clear()
        out.append(error)
        return out
