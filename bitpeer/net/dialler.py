"""
Many outbound TCP connections at once, for little more than the kernel's cost.

A crawl dials tens of thousands of addresses, and most of them fail: nothing
listens, or nothing answers.  Through ``reactor.connectTCP`` each attempt
builds a Connector, a Client transport, a Deferred for name resolution, a
timeout DelayedCall in the reactor's heap and, on failure, a Failure: about
45 microseconds of Python on top of the socket calls, which made Twisted's
connect machinery the largest cost of a crawl.

Here an attempt is one small object.  It opens a non-blocking socket, is
told when the socket is writable (the connect finished, one way or the
other), and reads ``SO_ERROR``.  A refused or failed attempt
closes its socket and calls ``failed(address, error)`` with a
bitpeer.errors.ConnectFailed.  For a connected socket the factory builds its
protocol, given the address that was dialled, and the protocol runs on a
bitpeer.net.stream.StreamTransport of that socket (the reactor watches it as
for any connection); from then on the dialler forgets it.

Every attempt has the same timeout, so deadlines come in the order the
attempts started: a FIFO queue of start times and one DelayedCall for its
head replace a heap entry per attempt.  The timeout may change while
attempts are under way (a crawl learns it, bitpeer.crawl.timeouts): it
applies to them too, each measured from its own start, so the order holds.

Where the OS has epoll, the sockets still connecting sit in the dialler's own
epoll set, which the reactor watches as one reader (EpollSet); elsewhere each
is one of the reactor's writers until it settles (ReactorWriters).
``python bench/dial.py`` measures both, and the endpoint dialler beside them.
"""

import errno
import os
import select
import socket
import struct
import sys
from collections import deque

from twisted.internet.address import IPv4Address, IPv6Address

from ..errors import ConnectFailed, ConnectionRefused, ConnectTimeout
from ..logs import logger
from .stream import StreamTransport
from ..wire.address import Network

_FAMILIES = {Network.IPV4: socket.AF_INET, Network.IPV6: socket.AF_INET6}
#: Non-blocking from creation where the OS allows it (one syscall fewer).
_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)
_CONNECTING = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
#: Linux's struct tcp_info (linux/tcp.h): eight one-byte fields, then u32s
#: of which tcpi_rtt (microseconds) is the sixteenth.  Part of the kernel's
#: ABI since 2.6; no library reads it for us.
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCPI_RTT = struct.Struct("=I")
_TCPI_RTT_END = 8 + 16 * 4


def connect_error(code):
    """The ConnectFailed subclass for a connect errno."""
    text = f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"
    if code == errno.ECONNREFUSED:
        return ConnectionRefused(text)
    if code == errno.ETIMEDOUT:
        return ConnectTimeout(text)
    return ConnectFailed(text)


