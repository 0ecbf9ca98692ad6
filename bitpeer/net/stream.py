"""
A lean transport for the TCP connections the dialler makes.

A crawl opens tens of thousands of short connections, each a handful of
small messages each way.  Twisted's TCP transport, given a connected socket
by ``adoptStreamConnection``, duplicates the descriptor and asks for the
peer's name; every ``write`` waits until the reactor reports the socket
writable (two epoll changes to become a writer and stop again, one event
through the logging context), and so does every close, with a ``shutdown``
before it.

StreamTransport keeps the socket the dialler connected.  What the protocol
writes while it handles an event (the data it was given, or the connection
being made) is sent in one ``send`` when the handler returns; a write at any
other time is sent at once.  Only what the kernel will not take waits for
the socket to become writable, and no more than MAX_UNSENT bytes of it: a
peer that stops reading is aborted.  A close with nothing left to send
closes the socket and tells the protocol on the reactor's next turn
(``connectionLost`` never runs inside ``loseConnection``); until then the
transport stays one of the reactor's readers, so a reactor that stops first
still ends it.

It offers ITransport and ``abortConnection``, which is what a protocol that
talks and hangs up needs; it is not a producer or a consumer, and it does
not half-close: end of input ends the connection.
"""

import errno
import socket
import struct

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReadWriteDescriptor, ITransport
from twisted.python.failure import Failure
from zope.interface import implementer

#: What one recv may take: as Twisted's TCP transport.
READ_SIZE = 65536
#: Bytes written and not yet taken by the kernel past which the connection
#: is aborted (UnsentLimitExceeded).  A crawl writes a few hundred bytes per
#: connection, and the kernel's own send buffer absorbs far more; what piles
#: up beyond it comes from a peer that stopped reading while we keep
#: answering it (a pong for every ping of a flood), and would otherwise grow
#: for as long as the connection lasts.  4 MiB still holds one whole message
#: of the largest size the protocol allows (wire.messages.
#: MAX_PROTOCOL_MESSAGE_LENGTH, 4,000,000 bytes, plus its 24-byte header),
#: so no single legitimate write is refused.
MAX_UNSENT = 4 * 1024 * 1024
#: Closing with this makes the kernel send RST and drop unsent data.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _retry_later(error):
    """True for a send the kernel could not take now (no room, or no buffer
    memory: Twisted retries ENOBUFS too)."""
    return isinstance(error, BlockingIOError) or error.errno == errno.ENOBUFS


def _lost(error):
    """The reason a connection ended on an OS error."""
    return ConnectionLost(f"{error.strerror or error} ({errno.errorcode.get(error.errno, '?')})")


class UnsentLimitExceeded(ConnectionAborted):
    """The connection was aborted because more than MAX_UNSENT bytes
    written were waiting to be sent: the peer does not read."""


