"""
Codec throughput: decode and encode rates for 1000-entry addr and addrv2
messages and for version, whole-frame decode (header, checksum, payload) of a
1000-entry addr, decode of a realistic block (2,000 segwit transactions,
about 1.5 MB), and python-bitcoinlib's addr and block decode in the same run
for comparison.

    python bench/codec.py [--seconds S]

Each figure is the best of five timed rounds of at least S/5 seconds.
"""

import argparse
import io
import random
import sys
import time

from bitpeer.networks import MAINNET
from bitpeer.wire.address import AddrEntry, Network, NetworkAddress
from bitpeer.wire.framing import FrameDecoder, encode_frame
from bitpeer.wire.messages import (
    Addr,
    AddrV2,
    Block,
    BlockHeader,
    OutPoint,
    Tx,
    TxIn,
    TxOut,
    Version,
    decode_message,
)


def best_rate(func, units, seconds):
    """Units per second of ``func``: the best of five rounds."""
    rounds = []
    for _ in range(5):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            func()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        rounds.append(calls * units / (now - start))
    return max(rounds)


def sample_entries(rng, count, networks):
    """``count`` random entries spread over ``networks``, with realistic services."""
    sizes = {Network.IPV4: 4, Network.IPV6: 16, Network.TORV3: 32, Network.I2P: 32}
    entries = []
    for i in range(count):
        network = networks[i % len(networks)]
        host = rng.randbytes(sizes[network])
        if network == Network.IPV6:
            host = b"\x2a\x01" + host[2:]
        services = rng.choice((0x409, 0xC09, 0x9, 0x1, 0x449))
        port = 0 if network == Network.I2P else 8333
        entries.append(
            AddrEntry(1_700_000_000 + i, services, NetworkAddress(network, host, port))
        )
    return entries


def sample_block(rng, count):
    """
    A block of ``count`` segwit transactions shaped like mainnet's: one to
    eight P2WPKH inputs (a 72-byte signature and a 33-byte key each), two
    outputs.
    """
    txs = []
    for _ in range(count):
        inputs = [
            TxIn(OutPoint(rng.randbytes(32), rng.randrange(4)), b"", 0xFFFFFFFD,
                 [rng.randbytes(72), rng.randbytes(33)])
            for _ in range(rng.randint(1, 8))
        ]
        outputs = [TxOut(rng.randrange(10**8), b"\x00\x14" + rng.randbytes(20))
                   for _ in range(2)]
        txs.append(Tx(2, inputs, outputs))
    header = BlockHeader(0x20000000, rng.randbytes(32), rng.randbytes(32), 1_700_000_000,
                         0x17034219, rng.getrandbits(32))
    return Block(header, txs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seconds", type=float, default=2.5)
    args = parser.parse_args(argv)
    seconds = args.seconds
    rng = random.Random(1)

    addr = Addr(sample_entries(rng, 1000, [Network.IPV4, Network.IPV4, Network.IPV6]))
    addrv2 = AddrV2(
        sample_entries(
            rng, 1000, [Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P]
        )
    )
    version = Version(
        services=0x409,
        timestamp=1_700_000_000,
        addr_recv=NetworkAddress.parse("203.0.113.7:8333"),
        nonce=rng.getrandbits(64),
        user_agent="/Satoshi:27.0.0/",
        start_height=870_000,
        relay=True,
    )
    addr_payload = addr.encode_payload()
    addrv2_payload = addrv2.encode_payload()
    version_payload = version.encode_payload()
    addr_frame = encode_frame(MAINNET.magic, addr)
    block_payload = sample_block(rng, 2000).encode_payload()

    def whole_frame():
        (frame,) = FrameDecoder(MAINNET.magic).feed(addr_frame)
        frame.decode()

    results = {
        "addr decode (entries/s)": best_rate(
            lambda: decode_message("addr", addr_payload), 1000, seconds
        ),
        "addr encode (entries/s)": best_rate(addr.encode_payload, 1000, seconds),
        "addrv2 decode (entries/s)": best_rate(
            lambda: decode_message("addrv2", addrv2_payload), 1000, seconds
        ),
        "addrv2 encode (entries/s)": best_rate(addrv2.encode_payload, 1000, seconds),
        "version decode (msgs/s)": best_rate(
            lambda: decode_message("version", version_payload), 1, seconds
        ),
        "version encode (msgs/s)": best_rate(version.encode_payload, 1, seconds),
        "addr whole frame decode (msgs/s)": best_rate(whole_frame, 1, seconds),
        f"block decode, 2,000 txs, {len(block_payload):,} bytes (blocks/s)": best_rate(
            lambda: decode_message("block", block_payload), 1, seconds
        ),
    }

    from bitcoin.core import CBlock
    from bitcoin.messages import msg_addr

    def bitcoinlib_decode():
        msg_addr.msg_deser(io.BytesIO(addr_payload))

    bitcoinlib = best_rate(bitcoinlib_decode, 1000, seconds)
    results["python-bitcoinlib addr decode (entries/s)"] = bitcoinlib
    results["python-bitcoinlib block decode (blocks/s)"] = best_rate(
        lambda: CBlock.deserialize(block_payload), 1, seconds
    )

    width = max(map(len, results))
    for name, rate in results.items():
        print(f"{name:<{width}}  {rate:>14,.0f}")
    ratio = results["addr decode (entries/s)"] / bitcoinlib
    block_rate = next(rate for name, rate in results.items() if name.startswith("block decode"))
    print(
        f"SUMMARY addr {results['addr decode (entries/s)'] / 1e6:.2f}M/s "
        f"({ratio:.1f}x python-bitcoinlib), "
        f"addrv2 {results['addrv2 decode (entries/s)'] / 1e6:.2f}M/s, "
        f"addr frames {results['addr whole frame decode (msgs/s)']:,.0f}/s, "
        f"version {results['version decode (msgs/s)']:,.0f}/s, "
        f"1.5 MB block {1000 / block_rate:.0f} ms "
        f"(python-bitcoinlib {1000 / results['python-bitcoinlib block decode (blocks/s)']:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
