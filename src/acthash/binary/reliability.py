"""Reliability of predictions: Mahalanobis distances to class Gaussians and their AUROC."""

from __future__ import annotations

import warnings

import numpy as np

from acthash.binary._arrays import _as_labels, as_numpy
from acthash.errors import InputError


# --------------------------------------------------------------------- reliability
def auroc(labels, scores) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive).

    The Mann–Whitney statistic with mid-ranks for ties: the probability that a random
    positive scores above a random negative (ties count 1/2); equals scikit-learn's
    ``roc_auc_score``. NaN (with a warning) when only one class is present.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"labels {y.shape} and scores {s.shape} differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        warnings.warn("AUROC is undefined with only one class present; returning NaN",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_class_gaussians(z, labels, *, shrinkage: float = 1e-6) -> dict:
    """Per-class mean and inverse covariance of z (N, d) -> ``{class: (mean, precision)}``.

    The covariance gets ``shrinkage · mean variance`` added on its diagonal so that
    degenerate classes (few examples, collapsed dimensions) stay invertible.
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    out = {}
    for k in np.unique(y):
        zk = z[y == k]
        mu = zk.mean(0)
        cov = np.cov(zk, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
        ridge = shrinkage * max(float(np.trace(cov)) / z.shape[1], 1e-12)
        out[int(k)] = (mu, np.linalg.pinv(cov + ridge * np.eye(z.shape[1])))
    return out


def mahalanobis_scores(gaussians: dict, z, predicted) -> np.ndarray:
    """(N,) Mahalanobis distance of each z to its predicted class's Gaussian (inf when the
    class has no Gaussian)."""
    z = as_numpy(z)
    pred = _as_labels(predicted, len(z), "predicted")
    dist = np.full(len(z), np.inf)
    for k, (mu, prec) in gaussians.items():
        sel = pred == k
        if sel.any():
            dz = z[sel] - mu
            dist[sel] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", dz, prec, dz), 0.0))
    return dist


def mahalanobis_auroc(z_train, y_train, pred_train, z_test, y_test, pred_test, *,
                      shrinkage: float = 1e-6) -> float:
    """Reliability: AUROC of telling correct from misclassified test examples by the
    Mahalanobis distance of z to its predicted class's Gaussian, fit on the correctly
    classified training examples. Correct = positive, score = −distance (1 = perfect)."""
    z_train = as_numpy(z_train, "z_train")
    z_test = as_numpy(z_test, "z_test")
    y_tr = _as_labels(y_train, len(z_train), "y_train")
    p_tr = _as_labels(pred_train, len(z_train), "pred_train")
    y_te = _as_labels(y_test, len(z_test), "y_test")
    p_te = _as_labels(pred_test, len(z_test), "pred_test")
    ok = y_tr == p_tr
    if not ok.any():
        raise InputError("no correctly classified training example to fit the Gaussians on")
    gauss = fit_class_gaussians(z_train[ok], y_tr[ok], shrinkage=shrinkage)
    dist = mahalanobis_scores(gauss, z_test, p_te)
    dist = np.where(np.isfinite(dist), dist, np.finfo(np.float64).max)
    return auroc(y_te == p_te, -dist)

