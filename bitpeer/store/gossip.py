"""
The address book's gossip buffer: what addr and addrv2 messages said of each
address since the last flush, merged in memory on the reactor thread.

A crawl hears of the same address from many peers within a second; merging
here makes that one row per address per flush.  The merge rules are the
ones bookschema.GOSSIP_UPSERT applies to the row already in the database,
so buffering changes how often the book writes, never what it ends up
holding.
"""

#: The buffer maps each address to a list indexed by these: the newest
#: time gossip gave it and the services that came with that time, when and
#: from whom (escaped text) we first and last heard of it.  A list rather
#: than an object with __slots__: a crawl buffers hundreds of thousands of
#: new addresses a minute, and a list is about a third quicker to build.
GOSSIP_TIME, GOSSIP_SERVICES, FIRST_SEEN, FIRST_SOURCE, LAST_SEEN, LAST_SOURCE = range(6)


def add_gossip(buffer, entries, source, now):
    """
    Merge AddrEntry ``entries`` heard from ``source`` (escaped text) at
    ``now`` into ``buffer``.  A new address gets first_seen/first_source; a
    known one last_seen/last_source; gossip_time only grows, and the
    services go with the newest time.
    """
    get = buffer.get
    for time, services, address in entries:
        heard = get(address)
        if heard is None:
            # GOSSIP_TIME, GOSSIP_SERVICES, FIRST_SEEN ... LAST_SOURCE
            buffer[address] = [time, services, now, source, now, source]
        else:
            if time >= heard[GOSSIP_TIME]:
                heard[GOSSIP_TIME] = time
                heard[GOSSIP_SERVICES] = services
            heard[LAST_SEEN] = now
            heard[LAST_SOURCE] = source


def merge_gossip(older, newer):
    """
    Fold the buffer ``older`` under ``newer``, into ``newer`` (a flush that
    failed goes back under what was heard meanwhile): first_* come from the
    older, last_* from the newer, gossip_time is the max and services go
    with the newest time.
    """
    for address, old in older.items():
        new = newer.get(address)
        if new is None:
            newer[address] = old
            continue
        if old[GOSSIP_TIME] > new[GOSSIP_TIME]:
            new[GOSSIP_TIME] = old[GOSSIP_TIME]
            new[GOSSIP_SERVICES] = old[GOSSIP_SERVICES]
        new[FIRST_SEEN] = old[FIRST_SEEN]
        new[FIRST_SOURCE] = old[FIRST_SOURCE]
