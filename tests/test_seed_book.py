"""
Tests for the DNS seeder's part of the address book: migration 5's
``reliability`` table, the seeder's runs (which no crawl resumes), the
read-only open ``bitpeer dump`` uses, and windows that survive a restart.
"""

import os
import sqlite3
from types import SimpleNamespace

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.seed.good import GoodRule
from bitpeer.seed.watch import Watch
from bitpeer.store.addrbook import AddressBook
from bitpeer.store.bookcheck import AddressBookError, NewerSchema, NotAnAddressBook
from bitpeer.store.bookdb import (
    MEMORY,
    end_seeding,
    insert_crawl,
    insert_seeding,
    open_book,
    open_read_only,
    read_crawls,
    read_dump,
    read_seed_state,
    read_unfinished,
    write_batch,
    write_reliability,
)
from bitpeer.store.bookschema import MIGRATIONS, SEEDING
from bitpeer.networks import MAINNET
from .test_cli import scratch
from .test_seed_watch import NODE, OTHER, T0, handshake


def watch_after_tests():
    """A watch that tested NODE (up, then up) and OTHER (down)."""
    watch = Watch(GoodRule.for_network(MAINNET))
    watch.tested(NODE, True, handshake(NODE), T0)
    watch.tested(NODE, True, handshake(NODE), T0 + 1000)
    watch.tested(OTHER, False, None, T0)
    return watch


def attempts(crawl_id):
    """The book's attempts for watch_after_tests's tests."""
    return [(crawl_id, NODE, "reachable", None, None, handshake(NODE), None, T0),
            (crawl_id, NODE, "reachable", None, None, handshake(NODE), None, T0 + 1000),
            (crawl_id, OTHER, "unreachable", "refused", "refused", None, None, T0)]


class SeedStateTests(SynchronousTestCase):
    """The windows written and read back, on the worker thread's side."""

    def setUp(self):
        self.db = open_book(MEMORY).db
        self.addCleanup(self.db.close)

    def test_schema_version(self):
        self.assertEqual(self.db.execute("PRAGMA user_version").fetchone()[0],
                         MIGRATIONS[-1][0])

    def test_round_trip(self):
        watch = watch_after_tests()
        run = insert_seeding(self.db, "mainnet", "{}", T0)
        write_batch(self.db, {}, attempts(run), T0)
        write_reliability(self.db, watch.take_changed())
        state = {r.address: r for r in read_seed_state(self.db)}
        again = Watch(watch.rule)
        again.load(state.values())
        self.assertEqual(again.reliability, watch.reliability)
        self.assertEqual(again.good, {NODE})
        self.assertEqual((state[NODE].version, state[NODE].height, state[NODE].services),
                         (70016, 900_000, 0x409))

    def test_untested_addresses_have_no_windows(self):
        write_batch(self.db, {}, attempts(1)[2:], T0)
        [record] = read_seed_state(self.db)
        self.assertEqual((record.tries, record.windows), (0, ()))

    def test_rewrite_replaces(self):
        watch = watch_after_tests()
        write_batch(self.db, {}, attempts(1), T0)
        write_reliability(self.db, watch.take_changed())
        watch.tested(NODE, False, None, T0 + 2000)
        write_reliability(self.db, watch.take_changed())
        self.assertEqual(self.db.execute("SELECT count(*) FROM reliability").fetchone()[0], 2)
        state = {r.address: r for r in read_seed_state(self.db)}
        self.assertEqual((state[NODE].tries, state[NODE].successes), (3, 2))

    def test_dump_rows(self):
        """Nodes with a success only, the most reliable over 30 days first."""
        watch = watch_after_tests()
        write_batch(self.db, {}, attempts(1), T0)
        write_reliability(self.db, watch.take_changed())
        [row] = read_dump(self.db)
        address, good, last_success, *shares, blocks, services, version, agent = row
        self.assertEqual((address, good, last_success), (NODE, True, T0 + 1000))
        self.assertEqual(shares, [w.reliability for w in watch.reliability[NODE].windows])
        self.assertEqual((blocks, services, version, agent),
                         (900_000, 0x409, 70016, "/Satoshi:27.0.0/"))


