"""
Tests for bitpeer.seed.dump and ``bitpeer dump``: sipa's dnsseed.dump
columns, read back the way Bitcoin Core's contrib/seeds/makeseeds.py
reads them (its patterns and field positions, repeated here), onion, I2P
and CJDNS included, and peer text that cannot break a line or a field.
"""

import json
import os
import re

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.seed.dump import HEADER, seeder_lines
from bitpeer.store.bookdb import insert_seeding, open_book, write_batch, write_reliability
from bitpeer.store.bookschema import MIGRATIONS
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.text import escape, unescape
from .test_cli import run_main, scratch
from .test_seed_book import watch_after_tests
from .test_seed_watch import NODE, T0, handshake

# makeseeds.py's address patterns (bitcoin/bitcoin contrib/seeds).
PATTERN_IPV4 = re.compile(
    r"^(([0-2]?\d{1,2})\.([0-2]?\d{1,2})\.([0-2]?\d{1,2})\.([0-2]?\d{1,2})):(\d{1,5})$")
PATTERN_IPV6 = re.compile(r"^\[([\da-f:]+)]:(\d{1,5})$", re.IGNORECASE)
PATTERN_ONION = re.compile(r"^([a-z2-7]{56}\.onion):(\d+)$")
PATTERN_I2P = re.compile(r"^([a-z2-7]{52}\.b32\.i2p):(\d{1,5})$")


def parse_line(line):
    """A dump line as makeseeds.py's parseline reads it (None where it
    would skip the line)."""
    if line.startswith("#"):
        return None
    fields = line.split()
    if len(fields) < 11 or int(fields[1]) == 0:
        return None
    for net, pattern in (("ipv4", PATTERN_IPV4), ("ipv6", PATTERN_IPV6),
                         ("onion", PATTERN_ONION), ("i2p", PATTERN_I2P)):
        match = pattern.match(fields[0])
        if match:
            break
    else:
        return None
    if net == "ipv6" and match.group(1).lower().startswith("fc"):
        net = "cjdns"
    return {"net": net, "uptime": float(fields[7][:-1]), "lastsuccess": int(fields[2]),
            "version": int(fields[10]), "agent": fields[11][1:-1],
            "service": int(fields[9], 16), "blocks": int(fields[8])}


ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
I2P = NetworkAddress(Network.I2P, bytes(range(32)), 0)
CJDNS = NetworkAddress(Network.CJDNS, bytes.fromhex("fc00" + "11" * 14), 8333)
IPV6 = NetworkAddress.parse("[2001:4860::8888]:8333")
AGENT = "/Satoshi:27.0.0/"
#: A user agent no line or field survives unescaped.
HOSTILE = b'/evil agent\n\xff"x"/'.decode("utf-8", "surrogateescape")


def row(address, agent=AGENT, good=True, shares=(1.0, 0.9, 0.75, 0.5, 0.255)):
    return (address, good, T0, *shares, 900_000, 0x409, 70016, escape(agent))


class SeederFormatTests(SynchronousTestCase):
    """The text format, column by column."""

    def test_header(self):
        self.assertEqual(next(seeder_lines([])),
                         "# address                                        good  lastSuccess"
                         "    %(2h)   %(8h)   %(1d)   %(7d)  %(30d)  blocks      svcs  version")
        self.assertEqual(list(seeder_lines([])), [HEADER])

    def test_sipas_columns(self):
        """%-47s  %4d  %11d  %6.2f%% x5  %6i  %08x  %5i "%s"."""
        [_, line] = seeder_lines([row(NODE)])
        self.assertEqual(
            line,
            f"{'8.8.4.4:8333':<47}     1   {T0}  100.00%  90.00%  75.00%  50.00%  25.50%"
            f"  900000  00000409  70016 \"{AGENT}\"")

    def test_makeseeds_reads_every_network(self):
        rows = [row(a) for a in (NODE, IPV6, ONION, I2P, CJDNS)]
        parsed = [parse_line(line) for line in seeder_lines(rows)]
        self.assertIsNone(parsed[0])
        self.assertEqual([p["net"] for p in parsed[1:]],
                         ["ipv4", "ipv6", "onion", "i2p", "cjdns"])
        for p in parsed[1:]:
            self.assertEqual((p["uptime"], p["lastsuccess"], p["version"], p["agent"],
                              p["service"], p["blocks"]),
                             (25.5, T0, 70016, AGENT, 0x409, 900_000))

    def test_bad_nodes_are_skipped_by_makeseeds(self):
        [_, line] = seeder_lines([row(NODE, good=False)])
        self.assertIsNone(parse_line(line))

    def test_hostile_agents_stay_one_field(self):
        """Spaces, quotes, line breaks, raw bytes: one line, twelve
        fields, and the agent's bytes come back with unescape."""
        for raw in (b"/a b c/", b'/"quoted"/', b"/line\nbreak\r/", b"/\xff\xfe\x00/",
                    b"/\xe2\x80\xa8 \xc2\xa0/", b"", b" "):
            agent = raw.decode("utf-8", "surrogateescape")
            [_, line] = seeder_lines([row(NODE, agent=agent)])
            self.assertNotIn("\n", line)
            fields = line.split()
            self.assertEqual(len(fields), 12, line)
            self.assertEqual(unescape(parse_line(line)["agent"]), raw)

    def test_zero_shares_and_unknowns(self):
        [_, line] = seeder_lines([(NODE, False, None, 0.0, 0.0, 0.0, 0.0, 0.0, None, None,
                                   None, None)])
        self.assertEqual(line.split()[1:], ["0", "0", "0.00%", "0.00%", "0.00%", "0.00%",
                                            "0.00%", "0", "00000000", "0", '""'])


