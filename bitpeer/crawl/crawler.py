"""
The crawl: visit every reachable node once, learning addresses as we go.

Addresses move through four sets: pending (known, not yet dialled), in
flight (being dialled), reachable (handshake completed) and unreachable
(failed, with the reason).  Pending addresses are picked at random so that no
one part of the network is hammered, up to ``concurrency`` direct dials at
once (and each overlay path's own slots, below); with the address book's
history (bitpeer.crawl.history's DialPlan), those that answered last time
are picked first and those that failed last, and dead ones may be left for
a later crawl.  A
``getaddr_fraction`` of the reachable nodes are asked for their addresses
(PROTOCOL.md 9.8: coverage comes from breadth, and each answer is a random
23% sample anyway); unless the fraction is 0, the first GETADDR_BOOTSTRAP
nodes are always asked, so that a small fraction cannot starve the crawl.

Gossiped addresses are filtered before they are dialled, as Core filters
what it stores: absurd timestamps (at most 1e8, or more than 10 minutes in
the future), entries older than ``max_age``, invalid and (unless
``allow_private``) unroutable addresses.

Each address is dialled along the path of its network (bitpeer.crawl.slots):
IPv4 and IPv6 directly (or through ``--proxy``), Tor v3 through the onion
proxies, I2P through the SAM bridge, CJDNS directly as IPv6 with
``--cjdns-reachable``; each path has its own slots and connect timeout, so
the clearnet never waits behind slow onion circuits.  An address no path
dials is kept and counted as not dialled, with why: ``onlynet`` (a network
``--onlynet`` leaves out), ``no --onion-proxy``, ``no --i2p-sam``, ``cjdns
not reachable (--cjdns-reachable)``, ``i2p port not 0``, once the proxy or
bridge of its network cannot be reached, ``onion proxy down``, ``i2p bridge
down``, ``proxy down``, or ``dead (retried every K crawls)``.

The crawl ends when nothing is pending or in flight.
"""

import collections
import random as _random

import attr
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from ..store.addrbook import AddressBookClosed
from ..net import DIALLERS, dialler_for
from ..errors import PeerError
from .external import ExternalAddressVote
from .history import ANSWERED, FAILED, UNTRIED, DialPlan
from ..factory import PeerFactory
from ..logs import levels, logger
from ..networks import ONLYNET_CHOICES
from ..peer import PeerInfo
from ..protocol import PeerOptions
from ..validators import positive
from ..wire.address import Network, NetworkAddress
from ..wire.addrlist import entry_keys
from .slots import PROXY_UNREACHABLE, build_slots, endpoint_text, parse_endpoint
from .timeouts import ConnectTimeoutLearner, LatencyLog, LearningPolicy

#: Nodes asked for addresses whatever the getaddr fraction (unless it is 0).
GETADDR_BOOTSTRAP = 10

#: Connections in flight at once, at most, by default: the open-file limit
#: lowers it (bitpeer.crawl.service.affordable).  A connect under way costs
#: a socket, not CPU, so the cap is not the machine's: it is the crawl's
#: manners on the operator's network.  Every connect under way is an entry
#: in each connection-tracking table on the path (a home router's often
#: holds a few thousand to 16,384), and a full table drops SYNs, which the
#: crawl would take for blackholed nodes.  An assumption, not a
#: measurement: raise --concurrency on a network known to take more.
DEFAULT_CONCURRENCY = 4096

#: Core's sanity rule on gossip timestamps (net_processing.cpp, ADDR).
MIN_SANE_TIME = 100_000_000
MAX_FUTURE_DRIFT = 600

#: Where an AddrEntry (a tuple) holds its time and address.  Indexing is the
#: fast way to read them: its named properties cost a call each, and
#: unpacking a tuple subclass takes the slow, generic path.
ENTRY_TIME, ENTRY_ADDRESS = 0, 2

#: Reasons an address is kept but not dialled (CrawlResult.not_dialled),
#: as the operator's options decide; bitpeer.crawl.slots has those of a
#: proxy that is down.
NOT_DIALLED_ONLYNET = "onlynet"
NOT_DIALLED_NO_ONION_PROXY = "no --onion-proxy"
NOT_DIALLED_NO_I2P_SAM = "no --i2p-sam"
NOT_DIALLED_CJDNS = "cjdns not reachable (--cjdns-reachable)"
#: Core refuses I2P ports other than 0 ("connection refused due to
#: arbitrary port"): SAM 3.1 has no ports.
NOT_DIALLED_I2P_PORT = "i2p port not 0"

