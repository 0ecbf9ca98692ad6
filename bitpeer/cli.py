"""
The ``bitpeer`` command: poke one node, or decode bytes by hand.

    bitpeer handshake HOST[:PORT] [--network NAME] [--json]   the node's PeerInfo
    bitpeer getaddr HOST[:PORT] [--network NAME] [--json]     the addresses it gives
    bitpeer decode HEX|- [--network NAME]                     frames in hex, decoded
    bitpeer dump --db BOOK [--format seeder|json] [--network NAME]
                                            the DNS seeder's view of every node

A ``.onion`` node is reached through Tor (``--onion-proxy 127.0.0.1:9050``,
or ``--proxy``), a ``.b32.i2p`` node through an I2P router's SAM bridge
(``--i2p-sam 127.0.0.1:7656``), and with ``--proxy`` every node goes
through that SOCKS5 proxy (Core's -proxy).

What a command found goes to stdout; every error is one line on stderr,
beginning ``bitpeer``, and a non-zero exit status: 2 for a usage error (bad
options, input that is not hex), 1 when the node failed us or a frame did
not decode.  Text a peer controls (its user agent) is shown in the escaped
form of bitpeer.wire.text, in the text and the JSON output alike.  A reader
that stops reading (``| head``) ends the command quietly.
"""

import argparse
import json
import math
import os
import random
import re
import sqlite3
import sys

import attr
from twisted.internet import task
from twisted.internet.defer import ensureDeferred
from twisted.python.failure import Failure

from .crawl.crawler import DEFAULT_I2P_TIMEOUT, DEFAULT_ONION_TIMEOUT
from .crawl.slots import endpoint_text, parse_endpoint
from .errors import ConnectionClosed, PeerError, ProtocolViolation
from .factory import DEFAULT_CONNECT_TIMEOUT, PeerFactory, client_endpoint, connectPeer
from .net.endpoints import classify_connect_error
from .networks import (
    NETWORKS,
    ONLYNET_CHOICES,
    custom_network,
    get_network,
    network_for_magic,
    parse_seed,
)
from .protocol import PeerOptions
from .seed.dump import write_dump
from .store.bookcheck import AddressBookError
from .store.bookdb import open_read_only, read_dump
from .store.bookschema import SEEDER_SCHEMA
from .wire.address import split_host_port
from .wire.errors import BadMagic, ProtocolError
from .wire.framing import FrameDecoder
from .wire.services import describe
from .wire.text import escape

#: Exit statuses (130: the shell's for a command ended by Ctrl-C).
FAILED, USAGE, INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A command line that cannot be run: exit status 2."""


class CommandFailed(Exception):
    """The command ran and failed (the node, the input): exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (usage stays with --help)."""

    def error(self, message):
        self.exit(USAGE, f"{self.prog}: {_line(message)} (see {self.prog} --help)\n")


def _line(text):
    """An error message on one line.  Peer text in it is already shown by
    repr or escape; this only folds line breaks of our own messages."""
    return " ".join(str(text).split())


def _seconds(text):
    """A timeout: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < math.inf:  # nan fails too
        raise argparse.ArgumentTypeError(
            f"must be a positive, finite number of seconds, not {text!r}")
    return value


def _port(text):
    """A TCP port, 1..65535."""
    if not text.isdigit() or not 0 < int(text) <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"not a port (1..65535): {text!r}")
    return int(text)


def _endpoint(text):
    """A proxy's or bridge's HOST:PORT."""
    try:
        return parse_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _network(args):
    if args.magic:
        if args.port is None:
            raise UsageError("--magic needs --port")
        try:
            return custom_network(args.magic, args.port)
        except ValueError as error:
            raise UsageError(error) from None
    return get_network(args.network)


