"""Memorised (mislabelled) training examples, found by how isolated their neural code is
among the codes of their own — possibly wrong — label.

A network trained on noisy labels fits the flipped examples too, but their codes tend to stay
among the codes of their *true* class. Two scores per training example (higher = more likely
mislabelled), both from exact Hamming k-NN among the training codes, the example itself left
out:

- ``"disagreement"``: the share of its k nearest codes whose label differs from its own;
- ``"nearest-same"``: the Hamming distance to the nearest other code with its own label.

:func:`per_example_loss` is the baseline: the cross-entropy of the network on the example's
(noisy) label. :func:`flip_auroc` scores either against the indices of the flipped labels
(flipped = positive).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.validate import as_packed, check_class_indices, check_k
from acthash.errors import ConfigError, InputError
from acthash.ood.metrics import auroc
from acthash.ops.hamming import hamming_knn

__all__ = ["ISOLATION_METHODS", "label_isolation_scores", "per_example_loss", "flip_auroc"]

ISOLATION_METHODS = ("disagreement", "nearest-same")


def _neighbours_without_self(db: np.ndarray, k: int, backend: str, rows=None):
    """(distances, indices) of the k nearest other rows of each row of ``db`` (or of
    ``rows`` of it): k + 1 neighbours, minus the row itself (or minus the last when the row
    is not among them, which happens only with more than k + 1 identical codes)."""
    q = db if rows is None else db[rows]
    own = np.arange(len(db)) if rows is None else np.asarray(rows)
    d, i = hamming_knn(db, q, min(k + 1, len(db)), backend=backend)
    is_self = i == own[:, None]
    drop = np.where(is_self.any(1), is_self.argmax(1), i.shape[1] - 1)
    keep = np.ones(i.shape, bool)
    keep[np.arange(len(i)), drop] = False
    return d[keep].reshape(len(i), -1), i[keep].reshape(len(i), -1)


def label_isolation_scores(codes, labels=None, *, k: int = 10, method: str = "disagreement",
                           backend: str = "auto") -> np.ndarray:
    """(N,) isolation of each code among the codes of its label (see the module docstring);
    ``labels`` default to the codes' own."""
    if method not in ISOLATION_METHODS:
        raise ConfigError(f"unknown method {method!r}; choose {', '.join(ISOLATION_METHODS)}")
    packed = as_packed(codes, "codes")
    if labels is None:
        labels = getattr(codes, "labels", None)
    if labels is None:
        raise InputError("the codes carry no labels; pass labels (one class per code)")
    y, _ = check_class_indices(labels, len(packed), what="labels")
    if method == "disagreement":
        k = check_k(k, len(packed) - 1, "the number of other codes")
        _, idx = _neighbours_without_self(packed, k, backend)
        return (y[idx] != y[:, None]).mean(1)
    out = np.empty(len(packed))
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < 2:  # alone in its label: as isolated as can be
            out[rows] = packed.shape[1] * 8
            continue
        d, _ = _neighbours_without_self(packed[rows], 1, backend)
        out[rows] = d[:, 0]
    return out


def per_example_loss(model: nn.Module, x, y, *, batch_size: int = 1024) -> np.ndarray:
    """(N,) cross-entropy of ``model`` on each (x, y) in nats (eval mode, no gradients; the
    model's train/eval state is restored)."""
    x = torch.as_tensor(x).float()
    y = torch.as_tensor(np.asarray(y)).long()
    if len(x) != len(y):
        raise InputError(f"{len(x)} inputs but {len(y)} labels; pass one label per input")
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                logits = model(x[lo : lo + batch_size].to(device))
                out.append(F.cross_entropy(logits.double(), y[lo : lo + batch_size].to(device),
                                           reduction="none").cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def flip_auroc(scores, flipped, n: int | None = None) -> float:
    """AUROC of ``scores`` (higher = more likely flipped) for flagging the flipped labels;
    ``flipped`` is a boolean mask, or the indices of the flipped examples with ``n`` the
    number of examples."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    flipped = np.asarray(flipped)
    if flipped.dtype != bool:
        mask = np.zeros(len(scores) if n is None else n, bool)
        mask[flipped.astype(np.int64)] = True
        flipped = mask
    if flipped.shape != scores.shape:
        raise InputError(f"{flipped.shape[0]} flip flags for {len(scores)} scores")
    return auroc(flipped, scores)
