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

The schema and the SQL are in bitpeer.bookschema.
"""

import json
import sqlite3

import attr
from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredLock, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from .bookschema import (
    ADDRESSES_FROM_OBSERVATIONS,
    GOSSIP_UPSERT,
    KNOWN_SELECT,
    MIGRATIONS,
    OBSERVATION_COLUMNS,
    OBSERVATION_INSERT,
    OUTCOMES,
    from_db,
    insert_rows,
    to_db,
)
from .logs import logger
from .wire.address import NetworkAddress

#: Seconds between the periodic flushes.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Buffered entries (distinct gossiped addresses + attempts) that trigger a
#: flush before the interval is up; bounds the memory a fast crawl holds.
DEFAULT_FLUSH_SIZE = 20000
#: Milliseconds SQLite waits for another process (an export, a person with
#: the sqlite3 shell) holding the write lock before a flush fails and retries.
BUSY_TIMEOUT_MS = 5000

class AddressBookError(Exception):
    """The address book cannot be used; the message says what to do."""


class NotAnAddressBook(AddressBookError):
    """The file is not a SQLite database, or a database of something else."""


class NewerSchema(AddressBookError):
    """The database was written by a newer bitpeer (higher user_version)."""


class AddressBookClosed(AddressBookError):
    """The address book was used after close()."""


@attr.frozen
class KnownAddress:
    """
    One row of the address book, as the crawler plans with it.

    @ivar services: the services the node announced in its own handshake when
        we have completed one, else the newest services gossip claimed.
    @ivar gossip_time: the newest ``time`` any addr entry gave the address
        (None when it was only ever dialled, never gossiped).
    """

    address: NetworkAddress
    services: int | None
    gossip_time: int | None
    first_seen: float
    last_seen: float
    attempts: int
    successes: int
    failures: int
    last_attempt: float | None
    last_success: float | None
    last_failure_reason: str | None


def _merge_gossip(older, newer):
    """
    Fold the gossip buffer ``older`` under ``newer`` (both address -> list),
    into ``newer``: first_* come from the older, last_* from the newer,
    gossip_time is the max and services go with the newest time.
    """
    for address, old in older.items():
        new = newer.get(address)
        if new is None:
            newer[address] = old
            continue
        if old[0] > new[0]:
            new[0], new[1] = old[0], old[1]
        new[2], new[3] = old[2], old[3]


class AddressBook:
    """
    What we know of every address, in SQLite (WAL), written in batched
    transactions off the reactor thread.

    ``gossip`` and ``attempt`` may be called before ``open`` (they buffer);
    after ``close`` they raise AddressBookClosed, since nothing would ever
    write what they buffer.

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
        self._db = None
        self._loop = None
        self._trigger = None
        self._lock = DeferredLock()
        self._state = "new"
        self._opened = None
        self._close_waiters = []
        self._size_call = None

    # -- lifecycle ---------------------------------------------------------

    def open(self):
        """
        Start the worker thread, open (creating or migrating) the database,
        and start the periodic flush.  Errbacks with NotAnAddressBook or
        NewerSchema, naming the path, without touching the file.
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

        def opened(_):
            self._state = "open"
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

        return self._run(self._open_db).addCallbacks(opened, failed).addBoth(done)

    def close(self):
        """
        Flush what is buffered, stop the periodic flush, close the database
        and stop the worker thread.  Idempotent: calls made while a close runs
        get its result; calls after it succeed at once.  If the last flush
        fails, everything is released anyway and the Deferred errbacks with
        why (and the loss is logged).
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
        if self._loop.running and self._loop.call is not None and self._loop.call.active():
            # (Inactive when something, such as trial's cleanup, already
            # cancelled every pending call.)
            self._loop.stop()
        d = self.flush()
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
                self.log.failure(
                    "address book {path}: the last flush failed; {count} buffered entries lost",
                    failure, path=self.path, count=self.buffered,
                )
                return failure
            return None

        def close_failed(failure):
            self._release()
            self._state = "closed"
            return failure

        d.addBoth(last_flush_done)
        d.addCallbacks(released, close_failed)
        return d

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
        src = str(source)
        buf = self._gossip
        get = buf.get
        for time, services, address in entries:
            old = get(address)
            if old is None:
                buf[address] = [time, services, now, src, now, src]
            else:
                if time >= old[0]:
                    old[0] = time
                    old[1] = services
                old[4] = now
                old[5] = src
        self._check_size()

    def attempt(self, crawl_id, address, outcome, *, reason=None, detail=None,
                info=None, returned=None, now):
        """
        Buffer one connection attempt in crawl ``crawl_id``: it updates the
        address's counters and handshake facts (from ``info``, a PeerInfo)
        and adds a row to ``observations``.  ``outcome`` is ``reachable`` or
        ``unreachable``; ``reason`` a short code (``refused``...), ``detail``
        the message for a person; ``returned`` how many addresses it gave.
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
        # A failure must not stop the LoopingCall; it is logged and retried.
        return self.flush().addErrback(self._flush_failed)

    def _flush_failed(self, failure):
        self.log.failure(
            "address book {path}: flush failed; {count} entries kept for the next try",
            failure, path=self.path, count=len(self._gossip) + len(self._attempts),
        )

    @property
    def buffered(self):
        """Entries waiting for the next flush (distinct addresses + attempts)."""
        return len(self._gossip) + len(self._attempts)

    def flush(self):
        """
        Write everything buffered in ONE transaction in the worker thread.
        Calls are serialised; on failure the entries go back into the buffer
        (under anything buffered since) and the Deferred errbacks.
        """
        if self._state != "open":
            return fail(AddressBookClosed(f"address book {self.path} is not open"))
        return self._lock.run(self._flush_now)

    def _flush_now(self):
        gossip, attempts = self._gossip, self._attempts
        if not gossip and not attempts:
            return succeed(None)
        self._gossip, self._attempts = {}, []
        d = self._run(self._write, gossip, attempts)

        def failed(failure):
            # Put the batch back under whatever was buffered meanwhile.
            _merge_gossip(gossip, self._gossip)
            self._attempts[:0] = attempts
            return failure

        return d.addErrback(failed)

    # -- worker thread -------------------------------------------------------

    def _open_db(self):
        path = self.path
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as e:
            raise AddressBookError(f"cannot open address book {path}: {e}") from e
        try:
            try:
                # Reads the header: fails on a file that is not SQLite,
                # before anything is written to it.
                tables = db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
                version = db.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError as e:
                raise NotAnAddressBook(
                    f"{path} is not a SQLite database ({e}); it was left untouched. "
                    "Move it away or choose another database path."
                ) from e
            known = MIGRATIONS[-1][0]
            if version > known:
                raise NewerSchema(
                    f"{path} has address-book schema version {version}, but this bitpeer "
                    f"knows only up to {known}; upgrade bitpeer or use another database path."
                )
            if version == 0 and tables:
                raise NotAnAddressBook(
                    f"{path} is a SQLite database of something else (tables "
                    f"{', '.join(sorted(t[0] for t in tables))}); it was left untouched. "
                    "Choose another database path."
                )
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal" and path != ":memory:":
                raise AddressBookError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _migrate(self, db):
        """Apply the MIGRATIONS above user_version, all in one transaction."""
        db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            known = MIGRATIONS[-1][0]
            if version > known:
                raise NewerSchema(
                    f"{self.path} has address-book schema version {version}, but this "
                    f"bitpeer knows only up to {known}; upgrade bitpeer."
                )
            for target, statements in MIGRATIONS:
                if target <= version:
                    continue
                for sql in statements:
                    db.execute(sql)
                db.execute(f"PRAGMA user_version = {int(target)}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _close_db(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def _transaction(self, work, *args):
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db, *args)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _write(self, gossip, attempts):
        self._transaction(self._write_rows, gossip, attempts)

    def _write_rows(self, db, gossip, attempts):
        signed = to_db
        if gossip:
            insert_rows(
                db,
                GOSSIP_UPSERT,
                [
                    (a[0], a[1], a[2], v[0], signed(v[1]), v[2], v[3], v[4], v[5])
                    for a, v in gossip.items()
                ],
            )
        if not attempts:
            return
        observations = []
        append = observations.append
        for crawl_id, address, outcome, reason, detail, info, returned, now in attempts:
            network, host, port = address
            if info is not None:
                relay = None if info.relay is None else int(info.relay)
                append((crawl_id, network, host, port, now, outcome, reason, detail,
                        info.version, info.user_agent, signed(info.services),
                        info.start_height, info.handshake_latency, returned, relay))
            else:
                append((crawl_id, network, host, port, now, outcome, reason, detail,
                        None, None, None, None, None, returned, None))
        first = db.execute("SELECT coalesce(max(id), 0) + 1 FROM observations").fetchone()[0]
        insert_rows(db, OBSERVATION_INSERT, observations)
        db.execute(ADDRESSES_FROM_OBSERVATIONS, (first,))

    # -- reads and crawls -------------------------------------------------------

    def _read(self, f, *args):
        """Flush, then run ``f(db, *args)`` in the worker thread."""
        return self.flush().addCallback(lambda _: self._run(self._call_db, f, args))

    def _call_db(self, f, args):
        return f(self._db, *args)

    def known(self):
        """Every address with what we know of it: a list of KnownAddress."""

        def read(db):
            new = KnownAddress
            return [
                new(NetworkAddress(n, h, p), from_db(s), *rest)
                for n, h, p, s, *rest in db.execute(KNOWN_SELECT)
            ]

        return self._read(read)

    def count(self):
        """The number of addresses in the book."""
        return self._read(lambda db: db.execute("SELECT count(*) FROM addresses").fetchone()[0])

    def start_crawl(self, network, params, now):
        """
        Record the start of a crawl of ``network`` (a name, or anything with a
        ``name``) with ``params`` (JSON-able; others become strings); its id.
        """
        name = getattr(network, "name", network)
        params_json = json.dumps(params, sort_keys=True, default=str)

        def insert(db):
            return db.execute(
                "INSERT INTO crawls (network, started, params) VALUES (?, ?, ?)",
                (str(name), now, params_json),
            ).lastrowid

        return self._read(lambda db: self._transaction(insert))

    def finish_crawl(self, crawl_id, summary, now):
        """Record the end of crawl ``crawl_id`` with its ``summary``, after its
        observations are flushed."""
        summary_json = json.dumps(summary, sort_keys=True, default=str)

        def update(db):
            cursor = db.execute(
                "UPDATE crawls SET finished = ?, summary = ? WHERE id = ?",
                (now, summary_json, crawl_id),
            )
            if cursor.rowcount != 1:
                raise AddressBookError(f"no crawl {crawl_id} in {self.path}")

        return self._read(lambda db: self._transaction(update))

    def crawls(self):
        """Every crawl as a dict: id, network, started, finished, params, summary."""

        def read(db):
            out = []
            for cid, network, started, finished, params, summary in db.execute(
                "SELECT id, network, started, finished, params, summary FROM crawls ORDER BY id"
            ):
                out.append(dict(
                    id=cid, network=network, started=started, finished=finished,
                    params=None if params is None else json.loads(params),
                    summary=None if summary is None else json.loads(summary),
                ))
            return out

        return self._read(read)

    def unfinished_crawl(self, network):
        """The newest crawl of ``network`` (a name) never finished, as
        crawls() gives it, or None."""
        def pick(crawls):
            unfinished = [c for c in crawls if c["network"] == network and c["finished"] is None]
            return unfinished[-1] if unfinished else None
        return self.crawls().addCallback(pick)

    def abandon_crawl(self, crawl_id, now, why):
        """Close an unfinished crawl that will not be resumed."""
        return self.finish_crawl(crawl_id, {"abandoned": why}, now)

    def verdicts(self, crawl_id):
        """The observations of a crawl, for resuming it."""
        return self.observations(crawl_id)

    def observations(self, crawl_id):
        """The attempts of crawl ``crawl_id`` in order, as dicts with ``address``
        (a NetworkAddress) and the observation columns."""

        def read(db):
            out = []
            for n, h, p, *values in db.execute(
                "SELECT network, host, port, " + ", ".join(OBSERVATION_COLUMNS)
                + " FROM observations WHERE crawl_id = ? ORDER BY id",
                (crawl_id,),
            ):
                row = dict(zip(OBSERVATION_COLUMNS, values))
                row["address"] = NetworkAddress(n, h, p)
                row["services"] = from_db(row["services"])
                out.append(row)
            return out

        return self._read(read)
