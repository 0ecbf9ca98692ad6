"""
Shared fakes for the Twisted-layer tests.

FakeNode plays the other end of one BitcoinProtocol: the protocol is built by
a real PeerFactory (outbound) or NodeFactory (inbound) on a task.Clock and a
seeded random.Random, connected to a StringTransport; FakeNode decodes what
the protocol writes with the real FrameDecoder and feeds it frames built with
encode_frame; it touches no socket and no wall clock.  ``connections_closed``
is the exception, for the tests on the real reactor: it waits, on the wall
clock, until the reactor holds no outbound connection.
"""

import random
import time

from twisted.internet import defer, reactor, task, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from bitpeer.net.dialler import Attempt
from bitpeer.factory import NodeFactory, PeerFactory
from bitpeer.networks import MAINNET
from bitpeer.protocol import PeerOptions
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress
from bitpeer.wire.errors import ProtocolError
from bitpeer.wire.framing import FrameDecoder, encode_frame
from bitpeer.wire.messages import SendAddrV2, VerAck, Version, WtxidRelay

#: Where the fake node is, as Twisted and as bitpeer see it.
PEER = IPv4Address("TCP", "127.0.0.1", 8333)
PEER_ADDRESS = NetworkAddress.parse("127.0.0.1:8333")
#: Where we are, as the fake node reports it in its version (addr_recv).
US = IPv4Address("TCP", "127.0.0.1", 50000)
US_ADDRESS = NetworkAddress.parse("127.0.0.1:50000")

#: The clock starts here, so timestamps are realistic and exact.
T0 = 1_700_000_000
SEED = 20240601
#: The fake node's own version nonce.
NODE_NONCE = 0x0123456789ABCDEF
#: Core's typical archival services: NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2.
NODE_SERVICES = 0x0C09


def node_version(**fields):
    """The version a Core-like node sends; ``fields`` override."""
    values = dict(
        version=70016,
        services=NODE_SERVICES,
        timestamp=T0 + 7,
        addr_recv=US_ADDRESS,
        nonce=NODE_NONCE,
        user_agent="/Satoshi:27.0.0/",
        start_height=840_000,
        relay=True,
    )
    values.update(fields)
    return Version(**values)


def ipv4_entries(count, first=1, time=T0 - 3600, services=0x409, port=8333):
    """``count`` distinct IPv4 AddrEntry objects in 10.0.0.0/8."""
    entries = []
    for n in range(first, first + count):
        host = bytes((10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))
        entries.append(AddrEntry(time, services, NetworkAddress(Network.IPV4, host, port)))
    return entries


def onion_entries(count, time=T0 - 3600, services=0x409):
    """``count`` Tor v3 entries (no v1 form)."""
    return [
        AddrEntry(time, services, NetworkAddress(Network.TORV3, bytes([n]) * 32, 8333))
        for n in range(1, count + 1)
    ]


def i2p_entries(count, time=T0 - 3600, services=0x409):
    """``count`` I2P entries (no v1 form)."""
    return [
        AddrEntry(time, services, NetworkAddress(Network.I2P, bytes([n + 100]) * 32, 0))
        for n in range(1, count + 1)
    ]


