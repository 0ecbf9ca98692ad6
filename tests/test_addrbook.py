"""
Tests for bitpeer.store.addrbook: the SQLite address book.

These are trial ``TestCase``s on the real reactor: the book writes in its own
worker thread, so the Deferreds only fire when the reactor runs.  Every test
closes its book (``addCleanup``), which stops the thread and the flush loop.
Databases live in fresh directories from ``tempfile`` (removed afterwards):
trial's ``mktemp`` is relative to the working directory, which under pytest
is the repository.  The book is checked from outside with a plain sqlite3
connection where that is what a reader of the file would see.
"""

import errno
import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time

from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, TestCase

import bitpeer
from bitpeer.store import addrbook, bookdb
from bitpeer.store.addrbook import (
    AddressBook,
    AddressBookClosed,
    AddressBookError,
    AddressBookInUse,
    CorruptBook,
    EntriesLost,
    KnownAddress,
    MissingDirectory,
    NewerSchema,
    NotAnAddressBook,
    ReadOnlyFileSystem,
    StorageFault,
    UnfinishedCrawl,
    Verdict,
)
from bitpeer.store.health import MAX_REJECT_LINES
from bitpeer.peer import PeerInfo
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress

T0 = 1_700_000_000
#: The schema version this bitpeer writes.
LATEST = addrbook.MIGRATIONS[-1][0]


def address(n, port=8333):
    """A distinct IPv4 address in 10.0.0.0/8 for each ``n``."""
    return NetworkAddress(Network.IPV4, (0x0A000000 + n).to_bytes(4, "big"), port)


def entries(count, first=1, time=T0 - 3600, services=0x409):
    """``count`` AddrEntry objects for address(first) onwards."""
    return [AddrEntry(time, services, address(n)) for n in range(first, first + count)]


SOURCE_A = NetworkAddress.parse("127.0.0.1:8333")
SOURCE_B = NetworkAddress.parse("[::1]:18333")
SOURCE_C = NetworkAddress.parse("127.0.0.2:8333")


def peer_info(where, **fields):
    """What a Core-like node says in its handshake; ``fields`` override."""
    values = dict(
        address=where,
        inbound=False,
        version=70016,
        services=0x0C09,
        user_agent="/Satoshi:27.0.0/",
        start_height=840_000,
        relay=True,
        their_view_of_us=SOURCE_A,
        timestamp=T0,
        nonce=1,
        clock_offset=0.5,
        handshake_latency=0.125,
    )
    values.update(fields)
    return PeerInfo(**values)


def disk_full():
    """What SQLite raises when the disk is full (as Python 3.11 builds it)."""
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode, error.sqlite_errorname = 13, "SQLITE_FULL"
    return error


def fail_writes(case, times, error=None):
    """
    Make the next ``times`` flushes of every book raise ``error`` (default
    disk_full()) in their transaction, after writing the gossip rows (so a
    partial write would be visible if it were committed).
    """
    real = bookdb._write_rows
    left = [times]

    def write_rows(db, gossip, attempts, now, rejects):
        if left[0] > 0:
            left[0] -= 1
            real(db, gossip, [], now, rejects)
            raise error if error is not None else disk_full()
        return real(db, gossip, attempts, now, rejects)

    case.patch(bookdb, "_write_rows", write_rows)
    return left


