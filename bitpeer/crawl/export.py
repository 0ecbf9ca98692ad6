"""
Snapshots of a crawl for people and programs: a JSON file with a summary and
one record per reachable node, the same nodes as CSV, and the unreachable
addresses with their reason as a second CSV.

Files are written to a temporary name and renamed, so a reader never sees a
half-written snapshot; a write that fails (a full disk) removes its
temporary file and raises SnapshotError, one line saying which file and why.
In the JSON file the summary is indented and each node is one line: easy to
read and to grep, and written by json's C encoder (with ``indent`` it falls
back to pure Python, three times slower).

Every string a peer controls (its user agent, the detail of a failure) is
written in the escaped form of bitpeer.wire.text: valid UTF-8 on one line
whatever the peer sent, and ``unescape`` gives the raw bytes back.  For the
usual printable ASCII the form is the text itself, so ordinary snapshots do
not change and cost nothing more.
"""

import collections
import csv
import datetime
import io
import json
import operator
import os
import shutil
import tempfile
import typing

from .. import __version__
from ..files import atomic_write, remove_quietly
from ..networks import ONLYNET_CHOICES
from ..wire.services import describe
from ..wire.text import escape

CSV_FIELDS = (
    "address", "host", "port", "network", "version", "user_agent", "services",
    "services_text", "start_height", "relay", "latency", "getaddr", "returned",
    "getaddr_error",
)

#: Columns of ``<stem>-unreachable.csv``: one row per address that failed.
UNREACHABLE_FIELDS = ("address", "host", "port", "network", "reason", "detail")


class SnapshotError(Exception):
    """
    A snapshot, or the directory for snapshots, could not be written.  The
    message is one line naming the path and the cause (``cannot write
    snapshots/x.json: No space left on device``), fit for a log; the
    OSError behind it is the ``__cause__``.
    """


class SnapshotPaths(typing.NamedTuple):
    """
    Where write_snapshot wrote a crawl's files.  It unpacks as
    ``json_path, csv_path``; the unreachable addresses' CSV sits beside them
    under a name derived from the same stem.
    """

    json: str
    csv: str

    @property
    def unreachable(self):
        """``<stem>-unreachable.csv`` (written when write_snapshot is asked
        for it)."""
        return unreachable_path(self.json)


def unreachable_path(json_path):
    """The unreachable addresses' CSV of the snapshot at ``json_path``."""
    return json_path[: -len(".json")] + "-unreachable.csv"

#: A node record's CSV row, picked in C (DictWriter checks every field of
#: every row in Python).
_csv_row = operator.itemgetter(*CSV_FIELDS)


def _counts(values):
    """A dict of value -> count, most common first."""
    return dict(collections.Counter(values).most_common())


def node_record(address, result):
    """
    One reachable node as a flat, JSON-ready dict.  The user agent and the
    getaddr error are in their escaped form (bitpeer.wire.text.escape).
    """
    info = result.info
    return {
        "address": str(address),
        "host": address.host_text,
        "port": address.port,
        "network": address.network_name,
        "version": info.version,
        "user_agent": escape(info.user_agent),
        "services": info.services,
        "services_text": describe(info.services),
        "start_height": info.start_height,
        "relay": info.relay,
        "latency": round(info.handshake_latency, 6),
        "getaddr": result.getaddr_outcome,
        "returned": result.returned,
        "getaddr_error": escape(result.getaddr_error),
    }


def unreachable_record(address, unreachable):
    """One unreachable address as a row of UNREACHABLE_FIELDS; its detail
    (which may quote the peer) escaped."""
    return (str(address), address.host_text, address.port, address.network_name,
            escape(unreachable.reason), escape(unreachable.detail))


def _not_dialled_record(address, reason):
    """An address kept but not dialled, with why (``no --onion-proxy``,
    ``onlynet``... bitpeer.crawl.crawler lists them), JSON-ready."""
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


def summarize(result, params=None):
    """
    The summary of a CrawlResult: what made it (bitpeer's version, the
    crawl's ``params``, a JSON-ready dict or None), when, and counts by
    outcome, reason, version...  User agents are counted in their escaped
    form.
    """
    nodes = list(result.reachable.values())
    infos = [n.info for n in nodes]
    reasons = _counts(escape(u.reason) for u in result.unreachable.values())
    return {
        "network": result.network,
        "bitpeer_version": __version__,
        "params": params,
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
        "user_agents": _counts(escape(i.user_agent) for i in infos),
        "services": _counts(describe(i.services) for i in infos),
        "heights": _counts(i.start_height for i in infos),
        "network_types": _counts(
            a.network_name for a in list(result.reachable) + list(result.not_dialled)
        ),
        "by_network": by_network(result),
        "external_address": result.external.as_dict(),
        "discovered_over_time": [
            {"elapsed": t, "reachable": r, "unreachable": u, "known": k}
            for t, r, u, k in result.timeline
        ],
        "discovery": discovery(result),
        "timeouts": result.timeouts,
    }