#: Dials through one Tor daemon at once: Tor's MaxClientCircuitsPending
#: (32, tor config.c); more only wait inside Tor.
DEFAULT_ONION_CONCURRENCY = 32
#: Seconds an onion dial may take, the proxy's answer included: Core's
#: g_socks5_recv_timeout (20 s, "ample time for negotiation for very slow
#: proxies such as Tor", netbase.cpp).
DEFAULT_ONION_TIMEOUT = 20.0
#: Dials through the SAM bridge at once: no figure upstream (Core dials
#: one at a time, p2p-crawler shares 64 workers across networks); Tor's
#: cap, for a router building tunnels much as Tor builds circuits.
DEFAULT_I2P_CONCURRENCY = 32
#: Seconds an I2P dial may take: p2p-crawler's I2P connect timeout (30 s,
#: config.py); Core waits up to 3 minutes for each SAM reply, which would
#: hold a dead destination's slot that long.
DEFAULT_I2P_TIMEOUT = 30.0


def _onlynet(instance, attribute, value):
    if not value or not value <= set(ONLYNET_CHOICES):
        raise ValueError(
            f"networks must be a non-empty subset of {', '.join(ONLYNET_CHOICES)}, "
            f"got {sorted(value)!r}"
        )


def _transport(instance, attribute, value):
    if value not in DIALLERS:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(DIALLERS)}, got {value!r}"
        )


def _endpoint(instance, attribute, value):
    if value is not None:
        _check_endpoint(attribute.name, value)


def _endpoints(instance, attribute, value):
    for endpoint in value:
        _check_endpoint(attribute.name, endpoint)
    if len(set(value)) < len(value):
        raise ValueError(f"{attribute.name} names a proxy twice: "
                         f"{', '.join(endpoint_text(e) for e in value)}")


def _check_endpoint(name, endpoint):
    """``(host, port)``: what parse_endpoint gives."""
    try:
        host, port = endpoint
        valid = isinstance(host, str) and host and isinstance(port, int) and 0 < port <= 0xFFFF
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be (host, port) with a port in 1..65535, "
                         f"got {endpoint!r}")


def _as_endpoint(value):
    """A ``HOST:PORT`` text or a (host, port) pair, as (host, port)."""
    return parse_endpoint(value) if isinstance(value, str) else value


def _as_endpoints(values):
    return tuple(_as_endpoint(value) for value in values)


def _fraction(instance, attribute, value):
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be within 0..1, got {value!r}")


