"""
A small monitor of Bitcoin nodes, written only against bitpeer's public API:
one PeerService per node, logging what each node announces, its ping round
trips, its disconnects (and why) and its reconnects.

``examples/`` is not installed with bitpeer; its test
(tests/test_example_monitor.py) puts it on ``sys.path``.  To run the
monitor under twistd, put this in ``monitor.tac`` beside it and run
``twistd -ny monitor.tac``::

    from twisted.application.service import Application
    from twisted.internet import reactor

    from bitpeer.networks import REGTEST
    from monitor import Monitor

    application = Application("monitor")
    Monitor(reactor, ["127.0.0.1:18444"], REGTEST).setServiceParent(application)
"""

from collections.abc import Iterable
from functools import partial
from random import Random

import attr
from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from bitpeer.errors import PeerError
from bitpeer.networks import MAINNET, NetworkParams
from bitpeer.peer import Peer
from bitpeer.service import DEFAULT_PING_INTERVAL, PeerService
from bitpeer.wire.messages import Inv, Pong


@attr.frozen
class NodeStatus:
    """
    What the monitor knows of one node.

    @ivar last_close: the reason word (bitpeer.errors) of the last
        connection's end, or None if none has ended.
    """

    connected: bool
    user_agent: str | None
    last_rtt: float | None
    connects: int
    reconnects: int
    failures: int
    announced: int
    last_close: str | None


class Monitor(MultiService):
    """
    Keep a connection to each of ``addresses`` (``HOST[:PORT]`` text) and
    log what happens on it.  ``clock`` and ``random`` go to each PeerService
    (tests give a fake clock and a seeded random source).
    """

    log = Logger()

    def __init__(self, reactor: IReactorTime, addresses: Iterable[str],
                 network: NetworkParams = MAINNET, *, clock: IReactorTime | None = None,
                 ping_interval: float = DEFAULT_PING_INTERVAL,
                 random: Random | None = None) -> None:
        super().__init__()
        self.nodes: dict[str, PeerService] = {}
        self._announced: dict[str, int] = {}
        self._last_close: dict[str, str] = {}
        for address in addresses:
            service = PeerService(reactor, address, network, clock=clock, random=random,
                                  ping_interval=ping_interval,
                                  on_peer=partial(self._connected, address))
            service.setServiceParent(self)
            self.nodes[address] = service
            self._announced[address] = 0

    def status(self) -> dict[str, NodeStatus]:
        """Every node's NodeStatus, now."""
        report = {}
        for address, service in self.nodes.items():
            stats, peer = service.stats(), service.peer
            report[address] = NodeStatus(
                connected=peer is not None,
                user_agent=peer.info.user_agent if peer and peer.info else None,
                last_rtt=stats.last_rtt, connects=stats.connects,
                reconnects=stats.reconnects, failures=stats.failures,
                announced=self._announced[address],
                last_close=self._last_close.get(address))
        return report

    def _connected(self, address: str, peer: Peer) -> None:
        stats = self.nodes[address].stats()
        agent = peer.info.user_agent if peer.info else "?"
        if stats.reconnects:
            self.log.info("{address}: reconnected ({agent}), reconnect {count}",
                          address=address, agent=agent, count=stats.reconnects)
        else:
            self.log.info("{address}: connected ({agent})", address=address, agent=agent)
        peer.subscribe(Inv, lambda peer, inv: self._inv(address, inv))
        peer.subscribe(Pong, lambda peer, pong: self._pong(address))
        peer.whenClosed().addCallback(self._closed, address)

    def _inv(self, address: str, inv: Inv) -> None:
        for item in inv.inventory:
            self._announced[address] += 1
            # Hashes go on the wire in little-endian order; people read
            # them reversed, as block explorers show them.
            self.log.info("{address}: inv type {type} {hash}", address=address,
                          type=item.type, hash=item.hash[::-1].hex())

    def _pong(self, address: str) -> None:
        # The service's own pinger has recorded the round trip by now.
        rtt = self.nodes[address].stats().last_rtt
        if rtt is not None:
            self.log.info("{address}: ping {ms:.0f} ms", address=address, ms=rtt * 1000)

    def _closed(self, error: PeerError, address: str) -> None:
        self._last_close[address] = error.reason
        self.log.info("{address}: disconnected ({reason}: {error})", address=address,
                      reason=error.reason, error=error)
