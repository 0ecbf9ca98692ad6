"""
Tests for bitpeer.store.bookdb: the address book's worker-thread side, driven
synchronously on in-memory and temporary books (no reactor, no thread).

These hold the properties the issue asks for over arbitrary input: any
bytes as a user agent, any text (surrogates included) as a reason or a
detail, any mix of bad rows in a batch, all written without raising,
read back equal, with every TEXT column valid UTF-8.
"""

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.store import bookdb
from bitpeer.store.bookdb import MEMORY, open_book, read_observations, read_verdicts, write_batch
from bitpeer.store.bookschema import agent_columns, agent_from_db
from bitpeer.store.gossip import GOSSIP_TIME, add_gossip
from bitpeer.peer import PeerInfo
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress
from bitpeer.wire.text import escape

T0 = 1_700_000_000
SOURCE = NetworkAddress.parse("127.0.0.1:8333")


def address(n, port=8333):
    """A distinct IPv4 address in 10.0.0.0/8 for each ``n``."""
    return NetworkAddress(Network.IPV4, (0x0A000000 + n).to_bytes(4, "big"), port)


def info(where, **fields):
    """A PeerInfo; ``fields`` override."""
    values = dict(
        address=where, inbound=False, version=70016, services=0x0C09,
        user_agent="/Satoshi:27.0.0/", start_height=840_000, relay=True,
        their_view_of_us=SOURCE, timestamp=T0, nonce=1, clock_offset=0.5,
        handshake_latency=0.125,
    )
    values.update(fields)
    return PeerInfo(**values)


def attempt(n, outcome="unreachable", crawl_id=1, reason="refused", detail=None,
            peer=None, returned=None, at=10.0):
    """One buffered attempt, as AddressBook.attempt buffers it."""
    return (crawl_id, address(n), outcome, reason, detail, peer, returned, at)


def gossip_buffer(count, first=1):
    """A gossip buffer of ``count`` addresses, as AddressBook.gossip builds it."""
    buffer = {}
    entries = [AddrEntry(T0, 0x409, address(n)) for n in range(first, first + count)]
    add_gossip(buffer, entries, str(SOURCE), 1.0)
    return buffer


#: Text as the codec makes it from arbitrary bytes: surrogate escapes for
#: the bytes that are not UTF-8.
codec_text = st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape"))
#: Any text at all, lone surrogates of every kind included.
#: (st.text leaves surrogates out whatever its alphabet: join characters.)
any_text = st.lists(
    st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=40
).map("".join)


class Book:
    """A book opened in memory, closed by the test's cleanup."""

    def __init__(self, case):
        self.opened = open_book(MEMORY)
        self.db = self.opened.db
        case.addCleanup(bookdb.close_book, self.opened)

    def text_columns_are_utf8(self, case):
        """Every TEXT value in the book decodes as strict UTF-8 and holds no
        line break or control character (the escaped form)."""
        self.db.text_factory = bytes
        try:
            for table in ("addresses", "observations", "rejected", "crawls"):
                columns = [r[1] for r in self.db.execute(f"PRAGMA table_info({table})")
                           if r[2] == "TEXT"]
                for column in columns:
                    for (value,) in self.db.execute(
                        f"SELECT {column} FROM {table} WHERE typeof({column}) = 'text'"
                    ):
                        text = value.decode("utf-8")  # strict: raises if not UTF-8
                        if table != "rejected":
                            case.assertTrue(text.isprintable(), (table, column, text))
        finally:
            self.db.text_factory = str


