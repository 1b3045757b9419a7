"""Properties of real-valued aggregate codes (:class:`acthash.core.aggregate.AggregateCodes`).

- :func:`euclidean_knn_predict` / :func:`euclidean_knn_accuracy` /
  :func:`euclidean_knn_loo_accuracy`: Euclidean k-NN with the same tie rules as the Hamming
  k-NN (``ties="share"`` or ``"sklearn"``).
- :func:`aggregate_properties`: K-Means, k-NN and logistic regression on train and test
  aggregate codes, one flat record (keys prefixed ``agg_``).

torch is imported on first use only.
"""

from __future__ import annotations

import sys

import numpy as np

from acthash.errors import InputError
from acthash.properties._common import _encode, _Measurement
from acthash.properties.clustering import _kmeans_dense, _kmeans_split
from acthash.properties.knn import _check_k, _share_vote
from acthash.properties.linear import _fit_logreg
from acthash.properties.options import PropertyOptions, _check_ties, resolve_options

__all__ = ["euclidean_knn_predict", "euclidean_knn_accuracy", "euclidean_knn_loo_accuracy",
           "aggregate_properties"]


def _as_values(codes, labels, what: str):
    # an AggregateCodes exists only once its module (which imports torch) is loaded
    agg = sys.modules.get("acthash.core.aggregate")
    if agg is not None and isinstance(codes, agg.AggregateCodes):
        x, lab = codes.values, codes.labels
    else:
        x, lab = np.asarray(codes, dtype=np.float64), None
    if x.ndim != 2:
        raise InputError(f"{what} must be (N, n_features), got shape {x.shape}")
    if labels is None:
        if lab is None:
            raise InputError(f"labels for the {what} are needed: pass them, or build the codes "
                             "with labels")
        labels = lab
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise InputError(f"labels have shape {labels.shape} but there are {x.shape[0]} {what}")
    return np.ascontiguousarray(x, dtype=np.float64), labels


def _check_features(x_tr: np.ndarray, x_te: np.ndarray) -> None:
    if x_te.shape[1] != x_tr.shape[1]:
        raise InputError(f"train codes have {x_tr.shape[1]} features but test codes "
                         f"{x_te.shape[1]}: compute both with the same model and layers")


def _euclidean(q, db):
    import torch

    # pairwise differences, not the matrix-product expansion: equal points give equal
    # distances exactly, which the tie rule relies on
    return torch.cdist(q, db, compute_mode="donot_use_mm_for_euclid_dist")


def _share_counts(x_tr, yi, x_q, k, n_classes, device, loo: bool, chunk: int = 256):
    import torch

    dev = torch.device(device or "cpu")
    db = torch.from_numpy(x_tr).to(dev)
    onehot = torch.zeros((len(yi), n_classes), dtype=torch.float64, device=dev)
    onehot[torch.arange(len(yi), device=dev), torch.from_numpy(yi).to(dev)] = 1.0
    less = np.empty((x_q.shape[0], n_classes), dtype=np.int64)
    equal = np.empty_like(less)
    for lo in range(0, x_q.shape[0], chunk):
        d = _euclidean(torch.from_numpy(x_q[lo : lo + chunk]).to(dev), db)
        if loo:
            rows = torch.arange(d.shape[0], device=dev)
            d[rows, rows + lo] = float("inf")
        dk = torch.topk(d, k, dim=1, largest=False).values[:, -1:]
        less[lo : lo + chunk] = torch.round((d < dk).double() @ onehot).long().cpu().numpy()
        equal[lo : lo + chunk] = torch.round((d == dk).double() @ onehot).long().cpu().numpy()
    return less, equal


def euclidean_knn_predict(train_codes, y_train=None, test_codes=None, *, k: int = 9,
                          ties: str = "share", device=None) -> np.ndarray:
    """Euclidean k-NN predictions on real-valued codes (e.g. :class:`AggregateCodes`).

    ties : "share" (default): codes tied at the k-th distance share the remaining votes
        equally, as :func:`acthash.properties.knn_predict`; distances in float64 with torch
        on ``device`` (default CPU). "sklearn": scikit-learn's
        ``KNeighborsClassifier(metric="euclidean")``, the original study's call.
    """
    _check_ties(ties)
    x_tr, y_tr = _as_values(train_codes, y_train, "training codes")
    x_te, _ = _as_values(test_codes, np.zeros(len(test_codes)), "test codes")
    _check_features(x_tr, x_te)
    _check_k(k, len(x_tr))
    return _euclidean_predict(x_tr, y_tr, x_te, k, ties, device)


def _euclidean_predict(x_tr, y_tr, x_te, k: int, ties: str, device) -> np.ndarray:
    if ties == "sklearn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=k, metric="euclidean").fit(x_tr, y_tr).predict(x_te)
    classes, yi, _ = _encode(y_tr)
    less, equal = _share_counts(x_tr, yi, x_te, k, len(classes), device, loo=False)
    return classes[_share_vote(less, equal, k)]


