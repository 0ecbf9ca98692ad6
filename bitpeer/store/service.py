"""
The address book as a service: open (checked, locked) while the service
runs, closed when it stops.

Whatever uses the book (the crawl loop, later a DNS seeder or a web server)
is given this service and reads ``book`` once it has started; none of them
opens the book itself.  Started in a bitpeer.application.ServiceStack, the
services after it start only once the book is open and has passed its
checks, and stop before it closes.
"""

import os

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred

from .addrbook import AddressBook, AddressBookError


def book_path(path):
    """Where the address book lives: the file ``path``, or memory when there
    is none (a --simnet crawl's network exists only while it runs)."""
    return ":memory:" if path is None else os.path.abspath(path)


class AddressBookService(Service):
    """
    Opens the AddressBook at ``path`` (None: in memory) when started, then
    runs each of ``checks`` on it (async callables given the book that
    raise to refuse it: what the book must hold depends on who uses it);
    ``startService`` returns a Deferred of that, which fails, with the
    book's one-line fault, if the book cannot be used.

    ``stopService`` closes the book; if its last flush failed, the book
    logged what it lost in one line and ``lost`` is True.
    """

    def __init__(self, path, reactor, *, checks=(), book_factory=AddressBook):
        self.path = path
        self.reactor = reactor
        self.checks = tuple(checks)
        self.book_factory = book_factory
        self.book = None
        #: The book's last flush failed at close: it lost what it held.
        self.lost = False

    def startService(self):
        super().startService()
        # Closed by stopService, after the services writing to it have
        # stopped, not by the book's own shutdown trigger, which would fire
        # before them.
        self.book = self.book_factory(book_path(self.path), self.reactor,
                                      close_at_shutdown=False)
        return ensureDeferred(self._open(self.book))

    async def _open(self, book):
        await book.open()
        for check in self.checks:
            await check(book)

    def stopService(self):
        super().stopService()
        return ensureDeferred(self._close())

    async def _close(self):
        book, self.book = self.book, None
        if book is None:
            return
        try:
            await book.close()  # a book whose open failed closes at once
        except AddressBookError:
            self.lost = True
