"""
What can go wrong with the address book's file, found before a crawl dials
anything, and said in one line that names the path and what to do.

Four things live here, all used by bitpeer.store.addrbook:

- the AddressBookError tree: one class per fault a person can fix
  (``except AddressBookError`` catches them all; ``str()`` is the line to
  show);
- ``check_location``: the checks that need no SQLite (the directory exists
  and is writable, the file system is not read-only, the file is readable
  and writable), so that a read-only file is reported as such and not as
  "not a SQLite database", which is what SQLite makes of it;
- ``BookLock``: one process per book, so that two crawlers on one ``--db``
  do not both dial every node;
- ``describe_fault`` and ``is_row_fault``: the difference between a row
  SQLite cannot take (isolate it, record it, commit the rest) and a
  storage fault (disk full, I/O error, locked: keep everything for the
  next try).
"""

import errno
import fcntl
import os
import sqlite3


class AddressBookError(Exception):
    """The address book cannot be used; the message says what to do."""


class NotAnAddressBook(AddressBookError):
    """The file is not a SQLite database, or a database of something else."""


class NewerSchema(AddressBookError):
    """The database was written by a newer bitpeer (higher user_version)."""


class AddressBookClosed(AddressBookError):
    """The address book was used after close()."""


class CorruptBook(AddressBookError):
    """The file is a SQLite database that fails SQLite's quick_check."""


class BookNotWritable(AddressBookError):
    """The book cannot be written: the subclass says why."""


class ReadOnlyFile(BookNotWritable):
    """The database file itself is read-only."""


class ReadOnlyDirectory(BookNotWritable):
    """The file's directory is read-only: SQLite cannot create the -wal and
    -shm files beside the book, nor bitpeer its lock file."""


class ReadOnlyFileSystem(BookNotWritable):
    """The book is on a file system mounted read-only."""


class MissingDirectory(AddressBookError):
    """The directory the book should be in does not exist."""


class PermissionDenied(AddressBookError):
    """The file cannot even be read by this user."""


class AddressBookInUse(AddressBookError):
    """
    Another process (or another AddressBook in this one) has the book open.

    @ivar pid: the holder's process id when its lock file says it, else None.
    """

    def __init__(self, message, pid=None):
        super().__init__(message)
        self.pid = pid


class StorageFault(AddressBookError):
    """
    A write failed for a reason that is not any row's: the disk is full, an
    I/O error, the file became read-only, another program held the write
    lock too long.  Nothing was lost: what the flush held is buffered again.

    @ivar what: the fault in a few words (``disk full``).
    @ivar kept: entries kept in memory for the next try.
    """

    def __init__(self, message, what, kept):
        super().__init__(message)
        self.what = what
        self.kept = kept


class EntriesLost(AddressBookError):
    """close() could not write what was buffered: ``lost`` entries are gone."""

    def __init__(self, message, lost, what):
        super().__init__(message)
        self.lost = lost
        self.what = what


# -- faults -------------------------------------------------------------------

#: SQLite result-code names (Python 3.11's ``sqlite_errorname``, up to the
#: first underscore after SQLITE_) -> a few words for a person.
_SQLITE_FAULTS = {
    "FULL": "disk full",
    "IOERR": "disk I/O error",
    "READONLY": "the database is read-only",
    "BUSY": "the database is locked by another program",
    "LOCKED": "the database is locked by another program",
    "CANTOPEN": "the database file cannot be opened",
    "CORRUPT": "the database is corrupted",
    "NOTADB": "the file is not a SQLite database",
    "PERM": "permission denied",
    "AUTH": "permission denied",
    "NOMEM": "out of memory",
    "PROTOCOL": "file locking failed",
    "NOLFS": "file too large for this file system",
}

#: The same from SQLite's messages, for Python 3.10 (no errorname) and
#: exceptions raised by hand.
_MESSAGE_FAULTS = (
    ("database or disk is full", "FULL"),
    ("disk i/o error", "IOERR"),
    ("readonly database", "READONLY"),
    ("read-only", "READONLY"),
    ("database is locked", "BUSY"),
    ("database table is locked", "LOCKED"),
    ("unable to open database file", "CANTOPEN"),
    ("malformed", "CORRUPT"),
    ("file is not a database", "NOTADB"),
    ("out of memory", "NOMEM"),
)

_ERRNO_FAULTS = {
    errno.ENOSPC: "FULL",
    errno.EDQUOT: "FULL",
    errno.EIO: "IOERR",
    errno.EROFS: "READONLY",
    errno.EACCES: "PERM",
    errno.EPERM: "PERM",
}


def fault_code(error):
    """
    SQLite's primary result-code name for ``error`` without the SQLITE_
    prefix (``FULL``, ``IOERR``...), or None when it is not a storage fault
    SQLite or the OS reported.
    """
    name = getattr(error, "sqlite_errorname", None)
    if name:
        primary = name[len("SQLITE_"):].split("_")[0]
        if primary in _SQLITE_FAULTS:
            return primary
    if isinstance(error, OSError):
        return _ERRNO_FAULTS.get(error.errno)
    if isinstance(error, sqlite3.Error):
        message = str(error).lower()
        for words, code in _MESSAGE_FAULTS:
            if words in message:
                return code
    return None


def describe_fault(error):
    """A few words for a person on why ``error`` happened (``disk full``),
    falling back to its own message."""
    code = fault_code(error)
    if code is not None:
        return _SQLITE_FAULTS[code]
    return f"{type(error).__name__}: {error}"


