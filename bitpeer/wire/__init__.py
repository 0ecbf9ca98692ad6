"""
The pure codec: bytes to Bitcoin P2P messages and back.

No Twisted, no sockets, no clock: everything here is a function of its
arguments, so it is tested exhaustively and reused by every layer above.
"""