@attr.frozen
class CrawlOptions:
    """How hard and how far to crawl.  Times are seconds."""

    concurrency: int = attr.ib(default=DEFAULT_CONCURRENCY, validator=positive)
    getaddr_fraction: float = attr.ib(default=1.0, validator=_fraction)
    max_age: float = attr.ib(default=24 * 3600.0, validator=positive)
    #: The direct dials' connect timeout: the configured one, and the
    #: ceiling of the one learnt (``timeout_learning``).
    connect_timeout: float = attr.ib(default=5.0, validator=positive)
    #: How the direct dials' connect timeout is learnt from the crawl's own
    #: connects (bitpeer.crawl.timeouts); None keeps ``connect_timeout``.
    timeout_learning: LearningPolicy | None = attr.ib(factory=LearningPolicy)
    allow_private: bool = False
    progress_interval: float = attr.ib(default=5.0, validator=positive)
    #: Bound on the pending set: a flood of gossip cannot exhaust memory.
    max_pending: int = attr.ib(default=2_000_000, validator=positive)
    #: Bound on sockets open at once, closing ones included (None: only
    #: ``concurrency`` bounds them); the service sets it from the open-file
    #: limit.
    max_open: int | None = attr.ib(
        default=None, validator=attr.validators.optional(positive)
    )
    #: ``--onlynet``: the networks dialled (names of ONLYNET_CHOICES); an
    #: address on another is kept and reported as not dialled ("onlynet").
    networks: frozenset = attr.ib(default=frozenset(ONLYNET_CHOICES), converter=frozenset,
                                  validator=_onlynet)
    #: ``--transport``: the dialler (a name of bitpeer.net.DIALLERS): "fast"
    #: (bitpeer.net.dialler, the default) or "twisted" (Twisted's endpoints,
    #: the reference; also what "fast" falls back to on a reactor without
    #: IReactorFDSet).
    transport: str = attr.ib(default="fast", validator=_transport)
    #: ``--onion-proxy``: the SOCKS5 proxies (Tor daemons) onions are
    #: dialled through, (host, port) each; onion dials are spread over them.
    onion_proxies: tuple = attr.ib(default=(), converter=_as_endpoints, validator=_endpoints)
    #: ``--proxy``: a SOCKS5 proxy for IPv4 and IPv6 too (Core's -proxy),
    #: and for onions when no ``onion_proxies`` are given.
    proxy: tuple | None = attr.ib(default=None, converter=attr.converters.optional(_as_endpoint),
                                  validator=_endpoint)
    #: ``--i2p-sam``: the SAM 3.1 bridge I2P addresses are dialled through.
    i2p_sam: tuple | None = attr.ib(default=None,
                                    converter=attr.converters.optional(_as_endpoint),
                                    validator=_endpoint)
    #: ``--cjdns-reachable`` (Core's -cjdnsreachable): CJDNS (fc00::/8) is
    #: dialled directly, as IPv6; without it, kept and counted, not dialled.
    cjdns_reachable: bool = False
    #: Onion dials at once per SOCKS5 proxy, and their connect timeout (s).
    onion_concurrency: int = attr.ib(default=DEFAULT_ONION_CONCURRENCY, validator=positive)
    onion_timeout: float = attr.ib(default=DEFAULT_ONION_TIMEOUT, validator=positive)
    #: I2P dials at once through the SAM bridge, and their timeout (s).
    i2p_concurrency: int = attr.ib(default=DEFAULT_I2P_CONCURRENCY, validator=positive)
    i2p_timeout: float = attr.ib(default=DEFAULT_I2P_TIMEOUT, validator=positive)
    #: Whether gossiped addresses are dialled in this crawl; without, they
    #: are only recorded (the DNS seeder's rounds test what they are given).
    follow_gossip: bool = True

    @property
    def onion_paths(self):
        """The proxies onions are dialled through: ``onion_proxies``, else
        ``proxy`` (Core: -onion overrides -proxy for onions), else none."""
        if self.onion_proxies:
            return self.onion_proxies
        return (self.proxy,) if self.proxy else ()

    def not_dialled_reason(self, address):
        """
        Why ``address`` is not dialled in this crawl, or None if it is:
        ``onlynet`` when its network is not among ``networks`` (the
        operator's choice comes first); for Tor, I2P and CJDNS, the option
        that would dial it when it is missing (``no --onion-proxy``, ``no
        --i2p-sam``, ``cjdns not reachable (--cjdns-reachable)``); ``i2p
        port not 0`` for an I2P address with a port (Core refuses those).
        """
        if address.network_name not in self.networks:
            return NOT_DIALLED_ONLYNET
        network = address.network
        if network == Network.IPV4 or network == Network.IPV6:
            return None
        if network == Network.TORV3:
            return None if self.onion_paths else NOT_DIALLED_NO_ONION_PROXY
        if network == Network.I2P:
            if not self.i2p_sam:
                return NOT_DIALLED_NO_I2P_SAM
            return None if address.port == 0 else NOT_DIALLED_I2P_PORT
        return None if self.cjdns_reachable else NOT_DIALLED_CJDNS


@attr.frozen
class NodeResult:
    """A reachable node: its handshake, and what its getaddr gave."""

    info: object
    getaddr_outcome: str | None
    returned: int | None
    getaddr_error: str | None = None

    def as_dict(self):
        """A JSON-ready record (PeerInfo fields plus the getaddr outcome)."""
        out = self.info.as_dict()
        out.update(
            getaddr=self.getaddr_outcome, returned=self.returned,
            getaddr_error=self.getaddr_error,
        )
        return out


@attr.frozen
class Unreachable:
    """Why an address was unreachable: a reason code and the detail."""

    reason: str
    detail: str


@attr.frozen
class Settled:
    """
    The verdicts an interrupted crawl had reached, handed to the crawl that
    resumes it: these addresses are not dialled again, and count in the
    result as if this run had reached them.

    @ivar reachable: NetworkAddress -> NodeResult.
    @ivar unreachable: NetworkAddress -> Unreachable.
    """

    reachable: dict = attr.ib(factory=dict)
    unreachable: dict = attr.ib(factory=dict)

    def __len__(self):
        return len(self.reachable) + len(self.unreachable)

    @classmethod
    def from_verdicts(cls, verdicts):
        """
        The verdicts an address book kept of one crawl (NetworkAddress ->
        its latest Verdict, as AddressBook.verdicts gives them).  The
        handshake facts the book does not keep (their view of us, nonce,
        clock offset) are left empty: only the snapshot needs these nodes,
        not the external vote.
        """
        reachable, unreachable = {}, {}
        for address, v in verdicts.items():
            if v.outcome == "reachable":
                info = PeerInfo(
                    address=address, inbound=False, version=v.version,
                    services=v.services, user_agent=v.user_agent,
                    start_height=v.start_height, relay=v.relay, their_view_of_us=None,
                    timestamp=0, nonce=0, clock_offset=0.0,
                    handshake_latency=v.latency or 0.0,
                )
                reachable[address] = NodeResult(info, v.reason, v.returned,
                                                getaddr_error=v.detail)
            else:
                unreachable[address] = Unreachable(v.reason, v.detail)
        return cls(reachable, unreachable)