class SeedingRunTests(SynchronousTestCase):
    """A seeder's run is a crawls row that no crawl takes over."""

    def setUp(self):
        self.db = open_book(MEMORY).db
        self.addCleanup(self.db.close)

    def test_never_resumed_nor_superseded(self):
        run = insert_seeding(self.db, "mainnet", "{}", T0)
        self.assertIsNone(read_unfinished(self.db, "mainnet"))
        crawl = insert_crawl(self.db, "mainnet", "{}", T0 + 1)
        self.assertEqual(read_unfinished(self.db, "mainnet").id, crawl)
        statuses = {c["id"]: c["status"] for c in read_crawls(self.db)}
        self.assertEqual(statuses[run], SEEDING)

    def test_end(self):
        run = insert_seeding(self.db, "mainnet", "{}", T0)
        end_seeding(self.db, run, T0 + 5)
        [row] = read_crawls(self.db)
        self.assertEqual((row["status"], row["ended"]), ("seeded", T0 + 5))


class ReadOnlyTests(SynchronousTestCase):
    """open_read_only: beside a writer, and one clear error otherwise."""

    def path(self, name="book.sqlite"):
        directory = scratch(self)
        return os.path.join(directory, name)

    def test_reads_beside_an_open_book(self):
        path = self.path()
        opened = open_book(path)
        self.addCleanup(opened.lock.release)
        self.addCleanup(opened.db.close)
        db, version = open_read_only(path)
        self.addCleanup(db.close)
        self.assertEqual(version, MIGRATIONS[-1][0])
        with self.assertRaises(sqlite3.OperationalError):
            db.execute("DELETE FROM addresses")

    def test_missing(self):
        path = self.path()
        error = self.assertRaises(AddressBookError, open_read_only, path)
        self.assertIn("does not exist", str(error))
        self.assertFalse(os.path.exists(path))

    def test_not_sqlite(self):
        path = self.path()
        with open(path, "w") as f:
            f.write("not a database\n")
        self.assertRaises(NotAnAddressBook, open_read_only, path)

    def test_other_sqlite(self):
        path = self.path()
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE t (x)")
        other.close()
        self.assertRaises(NotAnAddressBook, open_read_only, path)

    def test_newer(self):
        path = self.path()
        other = sqlite3.connect(path)
        other.execute("PRAGMA user_version = 99")
        other.execute("CREATE TABLE t (x)")
        other.close()
        self.assertRaises(NewerSchema, open_read_only, path)


class RestartTests(TestCase):
    """The windows a seeder saved are there when it starts again."""

    @defer.inlineCallbacks
    def test_restart_keeps_windows(self):
        directory = scratch(self)
        path = os.path.join(directory, "book.sqlite")
        watch = watch_after_tests()
        book = AddressBook(path, reactor)
        yield book.open()
        run = yield book.start_seeding(MAINNET, {}, T0)
        for crawl_id, address, outcome, reason, detail, info, returned, at in attempts(run):
            book.attempt(crawl_id, address, outcome, reason=reason, detail=detail, info=info,
                         now=at)
        yield book.save_reliability(watch.take_changed())
        yield book.end_seeding(run, T0 + 2000)
        yield book.close()

        book = AddressBook(path, reactor)
        yield book.open()
        try:
            again = Watch(watch.rule)
            again.load((yield book.seed_state()))
            self.assertIsNone((yield book.unfinished_crawl(MAINNET)))
        finally:
            yield book.close()
        self.assertEqual(again.reliability, watch.reliability)
        self.assertEqual(again.good, watch.good)
        self.assertEqual(again.next_try, watch.next_try)


class SeederStorageFaultTests(TestCase):
    """A full disk while the seeder writes: a StorageFault (an
    AddressBookError), and the monitor keeps the windows for the next save."""

    @defer.inlineCallbacks
    def test_disk_full_is_a_storage_fault_and_nothing_is_lost(self):
        from bitpeer.seed import monitor
        from bitpeer.store import addrbook
        from bitpeer.store.bookcheck import StorageFault

        def full(db, records):
            raise sqlite3.OperationalError("database or disk is full")

        book = AddressBook(os.path.join(scratch(self), "book.sqlite"), reactor)
        yield book.open()
        try:
            watch = watch_after_tests()
            self.patch(addrbook, "write_reliability", full)
            records = watch.take_changed()
            with self.assertRaises(StorageFault) as caught:
                yield book.save_reliability(records)
            self.assertIsInstance(caught.exception, AddressBookError)
            self.assertIn("disk full", str(caught.exception))
            watch.give_back(records)
            service = monitor.MonitorService({}, reactor, SimpleNamespace(book=book), watch,
                                             on_fault=self.fail)
            yield defer.ensureDeferred(service._save())
            self.assertEqual(len(watch.take_changed()), len(records))
        finally:
            yield book.close()
