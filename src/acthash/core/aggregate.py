"""Aggregate codes: real-valued codes of CNNs too large to binarise in full.

The original study handled ImageNet and Tiny ImageNet CNNs this way: for chosen blocks, the
per-channel spatial sum of the post-ReLU output, one real number per channel instead of one
bit per channel and position; each layer's block divided by its range (max - min over all
examples and channels of the data set it was computed on), the blocks concatenated, and
Euclidean 9-NN, K-Means and logistic regression run on the result.

- :func:`aggregate_codes` computes them for any ``nn.Module`` (the same ReLU-like layers and
  names as :func:`acthash.core.capture`; only layers whose output has spatial dimensions).
- :func:`euclidean_knn_predict` / :func:`euclidean_knn_accuracy` /
  :func:`euclidean_knn_loo_accuracy`: Euclidean k-NN with the same tie rules as the Hamming
  k-NN (``ties="share"`` or ``"sklearn"``).
- :func:`aggregate_properties`: K-Means, k-NN and logistic regression on train and test
  aggregate codes, one flat record (keys prefixed ``agg_``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from acthash.core.capture import iter_batches
from acthash.core.layers import choose_layers
from acthash.core.recorder import ActivationRecorder, model_device_dtype, no_relu_message
from acthash.errors import InputError, NoReluUnitError, SmallDataWarning

__all__ = ["AggregateSpan", "AggregateCodes", "aggregate_codes", "euclidean_knn_predict",
           "euclidean_knn_accuracy", "euclidean_knn_loo_accuracy", "aggregate_properties"]


@dataclass(frozen=True)
class AggregateSpan:
    """One layer's block of an aggregate code: columns ``[start, stop)`` (one per channel),
    the layer's per-example output ``shape`` (C, H, W, ...) and the ``scale`` it was divided
    by (its range, or 1.0 when not normalised or constant)."""

    name: str
    kind: str
    shape: tuple
    start: int
    stop: int
    scale: float


@dataclass
class AggregateCodes:
    """Real-valued aggregate codes: ``values`` (N, n_features) float64, ``layers`` (one
    :class:`AggregateSpan` per layer, forward order) and optional (N,) ``labels``."""

    values: np.ndarray
    layers: tuple
    labels: np.ndarray | None = None
    outputs: torch.Tensor | None = None  # (N, ...) model outputs on CPU, with keep_outputs

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_features(self) -> int:
        return self.values.shape[1]

    @property
    def ranges(self) -> dict:
        """{layer name: scale}, to normalise another data set with the same scales."""
        return {s.name: s.scale for s in self.layers}

    def __repr__(self) -> str:
        lab = ", labelled" if self.labels is not None else ""
        return (f"AggregateCodes(n={len(self)}, n_features={self.n_features}, "
                f"layers={len(self.layers)}{lab})")


class _SumRecorder:
    """``after`` callback: the spatial sum of each ReLU-like call's output, per channel."""

    def __init__(self):
        self.records: list[tuple[str, str, tuple, torch.Tensor | None]] = []

    def __call__(self, call, out) -> None:
        o = out.detach()
        sums = o.sum(dim=tuple(range(2, o.ndim)), dtype=torch.float64) if o.ndim >= 3 else None
        self.records.append((call.name, call.kind, tuple(o.shape[1:]), sums))


def _choose(records, layers) -> list[int]:
    names = [r[0] for r in records]
    spatial = [r[3] is not None for r in records]

    def flat(i):
        return (f"{names[i]} (output shape {records[i][2]}) has no spatial dimensions: aggregate "
                "codes sum each channel over height and width, so choose layers of a "
                "convolutional part (acthash.list_layers shows the shapes), or use binary "
                "neural codes (acthash.neural_codes) for this layer")

    if layers is None or layers == "all":
        idx = [i for i in range(len(names)) if spatial[i]]
        if not idx:
            raise InputError(f"no ReLU-like layer of this model has spatial dimensions; "
                             f"{flat(0)}")
        return idx
    idx = choose_layers(names, layers)
    if isinstance(layers, str):
        kept = [i for i in idx if spatial[i]]
        if not kept:
            raise InputError(flat(idx[0]))
        return kept
    for i in idx:
        if not spatial[i]:
            raise InputError(flat(i))
    return idx