@implementer(ITransport, IReadWriteDescriptor)
class StreamTransport:
    """
    The transport of one connected TCP socket; ``peer`` is the IAddress the
    protocol is told it is talking to (the address that was dialled).
    start() registers it with ``reactor`` (an IReactorFDSet) and makes the
    connection.

    ``connected`` is True until ``connectionLost`` begins; ``disconnecting``
    once ``loseConnection`` has been called.
    """

    __slots__ = ("reactor", "socket", "protocol", "peer", "connected", "disconnecting",
                 "_unsent", "_held", "_reading", "_writing", "_aborting", "_ending")

    def __init__(self, reactor, sock, protocol, peer):
        self.reactor = reactor
        self.socket = sock
        self.protocol = protocol
        self.peer = peer
        self.connected = False
        self.disconnecting = False
        #: Bytes written and not yet taken by the kernel.
        self._unsent = bytearray()
        #: True while a handler of the protocol runs: writes wait for its end.
        self._held = False
        self._reading = self._writing = self._aborting = False
        #: The DelayedCall that tells the protocol of a close, once asked.
        self._ending = None

    def __repr__(self):
        return f"<StreamTransport to {self.peer.host}:{self.peer.port}>"

    def start(self):
        """Watch the socket and make the connection (connectionMade)."""
        self.reactor.addReader(self)
        self.connected = self._reading = True
        self._held = True
        try:
            self.protocol.makeConnection(self)
        finally:
            self._release()

    # -- ITransport ---------------------------------------------------------------

    def write(self, data):
        """Send ``data`` (bytes): at once, or when the running handler returns,
        or when the kernel has room.  Nothing is sent once the connection has
        been aborted, or closed with nothing left to send, or lost.  A write
        that leaves more than MAX_UNSENT bytes waiting aborts the connection
        (UnsentLimitExceeded)."""
        if not data or self._ending is not None or not self.connected:
            return
        if self._held or self._unsent:
            self._unsent += data
        else:
            self._unsent[:] = data
            self._flush()
        if len(self._unsent) > MAX_UNSENT:
            self._abort(UnsentLimitExceeded(
                f"more than {MAX_UNSENT} bytes written were waiting to be sent: "
                f"the peer does not read"))

    def writeSequence(self, data):
        """Send each item of ``data`` in turn, as one write."""
        self.write(b"".join(data))

    def loseConnection(self):
        """Close once everything written is sent; connectionLost then gets
        ConnectionDone."""
        if not self.connected or self.disconnecting:
            return
        self.disconnecting = True
        if self._held:
            return  # decided when the handler returns
        if self._unsent:
            self._stop_reading()  # what arrives now is not read: drain, then end
        else:
            self._end_soon(ConnectionDone())

    def abortConnection(self):
        """Close at once with RST, dropping anything unsent; connectionLost
        then gets ConnectionAborted."""
        self._abort(ConnectionAborted())

    def _abort(self, reason):
        """Close at once with RST, dropping anything unsent; connectionLost
        then gets ``reason``."""
        if not self.connected or self._aborting:
            return
        self._aborting = True
        self._unsent.clear()
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        self._end_soon(reason)

    def getPeer(self):
        return self.peer

    def getHost(self):
        """Our end of the connection, asked of the socket (so only while it
        is open)."""
        host, port = self.socket.getsockname()[:2]
        return type(self.peer)("TCP", host, port)

    # -- IReadWriteDescriptor: the reactor calls these ---------------------------

    def fileno(self):
        return self.socket.fileno()

    def logPrefix(self):
        return "bitpeer.net.stream"

    def doRead(self):
        """Readable: hand what arrived to the protocol (end of input, or an
        error, ends the connection).  Nothing is read once the end is
        decided."""
        if self._ending is not None:
            return None
        try:
            data = self.socket.recv(READ_SIZE)
        except BlockingIOError:
            return None
        except OSError as e:
            self._reading = False
            return _lost(e)
        if not data:
            self._reading = False
            return ConnectionDone()
        self._held = True
        try:
            self.protocol.dataReceived(data)
        finally:
            self._release()
        return None

    def doWrite(self):
        """Writable: send what waits; once all of it is gone, close if asked
        to."""
        if not self._unsent:
            # An event the reactor collected before a handler of this batch
            # aborted the connection.
            return None
        try:
            sent = self.socket.send(self._unsent)
        except OSError as e:
            if _retry_later(e):
                return None
            self._writing = self._reading = False
            return _lost(e)
        del self._unsent[:sent]
        if self._unsent:
            return None
        self._stop_writing()
        if self.disconnecting:
            self._end_soon(ConnectionDone())
        return None

    def connectionLost(self, reason):
        """
        The connection is over: close the socket and tell the protocol.  The
        reactor calls this when doRead or doWrite gave a reason (having let
        go of us already) or when it stops (a close under way included: we
        are its reader until the end); a close we asked for calls it a turn
        later.
        """
        if not self.connected:
            return
        self.connected = False
        if self._ending is not None and self._ending.active():
            self._ending.cancel()
        self._ending = None
        self._stop_reading()
        self._stop_writing()
        self._close_socket()
        protocol, self.protocol = self.protocol, None
        protocol.connectionLost(reason)

    # -- inside -------------------------------------------------------------------

    def _release(self):
        """A handler of the protocol returned: send what it wrote, or close
        if it asked to and wrote nothing."""
        self._held = False
        if not self._writing and (self._unsent or self.disconnecting):
            self._flush()

    def _flush(self):
        """Send what waits, as much as the kernel takes; watch for room if
        some is left, or end if that was the last of a close."""
        if not self._unsent:
            if self.disconnecting and self._ending is None:
                self._end_soon(ConnectionDone())
            return
        try:
            sent = self.socket.send(self._unsent)
        except OSError as e:
            if not _retry_later(e):
                # Not ours to end inside the protocol's own call: a turn later.
                self._unsent.clear()
                self._end_soon(_lost(e))
                return
            sent = 0
        del self._unsent[:sent]
        if self._unsent:
            if not self._writing:
                self._writing = True
                self.reactor.addWriter(self)
            if self.disconnecting:
                self._stop_reading()
        elif self.disconnecting:
            self._end_soon(ConnectionDone())

    def _end_soon(self, reason):
        """
        Close the socket and tell the protocol on the reactor's next turn.
        Closed now, its descriptor could be reused (by a dial in the same
        handler) while the reactor still holds an event for the old socket:
        Twisted closes a turn later too.  Meanwhile we stay a reader (and
        read nothing), so that a reactor stopping before that turn reaches
        us in disconnectAll.
        """
        if self._ending is None:
            self._stop_writing()
            if not self._reading:
                self._reading = True
                self.reactor.addReader(self)
            self._ending = self.reactor.callLater(0, self._ended, reason)

    def _ended(self, reason):
        self._ending = None
        self.connectionLost(Failure(reason))

    def _close_socket(self):
        sock = self.socket
        if sock.fileno() == -1:
            return
        if self._aborting:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        sock.close()

    def _stop_reading(self):
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def _stop_writing(self):
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)
