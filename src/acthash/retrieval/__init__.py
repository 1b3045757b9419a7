"""Neural codes as a retrieval hash, against classical hashing at equal bit budgets.

- :mod:`acthash.retrieval.encoders`: hash encoders with ``fit(database)``, ``encode(x)`` and
  ``save(path)``: the neural code of a trained model (all units, some layers, or a budget of
  units chosen without labels), sign random projections (LSH), PCA + sign, ITQ and spectral
  hashing;
- :mod:`acthash.retrieval.metrics`: mAP over the whole Hamming ranking (ties by database
  index, and the tie-aware expected mAP), precision@k, precision within Hamming radius 2,
  precision-recall curves;
- :mod:`acthash.retrieval.search`: exact Hamming search and faiss binary indexes (flat, HNSW,
  IVF) with recall@k and queries per second.

The study over bit budgets, encoders and datasets is :mod:`acthash.studies.retrieval`
(``acthash study retrieval``).
"""

from acthash.retrieval.encoders import (
    ENCODERS,
    ITQ,
    HashEncoder,
    NeuralCodeEncoder,
    PCABasis,
    PCAHash,
    SignRandomProjection,
    SpectralHash,
    bit_entropy,
    load_encoder,
    make_encoder,
    model_fingerprint,
    penultimate_features,
)
from acthash.retrieval.metrics import (
    DEFAULT_KS,
    MAP_NORMALIZATIONS,
    TIE_RULES,
    RankingStats,
    expected_average_precision,
    map_at_k,
    mean_average_precision,
    precision_at_k,
    ranking_at_k,
    ranking_stats,
    retrieval_summary,
)
from acthash.retrieval.search import INDEX_KINDS, BinaryIndex, recall_at_k, search_benchmark

__all__ = [
    "DEFAULT_KS",
    "ENCODERS",
    "INDEX_KINDS",
    "ITQ",
    "MAP_NORMALIZATIONS",
    "TIE_RULES",
    "BinaryIndex",
    "HashEncoder",
    "NeuralCodeEncoder",
    "PCABasis",
    "PCAHash",
    "RankingStats",
    "SignRandomProjection",
    "SpectralHash",
    "bit_entropy",
    "expected_average_precision",
    "load_encoder",
    "make_encoder",
    "map_at_k",
    "mean_average_precision",
    "model_fingerprint",
    "penultimate_features",
    "precision_at_k",
    "ranking_at_k",
    "ranking_stats",
    "recall_at_k",
    "retrieval_summary",
    "search_benchmark",
]
