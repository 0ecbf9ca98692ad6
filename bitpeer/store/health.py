"""
What the address book could not keep, counted and told to people.

A storage fault (a full disk) can fail flush after flush for as long as it
lasts, and a batch of hostile rows can fill the ``rejected`` table: the log
must say each fault once, its recovery once more, and a few rejected rows
rather than thousands.  BookFaults keeps that streak and the counts behind
BookHealth, so AddressBook only moves entries and reports what happened to
them.
"""

import attr
from twisted.python.failure import Failure

from .bookcheck import EntriesLost, StorageFault, describe_fault, fault_code

#: Rejected rows logged one line each per flush; the rest are counted in
#: one more line (all are in the rejected table).
MAX_REJECT_LINES = 10


@attr.frozen
class BookHealth:
    """
    What the book could not keep, for the service's last words.

    @ivar failing: whether the latest flush failed (its entries are still
        buffered, ``buffered`` of them).
    @ivar failed_flushes: flushes that failed since open.
    @ivar last_error: the latest failure in a few words (``disk full``),
        or None if no flush ever failed.
    @ivar rejected: rows written to the ``rejected`` table instead of their
        own since open.
    @ivar lost: entries that close() could not write.
    """

    path: str
    failing: bool
    failed_flushes: int
    last_error: str | None
    rejected: int
    lost: int
    buffered: int

    @property
    def ok(self):
        """Nothing rejected, nothing lost, the latest flush succeeded."""
        return not (self.failing or self.rejected or self.lost)

    def describe(self):
        """One line for a person."""
        if self.ok:
            more = (f" ({self.failed_flushes} flushes failed on the way: {self.last_error})"
                    if self.failed_flushes else "")
            return f"address book {self.path}: everything written{more}"
        parts = []
        if self.lost:
            parts.append(f"{self.lost} entries lost at close ({self.last_error})")
        elif self.failing:
            parts.append(f"{self.buffered} entries not yet written ({self.last_error})")
        if self.rejected:
            parts.append(f"{self.rejected} rows rejected (see its table rejected)")
        return f"address book {self.path}: " + "; ".join(parts)


class BookFaults:
    """
    The outcome of every flush of the book at ``path``: counts for
    BookHealth, and log lines on ``log`` (the book's own Logger, so the
    lines keep its namespace).
    """

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self._streak = None  # (type, what) of the failing streak, if any
        self._repeats = 0
        self._failed_flushes = 0
        self._last_error = None
        self._rejected = 0
        self._lost = 0

    def health(self, buffered):
        """A BookHealth, with ``buffered`` entries waiting."""
        return BookHealth(
            path=self.path, failing=self._streak is not None,
            failed_flushes=self._failed_flushes, last_error=self._last_error,
            rejected=self._rejected, lost=self._lost, buffered=buffered,
        )

    def written(self, rejects):
        """A flush committed, with ``rejects`` (write_batch's) kept aside:
        end a failing streak, and log a few of the rejected rows."""
        if self._streak is not None:
            self.log.info(
                "address book {path}: writing again after {count} failed flushes "
                "({what}); nothing was lost", path=self.path,
                count=self._repeats + 1, what=self._streak[1],
            )
            self._streak, self._repeats = None, 0
        if not rejects:
            return None
        self._rejected += len(rejects)
        for kind, _, row, error in rejects[:MAX_REJECT_LINES]:
            self.log.warn(
                "address book {path}: a {kind} row could not be written ({error}); "
                "kept in table rejected instead: {row}",
                path=self.path, kind=kind, error=error, row=row,
            )
        if len(rejects) > MAX_REJECT_LINES:
            self.log.warn(
                "address book {path}: {count} more rows of this flush could not be "
                "written; they are in table rejected",
                path=self.path, count=len(rejects) - MAX_REJECT_LINES,
            )
        return None

    def failed(self, failure, closing, kept):
        """
        A flush failed and its ``kept`` entries are buffered again: log the
        fault once per streak (not when ``closing``: close says it), and
        give back a storage fault as a StorageFault, anything else (a bug)
        as it is.
        """
        error = failure.value
        self._failed_flushes += 1
        code = fault_code(error)
        what = describe_fault(error)
        self._last_error = what
        key = (type(error), what)
        if self._streak == key:
            self._repeats += 1
        else:
            self._streak, self._repeats = key, 0
            if not closing and code is not None:
                self.log.error(
                    "address book {path}: cannot write ({what}); {kept} entries kept in "
                    "memory for the next try", path=self.path, what=what, kept=kept,
                )
            elif not closing:
                self.log.failure(
                    "address book {path}: flush failed; {kept} entries kept in memory "
                    "for the next try", failure, path=self.path, kept=kept,
                )
        if code is None:
            return failure
        fault = StorageFault(
            f"address book {self.path}: cannot write ({what}); {kept} entries kept in "
            "memory for the next try", what, kept,
        )
        fault.__cause__ = error
        return Failure(fault)

    def lost(self, failure, count):
        """The last flush, at close, failed with ``failure`` and its
        ``count`` entries are forgotten: count them, say so once, and give
        back an EntriesLost."""
        self._lost += count
        error = failure.value
        what = error.what if isinstance(error, StorageFault) else describe_fault(error)
        message = (f"address book {self.path}: closed with {count} entries not written "
                   f"({what}); they are lost")
        if fault_code(error) is not None or isinstance(error, StorageFault):
            self.log.error("{line}", line=message)
        else:
            self.log.failure("{line}", failure, line=message)
        lost = EntriesLost(message, count, what)
        lost.__cause__ = error
        return Failure(lost)
