"""
The address book: what we know of every address, persisted in SQLite.

A crawl learns of hundreds of thousands of addresses a minute, from the
reactor thread.  ``gossip`` and ``attempt`` only merge into in-memory buffers
(cheap, synchronous); ``flush`` hands a whole buffer to one dedicated worker
thread, which writes it in ONE transaction of multi-row upserts.  The
database runs in WAL mode with ``synchronous=FULL``, so whatever a flush
committed survives a crash (even SIGKILL or power loss) and the file never
corrupts; what was still buffered is lost, which is why flushes run every
``flush_interval`` seconds and whenever ``flush_size`` entries are waiting.

Only the worker thread touches the sqlite3 connection.  Every database call,
reads included, is queued on that single thread, so they run in the order
they were asked for.

Nothing a peer sends fails a flush: its text is stored escaped (and a user
agent's raw bytes beside it), and a row SQLite still cannot take is
isolated, kept in the ``rejected`` table and logged, while the rest of the
batch commits.  A storage fault (disk full, I/O error, read-only, locked)
is not a row's: the batch stays buffered for the next try, the fault is
logged once in one line, and its recovery in another.  ``health`` sums up
what the book could not keep.

The gossip buffer and its merge rules are in bitpeer.store.gossip; the
fault and reject reporting behind ``health`` in bitpeer.store.health.

The book holds ``PATH.lock`` while open (bitpeer.store.bookcheck.BookLock), so a
second crawler on the same book is refused.  ``":memory:"`` gives a book
that lives and dies with the AddressBook: no file, no lock, no WAL.

The schema and the SQL are in bitpeer.store.bookschema, the open-time checks and
the fault tree in bitpeer.store.bookcheck; docs/addressbook.rst describes the
file for people who query it.
"""

import json

from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredLock, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from .bookcheck import (
    AddressBookClosed,
    AddressBookError,
    AddressBookInUse,
    BookNotWritable,
    CorruptBook,
    EntriesLost,
    MissingDirectory,
    NewerSchema,
    NotAnAddressBook,
    PermissionDenied,
    ReadOnlyDirectory,
    ReadOnlyFile,
    ReadOnlyFileSystem,
    StorageFault,
    describe_fault,
    fault_code,
)
from .bookdb import (
    MEMORY,
    KnownAddress,
    SeedRecord,
    UnfinishedCrawl,
    Verdict,
    close_book,
    end_crawl,
    end_seeding,
    insert_crawl,
    insert_seeding,
    open_book,
    read_crawls,
    read_known,
    read_observations,
    read_seed_state,
    read_unfinished,
    read_verdicts,
    transaction,
    write_batch,
    write_reliability,
)
from .bookschema import MIGRATIONS, OUTCOMES
from .gossip import add_gossip, merge_gossip
from .health import BookFaults, BookHealth
from ..logs import logger
from ..wire.address import NetworkAddress
from ..wire.text import escape

#: Seconds between the periodic flushes.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Buffered entries (distinct gossiped addresses + attempts) that trigger a
#: flush before the interval is up; bounds the memory a fast crawl holds.
DEFAULT_FLUSH_SIZE = 20000

__all__ = [
    "MEMORY", "AddressBook", "AddressBookClosed", "AddressBookError", "AddressBookInUse",
    "BookHealth", "BookNotWritable", "CorruptBook", "EntriesLost", "KnownAddress",
    "MissingDirectory", "NewerSchema", "NotAnAddressBook", "PermissionDenied",
    "ReadOnlyDirectory", "ReadOnlyFile", "ReadOnlyFileSystem", "SeedRecord", "StorageFault",
    "UnfinishedCrawl", "Verdict",
]


