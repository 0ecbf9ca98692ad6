"""
The seeder's answer to one DNS query, from the bytes of the query to the
bytes of the response, with twisted.names' codec; no sockets here.

What is answered follows sipa's seeder and dnsseedrs (REFERENCE.md 2.1,
2.2), strictly:

- A and AAAA on the apex and the served ``x<hex>`` labels: a draw from
  the ServedSample (bitpeer.seed.drawn: drawn ahead, served in turn) of at
  most 32 nodes (Core keeps 32 addresses per seed, ``nMaxIPs``), at most
  what fits the response.  Over UDP that is 512 bytes (about 29 A or 16
  AAAA records), or the client's EDNS0 size up to EDNS_SIZE, where all 32
  fit; the truncation flag says when the draw had more than fit, and TCP
  gives the whole draw.
- NS and SOA on the apex; every other type, and NS or SOA below the apex,
  an empty answer.  Empty answers and NXDOMAIN carry the SOA in the
  authority section.  Every answer from the zone is authoritative (AA).
- Unknown names under the zone: NXDOMAIN; names outside it: REFUSED.
- A query with several questions, or several OPT records: FORMERR;
  an EDNS version other than 0: BADVERS; an opcode other than QUERY:
  NOTIMP; a class other than IN: REFUSED.
- Bytes that do not decode, a query without its question (twisted.names
  decodes a packet cut short as far as it goes) and responses (QR set) are
  not answered at all (respond returns None).

The SOA's serial is the time of the answer (sipa's ``time(NULL)``).  Its
minimum, which bounds how long a resolver caches an empty answer (RFC 2308),
is the zone's TTL rather than sipa's week: a seed that starts with nothing
to serve must not be remembered as empty for days.
"""

from twisted.names import dns

from .drawn import RECORD_SIZES, DrawnAnswers
from .zone import NOT_FOUND, OUTSIDE

#: The UDP response size without EDNS0 (RFC 1035 4.2.1).
UDP_SIZE = 512
#: The largest UDP response sent to an EDNS0 client, whatever it offers: the
#: size DNS flag day 2020 settled on, which avoids IP fragmentation.
EDNS_SIZE = 1232
#: The size a TCP response may have (RFC 1035 4.2.2: a 16-bit length).
TCP_SIZE = 65535
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
        self._drawn = DrawnAnswers(sample, zone.ttl)

    def respond(self, data, stream=False):
        """
        The response to the query ``data`` (bytes), encoded; None when the
        bytes do not decode, hold no question or are a response, which are
        never answered.
        ``stream`` is true for a query that came over TCP.
        """
        query = dns.Message()
        try:
            query.fromStr(data)
        except (EOFError, ValueError):
            return None
        if query.answer or not query.queries:
            return None
        # maxSize 0: twisted.names would cut the bytes at maxSize mid-record;
        # _encode leaves whole records out instead.
        response = dns.Message(
            id=query.id, answer=1, opCode=query.opCode, recDes=query.recDes, maxSize=0)
        response.queries = query.queries
        size = self._edns(query, response, TCP_SIZE if stream else UDP_SIZE)
        if size is None:
            size = UDP_SIZE
        elif query.opCode != dns.OP_QUERY:
            response.rCode = dns.ENOTIMP
        elif len(query.queries) != 1:
            response.rCode = dns.EFORMAT
        else:
            drawn = self._answer(query.queries[0], response, data, size)
            if drawn is not None:
                return drawn
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

    def _answer(self, question, response, data, size):
        """
        Answer ``question``: the encoded response when it is a draw of
        nodes, None when ``response`` holds the answer.
        """
        zone = self._zone
        if question.cls != dns.IN:
            response.rCode = dns.EREFUSED
            return None
        required = zone.required_services(question.name.name)
        if required == OUTSIDE:
            response.rCode = dns.EREFUSED
            return None
        response.auth = 1
        if required == NOT_FOUND:
            response.rCode = dns.ENAME
        elif question.type in RECORD_SIZES:
            drawn = self._drawn.response(data, response, required, size)
            if drawn is not None:
                return drawn
        elif question.type == dns.NS and zone.is_apex(question.name.name):
            response.answers = [self._ns()]
        elif question.type == dns.SOA and zone.is_apex(question.name.name):
            response.answers = [self._soa()]
        if not response.answers:
            response.authority = [self._soa()]
        return None

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
    The response's bytes, or, when they pass ``size`` (an NS or SOA record
    of very long names over UDP), its header and question alone with the
    truncation flag set, for the client to ask again over TCP.
    """
    data = response.toStr()
    if len(data) > size:
        response.trunc = 1
        response.answers, response.authority = [], []
        data = response.toStr()
    return data
