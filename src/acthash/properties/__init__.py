"""Encoding properties of neural codes (He et al., 2021).

Each function takes ``NeuralCodes`` or a plain (N, n_bits) 0/1 array, plus integer labels
(labels stored on the codes are used when none are passed). Accuracies are fractions in
[0, 1]. One module per property, every public name re-exported here:

- :mod:`~acthash.properties.redundancy`: :func:`redundancy_ratio` ((N - distinct codes) / N),
  :func:`count_distinct`.
- :mod:`~acthash.properties.clustering`: :func:`kmeans_scores` / :func:`kmeans_accuracy`
  (K-Means with K = number of classes on the bits, clusters mapped to classes one-to-one by
  the Hungarian method or by majority, "purity": :func:`cluster_accuracy`; mean and std over
  K-Means seeds), :func:`original_kmeans_mapping`.
- :mod:`~acthash.properties.knn`: Hamming k-NN (k = 9), :func:`knn_predict`,
  :func:`knn_accuracy`, :func:`knn_loo_predict`, :func:`knn_loo_accuracy`; ties at the k-th
  distance share their votes (``ties="share"``) or follow scikit-learn (``"sklearn"``).
- :mod:`~acthash.properties.linear`: :func:`logreg_accuracy` (one-vs-one L2 logistic
  regression, C = 1, lbfgs or the original's liblinear).
- :mod:`~acthash.properties.network`: :func:`network_scores` (the network's own loss and
  accuracy), :func:`dead_unit_fractions`.
- :mod:`~acthash.properties.aggregate`: Euclidean k-NN and :func:`aggregate_properties` on
  real-valued aggregate codes.
- :mod:`~acthash.properties.options`: :class:`PropertyOptions` (every option, resolved once
  from a convention: :data:`CONVENTIONS`).
- :mod:`~acthash.properties.catalog`: :data:`PROPERTIES`, each property declared once, and
  :func:`property_rows` / :func:`timing_rows`.
- :mod:`~acthash.properties.record`: :func:`encoding_properties` (all of them on train and
  test, one flat record) and :func:`properties_table`.

See docs/properties.md.
"""

from __future__ import annotations

from acthash.properties.aggregate import (
    aggregate_properties,
    euclidean_knn_accuracy,
    euclidean_knn_loo_accuracy,
    euclidean_knn_predict,
)
from acthash.properties.catalog import PROPERTIES, Property, property_rows, timing_rows
from acthash.properties.clustering import (
    MAPPINGS,
    ORIGINAL_KMEANS_MAPPING,
    cluster_accuracy,
    kmeans_accuracy,
    kmeans_scores,
    matched_chance,
    original_kmeans_mapping,
)
from acthash.properties.knn import knn_accuracy, knn_loo_accuracy, knn_loo_predict, knn_predict
from acthash.properties.linear import logreg_accuracy
from acthash.properties.network import dead_unit_fractions, network_scores
from acthash.properties.options import (
    CONVENTIONS,
    SKLEARN_SOLVERS,
    STRATEGIES,
    TIES,
    PropertyOptions,
)
from acthash.properties.record import encoding_properties, properties_table
from acthash.properties.redundancy import count_distinct, redundancy_ratio

__all__ = [
    "redundancy_ratio",
    "count_distinct",
    "kmeans_scores",
    "kmeans_accuracy",
    "cluster_accuracy",
    "matched_chance",
    "MAPPINGS",
    "ORIGINAL_KMEANS_MAPPING",
    "original_kmeans_mapping",
    "knn_predict",
    "knn_accuracy",
    "knn_loo_predict",
    "knn_loo_accuracy",
    "TIES",
    "logreg_accuracy",
    "SKLEARN_SOLVERS",
    "STRATEGIES",
    "network_scores",
    "dead_unit_fractions",
    "euclidean_knn_predict",
    "euclidean_knn_accuracy",
    "euclidean_knn_loo_accuracy",
    "aggregate_properties",
    "PropertyOptions",
    "CONVENTIONS",
    "Property",
    "PROPERTIES",
    "property_rows",
    "timing_rows",
    "encoding_properties",
    "properties_table",
]
