"""The settings of the companion studies, one dataclass per study, and the constants they
validate against; torch-free, numpy only inside methods (the study modules re-export them
next to their drivers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acthash._utils.config import (
    OPTIMIZERS,
    SCHEDULES,
    ConfigDict,
    DataFields,
    ModelFields,
    TrainFields,
)
from acthash.errors import ConfigError
from acthash.studies.geometry_configs import PLANE_INITS, LocalComplexityConfig, PlanesConfig

if TYPE_CHECKING:
    from acthash.data.manifolds import ManifoldGenerator

__all__ = ["RegionsConfig", "LSHConfig", "SpectrumConfig", "COMPARISONS", "BinaryStudyConfig",
           "VARIANTS", "RetrievalStudyConfig", "ENCODER_NAMES", "PlanesConfig",
           "PLANE_INITS", "LocalComplexityConfig", "OODStudyConfig", "OOD_SHIFTS",
           "OOD_DETECTORS"]


def _as_list(value, kind) -> list:
    """A field that takes several values: a list as given, one value or "a,b" as a list."""
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return [kind(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"expected {kind.__name__} values, got {value!r}") from None


# ---------------------------------------------------------------------------- regions


@dataclass
class RegionsConfig(DataFields, ModelFields, TrainFields, ConfigDict):
    """Settings of the region study: the shared dataset, model and training blocks, plus
    ``n_points`` examples per split whose region is measured along ``direction``
    ("centre": towards the class mean, as in the original; or "random") up to ``t_max`` on
    each side, and ``n_pairs`` same-/different-class test pairs whose regions are counted.
    ``checkpoints`` empty: measure at initialization and after the last epoch."""

    _kind = "regions study config"

    sample_size: int | None = None  # train (and pick training points) on the first N
    n_points: int = 200
    direction: str = "centre"  # "centre" or "random"
    t_max: float = 5.0
    n_pairs: int = 100

    def epochs_to_measure(self) -> list[int]:
        return sorted(set(self.checkpoints or (0, self.epochs)))

    def validate(self) -> None:
        super().validate()
        if self.direction not in ("centre", "center", "random"):
            raise ConfigError(f"direction must be 'centre' or 'random', got {self.direction!r}")
        if self.sample_size is not None and self.sample_size < 1:
            raise ConfigError(f"sample_size must be >= 1, got {self.sample_size}")
        if self.n_points < 1 or self.n_pairs < 0 or self.t_max <= 0:
            raise ConfigError("n_points must be >= 1, n_pairs >= 0 and t_max > 0")


# ---------------------------------------------------------------------------- lsh


@dataclass
class LSHConfig(TrainFields, ConfigDict):
    """Settings of the LSH study (defaults: a CPU-scale run of a few minutes).

    Training fields come from :class:`~acthash._utils.config.TrainFields` (the classifier is an MLP
    of ``depth`` hidden layers of ``width`` units; Adam, lr 1e-3 here). ``dataset`` (with
    ``dataset_options``) and the ``real_*`` fields set the held-out-class one-shot on a real
    dataset (``dataset=None`` skips it).
    """

    _kind = "LSH study config"
    _renamed = {"real_dataset": "dataset", "real_dataset_options": "dataset_options"}

    # manifolds (training classes)
    n_classes: int = 100
    per_class: int = 100
    input_dim: int = 64
    gamma_dim: int = 8
    theta_dim: int = 4
    theta_range: float = 2.0
    generator: str = "relu"
    generator_hidden: int = 128
    generator_depth: int = 2
    noise: float = 0.0
    # classifier (training fields: TrainFields)
    width: int = 256
    depth: int = 2
    lr: float = 1e-3
    # LSH curve
    distances: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
    n_pairs: int = 400
    srp_bits: tuple[int, ...] = (4, 8, 16, 32)
    # invariance vs sensitivity
    inv_classes: int = 20
    inv_per_class: int = 10
    # one-shot
    n_unseen: tuple[int, ...] = (2, 5, 10, 20, 50)
    queries_per_class: int = 20
    repeats: int = 10
    # real data (None: skip)
    dataset: str | None = "digits"
    dataset_options: dict = field(default_factory=dict)
    real_train_classes: int | None = None  # the first this many classes; None = half
    real_max_train: int | None = None
    real_epochs: int = 20

    def validate(self) -> None:
        super().validate()
        if self.n_classes < 2:
            raise ConfigError("the LSH study needs n_classes >= 2 training manifolds")
        if min(self.n_unseen, default=2) < 2:
            raise ConfigError(f"n_unseen values must be >= 2 (one-shot among >= 2 classes), "
                              f"got {list(self.n_unseen)}")
        if min(self.distances, default=0) < 0:
            raise ConfigError("gamma distances must be >= 0")
        if min(self.srp_bits, default=1) < 1:
            raise ConfigError("srp_bits must be >= 1")
        if self.repeats < 1 or self.queries_per_class < 1 or self.n_pairs < 1:
            raise ConfigError("repeats, queries_per_class and n_pairs must be >= 1")
        if self.width < 1 or self.depth < 1:
            raise ConfigError("the classifier needs width >= 1 and depth >= 1")

    def generator_obj(self) -> ManifoldGenerator:
        from acthash.data.manifolds import ManifoldGenerator

        return ManifoldGenerator(self.input_dim, self.gamma_dim, self.theta_dim,
                                 self.generator_hidden, self.generator_depth, self.generator,
                                 self.seed)


# ---------------------------------------------------------------------------- spectrum

COMPARISONS = {"depth": (2, 6), "schedule": ("constant", "step"), "optimizer": ("gd", "adam")}


@dataclass
class SpectrumConfig(ConfigDict):
    """One spectrum run (``compare`` expands it into variants). Training is full batch: one
    optimizer step per epoch."""

    _kind = "spectrum config"
    _renamed = {"task": "dataset", "steps": "epochs", "gamma": "lr_gamma"}

    dataset: str = "image"  # "image" or a classification dataset name
    image: str = "grace_hopper.jpg"
    grid: int = 32  # image task: grid x grid points
    n_train: int = 500  # classification: class-balanced subset size
    depth: int = 6  # hidden layers
    width: int = 64
    activation: str = "leaky_relu"
    optimizer: str = "gd"  # "gd" (full batch) or "adam"
    lr: float = 0.2  # learning rate for gd
    adam_lr: float = 1e-3  # learning rate for adam
    schedule: str = "constant"  # "constant" or "step"
    decay_at: list[float] = field(default_factory=lambda: [0.5, 0.75])  # fractions of epochs
    lr_gamma: float = 0.1
    epochs: int = 3000  # full-batch steps
    n_records: int = 16  # recorded epochs, log-spaced from 0 to ``epochs``
    ks: list[int] = field(default_factory=lambda: [1, 4, 16, 64, 256])
    n_eigs: int = 200
    n_vectors: int = 6
    slice_points: list[list[float]] = field(
        default_factory=lambda: [[0.3, 0.5], [0.5, 0.5], [0.7, 0.3]])  # (row, col) fractions
    loss: str = "auto"  # "auto": mse for image, ce for classification
    kernel: str = "trace"  # several outputs: "trace" or "per-logit" (averaged measures)
    method: str = "auto"
    seed: int = 0
    compare: list[str] = field(default_factory=list)  # subset of COMPARISONS
    dataset_options: dict = field(default_factory=dict)  # classification task's loader options
    device: str = "auto"  # "auto", "cpu", "cuda", ...

    @property
    def is_image(self) -> bool:
        return self.dataset == "image"

    def resolved_loss(self) -> str:
        return ("mse" if self.is_image else "ce") if self.loss == "auto" else self.loss

    def record_steps(self) -> list[int]:
        if self.n_records < 2:
            raise ConfigError(f"n_records must be >= 2 (start and end), got {self.n_records}")
        import numpy as np

        s = np.round(np.geomspace(1, self.epochs + 1, self.n_records)) - 1
        return sorted({0, self.epochs, *[int(v) for v in s]})

    def decay_steps(self) -> list[int]:
        return [int(round(f * self.epochs)) for f in self.decay_at]

    def label(self) -> str:
        return f"d{self.depth}-{self.optimizer}-{self.schedule}"

    def validate(self) -> None:
        super().validate()
        bad = [c for c in self.compare if c not in COMPARISONS]
        if bad:
            raise ConfigError(f"unknown comparison {bad}; choose from {', '.join(COMPARISONS)}")
        if self.optimizer not in ("gd", "adam"):
            raise ConfigError(f"optimizer must be 'gd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("constant", "step"):
            raise ConfigError(f"schedule must be 'constant' or 'step', got {self.schedule!r}")
        if self.depth < 1 or self.width < 1 or self.epochs < 1:
            raise ConfigError("depth, width and epochs must be positive")
        if self.kernel not in ("trace", "per-logit"):
            raise ConfigError(f"kernel must be 'trace' or 'per-logit', got {self.kernel!r}")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be positive integers, got {self.ks}")


# ---------------------------------------------------------------------------- binary

#: variant -> (penultimate kind, compression loss on?)
VARIANTS: dict[str, tuple[str, bool]] = {
    "compressed": ("linear", True),
    "linear": ("linear", False),
    "nonlinear": ("nonlinear", False),
    "none": ("none", False),
}

_SCHEDULES = tuple(s for s in SCHEDULES if s != "multistep")  # no milestones here
_SHIFTS = ("permuted", "uniform")


@dataclass
class BinaryStudyConfig(ConfigDict):
    """Everything that fixes the study (with the seeds, bit for bit on CPU). ``model`` is
    the backbone (its output layer removed), ``model_options`` its options."""

    _kind = "study config"
    _renamed = {"backbone": "model", "backbone_options": "model_options",
                "lr_schedule": "schedule", "lr_step_size": "step_size", "seeds": "seed"}

    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)
    sample_size: int | None = None  # train on a class-balanced random subset of N examples
    test_size: int | None = None  # evaluate on a class-balanced random subset of the test set
    model: str = "mlp"
    model_options: dict = field(default_factory=lambda: {"width": 100, "depth": 2})
    latent_dim: int = 4
    latent_activation: str = "relu"
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"  # "adam", "adamw" (the authors') or "sgd"
    weight_decay: float = 0.0  # the authors: 5e-4 with AdamW
    schedule: str = "none"  # "none", "step" (StepLR) or "cosine"
    step_size: int = 50  # StepLR: epochs between decays
    lr_gamma: float = 0.5  # StepLR: factor per decay
    gamma0: float = 0.01
    gamma_ratio: float = 1.06  # growth of γ per epoch (the authors: 1.05 CIFAR, 1.025 SVHN)
    gamma_cap: float | None = None
    checkpoints: list[int] = field(default_factory=list)  # empty: 0 and 10 even steps
    seed: list[int] = field(default_factory=lambda: [0])  # one model per variant and seed
    data_seed: int = 0  # fixes the train/test/attack subsets, the same for every seed
    robustness_size: int | None = 500  # test examples attacked (None: all)
    deepfool_max_iter: int = 50
    deepfool_overshoot: float = 0.02
    attack_eps: float = 0.1  # L∞ radius for FGSM/PGD, in input units
    pgd_steps: int = 10
    ood_sets: list[str] = field(default_factory=lambda: list(_SHIFTS))
    # mixtures are fit on at most this many latent dimensions, those of largest training
    # variance (the d = 4 bottlenecks use all; the 100-feature "none" model its top 16)
    bimodality_max_dims: int | None = 16
    hash_metrics: bool = True
    figures: bool = True  # write the PNG/SVG figures into the study directory
    k: int = 9
    kmeans_n_init: int = 4
    logreg_strategy: str = "ovo"  # for the hash view: "ovo" (the original), "ovr", "multinomial"
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        self.seed = _as_list(self.seed, int)
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        if not self.seed:
            raise ConfigError("give at least one seed")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.epochs]
        if bad:
            raise ConfigError(f"checkpoints {bad} lie outside 0..{self.epochs} epochs")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use one of "
                              f"{', '.join(OPTIMIZERS)}")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; use one of "
                              f"{', '.join(_SCHEDULES)}")
        if self.step_size < 1 or not self.lr_gamma > 0:
            raise ConfigError(f"need step_size >= 1 and lr_gamma > 0, got "
                              f"{self.step_size} and {self.lr_gamma}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.gamma_ratio > 0:
            raise ConfigError(f"gamma_ratio must be > 0, got {self.gamma_ratio}")
        if self.bimodality_max_dims is not None and self.bimodality_max_dims < 1:
            raise ConfigError(f"bimodality_max_dims must be >= 1 (or None for all), got "
                              f"{self.bimodality_max_dims}")
        dup = sorted({s for s in self.ood_sets if self.ood_sets.count(s) > 1})
        if dup:
            raise ConfigError(f"ood_sets lists {dup} twice")

    def checkpoint_epochs(self) -> list[int]:
        import numpy as np

        if self.checkpoints:
            eps = set(int(c) for c in self.checkpoints)
        else:
            eps = set(np.linspace(0, self.epochs, 11).round().astype(int).tolist())
        return sorted(eps | {self.epochs})


# ---------------------------------------------------------------------------- retrieval

#: the encoders of the study, in the order of tables and legends
ENCODER_NAMES = ("neural", "neural-last", "lsh-raw", "pca-raw", "itq-raw", "sh-raw",
                 "lsh-feat", "pca-feat", "itq-feat", "sh-feat")


@dataclass
class RetrievalStudyConfig(ConfigDict):
    """Everything that fixes the retrieval study (with the seeds, bit for bit on CPU).
    ``dataset``, ``width`` and ``seed`` are lists: the study runs every dataset and seed, and
    the MLP has one hidden layer per width."""

    _kind = "study config"
    _renamed = {"datasets": "dataset", "widths": "width", "seeds": "seed"}

    dataset: list[str] = field(default_factory=lambda: ["digits", "fashion-mnist"])
    dataset_options: dict = field(default_factory=dict)  # dataset name -> load() options
    bits: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    full: bool = True  # also the budget of every unit of the network
    encoders: list[str] = field(default_factory=lambda: list(ENCODER_NAMES))
    n_queries: int | None = 1000  # seeded sample of the test set; None: the whole test set
    n_database: int | None = None  # seeded sample of the training set; None: all of it
    train_size: int | None = 10000  # class-balanced training sample of the database (None: all)
    width: list[int] = field(default_factory=lambda: [256, 128])
    epochs: int = 10
    min_steps: int = 1000  # train at least this many optimizer steps (more epochs on small sets)
    lr: float = 1e-3
    batch_size: int = 128
    seed: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_seed: int = 0  # fixes the query, database and training samples for every seed
    select: str = "entropy"  # unit selection of the neural encoders
    itq_iter: int = 50
    itq_fit_size: int | None = 5000  # ITQ's rotation is fitted on this many database rows
    ks: list[int] = field(default_factory=lambda: [1, 10, 100, 1000])
    # the deep-hashing protocol's cut-off measures: mAP@k and P@k for each k of ``map_at``
    # (e.g. [1000] for ImageNet-100, [5000] for NUS-WIDE/COCO; empty: none), with the tie
    # rule ``map_ties`` ("stable", "expected", "deep-hashing") and AP@k normalised by the
    # relevant items retrieved in the top k ("retrieved") or by min(k, R) ("min")
    map_at: list[int] = field(default_factory=list)
    map_ties: str = "expected"
    map_normalize: str = "retrieved"
    radius: int = 2
    search: bool = True
    search_dataset: str | None = None  # None: the dataset with the largest database
    search_encoder: str = "neural"
    search_bits: int | None = 256  # None: the full code
    search_k: int = 10
    hnsw_m: int = 16
    ef_search: int = 64
    nprobe: int = 8
    runs: dict = field(default_factory=dict)  # dataset -> `acthash run` directory (model.pt)
    save_encoders: bool = False
    figures: bool = True
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        self.dataset = _as_list(self.dataset, str)
        self.width, self.seed = _as_list(self.width, int), _as_list(self.seed, int)
        unknown = [e for e in self.encoders if e not in ENCODER_NAMES]
        if unknown or not self.encoders:
            raise ConfigError(f"unknown encoders {unknown}; choose from {', '.join(ENCODER_NAMES)}")
        bad = [b for b in self.bits if not isinstance(b, int) or b < 1]
        if bad or (not self.bits and not self.full):
            raise ConfigError(f"bit budgets must be positive integers (got {bad or 'none'}); "
                              "give e.g. bits=[16, 32, 64] or full=True")
        if not self.dataset:
            raise ConfigError("give at least one dataset")
        if not self.seed:
            raise ConfigError("give at least one seed")
        if self.select not in ("entropy", "decorrelated", "first"):
            raise ConfigError(f"unknown unit selection {self.select!r}; choose entropy, "
                              "decorrelated or first")
        if self.search_encoder not in ENCODER_NAMES:
            raise ConfigError(f"unknown search encoder {self.search_encoder!r}")
        self.map_at = _as_list(self.map_at, int)
        if any(k < 1 for k in self.map_at):
            raise ConfigError(f"map_at cut-offs must be positive integers, got {self.map_at}")
        if self.map_ties not in ("stable", "expected", "deep-hashing"):
            raise ConfigError(f"unknown map_ties {self.map_ties!r}; choose stable, expected "
                              "or deep-hashing")
        if self.map_normalize not in ("retrieved", "min"):
            raise ConfigError(f"unknown map_normalize {self.map_normalize!r}; choose retrieved "
                              "(relevant items in the top k) or min (min(k, R))")
        stray = sorted(set(self.runs) - set(self.dataset))
        if stray:
            raise ConfigError(f"runs are given for {stray}, which are not among the datasets "
                              f"{self.dataset}; add them to dataset or drop the runs")


# ---------------------------------------------------------------------------- planes


# ---------------------------------------------------------------------------- ood

#: built-in out-of-distribution sets of the OOD study (any registry dataset name also works:
#: its test images resized to the input shape, e.g. "digits" for a Fashion-MNIST model)
OOD_SHIFTS = ("held-out", "permuted", "inverted", "uniform", "gaussian")
#: the detectors of :data:`acthash.ood.DETECTORS`, in table order
OOD_DETECTORS = ("hamming-knn", "hamming-knn-class", "hamming-knn-layers", "coverage", "msp",
                 "energy", "feature-knn", "mahalanobis")


@dataclass
class OODStudyConfig(ConfigDict):
    """Everything that fixes the OOD study (with the seeds, bit for bit on CPU).

    One MLP per seed is trained on the classes ``in_classes`` (the rest are the near-OOD
    "held-out" set); ``val_fraction`` of the in-distribution training data is held out as the
    sanity set: every detector must score it against the in-distribution test set with an
    AUROC within ``sanity_tolerance`` of 0.5 (mean over seeds), else the study fails.
    ``label_noise`` > 0 adds the memorisation part: a model trained on every class with that
    share of symmetric label noise, its training codes scored for the flipped labels."""

    _kind = "study config"

    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)
    in_classes: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    train_size: int | None = None  # first N in-distribution training examples (None: all)
    test_size: int | None = None  # first N in-distribution test examples (None: all)
    val_fraction: float = 0.3
    ood_sets: list[str] = field(default_factory=lambda: list(OOD_SHIFTS))
    detectors: list[str] = field(default_factory=lambda: list(OOD_DETECTORS))
    k: int = 10  # neighbours of the k-NN detectors
    width: list[int] = field(default_factory=lambda: [128, 64])  # hidden widths of the MLP
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64
    seed: list[int] = field(default_factory=lambda: [0, 1, 2])  # one model per seed
    sanity_tolerance: float = 0.05
    label_noise: float = 0.2  # 0: no memorisation part
    memorization_epochs: int = 200  # long enough to fit (memorise) the flipped labels
    memorization_k: int = 10
    figures: bool = True
    device: str = "auto"

    def validate(self) -> None:
        super().validate()
        unknown = [d for d in self.detectors if d not in OOD_DETECTORS]
        if unknown or not self.detectors:
            raise ConfigError(f"unknown detectors {unknown}; choose from "
                              f"{', '.join(OOD_DETECTORS)}")
        if not self.ood_sets:
            raise ConfigError(f"give at least one OOD set, e.g. {', '.join(OOD_SHIFTS)}")
        if len(set(self.in_classes)) < 2:
            raise ConfigError("in_classes needs at least two classes")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ConfigError(f"label_noise must be in [0, 1), got {self.label_noise}")
        if not self.seed:
            raise ConfigError("give at least one seed")
        if self.k < 1 or self.memorization_k < 1 or self.epochs < 1:
            raise ConfigError("k, memorization_k and epochs must be >= 1")
        if not 0.0 < self.sanity_tolerance <= 0.5:
            raise ConfigError(f"sanity_tolerance must be in (0, 0.5], got "
                              f"{self.sanity_tolerance}")
        for name, v in (("train_size", self.train_size), ("test_size", self.test_size)):
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {v}")