class BookTestCase(TestCase):
    """Opens books in temporary directories and always closes them."""

    def tmpdir(self):
        """A fresh directory, removed at cleanup."""
        path = tempfile.mkdtemp(prefix="bitpeer-addrbook-test-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def path(self):
        """A database path in a fresh directory (the file does not exist)."""
        return os.path.join(self.tmpdir(), "book.sqlite")

    def book(self, path=None, **options):
        """A new, unopened AddressBook, closed at cleanup."""
        options.setdefault("flush_interval", 3600)
        book = AddressBook(path or self.path(), reactor, **options)
        self.addCleanup(book.close)
        return book

    async def opened(self, path=None, **options):
        """A new AddressBook, opened, closed at cleanup."""
        book = self.book(path, **options)
        await book.open()
        return book

    def raw(self, path):
        """A plain sqlite3 connection to the file, as an outside reader."""
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        return db

    def row(self, path, addr):
        """The addresses row of ``addr`` as a dict, read from outside."""
        db = self.raw(path)
        db.row_factory = sqlite3.Row
        found = db.execute(
            "SELECT * FROM addresses WHERE network = ? AND host = ? AND port = ?",
            (int(addr.network), addr.host, addr.port),
        ).fetchone()
        return None if found is None else dict(found)

    async def until(self, predicate, timeout=10.0):
        """Let the reactor run until ``predicate()`` is true."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout}s waiting for {predicate}")
            await task.deferLater(reactor, 0.01, lambda: None)


class OpenTests(BookTestCase):
    """Creating, migrating and refusing database files."""

    async def test_creates_schema_in_wal_mode(self):
        """A new file gets the schema at version 1, WAL (so a crash never
        corrupts it) and synchronous=FULL (so a commit survives power loss)."""
        path = self.path()
        book = await self.opened(path)
        db = self.raw(path)
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], LATEST)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self.assertEqual(tables, {"addresses", "crawls", "observations", "rejected",
                                  "reliability"})
        synchronous = await book._run(
            lambda: book._db.execute("PRAGMA synchronous").fetchone()[0]
        )
        self.assertEqual(synchronous, 2)  # FULL
        self.assertEqual(await book.count(), 0)

    async def test_not_a_database_refused_untouched(self):
        """A file that is not SQLite (a wrong --db argument) is refused with
        its path in the message, and left byte for byte as it was."""
        path = self.path()
        junk = b"this is somebody's notes, not a database\n" * 100
        with open(path, "wb") as f:
            f.write(junk)
        book = self.book(path)
        error = await self.assertFailure(book.open(), NotAnAddressBook)
        self.assertIn(path, str(error))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), junk)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["book.sqlite"])
        self.assertIsNone(book._pool)  # the worker thread was stopped

    async def test_other_sqlite_database_refused(self):
        """A SQLite file of another program is not ours to add tables to."""
        path = self.path()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE photos (id INTEGER)")
        db.commit()
        db.close()
        error = await self.assertFailure(self.book(path).open(), NotAnAddressBook)
        self.assertIn("photos", str(error))
        self.assertEqual(self.raw(path).execute("PRAGMA user_version").fetchone()[0], 0)

    async def test_newer_schema_refused(self):
        """A book written by a newer bitpeer is refused rather than misread;
        the message names the path and both versions."""
        path = self.path()
        book = await self.opened(path)
        await book.close()
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 7")
        db.close()
        error = await self.assertFailure(self.book(path).open(), NewerSchema)
        self.assertIn(path, str(error))
        self.assertIn("7", str(error))
        self.assertEqual(self.raw(path).execute("PRAGMA user_version").fetchone()[0], 7)

    async def test_migration_appended_is_applied(self):
        """Appending (LATEST + 1, [...]) to MIGRATIONS upgrades an existing
        book in place, keeping its rows."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(3), SOURCE_A, 10.0)
        await book.close()
        self.patch(addrbook, "MIGRATIONS", addrbook.MIGRATIONS + [
            (LATEST + 1, [
                "ALTER TABLE addresses ADD COLUMN note TEXT",
                "UPDATE addresses SET note = 'migrated'",
            ]),
        ])
        book = await self.opened(path)
        self.assertEqual(len(await book.known()), 3)
        db = self.raw(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], LATEST + 1)
        self.assertEqual(
            db.execute("SELECT DISTINCT note FROM addresses").fetchall(), [("migrated",)]
        )

    async def test_version_1_book_upgraded(self):
        """
        A book written by the first schema gains the observations' relay
        column; its rows are kept, and attempts made after the upgrade
        update the addresses as before.
        """
        path = self.path()
        every = addrbook.MIGRATIONS
        self.patch(addrbook, "MIGRATIONS", every[:1])
        await (await self.opened(path)).close()
        db = self.raw(path)
        db.execute("INSERT INTO addresses (network, host, port, first_seen, last_seen, attempts,"
                   " successes, relay) VALUES (1, ?, 8333, 10.0, 10.0, 1, 1, 1)",
                   (address(1)[1],))
        db.execute("INSERT INTO crawls (network, started) VALUES ('mainnet', 1.0)")
        db.execute("INSERT INTO observations (crawl_id, network, host, port, at, outcome)"
                   " VALUES (1, 1, ?, 8333, 10.0, 'reachable')", (address(1)[1],))
        db.commit()
        db.close()
        self.patch(addrbook, "MIGRATIONS", every)
        book = await self.opened(path)
        book.attempt(1, address(1), "unreachable", reason="refused", now=20.0)
        rows = await book.observations(1)
        self.assertEqual([(r["outcome"], r["relay"]) for r in rows],
                         [("reachable", None), ("unreachable", None)])
        row = self.row(path, address(1))
        self.assertEqual((row["attempts"], row["successes"], row["failures"], row["relay"]),
                         (2, 1, 1, 1))
        self.assertEqual(self.raw(path).execute("PRAGMA user_version").fetchone()[0], LATEST)

    async def test_failed_migration_rolls_back(self):
        """A migration that fails half way leaves the book exactly at its old
        version: the migrations run in one transaction."""
        path = self.path()
        book = await self.opened(path)
        await book.close()
        self.patch(addrbook, "MIGRATIONS", addrbook.MIGRATIONS + [
            (LATEST + 1, ["ALTER TABLE addresses ADD COLUMN note TEXT", "SELECT * FROM nowhere"]),
        ])
        await self.assertFailure(self.book(path).open(), sqlite3.OperationalError)
        db = self.raw(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], LATEST)
        columns = [r[1] for r in db.execute("PRAGMA table_info(addresses)")]
        self.assertNotIn("note", columns)

    async def test_open_twice_refused(self):
        """One AddressBook owns one connection; a second open is a bug."""
        book = await self.opened()
        await self.assertFailure(book.open(), AddressBookError)


class CloseTests(BookTestCase):
    """close(): flush, release, idempotent."""

    async def test_close_flushes_and_is_idempotent(self):
        """Two overlapping closes and a late one all succeed, the buffer is
        written exactly once, the thread is stopped, and later gossip is an
        error rather than a silent loss."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(5), SOURCE_A, 10.0)
        first, second = book.close(), book.close()
        await first
        await second
        await book.close()
        self.assertIsNone(book._pool)
        self.assertRaises(AddressBookClosed, book.gossip, entries(1), SOURCE_A, 11.0)
        self.assertRaises(
            AddressBookClosed, book.attempt, 1, address(1), "reachable", now=11.0
        )
        self.assertEqual(self.raw(path).execute("SELECT count(*) FROM addresses").fetchone()[0], 5)

    async def test_close_while_opening(self):
        """close() right after open() waits for the open, then closes."""
        book = self.book()
        opening = book.open()
        await book.close()
        await opening
        self.assertIsNone(book._pool)
        self.assertEqual(book._state, "closed")

    async def test_close_unopened(self):
        """Closing a book that was never opened is harmless."""
        book = self.book()
        await book.close()
        await book.close()
        self.assertRaises(AddressBookClosed, book.gossip, entries(1), SOURCE_A, 1.0)


class GossipTests(BookTestCase):
    """gossip(): the merge rules, in memory and in the database."""

    async def test_new_address(self):
        """A first sighting records when, from whom, the entry's time and its
        gossip services (and no handshake services)."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(1, time=T0, services=0x409), SOURCE_A, 100.0)
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual(
            (row["first_seen"], row["first_source"], row["last_seen"], row["last_source"]),
            (100.0, "127.0.0.1:8333", 100.0, "127.0.0.1:8333"),
        )
        self.assertEqual((row["gossip_time"], row["services"]), (T0, 0x409))
        self.assertIsNone(row["handshake_services"])
        self.assertEqual(row["attempts"], 0)

    async def check_merge(self, flush_between):
        """Three sightings of one address, flushed together or one by one."""
        path = self.path()
        book = await self.opened(path)
        sightings = [
            (T0, 0x1, SOURCE_A, 100.0),
            (T0 + 50, 0x9, SOURCE_B, 200.0),  # newer time: its services win
            (T0 - 50, 0x400, SOURCE_C, 300.0),  # older time: services kept
        ]
        for when, services, source, now in sightings:
            book.gossip([AddrEntry(when, services, address(1))], source, now)
            if flush_between:
                await book.flush()
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual(row["gossip_time"], T0 + 50)
        self.assertEqual(row["services"], 0x9)
        self.assertEqual((row["first_seen"], row["first_source"]), (100.0, "127.0.0.1:8333"))
        self.assertEqual((row["last_seen"], row["last_source"]), (300.0, "127.0.0.2:8333"))
        self.assertEqual(await book.count(), 1)

    def test_merge_in_memory(self):
        """Repeats within one flush merge in the buffer: max gossip_time,
        services of the newest claim, first sighting kept, last updated."""
        return self.check_merge(flush_between=False)

    def test_merge_in_database(self):
        """The same rules hold when the repeats arrive in separate flushes
        (the SQL upsert agrees with the in-memory merge)."""
        return self.check_merge(flush_between=True)

    async def test_gossip_never_overwrites_handshake_services(self):
        """What a node said of itself beats hearsay: gossip services go in
        their own column, and known() reports the handshake's."""
        path = self.path()
        book = await self.opened(path)
        book.attempt(1, address(1), "reachable", info=peer_info(address(1), services=0x0C09),
                     now=50.0)
        book.gossip([AddrEntry(T0 + 999, 0x1, address(1))], SOURCE_A, 100.0)
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual((row["handshake_services"], row["services"]), (0x0C09, 0x1))
        [known] = await book.known()
        self.assertEqual(known.services, 0x0C09)

    async def test_uint64_services_round_trip(self):
        """Service bits are a uint64; SQLite integers are signed: the top bit
        survives the trip."""
        book = await self.opened()
        top = (1 << 64) - 1
        book.gossip([AddrEntry(T0, top, address(1))], SOURCE_A, 1.0)
        book.attempt(1, address(2), "reachable", info=peer_info(address(2), services=top),
                     now=2.0)
        known = await book.known()
        self.assertEqual([k.services for k in known], [top, top])
        [observation] = await book.observations(1)
        self.assertEqual(observation["services"], top)

    async def test_other_networks(self):
        """Tor v3, I2P and future network ids are stored and rebuilt as
        NetworkAddress values equal to what went in."""
        book = await self.opened()
        addrs = [
            NetworkAddress(Network.TORV3, bytes(range(32)), 8333),
            NetworkAddress(Network.I2P, bytes([7]) * 32, 0),
            NetworkAddress(Network.IPV6, bytes(15) + b"\x01", 8333),
            NetworkAddress(200, b"future", 1),
        ]
        book.gossip([AddrEntry(T0, 1, a) for a in addrs], SOURCE_A, 1.0)
        self.assertEqual([k.address for k in await book.known()], addrs)


