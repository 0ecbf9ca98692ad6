"""
How each kind of simulated node talks.

The honest node is the project's own inbound BitcoinProtocol (what NodeFactory
builds), answering getaddr from the population.  Each misbehaving kind is the
smallest change that produces one fault seen on the real network, made
through BitcoinProtocol's public extension hooks only (version_message,
feature_negotiation, handshake_done, answer_getaddr, address_answer, frame,
sendMessage), so that the protocol's internals can change under them.  The
kinds that do not speak the protocol at all are plain Protocols.
"""

import struct

import attr
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from ..protocol import BitcoinProtocol, PeerOptions
from ..wire.encoding import checksum, compact_size
from ..wire.framing import encode_frame, encode_raw_frame
from ..wire.messages import (
    MAX_ADDR_TO_SEND,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    WTXID_RELAY_VERSION,
    AddrV2,
    VerAck,
    Version,
)


@attr.frozen
class Prebuilt:
    """A message whose payload is already encoded (the population's answers)."""

    command: str
    payload: bytes

    def encode_payload(self):
        return self.payload


def node_options(profile):
    """The PeerOptions a simulated node presents: its own version data."""
    return PeerOptions(
        user_agent=profile.user_agent,
        start_height=profile.start_height,
        services=profile.services,
        relay=True,
        version=profile.version,
    )


class DelayedCalls:
    """
    Calls a node has scheduled on its clock (delayed answers and writes),
    cancelled together when its connection ends, so that stop() leaves no
    timers behind.
    """

    def __init__(self, clock):
        self.clock = clock
        self.pending = set()

    def later(self, delay, function, *args):
        """Call ``function(*args)`` in ``delay`` seconds, unless cancelled."""
        call = None

        def run():
            self.pending.discard(call)
            function(*args)

        call = self.clock.callLater(delay, run)
        self.pending.add(call)

    def cancel(self):
        """Cancel every call still pending."""
        pending, self.pending = self.pending, set()
        for call in pending:
            if call.active():
                call.cancel()


class HonestNode(BitcoinProtocol):
    """
    Core's behaviour: BitcoinProtocol inbound, answering getaddr with the
    node's answer from the population, optionally after ``response_delay``
    and with every write delayed by the node's latency.  It and the kinds
    below change the protocol through its public hooks only.
    """

    def __init__(self, simnet, profile, address, random):
        super().__init__(
            simnet.network,
            simnet.options_for(profile),
            simnet.clock,
            random,
            simnet.nonces,
            inbound=True,
            address=address,
            address_source=lambda: simnet.population.answer_entries(profile.index),
        )
        self.simnet = simnet
        self.profile = profile
        self.delayed = DelayedCalls(simnet.clock)

    def connectionLost(self, reason):
        self.delayed.cancel()
        super().connectionLost(reason)

    def feature_negotiation(self, message):
        # A node older than 70016 predates wtxidrelay and BIP155: both are
        # unknown messages to it, ignored whenever they come.
        if self.profile.version >= WTXID_RELAY_VERSION:
            super().feature_negotiation(message)

    def address_answer(self):
        command, payload = self.simnet.population.answer(self.profile.index, self.wants_addrv2)
        self.simnet.count(self.profile.kind, "getaddr")
        return Prebuilt(command, payload)

    def answer_getaddr(self):
        delay = self.simnet.response_delay
        if delay:
            self.delayed.later(delay, super().answer_getaddr)
        else:
            super().answer_getaddr()

    def handshake_done(self, info):
        self.simnet.count(self.profile.kind, "handshakes")

    def sendMessage(self, message):
        latency = self.profile.latency
        if latency:
            self.delayed.later(latency, self.write_if_open, self.frame(message))
        else:
            super().sendMessage(message)

    def write_if_open(self, frame):
        """Write a frame made earlier, unless the connection has ended since
        (counted in ``bytes_sent`` as BitcoinProtocol.sendMessage counts)."""
        if self.transport.connected:
            self.bytes_sent += len(frame)
            self.transport.write(frame)


class NeverVerack(HonestNode):
    """Answers version with version (and wtxidrelay, sendaddrv2), never verack."""

    def sendMessage(self, message):
        if not isinstance(message, VerAck):
            super().sendMessage(message)


