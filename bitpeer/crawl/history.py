"""
The order a crawl dials the address book's addresses in, from what the book
remembers of them, and which dead ones it leaves for a later crawl.

A crawl that dials the nodes that answered last time first fills its census
fast: its progress reaches 90% of the reachable nodes early, before the
slots fill with addresses that fail.  So the book's addresses are dialled in
three tiers (DialPlan.tiers): ANSWERED (their latest attempt succeeded),
then UNTRIED (never dialled: seeds, gossip, new), then FAILED (their latest
attempts failed).  Within a tier the pick stays random
(bitpeer.crawl.slots), so that no one part of the network is hammered.

An address whose last ``dead_after`` attempts all failed is **dead**.
Dialling dead addresses is what costs a crawl most (each holds a slot for
the whole connect timeout), so with ``retry_dead_every`` K above 1 a dead
address is dialled in only one crawl of K: it is dialled when it was not
attempted since the start of the (K-1)-th latest finished crawl of its
network, and otherwise kept as not dialled, with the reason
``dead (retried every K crawls)`` (DialPlan.skipped), so that the snapshot
and the summary count it.  The rule is read from the book at each start,
so it holds across resumes and restarts: a resumed crawl sees the same
finished crawls as its first run did.  The operator's own seeds are always
dialled.
"""

import attr

from ..validators import positive

#: The dial tiers, first to last (bitpeer.crawl.slots keeps one list each).
ANSWERED, UNTRIED, FAILED = 0, 1, 2
TIERS = 3

#: Failed attempts in a row that make an address dead: Core's
#: ADDRMAN_RETRIES (addrman.cpp, IsTerrible: an address never reached in
#: 3 attempts is not worth gossiping).  One or two failures are often a
#: node restarting or its inbound slots full.
DEFAULT_DEAD_AFTER = 3
#: Dead addresses are dialled every crawl unless the operator asks for less.
DEFAULT_RETRY_DEAD_EVERY = 1

#: The not-dialled reason of a dead address left for a later crawl.
NOT_DIALLED_DEAD = "dead (retried every {every} crawls)"


@attr.frozen
class HistoryOptions:
    """``--dead-after`` and ``--retry-dead-every`` (see the module's docstring)."""

    dead_after: int = attr.ib(default=DEFAULT_DEAD_AFTER, validator=positive)
    retry_dead_every: int = attr.ib(default=DEFAULT_RETRY_DEAD_EVERY, validator=positive)


@attr.frozen
class DialPlan:
    """
    What the book's history says of a crawl's addresses.

    @ivar tiers: NetworkAddress -> ANSWERED or FAILED; every other address
        (gossip learnt during the crawl included) is UNTRIED.
    @ivar skipped: NetworkAddress -> why it is not dialled in this crawl
        (dead, left for a later crawl).
    """

    tiers: dict = attr.ib(factory=dict)
    skipped: dict = attr.ib(factory=dict)


def retried_since(crawls, network, every):
    """
    The time from which a dead address counts as attempted recently: the
    start of the (``every`` - 1)-th latest finished crawl of ``network``
    among ``crawls`` (dicts as AddressBook.crawls gives them); None when
    nothing is skipped (``every`` is 1, or no crawl has finished).
    """
    starts = sorted((c["started"] for c in crawls
                     if c["network"] == network and c["status"] == "finished"),
                    reverse=True)[:every - 1]
    return starts[-1] if starts else None


def dial_plan(known, crawls, network, options, keep=()):
    """
    The DialPlan of a crawl of ``network`` (a name) from the book's
    ``known`` addresses (KnownAddress), its ``crawls`` and ``options`` (a
    HistoryOptions).  The addresses of ``keep`` (the operator's seeds) are
    never skipped.
    """
    since = retried_since(crawls, network, options.retry_dead_every)
    reason = NOT_DIALLED_DEAD.format(every=options.retry_dead_every)
    keep = set(keep)
    tiers, skipped = {}, {}
    for k in known:
        if k.failure_streak:
            # A row without an attempt time (edited by hand) counts as due.
            if (since is not None and k.failure_streak >= options.dead_after
                    and (k.last_attempt or 0) >= since and k.address not in keep):
                skipped[k.address] = reason
            else:
                tiers[k.address] = FAILED
        elif k.attempts:
            tiers[k.address] = ANSWERED
    return DialPlan(tiers, skipped)
