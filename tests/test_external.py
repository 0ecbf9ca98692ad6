"""
Tests for bitpeer.crawl.external: the peers' vote on our external address, and
the external-IP lookup over HTTP.

The vote's addresses are data only; the HTTP tests run a twisted.web server
on 127.0.0.1.  Nothing contacts a public address.
"""

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from bitpeer.crawl.external import (
    MAX_EXTERNAL_IP_BODY,
    ExternalAddressVote,
    VoteResult,
    fetch_external_ip,
)
from bitpeer.wire.address import Network, NetworkAddress

#: Public-looking addresses for votes (data only; nothing is contacted).
PUBLIC_A = NetworkAddress.parse("44.1.2.3:50001")
PUBLIC_B = NetworkAddress.parse("44.9.9.9:50002")
PUBLIC_V6 = NetworkAddress.parse("[2a00:1450::1]:50003")


def reporter(n):
    return NetworkAddress.parse(f"127.0.0.1:{20000 + n}")


class ExternalAddressVoteTests(SynchronousTestCase):
    def test_empty(self):
        vote = ExternalAddressVote()
        self.assertEqual(vote.result(), VoteResult(None, 0, 0))
        self.assertEqual(vote.as_dict()["address"], None)

    def test_majority_ignores_port(self):
        vote = ExternalAddressVote()
        for n in range(3):
            view = NetworkAddress(PUBLIC_A.network, PUBLIC_A.host, 50000 + n)
            self.assertTrue(vote.add(view, reporter(n)))
        vote.add(PUBLIC_B, reporter(10))
        result = vote.result()
        self.assertEqual(result.address, NetworkAddress.parse("44.1.2.3:0"))
        self.assertEqual((result.votes, result.total), (3, 4))
        self.assertEqual(result.runner_up, NetworkAddress.parse("44.9.9.9:0"))
        self.assertEqual(result.runner_up_votes, 1)

    def test_one_vote_per_reporter(self):
        vote = ExternalAddressVote()
        for _ in range(5):
            vote.add(PUBLIC_B, reporter(1))
        vote.add(PUBLIC_A, reporter(2))
        vote.add(PUBLIC_A, reporter(3))
        self.assertEqual(vote.result().address.host_text, "44.1.2.3")
        self.assertEqual(vote.result().total, 3)
        # A reporter that changes its mind moves its vote.
        vote.add(PUBLIC_A, reporter(1))
        self.assertEqual((vote.result().votes, vote.result().total), (3, 3))
        self.assertIsNone(vote.result().runner_up)

    def test_tie_goes_to_first_reported(self):
        vote = ExternalAddressVote()
        vote.add(PUBLIC_B, reporter(1))
        vote.add(PUBLIC_A, reporter(2))
        result = vote.result()
        self.assertEqual(result.address.host_text, "44.9.9.9")
        self.assertEqual(result.votes, result.runner_up_votes)

    def test_private_ignored(self):
        vote = ExternalAddressVote()
        for n, text in enumerate(
            ["10.1.2.3:1", "127.0.0.1:1", "0.0.0.0:0", "192.168.1.1:1", "[::1]:1", "203.0.113.5:1"]
        ):
            self.assertFalse(vote.add(NetworkAddress.parse(text), reporter(n)))
        vote.add(PUBLIC_A, reporter(99))
        result = vote.result()
        self.assertEqual((result.address.host_text, result.votes, result.total), ("44.1.2.3", 1, 1))
        self.assertEqual(result.ignored, 6)

    def test_allow_private(self):
        """Simnet: loopback views count, but 0.0.0.0 never does."""
        vote = ExternalAddressVote(allow_private=True)
        self.assertTrue(vote.add(NetworkAddress.parse("127.0.0.1:5"), reporter(1)))
        self.assertTrue(vote.add(NetworkAddress.parse("127.0.0.1:6"), reporter(2)))
        self.assertFalse(vote.add(NetworkAddress.parse("0.0.0.0:0"), reporter(3)))
        self.assertEqual(vote.result().address.host_text, "127.0.0.1")
        self.assertEqual(vote.result().votes, 2)

    def test_per_network_and_as_dict(self):
        vote = ExternalAddressVote()
        vote.add(PUBLIC_A, reporter(1))
        vote.add(PUBLIC_A, reporter(2))
        vote.add(PUBLIC_V6, reporter(3))
        self.assertEqual(vote.result(Network.IPV6).address.host_text, "2a00:1450::1")
        self.assertEqual(vote.result(Network.IPV4).votes, 2)
        out = vote.as_dict()
        self.assertEqual(
            {k: out[k] for k in ("address", "network", "votes", "total", "runner_up")},
            {
                "address": "44.1.2.3",
                "network": "ipv4",
                "votes": 2,
                "total": 3,
                "runner_up": "2a00:1450::1",
            },
        )
        self.assertEqual(sorted(out["by_network"]), ["ipv4", "ipv6"])
        self.assertEqual(out["by_network"]["ipv6"]["votes"], 1)
        self.assertEqual(vote.result().as_dict()["runner_up_votes"], 1)


