"""The latent code itself: bimodality of each dimension, histograms, the binary code
z > 0 (same-encoding fraction) and its hash view (He et al.'s encoding properties)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from acthash.binary._arrays import (
    _as_labels,
    _check_convention,
    _check_predicted_within,
    as_numpy,
)
from acthash.errors import InputError

#: relative variance floor of each mixture component, per convention (see :func:`bimodality`)
VAR_FLOOR = {"acthash": 1e-3, "authors": 1e-6}


# --------------------------------------------------------------------- bimodality
def _is_constant(col: np.ndarray) -> bool:
    return bool(np.ptp(col) <= 1e-12 * max(1.0, float(np.abs(col).max())))


def _fit_dims(z, seed: int, max_samples: int | None, var_floor: float) -> list:
    """One 2-component mixture per standardized dimension -> list of
    ``(separation, mean standardized σ, mean log-likelihood)`` or ``None`` (constant)."""
    from sklearn.mixture import GaussianMixture

    n, d = z.shape
    if n < 2:
        raise InputError("bimodality needs at least 2 examples")
    if var_floor < 0:
        raise InputError(f"var_floor must be >= 0, got {var_floor}")
    if max_samples is not None and n > max_samples:
        z = z[np.random.default_rng(seed).choice(n, max_samples, replace=False)]
    fits = []
    for j in range(d):
        col = z[:, j : j + 1]
        if _is_constant(col):
            fits.append(None)
            continue
        u = (col - col.mean()) / col.std()
        gm = GaussianMixture(2, random_state=seed, reg_covar=max(var_floor, 1e-12))
        with warnings.catch_warnings():
            # a dimension with < 2 distinct values: K-Means init finds fewer clusters
            warnings.simplefilter("ignore", category=Warning)
            gm.fit(u)
        mu = gm.means_.ravel()
        sd = np.sqrt(gm.covariances_.ravel())
        fits.append((abs(mu[0] - mu[1]) / sd.mean(), float(sd.mean()), float(gm.score(u))))
    return fits


def _floor(var_floor: float | None, convention: str) -> float:
    return VAR_FLOOR[_check_convention(convention)] if var_floor is None else float(var_floor)


def bimodality(z, *, seed: int = 0, max_samples: int | None = 5000,
               var_floor: float | None = None, convention: str = "acthash") -> np.ndarray:
    """(d,) peak separation |μ₁ − μ₂| / ((σ₁ + σ₂)/2) per dimension (dimensionless).

    Each dimension is standardized (zero mean, unit variance) and gets its own 2-component
    scikit-learn ``GaussianMixture`` (``random_state=seed``) whose component variances get
    ``var_floor`` added (scikit-learn's ``reg_covar``, i.e. ``var_floor · var(z_j)`` in the
    original units). The separation itself does not depend on the standardization. Large
    values (≫ 2) mean two well separated modes; a unimodal dimension gives a small value; a
    constant (dead) dimension gives 0. ``max_samples`` caps the points used per fit (a
    seeded random subset).

    ``convention`` sets the default floor:

    - ``"acthash"`` (default): ``var_floor = 1e-3``, so that a point mass (the zeros of a
      ReLU unit) cannot make the ratio arbitrarily large; two modes at ±m with width σ give
      2m / √(σ² + 10⁻³m²), at most ≈ 63.
    - ``"authors"``: ``var_floor = 1e-6`` (scikit-learn's default ``reg_covar`` on the
      standardized dimension, as in the authors' code): 2m / √(σ² + 10⁻⁶m²), at most 2000.
      For modes at ±1 with σ = 0.01: 60 (acthash) against 199 (authors).

    An explicit ``var_floor`` overrides the convention.
    """
    z = as_numpy(z)
    fits = _fit_dims(z, seed, max_samples, _floor(var_floor, convention))
    return np.array([0.0 if f is None else f[0] for f in fits])


def binarity_metrics(z, *, seed: int = 0, max_samples: int | None = 5000,
                     var_floor: float | None = None, convention: str = "acthash") -> dict:
    """Summary of the per-dimension 2-component mixtures of :func:`bimodality`.

    - ``peaks_distance_mean``, ``peaks_distance_min``, ``peaks_distance_std``: mean, minimum
      and spread (population std, ddof 0) of the peak separation over the d dimensions
      (constant dimensions count as 0).
    - ``gmm_std``: the mean over dimensions and both components of σ in standardized units
      (small = sharp peaks; 1 for a single Gaussian).
    - ``gmm_score``: the mean over dimensions of the mixture's mean log-likelihood per
      example on the standardized dimension (nats; higher = better described by two
      Gaussians).

    ``gmm_std`` and ``gmm_score`` are taken over the non-constant dimensions only (a
    constant dimension has no defined σ or density); they are NaN when every dimension is
    constant. ``convention`` and ``var_floor`` as in :func:`bimodality`.
    """
    z = as_numpy(z)
    fits = _fit_dims(z, seed, max_samples, _floor(var_floor, convention))
    sep = np.array([0.0 if f is None else f[0] for f in fits])
    live = [f for f in fits if f is not None]
    return {
        "peaks_distance_mean": float(sep.mean()),
        "peaks_distance_min": float(sep.min()),
        "peaks_distance_std": float(sep.std()),
        "gmm_std": float(np.mean([f[1] for f in live])) if live else float("nan"),
        "gmm_score": float(np.mean([f[2] for f in live])) if live else float("nan"),
    }


def latent_histograms(z, *, bins: int = 50, labels=None, dims=None) -> pd.DataFrame:
    """Histogram of each latent dimension as a tidy table.

    Rows: ``dim``, ``bin_left``, ``bin_right``, ``count`` (and ``label`` when labels are
    given: one histogram per class on the dimension's common bins).
    """
    z = as_numpy(z)
    dims = range(z.shape[1]) if dims is None else dims
    lab = None if labels is None else _as_labels(labels, len(z), "labels")
    rows = []
    for j in dims:
        edges = np.histogram_bin_edges(z[:, j], bins=bins)
        groups = [(None, z[:, j])] if lab is None else [(c, z[lab == c, j]) for c in np.unique(lab)]
        for c, vals in groups:
            counts, _ = np.histogram(vals, bins=edges)
            part = {"dim": j, "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts}
            if c is not None:
                part["label"] = int(c)
            rows.append(pd.DataFrame(part))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------- binary codes
def binarize(z, threshold: float = 0.0) -> np.ndarray:
    """(N, d) bool: z > threshold."""
    return as_numpy(z) > threshold


def same_encoding_fraction(z, predicted, *, threshold: float = 0.0,
                           per_class: bool = False, convention: str = "acthash",
                           labels=None):
    """Share of examples on their predicted class's most common binary code.

    z : (N, d) representation (binarized as z > threshold; a 0/1 code array works too)
    predicted : (N,) predicted classes. With m_c the count of class c's modal code and n_c
    the number of examples predicted as c:

    - ``convention="acthash"`` (default): the unweighted mean over predicted classes of
      m_c / n_c, so a small class counts as much as a large one.
    - ``convention="authors"``: pooled over examples, Σ_c m_c / N (large classes weigh
      more). Classes of 9/10 and 1/2 on their modal code give 0.70 (acthash) and 0.83.

    ``labels`` (optional, (N,)): the true labels; the authors' loop runs over the label
    classes, so with labels given a predicted class absent from them raises InputError
    instead of vanishing. 1 means each class sits on one hypercube vertex.
    ``per_class=True`` returns a Series of m_c / n_c indexed by class instead.
    """
    _check_convention(convention)
    bits = binarize(z, threshold)
    pred = _as_labels(predicted, len(bits), "predicted")
    if len(bits) == 0:
        raise InputError("no examples")
    if labels is not None:
        _check_predicted_within(pred, _as_labels(labels, len(bits), "labels"))
    packed = np.packbits(bits, axis=1)
    keys = pd.Series([row.tobytes() for row in packed])
    frame = pd.DataFrame({"cls": pred, "key": keys})
    counts = frame.groupby(["cls", "key"]).size()
    modal = counts.groupby(level="cls").max()
    sizes = frame.groupby("cls").size()
    share = (modal / sizes).astype(float)
    share.index.name = "class"
    if per_class:
        return share
    if convention == "authors":
        return float(modal.sum() / len(bits))
    return float(share.mean())


# --------------------------------------------------------------------- hash view
def within_class_redundancy(codes, labels) -> float:
    """Mean over classes of the redundancy ratio of the codes of that class (1 − distinct
    codes / class size); near 1 when each class shares a few codes."""
    from acthash.core.codes import as_codes
    from acthash.properties import redundancy_ratio

    codes = as_codes(codes)
    y = _as_labels(labels, len(codes), "labels")
    return float(np.mean([redundancy_ratio(codes[np.flatnonzero(y == k)]) for k in np.unique(y)]))


def hash_view(z_train, y_train, z_test, y_test, *, threshold: float = 0.0, **kwargs) -> dict:
    """Encoding properties (He et al.) of the binary code z > threshold, plus
    ``within_class_redundancy_{train,test}``. ``kwargs`` go to
    :func:`acthash.properties.encoding_properties` (k, seed, kmeans_n_init, ...)."""
    from acthash.core.codes import NeuralCodes
    from acthash.properties import encoding_properties

    z_train, z_test = as_numpy(z_train, "z_train"), as_numpy(z_test, "z_test")
    y_tr = _as_labels(y_train, len(z_train), "y_train")
    y_te = _as_labels(y_test, len(z_test), "y_test")
    tr = NeuralCodes.from_bits(binarize(z_train, threshold), labels=y_tr)
    te = NeuralCodes.from_bits(binarize(z_test, threshold), labels=y_te)
    with warnings.catch_warnings():
        # few distinct codes: K-Means warns that it found fewer clusters than asked for
        warnings.simplefilter("ignore", category=Warning)
        rec = encoding_properties(tr, None, te, None, **kwargs)
    rec["within_class_redundancy_train"] = within_class_redundancy(tr, y_tr)
    rec["within_class_redundancy_test"] = within_class_redundancy(te, y_te)
    return rec
