"""
Snapshots (bitpeer.crawl.export) of a hand-built CrawlResult: the summary's
counts, the JSON document, the CSV files, the files' names, the latest
links, atomicity and write failures, and text a peer controls (arbitrary
bytes from a real handshake, through the files and back).
"""

import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

import bitpeer
from bitpeer.crawl import export
from bitpeer.crawl.crawler import CrawlResult, NodeResult, Unreachable
from bitpeer.crawl.export import (
    CSV_FIELDS,
    UNREACHABLE_FIELDS,
    EncodedNodes,
    SnapshotError,
    SnapshotPaths,
    check_output_directory,
    link_latest,
    node_record,
    snapshot,
    summarize,
    unreachable_record,
    write_snapshot,
)
from bitpeer.crawl.external import ExternalAddressVote
from bitpeer.peer import PeerInfo
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.services import describe
from bitpeer.wire.text import unescape

from .helpers import NODE_KEYS, SUMMARY_KEYS, FakeNode

#: 2023-11-14T22:13:20Z.
T0 = 1_700_000_000


#: Where the peers see us (private: the vote is told to allow it).
US = NetworkAddress.parse("10.1.2.3:0", 0)


def info(address, *, version=70016, services=0x0C09, user_agent="/Satoshi:27.0.0/",
         start_height=840_000, relay=True, latency=0.25, view=US):
    """A PeerInfo as a handshake with ``address`` would give it."""
    return PeerInfo(
        address=address, inbound=False, version=version, services=services,
        user_agent=user_agent, start_height=start_height, relay=relay,
        their_view_of_us=view, timestamp=T0, nonce=1, clock_offset=0.5,
        handshake_latency=latency,
    )


A = NetworkAddress.parse("198.51.100.1:8333")
B = NetworkAddress.parse("198.51.100.2:8333")
C = NetworkAddress.parse("[2001:db8::5]:8333")
ONION = NetworkAddress(Network.TORV3, bytes(range(32)), 8333)
I2P = NetworkAddress(Network.I2P, bytes(range(32, 64)), 0)
CJDNS = NetworkAddress(Network.CJDNS, b"\xfc" + bytes(15), 8333)
#: Why each is kept but not dialled by a crawl without overlay options.
NOT_DIALLED = {ONION: "no --onion-proxy", I2P: "no --i2p-sam",
               CJDNS: "cjdns not reachable (--cjdns-reachable)"}


def crawl_result(*, reachable=None, unreachable=None, not_dialled=None, finished=T0 + 7.5,
                 timeline=((5.0, 1, 2, 10), (7.5, 3, 3, 12)), network="mainnet"):
    """A CrawlResult with three nodes, three failures, three exotic addresses."""
    if reachable is None:
        reachable = {
            A: NodeResult(info(A, latency=0.1234567), "answered", 250),
            B: NodeResult(info(B, user_agent="/Satoshi:26.0.0/", start_height=839_990,
                               services=0x409), None, None),
            C: NodeResult(info(C, version=70015, relay=False), "idle", 0),
        }
    if unreachable is None:
        unreachable = {
            NetworkAddress.parse("198.51.100.10:8333"): Unreachable("refused", "refused"),
            NetworkAddress.parse("198.51.100.11:8333"): Unreachable("refused", "refused"),
            NetworkAddress.parse("198.51.100.12:8333"): Unreachable(
                "protocol-error", "wrong message start 0b110907, expected f9beb4d9"),
        }
    if not_dialled is None:
        not_dialled = (ONION, I2P, CJDNS)
    vote = ExternalAddressVote(allow_private=True)
    for address in reachable:
        vote.add(US, address)
    return CrawlResult(
        network=network, started=T0, finished=finished, reachable=reachable,
        unreachable=unreachable,
        not_dialled=(not_dialled if isinstance(not_dialled, dict)
                     else {a: NOT_DIALLED[a] for a in not_dialled}),
        filtered={"stale": 4, "absurd-time": 1, "invalid": 0, "unroutable": 2,
                  "pending-full": 0},
        gossiped=40, external=vote.result(), timeline=tuple(timeline),
    )


