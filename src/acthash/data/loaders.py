"""Built-in dataset loaders (each registers itself)."""

from __future__ import annotations

import numpy as np

from acthash.data.registry import Dataset, as_tensors, register_dataset


@register_dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1 797 images, 10 classes)")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Digits scaled to [0, 1] (pixel / 16), shape (1, 8, 8); stratified train/test split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    bunch = _load()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    x_tr, y_tr = as_tensors(x_tr, y_tr)
    x_te, y_te = as_tensors(x_te, y_te)
    return Dataset(
        name="digits",
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=[str(i) for i in range(10)],
        input_shape=(1, 8, 8),
        normalization={"kind": "scale", "divide_by": 16.0},
        info={"source": "sklearn.datasets.load_digits", "test_fraction": test_fraction,
              "split_seed": split_seed},
    )


# the random-data control (``random:NAME``) registers itself on import
from acthash.data import random_data as _random_data  # noqa: E402,F401
