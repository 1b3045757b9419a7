"""Encoding properties of neural codes (He et al., 2021).

Each function takes ``NeuralCodes`` or a plain (N, n_bits) 0/1 array, plus integer labels
(labels stored on the codes are used when none are passed). Accuracies are fractions in
[0, 1].

- :func:`redundancy_ratio`: (N - distinct codes) / N.
- :func:`kmeans_accuracy`: K-Means (K = number of classes) on the bits, clusters mapped to
  classes one-to-one by the Hungarian method (default) or by majority ("purity").
- :func:`knn_accuracy` / :func:`knn_loo_accuracy`: Hamming k-NN (k = 9).
- :func:`logreg_accuracy`: one-vs-one L2 logistic regression (C = 1) on the bits.
- :func:`network_scores`: the network's own cross-entropy loss and accuracy.
- :func:`encoding_properties`: all of them on train and test, as one flat record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from acthash.codes import NeuralCodes, as_codes
from acthash.errors import InputError
from acthash.hamming import hamming_knn

__all__ = [
    "redundancy_ratio",
    "dead_unit_fractions",
    "count_distinct",
    "kmeans_scores",
    "kmeans_accuracy",
    "cluster_accuracy",
    "knn_predict",
    "knn_accuracy",
    "knn_loo_accuracy",
    "knn_loo_predict",
    "logreg_accuracy",
    "network_scores",
    "encoding_properties",
    "properties_table",
]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xBF58476D1CE4E5B9)


def _labels_for(codes: NeuralCodes, labels, what: str = "labels") -> np.ndarray:
    if labels is None:
        if codes.labels is None:
            raise InputError(f"{what} are needed: pass them, or build the codes with labels")
        return codes.labels
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(codes):
        raise InputError(
            f"{what} have shape {labels.shape} but there are {len(codes)} codes; pass one "
            "label per example, in the order of the inputs"
        )
    return labels


def _row_hashes(packed: np.ndarray) -> np.ndarray:
    """(N,) uint64 hash of each packed row."""
    n, b = packed.shape
    pad = (-b) % 8
    words = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, pad))) if pad else packed)
    words = words.view(np.uint64)
    h = np.full(n, _MIX, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h ^= words[:, j]
            h *= _MUL
            h ^= h >> np.uint64(31)
    return h


def count_distinct(codes) -> int:
    """Number of distinct codes, by hashing the packed rows (O(N)), verified exactly."""
    packed = np.ascontiguousarray(as_codes(codes).packed)
    n = packed.shape[0]
    if n == 0:
        return 0
    group, uniques = pd.factorize(_row_hashes(packed))
    first = np.empty(len(uniques), dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    if np.array_equal(packed, packed[first[group]]):
        return len(uniques)
    # a 64-bit hash collision between different codes: count exactly
    return len({row.tobytes() for row in packed})


def redundancy_ratio(codes) -> float:
    """(N - number of distinct codes) / N; 0 means every example has its own code."""
    codes = as_codes(codes)
    n = len(codes)
    if n == 0:
        raise InputError("no codes: redundancy is undefined for an empty set")
    return (n - count_distinct(codes)) / n


def _encode(labels: np.ndarray, classes: np.ndarray | None = None):
    if classes is None:
        classes = np.unique(labels)
    idx = np.searchsorted(classes, labels)
    idx = np.clip(idx, 0, len(classes) - 1)
    known = classes[idx] == labels
    return classes, idx, known


def cluster_accuracy(clusters, labels, mapping: str = "hungarian") -> float:
    """Accuracy of a clustering against labels after mapping clusters to classes.

    mapping : "hungarian" (one cluster per class, optimal one-to-one assignment, scipy's
        ``linear_sum_assignment``) or "purity" (each cluster takes its majority class).
    """
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    _, ci = np.unique(clusters, return_inverse=True)
    _, li = np.unique(labels, return_inverse=True)
    table = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, li), 1)
    if mapping == "hungarian":
        rows, cols = linear_sum_assignment(table, maximize=True)
        return float(table[rows, cols].sum() / len(labels))
    if mapping == "purity":
        return float(table.max(axis=1).sum() / len(labels))
    raise InputError(f"unknown mapping {mapping!r}; use 'hungarian' or 'purity'")


def kmeans_scores(codes, labels=None, *, n_clusters: int | None = None, seed: int = 0,
                  n_init: int = 10) -> dict:
    """One K-Means fit (K = number of classes by default) scored both ways.

    Returns ``{"hungarian": acc, "purity": acc}``.
    """
    from sklearn.cluster import KMeans

    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    k = n_clusters or len(np.unique(labels))
    x = codes.unpack().astype(np.float32)
    k = min(k, len(x))
    clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
    return {
        "hungarian": cluster_accuracy(clusters, labels, "hungarian"),
        "purity": cluster_accuracy(clusters, labels, "purity"),
    }


def kmeans_accuracy(codes, labels=None, mapping: str = "hungarian", *, seed: int = 0,
                    n_init: int = 10) -> float:
    """K-Means categorization accuracy of the codes (see :func:`cluster_accuracy`)."""
    if mapping not in ("hungarian", "purity"):
        raise InputError(f"unknown mapping {mapping!r}; use 'hungarian' or 'purity'")
    return kmeans_scores(codes, labels, seed=seed, n_init=n_init)[mapping]


def _vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote per row; ties go to the smallest class index (as scikit-learn)."""
    counts = np.zeros((neighbour_labels.shape[0], n_classes), dtype=np.int32)
    rows = np.repeat(np.arange(neighbour_labels.shape[0]), neighbour_labels.shape[1])
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    return counts.argmax(axis=1)


