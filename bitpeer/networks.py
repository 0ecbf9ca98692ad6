"""
Chain parameters: each network's magic, default port, DNS seeds and fixed
seeds, as in Bitcoin Core's ``kernel/chainparams.cpp``.

The fixed seeds are data files in ``bitpeer/data`` copied from Core's
``contrib/seeds/nodes_*.txt``; they are read only when asked for, since a
crawl that finds DNS working never needs them.
"""

from importlib import resources

import attr

from .wire.address import NetworkAddress
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


def parse_seed_lines(lines, default_port, *, cjdns=False):
    """
    Addresses from lines of ``HOST[:PORT]`` (``#`` starts a comment, blank
    lines are skipped).  A bad line raises ValueError naming its number.
    """
    seeds = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            seeds.append(NetworkAddress.parse(line, default_port, cjdns=cjdns))
        except ProtocolError as error:
            raise ValueError(f"line {number}: {error.rule}") from None
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
