"""
Tests for bitpeer.addrbook: the SQLite address book.

These are trial ``TestCase``s on the real reactor: the book writes in its own
worker thread, so the Deferreds only fire when the reactor runs.  Every test
closes its book (``addCleanup``), which stops the thread and the flush loop.
Databases live in fresh directories from ``tempfile`` (removed afterwards):
trial's ``mktemp`` is relative to the working directory, which under pytest
is the repository.  The book is checked from outside with a plain sqlite3
connection where that is what a reader of the file would see.
"""

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
from twisted.trial.unittest import TestCase

import bitpeer
from bitpeer import addrbook, bookdb
from bitpeer.addrbook import (
    AddressBook,
    AddressBookClosed,
    AddressBookError,
    KnownAddress,
    NewerSchema,
    NotAnAddressBook,
    StorageFault,
)
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
        self.assertEqual(tables, {"addresses", "crawls", "observations", "rejected"})
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
                last_success=None, last_failure_reason="refused",
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
    from bitpeer.addrbook import AddressBook
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