class Attempt:
    """
    One connection attempt while the connect is under way: ready() is told
    when it is over (it is also the IWriteDescriptor ReactorWriters gives
    the reactor).  ``address`` is what was dialled; ``connecting`` is True
    until it has connected, failed or been cancelled.
    """

    __slots__ = ("dialler", "address", "socket", "family", "connecting", "early_error")

    log = logger()

    def __init__(self, dialler, address, sock, family):
        self.dialler = dialler
        self.address = address
        self.socket = sock
        self.family = family
        self.connecting = True
        #: A failure known inside dial(), reported on the next reactor turn.
        self.early_error = None

    def __repr__(self):
        state = "connecting" if self.connecting else "done"
        return f"<Attempt {self.address} {state}>"

    def rtt(self):
        """
        The kernel's smoothed round-trip time of the connected socket (s),
        or None where it has none (not Linux, no sample: a SYN resent
        without timestamps, or the socket gone).  Unlike the time from
        dial to connectionMade, it does not count the time the reactor
        took to get to the connect's event: on a crawl busy decoding
        answers, that is most of it.
        """
        if self.socket is None or _TCP_INFO is None:
            return None
        try:
            info = self.socket.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCPI_RTT_END)
        except OSError:
            return None
        if len(info) < _TCPI_RTT_END:
            return None
        (micros,) = _TCPI_RTT.unpack_from(info, _TCPI_RTT_END - _TCPI_RTT.size)
        return micros / 1e6 if micros else None

    def cancel(self):
        """Give up on a connect under way (no-op once it has settled): the
        ``failed`` callback gets ConnectFailed."""
        if self.connecting:
            self._settle(ConnectFailed("connection attempt cancelled"))
        elif self.early_error is not None:
            self.dialler._report_early(self)

    # -- IWriteDescriptor: the reactor calls these ---------------------------

    def fileno(self):
        return self.socket.fileno()

    def logPrefix(self):
        return "bitpeer.net.dialler"

    def doWrite(self):
        """Writable: the connect is over."""
        self.ready(False)

    def connectionLost(self, reason):
        """The reactor saw an error or hang-up event."""
        self.ready(True)

    def ready(self, broken):
        """
        The connect is over, one way or the other; ``broken`` if the event
        was an error or hang-up.  SO_ERROR says how it went (for a refusal,
        ECONNREFUSED).  Nothing happens once the attempt has settled.
        """
        if not self.connecting:
            return
        code = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if broken and not code:
            code = errno.ECONNRESET
        self._settle(connect_error(code) if code else None)

    def _settle(self, error):
        """Connected (``error`` is None) or failed: stop watching, then start
        the connection or close the socket."""
        self.connecting = False
        dialler = self.dialler
        dialler._watch.discard(self)
        dialler._settled()
        if error is None:
            error = self._start()
        else:
            self.socket.close()
        if error is not None:
            dialler.failed(self.address, error)

    def _start(self):
        """Make the factory's protocol for the address dialled and start it
        on a StreamTransport of the connected socket: None, or the
        ConnectFailed that ends the attempt (its socket closed, or being
        closed by its transport)."""
        address, dialler = self.address, self.dialler
        kind = IPv6Address if self.family == socket.AF_INET6 else IPv4Address
        peer = kind("TCP", address.host_text, address.port)
        transport = None
        try:
            protocol = dialler.factory.buildProtocol(peer)
            if protocol is not None:
                transport = StreamTransport(dialler.reactor, self.socket, protocol, peer)
                transport.start()
        except Exception as e:
            if transport is not None and transport.connected:
                # connectionMade raised: the transport aborts (RST).
                transport.abortConnection()
            else:
                self.socket.close()
                if transport is not None and isinstance(e, OSError):
                    # The reactor cannot watch the socket (out of memory, say).
                    return connect_error(e.errno or errno.EIO)
            # A bug in the factory or its protocol: logged, and the attempt
            # still ends, or its caller would wait for it forever.
            self.log.failure("{address}: the connection could not start", address=address)
            return ConnectFailed(f"the connection could not start: {e!r}")
        if transport is None:
            self.socket.close()
            return ConnectFailed("the factory refused the connection")
        return None


class ReactorWriters:
    """
    Watch each connecting socket as one of the reactor's writers (the
    Attempt is the IWriteDescriptor): what any reactor can do.
    """

    def __init__(self, reactor):
        self.reactor = reactor

    def add(self, attempt):
        """Watch ``attempt`` until it is discarded."""
        self.reactor.addWriter(attempt)

    def discard(self, attempt):
        """Stop watching ``attempt``, before its socket is closed or handed
        over."""
        self.reactor.removeWriter(attempt)


#: epoll events that mean the connect failed.
_BROKEN = getattr(select, "EPOLLERR", 0) | getattr(select, "EPOLLHUP", 0)