def euclidean_knn_accuracy(train_codes, y_train=None, test_codes=None, y_test=None, *,
                           k: int = 9, ties: str = "share", device=None) -> float:
    """Test accuracy of :func:`euclidean_knn_predict`."""
    _, y_te = _as_values(test_codes, y_test, "test codes")
    pred = euclidean_knn_predict(train_codes, y_train, test_codes, k=k, ties=ties, device=device)
    return float(np.mean(pred == y_te))


def euclidean_knn_loo_accuracy(codes, labels=None, *, k: int = 9, ties: str = "share",
                               device=None) -> float:
    """Leave-one-out Euclidean k-NN accuracy (each code voted on by its k nearest others)."""
    _check_ties(ties)
    x, y = _as_values(codes, labels, "codes")
    if len(x) <= k:
        raise InputError(f"leave-one-out k-NN needs more than k={k} examples, got {len(x)}; "
                         "pass a smaller k or more examples")
    return _euclidean_loo(x, y, k, ties, device)


def _euclidean_loo(x, y, k: int, ties: str, device) -> float:
    if ties == "sklearn":
        from scipy import stats
        from sklearn.neighbors import KNeighborsClassifier

        clf = KNeighborsClassifier(n_neighbors=k, metric="euclidean").fit(x, y)
        idx = clf.kneighbors(None, return_distance=False)
        enc = np.searchsorted(clf.classes_, y)
        pred = clf.classes_[stats.mode(enc[idx], axis=1, keepdims=False).mode]
        return float(np.mean(pred == y))
    classes, yi, _ = _encode(y)
    less, equal = _share_counts(x, yi, x, k, len(classes), device, loo=True)
    return float(np.mean(classes[_share_vote(less, equal, k)] == y))


def aggregate_properties(train_codes, y_train=None, test_codes=None, y_test=None, *,
                         options: PropertyOptions | None = None, **overrides) -> dict:
    """K-Means, Euclidean k-NN and logistic regression on aggregate codes, train and test.

    Keys (all prefixed ``agg_``): ``kmeans_{split}`` (Hungarian, mean over seeds),
    ``kmeans_std_*``, ``kmeans_purity_*``, ``kmeans_purity_std_*``, ``knn_train``
    (leave-one-out), ``knn_test``, ``logreg_{train,test}``, ``n_features``. ``options``
    (:class:`PropertyOptions`) and keyword ``overrides`` of its fields as in
    :func:`acthash.properties.encoding_properties`; read here: k, seed, kmeans_n_init,
    kmeans_n_seeds, kmeans_seed, n_classes, fixed_k, logreg_C, logreg_strategy,
    logreg_solver, logreg_max_iter, logreg_seed, train_scores, ties, small, device
    ("original": sklearn k-NN, one float64 K-Means fit with random_state 9 and fixed K,
    liblinear one-vs-one logistic regression with random_state 9, test-only k-NN and
    logistic regression). The codes are float64 whatever ``kmeans_dtype``/``logreg_dtype``.
    """
    o = resolve_options(options, overrides)
    x_tr, y_tr = _as_values(train_codes, y_train, "training codes")
    x_te, y_te = _as_values(test_codes, y_test, "test codes")
    _check_features(x_tr, x_te)
    m = _Measurement(o, x_tr, y_tr, x_te, y_te)
    rec: dict = {"agg_n_features": x_tr.shape[1]}
    for split, x, y in m.splits():
        rec.update(_kmeans_split(m, split, "agg_", len(x), y, lambda kk, x=x, y=y: _kmeans_dense(
            x, y, kk, o.kmeans_seed, o.kmeans_n_init, o.kmeans_n_seeds)))
    k = o.k
    if o.train_scores:
        rec["agg_knn_train"] = (
            _euclidean_loo(x_tr, y_tr, k, o.ties, o.device)
            if len(x_tr) > k else m.skip("agg_knn_train", f"leave-one-out needs more than k={k} "
                                         f"training codes, got {len(x_tr)}"))
    rec["agg_knn_test"] = (
        float(np.mean(_euclidean_predict(x_tr, y_tr, x_te, k, o.ties, o.device) == y_te))
        if len(x_tr) >= k else m.skip("agg_knn_test", f"k={k} exceeds the {len(x_tr)} "
                                      "training codes"))
    if len(np.unique(y_tr)) < 2:
        if o.train_scores:
            rec["agg_logreg_train"] = m.skip("agg_logreg_train", "one training class")
        rec["agg_logreg_test"] = m.skip("agg_logreg_test", "one training class")
    else:
        model = _fit_logreg(x_tr, y_tr, o.logreg_C, o.logreg_strategy, o.logreg_max_iter,
                            o.logreg_seed, o.logreg_solver)
        if o.train_scores:
            rec["agg_logreg_train"] = float(np.mean(model.predict(x_tr) == y_tr))
        rec["agg_logreg_test"] = float(np.mean(model.predict(x_te) == y_te))
    m.warn(stacklevel=2)
    return rec
