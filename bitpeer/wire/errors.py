"""
The ProtocolError tree: every way bytes from a peer can be wrong.

Bitcoin Core answers bad input in one of two ways, and a peer that wants to be
heard must know which: some faults close the connection (wrong magic, a header
declaring an oversize payload, a semantic limit such as more than 1000 addr
entries), the rest lose one message and the connection carries on (a bad
checksum, an invalid message type, a payload that fails to deserialize).  The
class says which: ``error.fatal`` is true for the first kind.

ProtocolError is a ValueError, so building a message with out-of-range fields
raises the same errors, with the same field and rule, as decoding one.
"""


class ProtocolError(ValueError):
    """
    Input that breaks a rule of the Bitcoin P2P protocol.

    @ivar message_type: the message type (command) concerned, or None for
        errors of the frame itself.
    @ivar field: the field that broke the rule, or None.
    @ivar rule: a short statement of the rule that was broken.
    """

    fatal = False

    def __init__(self, rule, *, field=None, message_type=None):
        self.rule = rule
        self.field = field
        self.message_type = message_type
        super().__init__(rule)

    def __str__(self):
        where = ".".join(part for part in (self.message_type, self.field) if part)
        return f"{where}: {self.rule}" if where else self.rule

    def __reduce__(self):
        return (
            _rebuild,
            (type(self), self.rule, self.field, self.message_type),
        )


def _rebuild(cls, rule, field, message_type):
    """Unpickle a ProtocolError (keyword-only arguments need this)."""
    return cls(rule, field=field, message_type=message_type)


class FatalProtocolError(ProtocolError):
    """A fault after which Core closes the connection."""

    fatal = True


class DroppedMessage(ProtocolError):
    """A fault that loses one message; Core keeps the connection open."""


class BadMagic(FatalProtocolError):
    """The header's message start is not this network's magic."""


class PayloadTooLarge(FatalProtocolError):
    """The header declares a payload longer than the limit."""


class FrameBudgetExhausted(FatalProtocolError):
    """
    Not a rule of Core's but the crawler's own defence: the partial frames
    of every connection sharing a FrameBudget would hold more than it
    allows, and this connection's frame is the largest (FrameBudget says
    why that one goes).  The connection must close.
    """


class Misbehaviour(FatalProtocolError):
    """
    A message that deserializes but breaks a semantic limit (more than 1000
    addresses, 50000 inventory entries, 2000 headers...).  Core disconnects and
    discourages the sender.
    """


class BadChecksum(DroppedMessage):
    """The payload does not match the header's checksum."""


class BadMessageType(DroppedMessage):
    """The 12-byte message type has bytes outside 0x20..0x7e or after a NUL."""


class MalformedMessage(DroppedMessage):
    """The payload does not deserialize: truncated, non-canonical, too long."""


class OversizeMessage(DroppedMessage):
    """
    The header declares a payload longer than its message type can carry
    (Message.max_payload), for a type of fixed fields or bounded strings
    (version, ping, feefilter...), within MAX_PROTOCOL_MESSAGE_LENGTH.

    Dropped, not fatal, because Core never closes for it: Core has no
    per-type limit at the frame, so it reads the message, and such a payload
    either has a string over its limit (a user agent over 256 bytes), whose
    deserialization throws (the message is lost, the connection kept), or
    bytes after the last field, which Core ignores.  Closing would make us
    give up on peers Core keeps talking to.  Dropping costs nothing: the
    decoder discards the payload as it arrives, without buffering it.
    """


class TooManyEntries(Misbehaviour):
    """
    The header declares a vector message (addr, addrv2, inv, getdata,
    headers, getheaders, getblocks) longer than its limit's worth of
    entries at their largest.  Its count is over the limit, which Core
    calls Misbehaving (disconnect), unless the peer padded the entries with
    bytes no implementation writes; telling the two apart would need the
    payload, and not buffering it is the point.  Fatal, as in Core and btcd.
    """
