"""
``twistd bitpeer-crawl`` against storage faults, as an operator meets them:
a disk that fills under the address book mid-crawl, a snapshot directory on
a full or read-only file system, a book on a read-only file system, and two
crawlers on one book.  Each fault is one clear line in the log, never a
traceback, and never costs the crawl its result where the result can still
be written.

Full and read-only file systems are real: small tmpfs mounts, which need
root (the tests skip, saying so, where mounting is not permitted).
"""

import glob
import json
import os
import signal
import sqlite3
import subprocess
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .test_tap import db_rows, finish, read_log, tempdir, twistd


def mount_tmpfs(case, path, size, read_only=False):
    """Mount a tmpfs of ``size`` at ``path`` for the test's duration."""
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                          capture_output=True, text=True)
    if done.returncode:
        raise SkipTest(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    case.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)


def errors(log):
    """The error and critical lines of a twistd log."""
    return [line for line in log.splitlines() if "#error]" in line or "#critical]" in line]


class StorageFaultTests(SynchronousTestCase):
    """Each fault: one line, the right exit status, the result kept."""

    def setUp(self):
        self.cwd = tempdir(self)
        self.db = os.path.join(self.cwd, "book.sqlite")
        self.out = os.path.join(self.cwd, "out")

    def crawl(self, *argv, number=0):
        process = twistd(self.cwd, "bitpeer-crawl", "--simnet", "300", "--simnet-dead", "100",
                         "--connect-timeout", "0.5", *argv)
        status = finish(process)
        return status, read_log(self.cwd, number)

    def snapshot(self):
        (path,) = glob.glob(os.path.join(self.out, "simnet-2*Z.json"))
        with open(path) as stream:
            return json.load(stream)

    def test_book_disk_fills_mid_crawl(self):
        """
        The book's disk fills during the crawl: the snapshot (on another
        disk) still holds the whole result, the log says what the book
        could not keep in a few lines and no traceback, and the exit
        status is 3.
        """
        disk = os.path.join(self.cwd, "small")
        mount_tmpfs(self, disk, "96k")
        status, log = self.crawl("--db", os.path.join(disk, "book.sqlite"), "--out", self.out)
        self.assertEqual(status, 3, log)
        self.assertNotIn("Traceback", log)
        self.assertLessEqual(len(errors(log)), 3, "\n".join(errors(log)))
        self.assertTrue(any("full" in line for line in errors(log)), log)
        outcomes = self.snapshot()["summary"]["outcomes"]
        self.assertEqual((outcomes["reachable"], outcomes["unreachable"]), (300, 100))
        self.assertEqual(glob.glob(os.path.join(self.out, "*.tmp")), [])

    def test_book_disk_full_with_interval(self):
        """
        With --interval, a book whose disk is full does not stop the
        service: every crawl still runs and writes its snapshot.
        """
        disk = os.path.join(self.cwd, "small")
        mount_tmpfs(self, disk, "96k")
        process = twistd(self.cwd, "bitpeer-crawl", "--simnet", "300", "--simnet-dead", "100",
                         "--connect-timeout", "0.5", "--interval", "1",
                         "--db", os.path.join(disk, "book.sqlite"), "--out", self.out)
        started = time.monotonic()
        try:
            while len(glob.glob(os.path.join(self.out, "simnet-2*Z.json"))) < 3:
                self.assertIsNone(process.poll(), read_log(self.cwd, 0))
                self.assertLess(time.monotonic() - started, 60, "fewer than 3 crawls")
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            status = finish(process)
        log = read_log(self.cwd, 0)
        self.assertIn(status, (3, -signal.SIGTERM), log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("cannot run", log)

    def test_snapshot_disk_full(self):
        """
        The snapshot directory's disk is full: one line says so, no
        partial file is left, the book (on a healthy disk) records the
        whole crawl, and the exit status is 1: the crawl has no snapshot.
        """
        mount_tmpfs(self, self.out, "16k")
        status, log = self.crawl("--db", self.db, "--out", self.out)
        self.assertEqual(status, 1, log)
        self.assertNotIn("Traceback", log)
        (line,) = errors(log)
        self.assertIn("snapshot could not be written", line)
        self.assertEqual([f for f in os.listdir(self.out) if f.endswith(".tmp")], [])
        self.assertEqual(db_rows(self.db, "SELECT finished IS NOT NULL FROM crawls"), [(1,)])
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM observations"), [(400,)])

    def test_snapshot_directory_read_only(self):
        """A read-only --out is found before the first dial: one line,
        exit status 1, nothing dialled."""
        mount_tmpfs(self, self.out, "1m", read_only=True)
        status, log = self.crawl("--db", self.db, "--out", self.out)
        self.assertEqual(status, 1, log)
        self.assertNotIn("Traceback", log)
        (line,) = errors(log)
        self.assertIn("the crawl cannot run", line)
        self.assertIn("read-only file system", line)
        self.assertNotIn("simnet:", log)
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM observations"), [(0,)])

    def test_book_on_read_only_file_system(self):
        """A book on a read-only file system is reported as such (it used
        to read "is not a SQLite database")."""
        disk = os.path.join(self.cwd, "ro")
        mount_tmpfs(self, disk, "1m", read_only=True)
        status, log = self.crawl("--db", os.path.join(disk, "book.sqlite"), "--out", self.out)
        self.assertEqual(status, 1, log)
        self.assertNotIn("Traceback", log)
        (line,) = errors(log)
        self.assertIn("read-only file system", line)
        self.assertNotIn("not a SQLite database", line)
        self.assertFalse(os.path.exists(self.out))

    def test_book_of_another_network_refused(self):
        """A book holding another network's crawls is refused before
        anything is dialled: one line, exit status 1, no snapshot."""
        status, log = self.crawl("--db", self.db, "--out", self.out)
        self.assertEqual(status, 0, log)
        process = twistd(self.cwd, "bitpeer-crawl", "--network", "regtest", "--dnsseed", "0",
                         "--fixed-seeds", "never", "--db", self.db, "--out", self.out + "2")
        status, log = finish(process), read_log(self.cwd, 1)
        self.assertEqual(status, 1, log)
        self.assertNotIn("Traceback", log)
        (line,) = errors(log)
        self.assertIn("the crawl cannot run: ", line)
        self.assertIn("holds crawls of simnet, not regtest: give this network its own --db",
                      line)
        self.assertFalse(os.path.exists(self.out + "2"))
        self.assertEqual(db_rows(self.db, "SELECT network FROM crawls"), [("simnet",)])

    def test_second_crawler_on_one_book_refused(self):
        """
        A second crawler on a book in use refuses at once, saying so, and
        dials nothing; the first crawl is unharmed.
        """
        first = twistd(self.cwd, "bitpeer-crawl", "--simnet", "100", "--simnet-dead", "100",
                       "--connect-timeout", "3", "--db", self.db, "--out", self.out)
        started = time.monotonic()
        try:
            while not db_rows_or_none(self.db, "SELECT count(*) FROM crawls"):
                self.assertIsNone(first.poll(), read_log(self.cwd, 0))
                self.assertLess(time.monotonic() - started, 30, "the first crawl did not start")
                time.sleep(0.05)
            status, log = self.crawl("--db", self.db, "--out", self.out + "2", number=1)
            self.assertEqual(status, 1, log)
            self.assertNotIn("Traceback", log)
            (line,) = errors(log)
            self.assertIn("in use", line)
            self.assertFalse(os.path.exists(self.out + "2"))
        finally:
            first.send_signal(signal.SIGTERM)
            finish(first)
        self.assertEqual(db_rows(self.db, "SELECT count(*) FROM crawls"), [(1,)])


def db_rows_or_none(path, query):
    """``db_rows``, or None while the database is not there yet."""
    try:
        return db_rows(path, query)[0][0] or None
    except sqlite3.Error:
        return None
