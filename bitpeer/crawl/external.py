"""
Our external address, as the network sees us.

ExternalAddressVote works it out from what the reachable peers say they see
(the ``addr_recv`` of their version), as Core's ``SeenLocal`` does;
fetch_external_ip() is the optional second opinion of an HTTP "what is my
IP" service.
"""

from collections import Counter

import attr
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ..runtime import default_reactor
from ..wire.address import NetworkAddress
from ..wire.errors import ProtocolError

#: The longest body accepted from an external-IP service: an IPv6 address is
#: at most 45 characters, so anything longer is not an address.
MAX_EXTERNAL_IP_BODY = 100


# -- our external address ---------------------------------------------------


@attr.frozen
class VoteResult:
    """
    The outcome of an ExternalAddressVote.

    @ivar address: the host with the most votes (a NetworkAddress with port
        0, since the port a peer sees is our ephemeral one), or None.
    @ivar votes: its votes.
    @ivar total: the votes counted (one per reporter).
    @ivar runner_up: the host with the next most votes, or None; when its
        ``runner_up_votes`` equal ``votes`` the vote is a tie, broken by
        which host was reported first.
    """

    address: NetworkAddress | None
    votes: int
    total: int
    runner_up: NetworkAddress | None = None
    runner_up_votes: int = 0
    ignored: int = 0

    def as_dict(self):
        """A JSON-ready dict for the crawl summary."""
        return {
            "address": None if self.address is None else self.address.host_text,
            "network": None if self.address is None else self.address.network_name,
            "votes": self.votes,
            "total": self.total,
            "runner_up": None if self.runner_up is None else self.runner_up.host_text,
            "runner_up_votes": self.runner_up_votes,
            "ignored": self.ignored,
        }


class ExternalAddressVote:
    """
    Our external address as the reachable peers see it.

    Each peer's version carries ``addr_recv``, the address it sees us at
    (PeerInfo.their_view_of_us).  One peer can be wrong or lying, so the
    answer is the host most peers agree on, each reporter voting once (a
    later report from the same reporter replaces its earlier one, so a
    recrawl does not count twice).  Reporters are whole addresses, host and
    port, so nodes sharing a host (a simnet on loopback) each vote.

    Views that cannot be our public address (0.0.0.0, private, loopback,
    documentation ranges: Core's ``IsRoutable``) are ignored, unless
    ``allow_private`` is set for a crawl of a private or simulated network;
    invalid addresses are ignored even then.
    """

    def __init__(self, *, allow_private=False):
        self.allow_private = allow_private
        self._views = {}
        self.ignored = 0

    def add(self, view, reporter):
        """
        Count ``reporter``'s view of us; True if it was counted, False if the
        view was ignored.
        """
        usable = view.is_valid() and (self.allow_private or view.is_routable())
        if not usable:
            self.ignored += 1
            return False
        # Re-inserting moves a changed vote to the end of the order used to
        # break ties; an unchanged one keeps its place.
        host = NetworkAddress(view.network, view.host, 0)
        if self._views.get(reporter) != host:
            self._views.pop(reporter, None)
            self._views[reporter] = host
        return True

    def result(self, network=None):
        """
        The VoteResult, over all votes or only those for hosts on
        ``network`` (a Network: with both IPv4 and IPv6 we have one address
        on each).
        """
        hosts = [
            host for host in self._views.values() if network is None or host.network == network
        ]
        # Counter keeps first-seen order, and most_common is stable: ties go
        # to the host reported first.
        ranked = Counter(hosts).most_common(2)
        if not ranked:
            return VoteResult(None, 0, 0, ignored=self.ignored)
        (address, votes), rest = ranked[0], ranked[1:]
        runner_up, runner_up_votes = rest[0] if rest else (None, 0)
        return VoteResult(address, votes, len(hosts), runner_up, runner_up_votes, self.ignored)

    def as_dict(self):
        """The overall result and the result per network, JSON-ready."""
        out = self.result().as_dict()
        out["by_network"] = {}
        for network in sorted({host.network for host in self._views.values()}):
            result = self.result(network)
            out["by_network"][result.address.network_name] = result.as_dict()
        return out


# -- external address from an HTTP service ----------------------------------


def fetch_external_ip(url, *, agent=None, reactor=None, timeout=10.0):
    """
    Ask an HTTP service (``--external-ip-url``) for our public address.

    The answer must be status 200 and a body of one IPv4 or IPv6 address
    (surrounding whitespace is ignored), at most MAX_EXTERNAL_IP_BODY bytes:
    anything else raises ValueError saying what came back, since a service
    that answers HTML or an error page must not become our address.  The
    body is read only up to the limit.

    ``timeout`` covers the whole exchange, body included (treq's own timeout
    stops at the headers); past it the Deferred errbacks with
    defer.TimeoutError.

    @param agent: an IAgent (tests inject one); treq's default otherwise.
    @param reactor: for the timeout and treq's default agent; the global
        reactor if None.
    @return: a Deferred firing with the address as text, normalised
        (``2001:db8::1``, not ``2001:0db8:0:0::1``).
    """
    reactor = default_reactor(reactor)
    d = defer.ensureDeferred(_fetch_external_ip(url, agent, reactor))
    return d.addTimeout(timeout, reactor, onTimeoutCancel=_timed_out)


def _timed_out(result, timeout):
    """
    addTimeout's conversion, for any failure: a cancelled web request fails
    with ResponseNeverReceived or ResponseFailed, not CancelledError.
    """
    if isinstance(result, Failure):
        raise defer.TimeoutError(f"no answer within {timeout:g} s")
    return result


async def _fetch_external_ip(url, agent, reactor):
    # Imported here: treq brings twisted.web, 80 ms of every start-up of a
    # crawler that never asks (the lookup is off by default).
    import treq

    kwargs = {"agent": agent} if agent is not None else {"reactor": reactor}
    response = await treq.get(url, unbuffered=True, **kwargs)
    if response.code != 200:
        # Drop the connection rather than read an error page of any size.
        discard = _LimitedBody(0)
        response.deliverBody(discard)
        discard.done.addErrback(lambda _: None)
        raise ValueError(f"{url} answered HTTP {response.code} {response.phrase.decode('latin-1')}")
    body = _LimitedBody(MAX_EXTERNAL_IP_BODY)
    response.deliverBody(body)
    data = await body.done
    try:
        text = data.decode("ascii").strip()
        address = NetworkAddress.from_host(text, 0)
    except (UnicodeDecodeError, ProtocolError):
        raise ValueError(f"{url} answered {data[:60]!r}, not an IP address") from None
    if not address.is_v1_compatible:
        raise ValueError(f"{url} answered {text!r}, not an IPv4 or IPv6 address")
    return address.host_text


class _LimitedBody(Protocol):
    """
    Collects a response body of at most ``limit`` bytes; a longer one drops
    the connection and fails ``done`` with ValueError.
    """

    def __init__(self, limit):
        self.limit = limit
        self.chunks = []
        self.size = 0
        self.done = defer.Deferred(lambda _: self._stop())

    def _stop(self):
        if self.transport is not None:
            self.transport.stopProducing()

    def connectionMade(self):
        if self.limit == 0:
            self._stop()

    def dataReceived(self, data):
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._stop()
            self.done.errback(
                ValueError(f"answer longer than {self.limit} bytes: not an IP address")
            )
            return
        self.chunks.append(data)

    def connectionLost(self, reason):
        if self.done.called:
            return
        # The body ends with ResponseDone, or PotentialDataLoss when the
        # server closes without a length; both deliver what came.
        from twisted.web.client import ResponseDone
        from twisted.web.http import PotentialDataLoss

        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)
