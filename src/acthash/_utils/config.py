"""One contract for every config of acthash (runs, training, sweeps and studies).

- :class:`ConfigDict`: ``to_dict()`` (JSON-ready: tuples become lists) and ``from_dict(d)``
  (unknown keys rejected with the valid ones listed); ``validate()`` runs on construction
  (and on ``dataclasses.replace``), so a config that exists is a valid one.
- Shared field blocks, declared once and inherited: :class:`DataFields` (dataset and its
  options), :class:`ModelFields` (model name and options), :class:`TrainFields` (the training
  loop). A config that trains a model inherits them instead of re-declaring fields; the CLI's
  option names equal these field names.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

from acthash.errors import ConfigError

__all__ = ["ConfigDict", "DataFields", "ModelFields", "TrainFields", "TrainConfig", "OPTIMIZERS",
           "SCHEDULES"]

OPTIMIZERS = ("adam", "adamw", "sgd")
#: training losses: cross-entropy, or the mean squared error to one-hot targets
LOSSES = ("ce", "mse")
SCHEDULES = ("none", "step", "multistep", "cosine")


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class ConfigDict:
    """Dict round trip and validation on construction for a dataclass config.

    ``_kind`` names the config in error messages. Subclasses extend :meth:`validate`
    (calling ``super().validate()``) and raise :class:`~acthash.errors.ConfigError`.
    """

    _kind = "config"
    #: old keys still read (one release), mapped to their current names with a warning
    _renamed: dict = {}

    def __new__(cls, *args, **kwargs):
        # the fields the caller set (positional or keyword): an option a model does not take
        # is refused when it was set, whatever its value. A call that gives every field (a
        # saved config read back, ``dataclasses.replace``) cannot tell set from default:
        # there a field counts as set when it differs from its default.
        self = super().__new__(cls)
        init = [f.name for f in fields(cls) if f.init]
        given = set(init[:len(args)]) | set(kwargs)
        object.__setattr__(self, "_explicit", None if given >= set(init) else frozenset(given))
        return self

    def __post_init__(self) -> None:
        self.validate()

    def is_set(self, name: str) -> bool:
        """True when field ``name`` was given by the caller (see ``__new__``), or, for a
        config built with every field, when it differs from its default."""
        explicit = getattr(self, "_explicit", None)
        if explicit is not None:
            return name in explicit
        f = next(f for f in fields(self) if f.name == name)
        default = (f.default_factory() if f.default_factory is not MISSING  # type: ignore[misc]
                   else f.default)
        return getattr(self, name) != default

    def validate(self) -> None:
        """Raise ConfigError naming the bad setting (the blocks' checks run first)."""
        for block in (DataFields, ModelFields, TrainFields):
            if isinstance(self, block):
                block._check(self)

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise ConfigError(f"a {cls._kind} must be a mapping of settings, got "
                              f"{type(d).__name__}")
        names = cls.field_names()
        d = cls.upgrade_keys(d)
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown {cls._kind} keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)


    @classmethod
    def upgrade_keys(cls, d: dict) -> dict:
        """``d`` with the keys of ``_renamed`` (a former spelling -> the current one) renamed,
        with a :class:`DeprecationWarning` naming the new key; both spellings is an error."""
        old = [k for k in d if k in cls._renamed]
        if not old:
            return d
        import warnings

        out = dict(d)
        for k in old:
            new = cls._renamed[k]
            if new in d:
                raise ConfigError(f"{cls._kind}: {k!r} is the former name of {new!r}; give "
                                  "only one of them")
            warnings.warn(f"{cls._kind} key {k!r} is now {new!r}; the old key is read for one "
                          "release", DeprecationWarning, stacklevel=3)
            out[new] = out.pop(k)
        return out