class PeerTextTests(SynchronousTestCase):
    """Peer-controlled text through write_batch and back."""

    def test_issue_user_agent(self):
        """The issue's user agent (not UTF-8) is written, shown escaped, and
        its exact bytes come back, as does the text the codec made of it."""
        raw = b"\xff\xfe\xc3\x28"
        agent = raw.decode("utf-8", "surrogateescape")
        book = Book(self)
        write_batch(book.db, {}, [attempt(1, "reachable", reason="answered",
                                          peer=info(address(1), user_agent=agent))], 5.0)
        [row] = read_observations(book.db, 1)
        self.assertEqual((row["user_agent"], row["user_agent_raw"]), ("\\xff\\xfe\\xc3(", raw))
        self.assertEqual(read_verdicts(book.db, 1)[address(1)].user_agent, agent)
        shown, stored = book.db.execute(
            "SELECT user_agent, user_agent_raw FROM addresses").fetchone()
        self.assertEqual((shown, stored), ("\\xff\\xfe\\xc3(", raw))
        book.text_columns_are_utf8(self)

    def test_plain_agent_has_no_raw_copy(self):
        """A printable agent is its own bytes: user_agent_raw stays NULL (a
        crawl writes tens of thousands), and readers coalesce."""
        self.assertEqual(agent_columns("/Satoshi:27.0.0/"), ("/Satoshi:27.0.0/", None))
        self.assertEqual(agent_columns("/Knots:é/"), ("/Knots:é/", None))
        self.assertEqual(agent_columns("a\\b"), ("a\\\\b", b"a\\b"))
        self.assertEqual(agent_from_db("/Knots:é/", None), "/Knots:é/")
        self.assertEqual(agent_columns(None), (None, None))

    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=st.binary(max_size=300), reason=codec_text, detail=codec_text,
           other=any_text)
    def test_arbitrary_peer_text(self, raw, reason, detail, other):
        """
        Any bytes as a user agent, codec text as reason and detail (reachable
        and unreachable rows), and any text at all as a detail: all written
        in one batch, every TEXT column valid UTF-8 and escaped, the agent's
        bytes read back equal, and codec text rebuilt exactly.
        """
        agent = raw.decode("utf-8", "surrogateescape")
        book = Book(self)
        rejects = write_batch(book.db, {}, [
            attempt(1, "reachable", reason=reason, detail=detail,
                    peer=info(address(1), user_agent=agent), returned=3),
            attempt(2, "unreachable", reason=reason, detail=detail),
            attempt(3, "unreachable", reason="protocol-error", detail=other),
        ], 5.0)
        self.assertEqual(rejects, [])
        rows = read_observations(book.db, 1)
        self.assertEqual(rows[0]["user_agent_raw"], raw)
        self.assertEqual([r["reason"] for r in rows[:2]], [escape(reason)] * 2)
        self.assertEqual(rows[2]["detail"], escape(other))
        verdicts = read_verdicts(book.db, 1)
        self.assertEqual(verdicts[address(1)].user_agent, agent)
        self.assertEqual((verdicts[address(1)].reason, verdicts[address(1)].detail),
                         (reason, detail))
        self.assertEqual((verdicts[address(2)].reason, verdicts[address(2)].detail),
                         (reason, detail))
        [(ua_raw,)] = book.db.execute(
            "SELECT coalesce(user_agent_raw, CAST(user_agent AS BLOB)) FROM addresses "
            "WHERE user_agent IS NOT NULL")
        self.assertEqual(ua_raw, raw)
        book.text_columns_are_utf8(self)

    @given(agent=any_text)
    def test_any_text_as_agent(self, agent):
        """Even text the codec never makes (lone surrogates of any kind) is
        written as a user agent, escaped, and rebuilt."""
        book = Book(self)
        self.assertEqual(write_batch(book.db, {}, [
            attempt(1, "reachable", peer=info(address(1), user_agent=agent))], 5.0), [])
        [row] = read_observations(book.db, 1)
        self.assertEqual(row["user_agent"], escape(agent))
        book.text_columns_are_utf8(self)


