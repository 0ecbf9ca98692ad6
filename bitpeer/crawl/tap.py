"""
``twistd bitpeer-crawl``: the crawler as a service.

    twistd -n bitpeer-crawl                      crawl mainnet once, then exit
    twistd -n bitpeer-crawl --simnet 1000        crawl a simulated network offline

Options are checked before anything starts; a bad one prints the usage and
twistd exits non-zero.
"""

import atexit
import math
import os
import sys

import attr
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import LogLevel
from twisted.python import usage

from .. import __version__
from ..store.addrbook import AddressBook, AddressBookError
from .crawler import CrawlOptions, Crawler, Settled
from .discovery import DiscoveryOptions, discover, make_resolver
from .export import (
    EncodedNodes,
    SnapshotError,
    check_output_directory,
    summarize,
    write_snapshot,
)
from .external import fetch_external_ip
from ..logs import levels, logger
from ..networks import (
    NETWORKS,
    REGTEST,
    HostNameRefused,
    NetworkParams,
    get_network,
    parse_onlynet,
    parse_seed,
    parse_seed_lines,
)
from ..oneshot import OneShot
from ..protocol import PeerOptions
from ..runtime import open_file_limit, tune_garbage_collector
from ..simnet.network import SimNet
from ..wire.errors import ProtocolError
from ..wire.text import escape

#: Open files kept back for the database, logs, listeners and the simnet.
RESERVED_FILES = 64

#: Once nothing is left to dial, the nodes found are encoded for the
#: snapshot this many at a time, this often (seconds): a few milliseconds a
#: turn, while the crawl waits for its last connections.
ENCODE_AHEAD = (1000, 0.05)

#: Faults a user can fix (a bad file, a full disk, a book in use): one line
#: in the log and exit status 1, no traceback.  Anything else is a bug.
EXPECTED_FAULTS = (ValueError, OSError, AddressBookError, SnapshotError)

#: Exit statuses: the crawl failed (no result); the snapshot was written but
#: the address book could not keep everything the crawl learnt.
EXIT_FAILED = 1
EXIT_BOOK_INCOMPLETE = 3

#: The network a --simnet crawl speaks (regtest's magic, its own name).
SIMNET = NetworkParams(name="simnet", magic=REGTEST.magic, default_port=REGTEST.default_port)


def _duration(text):
    """Seconds from ``90``, ``90s``, ``15m``, ``24h`` or ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise usage.UsageError(f"{text!r} is not a duration (e.g. 30, 15m, 24h)") from None
    if not math.isfinite(value) or value < 0:
        raise usage.UsageError(f"{text!r}: a duration is a finite number, not negative")
    return value


def _whole(text):
    """An int from the command line, with a message a person can act on."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _number(text):
    """A float from the command line, finite."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class _NamedCoerce(usage.CoerceParameter):
    """
    Coerces an option's value and, when that fails, names the option as
    the user typed it (``--concurrency: 'x' is not a whole number``);
    Twisted's own message names no option.
    """

    def dispatch(self, parameterName, value):
        try:
            super().dispatch(parameterName, value)
        except usage.UsageError as error:
            message = str(error).removeprefix("Parameter type enforcement failed: ")
            raise usage.UsageError(f"--{parameterName}: {message}") from None


#: CrawlOptions and PeerOptions fields set from an option of the same name:
#: their validators name the field, the user typed the option.
_OPTION_FIELDS = frozenset(
    {"concurrency", "getaddr_fraction", "max_age", "connect_timeout", "handshake_timeout",
     "getaddr_timeout", "getaddr_idle_timeout", "user_agent"}
)


def _as_typed(error):
    """A validator's message with the field named as its option."""
    field, _, rest = str(error).partition(" ")
    if field in _OPTION_FIELDS:
        return f"--{field.replace('_', '-')} {rest}"
    return str(error)


