"""The dataset registry and the in-memory :class:`Dataset` every loader returns.

The table only: the built-in loaders (:mod:`~acthash.data.loaders`,
:mod:`~acthash.data.manifolds`) register into it when :mod:`acthash.data` is imported, so
imports go one way (loaders -> registry). Torch is imported by the loaders when they run, so
the registry can be listed and described without it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from acthash.errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass
class Dataset:
    """Train/test tensors in memory.

    x_* : (N, *input_shape) float32 tensors, already normalized (see ``normalization``)
    y_* : (N,) int64 class indices in ``[0, n_classes)``
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    input_shape: tuple[int, ...]
    normalization: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y):
                raise InputError(f"{self.name}: {len(x)} {split} inputs but {len(y)} labels")
            if tuple(x.shape[1:]) != tuple(self.input_shape):
                raise InputError(
                    f"{self.name}: {split} inputs have shape {tuple(x.shape[1:])}, "
                    f"expected {self.input_shape}"
                )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n_train": len(self.x_train),
            "n_test": len(self.x_test),
            "n_classes": self.n_classes,
            "class_names": [str(c) for c in self.class_names],  # every dataset, CSV included
            "input_shape": list(self.input_shape),
            "normalization": self.normalization,
            **self.info,
        }


@dataclass
class _Entry:
    loader: Callable[..., Dataset]
    description: str
    available: Callable[[], bool]
    how_to_get: str


_REGISTRY: dict[str, _Entry] = {}


def register_dataset(name: str, description: str, available: Callable[[], bool] | None = None,
                     how_to_get: str = "bundled"):
    """Decorator: register ``loader(**options) -> Dataset`` under ``name``."""

    def deco(fn):
        _REGISTRY[name] = _Entry(fn, description, available or (lambda: True), how_to_get)
        return fn

    return deco


def list_datasets() -> list[dict]:
    """Every registered dataset with whether it is available here and how to get it."""
    return [
        {"name": n, "description": e.description, "available": bool(e.available()),
         "how_to_get": e.how_to_get}
        for n, e in sorted(_REGISTRY.items())
    ]


def available_datasets() -> list[str]:
    return [d["name"] for d in list_datasets() if d["available"]]


def data_root() -> Path:
    """Default parent folder of user-provided datasets: ``$ACTHASH_DATA`` or
    ``~/.acthash/data`` (a dataset ``NAME`` is then looked for in ``data_root()/NAME``)."""
    return Path(os.environ.get("ACTHASH_DATA", "~/.acthash/data")).expanduser()


def _check_options(name: str, fn: Callable, options: dict, skip: int = 0) -> None:
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    valid = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        hint = ""
        if "root" in unknown:
            hint = f" ({name} needs no data directory: drop --data-dir / root=)"
        raise InputError(
            f"dataset {name!r} takes no option(s) {unknown}{hint}; its options are "
            f"{valid + ['random_labels', 'random_labels_seed']}"
        )


def load(name: str, *, random_labels: bool = False, random_labels_seed: int = 0,
         **options) -> Dataset:
    """Load a dataset by registry name; ``options`` go to its loader.

    Names: ``digits``, ``mnist1d``, ``fashion-mnist``, ``mnist``, ``cifar10``, ``svhn``,
    ``csv:PATH`` and ``random:NAME`` (see ``acthash data list``). ``random_labels=True``
    replaces the training labels by uniformly random classes (seeded by
    ``random_labels_seed``) on any dataset; test labels stay true.
    """
    prefix, sep, rest = name.partition(":")
    if sep and f"{prefix}:" in _REGISTRY:
        fn = _REGISTRY[f"{prefix}:"].loader
        if not rest:
            raise InputError(f"{prefix}: needs an argument, e.g. {prefix}:{'data.csv' if prefix == 'csv' else 'fashion-mnist'}")
        _check_options(name, fn, options, skip=1)
        ds = fn(rest, **options)
    elif name not in _REGISTRY:
        raise InputError(
            f"unknown dataset {name!r}; available names: {', '.join(sorted(_REGISTRY))} "
            "(see `acthash data list`)"
        )
    else:
        _check_options(name, _REGISTRY[name].loader, options)
        ds = _REGISTRY[name].loader(**options)
    if random_labels:
        ds = with_random_labels(ds, seed=random_labels_seed)
    return ds


def with_random_labels(ds: Dataset, seed: int = 0) -> Dataset:
    """A copy of ``ds`` whose training labels are drawn uniformly from its classes
    (``numpy.random.default_rng(seed)``); inputs and test labels are shared, not copied."""
    from acthash.data.manipulate import random_labels

    y = random_labels(ds.y_train, ds.n_classes, seed=seed)
    info = {**ds.info, "random_labels": {"seed": seed}}
    return Dataset(ds.name, ds.x_train, y, ds.x_test, ds.y_test, list(ds.class_names),
                   tuple(ds.input_shape), dict(ds.normalization), info)


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, ...) float32 inputs and (N,) int64 labels as torch tensors."""
    import torch

    return (torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
            torch.as_tensor(np.asarray(y), dtype=torch.long))