@dataclass
class DataFields:
    """The dataset: a registry name (``acthash data list``) and its loader options
    (``root`` = the data directory, ``n_test``, ``normalize``, ...)."""

    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)

    def _check(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a dataset name, got {self.dataset!r}")
        if not isinstance(self.dataset_options, dict):
            raise ConfigError("dataset_options must be a mapping KEY -> VALUE")


@dataclass
class ModelFields:
    """The model: a registry name or ``package.module:function``; ``width``/``depth``/
    ``batchnorm``/``activation`` are passed to builders that take them, ``model_options``
    (e.g. ``width_mult``) as they are. An option the builder does not take is an error when
    it was set, whatever its value (``RunConfig(model="resnet20", width=100)``; see
    :meth:`ConfigDict.is_set` and :func:`acthash.models.build_model`)."""

    model: str = "mlp"
    width: int = 100
    depth: int = 1
    batchnorm: bool = False
    activation: str = "relu"
    model_options: dict = field(default_factory=dict)

    def _check(self) -> None:
        if self.width < 1 or self.depth < 0:
            raise ConfigError(f"width must be >= 1 and depth >= 0, got {self.width}, {self.depth}")
        if not isinstance(self.model_options, dict):
            raise ConfigError("model_options must be a mapping KEY -> VALUE")

    def model_kwargs(self) -> dict:
        """The builder's keyword options (generic fields the builder does not take are left
        out when not set, and rejected when set)."""
        from acthash.models.registry import builder_options

        accepted = builder_options(self.model)
        out = {}
        for key in ("width", "depth", "batchnorm", "activation"):
            value = getattr(self, key)
            if accepted is None or key in accepted:
                out[key] = value
            elif self.is_set(key):
                raise ConfigError(
                    f"model {self.model!r} has no option {key!r} (its options: "
                    f"{', '.join(sorted(accepted)) or 'none'}); remove --{key.replace('_', '-')}"
                    " or choose a model that takes it")
        out.update(self.model_options)
        return out

    def model_name_parts(self) -> list[str]:
        """The model's part of a run-directory name, from the options it really takes:
        ``["mlp", "w100", "d1"]``, ``["resnet20", "wm0.25"]``; a builder taking ``**kw`` is
        named by the generic options set for it."""
        from acthash.models.registry import builder_options

        accepted = builder_options(self.model)
        kw = self.model_kwargs()
        parts = [self.model]
        for key, tag in (("width", "w"), ("depth", "d")):
            if key in kw and (accepted is not None or self.is_set(key)):
                parts.append(f"{tag}{kw[key]}")
        if "width_mult" in kw:
            parts.append(f"wm{kw['width_mult']:g}")
        return parts


@dataclass
class TrainFields:
    """The training loop (defaults follow the original study: Adam, lr 1e-2, batch 64;
    ``schedule="step"`` multiplies the rate by ``lr_gamma`` every ``step_size`` epochs,
    ``"multistep"`` after each epoch in ``milestones`` (1-based: [40] lowers epoch 41 on)).
    ``checkpoints``: epochs at which to measure (0 = initialization; empty = the last)."""

    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 64
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    step_size: int = 20
    lr_gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)
    early_stopping: int | None = None
    checkpoints: list[int] = field(default_factory=list)
    seed: int = 0
    device: str = "auto"

    def _check(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use one of "
                              f"{', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; use one of "
                              f"{', '.join(SCHEDULES)}")
        if self.schedule == "step" and self.step_size < 1:
            raise ConfigError(f"step_size must be >= 1, got {self.step_size}")
        if self.schedule == "multistep" and not self.milestones:
            raise ConfigError("schedule 'multistep' needs milestones, e.g. [40, 60, 90]")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"lr_gamma (the lr decay factor) must be in (0, 1], got "
                              f"{self.lr_gamma}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ConfigError(f"early_stopping patience must be >= 1, got {self.early_stopping}")
        bad = [c for c in self.checkpoints if not 0 <= int(c) <= self.epochs]
        if bad:
            raise ConfigError(f"checkpoints {bad} lie outside 0..{self.epochs} epochs")

    def checkpoint_epochs(self) -> list[int]:
        """The sorted, distinct checkpoint epochs (the last epoch when none are given)."""
        return sorted({int(c) for c in self.checkpoints}) if self.checkpoints else [self.epochs]

    def train_config(self, **extra):
        """The :class:`TrainConfig` of these fields (``extra``: its own)."""
        names = {f.name for f in fields(TrainFields)}
        d = {k: getattr(self, k) for k in names}
        d["checkpoints"] = self.checkpoint_epochs()
        d["milestones"] = list(self.milestones)
        return TrainConfig(**d, **extra)


@dataclass
class TrainConfig(TrainFields, ConfigDict):
    """Settings of :func:`acthash.train.train`: the shared :class:`TrainFields` (defaults
    follow the original study: Adam, lr 1e-2, batch 64; ``schedule="step"`` is its x0.1
    every 20 epochs; ``lr_gamma`` is the decay factor of the step and multistep schedules)
    plus ``restore_best`` (after early stopping, load the best validation state) and
    ``loss`` (:data:`LOSSES`: "ce" cross-entropy, "mse" the mean over examples and classes
    of the squared error to one-hot targets). ``checkpoints`` empty: no checkpoint
    callbacks."""

    _kind = "training config"

    restore_best: bool = False
    loss: str = "ce"

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