def knn_predict(train_codes, y_train=None, test_codes=None, *, k: int = 9,
                backend: str = "auto") -> np.ndarray:
    """Hamming k-NN predictions for ``test_codes``.

    Neighbours are the k training codes nearest in Hamming distance, ties in distance
    broken by training order; the majority label wins, ties in the vote going to the
    smallest label (scikit-learn's rule).
    """
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes)
    classes, yi, _ = _encode(y_train)
    _, idx = hamming_knn(train, test, k, backend=backend)
    return classes[_vote(yi[idx], len(classes))]


def knn_accuracy(train_codes, y_train=None, test_codes=None, y_test=None, *, k: int = 9,
                 backend: str = "auto") -> float:
    """Test accuracy of Hamming k-NN fit on training codes (see :func:`knn_predict`)."""
    test = as_codes(test_codes)
    y_test = _labels_for(test, y_test, "test labels")
    pred = knn_predict(train_codes, y_train, test, k=k, backend=backend)
    return float(np.mean(pred == y_test))


def knn_loo_predict(codes, labels=None, *, k: int = 9, backend: str = "auto") -> np.ndarray:
    """Leave-one-out Hamming k-NN predictions: each example voted on by its k nearest others
    (same neighbour order and vote rule as :func:`knn_predict`)."""
    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    n = len(codes)
    if n <= k:
        raise InputError(f"leave-one-out k-NN needs more than k={k} examples, got {n}")
    classes, yi, _ = _encode(labels)
    _, idx = hamming_knn(codes, codes, k + 1, backend=backend)
    is_self = idx == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # self lies beyond the k+1 (tied duplicates): drop the last
    neighbours = idx[~is_self].reshape(n, k)
    return classes[_vote(yi[neighbours], len(classes))]


def knn_loo_accuracy(codes, labels=None, *, k: int = 9, backend: str = "auto") -> float:
    """Leave-one-out Hamming k-NN accuracy (see :func:`knn_loo_predict`)."""
    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    return float(np.mean(knn_loo_predict(codes, labels, k=k, backend=backend) == labels))


def _fit_logreg(x: np.ndarray, y: np.ndarray, C: float, strategy: str, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

    base = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    if strategy == "ovo":
        model = OneVsOneClassifier(base)
    elif strategy == "ovr":
        model = OneVsRestClassifier(base)
    elif strategy == "multinomial":
        model = base
    else:
        raise InputError(f"unknown strategy {strategy!r}; use 'ovo', 'ovr' or 'multinomial'")
    return model.fit(x, y)


def logreg_accuracy(train_codes, y_train=None, test_codes=None, y_test=None, *, C: float = 1.0,
                    strategy: str = "ovo", max_iter: int = 1000, seed: int = 0,
                    return_train: bool = False):
    """Accuracy of logistic regression on the code bits.

    Settings follow the original study: L2 penalty, C = 1, one-vs-one (``strategy``:
    "ovo", "ovr" or "multinomial"), lbfgs, fit on the training codes. Returns the test
    accuracy, or ``(train_accuracy, test_accuracy)`` with ``return_train=True``.
    """
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes)
    y_test = _labels_for(test, y_test, "test labels")
    if len(np.unique(y_train)) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    model = _fit_logreg(train.unpack().astype(np.float32), y_train, C, strategy, max_iter, seed)
    test_acc = float(np.mean(model.predict(test.unpack().astype(np.float32)) == y_test))
    if return_train:
        train_acc = float(np.mean(model.predict(train.unpack().astype(np.float32)) == y_train))
        return train_acc, test_acc
    return test_acc


def network_scores(outputs, labels) -> dict:
    """The network's own mean cross-entropy loss (nats) and accuracy from (N, C) logits."""
    import torch
    import torch.nn.functional as F

    logits = torch.as_tensor(outputs).float()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if logits.ndim != 2 or logits.shape[0] != y.shape[0]:
        raise InputError(f"outputs {tuple(logits.shape)} do not match {y.shape[0]} labels")
    return {
        "loss": float(F.cross_entropy(logits, y)),
        "accuracy": float((logits.argmax(1) == y).float().mean()),
    }


