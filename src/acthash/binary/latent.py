"""The latent code itself: bimodality of each dimension, histograms, the binary code
z > 0 (same-encoding fraction) and its hash view (He et al.'s encoding properties)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from acthash.binary._arrays import _as_labels, as_numpy
from acthash.errors import InputError


# --------------------------------------------------------------------- bimodality
def bimodality(z, *, seed: int = 0, max_samples: int | None = 5000,
               var_floor: float = 1e-3) -> np.ndarray:
    """(d,) peak separation |μ₁ − μ₂| / ((σ₁ + σ₂)/2) per dimension.

    Each dimension gets its own 2-component scikit-learn ``GaussianMixture`` (full
    variances, ``random_state=seed``). Large values (≫ 2) mean two well separated modes; a
    unimodal dimension gives a small value. A constant dimension gives 0. ``max_samples``
    caps the points used per fit (a seeded random subset). ``var_floor`` · var(z_j) is
    added to each component's variance (scikit-learn's ``reg_covar``), so that a point
    mass (e.g. the zeros of a ReLU unit) cannot make the ratio arbitrarily large.
    """
    from sklearn.mixture import GaussianMixture

    z = as_numpy(z)
    n, d = z.shape
    if n < 2:
        raise InputError("bimodality needs at least 2 examples")
    if max_samples is not None and n > max_samples:
        z = z[np.random.default_rng(seed).choice(n, max_samples, replace=False)]
    out = np.zeros(d)
    for j in range(d):
        col = z[:, j : j + 1]
        if np.ptp(col) <= 1e-12 * max(1.0, float(np.abs(col).max())):
            continue
        gm = GaussianMixture(2, random_state=seed,
                             reg_covar=var_floor * float(col.var()) + 1e-12)
        gm.fit(col)
        mu = gm.means_.ravel()
        sd = np.sqrt(gm.covariances_.ravel())
        out[j] = abs(mu[0] - mu[1]) / sd.mean()
    return out


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
                           per_class: bool = False):
    """Share of examples on their predicted class's most common binary code.

    z : (N, d) representation (binarized as z > threshold; a 0/1 code array works too)
    predicted : (N,) predicted classes
    Returns the mean over predicted classes of (count of the class's modal code) / (class
    size): 1 means each class sits on one hypercube vertex. ``per_class=True`` returns a
    Series indexed by class instead.
    """
    bits = binarize(z, threshold)
    pred = _as_labels(predicted, len(bits), "predicted")
    if len(bits) == 0:
        raise InputError("no examples")
    packed = np.packbits(bits, axis=1)
    keys = pd.Series([row.tobytes() for row in packed])
    frame = pd.DataFrame({"cls": pred, "key": keys})
    counts = frame.groupby(["cls", "key"]).size()
    modal = counts.groupby(level="cls").max()
    sizes = frame.groupby("cls").size()
    share = (modal / sizes).astype(float)
    share.index.name = "class"
    return share if per_class else float(share.mean())


# --------------------------------------------------------------------- hash view
def within_class_redundancy(codes, labels) -> float:
    """Mean over classes of the redundancy ratio of the codes of that class (1 − distinct
    codes / class size); near 1 when each class shares a few codes."""
    from acthash.codes import as_codes
    from acthash.properties import redundancy_ratio

    codes = as_codes(codes)
    y = _as_labels(labels, len(codes), "labels")
    return float(np.mean([redundancy_ratio(codes[np.flatnonzero(y == k)]) for k in np.unique(y)]))


def hash_view(z_train, y_train, z_test, y_test, *, threshold: float = 0.0, **kwargs) -> dict:
    """Encoding properties (He et al.) of the binary code z > threshold, plus
    ``within_class_redundancy_{train,test}``. ``kwargs`` go to
    :func:`acthash.properties.encoding_properties` (k, seed, kmeans_n_init, ...)."""
    from acthash.codes import NeuralCodes
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
