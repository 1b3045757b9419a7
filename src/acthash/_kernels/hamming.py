"""Compiled exact Hamming kernels (numba): distance tiles by 64-bit popcount over packed
codes (LLVM emits the vector popcount instruction where the CPU has one; four rows share
each word), merged into sorted insertion lists of the k best (neighbour order is
(distance, index)) or into the one-pass state of the share tie rule."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(inline="always")
def popcount64(x):
    # LLVM turns this pattern into the hardware popcount instruction
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(inline="always")
def _insert(best_d, best_i, a, k, s, idx):
    # strict comparisons: an equal distance never displaces an earlier (smaller) index
    if s < best_d[a, k - 1]:
        p = k - 1
        while p > 0 and best_d[a, p - 1] > s:
            best_d[a, p] = best_d[a, p - 1]
            best_i[a, p] = best_i[a, p - 1]
            p -= 1
        best_d[a, p] = s
        best_i[a, p] = idx


@njit(parallel=True, cache=True)
def knn_rows(dist, row0, col0, best_d, best_i):
    """Merge the distance tile ``dist`` (R, Cn) int32 — queries ``row0 + r`` against database
    rows ``col0 + j`` — into the running top-k lists ``best_d`` (Q, k) int32 / ``best_i``
    (Q, k) int64, in place. Tiles of a query must come in increasing ``col0`` so that ties
    keep the smaller index."""
    k = best_d.shape[1]
    for r in prange(dist.shape[0]):
        a = row0 + r
        for j in range(dist.shape[1]):
            _insert(best_d, best_i, a, k, dist[r, j], col0 + j)


@njit(parallel=True, cache=True)
def popcount_rate(words, reps):
    """Tight loop: total popcount of ``words`` (R, W) uint64, ``reps`` times (a benchmark of
    the machine's popcount limit; keep ``words`` small enough for L1)."""
    tot = np.zeros(words.shape[0], np.uint64)
    for r in prange(words.shape[0]):
        s = np.uint64(0)
        for _ in range(reps):
            for j in range(words.shape[1]):
                s += popcount64(words[r, j])
        tot[r] = s
    return tot


def as_words(packed: np.ndarray) -> np.ndarray:
    """(N, B) uint8 -> (N, ceil(B/8)) uint64, zero-padded (pad bits never add distance)."""
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


@njit(parallel=True, cache=True)
def class_counts_words(db, labels, queries, radius, n_classes):
    """Per query a and class c: database rows of class c at distance < radius[a] (``less``)
    and == radius[a] (``equal``). db (N, W), queries (Q, W) uint64; labels (N,) int64 in
    [0, n_classes); radius (Q,) int64 -> (less, equal), both (Q, n_classes) int64."""
    nq, w = queries.shape
    n = db.shape[0]
    less = np.zeros((nq, n_classes), np.int64)
    equal = np.zeros((nq, n_classes), np.int64)
    for a in prange(nq):
        r = radius[a]
        q = queries[a]
        for i in range(n):
            s = np.int64(0)
            for j in range(w):
                s += np.int64(popcount64(q[j] ^ db[i, j]))
            if s < r:
                less[a, labels[i]] += 1
            elif s == r:
                equal[a, labels[i]] += 1
    return less, equal


# ---------------------------------------------------------------------------------------------
# One-pass state of the order-independent ("share") k-NN tie rule. Per query: the k smallest
# distances seen so far, sorted, with the labels of their rows (best_d (Q, k) int32, best_c
# (Q, k) int64; unfilled slots hold SENTINEL), and extra (Q, C) int64: per class, the rows seen
# at exactly the current k-th distance that are not in the list. Every row closer than the k-th
# distance is in the list, so at the end the list and ``extra`` give the per-class counts
# closer than and at the k-th distance, after one pass over the database in any order.

SENTINEL = np.int32(2**30)


@njit(inline="always")
def _share_add(best_d, best_c, extra, a, k, s, c):
    t = best_d[a, k - 1]
    if s > t:
        return
    if s == t:
        extra[a, c] += 1
        return
    ev = best_c[a, k - 1]
    p = k - 1
    while p > 0 and best_d[a, p - 1] > s:
        best_d[a, p] = best_d[a, p - 1]
        best_c[a, p] = best_c[a, p - 1]
        p -= 1
    best_d[a, p] = s
    best_c[a, p] = c
    if t != SENTINEL:
        if best_d[a, k - 1] == t:
            extra[a, ev] += 1  # the evicted row is still at the k-th distance
        else:
            for m in range(extra.shape[1]):  # the k-th distance dropped below t
                extra[a, m] = 0


#: bytes of ``b`` rows one sweep of :func:`distance_tile` keeps hot (fits a core's L2 beside
#: the four rows of ``a`` it pairs them with)
_B_CHUNK_BYTES = 1 << 20


@njit(parallel=True, cache=True)
def distance_tile(a, rows, b, out):
    """out[r, j] = Hamming distance of rows a[rows[r]] and b[j]; a (Na, W), b (Nb, W)
    uint64, rows (n,) int64, out (n, Nb) int32. Register blocks of four rows of ``a`` by two
    rows of ``b`` (each word loaded serves four or two popcounts), the rows of ``b`` in
    chunks of about 1 MiB that every block of ``a`` sweeps while they stay in L2."""
    na = rows.shape[0]
    w = a.shape[1]
    nb = b.shape[0]
    n_quads = (na + 3) // 4
    chunk = max(2, (_B_CHUNK_BYTES // (8 * max(1, w))) // 2 * 2)
    for j0 in range(0, nb, chunk):
        j1 = min(nb, j0 + chunk)
        for t in prange(n_quads):
            i = 4 * t
            if i + 4 <= na:
                i0 = rows[i]
                i1 = rows[i + 1]
                i2 = rows[i + 2]
                i3 = rows[i + 3]
                for j in range(j0, j1 - 1, 2):
                    s0 = np.uint64(0)
                    s1 = np.uint64(0)
                    s2 = np.uint64(0)
                    s3 = np.uint64(0)
                    r0 = np.uint64(0)
                    r1 = np.uint64(0)
                    r2 = np.uint64(0)
                    r3 = np.uint64(0)
                    for m in range(w):
                        y = b[j, m]
                        z = b[j + 1, m]
                        a0 = a[i0, m]
                        a1 = a[i1, m]
                        a2 = a[i2, m]
                        a3 = a[i3, m]
                        s0 += popcount64(a0 ^ y)
                        s1 += popcount64(a1 ^ y)
                        s2 += popcount64(a2 ^ y)
                        s3 += popcount64(a3 ^ y)
                        r0 += popcount64(a0 ^ z)
                        r1 += popcount64(a1 ^ z)
                        r2 += popcount64(a2 ^ z)
                        r3 += popcount64(a3 ^ z)
                    out[i, j] = np.int32(s0)
                    out[i + 1, j] = np.int32(s1)
                    out[i + 2, j] = np.int32(s2)
                    out[i + 3, j] = np.int32(s3)
                    out[i, j + 1] = np.int32(r0)
                    out[i + 1, j + 1] = np.int32(r1)
                    out[i + 2, j + 1] = np.int32(r2)
                    out[i + 3, j + 1] = np.int32(r3)
                if (j1 - j0) % 2:
                    j = j1 - 1
                    for x in range(i, i + 4):
                        s = np.uint64(0)
                        for m in range(w):
                            s += popcount64(a[rows[x], m] ^ b[j, m])
                        out[x, j] = np.int32(s)
            else:
                for x in range(i, na):
                    for j in range(j0, j1):
                        s = np.uint64(0)
                        for m in range(w):
                            s += popcount64(a[rows[x], m] ^ b[j, m])
                        out[x, j] = np.int32(s)


@njit(parallel=True, cache=True)
def share_rows(dist, col_labels, row0, col0, best_d, best_c, extra, skip_self):
    """Add the distance tile ``dist`` (R, Cn) int32 to the share state of its rows: row r is
    query ``row0 + r``, column j database row ``col0 + j`` of label ``col_labels[j]``; with
    ``skip_self`` (leave-one-out: queries and database are one set) the pair of a row with
    itself is skipped."""
    k = best_d.shape[1]
    for r in prange(dist.shape[0]):
        a = row0 + r
        for j in range(dist.shape[1]):
            if not skip_self or col0 + j != a:
                _share_add(best_d, best_c, extra, a, k, dist[r, j], col_labels[j])


@njit(parallel=True, cache=True)
def share_cols(dist, row_labels, row0, col0, best_d, best_c, extra, skip_self):
    """The transpose of :func:`share_rows`: add tile column j to the state of query
    ``col0 + j`` from the rows ``row0 + r`` (labels ``row_labels``)."""
    k = best_d.shape[1]
    for j in prange(dist.shape[1]):
        a = col0 + j
        for r in range(dist.shape[0]):
            if not skip_self or row0 + r != a:
                _share_add(best_d, best_c, extra, a, k, dist[r, j], row_labels[r])


@njit(cache=True)
def share_finish(best_d, best_c, extra):
    """The share state -> (less, equal), both (Q, C) int64: per class, the rows closer than
    and exactly at the k-th distance."""
    nq, k = best_d.shape
    less = np.zeros(extra.shape, np.int64)
    equal = extra.copy()
    for a in range(nq):
        t = best_d[a, k - 1]
        for p in range(k):
            if best_d[a, p] < t:
                less[a, best_c[a, p]] += 1
            else:
                equal[a, best_c[a, p]] += 1
    return less, equal
