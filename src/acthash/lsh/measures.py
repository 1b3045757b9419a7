"""Measurements of the LSH study: representations (:mod:`acthash.lsh.features`), SRP hashes
(:mod:`acthash.lsh.srp`), the LSH (collision) curve, per-layer invariance vs sensitivity,
and one-shot learning of unseen manifolds.

Each function is usable on its own with any trained/untrained model pair and a
:class:`~acthash.data.manifolds.ManifoldGenerator`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash._utils.run import progress_bar
from acthash.core.capture import neural_codes
from acthash.data.manifolds import ManifoldGenerator
from acthash.errors import InputError
from acthash.lsh.features import penultimate_features
from acthash.lsh.srp import srp_hash
from acthash.ops.hamming import hamming_knn

__all__ = ["REPRESENTATIONS", "representation", "one_shot_accuracy", "srp_hash", "lsh_curve",
           "invariance_table", "one_shot_manifolds", "summarize_one_shot", "episode"]

#: representation name -> (model key or None for raw input, kind)
REPRESENTATIONS = {
    "raw input": (None, "vector"),
    "untrained net": ("untrained", "vector"),
    "trained net": ("trained", "vector"),
    "untrained code": ("untrained", "code"),
    "trained code": ("trained", "code"),
}


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    if last is None:
        raise InputError(f"{type(model).__name__} has no nn.Linear; the penultimate "
                         "representation is the input of the last nn.Linear")
    return last


def representation(model: nn.Module, x, batch_size: int = 4096) -> np.ndarray:
    """Penultimate representation: the input of the model's last ``nn.Linear`` (N, d)
    float64 (:func:`acthash.lsh.features.penultimate_features`)."""
    _last_linear(model)
    return penultimate_features(model, x, batch_size=batch_size, dtype=torch.float64)


def one_shot_accuracy(support, y_support, query, y_query, metric: str = "euclidean") -> float:
    """Accuracy of 1-nearest-neighbour classification of ``query`` by ``support``.

    euclidean: support (S, d), query (Q, d) arrays. hamming: packed codes (uint8 rows) or
    :class:`~acthash.core.codes.NeuralCodes`. Ties go to the first support example.
    """
    y_support, y_query = np.asarray(y_support), np.asarray(y_query)
    if metric == "hamming":
        _, idx = hamming_knn(support, query, k=1)
        pred = y_support[idx[:, 0]]
    elif metric == "euclidean":
        s = torch.as_tensor(np.asarray(support), dtype=torch.float64)
        q = torch.as_tensor(np.asarray(query), dtype=torch.float64)
        if s.ndim != 2 or q.ndim != 2 or s.shape[1] != q.shape[1]:
            raise InputError(f"support and query must be (S, d) and (Q, d); got "
                             f"{tuple(s.shape)} and {tuple(q.shape)}")
        pred = y_support[torch.cdist(q, s).argmin(dim=1).numpy()]
    else:
        raise InputError(f"unknown metric {metric!r}; use 'euclidean' or 'hamming'")
    return float((pred == y_query).mean())


def _collide(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    return (h1 == h2).all(axis=1)


def _models_codes(model: nn.Module, x: np.ndarray):
    return neural_codes(model, torch.as_tensor(x))


def lsh_curve(gen: ManifoldGenerator, models: dict[str, nn.Module], *, distances,
              n_pairs: int, srp_bits, theta_range: float, noise: float = 0.0,
              seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Collision probabilities vs gamma distance (one row per model, hash and distance)."""
    rows = []
    dists = list(distances)
    it = enumerate(dists)
    it = progress_bar(list(it), enabled=progress, desc="LSH curve", unit="distance")
    for di, r in it:
        rng = np.random.default_rng([seed, 3, di])
        g1 = gen.sample_gammas(n_pairs, rng)
        v = rng.standard_normal(g1.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        g2 = g1 + r * v
        x1 = gen(g1, gen.sample_thetas(n_pairs, rng, theta_range))
        x2 = gen(g2, gen.sample_thetas(n_pairs, rng, theta_range))
        if noise > 0:
            x1 = x1 + rng.normal(0, noise, x1.shape).astype(np.float32)
            x2 = x2 + rng.normal(0, noise, x2.shape).astype(np.float32)

        def add(model, hash_name, bits, coll, r=r):
            rows.append({"model": model, "hash": hash_name, "bits": int(bits),
                         "gamma_distance": float(r), "collision": float(coll.mean()),
                         "stderr": float(coll.std() / np.sqrt(len(coll))),
                         "n_pairs": int(len(coll))})

        for b in srp_bits:
            add("raw input", f"srp{b}", b, _collide(srp_hash(x1, b, [seed, 4, b]),
                                                    srp_hash(x2, b, [seed, 4, b])))
        for name, model in models.items():
            c1, c2 = _models_codes(model, x1), _models_codes(model, x2)
            add(name, "code:all", c1.n_bits, _collide(c1.packed, c2.packed))
            for span in c1.layers:
                s1, s2 = c1.select_layers([span.name]), c2.select_layers([span.name])
                add(name, f"code:{span.name}", span.n_bits, _collide(s1.packed, s2.packed))
            r1, r2 = representation(model, x1), representation(model, x2)
            for b in srp_bits:
                add(name, f"srp{b}", b, _collide(srp_hash(r1, b, [seed, 5, b]),
                                                 srp_hash(r2, b, [seed, 5, b])))
    return pd.DataFrame(rows)


def _pair_stats(rep: np.ndarray, y: np.ndarray, kind: str) -> dict:
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(y), dtype=bool)
    if kind == "bits":
        bits = rep.astype(np.float64)
        agree = 1.0 - (bits[:, None, :] != bits[None, :, :]).mean(axis=2)
        return {"within_similarity": float(agree[same & off].mean()),
                "across_similarity": float(agree[~same].mean()),
                "distance_ratio": float((1 - agree[~same]).mean()
                                        / max((1 - agree[same & off]).mean(), 1e-12))}
    rep = rep.astype(np.float64)
    norm = np.linalg.norm(rep, axis=1, keepdims=True)
    unit = rep / np.maximum(norm, 1e-12)
    cos = unit @ unit.T
    sq = (rep**2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * rep @ rep.T, 0.0))
    return {"within_similarity": float(cos[same & off].mean()),
            "across_similarity": float(cos[~same].mean()),
            "distance_ratio": float(dist[~same].mean() / max(dist[same & off].mean(), 1e-12))}


