"""
Tests for bitpeer.net.stream.StreamTransport.

Each test connects a real TCP socket pair on 127.0.0.1 and runs the
transport on a MemoryReactorClock, playing the reactor itself: it calls
doRead or doWrite when the socket is ready, connectionLost with the reason
they returned, and advances the clock for the turn a close waits for.  The
far end is a plain blocking socket the test reads and writes.
"""

import errno
import select
import socket
import struct

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReadWriteDescriptor, ITransport
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

from bitpeer.net.stream import MAX_UNSENT, StreamTransport, UnsentLimitExceeded
from bitpeer.wire.framing import HEADER_SIZE
from bitpeer.wire.messages import MAX_PROTOCOL_MESSAGE_LENGTH

#: Bounds a broken test's wait for loopback data (it takes microseconds).
WAIT = 5
#: Socket buffer sizes asked for by ``small_buffers``, and more data than
#: the kernel then takes at once.
BUFFER = 65536
BIG = 32 * BUFFER


class CountingSocket(socket.socket):
    """A socket that counts its send() calls."""

    sends = 0

    def send(self, data, *flags):
        self.sends += 1
        return super().send(data, *flags)


class Recorder(Protocol):
    """Records what happens to it; ``on_made`` and ``on_data`` (functions of
    the protocol, and of the protocol and the data) run inside the
    handlers."""

    def __init__(self, on_made=None, on_data=None):
        self.on_made, self.on_data = on_made, on_data
        self.received = b""
        self.lost = []

    def connectionMade(self):
        if self.on_made is not None:
            self.on_made(self)

    def dataReceived(self, data):
        self.received += data
        if self.on_data is not None:
            self.on_data(self, data)

    def connectionLost(self, reason):
        self.lost.append(reason)