class EpollSet:
    """
    Watch the connecting sockets in an epoll set of our own, which the
    reactor watches as one reader (this IReadDescriptor).

    Twisted dispatches every event through several layers of Python (the
    logging context, its reader and writer bookkeeping).  Here one
    epoll_wait returns a batch of finished connects, each settled by a
    dictionary lookup: ``bench/dial.py`` measured a refused attempt at 32
    microseconds of CPU as the reactor's writer and 24 here.  One attempt
    whose settling raises (a bug in a ``failed`` callback) is logged and
    does not disturb the others.

    A socket is watched for one event (EPOLLONESHOT): once its connect is
    over the kernel reports it no more, so it needs no call to leave the
    set, which it does when it is closed.  Only an attempt given up (a
    timeout, a cancel) is taken out explicitly.

    The set exists only while something is being watched, so an idle
    dialler holds no descriptor and gives the reactor nothing to wait for.
    """

    log = logger()

    def __init__(self, reactor):
        self.reactor = reactor
        self._epoll = None
        #: Descriptor -> the Attempt whose socket it is.
        self._attempts = {}
        #: One event when the socket becomes writable, then no more.
        self._events = select.EPOLLOUT | select.EPOLLONESHOT

    def add(self, attempt):
        """Watch ``attempt`` until its connect is over or it is discarded."""
        fd = attempt.socket.fileno()
        if self._epoll is not None:
            self._epoll.register(fd, self._events)
        else:
            self._epoll = select.epoll()
            try:
                self._epoll.register(fd, self._events)
                self.reactor.addReader(self)
            except BaseException:
                self._epoll.close()
                self._epoll = None
                raise
        self._attempts[fd] = attempt

    def discard(self, attempt):
        """Stop watching ``attempt``, before its socket is closed: needed only
        when its connect is not over (a timeout, a cancel)."""
        fd = attempt.socket.fileno()
        if self._attempts.get(fd) is attempt:
            del self._attempts[fd]
            self._epoll.unregister(fd)
            self._close_if_idle()

    def fileno(self):
        return self._epoll.fileno()

    def logPrefix(self):
        return "bitpeer.net.dialler"

    def doRead(self):
        """Settle every attempt whose connect is over."""
        attempts = self._attempts
        # Every attempt is taken out before any is settled: settling one
        # closes its socket, and a dial from the ``failed`` callback may get
        # the same descriptor, which must not be given the old one's event.
        ready = [
            (attempts.pop(fd, None), events & _BROKEN)
            for fd, events in self._epoll.poll(0, len(attempts))
        ]
        # Let go before the callbacks run, which may dial again (a new set).
        self._close_if_idle()
        for attempt, broken in ready:
            if attempt is not None:
                self._settle(attempt, broken)

    def connectionLost(self, reason):
        """The reactor let go of us (it disconnects everything when it
        stops): every attempt under way ends, as the reactor's writers do."""
        for attempt in list(self._attempts.values()):
            self._settle(attempt, True)

    def _close_if_idle(self):
        if not self._attempts and self._epoll is not None:
            self.reactor.removeReader(self)
            self._epoll.close()
            self._epoll = None

    def _settle(self, attempt, broken):
        # An exception here would reach the reactor, which would take the
        # whole set for broken and fail every attempt in it.
        try:
            attempt.ready(broken)
        except Exception:
            self.log.failure("{address}: settling the attempt went wrong",
                             address=attempt.address)


#: poll() events that mean a connect is over: done (writable) or failed.
_OVER = select.POLLOUT | select.POLLERR | select.POLLHUP
_POLL_BROKEN = select.POLLERR | select.POLLHUP


def _already_over(attempts):
    """
    ``(attempt, broken)`` for each of ``attempts`` past its deadline:
    ``broken`` None if its connect is still under way, else whether it
    failed (as ready() takes it).  A busy reactor (a crawl decoding
    thousands of answers) may run a timer before the events of the same
    moment: a socket the kernel connected in time, its event not yet
    dispatched, is not a timeout.  One poll() with no wait asks the kernel.
    """
    if not attempts:
        return []
    poller = select.poll()
    for attempt in attempts:
        poller.register(attempt.socket.fileno(), select.POLLOUT)
    events = dict(poller.poll(0))
    return [(attempt, None if not events.get(attempt.socket.fileno(), 0) & _OVER
             else bool(events[attempt.socket.fileno()] & _POLL_BROKEN))
            for attempt in attempts]


