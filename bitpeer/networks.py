"""
Chain parameters: each network's magic, default port, DNS seeds and fixed
seeds, as in Bitcoin Core's ``kernel/chainparams.cpp``.

The fixed seeds are data files in ``bitpeer/data`` copied from Core's
``contrib/seeds/nodes_*.txt``; they are read only when asked for, since a
crawl that finds DNS working never needs them.
"""

from importlib import resources

import attr

from .wire.address import Network, NetworkAddress, split_host_port
from .wire.errors import ProtocolError


@attr.frozen
class NetworkParams:
    """
    One Bitcoin network.

    @ivar fixed_seeds_file: the data file of Core's fixed seeds, or None for
        networks that have none (regtest, custom).
    """

    name: str
    magic: bytes = attr.ib(validator=lambda i, a, v: _check_magic(v))
    default_port: int
    dns_seeds: tuple = ()
    fixed_seeds_file: str | None = None
    genesis_hash: str | None = None

    def fixed_seeds(self):
        """Core's fixed seeds for this network, as NetworkAddress objects."""
        if self.fixed_seeds_file is None:
            return []
        text = resources.files("bitpeer.data").joinpath(self.fixed_seeds_file).read_text()
        return parse_seed_lines(text.splitlines(), self.default_port, cjdns=True)


def _check_magic(value):
    if not isinstance(value, bytes) or len(value) != 4:
        raise ValueError(f"a network magic is 4 bytes, got {value!r}")


#: The networks ``--onlynet`` names, as Core's ``-onlynet`` does, under
#: NetworkAddress.network_name's spelling (Core's ``tor`` is read as onion).
ONLYNET_CHOICES = ("ipv4", "ipv6", "onion", "i2p", "cjdns")
#: Networks dialled without a proxy: the only ones DNS seeds give, and the
#: only ones bitpeer dials today.
CLEARNET = frozenset({"ipv4", "ipv6"})


def parse_onlynet(names):
    """
    The frozenset of network names ``names`` (``--onlynet`` values) allow;
    every network when ``names`` is empty.  Core's ``tor`` means onion.

    @raise ValueError: for an unknown name, listing the choices.
    """
    chosen = set()
    for name in names:
        name = name.strip().lower()
        name = "onion" if name == "tor" else name
        if name not in ONLYNET_CHOICES:
            raise ValueError(
                f"unknown network {name!r}; choose among {', '.join(ONLYNET_CHOICES)}"
            )
        chosen.add(name)
    return frozenset(chosen or ONLYNET_CHOICES)


@attr.frozen
class SeedName:
    """
    A host name given as a seed (``--seed HOST[:PORT]``, a seeds-file
    line): a promise of addresses, kept as text until the crawl starts and
    then resolved (A and AAAA) through the same injected twisted.names
    resolver the DNS seeds use (bitpeer.crawl.discovery.resolve_seed_names).

    @ivar name: the host name, lower case, without a trailing dot.
    @ivar port: the port its addresses get.
    @ivar origin: where it was given (``--seed``, ``seeds.txt line 3``), for
        the warning if it does not resolve; not part of equality.
    """

    name: str
    port: int
    origin: str = attr.ib(default="", eq=False)

    def __str__(self):
        return f"{self.name}:{self.port}"


#: The longest host name DNS can carry (RFC 1035, without the final dot).
MAX_HOST_NAME = 253


def is_host_name(text):
    """
    Whether ``text`` is a DNS host name (RFC 1123): dot-separated labels
    of letters, digits and inner hyphens, 1..63 characters each, 253 in
    all, a trailing dot allowed, and a last label that is not all digits
    (so ``1.2.3.256`` is a bad address, not a name).  ``.onion`` and
    ``.i2p`` names are never looked up (RFC 7686): they are addresses or
    mistakes.
    """
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > MAX_HOST_NAME or not name.isascii():
        return False
    labels = name.lower().split(".")
    if labels[-1] in ("onion", "i2p") or labels[-1].isdigit():
        return False
    return all(
        0 < len(label) <= 63
        and label[0] != "-" and label[-1] != "-"
        and all(c.isalnum() or c == "-" for c in label)
        for label in labels
    )


class HostNameRefused(ValueError):
    """A host name where names are not allowed (``--dns 0``, fixed seeds)."""


