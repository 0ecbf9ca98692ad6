"""
The address book's side of its worker thread: everything done on the
sqlite3 connection, as plain functions of it.

bitpeer.store.addrbook's AddressBook buffers on the reactor thread and calls these
on its single worker thread, in order: ``open_book`` (checks, lock,
migration), ``write_batch`` (one transaction per flush, bad rows isolated),
and the reads.  Nothing here touches the reactor or logs: results and
rejected rows go back to the AddressBook, which reports them.
"""

import json
import os
import sqlite3
from urllib.parse import quote

import attr

from .bookcheck import (
    AddressBookError,
    BookLock,
    CorruptBook,
    NewerSchema,
    NotAnAddressBook,
    check_location,
    fault_code,
    has_sqlite_header,
    open_error,
)
from .bookschema import (
    ABANDONED,
    ADDRESSES_FROM_OBSERVATIONS,
    FINISHED,
    GOSSIP_ROW,
    GOSSIP_UPSERT,
    KNOWN_SELECT,
    MIGRATIONS,
    OBSERVATION_COLUMNS,
    OBSERVATION_INSERT,
    OBSERVATION_ROW,
    RELIABILITY_WINDOWS,
    RUNNING,
    SEEDED,
    SEEDING,
    WINDOW_COLUMNS,
    agent_columns,
    agent_from_db,
    from_db,
    insert_rows,
    row_text,
    to_db,
)
from .gossip import (
    FIRST_SEEN, FIRST_SOURCE, GOSSIP_SERVICES, GOSSIP_TIME, LAST_SEEN, LAST_SOURCE,
)
from ..wire.address import NetworkAddress
from ..wire.text import escape, unescape_text

#: Milliseconds SQLite waits for another process (an export, a person with
#: the sqlite3 shell) holding the write lock before a flush fails and retries.
BUSY_TIMEOUT_MS = 5000
#: Books up to this size get a full ``PRAGMA quick_check`` at open (about
#: 0.3 s per 170 MB with the file in the page cache, so 2 s at the bound);
#: a larger one has only the tables a crawl starts from checked (crawls
#: and addresses: the observations are most of a big book), and the caller
#: is told so it can say how to check the rest.
QUICK_CHECK_MAX_BYTES = 1 << 30
#: quick_check lines quoted in a CorruptBook message.
QUICK_CHECK_LINES = 5
#: The book that lives in memory only.
MEMORY = ":memory:"

#: The fields of a buffered attempt, named (for the rejected table).
ATTEMPT_FIELDS = ("crawl_id", "address", "outcome", "reason", "detail", "info",
                  "returned", "at")


# -- records --------------------------------------------------------------------

@attr.frozen
class KnownAddress:
    """
    One row of the address book, as the crawler plans with it.

    @ivar services: the services the node announced in its own handshake when
        we have completed one, else the newest services gossip claimed.
    @ivar gossip_time: the newest ``time`` any addr entry gave the address
        (None when it was only ever dialled, never gossiped).
    @ivar failure_streak: how many of its latest attempts failed in a row
        (0 when the latest succeeded, or it was never dialled).
    """

    address: NetworkAddress
    services: int | None
    gossip_time: int | None
    first_seen: float
    last_seen: float
    attempts: int
    successes: int
    failures: int
    last_attempt: float | None
    last_success: float | None
    last_failure_reason: str | None
    failure_streak: int = 0


@attr.frozen
class UnfinishedCrawl:
    """
    A crawl that was started and neither finished nor abandoned: the one a
    restart resumes (AddressBook.unfinished_crawl).

    @ivar params: what start_crawl recorded (JSON-decoded).
    """

    id: int
    network: str
    started: float
    params: object


@attr.frozen
class Verdict:
    """
    The latest attempt on one address in one crawl, enough to rebuild the
    crawl's result for its snapshot.  ``reason``, ``detail`` and
    ``user_agent`` are the text the crawl had (surrogate escapes and all),
    rebuilt from the book's escaped columns and raw bytes; for a reachable
    node ``reason`` is the getaddr outcome and ``detail`` its error.
    """

    address: NetworkAddress
    at: float
    outcome: str
    reason: str | None
    detail: str | None
    version: int | None
    user_agent: str | None
    services: int | None
    start_height: int | None
    relay: bool | None
    latency: float | None
    returned: int | None


