"""
Snapshots of a crawl for people and programs: a JSON file with a summary and
one record per reachable node, and the same nodes as CSV.

Files are written to a temporary name and renamed, so a reader never sees a
half-written snapshot.  In the JSON file the summary is indented and each
node is one line: easy to read and to grep, and written by json's C encoder
(with ``indent`` it falls back to pure Python, three times slower).
"""

import collections
import csv
import datetime
import io
import json
import operator
import os

from .wire.services import describe

CSV_FIELDS = (
    "address", "host", "port", "network", "version", "user_agent", "services",
    "services_text", "start_height", "relay", "latency", "getaddr", "returned",
)

#: A node record's CSV row, picked in C (DictWriter checks every field of
#: every row in Python).
_csv_row = operator.itemgetter(*CSV_FIELDS)


def _counts(values):
    """A dict of value -> count, most common first."""
    return dict(collections.Counter(values).most_common())


def node_record(address, result):
    """One reachable node as a flat, JSON-ready dict."""
    info = result.info
    return {
        "address": str(address),
        "host": address.host_text,
        "port": address.port,
        "network": address.network_name,
        "version": info.version,
        "user_agent": info.user_agent,
        "services": info.services,
        "services_text": describe(info.services),
        "start_height": info.start_height,
        "relay": info.relay,
        "latency": round(info.handshake_latency, 6),
        "getaddr": result.getaddr_outcome,
        "returned": result.returned,
    }


def _not_dialled_record(address, reason):
    """An address kept but not dialled, with why (``no-proxy`` for Tor, I2P
    and CJDNS, ``onlynet`` for a network --onlynet leaves out), JSON-ready."""
    return {"address": str(address), "network": address.network_name, "reason": reason}


class EncodedNodes:
    """
    Reachable nodes encoded for the snapshot ahead of time.

    A crawl ends by waiting out the connect timeouts of its last dials,
    with the reactor all but idle: encoding the nodes found so far then
    takes that work off writing the snapshot after the crawl (about a
    fifth of a second for 10,000 nodes).  write_snapshot(..., encoded=)
    uses what is here and encodes the rest.
    """

    def __init__(self):
        #: Address -> (its NodeResult, JSON line, CSV line).
        self._nodes = {}
        self._csv_buffer = io.StringIO()
        self._csv = csv.writer(self._csv_buffer)

    def __len__(self):
        return len(self._nodes)

    def catch_up(self, reachable, limit):
        """Encode up to ``limit`` nodes of ``reachable`` (address ->
        NodeResult) not encoded yet; how many that was."""
        nodes, done = self._nodes, 0
        if len(nodes) >= len(reachable):
            return 0  # all done, unless reachable is not the dict it was
        for address, result in reachable.items():
            if done == limit:
                break
            if address not in nodes:
                nodes[address] = (result, *self._encode(address, result))
                done += 1
        return done

    def get(self, address, result):
        """The JSON line and CSV line of a node, encoded now if need be."""
        known = self._nodes.get(address)
        if known is not None and known[0] is result:
            return known[1], known[2]
        return self._encode(address, result)

    def _encode(self, address, result):
        record = node_record(address, result)
        buffer = self._csv_buffer
        buffer.seek(0)
        buffer.truncate()
        self._csv.writerow(_csv_row(record))
        return json.dumps(record), buffer.getvalue()