@attr.frozen
class CrawlResult:
    """
    Everything one crawl found.

    @ivar reachable: NetworkAddress -> NodeResult.
    @ivar unreachable: NetworkAddress -> Unreachable.
    @ivar not_dialled: NetworkAddress -> why it was kept but not dialled
        (the module's docstring lists the reasons); in the order met.
    @ivar filtered: counts of gossip dropped, by rule.
    @ivar timeline: (elapsed s, reachable, unreachable, known) samples.
    @ivar resumed: verdicts carried over from the interrupted run this
        crawl resumed (0 for a crawl run in one go).
    @ivar stopped: whether the crawl was stopped before it was over.
    @ivar reached_at: seconds from the start to each reachable verdict of
        this run, in order (the discovery curve; carried-over verdicts are
        not in it).
    @ivar timeouts: the direct dials' connect timeout, configured and
        learnt, and the connect, handshake and getaddr times measured
        (JSON-ready; bitpeer.crawl.timeouts).
    """

    network: str
    started: float
    finished: float
    reachable: dict
    unreachable: dict
    not_dialled: dict
    filtered: dict
    gossiped: int
    external: object
    timeline: tuple
    resumed: int = 0
    stopped: bool = False
    reached_at: tuple = ()
    timeouts: dict = attr.ib(factory=dict)

    @property
    def elapsed(self):
        """Seconds the crawl took."""
        return self.finished - self.started


