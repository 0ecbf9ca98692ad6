"""
The services bitpeer-crawl is composed of, with fakes: bitpeer.application
(ServiceStack, Precondition), bitpeer.store.service (AddressBookService)
and bitpeer.crawl.service (CrawlApplication, CrawlLoopService).
Whole crawls against a SimNet are in test_tap.
"""

import glob
import os
import shutil
import tempfile

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import ReactorNotRunning
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.application import Precondition, ServiceStack
from bitpeer.crawl.service import (
    EXIT_FAILED,
    CrawlLoopService,
    Outcome,
)
from bitpeer.crawl.tap import Options, crawl_application
from bitpeer.store.bookcheck import EntriesLost, NotAnAddressBook
from bitpeer.store.service import AddressBookService


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options


def running_reactor():
    """A MemoryReactorClock that says it runs, as twistd's does once started."""
    reactor = MemoryReactorClock()
    reactor.running = True
    return reactor


class FakeBook:
    """An AddressBook whose open and close wait for the test, and which
    records what the crawl loop asks of it."""

    def __init__(self, path, reactor, *, close_at_shutdown=True):
        self.path, self.reactor = path, reactor
        self.close_at_shutdown = close_at_shutdown
        self.opening, self.closing = defer.Deferred(), defer.Deferred()
        self.calls = []

    def open(self):
        self.calls.append("open")
        return self.opening

    def close(self):
        self.calls.append("close")
        return self.closing

    def crawls(self):
        return defer.succeed([{"network": "simnet"}])

    def _asked(self, name, result=None):
        self.calls.append(name)
        return defer.succeed(result)

    def known(self):
        return self._asked("known", [])

    def unfinished_crawl(self, network):
        return self._asked("unfinished_crawl")

    def start_crawl(self, network, params, now):
        return self._asked("start_crawl", 1)

    def flush(self):
        return self._asked("flush")

    def finish_crawl(self, crawl_id, summary, now):
        return self._asked("finish_crawl")


class Recorder(Service):
    """A child that records its start and stop in ``events``; its start and
    stop return ``starting`` and ``stopping`` (None: done at once)."""

    def __init__(self, name, events, starting=None, stopping=None):
        self.name, self.events = name, events
        self.starting, self.stopping = starting, stopping

    def startService(self):
        super().startService()
        self.events.append(("start", self.name))
        return self.starting

    def stopService(self):
        super().stopService()
        self.events.append(("stop", self.name))
        return self.stopping


