"""Encoding properties of neural codes (He et al., 2021).

Each function takes ``NeuralCodes`` or a plain (N, n_bits) 0/1 array, plus integer labels
(labels stored on the codes are used when none are passed). Accuracies are fractions in
[0, 1].

- :func:`redundancy_ratio`: (N - distinct codes) / N.
- :func:`kmeans_accuracy`: K-Means (K = number of classes) on the bits, clusters mapped to
  classes one-to-one by the Hungarian method (default) or by majority ("purity"); mean and
  std over several K-Means seeds with :func:`kmeans_scores`.
- :func:`knn_accuracy` / :func:`knn_loo_accuracy`: Hamming k-NN (k = 9); ties at the k-th
  distance share their votes (``ties="share"``, independent of row order) or follow
  scikit-learn (``ties="sklearn"``).
- :func:`logreg_accuracy`: one-vs-one L2 logistic regression (C = 1) on the bits (lbfgs, or
  the original's liblinear).
- :func:`network_scores`: the network's own cross-entropy loss and accuracy.
- :func:`encoding_properties`: all of them on train and test, as one flat record, under
  acthash's conventions or the original study's (``convention="original"``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from acthash._utils.validate import check_labels
from acthash.core.codes import NeuralCodes, as_codes
from acthash.errors import InputError, SmallDataWarning
from acthash.ops.hamming import hamming_knn

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
    "property_rows",
    "CONVENTIONS",
    "TIES",
    "ORIGINAL_KMEANS_MAPPING",
    "original_kmeans_mapping",
]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xBF58476D1CE4E5B9)


def _labels_for(codes: NeuralCodes, labels, what: str = "labels") -> np.ndarray:
    if labels is None:
        if codes.labels is None:
            raise InputError(f"{what} are needed: pass them, or build the codes with labels")
        return codes.labels
    return check_labels(labels, len(codes), what)


#: bytes of packed rows hashed or compared at once (bounded memory on memory-mapped codes)
_HASH_BLOCK_BYTES = 32 << 20


def _hash_block_rows(packed: np.ndarray) -> int:
    return max(1, _HASH_BLOCK_BYTES // max(1, packed.shape[1]))


def _row_hashes(packed: np.ndarray) -> np.ndarray:
    """(N,) uint64 hash of each packed row (rows read in blocks)."""
    n, b = packed.shape
    pad = (-b) % 8
    h = np.full(n, _MIX, dtype=np.uint64)
    step = _hash_block_rows(packed)
    for lo in range(0, n, step):
        block = np.asarray(packed[lo : lo + step])
        words = np.ascontiguousarray(np.pad(block, ((0, 0), (0, pad))) if pad else block)
        words = words.view(np.uint64)
        hb = h[lo : lo + step]
        with np.errstate(over="ignore"):
            for j in range(words.shape[1]):
                hb ^= words[:, j]
                hb *= _MUL
                hb ^= hb >> np.uint64(31)
    return h


def count_distinct(codes) -> int:
    """Number of distinct codes, by hashing the packed rows (O(N)), verified exactly; the
    rows are read in blocks, so memory-mapped codes are never copied whole."""
    packed = as_codes(codes).packed
    n = packed.shape[0]
    if n == 0:
        return 0
    group, uniques = pd.factorize(_row_hashes(packed))
    first = np.empty(len(uniques), dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)
    step = _hash_block_rows(packed)
    if all(np.array_equal(packed[lo : lo + step], packed[first[group[lo : lo + step]]])
           for lo in range(0, n, step)):
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


# --- streamed backends (acthash.ops.kmeans, acthash.ops.logreg) -----------------------------------
_SKLEARN_MAX_BYTES = 64 << 20  # "auto" keeps scikit-learn while the unpacked copies are small


def _use_sklearn(codes: NeuralCodes, backend: str, memory_budget, device) -> bool:
    """Route a property to scikit-learn (dense, small inputs) or the streamed packed path.

    backend : "auto" (scikit-learn while three float32 copies of the unpacked codes fit in
    min(memory_budget, 64 MiB) and no accelerator is asked for; else streamed), "sklearn",
    "numba" or "torch" (streamed)."""
    from acthash._utils.budget import parse_memory_budget

    if backend == "sklearn":
        return True
    if backend in ("numba", "torch"):
        return False
    if backend != "auto":
        raise InputError(f"unknown backend {backend!r}; use 'auto', 'sklearn', 'numba' or 'torch'")
    if device is not None and str(device) not in ("cpu", "auto"):
        return False
    limit = min(parse_memory_budget(memory_budget), _SKLEARN_MAX_BYTES)
    return 3 * 4 * len(codes) * codes.n_bits <= limit


def _streamed(backend: str) -> str:
    return "auto" if backend in ("auto", "sklearn") else backend


def _check_n_clusters(k: int, n: int) -> None:
    if k > n:
        raise InputError(f"K-Means with K={k} clusters needs at least {k} codes, got {n}; "
                         "pass fewer clusters (n_clusters=) or more examples")


def kmeans_scores(codes, labels=None, *, n_clusters: int | None = None, seed: int = 0,
                  n_init: int = 10, n_seeds: int = 1, dtype="float32", backend: str = "auto",
                  memory_budget=None, device=None) -> dict:
    """K-Means (K = ``n_clusters``, default the number of distinct labels) on the code bits,
    scored both ways, over ``n_seeds`` K-Means seeds ``seed, seed + 1, ...``.

    Each seed is one scikit-learn ``KMeans(n_init=n_init, random_state=seed_i)`` fit on the
    bits as ``dtype`` (float32 by default; the original study fitted float64). Returns
    ``{"hungarian": mean, "purity": mean, "hungarian_std": std, "purity_std": std,
    "hungarian_runs": [...], "purity_runs": [...], "seeds": [...]}``; accuracies are
    fractions, the std is over seeds (ddof = 1; NaN for one seed).

    ``backend``/``memory_budget``/``device`` choose scikit-learn on the unpacked bits (small
    inputs) or the streamed :func:`acthash.ops.kmeans.kmeans_packed` (the same Lloyd iterations
    and k-means++ seeding on the packed codes, in bounded memory, on CPU or CUDA); see
    ``_use_sklearn``.
    """
    codes = as_codes(codes)
    labels = _labels_for(codes, labels)
    k = int(n_clusters or len(np.unique(labels)))
    if _use_sklearn(codes, backend, memory_budget, device):
        x = codes.unpack().astype(dtype)

        def fit(s: int) -> np.ndarray:
            from sklearn.cluster import KMeans

            return KMeans(n_clusters=k, n_init=n_init, random_state=s).fit_predict(x)
    else:
        from acthash.ops.kmeans import kmeans_packed

        def fit(s: int) -> np.ndarray:
            return kmeans_packed(codes, k, n_init=n_init, seed=s, backend=_streamed(backend),
                                 device=device, memory_budget=memory_budget).labels
    return _kmeans_on(fit, len(codes), labels, k, seed, n_seeds)


def _kmeans_dense(x: np.ndarray, labels: np.ndarray, k: int, seed: int, n_init: int,
                  n_seeds: int) -> dict:
    """K-Means runs over seeds with scikit-learn on a dense (N, D) array ``x`` (real-valued
    features such as the aggregate codes), scored as :func:`kmeans_scores`."""
    from sklearn.cluster import KMeans

    def fit(s: int) -> np.ndarray:
        return KMeans(n_clusters=k, n_init=n_init, random_state=s).fit_predict(x)

    return _kmeans_on(fit, len(x), labels, k, seed, n_seeds)


def _kmeans_on(fit, n: int, labels: np.ndarray, k: int, seed: int, n_seeds: int) -> dict:
    """K-Means runs ``fit(seed_i) -> cluster labels`` over seeds ``seed .. seed + n_seeds - 1``
    of ``n`` examples, each scored both ways."""
    if n_seeds < 1:
        raise InputError(f"n_seeds must be at least 1, got {n_seeds}")
    _check_n_clusters(k, n)
    seeds = [int(seed) + i for i in range(n_seeds)]
    runs: dict = {"hungarian": [], "purity": []}
    for s in seeds:
        clusters = fit(s)
        for mapping in runs:
            runs[mapping].append(cluster_accuracy(clusters, labels, mapping))
    out: dict = {"seeds": seeds}
    for mapping, values in runs.items():
        v = np.asarray(values)
        out[mapping] = float(v.mean())
        out[f"{mapping}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        out[f"{mapping}_runs"] = values
    return out


def kmeans_accuracy(codes, labels=None, mapping: str = "hungarian", *, seed: int = 0,
                    n_init: int = 10, n_seeds: int = 1, n_clusters: int | None = None,
                    dtype="float32", backend: str = "auto", memory_budget=None,
                    device=None) -> float:
    """K-Means categorization accuracy of the codes (see :func:`cluster_accuracy`), the mean
    over ``n_seeds`` seeds (see :func:`kmeans_scores`)."""
    if mapping not in ("hungarian", "purity"):
        raise InputError(f"unknown mapping {mapping!r}; use 'hungarian' or 'purity'")
    return kmeans_scores(codes, labels, seed=seed, n_init=n_init, n_seeds=n_seeds,
                         n_clusters=n_clusters, dtype=dtype, backend=backend,
                         memory_budget=memory_budget, device=device)[mapping]


def _vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote per row; ties go to the smallest class index (as scikit-learn)."""
    counts = np.zeros((neighbour_labels.shape[0], n_classes), dtype=np.int32)
    rows = np.repeat(np.arange(neighbour_labels.shape[0]), neighbour_labels.shape[1])
    np.add.at(counts, (rows, neighbour_labels.ravel()), 1)
    return counts.argmax(axis=1)


