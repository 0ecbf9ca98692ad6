"""
A and AAAA answers drawn ahead, encoded, and served in turn.

Building an answer of 32 records with twisted.names costs about 120 us on
this machine (the record objects, then their encoding), eight times the
query's decoding: most of a query's cost, for bytes that differ only by
which nodes were drawn.  So, as sipa's seeder keeps a cache per service
mask, the answers are kept encoded: per question (name, type, with EDNS0 or
without) and per number of records that fit, up to ROTATION of them, each a
draw of its own.  The first queries each draw a new one; once there are
ROTATION, the queries take them in turn.  A refresh of the sample drops them
all, so what is served is never older than the sample.

A kept answer becomes a response by taking the query's ID, its RD flag and
its question's bytes: what any response copies from its query.  Keeping the
client's question bytes keeps the case it chose for the name, which
resolvers that randomise it (DNS 0x20) check; the records' names point at
the question, so they follow it.
"""

from twisted.names import dns

#: Core takes at most 32 addresses from one seed (``nMaxIPs``).
MAX_RECORDS = 32
#: Answers kept per question and size, served in turn.
ROTATION = 32
#: Questions and sizes whose answers are kept: the served names, two types,
#: with EDNS0 or not, make sixty questions, and most clients ask at one or two
#: sizes; past it (a client trying every EDNS0 size), all are dropped.
MAX_KEPT = 64
#: The bytes of one A or AAAA record whose owner name is compressed to a
#: pointer to the question: pointer 2, type, class, TTL and length 10, data.
RECORD_SIZES = {dns.A: 16, dns.AAAA: 28}
#: The header's byte holding the RD flag (its lowest bit), RFC 1035 4.1.1.
_FLAGS = 2
_HEADER = dns.Message.headerSize


class _Question:
    """One question's response without its records, and its answers."""

    def __init__(self, response):
        asked = response.queries[0]
        name = asked.name.name.lower()
        self.type = asked.type
        self.message = dns.Message(
            answer=1, auth=1, opCode=dns.OP_QUERY, maxSize=0)
        self.message.queries = [dns.Query(name, asked.type, dns.IN)]
        self.message.additional = response.additional
        self.base = len(self.message.toStr())
        question = dns.Message(maxSize=0)
        question.queries = self.message.queries
        self.question_end = len(question.toStr())
        self.by_count = {}


class DrawnAnswers:
    """
    The A and AAAA answers of one ServedSample, encoded ahead.

    @param sample: the ServedSample.
    @param ttl: the records' TTL.
    """

    def __init__(self, sample, ttl):
        self._sample = sample
        self._ttl = ttl
        self._generation = None
        self._questions = {}
        self._kept = 0
        self._turn = 0

    def response(self, data, response, required, size):
        """
        The encoded response to the query ``data``, whose ``response`` (a
        dns.Message) has its question and EDNS0 record: nodes with every bit
        of ``required``, in at most ``size`` bytes, the truncation flag set
        when the draw had more than fit.  None when no node matches.
        """
        if self._sample.generation != self._generation:
            self._generation = self._sample.generation
            self._questions.clear()
            self._kept = 0
        asked = response.queries[0]
        key = (asked.name.name.lower(), asked.type, bool(response.additional))
        question = self._questions.get(key)
        if question is None:
            question = self._questions[key] = _Question(response)
        count = min(MAX_RECORDS, (size - question.base) // RECORD_SIZES[question.type])
        answers = question.by_count.get(count)
        if answers is None:
            if self._kept >= MAX_KEPT:
                for kept in self._questions.values():
                    kept.by_count.clear()
                self._kept = 0
            answers = question.by_count[count] = []
            self._kept += 1
        if len(answers) < ROTATION:
            encoded = self._draw(question, required, count)
            if encoded is None:
                return None
            answers.append(encoded)
        else:
            encoded = answers[self._turn % ROTATION]
            self._turn += 1
        end = question.question_end
        asked_bytes = data[_HEADER:end]
        if asked_bytes.lower() != encoded[_HEADER:end]:
            # The name came in an unusual form (a compression pointer):
            # answer with it as it is kept.
            asked_bytes = encoded[_HEADER:end]
        flags = encoded[_FLAGS] | data[_FLAGS] & 1
        return b"".join((data[:2], bytes((flags,)), encoded[3:_HEADER], asked_bytes,
                         encoded[end:]))

    def _draw(self, question, required, count):
        """A new draw for ``question`` of at most ``count`` records, encoded."""
        ipv6 = question.type == dns.AAAA
        picked = self._sample.pick(ipv6, required, MAX_RECORDS)
        if not picked:
            return None
        record, ttl = (dns.Record_AAAA if ipv6 else dns.Record_A), self._ttl
        message = question.message
        name = message.queries[0].name.name
        message.answers = [
            dns.RRHeader(name, question.type, dns.IN, ttl, record(address.host_text, ttl),
                         auth=True)
            for address in picked[:count]
        ]
        message.trunc = int(len(picked) > count)
        return message.toStr()
