"""
Which nodes a seed serves: "good" as sipa's bitcoin-seeder decides it
(db.h IsGood), with the minimum heights of dnsseedrs.

A node is good when all of these hold:

- its port is the network's default (an I2P address has none: port 0);
- it offers NODE_NETWORK, or NODE_NETWORK_LIMITED when the seed is told to
  serve pruned nodes too;
- its address is routable (unless private addresses are allowed, as in a
  simulated network on loopback);
- its protocol version is at least REQUIRE_VERSION (70001);
- its height is at least the network's minimum (``--min-height``);
- and its tests say it is reliable (bitpeer.seed.reliability: a young node
  with half its tests successful, or one window over its thresholds).

Where sipa's seeder lets a version or height of 0 pass (an unknown one),
here a node is good only once a handshake has told both.
"""

import attr

from ..wire.address import Network
from ..wire.services import NODE_NETWORK, NODE_NETWORK_LIMITED

#: The protocol version a good node speaks at least (db.h REQUIRE_VERSION).
REQUIRE_VERSION = 70001

#: Heights a good node has reached at least, per network (dnsseedrs
#: common.rs); a network not named here has no minimum.
MIN_HEIGHTS = {"mainnet": 880_000, "testnet3": 3_600_000, "testnet4": 65_000,
               "signet": 230_000}


@attr.frozen
class Facts:
    """What a node's last handshake told: services, version, height (None
    before any)."""

    services: int | None = None
    version: int | None = None
    height: int | None = None


@attr.frozen
class GoodRule:
    """
    The rule for one network: its ``default_port`` (None: any port, for a
    simulated network whose nodes share the simulator's ports) and
    ``min_height``, whether NODE_NETWORK_LIMITED nodes are served
    (``limited``) and whether unroutable addresses are (``allow_private``).
    """

    default_port: int | None
    min_height: int = 0
    limited: bool = False
    allow_private: bool = False

    @classmethod
    def for_network(cls, network, *, min_height=None, limited=False, allow_private=False):
        """The rule for ``network`` (a NetworkParams), its minimum height
        MIN_HEIGHTS' unless ``min_height`` is given."""
        if min_height is None:
            min_height = MIN_HEIGHTS.get(network.name, 0)
        return cls(network.default_port, min_height, limited, allow_private)

    def why_not(self, address, facts, reliability):
        """The first rule a node breaks, in words, or None when it is good."""
        if address.network == Network.I2P:
            if address.port != 0:
                return "i2p port not 0"
        elif self.default_port is not None and address.port != self.default_port:
            return "not the default port"
        services = facts.services or 0
        wanted = NODE_NETWORK | NODE_NETWORK_LIMITED if self.limited else NODE_NETWORK
        if not services & wanted:
            return "no NODE_NETWORK_LIMITED" if self.limited else "no NODE_NETWORK"
        if not self.allow_private and not address.is_routable():
            return "not routable"
        if facts.version is None or facts.version < REQUIRE_VERSION:
            return f"version under {REQUIRE_VERSION}"
        if facts.height is None or facts.height < self.min_height:
            return f"height under {self.min_height}"
        if not reliability.reliable:
            return "not reliable"
        return None

    def is_good(self, address, facts, reliability):
        """Whether the node is good (why_not has no objection)."""
        return self.why_not(address, facts, reliability) is None
