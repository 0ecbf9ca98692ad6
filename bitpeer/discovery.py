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

Our own address (the first step of a node's discovery) is in
bitpeer.external.
"""

import itertools

import attr
from twisted.internet import defer
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
#: The values of discover()'s ``fixed_seeds``.
FIXED_SEEDS_CHOICES = ("fallback", "always", "never")


def default_reactor(reactor):
    """The given reactor, or the global one (imported only when needed)."""
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
    clock = default_reactor(clock)
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
    return client.Resolver(servers=parsed, timeout=timeout, reactor=default_reactor(reactor))


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
