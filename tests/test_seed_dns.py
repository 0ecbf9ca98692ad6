"""
Tests for the seeder's DNS side: bitpeer.seed.zone, .ratelimit, .answers,
.drawn and .dns.

The Responder is tested on bytes (queries built and answers read with
twisted.names' codec); DNSService on a real listening server on 127.0.0.1,
asked with twisted.names' client and with ``dig`` (Debian's dnsutils) from a
subprocess.  The nodes served are loopback addresses (127.0.0.0/8: 256 /16
groups) and IPv6 documentation ones (3fff::/20); they are never dialled.
"""

import random
import shutil
import socket

from twisted.internet import defer, endpoints, protocol, reactor, task, utils
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.names import client, dns
from twisted.names import error as dns_error
from twisted.protocols.basic import Int16StringReceiver
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitpeer.seed import dns as seed_dns
from bitpeer.seed.answers import EDNS_SIZE, SOA_EXPIRE, SOA_REFRESH, SOA_RETRY, Responder
from bitpeer.seed.dns import DNSService, SeedZone
from bitpeer.seed.drawn import MAX_KEPT, MAX_RECORDS, RECORD_SIZES, ROTATION
from bitpeer.seed.ratelimit import ClientBuckets, RateLimit
from bitpeer.seed.sample import Candidate, ServedSample
from bitpeer.seed.zone import BARE_NAME_FLAGS, NOT_FOUND, OUTSIDE, SERVED_FLAGS
from bitpeer.wire.address import Network, NetworkAddress

from .helpers import wait_until

T0 = 1_700_000_000
HOST = "seed.example.org"
ZONE = SeedZone(HOST, "ns.example.org", "hostmaster.example.org")
#: Service bits of the test nodes, one value per /16 in turn: x9 nodes
#: (0x409, 0xC09, 0x40D: xd), one x49 kind, and NETWORK alone (never on x9).
SERVICES = (0x409, 0xC09, 0x40D, 0x449, 0x1)


def node(group, host=1, services=0x409):
    """A candidate in 127.<group>.0.0/16."""
    return Candidate(NetworkAddress(Network.IPV4, bytes([127, group, 0, host]), 8333), services)


def node6(group, host=1, services=0x409):
    """A candidate in 3fff:0<group>::/32."""
    prefix = bytes([0x3F, 0xFF, group >> 8, group & 0xFF])
    return Candidate(NetworkAddress(Network.IPV6, prefix + bytes(11) + bytes([host]), 8333),
                     services)


def network_nodes(groups=200, per_group=2):
    """IPv4 and IPv6 nodes, ``per_group`` in each of ``groups`` groups."""
    return [
        maker(group, host, SERVICES[group % len(SERVICES)])
        for maker in (node, node6) for group in range(groups) for host in range(1, per_group + 1)
    ]


def query(name, qtype=dns.A, *, edns=None, edns_version=0, id=1, rd=0, cls=dns.IN,
          op=dns.OP_QUERY, questions=None, options=1):
    """The bytes of a query; ``edns`` is the UDP size its OPT record offers."""
    message = dns.Message(id=id, recDes=rd, opCode=op)
    message.queries = ([dns.Query(name, qtype, cls)] if questions is None else questions)
    if edns is not None:
        message.additional = [dns.RRHeader(b"", dns.OPT, edns, edns_version << 16)] * options
    return message.toStr()


def decode(data):
    message = dns.Message()
    message.fromStr(data)
    return message


def addresses(message):
    return [record.payload.dottedQuad() if record.type == dns.A
            else socket.inet_ntop(socket.AF_INET6, record.payload.address)
            for record in message.answers]


def responder(candidates=(), zone=ZONE, seed=1):
    clock = task.Clock()
    clock.advance(T0)
    sample = ServedSample(clock, random=random.Random(seed))
    sample.refresh(candidates)
    return Responder(zone, sample, clock), sample, clock


# -- the zone ------------------------------------------------------------------