class RowFaultTests(SynchronousTestCase):
    """A bad row is isolated and recorded; the rest of its batch commits."""

    def count(self, book, table):
        return book.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def test_one_bad_row_among_many(self):
        """A services value over 64 bits (it cannot be bound) in the middle
        of 1,000 attempts: 999 observations and their addresses commit, the
        one goes to rejected with its values as text and the error."""
        book = Book(self)
        attempts = [attempt(n) for n in range(1, 1001)]
        attempts[500] = attempt(501, "reachable", peer=info(address(501), services=1 << 70))
        rejects = write_batch(book.db, gossip_buffer(10, first=2000), attempts, 7.0)
        self.assertEqual(len(rejects), 1)
        kind, crawl_id, row, error = rejects[0]
        self.assertEqual((kind, crawl_id), ("observation", 1))
        self.assertIn("OverflowError", error)
        self.assertIn('"host": "0a0001f5"', row)
        self.assertEqual(self.count(book, "observations"), 999)
        self.assertEqual(self.count(book, "addresses"), 1009)
        self.assertEqual(
            book.db.execute("SELECT at, kind, crawl_id, error FROM rejected").fetchall(),
            [(7.0, "observation", 1, error)],
        )
        ids = [r[0] for r in book.db.execute("SELECT host FROM observations ORDER BY id")]
        self.assertEqual(ids, [address(n).host for n in range(1, 1001) if n != 501])

    def test_constraint_and_unbuildable_rows(self):
        """A row that breaks a constraint (no crawl id) and an attempt whose
        info is not a PeerInfo are rejected; the rest is written."""
        book = Book(self)
        rejects = write_batch(book.db, {}, [
            attempt(1), attempt(2, crawl_id=None), attempt(3, "reachable", peer=object()),
            attempt(4),
        ], 1.0)
        self.assertEqual(sorted(r[0] for r in rejects), ["attempt", "observation"])
        self.assertIn("IntegrityError", [r for r in rejects if r[0] == "observation"][0][3])
        self.assertEqual(self.count(book, "observations"), 2)
        self.assertEqual(self.count(book, "rejected"), 2)

    def test_bad_gossip_row(self):
        """A gossip entry with a time SQLite cannot hold is rejected alone."""
        book = Book(self)
        buffer = gossip_buffer(5)
        buffer[address(3)][GOSSIP_TIME] = 1 << 80
        rejects = write_batch(book.db, buffer, [], 1.0)
        self.assertEqual([r[0] for r in rejects], ["gossip"])
        self.assertEqual(self.count(book, "addresses"), 4)

    @settings(max_examples=50, deadline=None)
    @given(bad=st.sets(st.integers(0, 1999), max_size=40),
           kinds=st.lists(st.sampled_from(["overflow", "null", "surrogate", "type"]),
                          min_size=1))
    def test_any_bad_rows(self, bad, kinds):
        """Any set of bad rows, of any kind, in a batch of 2,000 spanning
        several statements: exactly those are rejected, every good row is
        written, in order."""
        book = Book(self)
        attempts = []
        for n in range(2000):
            if n in bad:
                kind = kinds[n % len(kinds)]
                attempts.append({
                    "overflow": attempt(n, returned=1 << 64),
                    "null": attempt(n, crawl_id=None),
                    "surrogate": attempt(n, crawl_id="\udcff"),
                    "type": attempt(n, returned=object()),
                }[kind])
            else:
                attempts.append(attempt(n))
        rejects = write_batch(book.db, {}, attempts, 1.0)
        self.assertEqual(len(rejects), len(bad))
        hosts = [r[0] for r in book.db.execute("SELECT host FROM observations ORDER BY id")]
        self.assertEqual(hosts, [address(n).host for n in range(2000) if n not in bad])
        self.assertEqual(self.count(book, "rejected"), len(bad))
        book.text_columns_are_utf8(self)

    def test_storage_fault_is_not_a_row_fault(self):
        """An error that is not a row's (the disk, a bug) is raised and the
        whole batch rolls back: nothing is half written."""
        book = Book(self)
        real = bookdb.insert_rows
        calls = []

        def insert_rows(db, statement, rows, reject=None):
            calls.append(len(rows))
            if len(calls) == 2:
                raise sqlite3.OperationalError("database or disk is full")
            return real(db, statement, rows, reject)

        self.patch(bookdb, "insert_rows", insert_rows)
        with self.assertRaises(sqlite3.OperationalError):
            write_batch(book.db, gossip_buffer(5), [attempt(1)], 1.0)
        self.assertEqual(self.count(book, "addresses"), 0)
        self.assertEqual(self.count(book, "rejected"), 0)


