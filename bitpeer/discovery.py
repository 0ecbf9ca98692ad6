"""
Where a crawl starts, and where we are.

Discovery follows Bitcoin Core (``net.cpp``, PROTOCOL.md section 6): ask
every DNS seed for ``x9.<seed>`` (the nodes offering NODE_NETWORK and
NODE_WITNESS, Core's ``SeedsServiceFlags()``), keep at most 32 addresses per
seed, and turn to the network's fixed seeds only when DNS gave nothing.
Addresses the operator names (``--seed``, ``--seeds-file``) always come
first.

DNS goes through twisted.names with an injected resolver, so tests point it
at a local server and nothing here touches the system resolver except
make_resolver() when asked for the default.

ExternalAddressVote works out our public address from what the reachable
peers say they see (the ``addr_recv`` of their version), as Core's
``SeenLocal`` does; fetch_external_ip() is the optional second opinion of an
HTTP "what is my IP" service.
"""

import itertools
from collections import Counter

import attr
import treq
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.names import client, dns, error as dns_error

from .logs import logger
from .wire.address import Network, NetworkAddress
from .wire.errors import ProtocolError

log = logger()

#: Core resolves ``strprintf("x%x.%s", SeedsServiceFlags(), seed)``:
#: NODE_NETWORK|NODE_WITNESS is 0x9.
SEED_SERVICE_PREFIX = "x9"
#: Core's ``nMaxIPs``: addresses taken from one seed.
MAX_IPS_PER_SEED = 32
#: Seconds before each retry of one DNS query (twisted.names' timeout
#: tuple): a seed either answers at once or is down, so wait briefly.
DEFAULT_DNS_TIMEOUT = (1, 3)
#: Seconds one seed may take for all its lookups (prefixed and bare name)
#: before it is reported as timed out.  The resolver's own timeouts normally
#: end a lookup first; this bounds a resolver that never answers.
SEED_DEADLINE = 30.0
#: The longest body accepted from an external-IP service: an IPv6 address is
#: at most 45 characters, so anything longer is not an address.
MAX_EXTERNAL_IP_BODY = 100
#: The values of discover()'s ``fixed_seeds``.
FIXED_SEEDS_CHOICES = ("fallback", "always", "never")


def _default_reactor(reactor):
    if reactor is None:
        from twisted.internet import reactor
    return reactor


# -- DNS seeds --------------------------------------------------------------


@attr.frozen
class SeedReport:
    """
    What one DNS seed gave.

    @ivar name: the seed as listed in the network's parameters.
    @ivar queried_name: the name whose answer was used: ``x9.<name>``, or
        the bare name when the fallback answered; for a failed seed, the
        prefixed name.
    @ivar count: addresses taken from this seed (after the per-seed cap,
        before removing those another seed gave too).
    @ivar error: why the seed gave nothing (both names' reasons), or None.
    """

    name: str
    queried_name: str
    count: int
    error: str | None = None

    @property
    def used_fallback(self):
        """True when only the bare name answered (Core would addr-fetch)."""
        return self.queried_name != f"{SEED_SERVICE_PREFIX}.{self.name}"

    def as_dict(self):
        """A JSON-ready dict."""
        out = attr.asdict(self)
        out["used_fallback"] = self.used_fallback
        return out


@attr.frozen
class DnsSeedResult:
    """
    The answer of all DNS seeds.

    @ivar addresses: every address, deduplicated, in the order of the
        network's seed list and of each seed's answer (stable, so a crawl's
        start can be reproduced; shuffle it if you want Core's randomness).
    @ivar per_seed: a SeedReport for every seed, in the seed list's order.
    """

    addresses: tuple
    per_seed: tuple

    def as_dict(self):
        """A JSON-ready dict (addresses counted, not listed)."""
        return {
            "addresses": len(self.addresses),
            "per_seed": [report.as_dict() for report in self.per_seed],
        }


