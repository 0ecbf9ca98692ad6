"""
Tests for the ``bitpeer`` command (bitpeer.cli).  ``decode`` runs in
process; ``handshake`` and ``getaddr`` run the real command in a child
process against a NodeFactory that this process serves on 127.0.0.1.
"""

import io
import json
import os
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer import cli
from bitpeer.factory import NodeFactory
from bitpeer.networks import MAINNET, REGTEST
from bitpeer.protocol import PeerOptions
from bitpeer.wire.framing import encode_frame, encode_raw_frame
from bitpeer.wire.messages import Ping, VerAck

from .helpers import ipv4_entries, onion_entries


class DecodeTests(SynchronousTestCase):
    """``bitpeer decode HEX``."""

    def run_main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        status = cli.main(list(argv))
        return status, out.getvalue(), err.getvalue()

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
        self.assertEqual(status, 2)
        self.assertEqual(out, "")
        self.assertEqual(err, "bitpeer: the argument is not hex\n")

    def test_bad_checksum(self):
        frame = bytearray(encode_frame(MAINNET.magic, Ping(1)))
        frame[-1] ^= 1
        status, out, _ = self.run_main("decode", bytes(frame).hex())
        self.assertEqual(status, 1)
        self.assertTrue(out.startswith("fault: "), out)
        self.assertIn("checksum", out)

    def test_wrong_magic(self):
        frame = encode_frame(REGTEST.magic, VerAck()).hex()
        status, out, _ = self.run_main("decode", frame)
        self.assertEqual(status, 1)
        self.assertIn("wrong message start fabfb5da", out)

    def test_malformed_payload(self):
        frame = encode_raw_frame(MAINNET.magic, "pong", b"\x01").hex()
        status, out, _ = self.run_main("decode", frame)
        self.assertEqual(status, 1)
        self.assertTrue(out.startswith("fault: pong.nonce"), out)

    def test_incomplete(self):
        frame = encode_frame(MAINNET.magic, Ping(1)).hex()[:-4]
        status, out, _ = self.run_main("decode", frame)
        self.assertEqual(status, 0)
        self.assertEqual(out, "incomplete: 30 bytes wait for the rest of a frame\n")

    def test_usage_error(self):
        self.patch(sys, "stderr", io.StringIO())
        with self.assertRaises(SystemExit) as caught:
            cli.main([])
        self.assertEqual(caught.exception.code, 2)


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
