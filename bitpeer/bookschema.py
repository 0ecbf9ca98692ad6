"""
The address book on disk: its SQLite schema, the statements that write and
read it, and the conversion of values SQLite cannot hold as they are.

Schema changes are MIGRATIONS entries: ``(version, [sql, ...])``, applied in
order in one transaction (bitpeer.addrbook does it), the version kept in
``PRAGMA user_version``.  To change the schema, append ``(3, [...])``; never
edit a released entry.
"""

from itertools import chain

#: Outcomes an attempt can have.
REACHABLE = "reachable"
UNREACHABLE = "unreachable"
OUTCOMES = (REACHABLE, UNREACHABLE)

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
]


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
# counters, last attempt and success, the failure's reason, and the
# handshake's facts (a failed attempt keeps the last known ones).  One
# statement, run by SQLite alone: binding a second row per attempt from
# Python held the GIL the reactor thread needs.  An address first met by
# dialling it (a seed, a command-line peer) gets first_seen/last_seen = the
# attempt time and no source.  (The WHERE clause also keeps SQLite from
# reading ON CONFLICT as a join constraint.)
ADDRESSES_FROM_OBSERVATIONS = f"""
INSERT INTO addresses (network, host, port, first_seen, last_seen,
                       attempts, successes, failures, last_attempt, last_success,
                       last_failure_reason, last_failure_detail,
                       version, user_agent, handshake_services, start_height, relay, latency)
SELECT network, host, port, at, at, 1,
       outcome = '{REACHABLE}', outcome != '{REACHABLE}', at,
       CASE WHEN outcome = '{REACHABLE}' THEN at END,
       CASE WHEN outcome = '{REACHABLE}' THEN NULL ELSE reason END,
       CASE WHEN outcome = '{REACHABLE}' THEN NULL ELSE detail END,
       version, user_agent, services, start_height, relay, latency
FROM observations WHERE id >= ? ORDER BY id
ON CONFLICT (network, host, port) DO UPDATE SET
    attempts = attempts + 1,
    successes = successes + excluded.successes,
    failures = failures + excluded.failures,
    last_attempt = excluded.last_attempt,
    last_success = coalesce(excluded.last_success, last_success),
    last_failure_reason = CASE WHEN excluded.failures
                               THEN excluded.last_failure_reason ELSE last_failure_reason END,
    last_failure_detail = CASE WHEN excluded.failures
                               THEN excluded.last_failure_detail ELSE last_failure_detail END,
    version = coalesce(excluded.version, version),
    user_agent = coalesce(excluded.user_agent, user_agent),
    handshake_services = coalesce(excluded.handshake_services, handshake_services),
    start_height = coalesce(excluded.start_height, start_height),
    relay = CASE WHEN excluded.version IS NULL THEN relay ELSE excluded.relay END,
    latency = coalesce(excluded.latency, latency)
"""

OBSERVATION_INSERT = ("""
INSERT INTO observations (crawl_id, network, host, port, at, outcome, reason, detail,
                          version, user_agent, services, start_height, latency, returned,
                          relay)
""", "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "")

#: Bound parameters per statement: SQLite's limit before 3.32 (999), the
#: lowest a Python 3.10+ may be linked with.
MAX_VARIABLES = 999


def insert_rows(db, statement, rows):
    """
    Run ``statement`` (head, one row's VALUES template, tail) over ``rows``,
    as many rows per statement as the variable limit allows.  executemany
    would step once per row, releasing and retaking the GIL each time:
    with the reactor thread busy, that hand-over cost three times the
    writing itself (4.3 s of a 10,000-node crawl, for 0.5 s of work).
    """
    head, row, tail = statement
    per = MAX_VARIABLES // row.count("?")
    flat = chain.from_iterable
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        db.execute(f"{head} VALUES {', '.join([row] * len(chunk))} {tail}", list(flat(chunk)))


KNOWN_SELECT = """
SELECT network, host, port, coalesce(handshake_services, services), gossip_time,
       first_seen, last_seen, attempts, successes, failures,
       last_attempt, last_success, last_failure_reason
FROM addresses ORDER BY id
"""

OBSERVATION_COLUMNS = (
    "crawl_id", "at", "outcome", "reason", "detail", "version", "user_agent",
    "services", "start_height", "relay", "latency", "returned",
)
