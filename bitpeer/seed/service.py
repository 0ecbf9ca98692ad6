"""
The services of ``twistd bitpeer-seed``, and how they are put together.

SeedApplication is a ServiceStack (bitpeer.application) of, in start order:

1. the address book (bitpeer.store.service.AddressBookService), checked to
   hold no other network's crawls: the crawler's book serves the seeder;
2. with --simnet N, the simulated network, as for ``bitpeer-crawl``;
3. the DNS server (bitpeer.seed.dns.DNSService), given by the tap: bound
   before anything is dialled, so that a port in use stops the seeder
   first (it answers with no address until the sample is filled);
4. the monitor (bitpeer.seed.monitor.MonitorService): loads the windows,
   then tests every address on its schedule;
5. SampleService: refreshes the sample the DNS server answers from with
   the good nodes (at start, when the monitor's first crawl is over, and
   every REFRESH_INTERVAL seconds), and logs the seeder's health (known,
   tested in the last hour, good per network, the age of the sample),
   warning when the good nodes fall under --min-good.

A fault on the way up is one line (``the seeder cannot run: ...``) and
exit status 1.  They stop in reverse: the sample, the monitor (its last
windows reach the book), the DNS server, the simnet, the book.
"""

from twisted.application.service import Service
from twisted.internet.error import CannotListenError
from twisted.internet.task import LoopingCall

from ..application import ServiceStack, end_run
from ..crawl.service import EXIT_FAILED, EXPECTED_FAULTS, check_book_network
from ..logs import logger
from ..store.service import AddressBookService
from .monitor import MonitorService
from .sample import Candidate

#: Seconds between refreshes of the served sample and health lines.
REFRESH_INTERVAL = 300.0

#: Faults a user can fix: the crawl's, and a DNS port taken or not ours.
SEED_FAULTS = (*EXPECTED_FAULTS, CannotListenError)


class SeedApplication(ServiceStack):
    """
    The book, the simnet (with --simnet), the monitor, the sample and the
    DNS server, for ``options`` (bitpeer.seed.tap.Options); see the
    module's docstring.  ``watch`` is the monitor's Watch, ``sample`` the
    ServedSample both SampleService and ``dns`` (the DNS service, or None)
    use.  ``exit_code()`` is the status the run ends with.
    """

    log = logger()

    def __init__(self, options, reactor, watch, sample, *, dns=None, simnet=None,
                 simnet_routes=None, clock=None):
        super().__init__(self._cannot_run)
        self.reactor = reactor
        self.failed = False
        network = options["network"]

        async def same_network(book):
            await check_book_network(book, options["db"], network)

        self.books = AddressBookService(options["db"], reactor, checks=[same_network])
        self.books.setServiceParent(self)
        self.simnet = simnet
        if simnet is not None:
            simnet.setServiceParent(self)
        self.dns = dns
        if dns is not None:
            dns.setServiceParent(self)
        self.sample = SampleService(watch, sample, min_good=options["min-good"],
                                    clock=clock if clock is not None else reactor,
                                    ready=lambda: self.monitor.settled)
        # The first crawl's good nodes are served as soon as it is over.
        self.monitor = MonitorService(options, reactor, self.books, watch, self._cannot_run,
                                      simnet=simnet, simnet_routes=simnet_routes,
                                      on_settled=self.sample.refresh, clock=clock)
        self.monitor.setServiceParent(self)
        self.sample.setServiceParent(self)

    def _cannot_run(self, failure):
        """A fault that ends the run: one line if the user can fix it, a
        traceback if it is a bug; then stop the reactor."""
        self.failed = True
        end_run(self.reactor, self.log, failure, SEED_FAULTS, "the seeder")

    def exit_code(self):
        """EXIT_FAILED when the seeder could not run or lost windows, else 0."""
        return EXIT_FAILED if self.failed or self.books.lost else 0


class SampleService(Service):
    """
    Every ``interval`` seconds: refresh ``sample`` (a ServedSample) with the
    good nodes of ``watch``, and log the health line; once ``ready()`` (the
    monitor's first crawl is over), warn when fewer than ``min_good`` nodes
    are good (a seed serving too few addresses is the failure users see
    first).
    """

    log = logger()

    def __init__(self, watch, sample, *, min_good, clock, ready=lambda: True,
                 interval=REFRESH_INTERVAL):
        self.watch = watch
        self.sample = sample
        self.min_good = min_good
        self.clock = clock
        self.ready = ready
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = clock
        self._interval = interval

    def startService(self):
        super().startService()
        self._loop.start(self._interval, now=True)

    def stopService(self):
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def refresh(self):
        """Serve the good nodes as they are now, and say how things stand."""
        now = self.clock.seconds()
        before = (f"{len(self.sample)} addresses, {now - self.sample.refreshed:.0f} s old"
                  if self.sample.refreshed is not None else "none yet")
        self.sample.refresh([Candidate(address, services or 0)
                             for address, services in self.watch.good_nodes()])
        known, recent, by_network = self.watch.health(now)
        good = sum(by_network.values())
        self.log.info(
            "seeder: {known} known, {recent} tested in the last hour, {good} good "
            "({networks}); sample served: {before}, now {served} addresses",
            known=known, recent=recent, good=good,
            networks=", ".join(f"{name} {n}" for name, n in sorted(by_network.items()))
            or "none", before=before, served=len(self.sample))
        if good < self.min_good and self.ready():
            self.log.warn(
                "only {good} good nodes, under --min-good {floor}: the seed serves few "
                "addresses; check the network, the proxies, --min-height", good=good,
                floor=self.min_good)
