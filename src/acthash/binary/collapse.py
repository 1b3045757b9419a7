"""Neural-collapse metrics of a representation (Papyan, Han & Donoho, 2020)."""

from __future__ import annotations

import numpy as np

from acthash.binary._arrays import _as_labels, as_numpy
from acthash.errors import InputError


# --------------------------------------------------------------------- neural collapse
def neural_collapse(z, labels) -> dict:
    """Neural-collapse metrics of features ``z`` (N, d) grouped by ``labels``.

    - ``nc1`` = Tr(Σ_W Σ_B⁺) / C with Σ_W the within-class covariance (1/N Σᵢ (zᵢ−μ_c)(…)ᵀ)
      and Σ_B the between-class covariance of the class means around the global mean
      (1/C Σ_c (μ_c−μ_G)(…)ᵀ); 0 = every example on its class mean.
    - ``equinorm`` = std / mean of ‖μ_c − μ_G‖ over classes (0 = equal norms).
    - ``equiangularity`` = std of the cosines between centred class means over class
      pairs (0 = equal angles); ``max_angle`` = mean |cos + 1/(C−1)| (0 = simplex ETF).
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    classes = np.unique(y)
    c = len(classes)
    if c < 2:
        raise InputError("neural-collapse metrics need at least two classes")
    mu_g = z.mean(0)
    means = np.stack([z[y == k].mean(0) for k in classes])
    centred = z - means[np.searchsorted(classes, y)]
    sigma_w = centred.T @ centred / len(z)
    m = means - mu_g
    sigma_b = m.T @ m / c
    nc1 = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / c)
    norms = np.linalg.norm(m, axis=1)
    equinorm = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    unit = m / np.where(norms > 0, norms, 1.0)[:, None]
    cos = unit @ unit.T
    iu = np.triu_indices(c, k=1)
    pair = cos[iu]
    return {
        "nc1": nc1,
        "equinorm": equinorm,
        "equiangularity": float(pair.std()),
        "max_angle": float(np.abs(pair + 1.0 / (c - 1)).mean()),
    }

