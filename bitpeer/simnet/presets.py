"""
Named simulated networks: a preset is every SimNet argument that gives a
network its shape, so that anyone can rerun the same one by name
(``twistd -n bitpeer-simnet --preset mainnet``, ``bitpeer-crawl
--simnet-preset mainnet``, ``bench/crawl.py --preset mainnet``).  Options
given explicitly override a preset's values; the seed is never part of it.

``mainnet``: the clearnet as a crawler meets it.  Each number and where it
comes from (REFERENCE.md and PROTOCOL.md are the project's notes with their
sources; "assumption" where no measurement was found):

- ``nodes`` 8,000 reachable clearnet nodes: the README's mainnet estimate
  and issue 15 (bitnodes' leaderboard ranked about 13,000 IPv4 and IPv6
  nodes in 2024-25, REFERENCE.md section 3, a count over days rather than
  one crawl).
- ``dead`` 50,000 gossiped clearnet addresses that lead nowhere: issue 15's
  "~52,000 dead addresses" (the README: some 60,000 gossiped clearnet
  addresses, 8,000 of them reachable).
- ``blackholed`` 0.8 of them time out, the rest are refused: assumption.  A
  gossiped address is mostly a home node gone offline or behind NAT or a
  firewall, which drops the SYN (no answer at all); a host that is up
  without bitcoind answers RST.  bitnodes' maintainer notes that a node
  with no free slot looks the same as a firewall to a crawler
  (ayeowch/bitnodes#11).  Issue 15 asks for "most blackholed".
- ``stale`` 8,000 addresses gossiped with timestamps 2-10 days old (the
  crawler's ``--max-age`` of a day drops them): assumption; Core keeps and
  gossips addresses up to 30 days old (ADDRMAN_HORIZON, PROTOCOL.md 4.2).
- ``exotic`` 400 Tor v3, I2P and CJDNS addresses in addrv2 answers, never
  dialled without proxies: the simnet's usual nodes/20, an assumption.
- ``book_size`` 4,348: every answer is Core's largest, min(1000, 23% of
  the book) = 1000 entries (MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND,
  PROTOCOL.md 4.1); real books hold tens of thousands of addresses.
- ``latency``: round trips log-normal with median 80 ms and p99 600 ms
  (issue 15's figures; bitnodes' latency index scores from "<= 300 ms" to
  "> 1200 ms", REFERENCE.md section 3, so hundreds of ms are ordinary),
  applied to the handshake and to the getaddr answer (latency.py).  The TCP
  connect completes at once on loopback.
- ``slow_share`` 0.02 of the nodes take 2-8 s instead (their version and
  every later message): assumption.  Within the crawler's default
  handshake timeout (20 s) and getaddr idle timeout (10 s), so a correct
  crawler finds every one; the ground truth marks them ``slow``.
- ``duplicates`` 0.02 of each answer repeats entries it already holds:
  assumption.  Core's own answers hold none (PushAddress skips what the
  peer already knows, PROTOCOL.md 4.1), but other implementations need not
  be as careful, and the same addresses come from every node anyway.
- No response delay: Core answers getaddr from its cache on the next send
  pass (PROTOCOL.md 4.1), so the round trip is all the wait.  No
  misbehaving nodes: the preset measures time, ``--misbehaving`` adds them.
"""

import attr

from .latency import LogNormal


@attr.frozen
class Preset:
    """
    A network's shape: its sizes (``nodes``, ``dead``) and the rest of
    SimNet's arguments (``shape()``).
    """

    nodes: int
    dead: int
    blackholed: float
    stale: int
    exotic: int
    book_size: int
    latency: object
    duplicates: float

    def shape(self):
        """SimNet's keyword arguments other than the sizes."""
        return attr.asdict(self, recurse=False, filter=lambda a, _: a.name not in
                           ("nodes", "dead"))


MAINNET = Preset(
    nodes=8000,
    dead=50_000,
    blackholed=0.8,
    stale=8000,
    exotic=400,
    book_size=4348,
    latency=LogNormal(median=0.080, p99=0.600, slow_share=0.02, slow=(2.0, 8.0)),
    duplicates=0.02,
)

#: Every preset, by the name the command lines take.
PRESETS = {"mainnet": MAINNET}


def get_preset(name):
    """The preset called ``name``; ValueError naming the presets there are."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; presets: {', '.join(PRESETS)}"
        ) from None