def query_dns_seeds(
    network, resolver, *, timeout=DEFAULT_DNS_TIMEOUT, clock=None, deadline=SEED_DEADLINE
):
    """
    Ask every DNS seed of ``network`` for addresses, all seeds at once.

    For each seed, the A and AAAA records of ``x9.<seed>`` are looked up
    together (Core only ever queries the prefixed name, so a seed without it
    is misconfigured).  When the prefixed name gives nothing (NXDOMAIN, no
    records, an error or a timeout), the A and AAAA records of the bare name
    are used instead.  This differs from Core, which then makes an addr-fetch
    connection to the seed host and asks it for getaddr: a crawler reaches
    those same nodes anyway, and the bare name usually points at nodes too.

    A seed gives at most MAX_IPS_PER_SEED addresses, A and AAAA records taken
    in turn so that neither family crowds out the other under the cap (Core
    takes getaddrinfo's order, which puts one family first).  Every address
    gets the network's default port, as in Core.

    A failing seed never fails the whole: its SeedReport says what went
    wrong.  The Deferred fires with a DnsSeedResult; cancelling it cancels
    the lookups in flight.

    @param resolver: a twisted.names IResolver (see make_resolver()).
    @param timeout: the retry timeouts of each query, passed to
        ``lookupAddress``/``lookupIPV6Address``.
    @param clock: IReactorTime for ``deadline``; the global reactor if None.
    @param deadline: seconds one seed may take in all.
    """
    clock = _default_reactor(clock)
    port = network.default_port
    seeds = [seed.rstrip(".") for seed in network.dns_seeds]
    work = defer.DeferredList(
        [_query_seed(resolver, seed, port, timeout, deadline, clock) for seed in seeds],
        consumeErrors=True,
    )
    result = defer.Deferred(lambda _: work.cancel())

    def collect(outcomes):
        reports, seen, addresses = [], set(), []
        for seed, (ok, value) in zip(seeds, outcomes):
            if not ok:
                # Only cancellation gets here (_query_seed reports the rest).
                return value
            report, found = value
            reports.append(report)
            for address in found:
                if address not in seen:
                    seen.add(address)
                    addresses.append(address)
        return DnsSeedResult(tuple(addresses), tuple(reports))

    work.addCallback(collect).chainDeferred(result)
    return result


def _query_seed(resolver, seed, port, timeout, deadline, clock):
    """One seed's (SeedReport, addresses); never errbacks unless cancelled."""
    prefixed = f"{SEED_SERVICE_PREFIX}.{seed}"
    work = _resolve_seed(resolver, seed, prefixed, port, timeout)
    work.addTimeout(deadline, clock)

    def failed(failure):
        if failure.check(defer.CancelledError):
            return failure
        if failure.check(defer.TimeoutError):
            reason = f"no answer within {deadline:g} s"
        else:
            log.failure("DNS seed {seed}: unexpected error", failure, seed=seed)
            reason = _describe(failure)
        log.info("DNS seed {seed}: {reason}", seed=seed, reason=reason)
        return SeedReport(seed, prefixed, 0, reason), ()

    return work.addErrback(failed)


@defer.inlineCallbacks
def _resolve_seed(resolver, seed, prefixed, port, timeout):
    found, prefixed_error = yield _lookup_both(resolver, prefixed, port, timeout)
    if found:
        log.info("DNS seed {name}: {count} addresses", name=prefixed, count=len(found))
        return SeedReport(seed, prefixed, len(found)), found
    found, bare_error = yield _lookup_both(resolver, seed, port, timeout)
    if found:
        log.info(
            "DNS seed {seed}: {prefixed} gave nothing ({error}); {count} addresses "
            "from the bare name",
            seed=seed, prefixed=prefixed, error=prefixed_error, count=len(found),
        )
        return SeedReport(seed, seed, len(found)), found
    reason = f"{prefixed}: {prefixed_error}; {seed}: {bare_error}"
    log.info("DNS seed {seed} gave nothing: {reason}", seed=seed, reason=reason)
    return SeedReport(seed, prefixed, 0, reason), ()