class SeedZoneTests(SynchronousTestCase):
    def test_names_normalised(self):
        zone = SeedZone("Seed.Example.ORG.", "NS.example.org.", "HostMaster@Example.org")
        self.assertEqual((zone.host, zone.ns, zone.mbox),
                         ("seed.example.org", "ns.example.org", "hostmaster.example.org"))
        self.assertEqual((zone.ttl, zone.ns_ttl), (3600, 40000))

    def test_bad_names(self):
        for bad in ("", ".", "-seed.example.org", "seed-.example.org", "a..b", "a_b.org",
                    "a" * 64 + ".org", ".".join(["abcdefghi"] * 26), "seed example.org",
                    b"seed.example.org", None):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError) as raised:
                    SeedZone(HOST, bad, "hostmaster.example.org")
                self.assertIn("ns must be a DNS name", str(raised.exception))

    def test_longest_name(self):
        name = ".".join(["a" * 63] * 3 + ["b" * 61])
        self.assertEqual(len(name), 253)
        self.assertEqual(SeedZone(name, name, name).host, name)

    def test_bad_ttls(self):
        for field in ("ttl", "ns_ttl"):
            for bad in (0, -1, 2**31):
                with self.subTest(field=field, bad=bad):
                    with self.assertRaises(ValueError) as raised:
                        SeedZone(HOST, "ns.example.org", "h.example.org", **{field: bad})
                    self.assertIn(field, str(raised.exception))
        self.assertEqual(SeedZone(HOST, "n.org", "h.org", ttl=2**31 - 1).ttl, 2**31 - 1)

    def test_required_services(self):
        cases = {
            b"seed.example.org": BARE_NAME_FLAGS,
            b"SEED.Example.org": 0x9,
            b"x9.seed.example.org": 0x9,
            b"xd.seed.example.org": 0xD,
            b"X49.Seed.Example.Org": 0x49,
            b"xc48.seed.example.org": 0xC48,
            b"x0.seed.example.org": NOT_FOUND,
            b"x09.seed.example.org": NOT_FOUND,
            b"x.seed.example.org": NOT_FOUND,
            b"xg.seed.example.org": NOT_FOUND,
            b"x8.seed.example.org": NOT_FOUND,
            b"x10000000000000009.seed.example.org": NOT_FOUND,
            b"www.seed.example.org": NOT_FOUND,
            b"a.x9.seed.example.org": NOT_FOUND,
            b"\xff.seed.example.org": NOT_FOUND,
            b"example.org": OUTSIDE,
            b"notseed.example.org": OUTSIDE,
            b"seed.example.org.evil": OUTSIDE,
            b"": OUTSIDE,
        }
        for name, expected in cases.items():
            with self.subTest(name=name):
                self.assertEqual(ZONE.required_services(name), expected)

    def test_served_flags(self):
        """The fourteen labels of sipa's seeder, x9 among them."""
        self.assertEqual(len(SERVED_FLAGS), 14)
        self.assertEqual(BARE_NAME_FLAGS, 0x9)
        for flags in SERVED_FLAGS:
            self.assertEqual(ZONE.required_services(b"x%x.seed.example.org" % flags), flags)


# -- the rate limit -------------------------------------------------------------


class ClientBucketsTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.buckets = ClientBuckets(self.clock, RateLimit(rate=2.0, burst=5))

    def allowed(self, client, queries):
        return sum(self.buckets.allow(client) for _ in range(queries))

    def test_burst_then_limited(self):
        self.assertEqual(self.allowed("192.0.2.1", 8), 5)

    def test_refills_at_the_rate(self):
        self.allowed("192.0.2.1", 5)
        self.clock.advance(0.5)
        self.assertEqual(self.allowed("192.0.2.1", 3), 1)
        self.clock.advance(1.0)
        self.assertEqual(self.allowed("192.0.2.1", 3), 2)

    def test_never_more_than_the_burst(self):
        self.allowed("192.0.2.1", 5)
        self.clock.advance(3600)
        self.assertEqual(self.allowed("192.0.2.1", 10), 5)

    def test_clients_apart(self):
        self.assertEqual(self.allowed("192.0.2.1", 10), 5)
        self.assertEqual(self.allowed("192.0.2.2", 10), 5)

    def test_bad_limits(self):
        for bad in ({"rate": 0}, {"burst": 0}, {"rate": -1.0}):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError):
                    RateLimit(**bad)

    def test_refilled_clients_forgotten_at_the_bound(self):
        buckets = ClientBuckets(self.clock, RateLimit(rate=1.0, burst=2), max_clients=4)
        for n in range(4):
            buckets.allow(f"192.0.2.{n}")
        self.clock.advance(2)
        buckets.allow("192.0.2.9")
        self.assertEqual(len(buckets), 1)

    def test_busy_clients_bounded(self):
        """Past the bound with every bucket in use, the oldest half goes."""
        buckets = ClientBuckets(self.clock, RateLimit(rate=1.0, burst=2), max_clients=4)
        for n in range(20):
            buckets.allow(f"192.0.2.{n}")
            self.assertLessEqual(len(buckets), 4)
        # The newest client is remembered: its bucket is not full again.
        self.assertTrue(buckets.allow("192.0.2.19"))
        self.assertFalse(buckets.allow("192.0.2.19"))


# -- the responder ---------------------------------------------------------------


