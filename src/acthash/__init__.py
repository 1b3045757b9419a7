"""acthash: a trained neural network as a hash encoder.

>>> import acthash
>>> codes = acthash.neural_codes(model, x_train, labels=y_train)
>>> acthash.encoding_properties(codes, None, acthash.neural_codes(model, x_test), y_test)
"""

__version__ = "0.1.0"

from acthash.capture import Capture, NoReluUnitError, capture, list_layers, neural_codes
from acthash.codes import CorruptFileError, LayerSpan, NeuralCodes
from acthash.properties import (
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
    "Capture",
    "CorruptFileError",
    "LayerSpan",
    "NeuralCodes",
    "NoReluUnitError",
    "capture",
    "encoding_properties",
    "kmeans_accuracy",
    "knn_accuracy",
    "knn_loo_accuracy",
    "list_layers",
    "logreg_accuracy",
    "network_scores",
    "neural_codes",
    "properties_table",
    "redundancy_ratio",
    "run",
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
