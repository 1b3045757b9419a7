"""acthash: a trained neural network as a hash encoder.

>>> import acthash
>>> ds = acthash.data.load("digits")
>>> model = acthash.models.MLP(64, widths=100, n_classes=10)
>>> codes = acthash.neural_codes(model, ds.x_train, labels=ds.y_train)
>>> acthash.redundancy_ratio(codes)

The folders, in the order data flows: :mod:`acthash.data` (datasets), :mod:`acthash.models`
(model zoo and registry), :mod:`acthash.train` (training loop with checkpoints),
:mod:`acthash.core` (the activation recorder, capture, :class:`NeuralCodes`, aggregate codes),
:mod:`acthash.ops` (algebra on packed codes: Hamming k-NN, Gram blocks, K-Means and logistic
solvers), :mod:`acthash.properties` (the encoding properties and their catalog),
:mod:`acthash.runs` (one run, measuring a given model, re-scoring saved codes, presets, sweeps,
the result store), :mod:`acthash.presentation`
(figures, phase chart, claims, report); the companion sciences :mod:`acthash.geometry` (exact
linear regions), :mod:`acthash.spectrum` (empirical NTK), :mod:`acthash.lsh`,
:mod:`acthash.binary` (latent binary encoding), :mod:`acthash.retrieval` (hash encoders and
retrieval metrics) and :mod:`acthash.ood` (out-of-distribution detection, memorisation); :mod:`acthash.studies` (study drivers) and :mod:`acthash.errors` (every
user-facing error). The property functions and the capture API are importable from the top
level. Everything is loaded on first use, so ``import acthash`` is cheap.
"""

from __future__ import annotations

import importlib

#: public name -> module that defines it (loaded on first access)
_ATTRIBUTES = {
    "ActhashError": "acthash.errors",
    "CorruptFileError": "acthash.errors",
    "DatasetNotFoundError": "acthash.errors",
    "InputError": "acthash.errors",
    "NoReluUnitError": "acthash.errors",
    "ActivationRecorder": "acthash.core.recorder",
    "AggregateCodes": "acthash.core.aggregate",
    "aggregate_codes": "acthash.core.aggregate",
    "Capture": "acthash.core.capture",
    "capture": "acthash.core.capture",
    "list_layers": "acthash.core.capture",
    "neural_codes": "acthash.core.capture",
    "LayerSpan": "acthash.core.codes",
    "NeuralCodes": "acthash.core.codes",
    "kmeans_packed": "acthash.ops.kmeans",
    "fit_logreg_packed": "acthash.ops.logreg",
    "aggregate_properties": "acthash.properties",
    "PropertyOptions": "acthash.properties",
    "PROPERTIES": "acthash.properties",
    "dead_unit_fractions": "acthash.properties",
    "encoding_properties": "acthash.properties",
    "kmeans_accuracy": "acthash.properties",
    "kmeans_scores": "acthash.properties",
    "knn_accuracy": "acthash.properties",
    "knn_loo_accuracy": "acthash.properties",
    "logreg_accuracy": "acthash.properties",
    "network_scores": "acthash.properties",
    "properties_table": "acthash.properties",
    "redundancy_ratio": "acthash.properties",
    "memory_budget": "acthash._utils.budget",
    "load_checkpoint": "acthash.runs.experiment",
    "read_checkpoint": "acthash.runs.experiment",
    "measure": "acthash.runs.measure",
    "MeasureConfig": "acthash.runs.config",
    "MeasureResult": "acthash.runs.measure",
    "rescore": "acthash.runs.rescore",
    "PropertiesConfig": "acthash.runs.config",
    "PropertiesResult": "acthash.runs.rescore",
    "plane_partition": "acthash.geometry.planes",
    "PlanePartition": "acthash.geometry.planes",
    "local_complexity": "acthash.geometry.local_complexity",
    "plane_local_complexity": "acthash.geometry.local_complexity",
    "ood_metrics": "acthash.ood.metrics",
    "make_detector": "acthash.ood.detectors",
}

_SUBMODULES = ("binary", "core", "data", "errors", "geometry", "lsh", "models", "ood", "ops",
               "presentation", "properties", "retrieval", "runs", "spectrum", "studies",
               "train")

__all__ = sorted([*_ATTRIBUTES, *_SUBMODULES, "__version__", "run"])


def _version() -> str:
    """The installed distribution's version (``importlib.metadata`` is loaded on first use)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("acthash")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _SUBMODULES:
        value = importlib.import_module(f"acthash.{name}")
    elif name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    else:
        raise AttributeError(f"module 'acthash' has no attribute {name!r}")
    globals()[name] = value  # cache: __getattr__ is called once per name
    return value


def __dir__():
    return __all__


def run(config=None, **kwargs):
    """Python mirror of ``acthash run``: ``acthash.run(width=100, epochs=20, ...)``.

    Accepts a :class:`acthash.runs.experiment.RunConfig` or its fields as keywords; returns a
    RunResult.
    """
    from acthash.runs.experiment import RunConfig, run_experiment

    run_kwargs = {k: kwargs.pop(k) for k in ("out_dir", "runs_root", "write", "progress",
                                             "force") if k in kwargs}
    cfg = config if config is not None else RunConfig(**kwargs)
    return run_experiment(cfg, **run_kwargs)