class ResponderAddressTests(SynchronousTestCase):
    """A and AAAA answers, their size and the truncation flag."""

    def setUp(self):
        self.responder, self.sample, self.clock = responder(network_nodes())

    def ask(self, *args, stream=False, **kwargs):
        return decode(self.responder.respond(query(*args, **kwargs), stream))

    def test_edns_answer(self):
        answer = self.ask(b"x9.seed.example.org", edns=1232)
        self.assertEqual((answer.rCode, answer.auth, answer.trunc, answer.answer),
                         (dns.OK, 1, 0, 1))
        self.assertEqual(len(answer.answers), MAX_RECORDS)
        self.assertEqual({record.ttl for record in answer.answers}, {ZONE.ttl})
        self.assertEqual({record.type for record in answer.answers}, {dns.A})
        self.assertEqual(answer.authority, [])
        (opt,) = answer.additional
        self.assertEqual((opt.type, opt.cls), (dns.OPT, EDNS_SIZE))

    def test_udp_answer_truncated(self):
        data = self.responder.respond(query(b"x9.seed.example.org"))
        answer = decode(data)
        self.assertLessEqual(len(data), 512)
        self.assertEqual(answer.trunc, 1)
        self.assertEqual(len(answer.answers), 29)
        self.assertEqual(answer.additional, [])

    def test_tcp_answer_whole(self):
        answer = self.ask(b"x9.seed.example.org", dns.AAAA, stream=True)
        self.assertEqual((answer.trunc, len(answer.answers)), (0, MAX_RECORDS))

    def test_every_size_filled_and_kept(self):
        """At every EDNS0 size, the answer fits, and it is truncated only
        when one more record would not have fitted."""
        long_zone = SeedZone("a" * 60 + "." + "b" * 60 + ".example.org", "ns.example.org",
                             "h.example.org")
        long_responder, _, _ = responder(network_nodes(), zone=long_zone)
        for qtype in (dns.A, dns.AAAA):
            for name, respond in ((b"x9." + HOST.encode(), self.responder.respond),
                                  (b"x448." + long_zone.host.encode(), long_responder.respond)):
                for offered in range(400, 1300, 7):
                    with self.subTest(qtype=qtype, name=name, offered=offered):
                        data = respond(query(name, qtype, edns=offered))
                        limit = max(512, min(offered, EDNS_SIZE))
                        self.assertLessEqual(len(data), limit)
                        answer = decode(data)
                        if answer.trunc:
                            self.assertGreater(len(data) + RECORD_SIZES[qtype], limit)
                        else:
                            self.assertGreater(len(answer.answers), 0)

    def test_aaaa_are_ipv6(self):
        answer = self.ask(b"x9.seed.example.org", dns.AAAA, edns=1232)
        self.assertEqual(len(answer.answers), MAX_RECORDS)
        self.assertTrue(all(text.startswith("3fff:") for text in addresses(answer)))

    def test_few_nodes_not_truncated(self):
        few, _, _ = responder([node(n) for n in range(3)])
        answer = decode(few.respond(query(b"x9.seed.example.org")))
        self.assertEqual((answer.trunc, len(answer.answers)), (0, 3))

    def test_x_labels_filter(self):
        """x49 serves only nodes with 0x49; the bare name serves x9's nodes."""
        by_address = {str(candidate.address.host_text): candidate.services
                      for candidate in network_nodes()}
        for name, required in ((b"x49.seed.example.org", 0x49), (b"seed.example.org", 0x9),
                               (b"x9.seed.example.org", 0x9), (b"x1.seed.example.org", 0x1)):
            served = set()
            for _ in range(ROTATION + 5):
                served.update(addresses(self.ask(name, edns=1232)))
            with self.subTest(name=name):
                self.assertTrue(served)
                self.assertTrue(all(by_address[a] & required == required for a in served))
        self.assertIn(0x1, {by_address[a] for a in addresses(self.ask(b"x1.seed.example.org"))})

    def test_one_per_group(self):
        for qtype, prefix in ((dns.A, 2), (dns.AAAA, 4)):
            answer = self.ask(b"x9.seed.example.org", qtype, edns=1232)
            groups = [record.payload.address[:prefix] for record in answer.answers]
            self.assertEqual(len(groups), len(set(groups)))

    def test_id_flag_and_case_echoed(self):
        """The ID, RD and the question's case (DNS 0x20) are the query's."""
        self.ask(b"x9.seed.example.org", edns=1232)
        for name, rd in ((b"X9.SeEd.eXample.ORG", 1), (b"x9.SEED.example.org", 0)):
            answer = self.ask(name, id=0xBEEF, rd=rd, edns=1232)
            self.assertEqual((answer.id, answer.recDes), (0xBEEF, rd))
            self.assertEqual(answer.queries[0].name.name, name)
            self.assertEqual({record.name.name for record in answer.answers}, {name})

    def test_drawn_ahead_then_in_turn(self):
        """The first ROTATION queries each draw; then the draws come round
        in turn, until the sample is refreshed."""
        first = [tuple(addresses(self.ask(b"x9.seed.example.org", edns=1232)))
                 for _ in range(ROTATION)]
        self.assertEqual(len(set(first)), ROTATION)
        again = [tuple(addresses(self.ask(b"x9.seed.example.org", edns=1232)))
                 for _ in range(ROTATION)]
        self.assertEqual(set(again), set(first))
        self.sample.refresh([node(1, 7)])
        self.assertEqual(addresses(self.ask(b"x9.seed.example.org", edns=1232)), ["127.1.0.7"])
        # A second refresh at the same clock time counts as much.
        self.sample.refresh([node(2, 8)])
        self.assertEqual(addresses(self.ask(b"x9.seed.example.org", edns=1232)), ["127.2.0.8"])

    def test_answers_kept_are_bounded(self):
        """A client trying every EDNS0 size does not grow what is kept."""
        for offered in range(512, 1232, 16):
            self.responder.respond(query(b"x9.seed.example.org", dns.AAAA, edns=offered))
        self.assertLessEqual(self.responder._drawn._kept, MAX_KEPT)

    def test_no_nodes(self):
        """No node to serve: an empty answer with the SOA."""
        empty, _, _ = responder([node(1, services=0x1)])
        answer = decode(empty.respond(query(b"x9.seed.example.org")))
        self.assertEqual((answer.rCode, answer.auth, answer.answers), (dns.OK, 1, []))
        self.assertEqual([record.type for record in answer.authority], [dns.SOA])


