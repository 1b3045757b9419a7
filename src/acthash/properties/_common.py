"""Helpers shared by the property modules: labels, class indices, the scikit-learn route."""

from __future__ import annotations

import numpy as np

from acthash._utils.validate import check_labels
from acthash.core.codes import NeuralCodes
from acthash.errors import InputError

#: "auto" keeps scikit-learn while the unpacked copies are at most this many bytes
_SKLEARN_MAX_BYTES = 64 << 20


def _labels_for(codes: NeuralCodes, labels, what: str = "labels") -> np.ndarray:
    """``labels`` checked against ``codes`` (or the labels stored on them), as int64."""
    if labels is None:
        if codes.labels is None:
            raise InputError(f"{what} are needed: pass them, or build the codes with labels")
        return codes.labels
    return check_labels(labels, len(codes), what)


def _encode(labels: np.ndarray, classes: np.ndarray | None = None):
    """(classes, class index of each label, whether the label is one of ``classes``)."""
    if classes is None:
        classes = np.unique(labels)
    idx = np.searchsorted(classes, labels)
    idx = np.clip(idx, 0, len(classes) - 1)
    known = classes[idx] == labels
    return classes, idx, known


def _use_sklearn(codes: NeuralCodes, backend: str, memory_budget, device) -> bool:
    """Route a property to scikit-learn (dense, small inputs) or the streamed packed path.

    backend : "auto" (scikit-learn while three float32 copies of the unpacked codes fit in
    min(memory_budget, 64 MiB) and no accelerator is asked for; else streamed), "sklearn",
    "numba" or "torch" (streamed); checked by the caller."""
    from acthash._utils.budget import parse_memory_budget

    if backend == "sklearn":
        return True
    if backend in ("numba", "torch"):
        return False
    if device is not None and str(device) not in ("cpu", "auto"):
        return False
    limit = min(parse_memory_budget(memory_budget), _SKLEARN_MAX_BYTES)
    return 3 * 4 * len(codes) * codes.n_bits <= limit


def _streamed(backend: str) -> str:
    return "auto" if backend in ("auto", "sklearn") else backend


class _Measurement:
    """What a record step reads (see :mod:`acthash.properties.catalog`): the resolved
    ``options``, the codes and labels of each split (``test`` None without a test split),
    the fixed K-Means K ``n_classes`` (None: each split's own), the network ``*_outputs``
    and a shared ``gram``; :meth:`skip` reports a property the split is too small for."""

    def __init__(self, options, train, y_train, test=None, y_test=None, *, train_outputs=None,
                 test_outputs=None):
        self.options = options
        self.train, self.y_train, self.test, self.y_test = train, y_train, test, y_test
        self.train_outputs, self.test_outputs = train_outputs, test_outputs
        self.gram = None
        self.too_small: list[str] = []
        n_classes = options.n_classes
        if n_classes is None and options.fixed_k:
            labels = y_train if y_test is None else np.concatenate([y_train, y_test])
            n_classes = int(len(np.unique(labels)))
        self.n_classes = n_classes

    def splits(self) -> list[tuple]:
        """[(split, codes, labels)] of the splits given, train first."""
        out = [("train", self.train, self.y_train)]
        return out + ([("test", self.test, self.y_test)] if self.test is not None else [])

    def skip(self, name: str, why: str) -> float:
        """NaN for ``name`` (noted for one warning), or an InputError with ``small="raise"``."""
        if self.options.small == "raise":
            raise InputError(f"{name}: {why}; pass more examples or small='nan'")
        self.too_small.append(f"{name} ({why})")
        return float("nan")

    def warn(self, stacklevel: int) -> None:
        """One SmallDataWarning naming every property skipped."""
        if self.too_small:
            import warnings

            from acthash.errors import SmallDataWarning

            warnings.warn("split too small, reported as NaN: " + "; ".join(self.too_small),
                          SmallDataWarning, stacklevel=stacklevel + 1)
