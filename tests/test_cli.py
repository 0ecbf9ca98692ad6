"""
Tests for the ``bitpeer`` command (bitpeer.cli).  ``decode`` and the usage
errors run in process; ``handshake`` and ``getaddr`` run the real command in
a child process against a NodeFactory that this process serves on
127.0.0.1, and so do the tests where the process boundary matters (exit
status, a closed pipe, stdin).
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from bitpeer import cli
from bitpeer.factory import NodeFactory
from bitpeer.networks import MAINNET, REGTEST
from bitpeer.protocol import PeerOptions
from bitpeer.wire.framing import encode_frame, encode_raw_frame
from bitpeer.wire.messages import AddrV2, Ping, VerAck
from bitpeer.wire.text import unescape

from .helpers import FakeNode, ipv4_entries, node_version, onion_entries

#: A user agent with invalid UTF-8, line breaks, a terminal escape, NUL,
#: quotes and backslashes.
AWKWARD = b'/\xff\xfe\xc3(\n\r\xe2\x80\xa8\x00"\\x41\x1b[31m\xc3\xa9/'

#: Many frames: more output than a pipe holds.
MANY_PINGS = b"".join(encode_frame(MAINNET.magic, Ping(n)) for n in range(20_000))


def run_main(testcase, *argv, stdin=None):
    """cli.main in process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    testcase.patch(sys, "stdout", out)
    testcase.patch(sys, "stderr", err)
    if stdin is not None:
        testcase.patch(sys, "stdin", stdin)
    status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def bitpeer_process(*argv, **kwargs):
    """The real command in a child process (blocking; no reactor involved)."""
    return subprocess.run([sys.executable, "-m", "bitpeer.cli", *argv],
                          capture_output=True, env=os.environ, **kwargs)


def scratch(testcase):
    directory = tempfile.mkdtemp()
    testcase.addCleanup(shutil.rmtree, directory, True)
    return directory


