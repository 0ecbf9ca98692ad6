"""
The seeder's answer to one DNS query, from the bytes of the query to the
bytes of the response, with twisted.names' codec; no sockets here.

What is answered follows sipa's seeder and dnsseedrs (REFERENCE.md 2.1,
2.2), strictly:

- A and AAAA on the apex and the served ``x<hex>`` labels: a fresh draw
  from the ServedSample per query, at most MAX_RECORDS (Core keeps 32
  addresses per seed, ``nMaxIPs``), at most what fits the response.  Over
  UDP that is 512 bytes (about 29 A or 16 AAAA records), or the client's
  EDNS0 size up to EDNS_SIZE, where all 32 fit; the truncation flag says
  when the draw had more than fit, and TCP gives the whole draw.
- NS and SOA on the apex; every other type, and NS or SOA below the apex,
  an empty answer.  Empty answers and NXDOMAIN carry the SOA in the
  authority section.  Every answer from the zone is authoritative (AA).
- Unknown names under the zone: NXDOMAIN; names outside it: REFUSED.
- A query with no question or several, or several OPT records: FORMERR;
  an EDNS version other than 0: BADVERS; an opcode other than QUERY:
  NOTIMP; a class other than IN: REFUSED.
- Bytes that do not decode, and responses (a packet with QR set), are not
  answered at all (respond returns None).

The SOA's serial is the time of the answer (sipa's ``time(NULL)``).  Its
minimum, which bounds how long a resolver caches an empty answer (RFC 2308),
is the zone's TTL rather than sipa's week: a seed that starts with nothing
to serve must not be remembered as empty for days.
"""

from twisted.names import dns

from .zone import NOT_FOUND, OUTSIDE

#: Core takes at most 32 addresses from one seed (``nMaxIPs``).
MAX_RECORDS = 32
#: The UDP response size without EDNS0 (RFC 1035 4.2.1).
UDP_SIZE = 512
#: The largest UDP response sent to an EDNS0 client, whatever it offers: the
#: size DNS flag day 2020 settled on, which avoids IP fragmentation.
EDNS_SIZE = 1232
#: The size a TCP response may have (RFC 1035 4.2.2: a 16-bit length).
TCP_SIZE = 65535
#: The bytes of one A or AAAA record whose owner name is compressed to a
#: pointer to the question: pointer 2, type, class, TTL and length 10, data.
RECORD_SIZES = {dns.A: 16, dns.AAAA: 28}
#: The SOA's timers other than its minimum, sipa's seeder's (dns.cpp:390).
SOA_REFRESH = 604800
SOA_RETRY = 86400
SOA_EXPIRE = 2592000
#: The BADVERS response code (RFC 6891 9): its upper eight bits go in the
#: OPT record's TTL.
BADVERS = 16


class Responder:
    """
    Answers the queries for one SeedZone from one ServedSample.

    @param zone: the SeedZone.
    @param sample: the ServedSample A and AAAA answers are drawn from.
    @param clock: an IReactorTime, for the SOA's serial.
    """

    def __init__(self, zone, sample, clock):
        self._zone = zone
        self._sample = sample
        self._clock = clock

    def respond(self, data, stream=False):
        """
        The response to the query ``data`` (bytes), encoded; None when the
        bytes do not decode or are a response, which are never answered.
        ``stream`` is true for a query that came over TCP.
        """
        query = dns.Message()
        try:
            query.fromStr(data)
        except (EOFError, ValueError):
            return None
        if query.answer:
            return None
        # maxSize 0: twisted.names would cut the bytes at maxSize mid-record;
        # _encode leaves whole records out instead.
        response = dns.Message(
            id=query.id, answer=1, opCode=query.opCode, recDes=query.recDes, maxSize=0)
        if len(query.queries) == 1:
            response.queries = query.queries
        size = self._edns(query, response, TCP_SIZE if stream else UDP_SIZE)
        if size is None:
            size = UDP_SIZE
        elif query.opCode != dns.OP_QUERY:
            response.rCode = dns.ENOTIMP
        elif len(query.queries) != 1:
            response.rCode = dns.EFORMAT
        else:
            self._answer(query.queries[0], response)
        return _encode(response, size)

    def _edns(self, query, response, size):
        """
        Answer EDNS0 in kind (RFC 6891): an OPT record in the response when
        the query had one, and the client's UDP size if larger than ``size``.
        Returns the response's size limit, or None when the OPT record itself
        is the error (several of them: FORMERR; a version other than 0:
        BADVERS), which the response then says.
        """
        options = [record for record in query.additional if record.type == dns.OPT]
        if not options:
            return size
        ttl = 0
        if len(options) > 1:
            response.rCode, size = dns.EFORMAT, None
        elif options[0].ttl >> 16 & 0xFF:
            ttl, size = BADVERS >> 4 << 24, None
        elif size == UDP_SIZE:
            size = max(UDP_SIZE, min(options[0].cls, EDNS_SIZE))
        response.additional = [dns.RRHeader(b"", dns.OPT, EDNS_SIZE, ttl)]
        return size

    def _answer(self, question, response):
        zone = self._zone
        if question.cls != dns.IN:
            response.rCode = dns.EREFUSED
            return
        required = zone.required_services(question.name.name)
        if required == OUTSIDE:
            response.rCode = dns.EREFUSED
            return
        response.auth = 1
        if required == NOT_FOUND:
            response.rCode = dns.ENAME
        elif question.type in RECORD_SIZES:
            ipv6 = question.type == dns.AAAA
            record = dns.Record_AAAA if ipv6 else dns.Record_A
            name, ttl = question.name.name, zone.ttl
            response.answers = [
                dns.RRHeader(name, question.type, dns.IN, ttl,
                             record(address.host_text, ttl), auth=True)
                for address in self._sample.pick(ipv6, required, MAX_RECORDS)
            ]
        elif question.type == dns.NS and zone.is_apex(question.name.name):
            response.answers = [self._ns()]
        elif question.type == dns.SOA and zone.is_apex(question.name.name):
            response.answers = [self._soa()]
        if not response.answers:
            response.authority = [self._soa()]

    def _ns(self):
        zone = self._zone
        return dns.RRHeader(zone.host, dns.NS, dns.IN, zone.ns_ttl,
                            dns.Record_NS(zone.ns, zone.ns_ttl), auth=True)

    def _soa(self):
        zone = self._zone
        soa = dns.Record_SOA(
            mname=zone.ns, rname=zone.mbox,
            serial=int(self._clock.seconds()) & 0xFFFFFFFF,
            refresh=SOA_REFRESH, retry=SOA_RETRY, expire=SOA_EXPIRE,
            minimum=zone.ttl, ttl=zone.ns_ttl)
        return dns.RRHeader(zone.host, dns.SOA, dns.IN, zone.ns_ttl, soa, auth=True)


def _encode(response, size):
    """
    The response's bytes, at most ``size`` of them: A and AAAA records that
    do not fit are left out, then the authority section, and the truncation
    flag is set (the header and the one question always fit).
    """
    data = response.toStr()
    while len(data) > size:
        response.trunc = 1
        if response.answers and response.answers[0].type in RECORD_SIZES:
            record = RECORD_SIZES[response.answers[0].type]
            over = -(-(len(data) - size) // record)
            del response.answers[len(response.answers) - over:]
        elif response.answers:
            response.answers = []
        else:
            response.authority = []
        data = response.toStr()
    return data
