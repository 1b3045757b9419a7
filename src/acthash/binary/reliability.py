"""Reliability of predictions (Mahalanobis distance to the predicted class's Gaussian,
its AUROC exact and as the authors approximate it) and Lee et al.'s Mahalanobis
out-of-distribution detector (class means, tied covariance, minimum distance)."""

from __future__ import annotations

import warnings

import numpy as np

from acthash.binary._arrays import _as_labels, _check_convention, as_numpy
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


def riemann_auroc(labels, scores, *, n_points: int = 101) -> float:
    """The authors' approximation of the AUROC: Σₖ Δx · P(s₊ > Q_{xₖ}(s₋)).

    xₖ = k·Δx for k = 0..n_points−1, Δx = 1/(n_points−1), Q_x the x-quantile (numpy's
    linear interpolation) of the negatives' scores, P the share of positives above it. A
    left-and-right Riemann sum over n_points nodes with weight Δx each: the total weight is
    1 + Δx, so it exceeds the exact AUROC (:func:`auroc`) by up to Δx (≈ +0.01 for a good
    detector with the authors' 101 points). NaN (with a warning) when a class is missing.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"labels {y.shape} and scores {s.shape} differ in length")
    if n_points < 2:
        raise InputError(f"n_points must be >= 2, got {n_points}")
    if y.all() or not y.any():
        warnings.warn("AUROC is undefined with only one class present; returning NaN",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    grid = np.linspace(0.0, 1.0, n_points)
    q = np.quantile(s[~y], grid)
    pos = np.sort(s[y])
    above = len(pos) - np.searchsorted(pos, q, side="right")  # positives strictly above q
    return float((above / len(pos)).sum() * (grid[1] - grid[0]))


def _ridged_precision(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    d = cov.shape[0]
    ridge = shrinkage * max(float(np.trace(cov)) / d, 1e-12) if shrinkage > 0 else 0.0
    return np.linalg.pinv(cov + ridge * np.eye(d))


def _finite(dist: np.ndarray) -> np.ndarray:
    """Distances with inf (no Gaussian for the predicted class) replaced by one value above
    every finite distance, so that those points rank last (tied) without overflowing the
    quantiles of :func:`riemann_auroc`."""
    fin = np.isfinite(dist)
    top = float(dist[fin].max()) if fin.any() else 0.0
    return np.where(fin, dist, 2.0 * top + 1.0)


def fit_class_gaussians(z, labels, *, shrinkage: float = 1e-6, min_size: int = 2) -> dict:
    """Per-class mean and inverse covariance of z (N, d) -> ``{class: (mean, precision)}``.

    The covariance (1/n_c divisor) gets ``shrinkage · mean variance`` added on its diagonal
    so that degenerate classes (few examples, collapsed dimensions) stay invertible. A
    class with fewer than ``min_size`` examples has no covariance and gets no Gaussian
    (RuntimeWarning); points predicted as it then score ``inf`` in
    :func:`mahalanobis_scores`.
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    out = {}
    small = []
    for k in np.unique(y):
        zk = z[y == k]
        if len(zk) < max(min_size, 1):
            small.append(int(k))
            continue
        cov = np.cov(zk, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
        out[int(k)] = (zk.mean(0), _ridged_precision(cov, shrinkage))
    if small:
        warnings.warn(f"classes {small} have fewer than {min_size} examples: no Gaussian is "
                      "fit for them (their points score inf)", RuntimeWarning, stacklevel=2)
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


def _split_arrays(z_train, y_train, pred_train, z_test, y_test, pred_test):
    z_train = as_numpy(z_train, "z_train")
    z_test = as_numpy(z_test, "z_test")
    if z_train.shape[1] != z_test.shape[1]:
        raise InputError(f"z_train has {z_train.shape[1]} dimensions but z_test "
                         f"{z_test.shape[1]}; pass features of the same layer")
    return (z_train, _as_labels(y_train, len(z_train), "y_train"),
            _as_labels(pred_train, len(z_train), "pred_train"), z_test,
            _as_labels(y_test, len(z_test), "y_test"),
            _as_labels(pred_test, len(z_test), "pred_test"))


def mahalanobis_reliability(z_train, y_train, pred_train, z_test, y_test, pred_test, *,
                            convention: str = "acthash", shrinkage: float = 1e-6,
                            n_points: int = 101) -> dict:
    """Reliability: how well the Mahalanobis distance of z to its predicted class's
    Gaussian (fit on the correctly classified training examples) tells correct from
    misclassified test examples.

    Returns a dict: ``auroc`` (exact, :func:`auroc`, correct = positive, score = −distance;
    1 = perfect, 0.5 = chance), ``auroc_riemann`` (the authors' approximation,
    :func:`riemann_auroc` with ``n_points``, on the same points), the raw distances
    ``distance_correct_train``, ``distance_misclassified_train``, ``distance_correct_test``,
    ``distance_misclassified_test`` (1-D float arrays, in units of the class's standard
    deviation) and the counts ``n_classes_fit``, ``n_correct_test``,
    ``n_misclassified_test`` of what entered the AUROC.

    - ``convention="acthash"`` (default): one Gaussian per class with ≥ 2 correct training
      examples (mean, covariance with 1/n, plus ``shrinkage`` · mean variance on the
      diagonal); every point is scored; a point predicted as a class without a Gaussian
      gets distance inf (the least reliable).
    - ``convention="authors"``: z is standardized with the training mean and std; a class
      gets a Gaussian only with more than 2 correct training examples (covariance with 1/n
      plus ``shrinkage`` = 10⁻⁶ on the standardized diagonal); of each such class the
      correct test points enter only if there are more than 2 of them, and the
      misclassified test points only if there are more than 2 of those (the same filter on
      train); points of other classes are dropped. The authors' code stops with an
      IndexError when no class keeps misclassified test points; here the AUROCs are then
      NaN (with a RuntimeWarning).
    """
    _check_convention(convention)
    z_tr, y_tr, p_tr, z_te, y_te, p_te = _split_arrays(z_train, y_train, pred_train,
                                                       z_test, y_test, pred_test)
    ok_tr, ok_te = y_tr == p_tr, y_te == p_te
    if not ok_tr.any():
        raise InputError("no correctly classified training example to fit the Gaussians on; "
                         "train the model longer")
    if convention == "acthash":
        gauss = fit_class_gaussians(z_tr[ok_tr], y_tr[ok_tr], shrinkage=shrinkage)
        d_tr = mahalanobis_scores(gauss, z_tr, p_tr)
        d_te = mahalanobis_scores(gauss, z_te, p_te)
        keep_tr = np.ones(len(z_tr), bool)
        keep_te = np.ones(len(z_te), bool)
        n_fit = len(gauss)
    else:
        mu = z_tr.mean(0)
        sd = z_tr.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        u_tr, u_te = (z_tr - mu) / sd, (z_te - mu) / sd
        d_tr, d_te = np.full(len(z_tr), np.inf), np.full(len(z_te), np.inf)
        keep_tr, keep_te = np.zeros(len(z_tr), bool), np.zeros(len(z_te), bool)
        n_fit = 0
        for k in np.unique(y_tr):
            fit = (p_tr == k) & ok_tr
            if fit.sum() <= 2:
                continue
            n_fit += 1
            uk = u_tr[fit]
            cov = np.cov(uk, rowvar=False, bias=True).reshape(uk.shape[1], uk.shape[1])
            prec = np.linalg.pinv(cov + shrinkage * np.eye(len(cov)))
            g = {int(k): (uk.mean(0), prec)}
            for u, p, ok, dist, keep in ((u_tr, p_tr, ok_tr, d_tr, keep_tr),
                                          (u_te, p_te, ok_te, d_te, keep_te)):
                for part in ((p == k) & ok, (p == k) & ~ok):
                    if part.sum() > 2:  # (the fit set itself always passes)
                        dist[part] = mahalanobis_scores(g, u[part], p[part])
                        keep[part] = True
    lab = ok_te[keep_te]
    score = -_finite(d_te[keep_te])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exact = auroc(lab, score) if len(lab) else float("nan")
        approx = riemann_auroc(lab, score, n_points=n_points) if len(lab) else float("nan")
    if np.isnan(exact):
        warnings.warn("reliability AUROC is undefined: no misclassified (or no correct) test "
                      f"point entered (convention={convention!r}); returning NaN",
                      RuntimeWarning, stacklevel=2)
    return {
        "auroc": exact,
        "auroc_riemann": approx,
        "distance_correct_train": d_tr[keep_tr & ok_tr],
        "distance_misclassified_train": d_tr[keep_tr & ~ok_tr],
        "distance_correct_test": d_te[keep_te & ok_te],
        "distance_misclassified_test": d_te[keep_te & ~ok_te],
        "n_classes_fit": n_fit,
        "n_correct_test": int(lab.sum()),
        "n_misclassified_test": int((~lab).sum()),
    }


def mahalanobis_auroc(z_train, y_train, pred_train, z_test, y_test, pred_test, *,
                      shrinkage: float = 1e-6, convention: str = "acthash",
                      method: str = "exact") -> float:
    """The ``auroc`` (``method="exact"``) or ``auroc_riemann`` (``method="riemann"``) of
    :func:`mahalanobis_reliability` (see there for the two conventions)."""
    if method not in ("exact", "riemann"):
        raise InputError(f"unknown method {method!r}; use 'exact' or 'riemann'")
    rel = mahalanobis_reliability(z_train, y_train, pred_train, z_test, y_test, pred_test,
                                  convention=convention, shrinkage=shrinkage)
    return rel["auroc"] if method == "exact" else rel["auroc_riemann"]


# --------------------------------------------------------------------- out of distribution
def fit_tied_gaussian(z, labels, *, shrinkage: float = 1e-6):
    """Class means and one shared ("tied") covariance, as in Lee et al. (2018).

    Returns ``(classes (C,), means (C, d), precision (d, d))``: Σ = 1/N Σ_c Σ_{i∈c}
    (z_i − μ_c)(z_i − μ_c)ᵀ (the pooled within-class covariance, divisor N) plus
    ``shrinkage`` · mean variance on the diagonal, inverted (pseudo-inverse).
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    classes = np.unique(y)
    if len(z) < 2:
        raise InputError("a tied Gaussian needs at least 2 examples")
    means = np.stack([z[y == k].mean(0) for k in classes])
    centred = z - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / len(z)
    return classes, means, _ridged_precision(cov, shrinkage)


def min_mahalanobis(tied, z) -> np.ndarray:
    """(N,) the smallest Mahalanobis distance of each z to the class means of a tied
    Gaussian (:func:`fit_tied_gaussian`); minus it is Lee et al.'s confidence score."""
    _, means, prec = tied
    z = as_numpy(z)
    if z.shape[1] != means.shape[1]:
        raise InputError(f"z has {z.shape[1]} dimensions, the Gaussian {means.shape[1]}")
    best = np.full(len(z), np.inf)
    for mu in means:
        dz = z - mu
        best = np.minimum(best, np.einsum("ij,jk,ik->i", dz, prec, dz))
    return np.sqrt(np.maximum(best, 0.0))


def ood_scores(z_train, y_train, z_in, z_out, *, method: str = "lee", pred_train=None,
               pred_in=None, pred_out=None, shrinkage: float = 1e-6):
    """``(s_in, s_out)``: out-of-distribution confidence scores (higher = more
    in-distribution) of in-distribution test features ``z_in`` and shifted ``z_out``.

    - ``method="lee"`` (default; Lee et al., 2018): class means of the training features by
      true label, one tied covariance (:func:`fit_tied_gaussian`), score = −min over
      classes of the Mahalanobis distance.
    - ``method="predicted"``: the reliability detector used as an OOD score — per-class
      Gaussians with their own covariance, fit on the correctly classified training
      features (:func:`fit_class_gaussians`), score = −distance to the *predicted* class;
      needs ``pred_train``, ``pred_in`` and ``pred_out``.
    """
    z_tr = as_numpy(z_train, "z_train")
    y_tr = _as_labels(y_train, len(z_tr), "y_train")
    z_in = as_numpy(z_in, "z_in")
    z_out = as_numpy(z_out, "z_out")
    for name, a in (("z_in", z_in), ("z_out", z_out)):
        if a.shape[1] != z_tr.shape[1]:
            raise InputError(f"{name} has {a.shape[1]} dimensions but z_train "
                             f"{z_tr.shape[1]}; pass features of the same layer")
    if method == "lee":
        tied = fit_tied_gaussian(z_tr, y_tr, shrinkage=shrinkage)
        return -min_mahalanobis(tied, z_in), -min_mahalanobis(tied, z_out)
    if method == "predicted":
        if pred_train is None or pred_in is None or pred_out is None:
            raise InputError("method='predicted' needs pred_train, pred_in and pred_out")
        p_tr = _as_labels(pred_train, len(z_tr), "pred_train")
        ok = p_tr == y_tr
        if not ok.any():
            raise InputError("no correctly classified training example to fit the "
                             "Gaussians on; train the model longer")
        gauss = fit_class_gaussians(z_tr[ok], y_tr[ok], shrinkage=shrinkage)
        d_in = mahalanobis_scores(gauss, z_in, _as_labels(pred_in, len(z_in), "pred_in"))
        d_out = mahalanobis_scores(gauss, z_out, _as_labels(pred_out, len(z_out), "pred_out"))
        both = _finite(np.r_[d_in, d_out])
        return -both[: len(d_in)], -both[len(d_in) :]
    raise InputError(f"unknown method {method!r}; use 'lee' or 'predicted'")


def ood_auroc(z_train, y_train, z_in, z_out, *, method: str = "lee", pred_train=None,
              pred_in=None, pred_out=None, shrinkage: float = 1e-6) -> float:
    """AUROC of telling in-distribution ``z_in`` (positive) from shifted ``z_out`` by the
    scores of :func:`ood_scores` (1 = perfectly separated, 0.5 = chance)."""
    s_in, s_out = ood_scores(z_train, y_train, z_in, z_out, method=method,
                             pred_train=pred_train, pred_in=pred_in, pred_out=pred_out,
                             shrinkage=shrinkage)
    return auroc(np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out])
