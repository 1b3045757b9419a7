"""Compiled per-query ranking statistics over packed codes (numba, one query per thread).

For each query the database is ranked by (Hamming distance, database index) without sorting:
a first pass histograms the distances (all items and relevant items per distance level), a
second pass walks the database in index order and places each item at
``items before its level + items of its level seen so far``, which is exactly its rank under
the stated tie rule. Memory per thread: one int32 distance per database item.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from acthash._kernels.hamming import popcount64


@njit(parallel=True, cache=True)
def rank_stats_words(db, queries, db_labels, q_labels, n_rel, ks, n_bits):
    """db (N, W), queries (Q, W) uint64; labels int64; n_rel (Q,) relevant items per query;
    ks (K,) int64 cut-offs.

    Returns ``ap`` (Q,) float64 average precision under the (distance, index) order,
    ``hits`` (Q, K) int64 relevant items among the first k, and the level histograms
    ``hist_n``, ``hist_r`` (Q, n_bits + 1) int64 (all items / relevant items per distance).
    """
    nq, w = queries.shape
    n = db.shape[0]
    nk = ks.shape[0]
    levels = n_bits + 1
    ap = np.zeros(nq, np.float64)
    hits = np.zeros((nq, nk), np.int64)
    hist_n = np.zeros((nq, levels), np.int64)
    hist_r = np.zeros((nq, levels), np.int64)
    for a in prange(nq):
        q = queries[a]
        lab = q_labels[a]
        d = np.empty(n, np.int32)
        hn = np.zeros(levels, np.int64)
        hr = np.zeros(levels, np.int64)
        for i in range(n):
            s = 0
            for j in range(w):
                s += popcount64(q[j] ^ db[i, j])
            d[i] = s
            hn[s] += 1
            if db_labels[i] == lab:
                hr[s] += 1
        before = np.zeros(levels, np.int64)
        rel_before = np.zeros(levels, np.int64)
        acc_n = 0
        acc_r = 0
        for h in range(levels):
            before[h] = acc_n
            rel_before[h] = acc_r
            acc_n += hn[h]
            acc_r += hr[h]
        seen = np.zeros(levels, np.int64)
        seen_rel = np.zeros(levels, np.int64)
        total = 0.0
        for i in range(n):
            h = d[i]
            pos = before[h] + seen[h]  # 0-based rank of item i
            seen[h] += 1
            if db_labels[i] == lab:
                found = rel_before[h] + seen_rel[h] + 1  # relevant items ranked <= pos
                seen_rel[h] += 1
                total += found / (pos + 1.0)
                for t in range(nk):
                    if pos < ks[t]:
                        hits[a, t] += 1
        ap[a] = total / n_rel[a] if n_rel[a] > 0 else 0.0
        hist_n[a] = hn
        hist_r[a] = hr
    return ap, hits, hist_n, hist_r
