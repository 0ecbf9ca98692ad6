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

#: The level filter; change it per namespace with setLogLevelForNamespace.
levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)

_observer = FilteringLogObserver(globalLogPublisher, [levels])


def logger():
    """A Logger for a bitpeer module or class, behind the level filter."""
    return Logger(observer=_observer)