@attr.frozen
class SeedRecord:
    """
    One address as the DNS seeder plans with it: what its last handshake
    told (services, else gossip's; version; height) and the seeder's
    record of its tests (``tries`` 0 and no ``windows`` before any; else
    (reliability, count, weight) per window of RELIABILITY_WINDOWS).
    """

    address: NetworkAddress
    services: int | None
    version: int | None
    height: int | None
    tries: int = 0
    successes: int = 0
    last_try: float | None = None
    last_success: float | None = None
    good: bool = False
    windows: tuple = ()


# -- open ---------------------------------------------------------------------------


@attr.define
class Opened:
    """What open_book gives back: the connection, the lock (None in memory)
    and whether the integrity check covered only part of a big book."""

    db: object
    lock: object
    partial_check: bool = False


def open_book(path, *, migrations=None, quick_check_max=None):
    """
    Open (creating or migrating) the book at ``path``: check its place
    (bookcheck.check_location), take its lock, make sure it is a book,
    sound (quick_check) and writable (the migration transaction always
    writes), in WAL mode.  Raises an AddressBookError naming the path;
    leaves a file that is not a book untouched.  ``migrations`` and
    ``quick_check_max`` default to the module's (tests patch them there).
    """
    memory = path == MEMORY
    lock = None
    if not memory:
        check_location(path)
        if not has_sqlite_header(path):
            raise NotAnAddressBook(
                f"{path} is not a SQLite database; it was left untouched. "
                "Move it away or choose another database path."
            )
        lock = BookLock(path)
        lock.acquire()
    db = None
    try:
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
            tables = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as e:
            raise open_error(path, e) from e
        migrations = MIGRATIONS if migrations is None else migrations
        known = migrations[-1][0]
        if version > known:
            raise NewerSchema(
                f"{path} has address-book schema version {version}, but this bitpeer "
                f"knows only up to {known}; upgrade bitpeer or use another database path."
            )
        if version == 0 and tables:
            raise NotAnAddressBook(
                f"{path} is a SQLite database of something else (tables "
                f"{', '.join(sorted(t[0] for t in tables))}); it was left untouched. "
                "Choose another database path."
            )
        partial = False
        if not memory and tables:
            partial = _quick_check(db, path, QUICK_CHECK_MAX_BYTES
                                   if quick_check_max is None else quick_check_max)
        try:
            mode = db.execute(f"PRAGMA journal_mode={'MEMORY' if memory else 'WAL'}"
                              ).fetchone()[0]
            if not memory and mode.lower() != "wal":
                raise AddressBookError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _migrate(db, path, migrations)
        except sqlite3.Error as e:
            if fault_code(e) is None:
                raise  # a migration's bug, not the file's fault
            raise open_error(path, e) from e
    except BaseException:
        if db is not None:
            db.close()
        if lock is not None:
            lock.release()
        raise
    return Opened(db, lock, partial)


def _quick_check(db, path, max_bytes):
    """Raise CorruptBook unless quick_check passes; True when only part of
    a book over ``max_bytes`` was checked."""
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    if size <= max_bytes:
        checks, partial = ["PRAGMA quick_check"], False
    else:
        checks, partial = ["PRAGMA quick_check(crawls)", "PRAGMA quick_check(addresses)"], True
    for sql in checks:
        try:
            lines = [r[0] for r in db.execute(sql).fetchmany(QUICK_CHECK_LINES)]
        except sqlite3.DatabaseError as e:
            lines = [str(e)]
        if lines != ["ok"]:
            raise CorruptBook(
                f"address book {path} is corrupted (quick_check: {escape('; '.join(lines))}); "
                "move it away (sqlite3 PATH .recover may save its rows) or choose "
                "another database path"
            )
    return partial


def _migrate(db, path, migrations):
    """
    Apply the migrations above user_version, all in one transaction that
    always writes (user_version is set even when it does not change): the
    open proves the book can be written and synced before a crawl dials.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        known = migrations[-1][0]
        if version > known:
            raise NewerSchema(
                f"{path} has address-book schema version {version}, but this "
                f"bitpeer knows only up to {known}; upgrade bitpeer."
            )
        for target, steps in migrations:
            if target <= version:
                continue
            for step in steps:
                if callable(step):
                    step(db)
                else:
                    db.execute(step)
            version = target
        db.execute(f"PRAGMA user_version = {int(version)}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def open_read_only(path):
    """
    A read-only connection to the book at ``path``, beside whatever process
    writes it (WAL lets a reader in): no lock, no migration, no write.
    Raises an AddressBookError naming the path when it is missing, not a
    book or of a newer schema.  Returns (connection, schema version).
    """
    if not os.path.isfile(path):
        raise AddressBookError(f"address book {path} does not exist")
    if not has_sqlite_header(path) or os.path.getsize(path) == 0:
        raise NotAnAddressBook(f"{path} is not a SQLite database")
    db = None
    try:
        db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as e:
        if db is not None:
            db.close()
        raise open_error(path, e) from e
    known = MIGRATIONS[-1][0]
    if version == 0 or version > known:
        db.close()
        raise (NotAnAddressBook(f"{path} is a SQLite database, but not an address book")
               if version == 0 else NewerSchema(
                   f"{path} has address-book schema version {version}, but this bitpeer "
                   f"knows only up to {known}; upgrade bitpeer"))
    return db, version


def close_book(opened):
    """Close the connection, then drop the lock (in that order: the lock
    guards the file until SQLite is done with it)."""
    try:
        opened.db.close()
    finally:
        if opened.lock is not None:
            opened.lock.release()


def transaction(db, work, *args):
    """Run ``work(db, *args)`` in one BEGIN IMMEDIATE transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db, *args)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


