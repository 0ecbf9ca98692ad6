"""
The v1 message frame: a 24-byte header (magic, 12-byte message type, payload
length, checksum) followed by the payload.

FrameDecoder takes bytes in chunks of any size and returns whole frames.  It
reacts to bad input the way Core's V1Transport does: a wrong magic or a
declared length over the limit is fatal (the connection must close), and the
length is checked from the header alone, before any payload is buffered.  A
bad checksum or an invalid message type loses that one frame: the decoder
reports it and carries on with the next.

What a peer can make it hold is bounded three ways, all decided from the
header: each message type by its own largest legal payload
(messages.MAX_PAYLOADS); payloads of types the owner does not want are
discarded as they arrive instead of buffered; and a FrameBudget shared by
many decoders bounds the partial frames of all their connections together.
"""

import functools
import struct

import attr

from .encoding import checksum
from .errors import (
    BadChecksum,
    BadMagic,
    BadMessageType,
    FrameBudgetExhausted,
    PayloadTooLarge,
    ProtocolError,
)
from .messages import (
    MAX_PAYLOADS,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MESSAGE_TYPES,
    decode_message,
)

HEADER_SIZE = 24
MESSAGE_TYPE_SIZE = 12
#: Partial payloads up to this size are buffered without asking the
#: FrameBudget: every handshake message fits (a version is at most 344
#: bytes), so a connection's first exchanges never wait on the others.
#: Beyond the budget, one connection holds at most HEADER_SIZE + this much.
UNRESERVED_PAYLOAD = 4096
#: The default FrameBudget: room for about a thousand honest getaddr answers
#: in flight at once (1000 addrv2 entries are 15-35 kB), or sixty addrv2
#: payloads at their legal maximum.
DEFAULT_FRAME_BUDGET = 32 * 1000 * 1000

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


class FrameBudget:
    """
    The bytes that partial frames may hold across every connection sharing
    it (one per factory by default, so one per crawl).

    A decoder reserves a frame's declared payload length before it buffers
    a partial payload longer than UNRESERVED_PAYLOAD, and releases it when
    the frame completes, fails, or the connection closes.  Reserving the
    declared length up front, rather than each chunk as it arrives, makes
    the bound hold whatever the peers do later, and costs two dictionary
    operations per large frame that spans reads, none per chunk.

    When a reservation does not fit, the connection wanting the most
    loses: the largest holder, or the one asking if it wants more than any
    holder.  Among equal sizes the oldest reservation loses.  Its decoder
    fails with FrameBudgetExhausted (its buffer freed at once) and its
    owner closes the connection.  Why this way:

    - Honest peers want little: a Core getaddr answer is 15-35 kB, and is
      whole within milliseconds of its header.  A peer holding a large
      frame for long is the one trickling, so size first and then age
      picks the attacker, and an honest peer loses only once the budget is
      full of frames no larger than its own that started before it.
    - Evicting frees memory at once and frees the crawl's slot for another
      node; pausing the reader (Core's fPauseRecv) would keep what is held
      and leave an honest peer waiting behind a trickler that never ends.
    - One eviction always makes room: the victim holds at least what is
      asked.

    Pure, like the rest of wire/: no Twisted, no clock.

    @ivar limit: the bound, in bytes.
    @ivar used: bytes reserved now.
    @ivar evicted: reservations taken back to make room for another.
    @ivar refused: reservations refused because the asker wanted the most.
    """

    def __init__(self, limit=DEFAULT_FRAME_BUDGET):
        if not limit > 0:
            raise ValueError(f"a frame budget must be positive, got {limit!r}")
        self.limit = limit
        self.used = 0
        self.evicted = 0
        self.refused = 0
        #: holder -> (bytes, sequence number of the reservation).
        self._holders = {}
        self._sequence = 0

    def __repr__(self):
        return f"<FrameBudget {self.used}/{self.limit} bytes, {len(self._holders)} holders>"

    @property
    def holders(self):
        """How many decoders hold a reservation."""
        return len(self._holders)

    def held_by(self, holder):
        """The bytes ``holder`` has reserved (0 if none)."""
        held = self._holders.get(holder)
        return 0 if held is None else held[0]

    def reserve(self, holder, size):
        """
        Reserve ``size`` bytes for ``holder`` (a FrameDecoder; it holds one
        reservation at most, so an earlier one is released first).  True if
        granted, possibly after evicting the largest other holder; False if
        ``holder`` itself wants the most, and must give up its frame.
        """
        self.release(holder)
        if self.used + size > self.limit:
            victim = self._largest()
            if victim is None or self._holders[victim][0] < size:
                self.refused += 1
                return False
            victim_size = self._holders[victim][0]
            self.release(victim)
            self.evicted += 1
            victim._evicted(
                FrameBudgetExhausted(
                    f"partial frames of all connections would pass the frame budget of "
                    f"{self.limit} bytes; this connection's frame of {victim_size} bytes "
                    f"was the largest (another asked for {size})"
                )
            )
        self._sequence += 1
        self._holders[holder] = (size, self._sequence)
        self.used += size
        return True

    def release(self, holder):
        """Give back what ``holder`` reserved; nothing if it holds nothing."""
        held = self._holders.pop(holder, None)
        if held is not None:
            self.used -= held[0]

    def _largest(self):
        # O(holders), but only when the budget is full.
        best, best_key = None, None
        for holder, (size, sequence) in self._holders.items():
            key = (size, -sequence)
            if best_key is None or key > best_key:
                best, best_key = holder, key
        return best


