"""
The address book on disk: its SQLite schema, the statements that write and
read it, and the conversion of values SQLite cannot hold as they are.

Schema changes are MIGRATIONS entries: ``(version, [sql, ...])``, applied in
order in one transaction (bitpeer.store.addrbook does it), the version kept in
``PRAGMA user_version``.  A step is an SQL string, or a function called with
the connection for what SQL alone cannot do.  To change the schema, append
the next ``(version, [...])``; never edit a released entry.  docs/addressbook.rst describes
every table and column for people who query the file with ``sqlite3``.

Text a peer controls (user agents, reject reasons, error details) is stored
in TEXT columns as ``bitpeer.wire.text.escape`` of it: valid UTF-8, one
printable line, lossless.  A user agent's exact bytes are also kept, in
``user_agent_raw``, but only when they differ from the UTF-8 of the text
column (NULL otherwise: nearly every agent is plain ASCII, and a crawl
writes tens of thousands of them), so a reader gets them with
``coalesce(user_agent_raw, CAST(user_agent AS BLOB))``.
"""

import json
from itertools import chain

from .bookcheck import is_row_fault
from ..wire.text import escape, raw_bytes

#: Outcomes an attempt can have.
REACHABLE = "reachable"
UNREACHABLE = "unreachable"
OUTCOMES = (REACHABLE, UNREACHABLE)

#: The seeder's windows (bitpeer.seed.reliability.WINDOW_NAMES: the store
#: imports nothing above it) and the columns of each in ``reliability``.
RELIABILITY_WINDOWS = ("2h", "8h", "1d", "1w", "1m")
WINDOW_COLUMNS = ("reliability", "count", "weight")