class StreamTestCase(SynchronousTestCase):

    def setUp(self):
        self.reactor = MemoryReactorClock()

    def pair(self, family=socket.AF_INET, host="127.0.0.1"):
        """A connected pair: (our non-blocking CountingSocket, the far end)."""
        listener = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind((host, 0))
        listener.listen(1)
        ours = CountingSocket(family, socket.SOCK_STREAM)
        self.addCleanup(ours.close)
        ours.connect(listener.getsockname())
        ours.setblocking(False)
        far, _ = listener.accept()
        self.addCleanup(far.close)
        far.settimeout(WAIT)
        return ours, far

    def start(self, protocol=None, small_buffers=False):
        """A started transport of a fresh pair: (transport, protocol, far end)."""
        ours, far = self.pair()
        if small_buffers:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
            far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        protocol = protocol if protocol is not None else Recorder()
        peer = IPv4Address("TCP", *far.getsockname())
        transport = StreamTransport(self.reactor, ours, protocol, peer)
        transport.start()
        return transport, protocol, far

    def read_from(self, transport, far, data):
        """``data`` sent by the far end, handed to the protocol."""
        far.sendall(data)
        select.select([transport.socket], [], [], WAIT)
        self.assertIsNone(transport.doRead())

    def receive_all(self, far):
        """Everything the far end receives until end of input."""
        chunks = []
        while chunk := far.recv(BIG):
            chunks.append(chunk)
        return b"".join(chunks)

    def drain(self, transport, far):
        """Play the reactor while the transport waits for room: what the far
        end read by the time nothing waits."""
        got = []
        while transport in self.reactor.getWriters():
            got.append(far.recv(BIG))
            select.select([], [transport.socket], [], WAIT)
            self.assertIsNone(transport.doWrite())
        return b"".join(got)

    def lose(self, transport, reason):
        """What the reactor does with a reason doRead or doWrite returned."""
        self.reactor.removeReader(transport)
        self.reactor.removeWriter(transport)
        transport.connectionLost(Failure(reason))

    def assert_lost(self, transport, protocol, kind):
        """The protocol was told once, with ``kind``; nothing is left."""
        [reason] = protocol.lost
        self.assertIsInstance(reason.value, kind)
        self.assertFalse(transport.connected)
        self.assertIsNone(transport.protocol)
        self.assertEqual(transport.socket.fileno(), -1)
        self.assertNotIn(transport, self.reactor.getReaders())
        self.assertNotIn(transport, self.reactor.getWriters())
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class StartTests(StreamTestCase):

    def test_interfaces(self):
        transport, _, _ = self.start()
        verifyObject(ITransport, transport)
        verifyObject(IReadWriteDescriptor, transport)

    def test_start(self):
        """The transport is a reader and the protocol is connected to it."""
        transport, protocol, far = self.start()
        self.assertEqual(self.reactor.getReaders(), [transport])
        self.assertEqual(self.reactor.getWriters(), [])
        self.assertIs(protocol.transport, transport)
        self.assertTrue(protocol.connected)
        self.assertTrue(transport.connected)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.fileno(), transport.socket.fileno())

    def test_addresses(self):
        transport, _, far = self.start()
        self.assertEqual(transport.getPeer(), IPv4Address("TCP", *far.getsockname()))
        self.assertEqual(transport.getHost(), IPv4Address("TCP", *far.getpeername()))
        self.assertIn(str(far.getsockname()[1]), repr(transport))
        self.assertEqual(transport.logPrefix(), "bitpeer.net.stream")

    def test_ipv6_addresses(self):
        try:
            ours, far = self.pair(socket.AF_INET6, "::1")
        except OSError:
            raise SkipTest("::1 cannot be used here")
        peer = IPv6Address("TCP", *far.getsockname()[:2])
        transport = StreamTransport(self.reactor, ours, Recorder(), peer)
        transport.start()
        self.assertEqual(transport.getHost(), IPv6Address("TCP", *far.getpeername()[:2]))

    def test_reactor_refuses(self):
        """If the reactor cannot watch the socket, start() raises and the
        protocol is never told of a connection."""
        def add_reader(reader):
            raise OSError(errno.ENOMEM, "no memory")

        self.patch(self.reactor, "addReader", add_reader)
        ours, far = self.pair()
        protocol = Recorder()
        transport = StreamTransport(self.reactor, ours, protocol,
                                    IPv4Address("TCP", *far.getsockname()))
        self.assertRaises(OSError, transport.start)
        self.assertIsNone(protocol.transport)
        self.assertFalse(transport.connected)
        transport.abortConnection()
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class WriteTests(StreamTestCase):

    def test_writes_of_connection_made_in_one_send(self):
        def made(protocol):
            protocol.transport.write(b"version")
            protocol.transport.writeSequence([b"-", b"more"])

        transport, _, far = self.start(Recorder(on_made=made))
        self.assertEqual(transport.socket.sends, 1)
        self.assertEqual(far.recv(100), b"version-more")

    def test_writes_of_a_handler_in_one_send(self):
        def echo(protocol, data):
            protocol.transport.write(data)
            protocol.transport.write(b"!")

        transport, protocol, far = self.start(Recorder(on_data=echo))
        self.read_from(transport, far, b"ping")
        self.assertEqual(protocol.received, b"ping")
        self.assertEqual(transport.socket.sends, 1)
        self.assertEqual(far.recv(100), b"ping!")

    def test_write_at_other_times_is_sent_at_once(self):
        transport, _, far = self.start()
        transport.write(b"one")
        self.assertEqual(far.recv(100), b"one")
        transport.write(b"")
        self.assertEqual(transport.socket.sends, 1)
        self.assertEqual(self.reactor.getWriters(), [])

    def test_what_the_kernel_will_not_take_waits(self):
        """The rest waits for room, in order; writes meanwhile join it."""
        transport, _, far = self.start(small_buffers=True)
        data = bytes(range(256)) * (BIG // 256)
        transport.write(data)
        self.assertEqual(self.reactor.getWriters(), [transport])
        transport.write(b"tail")
        expected = data + b"tail"
        got = self.drain(transport, far)
        while len(got) < len(expected):
            got += far.recv(BIG)
        self.assertEqual(got, expected)
        self.assertEqual(self.reactor.getWriters(), [])
        transport.write(b"after")
        self.assertEqual(far.recv(100), b"after")

    def test_stale_write_event(self):
        """A write event with nothing waiting (a reused descriptor's) does
        nothing."""
        transport, _, _ = self.start()
        self.assertIsNone(transport.doWrite())
        self.assertTrue(transport.connected)
        self.assertEqual(transport.socket.sends, 0)

    def test_handler_that_raises(self):
        """What a failing handler wrote is still sent (the reactor then
        disconnects it), and later writes are not held."""
        def broken(protocol, data):
            protocol.transport.write(b"partial")
            raise RuntimeError("bug")

        transport, _, far = self.start(Recorder(on_data=broken))
        far.sendall(b"x")
        select.select([transport.socket], [], [], WAIT)
        self.assertRaises(RuntimeError, transport.doRead)
        self.assertEqual(far.recv(100), b"partial")
        transport.write(b"next")
        self.assertEqual(far.recv(100), b"next")


class ReadTests(StreamTestCase):

    def test_data(self):
        transport, protocol, far = self.start()
        self.read_from(transport, far, b"abc")
        self.read_from(transport, far, b"def")
        self.assertEqual(protocol.received, b"abcdef")

    def test_nothing_to_read(self):
        """A read event with nothing to read (spurious) does nothing."""
        transport, protocol, _ = self.start()
        self.assertIsNone(transport.doRead())
        self.assertEqual(protocol.received, b"")
        self.assertTrue(transport.connected)

    def test_end_of_input(self):
        transport, protocol, far = self.start()
        far.sendall(b"last")
        far.close()
        select.select([transport.socket], [], [], WAIT)
        self.assertIsNone(transport.doRead())
        reason = transport.doRead()
        self.assertIsInstance(reason, ConnectionDone)
        self.lose(transport, reason)
        self.assertEqual(protocol.received, b"last")
        self.assert_lost(transport, protocol, ConnectionDone)

    def test_reset(self):
        transport, protocol, far = self.start()
        far.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        far.close()
        select.select([transport.socket], [], [], WAIT)
        reason = transport.doRead()
        self.assertIsInstance(reason, ConnectionLost)
        self.assertIn("ECONNRESET", str(reason))
        self.lose(transport, reason)
        self.assert_lost(transport, protocol, ConnectionLost)


class CloseTests(StreamTestCase):

    def test_lose_connection(self):
        """Nothing waits: the socket closes and the protocol is told on the
        next turn; until then nothing more is read or sent."""
        transport, protocol, far = self.start()
        transport.loseConnection()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(protocol.lost, [])
        self.assertNotEqual(transport.socket.fileno(), -1)
        transport.write(b"too late")
        transport.loseConnection()
        far.sendall(b"unread")
        select.select([transport.socket], [], [], WAIT)
        self.assertIsNone(transport.doRead())
        self.assertEqual(protocol.received, b"")
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionDone)
        # Closed with data unread, the kernel answers with RST, not FIN.
        with self.assertRaises(ConnectionResetError):
            self.receive_all(far)

    def test_lose_connection_sends_what_waits(self):
        transport, protocol, far = self.start(small_buffers=True)
        data = b"x" * BIG
        transport.write(data)
        transport.loseConnection()
        self.assertEqual(self.reactor.getWriters(), [transport])
        self.assertEqual(self.reactor.getReaders(), [])
        got = self.drain(transport, far)
        self.assertEqual(protocol.lost, [])
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionDone)
        self.assertEqual(got + self.receive_all(far), data)

    def test_lose_connection_inside_a_handler(self):
        """A handler may close and then write: what it wrote is sent first."""
        def goodbye(protocol, data):
            protocol.transport.loseConnection()
            protocol.transport.write(b"bye")

        transport, protocol, far = self.start(Recorder(on_data=goodbye))
        self.read_from(transport, far, b"hello")
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionDone)
        self.assertEqual(self.receive_all(far), b"bye")

    def test_lose_connection_in_connection_made(self):
        transport, protocol, far = self.start(
            Recorder(on_made=lambda p: p.transport.loseConnection()))
        self.assertEqual(protocol.lost, [])
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionDone)
        self.assertEqual(self.receive_all(far), b"")

    def test_abort(self):
        """Unsent data is dropped and the far end gets RST."""
        transport, protocol, far = self.start(small_buffers=True)
        transport.write(b"x" * BIG)
        transport.abortConnection()
        self.assertEqual(self.reactor.getWriters(), [])
        transport.write(b"dropped")
        transport.abortConnection()
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionAborted)
        with self.assertRaises(ConnectionResetError):
            self.receive_all(far)

    def test_abort_after_lose(self):
        transport, protocol, _ = self.start()
        transport.loseConnection()
        transport.abortConnection()
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionAborted)

    def test_send_fails(self):
        """A write the kernel refuses (the far end reset) ends the
        connection a turn later, not inside the write."""
        transport, protocol, far = self.start()
        far.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        far.close()
        select.select([transport.socket], [], [], WAIT)
        transport.write(b"into the void")
        self.assertEqual(protocol.lost, [])
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionLost)
        self.assertIn("ECONNRESET", str(protocol.lost[0].value))

    def disconnect_all(self):
        """What a reactor does as it stops (its disconnectAll): let go of
        every reader and writer and tell each the connection is lost."""
        for selectable in self.reactor.removeAll():
            selectable.connectionLost(Failure(ConnectionLost()))

    def test_reactor_stops_with_a_close_under_way(self):
        """A reactor that stops before the turn a close waits for still ends
        the connection: the transport is its reader until the end."""
        for close in ("loseConnection", "abortConnection"):
            transport, protocol, far = self.start()
            getattr(transport, close)()
            self.assertEqual(self.reactor.getReaders(), [transport])
            self.disconnect_all()
            self.reactor.advance(0)
            self.assert_lost(transport, protocol, ConnectionLost)

    def test_reactor_stops_while_sending(self):
        transport, protocol, _ = self.start(small_buffers=True)
        transport.write(b"x" * BIG)
        transport.loseConnection()
        self.disconnect_all()
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionLost)

    def test_abort_inside_a_handler(self):
        """A handler that aborts while data waits to be sent: what waits is
        dropped, and the write event the reactor already holds for this
        batch does nothing."""
        def abort(protocol, data):
            protocol.transport.abortConnection()

        transport, protocol, far = self.start(Recorder(on_data=abort), small_buffers=True)
        transport.write(b"x" * BIG)
        self.assertEqual(self.reactor.getWriters(), [transport])
        self.read_from(transport, far, b"stop")
        self.assertEqual(self.reactor.getWriters(), [])
        self.assertIsNone(transport.doWrite())
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionAborted)