class Options(usage.Options):
    """The command line of ``twistd bitpeer-crawl``."""

    synopsis = "[options]"
    longdesc = (
        "Discover peers the way a Bitcoin node does (DNS seeds, fixed seeds, getaddr, "
        "the address book on disk), crawl every reachable node, and write a snapshot. "
        "With --simnet N the crawl runs offline against a simulated network."
    )

    optFlags = [
        ["allow-private", None, "dial private and loopback addresses learnt from gossip"],
        ["forcednsseed", None, "query the DNS seeds even when the address book holds enough "
                               "good addresses"],
        ["fresh", None, "start a new crawl even if the address book holds an unfinished one"],
        ["verbose", "v", "log every connection's fate (debug level)"],
    ]
    optParameters = [
        ["network", None, "mainnet", f"network: {', '.join(NETWORKS)}"],
        ["db", None, None, "address book (SQLite); default bitpeer.sqlite for mainnet, "
                           "bitpeer-NETWORK.sqlite for the others, in memory for --simnet"],
        ["out", None, "snapshots", "directory for JSON/CSV snapshots"],
        ["concurrency", None, 1000, "connections in flight at once", _whole],
        ["getaddr-fraction", None, 1.0, "share of reachable nodes asked for addresses "
                                        "(0: none)", _number],
        ["max-age", None, 86400.0, "ignore gossiped addresses older than this", _duration],
        ["connect-timeout", None, 5.0, "TCP connect timeout", _duration],
        ["handshake-timeout", None, 20.0, "version/verack timeout", _duration],
        ["getaddr-timeout", None, 30.0, "total wait for a getaddr answer", _duration],
        ["getaddr-idle-timeout", None, 10.0, "wait since the last addr message", _duration],
        ["seeds-file", None, None, "file of HOST[:PORT] lines to start from"],
        ["dnsseed", None, "1", "1: query DNS seeds when the address book holds too few good "
                               "addresses; 0: never"],
        ["dns", None, "1", "1: resolve host names given with --seed and --seeds-file; "
                           "0: refuse them (no lookup at all with --dnsseed 0)"],
        ["fixed-seeds", None, "fallback", "fixed seeds: fallback (when nothing else gives an "
                                          "address), always, never"],
        ["dns-server", None, None, "HOST:PORT of the DNS server to ask (default: the system's)"],
        ["interval", None, 0.0, "repeat the crawl this often; 0 crawls once and exits",
         _duration],
        ["simnet", None, 0, "crawl an in-process simulated network of N nodes", _whole],
        ["simnet-dead", None, 0, "dead addresses in the simulated network", _whole],
        ["simnet-misbehaving", None, 0.0, "share of misbehaving simulated nodes", _number],
        ["simnet-seed", None, 1, "random seed of the simulated network", _whole],
        ["external-ip-url", None, None, "URL answering with our public IP (off by default)"],
        ["user-agent", None, f"/bitpeer:{__version__}/", "user agent we announce"],
    ]

    def __init__(self):
        super().__init__()
        self["seed"] = []
        self["onlynet"] = []
        for name, handler in self._dispatch.items():
            if type(handler) is usage.CoerceParameter:
                self._dispatch[name] = _NamedCoerce(self, handler.coerce)

    def opt_seed(self, value):
        """HOST[:PORT] to start from (repeatable; a host name is resolved at start)"""
        self["seed"].append(value)

    def opt_onlynet(self, value):
        """dial only this network (repeatable): ipv4, ipv6, onion, i2p, cjdns"""
        self["onlynet"].append(value)

    def postOptions(self):
        if self["verbose"]:
            levels.setLogLevelForNamespace("bitpeer", LogLevel.debug)
        try:
            self["network"] = SIMNET if self["simnet"] else get_network(self["network"])
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        network = self["network"]
        if self["db"] is None and not self["simnet"]:
            self["db"] = (
                "bitpeer.sqlite" if network.name == "mainnet" else f"bitpeer-{network.name}.sqlite"
            )
        if self["simnet"] < 0 or self["simnet-dead"] < 0:
            raise usage.UsageError("--simnet and --simnet-dead cannot be negative")
        if not 0 <= self["simnet-misbehaving"] <= 1:
            raise usage.UsageError("--simnet-misbehaving is a share within 0..1")
        if self["max-age"] <= 0:
            raise usage.UsageError("--max-age must be more than 0")
        if self["fixed-seeds"] not in ("fallback", "always", "never"):
            raise usage.UsageError("--fixed-seeds is fallback, always or never")
        self["discovery"] = self._discovery_options()
        seeds = self._seeds(network)
        try:
            self["crawl"] = CrawlOptions(
                concurrency=self["concurrency"],
                getaddr_fraction=self["getaddr-fraction"],
                max_age=self["max-age"],
                connect_timeout=self["connect-timeout"],
                allow_private=self["allow-private"] or bool(self["simnet"]),
                networks=self["discovery"].networks,
            )
            self["peer"] = PeerOptions(
                user_agent=self["user-agent"],
                handshake_timeout=self["handshake-timeout"],
                getaddr_timeout=self["getaddr-timeout"],
                getaddr_idle_timeout=self["getaddr-idle-timeout"],
            )
        except (OSError, ValueError, ProtocolError) as error:
            raise usage.UsageError(_as_typed(error)) from None
        self["seeds"] = seeds
        if self["dns-server"]:
            try:
                make_resolver([self["dns-server"]])
            except ValueError as error:
                raise usage.UsageError(f"--dns-server: {error}") from None

    def _discovery_options(self):
        """DiscoveryOptions from --dnsseed, --forcednsseed, --dns, --fixed-seeds
        and --onlynet, with Core's values and refusals."""
        for name in ("dnsseed", "dns"):
            if self[name] not in ("0", "1"):
                raise usage.UsageError(f"--{name} is 0 or 1, not {self[name]!r}")
        if self["forcednsseed"] and self["dnsseed"] == "0":
            # Core: "Cannot set -forcednsseed to true when setting -dnsseed to false."
            raise usage.UsageError("--forcednsseed cannot force DNS seeds that --dnsseed 0 "
                                   "turns off: give one or the other")
        try:
            networks = parse_onlynet(self["onlynet"])
        except ValueError as error:
            raise usage.UsageError(f"--onlynet: {error}") from None
        return DiscoveryOptions(dnsseed=self["dnsseed"] == "1",
                                forcednsseed=bool(self["forcednsseed"]),
                                fixed_seeds=self["fixed-seeds"], networks=networks)

    def _seeds(self, network):
        """--seed and --seeds-file: addresses, and host names unless --dns 0.
        A bad one is one line naming the option (and the file's line)."""
        names = self["dns"] == "1"
        seeds = []
        for text in self["seed"]:
            try:
                seeds.append(parse_seed(text, network.default_port, names=names,
                                        origin="--seed"))
            except ValueError as error:
                raise usage.UsageError(f"--seed {text.strip()}{_after_text(error, text)}"
                                       f"{_dns_hint(error)}") from None
        path = self["seeds-file"]
        if path:
            try:
                with open(path) as stream:
                    seeds += parse_seed_lines(stream, network.default_port, names=names,
                                              source=path)
            except (OSError, UnicodeDecodeError) as error:
                raise usage.UsageError(f"--seeds-file {path}: {error}") from None
            except ValueError as error:
                raise usage.UsageError(f"--seeds-file {error}{_dns_hint(error)}") from None
        return seeds


