"""
The DNS seeder's monitor: test every known address again and again, with
the crawler's own dialling, and keep what the tests show.

When it starts, the monitor loads the book's addresses and their windows
(bitpeer.seed.watch.Watch).  If the seeder has never tested anything in
this book, its first round is a whole crawl (the crawl's discovery: the
operator's seeds, the book, DNS and fixed seeds), which fills the book and
the windows.  From then on each round takes the addresses due (at most
``round_size``, the longest overdue first) and tests them with a
bitpeer.crawl.crawler.Crawler that does not dial the gossip it hears: the
gossip goes to the book and to the watch, where a new address is due at
once, so the next round tests it.  The nodes whose last success is more
than a day old are asked for addresses (sipa's seeder's rule), in a crawl
of their own before the others, which are not.

Concurrency, timeouts and proxies are the crawl's options: every network
the crawl reaches, the monitor tests.  The tests are a seeder's run in the
book (``crawls.status`` ``seeding``, see AddressBook.start_seeding), whose
observations they are: ``twistd bitpeer-crawl`` never resumes a run, so a
monitor stopped midway leaves no crawl for it to take over.  After each
round the changed windows are written to the book.
"""

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.task import deferLater

from ..crawl.crawler import ENTRY_ADDRESS, Crawler
from ..crawl.discovery import discover, make_resolver
from ..crawl.service import affordable, crawl_params
from ..logs import logger
from ..oneshot import OneShot
from ..store.addrbook import AddressBookError
from ..store.bookschema import REACHABLE
from ..wire.address import NetworkAddress

#: Addresses tested in one round at most (the crawl's concurrency bounds
#: how many at once).
DEFAULT_ROUND_SIZE = 5000
#: Longest wait between rounds: when nothing is due, the monitor sleeps
#: until the first address is, but no longer than this.
IDLE = 60.0