class AttemptTests(BookTestCase):
    """attempt(): counters, handshake facts and observations."""

    async def test_counters(self):
        """Each attempt counts; the last failure's reason and detail are
        kept through a later success."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(1), SOURCE_A, 1.0)
        book.attempt(1, address(1), "unreachable", reason="refused", detail="ECONNREFUSED",
                     now=10.0)
        book.attempt(1, address(1), "reachable", info=peer_info(address(1)), returned=1000,
                     now=20.0)
        book.attempt(1, address(1), "unreachable", reason="protocol-error",
                     detail="addr with 1001 entries", now=30.0)
        book.attempt(2, address(1), "reachable", info=peer_info(address(1)), now=40.0)
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual(
            (row["attempts"], row["successes"], row["failures"]), (4, 2, 2)
        )
        self.assertEqual((row["last_attempt"], row["last_success"]), (40.0, 40.0))
        self.assertEqual(
            (row["last_failure_reason"], row["last_failure_detail"]),
            ("protocol-error", "addr with 1001 entries"),
        )
        self.assertEqual(row["first_seen"], 1.0)  # the attempts did not move it

    async def test_handshake_facts(self):
        """A handshake fills version, agent, services, height, relay and
        latency; a later failed attempt (no info) keeps them."""
        path = self.path()
        book = await self.opened(path)
        info = peer_info(address(1), version=70015, user_agent="/Satoshi:0.21.0/",
                         services=0x409, start_height=700_000, relay=False,
                         handshake_latency=0.25)
        book.attempt(1, address(1), "reachable", info=info, now=10.0)
        book.attempt(1, address(1), "unreachable", reason="connect-timeout", now=20.0)
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual(
            (row["version"], row["user_agent"], row["handshake_services"],
             row["start_height"], row["relay"], row["latency"]),
            (70015, "/Satoshi:0.21.0/", 0x409, 700_000, 0, 0.25),
        )

    async def test_dialled_address_without_gossip(self):
        """An address first met by dialling it (a seed) gets a row with
        first_seen = the attempt time and no gossip."""
        book = await self.opened()
        book.attempt(1, address(9), "unreachable", reason="refused", now=5.0)
        [known] = await book.known()
        self.assertEqual(
            known,
            KnownAddress(
                address=address(9), services=None, gossip_time=None, first_seen=5.0,
                last_seen=5.0, attempts=1, successes=0, failures=1, last_attempt=5.0,
                last_success=None, last_failure_reason="refused", failure_streak=1,
            ),
        )

    async def test_observations(self):
        """Every attempt is one observations row, in order, per crawl, with
        what the handshake said and how many addresses came back."""
        book = await self.opened()
        first = await book.start_crawl("mainnet", {}, 1.0)
        second = await book.start_crawl("mainnet", {}, 2.0)
        book.attempt(first, address(1), "reachable", info=peer_info(address(1)),
                     returned=42, now=10.0)
        book.attempt(first, address(2), "unreachable", reason="handshake-timeout",
                     detail="no verack in 20s", now=11.0)
        book.attempt(second, address(3), "unreachable", reason="not-dialled", now=12.0)
        rows = await book.observations(first)
        self.assertEqual(rows, [
            dict(crawl_id=first, address=address(1), at=10.0, outcome="reachable",
                 reason=None, detail=None, version=70016, user_agent="/Satoshi:27.0.0/",
                 user_agent_raw=b"/Satoshi:27.0.0/",
                 services=0x0C09, start_height=840_000, relay=1, latency=0.125,
                 returned=42),
            dict(crawl_id=first, address=address(2), at=11.0, outcome="unreachable",
                 reason="handshake-timeout", detail="no verack in 20s", version=None,
                 user_agent=None, user_agent_raw=None, services=None, start_height=None,
                 relay=None, latency=None, returned=None),
        ])
        self.assertEqual([r["address"] for r in await book.observations(second)], [address(3)])

    async def test_bad_outcome_refused_at_once(self):
        """A bad outcome would fail every flush forever, so attempt() refuses
        it synchronously and buffers nothing."""
        book = await self.opened()
        self.assertRaises(ValueError, book.attempt, 1, address(1), "maybe", now=1.0)
        self.assertRaises(TypeError, book.attempt, 1, "1.2.3.4:8333", "reachable", now=1.0)
        self.assertEqual(book.buffered, 0)


class PersistenceTests(BookTestCase):
    """What a flush committed is there for the next run."""

    async def test_known_after_reopen(self):
        """known() from a new AddressBook on the same file equals known()
        from the one that wrote it."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(10, time=T0), SOURCE_A, 1.0)
        book.attempt(1, address(3), "reachable", info=peer_info(address(3)), now=2.0)
        book.attempt(1, address(4), "unreachable", reason="refused", now=3.0)
        before = await book.known()
        await book.close()
        again = await self.opened(path)
        self.assertEqual(await again.known(), before)
        self.assertEqual(await again.count(), 10)
        self.assertEqual(before[2].successes, 1)