def encoding_properties(train_codes, y_train=None, test_codes=None, y_test=None, *,
                        k: int = 9, seed: int = 0, kmeans_n_init: int = 10,
                        logreg_C: float = 1.0, logreg_strategy: str = "ovo",
                        train_outputs=None, test_outputs=None,
                        drop_constant: bool = False) -> dict:
    """All encoding properties on train and test as one flat record.

    Keys: ``redundancy_{train,test}``, ``kmeans_{train,test}`` (Hungarian-matched,
    transductive: K-Means is fit on each split's own codes), ``kmeans_purity_{train,test}``,
    ``knn_train`` (leave-one-out) and ``knn_test``, ``logreg_{train,test}``, with the
    network's ``net_loss_*``/``net_acc_*`` when outputs are given, plus sizes.
    ``drop_constant`` drops units constant on the training codes from both splits first.
    """
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes) if test_codes is not None else None
    if test is not None:
        y_test = _labels_for(test, y_test, "test labels")
        if test.n_bits != train.n_bits:
            raise InputError(
                f"train codes have {train.n_bits} bits but test codes {test.n_bits}: "
                "capture both with the same model and layers"
            )
    if drop_constant:
        ref = train
        train = train.drop_constant()
        test = test.drop_constant(reference=ref) if test is not None else None
    rec: dict = {
        "n_bits": train.n_bits,
        "n_train": len(train),
        "n_test": 0 if test is None else len(test),
        "n_classes": int(len(np.unique(y_train))),
    }
    splits = [("train", train, y_train)] + ([("test", test, y_test)] if test is not None else [])
    for split, codes, y in splits:
        rec[f"redundancy_{split}"] = redundancy_ratio(codes)
        km = kmeans_scores(codes, y, seed=seed, n_init=kmeans_n_init)
        rec[f"kmeans_{split}"] = km["hungarian"]
        rec[f"kmeans_purity_{split}"] = km["purity"]
    rec["knn_train"] = knn_loo_accuracy(train, y_train, k=k) if len(train) > k else float("nan")
    if test is not None:
        rec["knn_test"] = knn_accuracy(train, y_train, test, y_test, k=k)
        rec["logreg_train"], rec["logreg_test"] = logreg_accuracy(
            train, y_train, test, y_test, C=logreg_C, strategy=logreg_strategy, seed=seed,
            return_train=True,
        )
    for split, outputs, y in (("train", train_outputs, y_train), ("test", test_outputs, y_test)):
        if outputs is not None:
            s = network_scores(outputs, y)
            rec[f"net_loss_{split}"] = s["loss"]
            rec[f"net_acc_{split}"] = s["accuracy"]
    return rec


def dead_unit_fractions(codes, prefix: str = "dead_units") -> dict:
    """Fraction of units never active (every bit 0 on every row) over ``codes``, per layer.

    codes: :class:`NeuralCodes` of the training set (layer spans used; a plain array counts
    as one layer of one-bit units). A unit with two kinks (ReLU6, Hardtanh; bits stored
    kink-major) is dead when none of its bits is ever 1. Returns ``{"dead_units": fraction
    over all units, "dead_units_l1": first captured layer, "dead_units_l2": ...}`` (fractions
    in [0, 1]; layers numbered in forward order; ``prefix`` names the keys: runs store
    ``dead_units_train``, ``dead_units_train_l1``, ...). A redundancy plateau of a wide network
    with many dead units is a training failure, not a property of the code.
    """
    codes = as_codes(codes)
    if len(codes) == 0:
        raise InputError("no codes: dead units need at least one training example")
    ever = np.zeros(codes.n_bytes, dtype=np.uint8)
    for lo in range(0, len(codes), 65536):
        ever |= np.bitwise_or.reduce(np.asarray(codes.packed[lo: lo + 65536]), axis=0)
    ever = np.unpackbits(ever, count=codes.n_bits).astype(bool)
    spans = codes.layers or []
    if not spans:
        dead = ~ever
        return {prefix: float(dead.mean()), f"{prefix}_l1": float(dead.mean())}
    out, n_dead, n_units = {}, 0, 0
    for i, s in enumerate(spans, start=1):
        bits = ever[s.start: s.stop].reshape(s.bits_per_unit, -1)  # kink-major
        dead = ~bits.any(axis=0)
        out[f"{prefix}_l{i}"] = float(dead.mean()) if dead.size else 0.0
        n_dead += int(dead.sum())
        n_units += dead.size
    return {prefix: n_dead / max(n_units, 1), **out}


_ROWS = [
    ("redundancy", "redundancy ratio"),
    ("kmeans", "K-Means acc. (Hungarian)"),
    ("kmeans_purity", "K-Means acc. (purity)"),
    ("knn", "9-NN acc. (train: leave-one-out)"),
    ("logreg", "logistic regression acc."),
    ("net_acc", "network accuracy"),
    ("net_loss", "network loss (nats)"),
]


def properties_table(record: dict) -> pd.DataFrame:
    """A record from :func:`encoding_properties` as rows = property, columns = train/test."""
    rows = []
    for key, label in _ROWS:
        tr, te = record.get(f"{key}_train"), record.get(f"{key}_test")
        if tr is None and te is None:
            continue
        rows.append({"property": label, "train": tr, "test": te})
    return pd.DataFrame(rows).set_index("property")
