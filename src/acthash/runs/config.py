"""The settings of one run (:class:`RunConfig`); torch-free, so the CLI and YAML readers can
build and validate them without the training stack (see :mod:`acthash.runs.experiment`)."""

from __future__ import annotations

from dataclasses import dataclass

from acthash._utils.config import ConfigDict, DataFields, ModelFields, TrainFields
from acthash.errors import ConfigError, InputError

__all__ = ["RunConfig"]


@dataclass
class RunConfig(DataFields, ModelFields, TrainFields, ConfigDict):
    """Everything that determines a run (with the seed, it fixes the codes bit for bit).

    Dataset, model and training fields come from the shared blocks
    (:class:`~acthash._utils.config.DataFields`, :class:`~acthash._utils.config.ModelFields`,
    :class:`~acthash._utils.config.TrainFields`); the rest are the study manipulations and the
    measurement settings.
    """

    _kind = "run config"

    sample_size: int | None = None
    balanced: bool = False
    # repeat the training rows floor(tile_to / N) times per epoch (the original sample-size
    # scripts), so a small sample gets as many steps as a large one; codes use the N rows
    tile_to: int | None = None
    label_noise: float = 0.0
    random_labels: bool = False
    val_split: float = 0.0
    k: int = 9
    layers: str | None = None
    drop_constant: bool | str = False  # False: the convention's; True/"train"; "union"
    kmeans_n_init: int = 10
    logreg_strategy: str = "ovo"
    save_codes: bool = True
    # which codes to measure and under which conventions (see acthash.properties)
    codes: str = "binary"  # "binary", "aggregate" (CNN channel sums) or "both"
    convention: str = "acthash"  # or "original": the original study's scripts
    ties: str | None = None  # k-NN tie rule; None: the convention's ("share" / "sklearn")
    kmeans_n_seeds: int | None = None  # None: the convention's (5 / 1)
    logreg_solver: str | None = None  # None: the convention's ("lbfgs" / "liblinear")
    # scaling: K-Means/logreg/k-NN backend ("auto", "sklearn", "numba", "torch") and the
    # working-memory budget (bytes or "2GB"; codes larger than it are captured to disk)
    property_backend: str = "auto"
    memory_budget: str | int | None = None
    codes_to_disk: bool | None = None  # None: when a split's codes exceed memory_budget

    def validate(self) -> None:
        super().validate()
        from acthash.properties.options import CONVENTIONS, PROPERTY_BACKENDS, TIES

        if self.codes not in ("binary", "aggregate", "both"):
            raise ConfigError(f"unknown codes {self.codes!r}; use 'binary', 'aggregate' "
                              "(per-channel sums of convolutional layers) or 'both'")
        if self.convention not in CONVENTIONS:
            raise ConfigError(f"unknown convention {self.convention!r}; use 'acthash' (the "
                              "default) or 'original' (the original study's scripts)")
        if self.ties is not None and self.ties not in TIES:
            raise ConfigError(f"unknown ties {self.ties!r}; use 'share' (order-independent) "
                              "or 'sklearn'")
        if self.property_backend not in PROPERTY_BACKENDS:
            raise ConfigError(f"unknown property_backend {self.property_backend!r}; use one of "
                              f"{', '.join(repr(b) for b in PROPERTY_BACKENDS)}")
        if self.sample_size is not None and self.sample_size < 1:
            raise ConfigError(f"sample_size must be >= 1, got {self.sample_size}")
        if not 0 <= self.label_noise <= 1:
            raise ConfigError(f"label_noise is a fraction in [0, 1], got {self.label_noise}")
        if not 0 <= self.val_split < 1:
            raise ConfigError(f"val_split is a fraction in [0, 1), got {self.val_split}")
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.kmeans_n_init < 1:
            raise ConfigError(f"kmeans_n_init must be >= 1, got {self.kmeans_n_init}")
        if isinstance(self.layers, str) and self.layers != "all":
            from acthash._utils.validate import compile_layer_pattern

            compile_layer_pattern(self.layers, ConfigError)
        if self.memory_budget is not None:
            from acthash._utils.budget import parse_memory_budget

            try:
                parse_memory_budget(self.memory_budget)
            except InputError as e:
                raise ConfigError(f"memory_budget: {e}") from None