class ResponderZoneTests(SynchronousTestCase):
    """NS, SOA, empty answers, NXDOMAIN, REFUSED."""

    def setUp(self):
        self.responder, _, self.clock = responder(network_nodes(20))

    def ask(self, *args, **kwargs):
        return decode(self.responder.respond(query(*args, **kwargs)))

    def assertSoa(self, record):
        self.assertEqual((record.type, record.name.name, record.ttl),
                         (dns.SOA, b"seed.example.org", ZONE.ns_ttl))
        soa = record.payload
        self.assertEqual(
            (soa.mname.name, soa.rname.name, soa.serial, soa.refresh, soa.retry, soa.expire,
             soa.minimum),
            (b"ns.example.org", b"hostmaster.example.org", T0, SOA_REFRESH, SOA_RETRY,
             SOA_EXPIRE, ZONE.ttl))

    def test_ns(self):
        answer = self.ask(b"seed.example.org", dns.NS)
        (record,) = answer.answers
        self.assertEqual((answer.rCode, answer.auth), (dns.OK, 1))
        self.assertEqual((record.type, record.ttl, record.payload.name.name),
                         (dns.NS, ZONE.ns_ttl, b"ns.example.org"))

    def test_soa(self):
        self.clock.advance(10)
        answer = self.ask(b"Seed.Example.Org", dns.SOA)
        (record,) = answer.answers
        self.assertEqual(record.payload.serial, T0 + 10)
        self.clock.advance(-10)
        self.assertSoa(self.ask(b"seed.example.org", dns.SOA).answers[0])

    def test_empty_answers_carry_the_soa(self):
        for name, qtype in ((b"seed.example.org", dns.TXT), (b"seed.example.org", dns.MX),
                            (b"seed.example.org", dns.ALL_RECORDS),
                            (b"x9.seed.example.org", dns.NS), (b"x9.seed.example.org", dns.SOA),
                            (b"xd.seed.example.org", dns.CNAME)):
            with self.subTest(name=name, qtype=qtype):
                answer = self.ask(name, qtype)
                self.assertEqual((answer.rCode, answer.auth, answer.answers), (dns.OK, 1, []))
                (record,) = answer.authority
                self.assertSoa(record)

    def test_nxdomain(self):
        for name in (b"x0.seed.example.org", b"x09.seed.example.org", b"xq.seed.example.org",
                     b"x8.seed.example.org", b"www.seed.example.org", b"a.x9.seed.example.org"):
            with self.subTest(name=name):
                answer = self.ask(name)
                self.assertEqual((answer.rCode, answer.auth, answer.answers),
                                 (dns.ENAME, 1, []))
                (record,) = answer.authority
                self.assertSoa(record)

    def test_refused(self):
        for name, cls in ((b"example.com", dns.IN), (b"notseed.example.org", dns.IN),
                          (b"version.bind", dns.CH), (b"x9.seed.example.org", dns.CH)):
            with self.subTest(name=name):
                answer = self.ask(name, dns.A, cls=cls)
                self.assertEqual((answer.rCode, answer.auth, answer.answers, answer.authority),
                                 (dns.EREFUSED, 0, [], []))

    def test_bad_queries_answered_with_their_error(self):
        two = [dns.Query(b"x9.seed.example.org"), dns.Query(b"xd.seed.example.org")]
        for data, rcode in ((query(b"x9.seed.example.org", questions=two), dns.EFORMAT),
                            (query(b"x9.seed.example.org", op=dns.OP_STATUS), dns.ENOTIMP),
                            (query(b"x9.seed.example.org", edns=1232, options=2), dns.EFORMAT)):
            with self.subTest(rcode=rcode):
                answer = decode(self.responder.respond(data))
                self.assertEqual((answer.rCode, answer.answers), (rcode, []))

    def test_edns_version_unknown(self):
        """EDNS version 1: BADVERS (16), whose upper bits are in the OPT TTL."""
        answer = self.ask(b"x9.seed.example.org", edns=1232, edns_version=1)
        (opt,) = answer.additional
        self.assertEqual((answer.rCode, opt.ttl >> 24, answer.answers), (0, 1, []))

    def test_not_answered(self):
        """Bytes that do not decode, queries without a question (or with it
        cut short) and responses get nothing back."""
        response = dns.Message(id=5, answer=1)
        response.queries = [dns.Query(b"x9.seed.example.org")]
        valid = query(b"x9.seed.example.org")
        for data in (b"", b"\x00" * 5, valid[:20], b"\xff" * 40, response.toStr(),
                     valid[:12] + b"\xc0\x0c" + valid[-4:],
                     query(b"x9.seed.example.org", questions=[])):
            with self.subTest(data=data):
                self.assertIsNone(self.responder.respond(data))

    def test_long_names_over_udp(self):
        """An SOA of 250-byte names does not fit 512 bytes: the question
        alone comes back, truncated; TCP has it whole."""
        zone = SeedZone(HOST, ".".join(["a" * 62] * 4)[:250], ".".join(["b" * 62] * 4)[:250])
        long_responder, _, _ = responder(zone=zone)
        answer = decode(long_responder.respond(query(b"seed.example.org", dns.SOA)))
        self.assertEqual((answer.trunc, answer.answers, answer.authority), (1, [], []))
        answer = decode(long_responder.respond(query(b"seed.example.org", dns.SOA), True))
        self.assertEqual((answer.trunc, len(answer.answers)), (0, 1))