class SummarizeTests(SynchronousTestCase):
    """summarize(): the counts a person reads first."""

    def setUp(self):
        self.summary = summarize(crawl_result())

    def test_keys(self):
        self.assertTrue(SUMMARY_KEYS <= set(self.summary), SUMMARY_KEYS - set(self.summary))

    def test_times(self):
        self.assertEqual(self.summary["network"], "mainnet")
        self.assertEqual(self.summary["started"], "2023-11-14T22:13:20+00:00")
        self.assertEqual(self.summary["finished"], "2023-11-14T22:13:27.500000+00:00")
        self.assertEqual(self.summary["elapsed_seconds"], 7.5)

    def test_outcomes(self):
        self.assertEqual(
            self.summary["outcomes"], {"reachable": 3, "unreachable": 3, "not_dialled": 3}
        )

    def test_failure_reasons_most_common_first(self):
        reasons = self.summary["failure_reasons"]
        self.assertEqual(reasons, {"refused": 2, "protocol-error": 1})
        self.assertEqual(list(reasons), ["refused", "protocol-error"])

    def test_node_counts(self):
        s = self.summary
        self.assertEqual(s["protocol_versions"], {70016: 2, 70015: 1})
        self.assertEqual(s["user_agents"], {"/Satoshi:27.0.0/": 2, "/Satoshi:26.0.0/": 1})
        self.assertEqual(
            s["services"],
            {"NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2": 2, "NETWORK|WITNESS|NETWORK_LIMITED": 1},
        )
        self.assertEqual(s["heights"], {840_000: 2, 839_990: 1})
        self.assertEqual(s["getaddr"], {"answered": 1, "not-asked": 1, "idle": 1})

    def test_network_types(self):
        """Reachable nodes and the addresses kept but not dialled, by network."""
        self.assertEqual(
            self.summary["network_types"],
            {"ipv4": 2, "ipv6": 1, "onion": 1, "i2p": 1, "cjdns": 1},
        )

    def test_by_network(self):
        """Outcomes, failure reasons and not-dialled reasons per network;
        every network named, zeros included."""
        by_network = self.summary["by_network"]
        self.assertEqual(list(by_network), ["ipv4", "ipv6", "onion", "i2p", "cjdns"])
        self.assertEqual(by_network["ipv4"], {
            "reachable": 2, "unreachable": 3, "not_dialled": 0,
            "failure_reasons": {"refused": 2, "protocol-error": 1},
            "not_dialled_reasons": {}})
        self.assertEqual(by_network["ipv6"]["reachable"], 1)
        self.assertEqual(by_network["onion"], {
            "reachable": 0, "unreachable": 0, "not_dialled": 1, "failure_reasons": {},
            "not_dialled_reasons": {"no --onion-proxy": 1}})
        self.assertEqual(by_network["cjdns"]["not_dialled_reasons"],
                         {"cjdns not reachable (--cjdns-reachable)": 1})
        for key in ("reachable", "unreachable", "not_dialled"):
            self.assertEqual(sum(n[key] for n in by_network.values()),
                             self.summary["outcomes"][key], key)

    def test_by_network_overlays_reached(self):
        """Onion and I2P nodes reached, failed, or left by a proxy that is
        down, each under its network; failure reasons escaped as elsewhere."""
        result = crawl_result(
            reachable={ONION: NodeResult(info(ONION), "answered", 10)},
            unreachable={I2P: Unreachable("i2p-unreachable", "CANT_REACH_PEER")},
            not_dialled={CJDNS: "onlynet"})
        by_network = summarize(result)["by_network"]
        self.assertEqual((by_network["onion"]["reachable"], by_network["i2p"]["unreachable"]),
                         (1, 1))
        self.assertEqual(by_network["i2p"]["failure_reasons"], {"i2p-unreachable": 1})
        self.assertEqual(by_network["cjdns"]["not_dialled_reasons"], {"onlynet": 1})
        self.assertEqual(by_network["ipv4"]["reachable"], 0)
        record = node_record(ONION, result.reachable[ONION])
        self.assertEqual((record["network"], record["host"], record["port"]),
                         ("onion", ONION.host_text, 8333))
        self.assertEqual(unreachable_record(I2P, result.unreachable[I2P])[3], "i2p")

    def test_gossip(self):
        self.assertEqual(self.summary["gossip"]["entries_received"], 40)
        self.assertEqual(self.summary["gossip"]["filtered"]["stale"], 4)

    def test_external_address(self):
        external = self.summary["external_address"]
        self.assertEqual(external["address"], "10.1.2.3")
        self.assertEqual((external["votes"], external["total"]), (3, 3))

    def test_discovered_over_time(self):
        self.assertEqual(
            self.summary["discovered_over_time"],
            [
                {"elapsed": 5.0, "reachable": 1, "unreachable": 2, "known": 10},
                {"elapsed": 7.5, "reachable": 3, "unreachable": 3, "known": 12},
            ],
        )

    def test_empty_crawl(self):
        """A crawl that reached nothing still has a complete summary."""
        summary = summarize(crawl_result(reachable={}, unreachable={}, not_dialled=(),
                                         timeline=()))
        self.assertTrue(SUMMARY_KEYS <= set(summary))
        self.assertEqual(summary["outcomes"], {"reachable": 0, "unreachable": 0,
                                               "not_dialled": 0})
        self.assertEqual(summary["external_address"]["address"], None)
        self.assertEqual(summary["discovered_over_time"], [])
        json.dumps(summary)


