"""K-Means on bit-packed neural codes, streamed over the rows in bounded memory.

The algorithm is scikit-learn's ``KMeans(algorithm="lloyd")``: greedy k-means++ seeding
(``2 + floor(ln K)`` candidates per centre, the one that lowers the potential most), Lloyd
iterations until the assignment stops changing or the total squared centre shift falls
below ``tol`` times the mean per-bit variance, at most ``max_iter`` iterations, an empty
cluster moved to the point farthest from its centre, ``n_init`` restarts keeping the lowest
inertia. Only the arithmetic differs, and it is exact:

- squared distances use ``||x - c||^2 = |x| - 2 x.c + ||c||^2``, where ``|x|`` (popcount of
  the row) and ``x.c`` come from the packed bits (:class:`~acthash.packed.PackedMatrix`:
  byte lookup tables on the CPU, chunked float32 matmuls with ``backend="torch"``);
- the seeding distances between a code and a candidate code are Hamming distances
  (popcounts of XORed 64-bit words);
- centres are the cluster means, from ``X.T @ onehot(labels)`` over the packed rows, then
  updated from the codes that changed cluster only (integer sums, exact);
- Hamerly's bounds skip the distances of codes that provably keep their cluster, so each
  assignment is still the one a full pass gives (see ``_lloyd``).

Memory: the packed codes (memory-mapped files stay on disk), the (K, n_bits) centres and the
product's working set under ``memory_budget``; never an unpacked (N, n_bits) array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acthash.codes import as_codes
from acthash.errors import InputError
from acthash.packed import PackedMatrix, parse_memory_budget

__all__ = ["KMeansResult", "kmeans_packed"]


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


def _assign(d: np.ndarray):
    """labels, distance to the nearest and to the second nearest centre (not squared)."""
    labels = d.argmin(axis=1)
    r = np.arange(len(d))
    upper = np.sqrt(d[r, labels])
    if d.shape[1] == 1:
        return labels, upper, np.full(len(d), np.inf)
    part = np.partition(d, 1, axis=1)
    return labels, upper, np.sqrt(part[:, 1])


_SAFE = 1e-9  # relative margin of the bound tests against rounding


def _lloyd(mat, norms, centers, max_iter, tol):
    """Lloyd iterations with scikit-learn's stopping rule, made cheaper by two exact devices:

    - Hamerly's bounds: a code whose distance to its centre is provably below half the gap
      to every other centre (upper/lower bounds updated by the centre shifts) keeps its
      label without computing its distances; only the others are recomputed, so every
      assignment is the one a full pass gives;
    - centre sums updated from the codes that changed cluster (integer counts, exact in
      float64) instead of a full pass.
    """
    k = centers.shape[0]
    n = len(mat)
    d = _sqdist(mat, norms, centers)
    labels, upper, lower = _assign(d)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    sums = mat.rmatmul(onehot).T  # (k, n_bits)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        new_centers = np.empty_like(centers)
        full = counts > 0
        new_centers[full] = sums[full] / counts[full, None]
        relocated = not full.all()
        if relocated:  # empty clusters take the farthest codes (scikit-learn)
            far = np.argsort(-upper, kind="stable")[: int((~full).sum())]
            new_centers[~full] = mat.unpack_rows(far)
        delta = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        shift = float((delta**2).sum())
        centers = new_centers
        if shift <= tol:
            break
        # bounds after the move
        order = np.argsort(-delta, kind="stable")
        top = delta[order[0]]
        second = delta[order[1]] if k > 1 else 0.0
        upper = upper + delta[labels]
        lower = lower - np.where(labels == order[0], second, top)
        if relocated:
            upper[:] = np.inf
        cc = np.sqrt(np.stack([((centers - c) ** 2).sum(axis=1) for c in centers]))
        np.fill_diagonal(cc, np.inf)
        half = 0.5 * cc.min(axis=1)
        bound = np.maximum(half[labels], lower)
        todo = np.flatnonzero(upper * (1 + _SAFE) >= bound * (1 - _SAFE))
        new_labels = labels.copy()
        if len(todo):
            dt = _sqdist(mat, norms, centers, todo)
            lt, ut, lo = _assign(dt)
            new_labels[todo], upper[todo], lower[todo] = lt, ut, lo
        moved = np.flatnonzero(new_labels != labels)
        if len(moved) == 0:  # scikit-learn sees this at its next iteration
            strict = True
            n_iter += 1
            break
        delta_w = np.zeros((len(moved), k))
        delta_w[np.arange(len(moved)), new_labels[moved]] = 1.0
        delta_w[np.arange(len(moved)), labels[moved]] -= 1.0
        sums = sums + mat.rmatmul(delta_w, moved).T
        counts = counts + delta_w.sum(axis=0)
        labels = new_labels
    d = _sqdist(mat, norms, centers)  # exact distances for the inertia
    if not strict:
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
    (:func:`acthash.hamming.gram_matrix`), so an iteration costs one (N, N) @ (N, K)
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


#: "auto" takes the Gram path up to this many codes per byte of code: an iteration costs
#: N^2 K there and N * n_bytes * K table look-ups on the bits (measured crossover about 4)
_GRAM_ROWS_PER_BYTE = 4

#: K-Means solvers of :func:`kmeans_packed`
SOLVERS = ("auto", "gram", "tables")


def kmeans_packed(codes, n_clusters: int, *, n_init: int = 10, max_iter: int = 300,
                  tol: float = 1e-4, seed: int = 0, backend: str = "auto", device=None,
                  memory_budget=None, solver: str = "auto") -> KMeansResult:
    """K-Means with ``n_clusters`` clusters on codes (NeuralCodes or packed rows).

    Same algorithm and stopping rule as scikit-learn's Lloyd K-Means (see the module
    docstring); restart ``i`` draws its seeds from ``numpy.random.SeedSequence([seed, i])``,
    so the result is reproducible given ``seed``.

    solver : "gram" computes the (N, N) Gram matrix of the codes once (popcounts, exact
        integers; ``8 N^2`` bytes) and runs every restart in kernel form
        (:func:`_lloyd_gram`: one (N, N) @ (N, K) product per iteration); "tables" runs the
        iterations on the packed bits (byte lookup tables on the CPU, ``backend="numba"``,
        or chunked matmuls on a torch device, ``backend="torch"``); "auto" takes "gram" on
        the CPU when the Gram matrix fits ``memory_budget`` and the codes are long (N at most
        4 per byte of code, where it is the faster), else "tables". Both give the same
        clustering up to the rounding of the distances.
    """
    codes = as_codes(codes)
    n = len(codes)
    if n == 0:
        raise InputError("no codes: K-Means needs at least one example")
    if not 1 <= n_clusters <= n:
        raise InputError(f"n_clusters={n_clusters} must be between 1 and the number of codes {n}")
    if n_init < 1 or max_iter < 1:
        raise InputError("n_init and max_iter must be at least 1")
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; use 'auto', 'gram' or 'tables'")
    budget = parse_memory_budget(memory_budget)
    mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                       memory_budget=budget)
    norms = mat.row_sums()
    p = mat.column_sums() / n
    tol_abs = float(np.mean(p * (1.0 - p))) * tol
    if solver == "auto":
        solver = ("gram" if mat.backend == "numba" and 8 * n * n <= budget
                  and n <= _GRAM_ROWS_PER_BYTE * mat.n_bytes else "tables")
    if solver == "gram":
        return _kmeans_gram(codes, mat, norms, n_clusters, n_init, max_iter, tol_abs, seed,
                            budget)
    best = None
    for i in range(n_init):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        centers = _kmeans_plusplus(mat, norms, n_clusters, rng)
        labels, centers, inertia, n_iter = _lloyd(mat, norms, centers, max_iter, tol_abs)
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels.astype(np.int64), centers, inertia, n_iter, i)
    return best


def _kmeans_gram(codes, mat, norms, k, n_init, max_iter, tol_abs, seed, budget):
    from acthash.hamming import gram_matrix

    gram = gram_matrix(codes, memory_budget=min(budget, 32 << 20))

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
