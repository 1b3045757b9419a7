"""Neural-collapse metrics of a representation (Papyan, Han & Donoho, 2020)."""

from __future__ import annotations

import warnings

import numpy as np

from acthash.binary._arrays import (
    _as_labels,
    _check_convention,
    _check_predicted_within,
    as_numpy,
)
from acthash.errors import InputError


def neural_collapse(z, labels, predicted=None, *, convention: str = "acthash") -> dict:
    """Neural-collapse metrics of features ``z`` (N, d) grouped into classes.

    With groups c = 1..C, their means μ_c, the global mean μ_G (over all N examples),

    - ``nc1`` = Tr(Σ_W Σ_B⁺) / C, Σ_B = 1/C Σ_c (μ_c−μ_G)(μ_c−μ_G)ᵀ and Σ⁺ the
      Moore–Penrose pseudo-inverse (a rank-deficient Σ_B, e.g. C ≤ d, is fine: directions
      without between-class spread are ignored); 0 = every example on its class mean.
    - ``nc1_per_dim`` = nc1 / d; ``sigma_w`` = the mean entry of Σ_W (all d² entries).
    - ``equinorm`` = std / mean of ‖μ_c − μ_G‖ over groups (0 = equal norms).
    - ``equiangularity`` = std of the cosines between centred group means over pairs
      (0 = equal angles); ``max_angle`` = mean |cos + 1/(C−1)| (0 = simplex ETF).
    - ``relative_norm_std`` = std / mean of ‖μ_i − μ_j‖ over pairs i < j (0 = the means
      are equidistant). Every std has ddof 0.

    The conventions differ in the grouping and in Σ_W:

    - ``"acthash"`` (default): groups = the true ``labels``; Σ_W pooled over examples,
      1/N Σ_c Σ_{i∈c} (z_i−μ_c)(z_i−μ_c)ᵀ (the within-class covariance of Papyan et al.).
      A one-example class contributes no within-class scatter. ``predicted`` is not used.
    - ``"authors"``: groups = the ``predicted`` classes (required) that occur in
      ``labels`` (a predicted class absent from the labels raises InputError; a label
      class never predicted is left out and C counts the groups present); Σ_W = 1/C Σ_c
      S_c with S_c the class covariance with the n_c − 1 divisor. On balanced, error-free
      data with n examples per class Σ_W, nc1 and sigma_w are n/(n−1) times the acthash
      ones; with unbalanced classes or errors they can differ by tens of percent. A group
      with a single example has no n − 1 covariance: ``nc1``, ``nc1_per_dim`` and
      ``sigma_w`` are then NaN (with a RuntimeWarning naming the class); the
      mean-based metrics are still computed.

    Needs at least two groups. NaN or infinite features raise InputError.
    """
    _check_convention(convention)
    z = as_numpy(z)
    n, d = z.shape
    y = _as_labels(labels, n, "labels")
    if convention == "authors":
        if predicted is None:
            raise InputError("convention='authors' groups by the predicted classes: pass "
                             "predicted=(N,) predictions")
        group = _as_labels(predicted, n, "predicted")
        _check_predicted_within(group, y)
    else:
        group = y
    classes = np.unique(group)
    c = len(classes)
    if c < 2:
        raise InputError("neural-collapse metrics need at least two classes; got "
                         f"{c} ({'predicted' if convention == 'authors' else 'labels'})")
    mu_g = z.mean(0)
    means = np.stack([z[group == k].mean(0) for k in classes])
    sizes = np.array([int((group == k).sum()) for k in classes])
    centred = z - means[np.searchsorted(classes, group)]
    if convention == "acthash":
        sigma_w = centred.T @ centred / n
    elif (sizes < 2).any():
        lonely = classes[sizes < 2].tolist()
        warnings.warn(f"predicted classes {lonely} have a single example, whose n-1 "
                      "covariance is undefined: nc1 and sigma_w are NaN (convention="
                      "'authors'); use convention='acthash' to pool over examples",
                      RuntimeWarning, stacklevel=2)
        sigma_w = np.full((d, d), np.nan)
    else:
        sigma_w = np.zeros((d, d))
        for k, size in zip(classes, sizes, strict=True):
            dk = centred[group == k]
            sigma_w += dk.T @ dk / (size - 1)
        sigma_w /= c
    m = means - mu_g
    sigma_b = m.T @ m / c
    nc1 = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / c)
    norms = np.linalg.norm(m, axis=1)
    equinorm = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    unit = m / np.where(norms > 0, norms, 1.0)[:, None]
    cos = unit @ unit.T
    iu = np.triu_indices(c, k=1)
    pair = cos[iu]
    gaps = np.linalg.norm(m[iu[0]] - m[iu[1]], axis=1)
    return {
        "nc1": nc1,
        "nc1_per_dim": nc1 / d,
        "sigma_w": float(sigma_w.mean()),
        "equinorm": equinorm,
        "equiangularity": float(pair.std()),
        "max_angle": float(np.abs(pair + 1.0 / (c - 1)).mean()),
        "relative_norm_std": float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else float("nan"),
        "n_groups": c,
    }