class VerdictTests(SynchronousTestCase):
    """read_verdicts: each address's latest attempt in one crawl."""

    def test_latest_per_address(self):
        """A later attempt on the same address in the crawl wins; other
        crawls do not count; every field comes back."""
        book = Book(self)
        write_batch(book.db, {}, [
            attempt(1, at=1.0),
            attempt(1, "reachable", reason="answered", peer=info(address(1), relay=False),
                    returned=1000, at=2.0),
            attempt(2, crawl_id=2, at=3.0),
            attempt(3, reason="connect-timeout", detail="no answer in 5 s", at=4.0),
        ], 1.0)
        verdicts = read_verdicts(book.db, 1)
        self.assertEqual(set(verdicts), {address(1), address(3)})
        self.assertEqual(
            verdicts[address(1)],
            bookdb.Verdict(address(1), 2.0, "reachable", "answered", None, 70016,
                           "/Satoshi:27.0.0/", 0x0C09, 840_000, False, 0.125, 1000),
        )
        self.assertEqual(
            verdicts[address(3)],
            bookdb.Verdict(address(3), 4.0, "unreachable", "connect-timeout",
                           "no answer in 5 s", None, None, None, None, None, None, None),
        )

    def test_gossip_entries_are_not_verdicts(self):
        """Addresses only gossiped in the crawl have no verdict."""
        book = Book(self)
        write_batch(book.db, gossip_buffer(3), [], 1.0)
        self.assertEqual(read_verdicts(book.db, 1), {})
        self.assertEqual(len(bookdb.read_known(book.db)), 3)
        self.assertIsInstance(AddrEntry(T0, 1, address(1)), AddrEntry)


class FailureStreakTests(SynchronousTestCase):
    """addresses.failure_streak: failed attempts in a row since the last
    success, kept by the statement that applies observations."""

    def streaks(self, book):
        return {k.address: k.failure_streak for k in bookdb.read_known(book.db)}

    def test_counts_and_resets(self):
        """Failures add one each, a success resets to 0, in one flush or
        over several; an address only gossiped has none."""
        book = Book(self)
        write_batch(book.db, gossip_buffer(1, first=9), [
            attempt(1, at=1.0), attempt(1, at=2.0), attempt(2, "reachable", at=3.0),
        ], 1.0)
        self.assertEqual(self.streaks(book), {address(9): 0, address(1): 2, address(2): 0})
        write_batch(book.db, {}, [attempt(1, "reachable", at=4.0), attempt(1, at=5.0),
                                  attempt(2, at=6.0)], 2.0)
        self.assertEqual(self.streaks(book), {address(9): 0, address(1): 1, address(2): 1})

    @settings(max_examples=100)
    @given(batches=st.lists(st.lists(st.booleans(), max_size=6), max_size=5))
    def test_any_history(self, batches):
        """Whatever the outcomes and however they are flushed, the streak is
        the number of failures after the last success."""
        book = Book(self)
        outcomes = []
        for batch in batches:
            write_batch(book.db, {}, [attempt(1, "reachable" if ok else "unreachable")
                                      for ok in batch], 1.0)
            outcomes += batch
        last_success = max((i for i, ok in enumerate(outcomes) if ok), default=-1)
        expected = {address(1): len(outcomes) - 1 - last_success} if outcomes else {}
        self.assertEqual(self.streaks(book), expected)
