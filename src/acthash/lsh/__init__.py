"""Locality-sensitive hashing on class manifolds: penultimate features
(:mod:`~acthash.lsh.features`), sign random projections (:mod:`~acthash.lsh.srp`), the LSH
curve, invariance and one-shot learning (:mod:`~acthash.lsh.measures`)."""

from acthash.lsh.features import penultimate_features
from acthash.lsh.measures import (
    REPRESENTATIONS,
    episode,
    invariance_table,
    lsh_curve,
    one_shot_accuracy,
    one_shot_manifolds,
    representation,
    summarize_one_shot,
)
from acthash.lsh.srp import srp_hash, srp_matrix

__all__ = ["REPRESENTATIONS", "representation", "one_shot_accuracy", "srp_hash", "srp_matrix",
           "penultimate_features", "lsh_curve", "invariance_table", "one_shot_manifolds",
           "summarize_one_shot", "episode"]
