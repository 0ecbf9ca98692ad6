"""
The seeder's zone: its names, and what each name under it means.

A seed serves one zone, ``seed.example.org``: the apex holds the NS and SOA
records and answers A and AAAA queries as ``x9`` does, and each
``x<hex>.seed.example.org`` answers with nodes offering those service bits.
Core resolves ``x9.<seed>`` (its ``SeedsServiceFlags()``); the labels served
are the fourteen sipa's seeder and dnsseedrs serve (REFERENCE.md 2.1, 2.2),
the ones Core's chain parameters list for its seeds.  Any other label under
the zone, an unlisted or malformed ``x`` label included, does not exist
(NXDOMAIN), as in dnsseedrs: so the set of masks DNS ever asks the sample
for stays small, and no query can make the server filter the whole sample
for a new mask.
"""

import re

import attr

from ..validators import positive
from ..wire.services import SEEDS_SERVICE_FLAGS

#: The ``x<hex>`` labels served (sipa's seeder's default whitelist,
#: main.cpp:207-221; dnsseedrs serves the same).
SERVED_FLAGS = frozenset(
    {0x1, 0x5, 0x9, 0x49, 0x809, 0x849, 0xD, 0x400, 0x404, 0x408, 0x448, 0xC08, 0xC48, 0x40C}
)
#: What the bare name serves: Core's SeedsServiceFlags(), NETWORK|WITNESS
#: (dnsseedrs does the same; sipa's seeder serves any good node).
BARE_NAME_FLAGS = int(SEEDS_SERVICE_FLAGS)
#: The largest TTL a record may carry (RFC 2181 section 8).
MAX_TTL = 2**31 - 1
#: A name's longest text form without the trailing dot (RFC 1035 2.3.4).
MAX_NAME_LENGTH = 253

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# sipa's parse (main.cpp:339): an 'x', a first digit that is not 0, at most
# 16 hex digits; the name is lower-cased before it is looked at.
_X_LABEL = re.compile(rb"x([1-9a-f][0-9a-f]{0,15})\Z")


def _to_name(value):
    """A name as given, without its trailing dot, lower-cased."""
    return value.rstrip(".").lower() if isinstance(value, str) else value


def _to_mailbox(value):
    """``hostmaster@example.org`` is written ``hostmaster.example.org`` in a SOA."""
    return _to_name(value.replace("@", ".", 1) if isinstance(value, str) else value)


def _check_name(instance, attribute, value):
    """An attrs validator: a host name of letters, digits and hyphens."""
    if not (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME_LENGTH
        and all(_LABEL.match(label) for label in value.split("."))
    ):
        raise ValueError(
            f"{attribute.name} must be a DNS name (labels of letters, digits and"
            f" hyphens), got {value!r}")


_ttl = attr.validators.and_(positive, attr.validators.le(MAX_TTL))


@attr.frozen
class SeedZone:
    """
    The names a seeder answers for.

    @ivar host: the zone's apex, the seed's name (``seed.example.org``).
    @ivar ns: the name server's name, given in NS and SOA records.
    @ivar mbox: the zone's contact, given in the SOA record
        (``hostmaster.example.org``; ``hostmaster@example.org`` is accepted).
    @ivar ttl: seconds A and AAAA answers may be cached; negative answers
        are cached no longer (the SOA's minimum).
    @ivar ns_ttl: seconds the NS and SOA records may be cached.

    Names are validated, lower-cased and kept without their trailing dot.
    """

    host: str = attr.ib(converter=_to_name, validator=_check_name)
    ns: str = attr.ib(converter=_to_name, validator=_check_name)
    mbox: str = attr.ib(converter=_to_mailbox, validator=_check_name)
    ttl: int = attr.ib(default=3600, validator=_ttl)
    ns_ttl: int = attr.ib(default=40000, validator=_ttl)

    def required_services(self, name):
        """
        What a query for ``name`` (bytes, as on the wire) asks for: the
        service bits its nodes need (the apex serves BARE_NAME_FLAGS),
        NOT_FOUND for a name under the zone that does not exist, or OUTSIDE.
        """
        name = name.lower()
        host = self.host_bytes
        if name == host:
            return BARE_NAME_FLAGS
        if not name.endswith(b"." + host):
            return OUTSIDE
        match = _X_LABEL.match(name[: -len(host) - 1])
        if match is not None:
            flags = int(match.group(1), 16)
            if flags in SERVED_FLAGS:
                return flags
        return NOT_FOUND

    def is_apex(self, name):
        """True when ``name`` (bytes, as on the wire) is the zone's apex."""
        return name.lower() == self.host_bytes

    @property
    def host_bytes(self):
        """The apex as twisted.names gives names: bytes."""
        return self.host.encode("ascii")


#: required_services() of a name outside the zone (answered REFUSED).
OUTSIDE = -1
#: required_services() of a name under the zone that does not exist.
NOT_FOUND = -2