class SnapshotTests(SynchronousTestCase):
    """snapshot() and node_record(): the JSON document."""

    def test_document(self):
        result = crawl_result()
        document = snapshot(result)
        self.assertEqual(set(document), {"summary", "nodes", "not_dialled"})
        self.assertEqual(document["summary"], summarize(result))
        self.assertEqual([n["address"] for n in document["nodes"]],
                         [str(a) for a in sorted(result.reachable)])
        self.assertEqual(
            document["not_dialled"],
            [{"address": str(a), "network": a.network_name, "reason": NOT_DIALLED[a]}
             for a in (ONION, I2P, CJDNS)],
        )
        # JSON-ready: it survives a round trip (int keys become text).
        json.loads(json.dumps(document))

    def test_node_record(self):
        record = node_record(A, crawl_result().reachable[A])
        self.assertTrue(NODE_KEYS <= set(record), NODE_KEYS - set(record))
        self.assertEqual(record, {
            "address": "198.51.100.1:8333",
            "host": "198.51.100.1",
            "port": 8333,
            "network": "ipv4",
            "version": 70016,
            "user_agent": "/Satoshi:27.0.0/",
            "services": 0x0C09,
            "services_text": describe(0x0C09),
            "start_height": 840_000,
            "relay": True,
            "latency": 0.123457,
            "getaddr": "answered",
            "returned": 250,
            "getaddr_error": None,
        })

    def test_not_asked_node(self):
        record = node_record(B, crawl_result().reachable[B])
        self.assertEqual((record["getaddr"], record["returned"]), (None, None))

    def test_csv_fields_are_the_record(self):
        """DictWriter refuses extra keys: the CSV columns are exactly a record's."""
        self.assertEqual(set(CSV_FIELDS), set(node_record(A, crawl_result().reachable[A])))


class WriteSnapshotTests(SynchronousTestCase):
    """write_snapshot(): <network>-<UTC time>.json and .csv in the directory."""

    def setUp(self):
        self.base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.base, True)
        self.out = os.path.join(self.base, "not", "yet")

    def test_names(self):
        json_path, csv_path = write_snapshot(crawl_result(network="testnet4"), self.out)
        self.assertEqual(os.path.dirname(json_path), self.out)
        self.assertEqual(os.path.basename(json_path), "testnet4-20231114T221327Z.json")
        self.assertEqual(os.path.basename(csv_path), "testnet4-20231114T221327Z.csv")
        self.assertEqual(sorted(os.listdir(self.out)), sorted(
            os.path.basename(p) for p in (json_path, csv_path)
        ))  # nothing half-written (.tmp) left behind

    def test_json(self):
        result = crawl_result()
        json_path, _ = write_snapshot(result, self.out)
        with open(json_path, encoding="utf-8") as stream:
            document = json.load(stream)
        self.assertEqual(document, json.loads(json.dumps(snapshot(result))))
        self.assertTrue(SUMMARY_KEYS <= set(document["summary"]))
        for record in document["nodes"]:
            self.assertTrue(NODE_KEYS <= set(record))

    def test_csv(self):
        result = crawl_result()
        _, csv_path = write_snapshot(result, self.out)
        with open(csv_path, newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader)
            rows = list(reader)
        self.assertEqual(tuple(header), CSV_FIELDS)
        self.assertEqual(len(rows), len(result.reachable))
        first = dict(zip(header, rows[0]))
        self.assertEqual(first["address"], "198.51.100.1:8333")
        self.assertEqual(first["services_text"], describe(0x0C09))
        self.assertEqual(first["latency"], "0.123457")

    def test_csv_quotes_awkward_user_agents(self):
        """
        A user agent is the peer's text: commas and quotes are quoted as CSV
        quotes them, and a newline reaches the file escaped (``\\x0a``), so
        every record is one line of the file.
        """
        agent = '/evil,"agent"\nline2:1.0/'
        result = crawl_result(reachable={A: NodeResult(info(A, user_agent=agent), None, None)})
        _, csv_path = write_snapshot(result, self.out)
        with open(csv_path, newline="", encoding="utf-8") as stream:
            text = stream.read()
        self.assertIn('"/evil,""agent""\\x0aline2:1.0/"', text)
        self.assertEqual(len(text.splitlines()), 2)
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        self.assertEqual([row["user_agent"] for row in rows], ['/evil,"agent"\\x0aline2:1.0/'])
        self.assertEqual(unescape(rows[0]["user_agent"]), agent.encode())

    def test_empty_crawl_csv_has_header_only(self):
        _, csv_path = write_snapshot(crawl_result(reachable={}), self.out)
        with open(csv_path, newline="", encoding="utf-8") as stream:
            self.assertEqual(list(csv.reader(stream)), [list(CSV_FIELDS)])

    def test_second_crawl_in_the_same_second_is_kept(self):
        """
        Each crawl has its own snapshot: two crawls finishing within one
        second (``--interval 0.5`` on a small network) must not overwrite
        each other's files.
        """
        first = write_snapshot(crawl_result(finished=T0 + 7.1), self.out)
        second = write_snapshot(crawl_result(finished=T0 + 7.6, reachable={}), self.out)
        self.assertNotEqual(first, second)
        self.assertEqual(len(os.listdir(self.out)), 4)
        for name in os.listdir(self.out):
            self.assertTrue(re.match(r"^mainnet-\d{8}T\d{6}", name), name)


