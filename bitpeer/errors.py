"""
Why a peer connection failed or ended.

Each class has a short ``reason`` code, the word the crawler stores and counts
(``refused``, ``handshake-timeout``...), and a message that tells a person what
happened.  Codec faults are wire.errors.ProtocolError; when one ends a
connection it arrives wrapped in ProtocolViolation.

A connection's end is told by who ended it: the peer (ClosedByPeer), us
(ClosedLocally: ``Peer.close()``, a cancelled ``connectPeer``, a service
stopping, anyone calling the transport's ``loseConnection``), a rule the
peer broke (ProtocolViolation and its subclasses), a timeout
(HandshakeTimeout, IdleTimeout), or our own code raising while it handled
the peer's bytes (HandlerError).
"""


class PeerError(Exception):
    """Base of every failure of a peer connection."""

    reason: str = "error"


class ConnectFailed(PeerError):
    """The TCP connection could not be made (refused, unreachable, ...)."""

    reason = "connect-failed"


class ConnectionRefused(ConnectFailed):
    """Nothing listens at the address."""

    reason = "refused"


class ConnectTimeout(ConnectFailed):
    """The TCP connection did not complete in time (often a blackhole)."""

    reason = "connect-timeout"


class HandshakeTimeout(PeerError):
    """version/verack did not complete in time."""

    reason = "handshake-timeout"


class IdleTimeout(PeerError):
    """Nothing was received for too long."""

    reason = "idle-timeout"


class SelfConnection(PeerError):
    """The peer's version nonce is one of ours: we are talking to ourselves."""

    reason = "self-connection"


class ObsoleteVersion(PeerError):
    """The peer's protocol version is below MIN_PEER_PROTO_VERSION."""

    reason = "obsolete-version"


class ProtocolViolation(PeerError):
    """
    The peer broke a rule after which the connection is closed.

    @ivar error: the wire.errors.ProtocolError, or None for a rule of the
        handshake (``wtxidrelay`` after ``verack``...).
    """

    reason = "protocol-error"

    def __init__(self, message: str, error: Exception | None = None) -> None:
        super().__init__(message)
        self.error = error


class ConnectionClosed(PeerError):
    """The connection closed before the work was done; its subclasses say
    who closed it."""

    reason = "closed"


class ClosedByPeer(ConnectionClosed):
    """The peer closed or reset the connection.  Its reason word is the one
    the crawl has always counted for it."""

    reason = "closed"


class ClosedLocally(ConnectionClosed):
    """We closed the connection: ``Peer.close()``, a cancel, a stopping
    service, or a direct ``transport.loseConnection()``."""

    reason = "closed-locally"


class HandlerError(PeerError):
    """
    Our own code raised while handling the peer's bytes (a protocol hook, an
    ``address_source``, a responder): a bug on our side, not the peer's, so
    the connection is closed and this says so.  Subscribers are isolated
    and never end a connection (Peer.subscribe).
    """

    reason = "handler-error"


class FrameBudgetExceeded(ProtocolViolation):
    """
    The connection was closed because its partial frame was the largest
    when the frames of all the factory's connections filled its FrameBudget
    (wire.framing.FrameBudget explains the choice).  A peer that trickles a
    large message ends this way; ``error`` is the FrameBudgetExhausted.
    """

    reason = "frame-budget"


# -- dialling through a proxy: Tor's SOCKS5 port, an I2P SAM bridge ----------
#
# The proxy's fault (ProxyUnreachable, ProxyError) is kept apart from the
# peer's (OnionUnreachable, I2PUnreachable, ConnectTimeout, ConnectionRefused):
# a proxy that is down must not make every address behind it look dead.
# The peer's timeout is ConnectTimeout (SOCKS5 0x06 TTL expired, Tor's 0xF7
# introduction timed out, no CONNECT reply in time, SAM TIMEOUT or no STREAM
# STATUS in time); a peer that refuses the connection behind the proxy is
# ConnectionRefused (SOCKS5 0x05).  bitpeer.net.socks5 and bitpeer.net.sam
# hold the full tables of reply codes.


class ProxyUnreachable(ConnectFailed):
    """
    The SOCKS5 proxy or the SAM bridge itself cannot be reached: the TCP
    connection to it was refused, timed out or failed.  Says nothing of
    the peer.
    """

    reason = "proxy-unreachable"


class ProxyError(ConnectFailed):
    """
    The proxy or bridge answered but failed or broke its protocol: a reply
    of the wrong version, size or shape, a reply that did not come in time
    before the peer was asked for, authentication refused, the connection
    closed mid-handshake; SOCKS5 replies 0x01 (general failure), 0x02 (not
    allowed by the ruleset), 0x07 (command not supported), 0x08 (address
    type not supported) and any unknown code; every SAM result but OK,
    CANT_REACH_PEER and TIMEOUT (I2P_ERROR, INVALID_ID, INVALID_KEY,
    KEY_NOT_FOUND, DUPLICATED_ID, DUPLICATED_DEST, NOVERSION...).
    """

    reason = "proxy-error"


class OnionUnreachable(ConnectFailed):
    """
    Tor could not reach the onion service: SOCKS5 replies 0x03 (network
    unreachable) and 0x04 (host unreachable) for an onion target, and Tor's
    extended errors 0xF0-0xF6 (descriptor not found or invalid,
    introduction or rendezvous failed, client authorization missing or
    wrong, invalid address).
    """

    reason = "onion-unreachable"


class I2PUnreachable(ConnectFailed):
    """The SAM bridge could not reach the I2P destination: STREAM STATUS
    RESULT=CANT_REACH_PEER."""

    reason = "i2p-unreachable"