def is_row_fault(error):
    """
    Whether ``error`` belongs to the row(s) being written rather than to
    the storage: a value SQLite cannot bind (an integer over 64 bits, text
    that is not UTF-8, a type it does not know), a constraint, a value too
    big.  Such a statement has no effect (SQLite backs out a failed
    statement, and a bind error stops it before it runs), so the rows can
    be retried in parts within the same transaction.
    """
    if isinstance(error, (OverflowError, UnicodeError)):
        return True
    if isinstance(error, (sqlite3.IntegrityError, sqlite3.DataError)):
        return True
    if isinstance(error, (sqlite3.InterfaceError, sqlite3.ProgrammingError)):
        return "binding parameter" in str(error)
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_TOOBIG", "SQLITE_CONSTRAINT", "SQLITE_MISMATCH"))


# -- before SQLite ---------------------------------------------------------------


def check_location(path, *, statvfs=None, access=None):
    """
    Raise the AddressBookError that fits if the book at ``path`` cannot be
    read and written: what SQLite would report as "unable to open database
    file" or, for a read-only file, "not a database".  ``statvfs`` and
    ``access`` default to os's (injectable: root passes every access check).
    """
    statvfs = os.statvfs if statvfs is None else statvfs
    access = os.access if access is None else access
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MissingDirectory(
            f"address book {path}: the directory {directory} does not exist; "
            "create it or choose another database path"
        )
    if statvfs(directory).f_flag & os.ST_RDONLY:
        raise ReadOnlyFileSystem(
            f"address book {path}: {directory} is on a read-only file system; "
            "choose a database path on a writable one (or remount it read-write)"
        )
    if os.path.isdir(path):
        raise NotAnAddressBook(
            f"address book {path} is a directory; give the path of a database file"
        )
    if os.path.exists(path):
        if not access(path, os.R_OK):
            raise PermissionDenied(
                f"address book {path}: permission denied (this user cannot read it); "
                "run as its owner, fix its permissions or choose another database path"
            )
        if not access(path, os.W_OK):
            raise ReadOnlyFile(
                f"address book {path} is a read-only file; make it writable "
                f"(chmod u+w {path}) or choose another database path"
            )
    if not access(directory, os.W_OK | os.X_OK):
        raise ReadOnlyDirectory(
            f"address book {path}: its directory {directory} is not writable, and "
            "SQLite needs to create its -wal and -shm files there; make it writable "
            "or choose another database path"
        )


SQLITE_HEADER = b"SQLite format 3\0"


def has_sqlite_header(path):
    """Whether the file at ``path`` starts as a SQLite database does (an
    empty or missing file counts: SQLite makes it one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return True
    return head in (b"", SQLITE_HEADER)


def open_error(path, error):
    """The AddressBookError for ``error``, raised by SQLite while opening
    the book at ``path`` (after check_location passed)."""
    code = fault_code(error)
    if code == "NOTADB":
        return NotAnAddressBook(
            f"{path} is not a SQLite database ({error}); it was left untouched. "
            "Move it away or choose another database path."
        )
    if code == "CORRUPT":
        return CorruptBook(
            f"address book {path} is corrupted ({error}); move it away (a copy may be "
            "recovered with: sqlite3 PATH .recover) or choose another database path"
        )
    if code == "READONLY":
        return ReadOnlyFile(
            f"address book {path} cannot be written ({error}); make it and its "
            "directory writable or choose another database path"
        )
    if code in ("PERM", "CANTOPEN"):
        return PermissionDenied(
            f"address book {path} cannot be opened ({describe_fault(error)}); check "
            "its permissions and its directory's, or choose another database path"
        )
    return AddressBookError(
        f"address book {path} cannot be used: {describe_fault(error)}"
        + ("" if code is None else f" ({error})")
    )


# -- one process per book ----------------------------------------------------------


class BookLock:
    """
    An exclusive ``flock`` on ``PATH.lock``, held while a book is open.

    Why a file beside the book and not a lock on the book itself: SQLite
    locks the database with POSIX (fcntl) locks, which a process loses on
    closing ANY descriptor of the file, so bitpeer must never open the
    database file itself; and on NFS Linux emulates flock with fcntl locks,
    which would then collide with SQLite's own.  The lock file holds the
    holder's pid for the message a second opener gets; it is left in place
    on close (removing it would race with a process opening it), and the
    kernel releases the lock when the holder exits, even by SIGKILL.
    Two opens of the lock file conflict even within one process, so a
    second AddressBook on the same path in one process is refused too.
    """

    def __init__(self, path):
        self.path = path
        self.lock_path = path + ".lock"
        self._fd = None

    def acquire(self):
        """Take the lock or raise AddressBookInUse (or an AddressBookError if
        the lock file cannot be made)."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise AddressBookError(
                f"address book {self.path}: cannot create its lock file "
                f"{self.lock_path} ({error.strerror}); make the directory writable "
                "or choose another database path"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = "another process" if pid is None else f"process {pid}"
            if pid == os.getpid():
                holder = "this process (another AddressBook)"
            raise AddressBookInUse(
                f"address book {self.path} is in use by {holder}; wait for it to "
                "finish or give this crawl another database path", pid=pid,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only unnamed

    def release(self):
        """Drop the lock (idempotent); the file stays, emptied."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass  # a full or read-only disk: the stale pid is harmless
            os.close(fd)

    @property
    def held(self):
        """Whether this object holds the lock."""
        return self._fd is not None


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