class FlushTests(BookTestCase):
    """flush(): one transaction, serialised, nothing lost on failure."""

    def fail_writes(self, book, times, error=None):
        """Make the next ``times`` writes raise ``error`` (SQLite's disk
        full by default), after writing the gossip rows (so a partial
        write would be visible if it were committed)."""
        fail_writes(self, times, error)

    async def test_failure_keeps_buffer_and_rolls_back(self):
        """A failed flush commits nothing and loses nothing: the batch goes
        back into the buffer and the next flush writes it."""
        path = self.path()
        book = await self.opened(path)
        self.fail_writes(book, 1)
        book.gossip(entries(100), SOURCE_A, 1.0)
        book.attempt(1, address(1), "reachable", info=peer_info(address(1)), now=2.0)
        await self.assertFailure(book.flush(), StorageFault)
        self.assertEqual(book.buffered, 101)
        count = self.raw(path).execute("SELECT count(*) FROM addresses").fetchone()[0]
        self.assertEqual(count, 0)
        await book.flush()
        self.assertEqual(book.buffered, 0)
        self.assertEqual(await book.count(), 100)
        self.assertEqual(len(await book.observations(1)), 1)

    async def test_failed_batch_goes_under_newer_gossip(self):
        """Gossip buffered while a failing flush ran merges on top of the
        returned batch: first sighting from the old, last from the new."""
        path = self.path()
        book = await self.opened(path)
        self.fail_writes(book, 1)
        book.gossip([AddrEntry(T0 + 10, 0x1, address(1))], SOURCE_A, 1.0)
        failing = book.flush()
        book.gossip([AddrEntry(T0, 0x8, address(1))], SOURCE_B, 2.0)
        await self.assertFailure(failing, StorageFault)
        await book.flush()
        row = self.row(path, address(1))
        self.assertEqual((row["first_seen"], row["first_source"]), (1.0, "127.0.0.1:8333"))
        self.assertEqual((row["last_seen"], row["last_source"]), (2.0, "[::1]:18333"))
        self.assertEqual((row["gossip_time"], row["services"]), (T0 + 10, 0x1))

    async def test_flushes_are_serialised(self):
        """A flush asked for while one is running starts after it has
        finished, so it also carries the batch a failed first flush put
        back."""
        book = await self.opened()
        self.fail_writes(book, 1)
        book.gossip(entries(10), SOURCE_A, 1.0)
        first = book.flush()
        book.gossip(entries(10, first=11), SOURCE_A, 2.0)
        second = book.flush()
        await self.assertFailure(first, StorageFault)
        await second
        self.assertEqual(book.buffered, 0)
        self.assertEqual(await book.count(), 20)

    async def test_flush_size_triggers_a_flush(self):
        """flush_size buffered entries schedule a flush without waiting for
        the interval, and without writing inside gossip() itself."""
        path = self.path()
        book = await self.opened(path, flush_size=100)
        book.gossip(entries(60), SOURCE_A, 1.0)
        for n in range(39):
            book.attempt(1, address(n + 1), "unreachable", reason="refused", now=2.0)
        self.assertIsNone(book._size_call)
        book.attempt(1, address(1), "unreachable", reason="refused", now=3.0)
        self.assertEqual(book.buffered, 100)  # scheduled, not done in the call
        self.assertIsNotNone(book._size_call)
        db = self.raw(path)
        await self.until(
            lambda: db.execute("SELECT count(*) FROM observations").fetchone()[0] == 40
        )
        self.assertEqual(db.execute("SELECT count(*) FROM addresses").fetchone()[0], 60)
        await self.until(lambda: book._size_call is None)

    async def test_periodic_flush_survives_failure(self):
        """The flush loop logs a failed flush and goes on; the next tick
        writes the kept batch."""
        path = self.path()
        book = await self.opened(path, flush_interval=0.02)
        self.fail_writes(book, 1)
        book.gossip(entries(5), SOURCE_A, 1.0)
        db = self.raw(path)
        await self.until(lambda: db.execute("SELECT count(*) FROM addresses").fetchone()[0] == 5)
        self.assertEqual(self.flushLoggedErrors(), [])  # one line, no traceback

    async def test_gossip_before_open(self):
        """Gossip buffered before open() is written by the first flush."""
        book = self.book(flush_size=10)
        book.gossip(entries(20), SOURCE_A, 1.0)
        await book.open()
        self.assertEqual(await book.count(), 20)


class CrawlTests(BookTestCase):
    """start_crawl, finish_crawl, crawls."""

    async def test_start_and_finish(self):
        """Crawls get increasing ids, their params and summary round-trip as
        JSON, and finishing an unknown crawl is an error."""
        book = await self.opened()
        first = await book.start_crawl("mainnet", {"max_connections": 500}, 100.0)
        second = await book.start_crawl("testnet4", {"seeds": ["a", "b"]}, 200.0)
        self.assertEqual((first, second), (1, 2))
        await book.finish_crawl(first, {"reachable": 9000, "unreachable": 40000}, 150.0)
        self.assertEqual(await book.crawls(), [
            dict(id=1, network="mainnet", started=100.0, finished=150.0,
                 params={"max_connections": 500},
                 summary={"reachable": 9000, "unreachable": 40000},
                 status="finished", ended=150.0, end_reason=None),
            dict(id=2, network="testnet4", started=200.0, finished=None,
                 params={"seeds": ["a", "b"]}, summary=None,
                 status="running", ended=None, end_reason=None),
        ])
        await self.assertFailure(book.finish_crawl(99, {}, 1.0), AddressBookError)

    async def test_network_object(self):
        """A NetworkParams-like object is stored by its name."""

        class Params:
            name = "signet"

        book = await self.opened()
        await book.start_crawl(Params(), {}, 1.0)
        [crawl] = await book.crawls()
        self.assertEqual(crawl["network"], "signet")


