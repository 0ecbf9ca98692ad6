"""
Service bits (protocol.h ``ServiceFlags``) and how to show them to people.
"""

import enum
import functools


class ServiceFlags(enum.IntFlag):
    """The service bits a node advertises in version and addr messages."""

    NONE = 0
    NETWORK = 1 << 0
    GETUTXO = 1 << 1
    BLOOM = 1 << 2
    WITNESS = 1 << 3
    XTHIN = 1 << 4
    COMPACT_FILTERS = 1 << 6
    NETWORK_LIMITED = 1 << 10
    P2P_V2 = 1 << 11


NODE_NONE = ServiceFlags.NONE
NODE_NETWORK = ServiceFlags.NETWORK
NODE_BLOOM = ServiceFlags.BLOOM
NODE_WITNESS = ServiceFlags.WITNESS
NODE_COMPACT_FILTERS = ServiceFlags.COMPACT_FILTERS
NODE_NETWORK_LIMITED = ServiceFlags.NETWORK_LIMITED
NODE_P2P_V2 = ServiceFlags.P2P_V2

#: What Core asks DNS seeds for (the ``x9.`` prefix) and gives fixed seeds.
SEEDS_SERVICE_FLAGS = NODE_NETWORK | NODE_WITNESS


@functools.lru_cache(maxsize=1024)
def describe(services):
    """
    ``NETWORK|WITNESS|NETWORK_LIMITED`` for 0x409; unnamed bits appear as
    ``BIT24``; no bits at all is ``NONE``.  Cached: a crawl's nodes share a
    handful of values, and a snapshot names each node's twice.
    """
    names = []
    for bit in range(64):
        if services >> bit & 1:
            # An unknown bit gives a pseudo-member whose name is None.
            names.append(ServiceFlags(1 << bit).name or f"BIT{bit}")
    return "|".join(names) or "NONE"


def may_have_useful_address_db(services):
    """Core's ``MayHaveUsefulAddressDB``: serves the chain, fully or pruned."""
    return bool(services & (NODE_NETWORK | NODE_NETWORK_LIMITED))