class MonitorService(Service):
    """
    Tests the addresses of ``watch`` (a Watch) in rounds, with the crawl
    options of ``options`` (bitpeer.seed.tap.Options) and the book of
    ``books`` (an AddressBookService started before).  ``simnet``, with
    ``simnet_routes``, is the simulated network to test (as for
    bitpeer.crawl.service.CrawlLoopService).  ``on_fault`` is given a
    Failure that stops the monitor; ``on_settled()`` is called once the
    first crawl is over.  ``rounds`` counts the rounds done.
    """

    log = logger()

    def __init__(self, options, reactor, books, watch, on_fault, *, simnet=None,
                 simnet_routes=None, round_size=DEFAULT_ROUND_SIZE, on_settled=None,
                 clock=None):
        self.options = options
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.books = books
        self.watch = watch
        self.on_fault = on_fault
        self.simnet = simnet
        self.simnet_routes = simnet_routes
        self.round_size = round_size
        self.on_settled = on_settled
        self.run_id = None
        self.crawler = None
        self.rounds = 0
        #: The first crawl is over (or was not needed): the good set means
        #: something.
        self.settled = False
        self._running = None
        self._waiting = None
        self._finished = OneShot()

    @property
    def book(self):
        return self.books.book

    def startService(self):
        """Load the book into the watch and record the run; the rounds
        then go on in the background."""
        super().startService()
        return ensureDeferred(self._load()).addCallback(self._go)

    async def _load(self):
        self.watch.load(await self.book.seed_state())
        self.run_id = await self.book.start_seeding(
            self.options["network"], crawl_params(self.options), self.clock.seconds())
        self.log.info("the seeder knows {known} addresses, {good} of them good",
                      known=len(self.watch), good=len(self.watch.good))

    def _go(self, _):
        self._running = ensureDeferred(self._main())
        self._running.addErrback(self.on_fault)
        self._running.addBoth(self._finished.fire)

    def stopService(self):
        """Stop the round under way; once it has wound down, keep the
        windows and end the run in the book."""
        super().stopService()
        if self.crawler is not None:
            self.crawler.stop()
        if self._waiting is not None:
            self._waiting.cancel()
        return ensureDeferred(self._stop())

    async def _stop(self):
        if self._running is not None:
            await self._finished.when()
        if self.run_id is not None and self.book is not None:
            await self._save()
            try:
                await self.book.end_seeding(self.run_id, self.clock.seconds())
            except AddressBookError as error:
                self.log.error("the address book could not record the seeder's end: {error}",
                               error=error)

    async def _main(self):
        crawl_options = self._crawl_options()
        for seed in self._seeds():
            # The operator's (and a simnet's) seeds are tested promptly,
            # even in a book that knows the network already; a host name is
            # resolved by the first crawl's discovery only.
            if isinstance(seed, NetworkAddress):
                self.watch.learn(seed)
        if not self.watch.tested_any:
            await self._first_crawl(crawl_options)
        self.settled = True
        if self.on_settled is not None:
            self.on_settled()
        retest = attr.evolve(crawl_options, follow_gossip=False)
        while self.running:
            now = self.clock.seconds()
            due = self.watch.due(now, self.round_size)
            if due:
                await self._round(due, retest, now)
                continue
            first = self.watch.next_due()
            pause = IDLE if first is None else min(IDLE, max(0.0, first - now))
            self._waiting = deferLater(self.clock, pause)
            try:
                await self._waiting
            except CancelledError:
                return
            finally:
                self._waiting = None

    def _crawl_options(self):
        """The crawl's options as the open-file limit allows, routed to the
        simnet's proxies when it has them."""
        crawl_options = affordable(self.options)
        if self.simnet_routes is not None:
            routes = {k: v for k, v in self.simnet_routes().items() if v}
            crawl_options = attr.evolve(crawl_options, **routes)
        return crawl_options

    async def _first_crawl(self, crawl_options):
        """A whole crawl from the crawl's discovery and the book."""
        options = self.options
        network, discovery = options["network"], options["discovery"]
        seeds = self._seeds()
        resolver = None
        if discovery.needs_resolver(network, seeds):
            resolver = make_resolver(
                [options["dns-server"]] if options["dns-server"] else None, reactor=self.reactor)
        known = list(self.watch.next_try)
        found = await discover(network, resolver, options=discovery, extra=seeds,
                               known=len(known), good=len(self.watch.good), clock=self.reactor)
        if not self.running:
            return  # stopped while discovering
        start = list(found.addresses) + known
        self.log.info("first crawl of {network} from {n} addresses, before the tests",
                      network=network.name, n=len(set(start)))
        await self._crawl(start, crawl_options)
        await self._save()

    def _seeds(self):
        """The operator's seeds and the simnet's."""
        seeds = list(self.options["seeds"])
        if self.simnet is not None:
            seeds += self.simnet.seeds()
        return seeds

    async def _round(self, due, options, now):
        """Test ``due``: those to ask for addresses first, then the rest.
        An address no path of the crawl dials (its network left out, or
        without its proxy) is skipped at once."""
        ask, quiet = [], []
        for address in due:
            if options.not_dialled_reason(address) is not None:
                self.watch.skipped(address, now)
            elif self.watch.wants_addresses(address, now):
                ask.append(address)
            else:
                quiet.append(address)
        for group, fraction in ((ask, 1.0), (quiet, 0.0)):
            if group and self.running:
                await self._crawl(group, attr.evolve(options, getaddr_fraction=fraction))
        self.rounds += 1
        await self._save()

    async def _crawl(self, addresses, crawl_options):
        options = self.options
        self.crawler = Crawler(self.reactor, options["network"], addresses,
                               options=crawl_options, peer_options=options["peer"],
                               book=_Observed(self.book, self.watch), crawl_id=self.run_id,
                               clock=self.clock)
        try:
            result = await self.crawler.run()
        finally:
            self.crawler = None
        if not result.stopped:
            # Not dialled (no proxy for its network, a proxy down, an
            # invalid seed): tried again later, not in the next round.
            tested = result.reachable.keys() | result.unreachable.keys()
            for address in set(addresses) - tested:
                self.watch.skipped(address, result.finished)

    async def _save(self):
        """Write the windows changed since the last save; on a storage
        fault, keep them for the next (said in one line)."""
        records = self.watch.take_changed()
        if not records:
            return
        try:
            await self.book.save_reliability(records)
        except AddressBookError as error:
            self.watch.give_back(records)
            self.log.error("the address book could not keep {n} addresses' windows: {error}; "
                           "they are written with the next round's", n=len(records),
                           error=error)


class _Observed:
    """
    The book as a monitor's Crawler sees it: every gossiped address is
    also learnt by the watch, and every test updates its windows (before
    the book takes it, so that a book closed under a stopping round costs
    the watch nothing).
    """

    def __init__(self, book, watch):
        self.book = book
        self.watch = watch

    def gossip(self, entries, source, now):
        learn = self.watch.learn
        for entry in entries:
            learn(entry[ENTRY_ADDRESS])
        self.book.gossip(entries, source, now)

    def attempt(self, crawl_id, address, outcome, *, info=None, now, **details):
        self.watch.tested(address, outcome == REACHABLE, info, now)
        self.book.attempt(crawl_id, address, outcome, info=info, now=now, **details)
