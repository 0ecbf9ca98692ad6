"""
Property tests (hypothesis) for the codec: every message encodes and decodes
to itself, alone and through FrameDecoder in any chunking; arbitrary or
corrupted input never raises anything but ProtocolError, and is reported
the same way however it is chunked.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.address import (
    ADDRESS_LENGTHS,
    AddrEntry,
    Network,
    NetworkAddress,
)
from bitpeer.wire.addrlist import decode_v2_entries
from bitpeer.wire.encoding import Reader, compact_size, var_bytes, var_str
from bitpeer.wire.errors import ProtocolError
from bitpeer.wire.framing import (
    HEADER_SIZE,
    Frame,
    FrameDecoder,
    encode_frame,
)
from bitpeer.wire.messages import (
    MESSAGE_TYPES,
    Addr,
    AddrV2,
    Alert,
    BlockHeader,
    FeeFilter,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvVector,
    MemPool,
    NotFound,
    Ping,
    Pong,
    Reject,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    UnknownMessage,
    VerAck,
    Version,
    WtxidRelay,
    decode_message,
)

from .test_wire_blocks import STRATEGIES as BLOCK_STRATEGIES

MAGIC = bytes.fromhex("f9beb4d9")

#: Modest example counts keep the whole suite fast.
FAST = settings(
    deadline=None,
    max_examples=40,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MEDIUM = settings(FAST, max_examples=120)

# -- strategies ----------------------------------------------------------------

u8 = st.integers(0, 255)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
ports = st.integers(0, 0xFFFF)
hashes = st.binary(min_size=32, max_size=32)


def fixed(n):
    return st.binary(min_size=n, max_size=n)


def limited_text(limit):
    """str whose surrogate-escaped UTF-8 fits ``limit`` bytes, as decoded."""
    return st.binary(max_size=limit).map(lambda b: b.decode("utf-8", "surrogateescape"))


ipv4 = st.builds(NetworkAddress, st.just(Network.IPV4), fixed(4), ports)
#: v1 IPv6 as a decoder produces it (an IPv4-mapped host becomes IPv4).
ipv6_v1 = st.builds(NetworkAddress.from_v1, fixed(16), ports)
ipv6 = st.builds(NetworkAddress, st.just(Network.IPV6), fixed(16), ports)
torv3 = st.builds(NetworkAddress, st.just(Network.TORV3), fixed(32), ports)
i2p = st.builds(NetworkAddress, st.just(Network.I2P), fixed(32), st.just(0) | ports)
cjdns = st.builds(NetworkAddress, st.just(Network.CJDNS), fixed(16), ports)
unknown_ids = st.integers(0, 255).filter(lambda n: n not in ADDRESS_LENGTHS)
unknown = st.builds(NetworkAddress, unknown_ids, st.binary(max_size=40), ports)
big_unknown = st.builds(NetworkAddress, unknown_ids, st.binary(min_size=253, max_size=512), ports)

v1_addresses = ipv4 | ipv6_v1
v2_addresses = ipv4 | ipv6 | torv3 | i2p | cjdns | unknown | big_unknown

services = u64 | st.sampled_from([0, 1, 9, 0x409, 0xC09, 0xFC, 0xFD, 0xFFFF, 0x10000])


def entries(addresses):
    return st.builds(AddrEntry, u32, services, addresses)


inv_vectors = st.builds(InvVector, u32, hashes)
block_headers = st.builds(BlockHeader, i32, hashes, hashes, u32, u32, u32)

unknown_commands = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12
).filter(lambda c: c not in MESSAGE_TYPES)

STRATEGIES = {
    "verack": st.just(VerAck()),
    "getaddr": st.just(GetAddr()),
    "sendaddrv2": st.just(SendAddrV2()),
    "wtxidrelay": st.just(WtxidRelay()),
    "sendheaders": st.just(SendHeaders()),
    "mempool": st.just(MemPool()),
    "version": st.builds(
        Version,
        version=i32,
        services=services,
        timestamp=i64,
        addr_recv=v1_addresses,
        addr_recv_services=u64,
        addr_from=v1_addresses,
        addr_from_services=u64,
        nonce=u64,
        user_agent=limited_text(256),
        start_height=i32,
        relay=st.none() | st.booleans(),
    ),
    "ping": st.builds(Ping, st.none() | u64),
    "pong": st.builds(Pong, u64),
    "addr": st.builds(Addr, st.lists(entries(v1_addresses), max_size=50)),
    "addrv2": st.builds(AddrV2, st.lists(entries(v2_addresses), max_size=50)),
    "sendcmpct": st.builds(SendCmpct, st.booleans(), u64),
    "feefilter": st.builds(FeeFilter, i64),
    "inv": st.builds(Inv, st.lists(inv_vectors, max_size=50)),
    "getdata": st.builds(GetData, st.lists(inv_vectors, max_size=50)),
    "notfound": st.builds(NotFound, st.lists(inv_vectors, max_size=50)),
    "getheaders": st.builds(GetHeaders, i32, st.lists(hashes, max_size=101), hashes),
    "getblocks": st.builds(GetBlocks, i32, st.lists(hashes, max_size=101), hashes),
    "headers": st.builds(Headers, st.lists(block_headers, max_size=20)),
    "reject": st.builds(
        Reject, limited_text(12), u8, limited_text(111), st.binary(max_size=32)
    ),
    "alert": st.builds(Alert, st.binary(max_size=200)),
    **BLOCK_STRATEGIES,
}

messages = st.sampled_from(sorted(STRATEGIES)).flatmap(lambda c: STRATEGIES[c]) | st.builds(
    UnknownMessage, unknown_commands, st.binary(max_size=100)
)


def chunked(data, sizes):
    """Split ``data`` into pieces of the given sizes (cycled), never empty."""
    pieces, pos, i = [], 0, 0
    sizes = sizes or [len(data) or 1]
    while pos < len(data):
        step = sizes[i % len(sizes)]
        pieces.append(data[pos:pos + step])
        pos += step
        i += 1
    return pieces


def feed_all(decoder, pieces):
    """Feed every piece; check the decoder's contract on each result."""
    out = []
    for piece in pieces:
        result = decoder.feed(piece)
        for item in result:
            if not isinstance(item, (Frame, ProtocolError)):
                raise AssertionError(f"feed returned {item!r}")
        out += result
        if decoder.fatal_error is None:
            if decoder.buffered > HEADER_SIZE + decoder.max_payload:
                raise AssertionError(f"{decoder.buffered} bytes buffered")
        elif result[-1] is not decoder.fatal_error or decoder.buffered:
            raise AssertionError("a fatal error must end every later result")
    return out


