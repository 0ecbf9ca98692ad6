"""
OneShot: one result, many waiters, each with a Deferred of its own.

The peer's handshake and getaddr answer, and a service's end, are results
that several callers wait for; Twisted's DeferredList and chained Deferreds
share one callback chain, so a caller that cancels or adds a callback would
disturb the others.
"""

from typing import Generic, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

T = TypeVar("T")


class OneShot(Generic[T]):
    """
    A result that many callers can wait for: each gets a fresh Deferred, a
    cancelled caller is simply removed, and callers that come after the
    result get it at once.
    """

    def __init__(self) -> None:
        self._waiters: list[Deferred[T]] = []
        self.done = False
        #: Set once, by ``fire``, with ``done``.
        self._result: T | Failure

    def when(self) -> "Deferred[T]":
        """A Deferred for the result."""
        if self.done:
            if isinstance(self._result, Failure):
                return fail(self._result)
            return succeed(self._result)
        waiter: Deferred[T] = Deferred(canceller=self._waiters.remove)
        self._waiters.append(waiter)
        return waiter

    def fire(self, result: T | Failure) -> None:
        """Deliver ``result`` (a value or a Failure) to every waiter, once."""
        if self.done:
            return
        self.done, self._result = True, result
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
