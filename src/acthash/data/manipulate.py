"""Study manipulations of a training set: sample size, label noise, random labels, a
validation split. Each is seeded, returns new arrays and never mutates its inputs."""

from __future__ import annotations

import numpy as np
import torch

from acthash.errors import InputError

__all__ = ["subsample", "noisy_labels", "random_labels", "train_val_split"]


def subsample(y: torch.Tensor, n: int, *, balanced: bool = False, seed: int = 0) -> np.ndarray:
    """Indices of a training subset of size ``n``.

    ``balanced=False``: the first ``n`` examples (the original study's protocol).
    ``balanced=True``: ``n // C`` examples per class (the first ``n % C`` classes get one
    more), drawn at random with ``seed``; returned in ascending order.
    """
    y = np.asarray(y)
    if not 1 <= n <= len(y):
        raise InputError(f"sample size {n} must be between 1 and the training set size {len(y)}")
    if not balanced:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per, extra = divmod(n, len(classes))
    chosen = []
    for i, c in enumerate(classes):
        want = per + (1 if i < extra else 0)
        pool = np.flatnonzero(y == c)
        if want > len(pool):
            raise InputError(
                f"class {c} has only {len(pool)} examples, a balanced sample of {n} needs {want}"
            )
        chosen.append(rng.choice(pool, size=want, replace=False))
    return np.sort(np.concatenate(chosen))


def noisy_labels(y: torch.Tensor, fraction: float, n_classes: int, *, seed: int = 0):
    """Replace ``round(fraction * N)`` labels by a different class drawn uniformly.

    Returns ``(new_labels, noisy_indices)``; the input is not modified.
    """
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"label noise fraction must be in [0, 1], got {fraction}")
    if n_classes < 2:
        raise InputError("label noise needs at least two classes")
    y_np = np.asarray(y).copy()
    rng = np.random.default_rng(seed)
    m = int(round(fraction * len(y_np)))
    idx = np.sort(rng.choice(len(y_np), size=m, replace=False))
    shift = rng.integers(1, n_classes, size=m)  # never 0: a different class
    y_np[idx] = (y_np[idx] + shift) % n_classes
    return torch.as_tensor(y_np, dtype=torch.long), idx


def random_labels(y: torch.Tensor, n_classes: int, *, seed: int = 0) -> torch.Tensor:
    """Labels drawn uniformly at random from ``n_classes`` (the random-labels control)."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, n_classes, size=len(y)), dtype=torch.long)


def train_val_split(n: int, val_fraction: float = 0.2, *, seed: int = 0):
    """(train_idx, val_idx): a seeded random split of ``range(n)`` (the paper's 80/20)."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"validation fraction must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
