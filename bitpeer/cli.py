"""
The ``bitpeer`` command: poke one node, or decode bytes by hand.

    bitpeer handshake HOST[:PORT] [--network NAME]   the node's PeerInfo
    bitpeer getaddr HOST[:PORT] [--network NAME] [--json]   the addresses it gives
    bitpeer decode HEX [--network NAME]               frames in hex, decoded

Errors are one line on stderr and a non-zero exit status.
"""

import argparse
import json
import sys

from twisted.internet import task
from twisted.internet.defer import ensureDeferred

from .errors import PeerError
from .factory import DEFAULT_CONNECT_TIMEOUT, connectPeer
from .networks import NETWORKS, custom_network, get_network
from .wire.framing import FrameDecoder
from .wire.errors import ProtocolError
from .wire.services import describe


def _network(args):
    if args.magic:
        if args.port is None:
            raise ValueError("--magic needs --port")
        return custom_network(args.magic, args.port)
    return get_network(args.network)


def _parser():
    parser = argparse.ArgumentParser(
        prog="bitpeer", description="Talk to one Bitcoin node, or decode P2P bytes."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def network_options(sub):
        sub.add_argument(
            "--network", default="mainnet", choices=sorted(NETWORKS),
            help="chain whose magic and default port to use (default mainnet)",
        )
        sub.add_argument("--magic", help="custom network magic, 8 hex digits")
        sub.add_argument("--port", type=int, help="custom network default port")

    for name, text in (
        ("handshake", "connect, complete version/verack, print what the node says"),
        ("getaddr", "connect, handshake, ask for addresses, print them"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("address", help="HOST[:PORT]; IPv6 as [ADDR]:PORT")
        network_options(sub)
        sub.add_argument("--timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT,
                         help="connect timeout in seconds (default %(default)s)")
        sub.add_argument("--json", action="store_true", help="print JSON")

    sub = commands.add_parser("decode", help="decode frames given as hex",
                              description="decode frames given as hex")
    sub.add_argument("hex", help="one or more frames, concatenated, in hex")
    network_options(sub)
    return parser


async def _handshake(reactor, args, network):
    peer = await connectPeer(reactor, args.address, network, connect_timeout=args.timeout)
    try:
        info = peer.info.as_dict()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            for key, value in info.items():
                print(f"{key:18} {value}")
    finally:
        peer.close()


async def _getaddr(reactor, args, network):
    peer = await connectPeer(reactor, args.address, network, connect_timeout=args.timeout)
    try:
        result = await peer.getaddr()
    finally:
        peer.close()
    if args.json:
        print(json.dumps({
            "peer": str(peer.address),
            "outcome": result.outcome,
            "messages": result.messages,
            "addresses": [
                {"address": str(e.address), "network": e.address.network_name,
                 "services": e.services, "services_text": describe(e.services),
                 "time": e.time}
                for e in result.addresses
            ],
        }, indent=2))
    else:
        for entry in result.addresses:
            print(f"{entry.address}\t{entry.address.network_name}\t"
                  f"{describe(entry.services)}\t{entry.time}")
        print(f"# {len(result.addresses)} addresses from {peer.address} "
              f"({result.outcome}, {result.messages} messages)", file=sys.stderr)


def _decode(args, network):
    try:
        data = bytes.fromhex(args.hex)
    except ValueError:
        raise ValueError("the argument is not hex") from None
    decoder = FrameDecoder(network.magic)
    faults = 0
    for item in decoder.feed(data):
        if isinstance(item, ProtocolError):
            print(f"fault: {item}")
            faults += 1
            continue
        try:
            print(item.decode())
        except ProtocolError as error:
            print(f"fault: {error}")
            faults += 1
    if decoder.buffered:
        print(f"incomplete: {decoder.buffered} bytes wait for the rest of a frame")
    return 1 if faults else 0


def main(argv=None):
    """Entry point of the ``bitpeer`` console script."""
    args = _parser().parse_args(argv)
    try:
        network = _network(args)
        if args.command == "decode":
            return _decode(args, network)
    except ValueError as error:
        print(f"bitpeer: {error}", file=sys.stderr)
        return 2
    run = _handshake if args.command == "handshake" else _getaddr
    status = []

    def go(reactor):
        d = ensureDeferred(run(reactor, args, network))

        def failed(failure):
            error = failure.value
            if isinstance(error, PeerError):
                print(f"bitpeer: {args.address}: {error.reason}: {error}", file=sys.stderr)
            elif isinstance(error, ValueError):
                print(f"bitpeer: {error}", file=sys.stderr)
            else:
                print(f"bitpeer: {args.address}: {failure.getErrorMessage()}",
                      file=sys.stderr)
            status.append(1)

        return d.addErrback(failed)

    try:
        task.react(go)
    except SystemExit as exit_:
        return status[0] if status else exit_.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
