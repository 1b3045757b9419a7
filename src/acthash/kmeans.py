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
  ``|x| + |y| - 2 x.y``;
- centres are the cluster means, from ``X.T @ onehot(labels)`` over the packed rows.

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


def _sqdist(mat: PackedMatrix, norms: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(N, K) squared distances, clipped at 0 against rounding."""
    d = norms[:, None] - 2.0 * mat.matmul(centers.T) + (centers**2).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_plusplus(mat: PackedMatrix, norms: np.ndarray, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeds (as scikit-learn's): (k, n_bits) float64 0/1 rows."""
    n = len(mat)
    trials = 2 + int(np.log(k))
    first = int(rng.integers(n))
    seeds = [first]
    c = mat.unpack_rows([first])
    closest = np.maximum(norms + norms[first] - 2.0 * mat.matmul(c.T)[:, 0], 0.0)
    potential = closest.sum()
    for _ in range(1, k):
        if potential <= 0:  # fewer distinct codes than clusters: any point will do
            cand = rng.integers(n, size=trials)
        else:
            cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * potential)
            cand = np.minimum(cand, n - 1)
        cb = mat.unpack_rows(cand)
        d = np.maximum(norms[:, None] + norms[cand][None, :] - 2.0 * mat.matmul(cb.T), 0.0)
        d = np.minimum(closest[:, None], d)
        pots = d.sum(axis=0)
        best = int(np.argmin(pots))
        seeds.append(int(cand[best]))
        closest, potential = d[:, best], pots[best]
    return mat.unpack_rows(seeds)


def _means(mat: PackedMatrix, labels: np.ndarray, k: int):
    onehot = np.zeros((len(labels), k))
    onehot[np.arange(len(labels)), labels] = 1.0
    sums = mat.rmatmul(onehot).T  # (k, n_bits)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return sums, counts


def _lloyd(mat, norms, centers, max_iter, tol):
    k = centers.shape[0]
    labels = None
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        d = _sqdist(mat, norms, centers)
        new_labels = d.argmin(axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            strict = True
            break
        labels = new_labels
        sums, counts = _means(mat, labels, k)
        new_centers = np.empty_like(centers)
        full = counts > 0
        new_centers[full] = sums[full] / counts[full, None]
        if not full.all():  # relocate empty clusters to the farthest points (scikit-learn)
            mind = d[np.arange(len(labels)), labels]
            far = np.argsort(-mind, kind="stable")[: int((~full).sum())]
            new_centers[~full] = mat.unpack_rows(far)
        shift = ((new_centers - centers) ** 2).sum()
        centers = new_centers
        if shift <= tol:
            break
    if not strict:
        d = _sqdist(mat, norms, centers)
        labels = d.argmin(axis=1)
    inertia = float(d[np.arange(len(labels)), labels].sum())
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