class UnsentTests(SynchronousTestCase):
    def test_refused_send_counted(self):
        """A response the kernel refuses (a forged source port 0: EINVAL) is
        counted as unsent, not raised into the reactor."""

        class Refusing:
            def write(self, data, address):
                raise OSError(22, "Invalid argument")

        service = DNSService(MemoryReactorClock(), ZONE, responder(network_nodes(5))[1])
        server = seed_dns._DatagramServer(service._server)
        server.transport = Refusing()
        server.datagramReceived(query(b"x9.seed.example.org"), ("127.0.0.1", 0))
        self.assertEqual((service.counters.received, service.counters.answered,
                          service.counters.unsent), (1, 0, 1))


# -- the server on 127.0.0.1 -------------------------------------------------------


class _Collector(protocol.DatagramProtocol):
    """A raw UDP client: sends bytes, keeps what comes back."""

    noisy = False

    def __init__(self):
        self.received = []

    def datagramReceived(self, data, address):
        self.received.append(decode(data))


class _StreamCollector(Int16StringReceiver):
    """A raw TCP client: sends queries, keeps what comes back, and whether
    the connection ended."""

    def __init__(self):
        self.received = []
        self.lost = False

    def stringReceived(self, data):
        self.received.append(decode(data))

    def connectionLost(self, reason):
        self.lost = True


