"""Hamming search at scale: exact ranking with acthash's kernel, and faiss binary indexes.

=========  ==========================================================================
``exact``  :func:`acthash.ops.hamming.hamming_knn` (compiled popcount kernel), order (distance,
           index)
``flat``   ``faiss.IndexBinaryFlat``: exact brute force
``hnsw``   ``faiss.IndexBinaryHNSW`` (M links per node, ``efSearch`` candidates): approximate
``ivf``    ``faiss.IndexBinaryIVF`` (``nlist`` Hamming k-means cells, ``nprobe`` visited):
           approximate
=========  ==========================================================================

:func:`search_benchmark` builds each index on the database, answers the queries and reports
build time, queries per second and recall@k against the exact ranking, twice: by identity
(share of the exact k neighbours returned; ties at the k-th distance can make two exact
answers differ) and by distance (share of returned items no farther than the exact k-th
neighbour; 1 for any exact answer).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import faiss
import numpy as np
import pandas as pd

from acthash._utils.validate import as_packed, check_k
from acthash.errors import ConfigError, InputError
from acthash.ops.hamming import hamming_knn

__all__ = ["INDEX_KINDS", "BinaryIndex", "recall_at_k", "search_benchmark"]

INDEX_KINDS = ("exact", "flat", "hnsw", "ivf")


class BinaryIndex:
    """A k-NN index over packed binary codes.

    kind : "exact", "flat", "hnsw" or "ivf"
    hnsw_m, ef_construction, ef_search : HNSW graph degree and candidate list sizes
    nlist, nprobe : IVF cells and cells visited per query (nlist default: ≈ 4·√N)
    """

    def __init__(self, kind: str = "exact", *, hnsw_m: int = 16, ef_construction: int = 64,
                 ef_search: int = 64, nlist: int | None = None, nprobe: int = 8) -> None:
        if kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index {kind!r}; choose one of {', '.join(INDEX_KINDS)}")
        self.kind, self.hnsw_m, self.ef_construction = kind, hnsw_m, ef_construction
        self.ef_search, self.nlist, self.nprobe = ef_search, nlist, nprobe
        self._db = None
        self._index = None

    def params(self) -> str:
        if self.kind == "hnsw":
            return f"M={self.hnsw_m}, efConstruction={self.ef_construction}, efSearch={self.ef_search}"
        if self.kind == "ivf":
            return f"nlist={self._nlist_used}, nprobe={self.nprobe}"
        return ""

    def build(self, database) -> BinaryIndex:
        db = as_packed(database)
        if len(db) == 0:
            raise InputError("the database is empty; add at least one code")
        self._db = db
        d = db.shape[1] * 8
        if self.kind == "exact":
            return self
        if self.kind == "flat":
            index = faiss.IndexBinaryFlat(d)
        elif self.kind == "hnsw":
            index = faiss.IndexBinaryHNSW(d, self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            self._nlist_used = self.nlist or max(1, min(len(db) // 39, int(4 * np.sqrt(len(db)))))
            quantizer = faiss.IndexBinaryFlat(d)
            index = faiss.IndexBinaryIVF(quantizer, d, self._nlist_used)
            index.train(db)
            index.nprobe = self.nprobe
            self._quantizer = quantizer  # faiss does not own it: keep it alive
        index.add(db)
        self._index = index
        return self

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)``, both (Nq, k); approximate indexes may return -1 for
        missing neighbours (their distance is then the code length + 1)."""
        if self._db is None:
            raise InputError("the index is empty; call .build(database) first")
        q = as_packed(queries)
        if q.shape[1] != self._db.shape[1]:
            raise InputError(f"query codes have {q.shape[1] * 8} bits, the index "
                             f"{self._db.shape[1] * 8}; encode them with the same encoder")
        k = check_k(k, len(self._db))
        if self.kind == "exact":
            return hamming_knn(self._db, q, k)
        dist, idx = self._index.search(q, k)
        dist = np.where(idx < 0, self._db.shape[1] * 8 + 1, dist)
        return dist.astype(np.int32), idx.astype(np.int64)


def recall_at_k(exact: tuple[np.ndarray, np.ndarray], approx: tuple[np.ndarray, np.ndarray]
                ) -> tuple[float, float]:
    """``(by identity, by distance)`` recall of an approximate answer against the exact one
    (both ``(distances, indices)`` of shape (Nq, k))."""
    (ed, ei), (ad, ai) = exact, approx
    k = ei.shape[1]
    same = np.array([np.intersect1d(e, a[a >= 0]).size for e, a in zip(ei, ai, strict=True)])
    close = ((ad <= ed[:, -1:]) & (ai >= 0)).sum(axis=1)
    return float(same.mean() / k), float(close.mean() / k)


def search_benchmark(database, queries, *, k: int = 10,
                     kinds: Sequence[str] = INDEX_KINDS, repeats: int = 1,
                     threads: int | None = None, **index_options) -> pd.DataFrame:
    """Build each index on ``database``, search ``queries``; one row per index with
    ``build_s``, ``search_s`` (best of ``repeats``), ``qps``, ``recall@k`` (identity) and
    ``recall@k_dist`` (distance) against the exact ranking. ``threads`` sets faiss's OpenMP
    threads (None: faiss's default)."""
    q = as_packed(queries)
    if threads is not None:
        faiss.omp_set_num_threads(int(threads))
    exact = None
    rows = []
    for kind in ["exact", *[x for x in kinds if x != "exact"]]:
        index = BinaryIndex(kind, **index_options)
        t0 = time.perf_counter()
        index.build(database)
        build_s = time.perf_counter() - t0
        index.search(q[:1], k)  # warm-up: compiles/loads the kernel outside the timing
        best = np.inf
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            answer = index.search(q, k)
            best = min(best, time.perf_counter() - t0)
        if exact is None:
            exact = answer
        r_id, r_dist = recall_at_k(exact, answer)
        if kind in kinds:
            rows.append({"index": kind, "params": index.params(), "n_database": len(index._db),
                         "n_queries": len(q), "n_bits": q.shape[1] * 8, "k": k,
                         "build_s": build_s, "search_s": best, "qps": len(q) / best,
                         f"recall@{k}": r_id, f"recall@{k}_dist": r_dist})
    return pd.DataFrame(rows)
