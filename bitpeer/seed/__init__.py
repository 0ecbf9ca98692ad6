"""
The DNS seeder: a monitor that keeps re-testing every known node and scores
its reliability, and a DNS server that answers with the good ones, as sipa's
bitcoin-seeder and dnsseedrs do (REFERENCE.md section 2).

The DNS side, one idea a module:

- ``sample.py``: ServedSample, the good nodes answers are drawn from
  (Candidate), a random draw with one node per network group;
- ``zone.py``: SeedZone, the zone's names and what each ``x<hex>`` label
  asks for;
- ``answers.py``: Responder, one query's bytes to its response's bytes
  (twisted.names' codec), no sockets;
- ``ratelimit.py``: ClientBuckets, a token bucket per client against
  amplification;
- ``dns.py``: DNSService, the UDP and TCP listeners, and DNSCounters.
"""
