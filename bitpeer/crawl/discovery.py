"""
Where a crawl starts, and where we are.

Discovery follows Bitcoin Core (``net.cpp``, PROTOCOL.md section 6) and
takes its switches (DiscoveryOptions): the operator's seeds come first
(``--seed``, ``--seeds-file``; host names among them are resolved when the
crawl starts); then the address book; then the DNS seeds, asked for
``x9.<seed>`` (the nodes offering NODE_NETWORK and NODE_WITNESS, Core's
``SeedsServiceFlags()``), at most 32 addresses per seed, and only while the
book holds fewer than ENOUGH_GOOD_ADDRESSES good addresses (``dnsseed``
off: never; ``forcednsseed``: always); then the network's fixed seeds, of
the networks dialled, when nothing else gave an address.

DNS goes through twisted.names with an injected resolver, so tests point it
at a local server and nothing here touches the system resolver except
make_resolver() when asked for the default.  With the DNS seeds off and no
host name given, the resolver is never called.

Our own address (the first step of a node's discovery) is in
bitpeer.crawl.external.
"""

import itertools

import attr
from twisted.internet import defer
from twisted.names import client, dns, error as dns_error

from ..logs import logger
from ..runtime import default_reactor
from ..networks import CLEARNET, ONLYNET_CHOICES, SeedName
from ..wire.address import Network, NetworkAddress
from ..wire.errors import ProtocolError

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


# -- host names the operator gave ------------------------------------------


@attr.frozen
class NameReport:
    """
    What one ``--seed`` host name gave.

    @ivar name: the SeedName.
    @ivar count: addresses it resolved to (A and AAAA, at most
        MAX_IPS_PER_SEED).
    @ivar error: why it gave none, or None.
    """

    name: SeedName
    count: int
    error: str | None = None

    def as_dict(self):
        """A JSON-ready dict."""
        return {"name": str(self.name), "origin": self.name.origin, "count": self.count,
                "error": self.error}


#: Host names looked up at once (each an A and an AAAA query): a seeds
#: file of thousands of names must not send thousands of queries at once.
NAME_LOOKUPS_AT_ONCE = 32


def resolve_seed_names(
    names, resolver, *, timeout=DEFAULT_DNS_TIMEOUT, clock=None, deadline=SEED_DEADLINE
):
    """
    Resolve the host names the operator gave as seeds, NAME_LOOKUPS_AT_ONCE
    at a time: the A and AAAA records of each, every address on the name's
    port, at most MAX_IPS_PER_SEED per name.  Unlike a DNS seed's, the name
    is asked as given (no ``x9.`` prefix): it names nodes, not a seeder.

    A name that gives nothing is one warning line and a NameReport saying
    why; the others are unaffected.  Core resolves ``-seednode`` and
    ``-addnode`` names the same way, through its resolver, even with
    ``-dnsseed=0`` (only ``-dns=0`` forbids it, which bitpeer's ``--dns 0``
    mirrors by refusing names on the command line).

    @param names: SeedName objects.
    @param deadline: seconds one name may take, from when its lookup starts.
    @return: a Deferred firing with a list of ``(NameReport, addresses)``
        in the order of ``names``; cancelling it cancels the lookups.
    """
    clock = default_reactor(clock)
    slots = defer.DeferredSemaphore(NAME_LOOKUPS_AT_ONCE)
    work = defer.DeferredList(
        [slots.run(_resolve_name, resolver, name, timeout, deadline, clock) for name in names],
        consumeErrors=True,
    )
    result = defer.Deferred(lambda _: work.cancel())

    def collect(outcomes):
        for ok, value in outcomes:
            if not ok:
                return value  # only cancellation gets here
        return [value for _, value in outcomes]

    work.addCallback(collect).chainDeferred(result)
    return result


def _resolve_name(resolver, name, timeout, deadline, clock):
    """One name's (NameReport, addresses); never errbacks unless cancelled."""
    work = _lookup_both(resolver, name.name, name.port, timeout)
    work.addTimeout(deadline, clock)

    def failed(failure):
        if failure.check(defer.CancelledError):
            return failure
        if failure.check(defer.TimeoutError):
            return (), f"no answer within {deadline:g} s"
        return (), _describe(failure)

    def report(outcome):
        found, reason = outcome
        if not found:
            where = f"{name.origin} " if name.origin else ""
            log.warn(
                "{where}{name}: the name gave no address ({reason}); the crawl goes on "
                "without it", where=where, name=name.name, reason=reason,
            )
            return NameReport(name, 0, reason), ()
        log.info("{name}: {count} addresses", name=name.name, count=len(found))
        return NameReport(name, len(found)), found

    return work.addErrback(failed).addCallback(report)


# -- the whole discovery ----------------------------------------------------


#: The crawler's "enough": DNS seeds are asked only when the address book
#: holds fewer than this many good addresses (dialable in this crawl, and
#: reached at least once).  Core's threshold is the same number
#: (``DNSSEEDS_DELAY_PEER_THRESHOLD``): with that many addresses in addrman
#: it waits five minutes and skips the DNS seeds if it has made outbound
#: connections by then.  A crawler has no connections before it crawls, so
#: "reached at least once" stands for Core's connections.
ENOUGH_GOOD_ADDRESSES = 1000


