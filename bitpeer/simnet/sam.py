"""
The simnet's SAM 3.1 front: an I2P router's SAM bridge, as Bitcoin Core
uses it (i2p.cpp).

Every exchange is one line each way.  A connection starts with ``HELLO
VERSION MIN=3.1 MAX=3.1``; then ``SESSION CREATE STYLE=STREAM ID=<id>
DESTINATION=TRANSIENT ...`` makes a session that lives as long as that
connection (its streams end with it), ``NAMING LOOKUP
NAME=<b32>.b32.i2p`` gives a name's destination (every live and dead I2P
node of the population has one; other names are KEY_NOT_FOUND), and
``STREAM CONNECT ID=<id> DESTINATION=<dest> SILENT=false`` reaches it:
after a tunnel-building delay a live node answers ``RESULT=OK`` and its
behaviour talks on the connection; a dead one gets ``CANT_REACH_PEER``
after its own delay.  Both hold one of the front's slots, as circuits do at
the SOCKS front.  Lines are bounded (64 KiB, as Core's reader); anything
malformed closes the connection.
"""

import base64
import binascii

from ..wire.address import Network, NetworkAddress
from .front import Front, FrontConnection
from .population import i2p_address, i2p_destination

#: The longest line either side accepts (Core's MAX_MSG_SIZE).
MAX_LINE = 65536

SAM_VERSION = (3, 1)


def i2p_b64encode(raw):
    """I2P's Base64: ``-`` and ``~`` instead of ``+`` and ``/``."""
    return base64.b64encode(raw, altchars=b"-~").decode("ascii")


def i2p_b64decode(text):
    """The bytes of I2P Base64 text; ValueError if it is not."""
    try:
        return base64.b64decode(text.encode("ascii"), altchars=b"-~", validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"not I2P Base64: {error}") from None


def parse_line(line):
    """``NAMING LOOKUP NAME=x`` -> ("NAMING LOOKUP", {"NAME": "x"}); ValueError if malformed."""
    words = line.split()
    if len(words) < 2:
        raise ValueError(f"not a SAM command: {line!r}")
    arguments = {}
    for word in words[2:]:
        key, _, value = word.partition("=")
        arguments[key.upper()] = value
    return f"{words[0].upper()} {words[1].upper()}", arguments


def _version(text):
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


class SamConnection(FrontConnection):
    """One client of the SAM front: a session's control line or one stream."""

    def __init__(self, front):
        super().__init__(front)
        self.greeted = False
        self.session = None
        self.silent = False
        #: A session's control connection: the streams made in its name,
        #: which end with it (as a router closes a dead session's streams).
        self.streams = set()
        #: A stream: the control connection of its session.
        self.control = None

    def negotiate(self):
        while self.ticket is None and not self.closing:
            line, newline, rest = self.buffer.partition(b"\n")
            if not newline:
                if len(self.buffer) > MAX_LINE:
                    self.close("malformed")
                return
            self.buffer = rest
            try:
                self.command(*parse_line(line.decode("ascii").rstrip("\r")))
            except ValueError:
                self.close("malformed")

    def say(self, line):
        self.transport.write(line.encode("ascii") + b"\n")

    def command(self, name, arguments):
        if name == "HELLO VERSION":
            self.hello(arguments)
        elif not self.greeted:
            raise ValueError("HELLO must come first")
        elif name == "SESSION CREATE":
            self.create_session(arguments)
        elif name == "NAMING LOOKUP":
            self.lookup(arguments["NAME"])
        elif name == "STREAM CONNECT":
            self.connect(arguments)
        else:
            raise ValueError(f"unsupported command {name}")

    def hello(self, arguments):
        low = _version(arguments.get("MIN", "3.1"))
        high = _version(arguments.get("MAX", "3.1"))
        if self.greeted or not low <= SAM_VERSION <= high:
            self.say("HELLO REPLY RESULT=NOVERSION")
            self.close("no-version")
            return
        self.greeted = True
        self.say("HELLO REPLY RESULT=OK VERSION=3.1")

    def create_session(self, arguments):
        sessions = self.front.sessions
        name = arguments.get("ID")
        if not name or arguments.get("STYLE") != "STREAM" or self.session is not None:
            raise ValueError("SESSION CREATE needs STYLE=STREAM and an ID, once")
        if name in sessions:
            self.say("SESSION STATUS RESULT=DUPLICATED_ID")
            return
        private_key = arguments.get("DESTINATION", "TRANSIENT")
        if private_key == "TRANSIENT":
            # A destination, then its private keys (ElGamal 256, Ed25519 32).
            random = self.front.random
            private_key = i2p_b64encode(i2p_destination(random) + random.randbytes(288))
        self.session = name
        sessions[name] = self
        self.front.count("sessions")
        self.say(f"SESSION STATUS RESULT=OK DESTINATION={private_key}")

    def lookup(self, name):
        destination = None
        if name.lower().endswith(".b32.i2p"):
            try:
                destination = self.front.destination_of(name)
            except ValueError:
                pass
        if destination is None:
            self.say(f"NAMING REPLY RESULT=KEY_NOT_FOUND NAME={name}")
        else:
            self.say(f"NAMING REPLY RESULT=OK NAME={name} VALUE={i2p_b64encode(destination)}")

    def connect(self, arguments):
        self.silent = arguments.get("SILENT", "false").lower() == "true"
        control = self.front.sessions.get(arguments.get("ID"))
        if control is None:
            self.reply_stream("INVALID_ID")
            return
        address = i2p_address(i2p_b64decode(arguments["DESTINATION"]))
        if address not in self.simnet.population.destinations:
            self.reply_stream("INVALID_KEY")
            return
        self.control = control
        control.streams.add(self)
        profile = self.simnet.node_at(address.host_text)
        if profile is not None and profile.address.network == Network.I2P:
            self.open_circuit(True, lambda: self.reached(profile))
        else:
            self.open_circuit(False, lambda: self.reply_stream("CANT_REACH_PEER"))

    def reached(self, profile):
        if not self.silent:
            self.say("STREAM STATUS RESULT=OK")
        self.hand_over(profile)

    def reply_stream(self, result):
        """A failed STREAM CONNECT: say why (unless silent) and hang up."""
        if not self.silent:
            self.say(f"STREAM STATUS RESULT={result}")
        self.close(result.lower().replace("_", "-"))

    def connectionLost(self, reason):
        if self.session is not None:
            self.front.sessions.pop(self.session, None)
            for stream in list(self.streams):
                stream.transport.loseConnection()
        if self.control is not None:
            self.control.streams.discard(self)
        super().connectionLost(reason)


class SamFront(Front):
    """A SAM 3.1 bridge: ``sessions`` by ID, each held by its control connection."""

    protocol = SamConnection

    def __init__(self, simnet, random, **timing):
        super().__init__(simnet, random, **timing)
        self.sessions = {}

    def destination_of(self, name):
        """The destination of a ``.b32.i2p`` name, or None; ValueError if malformed."""
        return self.simnet.population.destinations.get(NetworkAddress.from_host(name, 0))
