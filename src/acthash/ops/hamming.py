"""Hamming distances and k-nearest neighbours on bit-packed codes.

Neighbour order is by (Hamming distance, database index): among equally distant codes the
one stored first comes first. Backends, all exact and giving the same neighbours:
``"numba"`` (a compiled popcount kernel, the fastest here), ``"faiss"``
(``faiss.IndexBinaryFlat``), ``"numpy"`` (the chunked reference) and ``"torch"`` (packed
words on a torch device, CUDA or CPU; popcount by bit tricks). ``"auto"`` takes numba (torch
when ``device`` is an accelerator); backends are resolved by
:func:`acthash._utils.budget.resolve_backend`.

The database is streamed: it is read in blocks of rows (a memory-mapped ``.ahc`` is never
read whole) and each block's neighbours are merged into the running top-k by (distance,
index), so the result does not depend on the block size.

:func:`class_counts` counts, per query and class, the codes closer than and exactly at a
radius (numba, numpy or torch on a device): with the k-th distance from :func:`hamming_knn`
it gives the order-independent k-NN tie rule of :mod:`acthash.properties`.
:func:`share_counts` gives the same counts in one pass over the database, and
:func:`share_counts_loo` their leave-one-out form with each pair of codes compared once.
:func:`gram_matrix` gives the exact inner products ``x.y`` of the codes from the same
kernel (the kernel-form K-Means and logistic regression build on it).
"""

from __future__ import annotations

import time

import faiss
import numpy as np
from numba import get_num_threads

from acthash._kernels import hamming as _hamming_numba
from acthash._utils.budget import parse_memory_budget, resolve_backend
from acthash._utils.validate import as_packed, check_class_indices, check_code_length, check_k
from acthash.errors import InputError, ResourceError
from acthash.ops.bits import popcount, row_popcounts

__all__ = ["hamming_distances", "hamming_knn", "popcount", "KNN_BACKENDS",
           "available_backends", "class_counts", "hamming_distances_torch",
           "kth_distances_torch", "popcount_rate", "share_counts", "share_counts_loo", "gram_matrix"]

#: the CPU backends of :func:`hamming_knn`, fastest first (numba and faiss are dependencies)
KNN_BACKENDS = ("numba", "faiss", "numpy")

#: most bytes of database rows per streamed block of the faiss/numpy k-NN, below the memory
#: budget (fits the last-level cache of most CPUs)
_DB_BLOCK_BYTES = 32 << 20


def available_backends() -> list[str]:
    """The CPU k-NN backends, fastest first (:data:`KNN_BACKENDS`)."""
    return list(KNN_BACKENDS)


def hamming_distances(a, b, chunk: int = 1024) -> np.ndarray:
    """(Na, Nb) int32 Hamming distances between packed codes ``a`` and ``b``."""
    a, b = as_packed(a), as_packed(b)
    check_code_length(a, b)
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