def summarize(result):
    """The summary of a CrawlResult: counts by outcome, reason, version..."""
    nodes = list(result.reachable.values())
    infos = [n.info for n in nodes]
    reasons = _counts(u.reason for u in result.unreachable.values())
    return {
        "network": result.network,
        "started": _utc(result.started),
        "finished": _utc(result.finished),
        "elapsed_seconds": round(result.elapsed, 3),
        "outcomes": {
            "reachable": len(result.reachable),
            "unreachable": len(result.unreachable),
            "not_dialled": len(result.not_dialled),
        },
        "not_dialled_reasons": _counts(result.not_dialled.values()),
        "failure_reasons": reasons,
        "gossip": {"entries_received": result.gossiped, "filtered": result.filtered},
        "getaddr": _counts(n.getaddr_outcome or "not-asked" for n in nodes),
        "protocol_versions": _counts(i.version for i in infos),
        "user_agents": _counts(i.user_agent for i in infos),
        "services": _counts(describe(i.services) for i in infos),
        "heights": _counts(i.start_height for i in infos),
        "network_types": _counts(
            a.network_name for a in list(result.reachable) + list(result.not_dialled)
        ),
        "external_address": result.external.as_dict(),
        "discovered_over_time": [
            {"elapsed": t, "reachable": r, "unreachable": u, "known": k}
            for t, r, u, k in result.timeline
        ],
    }


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def snapshot(result, summary=None):
    """The whole JSON document: summary (``summarize(result)`` unless
    given), reachable nodes, not-dialled addresses."""
    return {
        "summary": summary if summary is not None else summarize(result),
        "nodes": [node_record(a, r) for a, r in sorted(result.reachable.items())],
        "not_dialled": [_not_dialled_record(a, r) for a, r in result.not_dialled.items()],
    }


def write_snapshot(result, directory, summary=None, encoded=None):
    """
    Write ``<network>-<UTC time>.json`` and ``.csv`` into ``directory``
    (created if missing; ``-2``, ``-3``... after the time if a snapshot of
    that second exists); return the two paths.  ``summary`` saves
    summarizing again when the caller already has it; ``encoded`` (an
    EncodedNodes) saves encoding the nodes it holds.
    """
    os.makedirs(directory, exist_ok=True)
    stamp = datetime.datetime.fromtimestamp(result.finished, datetime.timezone.utc)
    base = stem = os.path.join(directory, f"{result.network}-{stamp:%Y%m%dT%H%M%SZ}")
    serial = 1
    while os.path.exists(base + ".json") or os.path.exists(base + ".csv"):
        # Two crawls finishing in the same second (short --interval, tests):
        # keep both.
        serial += 1
        base = f"{stem}-{serial}"
    encoded = encoded if encoded is not None else EncodedNodes()
    nodes = [encoded.get(a, r) for a, r in sorted(result.reachable.items())]
    summary = summary if summary is not None else summarize(result)
    not_dialled = [json.dumps(_not_dialled_record(a, r)) for a, r in result.not_dialled.items()]
    json_path, csv_path = base + ".json", base + ".csv"
    atomic_write(json_path, lambda f: f.write(_json_text(
        summary, [line for line, _ in nodes], not_dialled)))

    def write_csv(stream):
        csv.writer(stream).writerow(CSV_FIELDS)
        stream.write("".join(line for _, line in nodes))

    atomic_write(csv_path, write_csv, newline="")
    return json_path, csv_path


def _json_text(summary, node_lines, not_dialled_lines):
    """The document snapshot() describes, as JSON: the summary indented, one
    node or not-dialled address a line."""
    summary_text = json.dumps(summary, indent=1).replace("\n", "\n ")
    return (f'{{\n "summary": {summary_text},\n "nodes": {_json_list(node_lines)},\n'
            f' "not_dialled": {_json_list(not_dialled_lines)}\n}}\n')


def _json_list(lines):
    """A JSON list of items already encoded, one a line."""
    return "[\n  " + ",\n  ".join(lines) + "\n ]" if lines else "[]"


def atomic_write(path, write, **open_args):
    """
    Write a file through ``write(stream)`` under a temporary name, then
    rename it: a reader never sees half a file.
    """
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8", **open_args) as stream:
        write(stream)
    os.replace(temporary, path)


class SnapshotError(Exception):
    """A snapshot could not be written; the message says where and why."""


def check_output_directory(path):
    """Create the snapshot directory if needed and prove it writable."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".bitpeer-probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise SnapshotError(f"cannot write snapshots to {path}: {error.strerror}") from None
