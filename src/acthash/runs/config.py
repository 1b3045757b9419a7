"""The settings of one run (:class:`RunConfig`), of measuring a model the user brings
(:class:`MeasureConfig`) and of re-scoring saved codes (:class:`PropertiesConfig`); torch-free,
so the CLI and YAML readers can build and validate them without the training stack (see
:mod:`acthash.runs.experiment`, :mod:`acthash.runs.measure`, :mod:`acthash.runs.rescore`).

The fields are declared once, in blocks the configs inherit: :class:`PropertyFields` (the
options of the encoding properties) and :class:`CodeFields` (which codes are captured and
kept), beside the shared data, model and training blocks of :mod:`acthash._utils.config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from acthash._utils.config import ConfigDict, DataFields, ModelFields, TrainFields
from acthash.errors import ConfigError, InputError

__all__ = ["RunConfig", "MeasureConfig", "PropertiesConfig", "PropertyFields", "CodeFields"]


@dataclass
class PropertyFields:
    """The options of the encoding properties (see :class:`acthash.properties.PropertyOptions`;
    a None takes the convention's value)."""

    k: int = 9
    drop_constant: bool | str = False  # False: the convention's; True/"train"; "union"
    kmeans_n_init: int = 10
    logreg_strategy: str = "ovo"
    convention: str = "acthash"  # or "original": the original study's scripts
    ties: str | None = None  # k-NN tie rule; None: the convention's ("share" / "sklearn")
    kmeans_n_seeds: int | None = None  # None: the convention's (5 / 1)
    logreg_solver: str | None = None  # None: the convention's ("lbfgs" / "liblinear")
    # scaling: K-Means/logreg/k-NN backend ("auto", "sklearn", "numba", "torch") and the
    # working-memory budget (bytes or "2GB"; codes larger than it are captured to disk)
    property_backend: str = "auto"
    memory_budget: str | int | None = None

    def _check_properties(self) -> None:
        from acthash.properties.options import CONVENTIONS, PROPERTY_BACKENDS, TIES

        if self.convention not in CONVENTIONS:
            raise ConfigError(f"unknown convention {self.convention!r}; use 'acthash' (the "
                              "default) or 'original' (the original study's scripts)")
        if self.ties is not None and self.ties not in TIES:
            raise ConfigError(f"unknown ties {self.ties!r}; use 'share' (order-independent) "
                              "or 'sklearn'")
        if self.property_backend not in PROPERTY_BACKENDS:
            raise ConfigError(f"unknown property_backend {self.property_backend!r}; use one of "
                              f"{', '.join(repr(b) for b in PROPERTY_BACKENDS)}")
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.kmeans_n_init < 1:
            raise ConfigError(f"kmeans_n_init must be >= 1, got {self.kmeans_n_init}")
        if self.memory_budget is not None:
            from acthash._utils.budget import parse_memory_budget

            try:
                parse_memory_budget(self.memory_budget)
            except InputError as e:
                raise ConfigError(f"memory_budget: {e}") from None


@dataclass
class CodeFields:
    """Which codes are captured (``layers``: a regular expression; ``codes``: "binary",
    "aggregate" or "both"), whether they are kept in the run directory, and whether they are
    captured straight to disk (None: when a split's codes exceed the memory budget)."""

    layers: str | None = None
    save_codes: bool = True
    # which codes to measure (see acthash.properties)
    codes: str = "binary"  # "binary", "aggregate" (CNN channel sums) or "both"
    codes_to_disk: bool | None = None  # None: when a split's codes exceed memory_budget

    def _check_codes(self) -> None:
        if self.codes not in ("binary", "aggregate", "both"):
            raise ConfigError(f"unknown codes {self.codes!r}; use 'binary', 'aggregate' "
                              "(per-channel sums of convolutional layers) or 'both'")
        if isinstance(self.layers, str) and self.layers != "all":
            from acthash._utils.validate import compile_layer_pattern

            compile_layer_pattern(self.layers, ConfigError)


@dataclass
class RunConfig(DataFields, ModelFields, TrainFields, CodeFields, PropertyFields, ConfigDict):
    """Everything that determines a run (with the seed, it fixes the codes bit for bit).

    Dataset, model and training fields come from the shared blocks
    (:class:`~acthash._utils.config.DataFields`, :class:`~acthash._utils.config.ModelFields`,
    :class:`~acthash._utils.config.TrainFields`), the measurement settings from
    :class:`CodeFields` and :class:`PropertyFields`; the rest are the study manipulations.
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

    def validate(self) -> None:
        super().validate()
        self._check_codes()
        self._check_properties()
        if self.sample_size is not None and self.sample_size < 1:
            raise ConfigError(f"sample_size must be >= 1, got {self.sample_size}")
        if not 0 <= self.label_noise <= 1:
            raise ConfigError(f"label_noise is a fraction in [0, 1], got {self.label_noise}")
        if not 0 <= self.val_split < 1:
            raise ConfigError(f"val_split is a fraction in [0, 1), got {self.val_split}")


@dataclass
class MeasureConfig(DataFields, ModelFields, CodeFields, PropertyFields, ConfigDict):
    """Measuring a model the user brings, with no training (``acthash measure``).

    ``model``: a registry name (with ``width``/``depth``/... as for a run), ``module:callable``
    (imported with the working directory on the path), a TorchScript file or a
    ``torch.export`` program (``.pt2``); None: the model recorded in ``checkpoint``.
    ``checkpoint``: a state_dict file, or a checkpoint of a run (``model.pt``,
    ``checkpoints/epoch_XXXX.pt``), loaded into the model. ``seed`` seeds the model's
    initialization (when no checkpoint replaces it) and the properties.
    """

    _kind = "measure config"

    model: str | None = None
    checkpoint: str | None = None
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        self._check_codes()
        self._check_properties()


@dataclass
class PropertiesConfig(PropertyFields, ConfigDict):
    """Re-scoring saved codes (``acthash properties``). ``seed``/``dataset``: None takes the
    run directory's (else 0 and no dataset; the dataset only picks the original study's
    K-Means mapping); ``device``: where the streamed properties run ("auto": CUDA when
    available)."""

    _kind = "properties config"

    seed: int | None = None
    dataset: str | None = None
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        self._check_properties()