class EncodedNodesTests(SynchronousTestCase):
    """EncodedNodes: nodes encoded ahead give the very same snapshot files."""

    def setUp(self):
        self.base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.base, True)

    def files(self, result, encoded=None):
        """The bytes of the two files write_snapshot makes in a new directory."""
        out = tempfile.mkdtemp(dir=self.base)
        paths = write_snapshot(result, out, encoded=encoded)
        contents = []
        for path in paths:
            with open(path, "rb") as stream:
                contents.append(stream.read())
        return contents

    def test_catch_up(self):
        """Up to ``limit`` nodes not encoded yet, in the dict's order."""
        reachable = crawl_result().reachable
        encoded = EncodedNodes()
        self.assertEqual(encoded.catch_up(reachable, 2), 2)
        self.assertEqual(len(encoded), 2)
        self.assertEqual(encoded.catch_up(reachable, 2), 1)
        self.assertEqual(encoded.catch_up(reachable, 2), 0)
        self.assertEqual(len(encoded), 3)

    def test_same_files(self):
        """All, some or none of the nodes encoded ahead: byte for byte the
        files write_snapshot writes without, awkward user agents too."""
        agent = '/evil,"agent"\nline2:1.0/ \u00e9\u2028'
        result = crawl_result()
        result.reachable[A] = NodeResult(info(A, user_agent=agent), "answered", 1)
        expected = self.files(result)
        for limit in (0, 1, 3):
            encoded = EncodedNodes()
            encoded.catch_up(result.reachable, limit)
            self.assertEqual(self.files(result, encoded), expected)

    def test_changed_result_is_encoded_again(self):
        """A node encoded ahead whose result is no longer the same object is
        written as it is now."""
        result = crawl_result()
        encoded = EncodedNodes()
        encoded.catch_up(result.reachable, 3)
        result.reachable[B] = NodeResult(info(B, user_agent="/Changed:1.0/"), None, None)
        json_bytes, csv_bytes = self.files(result, encoded)
        self.assertIn(b"/Changed:1.0/", json_bytes)
        self.assertIn(b"/Changed:1.0/", csv_bytes)
        self.assertEqual([json_bytes, csv_bytes], self.files(result))


#: A user agent with everything that can break a line, a quote or a decoder:
#: the issue's invalid UTF-8, newlines, Unicode line and paragraph
#: separators, NUL, quotes, a comma, backslashes and a terminal escape.
AWKWARD = (b'/\xff\xfe\xc3(\n\r\xe2\x80\xa8\xe2\x80\xa9\x00"\',;\\x41\\\x1b[31m'
           b'\xc3\xa9\xf0\x9f\x98\x80/')


def read_lines(path):
    """A file's lines; it must be strict UTF-8."""
    with open(path, "rb") as stream:
        return stream.read().decode("utf-8").split("\n")


def no_lone_surrogates(testcase, json_text):
    """
    JSON parsers other than Python's refuse a lone surrogate (``\\udcff``,
    what json.dumps makes of a byte that was not UTF-8); Python's turns it
    into text that is not UTF-8.  Every key and string must be UTF-8.
    """
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    for text in strings(json.loads(json_text)):
        text.encode("utf-8")