#: k-NN tie rules: "share" (the default, independent of the order of the training rows) and
#: "sklearn" (scikit-learn's brute-force Hamming KNeighborsClassifier, neighbour for neighbour)
TIES = ("share", "sklearn")


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise InputError(f"unknown ties {ties!r}; use 'share' (order-independent, the default) "
                         "or 'sklearn' (scikit-learn's choice among tied neighbours)")


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
    from acthash.ops.hamming import HAVE_NUMBA

    return device is None and backend in ("auto", "numba") and HAVE_NUMBA


def _check_k(k, n_train: int, what: str = "k-NN") -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k > n_train:
        raise InputError(f"{what} with k={k} needs at least {k} training codes, got {n_train}; "
                         "pass a smaller k or more training examples")


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
    if test.n_bits != train.n_bits:
        raise InputError(f"train codes have {train.n_bits} bits but test codes {test.n_bits}: "
                         "capture both with the same model and layers")
    _check_k(k, len(train))
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


_SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")


def _fit_logreg(x: np.ndarray, y: np.ndarray, C: float, strategy: str, max_iter: int, seed: int,
                solver: str = "lbfgs"):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

    if solver not in _SOLVERS:
        raise InputError(f"unknown solver {solver!r}; use one of {', '.join(_SOLVERS)} "
                         "('liblinear' is the original study's)")
    if strategy == "multinomial" and solver == "liblinear" and len(np.unique(y)) > 2:
        raise InputError("liblinear cannot fit a multinomial model; use strategy='ovo' or "
                         "'ovr' with liblinear, or another solver")
    base = LogisticRegression(C=C, max_iter=max_iter, random_state=seed, solver=solver)
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
                    solver: str = "lbfgs", dtype="float32", return_train: bool = False,
                    backend: str = "auto", memory_budget=None, device=None, gram=None):
    """Accuracy of logistic regression on the code bits.

    L2 penalty, C = 1, one-vs-one by default (``strategy``: "ovo", "ovr" or "multinomial"),
    fit on the training codes. ``solver``: scikit-learn's, "lbfgs" by default (acthash's);
    the original study's scripts that name a solver use "liblinear" (with one-vs-one, its
    default max_iter = 100 and float64 bits; ``convention="original"`` in
    :func:`encoding_properties` sets all of these). Returns the test accuracy, or
    ``(train_accuracy, test_accuracy)`` with ``return_train=True``.
    ``backend``/``memory_budget``/``device`` choose scikit-learn or the streamed
    :func:`acthash.ops.logreg.fit_logreg_packed` (the same L2 objective and optimum on the packed
    codes: Newton's method in kernel form on the Gram matrix when it fits the budget, on the
    CPU, else full-batch L-BFGS over chunks; bounded memory, CPU or CUDA); see
    ``_use_sklearn``. A solver other than lbfgs (e.g. the original's liblinear) always runs
    in scikit-learn. ``gram``: a :class:`acthash.ops.gram.ClassGram` of the training codes for
    the per-pair solver to read its Gram blocks from (see :func:`encoding_properties`).
    """
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes)
    y_test = _labels_for(test, y_test, "test labels")
    if len(np.unique(y_train)) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    if solver == "lbfgs" and not _use_sklearn(train, backend, memory_budget, device):
        from acthash.ops.logreg import fit_logreg_packed, kernel_fits, kernel_logreg_predict

        if kernel_fits(len(train), strategy, memory_budget, _streamed(backend), device,
                       n_bits=train.n_bits):
            pred_train, pred_test = kernel_logreg_predict(
                train, y_train, test, C=C, strategy=strategy, max_iter=max_iter,
                memory_budget=memory_budget)
            test_acc = float(np.mean(pred_test == y_test))
            if return_train:
                return float(np.mean(pred_train == y_train)), test_acc
            return test_acc
        opts = {"backend": _streamed(backend), "device": device, "memory_budget": memory_budget}
        model = fit_logreg_packed(train, y_train, C=C, strategy=strategy, max_iter=max_iter,
                                  gram=gram, **opts)
        test_acc = float(np.mean(model.predict(test, **opts) == y_test))
        if return_train:
            return float(np.mean(model.predict(train, **opts) == y_train)), test_acc
        return test_acc
    model = _fit_logreg(train.unpack().astype(dtype), y_train, C, strategy, max_iter, seed,
                        solver)
    test_acc = float(np.mean(model.predict(test.unpack().astype(dtype)) == y_test))
    if return_train:
        train_acc = float(np.mean(model.predict(train.unpack().astype(dtype)) == y_train))
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


