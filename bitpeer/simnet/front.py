"""
What the simnet's SOCKS5 and SAM fronts share: the cap on circuits building
at once, and handing a connection over to the node it reached.

A Tor daemon builds at most MaxClientCircuitsPending (32) circuits at once
and makes further streams wait; a dead onion's failed descriptor lookup
holds a slot as long as a live onion's circuit.  That cap, not the network,
is what bounds an onion crawl, so the simulation models it exactly and
counts what it did (the tests read the counters rather than the clock).
"""

import collections

from twisted.internet.protocol import Factory, Protocol


class _Ticket:
    """One circuit: waiting, building (``call`` is its timer), or done."""

    def __init__(self, delay, done):
        self.delay = delay
        self.done = done
        self.call = None


class CircuitGate:
    """
    Builds circuits, each taking its own ``delay``, at most ``capacity`` at
    once; the others wait in order of arrival.

    @ivar building: circuits building now; ``peak_building`` the most at once.
    @ivar waiting: tickets waiting for a slot; ``peak_waiting`` the most at once.
    @ivar built: circuits whose delay has run out, ``busy`` the sum of
        their delays (seconds): a crawl through this gate takes at least
        ``busy / capacity``.
    """

    def __init__(self, clock, capacity):
        if capacity < 1:
            raise ValueError("a circuit cap must be at least 1")
        self.clock = clock
        self.capacity = capacity
        self.building = set()
        self.waiting = collections.deque()
        self.peak_building = 0
        self.peak_waiting = 0
        self.built = 0
        self.busy = 0.0

    def build(self, delay, done):
        """
        Build a circuit taking ``delay`` seconds once it has a slot, then
        call ``done()``.  Returns a ticket to give to ``cancel``.
        """
        ticket = _Ticket(delay, done)
        if len(self.building) < self.capacity:
            self._start(ticket)
        else:
            self.waiting.append(ticket)
            self.peak_waiting = max(self.peak_waiting, len(self.waiting))
        return ticket

    def cancel(self, ticket):
        """Forget a ticket (its client left): its slot goes to the next one."""
        if ticket in self.building:
            ticket.call.cancel()
            self.building.discard(ticket)
            self._next()
        elif ticket in self.waiting:
            self.waiting.remove(ticket)

    def cancel_all(self):
        """Forget every ticket, so that no timer outlives the simnet."""
        self.waiting.clear()
        for ticket in list(self.building):
            ticket.call.cancel()
        self.building.clear()

    def stats(self):
        """The counters, JSON-ready."""
        return {"building": len(self.building), "waiting": len(self.waiting),
                "peak_building": self.peak_building, "peak_waiting": self.peak_waiting,
                "built": self.built, "busy_seconds": round(self.busy, 3),
                "capacity": self.capacity}

    def _start(self, ticket):
        self.building.add(ticket)
        self.peak_building = max(self.peak_building, len(self.building))
        ticket.call = self.clock.callLater(ticket.delay, self._finish, ticket)

    def _finish(self, ticket):
        self.building.discard(ticket)
        self.built += 1
        self.busy += ticket.delay
        self._next()
        ticket.done()

    def _next(self):
        while self.waiting and len(self.building) < self.capacity:
            self._start(self.waiting.popleft())


class Front(Factory):
    """
    One front (a Tor daemon's SOCKS port, an I2P router's SAM bridge): its
    own circuit cap, the delays it draws, and counters by event.

    Live targets take a draw from ``circuit_latency`` (lo, hi) seconds to
    reach, dead ones fail after a draw from ``dead_delay``; both hold one of
    the ``capacity`` slots meanwhile.
    """

    protocol = None

    def __init__(self, simnet, random, *, capacity, circuit_latency, dead_delay):
        self.simnet = simnet
        self.random = random
        self.gate = CircuitGate(simnet.clock, capacity)
        self.circuit_latency = circuit_latency
        self.dead_delay = dead_delay
        self.counters = {}

    def buildProtocol(self, addr):
        return self.protocol(self)

    def delay(self, live):
        """How long reaching a target takes (live) or failing to (dead)."""
        lo, hi = self.circuit_latency if live else self.dead_delay
        return self.random.uniform(lo, hi)

    def count(self, event):
        self.counters[event] = self.counters.get(event, 0) + 1

    def stats(self):
        """The counters and the gate's, JSON-ready."""
        return {**self.counters, **self.gate.stats()}


class FrontConnection(Protocol):
    """
    A client's connection to a front: the subclass negotiates from
    ``buffer`` (``negotiate``, called as bytes arrive until a circuit is
    asked for), asks for a circuit (``open_circuit``), then either hands the
    connection to the node (``hand_over``: from then on bytes go both ways)
    or fails it.  Like the simnet's own listener it serves loopback peers
    only, and counts against the simnet's connection limit.
    """

    def __init__(self, front):
        self.front = front
        self.simnet = front.simnet
        self.buffer = b""
        self.ticket = None
        self.inner = None
        self.closing = False

    def connectionMade(self):
        simnet = self.simnet
        if (not self.transport.getPeer().host.startswith("127.")
                or len(simnet.open) >= simnet.max_connections):
            self.transport.abortConnection()
            return
        simnet.open.add(self)
        self.front.count("connections")

    def dataReceived(self, data):
        if self.inner is not None:
            self.inner.dataReceived(data)
            return
        self.buffer += data
        if self.ticket is None and not self.closing:
            self.negotiate()

    def negotiate(self):
        """Consume what ``buffer`` holds of the negotiation."""
        raise NotImplementedError

    def open_circuit(self, live, built):
        """Ask for a circuit to a live or dead target; ``built()`` when it is done."""
        self.front.count("circuits")
        self.ticket = self.front.gate.build(self.front.delay(live), built)

    def hand_over(self, profile):
        """From now on the node ``profile`` talks on this connection."""
        self.front.count("served")
        self.inner = self.simnet.serve(profile, self.transport)
        rest, self.buffer = self.buffer, b""
        if rest:
            self.inner.dataReceived(rest)

    def close(self, event):
        """Count ``event`` and hang up (a refusal or a malformed request)."""
        self.front.count(event)
        self.closing = True
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.simnet.open.discard(self)
        if self.ticket is not None:
            self.front.gate.cancel(self.ticket)
        if self.inner is not None:
            self.inner.connectionLost(reason)