# -- fetch_external_ip --------------------------------------------------------


class _Text(Resource):
    isLeaf = True

    def __init__(self, body, code=200):
        super().__init__()
        self.body, self.code = body, code

    def render_GET(self, request):
        request.setResponseCode(self.code)
        return self.body


class _Hang(Resource):
    isLeaf = True

    def render_GET(self, request):
        return NOT_DONE_YET


class _Tracker(WrappingFactory):
    """Counts open connections, so a test can wait until all have closed."""

    noisy = False

    def __init__(self, wrapped):
        super().__init__(wrapped)
        self._idle = []

    def unregisterProtocol(self, protocol):
        super().unregisterProtocol(protocol)
        if not self.protocols:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    def when_idle(self):
        if not self.protocols:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle.append(d)
        return d


@implementer(IAgentEndpointFactory)
class _TrackedEndpoints:
    """Plain TCP to 127.0.0.1, with every client connection tracked."""

    def __init__(self):
        self.trackers = []

    def endpointForURI(self, uri):
        owner, endpoint = self, TCP4ClientEndpoint(reactor, uri.host.decode(), uri.port)

        class Tracked:
            def connect(self, factory):
                tracker = _Tracker(factory)
                owner.trackers.append(tracker)
                return endpoint.connect(tracker).addCallback(lambda w: w.wrappedProtocol)

        return Tracked()


class FetchExternalIpTests(TestCase):
    """fetch_external_ip against a twisted.web server on 127.0.0.1."""

    def setUp(self):
        root = Resource()
        root.putChild(b"ip", _Text(b"203.0.113.5\n"))
        root.putChild(b"ipv6", _Text(b" 2001:0db8:0:0::1 \r\n"))
        root.putChild(b"html", _Text(b"<html>203.0.113.5</html>"))
        onion = b"pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
        root.putChild(b"onion", _Text(onion))
        root.putChild(b"binary", _Text(b"\xff\xfe"))
        root.putChild(b"error", _Text(b"203.0.113.5", code=500))
        root.putChild(b"big", _Text(b"1" * 1000))
        root.putChild(b"hang", _Hang())
        site = Site(root)
        site.noisy = False
        self.server = _Tracker(site)
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}"
        self.endpoints = _TrackedEndpoints()
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent.usingEndpointFactory(reactor, self.endpoints, pool=pool)
        # Cleanups run last-first: wait for every connection to close
        # before the port stops, so trial finds a clean reactor.
        self.addCleanup(self._all_closed)

    def _all_closed(self):
        return defer.gatherResults(
            [self.server.when_idle()] + [t.when_idle() for t in self.endpoints.trackers]
        )

    def fetch(self, path, timeout=5.0):
        return fetch_external_ip(
            self.base + path, agent=self.agent, reactor=reactor, timeout=timeout
        )

    @defer.inlineCallbacks
    def test_ipv4(self):
        self.assertEqual((yield self.fetch("/ip")), "203.0.113.5")

    @defer.inlineCallbacks
    def test_ipv6_normalised(self):
        self.assertEqual((yield self.fetch("/ipv6")), "2001:db8::1")

    @defer.inlineCallbacks
    def test_not_an_address(self):
        for path in ("/html", "/binary", "/onion"):
            error = yield self.assertFailure(self.fetch(path), ValueError)
            self.assertIn("not an", str(error))

    @defer.inlineCallbacks
    def test_status(self):
        error = yield self.assertFailure(self.fetch("/error"), ValueError)
        self.assertIn("HTTP 500", str(error))

    @defer.inlineCallbacks
    def test_oversize(self):
        error = yield self.assertFailure(self.fetch("/big"), ValueError)
        self.assertIn(f"longer than {MAX_EXTERNAL_IP_BODY} bytes", str(error))

    @defer.inlineCallbacks
    def test_timeout(self):
        yield self.assertFailure(self.fetch("/hang", timeout=0.2), defer.TimeoutError)