def parse_seed(text, default_port, *, cjdns=False, names=True, origin=""):
    """
    One seed from ``HOST[:PORT]`` text: a NetworkAddress for an IP, Tor v3
    or I2P address (NetworkAddress.parse, with its refusals: an ambiguous
    IPv6 such as ``::1:8333``, port 0, ports above 65535, an empty host),
    or a SeedName for a host name, resolved later.  Port 0 is refused
    (except on I2P, whose addresses all carry it).

    @param names: False refuses host names (``--dns 0``: no lookups).
    @param origin: kept in a SeedName, for its warning.
    @raise HostNameRefused: for a host name when ``names`` is False.
    @raise ValueError: saying what else is wrong with ``text``.
    """
    try:
        address = NetworkAddress.parse(text, default_port, cjdns=cjdns)
    except ProtocolError as error:
        refusal = error
    else:
        if address.port == 0 and address.network != Network.I2P:
            # I2P addresses all carry port 0 (Core's seed lists write ":0").
            raise ValueError(f"{text.strip()!r}: port 0 cannot be dialled")
        return address
    # Not an address: a host name, if its syntax makes one.
    try:
        host, port = split_host_port(text)
    except ProtocolError:
        raise ValueError(refusal.rule) from None
    if refusal.field != "host" or not is_host_name(host):
        if names and refusal.rule.startswith(f"{host!r} is not an IPv4"):
            raise ValueError(f"{text.strip()!r} is neither an IPv4, IPv6, .onion or "
                             ".b32.i2p address nor a host name") from None
        raise ValueError(refusal.rule) from None
    if not names:
        raise HostNameRefused(f"{text.strip()!r} is a host name, and name lookups are off")
    if port == 0:
        raise ValueError(f"{text.strip()!r}: port 0 cannot be dialled")
    return SeedName(host.lower().rstrip("."), default_port if port is None else port, origin)


def parse_seed_lines(lines, default_port, *, cjdns=False, names=False, source=None):
    """
    Seeds from lines of ``HOST[:PORT]`` (``#`` starts a comment, blank
    lines are skipped), each as parse_seed() reads it.  Host names are
    refused unless ``names`` (Core's fixed seeds never hold one).

    @param source: the file's name, for messages and each SeedName's origin.
    @raise ValueError: for the first bad line, naming ``source`` and the
        line's number.
    """
    where = f"{source} line" if source else "line"
    seeds = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            seeds.append(parse_seed(line, default_port, cjdns=cjdns, names=names,
                                    origin=f"{where} {number}"))
        except ValueError as error:
            raise type(error)(f"{where} {number}: {error}") from None
    return seeds


MAINNET = NetworkParams(
    name="mainnet",
    magic=bytes.fromhex("f9beb4d9"),
    default_port=8333,
    dns_seeds=(
        "seed.bitcoin.sipa.be",
        "dnsseed.bluematt.me",
        "seed.bitcoin.jonasschnelli.ch",
        "seed.btc.petertodd.net",
        "seed.bitcoin.sprovoost.nl",
        "dnsseed.emzy.de",
        "seed.bitcoin.wiz.biz",
        "seed.mainnet.achownodes.xyz",
    ),
    fixed_seeds_file="fixed_seeds_main.txt",
    genesis_hash="000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
)

TESTNET3 = NetworkParams(
    name="testnet3",
    magic=bytes.fromhex("0b110907"),
    default_port=18333,
    dns_seeds=(
        "testnet-seed.bitcoin.jonasschnelli.ch",
        "seed.tbtc.petertodd.net",
        "seed.testnet.bitcoin.sprovoost.nl",
        "testnet-seed.bluematt.me",
        "seed.testnet.achownodes.xyz",
    ),
    fixed_seeds_file="fixed_seeds_testnet3.txt",
    genesis_hash="000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
)

TESTNET4 = NetworkParams(
    name="testnet4",
    magic=bytes.fromhex("1c163f28"),
    default_port=48333,
    dns_seeds=("seed.testnet4.bitcoin.sprovoost.nl", "seed.testnet4.wiz.biz"),
    fixed_seeds_file="fixed_seeds_testnet4.txt",
    genesis_hash="00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
)

SIGNET = NetworkParams(
    name="signet",
    magic=bytes.fromhex("0a03cf40"),
    default_port=38333,
    dns_seeds=("seed.signet.bitcoin.sprovoost.nl", "seed.signet.achownodes.xyz"),
    fixed_seeds_file="fixed_seeds_signet.txt",
    genesis_hash="00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
)

REGTEST = NetworkParams(
    name="regtest",
    magic=bytes.fromhex("fabfb5da"),
    default_port=18444,
    genesis_hash="0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
)

#: The named networks, by name.
NETWORKS = {n.name: n for n in (MAINNET, TESTNET3, TESTNET4, SIGNET, REGTEST)}


def custom_network(magic, port, name="custom"):
    """
    A network of your own (a private signet, a test network): its magic as 4
    bytes or 8 hex digits, and its default port.  No seeds.
    """
    if isinstance(magic, str):
        try:
            magic = bytes.fromhex(magic)
        except ValueError:
            raise ValueError(f"magic {magic!r} is not hex") from None
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port {port} is not 1..65535")
    return NetworkParams(name=name, magic=magic, default_port=port)


def get_network(name):
    """The NetworkParams called ``name``; ValueError listing the choices."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}"
        ) from None


def network_for_magic(magic):
    """Core's ``GetNetworkForMagic``: the named network using ``magic``, or None."""
    for params in NETWORKS.values():
        if params.magic == magic:
            return params
    return None
