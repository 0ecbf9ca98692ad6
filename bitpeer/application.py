"""
What a twistd application of bitpeer services needs that Twisted does not
give: services started and stopped one after another, and an exit status.

**Order.**  ``MultiService`` starts its children in a loop without waiting
for any of them (``IService.startService`` returns nothing), and its
``stopService`` calls every child's ``stopService`` at once, in reverse
order, waiting only for all their Deferreds together.  bitpeer's services
depend on each other: the address book is open only once its thread says
so, and a crawl must not begin before; the book must close only after the
crawl writing to it has wound down, and a simulated network must outlive
the connections made to it.  ServiceStack starts each child once the one
before it is up (a child's ``startService`` may return a Deferred) and
stops each once the one after it has stopped.

**Exit status.**  twistd has no supported way for an application to choose
its exit status; ExitStatusService ends the process with ``os._exit`` from
an ``atexit`` hook, and here is why.  After the reactor stops,
``twisted.scripts.twistd.runApp`` runs ``UnixApplicationRunner.run``:
``runReactorWithLogging`` catches any BaseException out of ``reactor.run``
and prints it, ``postApplication`` removes the pid file, the logger logs
"Server Shut Down.", then the only check is ``runner._exitSignal``: if the
reactor was stopped by SIGINT/SIGTERM, ``app._exitWithSignal`` kills the
process with that signal; otherwise ``run()`` returns None and the process
exits 0 (Twisted issue #11335, open since 2004: "allow specifying exit code
in generic way"; ``twisted.application.runner._exit`` serves only the
``twist`` command's own option and pid-file errors).  Tried for real with
Twisted 26.10 and Python 3.11:

- ``sys.exit(1)`` in an "after shutdown" trigger or a ``callLater``: the
  reactor catches SystemExit, logs it as a critical traceback, exit 0;
- setting ``reactor._exitSignal`` (private): twistd kills itself with that
  signal, so the status is 128+N (143 for SIGTERM), never 1 or 3;
- ``sys.exit(1)`` in an ``atexit`` hook: ignored, exit 0;
- ``os._exit(code)`` in an ``atexit`` hook: the status is ``code``.

Only the last works, and it runs after twistd has done everything it does
(services stopped, pid file removed, "Server Shut Down." logged), so
nothing is cut short but Python's finalisation, which frees the objects a
crawl leaves one by one.  Measured from twistd's ``run()`` returning to the
process's end, after ``bitpeer-crawl --simnet`` crawls: 0.22 s (10,000
nodes) and 1.06 s (40,000) when the process exits normally (status 0
whatever the crawl did), 0.01 s and 0.05 s with this hook.
"""

import atexit
import os
import sys

from twisted.application.service import MultiService, Service
from twisted.internet.defer import ensureDeferred, maybeDeferred
from twisted.internet.error import ReactorNotRunning
from twisted.python.failure import Failure

from .logs import logger

#: The status of a process that ended on an uncaught exception, as Python's own.
EXIT_CRASHED = 1


def end_run(reactor, log, failure, expected, what):
    """
    A fault ended a service's run: say so, in one line if it is one of
    ``expected`` (exception classes a user can fix: a bad file, a full
    disk), with a traceback if it is a bug; then stop the reactor.
    ``what`` names the run in the log ("the crawl").
    """
    if failure.check(*expected):
        log.error("{what} cannot run: {error}", what=what, error=failure.value)
    else:
        log.failure("{what} failed", failure, what=what)
    stop_reactor(reactor)


def stop_reactor(reactor):
    """
    Stop the reactor, unless it is stopping already: a service that ends
    its work or fails while twistd is shutting down (a SIGTERM during a
    slow start) must not raise ReactorNotRunning, which would cut short the
    stopping of the other services.
    """
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


class ServiceStack(MultiService):
    """
    Children started in the order added, each once the one before it is up,
    and stopped in the reverse order, each once the one after it is down.

    A child's ``startService`` may return a Deferred: the next child starts
    when it fires.  If it fails (or raises), the later children are not
    started and ``on_fault`` is given the Failure (it says so and stops the
    reactor); the children already started are stopped with the stack as
    usual, the failed one included, so its ``stopService`` must cope with a
    start that did not finish.  A child whose ``stopService`` fails is
    logged and the others are still stopped.
    """

    log = logger()

    def __init__(self, on_fault):
        super().__init__()
        self._on_fault = on_fault
        self._started = []
        self._starting = None

    def startService(self):
        Service.startService(self)
        self._starting = ensureDeferred(self._start())

    async def _start(self):
        for child in list(self):
            if not self.running:
                return  # stopped while an earlier child was starting
            self._started.append(child)
            try:
                await maybeDeferred(child.startService)
            except Exception:
                self._on_fault(Failure())
                return

    def stopService(self):
        Service.stopService(self)
        return ensureDeferred(self._stop())

    async def _stop(self):
        if self._starting is not None:
            try:
                await self._starting
            except Exception:
                # _start reports its children's faults itself; this is a
                # fault in that reporting.  The children started must still
                # be stopped (an open book must still be closed).
                self.log.failure("starting the services failed")
        started, self._started = self._started, []
        for child in reversed(started):
            try:
                await maybeDeferred(child.stopService)
            except Exception:
                self.log.failure("stopping {child!r} failed", child=child)


class Precondition(Service):
    """
    A check made when a ServiceStack reaches it (a snapshot directory that
    must be writable, say): if it raises, or its Deferred fails, the
    services after it are not started.
    """

    def __init__(self, check):
        self.check = check

    def startService(self):
        super().startService()
        return maybeDeferred(self.check)


class ExitStatusService(Service):
    """
    Ends the process with ``code()`` once twistd is done with it (see the
    module's docstring for why this way).  The hook is registered when the
    service starts: if twistd gives up before (a bad --logfile or --uid),
    its own exit status stands.  An uncaught exception makes it
    EXIT_CRASHED whatever ``code()`` says.  ``at_exit`` and ``exit`` are
    atexit.register and os._exit, replaced in tests.
    """

    def __init__(self, code, *, at_exit=atexit.register, exit=os._exit):
        self.code = code
        self._at_exit = at_exit
        self._exit = exit
        self._registered = False

    def startService(self):
        super().startService()
        if not self._registered:
            self._registered = True
            self._at_exit(self.exit_now)

    def exit_now(self):
        """End the process with the application's status, at once."""
        crashed = getattr(sys, "last_value", None) is not None
        sys.stdout.flush()
        sys.stderr.flush()
        self._exit(EXIT_CRASHED if crashed else self.code())
