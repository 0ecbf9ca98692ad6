"""
The services of ``twistd bitpeer-crawl``, and how they are put together.

CrawlApplication is a ServiceStack (bitpeer.application) of, in start order:

1. the address book (bitpeer.store.service.AddressBookService), checked to
   hold no other network's crawls;
2. a check that snapshots can be written to --out;
3. with --simnet N, the simulated network (bitpeer.simnet.tap.SimNetRunner,
   built by the tap), whose seeds the crawl starts from;
4. the crawl loop (CrawlLoopService): discover, order the book's addresses
   by their history (bitpeer.crawl.history), crawl or resume, encode the
   snapshot ahead, write it, record the crawl in the book, wait --interval.

Each starts once the one before it is up, so nothing is bound or dialled
before the book and --out are proven usable; a fault there is one line in
the log (``the crawl cannot run: ...``) and exit status EXIT_FAILED.  They
stop in the reverse order, each once the one after it is down: the crawl
winds down (its last verdicts reach the book), then the simnet closes its
sockets, then the book flushes and closes.
"""

import sys

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.task import LoopingCall, deferLater

from ..application import Precondition, ServiceStack, end_run, stop_reactor
from ..logs import logger
from ..oneshot import OneShot
from ..runtime import open_file_limit, raise_open_file_limit
from ..store.addrbook import AddressBookError
from ..store.service import AddressBookService
from ..wire.text import escape
from .crawler import DEFAULT_CONCURRENCY, Crawler, Settled
from .discovery import discover, make_resolver
from .export import EncodedNodes, SnapshotError, check_output_directory, summarize, write_snapshot
from .external import fetch_external_ip
from .history import dial_plan
from .slots import endpoint_text

#: Open files kept back for the database, logs, listeners and the simnet.
RESERVED_FILES = 64

#: Once nothing is left to dial, the nodes found are encoded for the
#: snapshot ENCODE_AHEAD_BATCH at a time, every ENCODE_AHEAD_EVERY seconds:
#: a few milliseconds a turn, while the crawl waits for its last connections.
ENCODE_AHEAD_BATCH = 1000
ENCODE_AHEAD_EVERY = 0.05

#: Faults a user can fix (a bad file, a full disk, a book in use): one line
#: in the log and exit status 1, no traceback.  Anything else is a bug.
EXPECTED_FAULTS = (ValueError, OSError, AddressBookError, SnapshotError)

#: Exit statuses: the crawl failed (no result); the snapshot was written but
#: the address book could not keep everything the crawl learnt.
EXIT_FAILED = 1
EXIT_BOOK_INCOMPLETE = 3