class DecodeTests(SynchronousTestCase):
    """``bitpeer decode HEX``."""

    def run_main(self, *argv, stdin=None):
        return run_main(self, *argv, stdin=stdin)

    def test_verack(self):
        frame = encode_frame(MAINNET.magic, VerAck()).hex()
        self.assertEqual(self.run_main("decode", frame), (0, "VerAck()\n", ""))

    def test_two_frames(self):
        data = encode_frame(MAINNET.magic, VerAck()) + encode_frame(MAINNET.magic, Ping(5))
        status, out, err = self.run_main("decode", data.hex())
        self.assertEqual((status, out), (0, "VerAck()\nPing(nonce=5)\n"))

    def test_network(self):
        frame = encode_frame(REGTEST.magic, VerAck()).hex()
        status, out, _ = self.run_main("decode", frame, "--network", "regtest")
        self.assertEqual((status, out), (0, "VerAck()\n"))

    def test_custom_magic(self):
        frame = encode_frame(bytes.fromhex("01020304"), VerAck()).hex()
        status, out, _ = self.run_main("decode", frame, "--magic", "01020304", "--port", "9")
        self.assertEqual((status, out), (0, "VerAck()\n"))

    def test_magic_needs_port(self):
        status, out, err = self.run_main("decode", "00", "--magic", "01020304")
        self.assertEqual((status, out, err), (2, "", "bitpeer: --magic needs --port\n"))

    def test_bad_hex(self):
        status, out, err = self.run_main("decode", "zz")
        self.assertEqual((status, out), (2, ""))
        self.assertEqual(err, "bitpeer: the argument is not hex: non-hexadecimal number "
                              "found in fromhex() arg at position 0\n")

    def test_bad_checksum(self):
        """A fault is one line on stderr, numbered by frame; stdout stays
        for what decoded."""
        frame = bytearray(encode_frame(MAINNET.magic, Ping(1)))
        frame[-1] ^= 1
        status, out, err = self.run_main("decode", bytes(frame).hex())
        self.assertEqual((status, out), (1, ""))
        self.assertTrue(err.startswith("bitpeer: frame 1: ping: checksum "), err)
        self.assertEqual(err.count("\n"), 1)

    def test_decoded_then_fault(self):
        """What decodes before and after a fault is printed; status 1."""
        bad = bytearray(encode_frame(MAINNET.magic, Ping(2)))
        bad[-1] ^= 1
        data = (encode_frame(MAINNET.magic, Ping(1)) + bytes(bad)
                + encode_frame(MAINNET.magic, VerAck()))
        status, out, err = self.run_main("decode", data.hex())
        self.assertEqual((status, out), (1, "Ping(nonce=1)\nVerAck()\n"))
        self.assertTrue(err.startswith("bitpeer: frame 2: "), err)

    def test_wrong_magic(self):
        frame = encode_frame(REGTEST.magic, VerAck()).hex()
        status, out, err = self.run_main("decode", frame)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, "bitpeer: frame 1: wrong message start fabfb5da, "
                              "expected f9beb4d9\n")

    def test_malformed_payload(self):
        frame = encode_raw_frame(MAINNET.magic, "pong", b"\x01").hex()
        status, out, err = self.run_main("decode", frame)
        self.assertEqual((status, out), (1, ""))
        self.assertTrue(err.startswith("bitpeer: frame 1: pong.nonce"), err)

    def test_incomplete(self):
        frame = encode_frame(MAINNET.magic, Ping(1)).hex()[:-4]
        status, out, err = self.run_main("decode", frame)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, "bitpeer: incomplete: 30 bytes at the end wait for the rest "
                              "of a frame\n")

    def test_stdin(self):
        """``decode -`` reads the hex from stdin, line breaks and all."""
        data = encode_frame(MAINNET.magic, VerAck()).hex() + "\n"
        data += encode_frame(MAINNET.magic, Ping(5)).hex() + "\n"
        for stdin in (io.StringIO(data), io.TextIOWrapper(io.BytesIO(data.encode()))):
            status, out, err = self.run_main("decode", "-", stdin=stdin)
            self.assertEqual((status, out, err), (0, "VerAck()\nPing(nonce=5)\n", ""))

    def test_stdin_not_hex(self):
        stdin = io.TextIOWrapper(io.BytesIO(b"\xff\xfe"))
        status, out, err = self.run_main("decode", "-", stdin=stdin)
        self.assertEqual((status, out), (2, ""))
        self.assertTrue(err.startswith("bitpeer: standard input is not hex: "), err)
        self.assertEqual(err.count("\n"), 1)

    def test_interrupted(self):
        """Ctrl-C while ``decode -`` waits for its input: one line, 130."""
        class Interrupted(io.StringIO):
            def read(self, *args):
                raise KeyboardInterrupt()

        status, out, err = self.run_main("decode", "-", stdin=Interrupted())
        self.assertEqual((status, out, err), (130, "", "bitpeer: interrupted\n"))

    def test_peer_text_in_a_frame(self):
        """A version with an awkward user agent: one line, the user agent
        escaped as everywhere else, the other fields as repr shows them."""
        version = node_version(user_agent=AWKWARD.decode("utf-8", "surrogateescape"))
        frame = encode_frame(MAINNET.magic, version)
        status, out, err = self.run_main("decode", frame.hex())
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(out.count("\n"), 1)
        shown = "'/\\xff\\xfe\\xc3(\\x0a\\x0d\\u2028\\x00\"\\\\x41\\x1b[31m\u00e9/'"
        self.assertEqual(
            out, repr(version).replace(repr(version.user_agent), shown) + "\n")
        # A message without text is exactly its repr.
        self.assertEqual(cli.message_text(Ping(5)), repr(Ping(5)))
        entries = onion_entries(2)
        self.assertEqual(cli.message_text(AddrV2(entries)), repr(AddrV2(entries)))


class UsageTests(SynchronousTestCase):
    """Bad command lines: one line on stderr, status 2, no traceback."""

    def assertUsageError(self, *argv, starts="bitpeer"):
        status, out, err = run_main(self, *argv)
        self.assertEqual((status, out), (2, ""), err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith(starts), err)
        return err

    def test_no_command(self):
        err = self.assertUsageError()
        self.assertEqual(err, "bitpeer: the following arguments are required: command "
                              "(see bitpeer --help)\n")

    def test_unknown_option(self):
        self.assertUsageError("decode", "00", "--frobnicate")

    def test_bad_timeouts(self):
        for timeout in ("-1", "0", "nan", "inf", "-inf", "soon", "1e999"):
            err = self.assertUsageError("handshake", "127.0.0.1:1", f"--timeout={timeout}",
                                        starts="bitpeer handshake: argument --timeout: ")
            self.assertIn(repr(timeout), err)
        # argparse takes "-inf" after a space for an option: refused all the same.
        self.assertUsageError("handshake", "127.0.0.1:1", "--timeout", "-inf")

    def test_bad_port(self):
        for port in ("0", "65536", "-5", "x"):
            self.assertUsageError("decode", "00", "--magic", "01020304", "--port", port)

    def test_bad_magic(self):
        err = self.assertUsageError("decode", "00", "--magic", "zz", "--port", "9")
        self.assertEqual(err, "bitpeer: magic 'zz' is not hex\n")

    def test_help(self):
        status, out, err = run_main(self, "--help")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("decode", out)

    def test_timeout_in_a_process(self):
        """The installed command's way: exit status 2, one line, no traceback."""
        done = bitpeer_process("handshake", "127.0.0.1:1", "--timeout", "-1")
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stdout, b"")
        self.assertEqual(done.stderr.count(b"\n"), 1, done.stderr)
        self.assertNotIn(b"Traceback", done.stderr)