class Crawler:
    """
    One crawl of one network from ``seeds``.

    ``book`` (an AddressBook, or None) receives every gossiped address and
    every attempt, under ``crawl_id``.  ``run()`` returns a Deferred of the
    CrawlResult; cancelling it stops dialling and closes what is in flight.
    ``dialler`` makes the direct connections: by default the one
    ``options.transport`` names (bitpeer.net.dialler_for), or a stand-in
    with the same signature (tests); ``overlay_diallers`` maps "socks5"
    and "sam" to the diallers of the proxy paths (by default
    bitpeer.net.socks5.Socks5Dialler and bitpeer.net.sam.SamDialler,
    imported only when options ask for them).  ``settled`` (a Settled)
    resumes an interrupted crawl: its addresses are not dialled again.
    ``history`` (a bitpeer.crawl.history.DialPlan) orders the dials by the
    address book's history and leaves out the dead addresses it skips.
    """

    log = logger()

    def __init__(self, reactor, network, seeds, *, options=None, peer_options=None,
                 book=None, crawl_id=None, random=None, clock=None, dialler=None,
                 overlay_diallers=None, settled=None, history=None):
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.network = network
        self.options = options if options is not None else CrawlOptions()
        self.book, self.crawl_id = book, crawl_id
        #: Records the book could not take (closed under the crawl).
        self.unrecorded = 0
        self.random = random if random is not None else _random.Random()
        #: Entry keys of every address accepted so far: the decoder skips
        #: gossip repeating them (most of it), before building any object.
        self.known_keys = set()
        self.factory = PeerFactory(
            self.clock, network,
            peer_options if peer_options is not None else PeerOptions(),
            random=self.random, on_peer=self._connected, known_addresses=self.known_keys,
        )
        classes = {"direct": dialler if dialler is not None
                   else dialler_for(self.options.transport, reactor)}
        classes.update(overlay_diallers or {})

        def make_dialler(kind, timeout, **config):
            cls = classes[kind] if kind in classes else _overlay_dialler(kind)
            return cls(reactor, self.factory, timeout, self._connect_failed, clock=self.clock,
                       **config)

        #: The paths, their slots and the pending addresses of each network.
        self.slots = build_slots(self.options, make_dialler)
        #: The direct path, and its dialler.
        self._direct = self.slots.paths[0]
        self.dialler = self._direct.dialler
        #: The direct dials' connect timeout, learnt from their connects.
        self.connect_timeout = ConnectTimeoutLearner(
            self.options.connect_timeout, self.options.timeout_learning,
            changed=self._connect_timeout_learnt)
        #: How long handshakes and getaddr answers took (reported, not cut).
        self.handshake_times = LatencyLog()
        self.getaddr_times = LatencyLog()
        self._timeout_said = False
        self.seen = set()
        #: Address -> its dialler Attempt, until its verdict is in.
        self.in_flight = {}
        #: Address -> (the Path its dial took, when it was dialled), until
        #: its verdict is in.
        self._through = {}
        #: The IPv6 form a CJDNS address is dialled as -> the CJDNS address,
        #: while it is in flight: the dialler and the peer know only the
        #: IPv6 form.
        self._dialled_as = {}
        #: Address -> Peer, for the in-flight addresses that connected.
        self.connected = {}
        self.reachable = {}
        #: Seconds from the start to each reachable verdict, in order.
        self.reached_at = []
        self.unreachable = {}
        #: Address -> its not-dialled reason, in the order met.
        self.not_dialled = {}
        self.filtered = {"stale": 0, "absurd-time": 0, "invalid": 0, "unroutable": 0,
                         "pending-full": 0}
        self.gossiped = 0
        self.external = ExternalAddressVote(allow_private=self.options.allow_private)
        self.timeline = []
        self._seeds = list(seeds)
        self._settled = settled if settled is not None else Settled()
        self._history = history if history is not None else DialPlan()
        self._asked = 0
        #: Sockets dialled and not yet closed (connecting, open or closing).
        self.open_sockets = 0
        self._done = None
        self._stopping = False
        self._progress = LoopingCall(self._report)
        self._progress.clock = self.clock

    @property
    def pending(self):
        """Every address waiting to be dialled (a new list; pending_count
        is the cheap way to count them)."""
        return self.slots.pending()

    @property
    def pending_count(self):
        """How many addresses wait to be dialled, in every network."""
        return self.slots.pending_count

    # -- running ------------------------------------------------------------------

    def run(self):
        """Crawl until nothing is pending or in flight: Deferred[CrawlResult]."""
        self.started = self.clock.seconds()
        self._done = Deferred(canceller=lambda _: self.stop())
        self._carry_over(self._settled)
        for address in self._seeds:
            if address.is_valid():
                self._consider(address)
            else:
                # 0.0.0.0, ::, 255.255.255.255...: Core would not dial them.
                self.filtered["invalid"] += 1
                self.log.warn("seed {address} is not a valid address; skipped",
                              address=address)
        self._say_history()
        if len(self.slots.paths) > 1:
            self.log.info("dialling {paths}", paths="; ".join(
                f"{', '.join(lane.network for lane in path.lanes) or 'nothing'} via "
                f"{path.name} ({path.capacity} at once, {path.dialler.timeout:g} s)"
                for path in self.slots.paths))
        self._progress.start(self.options.progress_interval, now=False)
        self._fill()
        return self._done

    def _carry_over(self, settled):
        """Take in the verdicts of the run this crawl resumes: seen, not to
        be dialled, and part of the result."""
        for verdicts, into in ((settled.reachable, self.reachable),
                               (settled.unreachable, self.unreachable)):
            for address, verdict in verdicts.items():
                self.seen.add(address)
                self.known_keys.update(entry_keys(address))
                into[address] = verdict
        # The nodes already asked count towards the bootstrap.
        self._asked = sum(1 for n in settled.reachable.values() if n.getaddr_outcome)

    def _say_history(self):
        """Say how the book's history orders this crawl's first dials, and
        how many dead addresses it leaves for a later crawl."""
        history = self._history
        if not history.tiers and not history.skipped:
            return
        skipped = collections.Counter(
            reason for address, reason in self.not_dialled.items()
            if history.skipped.get(address) == reason)
        waiting = self.slots.by_tier
        self.log.info(
            "by the address book's history: {answered} that answered at their last attempt "
            "are dialled first, then {untried} never tried, then {failed} that failed at "
            "their last; {skipped}",
            answered=waiting[ANSWERED], untried=waiting[UNTRIED], failed=waiting[FAILED],
            skipped="; ".join(f"{n} not dialled: {reason}" for reason, n in skipped.items())
            or "none left out")

    def stop(self):
        """Stop dialling and close every connection in flight."""
        if not self._stopping and self._done is not None and not self._done.called:
            # Said now: once stopped, nothing is pending or in flight.
            self.log.info(
                "crawl {network} stopped: {pending} addresses left undialled, {in_flight} "
                "connections cut short, {reachable} reachable, {unreachable} unreachable",
                network=self.network.name, pending=self.pending_count,
                in_flight=len(self.in_flight), reachable=len(self.reachable),
                unreachable=len(self.unreachable),
            )
        self._stopping = True
        self.slots.clear()
        for attempt in list(self.in_flight.values()):
            attempt.cancel()
        for peer in list(self.connected.values()):
            peer.close()
        self._maybe_finished()

    def _consider(self, address):
        """Queue an address for dialling, once per crawl."""
        if (address[0] == Network.IPV6 and address[1][0] == 0xFC
                and self.options.cjdns_reachable):
            # Core's MaybeFlipIPv6toCJDNS: with CJDNS reachable, fc00::/8
            # is CJDNS, not a unique-local IPv6 address.
            address = NetworkAddress(Network.CJDNS, address[1], address[2])
        if address in self.seen:
            return
        self.seen.add(address)
        self.known_keys.update(entry_keys(address))
        reason = self.options.not_dialled_reason(address)
        lane = None
        if reason is None:
            lane = self.slots.lane(address)
            reason = lane.down_reason if lane.down else self._history.skipped.get(address)
        if reason is not None:
            self.not_dialled[address] = reason
            return
        if self.slots.pending_count >= self.options.max_pending:
            self.filtered["pending-full"] += 1
            return
        self._queue(lane, address)

    def _queue(self, lane, address):
        """Queue an address on its lane, in its tier by the book's history."""
        self.slots.add(lane, address, self._history.tiers.get(address, UNTRIED))

    def _fill(self):
        slots, rng, max_open = self.slots, self.random, self.options.max_open
        while max_open is None or self.open_sockets < max_open:
            picked = slots.pick(rng)
            if picked is None:
                break
            self._visit(*picked)
        self._maybe_finished()

    def _maybe_finished(self):
        if (self.slots.pending_count or self.in_flight or self._done is None
                or self._done.called):
            return
        if self._progress.running:
            self._progress.stop()
        if not self._stopping:
            self._report()
        result = CrawlResult(
            network=self.network.name,
            started=self.started,
            finished=self.clock.seconds(),
            reachable=dict(self.reachable),
            unreachable=dict(self.unreachable),
            not_dialled=dict(self.not_dialled),
            filtered=dict(self.filtered),
            gossiped=self.gossiped,
            external=self.external.result(),
            timeline=tuple(self.timeline),
            resumed=len(self._settled),
            stopped=self._stopping,
            reached_at=tuple(self.reached_at),
            timeouts=self._timeouts(),
        )
        self._done.callback(result)

    def _timeouts(self):
        """CrawlResult.timeouts: the learnt connect timeout (its path's
        configured one when the options learn nothing) and what was
        measured."""
        peer = self.factory.options
        return {
            "connect": self.connect_timeout.as_dict(),
            "handshake": {"configured": peer.handshake_timeout,
                          **self.handshake_times.as_dict()},
            "getaddr": {"configured": peer.getaddr_timeout, **self.getaddr_times.as_dict()},
        }

    def _connect_timeout_learnt(self, seconds):
        """The learner has a new connect timeout: the direct dials use it,
        those under way included."""
        self.dialler.timeout = seconds
        if not self._timeout_said:
            self._timeout_said = True
            learner = self.connect_timeout
            self.log.info(
                "connect timeout learnt from {n} connects: {timeout:g} s "
                "(p99 connect {p99:.3f} s; floor {floor:g} s, configured {configured:g} s)",
                n=learner.times.count, timeout=seconds,
                p99=learner.times.quantile(0.99), floor=learner.policy.floor,
                configured=learner.configured)

    # -- one address --------------------------------------------------------------

    def _visit(self, path, address):
        self.open_sockets += 1
        path.in_flight += 1
        self._through[address] = (path, self.clock.seconds())
        dialled = address
        if address[0] == Network.CJDNS:
            # Routed by the operating system as any IPv6 address.
            dialled = NetworkAddress(Network.IPV6, address[1], address[2])
            self._dialled_as[dialled] = address
        self.in_flight[address] = path.dialler.dial(dialled)

    def _crawled_address(self, address):
        """The address the crawl dialled, from the one a dialler or peer
        names (they differ for CJDNS only)."""
        return self._dialled_as.get(address, address) if self._dialled_as else address

    def _connected(self, peer):
        """TCP is up (the factory's on_peer hook): wait for the handshake."""
        address = self._crawled_address(peer.address)
        self.connected[address] = peer
        through = self._through.get(address)
        if through is not None and through[0] is self._direct:
            self.connect_timeout.observe(self._connect_time(address, through[1]))
        peer.whenClosed().addCallback(self._socket_closed)
        waiting = peer.whenHandshaken().addCallback(lambda _: peer)
        waiting.addCallbacks(self._handshaken, self._failed,
                             callbackArgs=(address,), errbackArgs=(address,))
        waiting.addErrback(self._bug, address)
        waiting.addBoth(self._visited, address)
        waiting.addBoth(lambda _: peer.close())

    def _connect_time(self, address, dialled_at):
        """How long the connect to ``address`` took: the kernel's round-trip
        time where the dialler's attempt knows it (the fast dialler's
        ``rtt``), else the time since the dial, which also counts how long
        the reactor took to get to the connect's event."""
        rtt = getattr(self.in_flight.get(address), "rtt", None)
        measured = rtt() if rtt is not None else None
        return measured if measured is not None else self.clock.seconds() - dialled_at

    def _socket_closed(self, _):
        """
        A connected socket is gone.  A slot is free as soon as its verdict is
        in, but the socket closes a reactor turn later: ``open_sockets``
        counts it until then against ``max_open``, so a burst of new dials
        cannot overrun the open-file limit.
        """
        self.open_sockets -= 1
        if self.options.max_open is not None and not self._stopping:
            self._fill()

    def _connect_failed(self, address, error):
        """The dialler's verdict on an attempt that did not connect (its
        socket is closed already)."""
        address = self._crawled_address(address)
        if address in self.connected:
            # Its protocol had started (a bug broke it after): the peer's
            # own end gives the verdict and frees the socket.
            return
        self.open_sockets -= 1
        if error.reason == PROXY_UNREACHABLE and not self._stopping:
            self._proxy_unreachable(address, error)
            return
        if levels.debug:
            # Connected peers log their own end (BitcoinProtocol); a dial
            # that never connected is said here.
            self.log.debug("{address}: {reason}: {error}", address=address,
                           reason=error.reason, error=error)
        self._unreachable(address, error)
        self._visited(None, address)

    def _handshaken(self, peer, address):
        info = peer.info
        self.handshake_times.add(info.handshake_latency)
        self.external.add(info.their_view_of_us, address)
        # A node is asked when the draw says so; the first few always are,
        # or a small fraction could leave the crawl nothing to start from.
        fraction = self.options.getaddr_fraction
        ask = fraction > 0 and (
            self._asked < GETADDR_BOOTSTRAP or self.random.random() < fraction
        )
        self._asked += ask
        if self._stopping or not ask:
            self._record_reachable(address, NodeResult(info, None, None))
            peer.close()
            return None
        asked = peer.getaddr()
        asked.addCallbacks(self._answered, self._not_answered,
                           callbackArgs=(peer, address, self.clock.seconds()),
                           errbackArgs=(peer, address))
        return asked

    def _answered(self, result, peer, address, asked_at):
        peer.close()
        self.getaddr_times.add(self.clock.seconds() - asked_at)
        self.gossiped += result.announced
        self._learn(result.addresses, address)
        self._record_reachable(
            address, NodeResult(peer.info, result.outcome, result.announced)
        )

    def _not_answered(self, failure, peer, address):
        peer.close()
        error = failure.value
        reason = error.reason if isinstance(error, PeerError) else "error"
        self._record_reachable(
            address, NodeResult(peer.info, reason, 0, getaddr_error=str(error))
        )

    def _failed(self, failure, address):
        """Errback of a connected visit: a PeerError makes the address
        unreachable; anything else is a bug (passed on)."""
        if isinstance(failure.value, PeerError) or self._stopping:
            self._unreachable(address, failure.value)
            return None
        return failure

    def _unreachable(self, address, error):
        if self._stopping:
            # Cut off by stop(): the address was never judged, so nothing
            # is recorded against it.
            return
        reason, detail = error.reason, str(error)
        self.unreachable[address] = Unreachable(reason, detail)
        self._to_book("attempt", self.crawl_id, address, "unreachable", reason=reason,
                      detail=detail, now=self.clock.seconds())

    def _bug(self, failure, address):
        self.log.failure("crawling {address} went wrong", failure, address=address)
        self.unreachable[address] = Unreachable("internal-error", failure.getErrorMessage())

    def _visited(self, _, address):
        self._release(address)
        self.connected.pop(address, None)
        if not self._stopping:
            self._fill()
        else:
            self._maybe_finished()

    def _release(self, address):
        """An attempt is over: its slot on its path is free."""
        self.in_flight.pop(address, None)
        through = self._through.pop(address, None)
        if through is not None:
            through[0].in_flight -= 1
        if address[0] == Network.CJDNS:
            self._dialled_as.pop(NetworkAddress(Network.IPV6, address[1], address[2]), None)

    def _proxy_unreachable(self, address, error):
        """
        The proxy or bridge of a dial could not be reached: that says
        nothing of the address.  The path is taken out (said once, however
        many dials it had in flight); the address goes back to its lane, for
        another proxy, or is kept as not dialled when none is left.
        """
        path = self._through.get(address, (None,))[0]
        self._release(address)
        if path is not None and path.up:
            emptied = self.slots.path_down(path)
            reasons = sorted({lane.down_reason for lane, _ in emptied})
            self.log.warn(
                "{path} cannot be reached ({error}): nothing more is dialled through it; "
                "{after}", path=path.name, error=error,
                after=f"its addresses are kept as not dialled ({', '.join(reasons)})"
                if reasons else "the other paths of its networks dial their addresses")
            for lane, addresses in emptied:
                for waiting in addresses:
                    self.not_dialled[waiting] = lane.down_reason
        lane = self.slots.lane(address)
        if lane.down:
            self.not_dialled[address] = lane.down_reason
        else:
            self._queue(lane, address)
        self._fill()

    def _record_reachable(self, address, result):
        self.reachable[address] = result
        self.reached_at.append(self.clock.seconds() - self.started)
        self._to_book(
            "attempt", self.crawl_id, address, "reachable", reason=result.getaddr_outcome,
            detail=result.getaddr_error, info=result.info, returned=result.returned,
            now=self.clock.seconds(),
        )

    def _to_book(self, method, *args, **kwargs):
        """
        Give the book a record (``method`` names the AddressBook call).  If
        its owner closed it while connections were still ending (a reactor
        shutting down closes a book itself), the crawl goes on without it:
        one warning, and ``unrecorded`` counts what the book missed.
        """
        if self.book is None:
            return
        try:
            getattr(self.book, method)(*args, **kwargs)
        except AddressBookClosed:
            if not self.unrecorded:
                self.log.warn("the address book was closed during the crawl; "
                              "what the crawl learns from now on is not recorded in it")
            self.unrecorded += 1

    # -- gossip -------------------------------------------------------------------

    def _learn(self, entries, source):
        """Filter gossiped entries and queue the new, fresh, dialable ones."""
        now = self.clock.seconds()
        oldest = now - self.options.max_age
        latest = now + MAX_FUTURE_DRIFT
        allow_private, follow = self.options.allow_private, self.options.follow_gossip
        filtered, seen = self.filtered, self.seen
        kept = []
        for entry in entries:
            time, address = entry[ENTRY_TIME], entry[ENTRY_ADDRESS]
            if address in seen:
                continue
            if time <= MIN_SANE_TIME or time > latest:
                filtered["absurd-time"] += 1
            elif time < oldest:
                filtered["stale"] += 1
            elif not address.is_valid():
                filtered["invalid"] += 1
            elif not allow_private and not address.is_routable():
                filtered["unroutable"] += 1
            else:
                kept.append(entry)
                if follow:
                    self._consider(address)
        if kept:
            self._to_book("gossip", kept, source, now)

    # -- progress -----------------------------------------------------------------

    def _report(self):
        elapsed = self.clock.seconds() - self.started
        done = len(self.reachable) + len(self.unreachable)
        self.timeline.append((round(elapsed, 3), len(self.reachable), len(self.unreachable),
                              len(self.seen)))
        self.log.info(
            "crawl {network}: {pending} pending, {in_flight} in flight, {reachable} reachable, "
            "{unreachable} unreachable, {rate:.0f} addresses/s, {elapsed:.1f} s",
            network=self.network.name, pending=self.pending_count,
            in_flight=len(self.in_flight), reachable=len(self.reachable),
            unreachable=len(self.unreachable), rate=done / elapsed if elapsed else 0.0,
            elapsed=elapsed,
        )


def _overlay_dialler(kind):
    """
    The dialler class of a proxy path ("socks5" or "sam"), imported when a
    crawl first needs it: a clearnet crawl never loads the SOCKS5 and SAM
    clients.
    """
    if kind == "socks5":
        from ..net.socks5 import Socks5Dialler

        return Socks5Dialler
    if kind == "sam":
        from ..net.sam import SamDialler

        return SamDialler
    raise ValueError(f"no dialler of kind {kind!r}")