# -- write ---------------------------------------------------------------------------


def _sqlite_int(value):
    """``value`` if SQLite can hold it as an integer, else None."""
    if isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        return value
    return None


def _build(make, items, kind, fields, crawl_of, rejects):
    """
    ``[make(item) ...]``; if that raises, build them one by one and reject
    each item that cannot be made into a row (a value of the wrong type
    handed to the book), so it cannot fail the batch.
    """
    try:
        return [make(item) for item in items]
    except Exception:
        rows = []
        for item in items:
            try:
                rows.append(make(item))
            except Exception as error:
                rejects.append((kind, _sqlite_int(crawl_of(item)), row_text(fields, item),
                                _error_text(error)))
        return rows


def _error_text(error):
    return escape(f"{type(error).__name__}: {error}")


def write_batch(db, gossip, attempts, now):
    """
    Write one flush in one transaction: the gossip buffer (address -> a
    list indexed by gossip.GOSSIP_TIME...LAST_SOURCE) and the attempts
    (tuples of ATTEMPT_FIELDS).  A row SQLite cannot take is isolated and
    recorded in ``rejected`` at ``now``; the rest commits.
    Returns the rejected rows as (kind, crawl_id, row text, error text).
    """
    rejects = []
    transaction(db, _write_rows, gossip, attempts, now, rejects)
    return rejects


def _write_rows(db, gossip, attempts, now, rejects):
    signed = to_db
    if gossip:
        def gossip_row(item):
            (network, host, port), heard = item
            return (network, host, port, heard[GOSSIP_TIME], signed(heard[GOSSIP_SERVICES]),
                    heard[FIRST_SEEN], heard[FIRST_SOURCE], heard[LAST_SEEN],
                    heard[LAST_SOURCE])

        rows = _build(gossip_row, list(gossip.items()), "gossip", ("address", "buffered"),
                      lambda item: None, rejects)
        insert_rows(db, GOSSIP_UPSERT, rows, _rejecter("gossip", GOSSIP_ROW, None, rejects))
    if attempts:
        agents = {}

        def agent(user_agent):
            # Few distinct agents in a crawl: escape each once per flush.
            columns = agents.get(user_agent)
            if columns is None:
                columns = agents[user_agent] = agent_columns(user_agent)
            return columns

        # Reasons and details repeat too (``refused``, ``connection
        # refused``): a lookup is cheaper than a call to escape.
        texts = {None: None}
        known_text = texts.get

        def observation(attempt):
            crawl_id, address, outcome, reason, detail, info, returned, at = attempt
            network, host, port = address
            shown_reason = known_text(reason, texts)
            if shown_reason is texts:  # (the dict: a value no text can be)
                shown_reason = texts[reason] = escape(reason)
            shown_detail = known_text(detail, texts)
            if shown_detail is texts:
                shown_detail = texts[detail] = escape(detail)
            if info is None:
                return (crawl_id, network, host, port, at, outcome, shown_reason,
                        shown_detail, None, None, None, None, None, returned, None, None)
            shown, raw = agent(info.user_agent)
            relay = None if info.relay is None else int(info.relay)
            return (crawl_id, network, host, port, at, outcome, shown_reason,
                    shown_detail, info.version, shown, signed(info.services),
                    info.start_height, info.handshake_latency, returned, relay, raw)

        rows = _build(observation, attempts, "attempt", ATTEMPT_FIELDS,
                      lambda item: item[0], rejects)
        first = db.execute("SELECT coalesce(max(id), 0) + 1 FROM observations").fetchone()[0]
        insert_rows(db, OBSERVATION_INSERT, rows,
                    _rejecter("observation", OBSERVATION_ROW, 0, rejects))
        db.execute(ADDRESSES_FROM_OBSERVATIONS, (first,))
    if rejects:
        db.executemany(
            "INSERT INTO rejected (at, kind, crawl_id, row, error) VALUES (?, ?, ?, ?, ?)",
            [(now, *reject) for reject in rejects],
        )