class ServerMixin:
    """A DNSService on 127.0.0.1 serving network_nodes(), and a resolver."""

    candidates = network_nodes()
    service_options = {}

    def setUp(self):
        self.sample = ServedSample(reactor, random=random.Random(1))
        self.sample.refresh(self.candidates)
        self.service = DNSService(reactor, ZONE, self.sample, port=0, interface="127.0.0.1",
                                  **self.service_options)
        self.service.startService()
        self.addCleanup(self.stop)
        self.port = self.service.ports[0].getHost().port
        self.resolver = client.Resolver(servers=[("127.0.0.1", self.port)], reactor=reactor)

    @defer.inlineCallbacks
    def stop(self):
        if self.service.running:
            yield self.service.stopService()
        yield from wait_until(lambda: not self.resolver.connections,
                              "the resolver's TCP connection to close")

    def collector(self):
        """A raw UDP client on 127.0.0.1, closed after the test."""
        collector = _Collector()
        port = reactor.listenUDP(0, collector, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return collector

    def send(self, collector, data):
        collector.transport.write(data, ("127.0.0.1", self.port))

    @defer.inlineCallbacks
    def connect(self):
        """A _StreamCollector connected to the server, closed after the test."""
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        stream = yield endpoints.connectProtocol(endpoint, _StreamCollector())
        self.addCleanup(lambda: stream.lost or stream.transport.abortConnection())
        return stream


class ServerTests(ServerMixin, TestCase):
    @defer.inlineCallbacks
    def test_port_taken(self):
        """A port whose TCP side is taken: CannotListenError, and the UDP
        side it had opened is closed again (on a later reactor turn)."""
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1]
        service = DNSService(reactor, ZONE, self.sample, port=number, interface="127.0.0.1")
        self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)

        def udp_free():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", number))
                except OSError:
                    return False
                return True

        yield from wait_until(udp_free, "the UDP port to close")

    def test_one_port_number_for_udp_and_tcp(self):
        udp, tcp = self.service.ports
        self.assertEqual(udp.getHost().port, tcp.getHost().port)
        self.assertEqual((udp.getHost().type, tcp.getHost().type), ("UDP", "TCP"))

    @defer.inlineCallbacks
    def test_udp_truncated_and_tcp_whole(self):
        question = [dns.Query("x9.seed.example.org", dns.A)]
        udp = yield self.resolver.queryUDP(question, timeout=(5,))
        self.assertEqual((udp.trunc, udp.auth, len(udp.answers)), (1, 1, 29))
        tcp = yield self.resolver.queryTCP(question)
        self.assertEqual((tcp.trunc, len(tcp.answers)), (0, MAX_RECORDS))
        # The resolver does the same by itself: TC, then TCP.
        answers, authority, _ = yield self.resolver.lookupIPV6Address("x9.seed.example.org")
        self.assertEqual((len(answers), authority), (MAX_RECORDS, []))

    @defer.inlineCallbacks
    def test_x_labels_and_bare_name(self):
        services = {candidate.address.host_text: candidate.services
                    for candidate in self.candidates}
        for name, required in (("x49.seed.example.org", 0x49), ("seed.example.org", 0x9),
                               ("xd.seed.example.org", 0xD)):
            answers, _, _ = yield self.resolver.lookupAddress(name)
            served = [record.payload.dottedQuad() for record in answers]
            self.assertTrue(served)
            for address in served:
                self.assertEqual(services[address] & required, required, (name, address))

    @defer.inlineCallbacks
    def test_diversity(self):
        answers, _, _ = yield self.resolver.lookupAddress("x9.seed.example.org")
        groups = [record.payload.address[:2] for record in answers]
        self.assertEqual(len(groups), MAX_RECORDS)
        self.assertEqual(len(set(groups)), len(groups))

    @defer.inlineCallbacks
    def test_ns_and_soa(self):
        answers, _, _ = yield self.resolver.lookupNameservers("seed.example.org")
        self.assertEqual([record.payload.name.name for record in answers], [b"ns.example.org"])
        answers, _, _ = yield self.resolver.lookupAuthority("seed.example.org")
        self.assertEqual(answers[0].payload.rname.name, b"hostmaster.example.org")

    @defer.inlineCallbacks
    def test_soa_on_empty(self):
        answers, authority, _ = yield self.resolver.lookupText("seed.example.org")
        self.assertEqual(answers, [])
        self.assertEqual([record.type for record in authority], [dns.SOA])

    @defer.inlineCallbacks
    def test_nxdomain_with_soa(self):
        error = yield self.assertFailure(
            self.resolver.lookupAddress("x7.seed.example.org"), dns_error.DNSNameError)
        (message,) = error.args
        self.assertEqual([record.type for record in message.authority], [dns.SOA])

    @defer.inlineCallbacks
    def test_refused_outside(self):
        yield self.assertFailure(self.resolver.lookupAddress("example.com"),
                                 dns_error.DNSQueryRefusedError)

    @defer.inlineCallbacks
    def test_malformed_dropped_then_answered(self):
        collector = self.collector()
        for garbage in (b"\x00", b"\xff" * 300, query(b"x9.seed.example.org")[:15]):
            self.send(collector, garbage)
        self.send(collector, query(b"x9.seed.example.org", id=77))
        yield from wait_until(lambda: collector.received, "the answer after the garbage")
        self.assertEqual([message.id for message in collector.received], [77])
        self.assertEqual(self.service.counters.malformed, 3)
        self.assertEqual(self.service.counters.answered, 1)

    @defer.inlineCallbacks
    def test_no_log_per_query(self):
        """Nothing is logged per query, answered, refused or dropped, over
        UDP or TCP.  (The clients are opened first: Twisted logs a line
        when a UDP port starts, the client's included.)"""
        collector = self.collector()
        stream = yield self.connect()
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for n in range(20):
            self.send(collector, query(b"x9.seed.example.org", id=n))
        self.send(collector, query(b"www.example.com"))
        self.send(collector, b"\xff" * 40)
        stream.sendString(query(b"x9.seed.example.org"))
        yield from wait_until(lambda: len(collector.received) == 21 and stream.received,
                              "the answers")
        self.assertEqual(self.service.counters.malformed, 1)
        self.assertEqual(events, [])

    @defer.inlineCallbacks
    def test_stop_closes_everything(self):
        yield self.resolver.queryTCP([dns.Query("x9.seed.example.org", dns.A)])
        self.assertEqual(len(self.resolver.connections), 1)
        yield self.service.stopService()
        yield from wait_until(lambda: not self.resolver.connections,
                              "the TCP connection to close")
        self.assertEqual(self.service.ports, [])
        probe = socket.socket()
        self.addCleanup(probe.close)
        self.assertNotEqual(probe.connect_ex(("127.0.0.1", self.port)), 0)