class SecondVersion(HonestNode):
    """Sends its version twice; Core ignores the second, and so must we."""

    def sendMessage(self, message):
        super().sendMessage(message)
        if isinstance(message, Version):
            super().sendMessage(message)


class NonceEcho(HonestNode):
    """Answers with the dialler's own nonce, as a connection to oneself would."""

    def version_message(self):
        return attr.evolve(super().version_message(), nonce=self.peer_version.nonce)


class WrongMagic(HonestNode):
    """Frames everything with another network's magic."""

    def frame(self, message):
        return encode_frame(bytes(b ^ 0xFF for b in self.network.magic), message)


class CorruptChecksum(HonestNode):
    """Every frame's checksum is wrong, so every message is dropped."""

    def frame(self, message):
        frame = bytearray(super().frame(message))
        frame[20] ^= 0xFF
        return bytes(frame)


class TooManyAddr(HonestNode):
    """Answers getaddr with 1001 entries: Core calls that misbehaving."""

    def address_answer(self):
        entries = self.simnet.population.answer_entries(self.profile.index, v2=False)
        entry = entries[0]
        body = b"".join(
            struct.pack("<IQ16s", entry.time, entry.services, entry.address.v1_bytes())
            + struct.pack(">H", entry.address.port)
            for _ in range(MAX_ADDR_TO_SEND + 1)
        )
        return Prebuilt("addr", compact_size(MAX_ADDR_TO_SEND + 1) + body)


class BadAddrV2(HonestNode):
    """Answers with an addrv2 whose IPv4 entry claims 5 bytes: Core drops it."""

    def address_answer(self):
        bad_entry = struct.pack("<I", self.simnet.population.now) + b"\x09\x01\x05" + bytes(5)
        return Prebuilt("addrv2", b"\x01" + bad_entry + b"\x20\x8d")


#: What a huge-trickle node announces, by its index modulo 3: a 4 MB block
#: (a type the crawler does not read), a 4 MB addrv2 (more than 1000 entries
#: can fill), and an addrv2 at its legal maximum (531,003 bytes, which the
#: crawler must buffer: its frame budget is what bounds those).
HUGE_TRICKLE_PLANS = (
    ("block", MAX_PROTOCOL_MESSAGE_LENGTH),
    ("addrv2", MAX_PROTOCOL_MESSAGE_LENGTH),
    ("addrv2", AddrV2.max_payload),
)


#: Zero payloads by length, shared by every huge-trickle node (4 MB each).
_ZERO_PAYLOADS = {}


def huge_trickle_plan(index):
    """(message type, declared payload length) of huge-trickle node ``index``."""
    return HUGE_TRICKLE_PLANS[index % len(HUGE_TRICKLE_PLANS)]


@implementer(IPushProducer)
class _Trickle:
    """
    Writes ``data`` ``chunk`` bytes every ``interval`` seconds, and waits
    while the transport says its buffer is full (a push producer), so that
    the simnet's own memory stays flat when the reader is slow.
    """

    def __init__(self, transport, clock, data, chunk, interval):
        self.transport = transport
        self.data = data
        self.chunk = chunk
        self.sent = 0
        self.paused = False
        self._loop = LoopingCall(self._one)
        self._loop.clock = clock
        transport.registerProducer(self, True)
        self._loop.start(interval)

    def _one(self):
        if self.paused:
            return
        piece = self.data[self.sent:self.sent + self.chunk]
        if not piece:
            self.stopProducing()
            return
        self.sent += len(piece)
        self.transport.write(bytes(piece))

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False

    def stopProducing(self):
        if self._loop.running:
            self._loop.stop()


