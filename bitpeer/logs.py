"""
Log levels for bitpeer.

A crawl opens tens of thousands of connections, and each may log a line or
two at debug level (why it closed, which message was dropped).  Printed,
that would drown the progress lines; so every bitpeer Logger publishes
through one filter, which passes info and above unless asked for more:

    from twisted.logger import LogLevel
    from bitpeer.logs import levels
    levels.setLogLevelForNamespace("bitpeer", LogLevel.debug)

``twistd bitpeer-crawl --verbose`` does exactly that.
"""

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    globalLogPublisher,
)


class _LevelFilter(LogLevelFilterPredicate):
    """
    The level filter, which also keeps ``debug``: False when no namespace
    lets debug events through (until the levels are cleared, one that did
    keeps it True).  Building an event only for the filter to drop it costs
    about 5 microseconds; code that would log at debug level once per
    connection asks ``levels.debug`` first.
    """

    debug = False

    def setLogLevelForNamespace(self, namespace, level):
        super().setLogLevelForNamespace(namespace, level)
        self.debug = self.debug or level <= LogLevel.debug

    def clearLogLevels(self):
        super().clearLogLevels()
        self.debug = self.defaultLogLevel <= LogLevel.debug


#: The level filter; change it per namespace with setLogLevelForNamespace.
levels = _LevelFilter(defaultLogLevel=LogLevel.info)

_observer = FilteringLogObserver(globalLogPublisher, [levels])


def logger():
    """A Logger for a bitpeer module or class, behind the level filter."""
    return Logger(observer=_observer)