class AddressBook:
    """
    What we know of every address, in SQLite (WAL), written in batched
    transactions off the reactor thread.

    ``path`` is a file path, or ``":memory:"`` for a book that is never
    written to disk (a simulated crawl's).  ``gossip`` and ``attempt`` may
    be called before ``open`` (they buffer); after ``close`` they raise
    AddressBookClosed, since nothing would ever write what they buffer.

    Unless ``close_at_shutdown`` is False, the book closes itself as the
    reactor begins to shut down.  An owner that closes it after stopping
    what writes to it (as the crawler service does) passes False: the
    book's trigger would fire first, and every verdict that comes in
    while the crawl winds down would find the book closed.
    """

    log = logger()

    def __init__(self, path, reactor, *, flush_interval=DEFAULT_FLUSH_INTERVAL,
                 flush_size=DEFAULT_FLUSH_SIZE, close_at_shutdown=True):
        self.path = path
        self._reactor = reactor
        self._flush_interval = flush_interval
        self._flush_size = flush_size
        self._close_at_shutdown = close_at_shutdown
        self._gossip = {}
        self._attempts = []
        self._pool = None
        self._book = None  # bookdb.Opened, in the worker thread's hands
        self._loop = None
        self._trigger = None
        self._lock = DeferredLock()
        self._state = "new"
        self._opened = None
        self._close_waiters = []
        self._size_call = None
        self._faults = BookFaults(path, self.log)

    @property
    def _db(self):
        """The sqlite3 connection (worker thread only), or None."""
        return None if self._book is None else self._book.db

    # -- lifecycle ---------------------------------------------------------

    def open(self):
        """
        Start the worker thread, open (creating or migrating) the database,
        and start the periodic flush.  Before anything is dialled this
        proves the book usable: its directory exists and is writable, it
        is no other process's (AddressBookInUse), it is a book
        (NotAnAddressBook, NewerSchema), sound (CorruptBook, from SQLite's
        quick_check) and writable (BookNotWritable and its subclasses;
        the open commits a write).  Each failure errbacks with an
        AddressBookError whose message is one line naming the path and
        what to do, and leaves the file untouched.
        """
        if self._state != "new":
            return fail(AddressBookError(f"address book {self.path} was already opened"))
        self._state = "opening"
        self._pool = ThreadPool(1, 1, name=f"bitpeer-addrbook {self.path}")
        self._pool.start()
        if self._close_at_shutdown:
            self._trigger = self._reactor.addSystemEventTrigger(
                "before", "shutdown", self._on_shutdown
            )
        self._opened = Deferred()  # internal: close() waits on it, no one else

        def opened(book):
            self._book = book
            self._state = "open"
            if book.partial_check:
                self.log.info(
                    "address book {path} is large: only its crawls and addresses were "
                    "checked at open; check all of it with: sqlite3 {path} "
                    "'PRAGMA integrity_check'", path=self.path)
            self._loop = task.LoopingCall(self._periodic_flush)
            self._loop.clock = self._reactor
            self._loop.start(self._flush_interval, now=False)
            self._check_size()  # gossip buffered before open may already be due

        def failed(failure):
            self._release()
            self._state = "closed"
            return failure

        def done(result):
            self._opened.callback(None)
            return result

        return (self._run(lambda: open_book(self.path, migrations=MIGRATIONS))
                .addCallbacks(opened, failed).addBoth(done))

    def close(self):
        """
        Flush what is buffered, stop the periodic flush, close the database,
        drop the lock and stop the worker thread.  Idempotent: calls made
        while a close runs get its result; calls after it succeed at once.
        If the last flush fails, everything is released anyway, the loss is
        logged in one line, counted in ``health.lost``, and the Deferred
        errbacks with EntriesLost (an AddressBookError: ``str()`` is that
        line).
        """
        if self._close_waiters is None:  # finished
            return succeed(None)
        d = Deferred()
        self._close_waiters.append(d)
        if len(self._close_waiters) == 1:
            self._close().addBoth(self._close_finished)
        return d

    def _close_finished(self, result):
        waiters, self._close_waiters = self._close_waiters, None
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)

    def _on_shutdown(self):
        # The trigger is firing: it must not be removed again.
        self._trigger = None
        return self.close()

    def _close(self):
        state = self._state
        if state == "opening":
            return self._opened.addCallback(lambda _: self._close_open())
        if state == "open":
            return self._close_open()
        self._state = "closed"
        self._release()
        return succeed(None)

    def _close_open(self):
        if self._state != "open":  # open failed
            return succeed(None)
        call = self._loop.call
        if self._loop.running and (call is None or call.active()):
            # No call while a periodic flush is running: stopped now, the
            # loop does not schedule another when it ends.  (An inactive
            # call: something, such as trial's cleanup, already cancelled
            # every pending call.)
            self._loop.stop()
        d = self._lock.run(self._flush_now, True)
        # From here gossip/attempt raise: nothing could write what they buffer.
        self._state = "closing"
        if self._size_call is not None and self._size_call.active():
            self._size_call.cancel()
        outcome = []

        def last_flush_done(result):
            outcome.append(result)
            return self._run(self._close_db)

        def released(_):
            self._release()
            self._state = "closed"
            failure = outcome[0]
            if isinstance(failure, Failure):
                return self._lose_buffer(failure)
            return None

        def close_failed(failure):
            self._release()
            self._state = "closed"
            return failure

        d.addBoth(last_flush_done)
        d.addCallbacks(released, close_failed)
        return d

    def _lose_buffer(self, failure):
        """The last flush failed: forget what it held, and say so."""
        lost = self.buffered
        self._gossip, self._attempts = {}, []
        return self._faults.lost(failure, lost)

    def _release(self):
        """Stop the worker thread and forget the shutdown trigger."""
        if self._trigger is not None:
            self._reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        if self._pool is not None:
            self._pool.stop()
            self._pool = None

    def _run(self, f, *args):
        if self._pool is None:
            return fail(AddressBookClosed(f"address book {self.path} is closed"))
        return deferToThreadPool(self._reactor, self._pool, f, *args)

    def _close_db(self):
        if self._book is not None:
            book, self._book = self._book, None
            close_book(book)

    # -- health ----------------------------------------------------------------

    @property
    def health(self):
        """A BookHealth: what this book could not keep since open."""
        return self._faults.health(self.buffered)

    # -- buffered writes (reactor thread) -----------------------------------

    def gossip(self, entries, source, now):
        """
        Buffer what one addr/addrv2 message said: AddrEntry ``entries`` sent
        by the peer at NetworkAddress ``source``, received at ``now``.  A new
        address gets first_seen/first_source; a known one last_seen/last_source;
        gossip_time only grows; gossip services go in their own column, never
        over the handshake's.
        """
        if self._state in ("closing", "closed"):
            raise AddressBookClosed(f"address book {self.path} is closed")
        add_gossip(self._gossip, entries, escape(str(source)), now)
        self._check_size()

    def attempt(self, crawl_id, address, outcome, *, reason=None, detail=None,
                info=None, returned=None, now):
        """
        Buffer one connection attempt in crawl ``crawl_id``: it updates the
        address's counters and handshake facts (from ``info``, a PeerInfo)
        and adds a row to ``observations``.  ``outcome`` is ``reachable`` or
        ``unreachable``; ``reason`` a short code (``refused``...), ``detail``
        the message for a person; ``returned`` how many addresses it gave.
        Text a peer controls (the user agent, a reason or detail quoting
        it) may be anything, surrogate escapes included: it is stored
        escaped, and the user agent's bytes as they were.
        """
        if self._state in ("closing", "closed"):
            raise AddressBookClosed(f"address book {self.path} is closed")
        if outcome not in OUTCOMES:
            # Checked here: a bad row would fail every flush, forever.
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        if not isinstance(address, NetworkAddress):
            raise TypeError(f"address must be a NetworkAddress, not {address!r}")
        self._attempts.append((crawl_id, address, outcome, reason, detail, info, returned, now))
        self._check_size()

    def _check_size(self):
        # One flush at a time is enough: while it is pending or running, the
        # buffer is not re-checked; the next gossip after it checks again.
        if (self._size_call is None and self._state == "open"
                and len(self._gossip) + len(self._attempts) >= self._flush_size):
            self._size_call = self._reactor.callLater(0, self._size_flush)

    def _size_flush(self):
        def done(result):
            self._size_call = None
            return result

        return self.flush().addBoth(done).addErrback(self._flush_failed)

    def _periodic_flush(self):
        # A failure must not stop the LoopingCall; flush() has logged it.
        return self.flush().addErrback(self._flush_failed)

    def _flush_failed(self, failure):
        """Swallow a failed flush for the loop: BookFaults.failed logged it."""
        return None

    @property
    def buffered(self):
        """Entries waiting for the next flush (distinct addresses + attempts)."""
        return len(self._gossip) + len(self._attempts)

    def flush(self):
        """
        Write everything buffered in ONE transaction in the worker thread.
        Calls are serialised.  A row SQLite cannot take goes to the
        ``rejected`` table (logged, counted in ``health.rejected``) and the
        rest commits.  On a storage fault the entries go back into the
        buffer (under anything buffered since) and the Deferred errbacks
        with StorageFault; the fault is logged once, in one line, however
        many flushes it fails, and the recovery in one more.  Any other
        error (a bug) is logged with its traceback, once, and passed on.
        """
        if self._state != "open":
            return fail(AddressBookClosed(f"address book {self.path} is not open"))
        return self._lock.run(self._flush_now)

    def _flush_now(self, closing=False):
        gossip, attempts = self._gossip, self._attempts
        if not gossip and not attempts:
            return succeed(None)
        self._gossip, self._attempts = {}, []
        d = self._run(self._write, gossip, attempts, self._reactor.seconds())

        def failed(failure):
            # Put the batch back under whatever was buffered meanwhile.
            merge_gossip(gossip, self._gossip)
            self._attempts[:0] = attempts
            return self._faults.failed(failure, closing, self.buffered)

        return d.addCallbacks(self._faults.written, failed)

    # -- worker thread -------------------------------------------------------

    def _write(self, gossip, attempts, now):
        return write_batch(self._book.db, gossip, attempts, now)

    def _read(self, f, *args):
        """Flush, then run ``f(db, *args)`` in the worker thread."""
        return self.flush().addCallback(lambda _: self._run(self._call_db, f, args))

    def _call_db(self, f, args):
        return f(self._book.db, *args)

    def _transaction(self, work, *args):
        return transaction(self._book.db, work, *args)

    # -- reads and crawls -------------------------------------------------------

    def known(self):
        """Every address with what we know of it: a list of KnownAddress
        (``last_failure_reason`` in its escaped display form)."""
        return self._read(read_known)

    def count(self):
        """The number of addresses in the book."""
        return self._read(lambda db: db.execute("SELECT count(*) FROM addresses").fetchone()[0])

    def start_crawl(self, network, params, now):
        """
        Record the start of a crawl of ``network`` (a name, or anything with a
        ``name``) with ``params`` (JSON-able; others become strings); its id.
        A crawl of the same network still running in the book is abandoned
        as superseded (only one process holds a book): resume it with
        unfinished_crawl instead of calling this.
        """
        name = escape(str(getattr(network, "name", network)))
        params_json = json.dumps(params, sort_keys=True, default=str)
        return self._read(lambda db: transaction(db, insert_crawl, name, params_json, now))

    def finish_crawl(self, crawl_id, summary, now):
        """Record the end of crawl ``crawl_id`` with its ``summary``, after its
        observations are flushed (status ``finished``)."""
        summary_json = json.dumps(summary, sort_keys=True, default=str)
        return self._read(lambda db: transaction(
            db, end_crawl, self.path, crawl_id, now, summary_json))

    def abandon_crawl(self, crawl_id, now, why):
        """
        Mark running crawl ``crawl_id`` as ended at ``now`` without a
        snapshot (status ``abandoned``, ``why`` in end_reason): for
        ``--fresh``, or a crawl that cannot be resumed.  Errbacks with
        AddressBookError if no such crawl is running.
        """
        return self._read(lambda db: transaction(
            db, end_crawl, self.path, crawl_id, now, None, why))

    def unfinished_crawl(self, network):
        """The newest crawl of ``network`` (a name or anything with a
        ``name``) that is still running, as an UnfinishedCrawl, or None."""
        name = escape(str(getattr(network, "name", network)))
        return self._read(read_unfinished, name)

    def verdicts(self, crawl_id):
        """
        What crawl ``crawl_id`` found so far: a dict of NetworkAddress ->
        Verdict, each address's latest attempt in that crawl.  For a
        resumed crawl: these addresses are not dialled again, and with
        the rest they make its result.  50,000 attempts take about a
        fifth of a second.
        """
        return self._read(read_verdicts, crawl_id)

    def crawls(self):
        """Every crawl as a dict: id, network, started, finished, params,
        summary, status (running, finished, abandoned), ended (when it
        finished or was abandoned) and end_reason (why it was abandoned)."""
        return self._read(read_crawls)

    def observations(self, crawl_id):
        """
        The attempts of crawl ``crawl_id`` in order, as dicts with
        ``address`` (a NetworkAddress) and the observation columns: text in
        its escaped display form, and ``user_agent_raw`` the agent's bytes
        as the peer sent them (None when no handshake).
        """
        return self._read(read_observations, crawl_id)

    # -- the DNS seeder ------------------------------------------------------------

    def seed_state(self):
        """Every address as the DNS seeder plans with it: a list of
        SeedRecord (the seeder's windows, the last handshake's facts)."""
        return self._read(read_seed_state)

    def save_reliability(self, records):
        """Store the tests of SeedRecords (after a flush, so that their
        attempts are in the book first), in one transaction."""
        records = list(records)
        return self._seeder_write(write_reliability, records)

    def start_seeding(self, network, params, now):
        """
        Record the start of a DNS seeder's run of ``network`` (a name or
        anything with a ``name``): its id, under which its tests are
        observations.  Its status (``seeding``) is not a crawl's: no
        crawl resumes or supersedes it.
        """
        name = escape(str(getattr(network, "name", network)))
        params_json = json.dumps(params, sort_keys=True, default=str)
        return self._seeder_write(
            lambda db: transaction(db, insert_seeding, name, params_json, now))

    def end_seeding(self, run_id, now):
        """Record the end of the seeder's run ``run_id`` (status ``seeded``)."""
        return self._seeder_write(lambda db: transaction(db, end_seeding, run_id, now))

    def _seeder_write(self, f, *args):
        """
        ``_read(f, *args)`` for the seeder's writes: a storage fault (a
        full disk, an I/O error, a read-only file) comes back as the
        StorageFault a flush gives, an AddressBookError the seeder keeps
        its records through, not as SQLite's own error.
        """
        def as_fault(failure):
            if fault_code(failure.value) is None:
                return failure
            raise StorageFault(f"address book {self.path}: {describe_fault(failure.value)}",
                               describe_fault(failure.value), 0)

        return self._read(f, *args).addErrback(as_fault)