class Dialler:
    """
    Dial IPv4 and IPv6 NetworkAddresses for ``factory`` (any Twisted
    protocol factory), giving up after ``timeout`` seconds of ``clock``.
    Setting ``timeout`` applies the new value to the attempts under way as
    well, each from its own start.

    ``failed(address, error)`` is called once for every attempt that does
    not connect, with a ConnectFailed (ConnectionRefused, ConnectTimeout, or
    the plain class with the OS's words); never from inside ``dial``, so a
    caller that dials again from ``failed`` does not recurse.  A connected
    attempt calls nothing: the factory's protocol takes over.

    ``watch`` is the class that watches the sockets still connecting:
    EpollSet where the OS has epoll, else ReactorWriters.
    """

    def __init__(self, reactor, factory, timeout, failed, clock=None, watch=None):
        self.reactor = reactor
        if watch is None:
            watch = EpollSet if hasattr(select, "epoll") else ReactorWriters
        self._watch = watch(reactor)
        self.clock = clock if clock is not None else reactor
        self.factory = factory
        self._timeout = timeout
        self.failed = failed
        #: Attempts under way.
        self.connecting = 0
        #: (start time, Attempt), in the order dialled.
        self._deadlines = deque()
        self._timer = None
        self._early = {}  # attempts that failed inside dial(), in order
        self._early_call = None

    @property
    def timeout(self):
        """Seconds an attempt may take to connect."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds):
        self._timeout = seconds
        if self._timer is not None:
            # Re-armed for the head's deadline under the new timeout (it
            # may have passed: then on the next reactor turn).
            self._timer.cancel()
            self._timer = None
            self._arm(self.clock.seconds())

    def dial(self, address):
        """Start connecting to ``address``: its Attempt."""
        family = _FAMILIES.get(address.network)
        if family is None:
            raise ValueError(f"{address}: {address.network_name} addresses need a proxy")
        try:
            sock = socket.socket(family, socket.SOCK_STREAM | _NONBLOCK)
        except OSError as e:
            # Out of descriptors, say.
            return self._fail_soon(Attempt(self, address, None, family),
                                   e.errno or errno.EMFILE)
        if not _NONBLOCK:
            sock.setblocking(False)
        attempt = Attempt(self, address, sock, family)
        target = (address.host_text, address.port)
        code = sock.connect_ex(target if family == socket.AF_INET else target + (0, 0))
        if not code or code in _CONNECTING:
            # Connected at once (code 0) or under way: either way the socket
            # becomes writable, and ready() takes it from there.
            try:
                self._watch.add(attempt)
            except OSError as e:
                # No descriptor left for the epoll set, say.
                code = e.errno or errno.EMFILE
            else:
                code = 0
        if code:
            # Failed at once (no route, say) or cannot be watched.
            sock.close()
            return self._fail_soon(attempt, code)
        self.connecting += 1
        self._deadlines.append((self.clock.seconds(), attempt))
        if self._timer is None:
            self._timer = self.clock.callLater(self._timeout, self._expire)
        return attempt

    def _settled(self):
        self.connecting -= 1
        if not self.connecting:
            # Nothing under way: no timer left behind, nothing held.
            self._deadlines.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _expire(self):
        """Time out every attempt whose deadline has passed; re-arm for the
        first one still under way."""
        self._timer = None
        now, deadlines, timeout = self.clock.seconds(), self._deadlines, self._timeout
        expired = []
        while deadlines and deadlines[0][0] + timeout <= now:
            _, attempt = deadlines.popleft()
            if attempt.connecting:
                expired.append(attempt)
        for attempt, broken in _already_over(expired):
            if not attempt.connecting:
                continue  # settled by a callback of one before it (a cancel)
            if broken is None:
                attempt._settle(ConnectTimeout(f"no TCP connection within {timeout:g} s"))
            else:
                attempt.ready(broken)
        # A dial made by a ``failed`` callback above may have armed a timer
        # for its own, later deadline: the head's comes first.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._arm(now)

    def _arm(self, now):
        """Time the next expiry for the first attempt still under way."""
        deadlines = self._deadlines
        while deadlines and not deadlines[0][1].connecting:
            deadlines.popleft()
        if deadlines:
            self._timer = self.clock.callLater(
                max(0.0, deadlines[0][0] + self._timeout - now), self._expire)

    def _fail_soon(self, attempt, code):
        """A failure known inside dial() is reported on the next reactor
        turn (or at once by cancel()), so ``failed`` never runs inside dial."""
        attempt.connecting = False
        attempt.early_error = connect_error(code)
        self._early[attempt] = None
        if self._early_call is None:
            self._early_call = self.clock.callLater(0, self._report_all_early)
        return attempt

    def _report_all_early(self):
        self._early_call = None
        for attempt in list(self._early):
            # A ``failed`` callback may have cancelled (so reported) a later one.
            if attempt in self._early:
                self._report_early(attempt)

    def _report_early(self, attempt):
        error, attempt.early_error = attempt.early_error, None
        del self._early[attempt]
        if not self._early and self._early_call is not None:
            self._early_call.cancel()
            self._early_call = None
        self.failed(attempt.address, error)
