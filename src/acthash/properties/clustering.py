"""K-Means categorization accuracy of codes, and the cluster-to-class mappings.

:func:`kmeans_scores` fits K-Means (K = number of classes) on the bits over several seeds and
scores each fit after mapping clusters to classes (:func:`cluster_accuracy`): one-to-one by
the Hungarian method, or by majority ("purity"). :func:`original_kmeans_mapping` names the
mapping the original study's script used for a data set.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from acthash.core.codes import NeuralCodes, as_codes
from acthash.errors import InputError
from acthash.properties._common import _labels_for, _streamed, _use_sklearn
from acthash.properties.options import PropertyOptions, _check_backend

__all__ = ["cluster_accuracy", "matched_chance", "kmeans_scores", "kmeans_accuracy", "MAPPINGS",
           "ORIGINAL_KMEANS_MAPPING", "original_kmeans_mapping"]

#: cluster-to-class mappings: one-to-one (Hungarian) and majority (purity)
MAPPINGS = ("hungarian", "purity")

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


def _check_mapping(mapping) -> None:
    if mapping not in MAPPINGS:
        raise InputError(f"unknown mapping {mapping!r}; use 'hungarian' or 'purity'")


def cluster_accuracy(clusters, labels, mapping: str = "hungarian") -> float:
    """Accuracy of a clustering against labels after mapping clusters to classes.

    clusters, labels : (N,) arrays of any comparable values. mapping : "hungarian" (one
    cluster per class, optimal one-to-one assignment, scipy's ``linear_sum_assignment``) or
    "purity" (each cluster takes its majority class).
    """
    _check_mapping(mapping)
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    if clusters.shape != labels.shape or clusters.ndim != 1 or len(labels) == 0:
        raise InputError(f"clusters {clusters.shape} and labels {labels.shape} must be two "
                         "non-empty 1-D arrays of the same length")
    return _cluster_accuracy(clusters, labels, mapping)


def _cluster_accuracy(clusters: np.ndarray, labels: np.ndarray, mapping: str) -> float:
    _, ci = np.unique(clusters, return_inverse=True)
    _, li = np.unique(labels, return_inverse=True)
    table = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, li), 1)
    if mapping == "hungarian":
        rows, cols = linear_sum_assignment(table, maximize=True)
        return float(table[rows, cols].sum() / len(labels))
    return float(table.max(axis=1).sum() / len(labels))


def matched_chance(n: int, n_classes: int, draws: int = 200, seed: int = 0) -> float:
    """Chance level of a Hungarian-matched clustering accuracy: the mean accuracy of the
    best one-to-one matching between ``n`` balanced labels and uniformly random clusters
    (``draws`` seeded draws). It exceeds 1/classes on small sets, because the matching is
    chosen to fit the labels (measure it: it shrinks towards 1/classes as n grows)."""
    for name, v in (("n", n), ("n_classes", n_classes), ("draws", draws)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    runs = [_cluster_accuracy(rng.integers(0, n_classes, size=n), labels, "hungarian")
            for _ in range(draws)]
    return float(np.mean(runs))


def _check_n_clusters(k: int, n: int) -> None:
    if k > n:
        raise InputError(f"K-Means with K={k} clusters needs at least {k} codes, got {n}; "
                         "pass fewer clusters (n_clusters=) or more examples")


def _check_n_seeds(n_seeds) -> None:
    if n_seeds < 1:
        raise InputError(f"n_seeds must be at least 1, got {n_seeds}")


def kmeans_scores(codes, labels=None, *, n_clusters: int | None = None, seed: int = 0,
                  n_init: int = 10, n_seeds: int | None = None, dtype="float32",
                  backend: str = "auto", memory_budget=None, device=None) -> dict:
    """K-Means (K = ``n_clusters``, default the number of distinct labels) on the code bits,
    scored both ways, over ``n_seeds`` K-Means seeds ``seed, seed + 1, ...`` (default: the
    acthash convention's, 5, as in :func:`~acthash.properties.record.encoding_properties`).

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
    _check_backend(backend)
    n_seeds = PropertyOptions().kmeans_n_seeds if n_seeds is None else n_seeds
    _check_n_seeds(n_seeds)
    k = int(n_clusters or len(np.unique(labels)))
    _check_n_clusters(k, len(codes))
    return _kmeans_codes(codes, labels, k, seed, n_init, n_seeds, dtype, backend,
                         memory_budget, device)


def _kmeans_codes(codes: NeuralCodes, labels: np.ndarray, k: int, seed: int, n_init: int,
                  n_seeds: int, dtype, backend: str, memory_budget, device) -> dict:
    """:func:`kmeans_scores` on checked codes, labels and options."""
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
    return _kmeans_on(fit, labels, seed, n_seeds)


def _kmeans_dense(x: np.ndarray, labels: np.ndarray, k: int, seed: int, n_init: int,
                  n_seeds: int) -> dict:
    """K-Means runs over seeds with scikit-learn on a dense (N, D) array ``x`` (real-valued
    features such as the aggregate codes), scored as :func:`kmeans_scores`; K <= N."""
    from sklearn.cluster import KMeans

    def fit(s: int) -> np.ndarray:
        return KMeans(n_clusters=k, n_init=n_init, random_state=s).fit_predict(x)

    return _kmeans_on(fit, labels, seed, n_seeds)


def _kmeans_on(fit, labels: np.ndarray, seed: int, n_seeds: int) -> dict:
    """K-Means runs ``fit(seed_i) -> cluster labels`` over seeds ``seed .. seed + n_seeds - 1``,
    each scored both ways."""
    seeds = [int(seed) + i for i in range(n_seeds)]
    runs: dict = {mapping: [] for mapping in MAPPINGS}
    for s in seeds:
        clusters = fit(s)
        for mapping in runs:
            runs[mapping].append(_cluster_accuracy(clusters, labels, mapping))
    out: dict = {"seeds": seeds}
    for mapping, values in runs.items():
        v = np.asarray(values)
        out[mapping] = float(v.mean())
        out[f"{mapping}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        out[f"{mapping}_runs"] = values
    return out


def kmeans_accuracy(codes, labels=None, mapping: str = "hungarian", *, seed: int = 0,
                    n_init: int = 10, n_seeds: int | None = None, n_clusters: int | None = None,
                    dtype="float32", backend: str = "auto", memory_budget=None,
                    device=None) -> float:
    """K-Means categorization accuracy of the codes (see :func:`cluster_accuracy`), the mean
    over ``n_seeds`` seeds (default: the acthash convention's 5; see :func:`kmeans_scores`)."""
    _check_mapping(mapping)
    return kmeans_scores(codes, labels, seed=seed, n_init=n_init, n_seeds=n_seeds,
                         n_clusters=n_clusters, dtype=dtype, backend=backend,
                         memory_budget=memory_budget, device=device)[mapping]


def _kmeans_split(m, split: str, prefix: str, n: int, labels, fit_scores) -> dict:
    """The ``{prefix}kmeans*_{split}`` entries of one split: ``fit_scores(K)`` (a
    :func:`kmeans_scores`-like dict), or NaN through ``m.skip`` when ``n`` < K."""
    kk = int(m.n_classes or len(np.unique(labels)))
    keys = [f"{prefix}kmeans_{split}", f"{prefix}kmeans_std_{split}",
            f"{prefix}kmeans_purity_{split}", f"{prefix}kmeans_purity_std_{split}"]
    if n < kk:
        rec = dict.fromkeys(keys, float("nan"))
        rec[keys[0]] = m.skip(keys[0], f"{n} codes < K={kk} clusters")
        return rec
    km = fit_scores(kk)
    return dict(zip(keys, (km["hungarian"], km["hungarian_std"], km["purity"],
                           km["purity_std"]), strict=True))


def _measure(m, split: str, codes: NeuralCodes, labels: np.ndarray) -> dict:
    """Record step (see :mod:`acthash.properties.catalog`): ``kmeans_{split}``,
    ``kmeans_std_*``, ``kmeans_purity_*``, ``kmeans_purity_std_*`` and, under the original
    convention, ``kmeans_original_*``."""
    o = m.options
    rec = _kmeans_split(m, split, "", len(codes), labels, lambda kk: _kmeans_codes(
        codes, labels, kk, o.kmeans_seed, o.kmeans_n_init, o.kmeans_n_seeds, o.kmeans_dtype,
        o.backend, o.memory_budget, o.device))
    if o.is_original:
        mapping = original_kmeans_mapping(o.dataset)
        col = f"kmeans_{split}" if mapping == "hungarian" else f"kmeans_purity_{split}"
        rec[f"kmeans_original_{split}"] = rec[col]
    return rec
