"""
Snapshots (bitpeer.export) of a hand-built CrawlResult: the summary's
counts, the JSON document, the CSV, and the files' names and atomicity.
"""

import csv
import json
import os
import re
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from bitpeer.crawler import CrawlResult, NodeResult, Unreachable
from bitpeer.export import (
    CSV_FIELDS,
    EncodedNodes,
    node_record,
    snapshot,
    summarize,
    write_snapshot,
)
from bitpeer.external import ExternalAddressVote
from bitpeer.peer import PeerInfo
from bitpeer.wire.address import Network, NetworkAddress
from bitpeer.wire.services import describe

from .helpers import NODE_KEYS, SUMMARY_KEYS

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
                     else dict.fromkeys(not_dialled, "no-proxy")),
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
            [{"address": str(a), "network": a.network_name, "reason": "no-proxy"}
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
        """A user agent is the peer's text: commas, quotes and newlines survive."""
        agent = '/evil,"agent"\nline2:1.0/'
        result = crawl_result(reachable={A: NodeResult(info(A, user_agent=agent), None, None)})
        _, csv_path = write_snapshot(result, self.out)
        with open(csv_path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        self.assertEqual([row["user_agent"] for row in rows], [agent])

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
