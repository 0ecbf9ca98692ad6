"""
OneShot: one result, many waiters, each with a Deferred of its own.

The peer's handshake and getaddr answer, and a service's end, are results
that several callers wait for; Twisted's DeferredList and chained Deferreds
share one callback chain, so a caller that cancels or adds a callback would
disturb the others.
"""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure


class OneShot:
    """
    A result that many callers can wait for: each gets a fresh Deferred, a
    cancelled caller is simply removed, and callers that come after the
    result get it at once.
    """

    def __init__(self):
        self._waiters = []
        self._result = None
        self.done = False

    def when(self):
        """A Deferred for the result."""
        if self.done:
            if isinstance(self._result, Failure):
                return fail(self._result)
            return succeed(self._result)
        waiter = Deferred(canceller=self._waiters.remove)
        self._waiters.append(waiter)
        return waiter

    def fire(self, result):
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
