"""acthash: a trained neural network as a hash encoder.

>>> import acthash
>>> ds = acthash.data.load("digits")
>>> model = acthash.models.MLP(64, widths=100, n_classes=10)
>>> codes = acthash.neural_codes(model, ds.x_train, labels=ds.y_train)
>>> acthash.redundancy_ratio(codes)

Subpackages: :mod:`acthash.data` (datasets), :mod:`acthash.models` (model zoo),
:mod:`acthash.train` (training loop with checkpoints), :mod:`acthash.errors` (every user-facing
error), and the companion measurements :mod:`acthash.regions` (exact linear regions),
:mod:`acthash.ntk` (empirical NTK), :mod:`acthash.binary` (latent binary encoding) and
:mod:`acthash.retrieval` (hash encoders and retrieval metrics), :mod:`acthash.hamming`
(Hamming k-NN, the one-pass tie-rule counts and the Gram matrix of packed codes) and
:mod:`acthash.gram` (Gram blocks by class, shared by the leave-one-out k-NN and the
per-pair logistic regression). The property functions and the capture API are importable
from the top level.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("acthash")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from acthash import (  # noqa: E402
    binary,
    data,
    errors,
    gram,
    hamming,
    models,
    ntk,
    regions,
    retrieval,
    train,
)
from acthash.aggregate import AggregateCodes, aggregate_codes, aggregate_properties  # noqa: E402
from acthash.capture import Capture, capture, list_layers, neural_codes  # noqa: E402
from acthash.codes import LayerSpan, NeuralCodes  # noqa: E402
from acthash.errors import (  # noqa: E402
    ActhashError,
    CorruptFileError,
    DatasetNotFoundError,
    InputError,
    NoReluUnitError,
)
from acthash.kmeans import kmeans_packed  # noqa: E402
from acthash.logreg import fit_logreg_packed  # noqa: E402
from acthash.properties import (  # noqa: E402
    dead_unit_fractions,
    encoding_properties,
    kmeans_accuracy,
    knn_accuracy,
    knn_loo_accuracy,
    logreg_accuracy,
    network_scores,
    properties_table,
    redundancy_ratio,
)

__all__ = [
    "__version__",
    "ActhashError",
    "binary",
    "gram",
    "hamming",
    "ntk",
    "regions",
    "retrieval",
    "AggregateCodes",
    "Capture",
    "CorruptFileError",
    "DatasetNotFoundError",
    "InputError",
    "LayerSpan",
    "NeuralCodes",
    "NoReluUnitError",
    "aggregate_codes",
    "aggregate_properties",
    "capture",
    "data",
    "dead_unit_fractions",
    "encoding_properties",
    "errors",
    "fit_logreg_packed",
    "kmeans_accuracy",
    "kmeans_packed",
    "knn_accuracy",
    "knn_loo_accuracy",
    "list_layers",
    "logreg_accuracy",
    "models",
    "network_scores",
    "neural_codes",
    "properties_table",
    "redundancy_ratio",
    "run",
    "train",
]


def run(config=None, **kwargs):
    """Python mirror of ``acthash run``: ``acthash.run(width=100, epochs=20, ...)``.

    Accepts a :class:`acthash.experiment.RunConfig` or its fields as keywords; returns a RunResult.
    """
    from acthash.experiment import RunConfig, run_experiment

    run_kwargs = {k: kwargs.pop(k) for k in ("out_dir", "runs_root", "write", "progress")
                  if k in kwargs}
    cfg = config if config is not None else RunConfig(**kwargs)
    return run_experiment(cfg, **run_kwargs)