class ServiceStackTests(SynchronousTestCase):
    """Children started one after another, stopped in reverse one after another."""

    def setUp(self):
        self.events, self.faults = [], []
        self.stack = ServiceStack(self.faults.append)

    def child(self, name, **kwargs):
        child = Recorder(name, self.events, **kwargs)
        child.setServiceParent(self.stack)
        return child

    def test_start_waits_for_each_child(self):
        opening = defer.Deferred()
        self.child("book", starting=opening)
        self.child("crawl")
        self.stack.startService()
        self.assertEqual(self.events, [("start", "book")])
        opening.callback(None)
        self.assertEqual(self.events, [("start", "book"), ("start", "crawl")])

    def test_stop_waits_for_each_child_in_reverse(self):
        """The book closes only once the crawl has wound down (MultiService
        would stop both at once)."""
        winding = defer.Deferred()
        self.child("book")
        self.child("simnet")
        self.child("crawl", stopping=winding)
        self.stack.startService()
        stopped = self.stack.stopService()
        self.assertEqual(self.events[3:], [("stop", "crawl")])
        self.assertNoResult(stopped)
        winding.callback(None)
        self.assertEqual(self.events[3:], [("stop", "crawl"), ("stop", "simnet"),
                                           ("stop", "book")])
        self.successResultOf(stopped)

    def test_failed_start_stops_the_start(self):
        """A child that cannot start: on_fault has its Failure, the later
        children never start, and those started (it too) are stopped."""
        self.child("book", starting=defer.fail(NotAnAddressBook("x is not a book")))
        crawl = self.child("crawl")
        self.stack.startService()
        (fault,) = self.faults
        self.assertTrue(fault.check(NotAnAddressBook))
        self.assertFalse(crawl.running)
        self.successResultOf(self.stack.stopService())
        self.assertEqual(self.events, [("start", "book"), ("stop", "book")])

    def test_stop_while_starting(self):
        """Stopped while a child starts: the next one never starts, and the
        stop waits for the start in progress before stopping it."""
        opening = defer.Deferred()
        self.child("book", starting=opening)
        self.child("crawl")
        self.stack.startService()
        stopped = self.stack.stopService()
        self.assertNoResult(stopped)
        opening.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(self.events, [("start", "book"), ("stop", "book")])

    def test_a_failing_stop_does_not_keep_the_others_running(self):
        self.child("book")
        self.child("crawl", stopping=defer.fail(RuntimeError("bug")))
        self.stack.startService()
        self.successResultOf(self.stack.stopService())
        self.assertEqual(self.events[2:], [("stop", "crawl"), ("stop", "book")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_failing_fault_handler_does_not_keep_the_others_running(self):
        """A fault in reporting a child's fault is logged, and the children
        started are still stopped."""
        def broken(failure):
            raise RuntimeError("the handler itself failed")

        self.stack = ServiceStack(broken)
        self.child("book")
        starting = defer.Deferred()
        self.child("simnet", starting=starting)
        self.stack.startService()
        starting.errback(ValueError("cannot bind"))
        self.successResultOf(self.stack.stopService())
        self.assertEqual(self.events, [("start", "book"), ("start", "simnet"),
                                       ("stop", "simnet"), ("stop", "book")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_precondition(self):
        def refuse():
            raise OSError("read-only file system")

        Precondition(refuse).setServiceParent(self.stack)
        later = self.child("simnet")
        self.stack.startService()
        self.assertTrue(self.faults[0].check(OSError))
        self.assertFalse(later.running)


class AddressBookServiceTests(SynchronousTestCase):
    """The book is opened and checked at start, closed at stop."""

    def service(self, path="book.sqlite", checks=()):
        self.books = []

        def factory(*args, **kwargs):
            self.books.append(FakeBook(*args, **kwargs))
            return self.books[-1]

        return AddressBookService(path, MemoryReactorClock(), checks=checks,
                                  book_factory=factory)

    def test_opens_then_checks_then_closes(self):
        checked = []

        async def check(book):
            checked.append(book)

        service = self.service(checks=[check])
        started = service.startService()
        (book,) = self.books
        self.assertEqual(book.path, os.path.abspath("book.sqlite"))
        # Closed by the service, after what writes to it, not at shutdown.
        self.assertFalse(book.close_at_shutdown)
        self.assertEqual(checked, [])
        book.opening.callback(book)
        self.assertEqual(checked, [book])
        self.successResultOf(started)
        self.assertIs(service.book, book)
        stopped = service.stopService()
        self.assertNoResult(stopped)
        book.closing.callback(None)
        self.successResultOf(stopped)
        self.assertEqual((book.calls, service.book, service.lost), (["open", "close"], None,
                                                                    False))

    def test_in_memory(self):
        self.service(path=None).startService()
        self.assertEqual(self.books[0].path, ":memory:")

    def test_check_refuses(self):
        async def refuse(book):
            raise ValueError("book.sqlite holds crawls of testnet4, not simnet")

        service = self.service(checks=[refuse])
        started = service.startService()
        self.books[0].opening.callback(None)
        self.failureResultOf(started, ValueError)
        # Opened, so closed with the service.
        service.stopService()
        self.assertEqual(self.books[0].calls, ["open", "close"])

    def test_last_flush_lost(self):
        """The close lost what the book held (it said so itself): ``lost``."""
        service = self.service()
        service.startService()
        self.books[0].opening.callback(None)
        stopped = service.stopService()
        self.books[0].closing.errback(EntriesLost("12 entries lost", 12, "entries"))
        self.successResultOf(stopped)
        self.assertTrue(service.lost)


class CrawlApplicationTests(SynchronousTestCase):
    """Faults at start: one line, a failing status, nothing else started."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)

    def errors(self):
        return [formatEvent(e) for e in self.events
                if e.get("log_level") in (LogLevel.error, LogLevel.critical)]

    def test_book_fault_is_one_line_and_a_failing_status(self):
        reactor = running_reactor()
        app = crawl_application(parse("--simnet", "10", "--out", self.out), reactor)
        book = FakeBook(":memory:", reactor)
        app.books.book_factory = lambda *args, **kwargs: book
        app.startService()
        book.opening.errback(NotAnAddressBook("book.sqlite is not a SQLite database"))
        self.assertEqual(self.errors(),
                         ["the crawl cannot run: book.sqlite is not a SQLite database"])
        self.assertEqual(app.exit_code(), EXIT_FAILED)
        self.assertTrue(reactor.hasStopped)
        # Nothing after the book was started: no simnet bound, no crawl.
        self.assertIsNone(app.simnet.simnet)
        self.assertFalse(app.crawl.running)
        stopped = app.stopService()
        book.closing.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(book.calls, ["open", "close"])

    def test_book_fault_during_shutdown_still_closes_the_book(self):
        """SIGTERM while the book opens, then the open fails: the reactor is
        already stopping (its stop() would raise ReactorNotRunning); the
        fault is still one line, and the book is still closed."""
        reactor = running_reactor()
        app = crawl_application(parse("--simnet", "10", "--out", self.out), reactor)
        book = FakeBook(":memory:", reactor)
        app.books.book_factory = lambda *args, **kwargs: book
        app.startService()
        reactor.stop()  # twistd's SIGTERM handler
        # As a real reactor's: it runs the shutdown triggers, and refuses a
        # second stop.
        reactor.running = True

        def stop_again():
            raise ReactorNotRunning("Can't stop reactor that isn't running.")

        reactor.stop = stop_again
        stopped = app.stopService()
        book.opening.errback(NotAnAddressBook("book.sqlite is not a SQLite database"))
        book.closing.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(self.errors(),
                         ["the crawl cannot run: book.sqlite is not a SQLite database"])
        self.assertEqual(book.calls, ["open", "close"])
        self.assertEqual(app.exit_code(), EXIT_FAILED)

    def test_book_of_another_network(self):
        reactor = running_reactor()
        app = crawl_application(parse("--network", "testnet4", "--db", "book.sqlite",
                                     "--out", self.out), reactor)
        book = FakeBook("book.sqlite", reactor)
        app.books.book_factory = lambda *args, **kwargs: book
        app.startService()
        book.opening.callback(None)
        (line,) = self.errors()
        self.assertEqual(line, "the crawl cannot run: book.sqlite holds crawls of simnet, "
                               "not testnet4: give this network its own --db")
        self.assertEqual(app.exit_code(), EXIT_FAILED)


class CrawlLoopTests(SynchronousTestCase):
    """The crawl loop with a fake book and nothing to dial."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)
        self.reactor = running_reactor()
        self.book = FakeBook("book.sqlite", self.reactor)
        books = Service()
        books.book = self.book
        self.outcome = Outcome(self.reactor)
        options = parse("--network", "regtest", "--dnsseed", "0", "--fixed-seeds", "never",
                        "--db", "book.sqlite", "--out", self.out)
        self.loop = CrawlLoopService(options, self.reactor, books, self.outcome)

    def test_stops_the_reactor_when_done(self):
        """Without --interval: one crawl, its snapshot, recorded in the
        book, then the reactor is stopped."""
        self.loop.startService()
        self.successResultOf(self.loop.whenDone())
        self.assertTrue(self.reactor.hasStopped)
        self.assertFalse(self.outcome.failed)
        self.assertEqual(self.book.calls, ["known", "unfinished_crawl", "start_crawl",
                                           "flush", "finish_crawl"])
        self.assertEqual(len(glob.glob(os.path.join(self.out, "regtest-*Z.json"))), 1)
        self.assertIsNone(self.successResultOf(defer.maybeDeferred(self.loop.stopService)))

    def test_stop_before_start(self):
        """Never started (an earlier service failed): nothing to wait for."""
        self.assertIsNone(self.loop.stopService())
