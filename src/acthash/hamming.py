"""Hamming distances and k-nearest neighbours on bit-packed codes.

Neighbour order is by (Hamming distance, database index): among equally distant codes the
one stored first comes first. Backends, all exact and giving the same neighbours:
``"numba"`` (a compiled popcount kernel, the fastest here), ``"faiss"``
(``faiss.IndexBinaryFlat``) and ``"numpy"`` (chunked, always available). ``"auto"`` takes
the first one installed in that order.
"""

from __future__ import annotations

import numpy as np

from acthash.errors import InputError, MissingDependencyError

try:  # pragma: no cover - exercised when faiss is importable
    import faiss

    HAVE_FAISS = True
except ImportError:  # pragma: no cover
    faiss = None
    HAVE_FAISS = False

try:  # pragma: no cover - exercised when numba is importable
    from acthash import _hamming_numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _hamming_numba = None
    HAVE_NUMBA = False

__all__ = ["hamming_distances", "hamming_knn", "popcount", "HAVE_FAISS", "HAVE_NUMBA",
           "available_backends"]


def available_backends() -> list[str]:
    """Installed k-NN backends, fastest first."""
    return [b for b, ok in (("numba", HAVE_NUMBA), ("faiss", HAVE_FAISS), ("numpy", True)) if ok]

_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint8 element."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _POPCOUNT_TABLE[a]


def _as_packed(x) -> np.ndarray:
    from acthash.codes import NeuralCodes

    if isinstance(x, NeuralCodes):
        return np.ascontiguousarray(x.packed)
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 2:
        raise InputError("expected NeuralCodes or a 2-D uint8 array of packed codes")
    return np.ascontiguousarray(x)


def hamming_distances(a, b, chunk: int = 1024) -> np.ndarray:
    """(Na, Nb) int32 Hamming distances between packed codes ``a`` and ``b``."""
    a, b = _as_packed(a), _as_packed(b)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"codes differ in length: {a.shape[1]} vs {b.shape[1]} bytes per row")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    for lo in range(0, a.shape[0], chunk):
        block = a[lo : lo + chunk, None, :] ^ b[None, :, :]
        out[lo : lo + chunk] = popcount(block).sum(axis=2, dtype=np.int32)
    return out


def _knn_numpy(db: np.ndarray, queries: np.ndarray, k: int, chunk: int = 256):
    dist = np.empty((queries.shape[0], k), dtype=np.int32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    for lo in range(0, queries.shape[0], chunk):
        d = hamming_distances(queries[lo : lo + chunk], db, chunk=64)
        # a stable sort on distance keeps database order among ties
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        idx[lo : lo + chunk] = order
        dist[lo : lo + chunk] = np.take_along_axis(d, order, 1)
    return dist, idx


def hamming_knn(database, queries, k: int, backend: str = "auto"):
    """k nearest database codes of each query by Hamming distance.

    Returns ``(distances, indices)``, both (Nq, k), ordered by (distance, database index).
    backend : "auto" (the fastest installed), "numba", "faiss" or "numpy".
    """
    db, q = _as_packed(database), _as_packed(queries)
    if db.shape[1] != q.shape[1]:
        raise InputError(f"codes differ in length: {db.shape[1]} vs {q.shape[1]} bytes per row")
    if not 1 <= k <= db.shape[0]:
        raise InputError(f"k={k} must be between 1 and the database size {db.shape[0]}")
    if backend == "auto":
        backend = available_backends()[0]
    if backend == "numpy":
        return _knn_numpy(db, q, k)
    if backend == "numba":
        if not HAVE_NUMBA:
            raise MissingDependencyError("numba is not installed: pip install numba, or use backend='numpy'")
        to_words = _hamming_numba.as_words
        return _hamming_numba.knn_words(to_words(db), to_words(q), k)
    if backend != "faiss":
        raise InputError(f"unknown backend {backend!r}; use 'auto', 'numba', 'faiss' or 'numpy'")
    if not HAVE_FAISS:
        raise MissingDependencyError("faiss is not installed: pip install faiss-cpu, or use backend='numpy'")
    index = faiss.IndexBinaryFlat(db.shape[1] * 8)
    index.add(db)
    dist, idx = index.search(q, k)
    # faiss keeps the first-stored among equal distances; make the order within ties explicit
    order = np.lexsort((idx, dist), axis=1)
    return (
        np.take_along_axis(dist, order, 1).astype(np.int32),
        np.take_along_axis(idx, order, 1).astype(np.int64),
    )