def affordable_concurrency(wanted, limit=None, ends=1):
    """
    The concurrency the open-file limit allows: each connection is ``ends``
    files (one, or more when the simnet serving it lives in this process),
    and RESERVED_FILES stay free for everything else.
    """
    limit = open_file_limit() if limit is None else limit
    return max(1, min(wanted, (limit - RESERVED_FILES) // ends))


def affordable(options):
    """The crawl options of ``options`` with the concurrency the open-file
    limit allows (raised first towards what the crawl wants, within the
    hard limit), and that limit as ``max_open``."""
    crawl = options["crawl"]
    # An in-process simnet holds the other end of each connection, and may
    # hold it a moment after the crawler is done with it: budget for both.
    ends = 3 if options["simnet"] else 1
    raise_open_file_limit(crawl.concurrency * ends + RESERVED_FILES)
    budget = affordable_concurrency(2**31, ends=ends)
    return attr.evolve(crawl, concurrency=min(budget, crawl.concurrency), max_open=budget)


@attr.s
class Outcome:
    """
    How the run went, for the exit status: ``failed`` (no result: the crawl
    could not run, or its snapshot was not written) and ``book_incomplete``
    (the snapshot was written, but the book could not keep everything).
    """

    reactor = attr.ib()
    failed = attr.ib(default=False)
    book_incomplete = attr.ib(default=False)

    log = logger()

    def cannot_run(self, failure):
        """A fault that ends the run: one line if the user can fix it, a
        traceback if it is a bug; then stop the reactor."""
        self.failed = True
        end_run(self.reactor, self.log, failure, EXPECTED_FAULTS, "the crawl")


class CrawlApplication(ServiceStack):
    """
    The book, the --out check, the simnet (with --simnet), the crawl loop,
    for ``options`` (tap.Options); see the module's docstring.  The
    children are ``books``, ``simnet`` and ``crawl``; ``exit_code()`` is
    the status the run ends with.  ``simnet`` is a service given by the tap
    (bitpeer.simnet.tap.SimNetRunner, or None): started before the crawl,
    it offers ``seeds()`` and its ground ``truth``.  The tap builds it, so
    that the crawl's own code never imports the simulator.
    ``simnet_routes``, given by the tap with a simnet that serves overlay
    nodes, returns the CrawlOptions fields that route the crawl to its
    SOCKS5 fronts and SAM bridge, once it has started.
    """

    def __init__(self, options, reactor, *, simnet=None, simnet_routes=None):
        self.outcome = Outcome(reactor)
        super().__init__(self.outcome.cannot_run)
        network = options["network"]

        async def same_network(book):
            await check_book_network(book, options["db"], network)

        self.books = AddressBookService(options["db"], reactor, checks=[same_network])
        self.books.setServiceParent(self)
        Precondition(lambda: check_output_directory(options["out"])).setServiceParent(self)
        self.simnet = simnet
        if simnet is not None:
            simnet.setServiceParent(self)
        self.crawl = CrawlLoopService(options, reactor, self.books, self.outcome,
                                      simnet=self.simnet, simnet_routes=simnet_routes)
        self.crawl.setServiceParent(self)

    def exit_code(self):
        """EXIT_FAILED, EXIT_BOOK_INCOMPLETE or 0."""
        if self.outcome.failed:
            return EXIT_FAILED
        if self.outcome.book_incomplete or self.books.lost:
            return EXIT_BOOK_INCOMPLETE
        return 0


class CrawlLoopService(Service):
    """
    Runs crawls with the book of ``books`` (an AddressBookService, started
    before): discover, crawl, write the snapshot, record the crawl, and
    either wait --interval and go again or stop the reactor.  Faults go to
    ``outcome``.  ``simnet`` (a started SimNetRunner) adds its seeds, and
    ``simnet_routes()`` its overlay fronts (see CrawlApplication).
    """

    log = logger()

    def __init__(self, options, reactor, books, outcome, *, simnet=None, simnet_routes=None):
        self.options = options
        self.reactor = reactor
        self.books = books
        self.outcome = outcome
        self.simnet = simnet
        self.simnet_routes = simnet_routes
        self.crawler = None
        self._running = None
        self._finished = OneShot()
        self._waiting = None

    def startService(self):
        super().startService()
        self._running = ensureDeferred(self._main())
        self._running.addErrback(self.outcome.cannot_run)
        self._running.addBoth(self._finished.fire)

    def stopService(self):
        """Stop the crawl (or the wait for the next); a Deferred that fires
        once the crawl has wound down, its last verdicts handed to the book."""
        super().stopService()
        if self.crawler is not None:
            self.crawler.stop()
        if self._waiting is not None:
            self._waiting.cancel()
        return self.whenDone() if self._running is not None else None

    def whenDone(self):
        """A Deferred that fires when the crawl loop has ended (its last
        crawl done, or stopped, or failed), for as many callers as ask."""
        return self._finished.when()

    @property
    def book(self):
        return self.books.book

    async def _main(self):
        options, reactor = self.options, self.reactor
        crawl_options, seeds, resolver = await self._prepare()
        while self.running:
            began = reactor.seconds()
            await self._crawl_once(crawl_options, seeds, resolver)
            if not self.running or not options["interval"]:
                break
            # --interval is the time from one crawl's start to the next's.
            self._waiting = deferLater(
                reactor, max(0.0, began + options["interval"] - reactor.seconds()))
            try:
                await self._waiting
            except CancelledError:
                return
            finally:
                self._waiting = None
        if self.running:
            stop_reactor(reactor)

    async def _prepare(self):
        """The crawl options the open-file limit allows, the seeds, our
        external address (if asked for) and the resolver."""
        options, reactor = self.options, self.reactor
        network = options["network"]
        crawl_options = affordable(options)
        if options["concurrency"] is None:
            self.log.info("{n} connections at once (what the open-file limit allows, "
                          "at most {cap})", n=crawl_options.concurrency, cap=DEFAULT_CONCURRENCY)
        elif crawl_options.concurrency < options["crawl"].concurrency:
            self.log.warn(
                "the open-file limit allows {n} connections at once, not {wanted}: "
                "crawling with {n} (raise 'ulimit -n' for more)",
                n=crawl_options.concurrency, wanted=options["crawl"].concurrency,
            )
        seeds = list(options["seeds"])
        if self.simnet is not None:
            seeds += self.simnet.seeds()
            self.log.info("simnet: {nodes} nodes, {dead} dead addresses on loopback",
                          nodes=self.simnet.truth["counts"]["nodes"],
                          dead=options["simnet-dead"])
        if self.simnet_routes is not None:
            routes = {k: v for k, v in self.simnet_routes().items() if v}
            crawl_options = attr.evolve(crawl_options, **routes)
        if options["external-ip-url"]:
            try:
                ip = await fetch_external_ip(options["external-ip-url"], reactor=reactor)
                self.log.info("external address (HTTP): {ip}", ip=ip)
            except Exception as error:
                self.log.warn("external address lookup failed: {error}", error=error)
        discovery = options["discovery"]
        resolver = None
        if discovery.needs_resolver(network, seeds):
            # Never built otherwise: with --dnsseed 0 and no host name, no lookup.
            resolver = make_resolver([options["dns-server"]] if options["dns-server"] else None,
                                     reactor=reactor)
        # The operator's seeds (a simnet's own are in its line above).
        self.log.info("{sources}", sources=discovery.describe(network, options["seeds"]))
        return crawl_options, seeds, resolver

    async def _crawl_once(self, crawl_options, seeds, resolver):
        """One crawl: discover, crawl (or resume), snapshot, record."""
        options, reactor = self.options, self.reactor
        network = options["network"]
        # A --simnet crawl's network is new, on new ports: the addresses a
        # --db book holds from another run's simnet lead nowhere.
        rows, crawls = ([], []) if options["simnet"] else await self._from_book()
        in_book = [k for k in rows if _dialable(k.address, crawl_options.allow_private)]
        known = [k.address for k in in_book]
        # What the book can give this crawl: addresses it will dial.
        usable = [k for k in in_book if crawl_options.not_dialled_reason(k.address) is None]
        # The operator's seeds are never left out, whatever the book says of them.
        history = dial_plan(usable, crawls, network.name, options["history"], keep=seeds)
        found = await discover(network, resolver, options=options["discovery"],
                               extra=seeds, known=len(usable),
                               good=sum(k.successes > 0 for k in usable), clock=reactor)
        start = list(found.addresses) + known
        if not start:
            self.log.warn(
                "no address to start from: the address book is empty, and no seed, DNS "
                "seed or fixed seed gave one; give --seed HOST[:PORT] or --seeds-file FILE"
            )
        if not self.running:
            return  # stopped while discovering
        crawl_id, settled = await self._begin(network)
        if not self.running:
            return  # stopped while the book was asked: the crawl is resumed next time
        book = self.book if crawl_id is not None else None
        self.log.info(
            "{verb} a crawl of {network} from {seeds} addresses "
            "({book} from the address book)",
            verb="resuming" if settled else "starting", network=network.name,
            seeds=len(set(start)), book=len(known),
        )
        self.crawler = Crawler(reactor, network, start, options=crawl_options,
                               peer_options=options["peer"], book=book,
                               crawl_id=crawl_id, settled=settled, history=history)
        encoded = EncodedNodes()
        ahead = LoopingCall(_encode_ahead, self.crawler, encoded)
        ahead.clock = reactor
        ahead.start(ENCODE_AHEAD_EVERY, now=False).addErrback(
            lambda failure: self.log.failure(
                "encoding nodes ahead of the snapshot failed; they are encoded "
                "as it is written", failure))
        try:
            result = await self.crawler.run()
        finally:
            if ahead.running:
                ahead.stop()
        self.crawler = None
        if not self.running:
            # Stopped midway: the book keeps every attempt made, and the
            # crawl stays unfinished in it; the next start resumes it.
            self.log.info("crawl interrupted; the address book keeps what it learnt, "
                          "and the next start resumes the crawl")
            return
        params = crawl_params(options, crawl_options)
        summary = summarize(result, params)
        # The snapshot comes from the crawl itself, whatever the book does.
        try:
            written = write_snapshot(result, options["out"], summary, encoded,
                                     unreachable=True, latest=True)
            paths = (*written, written.unreachable)
        except SnapshotError as error:
            self.log.error("the crawl's snapshot could not be written: {error}", error=error)
            self.outcome.failed = True
            paths = ()
        recorded = crawl_id is not None and await self._record(crawl_id, summary,
                                                               reactor.seconds())
        self._warn(result, crawl_options)
        self.log.info(
            "crawl done in {elapsed:.1f} s: {reachable} reachable, {unreachable} "
            "unreachable, {not_dialled} not dialled{resumed}; snapshot: {files}; "
            "address book: {book}",
            elapsed=result.elapsed, reachable=len(result.reachable),
            unreachable=len(result.unreachable), not_dialled=len(result.not_dialled),
            resumed=f" ({result.resumed} from the interrupted run)" if result.resumed else "",
            files=", ".join(paths) or "none written", book=self._book_text(recorded),
        )
        self.log.info("by network: {networks}", networks="; ".join(
            f"{name} {n['reachable']} reachable, {n['unreachable']} unreachable, "
            f"{n['not_dialled']} not dialled"
            for name, n in summary["by_network"].items()
            if n["reachable"] or n["unreachable"] or n["not_dialled"]) or "nothing met")
        self._say_pace(summary)

    def _say_pace(self, summary):
        """One line on how fast the census filled and the connect timeout
        it ran with: what the tail after the last node found cost."""
        marks, connect = summary["discovery"], summary["timeouts"]["connect"]
        learnt = connect["learnt"]
        timeout = (f"connect timeout learnt: {learnt:g} s (configured {connect['configured']:g} s, "
                   f"p99 connect {connect['p99']:g} s of {connect['samples']})"
                   if learnt is not None else
                   f"connect timeout {connect['configured']:g} s (not learnt: "
                   f"{connect['samples']} connects)")
        found = (f"90% of the reachable nodes found at {marks['to_90']:g} s, 99% at "
                 f"{marks['to_99']:g} s, all at {marks['to_100']:g} s"
                 if marks["reachable"] else "no reachable node found")
        self.log.info("pace: {found}; {timeout}", found=found, timeout=timeout)

    async def _begin(self, network):
        """
        The crawl to run: the book's unfinished crawl of this network,
        resumed with the verdicts it holds, or a new one.  A --simnet crawl
        never resumes (the network it crawled is gone with its process),
        nor does one started with --fresh: the unfinished crawl is closed
        as abandoned.
        """
        try:
            return await self._begin_in_book(network)
        except AddressBookError as error:
            # A storage fault (a full disk): this crawl still runs and
            # gets its snapshot; only the book does without it.
            self.log.error("the address book {path} cannot record a new crawl: {error}; "
                           "crawling without it", path=self.options["db"], error=error)
            self.outcome.book_incomplete = True
            return None, None

    async def _begin_in_book(self, network):
        """_begin's work, in the book."""
        book, options, now = self.book, self.options, self.reactor.seconds()
        unfinished = await book.unfinished_crawl(network.name)
        if unfinished is not None:
            if options["fresh"] or options["simnet"]:
                why = "--fresh" if options["fresh"] else "its simulated network is gone"
                await book.abandon_crawl(unfinished.id, now, why)
                self.log.info("crawl {id} was left unfinished; closed as abandoned ({why})",
                              id=unfinished.id, why=why)
            else:
                settled = Settled.from_verdicts(await book.verdicts(unfinished.id))
                self.log.info(
                    "crawl {id} was left unfinished: resuming it, {n} addresses already "
                    "settled are not dialled again (--fresh starts over)",
                    id=unfinished.id, n=len(settled))
                return unfinished.id, settled
        crawl_id = await book.start_crawl(network.name, crawl_params(options), now)
        return crawl_id, None

    async def _record(self, crawl_id, summary, now):
        """Write the crawl's end to the book; False (said in one line) if
        the book could not keep it.  The snapshot has it all the same."""
        try:
            await self.book.flush()
            await self.book.finish_crawl(crawl_id, summary, now)
        except AddressBookError as error:
            self.log.error(
                "the address book {path} could not record the end of this crawl: {error}; "
                "the snapshot holds the whole result", path=self.options["db"], error=error)
            self.outcome.book_incomplete = True
            return False
        return True

    async def _from_book(self):
        """The book's addresses and crawls, or none when the book cannot be
        read now (a storage fault, said in one line): a crawl goes on from
        its seeds; without its crawls, from its addresses with no dead one
        left out."""
        try:
            known = await self.book.known()
        except AddressBookError as error:
            self.log.error("the address book {path} cannot be read: {error}; "
                           "crawling from the seeds alone", path=self.options["db"],
                           error=error)
            return [], []
        try:
            return known, await self.book.crawls()
        except AddressBookError as error:
            self.log.error("the address book {path} cannot list its crawls: {error}; "
                           "its addresses are dialled, none left out as dead",
                           path=self.options["db"], error=error)
            return known, []

    def _book_text(self, recorded):
        """How the final line names the address book."""
        db = self.options["db"]
        if db is None:
            return "in memory only (give --db PATH to keep it)"
        return db if recorded else f"{db} (incomplete, see above)"

    def _warn(self, result, crawl_options):
        """Say what the user can fix: gossip dropped as unroutable."""
        dropped = result.filtered.get("unroutable", 0)
        if dropped and not crawl_options.allow_private:
            self.log.warn(
                "{n} gossiped addresses were private, loopback or otherwise unroutable and "
                "were not dialled; to crawl a private or test network, add --allow-private",
                n=dropped,
            )


def _encode_ahead(crawler, encoded):
    """Encode nodes for the snapshot once nothing is pending: the crawl then
    only waits for what is in flight, most of it dials that will time out."""
    if not crawler.pending_count:
        encoded.catch_up(crawler.reachable, ENCODE_AHEAD_BATCH)


def _dialable(address, allow_private):
    """Whether an address from the book may be dialled in this crawl."""
    return address.is_valid() and (allow_private or address.is_routable())


async def check_book_network(book, path, network):
    """Refuse a book that holds another network's crawls."""
    others = {c["network"] for c in await book.crawls()} - {network.name}
    if others:
        raise ValueError(
            f"{path} holds crawls of {', '.join(sorted(others))}, not {network.name}: "
            "give this network its own --db"
        )


def crawl_params(options, crawl=None):
    """The options worth recording with each crawl in the database;
    ``crawl``, the CrawlOptions the crawl ran with (the open-file limit's
    concurrency), when known."""
    crawl = crawl if crawl is not None else options["crawl"]
    learning = crawl.timeout_learning
    return {
        "network": options["network"].name,
        "concurrency": crawl.concurrency,
        "getaddr_fraction": crawl.getaddr_fraction,
        "max_age": crawl.max_age,
        "connect_timeout": crawl.connect_timeout,
        "connect_timeout_floor": learning.floor if learning is not None else None,
        "onion_proxies": [endpoint_text(e) for e in crawl.onion_proxies],
        "proxy": crawl.proxy and endpoint_text(crawl.proxy),
        "i2p_sam": crawl.i2p_sam and endpoint_text(crawl.i2p_sam),
        "cjdns_reachable": crawl.cjdns_reachable,
        "dead_after": options["history"].dead_after,
        "retry_dead_every": options["history"].retry_dead_every,
        "simnet": options["simnet"],
        # As typed, escaped: an argument need not be UTF-8.
        "argv": [escape(argument) for argument in sys.argv[1:]],
    }