def seeded_book(testcase):
    """A book file with watch_after_tests's tests and windows; its path."""
    directory = scratch(testcase)
    path = os.path.join(directory, "seed.sqlite")
    opened = open_book(path)
    try:
        run = insert_seeding(opened.db, "mainnet", "{}", T0)
        write_batch(opened.db, {}, [
            (run, NODE, "reachable", None, None, handshake(NODE, agent=HOSTILE), None, T0),
            (run, ONION, "reachable", None, None, handshake(ONION), None, T0),
        ], T0)
        watch = watch_after_tests()
        watch.tested(ONION, True, handshake(ONION), T0)
        write_reliability(opened.db, watch.take_changed())
    finally:
        opened.db.close()
        opened.lock.release()
    return path


class DumpCommandTests(SynchronousTestCase):
    """``bitpeer dump --db BOOK``."""

    def test_seeder_format(self):
        status, out, err = run_main(self, "dump", "--db", seeded_book(self))
        self.assertEqual((status, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0], HEADER)
        parsed = {p["net"]: p for p in map(parse_line, lines[1:])}
        self.assertEqual(sorted(parsed), ["ipv4", "onion"])
        self.assertEqual(unescape(parsed["ipv4"]["agent"]), b'/evil agent\n\xff"x"/')

    def test_json_and_network(self):
        status, out, err = run_main(self, "dump", "--db", seeded_book(self), "--format", "json",
                                    "--network", "onion")
        self.assertEqual((status, err), (0, ""))
        [node] = json.loads(out)
        self.assertEqual((node["address"], node["network"], node["good"], node["version"]),
                         (str(ONION), "onion", True, 70016))
        self.assertEqual(sorted(node["reliability"]), sorted(["2h", "8h", "1d", "7d", "30d"]))

    def test_missing_book(self):
        path = os.path.join(scratch(self), "missing", "none.sqlite")
        status, out, err = run_main(self, "dump", "--db", path)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, f"bitpeer: address book {path} does not exist\n")

    def test_not_a_book(self):
        directory = scratch(self)
        path = os.path.join(directory, "x")
        with open(path, "w") as f:
            f.write("hello\n")
        status, out, err = run_main(self, "dump", "--db", path)
        self.assertEqual((status, out, err.count("\n")), (1, "", 1))
        self.assertTrue(err.startswith("bitpeer: "))

    def test_book_without_seeder(self):
        """A crawler's book from before migration 5: said, not a traceback."""
        directory = scratch(self)
        path = os.path.join(directory, "old.sqlite")
        opened = open_book(path, migrations=[m for m in MIGRATIONS if m[0] <= 3])
        opened.db.close()
        opened.lock.release()
        status, out, err = run_main(self, "dump", "--db", path)
        self.assertEqual((status, out), (1, ""))
        self.assertIn("holds no seeder records", err)
        self.assertEqual(err.count("\n"), 1)

    def test_db_required(self):
        status, out, err = run_main(self, "dump")
        self.assertEqual(status, 2)
        self.assertIn("--db", err)
