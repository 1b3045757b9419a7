"""NeuralCodes.from_bits: one-pass validation + packing against the two-pass baseline
(``np.isin(bits, (0, 1)).all()`` then ``np.packbits(bits.astype(bool))``), and against the
memory-bandwidth limit (one read of the input, measured as ``bits.max()``).

Run: ``.venv/bin/python benchmarks/bench_from_bits.py [--quick]``.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
from bench_core import best_of  # the benchmarks' shared timer (this folder is on the path)

from acthash import NeuralCodes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, d = (8000, 1024) if args.quick else (48000, 1024)
    bits = (np.random.default_rng(0).random((n, d)) > 0.5).astype(np.uint8)

    def baseline():
        assert np.isin(bits, (0, 1)).all()
        return np.packbits(bits.astype(bool), axis=1)

    ours = best_of(lambda: NeuralCodes.from_bits(bits))
    base = best_of(baseline)
    read = best_of(lambda: bits.max())
    assert np.array_equal(NeuralCodes.from_bits(bits).packed, baseline())
    gb = bits.nbytes / 1e9
    print(f"machine: {platform.machine()}, {n} x {d} uint8 bits ({gb:.2f} GB)")
    print(f"[from_bits] acthash {ours:.4f}s ({gb / ours:.2f} GB/s), isin+packbits "
          f"{base:.4f}s: {base / ours:.1f}x faster; one read (max) {read:.4f}s "
          f"({gb / read:.2f} GB/s): {ours / read:.1f}x the bandwidth limit")


if __name__ == "__main__":
    main()