def _networks(instance, attribute, value):
    if not value or not set(value) <= set(ONLYNET_CHOICES):
        raise ValueError(
            f"networks must be a non-empty subset of {', '.join(ONLYNET_CHOICES)}, "
            f"got {sorted(value)!r}"
        )


@attr.frozen
class DiscoveryOptions:
    """
    Which sources a crawl starts from, with Bitcoin Core's switches.

    @ivar dnsseed: ``-dnsseed``: False never asks a DNS seed.
    @ivar forcednsseed: ``-forcednsseed``: ask the DNS seeds even when the
        address book holds ``enough`` good addresses.  Needs ``dnsseed``
        (Core refuses the pair too).
    @ivar fixed_seeds: ``fallback`` (Core's: when nothing else gives an
        address, see discover()), ``always`` or ``never``.
    @ivar networks: ``-onlynet``: the networks dialled (names from
        ONLYNET_CHOICES).  DNS seeds give only IPv4 and IPv6, so they are not
        asked when neither is here; fixed seeds of other networks are left
        out, as Core adds fixed seeds only for its reachable networks.
    @ivar enough: good addresses in the book that make DNS seeds unneeded.
    """

    dnsseed: bool = True
    forcednsseed: bool = False
    fixed_seeds: str = attr.ib(default="fallback")
    networks: frozenset = attr.ib(default=frozenset(ONLYNET_CHOICES), converter=frozenset,
                                  validator=_networks)
    enough: int = attr.ib(default=ENOUGH_GOOD_ADDRESSES)

    @fixed_seeds.validator
    def _check_fixed_seeds(self, attribute, value):
        if value not in FIXED_SEEDS_CHOICES:
            raise ValueError(
                f"fixed_seeds must be one of {', '.join(FIXED_SEEDS_CHOICES)}, not {value!r}"
            )

    def __attrs_post_init__(self):
        if self.forcednsseed and not self.dnsseed:
            # Core's InitError: "Cannot set -forcednsseed to true when
            # setting -dnsseed to false."
            raise ValueError("forcednsseed needs dnsseed: it cannot force what is off")

    def dns_seeds_off(self, network):
        """Why ``network``'s DNS seeds are never asked, or None if they may be."""
        if not network.dns_seeds:
            return f"{network.name} has none"
        if not self.dnsseed:
            return "off (--dnsseed 0)"
        if not self.networks & CLEARNET:
            return "not asked: they give only IPv4 and IPv6, which --onlynet leaves out"
        return None

    def needs_resolver(self, network, seeds=()):
        """Whether a crawl of ``network`` from ``seeds`` may look anything up."""
        return self.dns_seeds_off(network) is None or any(
            isinstance(seed, SeedName) for seed in seeds
        )

    def describe(self, network, seeds=()):
        """
        One line saying which discovery sources a crawl of ``network`` from
        ``seeds`` (addresses and SeedNames) uses, in the order they are
        used: what the crawler logs once at start.
        """
        names = sum(isinstance(seed, SeedName) for seed in seeds)
        addresses = len(seeds) - names
        given = f"{addresses} address{'es' if addresses != 1 else ''}"
        if names:
            given += f" and {names} host name{'s' if names != 1 else ''} (resolved at start)"
        parts = [f"--seed/--seeds-file: {given}" if seeds else "--seed/--seeds-file: none",
                 "the address book"]
        off = self.dns_seeds_off(network)
        if off is not None:
            parts.append(f"DNS seeds: {off}")
        elif self.forcednsseed:
            parts.append(f"DNS seeds ({len(network.dns_seeds)}): always (--forcednsseed)")
        else:
            parts.append(f"DNS seeds ({len(network.dns_seeds)}): when the address book holds "
                         f"fewer than {self.enough} good addresses")
        if self.fixed_seeds == "never" or not network.fixed_seeds_file:
            parts.append("fixed seeds: " + ("never" if network.fixed_seeds_file else "none"))
        else:
            parts.append(f"fixed seeds: {self.fixed_seeds}")
        parts.append("getaddr to the nodes reached")
        dialled = [n for n in ONLYNET_CHOICES if n in self.networks]
        line = "discovery sources, in order: " + "; ".join(parts)
        return f"{line}. Networks dialled: {', '.join(dialled)}"


@attr.frozen
class Discovery:
    """
    Where a crawl starts.

    @ivar addresses: deduplicated, the operator's addresses first (host
        names in place, as they resolved), then DNS, then fixed seeds.
    @ivar sources: ``(source, count)`` pairs for the sources consulted, in
        that order: ``seed-option``, ``dns`` (when asked), ``fixed`` (when
        used); count is what the source added to ``addresses`` (its
        duplicates of an earlier source are not counted).
    @ivar dns: the DnsSeedResult, or None when DNS seeds were not asked.
    @ivar dns_skipped: why the DNS seeds were not asked, or None.
    @ivar names: a NameReport for each host name given, in order.
    """

    addresses: tuple
    sources: tuple
    dns: DnsSeedResult | None = None
    dns_skipped: str | None = None
    names: tuple = ()

    def as_dict(self):
        """A JSON-ready dict for the crawl summary."""
        return {
            "addresses": len(self.addresses),
            "sources": dict(self.sources),
            "dns": None if self.dns is None else self.dns.as_dict(),
            "dns_skipped": self.dns_skipped,
            "names": [report.as_dict() for report in self.names],
        }