@defer.inlineCallbacks
def _lookup_both(resolver, name, port, timeout):
    """
    The A and AAAA addresses of ``name``, interleaved, deduplicated and
    capped, with a reason when there are none.
    """
    outcomes = yield defer.DeferredList(
        [
            defer.maybeDeferred(resolver.lookupAddress, name, timeout),
            defer.maybeDeferred(resolver.lookupIPV6Address, name, timeout),
        ],
        consumeErrors=True,
    )
    families, errors = [], []
    for (ok, value), record_type in zip(outcomes, (dns.A, dns.AAAA)):
        if ok:
            families.append(_addresses(value[0], record_type, port))
        elif value.check(defer.CancelledError):
            # The seed's deadline or the caller cancelled: stop here.
            value.raiseException()
        else:
            families.append([])
            errors.append(_describe(value))
    found, seen = [], set()
    for address in itertools.chain.from_iterable(itertools.zip_longest(*families)):
        if address is not None and address not in seen:
            seen.add(address)
            found.append(address)
            if len(found) == MAX_IPS_PER_SEED:
                break
    if found:
        return tuple(found), None
    # Both families failed the same way (NXDOMAIN twice): say it once.
    reason = "; ".join(dict.fromkeys(errors)) if errors else "no A or AAAA records"
    return (), reason


def _addresses(answers, record_type, port):
    """NetworkAddresses from the A or AAAA records of an answer section."""
    out = []
    for record in answers:
        # CNAMEs in the chain are skipped; a recursive resolver puts the
        # target's records in the same answer.
        if record.type != record_type:
            continue
        raw = record.payload.address
        if record_type == dns.A:
            address = NetworkAddress(Network.IPV4, raw, port)
        else:
            address = NetworkAddress.from_v1(raw, port)
        # Core never accepts what cannot name a host (0.0.0.0, ::, mapped
        # and internal forms); routability is the crawler's business.
        if address.is_valid():
            out.append(address)
    return out


def _describe(failure):
    """A short reason for a failed lookup."""
    if failure.check(dns_error.DomainError, dns_error.AuthoritativeDomainError):
        return "NXDOMAIN"
    if failure.check(dns_error.DNSServerError):
        return "SERVFAIL"
    if failure.check(dns_error.DNSQueryRefusedError):
        return "REFUSED"
    if failure.check(defer.TimeoutError, dns_error.DNSQueryTimeoutError):
        return "timed out"
    return f"{failure.type.__name__}: {failure.getErrorMessage()}"


# -- the whole discovery ----------------------------------------------------


@attr.frozen
class Discovery:
    """
    Where a crawl starts.

    @ivar addresses: deduplicated, the operator's addresses first, then DNS,
        then fixed seeds.
    @ivar sources: ``(source, count)`` pairs for the sources consulted, in
        that order: ``seed-option``, ``dns``, ``fixed``; count is what the
        source added to ``addresses`` (its duplicates of an earlier source
        are not counted).
    @ivar dns: the DnsSeedResult, or None when DNS was not queried.
    """

    addresses: tuple
    sources: tuple
    dns: DnsSeedResult | None = None

    def as_dict(self):
        """A JSON-ready dict for the crawl summary."""
        return {
            "addresses": len(self.addresses),
            "sources": dict(self.sources),
            "dns": None if self.dns is None else self.dns.as_dict(),
        }