class RateLimitServerTests(ServerMixin, TestCase):
    """The limit on a real socket, on a clock that moves only when told."""

    def setUp(self):
        self.clock = task.Clock()
        self.service_options = {"clock": self.clock, "rate": 1.0, "burst": 2}
        super().setUp()

    @defer.inlineCallbacks
    def test_over_the_limit_dropped(self):
        collector = self.collector()
        for n in range(3):
            self.send(collector, query(b"x9.seed.example.org", id=n))
        counters = self.service.counters
        yield from wait_until(lambda: counters.received == 3, "three queries")
        yield from wait_until(lambda: len(collector.received) == 2, "two answers")
        self.assertEqual((counters.answered, counters.limited), (2, 1))
        self.clock.advance(1)
        self.send(collector, query(b"x9.seed.example.org", id=9))
        yield from wait_until(lambda: len(collector.received) == 3, "the answer after a second")
        self.assertEqual([message.id for message in collector.received], [0, 1, 9])

    @defer.inlineCallbacks
    def test_tcp_under_the_same_limit(self):
        stream = yield self.connect()
        for n in range(3):
            stream.sendString(query(b"x9.seed.example.org", id=n))
        yield from wait_until(lambda: self.service.counters.received == 3, "three queries")
        yield from wait_until(lambda: len(stream.received) == 2, "two answers")
        self.assertEqual(self.service.counters.limited, 1)


class TcpBoundsTests(ServerMixin, TestCase):
    """TCP connections: idle ones closed, a bounded number, bounded queries."""

    def setUp(self):
        self.clock = task.Clock()
        self.service_options = {"clock": self.clock}
        super().setUp()

    def open_connections(self):
        return self.service._streams.connections

    @defer.inlineCallbacks
    def test_idle_connection_closed(self):
        yield self.resolver.queryTCP([dns.Query("x9.seed.example.org", dns.A)])
        self.clock.advance(seed_dns.TCP_IDLE_TIMEOUT - 1)
        self.assertEqual(len(self.open_connections()), 1)
        self.clock.advance(1)
        yield from wait_until(lambda: not self.resolver.connections, "the idle connection")

    @defer.inlineCallbacks
    def test_connections_bounded(self):
        self.patch(seed_dns, "MAX_TCP_CONNECTIONS", 2)
        streams = []
        for _ in range(3):
            stream = yield self.connect()
            streams.append(stream)
        yield from wait_until(lambda: streams[2].lost, "the third connection's end")
        self.assertEqual(len(self.open_connections()), 2)
        self.assertFalse(streams[0].lost or streams[1].lost)
        for stream in streams[:2]:
            stream.transport.loseConnection()
        yield from wait_until(lambda: not self.open_connections(), "the connections' end")

    @defer.inlineCallbacks
    def test_connections_bounded_per_client(self):
        """One address holds at most MAX_TCP_PER_CLIENT connections."""
        self.patch(seed_dns, "MAX_TCP_PER_CLIENT", 1)
        first = yield self.connect()
        second = yield self.connect()
        yield from wait_until(lambda: second.lost, "the second connection's end")
        self.assertFalse(first.lost)
        first.transport.loseConnection()
        yield from wait_until(lambda: not self.open_connections(), "the connection's end")
        third = yield self.connect()
        self.assertFalse(third.lost)
        third.transport.loseConnection()
        yield from wait_until(lambda: not self.open_connections(), "the connection's end")

    @defer.inlineCallbacks
    def test_junk_does_not_keep_a_connection_open(self):
        """Only an answered query resets the idle timeout: a client sending
        junk is closed when its timeout runs out all the same."""
        stream = yield self.connect()
        yield from wait_until(lambda: self.open_connections(), "the connection")
        self.clock.advance(seed_dns.TCP_IDLE_TIMEOUT - 1)
        stream.transport.write(b"\x00\x03abc")
        yield from wait_until(lambda: self.service.counters.malformed == 1, "the junk counted")
        self.clock.advance(1)
        yield from wait_until(lambda: stream.lost, "the connection's end")

    @defer.inlineCallbacks
    def test_oversized_query_closes(self):
        stream = yield self.connect()
        stream.transport.write(b"\x02\x01" + b"\x00" * 513)
        yield from wait_until(lambda: stream.lost, "the connection's end")
        self.assertEqual(self.service.counters.malformed, 1)