def normalised(items):
    """Items up to the first fatal error, errors compared by class and text."""
    out = []
    for item in items:
        if isinstance(item, ProtocolError):
            out.append((type(item), str(item)))
            if item.fatal:
                break
        else:
            out.append(item)
    return out


# -- properties -------------------------------------------------------------------


class StrategyCoverageTests(SynchronousTestCase):
    def test_every_message_type_has_a_strategy(self):
        self.assertEqual(set(STRATEGIES), set(MESSAGE_TYPES))


class RoundTripProperties(SynchronousTestCase):
    """decode(encode(m)) == m for every message type (one test per type)."""

    @FAST
    @given(st.builds(UnknownMessage, unknown_commands, st.binary(max_size=100)))
    def test_round_trip_unknown(self, message):
        self.assertEqual(decode_message(message.command, message.encode_payload()), message)


def _round_trip_test(command):
    @FAST
    @given(STRATEGIES[command])
    def test(self, message):
        payload = message.encode_payload()
        decoded = decode_message(command, payload)
        self.assertEqual(decoded, message)
        self.assertEqual(decoded.encode_payload(), payload)

    test.__name__ = f"test_round_trip_{command}"
    return test


for _command in STRATEGIES:
    setattr(RoundTripProperties, f"test_round_trip_{_command}", _round_trip_test(_command))
del _command


class FramingProperties(SynchronousTestCase):
    @MEDIUM
    @given(st.lists(messages, min_size=1, max_size=5), st.lists(st.integers(1, 64), max_size=8))
    def test_frames_in_any_chunking(self, batch, sizes):
        stream = b"".join(encode_frame(MAGIC, m) for m in batch)
        out = feed_all(FrameDecoder(MAGIC), chunked(stream, sizes))
        self.assertEqual([f.decode() for f in out], batch)

    @MEDIUM
    @given(st.binary(max_size=400), st.lists(st.integers(1, 40), max_size=8))
    def test_arbitrary_bytes_never_raise(self, data, sizes):
        decoder = FrameDecoder(MAGIC, max_payload=200)
        feed_all(decoder, chunked(data, sizes))

    @MEDIUM
    @given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=8))
    def test_arbitrary_bytes_after_magic_never_raise(self, data, sizes):
        # Starting with the right magic gets past the first check.
        out = feed_all(FrameDecoder(MAGIC, max_payload=200), chunked(MAGIC + data, sizes))
        for item in out:
            if isinstance(item, Frame):
                _decode_or_protocol_error(item)

    @MEDIUM
    @given(
        st.lists(messages, min_size=1, max_size=4),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
        st.integers(0, 10_000),
        st.booleans(),
        st.lists(st.integers(1, 50), max_size=8),
    )
    def test_corrupted_streams(self, batch, flips, cut, duplicate, sizes):
        stream = bytearray(b"".join(encode_frame(MAGIC, m) for m in batch))
        for position, value in flips:
            stream[position % len(stream)] = value
        stream = bytes(stream)
        if duplicate:
            stream += stream
        stream = stream[: len(stream) - cut % len(stream)] if cut % 3 == 0 else stream
        whole = feed_all(FrameDecoder(MAGIC), [stream] if stream else [])
        pieces = feed_all(FrameDecoder(MAGIC), chunked(stream, sizes))
        self.assertEqual(normalised(pieces), normalised(whole))
        for item in whole:
            if isinstance(item, Frame):
                _decode_or_protocol_error(item)

    @FAST
    @given(
        st.lists(st.sampled_from([b"\x00", b"\x19", b"\x7f", b"a", b" ", b"~", b"\xff"]),
                 max_size=12),
        st.binary(max_size=20),
    )
    def test_message_type_bytes(self, parts, payload):
        from bitpeer.wire.encoding import checksum

        raw = b"".join(parts)[:12].ljust(12, b"\0")
        header = MAGIC + raw + len(payload).to_bytes(4, "little") + checksum(payload)
        out = FrameDecoder(MAGIC).feed(header + payload)
        name, _, pad = raw.partition(b"\0")
        valid = all(0x20 <= b <= 0x7E for b in name) and not pad.strip(b"\0")
        self.assertEqual(len(out), 1)
        self.assertEqual(isinstance(out[0], Frame), valid, raw)


