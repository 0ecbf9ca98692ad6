"""
Tests for bitpeer.net.dialler: Dialler and Attempt.

The deterministic tests run the dialler on a MemoryReactorClock (it records
the readers and writers, among them the StreamTransport a connected attempt
starts its protocol on) with a task.Clock for the timeouts, against real sockets on 127.0.0.1 and ::1: a listening socket to
connect to, a bound socket that does not listen to be refused by (the kernel
answers the SYN with RST).  The tests play the reactor themselves: they wait
with select() until the attempt's socket is writable, then call doWrite or
connectionLost (ReactorWriters), or the EpollSet's doRead.  A few more
tests run the real reactor, with the dialler's default watch.

Only loopback addresses are ever dialled.
"""

import collections
import errno
import inspect
import os
import select
import socket
import sys
import types

try:
    import resource
except ImportError:  # not on Windows
    resource = None

from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from bitpeer.net import dialler as dialler_module
from bitpeer.net.dialler import Dialler, EpollSet, ReactorWriters, connect_error
from bitpeer.errors import ConnectFailed, ConnectionRefused, ConnectTimeout
from bitpeer.net.stream import StreamTransport
from bitpeer.wire.address import Network, NetworkAddress

#: How long to wait for a loopback connect to finish (it takes microseconds;
#: this only bounds a broken test).
SELECT_TIMEOUT = 5


def _ipv6_loopback():
    """True if ::1 can be bound here."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        probe.bind(("::1", 0))
    except OSError:
        return False
    finally:
        probe.close()
    return True


class _UnreachableSocket(socket.socket):
    """A real socket whose connect fails at once, as a connect to an address
    without a route does; nothing is sent anywhere."""

    def connect_ex(self, address):
        return errno.ENETUNREACH


#: bitpeer.net.dialler's view of the socket module, with _UnreachableSocket.
_UNREACHABLE_SOCKET_MODULE = types.SimpleNamespace(**vars(socket))
_UNREACHABLE_SOCKET_MODULE.socket = _UnreachableSocket


class RecordingFactory(Factory):
    """Builds plain Protocols and records the address each was built for."""

    protocol = Protocol

    def __init__(self):
        self.addresses = []

    def buildProtocol(self, addr):
        self.addresses.append(addr)
        return super().buildProtocol(addr)


class DiallerTestCase(SynchronousTestCase):
    """A MemoryReactorClock, loopback targets, and a record of ``failed``;
    the attempts are the reactor's writers."""

    watch = ReactorWriters

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.factory = RecordingFactory()
        #: (address, error) for every call of ``failed``.
        self.failures = []
        self.attempts = []
        # Whatever a test leaves connecting, its socket is closed.
        self.addCleanup(self._close_attempts)

    def _close_attempts(self):
        # A connected attempt's socket is its transport's: closed too.
        for attempt in self.attempts:
            if attempt.socket is not None:
                attempt.socket.close()

    def started(self):
        """The StreamTransports of the connected attempts (the reactor's
        readers)."""
        return [r for r in self.reactor.getReaders() if isinstance(r, StreamTransport)]

    def assert_started(self, attempt, peer):
        """The attempt connected: its socket, still open, is the transport
        of a protocol built for ``peer`` (an IPv4Address or IPv6Address)."""
        [transport] = [t for t in self.started() if t.socket is attempt.socket]
        self.assertNotEqual(attempt.socket.fileno(), -1)
        self.assertEqual(transport.getPeer(), peer)
        self.assertIs(transport.protocol.transport, transport)
        self.assertEqual(transport.protocol.connected, 1)
        self.assertIn(peer, self.factory.addresses)

    def record(self, address, error):
        self.failures.append((address, error))

    def make_dialler(self, timeout=30, clock=None, failed=None):
        return Dialler(self.reactor, self.factory, timeout,
                       failed if failed is not None else self.record, clock=clock,
                       watch=self.watch)

    def dial(self, dialler, address):
        attempt = dialler.dial(address)
        self.attempts.append(attempt)
        return attempt

    def bound_socket(self, family=socket.AF_INET, host="127.0.0.1", listen=False):
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind((host, 0))
        if listen:
            sock.listen(8)
        return sock

    def listener(self):
        """A listening socket on 127.0.0.1: its NetworkAddress."""
        sock = self.bound_socket(listen=True)
        return NetworkAddress.from_host("127.0.0.1", sock.getsockname()[1])

    def refuser(self):
        """A bound, not listening socket on 127.0.0.1 (its port stays taken,
        so nothing else can listen there): its NetworkAddress."""
        sock = self.bound_socket()
        return NetworkAddress.from_host("127.0.0.1", sock.getsockname()[1])

    def blackhole(self):
        """A listening socket on 127.0.0.1 whose accept queue is kept full,
        so a connect to it stays under way (the kernel drops its SYNs), as
        to a blackholed host: its NetworkAddress."""
        sock = self.bound_socket(listen=True)
        sock.listen(0)
        port = sock.getsockname()[1]
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(filler.close)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        return NetworkAddress.from_host("127.0.0.1", port)

    def wait_writable(self, attempt):
        """Until the connect is over, one way or the other."""
        _, writable, _ = select.select([], [attempt.socket], [], SELECT_TIMEOUT)
        self.assertEqual(writable, [attempt.socket], "connect did not finish")

    def assert_settled_here(self, attempt):
        """One attempt is over (others may still be under way): its socket
        closed, or handed to a transport."""
        self.assertIs(attempt.connecting, False)
        if attempt.socket.fileno() != -1:
            self.assertIn(attempt.socket, [t.socket for t in self.started()])

    def assert_settled(self, dialler, attempt):
        """The attempt is over: socket closed, reactor and clock let go."""
        self.assert_settled_here(attempt)
        self.assertNotIn(attempt, self.reactor.getWriters())
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(dialler.clock.getDelayedCalls(), [])

    def connect_failing(self, words):
        """
        Dial a listener and let the connect complete: the attempt must end
        in exactly one plain ConnectFailed naming ``words``, cleaned up.
        """
        dialler = self.make_dialler()
        address = self.listener()
        attempt = self.dial(dialler, address)
        self.wait_writable(attempt)
        attempt.doWrite()
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIs(type(error), ConnectFailed)
        self.assertIn(words, str(error))
        self.assert_settled(dialler, attempt)

    def dial_without_descriptors(self, dialler, addresses):
        """
        Dial with the soft open-file limit at the lowest free descriptor, so
        socket() fails with EMFILE; the limit is restored at once.
        """
        if resource is None:
            raise SkipTest("no resource module (RLIMIT_NOFILE) here")
        fd = os.open(os.devnull, os.O_RDONLY)
        os.close(fd)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd, hard))
        try:
            attempts = [dialler.dial(address) for address in addresses]
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        self.attempts.extend(attempts)
        return attempts