#: What each convention sets when the caller leaves an option as None. "acthash" is the
#: default; "original" reproduces the original study's scripts on the same codes.
CONVENTIONS: dict[str, dict] = {
    "acthash": {
        "ties": "share", "drop_constant": False, "kmeans_seed": None, "kmeans_n_seeds": 5,
        "kmeans_dtype": "float32", "fixed_k": False, "logreg_solver": "lbfgs",
        "logreg_strategy": "ovo", "logreg_max_iter": 1000, "logreg_dtype": "float32",
        "logreg_seed": None, "train_scores": True,
    },
    "original": {
        "ties": "sklearn", "drop_constant": "union", "kmeans_seed": 9, "kmeans_n_seeds": 1,
        "kmeans_dtype": "float64", "fixed_k": True, "logreg_solver": "liblinear",
        "logreg_strategy": "ovo", "logreg_max_iter": 100, "logreg_dtype": "float64",
        "logreg_seed": 9, "train_scores": False,
    },
}

#: K-Means cluster-to-class mapping of the original study's script for each data set:
#: majority (purity) in the shared MNIST/CIFAR-10/IMDB helper, one-to-one (Hungarian) in the
#: Adult, SVHN, Tiny ImageNet and ImageNet scripts.
ORIGINAL_KMEANS_MAPPING = {
    "mnist": "purity", "cifar10": "purity", "imdb": "purity",
    "adult": "hungarian", "svhn": "hungarian", "tiny-imagenet": "hungarian",
    "tinyimagenet": "hungarian", "imagenet": "hungarian",
}