def _merge(best_d, best_i, d, i, k):
    """Running top-k merged with a block's top-k, by (distance, index)."""
    d = np.concatenate([best_d, d.astype(np.int32)], axis=1)
    i = np.concatenate([best_i, i.astype(np.int64)], axis=1)
    order = np.lexsort((i, d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def _block_rows(n_bytes: int, memory_budget) -> int:
    budget = parse_memory_budget(memory_budget)
    return max(1, min(budget, _DB_BLOCK_BYTES) // max(1, n_bytes))


def _knn_faiss(db, q, k):
    index = faiss.IndexBinaryFlat(db.shape[1] * 8)
    index.add(np.ascontiguousarray(db))
    dist, idx = index.search(q, k)
    # faiss keeps the first-stored among equal distances; make the order within ties explicit
    order = np.lexsort((idx, dist), axis=1)
    return (
        np.take_along_axis(dist, order, 1).astype(np.int32),
        np.take_along_axis(idx, order, 1).astype(np.int64),
    )


def _torch_words(packed: np.ndarray, device):
    """(N, B) uint8 -> (N, ceil(B/4)) int32 torch tensor on ``device`` (zero padded)."""
    import torch

    pad = (-packed.shape[1]) % 4
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return torch.from_numpy(np.ascontiguousarray(packed).view(np.int32)).to(device)


def _torch_popcount(x):
    """Set bits of each int32 element (bit tricks; the masks drop sign-extended bits)."""
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    return (x * 0x01010101) >> 24


def _knn_torch(database, q, k, dev, memory_budget):
    """Exact k-NN on a torch device: distance tiles, then top-k of the key
    ``distance * N + index`` (so ties keep the smaller index) merged block by block."""
    import torch

    budget = parse_memory_budget(memory_budget)
    n = database.shape[0]
    n_words = (database.shape[1] + 3) // 4
    # one tile of (queries x database rows x words) int32 and its temporaries
    tile = max(1, budget // (16 * n_words))
    db_rows = max(k, min(n, int(np.sqrt(tile)) * 4, _block_rows(database.shape[1], budget)))
    q_rows = max(1, tile // db_rows)
    out_d = np.empty((q.shape[0], k), dtype=np.int32)
    out_i = np.empty((q.shape[0], k), dtype=np.int64)
    try:
        for qlo in range(0, q.shape[0], q_rows):
            qw = _torch_words(q[qlo : qlo + q_rows], dev)
            best = torch.full((qw.shape[0], k), torch.iinfo(torch.int64).max, device=dev)
            for lo in range(0, n, db_rows):
                dw = _torch_words(np.asarray(database[lo : lo + db_rows]), dev)
                dist = _torch_popcount(qw[:, None, :] ^ dw[None, :, :]).sum(-1, dtype=torch.int64)
                idx = torch.arange(lo, lo + dw.shape[0], device=dev)
                key = dist * n + idx[None, :]
                kk = min(k, key.shape[1])
                cand = torch.topk(key, kk, dim=1, largest=False, sorted=True).values
                best = torch.topk(torch.cat([best, cand], 1), k, dim=1, largest=False,
                                  sorted=True).values
            out_d[qlo : qlo + q_rows] = (best // n).cpu().numpy()
            out_i[qlo : qlo + q_rows] = (best % n).cpu().numpy()
    except torch.OutOfMemoryError as e:  # pragma: no cover - needs a GPU
        raise ResourceError(
            f"{dev} ran out of memory in the k-NN ({e}); lower memory_budget or use "
            "backend='numba' on the CPU"
        ) from e
    return out_d, out_i


def hamming_knn(database, queries, k: int, backend: str = "auto", *, memory_budget=None,
                device=None):
    """k nearest database codes of each query by Hamming distance.

    Returns ``(distances, indices)``, both (Nq, k), ordered by (distance, database index).
    backend : "auto" (numba; torch when ``device`` is an accelerator), "numba", "faiss",
        "numpy" or "torch".
    memory_budget : bytes (or "512MB") of packed rows read at once (with numba: one tile of
        query and database rows, at most 8 MiB, which keeps it in cache; other CPU backends:
        database blocks, at most 32 MiB); with
        ``backend="torch"``, the size of one distance tile on the device.
    device : torch device of ``backend="torch"`` (default: CUDA when available).
    The database (NeuralCodes or packed rows, possibly a memory map) is read block by block.
    """
    db, q = as_packed(database), as_packed(queries)
    check_code_length(db, q)
    k = check_k(k, db.shape[0])
    # backend="torch" without a device takes CUDA when available
    backend, dev = resolve_backend(backend, "auto" if backend == "torch" and device is None
                                   else device, allowed=("numba", "faiss", "numpy", "torch"),
                                   what="the Hamming k-NN")
    if backend == "torch":
        return _knn_torch(db, q, k, dev, memory_budget)
    if backend == "numba":
        best_d = np.full((q.shape[0], k), 2**31 - 1, dtype=np.int32)
        best_i = np.zeros((q.shape[0], k), dtype=np.int64)
        for qlo, lo, t in _distance_tiles(q, db, memory_budget):
            _hamming_numba.knn_rows(t, qlo, lo, best_d, best_i)
        return best_d, best_i
    step = _block_rows(db.shape[1], memory_budget)
    best_d = np.zeros((q.shape[0], 0), dtype=np.int32)
    best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
    for lo in range(0, db.shape[0], step):
        block = np.asarray(db[lo : lo + step])
        kk = min(k, block.shape[0])
        d, i = _knn_faiss(block, q, kk) if backend == "faiss" else _knn_numpy(block, q, kk)
        best_d, best_i = _merge(best_d, best_i, d, i + lo, k)
    return best_d, best_i


def popcount_rate(seconds: float = 1.0) -> float:
    """The machine's popcount limit: 64-bit words popcounted per second by a tight compiled
    loop over an L1-resident array, on all threads (the ceiling of the numba k-NN kernel)."""
    rows = max(1, get_num_threads())
    words = np.random.default_rng(0).integers(0, 2**63, size=(rows, 512), dtype=np.uint64)
    _hamming_numba.popcount_rate(words, 1)
    reps = 1000
    while True:
        t = time.perf_counter()
        _hamming_numba.popcount_rate(words, reps)
        dt = time.perf_counter() - t
        if dt >= seconds:
            return words.size * reps / dt
        reps *= 2


# ---------------------------------------------------------------------------------------------
# Per-class counts around a radius: the building block of the order-independent k-NN tie rule
# (acthash.properties). Given the k-th nearest distance d_k of each query (from hamming_knn),
# the rule needs, per class, how many database codes lie strictly closer than d_k and how many
# lie exactly at d_k; neither depends on the order of the database rows.


def _check_labels_arg(db: np.ndarray, labels, q: np.ndarray, n_classes):
    """Same code length, one class index in [0, n_classes) per database row."""
    check_code_length(db, q)
    return check_class_indices(labels, db.shape[0], n_classes, rows="database row")


def _check_counts_args(db: np.ndarray, labels, q: np.ndarray, radius, n_classes):
    labels, n_classes = _check_labels_arg(db, labels, q, n_classes)
    radius = np.ascontiguousarray(np.asarray(radius, dtype=np.int64))
    if radius.shape != (q.shape[0],):
        raise InputError(f"radius has shape {radius.shape}; pass one radius per query")
    return labels, radius, n_classes


def class_counts(database, labels, queries, radius, n_classes: int | None = None, *,
                 backend: str = "auto", device=None, chunk: int = 4096):
    """Per query and class, the database codes closer than and exactly at a Hamming radius.

    database : (N, B) packed codes (or NeuralCodes); labels : (N,) class indices in
        [0, n_classes); queries : (Q, B) packed codes; radius : (Q,) integer radii in bits.
    Returns ``(less, equal)``, both (Q, n_classes) int64: ``less[q, c]`` counts database
    codes of class c at distance < radius[q], ``equal[q, c]`` those at distance == radius[q].
    The counts do not depend on the order of the database rows.

    backend : "auto" (numba), "numba", "numpy" or "torch" (on the CPU); faiss has no
        counting primitive, so "faiss" counts with the numba kernel. ``device`` (a torch
        device such as "cuda" or "cpu") counts with torch on that device instead.
    """
    db, q = as_packed(database), as_packed(queries)
    labels, radius, n_classes = _check_counts_args(db, labels, q, radius, n_classes)
    if device is not None:  # a torch device counts with torch there, whatever the backend
        backend = "torch"
    backend, dev = resolve_backend(backend, device, allowed=("numba", "faiss", "numpy", "torch"),
                                   what="the class counts")
    if backend == "torch":
        return _class_counts_torch(db, labels, q, radius, n_classes, dev)
    if backend in ("numba", "faiss"):  # faiss has no counting primitive: the numba kernel
        to_words = _hamming_numba.as_words
        return _hamming_numba.class_counts_words(to_words(db), labels, to_words(q), radius,
                                                 n_classes)
    onehot = np.zeros((db.shape[0], n_classes), dtype=np.float64)
    onehot[np.arange(db.shape[0]), labels] = 1.0
    less = np.zeros((q.shape[0], n_classes), dtype=np.int64)
    equal = np.zeros_like(less)
    step = max(1, chunk // 16)
    for lo in range(0, q.shape[0], step):
        d = hamming_distances(q[lo : lo + step], db, chunk=64)
        r = radius[lo : lo + step, None]
        less[lo : lo + step] = np.rint((d < r).astype(np.float64) @ onehot).astype(np.int64)
        equal[lo : lo + step] = np.rint((d == r).astype(np.float64) @ onehot).astype(np.int64)
    return less, equal


# ---------------------------------------------------------------------------------------------
# The same counts in one pass (numba): the k-th distance and the per-class counts at and below it
# come out of one sweep over the database, and for leave-one-out each pair of codes is compared
# once (its distance updates both codes), so the rule costs half a database pass per query.

#: most rows of one side of a distance tile
_TILE_ROWS = 1024
#: most bytes of packed rows in the two blocks of one distance tile: 8 MiB (232 rows a side
#: of 144 256-bit codes); within a tile the kernel sweeps L2-sized chunks, which is what keeps
#: large tiles fast on a machine whose last-level cache is shared (BENCHMARKS.md)
_TILE_BYTES = 8 << 20


def _tile_rows(n_bytes: int, memory_budget) -> int:
    """Rows per side of a distance tile: two blocks of packed rows within the budget (at most
    ``_TILE_BYTES``, a cache-tuned cap)."""
    budget = parse_memory_budget(memory_budget)
    row = 8 * ((n_bytes + 7) // 8)
    if budget < 2 * (row + 4):
        raise ResourceError(f"memory budget {budget} bytes is too small for one pair of rows of "
                            f"{n_bytes} bytes (needs {2 * (row + 4)}); raise memory_budget "
                            "(e.g. '1GB')")
    return int(max(1, min(_TILE_ROWS, min(budget, _TILE_BYTES) // (2 * (row + 4)))))


def _share_state(nq: int, k: int, n_classes: int):
    best_d = np.full((nq, k), _hamming_numba.SENTINEL, dtype=np.int32)
    best_c = np.zeros((nq, k), dtype=np.int64)
    extra = np.zeros((nq, n_classes), dtype=np.int64)
    return best_d, best_c, extra


def _tile(buffer: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A C-contiguous (rows, cols) view of the front of a flat buffer (one compiled layout)."""
    return buffer[: rows * cols].reshape(rows, cols)


def _words_block(packed, lo: int, hi: int) -> np.ndarray:
    return _hamming_numba.as_words(np.asarray(packed[lo:hi]))


def _distance_tiles(a, b_rows, memory_budget, *, symmetric: bool = False):
    """Yield ``(ilo, jlo, tile)``: the int32 Hamming distances of rows ``ilo:`` of ``a``
    against rows ``jlo:`` of ``b_rows`` (packed codes), one tile of at most ``_TILE_ROWS``
    rows a side within ``memory_budget``. ``symmetric`` (``b_rows`` is ``a``): only the
    tiles with ilo <= jlo, in row-major order. The tile is a reused buffer: use it before
    the next one comes."""
    b = _tile_rows(a.shape[1], memory_budget)
    buffer = np.empty(b * b, dtype=np.int32)
    for ilo in range(0, a.shape[0], b):
        iw = _words_block(a, ilo, ilo + b)
        for jlo in range(ilo if symmetric else 0, b_rows.shape[0], b):
            jw = iw if symmetric and jlo == ilo else _words_block(b_rows, jlo, jlo + b)
            tile = _tile(buffer, iw.shape[0], jw.shape[0])
            _hamming_numba.distance_tile(iw, np.arange(iw.shape[0]), jw, tile)
            yield ilo, jlo, tile


def share_counts(database, labels, queries, k: int, n_classes: int | None = None, *,
                 memory_budget=None):
    """Per query and class, the database codes closer than and exactly at the query's k-th
    nearest Hamming distance, in one streamed pass (numba).

    database : (N, B) packed codes (or NeuralCodes, possibly memory-mapped); labels : (N,)
        class indices in [0, n_classes); queries : (Q, B) packed codes; 1 <= k <= N.
    Returns ``(less, equal)``, both (Q, n_classes) int64, equal to
    ``class_counts(database, labels, queries, d_k)`` with d_k the k-th distance of
    :func:`hamming_knn`; they do not depend on the order of the database rows.
    memory_budget : bytes (or "512MB") of packed rows held at once (two tile blocks; at most
        8 MiB).
    """
    db, q = as_packed(database), as_packed(queries)
    labels, n_classes = _check_labels_arg(db, labels, q, n_classes)
    k = check_k(k, db.shape[0])
    state = _share_state(q.shape[0], k, n_classes)
    for qlo, lo, t in _distance_tiles(q, db, memory_budget):
        _hamming_numba.share_rows(t, labels[lo : lo + t.shape[1]], qlo, lo, *state, False)
    return _hamming_numba.share_finish(*state)


def share_counts_loo(codes, labels, k: int, n_classes: int | None = None, *,
                     memory_budget=None):
    """Leave-one-out :func:`share_counts`: per code and class, the *other* codes closer than
    and exactly at its k-th nearest distance among the others (1 <= k < N).

    Each pair of codes is compared once: the database is cut into blocks of rows, and the
    distance tile of blocks I <= J updates the codes of both blocks, so the whole count costs
    N (N - 1) / 2 distances. Returns ``(less, equal)``, both (N, n_classes) int64.
    """
    db = as_packed(codes)
    labels, n_classes = _check_labels_arg(db, labels, db, n_classes)
    k = check_k(k, db.shape[0] - 1, "the number of other codes")
    n = db.shape[0]
    state = _share_state(n, k, n_classes)
    # tiles in row-major order: every code meets the others in increasing index order
    for ilo, jlo, t in _distance_tiles(db, db, memory_budget, symmetric=True):
        _hamming_numba.share_rows(t, labels[jlo : jlo + t.shape[1]], ilo, jlo, *state, True)
        if jlo != ilo:
            _hamming_numba.share_cols(t, labels[ilo : ilo + t.shape[0]], ilo, jlo, *state,
                                      True)
    return _hamming_numba.share_finish(*state)


def gram_matrix(codes, other=None, *, memory_budget=None, dtype=np.float64) -> np.ndarray:
    """Inner products of 0/1 codes: ``G[i, j]`` = bits set in both row i of ``codes`` and
    row j of ``other`` (default: ``codes`` itself, (N, N), each pair computed once), exact
    (an integer held in ``dtype``), from the popcount kernel as
    ``x.y = (|x| + |y| - hamming(x, y)) / 2``.

    The result takes ``N * M * itemsize`` bytes; the packed rows are read in tiles of at most
    ``min(memory_budget, 8 MiB)`` bytes, so memory-mapped codes work.
    """
    db = as_packed(codes)
    if other is not None:
        return _cross_gram(db, as_packed(other), memory_budget, dtype)
    n = db.shape[0]
    norms = row_popcounts(db)
    out = np.empty((n, n), dtype=dtype)
    for ilo, jlo, t in _distance_tiles(db, db, memory_budget, symmetric=True):
        ihi, jhi = ilo + t.shape[0], jlo + t.shape[1]
        g = (norms[ilo:ihi, None] + norms[None, jlo:jhi] - t) // 2
        out[ilo:ihi, jlo:jhi] = g
        if jlo != ilo:
            out[jlo:jhi, ilo:ihi] = g.T
    return out


def _cross_gram(a, b_rows, memory_budget, dtype, a_norms=None, b_norms=None):
    """(len(a), len(b_rows)) inner products; ``a_norms`` / ``b_norms`` (int64 popcounts of
    the rows) when the caller already has them."""
    check_code_length(a, b_rows)
    na_ = row_popcounts(a) if a_norms is None else a_norms
    nb_ = row_popcounts(b_rows) if b_norms is None else b_norms
    out = np.empty((a.shape[0], b_rows.shape[0]), dtype=dtype)
    for ilo, jlo, t in _distance_tiles(a, b_rows, memory_budget):
        ihi, jhi = ilo + t.shape[0], jlo + t.shape[1]
        out[ilo:ihi, jlo:jhi] = (na_[ilo:ihi, None] + nb_[None, jlo:jhi] - t) // 2
    return out


def _unpacked_torch(packed: np.ndarray, device, dtype):
    import torch

    bits = np.unpackbits(packed, axis=1)  # zero padding bits add nothing to any distance
    return torch.from_numpy(bits).to(device=device, dtype=dtype)


def hamming_distances_torch(a, b, device="cpu", chunk: int = 8192):
    """(Na, Nb) int64 torch tensor of Hamming distances, computed on ``device`` as
    popcount(a) + popcount(b) - 2 a.b with float64 matrix products (exact for any code
    length below 2**53 bits); the result stays on ``device``."""
    import torch

    a, b = as_packed(a), as_packed(b)
    check_code_length(a, b)
    dtype = torch.float64
    # keep each unpacked block near 256 MB whatever the code length
    chunk = max(1, min(chunk, 2**25 // max(1, 8 * a.shape[1])))
    ta = _unpacked_torch(a, device, dtype)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.int64, device=ta.device)
    na = ta.sum(1)
    for lo in range(0, b.shape[0], chunk):
        tb = _unpacked_torch(b[lo : lo + chunk], device, dtype)
        d = na[:, None] + tb.sum(1)[None, :] - 2.0 * (ta @ tb.T)
        out[:, lo : lo + chunk] = torch.round(d).to(torch.int64)
    return out


def kth_distances_torch(database, queries, k: int, device="cpu", chunk: int = 1024):
    """(Nq,) int64 numpy array: the k-th smallest Hamming distance from each query to the
    database (k counted from 1, ties included), computed with torch on ``device``."""
    import torch

    db, q = as_packed(database), as_packed(queries)
    k = check_k(k, db.shape[0])
    out = np.empty(q.shape[0], dtype=np.int64)
    chunk = max(1, min(chunk, 2**25 // max(1, 8 * q.shape[1])))
    for lo in range(0, q.shape[0], chunk):
        d = hamming_distances_torch(q[lo : lo + chunk], db, device=device)
        out[lo : lo + chunk] = torch.topk(d, k, dim=1, largest=False).values[:, -1].cpu().numpy()
    return out


def _class_counts_torch(db, labels, q, radius, n_classes, dev, chunk: int = 1024):
    import torch

    onehot = torch.zeros((db.shape[0], n_classes), dtype=torch.float64, device=dev)
    onehot[torch.arange(db.shape[0], device=dev), torch.from_numpy(labels).to(dev)] = 1.0
    less = np.empty((q.shape[0], n_classes), dtype=np.int64)
    equal = np.empty_like(less)
    chunk = max(1, min(chunk, 2**25 // max(1, 8 * q.shape[1])))
    for lo in range(0, q.shape[0], chunk):
        d = hamming_distances_torch(q[lo : lo + chunk], db, device=dev)
        r = torch.from_numpy(radius[lo : lo + chunk]).to(dev)[:, None]
        less[lo : lo + chunk] = torch.round((d < r).to(torch.float64) @ onehot).to(torch.int64).cpu().numpy()
        equal[lo : lo + chunk] = torch.round((d == r).to(torch.float64) @ onehot).to(torch.int64).cpu().numpy()
    return less, equal