#: The shares (%) of the final reachable count discovery() times.
DISCOVERY_MARKS = {"to_90": 90, "to_99": 99, "to_100": 100}


def discovery(result):
    """
    How fast the census filled: seconds from the crawl's start until it
    had 90%, 99% and 100% of the reachable nodes it ended with (None when
    it found none).  What comes after ``to_100`` is the tail: dials of
    addresses that lead nowhere, timing out.  Verdicts carried over from
    an interrupted run count as found at 0.
    """
    total = len(result.reachable)
    carried = total - len(result.reached_at)
    marks = {"reachable": total}
    for key, percent in DISCOVERY_MARKS.items():
        rank = -(-percent * total // 100)
        marks[key] = (None if not total else 0.0 if rank <= carried
                      else round(result.reached_at[rank - carried - 1], 3))
    return marks


def by_network(result):
    """
    The outcomes of a CrawlResult per network: for each of ipv4, ipv6,
    onion, i2p and cjdns (always, zeros included, so a reader need not
    guess) and any other network met, its reachable, unreachable and
    not-dialled counts, its failure reasons and not-dialled reasons.
    """
    def counts():
        return {"reachable": 0, "unreachable": 0, "not_dialled": 0,
                "failure_reasons": collections.Counter(),
                "not_dialled_reasons": collections.Counter()}

    networks = {name: counts() for name in ONLYNET_CHOICES}

    def of(address):
        name = address.network_name
        if name not in networks:
            networks[name] = counts()
        return networks[name]

    for address in result.reachable:
        of(address)["reachable"] += 1
    for address, unreachable in result.unreachable.items():
        counts = of(address)
        counts["unreachable"] += 1
        counts["failure_reasons"][escape(unreachable.reason)] += 1
    for address, reason in result.not_dialled.items():
        counts = of(address)
        counts["not_dialled"] += 1
        counts["not_dialled_reasons"][reason] += 1
    for counts in networks.values():
        for key in ("failure_reasons", "not_dialled_reasons"):
            counts[key] = dict(counts[key].most_common())
    return networks


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def snapshot(result, summary=None, params=None):
    """The whole JSON document: summary (``summarize(result, params)``
    unless given), reachable nodes, not-dialled addresses."""
    return {
        "summary": _summary(result, summary, params),
        "nodes": [node_record(a, r) for a, r in sorted(result.reachable.items())],
        "not_dialled": [_not_dialled_record(a, r) for a, r in result.not_dialled.items()],
    }


def _summary(result, summary, params):
    """The summary to write: the one given (its ``params`` replaced when
    ``params`` is given too), else a new one."""
    if summary is None:
        return summarize(result, params)
    if params is not None:
        return {**summary, "params": params}
    return summary


def write_snapshot(result, directory, summary=None, encoded=None, *, params=None,
                   unreachable=False, latest=False):
    """
    Write ``<network>-<UTC time>.json`` and ``.csv`` into ``directory``
    (created if missing; ``-2``, ``-3``... after the time if a snapshot of
    that second exists); return their SnapshotPaths.

    ``summary`` saves summarizing again when the caller already has it;
    ``params`` (the crawl's parameters, JSON-ready) go into the summary;
    ``encoded`` (an EncodedNodes) saves encoding the nodes it holds.
    ``unreachable`` also writes ``<stem>-unreachable.csv``, one row per
    failed address with its reason and detail; ``latest`` then points
    ``<network>-latest.json``, ``-latest.csv`` and (with ``unreachable``)
    ``-latest-unreachable.csv`` at the new files (see link_latest).

    Raises SnapshotError if a file cannot be written; a file left
    unfinished is removed.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise _error("create", directory, error) from error
    stamp = datetime.datetime.fromtimestamp(result.finished, datetime.timezone.utc)
    base = stem = os.path.join(directory, f"{result.network}-{stamp:%Y%m%dT%H%M%SZ}")
    serial = 1
    while any(os.path.lexists(p) for p in (base + ".json", base + ".csv",
                                             unreachable_path(base + ".json"))):
        # Two crawls finishing in the same second (short --interval, tests):
        # keep both.
        serial += 1
        base = f"{stem}-{serial}"
    encoded = encoded if encoded is not None else EncodedNodes()
    nodes = [encoded.get(a, r) for a, r in sorted(result.reachable.items())]
    summary = _summary(result, summary, params)
    not_dialled = [json.dumps(_not_dialled_record(a, r)) for a, r in result.not_dialled.items()]
    paths = SnapshotPaths(base + ".json", base + ".csv")
    _write(paths.json, lambda f: f.write(_json_text(
        summary, [line for line, _ in nodes], not_dialled)))

    def write_csv(stream):
        csv.writer(stream).writerow(CSV_FIELDS)
        stream.write("".join(line for _, line in nodes))

    _write(paths.csv, write_csv, newline="")
    written = [paths.json, paths.csv]
    if unreachable:
        rows = [unreachable_record(a, u) for a, u in sorted(result.unreachable.items())]

        def write_unreachable(stream):
            writer = csv.writer(stream)
            writer.writerow(UNREACHABLE_FIELDS)
            writer.writerows(rows)

        _write(paths.unreachable, write_unreachable, newline="")
        written.append(paths.unreachable)
    if latest:
        for path in written:
            link_latest(path, result.network)
    return paths


def _json_text(summary, node_lines, not_dialled_lines):
    """The document snapshot() describes, as JSON: the summary indented, one
    node or not-dialled address a line."""
    summary_text = json.dumps(summary, indent=1).replace("\n", "\n ")
    return (f'{{\n "summary": {summary_text},\n "nodes": {_json_list(node_lines)},\n'
            f' "not_dialled": {_json_list(not_dialled_lines)}\n}}\n')


def _json_list(lines):
    """A JSON list of items already encoded, one a line."""
    return "[\n  " + ",\n  ".join(lines) + "\n ]" if lines else "[]"


def latest_name(path, network):
    """
    The name of the ``latest`` link for the snapshot file at ``path``:
    ``<network>-latest`` followed by what ends the file's name after its
    stem (``.json``, ``.csv``, ``-unreachable.csv``).
    """
    name = os.path.basename(path)
    for ending in ("-unreachable.csv", ".json", ".csv"):
        if name.endswith(ending):
            return f"{network}-latest{ending}"
    raise ValueError(f"not a snapshot file: {path}")


def link_latest(path, network):
    """
    Point ``<network>-latest...`` (beside ``path``) at ``path``: a relative
    symbolic link, made under a temporary name and renamed over the old
    one, so the link always exists and always points at a whole file.
    Where the file system has no symbolic links (FAT, some network file
    systems), the latest file is a copy, also renamed into place.  Returns
    the link's path; raises SnapshotError if neither can be made.
    """
    link = os.path.join(os.path.dirname(path), latest_name(path, network))
    temporary = link + ".tmp"
    try:
        remove_quietly(temporary)
        try:
            os.symlink(os.path.basename(path), temporary)
        except OSError:
            shutil.copyfile(path, temporary)
        os.replace(temporary, link)
    except OSError as error:
        remove_quietly(temporary)
        raise _error("write", link, error) from error
    return link


def _write(path, write, **open_args):
    """atomic_write, with an OSError (a full disk, a read-only file system)
    raised as a SnapshotError that names the path."""
    try:
        atomic_write(path, write, **open_args)
    except OSError as error:
        raise _error("write", path, error) from error


def check_output_directory(path):
    """
    Make sure snapshots can be written to ``path`` before a crawl begins,
    rather than learning it after: create the directory if it is missing,
    then check that it is a directory, not on a read-only file system, and
    that a file can be created there (the probe is removed).  Raises
    SnapshotError, one line, if not; directories it created are then
    removed again.
    """
    created = []
    parent = os.path.abspath(path)
    while not os.path.lexists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    try:
        if not created and not os.path.isdir(path):
            raise SnapshotError(f"cannot write snapshots to {path}: not a directory")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise _error("create", path, error) from error
        if hasattr(os, "statvfs") and os.statvfs(path).f_flag & os.ST_RDONLY:
            raise SnapshotError(f"cannot write snapshots to {path}: read-only file system")
        try:
            descriptor, probe = tempfile.mkstemp(prefix=".bitpeer-check-", dir=path)
        except OSError as error:
            raise SnapshotError(
                f"cannot write snapshots to {path}: {_cause(error)}") from error
        os.close(descriptor)
        os.remove(probe)
    except BaseException:
        for directory in created:  # deepest first
            try:
                os.rmdir(directory)
            except OSError:
                pass
        raise


def _error(verb, path, error):
    """A SnapshotError saying, on one line, that ``path`` could not be
    written (or created) because of ``error``."""
    return SnapshotError(f"cannot {verb} {path}: {_cause(error)}")


def _cause(error):
    """An OSError's cause as words: its strerror, else its message."""
    return " ".join((error.strerror or str(error) or type(error).__name__).split())