class HugeTrickle(HonestNode):
    """
    Completes the handshake, then announces a huge message (see
    HUGE_TRICKLE_PLANS) and trickles its payload, TRICKLE_CHUNK bytes every
    TRICKLE_INTERVAL seconds, stopping one byte short so that the frame
    never completes: the attack on a crawler that buffers whatever a header
    announces.  It never answers getaddr.
    """

    TRICKLE_CHUNK = 16 * 1024
    TRICKLE_INTERVAL = 0.1

    def __init__(self, simnet, profile, address, random):
        super().__init__(simnet, profile, address, random)
        self.trickle = None

    def handshake_done(self, info):
        super().handshake_done(info)
        # After our own delayed writes (the verack), never in front of them.
        if self.profile.latency:
            self.delayed.later(self.profile.latency, self.start_trickle)
        else:
            self.start_trickle()

    def start_trickle(self):
        """Announce the planned message and start trickling its payload."""
        if self.trickle is None and self.transport.connected:
            command, length = huge_trickle_plan(self.profile.index)
            payload = _ZERO_PAYLOADS.get(length)
            if payload is None:
                payload = _ZERO_PAYLOADS[length] = bytes(length)
            header = struct.pack(
                "<4s12sI4s", self.network.magic, command.encode("ascii"), length,
                checksum(b""),
            )
            data = memoryview(header + payload[:-1])
            self.trickle = _Trickle(self.transport, self.clock, data, self.TRICKLE_CHUNK,
                                    self.TRICKLE_INTERVAL)
            self.simnet.count(self.profile.kind, "trickles")

    def answer_getaddr(self):
        """Never answered: the trickle is all this node says."""

    def connectionLost(self, reason):
        if self.trickle is not None:
            self.trickle.stopProducing()
            self.trickle = None
        super().connectionLost(reason)


class _Raw(Protocol):
    """Base of the kinds that do not speak the protocol at all."""

    def __init__(self, simnet, profile, address, random):
        self.simnet = simnet
        self.profile = profile
        self.random = random
        self._started = False

    def version_frame(self):
        options = self.simnet.options_for(self.profile)
        return encode_frame(
            self.simnet.network.magic,
            Version(
                version=options.version,
                services=options.services,
                timestamp=int(self.simnet.clock.seconds()),
                nonce=self.random.getrandbits(64),
                user_agent=options.user_agent,
                start_height=options.start_height,
                relay=True,
            ),
        )

    def dataReceived(self, data):
        if not self._started:
            self._started = True
            self.first_data()

    def first_data(self):
        """Called once, when the dialler has spoken."""


class Silent(_Raw):
    """Accepts the connection and never says a word."""


class VersionThenSilence(_Raw):
    """Sends its version, then nothing more."""

    def first_data(self):
        self.transport.write(self.version_frame())


class Garbage(_Raw):
    """Sends random bytes instead of a version."""

    def first_data(self):
        self.transport.write(self.random.randbytes(64))


class HugeHeader(_Raw):
    """Sends a header declaring a 4 GB payload."""

    def first_data(self):
        header = struct.pack(
            "<4s12sI4s", self.simnet.network.magic, b"version", 0xFFFFFFFF, checksum(b"")
        )
        self.transport.write(header)


class DisconnectMidMessage(_Raw):
    """Sends half of its version frame and hangs up."""

    def first_data(self):
        frame = self.version_frame()
        self.transport.write(frame[: len(frame) // 2])
        self.transport.loseConnection()


class Slow(_Raw):
    """Sends its version and verack one byte per second."""

    def first_data(self):
        self._bytes = self.version_frame() + encode_raw_frame(
            self.simnet.network.magic, "verack", b""
        )
        self._trickle = LoopingCall(self._one)
        self._trickle.clock = self.simnet.clock
        self._trickle.start(1.0)

    def _one(self):
        if not self._bytes or not self.transport.connected:
            self._trickle.stop()
            return
        self.transport.write(self._bytes[:1])
        self._bytes = self._bytes[1:]

    def connectionLost(self, reason):
        if self._started and self._trickle.running:
            self._trickle.stop()


#: The protocol class of each kind.
BEHAVIOURS = {
    "honest": HonestNode,
    "silent": Silent,
    "version-then-silence": VersionThenSilence,
    "never-verack": NeverVerack,
    "garbage": Garbage,
    "wrong-magic": WrongMagic,
    "bad-checksum": CorruptChecksum,
    "huge-header": HugeHeader,
    "too-many-addr": TooManyAddr,
    "bad-addrv2": BadAddrV2,
    "disconnect-mid-message": DisconnectMidMessage,
    "slow": Slow,
    "second-version": SecondVersion,
    "nonce-echo": NonceEcho,
    "huge-trickle": HugeTrickle,
}