class Wire:
    """
    The far end of a connected protocol: reads what it wrote to its
    StringTransport, feeds it frames.  ``receiver`` is what gets the bytes:
    the BitcoinProtocol itself, or an endpoint's wrapper around ``protocol``.
    """

    def __init__(self, receiver, transport, network=MAINNET, protocol=None):
        self.receiver = receiver
        self.protocol = protocol if protocol is not None else receiver
        self.transport = transport
        self.network = network
        self.decoder = FrameDecoder(network.magic)
        self.lost = False

    # -- what the protocol wrote ------------------------------------------

    def raw_sent(self):
        """The bytes written since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def sent(self):
        """The messages written since the last call, decoded."""
        out = []
        for item in self.decoder.feed(self.raw_sent()):
            if isinstance(item, ProtocolError):
                raise AssertionError(f"the protocol wrote a bad frame: {item}")
            out.append(item.decode())
        if self.decoder.buffered:
            raise AssertionError("the protocol wrote half a frame")
        return out

    # -- what the node sends -------------------------------------------------

    def frame(self, message):
        return encode_frame(self.network.magic, message)

    def send(self, *messages):
        """Deliver whole frames of ``messages`` in one chunk."""
        self.receiver.dataReceived(b"".join(self.frame(m) for m in messages))

    def feed(self, data):
        """Deliver raw bytes."""
        self.receiver.dataReceived(data)

    # -- whole exchanges ---------------------------------------------------

    def handshake(self, addrv2=True, **version_fields):
        """
        Complete the handshake as Core would: version, then wtxidrelay (for
        70016), sendaddrv2 (unless ``addrv2`` is false) and verack.  What the
        protocol wrote is consumed.  Returns the PeerInfo.
        """
        version = node_version(**version_fields)
        self.send(version)
        extras = [WtxidRelay()] if version.version >= 70016 else []
        if addrv2:
            extras.append(SendAddrV2())
        self.send(*extras, VerAck())
        self.raw_sent()
        return self.peer.info

    @property
    def peer(self):
        """The Peer handle of the protocol under test."""
        return self.protocol.peer

    def connection_lost(self, reason=None):
        """What the reactor does once the transport has closed."""
        if reason is None:
            aborted = self.transport.disconnected
            reason = ConnectionAborted() if aborted else ConnectionDone()
        self.lost = True
        self.receiver.connectionLost(Failure(reason))

    def close_error(self, testcase):
        """
        Assert the protocol asked to close, deliver connectionLost, and
        return the PeerError whenClosed gives.
        """
        testcase.assertTrue(
            self.transport.disconnecting, "the protocol did not close the connection"
        )
        if not self.lost:
            self.connection_lost()
        return testcase.successResultOf(self.peer.whenClosed())


class FakeNode(Wire):
    """
    The far end of one BitcoinProtocol under test, built by a real
    PeerFactory (``inbound=False``) or NodeFactory.

    Not bitpeer.testing.FakeNode: this one is scripted frame by frame
    (malformed frames too) to test bitpeer's own protocol; that one is a
    whole node, for testing code that uses bitpeer.

    @ivar protocol: the BitcoinProtocol.
    @ivar peer: its Peer handle.
    @ivar transport: the StringTransport it writes to.
    @ivar clock: the task.Clock it runs on (starting at T0).
    """

    def __init__(
        self,
        inbound=False,
        options=None,
        network=MAINNET,
        seed=SEED,
        clock=None,
        rng=None,
        nonces=None,
        address_source=None,
        on_peer=None,
        factory=None,
        addr=PEER,
    ):
        if factory is None:
            if clock is None:
                clock = task.Clock()
                clock.advance(T0)
            rng = rng if rng is not None else random.Random(seed)
            options = options if options is not None else PeerOptions()
            kwargs = dict(options=options, random=rng, nonces=nonces, on_peer=on_peer)
            if inbound:
                factory = NodeFactory(
                    clock, network, address_source=address_source, **kwargs
                )
            else:
                factory = PeerFactory(clock, network, **kwargs)
        self.factory = factory
        self.clock = factory.clock
        self.protocol = factory.buildProtocol(addr)
        super().__init__(
            self.protocol, StringTransport(peerAddress=addr, hostAddress=US), network
        )
        self.protocol.makeConnection(self.transport)


def pump(a, b, limit=100):
    """
    Carry bytes both ways between two Wires whose protocols talk to each
    other, until neither writes anything more.
    """
    for _ in range(limit):
        ab, ba = a.raw_sent(), b.raw_sent()
        if not ab and not ba:
            return
        if ab:
            b.feed(ab)
        if ba:
            a.feed(ba)
    raise AssertionError("the two sides never went quiet")


#: Keys the crawler's snapshot promises in its summary and in each node record.
SUMMARY_KEYS = {
    "outcomes", "failure_reasons", "protocol_versions", "user_agents", "services", "heights",
    "network_types", "external_address", "discovered_over_time",
}
NODE_KEYS = {
    "address", "port", "network", "version", "user_agent", "services", "services_text",
    "start_height", "relay", "latency", "returned",
}


def client_connections():
    """
    The reactor's outbound connections: dialler attempts under way, Twisted
    TCP clients (the endpoint dialler's, connecting or connected), and
    BitcoinProtocol connections that are not inbound (the simnet's, in the
    same process, are).
    """
    return [
        s for s in set(reactor.getReaders()) | set(reactor.getWriters())
        if isinstance(s, (Attempt, tcp.Client))
        or getattr(getattr(s, "protocol", None), "inbound", True) is False
    ]


#: How long wait_until lets the reactor run before it gives up: a guard
#: against a test hanging, far above what any condition needs, so that a
#: slow or loaded machine makes a test slower, never failed.
WAIT_GUARD = 60.0


@defer.inlineCallbacks
def wait_until(condition, what, guard=WAIT_GUARD):
    """
    Let the global reactor run until ``condition()`` holds.  The test waits
    for the condition, however long the machine takes; ``guard`` seconds
    only stop a test that would otherwise wait for ever, with ``what`` in
    the failure.
    """
    deadline = time.monotonic() + guard
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {guard:g} s for {what}")
        yield task.deferLater(reactor, 0.01)


def connections_closed():
    """Wait until every outbound connection is gone (they close a moment after
    the crawler is done with them)."""
    return wait_until(lambda: not client_connections(),
                      "every outbound connection to close")


class NoLookupResolver:
    """
    A resolver that must not be used: every call is recorded and raises.
    Raising alone could be swallowed as a failed lookup, so the tests also
    assert that ``calls`` stayed empty.
    """

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if not name.startswith("lookup"):
            raise AttributeError(name)

        def called(*args, **kwargs):
            self.calls.append((name, args))
            raise AssertionError(f"{name}{args} called: no lookup was allowed")

        return called