class MetadataTests(SynchronousTestCase):
    """What made a snapshot: bitpeer's version, the crawl's parameters, times."""

    PARAMS = {"network": "mainnet", "concurrency": 1000, "argv": ["--simnet", "60"]}

    def test_summary_defaults(self):
        summary = summarize(crawl_result())
        self.assertEqual(summary["bitpeer_version"], bitpeer.__version__)
        self.assertIsNone(summary["params"])
        self.assertEqual(list(summary)[:5],
                         ["network", "bitpeer_version", "params", "started", "finished"])

    def test_params(self):
        summary = summarize(crawl_result(), params=self.PARAMS)
        self.assertEqual(summary["params"], self.PARAMS)
        self.assertEqual(snapshot(crawl_result(), params=self.PARAMS)["summary"], summary)

    def test_written(self):
        """write_snapshot(params=) puts them in the summary, also into one
        the caller already made (which is left as it was)."""
        out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, out, True)
        result = crawl_result()
        given = summarize(result)
        for kwargs in ({}, {"summary": given}):
            paths = write_snapshot(result, out, params=self.PARAMS, **kwargs)
            with open(paths.json, encoding="utf-8") as stream:
                summary = json.load(stream)["summary"]
            self.assertEqual(summary["params"], self.PARAMS)
            self.assertEqual(summary["bitpeer_version"], bitpeer.__version__)
            self.assertEqual(summary["started"], "2023-11-14T22:13:20+00:00")
            self.assertEqual(summary["finished"], "2023-11-14T22:13:27.500000+00:00")
        self.assertIsNone(given["params"])


class ByteIdenticalTests(SynchronousTestCase):
    """Escaping leaves the usual records exactly as they were written before
    it: the same bytes, and no work for plain ASCII."""

    def test_node_lines(self):
        result = crawl_result()
        json_line, csv_line = EncodedNodes().get(A, result.reachable[A])
        self.assertEqual(json_line, (
            '{"address": "198.51.100.1:8333", "host": "198.51.100.1", "port": 8333, '
            '"network": "ipv4", "version": 70016, "user_agent": "/Satoshi:27.0.0/", '
            '"services": 3081, "services_text": "NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2", '
            '"start_height": 840000, "relay": true, "latency": 0.123457, '
            '"getaddr": "answered", "returned": 250, "getaddr_error": null}'))
        self.assertEqual(csv_line, (
            "198.51.100.1:8333,198.51.100.1,8333,ipv4,70016,/Satoshi:27.0.0/,3081,"
            "NETWORK|WITNESS|NETWORK_LIMITED|P2P_V2,840000,True,0.123457,answered,250,\r\n"))

    def test_plain_user_agent_is_the_same_object(self):
        record = node_record(A, crawl_result().reachable[A])
        self.assertIs(record["user_agent"], crawl_result().reachable[A].info.user_agent)

    def test_non_ascii_as_before(self):
        """Printable non-ASCII stays itself: \\u00e9 in JSON as before, UTF-8 in CSV."""
        result = NodeResult(info(A, user_agent="/caf\u00e9:1/"), None, None)
        json_line, csv_line = EncodedNodes().get(A, result)
        self.assertIn('"user_agent": "/caf\\u00e9:1/"', json_line)
        self.assertIn(",/caf\u00e9:1/,", csv_line)