ONION_NAME = "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyp3kead.onion"
I2P_NAME = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"


class OverlayTargetTests(SynchronousTestCase):
    """
    ``.onion`` and ``.b32.i2p`` targets: routed through the option that
    reaches them, or refused in one line (exit status 2) without it.
    """

    def route(self, *argv):
        args = cli._parser().parse_args(["handshake", *argv])
        return cli.route(args, MAINNET)

    def assertRefused(self, *argv, says):
        status, out, err = run_main(self, "handshake", *argv)
        self.assertEqual((status, out), (2, ""), err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(says, err)
        self.assertTrue(err.startswith("bitpeer"), err)

    def test_onion_needs_a_proxy(self):
        self.assertRefused(ONION_NAME, says="give --onion-proxy HOST:PORT")
        self.assertRefused(f"{ONION_NAME}:8333", "--i2p-sam", "127.0.0.1:7656",
                           says="give --onion-proxy HOST:PORT")

    def test_i2p_needs_a_bridge(self):
        self.assertRefused(I2P_NAME, "--onion-proxy", "127.0.0.1:9050",
                           says="give --i2p-sam HOST:PORT")

    def test_i2p_has_no_ports(self):
        self.assertRefused(f"{I2P_NAME}:8333", "--i2p-sam", "127.0.0.1:7656",
                           says="I2P has no ports")

    def test_bad_proxy(self):
        for option in ("--onion-proxy", "--proxy", "--i2p-sam"):
            self.assertRefused(ONION_NAME, option, "127.0.0.1", says=f"argument {option}")

    def test_bad_onion_name(self):
        """A mistyped onion name is refused before anything is dialled."""
        self.assertRefused("abc.onion", "--onion-proxy", "127.0.0.1:9050", says="abc.onion")

    def test_routes(self):
        route = self.route(ONION_NAME, "--onion-proxy", "127.0.0.1:9050")
        self.assertEqual((route.kind, route.via, str(route.target), route.timeout),
                         ("socks5", ("127.0.0.1", 9050), f"{ONION_NAME}:8333", 20.0))
        route = self.route(ONION_NAME, "--proxy", "127.0.0.1:1080", "--timeout", "7")
        self.assertEqual((route.via, route.timeout), (("127.0.0.1", 1080), 7.0))
        route = self.route(I2P_NAME, "--i2p-sam", "127.0.0.1:7656")
        self.assertEqual((route.kind, route.via, str(route.target), route.timeout),
                         ("sam", ("127.0.0.1", 7656), f"{I2P_NAME}:0", 30.0))
        route = self.route("192.0.2.1:8333", "--proxy", "127.0.0.1:1080")
        self.assertEqual((route.kind, str(route.target)), ("socks5", "192.0.2.1:8333"))
        self.assertIsNone(self.route("192.0.2.1", "--onion-proxy", "127.0.0.1:9050"))


class ClosedPipeTests(SynchronousTestCase):
    """``bitpeer decode ... | head -1``: the reader goes; the command ends
    quietly (status 1, nothing on stderr)."""

    def setUp(self):
        self.dir = scratch(self)
        self.input = os.path.join(self.dir, "pings.hex")
        with open(self.input, "w") as stream:
            stream.write(MANY_PINGS.hex())

    def test_head(self):
        """The shell pipeline itself."""
        if shutil.which("sh") is None or shutil.which("head") is None:
            raise SkipTest("needs sh and head")
        err = os.path.join(self.dir, "err")
        done = subprocess.run(
            ["sh", "-c", '"$0" -m bitpeer.cli decode - < "$1" 2> "$2" | head -1',
             sys.executable, self.input, err],
            capture_output=True, env=os.environ)
        self.assertEqual((done.returncode, done.stdout), (0, b"Ping(nonce=0)\n"))
        with open(err, "rb") as stream:
            self.assertEqual(stream.read(), b"")

    def test_reader_goes_midway(self):
        """The reader reads a line and goes while the command still writes."""
        with open(self.input, "rb") as stdin:
            process = subprocess.Popen(
                [sys.executable, "-m", "bitpeer.cli", "decode", "-"],
                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
            self.assertEqual(process.stdout.readline(), b"Ping(nonce=0)\n")
            process.stdout.close()
            err = process.stderr.read()
            process.stderr.close()
            self.assertEqual((process.wait(), err), (1, b""))

    def test_reader_gone_before(self):
        """The pipe is closed before the first byte: the final flush fails."""
        read, write = os.pipe()
        os.close(read)
        try:
            frame = encode_frame(MAINNET.magic, VerAck()).hex()
            done = subprocess.run([sys.executable, "-m", "bitpeer.cli", "decode", frame],
                                  stdout=write, stderr=subprocess.PIPE, env=os.environ)
        finally:
            os.close(write)
        self.assertEqual((done.returncode, done.stderr), (1, b""))


class PeerTextPropertyTests(SynchronousTestCase):
    """
    Arbitrary bytes as a node's user agent, from a real handshake to what
    ``handshake`` prints, as text and as JSON: one line, printable, valid
    UTF-8, and unescape gives the bytes back.
    """

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=256))
    def test_user_agent(self, agent):
        info = FakeNode().handshake(user_agent=agent.decode("utf-8", "surrogateescape"))
        lines = cli.info_lines(info)
        self.assertEqual(len(lines), len(info.as_dict()))
        (line,) = [line for line in lines if line.startswith("user_agent ")]
        shown = line[19:]  # the key padded to 18, a space
        for text in lines:
            text.encode("utf-8")
            self.assertTrue(text.isprintable(), text)
        self.assertEqual(unescape(shown), agent)
        record = json.loads(json.dumps(cli.shown(info.as_dict()), indent=2))
        record["user_agent"].encode("utf-8")
        self.assertEqual(unescape(record["user_agent"]), agent)