MIGRATIONS = [
    (
        1,
        [
            # services is what gossip claims; handshake_services what the node
            # itself said in its version message.  Gossip never overwrites the
            # latter: an addr entry is hearsay, often stale.
            """
            CREATE TABLE addresses (
                id INTEGER PRIMARY KEY,
                network INTEGER NOT NULL,
                host BLOB NOT NULL,
                port INTEGER NOT NULL,
                services INTEGER,
                gossip_time INTEGER,
                first_seen REAL NOT NULL,
                first_source TEXT,
                last_seen REAL NOT NULL,
                last_source TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                successes INTEGER NOT NULL DEFAULT 0,
                failures INTEGER NOT NULL DEFAULT 0,
                last_attempt REAL,
                last_success REAL,
                last_failure_reason TEXT,
                last_failure_detail TEXT,
                version INTEGER,
                user_agent TEXT,
                handshake_services INTEGER,
                start_height INTEGER,
                relay INTEGER,
                latency REAL,
                UNIQUE (network, host, port)
            )
            """,
            """
            CREATE TABLE crawls (
                id INTEGER PRIMARY KEY,
                network TEXT NOT NULL,
                started REAL NOT NULL,
                finished REAL,
                params TEXT,
                summary TEXT
            )
            """,
            """
            CREATE TABLE observations (
                id INTEGER PRIMARY KEY,
                crawl_id INTEGER NOT NULL REFERENCES crawls (id),
                network INTEGER NOT NULL,
                host BLOB NOT NULL,
                port INTEGER NOT NULL,
                at REAL NOT NULL,
                outcome TEXT NOT NULL,
                reason TEXT,
                detail TEXT,
                version INTEGER,
                user_agent TEXT,
                services INTEGER,
                start_height INTEGER,
                latency REAL,
                returned INTEGER
            )
            """,
            "CREATE INDEX observations_by_crawl ON observations (crawl_id)",
        ],
    ),
    (
        2,
        [
            # The handshake's relay flag: with it an observation holds every
            # fact its address row takes, and rows are updated from the
            # observations in one statement (ADDRESSES_FROM_OBSERVATIONS).
            "ALTER TABLE observations ADD COLUMN relay INTEGER",
        ],
    ),
    (
        3,
        [
            # Peer text: escaped TEXT plus the user agent's raw bytes when
            # they differ (see the module docstring).
            "ALTER TABLE addresses ADD COLUMN user_agent_raw BLOB",
            "ALTER TABLE observations ADD COLUMN user_agent_raw BLOB",
            # A crawl is running, finished (with its summary and snapshot)
            # or abandoned (ended without one: --fresh, or superseded).
            "ALTER TABLE crawls ADD COLUMN status TEXT NOT NULL DEFAULT 'running'",
            "ALTER TABLE crawls ADD COLUMN ended REAL",
            "ALTER TABLE crawls ADD COLUMN end_reason TEXT",
            "UPDATE crawls SET status = 'finished', ended = finished WHERE finished IS NOT NULL",
            # Before version 3 an interrupted crawl was left unfinished and the
            # next run started a new one: every unfinished crawl with a later
            # crawl of its network is dead.
            """
            UPDATE crawls SET status = 'abandoned',
                ended = (SELECT min(later.started) FROM crawls AS later
                         WHERE later.network = crawls.network AND later.id > crawls.id),
                end_reason = 'superseded by a later crawl (found when the book was upgraded)'
            WHERE finished IS NULL AND EXISTS (
                SELECT 1 FROM crawls AS later
                WHERE later.network = crawls.network AND later.id > crawls.id)
            """,
            # Rows a flush could not write (a value SQLite cannot bind, a
            # constraint): kept here, as text, instead of failing the batch.
            """
            CREATE TABLE rejected (
                id INTEGER PRIMARY KEY,
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                crawl_id INTEGER,
                row TEXT NOT NULL,
                error TEXT NOT NULL
            )
            """,
            "CREATE INDEX crawls_by_network ON crawls (network, status)",
            lambda db: escape_old_text(db),
        ],
    ),
    (
        4,
        [
            # How many of an address's latest attempts failed in a row (0
            # after a success): the crawl dials by it (bitpeer.crawl.history).
            "ALTER TABLE addresses ADD COLUMN failure_streak INTEGER NOT NULL DEFAULT 0",
            # Books made before version 4: counted from the observations, the
            # attempts after each address's last success.  One pass over
            # them, grouped (they have no index by address).
            """
            CREATE TEMP TABLE streaks (
                network INTEGER, host BLOB, port INTEGER, failed INTEGER,
                PRIMARY KEY (network, host, port)
            ) WITHOUT ROWID
            """,
            f"""
            INSERT INTO streaks
            SELECT o.network, o.host, o.port, count(*) FROM observations AS o
            LEFT JOIN (SELECT network, host, port, max(id) AS id FROM observations
                       WHERE outcome = '{REACHABLE}' GROUP BY network, host, port) AS ok
                ON ok.network = o.network AND ok.host = o.host AND ok.port = o.port
            WHERE o.id > coalesce(ok.id, 0)
            GROUP BY o.network, o.host, o.port
            """,
            """
            UPDATE addresses SET failure_streak = (
                SELECT failed FROM streaks AS s
                WHERE s.network = addresses.network AND s.host = addresses.host
                      AND s.port = addresses.port)
            WHERE (network, host, port) IN (SELECT network, host, port FROM streaks)
            """,
            "DROP TABLE streaks",
        ],
    ),
    (
        5,
        [
            # The DNS seeder's record of each address it tested: its tries
            # and successes, the last of each, whether it was good when
            # last judged, and the five decayed windows of
            # bitpeer.seed.reliability (reliability, count, weight each).
            f"""
            CREATE TABLE reliability (
                network INTEGER NOT NULL,
                host BLOB NOT NULL,
                port INTEGER NOT NULL,
                tries INTEGER NOT NULL,
                successes INTEGER NOT NULL,
                last_try REAL NOT NULL,
                last_success REAL,
                good INTEGER NOT NULL,
                {", ".join(f"{column}_{name} REAL NOT NULL"
                           for name in RELIABILITY_WINDOWS for column in WINDOW_COLUMNS)},
                PRIMARY KEY (network, host, port)
            )
            """,
        ],
    ),
]

#: The schema version that brought the seeder's ``reliability`` table.
SEEDER_SCHEMA = 5

#: Crawl statuses (crawls.status).
RUNNING, FINISHED, ABANDONED = "running", "finished", "abandoned"
#: The status of a DNS seeder's run, from its start to its end: its tests
#: are its observations.  A crawl never resumes it, nor supersedes it.
SEEDING, SEEDED = "seeding", "seeded"

#: TEXT columns that may hold peer text, per table; the user agent also
#: has its raw column.
PEER_TEXT_COLUMNS = {
    "addresses": ("user_agent", "last_failure_reason", "last_failure_detail",
                  "first_source", "last_source"),
    "observations": ("user_agent", "reason", "detail"),
}

# Values that escape() may change: a blob, anything outside printable
# ASCII, or a backslash.  Everything else (nearly every row) is skipped
# by SQLite alone.
_MAY_NEED_ESCAPING = "typeof({c}) = 'blob' OR {c} GLOB '*[^ -~]*' OR instr({c}, '\\')"