class PeerTextTests(SynchronousTestCase):
    """Text a peer controls, in the summary and both files: escaped, one
    line, valid UTF-8, and back to the raw bytes with unescape."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)

    def awkward_result(self):
        agent = AWKWARD.decode("utf-8", "surrogateescape")
        reachable = {
            A: NodeResult(info(A, user_agent=agent), "protocol-error", 0,
                          getaddr_error="addrv2.entries: " + agent),
            B: NodeResult(info(B), "answered", 3),
        }
        unreachable = {C: Unreachable("protocol-error", "reject: " + agent)}
        return crawl_result(reachable=reachable, unreachable=unreachable)

    def test_json_one_line_per_record(self):
        paths = write_snapshot(self.awkward_result(), self.out)
        lines = read_lines(paths.json)
        text = "\n".join(lines)
        no_lone_surrogates(self, text)
        records = [json.loads(line.strip().rstrip(",")) for line in lines
                   if line.startswith('  {"address": "198.51.100.')]
        self.assertEqual([r["address"] for r in records], [str(A), str(B)])
        self.assertEqual(unescape(records[0]["user_agent"]), AWKWARD)
        self.assertEqual(unescape(records[0]["getaddr_error"]),
                         b"addrv2.entries: " + AWKWARD)
        self.assertEqual(json.loads(text)["nodes"][0], records[0])

    def test_summary_counts_escaped_user_agents(self):
        summary = summarize(self.awkward_result())
        agents = [a for a in summary["user_agents"] if a != "/Satoshi:27.0.0/"]
        self.assertEqual([unescape(a) for a in agents], [AWKWARD])
        no_lone_surrogates(self, json.dumps(summary))

    def test_csv(self):
        """Every record one line of the file; the fields come back raw."""
        paths = write_snapshot(self.awkward_result(), self.out, unreachable=True)
        self.assertEqual(len([x for x in read_lines(paths.csv) if x]), 3)
        with open(paths.csv, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual(unescape(rows[0]["user_agent"]), AWKWARD)
        self.assertEqual(unescape(rows[0]["getaddr_error"]), b"addrv2.entries: " + AWKWARD)
        self.assertEqual(len([x for x in read_lines(paths.unreachable) if x]), 2)
        with open(paths.unreachable, newline="", encoding="utf-8") as stream:
            (row,) = list(csv.DictReader(stream))
        self.assertEqual(unescape(row["detail"]), b"reject: " + AWKWARD)


class UnreachableCsvTests(SynchronousTestCase):
    """``<stem>-unreachable.csv``: the failed addresses, readable without
    decoding the book's BLOB columns."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)

    def rows(self, path):
        with open(path, newline="", encoding="utf-8") as stream:
            return list(csv.reader(stream))

    def test_rows(self):
        paths = write_snapshot(crawl_result(), self.out, unreachable=True)
        self.assertEqual(os.path.basename(paths.unreachable),
                         "mainnet-20231114T221327Z-unreachable.csv")
        self.assertEqual(self.rows(paths.unreachable), [
            list(UNREACHABLE_FIELDS),
            ["198.51.100.10:8333", "198.51.100.10", "8333", "ipv4", "refused", "refused"],
            ["198.51.100.11:8333", "198.51.100.11", "8333", "ipv4", "refused", "refused"],
            ["198.51.100.12:8333", "198.51.100.12", "8333", "ipv4", "protocol-error",
             "wrong message start 0b110907, expected f9beb4d9"],
        ])

    def test_ipv6(self):
        result = crawl_result(unreachable={C: Unreachable("connect-timeout", "5 s")})
        paths = write_snapshot(result, self.out, unreachable=True)
        self.assertEqual(self.rows(paths.unreachable)[1],
                         ["[2001:db8::5]:8333", "2001:db8::5", "8333", "ipv6",
                          "connect-timeout", "5 s"])

    def test_none_unreachable(self):
        paths = write_snapshot(crawl_result(unreachable={}), self.out, unreachable=True)
        self.assertEqual(self.rows(paths.unreachable), [list(UNREACHABLE_FIELDS)])

    def test_not_asked(self):
        """Without ``unreachable`` (the default) only the two files are written."""
        paths = write_snapshot(crawl_result(), self.out)
        self.assertEqual(sorted(os.listdir(self.out)),
                         sorted(os.path.basename(p) for p in paths))
        self.assertFalse(os.path.exists(paths.unreachable))

    def test_paths_unpack_as_two(self):
        json_path, csv_path = paths = write_snapshot(crawl_result(), self.out)
        self.assertIsInstance(paths, SnapshotPaths)
        self.assertEqual((paths.json, paths.csv), (json_path, csv_path))

    def test_serial_counts_the_unreachable_file(self):
        """A lone unreachable CSV of that second still takes its stem."""
        first = write_snapshot(crawl_result(), self.out, unreachable=True)
        os.remove(first.json)
        os.remove(first.csv)
        second = write_snapshot(crawl_result(), self.out, unreachable=True)
        self.assertTrue(second.json.endswith("Z-2.json"), second.json)
        self.assertTrue(second.unreachable.endswith("Z-2-unreachable.csv"))


