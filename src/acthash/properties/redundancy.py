"""Redundancy ratio: the fraction of examples that share their code with an earlier one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from acthash.core.codes import as_codes
from acthash.errors import InputError

__all__ = ["count_distinct", "redundancy_ratio"]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xBF58476D1CE4E5B9)

#: bytes of packed rows hashed or compared at once (bounded memory on memory-mapped codes)
_HASH_BLOCK_BYTES = 32 << 20


def _hash_block_rows(packed: np.ndarray) -> int:
    return max(1, _HASH_BLOCK_BYTES // max(1, packed.shape[1]))


def _row_hashes(packed: np.ndarray) -> np.ndarray:
    """(N,) uint64 hash of each packed row (rows read in blocks)."""
    n, b = packed.shape
    pad = (-b) % 8
    h = np.full(n, _MIX, dtype=np.uint64)
    step = _hash_block_rows(packed)
    for lo in range(0, n, step):
        block = np.asarray(packed[lo : lo + step])
        words = np.ascontiguousarray(np.pad(block, ((0, 0), (0, pad))) if pad else block)
        words = words.view(np.uint64)
        hb = h[lo : lo + step]
        with np.errstate(over="ignore"):
            for j in range(words.shape[1]):
                hb ^= words[:, j]
                hb *= _MUL
                hb ^= hb >> np.uint64(31)
    return h


def count_distinct(codes) -> int:
    """Number of distinct codes, by hashing the packed rows (O(N)), verified exactly; the
    rows are read in blocks, so memory-mapped codes are never copied whole."""
    return _count_distinct(as_codes(codes).packed)


def _count_distinct(packed: np.ndarray) -> int:
    n = packed.shape[0]
    if n == 0:
        return 0
    group, uniques = pd.factorize(_row_hashes(packed))
    first = np.empty(len(uniques), dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    step = _hash_block_rows(packed)
    if all(np.array_equal(packed[lo : lo + step], packed[first[group[lo : lo + step]]])
           for lo in range(0, n, step)):
        return len(uniques)
    # a 64-bit hash collision between different codes: count exactly
    return len({row.tobytes() for row in packed})


def redundancy_ratio(codes) -> float:
    """(N - number of distinct codes) / N; 0 means every example has its own code."""
    codes = as_codes(codes)
    if len(codes) == 0:
        raise InputError("no codes: redundancy is undefined for an empty set")
    return (len(codes) - _count_distinct(codes.packed)) / len(codes)


def _measure(m, split: str, codes, labels) -> dict:
    """Record step (see :mod:`acthash.properties.catalog`): ``redundancy_{split}``."""
    return {f"redundancy_{split}": redundancy_ratio(codes)}
