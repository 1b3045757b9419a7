"""Validation helpers shared by every module that takes user arrays (one place, one wording)."""

from __future__ import annotations

import numpy as np

from acthash.errors import InputError

__all__ = ["check_labels"]


def check_labels(labels, n: int, what: str = "labels") -> np.ndarray:
    """``labels`` as an (n,) int64 array of class indices, or InputError naming the fix."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"{what} must be a 1-D array, got shape {labels.shape}")
    if len(labels) != n:
        raise InputError(
            f"{what} have length {len(labels)} but there are {n} examples; "
            "pass one label per example, in the same order as the inputs"
        )
    if labels.dtype.kind not in "iub":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise InputError(
                f"{what} must be integers (class indices), got dtype {labels.dtype}; "
                "encode class names with e.g. numpy.unique(..., return_inverse=True)"
            )
    return labels.astype(np.int64, copy=False)