class CommandTests(TestCase):
    """``bitpeer handshake`` and ``bitpeer getaddr`` against a local node."""

    def setUp(self):
        self.book = ipv4_entries(60) + onion_entries(40)
        self.server_peers = []
        #: The node's own version nonces (read while the connection is up).
        self.server_nonces = []

        def on_peer(peer):
            self.server_peers.append(peer)
            self.server_nonces.append(peer._protocol.nonce)

        factory = NodeFactory(
            reactor,
            options=PeerOptions(user_agent="/cli-test-node:2/", start_height=4242),
            address_source=lambda: self.book,
            on_peer=on_peer,
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.address = f"127.0.0.1:{port.getHost().port}"

    @defer.inlineCallbacks
    def bitpeer(self, *argv):
        out, err, status = yield getProcessOutputAndValue(
            sys.executable, ("-m", "bitpeer.cli") + argv, env=os.environ
        )
        # The node's side of the connection must be gone before the test ends.
        for peer in self.server_peers:
            yield peer.whenClosed()
        return out.decode(), err.decode(), status

    def serve(self, factory):
        """Listen on 127.0.0.1 with ``factory``; its HOST:PORT."""
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"127.0.0.1:{port.getHost().port}"

    def node(self, **options):
        """Another local node, with these PeerOptions."""
        return self.serve(NodeFactory(
            reactor, options=PeerOptions(**options), address_source=lambda: self.book,
            on_peer=self.server_peers.append))

    @defer.inlineCallbacks
    def test_handshake(self):
        out, err, status = yield self.bitpeer("handshake", self.address)
        self.assertEqual((status, err), (0, ""))
        lines = dict(line.split(None, 1) for line in out.splitlines())
        self.assertEqual(lines["user_agent"], "/cli-test-node:2/")
        self.assertEqual(lines["version"], "70016")
        self.assertEqual(lines["start_height"], "4242")
        self.assertEqual(lines["address"], self.address)
        self.assertEqual(lines["inbound"], "False")

    @defer.inlineCallbacks
    def test_handshake_json(self):
        out, err, status = yield self.bitpeer("handshake", self.address, "--json")
        self.assertEqual(status, 0)
        info = json.loads(out)
        self.assertEqual(info["user_agent"], "/cli-test-node:2/")
        self.assertEqual(info["services"], 0)
        self.assertEqual(info["relay"], False)
        self.assertEqual(info["network"], "ipv4")
        self.assertEqual([info["nonce"]], self.server_nonces)

    @defer.inlineCallbacks
    def test_getaddr(self):
        out, err, status = yield self.bitpeer("getaddr", self.address, "--json")
        self.assertEqual(status, 0)
        result = json.loads(out)
        self.assertEqual(result["peer"], self.address)
        self.assertEqual(result["outcome"], "answered")
        self.assertEqual(result["messages"], 1)
        # The command asks for addrv2, so onion entries come too.
        self.assertEqual(len(result["addresses"]), 23)
        known = {str(e.address) for e in self.book}
        self.assertLessEqual({a["address"] for a in result["addresses"]}, known)

    @defer.inlineCallbacks
    def test_getaddr_text(self):
        out, err, status = yield self.bitpeer("getaddr", self.address)
        self.assertEqual(status, 0)
        rows = out.splitlines()
        self.assertEqual(len(rows), 23)
        for row in rows:
            address, network, services, time = row.split("\t")
            self.assertIn(network, ("ipv4", "onion"))
            self.assertEqual(services, "NETWORK|WITNESS|NETWORK_LIMITED")
        self.assertEqual(
            err, f"# 23 addresses from {self.address} (answered, 1 messages)\n"
        )

    @defer.inlineCallbacks
    def test_refused(self):
        probe = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        port = probe.getHost().port
        yield probe.stopListening()
        out, err, status = yield self.bitpeer("handshake", f"127.0.0.1:{port}")
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith(f"bitpeer: 127.0.0.1:{port}: refused: "), err)

    @defer.inlineCallbacks
    def test_awkward_user_agent(self):
        """The node's user agent is shown escaped, as text and as JSON, and
        the output is valid UTF-8."""
        address = self.node(user_agent=AWKWARD.decode("utf-8", "surrogateescape"))
        out, err, status = yield self.bitpeer("handshake", address)
        self.assertEqual((status, err), (0, ""))
        lines = dict(line.split(None, 1) for line in out.splitlines())
        self.assertEqual(len(lines), len(out.splitlines()))
        self.assertEqual(unescape(lines["user_agent"]), AWKWARD)
        out, err, status = yield self.bitpeer("handshake", address, "--json")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(unescape(json.loads(out)["user_agent"]), AWKWARD)

    @defer.inlineCallbacks
    def test_other_network_closes(self):
        """A node of another chain closes on our version's magic: the error
        says so, on one line."""
        regtest = NodeFactory(reactor, REGTEST, on_peer=self.server_peers.append)
        address = self.serve(regtest)
        out, err, status = yield self.bitpeer("handshake", address)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith(f"bitpeer: {address}: closed: "), err)
        self.assertTrue(err.endswith(
            "; the node may be on another network: try --network testnet3, testnet4, "
            "signet or regtest\n"), err)

    @defer.inlineCallbacks
    def test_other_network_answers(self):
        """A node that answers with another chain's magic: named."""
        class Regtest(Protocol):
            def connectionMade(self):
                self.transport.write(encode_frame(REGTEST.magic, node_version()))

        address = self.serve(Factory.forProtocol(Regtest))
        out, err, status = yield self.bitpeer("getaddr", address)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, f"bitpeer: {address}: protocol-error: wrong message start "
                              "fabfb5da, expected f9beb4d9; the node is on regtest: try "
                              "--network regtest\n")

    @defer.inlineCallbacks
    def test_no_magic_at_all(self):
        """A node that answers with bytes that are no network's magic (as
        Core's v2 transport answers a version it cannot read: with its
        key): the general hint."""
        class Garbage(Protocol):
            def connectionMade(self):
                self.transport.write(bytes(range(100)))

        address = self.serve(Factory.forProtocol(Garbage))
        out, err, status = yield self.bitpeer("handshake", address)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, f"bitpeer: {address}: protocol-error: wrong message start "
                              "00010203, expected f9beb4d9; the node may be on another "
                              "network: try --network testnet3, testnet4, signet or "
                              "regtest\n")

    def test_hint_by_port(self):
        """An address with another network's port: that network is the hint."""
        from bitpeer.errors import ConnectionClosed
        hint = cli._hint(ConnectionClosed("closed"), "192.0.2.1:48333", MAINNET)
        self.assertEqual(hint, "the node may be on another network: try --network testnet4")
        self.assertIsNone(cli._hint(ValueError("x"), "192.0.2.1:48333", MAINNET))

    @defer.inlineCallbacks
    def test_closed_stdout(self):
        """handshake into a pipe nobody reads: quiet, status 1."""
        read, write = os.pipe()
        os.close(read)
        ended = defer.Deferred()

        class Child(ProcessProtocol):
            err = b""

            def errReceived(self, data):
                self.err += data

            def processEnded(self, reason):
                ended.callback((self.err, reason.value.exitCode))

        reactor.spawnProcess(Child(), sys.executable,
                             [sys.executable, "-m", "bitpeer.cli", "handshake", self.address],
                             env=os.environ, childFDs={0: "w", 1: write, 2: "r"})
        os.close(write)
        err, status = yield ended
        for peer in self.server_peers:
            yield peer.whenClosed()
        self.assertEqual((status, err), (1, b""))
