"""Hamming k-NN accuracy of codes: test accuracy and leave-one-out, with two tie rules.

Ties at the k-th distance share their votes (``ties="share"``, independent of row order) or
follow scikit-learn (``ties="sklearn"``); see :func:`knn_predict`.
"""

from __future__ import annotations

import numpy as np

from acthash.core.codes import NeuralCodes, as_codes
from acthash.errors import InputError
from acthash.ops.hamming import hamming_knn
from acthash.properties._common import _encode, _labels_for
from acthash.properties.options import TIES, _check_ties

__all__ = ["TIES", "knn_predict", "knn_accuracy", "knn_loo_predict", "knn_loo_accuracy",
           "warm_up"]

_warmed: list[bool] = []


def warm_up() -> bool:
    """Compile the numba k-NN kernels (or load them from numba's on-disk cache) on a tiny
    input, once per process, so that a timed k-NN (``seconds_knn``) measures the work and not
    the JIT. Returns whether this call did the warm-up. Uses its own random generator: no
    global random state is touched."""
    if _warmed:
        return False
    from acthash.ops.hamming import share_counts, share_counts_loo

    rng = np.random.default_rng(0)
    codes = as_codes((rng.random((12, 70)) < 0.5).astype(np.uint8))
    labels = np.arange(12) % 3
    share_counts(codes, labels, codes, 3, 3)
    # a budget of a few rows a tile: the symmetric pass's off-diagonal kernel runs too
    share_counts_loo(codes, labels, 3, 3, memory_budget=160)
    _warmed.append(True)
    return True