def _decode_or_protocol_error(frame):
    try:
        frame.decode()
    except ProtocolError:
        pass


def _mutate(payload, flips, cut):
    data = bytearray(payload)
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    data = bytes(data)
    return data[: len(data) - cut % (len(data) + 1)] if cut else data


class DecodeRobustnessProperties(SynchronousTestCase):
    """decode_message raises nothing but ProtocolError, whatever the bytes."""

    @MEDIUM
    @given(st.sampled_from(sorted(MESSAGE_TYPES)), st.binary(max_size=300))
    def test_arbitrary_payloads(self, command, payload):
        try:
            message = decode_message(command, payload)
        except ProtocolError as error:
            self.assertEqual(error.message_type, command)
        else:
            self.assertIsInstance(message, MESSAGE_TYPES[command])

    @MEDIUM
    @given(
        messages,
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
        st.integers(0, 10_000),
    )
    def test_mutated_valid_payloads(self, message, flips, cut):
        payload = _mutate(message.encode_payload(), flips, cut)
        try:
            decoded = decode_message(message.command, payload)
        except ProtocolError as error:
            self.assertEqual(error.message_type, message.command)
        else:
            # Whatever decodes is a valid message that encodes again.
            decoded.encode_payload()

    @MEDIUM
    @given(
        st.lists(entries(v2_addresses), min_size=1, max_size=5),
        st.integers(0, 10_000),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=2),
    )
    def test_v2_entries_never_index_error(self, batch, cut, flips):
        payload = AddrV2(batch).encode_payload()
        data = _mutate(payload, flips, cut)
        try:
            decode_message("addrv2", data)
        except ProtocolError:
            pass
        try:
            decode_v2_entries(data, 0, len(batch) + 1)
        except ProtocolError:
            pass


class EncodingProperties(SynchronousTestCase):
    @MEDIUM
    @given(u64)
    def test_compact_size(self, n):
        encoded = compact_size(n)
        reader = Reader(encoded + b"tail")
        self.assertEqual(reader.compact_size("n", range_check=False), n)
        self.assertEqual(reader.rest(), b"tail")
        self.assertEqual(len(encoded), 1 if n < 0xFD else 3 if n <= 0xFFFF else 5 if n < 2**32 else 9)

    @MEDIUM
    @given(st.binary(max_size=300))
    def test_var_bytes_and_str(self, raw):
        self.assertEqual(Reader(var_bytes(raw)).var_bytes("b"), raw)
        text = Reader(var_bytes(raw)).var_str("s")
        self.assertEqual(var_str(text), var_bytes(raw))


class AddressTextProperties(SynchronousTestCase):
    @MEDIUM
    @given(ipv4 | ipv6_v1 | torv3 | i2p)
    def test_parse_str_round_trip(self, address):
        if address.network == Network.IPV6 and address.host[0] == 0xFC:
            parsed = NetworkAddress.parse(str(address), cjdns=False)
        else:
            parsed = NetworkAddress.parse(str(address), cjdns=True)
        self.assertEqual(parsed, address)

    @FAST
    @given(st.builds(NetworkAddress, st.just(Network.CJDNS), fixed(15).map(b"\xfc".__add__), ports))
    def test_cjdns_round_trip(self, address):
        self.assertEqual(NetworkAddress.parse(str(address), cjdns=True), address)

    @MEDIUM
    @given(st.text(max_size=70), st.none() | ports)
    def test_parse_raises_only_protocol_error(self, text, default_port):
        try:
            NetworkAddress.parse(text, default_port, cjdns=True)
        except ProtocolError:
            pass