class FrameDecoder:
    """
    Incremental decoder of v1 frames.

    ``feed(data)`` returns, in order, a Frame for each complete frame and a
    ProtocolError for each fault.  A DroppedMessage (bad checksum, invalid
    message type, a version or other fixed message longer than its type
    allows) stands where its frame would have been and decoding goes on.  A
    FatalProtocolError (wrong magic, over 4 MB, a vector longer than its
    limit allows, the frame budget) ends the list, and every later
    ``feed`` returns it again: after it the stream cannot be resynchronised
    and the connection must close.  Frames completed before a fault are
    never lost.

    ``wanted`` (a container of message types, None for all) names the types
    the owner needs whole.  The payload of any other type, and of a frame
    that is dropped from its header (invalid type, over its type's
    maximum), is not buffered: the decoder counts down its bytes and
    discards them as they arrive.  Its checksum therefore cannot be checked,
    which is harmless: nothing reads it.  ``skipped`` counts the unwanted
    frames.

    ``budget`` (a FrameBudget, or None) is reserved from before a partial
    payload over UNRESERVED_PAYLOAD is buffered.  If another decoder's
    reservation evicts this one, ``on_evicted(error)`` is called (the owner
    closes the connection) and the decoder is dead from then on.  ``close()``
    gives back the reservation; the owner calls it when the connection ends.

    At most one header plus the payload of one wanted frame are buffered,
    the payload no longer than its type's maximum, and bytes trickling in
    are only appended until the frame they belong to is whole.
    """

    def __init__(self, magic, max_payload=MAX_PROTOCOL_MESSAGE_LENGTH, *, wanted=None,
                 budget=None, on_evicted=None):
        self.magic = magic
        self.max_payload = max_payload
        self.wanted = wanted
        self.budget = budget
        self.on_evicted = on_evicted
        self.skipped = 0
        self.fatal_error = None
        self._buffer = bytearray()
        self._need = HEADER_SIZE
        #: Payload bytes still to discard.
        self._skip = 0
        #: True while the budget holds a reservation of ours.
        self._reserved = False

    @property
    def buffered(self):
        """How many received bytes are waiting for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data):
        """Add received bytes; return the frames and faults they complete."""
        if self.fatal_error is not None:
            return [self.fatal_error]
        pos = 0
        if self._skip:
            size = len(data)
            if size <= self._skip:
                self._skip -= size
                return []
            pos, self._skip = self._skip, 0
        elif self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._reserved:
                # The frame it was for completes in this call.
                self._reserved = False
                self.budget.release(self)
        out = []
        size = len(data)
        unpack_from, magic, limit = _HEADER.unpack_from, self.magic, self.max_payload
        wanted, limits = self.wanted, MAX_PAYLOADS
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
            start = pos + HEADER_SIZE
            end = start + length
            command = _message_type(raw_type)
            if command is None:
                out.append(BadMessageType(f"invalid message type {raw_type!r}"))
            elif wanted is not None and command not in wanted:
                self.skipped += 1
            elif length > limits.get(command, limit):
                error = MESSAGE_TYPES[command].oversize(length)
                if error.fatal:
                    return self._die(out, error)
                out.append(error)
            else:
                # Wanted, and within its type's maximum.
                if end > size:
                    if length > UNRESERVED_PAYLOAD and self.budget is not None:
                        if not self.budget.reserve(self, length):
                            return self._die(
                                out,
                                FrameBudgetExhausted(
                                    f"a {command} of {length} bytes would pass the frame "
                                    f"budget of {self.budget.limit} bytes, which "
                                    f"{self.budget.holders} partial frames hold "
                                    f"{self.budget.used} of, and it is the largest",
                                    message_type=command,
                                ),
                            )
                        self._reserved = True
                    need = HEADER_SIZE + length
                    break
                payload = data[start:end]
                pos = end
                if checksum(payload) != check:
                    out.append(
                        BadChecksum(
                            f"checksum {check.hex()} does not match payload",
                            message_type=command,
                        )
                    )
                    continue
                out.append(Frame(command, payload))
                continue
            # Dropped or unwanted from its header alone: discard the payload.
            if end > size:
                self._skip = end - size
                pos = size
                need = HEADER_SIZE
                break
            pos = end
        if pos < size:
            self._buffer += memoryview(data)[pos:]
        self._need = need
        return out

    def close(self):
        """
        The connection is over: give back the budget's reservation, free the
        buffer, and drop the references to the owner (no cycle is left).
        """
        self._release()
        self._buffer = bytearray()
        self._skip = 0
        self.on_evicted = None
        self.wanted = None

    def _release(self):
        if self._reserved:
            self._reserved = False
            self.budget.release(self)

    def _evicted(self, error):
        """The budget took our reservation back (FrameBudget.reserve)."""
        self._reserved = False
        self.fatal_error = error
        self._buffer = bytearray()
        if self.on_evicted is not None:
            self.on_evicted(error)

    def _die(self, out, error):
        self.fatal_error = error
        self._release()
        self._buffer = bytearray()
        out.append(error)
        return out