def discover(
    network,
    resolver,
    *,
    fixed_seeds="fallback",
    extra=(),
    clock=None,
    timeout=DEFAULT_DNS_TIMEOUT,
    deadline=SEED_DEADLINE,
):
    """
    The addresses to start crawling ``network`` from, in Core's order.

    DNS seeds come first.  The fixed seeds (``network.fixed_seeds()``) are
    used when DNS gives nothing (``"fallback"``, Core's behaviour with an
    empty address manager), always (``"always"``) or never (``"never"``).
    ``extra``, the addresses the operator named with ``--seed`` or
    ``--seeds-file``, always comes first and does not count as DNS giving
    something: Core too keeps its seeds when ``-seednode`` peers are given.

    A network without DNS seeds (regtest, a custom network) skips DNS; only
    then may ``resolver`` be None.  ``clock``, ``timeout`` and ``deadline``
    are query_dns_seeds()'s.

    @raise ValueError: for a bad ``fixed_seeds`` or a missing resolver.
    @return: a Deferred firing with a Discovery.
    """
    if fixed_seeds not in FIXED_SEEDS_CHOICES:
        raise ValueError(
            f"fixed_seeds must be one of {', '.join(FIXED_SEEDS_CHOICES)}, not {fixed_seeds!r}"
        )
    if network.dns_seeds and resolver is None:
        raise ValueError(f"{network.name} has DNS seeds: a resolver is needed")
    extra = tuple(extra)
    for address in extra:
        if not isinstance(address, NetworkAddress):
            raise ValueError(f"extra addresses must be NetworkAddress, got {address!r}")

    if network.dns_seeds:
        d = query_dns_seeds(
            network, resolver, timeout=timeout, clock=clock, deadline=deadline
        )
    else:
        d = defer.succeed(None)

    def combine(dns_result):
        dns_addresses = () if dns_result is None else dns_result.addresses
        sources = [("seed-option", extra)]
        if dns_result is not None:
            sources.append(("dns", dns_addresses))
        if fixed_seeds == "always" or (fixed_seeds == "fallback" and not dns_addresses):
            fixed = tuple(network.fixed_seeds())
            sources.append(("fixed", fixed))
            if fixed_seeds == "fallback" and network.dns_seeds:
                log.info(
                    "DNS seeds gave no addresses: using {count} fixed seeds",
                    count=len(fixed),
                )
        seen, addresses, counts = set(), [], []
        for source, found in sources:
            before = len(addresses)
            for address in found:
                if address not in seen:
                    seen.add(address)
                    addresses.append(address)
            counts.append((source, len(addresses) - before))
        return Discovery(tuple(addresses), tuple(counts), dns_result)

    return d.addCallback(combine)


def make_resolver(servers=None, *, timeout=DEFAULT_DNS_TIMEOUT, reactor=None):
    """
    A twisted.names resolver: the system's (``client.createResolver()``,
    which reads /etc/resolv.conf and /etc/hosts) by default, or one that asks
    only ``servers``, each ``"HOST"``, ``"HOST:PORT"``, ``"[IPV6]:PORT"`` or
    a ``(host, port)`` tuple, port 53 by default.

    The only place that reads the system's resolver configuration, so
    everything else can be given a resolver pointing at a test server.  The
    system resolver keeps a cache and re-reads resolv.conf on a timer, which
    leaves calls pending on the reactor: use ``servers`` in tests.

    @param timeout: the default retry timeouts of each query.
    @param reactor: for a resolver with ``servers``; the global one if None.
    @raise ValueError: for a server that is not an IP address and port.
    """
    timeout = tuple(timeout)
    if servers is None:
        chain = client.createResolver()
        for member in getattr(chain, "resolvers", ()):
            if isinstance(member, client.Resolver):
                member.timeout = timeout
        return chain
    parsed = [_parse_server(server) for server in servers]
    if not parsed:
        raise ValueError("no DNS servers given")
    return client.Resolver(servers=parsed, timeout=timeout, reactor=_default_reactor(reactor))


def _parse_server(server):
    """``(host, port)`` from a DNS server given as text or a tuple."""
    try:
        if isinstance(server, str):
            address = NetworkAddress.parse(server, 53)
        else:
            host, port = server
            address = NetworkAddress.from_host(str(host), int(port))
    except (ProtocolError, TypeError, ValueError) as error:
        raise ValueError(f"DNS server {server!r}: {error}") from None
    if not address.is_v1_compatible or address.port == 0:
        raise ValueError(f"DNS server {server!r} must be an IPv4 or IPv6 address and port")
    return (address.host_text, address.port)


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
    reactor = _default_reactor(reactor)
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
