"""Sign random projections (Charikar, 2002): the one random-hyperplane hash of acthash.

:func:`srp_matrix` draws the (d, n_bits) Gaussian hyperplanes; :func:`srp_hash` hashes
vectors with them. :class:`acthash.retrieval.SignRandomProjection` is the same hash as a
fitted encoder (hyperplanes through the database mean, saved with the encoder).
"""

from __future__ import annotations

import numpy as np

__all__ = ["srp_matrix", "srp_hash"]


def srp_matrix(dim: int, n_bits: int, seed: int | list = 0) -> np.ndarray:
    """(dim, n_bits) float64 hyperplane normals, i.i.d. N(0, 1) from
    ``numpy.random.default_rng(seed)`` (``seed`` an int or a list of ints)."""
    return np.random.default_rng(seed).standard_normal((dim, n_bits))


def srp_hash(vectors: np.ndarray, n_bits: int, seed: int | list = 0) -> np.ndarray:
    """Sign-random-projection hash: (N, ceil(n_bits/8)) packed bits of ``vectors @ W > 0``
    with ``W = srp_matrix(d, n_bits, seed)``; ``vectors`` (N, ...) flattened to (N, d)."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    w = srp_matrix(vectors.shape[1], n_bits, seed)
    return np.packbits(vectors @ w > 0, axis=1)