def escape_old_text(db):
    """
    Migration 3's data step: text written by versions 1 and 2 was stored as
    it came (valid UTF-8: text that was not could not be written at all);
    rewrite it in the escaped form, keeping a changed user agent's bytes
    in user_agent_raw.
    """
    for table, columns in PEER_TEXT_COLUMNS.items():
        for column in columns:
            rows = db.execute(
                f"SELECT id, {column} FROM {table} WHERE "
                + _MAY_NEED_ESCAPING.format(c=column)
            ).fetchall()
            updates = []
            for row_id, value in rows:
                shown = escape(value)
                if shown == value:
                    continue
                raw = value if isinstance(value, bytes) else value.encode("utf-8")
                updates.append((shown, raw, row_id) if column == "user_agent"
                               else (shown, row_id))
            if column == "user_agent":
                db.executemany(
                    f"UPDATE {table} SET user_agent = ?, user_agent_raw = ? WHERE id = ?",
                    updates,
                )
            else:
                db.executemany(f"UPDATE {table} SET {column} = ? WHERE id = ?", updates)


def agent_columns(agent):
    """
    The (user_agent, user_agent_raw) values for a user agent as the codec
    gives it (text with surrogate escapes): its escaped form, and its bytes
    when they are not simply that form's UTF-8.
    """
    if agent is None:
        return None, None
    shown = escape(agent)
    if shown == agent:
        return shown, None
    try:
        return shown, raw_bytes(agent)
    except UnicodeEncodeError:
        # Text with surrogates the codec never makes (not a decoded byte):
        # keep them as UTF-8 would spell them.
        return shown, agent.encode("utf-8", "surrogatepass")


def agent_from_db(shown, raw):
    """The user agent as the codec gave it, from its two columns."""
    if raw is not None:
        return bytes(raw).decode("utf-8", "surrogateescape")
    return shown