class ConnectErrorTests(SynchronousTestCase):
    """connect_error: an errno becomes the right ConnectFailed, in the OS's
    words."""

    def test_classes_and_words(self):
        """Refused and timed out have their own classes; every other code is
        a plain ConnectFailed.  Each message has the OS's words and the
        errno name."""
        expected = [
            (errno.ECONNREFUSED, ConnectionRefused, "refused"),
            (errno.ETIMEDOUT, ConnectTimeout, "connect-timeout"),
        ] + [
            (code, ConnectFailed, "connect-failed")
            for code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET,
                         errno.EMFILE, errno.EADDRNOTAVAIL)
        ]
        for code, cls, reason in expected:
            error = connect_error(code)
            self.assertIs(type(error), cls, code)
            self.assertEqual(error.reason, reason)
            self.assertIn(os.strerror(code), str(error))
            self.assertIn(errno.errorcode[code], str(error))

    def test_unknown_code(self):
        """A code without an errno name still gives a message with the
        number in it."""
        code = 99999
        self.assertNotIn(code, errno.errorcode)
        error = connect_error(code)
        self.assertIs(type(error), ConnectFailed)
        self.assertIn("99999", str(error))


class ConnectTests(DiallerTestCase):
    """An attempt that connects is handed to the reactor."""

    def test_connected_socket_is_started(self):
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.listener())
        self.assertEqual(dialler.connecting, 1)
        self.assertIs(attempt.connecting, True)
        self.assertEqual(self.reactor.getWriters(), [attempt])
        self.wait_writable(attempt)
        attempt.doWrite()
        peer = IPv4Address("TCP", "127.0.0.1", attempt.address.port)
        self.assertEqual(self.factory.addresses, [peer])
        self.assert_started(attempt, peer)
        self.assertEqual(self.failures, [])
        self.assert_settled(dialler, attempt)

    def test_rtt_of_a_connected_socket(self):
        """The kernel's round trip of a connected socket: loopback's is
        tiny; a failed attempt (its socket closed) has none."""
        if not sys.platform.startswith("linux"):
            raise SkipTest("TCP_INFO is read on Linux only")
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.listener())
        self.wait_writable(attempt)
        attempt.doWrite()
        rtt = attempt.rtt()
        self.assertIsNotNone(rtt)
        self.assertTrue(0 < rtt < 1, rtt)
        refused = self.dial(dialler, self.refuser())
        self.wait_writable(refused)
        refused.doWrite()
        self.assertIsNone(refused.rtt())

    def test_protocol_gets_the_dialled_address(self):
        """
        The protocol is built for the address that was dialled, whatever
        the socket's peer name says (0.0.0.0 is reached as 127.0.0.1): the
        caller finds its connection under the address it dialled.
        """
        port = self.listener().port
        dialler = self.make_dialler()
        attempt = self.dial(dialler, NetworkAddress.from_host("0.0.0.0", port))
        self.wait_writable(attempt)
        attempt.doWrite()
        self.assertEqual(self.failures, [])
        self.assert_started(attempt, IPv4Address("TCP", "0.0.0.0", port))

    def test_factory_refuses(self):
        """A factory that builds no protocol (returns None) ends the attempt
        with ConnectFailed: Twisted closes its socket and says nothing."""
        self.factory.buildProtocol = lambda addr: None
        self.connect_failing("refused the connection")

    def test_address_and_repr(self):
        address = self.listener()
        attempt = self.dial(self.make_dialler(), address)
        self.assertEqual(attempt.address, address)
        self.assertIn("connecting", repr(attempt))
        self.assertIn(str(address), repr(attempt))
        attempt.cancel()
        self.assertIn("done", repr(attempt))

    def test_ipv6_loopback(self):
        """::1 is dialled as AF_INET6: started when something listens,
        refused when nothing does."""
        if not _ipv6_loopback():
            raise SkipTest("::1 cannot be bound here")
        listening = self.bound_socket(socket.AF_INET6, "::1", listen=True)
        refusing = self.bound_socket(socket.AF_INET6, "::1")
        dialler = self.make_dialler()
        good = self.dial(dialler, NetworkAddress.from_host("::1", listening.getsockname()[1]))
        bad_address = NetworkAddress.from_host("::1", refusing.getsockname()[1])
        bad = self.dial(dialler, bad_address)
        self.assertEqual(good.family, socket.AF_INET6)
        self.assertEqual(good.socket.family, socket.AF_INET6)
        self.wait_writable(good)
        self.wait_writable(bad)
        good.doWrite()
        bad.doWrite()
        peer = IPv6Address("TCP", "::1", listening.getsockname()[1])
        self.assertEqual(self.factory.addresses, [peer])
        self.assert_started(good, peer)
        [(address, error)] = self.failures
        self.assertEqual(address, bad_address)
        self.assertIsInstance(error, ConnectionRefused)
        self.assert_settled(dialler, good)
        self.assert_settled(dialler, bad)

    def test_reactor_cannot_watch_the_connection(self):
        """If the reactor cannot watch the connected socket, the attempt
        fails with the OS error, and the protocol is never told of a
        connection."""
        def add_reader(reader):
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

        self.patch(self.reactor, "addReader", add_reader)
        self.connect_failing("ENOMEM")
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class BrokenFactoryTests(DiallerTestCase):
    """A factory with a bug still gets every attempt a verdict."""

    def test_protocol_that_cannot_start(self):
        """
        A factory whose protocol raises (a bug) still ends the attempt,
        with ConnectFailed and the error logged: a caller waiting for the
        verdict would otherwise wait forever.
        """

        class Broken(Factory):
            def buildProtocol(self, addr):
                raise RuntimeError("no protocol today")

        self.factory = Broken()
        self.connect_failing("no protocol today")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RefusedTests(DiallerTestCase):
    """Nothing listens: ConnectionRefused, through doWrite or connectionLost."""

    def test_refused_on_write(self):
        dialler = self.make_dialler()
        address = self.refuser()
        attempt = self.dial(dialler, address)
        self.wait_writable(attempt)
        # The RST is in, but nothing is reported until the reactor says so.
        self.assertEqual(self.failures, [])
        attempt.doWrite()
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIsInstance(error, ConnectionRefused)
        self.assertEqual(error.reason, "refused")
        self.assertIn(os.strerror(errno.ECONNREFUSED), str(error))
        self.assertEqual(self.factory.addresses, [])
        self.assert_settled(dialler, attempt)

    def test_refused_on_connection_lost(self):
        """The reactor may report the refusal as an error/hang-up event
        (connectionLost) rather than as writable: same verdict."""
        dialler = self.make_dialler()
        address = self.refuser()
        attempt = self.dial(dialler, address)
        self.wait_writable(attempt)
        attempt.connectionLost(Failure(ConnectionLost()))
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIsInstance(error, ConnectionRefused)
        self.assertEqual(error.reason, "refused")
        self.assertEqual(self.factory.addresses, [])
        self.assert_settled(dialler, attempt)

    def test_connection_lost_after_settling(self):
        """connectionLost once the attempt has settled reports nothing."""
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.refuser())
        self.wait_writable(attempt)
        attempt.doWrite()
        attempt.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.failures), 1)

    def test_connection_lost_without_error(self):
        """An error event with SO_ERROR already read (0) still fails the
        attempt, as a reset, rather than leaving it connecting."""
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.refuser())
        self.wait_writable(attempt)
        code = attempt.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.assertEqual(code, errno.ECONNREFUSED)
        attempt.connectionLost(Failure(ConnectionLost()))
        [(_, error)] = self.failures
        self.assertIs(type(error), ConnectFailed)
        self.assertIn("ECONNRESET", str(error))
        self.assert_settled(dialler, attempt)

    def test_counts_attempts_under_way(self):
        dialler = self.make_dialler()
        attempts = [self.dial(dialler, self.refuser()) for _ in range(3)]
        self.assertEqual(dialler.connecting, 3)
        self.assertEqual(set(self.reactor.getWriters()), set(attempts))
        for left, attempt in zip((2, 1, 0), attempts):
            self.wait_writable(attempt)
            attempt.doWrite()
            self.assertEqual(dialler.connecting, left)
        self.assertEqual(len(self.failures), 3)
        self.assertEqual(self.reactor.getWriters(), [])


