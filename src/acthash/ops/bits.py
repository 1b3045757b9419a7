"""Popcounts of bit-packed codes (uint8 rows), shared by every module of :mod:`acthash.ops`."""

from __future__ import annotations

import numpy as np

__all__ = ["popcount", "row_popcounts"]

_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint8 element."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _POPCOUNT_TABLE[a]


def row_popcounts(packed, step: int = 4096) -> np.ndarray:
    """Set bits of each packed row: (N,) int64 (popcounts of 64-bit words), read ``step``
    rows at a time (memory maps stay on disk)."""
    out = np.zeros(packed.shape[0], dtype=np.int64)
    for lo in range(0, packed.shape[0], step):
        block = np.asarray(packed[lo : lo + step])
        if hasattr(np, "bitwise_count"):
            pad = (-block.shape[1]) % 8
            words = np.ascontiguousarray(np.pad(block, ((0, 0), (0, pad))) if pad else block)
            out[lo : lo + step] = np.bitwise_count(words.view(np.uint64)).sum(axis=1,
                                                                                dtype=np.int64)
        else:
            out[lo : lo + step] = popcount(block).sum(axis=1, dtype=np.int64)
    return out
