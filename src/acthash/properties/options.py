"""The options of the encoding properties, resolved once from a convention.

:class:`PropertyOptions` holds every option :func:`acthash.properties.encoding_properties` and
:func:`acthash.properties.aggregate_properties` take. A field left as None takes its
convention's value (:data:`CONVENTIONS`) in ``__post_init__``, the one place where that
happens; an explicit value always wins. This module imports nothing heavy (no numpy, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from numbers import Integral

from acthash.errors import InputError

__all__ = ["PropertyOptions", "CONVENTIONS", "TIES", "SKLEARN_SOLVERS", "STRATEGIES",
           "PROPERTY_BACKENDS", "KNN_BACKENDS"]

#: k-NN tie rules: "share" (the default, independent of the order of the training rows) and
#: "sklearn" (scikit-learn's brute-force Hamming KNeighborsClassifier, neighbour for neighbour)
TIES = ("share", "sklearn")

#: scikit-learn's logistic-regression solvers ("liblinear" is the original study's)
SKLEARN_SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")

#: multi-class strategies of the logistic regression
STRATEGIES = ("ovo", "ovr", "multinomial")

#: What each convention sets when the caller leaves an option as None. "acthash" is the
#: default; "original" reproduces the original study's scripts on the same codes.
#: ``kmeans_seed``/``logreg_seed`` None: the options' ``seed``.
CONVENTIONS: dict[str, dict] = {
    "acthash": {
        "ties": "share", "drop_constant": "none", "kmeans_seed": None, "kmeans_n_seeds": 5,
        "kmeans_dtype": "float32", "fixed_k": False, "logreg_solver": "lbfgs",
        "logreg_strategy": "ovo", "logreg_max_iter": 1000, "logreg_dtype": "float32",
        "logreg_seed": None, "train_scores": True,
    },
    "original": {
        "ties": "sklearn", "drop_constant": "union", "kmeans_seed": 9, "kmeans_n_seeds": 1,
        "kmeans_dtype": "float64", "fixed_k": True, "logreg_solver": "liblinear",
        "logreg_strategy": "ovo", "logreg_max_iter": 100, "logreg_dtype": "float64",
        "logreg_seed": 9, "train_scores": False,
    },
}

_DROP = ("none", "train", "union")
#: backends of K-Means and logistic regression ("auto": scikit-learn while the unpacked codes fit
#: the memory budget, else the streamed numba solvers; "torch" on a device)
PROPERTY_BACKENDS = ("auto", "sklearn", "numba", "torch")
#: backends of the k-NN search (:func:`acthash.ops.hamming.hamming_knn`)
KNN_BACKENDS = ("auto", "numba", "faiss", "numpy", "torch")


def _choices(names) -> str:
    return ", ".join(repr(n) for n in names)


def _check_ties(ties) -> None:
    if ties not in TIES:
        raise InputError(f"unknown ties {ties!r}; use 'share' (order-independent, the default) "
                         "or 'sklearn' (scikit-learn's choice among tied neighbours)")


def _check_solver(solver) -> None:
    if solver not in SKLEARN_SOLVERS:
        raise InputError(f"unknown solver {solver!r}; use one of {', '.join(SKLEARN_SOLVERS)} "
                         "('liblinear' is the original study's)")


def _check_strategy(strategy) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use 'ovo', 'ovr' or 'multinomial'")


def _check_backend(backend) -> None:
    if backend not in PROPERTY_BACKENDS:
        raise InputError(f"unknown backend {backend!r}; use one of {_choices(PROPERTY_BACKENDS)}")


def _check_small(small) -> None:
    if small not in ("nan", "raise"):
        raise InputError(f"unknown small={small!r}; use 'nan' (NaN with a warning) or 'raise'")


def _check_convention(convention) -> None:
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use 'acthash' (the default) or "
                         "'original' (the original study's scripts)")


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _drop_choice(drop_constant) -> str | None:
    """None (the convention's) or one of "none", "train", "union"."""
    if drop_constant is None or drop_constant is False:
        return None
    if drop_constant is True:
        return "train"
    if isinstance(drop_constant, str) and drop_constant in _DROP:
        return drop_constant
    raise InputError(f"unknown drop_constant={drop_constant!r}; use None or False (the "
                     "convention's), 'none' (keep every unit), True/'train' or 'union'")


@dataclass(frozen=True)
class PropertyOptions:
    """Every option of the encoding properties (resolved: no field is left to a convention).

    convention : "acthash" (default) or "original" (the original study's scripts); it fills
        every field below marked *conv.* that is left as None (:data:`CONVENTIONS`).
    k : neighbours of the k-NN (9). seed : base seed of K-Means and logistic regression.
    ties (*conv.*) : k-NN tie rule, "share" or "sklearn" (see
        :func:`acthash.properties.knn_predict`).
    drop_constant (*conv.*) : constant units dropped before measuring. None or False: the
        convention's ("none" for acthash, "union" for original); "none": keep every unit;
        True or "train": units constant on the training codes, dropped from both splits
        (changes the test redundancy when a unit varies only on test); "union": constant over
        train ∪ test (as the original; changes no distance). Resolved to "none", "train" or
        "union".
    kmeans_n_init : K-Means restarts per seed (10). kmeans_n_seeds (*conv.*) : K-Means seeds
        ``kmeans_seed, kmeans_seed + 1, ...`` (5 / 1); kmeans_seed (*conv.*: ``seed`` / 9);
        kmeans_dtype (*conv.*) : dtype of the bits K-Means fits ("float32" / "float64").
    n_classes : fixed K for K-Means; None: the split's own number of classes, or, with
        fixed_k (*conv.*: False / True), the number of classes of both splits.
    logreg_C : inverse L2 strength (1.0); logreg_solver (*conv.*: "lbfgs" / "liblinear");
        logreg_strategy (*conv.*: "ovo"); logreg_max_iter (*conv.*: 1000 / 100);
        logreg_dtype (*conv.*: "float32" / "float64"); logreg_seed (*conv.*: ``seed`` / 9).
    train_scores (*conv.*) : report the train k-NN (leave-one-out) and logistic-regression
        scores (True / False: the original reports test only).
    dataset : data-set name; picks the original K-Means mapping (``kmeans_original_*``).
    small : a split too small for a property gives "nan" (NaN and one SmallDataWarning) or
        "raise" (an InputError).
    backend : K-Means and logistic regression on scikit-learn or the streamed packed paths
        ("auto", "sklearn", "numba", "torch"); knn_backend : "auto", "numba", "faiss",
        "numpy" ("torch" when backend is "torch"); memory_budget : bytes (or "2GB") of
        unpacked rows at a time (None: the global budget); device : a torch device for the
        streamed paths and the k-NN distances (None: CPU kernels).

    Build with ``PropertyOptions(...)`` or :meth:`for_convention`; change with
    :meth:`updated` (fields not chosen explicitly follow a new convention), not
    ``dataclasses.replace`` (which keeps every resolved value as if chosen).
    """

    convention: str = "acthash"
    k: int = 9
    seed: int = 0
    ties: str | None = None
    drop_constant: bool | str | None = None
    kmeans_n_init: int = 10
    kmeans_n_seeds: int | None = None
    kmeans_seed: int | None = None
    kmeans_dtype: str | None = None
    n_classes: int | None = None
    fixed_k: bool | None = None
    logreg_C: float = 1.0
    logreg_solver: str | None = None
    logreg_strategy: str | None = None
    logreg_max_iter: int | None = None
    logreg_dtype: str | None = None
    logreg_seed: int | None = None
    train_scores: bool | None = None
    dataset: str | None = None
    small: str = "nan"
    backend: str = "auto"
    knn_backend: str = "auto"
    memory_budget: int | str | None = None
    device: object = None
    #: names of the convention fields chosen explicitly (the rest follow the convention)
    chosen: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_convention(self.convention)
        object.__setattr__(self, "drop_constant", _drop_choice(self.drop_constant))
        conv = CONVENTIONS[self.convention]
        chosen = set()
        for name in conv:
            value = getattr(self, name)
            if value is not None:
                chosen.add(name)
            elif conv[name] is not None:
                value = conv[name]
            elif name in ("kmeans_seed", "logreg_seed"):
                value = self.seed
            object.__setattr__(self, name, value)
        object.__setattr__(self, "chosen", frozenset(chosen))
        if isinstance(self.kmeans_n_seeds, float) and self.kmeans_n_seeds.is_integer():
            object.__setattr__(self, "kmeans_n_seeds", int(self.kmeans_n_seeds))
        self._validate()

    def _validate(self) -> None:
        _check_positive("k", self.k)
        _check_ties(self.ties)
        _check_solver(self.logreg_solver)
        _check_strategy(self.logreg_strategy)
        _check_backend(self.backend)
        _check_small(self.small)
        if self.knn_backend not in KNN_BACKENDS:
            raise InputError(f"unknown knn_backend {self.knn_backend!r}; use one of "
                             f"{_choices(KNN_BACKENDS)}")
        if isinstance(self.kmeans_n_seeds, bool) or not isinstance(self.kmeans_n_seeds, Integral) \
                or self.kmeans_n_seeds < 1:
            raise InputError(f"n_seeds must be at least 1, got {self.kmeans_n_seeds}")
        _check_positive("kmeans_n_init", self.kmeans_n_init)
        _check_positive("logreg_max_iter", self.logreg_max_iter)
        if self.n_classes is not None:
            _check_positive("n_classes", self.n_classes)

    @classmethod
    def for_convention(cls, convention: str = "acthash", **choices) -> PropertyOptions:
        """The options of ``convention`` with ``choices`` (field names) set explicitly."""
        return cls(convention=convention, **choices)

    def choices(self) -> dict:
        """The fields as given: every plain field and the convention fields chosen."""
        conv = set(CONVENTIONS[self.convention])
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.init and (f.name not in conv or f.name in self.chosen)}

    def updated(self, **changes) -> PropertyOptions:
        """These options with ``changes`` (field names) applied; convention fields not chosen
        explicitly take the (possibly new) convention's values."""
        names = {f.name for f in fields(self) if f.init}
        bad = sorted(set(changes) - names)
        if bad:
            raise InputError(f"unknown property option(s) {bad}; options are: "
                            f"{', '.join(sorted(names))}")
        if not changes:
            return self
        return type(self)(**{**self.choices(), **changes})

    @property
    def is_original(self) -> bool:
        return self.convention == "original"


def resolve_options(options: PropertyOptions | None, overrides: dict) -> PropertyOptions:
    """``options`` (default: ``PropertyOptions()``) with keyword ``overrides`` applied."""
    if options is None:
        return PropertyOptions().updated(**overrides)
    if not isinstance(options, PropertyOptions):
        raise InputError(f"options must be a PropertyOptions, got {type(options).__name__}")
    return options.updated(**overrides)