class TimeoutTests(DiallerTestCase):
    """One shared timeout: a FIFO of deadlines and one DelayedCall."""

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()

    def timed_out(self, address):
        """Whether ``address`` was reported, with ConnectTimeout."""
        for failed_address, error in self.failures:
            if failed_address == address:
                self.assertIsInstance(error, ConnectTimeout)
                return True
        return False

    def deadlines(self):
        return [call.getTime() for call in self.clock.getDelayedCalls()]

    def test_deadlines_in_order(self):
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        first, second = self.blackhole(), self.blackhole()
        a = self.dial(dialler, first)
        self.clock.advance(1)
        b = self.dial(dialler, second)
        # One DelayedCall, for the head of the queue.
        self.assertEqual(self.deadlines(), [2])
        self.clock.advance(0.5)  # t=1.5
        self.assertEqual(self.failures, [])
        self.clock.advance(0.5)  # t=2
        self.assertEqual(len(self.failures), 1)
        self.assertTrue(self.timed_out(first))
        [(_, error)] = self.failures
        self.assertEqual(error.reason, "connect-timeout")
        self.assertIn("2 s", str(error))
        self.assertEqual(a.socket.fileno(), -1)
        self.assertNotIn(a, self.reactor.getWriters())
        self.assertIs(b.connecting, True)
        self.assertEqual(dialler.connecting, 1)
        self.assertEqual(self.deadlines(), [3])
        self.clock.advance(1)
        self.assertEqual(len(self.failures), 2)
        self.assertTrue(self.timed_out(second))
        self.assert_settled(dialler, b)
        # The timeouts ran on the clock given, not on the reactor.
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_connected_in_time_is_not_a_timeout(self):
        """A connect the kernel finished before the deadline, its event not
        yet dispatched (a busy reactor runs the timer first), is settled as
        what it is, not as a timeout; the one still under way times out."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        listening, refused, blackholed = self.listener(), self.refuser(), self.blackhole()
        connected = self.dial(dialler, listening)
        failed = self.dial(dialler, refused)
        self.dial(dialler, blackholed)
        self.wait_writable(connected)
        self.wait_writable(failed)
        self.clock.advance(2)
        self.assert_started(connected, IPv4Address("TCP", "127.0.0.1", listening.port))
        errors = dict(self.failures)
        self.assertIsInstance(errors[refused], ConnectionRefused)
        self.assertIsInstance(errors[blackholed], ConnectTimeout)
        self.assertEqual(len(self.failures), 2)
        self.assertEqual(dialler.connecting, 0)

    def test_timeout_lowered(self):
        """A lower timeout applies to the attempts under way, each from its
        own start: one already past it times out at once (on the next
        turn), the other at its new deadline."""
        dialler = self.make_dialler(timeout=5, clock=self.clock)
        first, second = self.blackhole(), self.blackhole()
        self.dial(dialler, first)
        self.clock.advance(2)
        self.dial(dialler, second)  # t=2
        dialler.timeout = 1.5
        self.assertEqual(self.failures, [])
        self.assertEqual(self.deadlines(), [2])
        self.clock.advance(0)
        self.assertTrue(self.timed_out(first))
        self.assertIn("1.5 s", str(self.failures[0][1]))
        self.assertEqual(self.deadlines(), [3.5])
        self.clock.advance(1.4)  # t=3.4
        self.assertEqual(len(self.failures), 1)
        self.clock.advance(0.1)
        self.assertTrue(self.timed_out(second))
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.deadlines(), [])

    def test_timeout_raised(self):
        """A higher timeout moves the pending deadline later; with nothing
        under way it only changes the next dials'."""
        dialler = self.make_dialler(timeout=1, clock=self.clock)
        dialler.timeout = 2
        self.assertEqual(self.deadlines(), [])
        address = self.blackhole()
        self.dial(dialler, address)
        dialler.timeout = 3
        self.assertEqual(self.deadlines(), [3])
        self.clock.advance(2.9)
        self.assertEqual(self.failures, [])
        self.clock.advance(0.1)
        self.assertTrue(self.timed_out(address))

    def test_same_deadline(self):
        """Attempts started at the same moment all time out at once, from
        one DelayedCall."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        addresses = [self.blackhole() for _ in range(5)]
        attempts = [self.dial(dialler, address) for address in addresses]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(2)
        self.assertEqual([address for address, _ in self.failures], addresses)
        for attempt in attempts:
            self.assert_settled(dialler, attempt)
        self.assertTrue(all(isinstance(error, ConnectTimeout) for _, error in self.failures))

    def test_uses_reactor_clock_by_default(self):
        dialler = Dialler(self.reactor, self.factory, 2, self.record, watch=self.watch)
        self.assertIs(dialler.clock, self.reactor)
        address = self.blackhole()
        self.dial(dialler, address)
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.reactor.advance(2)
        self.assertTrue(self.timed_out(address))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_connected_is_not_timed_out(self):
        """An attempt that connects leaves no DelayedCall behind once nothing
        else is connecting."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        attempt = self.dial(dialler, self.listener())
        self.clock.advance(1)
        self.wait_writable(attempt)
        attempt.doWrite()
        self.assert_settled(dialler, attempt)
        self.clock.advance(10)
        self.assertEqual(self.failures, [])
        self.assertEqual(len(self.started()), 1)

    def test_connected_head_is_skipped(self):
        """The head of the queue connects while a later attempt is still
        under way: at the head's deadline nothing is reported; the later one
        times out at its own deadline."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        head = self.dial(dialler, self.listener())
        self.clock.advance(1)
        later_address = self.blackhole()
        later = self.dial(dialler, later_address)
        self.clock.advance(0.5)
        self.wait_writable(head)
        head.doWrite()
        self.assertEqual(len(self.started()), 1)
        self.assertEqual(dialler.connecting, 1)
        self.clock.advance(0.5)  # t=2, the head's deadline
        self.assertEqual(self.failures, [])
        self.assertEqual(self.deadlines(), [3])
        self.clock.advance(1)  # t=3
        self.assertEqual(len(self.failures), 1)
        self.assertTrue(self.timed_out(later_address))
        self.assert_settled(dialler, later)

    def test_refused_then_redial(self):
        """The last attempt fails (no timer left), ``failed`` dials again:
        the new attempt gets a timer for its own deadline."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        replacement = self.blackhole()

        def failed(address, error):
            self.record(address, error)
            if len(self.failures) == 1:
                self.dial(dialler, replacement)

        dialler.failed = failed
        attempt = self.dial(dialler, self.refuser())
        self.clock.advance(1)
        self.wait_writable(attempt)
        attempt.doWrite()
        self.assertIsInstance(self.failures[0][1], ConnectionRefused)
        self.assertEqual(dialler.connecting, 1)
        self.assertEqual(self.deadlines(), [3])
        self.clock.advance(2)
        self.assertTrue(self.timed_out(replacement))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_redial_from_expiry(self):
        """
        ``failed`` dials again from inside the timeout expiry, while an older
        attempt is still under way: the older one still times out at its own
        deadline (the new attempt's timer must not replace the head's), and
        the new one at its own.
        """
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        first, second, third = self.blackhole(), self.blackhole(), self.blackhole()

        def failed(address, error):
            self.record(address, error)
            if address == first:
                self.dial(dialler, third)  # at t=2: deadline 4

        dialler.failed = failed
        self.dial(dialler, first)  # t=0: deadline 2
        self.clock.advance(1)
        self.dial(dialler, second)  # t=1: deadline 3
        self.clock.advance(1)  # t=2
        self.assertEqual([address for address, _ in self.failures], [first])
        self.assertEqual(dialler.connecting, 2)
        self.assertEqual(self.deadlines(), [3])
        self.clock.advance(1)  # t=3
        self.assertEqual([address for address, _ in self.failures], [first, second])
        self.assertEqual(self.deadlines(), [4])
        self.clock.advance(1)  # t=4
        self.assertEqual([address for address, _ in self.failures], [first, second, third])
        self.assertTrue(all(isinstance(error, ConnectTimeout) for _, error in self.failures))
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.reactor.getWriters(), [])

    def test_redial_from_expiry_of_last(self):
        """The attempt that times out was the only one: the dial made by
        ``failed`` still gets its timer."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        first, second = self.blackhole(), self.blackhole()

        def failed(address, error):
            self.record(address, error)
            if address == first:
                self.dial(dialler, second)

        dialler.failed = failed
        self.dial(dialler, first)
        self.clock.advance(2)
        self.assertEqual(dialler.connecting, 1)
        self.assertEqual(self.deadlines(), [4])
        self.clock.advance(2)
        self.assertTrue(self.timed_out(second))
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel_from_expiry(self):
        """``failed`` cancels the other attempt from inside the expiry: it is
        reported once, as cancelled, and no timer is left."""
        dialler = self.make_dialler(timeout=2, clock=self.clock)
        first, second = self.blackhole(), self.blackhole()
        attempts = {}

        def failed(address, error):
            self.record(address, error)
            if address == first:
                attempts[second].cancel()

        dialler.failed = failed
        attempts[first] = self.dial(dialler, first)
        self.clock.advance(1)
        attempts[second] = self.dial(dialler, second)
        self.clock.advance(1)
        [(_, timeout), (address, cancelled)] = self.failures
        self.assertIsInstance(timeout, ConnectTimeout)
        self.assertEqual(address, second)
        self.assertIs(type(cancelled), ConnectFailed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual(len(self.failures), 2)


class CancelTests(DiallerTestCase):
    """Attempt.cancel: reports an attempt under way, leaves a settled one."""

    def test_cancel_under_way(self):
        dialler = self.make_dialler()
        address = self.refuser()
        attempt = self.dial(dialler, address)
        attempt.cancel()
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIs(type(error), ConnectFailed)
        self.assertEqual(str(error), "connection attempt cancelled")
        self.assert_settled(dialler, attempt)
        attempt.cancel()
        attempt.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.failures), 1)

    def test_write_event_after_cancel(self):
        """A stray write event after settling reads nothing from the closed
        socket and reports nothing more."""
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.refuser())
        attempt.cancel()
        attempt.doWrite()
        self.assertEqual(len(self.failures), 1)
        self.assert_settled(dialler, attempt)

    def test_cancel_after_connecting(self):
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.listener())
        self.wait_writable(attempt)
        attempt.doWrite()
        attempt.cancel()
        self.assertEqual(self.failures, [])
        self.assertEqual(len(self.started()), 1)
        self.assert_settled(dialler, attempt)

    def test_cancel_after_refusal(self):
        dialler = self.make_dialler()
        attempt = self.dial(dialler, self.refuser())
        self.wait_writable(attempt)
        attempt.doWrite()
        attempt.cancel()
        [(_, error)] = self.failures
        self.assertIsInstance(error, ConnectionRefused)

    def test_cancel_after_timeout(self):
        clock = task.Clock()
        dialler = self.make_dialler(timeout=1, clock=clock)
        attempt = self.dial(dialler, self.blackhole())
        clock.advance(1)
        attempt.cancel()
        [(_, error)] = self.failures
        self.assertIsInstance(error, ConnectTimeout)
        self.assert_settled(dialler, attempt)

    def test_cancel_one_of_several(self):
        """Cancelling one attempt leaves the others and their timer alone."""
        clock = task.Clock()
        dialler = self.make_dialler(timeout=2, clock=clock)
        first, second = self.blackhole(), self.blackhole()
        a = self.dial(dialler, first)
        clock.advance(1)
        b = self.dial(dialler, second)
        a.cancel()
        self.assertEqual(dialler.connecting, 1)
        self.assertEqual(self.reactor.getWriters(), [b])
        clock.advance(2)
        self.assertEqual([address for address, _ in self.failures], [first, second])
        self.assertIsInstance(self.failures[1][1], ConnectTimeout)
        self.assert_settled(dialler, b)


class UnsupportedNetworkTests(DiallerTestCase):
    """Tor, I2P and CJDNS need a proxy: dial refuses them outright."""

    def test_overlay_networks(self):
        dialler = self.make_dialler()
        for address in (
            NetworkAddress(Network.TORV3, bytes(32), 8333),
            NetworkAddress(Network.I2P, bytes(32), 0),
            NetworkAddress(Network.CJDNS, bytes.fromhex("fc") + bytes(15), 8333),
        ):
            with self.assertRaises(ValueError) as caught:
                dialler.dial(address)
            self.assertIn("proxy", str(caught.exception))
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.reactor.getWriters(), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.failures, [])


class EarlyFailureTests(DiallerTestCase):
    """
    Failures known inside dial() (no descriptor left, connect failing at
    once) are reported on the next reactor turn, never from inside dial.
    """

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()

    def test_out_of_descriptors(self):
        dialler = self.make_dialler(clock=self.clock)
        addresses = [self.refuser() for _ in range(3)]
        attempts = self.dial_without_descriptors(dialler, addresses)
        self.assertEqual(self.failures, [])
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.reactor.getWriters(), [])
        # One call for all of them.
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [0])
        for attempt in attempts:
            self.assertIs(attempt.connecting, False)
            self.assertIsNone(attempt.socket)
        self.clock.advance(0)
        self.assertEqual([address for address, _ in self.failures], addresses)
        for _, error in self.failures:
            self.assertIsInstance(error, ConnectFailed)
            self.assertIn("EMFILE", str(error))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # Reported once: cancelling afterwards does nothing.
        attempts[0].cancel()
        self.assertEqual(len(self.failures), 3)

    def test_cancel_out_of_descriptors(self):
        """cancel() reports an early failure at once; the pending call goes
        when nothing is left for it."""
        dialler = self.make_dialler(clock=self.clock)
        first, second = self.refuser(), self.refuser()
        a, b = self.dial_without_descriptors(dialler, [first, second])
        a.cancel()
        self.assertEqual([address for address, _ in self.failures], [first])
        self.assertIn("EMFILE", str(self.failures[0][1]))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        b.cancel()
        self.assertEqual([address for address, _ in self.failures], [first, second])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        a.cancel()
        self.clock.advance(0)
        self.assertEqual(len(self.failures), 2)

    def test_cancel_one_then_report_rest(self):
        dialler = self.make_dialler(clock=self.clock)
        first, second = self.refuser(), self.refuser()
        a, b = self.dial_without_descriptors(dialler, [first, second])
        b.cancel()
        self.clock.advance(0)
        self.assertEqual([address for address, _ in self.failures], [second, first])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failed_cancels_another_early_failure(self):
        """
        A ``failed`` callback that cancels a later attempt of the same batch
        (the crawler's stop() does) reports it once, and the rest of the
        batch is still reported.
        """
        dialler = self.make_dialler(clock=self.clock)
        addresses = [self.refuser() for _ in range(3)]
        attempts = self.dial_without_descriptors(dialler, addresses)

        def failed(address, error):
            self.record(address, error)
            if address == addresses[0]:
                attempts[1].cancel()

        dialler.failed = failed
        self.clock.advance(0)
        self.assertEqual([a for a, _ in self.failures], addresses)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connect_fails_at_once(self):
        """connect_ex failing at once (no route, say; faked here so that
        nothing leaves the machine): socket closed, reported next turn."""
        self.patch(dialler_module, "socket", _UNREACHABLE_SOCKET_MODULE)
        dialler = self.make_dialler(clock=self.clock)
        address = self.refuser()
        attempt = self.dial(dialler, address)
        self.assertIsInstance(attempt.socket, _UnreachableSocket)
        self.assertEqual(attempt.socket.fileno(), -1)
        self.assertEqual(self.failures, [])
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.reactor.getWriters(), [])
        self.clock.advance(0)
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIs(type(error), ConnectFailed)
        self.assertIn(os.strerror(errno.ENETUNREACH), str(error))
        self.assertIn("ENETUNREACH", str(error))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failed_never_inside_dial(self):
        """A ``failed`` that dials again does not recurse: every report comes
        from the clock's call, none while dial() runs, all at the same stack
        depth."""
        self.patch(dialler_module, "socket", _UNREACHABLE_SOCKET_MODULE)
        address = self.refuser()
        inside_dial = []
        seen = []

        def failed(failed_address, error):
            seen.append((bool(inside_dial), len(inspect.stack(0))))
            self.record(failed_address, error)
            if len(self.failures) < 5:
                inside_dial.append(True)
                try:
                    self.dial(dialler, failed_address)
                finally:
                    inside_dial.pop()

        dialler = self.make_dialler(clock=self.clock, failed=failed)
        inside_dial.append(True)
        self.dial(dialler, address)
        inside_dial.pop()
        self.assertEqual(self.failures, [])
        # Each redial schedules a new call for the same instant, which the
        # same advance(0) runs in turn.
        self.clock.advance(0)
        self.assertEqual(len(self.failures), 5)
        self.assertEqual([inside for inside, _ in seen], [False] * 5)
        self.assertEqual(len({depth for _, depth in seen}), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class EpollSetTests(DiallerTestCase):
    """
    The dialler's own epoll set: one reader for every connect under way,
    there only while something is.  The tests call its doRead as the
    reactor would once the set is readable.
    """

    watch = EpollSet

    def setUp(self):
        if not hasattr(select, "epoll"):
            raise SkipTest("no epoll here")
        super().setUp()

    def assert_idle(self, dialler):
        """Nothing watched: the set is not a reader (the transports of
        connected attempts may be), no epoll descriptor."""
        self.assertNotIn(dialler._watch, self.reactor.getReaders())
        self.assertIsNone(dialler._watch._epoll)

    def test_default_watch(self):
        """The dialler uses an EpollSet where select has epoll, else the
        reactor's writers."""
        dialler = Dialler(self.reactor, self.factory, 2, self.record)
        self.assertIsInstance(dialler._watch, EpollSet)
        without = types.SimpleNamespace(**{k: v for k, v in vars(select).items()
                                           if k != "epoll"})
        self.patch(dialler_module, "select", without)
        dialler = Dialler(self.reactor, self.factory, 2, self.record)
        self.assertIsInstance(dialler._watch, ReactorWriters)

    def test_one_reader_for_every_attempt(self):
        dialler = self.make_dialler()
        addresses = [self.refuser() for _ in range(3)]
        attempts = [self.dial(dialler, address) for address in addresses]
        self.assertEqual(self.reactor.getReaders(), [dialler._watch])
        self.assertEqual(self.reactor.getWriters(), [])
        for attempt in attempts:
            self.wait_writable(attempt)
        dialler._watch.doRead()
        self.assertEqual(sorted(a for a, _ in self.failures), sorted(addresses))
        self.assertTrue(all(isinstance(e, ConnectionRefused) for _, e in self.failures))
        for attempt in attempts:
            self.assert_settled(dialler, attempt)
        self.assert_idle(dialler)

    def test_connected_and_refused_in_one_batch(self):
        dialler = self.make_dialler()
        good = self.dial(dialler, self.listener())
        bad_address = self.refuser()
        bad = self.dial(dialler, bad_address)
        self.wait_writable(good)
        self.wait_writable(bad)
        dialler._watch.doRead()
        self.assert_started(good, IPv4Address("TCP", "127.0.0.1", good.address.port))
        [(address, error)] = self.failures
        self.assertEqual(address, bad_address)
        self.assertIsInstance(error, ConnectionRefused)
        self.assert_settled(dialler, good)
        self.assert_settled(dialler, bad)
        self.assert_idle(dialler)

    def test_connected_socket_is_not_reported_again(self):
        """
        A connected socket stays open as its transport's, and in the set
        until it is closed; watched for one event only, it is not reported
        again when data arrives: that is the transport's.
        """
        server = self.bound_socket(listen=True)
        dialler = self.make_dialler()
        good = self.dial(dialler, NetworkAddress.from_host("127.0.0.1", server.getsockname()[1]))
        # Still connecting as far as the dialler knows: keeps the set open.
        other = self.dial(dialler, self.refuser())
        self.wait_writable(good)
        good.ready(False)
        accepted, _ = server.accept()
        self.addCleanup(accepted.close)
        accepted.send(b"data")
        readable, _, _ = select.select([good.socket], [], [], SELECT_TIMEOUT)
        self.assertEqual(readable, [good.socket])
        self.assertNotIn(good.fileno(), dict(dialler._watch._epoll.poll(0)))
        self.assertEqual(dialler.connecting, 1)
        other.cancel()
        self.assert_idle(dialler)

    def test_event_of_a_closed_socket_is_not_given_to_its_successor(self):
        """
        Settling one attempt of a batch may close another's socket (a
        ``failed`` callback cancels it) and dial again on the freed
        descriptors: the batch's events belong to the old attempts, and the
        new ones, still connecting, are left alone.
        """
        dialler = self.make_dialler()
        first, second = self.refuser(), self.refuser()
        a, b = self.dial(dialler, first), self.dial(dialler, second)
        freed = {a.fileno(), b.fileno()}
        self.wait_writable(a)
        self.wait_writable(b)
        # Something that listens: a stale refusal would fail the successors.
        listening = self.listener()
        successors = []

        def failed(address, error):
            self.record(address, error)
            if len(self.failures) == 1:
                for attempt in (a, b):
                    attempt.cancel()
                successors.extend(self.dial(dialler, listening) for _ in range(2))

        dialler.failed = failed
        dialler._watch.doRead()
        self.assertEqual({s.fileno() for s in successors}, freed)
        self.assertEqual(sorted(address for address, _ in self.failures),
                         sorted([first, second]))
        self.assertTrue(all(s.connecting for s in successors))
        for successor in successors:
            self.wait_writable(successor)
        dialler._watch.doRead()
        self.assertEqual(len(self.started()), 2)
        self.assertEqual(len(self.failures), 2)
        self.assert_idle(dialler)

    def test_a_failing_callback_spoils_nothing_else(self):
        """
        A ``failed`` callback that raises (a bug) is logged, and the rest of
        the batch is settled as usual: the connected attempt is started, not
        failed, and the set still watches what is under way.
        """
        dialler = self.make_dialler()
        refused = [self.dial(dialler, self.refuser()) for _ in range(2)]
        good = self.dial(dialler, self.listener())
        later = self.dial(dialler, self.refuser())
        for attempt in refused + [good]:
            self.wait_writable(attempt)

        def failed(address, error):
            self.record(address, error)
            if len(self.failures) == 1:
                raise RuntimeError("bug in failed")

        dialler.failed = failed
        # Only what was writable before is in this batch, unless the later
        # refusal already arrived too: both ways the set stays sound.
        dialler._watch.doRead()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.started()), 1)
        self.assertNotIn(good.address, [address for address, _ in self.failures])
        for attempt in refused + [good]:
            self.assert_settled_here(attempt)
        if later.connecting:
            self.assertIn(dialler._watch, self.reactor.getReaders())
            self.wait_writable(later)
            dialler._watch.doRead()
        self.assertEqual(len(self.failures), 3)
        self.assert_idle(dialler)

    def test_reactor_refuses_the_reader(self):
        """If the reactor cannot watch the set, the attempt fails on the
        next turn and no half-built set is left to swallow later dials."""
        clock = task.Clock()

        def add_reader(reader):
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

        self.patch(self.reactor, "addReader", add_reader)
        dialler = self.make_dialler(clock=clock)
        attempt = self.dial(dialler, self.refuser())
        self.assertEqual(attempt.socket.fileno(), -1)
        clock.advance(0)
        [(_, error)] = self.failures
        self.assertIn("ENOMEM", str(error))
        self.assert_idle(dialler)

    def test_timeout_and_cancel_let_the_set_go(self):
        clock = task.Clock()
        dialler = self.make_dialler(timeout=2, clock=clock)
        attempt = self.dial(dialler, self.blackhole())
        attempt.cancel()
        self.assert_settled(dialler, attempt)
        self.assert_idle(dialler)
        attempt = self.dial(dialler, self.blackhole())
        self.assertEqual(self.reactor.getReaders(), [dialler._watch])
        clock.advance(2)
        self.assertIsInstance(self.failures[-1][1], ConnectTimeout)
        self.assert_settled(dialler, attempt)
        self.assert_idle(dialler)

    def test_reactor_lets_go(self):
        """When the reactor disconnects its readers (it is stopping), every
        attempt under way ends, once."""
        dialler = self.make_dialler()
        attempts = [self.dial(dialler, self.refuser()) for _ in range(2)]
        dialler._watch.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.failures), 2)
        self.assertTrue(all(isinstance(e, ConnectFailed) for _, e in self.failures))
        for attempt in attempts:
            self.assert_settled(dialler, attempt)
        self.assert_idle(dialler)
        dialler._watch.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.failures), 2)

    def test_no_descriptor_for_the_set(self):
        """If the epoll set cannot be made (no descriptor left), the
        attempt fails on the next turn with the OS's error."""
        clock = task.Clock()

        def no_epoll():
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

        patched = types.SimpleNamespace(**vars(select))
        patched.epoll = no_epoll
        self.patch(dialler_module, "select", patched)
        dialler = self.make_dialler(clock=clock)
        address = self.refuser()
        attempt = self.dial(dialler, address)
        self.assertEqual(attempt.socket.fileno(), -1)
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(self.failures, [])
        clock.advance(0)
        [(failed_address, error)] = self.failures
        self.assertEqual(failed_address, address)
        self.assertIn("EMFILE", str(error))
        self.assert_idle(dialler)


