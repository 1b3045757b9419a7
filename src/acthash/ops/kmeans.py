"""K-Means on bit-packed neural codes, streamed over the rows in bounded memory.

The algorithm is scikit-learn's ``KMeans(algorithm="lloyd")``: greedy k-means++ seeding
(``2 + floor(ln K)`` candidates per centre, the one that lowers the potential most), Lloyd
iterations until the assignment stops changing or the total squared centre shift falls
below ``tol`` times the mean per-bit variance, at most ``max_iter`` iterations, an empty
cluster moved to the point farthest from its centre, ``n_init`` restarts keeping the lowest
inertia. Only the arithmetic differs, and it is exact:

- squared distances use ``||x - c||^2 = |x| - 2 x.c + ||c||^2``, where ``|x|`` (popcount of
  the row) and ``x.c`` come from the packed bits (:class:`~acthash.ops.packed.PackedMatrix`).
  On the CPU a centre is held as the integer column sums ``S`` of its ``n`` codes and
  ``x.c = (x.S) / n`` with ``x.S = sum_p 2^p popcount(x AND plane_p(S))`` over the bit
  planes of ``S`` (exact integers; ``solver="planes"``); byte lookup tables of the float
  centres (``"tables"``) and chunked float32 matmuls with ``backend="torch"`` are the
  alternatives, and for N up to a few codes per byte all of it runs in kernel form on the
  Gram matrix of the codes (``"gram"``);
- the seeding distances between a code and a candidate code are Hamming distances
  (popcounts of XORed 64-bit words);
- centres are the cluster means, from ``X.T @ onehot(labels)`` over the packed rows, then
  updated from the codes that changed cluster only (integer sums, exact);
- Elkan's bounds skip the distances of codes to centres that provably cannot take them, so
  each assignment is still the one a full pass gives (see ``_lloyd``).

Memory: the packed codes (memory-mapped files stay on disk), the (K, n_bits) centres and the
product's working set under ``memory_budget``; never an unpacked (N, n_bits) array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acthash._utils.budget import parse_memory_budget
from acthash._utils.validate import check_k
from acthash.core.codes import as_codes
from acthash.errors import InputError
from acthash.ops.hamming import gram_matrix
from acthash.ops.packed import PackedMatrix

__all__ = ["KMEANS_SOLVERS", "KMeansResult", "kmeans_packed"]


@dataclass
class KMeansResult:
    """labels (N,) int64 cluster of each code; centers (K, n_bits) float64 cluster means;
    inertia: sum of squared distances of the codes to their centre (bits^2);
    n_iter: Lloyd iterations of the best restart; best_init: its index."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    best_init: int


def _sqdist(mat: PackedMatrix, norms: np.ndarray, centers: np.ndarray,
            rows: np.ndarray | None = None) -> np.ndarray:
    """(n_rows, K) squared distances ``|x| - 2 x.c + ||c||^2``, clipped at 0 against rounding."""
    nr = norms if rows is None else norms[rows]
    d = nr[:, None] - 2.0 * mat.matmul(centers.T, rows) + (centers**2).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _plusplus_rows(hamming_to, n: int, k: int, rng: np.random.Generator) -> list[int]:
    """Greedy k-means++ seeds (as scikit-learn's): the indices of k rows. ``hamming_to(rows)``
    gives the (N, len(rows)) squared distances from every code to those rows (for binary
    codes, Hamming distances)."""
    trials = 2 + int(np.log(k))
    first = int(rng.integers(n))
    seeds = [first]
    closest = hamming_to(np.array([first]))[:, 0]
    potential = closest.sum()
    for _ in range(1, k):
        if potential <= 0:  # fewer distinct codes than clusters: any point will do
            cand = rng.integers(n, size=trials)
        else:
            cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * potential)
            cand = np.minimum(cand, n - 1)
        d = np.minimum(closest[:, None], hamming_to(cand))
        pots = d.sum(axis=0)
        best = int(np.argmin(pots))
        seeds.append(int(cand[best]))
        closest, potential = d[:, best], pots[best]
    return seeds


