"""
The whole seeder end to end, as an operator meets it: ``twistd -n
bitpeer-seed --simnet 200`` in a process of its own, asked with ``dig``
(Debian's dnsutils, which .ci/run installs) over UDP and TCP, stopped with
SIGTERM (a clean shutdown), and started again on its book.

The seeder listens on a free port (``--dns-port 0``) and says which in its
log; the test reads it there, and waits on the log for the first crawl's
good nodes to be served.  Everything is on 127.0.0.1: the simulated network
is in the seeder's process, on loopback.
"""

import os
import re
import shutil
import signal

from twisted.internet import defer, utils
from twisted.trial.unittest import SkipTest, TestCase

from bitpeer.store.bookdb import open_read_only, read_seed_state
from bitpeer.wire.services import NODE_NETWORK, NODE_WITNESS

from .helpers import wait_until
from .test_tap import db_rows, read_log, tempdir, twistd

ZONE = ["--host", "seed.example.org", "--ns", "ns.example.org",
        "--mbox", "hostmaster.example.org"]
#: The log line that says where the DNS server listens.
LISTENING = re.compile(r"DNS: serving seed\.example\.org on UDP and TCP 127\.0\.0\.1:(\d+)")
#: What the monitor found in the book when it started.
KNOWS = re.compile(r"the seeder knows (\d+) addresses, (\d+) of them good")
#: The health line after a refresh: how many addresses are served.
SERVED = re.compile(r"sample served: [^\n]*, now (\d+) addresses")


def dig_answer(output):
    """
    dig's output (``+noall +comments +answer +authority``) as the status,
    the header's flags, and the answer and authority records, each a tuple
    (name, ttl, type, data).
    """
    status = re.search(r"status: ([A-Z]+)", output).group(1)
    flags = set(re.search(r";; flags: ([a-z ]*);", output).group(1).split())
    sections = {"ANSWER": [], "AUTHORITY": []}
    section = None
    for line in output.splitlines():
        heading = re.match(r";; (\w+) SECTION:", line)
        if heading:
            section = sections.get(heading.group(1))
        elif line and not line.startswith(";") and section is not None:
            name, ttl, _, rtype, data = line.split(None, 4)
            section.append((name, int(ttl), rtype, data))
    return status, flags, sections["ANSWER"], sections["AUTHORITY"]