def invariance_table(gen: ManifoldGenerator, models: dict[str, nn.Module], *, n_classes: int,
                     per_class: int, theta_range: float, noise: float = 0.0,
                     seed: int = 0) -> pd.DataFrame:
    """Within-gamma vs across-gamma similarity per layer, on fresh gammas.

    representation "preactivation": cosine similarity of the layer's pre-activations;
    "code": fraction of equal bits of the layer's code. ``distance_ratio`` = mean
    across-gamma distance / mean within-gamma distance (Euclidean, or Hamming for codes).
    """
    from acthash.geometry.regions import preactivations

    rng = np.random.default_rng([seed, 6])
    gammas = gen.sample_gammas(n_classes, rng)
    x, y, _ = gen.sample(gammas, per_class, rng, theta_range, noise)
    rows = [{"model": "-", "layer": "input", "depth": 0, "representation": "input",
             **_pair_stats(x, y, "vector")}]
    for name, model in models.items():
        pre = preactivations(model, torch.as_tensor(x))
        codes = neural_codes(model, torch.as_tensor(x))
        bits = codes.unpack()
        for depth, (layer, z) in enumerate(pre.items(), start=1):
            rows.append({"model": name, "layer": layer, "depth": depth,
                         "representation": "preactivation",
                         **_pair_stats(z.numpy(), y, "vector")})
            span = codes.layers[depth - 1]
            rows.append({"model": name, "layer": layer, "depth": depth, "representation": "code",
                         **_pair_stats(bits[:, span.start : span.stop], y, "bits")})
        rows.append({"model": name, "layer": "penultimate", "depth": len(pre) + 1,
                     "representation": "penultimate",
                     **_pair_stats(representation(model, x), y, "vector")})
    df = pd.DataFrame(rows)
    df["gap"] = df["within_similarity"] - df["across_similarity"]
    return df


def episode(features: dict, x_s, y_s, x_q, y_q) -> dict:
    out = {}
    for rep_name, (key, kind) in REPRESENTATIONS.items():
        if key is None:
            out[rep_name] = one_shot_accuracy(x_s.reshape(len(x_s), -1),
                                              y_s, x_q.reshape(len(x_q), -1), y_q)
            continue
        model = features[key]
        if kind == "vector":
            out[rep_name] = one_shot_accuracy(representation(model, x_s), y_s,
                                              representation(model, x_q), y_q)
        else:
            out[rep_name] = one_shot_accuracy(neural_codes(model, torch.as_tensor(x_s)).packed,
                                              y_s,
                                              neural_codes(model, torch.as_tensor(x_q)).packed,
                                              y_q, metric="hamming")
    return out


def one_shot_manifolds(gen: ManifoldGenerator, models: dict[str, nn.Module], *, n_unseen,
                       queries_per_class: int, repeats: int, theta_range: float,
                       noise: float = 0.0, seed: int = 0, progress: bool = False
                       ) -> pd.DataFrame:
    """One-shot accuracy on fresh gammas: one row per (n_unseen, repeat, representation)."""
    rows = []
    jobs = [(n, rep) for n in n_unseen for rep in range(repeats)]
    jobs = progress_bar(jobs, enabled=progress, desc="one-shot", unit="episode")
    for n, rep in jobs:
        rng = np.random.default_rng([seed, 2, n, rep])
        gammas = gen.sample_gammas(n, rng)
        x_s, y_s, _ = gen.sample(gammas, 1, rng, theta_range, noise)
        x_q, y_q, _ = gen.sample(gammas, queries_per_class, rng, theta_range, noise)
        for rep_name, acc in episode(models, x_s, y_s, x_q, y_q).items():
            rows.append({"n_unseen": n, "repeat": rep, "representation": rep_name,
                         "accuracy": acc, "chance": 1.0 / n})
    return pd.DataFrame(rows)


def summarize_one_shot(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (over repeats) of one-shot accuracy per n_unseen and representation."""
    g = df.groupby(["n_unseen", "representation"], sort=False)["accuracy"]
    out = g.agg(mean="mean", std="std", repeats="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["chance"] = 1.0 / out["n_unseen"]
    return out


