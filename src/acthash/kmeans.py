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


def _kmeans_plusplus(mat: PackedMatrix, norms: np.ndarray, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeds (as scikit-learn's): (k, n_bits) float64 0/1 rows. Squared
    distances between binary codes are Hamming distances (popcounts of XORed words)."""
    n = len(mat)
    trials = 2 + int(np.log(k))
    first = int(rng.integers(n))
    seeds = [first]
    closest = mat.hamming_to_rows([first])[:, 0]
    potential = closest.sum()
    for _ in range(1, k):
        if potential <= 0:  # fewer distinct codes than clusters: any point will do
            cand = rng.integers(n, size=trials)
        else:
            cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * potential)
            cand = np.minimum(cand, n - 1)
        d = np.minimum(closest[:, None], mat.hamming_to_rows(cand))
        pots = d.sum(axis=0)
        best = int(np.argmin(pots))
        seeds.append(int(cand[best]))
        closest, potential = d[:, best], pots[best]
    return mat.unpack_rows(seeds)


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


def kmeans_packed(codes, n_clusters: int, *, n_init: int = 10, max_iter: int = 300,
                  tol: float = 1e-4, seed: int = 0, backend: str = "auto", device=None,
                  memory_budget=None) -> KMeansResult:
    """K-Means with ``n_clusters`` clusters on codes (NeuralCodes or packed rows).

    Same algorithm and stopping rule as scikit-learn's Lloyd K-Means (see the module
    docstring); restart ``i`` draws its seeds from ``numpy.random.SeedSequence([seed, i])``,
    so the result is reproducible given ``seed``. Runs on the CPU (``backend="numba"``,
    byte lookup tables) or on a torch device (``backend="torch"``, ``device="cuda"``).
    """
    codes = as_codes(codes)
    n = len(codes)
    if n == 0:
        raise InputError("no codes: K-Means needs at least one example")
    if not 1 <= n_clusters <= n:
        raise InputError(f"n_clusters={n_clusters} must be between 1 and the number of codes {n}")
    if n_init < 1 or max_iter < 1:
        raise InputError("n_init and max_iter must be at least 1")
    mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                       memory_budget=parse_memory_budget(memory_budget))
    norms = mat.row_sums()
    p = mat.column_sums() / n
    tol_abs = float(np.mean(p * (1.0 - p))) * tol
    best = None
    for i in range(n_init):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        centers = _kmeans_plusplus(mat, norms, n_clusters, rng)
        labels, centers, inertia, n_iter = _lloyd(mat, norms, centers, max_iter, tol_abs)
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels.astype(np.int64), centers, inertia, n_iter, i)
    return best