def _rejecter(kind, columns, crawl_column, rejects):
    def reject(row, error):
        crawl_id = None if crawl_column is None else _sqlite_int(row[crawl_column])
        rejects.append((kind, crawl_id, row_text(columns, row), _error_text(error)))

    return reject


# -- read ------------------------------------------------------------------------------


def read_known(db):
    """Every address with what we know of it: a list of KnownAddress."""
    new = KnownAddress
    return [
        new(NetworkAddress(n, h, p), from_db(s), *rest)
        for n, h, p, s, *rest in db.execute(KNOWN_SELECT)
    ]


def read_observations(db, crawl_id):
    """The attempts of a crawl in order, as dicts (see AddressBook.observations)."""
    out = []
    for n, h, p, *values in db.execute(
        "SELECT network, host, port, " + ", ".join(OBSERVATION_COLUMNS)
        + " FROM observations WHERE crawl_id = ? ORDER BY id",
        (crawl_id,),
    ):
        row = dict(zip(OBSERVATION_COLUMNS, values))
        row["address"] = NetworkAddress(n, h, p)
        row["services"] = from_db(row["services"])
        shown, raw = row["user_agent"], row["user_agent_raw"]
        row["user_agent_raw"] = (
            None if shown is None else bytes(raw) if raw is not None else shown.encode()
        )
        out.append(row)
    return out


_VERDICTS = """
SELECT network, host, port, at, outcome, reason, detail, version, user_agent,
       user_agent_raw, services, start_height, relay, latency, returned
FROM observations WHERE crawl_id = ? ORDER BY id
"""


def read_verdicts(db, crawl_id):
    """Address -> Verdict: the latest observation of each address in the
    crawl (rows come in id order, so a later one replaces an earlier)."""
    out = {}
    text = unescape_text
    for (n, h, p, at, outcome, reason, detail, version, shown, raw, services, height,
         relay, latency, returned) in db.execute(_VERDICTS, (crawl_id,)):
        address = NetworkAddress(n, h, p)
        out[address] = Verdict(
            address, at, outcome, text(reason), text(detail), version,
            agent_from_db(shown, raw), from_db(services), height,
            None if relay is None else bool(relay), latency, returned,
        )
    return out


def read_crawls(db):
    """Every crawl as a dict (see AddressBook.crawls)."""
    out = []
    for cid, network, started, finished, params, summary, status, ended, why in db.execute(
        "SELECT id, network, started, finished, params, summary, status, ended, end_reason"
        " FROM crawls ORDER BY id"
    ):
        out.append(dict(
            id=cid, network=network, started=started, finished=finished,
            params=None if params is None else json.loads(params),
            summary=None if summary is None else json.loads(summary),
            status=status, ended=ended, end_reason=why,
        ))
    return out


def read_unfinished(db, network):
    """The newest running crawl of ``network``: an UnfinishedCrawl or None."""
    found = db.execute(
        "SELECT id, network, started, params FROM crawls WHERE network = ? AND status = ?"
        " ORDER BY id DESC LIMIT 1",
        (network, RUNNING),
    ).fetchone()
    if found is None:
        return None
    cid, name, started, params = found
    return UnfinishedCrawl(cid, name, started, None if params is None else json.loads(params))


def insert_crawl(db, network, params_json, now):
    """
    A new running crawl of ``network``; every crawl of it still running is
    abandoned as superseded (one process holds the book, so none of them
    can still be going), so that no crawl stays unfinished forever.
    """
    cid = db.execute(
        "INSERT INTO crawls (network, started, params, status) VALUES (?, ?, ?, ?)",
        (network, now, params_json, RUNNING),
    ).lastrowid
    db.execute(
        "UPDATE crawls SET status = ?, ended = ?, end_reason = ?"
        " WHERE network = ? AND status = ? AND id != ?",
        (ABANDONED, now, f"superseded by crawl {cid}", network, RUNNING, cid),
    )
    return cid


