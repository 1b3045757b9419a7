"""Array helpers shared by the latent-binary-encoding metrics."""

from __future__ import annotations

import numpy as np
import torch

from acthash.errors import InputError


def as_numpy(a, name: str = "z", ndim: int | None = 2) -> np.ndarray:
    """A float64 numpy copy of an array or tensor, checked for its number of axes."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise InputError(f"{name} must have {ndim} axes, got shape {a.shape}")
    return a


def _as_labels(y, n: int, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"{name} must have shape ({n},) to match the representation, "
                         f"got {y.shape}")
    return y.astype(np.int64)