def original_kmeans_mapping(dataset: str | None) -> str:
    """The mapping ("purity" or "hungarian") the original study's script used for
    ``dataset`` ("random:NAME" follows NAME); data sets it never ran get "hungarian"."""
    if not dataset:
        return "hungarian"
    name = str(dataset).lower()
    if name.startswith("random:"):
        name = name.split(":", 1)[1]
    return ORIGINAL_KMEANS_MAPPING.get(name, "hungarian")


def _union_reference(train: NeuralCodes, test: NeuralCodes | None) -> NeuralCodes:
    if test is None:
        return train
    return NeuralCodes(np.concatenate([np.asarray(train.packed), np.asarray(test.packed)]),
                       train.n_bits, train.layers)


def _resolve(value, default):
    return default if value is None else value


def encoding_properties(train_codes, y_train=None, test_codes=None, y_test=None, *,
                        k: int = 9, seed: int = 0, kmeans_n_init: int = 10,
                        logreg_C: float = 1.0, logreg_strategy: str | None = None,
                        train_outputs=None, test_outputs=None,
                        drop_constant=None, convention: str = "acthash",
                        ties: str | None = None, kmeans_n_seeds: int | None = None,
                        kmeans_dtype=None, n_classes: int | None = None,
                        logreg_solver: str | None = None, dataset: str | None = None,
                        small: str = "nan", backend: str = "auto", knn_backend: str = "auto",
                        memory_budget=None, device=None, timings: dict | None = None) -> dict:
    """All encoding properties on train and test as one flat record.

    Keys: ``redundancy_{train,test}``; ``kmeans_{train,test}`` (Hungarian-matched, the mean
    over ``kmeans_n_seeds`` K-Means seeds; transductive: K-Means is fit on each split's own
    codes) with ``kmeans_std_{train,test}`` (std over the seeds), ``kmeans_purity_*`` and
    ``kmeans_purity_std_*``; ``knn_train`` (leave-one-out) and ``knn_test``;
    ``logreg_{train,test}``; the network's ``net_loss_*``/``net_acc_*`` when outputs are
    given; sizes, ``convention``, ``ties`` and ``kmeans_n_seeds``.

    convention : "acthash" (default) or "original". Every option left as None takes the
        convention's value (:data:`CONVENTIONS`); an explicit value always wins.
        acthash: order-independent k-NN ties ("share"), no unit dropped, 5 K-Means seeds
        (``seed``, ``seed + 1``, ...) in float32 with K = the split's own number of classes,
        lbfgs one-vs-one logistic regression, train and test scores.
        original: scikit-learn's k-NN ties, units constant over train ∪ test dropped,
        one float64 K-Means fit with random_state = 9 and K = the number of classes of both
        splits, liblinear one-vs-one logistic regression (random_state = 9, 100 iterations),
        no train k-NN or train logistic-regression score (the original reports test only),
        plus ``kmeans_original_{train,test}``: the accuracy under the mapping the original's
        script used for ``dataset`` (:func:`original_kmeans_mapping`).
    drop_constant : False, True or "train" (units constant on the training codes, dropped
        from both splits: changes the test redundancy when a unit varies only on test),
        or "union" (constant over train ∪ test, as the original: changes no distance).
    ties : k-NN tie rule, "share" or "sklearn" (see :func:`knn_predict`).
    n_classes : fixed K for K-Means (default: per convention).
    small : what a split too small for a property gives: "nan" (default; NaN and one
        ``SmallDataWarning`` naming the properties) or "raise" (an ``InputError``). Too small
        means fewer codes than K-Means clusters, fewer than k training codes (test k-NN),
        at most k (leave-one-out k-NN), or one training class (logistic regression).
    backend, memory_budget, device : route K-Means and logistic regression to scikit-learn
        (small inputs) or the streamed packed-code paths ("auto", "sklearn", "numba",
        "torch"; see :func:`kmeans_scores`), with ``memory_budget`` bytes (or "2GB") of
        unpacked rows at a time; ``device`` (a torch device) runs them, and the k-NN
        distances, there. ``knn_backend``: "auto", "numba", "faiss" or "numpy" (the same
        neighbours); "torch" when ``backend="torch"``.
    timings : a dict that receives the wall-clock seconds of each property (``redundancy``,
        ``kmeans``, ``knn``, ``logreg``; both splits together).
    """
    clock = {} if timings is None else timings
    for key in ("redundancy", "kmeans", "knn", "logreg"):
        clock.setdefault(key, 0.0)
    stream = {"backend": backend, "memory_budget": memory_budget, "device": device}
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use 'acthash' (the default) or "
                         "'original' (the original study's scripts)")
    if small not in ("nan", "raise"):
        raise InputError(f"unknown small={small!r}; use 'nan' (NaN with a warning) or 'raise'")
    conv = CONVENTIONS[convention]
    ties = _resolve(ties, conv["ties"])
    _check_ties(ties)
    drop_constant = _resolve(drop_constant, conv["drop_constant"])
    if drop_constant is True:
        drop_constant = "train"
    if drop_constant not in (False, "train", "union"):
        raise InputError(f"unknown drop_constant={drop_constant!r}; use False, True/'train' "
                         "or 'union'")
    n_seeds = int(_resolve(kmeans_n_seeds, conv["kmeans_n_seeds"]))
    km_seed = _resolve(conv["kmeans_seed"], seed)
    km_dtype = _resolve(kmeans_dtype, conv["kmeans_dtype"])
    solver = _resolve(logreg_solver, conv["logreg_solver"])
    strategy = _resolve(logreg_strategy, conv["logreg_strategy"])
    lr_seed = _resolve(conv["logreg_seed"], seed)
    train_scores = conv["train_scores"]

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
    if drop_constant == "train":
        ref = train
        train = train.drop_constant()
        test = test.drop_constant(reference=ref) if test is not None else None
    elif drop_constant == "union":
        ref = _union_reference(train, test)
        train = train.drop_constant(reference=ref)
        test = test.drop_constant(reference=ref) if test is not None else None
    all_labels = y_train if test is None else np.concatenate([y_train, y_test])
    if n_classes is None and conv["fixed_k"]:
        n_classes = int(len(np.unique(all_labels)))
    rec: dict = {
        "n_bits": train.n_bits,
        "n_train": len(train),
        "n_test": 0 if test is None else len(test),
        "n_classes": int(len(np.unique(y_train))),
        "k": int(k),
        "convention": convention,
        "ties": ties,
        "kmeans_n_seeds": n_seeds,
    }
    too_small: list[str] = []

    def skip(name: str, why: str) -> float:
        if small == "raise":
            raise InputError(f"{name}: {why}; pass more examples or small='nan'")
        too_small.append(f"{name} ({why})")
        return float("nan")

    mapping_orig = original_kmeans_mapping(dataset) if convention == "original" else None
    splits = [("train", train, y_train)] + ([("test", test, y_test)] if test is not None else [])
    for split, codes, y in splits:
        t0 = time.perf_counter()
        rec[f"redundancy_{split}"] = redundancy_ratio(codes)
        t1 = time.perf_counter()
        clock["redundancy"] += t1 - t0
        kk = int(n_classes or len(np.unique(y)))
        keys = [f"kmeans_{split}", f"kmeans_std_{split}", f"kmeans_purity_{split}",
                f"kmeans_purity_std_{split}"]
        if len(codes) < kk:
            rec[keys[0]] = skip(f"kmeans_{split}", f"{len(codes)} codes < K={kk} clusters")
            for key in keys[1:]:
                rec[key] = float("nan")
        else:
            km = kmeans_scores(codes, y, n_clusters=kk, seed=km_seed, n_init=kmeans_n_init,
                               n_seeds=n_seeds, dtype=km_dtype, **stream)
            rec[keys[0]], rec[keys[1]] = km["hungarian"], km["hungarian_std"]
            rec[keys[2]], rec[keys[3]] = km["purity"], km["purity_std"]
        clock["kmeans"] += time.perf_counter() - t1
        if mapping_orig is not None:
            col = f"kmeans_{split}" if mapping_orig == "hungarian" else f"kmeans_purity_{split}"
            rec[f"kmeans_original_{split}"] = rec[col]
    if mapping_orig is not None:
        rec["kmeans_mapping_original"] = mapping_orig
    knn_kw = {"k": k, "ties": ties, "backend": "torch" if backend == "torch" else knn_backend,
              "device": device, "memory_budget": memory_budget}
    if knn_kw["backend"] == "torch":  # the torch distances of the tie rule run on ``device``
        knn_kw["backend"] = "auto"
        knn_kw["device"] = device if device is not None else "cpu"
    gram = _shared_gram(train, y_train, test, k, ties, knn_kw, train_scores, solver, strategy,
                        backend, memory_budget, device)
    try:
        _knn_and_logreg(rec, train, y_train, test, y_test, k, knn_kw, train_scores, skip,
                        clock, gram, logreg_C, strategy, lr_seed, solver, conv, stream)
    finally:
        if gram is not None:
            gram.close()
    if too_small:
        warnings.warn("split too small, reported as NaN: " + "; ".join(too_small),
                      SmallDataWarning, stacklevel=2)
    for split, outputs, y in (("train", train_outputs, y_train), ("test", test_outputs, y_test)):
        if outputs is not None:
            s = network_scores(outputs, y)
            rec[f"net_loss_{split}"] = s["loss"]
            rec[f"net_acc_{split}"] = s["accuracy"]
    return rec