class RealReactorTests(TestCase):
    """The dialler on the real reactor, against 127.0.0.1."""

    timeout = 60

    def refusing_port(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

    @defer.inlineCallbacks
    def test_connects(self):
        """The transport works both ways and knows its peer."""
        received = defer.Deferred()
        server_lost = defer.Deferred()

        class Server(Protocol):
            def connectionMade(self):
                self.data = b""

            def dataReceived(self, data):
                self.data += data
                if len(self.data) >= 4 and not received.called:
                    received.callback(self.data)

            def connectionLost(self, reason):
                server_lost.callback(None)

        port = reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        listening = port.getHost().port

        made = defer.Deferred()
        client_lost = defer.Deferred()

        class Client(Protocol):
            def connectionMade(self):
                made.callback(self)

            def connectionLost(self, reason):
                client_lost.callback(None)

        failures = []

        def failed(address, error):
            failures.append((address, error))
            if not made.called:
                made.errback(error)

        dialler = Dialler(reactor, Factory.forProtocol(Client), 30, failed)
        attempt = dialler.dial(NetworkAddress.from_host("127.0.0.1", listening))
        self.assertEqual(dialler.connecting, 1)
        client = yield made
        try:
            self.assertEqual(dialler.connecting, 0)
            self.assertIsInstance(client.transport, StreamTransport)
            self.assertIs(client.transport.socket, attempt.socket)
            self.assertEqual(client.transport.getPeer(),
                             IPv4Address("TCP", "127.0.0.1", listening))
            client.transport.write(b"ping")
            data = yield received
            self.assertEqual(data, b"ping")
        finally:
            client.transport.loseConnection()
        yield client_lost
        yield server_lost
        self.assertEqual(attempt.socket.fileno(), -1)
        self.assertEqual(failures, [])

    @defer.inlineCallbacks
    def test_protocol_fails_after_the_transport_exists(self):
        """
        A protocol whose connectionMade raises (a bug) after its transport
        exists: the attempt is reported once, as ConnectFailed, and
        the transport is aborted (the far end sees a reset, not a clean
        close) rather than left open.
        """
        server_lost = defer.Deferred()

        class Server(Protocol):
            def connectionLost(self, reason):
                server_lost.callback(reason.value)

        port = reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client_lost = defer.Deferred()

        class Broken(Protocol):
            def connectionMade(self):
                raise RuntimeError("bug in connectionMade")

            def connectionLost(self, reason):
                client_lost.callback(None)

        reported = defer.Deferred()
        dialler = Dialler(reactor, Factory.forProtocol(Broken), 30,
                          lambda *args: reported.callback(args))
        address = NetworkAddress.from_host("127.0.0.1", port.getHost().port)
        dialler.dial(address)
        failed_address, error = yield reported
        self.assertEqual(failed_address, address)
        self.assertIs(type(error), ConnectFailed)
        self.assertIn("bug in connectionMade", str(error))
        yield client_lost
        reason = yield server_lost
        self.assertIsInstance(reason, ConnectionLost)
        self.assertNotIsInstance(reason, ConnectionDone)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    @defer.inlineCallbacks
    def test_refused(self):
        address = NetworkAddress.from_host("127.0.0.1", self.refusing_port())
        reported = defer.Deferred()
        dialler = Dialler(reactor, Factory.forProtocol(Protocol), 30,
                          lambda *args: reported.callback(args))
        attempt = dialler.dial(address)
        failed_address, error = yield reported
        self.assertEqual(failed_address, address)
        self.assertIsInstance(error, ConnectionRefused)
        self.assertEqual(error.reason, "refused")
        self.assertEqual(dialler.connecting, 0)
        self.assertEqual(attempt.socket.fileno(), -1)
        self.assertNotIn(attempt, reactor.getWriters())
        self.assertNotIn(dialler._watch, reactor.getReaders())

    @defer.inlineCallbacks
    def test_many_refused(self):
        """200 attempts at once, each to its own refusing port: each is
        reported exactly once, nothing is started, nothing is left over."""
        count = 200
        addresses = [NetworkAddress.from_host("127.0.0.1", self.refusing_port())
                     for _ in range(count)]
        reports = collections.Counter()
        errors = []
        done = defer.Deferred()

        def failed(address, error):
            reports[address] += 1
            errors.append(error)
            if len(errors) == count:
                done.callback(None)

        built = []

        class Recorder(Factory):
            def buildProtocol(self, addr):
                built.append(addr)
                return None

        dialler = Dialler(reactor, Recorder(), 30, failed)
        attempts = [dialler.dial(address) for address in addresses]
        self.assertEqual(dialler.connecting, count)
        yield done
        # A few more turns, for any report that would come twice.
        for _ in range(3):
            yield task.deferLater(reactor, 0, lambda: None)
        self.assertEqual(reports, collections.Counter(addresses))
        self.assertEqual(set(reports.values()), {1})
        self.assertTrue(all(isinstance(error, ConnectionRefused) for error in errors))
        self.assertEqual(built, [])
        self.assertEqual(dialler.connecting, 0)
        self.assertTrue(all(attempt.socket.fileno() == -1 for attempt in attempts))
        self.assertFalse(set(attempts) & set(reactor.getWriters()))
        self.assertNotIn(dialler._watch, reactor.getReaders())