def _vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote per row; ties go to the smallest class index (as scikit-learn)."""
    counts = np.zeros((neighbour_labels.shape[0], n_classes), dtype=np.int32)
    rows = np.repeat(np.arange(neighbour_labels.shape[0]), neighbour_labels.shape[1])
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    return counts.argmax(axis=1)


def _share_vote(less: np.ndarray, equal: np.ndarray, k: int) -> np.ndarray:
    """The "share" vote from per-class counts closer than (``less``) and at (``equal``) the
    k-th distance: each of the m closer codes has one vote, the t codes tied at the k-th
    distance share the k - m remaining votes equally ((k - m)/t each). Scores are compared
    exactly (scaled by t, in integers); a tie in the vote goes to the smallest class."""
    m = less.sum(axis=1, keepdims=True)
    t = equal.sum(axis=1, keepdims=True)
    score = less * t + (k - m) * equal
    return score.argmax(axis=1)


def _sklearn_neighbours(db: NeuralCodes, q: NeuralCodes, n_neighbors: int, device=None,
                        chunk: int = 512) -> np.ndarray:
    """(Nq, n_neighbors) indices chosen as scikit-learn's brute-force Hamming search does:
    the distance rows as fractions of the code length (float64), ``np.argpartition`` at
    n_neighbors - 1, then the chosen ones sorted by distance with ``np.argsort``. Distances
    come from ``device`` when given (torch); the selection always runs on the host."""
    from acthash.ops.hamming import hamming_distances, hamming_distances_torch

    out = np.empty((len(q), n_neighbors), dtype=np.int64)
    for lo in range(0, len(q), chunk):
        if device is None:
            d = hamming_distances(q.packed[lo : lo + chunk], db.packed, chunk=64)
        else:
            d = hamming_distances_torch(q.packed[lo : lo + chunk], db.packed,
                                        device=device).cpu().numpy()
        d = d.astype(np.float64) / db.n_bits
        ind = np.argpartition(d, n_neighbors - 1, axis=1)[:, :n_neighbors]
        rows = np.arange(d.shape[0])[:, None]
        out[lo : lo + chunk] = ind[rows, np.argsort(d[rows, ind])]
    return out


def _kth_distance(db: NeuralCodes, q: NeuralCodes, k: int, backend: str, device,
                  memory_budget=None) -> np.ndarray:
    if device is not None:
        from acthash.ops.hamming import kth_distances_torch

        return kth_distances_torch(db, q, k, device=device)
    dist, _ = hamming_knn(db, q, k, backend=backend, memory_budget=memory_budget)
    return dist[:, k - 1].astype(np.int64)


def _one_pass(backend: str, device) -> bool:
    """Whether the share rule runs as one numba pass (:func:`acthash.ops.hamming.share_counts`)
    rather than a k-th-distance search followed by a counting pass."""
    return device is None and backend in ("auto", "numba")


def _check_k(k, n_train: int, what: str = "k-NN") -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k > n_train:
        raise InputError(f"{what} with k={k} needs at least {k} training codes, got {n_train}; "
                         "pass a smaller k or more training examples")


def _check_pair(train: NeuralCodes, test: NeuralCodes) -> None:
    if test.n_bits != train.n_bits:
        raise InputError(f"train codes have {train.n_bits} bits but test codes {test.n_bits}: "
                         "capture both with the same model and layers")


def knn_predict(train_codes, y_train=None, test_codes=None, *, k: int = 9,
                backend: str = "auto", ties: str = "share", device=None,
                memory_budget=None) -> np.ndarray:
    """Hamming k-NN predictions (labels of ``y_train``'s kind) for ``test_codes``.

    ties : how the training codes tied at the k-th nearest distance vote.
        ``"share"`` (default): every code strictly closer than the k-th distance d_k has
        one vote, and the t codes at exactly d_k share the remaining k - m votes equally;
        the prediction does not depend on the order of the training rows.
        ``"sklearn"``: the k neighbours scikit-learn's
        ``KNeighborsClassifier(metric="hamming", algorithm="brute")`` picks (its
        ``np.argpartition`` selection), one vote each — the original study's numbers.
    In both, a tie in the vote goes to the smallest label (scikit-learn's rule).
    backend : "auto", "numba", "faiss" or "numpy" (same predictions); ``device`` (a torch
        device, e.g. "cuda") computes the distances with torch there instead. With "auto"
        or "numba" the share rule is one streamed pass over the training codes
        (:func:`acthash.ops.hamming.share_counts`); otherwise a k-th-distance search and a
        counting pass.
    memory_budget : bytes (or "512MB") of codes read at once (the training codes are
        streamed in blocks, so a memory-mapped ``.ahc`` works).
    """
    _check_ties(ties)
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes)
    _check_pair(train, test)
    _check_k(k, len(train))
    return _knn_predict(train, y_train, test, k, backend, ties, device, memory_budget)


def _knn_predict(train: NeuralCodes, y_train: np.ndarray, test: NeuralCodes, k: int,
                 backend: str, ties: str, device, memory_budget) -> np.ndarray:
    classes, yi, _ = _encode(y_train)
    if ties == "sklearn":
        idx = _sklearn_neighbours(train, test, k, device)
        return classes[_vote(yi[idx], len(classes))]
    if _one_pass(backend, device):
        from acthash.ops.hamming import share_counts

        less, equal = share_counts(train, yi, test, k, len(classes), memory_budget=memory_budget)
        return classes[_share_vote(less, equal, k)]
    from acthash.ops.hamming import class_counts

    dk = _kth_distance(train, test, k, backend, device, memory_budget)
    less, equal = class_counts(train, yi, test, dk, len(classes), backend=backend, device=device)
    return classes[_share_vote(less, equal, k)]


def knn_accuracy(train_codes, y_train=None, test_codes=None, y_test=None, *, k: int = 9,
                 backend: str = "auto", ties: str = "share", device=None,
                 memory_budget=None) -> float:
    """Test accuracy of Hamming k-NN fit on training codes (see :func:`knn_predict`)."""
    test = as_codes(test_codes)
    y_test = _labels_for(test, y_test, "test labels")
    pred = knn_predict(train_codes, y_train, test, k=k, backend=backend, ties=ties,
                       device=device, memory_budget=memory_budget)
    return float(np.mean(pred == y_test))


def knn_loo_predict(codes, labels=None, *, k: int = 9, backend: str = "auto",
                    ties: str = "share", device=None, memory_budget=None,
                    gram=None) -> np.ndarray:
    """Leave-one-out Hamming k-NN predictions: each example voted on by its k nearest others,
    with the same tie rule as :func:`knn_predict`.

    ``"share"``: the k-th distance among the others, per-class counts without the example
    itself; with backend "auto"/"numba" one pass that compares each pair of codes once
    (:func:`acthash.ops.hamming.share_counts_loo`), or, given ``gram`` (a
    :class:`acthash.ops.gram.ClassGram` of these codes and labels), the same counts read off its
    Gram blocks (:func:`acthash.ops.gram.loo_share_counts`). ``"sklearn"``: scikit-learn's
    ``kneighbors()`` without a query (k + 1 neighbours of each training code, itself removed
    — or, when more than k + 1 exact duplicates hide it, the first of them)."""
    _check_ties(ties)
    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    n = len(codes)
    if n <= k:
        raise InputError(f"leave-one-out k-NN needs more than k={k} examples, got {n}; "
                         "pass a smaller k or more examples")
    _check_k(k, n)
    return _knn_loo_predict(codes, labels, k, backend, ties, device, memory_budget, gram)


def _knn_loo_predict(codes: NeuralCodes, labels: np.ndarray, k: int, backend: str, ties: str,
                     device, memory_budget, gram) -> np.ndarray:
    n = len(codes)
    classes, yi, _ = _encode(labels)
    if ties == "sklearn":
        idx = _sklearn_neighbours(codes, codes, k + 1, device)
        keep = idx != np.arange(n)[:, None]
        no_self = keep.all(axis=1)
        keep[no_self, 0] = False
        neighbours = idx[keep].reshape(n, k)
        return classes[_vote(yi[neighbours], len(classes))]
    if gram is not None:
        from acthash.ops.gram import loo_share_counts

        gram.check_labels(yi)
        less, equal = loo_share_counts(gram, k)
        return classes[_share_vote(less, equal, k)]
    if _one_pass(backend, device):
        from acthash.ops.hamming import share_counts_loo

        less, equal = share_counts_loo(codes, yi, k, len(classes), memory_budget=memory_budget)
        return classes[_share_vote(less, equal, k)]
    from acthash.ops.hamming import class_counts

    # self is at distance 0, so the k-th distance among the others is the (k+1)-th overall
    dk = _kth_distance(codes, codes, k + 1, backend, device, memory_budget)
    less, equal = class_counts(codes, yi, codes, dk, len(classes), backend=backend,
                               device=device)
    rows = np.arange(n)
    at_zero = dk == 0
    less[rows[~at_zero], yi[~at_zero]] -= 1
    equal[rows[at_zero], yi[at_zero]] -= 1
    return classes[_share_vote(less, equal, k)]


def knn_loo_accuracy(codes, labels=None, *, k: int = 9, backend: str = "auto",
                     ties: str = "share", device=None, memory_budget=None,
                     gram=None) -> float:
    """Leave-one-out Hamming k-NN accuracy (see :func:`knn_loo_predict`)."""
    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    pred = knn_loo_predict(codes, labels, k=k, backend=backend, ties=ties, device=device,
                           memory_budget=memory_budget, gram=gram)
    return float(np.mean(pred == labels))


def _knn_options(o) -> dict:
    """The k-NN backend and device of the options: "torch" runs the tie rule's distances on
    the device (CPU when none is given) with the default kernels."""
    backend = "torch" if o.backend == "torch" else o.knn_backend
    if backend == "torch":
        return {"backend": "auto", "device": o.device if o.device is not None else "cpu"}
    return {"backend": backend, "device": o.device}


def _measure(m) -> dict:
    """Record step (see :mod:`acthash.properties.catalog`): ``knn_train`` (leave-one-out,
    when the options report train scores) and ``knn_test``."""
    o, k, rec = m.options, m.options.k, {}
    run = {**_knn_options(o), "ties": o.ties, "memory_budget": o.memory_budget}
    n = len(m.train)
    if o.train_scores:
        rec["knn_train"] = (
            float(np.mean(_knn_loo_predict(m.train, m.y_train, k, gram=m.gram, **run)
                          == m.y_train)) if n > k
            else m.skip("knn_train", f"leave-one-out needs more than k={k} training codes, "
                        f"got {n}"))
    if m.test is not None:
        rec["knn_test"] = (
            float(np.mean(_knn_predict(m.train, m.y_train, m.test, k, **run) == m.y_test))
            if n >= k else m.skip("knn_test", f"k={k} exceeds the {n} training codes"))
    return rec
