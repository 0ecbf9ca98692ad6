"""
Tests for bitpeer.files: a file is replaced whole or not at all.
"""

import errno
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.files import atomic_write, remove_quietly


class AtomicWriteTests(SynchronousTestCase):
    """atomic_write leaves the old file or the new one, and no ``.tmp``."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)
        self.path = os.path.join(self.out, "x.json")

    def read(self):
        with open(self.path, encoding="utf-8") as stream:
            return stream.read()

    def test_writes_and_replaces(self):
        atomic_write(self.path, lambda stream: stream.write("old"))
        atomic_write(self.path, lambda stream: stream.write("new"))
        self.assertEqual(self.read(), "new")
        self.assertEqual(os.listdir(self.out), ["x.json"])

    def test_failing_stream_keeps_the_old_file(self):
        atomic_write(self.path, lambda stream: stream.write("old"))

        def write(stream):
            stream.write("{")
            raise OSError(errno.ENOSPC, "No space left on device")

        with self.assertRaises(OSError) as caught:
            atomic_write(self.path, write)
        self.assertEqual(caught.exception.errno, errno.ENOSPC)
        self.assertEqual(self.read(), "old")
        self.assertEqual(os.listdir(self.out), ["x.json"])

    def test_bug_is_raised_as_it_is(self):
        def write(stream):
            stream.write("\udcff")  # not UTF-8: a field that skipped escape

        self.assertRaises(UnicodeEncodeError, atomic_write, self.path, write)
        self.assertEqual(os.listdir(self.out), [])

    def test_newline_argument_reaches_open(self):
        atomic_write(self.path, lambda stream: stream.write("a\n"), newline="\r\n")
        with open(self.path, "rb") as stream:
            self.assertEqual(stream.read(), b"a\r\n")


class RemoveQuietlyTests(SynchronousTestCase):
    """remove_quietly removes a file, and says nothing when it cannot."""

    def test_removes(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "f")
        open(path, "w").close()
        remove_quietly(path)
        self.assertFalse(os.path.exists(path))

    def test_missing_file_is_no_error(self):
        remove_quietly(os.path.join(tempfile.gettempdir(), "bitpeer-no-such-file"))