def end_crawl(db, path, crawl_id, now, summary_json=None, why=None):
    """Finish (with a summary) or abandon (with ``why``) a crawl."""
    if why is None:
        cursor = db.execute(
            "UPDATE crawls SET finished = ?, ended = ?, summary = ?, status = ?,"
            " end_reason = NULL WHERE id = ?",
            (now, now, summary_json, FINISHED, crawl_id),
        )
    else:
        cursor = db.execute(
            "UPDATE crawls SET ended = ?, end_reason = ?, status = ?"
            " WHERE id = ? AND status = ?",
            (now, escape(why), ABANDONED, crawl_id, RUNNING),
        )
    if cursor.rowcount != 1:
        what = "no crawl" if why is None else "no running crawl"
        raise AddressBookError(f"{what} {crawl_id} in {path}")


# -- the DNS seeder ----------------------------------------------------------------------

_WINDOW_COLUMNS = [f"{column}_{name}" for name in RELIABILITY_WINDOWS
                   for column in WINDOW_COLUMNS]

_SEED_STATE = f"""
SELECT a.network, a.host, a.port, coalesce(a.handshake_services, a.services),
       a.version, a.start_height, r.tries, r.successes, r.last_try, r.last_success, r.good,
       {", ".join("r." + c for c in _WINDOW_COLUMNS)}
FROM addresses AS a LEFT JOIN reliability AS r
    ON r.network = a.network AND r.host = a.host AND r.port = a.port
ORDER BY a.id
"""

#: One reliability row: the address, tries, successes, last try and
#: success, good, then the windows' columns.
RELIABILITY_ROW = ("network", "host", "port", "tries", "successes", "last_try",
                   "last_success", "good", *_WINDOW_COLUMNS)
_RELIABILITY_UPSERT = (
    f"INSERT OR REPLACE INTO reliability ({', '.join(RELIABILITY_ROW)})",
    f"({', '.join('?' * len(RELIABILITY_ROW))})", "")


def read_seed_state(db):
    """Every address of the book as a SeedRecord, in the order first met."""
    per = len(WINDOW_COLUMNS)
    out = []
    for (n, h, p, services, version, height, tries, successes, last_try, last_success,
         good, *windows) in db.execute(_SEED_STATE):
        record = SeedRecord(NetworkAddress(n, h, p), from_db(services), version, height)
        if tries is not None:
            record = attr.evolve(
                record, tries=tries, successes=successes, last_try=last_try,
                last_success=last_success, good=bool(good),
                windows=tuple(tuple(windows[i:i + per]) for i in range(0, len(windows), per)))
        out.append(record)
    return out


def write_reliability(db, records):
    """Store SeedRecords' tests (their windows replace the old ones), in
    one transaction."""
    rows = [(*r.address, r.tries, r.successes, r.last_try, r.last_success, int(r.good),
             *(value for window in r.windows for value in window)) for r in records]
    transaction(db, lambda db: insert_rows(db, _RELIABILITY_UPSERT, rows))


_DUMP = f"""
SELECT a.network, a.host, a.port, r.good, r.last_success,
       {", ".join(f"r.reliability_{name}" for name in RELIABILITY_WINDOWS)},
       a.start_height, coalesce(a.handshake_services, a.services), a.version, a.user_agent
FROM reliability AS r JOIN addresses AS a
    ON r.network = a.network AND r.host = a.host AND r.port = a.port
WHERE r.successes > 0
ORDER BY r.reliability_1m DESC, r.reliability_1w DESC, a.version DESC, a.id
"""


def read_dump(db):
    """
    The rows of a seeder dump, as sipa's seeder orders them (30-day
    reliability, then 7-day, then version, highest first) and as it
    chooses them (addresses with a successful test): tuples of the
    address, good, last success, the five reliabilities, height,
    services, version and the escaped user agent.
    """
    return [(NetworkAddress(n, h, p), bool(good), last_success, *rest[:-4],
             rest[-4], from_db(rest[-3]), rest[-2], rest[-1])
            for n, h, p, good, last_success, *rest in db.execute(_DUMP)]


def insert_seeding(db, network, params_json, now):
    """A seeder's run of ``network`` in ``crawls``, status SEEDING: its id.
    Unlike insert_crawl, it supersedes nothing, and nothing resumes it."""
    return db.execute(
        "INSERT INTO crawls (network, started, params, status) VALUES (?, ?, ?, ?)",
        (network, now, params_json, SEEDING),
    ).lastrowid


def end_seeding(db, run_id, now):
    """The seeder's run ``run_id`` has ended."""
    db.execute("UPDATE crawls SET status = ?, ended = ? WHERE id = ? AND status = ?",
               (SEEDED, now, run_id, SEEDING))