class LatestTests(SynchronousTestCase):
    """``<network>-latest.json``, ``.csv`` and ``-unreachable.csv``."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)

    def write(self, finished, **kwargs):
        return write_snapshot(crawl_result(finished=finished), self.out,
                              unreachable=True, latest=True, **kwargs)

    def test_links(self):
        paths = self.write(T0 + 7.5)
        for name, target in (("mainnet-latest.json", paths.json),
                             ("mainnet-latest.csv", paths.csv),
                             ("mainnet-latest-unreachable.csv", paths.unreachable)):
            link = os.path.join(self.out, name)
            self.assertTrue(os.path.islink(link))
            # Relative: the directory can be moved or mounted elsewhere.
            self.assertEqual(os.readlink(link), os.path.basename(target))
        self.assertEqual(len(os.listdir(self.out)), 6)

    def test_replaced_by_the_next_snapshot(self):
        self.write(T0 + 7.5)
        newer = self.write(T0 + 3600)
        self.assertEqual(os.readlink(os.path.join(self.out, "mainnet-latest.json")),
                         os.path.basename(newer.json))
        self.assertEqual(sorted(n for n in os.listdir(self.out) if "latest" in n), [
            "mainnet-latest-unreachable.csv", "mainnet-latest.csv", "mainnet-latest.json"])
        self.assertEqual(len(os.listdir(self.out)), 9)  # no .tmp left

    def test_stale_temporary_link(self):
        """A temporary link left by a crash is replaced."""
        os.symlink("nowhere", os.path.join(self.out, "mainnet-latest.json.tmp"))
        paths = self.write(T0)
        self.assertEqual(os.readlink(os.path.join(self.out, "mainnet-latest.json")),
                         os.path.basename(paths.json))
        self.assertNotIn("mainnet-latest.json.tmp", os.listdir(self.out))

    def test_copy_without_symbolic_links(self):
        """Where the file system refuses symbolic links the latest file is a copy."""
        def refuse(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")

        self.patch(os, "symlink", refuse)
        paths = self.write(T0)
        link = os.path.join(self.out, "mainnet-latest.json")
        self.assertFalse(os.path.islink(link))
        with open(link, "rb") as copy, open(paths.json, "rb") as original:
            self.assertEqual(copy.read(), original.read())

    def test_cannot_link(self):
        """A latest name that is a directory: SnapshotError, nothing left over."""
        os.mkdir(os.path.join(self.out, "mainnet-latest.json"))
        paths = write_snapshot(crawl_result(), self.out)
        with self.assertRaises(SnapshotError) as caught:
            link_latest(paths.json, "mainnet")
        message = str(caught.exception)
        self.assertTrue(message.startswith(
            f"cannot write {os.path.join(self.out, 'mainnet-latest.json')}: "), message)
        self.assertNotIn("\n", message)
        self.assertNotIn("mainnet-latest.json.tmp", os.listdir(self.out))

    def test_not_a_snapshot(self):
        with self.assertRaises(ValueError):
            export.latest_name("notes.txt", "mainnet")


def mount_tmpfs(testcase, *options):
    """A fresh tmpfs mounted for the test (unmounted after), or skip where
    mounting is not permitted."""
    directory = tempfile.mkdtemp()
    testcase.addCleanup(os.rmdir, directory)
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        raise SkipTest("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", directory],
                          capture_output=True)
    if done.returncode:
        raise SkipTest(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    testcase.addCleanup(subprocess.run, ["umount", directory], check=True)
    return directory


class FailedWriteTests(SynchronousTestCase):
    """A write that fails leaves no ``.tmp`` and says why in one line."""

    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.out, True)

    def test_failing_write(self):
        """A write that fails with an OSError (here a full disk, injected) is
        one SnapshotError line naming the file, with the OSError as its
        cause."""
        def full(path, write, **open_args):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(export, "atomic_write", full)
        with self.assertRaises(SnapshotError) as caught:
            write_snapshot(crawl_result(), self.out)
        self.assertRegex(str(caught.exception),
                         r"^cannot write .*\.json: No space left on device$")
        self.assertIsInstance(caught.exception.__cause__, OSError)

    def test_directory_is_a_file(self):
        path = os.path.join(self.out, "file")
        with open(path, "w"):
            pass
        with self.assertRaises(SnapshotError) as caught:
            write_snapshot(crawl_result(), path)
        self.assertTrue(str(caught.exception).startswith(f"cannot create {path}: "))

    def test_disk_full(self):
        """A real full disk: a 64 KiB tmpfs and a snapshot bigger than that.
        The snapshots already there, and their latest links, are intact."""
        out = mount_tmpfs(self, "size=64k")
        small = write_snapshot(crawl_result(), out, unreachable=True, latest=True)
        before = sorted(os.listdir(out))
        reachable = {
            NetworkAddress.parse(f"10.0.{n // 256}.{n % 256}:8333"):
                NodeResult(info(A), "answered", 1000)
            for n in range(2000)
        }
        with self.assertRaises(SnapshotError) as caught:
            write_snapshot(crawl_result(reachable=reachable, finished=T0 + 60), out,
                           unreachable=True, latest=True)
        message = str(caught.exception)
        self.assertRegex(message, r"^cannot write .*\.json: No space left on device$")
        self.assertEqual(sorted(os.listdir(out)), before)
        self.assertEqual(os.readlink(os.path.join(out, "mainnet-latest.json")),
                         os.path.basename(small.json))


class CheckOutputDirectoryTests(SynchronousTestCase):
    """check_output_directory(): can --out hold snapshots?  Asked before a
    crawl, so that an hour's work is not lost at the end."""

    def setUp(self):
        self.base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.base, True)

    def assertRefused(self, path, reason):
        with self.assertRaises(SnapshotError) as caught:
            check_output_directory(path)
        self.assertEqual(str(caught.exception), f"cannot write snapshots to {path}: {reason}")

    def test_existing(self):
        check_output_directory(self.base)
        self.assertEqual(os.listdir(self.base), [])  # the probe is gone

    def test_created(self):
        path = os.path.join(self.base, "a", "b")
        check_output_directory(path)
        self.assertTrue(os.path.isdir(path))
        self.assertEqual(os.listdir(path), [])

    def test_a_file(self):
        path = os.path.join(self.base, "file")
        with open(path, "w"):
            pass
        self.assertRefused(path, "not a directory")

    def test_under_a_file(self):
        path = os.path.join(self.base, "file")
        with open(path, "w"):
            pass
        with self.assertRaises(SnapshotError) as caught:
            check_output_directory(os.path.join(path, "out"))
        self.assertIn("Not a directory", str(caught.exception))

    def test_read_only_file_system(self):
        path = mount_tmpfs(self, "ro", "size=64k")
        self.assertRefused(path, "read-only file system")
        # Also below it: nothing can be created there.
        with self.assertRaises(SnapshotError) as caught:
            check_output_directory(os.path.join(path, "new"))
        self.assertIn("Read-only file system", str(caught.exception))

    def test_not_permitted(self):
        """A file cannot be created there: the error, and the directories
        it had created are removed again."""
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        self.patch(tempfile, "mkstemp", refuse)
        path = os.path.join(self.base, "a", "b")
        self.assertRefused(path, "Permission denied")
        self.assertEqual(os.listdir(self.base), [])

    def test_not_permitted_for_real(self):
        if os.geteuid() == 0:
            raise SkipTest("root may write anywhere; test_not_permitted covers this")
        path = os.path.join(self.base, "locked")
        os.mkdir(path, 0o500)
        self.addCleanup(os.chmod, path, 0o700)
        self.assertRefused(path, "Permission denied")