def row_text(columns, values):
    """
    A row as one line of JSON for the ``rejected`` table: every text
    escaped (so the line is valid UTF-8 whatever the row held), bytes as
    hex, numbers as they are, anything else as its escaped repr.
    """
    out = {}
    for column, value in zip(columns, values):
        if value is None or isinstance(value, (bool, int, float)):
            out[column] = value
        elif isinstance(value, str):
            out[column] = escape(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out[column] = bytes(value).hex()
        else:
            try:
                out[column] = escape(str(value))
            except Exception:
                out[column] = escape(repr(value))
    return json.dumps(out, ensure_ascii=False, default=str)


# SQLite integers are signed 64-bit; service bits are a uint64.
_TWO64 = 1 << 64
_INT64_MAX = (1 << 63) - 1


def to_db(value):
    """A uint64 (service bits) or None as SQLite's signed 64-bit integer."""
    if value is not None and value > _INT64_MAX:
        return value - _TWO64
    return value


def from_db(value):
    """The uint64 that to_db stored (None stays None)."""
    if value is not None and value < 0:
        return value + _TWO64
    return value


# AddressBook's gossip buffer values: [gossip_time, services, first_seen,
# first_source, last_seen, last_source].  In SET, column names are the old row's values.
GOSSIP_UPSERT = ("""
INSERT INTO addresses (network, host, port, gossip_time, services,
                       first_seen, first_source, last_seen, last_source)
""", "(?, ?, ?, ?, ?, ?, ?, ?, ?)", """
ON CONFLICT (network, host, port) DO UPDATE SET
    services = CASE WHEN gossip_time IS NULL OR excluded.gossip_time >= gossip_time
                    THEN excluded.services ELSE services END,
    gossip_time = CASE WHEN gossip_time IS NULL OR excluded.gossip_time > gossip_time
                       THEN excluded.gossip_time ELSE gossip_time END,
    first_source = coalesce(first_source, excluded.first_source),
    last_seen = excluded.last_seen,
    last_source = excluded.last_source
""")

# Every observation from id ``?`` on, in order, applied to its address row:
# counters, the failures since the last success (failure_streak), last
# attempt and success, the failure's reason, and the handshake's facts (a
# failed attempt keeps the last known ones).  One
# statement, run by SQLite alone: binding a second row per attempt from
# Python held the GIL the reactor thread needs.  An address first met by
# dialling it (a seed, a command-line peer) gets first_seen/last_seen = the
# attempt time and no source.  (The WHERE clause also keeps SQLite from
# reading ON CONFLICT as a join constraint.)
ADDRESSES_FROM_OBSERVATIONS = f"""
INSERT INTO addresses (network, host, port, first_seen, last_seen,
                       attempts, successes, failures, last_attempt, last_success,
                       last_failure_reason, last_failure_detail,
                       version, user_agent, user_agent_raw, handshake_services,
                       start_height, relay, latency, failure_streak)
SELECT network, host, port, at, at, 1,
       outcome = '{REACHABLE}', outcome != '{REACHABLE}', at,
       CASE WHEN outcome = '{REACHABLE}' THEN at END,
       CASE WHEN outcome = '{REACHABLE}' THEN NULL ELSE reason END,
       CASE WHEN outcome = '{REACHABLE}' THEN NULL ELSE detail END,
       version, user_agent, user_agent_raw, services, start_height, relay, latency,
       outcome != '{REACHABLE}'
FROM observations WHERE id >= ? ORDER BY id
ON CONFLICT (network, host, port) DO UPDATE SET
    attempts = attempts + 1,
    successes = successes + excluded.successes,
    failures = failures + excluded.failures,
    failure_streak = CASE WHEN excluded.failures THEN failure_streak + 1 ELSE 0 END,
    last_attempt = excluded.last_attempt,
    last_success = coalesce(excluded.last_success, last_success),
    last_failure_reason = CASE WHEN excluded.failures
                               THEN excluded.last_failure_reason ELSE last_failure_reason END,
    last_failure_detail = CASE WHEN excluded.failures
                               THEN excluded.last_failure_detail ELSE last_failure_detail END,
    version = coalesce(excluded.version, version),
    user_agent_raw = CASE WHEN excluded.user_agent IS NULL
                          THEN user_agent_raw ELSE excluded.user_agent_raw END,
    user_agent = coalesce(excluded.user_agent, user_agent),
    handshake_services = coalesce(excluded.handshake_services, handshake_services),
    start_height = coalesce(excluded.start_height, start_height),
    relay = CASE WHEN excluded.version IS NULL THEN relay ELSE excluded.relay END,
    latency = coalesce(excluded.latency, latency)
"""

OBSERVATION_INSERT = ("""
INSERT INTO observations (crawl_id, network, host, port, at, outcome, reason, detail,
                          version, user_agent, services, start_height, latency, returned,
                          relay, user_agent_raw)
""", "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "")

#: The values of one OBSERVATION_INSERT row, named (for the rejected table).
OBSERVATION_ROW = (
    "crawl_id", "network", "host", "port", "at", "outcome", "reason", "detail",
    "version", "user_agent", "services", "start_height", "latency", "returned", "relay",
    "user_agent_raw",
)
#: The values of one GOSSIP_UPSERT row, named.
GOSSIP_ROW = (
    "network", "host", "port", "gossip_time", "services", "first_seen", "first_source",
    "last_seen", "last_source",
)

#: Bound parameters per statement: SQLite's limit before 3.32 (999), the
#: lowest a Python 3.10+ may be linked with.
MAX_VARIABLES = 999


def insert_rows(db, statement, rows, reject=None):
    """
    Run ``statement`` (head, one row's VALUES template, tail) over ``rows``,
    as many rows per statement as the variable limit allows.  executemany
    would step once per row, releasing and retaking the GIL each time:
    with the reactor thread busy, that hand-over cost three times the
    writing itself (4.3 s of a 10,000-node crawl, for 0.5 s of work).

    With ``reject``, a statement that fails for a row's sake (is_row_fault)
    is retried in halves until the bad rows are alone; each is passed to
    ``reject(row, error)`` and the good ones are written.  A failed
    statement has no effect (SQLite backs it out; a bind error stops it
    before it runs), so no savepoint is needed, and a batch without a bad
    row costs nothing more.  Any other error is raised.
    """
    head, row, tail = statement
    per = MAX_VARIABLES // row.count("?")
    flat = chain.from_iterable
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        try:
            db.execute(f"{head} VALUES {', '.join([row] * len(chunk))} {tail}",
                       list(flat(chunk)))
        except Exception as error:
            if reject is None or not is_row_fault(error):
                raise
            _isolate(db, statement, chunk, reject, error)


def _isolate(db, statement, rows, reject, error):
    """Write ``rows`` (whose statement failed with ``error``) in halves,
    in order, rejecting each row that fails alone."""
    head, row, tail = statement
    flat = chain.from_iterable
    if len(rows) == 1:
        reject(rows[0], error)
        return
    stack = [rows[len(rows) // 2:], rows[:len(rows) // 2]]
    while stack:
        part = stack.pop()
        try:
            db.execute(f"{head} VALUES {', '.join([row] * len(part))} {tail}",
                       list(flat(part)))
        except Exception as error:
            if not is_row_fault(error):
                raise
            if len(part) == 1:
                reject(part[0], error)
            else:
                stack.append(part[len(part) // 2:])
                stack.append(part[:len(part) // 2])


KNOWN_SELECT = """
SELECT network, host, port, coalesce(handshake_services, services), gossip_time,
       first_seen, last_seen, attempts, successes, failures,
       last_attempt, last_success, last_failure_reason, failure_streak
FROM addresses ORDER BY id
"""

OBSERVATION_COLUMNS = (
    "crawl_id", "at", "outcome", "reason", "detail", "version", "user_agent",
    "services", "start_height", "relay", "latency", "returned", "user_agent_raw",
)
