"""Locality-sensitive hashing on class manifolds: representations, sign random projections,
the LSH curve, invariance and one-shot learning."""

from acthash.lsh.measures import (  # noqa: E402
    REPRESENTATIONS,
    episode,
    invariance_table,
    lsh_curve,
    one_shot_accuracy,
    one_shot_manifolds,
    representation,
    srp_hash,
    summarize_one_shot,
)

__all__ = ["REPRESENTATIONS", "representation", "one_shot_accuracy", "srp_hash", "lsh_curve", "invariance_table", "one_shot_manifolds", "summarize_one_shot", "episode"]
