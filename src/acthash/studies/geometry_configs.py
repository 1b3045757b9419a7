"""The configs of the geometry studies: exact region counts on planes
(:class:`PlanesConfig`, ``acthash study planes``) and local complexity over training
(:class:`LocalComplexityConfig`, ``acthash study local-complexity``); re-exported by
:mod:`acthash.studies.configs` beside the other studies' configs."""

from __future__ import annotations

from dataclasses import dataclass, field

from acthash._utils.config import LOSSES, ConfigDict, DataFields, ModelFields, TrainFields
from acthash.errors import ConfigError

__all__ = ["PlanesConfig", "PLANE_INITS", "LocalComplexityConfig"]

#: initializations of the plane study's MLPs
PLANE_INITS = ("default", "he")


@dataclass
class PlanesConfig(DataFields, TrainFields, ConfigDict):
    """Settings of the plane study: MLPs of every ``width`` x ``depth`` (ReLU), trained on
    the dataset (the shared training block), and the exact region count on ``n_planes``
    planes through random triples of test points (the same triples for every model), at
    initialization and after training. ``margin``: the square around each triangle (a
    fraction of its side on each side); ``max_regions``: the budget of one partition.

    Factors: one model per ``seed`` x ``init`` ("default": PyTorch's ``nn.Linear``
    initialization; "he": weights normal with variance ``2 / fan_in``, Hanin & Rolnick's
    setting, biases as PyTorch draws them) x ``batchnorm`` x ``label_noise`` (the share of
    training labels moved to another class) x width x depth."""

    _kind = "planes study config"

    width: list[int] = field(default_factory=lambda: [8, 16, 32])
    depth: list[int] = field(default_factory=lambda: [1, 2, 3])
    seed: list[int] = field(default_factory=lambda: [0])
    init: list[str] = field(default_factory=lambda: ["default"])
    batchnorm: list[bool] = field(default_factory=lambda: [False])
    label_noise: list[float] = field(default_factory=lambda: [0.0])
    n_planes: int = 3
    margin: float = 0.25
    sample_size: int | None = 2000
    max_regions: int = 200_000
    epochs: int = 5
    device: str = "auto"

    def factors(self) -> list[tuple[int, str, bool, float]]:
        """The (seed, init, batchnorm, label_noise) cells, in run order."""
        return [(s, i, b, n) for s in self.seed for i in self.init for b in self.batchnorm
                for n in self.label_noise]

    def validate(self) -> None:
        super().validate()
        if not self.width or any(w < 1 for w in self.width):
            raise ConfigError(f"width must be a list of positive integers, got {self.width}")
        if not self.depth or any(d < 1 for d in self.depth):
            raise ConfigError(f"depth must be a list of positive integers, got {self.depth}")
        if self.n_planes < 1 or self.margin < 0 or self.max_regions < 1:
            raise ConfigError("n_planes and max_regions must be >= 1 and margin >= 0")
        if self.sample_size is not None and self.sample_size < 1:
            raise ConfigError(f"sample_size must be >= 1, got {self.sample_size}")
        if not self.seed or not self.init or not self.batchnorm or not self.label_noise:
            raise ConfigError("seed, init, batchnorm and label_noise each need a value")
        bad = [i for i in self.init if i not in PLANE_INITS]
        if bad:
            raise ConfigError(f"unknown init {bad}; use {', '.join(PLANE_INITS)}")
        if any(not 0.0 <= n < 1.0 for n in self.label_noise):
            raise ConfigError(f"label_noise values must be in [0, 1), got {self.label_noise}")


@dataclass
class LocalComplexityConfig(DataFields, ModelFields, TrainFields, ConfigDict):
    """Settings of the local-complexity study (Humayun, Balestriero & Baraniuk 2024): the
    shared dataset, model and training blocks (defaults: their protocol -- an MLP of 4 x 200
    ReLU units, 1 000 training examples, MSE to one-hot targets, AdamW, lr 1e-3, weight decay
    0.01, batch 200, long training); the local complexity
    (:func:`acthash.geometry.local_complexity`) of ``n_points`` train, test and random points
    (Gaussian with the training data's mean and std per feature) at ``n_checkpoints``
    log-spaced epochs (0 and the last included; ``checkpoints`` overrides), cross-polytope of
    ``n_directions`` directions at ``radius``. ``n_exact``: at every checkpoint, the first
    ``n_exact`` train points are also counted exactly on a 2-D slice and compared with the
    sampled count on the same slice (:func:`acthash.geometry.plane_complexity_error`; 0: off).

    Factors: one model per ``seed`` x ``batchnorm`` x ``label_noise`` (the share of training
    labels replaced by a different random class, the same flips for every model of a seed)."""

    _kind = "local-complexity study config"

    width: int = 200
    depth: int = 4
    batchnorm: list[bool] = field(default_factory=lambda: [False])
    label_noise: list[float] = field(default_factory=lambda: [0.0])
    seed: list[int] = field(default_factory=lambda: [0])
    loss: str = "mse"
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 200
    sample_size: int | None = 1000
    n_points: int = 200
    radius: float = 0.5
    n_directions: int = 25
    n_checkpoints: int = 8
    n_exact: int = 0
    epochs: int = 200
    device: str = "auto"

    def epochs_to_measure(self) -> list[int]:
        import numpy as np

        if self.checkpoints:
            return sorted(set(self.checkpoints))
        log = np.geomspace(1, self.epochs + 1, max(self.n_checkpoints, 2)) - 1
        return sorted({0, self.epochs, *(int(round(e)) for e in log)})

    def factors(self) -> list[tuple[int, bool, float]]:
        """The (seed, batchnorm, label_noise) of every model, in run order."""
        return [(s, b, n) for s in self.seed for b in self.batchnorm for n in self.label_noise]

    def validate(self) -> None:
        super().validate()
        if self.n_points < 1 or self.n_directions < 1 or self.n_checkpoints < 1:
            raise ConfigError("n_points, n_directions and n_checkpoints must be >= 1")
        if self.n_exact < 0:
            raise ConfigError(f"n_exact must be >= 0, got {self.n_exact}")
        if not self.radius > 0:
            raise ConfigError(f"radius must be positive, got {self.radius}")
        if self.sample_size is not None and self.sample_size < 1:
            raise ConfigError(f"sample_size must be >= 1, got {self.sample_size}")
        if not self.seed or not self.batchnorm or not self.label_noise:
            raise ConfigError("seed, batchnorm and label_noise each need at least one value")
        if any(not 0.0 <= n < 1.0 for n in self.label_noise):
            raise ConfigError(f"label_noise values must be in [0, 1), got {self.label_noise}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