def _shared_gram(train, y_train, test, k, ties, knn_kw, train_scores, solver, strategy,
                 backend, memory_budget, device):
    """A :class:`acthash.ops.gram.ClassGram` of the training codes when both the leave-one-out
    k-NN (share rule, one numba pass) and the logistic regression (the per-pair solver) will
    run on them: the Gram blocks then serve both, so their popcounts are paid once."""
    from acthash.ops.gram import ClassGram
    from acthash.ops.logreg import kernel_fits, pairs_fit

    if not (train_scores and test is not None and len(train) > k and ties == "share"
            and _one_pass(knn_kw["backend"], knn_kw["device"]) and solver == "lbfgs"
            and strategy == "ovo" and device is None and backend in ("auto", "numba")):
        return None
    _, yi, _ = _encode(y_train)
    sizes = np.bincount(yi)
    if (len(sizes) < 2 or _use_sklearn(train, backend, memory_budget, device)
            or kernel_fits(len(train), "ovo", memory_budget, "numba", None, n_bits=train.n_bits)
            or not pairs_fit(sizes, train.n_bits, memory_budget)):
        return None
    return ClassGram(train, yi, memory_budget=memory_budget, keep="all")


def _knn_and_logreg(rec, train, y_train, test, y_test, k, knn_kw, train_scores, skip, clock,
                    gram, logreg_C, strategy, lr_seed, solver, conv, stream):
    """The k-NN and logistic-regression entries of :func:`encoding_properties`."""
    t0 = time.perf_counter()
    if train_scores:
        rec["knn_train"] = (knn_loo_accuracy(train, y_train, gram=gram, **knn_kw)
                            if len(train) > k
                            else skip("knn_train", f"leave-one-out needs more than k={k} "
                                      f"training codes, got {len(train)}"))
    if test is not None:
        rec["knn_test"] = (knn_accuracy(train, y_train, test, y_test, **knn_kw)
                           if len(train) >= k else
                           skip("knn_test", f"k={k} exceeds the {len(train)} training codes"))
    clock["knn"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    if test is not None:
        if len(np.unique(y_train)) < 2:
            why = "the training labels hold one class"
            if train_scores:
                rec["logreg_train"] = skip("logreg_train", why)
            rec["logreg_test"] = skip("logreg_test", why)
        else:
            lr_kw = {"C": logreg_C, "strategy": strategy, "seed": lr_seed, "solver": solver,
                     "max_iter": conv["logreg_max_iter"], "dtype": conv["logreg_dtype"],
                     **stream}
            if train_scores:
                rec["logreg_train"], rec["logreg_test"] = logreg_accuracy(
                    train, y_train, test, y_test, return_train=True, gram=gram, **lr_kw)
            else:
                rec["logreg_test"] = logreg_accuracy(train, y_train, test, y_test, **lr_kw)
    clock["logreg"] += time.perf_counter() - t0


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


def property_rows(k: int | None = 9) -> list[tuple[str, str]]:
    """(column prefix, label) of each property in table order; the k-NN label names ``k``."""
    knn = f"{int(k)}-NN" if k is not None else "k-NN"
    return [
        ("redundancy", "redundancy ratio"),
        ("kmeans", "K-Means acc. (Hungarian)"),
        ("kmeans_std", "K-Means (Hungarian): std over seeds"),
        ("kmeans_purity", "K-Means acc. (purity)"),
        ("kmeans_purity_std", "K-Means (purity): std over seeds"),
        ("kmeans_original", "K-Means acc. (original mapping)"),
        ("knn", f"{knn} acc. (train: leave-one-out)"),
        ("logreg", "logistic regression acc."),
        ("agg_kmeans", "aggregate: K-Means (Hungarian)"),
        ("agg_kmeans_std", "aggregate K-Means: std over seeds"),
        ("agg_knn", f"aggregate: {knn} (Euclidean)"),
        ("agg_logreg", "aggregate: logistic regression"),
        ("dead_units", "dead units (never active on train)"),
        ("net_acc", "network accuracy"),
        ("net_loss", "network loss (nats)"),
    ]


def properties_table(record: dict, *, k: int | None = None) -> pd.DataFrame:
    """A record from :func:`encoding_properties` as rows = property, columns = train/test.

    ``k`` (for the k-NN label) defaults to the record's own ``k``.
    """
    rows = []
    for key, label in property_rows(k if k is not None else record.get("k", 9)):
        tr, te = record.get(f"{key}_train"), record.get(f"{key}_test")
        if tr is None and te is None:
            continue
        rows.append({"property": label, "train": tr, "test": te})
    return pd.DataFrame(rows).set_index("property")