def _kmeans_plusplus(mat: PackedMatrix, norms: np.ndarray, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeds: (k, n_bits) float64 0/1 rows. Squared distances between
    binary codes are Hamming distances (popcounts of XORed words)."""
    return mat.unpack_rows(_plusplus_rows(mat.hamming_to_rows, len(mat), k, rng))


_SAFE = 1e-9  # relative margin of the bound tests against rounding


def _candidates(upper, lower, half, labels, rows):
    """(len(rows), K) bool: the centres other than its own that may be nearer to each code
    (Elkan's tests: neither the lower bound nor half the distance between the centres is
    above the upper bound, within the rounding margin)."""
    u = upper[rows, None] * (1 + _SAFE)
    cand = (u >= lower[rows] * (1 - _SAFE)) & (u >= half[labels[rows]] * (1 - _SAFE))
    cand[np.arange(len(rows)), labels[rows]] = False
    return cand


def _lloyd(mat, norms, centers, max_iter, tol, *, planes: bool = False):
    """Lloyd iterations with scikit-learn's stopping rule, made cheaper by two exact devices:

    - Elkan's bounds: an upper bound on each code's distance to its centre and a lower bound
      on its distance to every other centre, moved by the centre shifts each iteration. A
      centre is tried for a code only when neither its lower bound nor half its distance to
      the code's centre exceeds the upper bound (which is first made exact), so every
      assignment is the one a full pass gives (ties to the lowest index, as scikit-learn);
    - centre sums updated from the codes that changed cluster (integer counts, exact)
      instead of a full pass.

    ``planes`` (numba backend; ``centers`` must be 0/1 codes, e.g. k-means++ seeds): every
    centre is held as integer column sums ``S_k`` over ``n_k`` codes, and ``x . c_k =
    (x . S_k) / n_k`` comes exact from bit-plane popcounts
    (:meth:`~acthash.ops.packed.PackedMatrix.plane_matmul`, about ``log2(n_k)`` AND-popcount
    passes per centre), for just the (code, centre) pairs the bounds leave. Otherwise the
    table product of the float centres (any real-valued ``centers``), for all centres of the
    codes the bounds leave.
    """
    k = centers.shape[0]
    n = len(mat)

    def sqdist(rep, cnt, rows=None, need=None):
        """(n_rows, K) squared distances to the centres rep / cnt (planes: only where
        ``need``, inf elsewhere)."""
        if not planes:
            return _sqdist(mat, norms, rep / cnt[:, None], rows)
        nr = norms if rows is None else norms[rows]
        prod = mat.plane_matmul(rep, rows, need=need)
        d = np.maximum(nr[:, None] - 2.0 * prod / cnt[None, :]
                       + ((rep**2).sum(axis=1) / cnt**2)[None, :], 0.0)
        return d if need is None else np.where(need, d, np.inf)

    def own_sqdist(rep, cnt, labels, rows):
        """(len(rows),) squared distances of codes to their centres ``labels[rows]``."""
        need = np.zeros((len(rows), k), dtype=bool)
        need[np.arange(len(rows)), labels[rows]] = True
        return sqdist(rep, cnt, rows, need)[np.arange(len(rows)), labels[rows]]

    rep, cnt = np.asarray(centers, dtype=np.float64), np.ones(k)
    centers = rep / cnt[:, None]
    d = sqdist(rep, cnt)
    labels = d.argmin(axis=1)
    lower = np.sqrt(d)  # (n, k) bounds on the distance to every centre
    upper = lower[np.arange(n), labels].copy()
    if planes:
        sums = mat.group_sums(labels, k).astype(np.float64)  # (k, n_bits) integers
    else:
        onehot = np.zeros((n, k))
        onehot[np.arange(n), labels] = 1.0
        sums = mat.rmatmul(onehot).T  # (k, n_bits)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        full = counts > 0
        rep, cnt = sums.copy(), np.where(full, counts, 1.0)
        relocated = not full.all()
        if relocated:  # empty clusters take the farthest codes (scikit-learn)
            far = np.argsort(-upper, kind="stable")[: int((~full).sum())]
            rep[~full] = mat.unpack_rows(far)
        new_centers = rep / cnt[:, None]
        delta = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        shift = float((delta**2).sum())
        centers = new_centers
        if shift <= tol:
            break
        # bounds after the move
        upper = upper + delta[labels]
        lower = np.maximum(lower - delta[None, :], 0.0)
        if relocated:
            upper[:] = np.inf
        sq = (centers**2).sum(axis=1)
        half = 0.5 * np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * centers @ centers.T,
                                        0.0))
        np.fill_diagonal(half, np.inf)

        todo = np.flatnonzero(upper * (1 + _SAFE) >= half[labels].min(axis=1) * (1 - _SAFE))
        todo = todo[_candidates(upper, lower, half, labels, todo).any(axis=1)]
        new_labels = labels.copy()
        if len(todo) and not planes:  # the table product gives every centre at once
            dt = sqdist(rep, cnt, todo)
            lower[todo] = np.sqrt(dt)
            new_labels[todo] = dt.argmin(axis=1)
            upper[todo] = lower[todo, new_labels[todo]]
        elif len(todo):
            # make the upper bounds exact, then try the centres still in reach
            own = np.sqrt(own_sqdist(rep, cnt, labels, todo))
            upper[todo] = own
            lower[todo, labels[todo]] = own
            cand = _candidates(upper, lower, half, labels, todo)
            dist = np.sqrt(sqdist(rep, cnt, todo, cand))
            lower[todo] = np.where(cand, dist, lower[todo])
            dist[np.arange(len(todo)), labels[todo]] = own
            new_labels[todo] = dist.argmin(axis=1)
            upper[todo] = dist.min(axis=1)
        moved = np.flatnonzero(new_labels != labels)
        if len(moved) == 0:  # scikit-learn sees this at its next iteration
            strict = True
            n_iter += 1
            break
        if planes:
            sums = sums + mat.group_sums(
                np.concatenate([new_labels[moved], labels[moved]]), k,
                rows=np.concatenate([moved, moved]),
                sign=np.repeat([1, -1], len(moved)))
        else:
            delta_w = np.zeros((len(moved), k))
            delta_w[np.arange(len(moved)), new_labels[moved]] = 1.0
            delta_w[np.arange(len(moved)), labels[moved]] -= 1.0
            sums = sums + mat.rmatmul(delta_w, moved).T
        counts = counts + np.bincount(new_labels[moved], minlength=k) \
            - np.bincount(labels[moved], minlength=k)
        labels = new_labels
    if strict:  # the labels are final: only each code's own distance is needed
        inertia = float(own_sqdist(rep, cnt, labels, np.arange(n)).sum())
    else:  # exact distances for the final assignment and the inertia
        d = sqdist(rep, cnt)
        labels = d.argmin(axis=1)
        inertia = float(d[np.arange(n), labels].sum())
    return labels, centers, inertia, n_iter


def _gram_distances(gram, norms, weights, counts):
    """Squared distances (N, K) to the centres ``c_k = weights[:, k] @ X / counts[k]`` from
    the Gram matrix: ``|x| - 2 x.c_k + ||c_k||^2``; also returns ``gram @ weights`` (the
    integer products x.(weights_k @ X)) and the squared centre norms."""
    prod = gram @ weights
    cnorm = np.einsum("ik,ik->k", weights, prod) / counts**2
    d = norms[:, None] - 2.0 * prod / counts[None, :] + cnorm[None, :]
    return np.maximum(d, 0.0), prod, cnorm


def _lloyd_gram(gram, norms, seed_rows, max_iter, tol):
    """The Lloyd iterations of :func:`_lloyd` (same assignments, stopping rule, empty-cluster
    relocation and iteration count) in kernel form: every centre is a mean of codes, held as
    integer weights over the rows, and ``x.c`` comes from the Gram matrix ``X X^T``
    (:func:`acthash.ops.hamming.gram_matrix`), so an iteration costs one (N, N) @ (N, K)
    product of exact integers and never touches the bits. Returns (labels, weights (N, K),
    counts (K,), inertia, n_iter); the centres are ``weights.T @ X / counts``."""
    n = len(norms)
    k = len(seed_rows)
    rows = np.arange(n)
    weights = np.zeros((n, k))
    weights[np.asarray(seed_rows), np.arange(k)] = 1.0
    counts = np.ones(k)
    d, prod, cnorm = _gram_distances(gram, norms, weights, counts)
    labels = d.argmin(axis=1)
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        new_counts = np.bincount(labels, minlength=k).astype(np.float64)
        new_weights = np.zeros((n, k))
        new_weights[rows, labels] = 1.0
        empty = np.flatnonzero(new_counts == 0)
        if len(empty):  # empty clusters take the farthest codes (scikit-learn)
            far = np.argsort(-d[rows, labels], kind="stable")[: len(empty)]
            new_weights[:, empty] = 0.0
            new_weights[far, empty] = 1.0
            new_counts[empty] = 1.0
        new_d, new_prod, new_cnorm = _gram_distances(gram, norms, new_weights, new_counts)
        cross = np.einsum("ik,ik->k", new_weights, prod) / (new_counts * counts)
        shift = float(np.maximum(new_cnorm + cnorm - 2.0 * cross, 0.0).sum())
        weights, counts, d, prod, cnorm = new_weights, new_counts, new_d, new_prod, new_cnorm
        if shift <= tol:
            break
        new_labels = d.argmin(axis=1)
        if np.array_equal(new_labels, labels):  # scikit-learn sees this at its next iteration
            strict = True
            n_iter += 1
            break
        labels = new_labels
    if not strict:
        labels = d.argmin(axis=1)
    inertia = float(d[rows, labels].sum())
    return labels, weights, counts, inertia, n_iter


#: "auto" takes the Gram path up to one code per this many bytes of code: an iteration costs
#: an (N, N) @ (N, K) product there, against popcounts of the (code, centre) pairs Elkan's
#: bounds leave on the bits (measured: the Gram path 7.4x faster at 0.11 codes per byte,
#: the planes 2.1x faster at 0.55)
_GRAM_BYTES_PER_ROW = 3
#: "auto" takes the byte tables instead of the bit planes for codes of at most this many
#: bytes, whose tables stay in cache (measured: tables 1.1-1.8x faster at 125-250 bytes,
#: planes 3.2x faster at 1 000)
_TABLE_MAX_BYTES = 512

#: K-Means solvers of :func:`kmeans_packed`
KMEANS_SOLVERS = ("auto", "gram", "planes", "tables")


def kmeans_packed(codes, n_clusters: int, *, n_init: int = 10, max_iter: int = 300,
                  tol: float = 1e-4, seed: int = 0, backend: str = "auto", device=None,
                  memory_budget=None, solver: str = "auto") -> KMeansResult:
    """K-Means with ``n_clusters`` clusters on codes (NeuralCodes or packed rows).

    Same algorithm and stopping rule as scikit-learn's Lloyd K-Means (see the module
    docstring); restart ``i`` draws its seeds from ``numpy.random.SeedSequence([seed, i])``,
    so the result is reproducible given ``seed``.

    solver : "gram" computes the (N, N) Gram matrix of the codes once (popcounts, exact
        integers; ``8 N^2`` bytes) and runs every restart in kernel form
        (:func:`_lloyd_gram`: one (N, N) @ (N, K) product per iteration); "planes" runs the
        iterations on the packed bits with the centres as integer column sums and ``x.c``
        from bit-plane popcounts (exact; CPU); "tables" on the packed bits with byte lookup
        tables of the float centres (CPU, ``backend="numba"``) or chunked matmuls on a
        torch device (``backend="torch"``); "auto" takes, on the CPU, "gram" when the Gram
        matrix fits ``memory_budget`` and there are at least 3 bytes of code per code,
        "tables" for codes of at most 512 bytes, else "planes" (measured crossovers,
        ``benchmarks/bench_solvers.py``), and "tables" on a torch device. All give the same
        clustering up to the rounding of the distances.
    """
    codes = as_codes(codes)
    n = len(codes)
    if n == 0:
        raise InputError("no codes: K-Means needs at least one example")
    n_clusters = check_k(n_clusters, n, "the number of codes", "n_clusters")
    if n_init < 1 or max_iter < 1:
        raise InputError("n_init and max_iter must be at least 1")
    if solver not in KMEANS_SOLVERS:
        raise InputError(f"unknown solver {solver!r} for K-Means; use one of "
                         f"{', '.join(repr(x) for x in KMEANS_SOLVERS)}")
    budget = parse_memory_budget(memory_budget)
    mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                       memory_budget=budget)
    norms = mat.row_sums()
    p = mat.column_sums() / n
    tol_abs = float(np.mean(p * (1.0 - p))) * tol
    if solver in ("gram", "planes") and mat.backend != "numba":
        raise InputError(f"solver {solver!r} runs on the CPU (numba backend); use "
                         "solver='tables' with backend='torch'")
    if solver == "auto":
        if mat.backend != "numba":
            solver = "tables"
        elif 8 * n * n <= budget and n * _GRAM_BYTES_PER_ROW <= mat.n_bytes:
            solver = "gram"
        elif mat.n_bytes <= _TABLE_MAX_BYTES:
            solver = "tables"
        else:
            solver = "planes"
    if solver == "gram":
        return _kmeans_gram(codes, mat, norms, n_clusters, n_init, max_iter, tol_abs, seed,
                            budget)
    best = None
    for i in range(n_init):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        centers = _kmeans_plusplus(mat, norms, n_clusters, rng)
        labels, centers, inertia, n_iter = _lloyd(mat, norms, centers, max_iter, tol_abs,
                                                  planes=solver == "planes")
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels.astype(np.int64), centers, inertia, n_iter, i)
    return best


def _kmeans_gram(codes, mat, norms, k, n_init, max_iter, tol_abs, seed, budget):
    gram = gram_matrix(codes, memory_budget=budget)  # tiles capped at 8 MiB inside

    def hamming_to(rows):
        return norms[:, None] + norms[rows][None, :] - 2.0 * gram[:, rows]

    best = None
    for i in range(n_init):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        seeds = _plusplus_rows(hamming_to, len(norms), k, rng)
        labels, weights, counts, inertia, n_iter = _lloyd_gram(gram, norms, seeds, max_iter,
                                                               tol_abs)
        if best is None or inertia < best[3]:
            best = (labels, weights, counts, inertia, n_iter, i)
    labels, weights, counts, inertia, n_iter, i = best
    gram = None  # free the Gram matrix before the centres' product
    centers = mat.rmatmul(weights, dense=True).T / counts[:, None]
    return KMeansResult(labels.astype(np.int64), centers, inertia, n_iter, i)