def discover(
    network,
    resolver,
    *,
    options=None,
    extra=(),
    known=0,
    good=0,
    clock=None,
    timeout=DEFAULT_DNS_TIMEOUT,
    deadline=SEED_DEADLINE,
    fixed_seeds=None,
):
    """
    The addresses to start crawling ``network`` from, in Core's order.

    1. ``extra``, what the operator named (``--seed``, ``--seeds-file``):
       NetworkAddress objects, and SeedName objects resolved here (A and
       AAAA) through ``resolver``.
    2. The address book, which the caller adds (``known`` and ``good`` say
       what it holds: dialable addresses, and those of them reached at
       least once).
    3. The DNS seeds, unless ``options.dns_seeds_off()`` says why not, and
       only while the book holds fewer than ``options.enough`` good
       addresses (always with ``forcednsseed``).
    4. The fixed seeds of the networks dialled: ``always``, ``never``, or
       as a ``fallback`` (Core's), when the book holds no dialable address
       and the DNS seeds gave none, or, when the DNS seeds were not asked,
       the operator's seeds gave none either (Core adds them at once with
       ``-dnsseed=0`` and no ``-seednode``, after a minute otherwise).

    With ``dnsseed`` off and no host name in ``extra``, ``resolver`` is
    never called and may be None.  ``clock``, ``timeout`` and ``deadline``
    are query_dns_seeds()'s.

    @param options: a DiscoveryOptions (the defaults if None).
    @param fixed_seeds: overrides ``options.fixed_seeds`` (shorthand).
    @raise ValueError: for a bad ``fixed_seeds``, a bad ``extra`` item or a
        missing resolver.
    @return: a Deferred firing with a Discovery.
    """
    options = DiscoveryOptions() if options is None else options
    if fixed_seeds is not None:
        options = attr.evolve(options, fixed_seeds=fixed_seeds)
    extra = tuple(extra)
    for item in extra:
        if not isinstance(item, (NetworkAddress, SeedName)):
            raise ValueError(
                f"extra seeds must be NetworkAddress or SeedName, got {item!r}"
            )
    names = [item for item in extra if isinstance(item, SeedName)]
    dns_skipped = options.dns_seeds_off(network)
    if dns_skipped is None and not options.forcednsseed and good >= options.enough:
        dns_skipped = (f"not needed: the address book holds {good} good addresses "
                       f"(enough is {options.enough})")
    if (dns_skipped is None or names) and resolver is None:
        raise ValueError(
            f"a resolver is needed for {network.name}'s DNS seeds or the host names given"
        )
    if dns_skipped is not None and network.dns_seeds:
        log.info("DNS seeds {skipped}", skipped=dns_skipped)

    lookups = dict(timeout=timeout, clock=clock, deadline=deadline)
    asked_dns = (query_dns_seeds(network, resolver, **lookups) if dns_skipped is None
                 else defer.succeed(None))
    asked_names = (resolve_seed_names(names, resolver, **lookups) if names
                   else defer.succeed([]))
    work = defer.gatherResults([asked_dns, asked_names], consumeErrors=True)
    work.addErrback(lambda failure: failure.value.subFailure)
    result = defer.Deferred(lambda _: work.cancel())

    def combine(outcome):
        dns_result, resolved = outcome
        resolved = iter(resolved)
        given, reports = [], []
        for item in extra:
            if isinstance(item, SeedName):
                report, found = next(resolved)
                reports.append(report)
                given.extend(found)
            else:
                given.append(item)
        dns_addresses = () if dns_result is None else dns_result.addresses
        sources = [("seed-option", given)]
        if dns_result is not None:
            sources.append(("dns", dns_addresses))
        if options.fixed_seeds == "always" or (
            options.fixed_seeds == "fallback"
            and not known
            and not dns_addresses
            and (dns_result is not None or not given)
        ):
            fixed = [a for a in network.fixed_seeds() if a.network_name in options.networks]
            sources.append(("fixed", fixed))
            if options.fixed_seeds == "fallback" and network.fixed_seeds_file:
                log.info("nothing else to start from: using {count} fixed seeds",
                         count=len(fixed))
        seen, addresses, counts = set(), [], []
        for source, found in sources:
            before = len(addresses)
            for address in found:
                if address not in seen:
                    seen.add(address)
                    addresses.append(address)
            counts.append((source, len(addresses) - before))
        return Discovery(tuple(addresses), tuple(counts), dns_result, dns_skipped,
                         tuple(reports))

    work.addCallback(combine).chainDeferred(result)
    return result


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