def _after_text(error, text):
    """An error about ``text``, to follow it (the message need not repeat
    it): ``" is ambiguous: ..."`` or ``": port 0 cannot be dialled"``."""
    message = str(error)
    quoted = f"{text.strip()!r}"
    if message.startswith(quoted):
        message = message[len(quoted):].lstrip(": ")
    return f" {message}" if message.startswith("is ") else f": {message}"


def _dns_hint(error):
    """Say which switch refused a host name."""
    return " (--dns 0)" if isinstance(error, HostNameRefused) else ""


def affordable_concurrency(wanted, limit=None, ends=1):
    """
    The concurrency the open-file limit allows: each connection is ``ends``
    files (one, or more when the simnet serving it lives in this process),
    and RESERVED_FILES stay free for everything else.
    """
    limit = open_file_limit() if limit is None else limit
    return max(1, min(wanted, (limit - RESERVED_FILES) // ends))


class CrawlerService(Service):
    """
    Runs crawls: open the address book, discover, crawl, write the snapshot,
    and either wait ``interval`` and go again or stop the reactor.
    """

    log = logger()

    def __init__(self, options, reactor):
        self.options = options
        self.reactor = reactor
        self.crawler = None
        self.simnet = None
        self.book = None
        self.seeds = list(options["seeds"])
        #: No result: the crawl could not run, or its snapshot was not written.
        self.failed = False
        #: The snapshot was written, but the address book could not keep
        #: everything the crawl learnt.
        self.book_failed = False
        #: Set by startService: only then is the exit status the crawl's.
        self.started = False
        self._running = None
        self._finished = OneShot()
        self._waiting = None

    def startService(self):
        super().startService()
        self.started = True
        self._running = ensureDeferred(self._main())
        self._running.addErrback(self._crashed)
        self._running.addBoth(self._finished.fire)

    def stopService(self):
        super().stopService()
        if self.crawler is not None:
            self.crawler.stop()
        if self._waiting is not None:
            self._waiting.cancel()
        return ensureDeferred(self._release())

    async def _release(self):
        # Let _main see that we stopped before its book is closed under it.
        if self._running is not None:
            await self._finished.when()
        book, self.book = self.book, None
        simnet, self.simnet = self.simnet, None
        try:
            if book is not None:
                await book.close()
        except AddressBookError:
            # The last flush failed: the book said what it lost, in one
            # line, and the exit status must say so too.
            self.book_failed = True
        finally:
            if simnet is not None:
                await simnet.stop()

    def _crashed(self, failure):
        if failure.check(*EXPECTED_FAULTS):
            self.log.error("the crawl cannot run: {error}", error=failure.value)
        else:
            self.log.failure("the crawl failed", failure)
        self.failed = True
        if self.reactor.running:
            self.reactor.stop()

    async def _main(self):
        options, reactor = self.options, self.reactor
        crawl_options, resolver = await self._prepare()
        while self.running:
            began = reactor.seconds()
            await self._crawl_once(crawl_options, resolver)
            if not self.running or not options["interval"]:
                break
            # --interval is the time from one crawl's start to the next's.
            self._waiting = deferLater(
                reactor, max(0.0, began + options["interval"] - reactor.seconds()))
            try:
                await self._waiting
            except CancelledError:
                return
            finally:
                self._waiting = None
        if self.running:
            reactor.stop()

    async def _prepare(self):
        """
        Everything that can fail before a single dial: the snapshot
        directory, the address book (opened, checked, locked), the simnet,
        the resolver.  A fault here is one line and exit status 1.
        """
        options, reactor = self.options, self.reactor
        network = options["network"]
        crawl_options = self._affordable(options["crawl"])
        # Closed by stopService once the crawl has wound down, not by the
        # book's own shutdown trigger, which would fire before it.
        self.book = AddressBook(_book_path(options["db"]), reactor, close_at_shutdown=False)
        await self.book.open()
        await _check_book_network(self.book, options["db"], network)
        check_output_directory(options["out"])
        if options["simnet"]:
            self.simnet = SimNet(
                reactor, options["simnet"], options["simnet-dead"],
                misbehaving=options["simnet-misbehaving"], seed=options["simnet-seed"],
                network=network, max_connections=2 * crawl_options.concurrency,
            )
            truth = self.simnet.start()
            self.seeds += self.simnet.seeds()
            self.log.info("simnet: {nodes} nodes, {dead} dead addresses on loopback",
                          nodes=truth["counts"]["nodes"], dead=options["simnet-dead"])
        if options["external-ip-url"]:
            try:
                ip = await fetch_external_ip(options["external-ip-url"], reactor=reactor)
                self.log.info("external address (HTTP): {ip}", ip=ip)
            except Exception as error:
                self.log.warn("external address lookup failed: {error}", error=error)
        discovery = options["discovery"]
        resolver = None
        if discovery.needs_resolver(network, self.seeds):
            # Never built otherwise: with --dnsseed 0 and no host name, no lookup.
            resolver = make_resolver([options["dns-server"]] if options["dns-server"] else None)
        # The operator's seeds (a simnet's own are in its line above).
        self.log.info("{sources}", sources=discovery.describe(network, options["seeds"]))
        return crawl_options, resolver

    def _affordable(self, crawl_options):
        """The crawl options with the concurrency the open-file limit allows."""
        # An in-process simnet holds the other end of each connection, and may
        # hold it a moment after the crawler is done with it: budget for both.
        budget = affordable_concurrency(2**31, ends=3 if self.options["simnet"] else 1)
        if budget < crawl_options.concurrency:
            self.log.warn(
                "the open-file limit allows {n} connections at once, not {wanted}: "
                "crawling with {n} (raise 'ulimit -n' for more)",
                n=budget, wanted=crawl_options.concurrency,
            )
        return attr.evolve(
            crawl_options, concurrency=min(budget, crawl_options.concurrency), max_open=budget
        )

    async def _crawl_once(self, crawl_options, resolver):
        """One crawl: discover, crawl (or resume), snapshot, record."""
        options, reactor, book = self.options, self.reactor, self.book
        network = options["network"]
        # A --simnet crawl's network is new, on new ports: the addresses a
        # --db book holds from another run's simnet lead nowhere.
        in_book = [] if options["simnet"] else [
            k for k in await self._known() if _dialable(k.address, crawl_options.allow_private)]
        known = [k.address for k in in_book]
        # What the book can give this crawl: addresses it will dial.
        usable = [k for k in in_book if crawl_options.not_dialled_reason(k.address) is None]
        found = await discover(network, resolver, options=options["discovery"],
                               extra=self.seeds, known=len(usable),
                               good=sum(k.successes > 0 for k in usable), clock=reactor)
        start = list(found.addresses) + known
        if not start:
            self.log.warn(
                "no address to start from: the address book is empty, and no seed, DNS "
                "seed or fixed seed gave one; give --seed HOST[:PORT] or --seeds-file FILE"
            )
        if not self.running:
            return  # stopped while discovering
        crawl_id, settled = await self._begin(network)
        if not self.running:
            return  # stopped while the book was asked: the crawl is resumed next time
        book = self.book if crawl_id is not None else None
        self.log.info(
            "{verb} a crawl of {network} from {seeds} addresses "
            "({book} from the address book)",
            verb="resuming" if settled else "starting", network=network.name,
            seeds=len(set(start)), book=len(known),
        )
        self.crawler = Crawler(reactor, network, start, options=crawl_options,
                               peer_options=options["peer"], book=book,
                               crawl_id=crawl_id, settled=settled)
        encoded = EncodedNodes()
        ahead = LoopingCall(_encode_ahead, self.crawler, encoded)
        ahead.clock = reactor
        ahead.start(ENCODE_AHEAD[1], now=False).addErrback(
            lambda failure: self.log.failure(
                "encoding nodes ahead of the snapshot failed; they are encoded "
                "as it is written", failure))
        try:
            result = await self.crawler.run()
        finally:
            if ahead.running:
                ahead.stop()
        self.crawler = None
        if not self.running:
            # Stopped midway: the book keeps every attempt made, and the
            # crawl stays unfinished in it; the next start resumes it.
            self.log.info("crawl interrupted; the address book keeps what it learnt, "
                          "and the next start resumes the crawl")
            return
        params = _params(options)
        summary = summarize(result, params)
        # The snapshot comes from the crawl itself, whatever the book does.
        try:
            written = write_snapshot(result, options["out"], summary, encoded,
                                     unreachable=True, latest=True)
            paths = (*written, written.unreachable)
        except SnapshotError as error:
            self.log.error("the crawl's snapshot could not be written: {error}", error=error)
            self.failed = True
            paths = ()
        recorded = crawl_id is not None and await self._record(crawl_id, summary,
                                                               reactor.seconds())
        self._warn(result, crawl_options)
        self.log.info(
            "crawl done in {elapsed:.1f} s: {reachable} reachable, {unreachable} "
            "unreachable, {not_dialled} not dialled{resumed}; snapshot: {files}; "
            "address book: {book}",
            elapsed=result.elapsed, reachable=len(result.reachable),
            unreachable=len(result.unreachable), not_dialled=len(result.not_dialled),
            resumed=f" ({result.resumed} from the interrupted run)" if result.resumed else "",
            files=", ".join(paths) or "none written", book=self._book_text(recorded),
        )

    async def _begin(self, network):
        """
        The crawl to run: the book's unfinished crawl of this network,
        resumed with the verdicts it holds, or a new one.  A --simnet crawl
        never resumes (the network it crawled is gone with its process),
        nor does one started with --fresh: the unfinished crawl is closed
        as abandoned.
        """
        try:
            return await self._begin_in_book(network)
        except AddressBookError as error:
            # A storage fault (a full disk): this crawl still runs and
            # gets its snapshot; only the book does without it.
            self.log.error("the address book {path} cannot record a new crawl: {error}; "
                           "crawling without it", path=self.options["db"], error=error)
            self.book_failed = True
            return None, None

    async def _begin_in_book(self, network):
        """_begin's work, in the book."""
        book, options, now = self.book, self.options, self.reactor.seconds()
        unfinished = await book.unfinished_crawl(network.name)
        if unfinished is not None:
            if options["fresh"] or options["simnet"]:
                why = "--fresh" if options["fresh"] else "its simulated network is gone"
                await book.abandon_crawl(unfinished.id, now, why)
                self.log.info("crawl {id} was left unfinished; closed as abandoned ({why})",
                              id=unfinished.id, why=why)
            else:
                settled = Settled.from_verdicts(await book.verdicts(unfinished.id))
                self.log.info(
                    "crawl {id} was left unfinished: resuming it, {n} addresses already "
                    "settled are not dialled again (--fresh starts over)",
                    id=unfinished.id, n=len(settled))
                return unfinished.id, settled
        crawl_id = await book.start_crawl(network.name, _params(options), now)
        return crawl_id, None

    async def _record(self, crawl_id, summary, now):
        """Write the crawl's end to the book; False (said in one line) if
        the book could not keep it.  The snapshot has it all the same."""
        try:
            await self.book.flush()
            await self.book.finish_crawl(crawl_id, summary, now)
        except AddressBookError as error:
            self.log.error(
                "the address book {path} could not record the end of this crawl: {error}; "
                "the snapshot holds the whole result", path=self.options["db"], error=error)
            self.book_failed = True
            return False
        return True

    async def _known(self):
        """The book's addresses, or none when the book cannot be read now (a
        storage fault, said in one line): a crawl goes on from its seeds."""
        try:
            return await self.book.known()
        except AddressBookError as error:
            self.log.error("the address book {path} cannot be read: {error}; "
                           "crawling from the seeds alone", path=self.options["db"],
                           error=error)
            return []

    def _book_text(self, recorded):
        """How the final line names the address book."""
        db = self.options["db"]
        if db is None:
            return "in memory only (give --db PATH to keep it)"
        return db if recorded else f"{db} (incomplete, see above)"

    def _warn(self, result, crawl_options):
        """Say what the user can fix: gossip dropped as unroutable."""
        dropped = result.filtered.get("unroutable", 0)
        if dropped and not crawl_options.allow_private:
            self.log.warn(
                "{n} gossiped addresses were private, loopback or otherwise unroutable and "
                "were not dialled; to crawl a private or test network, add --allow-private",
                n=dropped,
            )


def _encode_ahead(crawler, encoded):
    """Encode nodes for the snapshot once nothing is pending: the crawl then
    only waits for what is in flight, most of it dials that will time out."""
    if not crawler.pending:
        encoded.catch_up(crawler.reachable, ENCODE_AHEAD[0])


def _book_path(db):
    """Where the address book lives: the --db file, or memory when there is
    none (a --simnet crawl's network exists only while it runs)."""
    return ":memory:" if db is None else os.path.abspath(db)


def _dialable(address, allow_private):
    """Whether an address from the book may be dialled in this crawl."""
    return address.is_valid() and (allow_private or address.is_routable())


async def _check_book_network(book, path, network):
    """Refuse a book that holds another network's crawls."""
    others = {c["network"] for c in await book.crawls()} - {network.name}
    if others:
        raise ValueError(
            f"{path} holds crawls of {', '.join(sorted(others))}, not {network.name}: "
            "give this network its own --db"
        )


def _params(options):
    """The options worth recording with each crawl in the database."""
    crawl = options["crawl"]
    return {
        "network": options["network"].name,
        "concurrency": crawl.concurrency,
        "getaddr_fraction": crawl.getaddr_fraction,
        "max_age": crawl.max_age,
        "connect_timeout": crawl.connect_timeout,
        "simnet": options["simnet"],
        # As typed, escaped: an argument need not be UTF-8.
        "argv": [escape(argument) for argument in sys.argv[1:]],
    }


def exit_now(service):
    """
    End the process with the crawl's status, at once.  twistd exits 0 once
    its reactor stops, and a failed crawl must not look like a successful
    one to a script or a scheduler.  This runs at exit; once the service
    has run, twistd has stopped it (the address book is closed, the
    snapshot written), removed its pid file and logged its last line: all
    that is left is Python freeing the crawl's objects one by one, which
    took 0.25 s after a 10,000-node crawl and 2 s after a 40,000-node one.
    """
    if not service.started:
        # twistd gave up before starting it (a bad --logfile, --uid...):
        # its own exit status stands.
        return
    failed = service.failed or getattr(sys, "last_value", None) is not None
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FAILED if failed else EXIT_BOOK_INCOMPLETE if service.book_failed else 0)


def makeService(options):
    """twistd's entry point: the CrawlerService for these options."""
    from twisted.internet import reactor

    tune_garbage_collector()
    service = CrawlerService(options, reactor)
    atexit.register(exit_now, service)
    return service