class PeerTextPropertyTests(SynchronousTestCase):
    """
    Arbitrary bytes in every field a peer controls, end to end through a
    real handshake: the version's user agent as the peer sends it, the
    PeerInfo the protocol makes of it, the node record, the JSON and CSV
    lines written, parsed back and unescaped: the same bytes, and files
    that are valid UTF-8 with one line per record.
    """

    def setUp(self):
        self.base = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.base, True)

    @settings(max_examples=60, deadline=None)
    @given(agent=st.binary(max_size=256), detail=st.binary(max_size=300))
    def test_round_trip(self, agent, detail):
        peer_info = FakeNode().handshake(
            user_agent=agent.decode("utf-8", "surrogateescape"))
        address = peer_info.address
        text = detail.decode("utf-8", "surrogateescape")
        result = crawl_result(
            reachable={address: NodeResult(peer_info, "closed", 0, getaddr_error=text)},
            unreachable={B: Unreachable("protocol-error", text)},
        )
        paths = write_snapshot(result, tempfile.mkdtemp(dir=self.base), unreachable=True)

        lines = read_lines(paths.json)  # strict UTF-8
        no_lone_surrogates(self, "\n".join(lines))
        (node_line,) = [line for line in lines
                        if line.startswith(f'  {{"address": "{address}"')]
        record = json.loads(node_line)
        self.assertEqual(unescape(record["user_agent"]), agent)
        self.assertEqual(unescape(record["getaddr_error"]), detail)
        summary = json.loads("\n".join(lines))["summary"]
        self.assertEqual([unescape(a) for a in summary["user_agents"]], [agent])

        csv_lines = [line for line in read_lines(paths.csv) if line]
        self.assertEqual(len(csv_lines), 2)
        (row,) = csv.DictReader(io.StringIO("\n".join(csv_lines)))
        self.assertEqual(unescape(row["user_agent"]), agent)
        self.assertEqual(unescape(row["getaddr_error"]), detail)

        unreachable_lines = [line for line in read_lines(paths.unreachable) if line]
        self.assertEqual(len(unreachable_lines), 2)
        (row,) = csv.DictReader(io.StringIO("\n".join(unreachable_lines)))
        self.assertEqual(unescape(row["detail"]), detail)