def aggregate_codes(model: nn.Module, data, *, layers: str | Sequence[str] | None = None,
                    labels=None, normalize: str | None = "range", ranges: dict | None = None,
                    batch_size: int = 256, device=None,
                    keep_outputs: bool = False) -> AggregateCodes:
    """Aggregate codes of ``data`` under ``model`` (eval mode, no gradients).

    For each chosen ReLU-like layer whose output is (B, C, H, W, ...), the per-channel sum of
    the post-activation output over the spatial dimensions: C features per layer.

    layers : None (every ReLU-like layer with spatial dimensions), a regular expression
        (the matching layers with spatial dimensions) or a list of names (each must have
        spatial dimensions); names as in :func:`acthash.list_layers`.
    normalize : "range" (default, as the original): each layer's block divided by its range
        (max - min over all examples and channels of ``data``); None: raw sums.
    ranges : {layer name: scale} to divide by instead of ``data``'s own range (e.g. the
        training codes' ``.ranges`` for a test set); the original used each set's own.
    data, labels, batch_size, device, keep_outputs : as in :func:`acthash.core.capture`.
    Returns :class:`AggregateCodes` with float64 values (N, sum of the layers' channels).
    """
    if normalize not in ("range", None):
        raise InputError(f"unknown normalize={normalize!r}; use 'range' or None")
    recorder = ActivationRecorder(model)
    model_device, model_dtype = model_device_dtype(model)
    device = torch.device(device) if device is not None else model_device
    chosen: list[int] | None = None
    n_calls = 0
    meta: list = []
    parts: list[list[np.ndarray]] = []
    label_parts: list[np.ndarray] = []
    output_parts: list[torch.Tensor] = []
    n_seen = 0
    with recorder, torch.no_grad():  # leaving it restores the model (hooks, train/eval)
        for x, y in iter_batches(data, batch_size):
            if x.shape[0] == 0:
                continue
            x = x.to(device=device, dtype=model_dtype) if x.is_floating_point() else x.to(device)
            rec = recorder.after = _SumRecorder()
            out = recorder(x)
            if keep_outputs:
                o = out[0] if isinstance(out, (tuple, list)) else out
                output_parts.append(o.detach().float().cpu())
            if chosen is None:
                if not rec.records:
                    raise NoReluUnitError(no_relu_message(model))
                chosen = _choose(rec.records, layers)
                n_calls = len(rec.records)
                meta = [rec.records[i][:3] for i in chosen]
                parts = [[] for _ in chosen]
            elif len(rec.records) != n_calls:
                raise InputError("this batch went through different ReLU-like layers than "
                                 "the first batch; aggregate codes need one layer list")
            for j, i in enumerate(chosen):
                parts[j].append(rec.records[i][3].cpu().numpy())
            if y is not None:
                label_parts.append(np.asarray(y.cpu()).reshape(-1))
            n_seen += x.shape[0]
    if n_seen == 0:
        raise InputError("no inputs: the data is empty; pass at least one example")
    blocks, spans, pos = [], [], 0
    for (name, kind, shape), block_parts in zip(meta, parts, strict=True):
        block = np.concatenate(block_parts)
        scale = 1.0
        if ranges is not None:
            if name not in ranges:
                raise InputError(f"ranges has no scale for layer {name!r}; pass the .ranges of "
                                 "aggregate codes computed with the same layers")
            scale = float(ranges[name])
        elif normalize == "range":
            spread = float(block.max() - block.min())
            scale = spread if spread > 0 else 1.0
        blocks.append(block / scale)
        spans.append(AggregateSpan(name, kind, shape, pos, pos + block.shape[1], scale))
        pos += block.shape[1]
    if labels is None and label_parts and sum(len(p) for p in label_parts) == n_seen:
        labels = np.concatenate(label_parts)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_seen,):
            raise InputError(f"labels have shape {labels.shape} but there are {n_seen} inputs")
    outputs = torch.cat(output_parts) if keep_outputs else None
    return AggregateCodes(np.concatenate(blocks, axis=1), tuple(spans), labels, outputs)


# --------------------------------------------------------------------------------- properties


def _as_values(codes, labels, what: str):
    if isinstance(codes, AggregateCodes):
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