class UnsentLimitTests(StreamTestCase):
    """
    What waits to be sent is bounded: a peer that stops reading while we
    keep writing (a pong for each ping of a flood) gets its connection
    aborted once more than MAX_UNSENT bytes wait.
    """

    def test_the_largest_message_fits(self):
        self.assertGreater(MAX_UNSENT, HEADER_SIZE + MAX_PROTOCOL_MESSAGE_LENGTH)

    def test_at_the_bound(self):
        """Writes held by a handler that reach MAX_UNSENT exactly are sent."""
        def made(protocol):
            protocol.transport.write(b"x" * (MAX_UNSENT - 1))
            protocol.transport.write(b"y")

        transport, protocol, far = self.start(Recorder(on_made=made), small_buffers=True)
        self.assertTrue(transport.connected)
        self.reactor.advance(0)
        self.assertEqual(protocol.lost, [])
        transport.loseConnection()
        got = self.drain(transport, far)
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, ConnectionDone)
        self.assertEqual(len(got + self.receive_all(far)), MAX_UNSENT)

    def test_past_the_bound_inside_a_handler(self):
        """One byte more aborts (RST) on the next turn, with a reason that
        says why; nothing of it is sent."""
        def made(protocol):
            protocol.transport.write(b"x" * MAX_UNSENT)
            protocol.transport.write(b"y")
            protocol.transport.write(b"dropped")

        transport, protocol, far = self.start(Recorder(on_made=made))
        self.assertEqual(transport.socket.sends, 0)
        self.assertEqual(protocol.lost, [])
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, UnsentLimitExceeded)
        self.assertIn("does not read", str(protocol.lost[0].value))
        with self.assertRaises(ConnectionResetError):
            self.receive_all(far)

    def test_past_the_bound_while_the_peer_does_not_read(self):
        """Writes at other times pile up behind a full kernel buffer until
        the bound."""
        transport, protocol, far = self.start(small_buffers=True)
        chunk = b"p" * BUFFER
        while transport.connected and not protocol.lost:
            transport.write(chunk)
            if self.reactor.getDelayedCalls():
                break
            self.assertLessEqual(len(transport._unsent), MAX_UNSENT)
        self.assertEqual(self.reactor.getWriters(), [])
        self.reactor.advance(0)
        self.assert_lost(transport, protocol, UnsentLimitExceeded)
