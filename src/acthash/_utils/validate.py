"""Checks of user arrays shared by every module that takes them (one place, one wording).

Public functions validate their arguments with these; the private cores they call assume
valid input. Codes are recognised by duck typing (an object with a ``.packed`` array, such as
:class:`acthash.core.codes.NeuralCodes`), so that :mod:`acthash.ops` never imports
:mod:`acthash.core`.
"""

from __future__ import annotations

import numpy as np

from acthash.errors import InputError

__all__ = ["compile_layer_pattern", "check_labels", "check_label_shape", "check_class_indices", "as_packed",
           "check_code_length", "check_k", "check_finite"]


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


def check_label_shape(labels, n: int, what: str = "labels", rows: str = "code") -> np.ndarray:
    """``labels`` as an array of shape (n,) (any values: they are encoded by the caller, e.g.
    with ``numpy.unique``), or InputError."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise InputError(f"{what} have shape {labels.shape} for {n} {rows}s; pass one label "
                         f"per {rows}")
    return labels


def check_class_indices(labels, n: int, n_classes: int | None = None, *,
                        what: str = "labels", rows: str = "code") -> tuple[np.ndarray, int]:
    """``(labels, n_classes)``: (n,) C-contiguous int64 class indices in [0, n_classes)
    (``n_classes`` defaults to ``max + 1``), or InputError naming the fix."""
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise InputError(f"{what} have shape {arr.shape} for {n} {rows}s; pass one class "
                         f"index per {rows}")
    arr = np.ascontiguousarray(check_labels(arr, n, what))
    if n_classes is None:
        n_classes = int(arr.max()) + 1 if n else 0
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise InputError(f"{what} must be class indices in [0, {n_classes}); encode them first")
    return arr, int(n_classes)


def as_packed(x, what: str | None = None, *, contiguous: bool = True) -> np.ndarray:
    """The (N, B) uint8 packed rows of codes (an object with ``.packed``, e.g. NeuralCodes)
    or of a 2-D uint8 array, C-contiguous unless ``contiguous=False`` (then a memory map is
    returned as it is); anything else raises InputError. ``what`` names the argument."""
    if not isinstance(x, np.ndarray) and hasattr(x, "packed"):
        x = x.packed
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 2:
        raise InputError(f"{what or 'packed'} codes must be NeuralCodes or a 2-D uint8 array "
                         f"of packed codes (numpy.packbits(bits, axis=1)), got {x.dtype} with "
                         f"shape {x.shape}")
    return np.ascontiguousarray(x) if contiguous else x


def check_code_length(a: np.ndarray, b: np.ndarray) -> None:
    """Raise InputError unless the packed rows ``a`` and ``b`` have the same bytes per row."""
    if a.shape[1] != b.shape[1]:
        raise InputError(f"codes differ in length: {a.shape[1]} vs {b.shape[1]} bytes per row")


def check_k(k, n: int, what: str = "the database size", name: str = "k") -> int:
    """``k`` as an int in [1, n], or InputError naming the range (``what`` names ``n``)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise InputError(f"{name}={k!r} must be an integer between 1 and {what} {n}")
    return int(k)


def check_finite(x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """``x`` (an (N, ...) float array) unchanged, or InputError naming rows with NaN or inf."""
    if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[:5].tolist()
        raise InputError(f"{what} contain NaN or inf (rows {rows} ...); clean or impute them")
    return x


def compile_layer_pattern(layers: str, error=InputError):
    """``re.compile(layers)``; an invalid pattern raises ``error`` naming the fix."""
    import re

    try:
        return re.compile(layers)
    except re.error as e:
        raise error(f"layers {layers!r} is not a valid regular expression ({e}); give a "
                    r"Python regex such as 'features' or 'features\.\d+$' (--layers), or a "
                    "list of layer names") from None
