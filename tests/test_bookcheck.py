"""
Tests for bitpeer.store.bookcheck: telling storage faults from row faults, the
checks made before SQLite opens a book, and the one-process lock.

The checks that depend on who runs them (a read-only file stops anyone but
root) are tested here with injected ``access``/``statvfs``, and for real
in test_addrbook (a read-only tmpfs, an unprivileged child process).
"""

import errno
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

import bitpeer
from bitpeer.store.bookcheck import (
    AddressBookError,
    AddressBookInUse,
    BookLock,
    CorruptBook,
    MissingDirectory,
    NotAnAddressBook,
    PermissionDenied,
    ReadOnlyDirectory,
    ReadOnlyFile,
    ReadOnlyFileSystem,
    check_location,
    describe_fault,
    fault_code,
    has_sqlite_header,
    is_row_fault,
    open_error,
)


def sqlite_error(cls, message, name=None):
    """An sqlite3 exception as SQLite raises it (Python 3.11 adds the name)."""
    error = cls(message)
    if name is not None:
        error.sqlite_errorname = name
    return error


class FaultTests(SynchronousTestCase):
    """fault_code, describe_fault, is_row_fault."""

    def test_storage_faults_by_name(self):
        """SQLite's result-code names, extended codes included, give the
        fault in a few words."""
        cases = {
            "SQLITE_FULL": "disk full",
            "SQLITE_IOERR_WRITE": "disk I/O error",
            "SQLITE_IOERR_FSYNC": "disk I/O error",
            "SQLITE_READONLY_DBMOVED": "the database is read-only",
            "SQLITE_BUSY": "the database is locked by another program",
            "SQLITE_CORRUPT": "the database is corrupted",
            "SQLITE_NOTADB": "the file is not a SQLite database",
        }
        for name, words in cases.items():
            error = sqlite_error(sqlite3.OperationalError, "whatever", name)
            self.assertEqual(describe_fault(error), words, name)
            self.assertFalse(is_row_fault(error), name)

    def test_storage_faults_by_message(self):
        """Without a name (Python 3.10, a hand-made exception) SQLite's
        message says it; an OSError's errno too."""
        self.assertEqual(fault_code(sqlite3.OperationalError("database or disk is full")),
                         "FULL")
        self.assertEqual(fault_code(sqlite3.OperationalError("database is locked")), "BUSY")
        self.assertEqual(
            fault_code(sqlite3.OperationalError("attempt to write a readonly database")),
            "READONLY")
        self.assertEqual(fault_code(sqlite3.DatabaseError("file is not a database")), "NOTADB")
        self.assertEqual(fault_code(OSError(errno.ENOSPC, "No space left")), "FULL")
        self.assertEqual(fault_code(OSError(errno.EROFS, "Read-only file system")), "READONLY")
        self.assertIsNone(fault_code(RuntimeError("a bug")))
        self.assertEqual(describe_fault(RuntimeError("a bug")), "RuntimeError: a bug")

    def test_row_faults(self):
        """Values SQLite cannot bind and constraints are a row's fault; a
        closed database and a syntax error are not."""
        db = sqlite3.connect(":memory:")
        self.addCleanup(db.close)
        db.execute("CREATE TABLE t (a INTEGER NOT NULL)")
        for value in (1 << 64, "\udcff", object(), None):
            try:
                db.execute("INSERT INTO t VALUES (?)", (value,))
            except Exception as error:
                self.assertTrue(is_row_fault(error), (value, error))
            else:
                self.fail(f"{value!r} was bound")
        with self.assertRaises(sqlite3.OperationalError) as caught:
            db.execute("INSERT INTO nowhere VALUES (1)")
        self.assertFalse(is_row_fault(caught.exception))
        closed = sqlite3.connect(":memory:")
        closed.close()
        with self.assertRaises(sqlite3.ProgrammingError) as caught:
            closed.execute("SELECT 1")
        self.assertFalse(is_row_fault(caught.exception))
        self.assertFalse(is_row_fault(sqlite_error(sqlite3.OperationalError,
                                                   "database or disk is full", "SQLITE_FULL")))

    def test_open_errors(self):
        """What SQLite says when opening becomes the AddressBookError that
        says what to do, naming the path."""
        path = "/books/book.sqlite"
        cases = [
            (sqlite3.DatabaseError("file is not a database"), NotAnAddressBook),
            (sqlite3.DatabaseError("database disk image is malformed"), CorruptBook),
            (sqlite3.OperationalError("attempt to write a readonly database"), ReadOnlyFile),
            (sqlite3.OperationalError("unable to open database file"), PermissionDenied),
            (sqlite3.OperationalError("database or disk is full"), AddressBookError),
        ]
        for error, cls in cases:
            made = open_error(path, error)
            self.assertIsInstance(made, cls)
            self.assertIn(path, str(made))
            self.assertNotIn("\n", str(made))