def _parser():
    parser = _Parser(
        prog="bitpeer", description="Talk to one Bitcoin node, or decode P2P bytes."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def network_options(sub):
        sub.add_argument(
            "--network", default="mainnet", choices=sorted(NETWORKS),
            help="chain whose magic and default port to use (default mainnet)",
        )
        sub.add_argument("--magic", help="custom network magic, 8 hex digits")
        sub.add_argument("--port", type=_port, help="custom network default port")

    for name, text in (
        ("handshake", "connect, complete version/verack, print what the node says"),
        ("getaddr", "connect, handshake, ask for addresses, print them"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("address", help="HOST[:PORT]; IPv6 as [ADDR]:PORT; NAME.onion[:PORT] "
                                         "or NAME.b32.i2p")
        network_options(sub)
        sub.add_argument("--timeout", type=_seconds,
                         help=f"connect timeout in seconds (default {DEFAULT_CONNECT_TIMEOUT:g}, "
                              f"{DEFAULT_ONION_TIMEOUT:g} through a SOCKS5 proxy, "
                              f"{DEFAULT_I2P_TIMEOUT:g} for I2P)")
        sub.add_argument("--onion-proxy", type=_endpoint, metavar="HOST:PORT",
                         help="Tor's SOCKS5 port, to reach a .onion node")
        sub.add_argument("--proxy", type=_endpoint, metavar="HOST:PORT",
                         help="a SOCKS5 proxy for any node (and .onion without --onion-proxy)")
        sub.add_argument("--i2p-sam", type=_endpoint, metavar="HOST:PORT",
                         help="an I2P router's SAM bridge, to reach a .b32.i2p node")
        sub.add_argument("--json", action="store_true", help="print JSON")

    text = "decode frames given as hex (- reads the hex from stdin)"
    sub = commands.add_parser("decode", help=text, description=text)
    sub.add_argument("hex", help="one or more frames, concatenated, in hex; - for stdin")
    network_options(sub)

    text = ("print the DNS seeder's record of every node it reached, as sipa's seeder's "
            "dnsseed.dump (which Bitcoin Core's makeseeds.py reads) or JSON")
    sub = commands.add_parser("dump", help=text, description=text)
    sub.add_argument("--db", required=True, metavar="BOOK",
                     help="the address book bitpeer-seed keeps (read only, even while it runs)")
    sub.add_argument("--format", default="seeder", choices=("seeder", "json"),
                     help="seeder (dnsseed.dump's columns, the default) or json")
    sub.add_argument("--network", choices=ONLYNET_CHOICES,
                     help="only addresses of this network (default: all)")
    return parser


def shown(record):
    """
    A JSON-ready dict as the command shows it: every text value in the
    escaped form (a peer's user agent; our own text is plain ASCII, which
    escape leaves as it is).
    """
    return {k: escape(v) if isinstance(v, str) else v for k, v in record.items()}


def info_lines(info):
    """A PeerInfo as the text output's ``key value`` lines."""
    return [f"{key:18} {value}" for key, value in shown(info.as_dict()).items()]


def message_text(message):
    """
    A decoded message on one line: its repr, except that text fields (a
    user agent, a reject reason) are in the escaped form, between single
    quotes, as bitpeer shows peer text everywhere else (repr would show a
    byte that is not UTF-8 as a surrogate, ``\\udcff``).
    """
    cls = type(message)
    if not attr.has(cls):
        return repr(message)
    fields = []
    for field in attr.fields(cls):
        if field.repr:
            value = getattr(message, field.name)
            shown_value = f"'{escape(value)}'" if isinstance(value, str) else repr(value)
            fields.append(f"{field.name}={shown_value}")
    return f"{cls.__name__}({', '.join(fields)})"


def _hint(error, address, network):
    """
    Why a handshake may have failed, when the node looks like one of
    another network: it sent another network's magic; it closed the
    connection after our version (Core's v1 transport disconnects on a magic
    it does not know); or it sent bytes that are no magic at all (Core's v2
    transport takes a version it cannot read for the start of a v2
    handshake, and answers with its key).  None for other failures.
    """
    if isinstance(error, ProtocolViolation) and isinstance(error.error, BadMagic):
        found = re.search(r"wrong message start ([0-9a-f]{8})", str(error.error))
        other = found and network_for_magic(bytes.fromhex(found.group(1)))
        if other:
            return f"the node is on {other.name}: try --network {other.name}"
    elif not isinstance(error, ConnectionClosed):
        return None
    port = re.search(r":(\d+)$", address)
    others = [n for n in NETWORKS.values() if n.magic != network.magic]
    by_port = [n for n in others if port and n.default_port == int(port.group(1))]
    names = [n.name for n in by_port or others]
    choices = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"the node may be on another network: try --network {choices}"


@attr.frozen
class Route:
    """How to reach the node: through a SOCKS5 proxy (``kind`` "socks5") or
    a SAM bridge ("sam") at ``via`` (host, port), to ``target`` (a
    NetworkAddress), within ``timeout`` seconds."""

    kind: str
    via: tuple
    target: object
    timeout: float


def route(args, network):
    """
    The Route to ``args.address``, or None for a plain connection; a
    UsageError, one line, for an overlay address without its option (or an
    I2P address with a port: SAM 3.1 has none).
    """
    try:
        host, port = split_host_port(args.address)
    except ProtocolError:
        return None  # not an address: connectPeer says why, as for any other
    if host.lower().endswith(".b32.i2p"):
        if port:
            raise UsageError(f"{args.address}: I2P has no ports; write {host} or {host}:0")
        target = parse_seed(f"{host}:0", 0)
        if not args.i2p_sam:
            raise UsageError(f"{args.address}: an I2P node is reached through an I2P router: "
                             "give --i2p-sam HOST:PORT (its SAM bridge, e.g. 127.0.0.1:7656)")
        return Route("sam", args.i2p_sam, target, args.timeout or DEFAULT_I2P_TIMEOUT)
    if host.lower().endswith(".onion"):
        target = parse_seed(args.address, network.default_port)
        via = args.onion_proxy or args.proxy
        if not via:
            raise UsageError(f"{args.address}: an onion node is reached through Tor: give "
                             "--onion-proxy HOST:PORT (Tor's SOCKS port, e.g. 127.0.0.1:9050)")
        return Route("socks5", via, target, args.timeout or DEFAULT_ONION_TIMEOUT)
    if args.proxy:
        target = parse_seed(args.address, network.default_port, names=False)
        return Route("socks5", args.proxy, target, args.timeout or DEFAULT_ONION_TIMEOUT)
    return None


def overlay_endpoint(reactor, route):
    """The client endpoint of a Route: the SOCKS5 client (with fresh
    credentials, so Tor gives the connection a circuit of its own, as
    Core's -proxyrandomize) or the SAM client."""
    bridge = client_endpoint(reactor, endpoint_text(route.via), route.timeout)
    target = route.target
    if route.kind == "socks5":
        from .net.socks5 import Socks5ClientEndpoint, random_credentials

        return Socks5ClientEndpoint(reactor, bridge, target.host_text, target.port,
                                    credentials=random_credentials(random.SystemRandom()),
                                    timeout=route.timeout)
    from .net.sam import SamClientEndpoint, SamSession

    return SamClientEndpoint(SamSession(reactor, bridge), target.host_text)


async def _connect_through(reactor, route, network):
    """Connect along ``route`` and complete the handshake: the Peer."""
    endpoint = overlay_endpoint(reactor, route)
    try:
        protocol = await endpoint.connect(PeerFactory(reactor, network, PeerOptions()))
    except PeerError:
        raise
    except Exception as error:
        classified = classify_connect_error(Failure(error))
        if classified is None:
            raise
        raise classified from error
    await protocol.peer.whenHandshaken()
    return protocol.peer


async def _connect(reactor, args, network):
    """connectPeer (or the overlay's endpoint), with a failed handshake
    explained."""
    try:
        if args.route is not None:
            return await _connect_through(reactor, args.route, network)
        return await connectPeer(reactor, args.address, network,
                                 connect_timeout=args.timeout or DEFAULT_CONNECT_TIMEOUT)
    except PeerError as error:
        message = f"{args.address}: {error.reason}: {_line(error)}"
        hint = _hint(error, args.address, network)
        raise CommandFailed(f"{message}; {hint}" if hint else message) from error


async def _handshake(reactor, args, network):
    peer = await _connect(reactor, args, network)
    try:
        if args.json:
            print(json.dumps(shown(peer.info.as_dict()), indent=2))
        else:
            print("\n".join(info_lines(peer.info)))
    finally:
        peer.close()


def address_records(addresses):
    """getaddr's entries as JSON-ready dicts, address text escaped."""
    return [
        shown({"address": str(e.address), "network": e.address.network_name,
               "services": e.services, "services_text": describe(e.services),
               "time": e.time})
        for e in addresses
    ]


async def _getaddr(reactor, args, network):
    peer = await _connect(reactor, args, network)
    try:
        result = await peer.getaddr()
    finally:
        peer.close()
    records = address_records(result.addresses)
    if args.json:
        print(json.dumps({
            "peer": str(peer.address),
            "outcome": result.outcome,
            "messages": result.messages,
            "addresses": records,
        }, indent=2))
    else:
        for record in records:
            print(f"{record['address']}\t{record['network']}\t"
                  f"{record['services_text']}\t{record['time']}")
        print(f"# {len(records)} addresses from {peer.address} "
              f"({result.outcome}, {result.messages} messages)", file=sys.stderr)


def _read_hex(args):
    """The bytes to decode: the argument's hex, or stdin's with ``-``.
    Whitespace between bytes (line breaks too) is allowed."""
    if args.hex == "-":
        source = "standard input"
        stdin = getattr(sys.stdin, "buffer", None)
        text = stdin.read().decode("ascii", "replace") if stdin else sys.stdin.read()
    else:
        source, text = "the argument", args.hex
    try:
        return bytes.fromhex(text)
    except ValueError as error:
        raise UsageError(f"{source} is not hex: {error}") from None


def _decode(args, network):
    """Print each frame's message; each fault on stderr.  1 if any."""
    data = _read_hex(args)
    decoder = FrameDecoder(network.magic)
    faults = 0
    for number, item in enumerate(decoder.feed(data), 1):
        if not isinstance(item, ProtocolError):
            try:
                item = item.decode()
            except ProtocolError as error:
                item = error
        if isinstance(item, ProtocolError):
            print(f"bitpeer: frame {number}: {_line(item)}", file=sys.stderr)
            faults += 1
        else:
            print(message_text(item))
    if decoder.buffered:
        print(f"bitpeer: incomplete: {decoder.buffered} bytes at the end wait for the "
              "rest of a frame", file=sys.stderr)
        faults += 1
    return FAILED if faults else 0


def _dump(args):
    """Print the seeder's dump of ``--db``; a book that cannot be read is
    one line and status 1."""
    try:
        db, version = open_read_only(args.db)
    except AddressBookError as error:
        print(f"bitpeer: {_line(error)}", file=sys.stderr)
        return FAILED
    try:
        if version < SEEDER_SCHEMA:
            raise CommandFailed(f"{args.db} holds no seeder records (address-book schema "
                                f"{version}): run twistd bitpeer-seed --db {args.db} first")
        rows = read_dump(db)
    except sqlite3.Error as error:
        print(f"bitpeer: {args.db}: {_line(error)}", file=sys.stderr)
        return FAILED
    except CommandFailed as error:
        print(f"bitpeer: {_line(error)}", file=sys.stderr)
        return FAILED
    finally:
        db.close()
    if args.network:
        rows = [row for row in rows if row[0].network_name == args.network]
    write_dump(rows, sys.stdout, args.format)
    return 0


def _run(argv):
    """The command; its exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return exit_.code
    if args.command == "dump":
        return _dump(args)
    try:
        network = _network(args)
        if args.command == "decode":
            return _decode(args, network)
        args.route = route(args, network)
    except (UsageError, ValueError) as error:
        print(f"bitpeer: {_line(error)}", file=sys.stderr)
        return USAGE
    run = _handshake if args.command == "handshake" else _getaddr
    status = []

    def go(reactor):
        d = ensureDeferred(run(reactor, args, network))

        def failed(failure):
            error = failure.value
            status.append(FAILED)
            if isinstance(error, BrokenPipeError):
                _stdout_to_devnull()  # the reader has gone: say nothing
                return None
            if isinstance(error, CommandFailed):
                line = error
            elif isinstance(error, PeerError):
                line = f"{args.address}: {error.reason}: {error}"
            elif isinstance(error, ValueError):
                line = error
                status[-1] = USAGE
            else:
                line = f"{args.address}: {failure.getErrorMessage()}"
            print(f"bitpeer: {_line(line)}", file=sys.stderr)
            return None

        return d.addErrback(failed)

    try:
        task.react(go)
    except SystemExit as exit_:
        return status[0] if status else exit_.code
    return 0


def main(argv=None):
    """Entry point of the ``bitpeer`` console script: the exit status."""
    try:
        status = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return FAILED
    except KeyboardInterrupt:  # Ctrl-C while decode - waits for stdin
        print("bitpeer: interrupted", file=sys.stderr)
        return INTERRUPTED
    return status


def _stdout_to_devnull():
    """
    The reader of our stdout has gone (``| head``): point stdout at
    /dev/null, so that Python's last flush at exit does not report the
    broken pipe (the idiom of Python's signal documentation).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