# -- dig ----------------------------------------------------------------------------


DIG = shutil.which("dig")


class DigTests(ServerMixin, TestCase):
    """The same server asked by BIND's dig, the tool operators use."""

    if DIG is None:
        skip = "dig is not installed (Debian: apt-get install dnsutils; .ci/run does it)"

    @defer.inlineCallbacks
    def dig(self, *args):
        """dig's full output for ``args``, asked of the server only."""
        out, err, code = yield utils.getProcessOutputAndValue(
            DIG, ["@127.0.0.1", "-p", str(self.port), "+norecurse", "+time=5", "+tries=1",
                  *args], reactor=reactor)
        self.assertEqual(code, 0, err)
        return out.decode()

    def header(self, output):
        """The status and flags of dig's ``->>HEADER<<-`` and ``flags`` lines."""
        status = output.split("status: ")[1].split(",")[0]
        flags = output.split(";; flags: ")[1].split(";")[0].split()
        return status, flags

    def records(self, output, qtype):
        return [line.split()[-1] for line in output.splitlines()
                if not line.startswith(";") and len(line.split()) == 5
                and line.split()[3] == qtype]

    @defer.inlineCallbacks
    def test_a(self):
        output = yield self.dig("x9.seed.example.org", "A")
        status, flags = self.header(output)
        self.assertEqual(status, "NOERROR")
        self.assertIn("aa", flags)
        answers = self.records(output, "A")
        self.assertEqual(len(answers), MAX_RECORDS)
        self.assertEqual(len({address.split(".")[1] for address in answers}), MAX_RECORDS)

    @defer.inlineCallbacks
    def test_truncated_without_edns_whole_over_tcp(self):
        output = yield self.dig("x9.seed.example.org", "A", "+noedns", "+ignore")
        self.assertIn("tc", self.header(output)[1])
        self.assertEqual(len(self.records(output, "A")), 29)
        output = yield self.dig("x9.seed.example.org", "AAAA", "+noedns", "+tcp")
        self.assertNotIn("tc", self.header(output)[1])
        self.assertEqual(len(self.records(output, "AAAA")), MAX_RECORDS)

    @defer.inlineCallbacks
    def test_x_label(self):
        services = {candidate.address.host_text: candidate.services
                    for candidate in self.candidates}
        output = yield self.dig("x49.seed.example.org", "A")
        answers = self.records(output, "A")
        self.assertTrue(answers)
        self.assertTrue(all(services[address] & 0x49 == 0x49 for address in answers))

    @defer.inlineCallbacks
    def test_ns_and_soa(self):
        output = yield self.dig("seed.example.org", "NS", "+short")
        self.assertEqual(output.split(), ["ns.example.org."])
        output = yield self.dig("seed.example.org", "SOA", "+short")
        self.assertEqual(output.split()[:2], ["ns.example.org.", "hostmaster.example.org."])

    @defer.inlineCallbacks
    def test_empty_nxdomain_refused(self):
        output = yield self.dig("seed.example.org", "TXT")
        self.assertEqual(self.header(output)[0], "NOERROR")
        self.assertIn("AUTHORITY SECTION", output)
        self.assertEqual(len(self.records(output, "TXT")), 0)
        output = yield self.dig("xz.seed.example.org", "A")
        self.assertEqual(self.header(output)[0], "NXDOMAIN")
        self.assertIn("SOA", output.split("AUTHORITY SECTION")[1])
        output = yield self.dig("example.com", "A")
        self.assertEqual(self.header(output)[0], "REFUSED")