CHILD = textwrap.dedent(
    """
    import sys
    from twisted.internet import defer, task
    from bitpeer.store.addrbook import AddressBook
    from bitpeer.wire.address import AddrEntry, Network, NetworkAddress

    path, run, per_flush = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    async def main(reactor):
        book = AddressBook(path, reactor, flush_interval=3600, flush_size=10**9)
        await book.open()
        source = NetworkAddress(Network.IPV4, bytes([127, 0, 0, 1]), 8333)
        flushes = 0
        while True:
            book.gossip(
                [
                    AddrEntry(1700000000, 1, NetworkAddress(
                        Network.IPV6,
                        run.to_bytes(4, "big") + flushes.to_bytes(8, "big") + i.to_bytes(4, "big"),
                        8333,
                    ))
                    for i in range(per_flush)
                ],
                source,
                float(flushes),
            )
            await book.flush()
            flushes += 1
            sys.stdout.write(f"{flushes}\\n")
            sys.stdout.flush()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    """
)


class CrashTests(BookTestCase):
    """SIGKILL at any instant: committed flushes survive, the file is sound."""

    PER_FLUSH = 500

    def run_and_kill(self, script, path, run, lines, rng):
        """
        Run the child until it has reported ``lines`` commits, kill it with
        SIGKILL a random few milliseconds later (usually mid-transaction),
        and return the highest commit count it reported.
        """
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(bitpeer.__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        child = subprocess.Popen(
            [sys.executable, script, path, str(run), str(self.PER_FLUSH)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        try:
            out = b""
            deadline = time.monotonic() + 30
            fd = child.stdout.fileno()
            while out.count(b"\n") < lines:
                ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
                if not ready:
                    self.fail(f"child reported {out!r} within 30s")
                chunk = os.read(fd, 4096)
                if not chunk:
                    child.wait()
                    self.fail(f"child exited {child.returncode}: {child.stderr.read()!r}")
                out += chunk
            time.sleep(rng.uniform(0, 0.02))
            child.send_signal(signal.SIGKILL)
            child.wait()
            out += child.stdout.read()  # what it printed before dying
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
        self.assertEqual(child.returncode, -signal.SIGKILL)
        reported = [int(line) for line in out.split(b"\n")[:-1]]
        return reported[-1]

    async def test_sigkill_loses_nothing_committed(self):
        """
        Three runs of a child that flushes in a tight loop are each SIGKILLed
        at a random instant.  After each, the file passes integrity_check and
        holds at least every row the child reported as committed (it may hold
        one flush more: killed after COMMIT, before the print).
        """
        directory = self.tmpdir()
        path = os.path.join(directory, "book.sqlite")
        script = os.path.join(directory, "child.py")
        with open(script, "w") as f:
            f.write(CHILD)
        rng = random.Random(20240601)
        committed = 0
        for run, lines in enumerate((1, 3, 6)):
            committed += self.run_and_kill(script, path, run, lines, rng) * self.PER_FLUSH
            db = sqlite3.connect(path)
            try:
                self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                rows = db.execute("SELECT count(*) FROM addresses").fetchone()[0]
            finally:
                db.close()
            self.assertGreaterEqual(rows, committed)
            self.assertEqual(rows % self.PER_FLUSH, 0)  # whole flushes only
            committed = rows
        book = await self.opened(path)
        self.assertEqual(await book.count(), committed)


class Logged:
    """The address book's log lines while a test runs."""

    def __init__(self, case):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def lines(self, level=None):
        """The book's formatted lines (at ``level`` only, if given)."""
        return [
            formatEvent(e) for e in self.events
            if e.get("log_namespace", "").startswith("bitpeer.store.addrbook")
            and (level is None or e.get("log_level") == level)
        ]


class StorageFaultTests(BookTestCase):
    """A failing disk: one line, nothing lost, one line when it recovers."""

    async def test_fault_logged_once_then_recovery(self):
        """Three flushes fail on a full disk: each errbacks with StorageFault
        and keeps every entry, but only the first logs, in one line naming
        the path, the fault and what is kept, without a traceback.  The
        next flush writes it all and says so in one more line."""
        path = self.path()
        book = await self.opened(path)
        log = Logged(self)
        fail_writes(self, 3)
        book.gossip(entries(100), SOURCE_A, 1.0)
        book.attempt(1, address(1), "unreachable", reason="refused", now=2.0)
        for _ in range(3):
            fault = await self.assertFailure(book.flush(), StorageFault)
            self.assertEqual((fault.what, fault.kept), ("disk full", 101))
            self.assertEqual(book.buffered, 101)
            self.assertTrue(book.health.failing)
        [line] = log.lines()
        self.assertIn(path, line)
        self.assertIn("disk full", line)
        self.assertIn("101 entries kept", line)
        self.assertEqual(self.flushLoggedErrors(), [])
        await book.flush()
        self.assertEqual(book.buffered, 0)
        self.assertEqual(await book.count(), 100)
        recovered = log.lines()[1:]
        self.assertEqual(len(recovered), 1)
        self.assertIn("writing again after 3 failed flushes (disk full)", recovered[0])
        health = book.health
        self.assertTrue(health.ok)
        self.assertEqual((health.failed_flushes, health.last_error), (3, "disk full"))
        self.assertIn("everything written", health.describe())

    async def test_changing_fault_logged_again(self):
        """A different fault in the same streak gets its own line."""
        book = await self.opened()
        log = Logged(self)
        locked = sqlite3.OperationalError("database is locked")
        fail_writes(self, 1)
        book.gossip(entries(5), SOURCE_A, 1.0)
        await self.assertFailure(book.flush(), StorageFault)
        fail_writes(self, 1, locked)
        fault = await self.assertFailure(book.flush(), StorageFault)
        self.assertEqual(fault.what, "the database is locked by another program")
        self.assertEqual(len(log.lines()), 2)

    async def test_bug_logged_once_with_traceback(self):
        """An error that is no storage fault (a bug) is passed on as it is,
        logged with its traceback the first time only; the batch is kept."""
        book = await self.opened()
        fail_writes(self, 2, RuntimeError("a bug"))
        book.gossip(entries(5), SOURCE_A, 1.0)
        await self.assertFailure(book.flush(), RuntimeError)
        await self.assertFailure(book.flush(), RuntimeError)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        await book.flush()
        self.assertEqual(await book.count(), 5)

    async def test_close_loses_buffer_in_one_line(self):
        """If the last flush fails, close() still closes the database, drops
        the lock and stops the thread; the loss is one line, health.lost,
        and an EntriesLost errback whose message is that line."""
        path = self.path()
        book = await self.opened(path)
        log = Logged(self)
        failing = fail_writes(self, 10**6)
        book.gossip(entries(40), SOURCE_A, 1.0)
        error = await self.assertFailure(book.close(), EntriesLost)
        self.assertEqual((error.lost, error.what), (40, "disk full"))
        self.assertEqual(log.lines(), [str(error)])
        self.assertIn(path, str(error))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertIsNone(book._pool)
        self.assertEqual(book.health.lost, 40)
        self.assertIn("40 entries lost at close (disk full)", book.health.describe())
        await book.close()  # later calls succeed
        failing[0] = 0
        again = self.book(path)
        await again.open()  # the lock was released

    async def test_rejected_rows(self):
        """A row SQLite cannot take is written to rejected, counted, logged
        once in one line, and not retried; the rest of the flush commits."""
        path = self.path()
        book = await self.opened(path)
        log = Logged(self)
        book.gossip(entries(10), SOURCE_A, 1.0)
        book.attempt(1, address(1), "reachable", now=2.0,
                     info=peer_info(address(1), start_height=1 << 70))
        book.attempt(1, address(2), "unreachable", reason="refused", now=3.0)
        await book.flush()
        self.assertEqual(book.buffered, 0)
        self.assertEqual(len(await book.observations(1)), 1)
        [line] = log.lines()
        self.assertIn("could not be written (OverflowError", line)
        self.assertEqual(book.health.rejected, 1)
        self.assertFalse(book.health.ok)
        self.assertIn("1 rows rejected", book.health.describe())
        await book.flush()
        [(kind, error)] = self.raw(path).execute("SELECT kind, error FROM rejected").fetchall()
        self.assertEqual(kind, "observation")

    async def test_many_rejected_rows_few_lines(self):
        """A flush of many bad rows logs MAX_REJECT_LINES of them and one
        line for the rest."""
        book = await self.opened()
        log = Logged(self)
        for n in range(30):
            book.attempt(None, address(n), "unreachable", reason="refused", now=1.0)
        await book.flush()
        self.assertEqual(len(log.lines()), MAX_REJECT_LINES + 1)
        self.assertIn("20 more rows", log.lines()[-1])
        self.assertEqual(book.health.rejected, 30)


def mount_tmpfs(case, size, *options):
    """
    A fresh tmpfs of ``size`` (mount's syntax, e.g. ``2m``), unmounted at
    cleanup (after the books, which are closed first: cleanups run last
    in, first out); the test is skipped where mounting is not permitted.
    """
    directory = tempfile.mkdtemp(prefix="bitpeer-addrbook-tmpfs-")
    case.addCleanup(os.rmdir, directory)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs",
             directory], capture_output=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SkipTest(f"cannot mount a tmpfs here: {error}")
    if done.returncode:
        raise SkipTest(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    case.addCleanup(subprocess.run, ["umount", "-l", directory], capture_output=True)
    return directory


def remount(directory, *options):
    """Change a tmpfs's mount options (``ro``, ``rw``)."""
    subprocess.run(["mount", "-o", ",".join(["remount", *options]), directory],
                   check=True, capture_output=True, timeout=30)


class RealDiskTests(BookTestCase):
    """A real full disk and a real read-only file system (tmpfs)."""

    async def test_full_disk(self):
        """A tmpfs fills up mid-crawl: the flush fails as "disk full" in one
        line, keeps its entries, and writes them all once space is freed;
        the book is sound throughout."""
        directory = mount_tmpfs(self, "4m")
        path = os.path.join(directory, "book.sqlite")
        book = await self.opened(path, flush_size=10**9)
        log = Logged(self)
        book.gossip(entries(100), SOURCE_A, 1.0)
        await book.flush()
        filler = os.path.join(directory, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as error:
                self.assertEqual(error.errno, errno.ENOSPC)
        book.gossip(entries(20000, first=1000), SOURCE_A, 2.0)
        for n in range(2):
            fault = await self.assertFailure(book.flush(), StorageFault)
            self.assertEqual(fault.what, "disk full")
            self.assertEqual(book.buffered, 20000)
        self.assertEqual(len(log.lines()), 1)
        self.assertEqual(self.flushLoggedErrors(), [])
        os.remove(filler)
        await book.flush()
        self.assertEqual(await book.count(), 20100)
        self.assertIn("writing again", log.lines()[-1])
        await book.close()
        db = self.raw(path)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")

    async def test_read_only_file_system(self):
        """A book on a file system remounted read-only is refused as such
        (SQLite itself would say it is not a database, or cannot be
        opened), with nothing written."""
        directory = mount_tmpfs(self, "4m")
        path = os.path.join(directory, "book.sqlite")
        book = await self.opened(path)
        book.gossip(entries(10), SOURCE_A, 1.0)
        await book.close()
        remount(directory, "ro")
        self.addCleanup(remount, directory, "rw")
        error = await self.assertFailure(self.book(path).open(), ReadOnlyFileSystem)
        self.assertIn(path, str(error))
        self.assertIn("read-only file system", str(error))


UNPRIVILEGED = """
import sys
from bitpeer.store.bookdb import open_book, close_book
try:
    close_book(open_book(sys.argv[1]))
except Exception as error:
    print(type(error).__name__, error)
else:
    print("opened")
"""


class PermissionTests(BookTestCase):
    """
    Files and directories this user may not write, for real: the book is
    opened by a child process.  Root may write anything, so when the tests
    run as root the child is root without the capabilities that let it
    (setpriv drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER
    from its bounding set): for files root owns it is then held to their
    modes like any owner.  Otherwise the child is this user.
    """

    def open_as_other(self, path):
        """The class name and message of what open_book raised in the child."""
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(bitpeer.__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-c", UNPRIVILEGED, path]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise SkipTest("running as root without setpriv: cannot drop the "
                               "capabilities that let root write read-only files")
            command = [setpriv, "--bounding-set",
                       "-dac_override,-dac_read_search,-fowner", *command]
        try:
            done = subprocess.run(command, capture_output=True, env=env, timeout=60)
        except (OSError, subprocess.SubprocessError) as error:
            raise SkipTest(f"cannot run the child: {error}")
        if done.returncode:
            raise SkipTest(f"the child could not run: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip()

    def book_file(self, mode, dir_mode=0o700):
        """A real book in a fresh directory, with these modes (the
        directory is made writable again at cleanup)."""
        directory = self.tmpdir()
        path = os.path.join(directory, "book.sqlite")
        bookdb.close_book(bookdb.open_book(path))
        os.chmod(path, mode)
        os.chmod(directory, dir_mode)
        self.addCleanup(os.chmod, directory, 0o700)
        return path

    def test_read_only_file(self):
        """A book this user may read but not write: a read-only file, not
        "not a SQLite database" as SQLite would have it."""
        path = self.book_file(0o444)
        self.assertTrue(self.open_as_other(path).startswith(f"ReadOnlyFile address book {path}"))

    def test_unreadable_file(self):
        """A book this user may not even read: permission denied."""
        path = self.book_file(0o000)
        self.assertTrue(self.open_as_other(path).startswith("PermissionDenied"))

    def test_read_only_directory(self):
        """A writable book in a directory where the -wal, -shm and lock
        files cannot be made."""
        path = self.book_file(0o644, dir_mode=0o500)
        self.assertTrue(self.open_as_other(path).startswith("ReadOnlyDirectory"))


class OpenCheckTests(BookTestCase):
    """What open() proves before a crawl dials: lock, soundness, place."""

    async def test_second_book_on_same_path_refused(self):
        """A second AddressBook on an open book is refused with the path and
        this process's id, touching nothing; once the first is closed the
        second opens."""
        path = self.path()
        first = await self.opened(path)
        first.gossip(entries(3), SOURCE_A, 1.0)
        second = self.book(path)
        error = await self.assertFailure(second.open(), AddressBookInUse)
        self.assertEqual(error.pid, os.getpid())
        self.assertIn(path, str(error))
        self.assertIsNone(second._pool)
        await first.close()
        third = await self.opened(path)
        self.assertEqual(await third.count(), 3)

    async def test_failed_open_releases_lock(self):
        """A book refused for its schema is not left locked."""
        path = self.path()
        await (await self.opened(path)).close()
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.close()
        await self.assertFailure(self.book(path).open(), NewerSchema)
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {LATEST}")
        db.close()
        await self.opened(path)

    async def test_missing_directory(self):
        """A path in a directory that does not exist says so, creating
        nothing."""
        path = os.path.join(self.tmpdir(), "nowhere", "book.sqlite")
        error = await self.assertFailure(self.book(path).open(), MissingDirectory)
        self.assertIn("does not exist", str(error))

    async def corrupt(self, offset, length):
        """A closed book of 3,000 addresses with ``length`` bytes of junk
        written at ``offset``."""
        path = self.path()
        book = await self.opened(path)
        book.gossip(entries(3000), SOURCE_A, 1.0)
        await book.close()
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(random.Random(offset).randbytes(length))
        return path

    async def test_corrupted_page(self):
        """A book with a page overwritten is refused as corrupted, quoting
        SQLite's quick_check, before anything is written."""
        path = await self.corrupt(4096 * 3, 4096)
        with open(path, "rb") as f:
            before = f.read()
        error = await self.assertFailure(self.book(path).open(), CorruptBook)
        self.assertIn(path, str(error))
        self.assertIn("corrupted", str(error))
        self.assertNotIn("\n", str(error))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)

    async def test_corrupted_schema_page(self):
        """Junk over the first page's schema (its header intact) is
        corruption too, not "another program's database"."""
        path = await self.corrupt(100, 3996)
        await self.assertFailure(self.book(path).open(), CorruptBook, NotAnAddressBook)

    async def test_large_book_checked_in_part(self):
        """A book over QUICK_CHECK_MAX_BYTES has its crawls and addresses
        checked, and the log says how to check the rest."""
        path = self.path()
        await (await self.opened(path)).close()
        self.patch(bookdb, "QUICK_CHECK_MAX_BYTES", 0)
        log = Logged(self)
        await self.opened(path)
        [line] = log.lines()
        self.assertIn("PRAGMA integrity_check", line)

    async def test_open_proves_writing(self):
        """The open commits a write (user_version, rewritten as it is): a
        disk that cannot take one fails the open, not the first flush."""
        path = self.path()
        await (await self.opened(path)).close()
        real = bookdb._migrate

        def migrate(db, path, migrations):
            raise disk_full()

        self.patch(bookdb, "_migrate", migrate)
        error = await self.assertFailure(self.book(path).open(), AddressBookError)
        self.assertIn("disk full", str(error))
        self.patch(bookdb, "_migrate", real)
        await self.opened(path)


class MemoryTests(BookTestCase):
    """AddressBook(":memory:"): no file, no lock, no WAL."""

    async def test_memory_book(self):
        """An in-memory book does everything a file book does, two may be
        open at once, and no file appears."""
        before = set(os.listdir("."))
        book = await self.opened(":memory:")
        other = await self.opened(":memory:")
        crawl = await book.start_crawl("mainnet", {}, 1.0)
        book.gossip(entries(5), SOURCE_A, 1.0)
        book.attempt(crawl, address(1), "reachable", info=peer_info(address(1)), now=2.0)
        self.assertEqual(await book.count(), 5)
        self.assertEqual(await other.count(), 0)
        self.assertEqual(len(await book.verdicts(crawl)), 1)
        self.assertIsNone(book._book.lock)
        await book.close()
        self.assertEqual(set(os.listdir(".")), before)


class ResumeTests(BookTestCase):
    """unfinished_crawl, verdicts, abandon_crawl: what a restart needs."""

    async def test_unfinished_and_verdicts(self):
        """A crawl that was started and not finished is found by network,
        with its params; its verdicts rebuild what it found."""
        path = self.path()
        book = await self.opened(path)
        crawl = await book.start_crawl("mainnet", {"concurrency": 5}, 100.0)
        agent = b"\xff\xfe\xc3\x28".decode("utf-8", "surrogateescape")
        book.attempt(crawl, address(1), "reachable", reason="answered", returned=7,
                     info=peer_info(address(1), user_agent=agent), now=101.0)
        book.attempt(crawl, address(2), "unreachable", reason="refused",
                     detail="ECONNREFUSED", now=102.0)
        await book.close()  # as a SIGTERM would
        book = await self.opened(path)
        self.assertEqual(await book.unfinished_crawl("mainnet"),
                         UnfinishedCrawl(crawl, "mainnet", 100.0, {"concurrency": 5}))
        self.assertIsNone(await book.unfinished_crawl("testnet4"))
        verdicts = await book.verdicts(crawl)
        self.assertEqual(set(verdicts), {address(1), address(2)})
        self.assertEqual(verdicts[address(1)].user_agent, agent)
        self.assertEqual((verdicts[address(1)].reason, verdicts[address(1)].returned),
                         ("answered", 7))
        self.assertEqual(verdicts[address(2)].detail, "ECONNREFUSED")
        self.assertIsInstance(verdicts[address(2)], Verdict)
        await book.finish_crawl(crawl, {"reachable": 1}, 200.0)
        self.assertIsNone(await book.unfinished_crawl("mainnet"))

    async def test_abandon(self):
        """abandon_crawl ends a running crawl without a snapshot, saying why;
        a crawl that is not running cannot be abandoned."""
        book = await self.opened()
        crawl = await book.start_crawl("mainnet", {}, 1.0)
        await book.abandon_crawl(crawl, 5.0, "--fresh: started over")
        self.assertIsNone(await book.unfinished_crawl("mainnet"))
        [row] = await book.crawls()
        self.assertEqual((row["status"], row["ended"], row["finished"], row["end_reason"]),
                         ("abandoned", 5.0, None, "--fresh: started over"))
        await self.assertFailure(book.abandon_crawl(crawl, 6.0, "again"), AddressBookError)
        await self.assertFailure(book.abandon_crawl(99, 6.0, "none"), AddressBookError)

    async def test_new_crawl_supersedes_running_one(self):
        """Starting a crawl abandons the network's running one, so that no
        crawl stays unfinished forever; other networks' are left alone."""
        book = await self.opened()
        old = await book.start_crawl("mainnet", {}, 1.0)
        signet = await book.start_crawl("signet", {}, 2.0)
        new = await book.start_crawl("mainnet", {}, 3.0)
        rows = {r["id"]: r for r in await book.crawls()}
        self.assertEqual((rows[old]["status"], rows[old]["ended"], rows[old]["end_reason"]),
                         ("abandoned", 3.0, f"superseded by crawl {new}"))
        self.assertEqual(rows[signet]["status"], "running")
        self.assertEqual((await book.unfinished_crawl("mainnet")).id, new)


class MigrationTests(BookTestCase):
    """Version 2 books, as bitpeer wrote them before this schema."""

    async def test_version_2_book_upgraded(self):
        """
        A version-2 book keeps every row; its peer text is rewritten in the
        escaped form (a changed user agent's bytes kept), its crawls get a
        status: finished ones finished, an unfinished one with a later
        crawl abandoned at that crawl's start, the newest still running.
        """
        path = self.path()
        every = addrbook.MIGRATIONS
        self.patch(addrbook, "MIGRATIONS", every[:2])
        await (await self.opened(path)).close()
        db = self.raw(path)
        agent = "/bad\nagent\\x/"
        db.execute("INSERT INTO addresses (network, host, port, first_seen, last_seen,"
                   " user_agent, last_failure_detail) VALUES (1, ?, 8333, 1.0, 1.0, ?, ?)",
                   (address(1)[1], agent, "tab\there"))
        db.execute("INSERT INTO addresses (network, host, port, first_seen, last_seen,"
                   " user_agent) VALUES (1, ?, 8333, 1.0, 1.0, '/Satoshi:27.0.0/')",
                   (address(2)[1],))
        db.executemany("INSERT INTO crawls (network, started, finished) VALUES (?, ?, ?)", [
            ("mainnet", 1.0, None), ("mainnet", 2.0, 3.0), ("mainnet", 4.0, None),
            ("signet", 5.0, None),
        ])
        db.execute("INSERT INTO observations (crawl_id, network, host, port, at, outcome,"
                   " user_agent, reason) VALUES (3, 1, ?, 8333, 4.5, 'reachable', ?, ?)",
                   (address(1)[1], agent, "é\x07"))
        db.commit()
        db.close()
        self.patch(addrbook, "MIGRATIONS", every)
        book = await self.opened(path)
        self.assertEqual(self.raw(path).execute("PRAGMA user_version").fetchone()[0], LATEST)
        row = self.row(path, address(1))
        self.assertEqual((row["user_agent"], row["user_agent_raw"]),
                         ("/bad\\x0aagent\\\\x/", agent.encode()))
        self.assertEqual(row["last_failure_detail"], "tab\\x09here")
        row = self.row(path, address(2))
        self.assertEqual((row["user_agent"], row["user_agent_raw"]), ("/Satoshi:27.0.0/", None))
        self.assertEqual(
            [(c["id"], c["status"], c["ended"]) for c in await book.crawls()],
            [(1, "abandoned", 2.0), (2, "finished", 3.0), (3, "running", None),
             (4, "running", None)],
        )
        self.assertEqual((await book.unfinished_crawl("mainnet")).id, 3)
        [verdict] = (await book.verdicts(3)).values()
        self.assertEqual((verdict.user_agent, verdict.reason), (agent, "é\x07"))
        self.assertEqual(len(await book.known()), 2)

    async def test_version_3_book_upgraded(self):
        """
        A version-3 book gains each address's failure streak, counted from
        its observations (the failures after its last success, across
        crawls); later attempts carry it on.
        """
        path = self.path()
        every = addrbook.MIGRATIONS
        self.patch(addrbook, "MIGRATIONS", every[:3])
        await (await self.opened(path)).close()
        db = self.raw(path)
        histories = {1: "RUU", 2: "U", 3: "UUR", 4: "", 5: "URURUUU"}
        for n in histories:
            db.execute("INSERT INTO addresses (network, host, port, first_seen, last_seen)"
                       " VALUES (1, ?, 8333, 1.0, 1.0)", (address(n)[1],))
        db.executemany("INSERT INTO crawls (network, started) VALUES ('mainnet', ?)",
                       [(1.0,), (2.0,)])
        # Interleaved, as crawls record them; over two crawls.
        rows = [(1 + (i > 2), address(n)[1], float(i),
                 "reachable" if outcome == "R" else "unreachable")
                for i in range(7) for n, history in histories.items()
                for outcome in history[i:i + 1]]
        db.executemany("INSERT INTO observations (crawl_id, network, host, port, at, outcome)"
                       " VALUES (?, 1, ?, 8333, ?, ?)", rows)
        db.commit()
        db.close()
        self.patch(addrbook, "MIGRATIONS", every)
        book = await self.opened(path)
        self.assertEqual({k.address: k.failure_streak for k in await book.known()},
                         {address(1): 2, address(2): 1, address(3): 0, address(4): 0,
                          address(5): 3})
        book.attempt(2, address(1), "unreachable", reason="refused", now=9.0)
        book.attempt(2, address(3), "unreachable", reason="refused", now=9.0)
        book.attempt(2, address(5), "reachable", info=peer_info(address(5)), now=9.0)
        await book.flush()
        self.assertEqual([self.row(path, address(n))["failure_streak"] for n in (1, 3, 5)],
                         [3, 1, 0])
        self.assertEqual(self.raw(path).execute("PRAGMA user_version").fetchone()[0], LATEST)
