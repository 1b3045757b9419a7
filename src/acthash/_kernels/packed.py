"""Compiled kernels (numba) for linear algebra on bit-packed 0/1 rows, by byte lookup tables.

A packed row is ``B`` bytes; byte ``b`` holds bits ``8b .. 8b+7`` (most significant first).
For a dense (n_bits, M) matrix ``W``, the table ``T[b, v, m] = sum_j bit_j(v) * W[8b+j, m]``
(256 entries per byte) turns ``x @ W`` into ``B`` table look-ups per row, each adding an
``M``-vector, without unpacking the row. ``X.T @ R`` is the transpose: a histogram
``H[b, v, m] += R[i, m]`` over the rows, expanded to bits afterwards. All accumulation is in
float64 and in a fixed order, so results do not depend on where the rows are stored.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BYTE_BLOCK = 32  # bytes per task of lut_rmatmul (its histogram slice stays in L2)

#: _SPREAD[v]: the bits of the byte value v (most significant first) in the eight bytes of
#: a 64-bit word, bit j in byte j (so eight counters add in one 64-bit addition)
_SPREAD = np.array([sum(((v >> (7 - j)) & 1) << (8 * j) for j in range(8)) for v in range(256)],
                   dtype=np.uint64)

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(parallel=True, cache=True)
def lut_matmul(packed, rows, tables, out, chunk, byte_block):
    """out[r] = bits(packed[rows[r]]) @ W for tables built from W.

    packed (N, B) uint8; rows (n,) int64; tables (B, 256, M) float64 with tables[:, 0] = 0;
    out (n, M) float64, overwritten. Each task takes ``chunk`` rows and walks the bytes in
    blocks of ``byte_block`` (whose tables stay in L2 while every row of the chunk looks them
    up); each row's sum runs over the bytes in increasing order whatever the blocking.
    """
    n = rows.shape[0]
    n_bytes = packed.shape[1]
    m_cols = tables.shape[2]
    n_chunks = (n + chunk - 1) // chunk
    for t in prange(n_chunks):
        lo = t * chunk
        hi = min(n, lo + chunk)
        acc = np.zeros((hi - lo, m_cols), np.float64)
        for b0 in range(0, n_bytes, byte_block):
            b1 = min(n_bytes, b0 + byte_block)
            for r in range(lo, hi):
                i = rows[r]
                for b in range(b0, b1):
                    v = packed[i, b]
                    if v != 0:
                        for m in range(m_cols):
                            acc[r - lo, m] += tables[b, v, m]
        for r in range(lo, hi):
            for m in range(m_cols):
                out[r, m] = acc[r - lo, m]


@njit(parallel=True, cache=True)
def build_tables(w8, tables):
    """tables[b, v, m] = sum over the set bits j of v (most significant first) of
    w8[b, j, m]; w8 (B, 8, M) float64, tables (B, 256, M) float64, overwritten. Entry v is
    entry v-without-its-lowest-set-bit plus one row of ``w8``: one addition per entry."""
    n_bytes = w8.shape[0]
    m_cols = w8.shape[2]
    for b in prange(n_bytes):
        for m in range(m_cols):
            tables[b, 0, m] = 0.0
        for v in range(1, 256):
            low = v & (-v)
            j = 7
            while low > 1:
                low >>= 1
                j -= 1
            u = v & (v - 1)
            for m in range(m_cols):
                tables[b, v, m] = tables[b, u, m] + w8[b, j, m]


@njit(parallel=True, cache=True)
def expand_histogram(hist, out):
    """out[8b + j, m] = sum over v with bit j of v set of hist[b, v, m], v in increasing
    order; hist (B, 256, M) float64, out (8B, M) float64, overwritten."""
    n_bytes = hist.shape[0]
    m_cols = hist.shape[2]
    for b in prange(n_bytes):
        for j in range(8):
            bit = 1 << (7 - j)
            for m in range(m_cols):
                s = 0.0
                for v in range(256):
                    if v & bit:
                        s += hist[b, v, m]
                out[8 * b + j, m] = s


@njit(parallel=True, cache=True)
def lut_rmatmul(packed, rows, weights, hist):
    """hist[b, v, m] += sum over r with packed[rows[r], b] == v of weights[r, m].

    packed (N, B) uint8; rows (n,) int64; weights (n, M) float64; hist (B, 256, M) float64,
    accumulated into (pass zeros). Each task owns a block of bytes, so there is no race.
    """
    n = rows.shape[0]
    n_bytes = packed.shape[1]
    m_cols = weights.shape[1]
    n_blocks = (n_bytes + _BYTE_BLOCK - 1) // _BYTE_BLOCK
    for t in prange(n_blocks):
        lo = t * _BYTE_BLOCK
        hi = min(n_bytes, lo + _BYTE_BLOCK)
        for r in range(n):
            i = rows[r]
            for b in range(lo, hi):
                v = packed[i, b]
                if v != 0:
                    for m in range(m_cols):
                        hist[b, v, m] += weights[r, m]


@njit(parallel=True, cache=True)
def hamming_to(words, queries, out):
    """out[i, q] = Hamming distance between row i of ``words`` (N, W) uint64 and query q of
    ``queries`` (Q, W) uint64; out (N, Q) float64."""
    n, w = words.shape
    nq = queries.shape[0]
    for i in prange(n):
        for q in range(nq):
            s = np.uint64(0)
            for j in range(w):
                x = words[i, j] ^ queries[q, j]
                x = x - ((x >> np.uint64(1)) & _M1)
                x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
                x = (x + (x >> np.uint64(4))) & _M4
                s += (x * _H01) >> np.uint64(56)
            out[i, q] = s


@njit(cache=True)
def _flush(tmp, g, acc_t, sign):
    """Add the eight byte-wide counters of tmp[g, b] (bit j in byte j) to acc_t[g, 8b + j]
    times ``sign``, and clear them."""
    for b in range(tmp.shape[1]):
        v = tmp[g, b]
        if v != 0:
            for j in range(8):
                acc_t[g, 8 * b + j] += sign * np.int64((v >> np.uint64(8 * j)) & np.uint64(255))
            tmp[g, b] = np.uint64(0)


@njit(parallel=True, cache=True)
def add_row_bits(packed, rows, target, sign, acc):
    """acc[t, target[r], 8b + j] += sign[r] * bit j of packed[rows[r], b] (most significant
    first), the listed rows split into ``acc.shape[0]`` contiguous shares, share t added into
    acc[t] (no race; sum over t afterwards): integer column sums of groups of rows.

    Each byte of a row adds ``_SPREAD[v]`` (its eight bits in eight byte-wide counters of one
    64-bit word) into a per-group word, one addition per byte; the counters are flushed into
    ``acc`` before any of them can pass 255. packed (N, B) uint8; rows, target, sign (n,)
    int64 (sign +1 or -1); acc (T, K, >= 8B) int64, accumulated.
    """
    n = rows.shape[0]
    n_bytes = packed.shape[1]
    parts = acc.shape[0]
    k = acc.shape[1]
    for t in prange(parts):
        lo = t * n // parts
        hi = (t + 1) * n // parts
        pos = np.zeros((k, n_bytes), np.uint64)
        neg = np.zeros((k, n_bytes), np.uint64)
        n_pos = np.zeros(k, np.int64)
        n_neg = np.zeros(k, np.int64)
        for r in range(lo, hi):
            i = rows[r]
            c = target[r]
            if sign[r] > 0:
                for b in range(n_bytes):
                    pos[c, b] += _SPREAD[packed[i, b]]
                n_pos[c] += 1
                if n_pos[c] == 255:
                    _flush(pos, c, acc[t], 1)
                    n_pos[c] = 0
            else:
                for b in range(n_bytes):
                    neg[c, b] += _SPREAD[packed[i, b]]
                n_neg[c] += 1
                if n_neg[c] == 255:
                    _flush(neg, c, acc[t], -1)
                    n_neg[c] = 0
        for c in range(k):
            _flush(pos, c, acc[t], 1)
            _flush(neg, c, acc[t], -1)


@njit(cache=True)
def pack_planes(values, n_planes, out):
    """out[p] = bit p of every entry of ``values`` (n_bits,) int64 >= 0, packed as the codes
    are (bit j of the row: byte j // 8, most significant first) and viewed as 64-bit words;
    out (n_planes, W) uint64, overwritten."""
    n = values.shape[0]
    for p in range(n_planes):
        pp = np.uint64(p)
        for w in range(out.shape[1]):
            word = np.uint64(0)
            for k in range(min(64, n - 64 * w)):
                bit = (np.uint64(values[64 * w + k]) >> pp) & np.uint64(1)
                word |= bit << np.uint64(8 * (k // 8) + 7 - (k % 8))
            out[p, w] = word


#: fixed number of row shares of :func:`pair_matvec` (results do not depend on the threads)
_MATVEC_PARTS = 16


@njit(parallel=True, cache=True, fastmath=True)
def pair_matvec(a, abase, b, bbase, d, dbase, va, vb, ua, ub):
    """The product of the symmetric block matrix ``[[A, B], [B.T, D]]`` with ``[va; vb]``:
    ``ua = A @ va + B @ vb``, ``ub = B.T @ va + D @ vb``, where each block is stored as
    ``M[i, j] = base[i] + m[i, j]`` (m uint16 or float32 (rows, cols), base (rows,) float64:
    exact integers in a quarter or half of float64's bytes), reading each block once and
    accumulating in float64. va, ua (na,), vb, ub (nb,) float64; ua, ub overwritten.
    ``B.T @ va`` is summed over fixed shares of the rows, so the result does not depend on
    the number of threads; ``fastmath`` lets the compiler vectorize the sums (a fixed order
    per compiled kernel, so runs repeat bit for bit)."""
    na = a.shape[0]
    nb = d.shape[0]
    sa = 0.0
    for j in range(na):
        sa += va[j]
    sb = 0.0
    for j in range(nb):
        sb += vb[j]
    bva = 0.0
    for i in range(na):
        bva += bbase[i] * va[i]
    parts = _MATVEC_PARTS
    partial = np.zeros((parts, nb))
    for t in prange(parts):
        lo = t * na // parts
        hi = (t + 1) * na // parts
        for i in range(lo, hi):
            s = 0.0
            for j in range(na):
                s += np.float64(a[i, j]) * va[j]
            x = va[i]
            for j in range(nb):
                bij = np.float64(b[i, j])
                s += bij * vb[j]
                partial[t, j] += bij * x
            ua[i] = s + abase[i] * sa + bbase[i] * sb
    for j in prange(nb):
        s = 0.0
        for i in range(nb):
            s += np.float64(d[j, i]) * vb[i]
        for t in range(parts):
            s += partial[t, j]
        ub[j] = s + dbase[j] * sb + bva
