"""Array helpers shared by the latent-binary-encoding metrics."""

from __future__ import annotations

import numpy as np
import torch

from acthash.errors import InputError

#: the two conventions a metric can follow where acthash and the authors' code differ
CONVENTIONS = ("acthash", "authors")


def as_numpy(a, name: str = "z", ndim: int | None = 2, *, finite: bool = True) -> np.ndarray:
    """A float64 numpy copy of an array or tensor, checked for its number of axes and (with
    ``finite=True``) for NaN/inf entries, which no metric here can use."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise InputError(f"{name} must have {ndim} axes, got shape {a.shape}")
    if finite and a.size and not np.isfinite(a).all():
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1) if a.ndim else np.array([True])
        raise InputError(
            f"{name} has NaN or infinite entries in {int(bad.sum())} of {len(bad)} rows "
            "(a diverged model?); drop those rows or retrain with a smaller learning rate")
    return a


def _as_labels(y, n: int, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"{name} must have shape ({n},) to match the representation, "
                         f"got {y.shape}")
    return y.astype(np.int64)


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    return convention


def _check_predicted_within(predicted: np.ndarray, labels: np.ndarray) -> None:
    """The authors' loops run over the true-label classes: a predicted class that is not
    among the labels would silently vanish, so it is an error here."""
    extra = np.setdiff1d(np.unique(predicted), np.unique(labels))
    if len(extra):
        raise InputError(
            f"predicted classes {extra.tolist()} do not occur among the labels; pass labels "
            "that cover every predicted class (the same label space) or convention='acthash'")