class DigTests(TestCase):
    """The seeder in its own process, asked with dig."""

    #: Two runs of a 200-node seeder and a dozen digs, on a busy machine.
    timeout = 300

    def setUp(self):
        self.dig = shutil.which("dig")
        if self.dig is None:
            raise SkipTest("dig is not installed (Debian's dnsutils; .ci/run installs it)")
        self.cwd = tempdir(self)
        self.db = os.path.join(self.cwd, "seed.sqlite")
        self.argv = ["bitpeer-seed", *ZONE, "--simnet", "200", "--db", self.db,
                     "--dns-port", "0", "--dns-interface", "127.0.0.1", "--concurrency", "100"]

    def start(self):
        """Start the seeder; its process and the number of its log."""
        number = len([name for name in os.listdir(self.cwd) if name.startswith("twistd-")])
        process = twistd(self.cwd, *self.argv)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        return process, number

    @defer.inlineCallbacks
    def served(self, process, number):
        """Wait until the seeder serves good nodes; its DNS port."""

        def serving():
            if process.poll() is not None:
                raise AssertionError("the seeder ended:\n" + read_log(self.cwd, number))
            log = read_log(self.cwd, number)
            return LISTENING.search(log) and any(
                int(count) for count in SERVED.findall(log))

        yield wait_until(serving, "the seeder to serve good nodes")
        return int(LISTENING.search(read_log(self.cwd, number)).group(1))

    @defer.inlineCallbacks
    def stop(self, process, number):
        """
        SIGTERM: a clean shutdown, and twistd's way of ending after one: it
        kills itself with the signal it was stopped by (bitpeer.application
        says why no status can be chosen then).
        """
        process.send_signal(signal.SIGTERM)
        yield wait_until(lambda: process.poll() is not None, "the seeder to stop")
        log = read_log(self.cwd, number)
        self.assertEqual(process.returncode, -signal.SIGTERM, log)
        self.assertIn("Server Shut Down.", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("cannot", log)

    @defer.inlineCallbacks
    def ask(self, port, name, rtype, *options):
        """dig @127.0.0.1 -p PORT NAME TYPE: its parsed answer."""
        output, error, code = yield utils.getProcessOutputAndValue(self.dig, [
            "@127.0.0.1", "-p", str(port), name, rtype, "+norecurse", "+time=5",
            "+tries=1", "+noall", "+comments", "+answer", "+authority", *options],
            env=os.environ)
        self.assertEqual(code, 0, error.decode(errors="replace"))
        return dig_answer(output.decode())

    def good_nodes(self):
        """The book's good nodes: their IPs and services, by IP."""
        db, _ = open_read_only(self.db)
        try:
            return {str(r.address).rsplit(":", 1)[0]: r.services
                    for r in read_seed_state(db) if r.good}
        finally:
            db.close()

    def windows(self):
        """Each tested address's tries and 30-day count, from the book."""
        return dict(((network, host, port), (tries, count)) for network, host, port, tries,
                    count in db_rows(self.db, "SELECT network, host, port, tries, count_1m "
                                              "FROM reliability"))

    @defer.inlineCallbacks
    def test_dig_and_restart(self):
        process, number = self.start()
        port = yield self.served(process, number)
        good = self.good_nodes()
        self.assertTrue(good)
        x9 = NODE_NETWORK | NODE_WITNESS

        # A on the bare name and on x9: good nodes with those bits, one per
        # /16 (the simulated nodes all share 127.1/16: one record).
        for name in ("seed.example.org", "x9.seed.example.org"):
            for options in ((), ("+tcp",)):
                status, flags, answers, _ = yield self.ask(port, name, "A", *options)
                self.assertEqual(status, "NOERROR")
                self.assertIn("aa", flags)
                self.assertEqual(len(answers), 1, answers)
                [(owner, ttl, rtype, ip)] = answers
                self.assertEqual((owner, ttl, rtype), (name + ".", 3600, "A"))
                self.assertIn(ip, good)
                self.assertEqual(good[ip] & x9, x9)

        # AAAA: no IPv6 node, so an empty answer that carries the SOA.
        status, flags, answers, authority = yield self.ask(port, "x9.seed.example.org",
                                                           "AAAA")
        self.assertEqual((status, answers), ("NOERROR", []))
        self.assertEqual([record[2] for record in authority], ["SOA"])

        # NS and SOA on the apex.
        _, _, answers, _ = yield self.ask(port, "seed.example.org", "NS")
        self.assertEqual([(rtype, data) for _, _, rtype, data in answers],
                         [("NS", "ns.example.org.")])
        _, _, answers, _ = yield self.ask(port, "seed.example.org", "SOA", "+tcp")
        [(_, _, rtype, data)] = answers
        self.assertEqual(rtype, "SOA")
        self.assertEqual(data.split()[:2], ["ns.example.org.", "hostmaster.example.org."])

        # An unknown label, a label not served, a name outside the zone.
        for name, expected in (("www.seed.example.org", "NXDOMAIN"),
                               ("x7.seed.example.org", "NXDOMAIN"),
                               ("example.com", "REFUSED")):
            status, _, answers, _ = yield self.ask(port, name, "A")
            self.assertEqual((name, status, answers), (name, expected, []))

        yield self.stop(process, number)
        before = self.windows()
        self.assertEqual(len(before), 200)

        # Started again on its book: no first crawl, the windows loaded, the
        # same good nodes served at once.
        process, number = self.start()
        port = yield self.served(process, number)
        log = read_log(self.cwd, number)
        self.assertNotIn("first crawl", log)
        known, loaded = map(int, KNOWS.search(log).groups())
        self.assertGreaterEqual(known, len(before))
        self.assertEqual(loaded, len(good))
        _, _, answers, _ = yield self.ask(port, "x9.seed.example.org", "A")
        self.assertIn(answers[0][3], good)
        yield self.stop(process, number)
        # Every window kept: as it was, or moved on by a new test (the
        # addresses never tested before are tested now).
        after = self.windows()
        self.assertLessEqual(before.keys(), after.keys())
        for key, (tries, count) in before.items():
            self.assertTrue(after[key] == (tries, count) or after[key][0] > tries,
                            (key, before[key], after[key]))