def _euclidean(q: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    # pairwise differences, not the matrix-product expansion: equal points give equal
    # distances exactly, which the tie rule relies on
    return torch.cdist(q, db, compute_mode="donot_use_mm_for_euclid_dist")


def _share_counts(x_tr, yi, x_q, k, n_classes, device, loo: bool, chunk: int = 256):
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
    from acthash.properties import _check_k, _check_ties, _encode, _share_vote

    _check_ties(ties)
    x_tr, y_tr = _as_values(train_codes, y_train, "training codes")
    x_te, _ = _as_values(test_codes, np.zeros(len(test_codes)), "test codes")
    if x_te.shape[1] != x_tr.shape[1]:
        raise InputError(f"train codes have {x_tr.shape[1]} features but test codes "
                         f"{x_te.shape[1]}: compute both with the same model and layers")
    _check_k(k, len(x_tr))
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
    from acthash.properties import _check_ties, _encode, _share_vote

    _check_ties(ties)
    x, y = _as_values(codes, labels, "codes")
    if len(x) <= k:
        raise InputError(f"leave-one-out k-NN needs more than k={k} examples, got {len(x)}; "
                         "pass a smaller k or more examples")
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
                         k: int = 9, seed: int = 0, kmeans_n_init: int = 10,
                         kmeans_n_seeds: int | None = None, n_classes: int | None = None,
                         logreg_C: float = 1.0, logreg_strategy: str = "ovo",
                         logreg_solver: str | None = None, convention: str = "acthash",
                         ties: str | None = None, small: str = "nan", device=None) -> dict:
    """K-Means, Euclidean k-NN and logistic regression on aggregate codes, train and test.

    Keys (all prefixed ``agg_``): ``kmeans_{split}`` (Hungarian, mean over seeds),
    ``kmeans_std_*``, ``kmeans_purity_*``, ``kmeans_purity_std_*``, ``knn_train``
    (leave-one-out), ``knn_test``, ``logreg_{train,test}``, ``n_features``. Options and
    conventions as in :func:`acthash.properties.encoding_properties` ("original": sklearn
    k-NN, one float64 K-Means fit with random_state 9 and fixed K, liblinear one-vs-one
    logistic regression with random_state 9, test-only k-NN and logistic regression).
    """
    from acthash.properties import CONVENTIONS, _fit_logreg, _kmeans_dense, _resolve

    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use 'acthash' or 'original'")
    if small not in ("nan", "raise"):
        raise InputError(f"unknown small={small!r}; use 'nan' (NaN with a warning) or 'raise'")
    conv = CONVENTIONS[convention]
    ties = _resolve(ties, conv["ties"])
    n_seeds = int(_resolve(kmeans_n_seeds, conv["kmeans_n_seeds"]))
    km_seed = _resolve(conv["kmeans_seed"], seed)
    solver = _resolve(logreg_solver, conv["logreg_solver"])
    lr_seed = _resolve(conv["logreg_seed"], seed)
    x_tr, y_tr = _as_values(train_codes, y_train, "training codes")
    x_te, y_te = _as_values(test_codes, y_test, "test codes")
    if x_te.shape[1] != x_tr.shape[1]:
        raise InputError(f"train codes have {x_tr.shape[1]} features but test codes "
                         f"{x_te.shape[1]}: compute both with the same model and layers")
    if n_classes is None and conv["fixed_k"]:
        n_classes = int(len(np.unique(np.concatenate([y_tr, y_te]))))
    rec: dict = {"agg_n_features": x_tr.shape[1]}
    too_small: list[str] = []

    def skip(name, why):
        if small == "raise":
            raise InputError(f"{name}: {why}; pass more examples or small='nan'")
        too_small.append(f"{name} ({why})")
        return float("nan")

    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        kk = int(n_classes or len(np.unique(y)))
        keys = [f"agg_kmeans_{split}", f"agg_kmeans_std_{split}", f"agg_kmeans_purity_{split}",
                f"agg_kmeans_purity_std_{split}"]
        if len(x) < kk:
            rec[keys[0]] = skip(keys[0], f"{len(x)} codes < K={kk} clusters")
            rec.update(dict.fromkeys(keys[1:], float("nan")))
            continue
        km = _kmeans_dense(x, y, kk, km_seed, kmeans_n_init, n_seeds)
        rec[keys[0]], rec[keys[1]] = km["hungarian"], km["hungarian_std"]
        rec[keys[2]], rec[keys[3]] = km["purity"], km["purity_std"]
    if conv["train_scores"]:
        rec["agg_knn_train"] = (
            euclidean_knn_loo_accuracy(x_tr, y_tr, k=k, ties=ties, device=device)
            if len(x_tr) > k else skip("agg_knn_train", f"leave-one-out needs more than k={k} "
                                       f"training codes, got {len(x_tr)}"))
    rec["agg_knn_test"] = (
        euclidean_knn_accuracy(x_tr, y_tr, x_te, y_te, k=k, ties=ties, device=device)
        if len(x_tr) >= k else skip("agg_knn_test", f"k={k} exceeds the {len(x_tr)} "
                                    "training codes"))
    if len(np.unique(y_tr)) < 2:
        if conv["train_scores"]:
            rec["agg_logreg_train"] = skip("agg_logreg_train", "one training class")
        rec["agg_logreg_test"] = skip("agg_logreg_test", "one training class")
    else:
        model = _fit_logreg(x_tr, y_tr, logreg_C, logreg_strategy, conv["logreg_max_iter"],
                            lr_seed, solver)
        if conv["train_scores"]:
            rec["agg_logreg_train"] = float(np.mean(model.predict(x_tr) == y_tr))
        rec["agg_logreg_test"] = float(np.mean(model.predict(x_te) == y_te))
    if too_small:
        warnings.warn("split too small, reported as NaN: " + "; ".join(too_small),
                      SmallDataWarning, stacklevel=2)
    return rec