class Statvfs:
    """What os.statvfs gives, with only the flags that matter."""

    def __init__(self, read_only):
        self.f_flag = os.ST_RDONLY if read_only else 0


class LocationTests(SynchronousTestCase):
    """check_location: the faults SQLite would misreport."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bitpeer-bookcheck-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "book.sqlite")

    def check(self, statvfs=None, access=None):
        check_location(self.path, statvfs=statvfs, access=access)

    def test_fine(self):
        """A new book in a writable directory passes, creating nothing."""
        self.check()
        self.assertEqual(os.listdir(self.dir), [])

    def test_missing_directory(self):
        """A path in a directory that does not exist says so."""
        self.path = os.path.join(self.dir, "no", "such", "book.sqlite")
        with self.assertRaises(MissingDirectory) as caught:
            self.check()
        self.assertIn(os.path.join(self.dir, "no", "such"), str(caught.exception))

    def test_read_only_file_system(self):
        """A read-only mount is named as such (SQLite says "not a database"
        or "unable to open")."""
        with self.assertRaises(ReadOnlyFileSystem) as caught:
            self.check(statvfs=lambda path: Statvfs(True))
        self.assertIn("read-only file system", str(caught.exception))

    def test_read_only_file(self):
        """A file this user may not write is a read-only file."""
        open(self.path, "wb").close()

        def access(path, mode):
            return not (path == self.path and mode & os.W_OK)

        with self.assertRaises(ReadOnlyFile) as caught:
            self.check(access=access)
        self.assertIn("chmod u+w", str(caught.exception))

    def test_unreadable_file(self):
        """A file this user may not read: permission denied."""
        open(self.path, "wb").close()
        with self.assertRaises(PermissionDenied):
            self.check(access=lambda path, mode: path != self.path)

    def test_read_only_directory(self):
        """A directory where the -wal and -shm files cannot be made."""
        with self.assertRaises(ReadOnlyDirectory) as caught:
            self.check(access=lambda path, mode: path != self.dir)
        self.assertIn("-wal", str(caught.exception))

    def test_directory_given(self):
        """A directory as the book's path is not a book."""
        os.mkdir(self.path)
        with self.assertRaises(NotAnAddressBook):
            self.check()

    def test_header(self):
        """Only an empty, missing or SQLite file may be opened by SQLite."""
        self.assertTrue(has_sqlite_header(self.path))
        with open(self.path, "wb") as f:
            f.write(b"notes")
        self.assertFalse(has_sqlite_header(self.path))
        os.remove(self.path)
        db = sqlite3.connect(self.path)
        db.execute("CREATE TABLE t (a)")
        db.close()
        self.assertTrue(has_sqlite_header(self.path))


HOLDER = """
import sys, time
from bitpeer.store.bookcheck import BookLock
lock = BookLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


class LockTests(SynchronousTestCase):
    """BookLock: one holder per book, released on release and on death."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bitpeer-bookcheck-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "book.sqlite")

    def test_second_lock_in_process_refused(self):
        """Two locks on one path conflict even in one process (flock locks
        belong to open file descriptions); the refusal names this process;
        after release the path can be locked again."""
        first = BookLock(self.path)
        first.acquire()
        self.addCleanup(first.release)
        with self.assertRaises(AddressBookInUse) as caught:
            BookLock(self.path).acquire()
        self.assertEqual(caught.exception.pid, os.getpid())
        self.assertIn(self.path, str(caught.exception))
        first.release()
        first.release()  # idempotent
        again = BookLock(self.path)
        again.acquire()
        again.release()
        self.assertEqual(os.listdir(self.dir), ["book.sqlite.lock"])

    def test_other_process(self):
        """A lock held by another process refuses with its pid; killing that
        process (SIGKILL: no clean-up runs) frees the book."""
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(bitpeer.__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        child = subprocess.Popen([sys.executable, "-c", HOLDER, self.path],
                                 stdout=subprocess.PIPE, env=env)
        self.addCleanup(child.stdout.close)
        try:
            ready, _, _ = select.select([child.stdout], [], [], 30)
            self.assertTrue(ready, "the child did not lock within 30 s")
            self.assertEqual(child.stdout.readline(), b"locked\n")
            with self.assertRaises(AddressBookInUse) as caught:
                BookLock(self.path).acquire()
            self.assertEqual(caught.exception.pid, child.pid)
            self.assertIn(f"process {child.pid}", str(caught.exception))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        lock = BookLock(self.path)
        deadline = time.monotonic() + 10
        while True:  # the kernel frees the lock as the process is reaped
            try:
                lock.acquire()
                break
            except AddressBookInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.assertTrue(lock.held)
        lock.release()
