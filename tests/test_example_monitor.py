"""
The example monitor (examples/monitor.py), tested as its author would test
it: only bitpeer's public API and bitpeer.testing, nodes in memory on a
FakeInternet, no sockets; the whole suite runs in milliseconds.
"""

import os
import random
import sys

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.protocol import BitcoinProtocol
from bitpeer.testing import FakeInternet
from bitpeer.wire.messages import MSG_TX, Pong, SendAddrV2

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)

from monitor import Monitor  # noqa: E402

FIRST, SECOND = "127.0.0.2:8333", "127.0.0.3:8333"
TX = bytes(range(32))


class LateFeature(BitcoinProtocol):
    """A node that sends sendaddrv2 after the handshake, which Core punishes
    with a disconnect."""

    def handshake_done(self, info):
        self.sendMessage(SendAddrV2())


class Mute(BitcoinProtocol):
    """A node that never answers a ping."""

    def sendMessage(self, message):
        if not isinstance(message, Pong):
            super().sendMessage(message)


class MonitorTests(SynchronousTestCase):
    """A Monitor of two nodes in memory."""

    def setUp(self):
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.internet = FakeInternet()
        self.first = self.internet.add_node(address=FIRST, user_agent="/first:1/",
                                            latency=0.01)
        self.second = self.internet.add_node(address=SECOND, user_agent="/second:2/")

    def start(self, **arguments):
        arguments.setdefault("random", random.Random(3))
        monitor = Monitor(self.internet, [FIRST, SECOND], **arguments)
        monitor.startService()
        self.addCleanup(lambda: monitor.running and monitor.stopService())
        self.advance(0.1)
        return monitor

    def advance(self, seconds, step=0.01):
        """Run the clock ``seconds`` on, a step at a time (a task.Clock runs
        what a call schedules from the time it was advanced to)."""
        for _ in range(round(seconds / step)):
            self.internet.advance(step)
        self.internet.advance(0)

    def logged(self, monitor):
        return [formatEvent(e) for e in self.events if e.get("log_source") is monitor]

    def test_handshake(self):
        monitor = self.start()
        status = monitor.status()
        self.assertEqual({address: (s.connected, s.user_agent) for address, s in status.items()},
                         {FIRST: (True, "/first:1/"), SECOND: (True, "/second:2/")})
        self.assertEqual(sorted(self.logged(monitor)), [f"{FIRST}: connected (/first:1/)",
                                                        f"{SECOND}: connected (/second:2/)"])

    def test_inv_reaches_the_monitor(self):
        monitor = self.start()
        self.second.send_inv([TX], MSG_TX)
        self.advance(0)
        self.assertEqual(monitor.status()[SECOND].announced, 1)
        self.assertEqual(monitor.status()[FIRST].announced, 0)
        self.assertIn(f"{SECOND}: inv type 1 {TX[::-1].hex()}", self.logged(monitor))

    def test_restart_and_reconnect_with_backoff(self):
        monitor = self.start()
        self.internet.take_down(self.second)
        self.advance(0)
        status = monitor.status()[SECOND]
        self.assertEqual((status.connected, status.last_close), (False, "closed"))
        self.advance(10)  # redials refused: 1 s, then 2 s, 4 s... plus jitter
        self.assertGreaterEqual(monitor.status()[SECOND].failures, 2)
        self.assertFalse(monitor.status()[SECOND].connected)
        self.internet.bring_up(self.second)
        self.advance(20)
        status = monitor.status()[SECOND]
        self.assertEqual((status.connected, status.connects, status.reconnects), (True, 2, 1))
        self.assertIn(f"{SECOND}: reconnected (/second:2/), reconnect 1", self.logged(monitor))
        self.assertTrue(monitor.status()[FIRST].connected)

    def test_pings_and_rtt(self):
        monitor = self.start(ping_interval=30)
        self.assertIsNone(monitor.status()[FIRST].last_rtt)
        self.advance(30)
        self.assertAlmostEqual(monitor.status()[FIRST].last_rtt, 0.02)
        self.assertEqual(monitor.status()[SECOND].last_rtt, 0)
        self.assertIn(f"{FIRST}: ping 20 ms", self.logged(monitor))

    def test_misbehaving_node(self):
        self.internet.take_down(self.second)
        self.internet.add_node(address=SECOND, protocol=LateFeature)
        monitor = self.start()
        status = monitor.status()[SECOND]
        self.assertEqual((status.connects, status.last_close), (1, "protocol-error"))
        self.assertIn(f"{SECOND}: disconnected (protocol-error: sendaddrv2 received after "
                      "verack)", self.logged(monitor))
        self.assertIsNone(monitor.status()[FIRST].last_close)

    def test_silent_node_is_dropped(self):
        self.internet.take_down(self.second)
        self.internet.add_node(address=SECOND, protocol=Mute)
        monitor = self.start(ping_interval=30)
        self.advance(60, step=1)  # the ping, then its 30 s timeout
        self.assertEqual(monitor.status()[SECOND].last_close, "closed-locally")

    def test_stop_closes_every_connection(self):
        monitor = self.start()
        peers = [service.peer for service in monitor.nodes.values()]
        stopping = monitor.stopService()
        self.advance(0.1)  # the first node's latency
        self.successResultOf(stopping)
        self.assertTrue(all(peer.closed for peer in peers))
        self.assertEqual({s.last_close for s in monitor.status().values()}, {"closed-locally"})
