"""
bitpeer: the Bitcoin peer-to-peer protocol for Twisted.

``bitpeer.wire`` is the pure codec; ``bitpeer.networks`` holds each chain's
parameters and seeds.
"""

__version__ = "0.1.0"
