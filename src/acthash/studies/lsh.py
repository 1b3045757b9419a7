"""The LSH study (Dikkala, Kaplun & Panigrahy): is a trained network a locality-sensitive
hash of the class manifold identifier gamma?

:func:`run_lsh_study` trains an MLP on ``n_classes`` synthetic manifolds ``x = G(gamma,
theta)`` (:mod:`acthash.data.manifolds`), keeps an untrained copy with the same
initialization, and measures on *fresh* gammas (never seen in training):

- **LSH curve** (``lsh_curve.parquet``): probability that two inputs get the same hash as a
  function of the distance between their gammas (distance 0 = equal gamma, independent
  thetas). Hashes: the full neural code, each layer's code, and sign-random-projection (SRP)
  hashes of the penultimate representation at several bit lengths, for the trained and the
  untrained net, plus SRP of the raw input.
- **Invariance vs sensitivity** (``invariance.parquet``): per layer (pre-activations and
  code bits), the mean similarity of pairs with equal gamma vs different gamma, and the
  ratio of mean across-gamma to within-gamma Euclidean distance (> 1: more sensitive to
  gamma than to theta).
- **One-shot learning of unseen classes** (``one_shot.parquet`` and
  ``one_shot_summary.csv``): draw ``n`` new gammas, one support example each, classify
  ``queries_per_class`` further examples each by their nearest support example in (a) the
  raw input, (b) the untrained net's penultimate representation, (c) the trained net's, (d)
  the trained net's neural code (Hamming) -- and the untrained net's code; accuracy vs
  ``n``, mean and std over ``repeats`` draws.
- The same one-shot protocol on a real dataset with held-out classes
  (``real_one_shot*.{parquet,csv}``): train on the first half of the classes, one-shot on
  the others (support from its training split, queries from its test split).

Everything goes into a self-describing run directory (``config.json``,
``environment.json``, tables, ``figures/*.png|svg``, ``summary.json``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash._io import atomic_path, save_torch, write_json, write_table
from acthash.capture import neural_codes
from acthash.data.manifolds import ManifoldGenerator
from acthash.errors import InputError, MissingFileError
from acthash.hamming import hamming_knn
from acthash.models import MLP
from acthash.train import TrainConfig, seed_everything, train

__all__ = [
    "LSHConfig",
    "LSHResult",
    "run_lsh_study",
    "representation",
    "one_shot_accuracy",
    "srp_hash",
    "lsh_curve",
    "invariance_table",
    "one_shot_manifolds",
    "one_shot_real",
    "summarize_one_shot",
]

#: representation name -> (model key or None for raw input, kind)
REPRESENTATIONS = {
    "raw input": (None, "vector"),
    "untrained net": ("untrained", "vector"),
    "trained net": ("trained", "vector"),
    "untrained code": ("untrained", "code"),
    "trained code": ("trained", "code"),
}


@dataclass
class LSHConfig:
    """Settings of the LSH study (defaults: a CPU-scale run of a few minutes)."""

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
    # classifier
    width: int = 256
    depth: int = 2
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
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
    real_dataset: str | None = "digits"
    real_dataset_options: dict = field(default_factory=dict)
    real_train_classes: int | None = None  # the first this many classes; None = half
    real_max_train: int | None = None
    real_epochs: int = 20
    seed: int = 0
    device: str = "cpu"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("distances", "srp_bits", "n_unseen"):
            d[k] = list(d[k])
        return d

    def validate(self) -> None:
        if self.n_classes < 2:
            raise InputError("the LSH study needs n_classes >= 2 training manifolds")
        if min(self.n_unseen, default=2) < 2:
            raise InputError(f"n_unseen values must be >= 2 (one-shot among >= 2 classes), got "
                             f"{list(self.n_unseen)}")
        if min(self.distances, default=0) < 0:
            raise InputError("gamma distances must be >= 0")
        if min(self.srp_bits, default=1) < 1:
            raise InputError("srp_bits must be >= 1")
        if self.repeats < 1 or self.queries_per_class < 1 or self.n_pairs < 1:
            raise InputError("repeats, queries_per_class and n_pairs must be >= 1")

    def generator_obj(self) -> ManifoldGenerator:
        return ManifoldGenerator(self.input_dim, self.gamma_dim, self.theta_dim,
                                 self.generator_hidden, self.generator_depth, self.generator,
                                 self.seed)


@dataclass
class LSHResult:
    run_dir: Path | None
    lsh_curve: pd.DataFrame
    invariance: pd.DataFrame
    one_shot: pd.DataFrame
    one_shot_summary: pd.DataFrame
    real_one_shot: pd.DataFrame | None
    real_summary: pd.DataFrame | None
    summary: dict


# ---------------------------------------------------------------------------- building blocks
def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    if last is None:
        raise InputError(f"{type(model).__name__} has no nn.Linear; the penultimate "
                         "representation is the input of the last nn.Linear")
    return last


@torch.no_grad()
def representation(model: nn.Module, x, batch_size: int = 4096) -> np.ndarray:
    """Penultimate representation: the input of the model's last ``nn.Linear`` (N, d)."""
    head = _last_linear(model)
    parts: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda m, inp: parts.append(inp[0].detach()))
    was = model.training
    model.eval()
    try:
        x = torch.as_tensor(x)
        p = next(iter(model.parameters()))
        for lo in range(0, len(x), batch_size):
            model(x[lo : lo + batch_size].to(p.device, p.dtype))
    finally:
        handle.remove()
        model.train(was)
    return torch.cat([t.reshape(t.shape[0], -1) for t in parts]).double().cpu().numpy()


def one_shot_accuracy(support, y_support, query, y_query, metric: str = "euclidean") -> float:
    """Accuracy of 1-nearest-neighbour classification of ``query`` by ``support``.

    euclidean: support (S, d), query (Q, d) arrays. hamming: packed codes (uint8 rows) or
    :class:`~acthash.codes.NeuralCodes`. Ties go to the first support example.
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


def srp_hash(vectors: np.ndarray, n_bits: int, seed: int | list = 0) -> np.ndarray:
    """Sign-random-projection hash: (N, ceil(n_bits/8)) packed bits of ``vectors @ W > 0``
    with ``W`` (d, n_bits) standard Gaussian from ``seed``."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    w = np.random.default_rng(seed).standard_normal((vectors.shape[1], n_bits))
    return np.packbits(vectors @ w > 0, axis=1)


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
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="LSH curve", unit="distance", leave=False)
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
    from acthash.regions import preactivations

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


def _episode(features: dict, x_s, y_s, x_q, y_q) -> dict:
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
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="one-shot", unit="episode", leave=False)
    for n, rep in jobs:
        rng = np.random.default_rng([seed, 2, n, rep])
        gammas = gen.sample_gammas(n, rng)
        x_s, y_s, _ = gen.sample(gammas, 1, rng, theta_range, noise)
        x_q, y_q, _ = gen.sample(gammas, queries_per_class, rng, theta_range, noise)
        for rep_name, acc in _episode(models, x_s, y_s, x_q, y_q).items():
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


def _load_real(name: str, options: dict):
    """``acthash.data.load(name)``; for Fashion-MNIST before its loader exists, read the
    Debian package's IDX files directly."""
    from acthash import data as datasets

    try:
        return datasets.load(name, **options)
    except ValueError as e:
        if name != "fashion-mnist" or "unknown dataset" not in str(e):
            raise
    import gzip

    from acthash.data.registry import Dataset, as_tensors

    root = Path(options.get("root", "/usr/share/datasets/fashion-mnist"))

    def idx(fname):
        path = root / fname
        if not path.exists():
            raise MissingFileError(f"{path} not found; apt-get install dataset-fashion-mnist")
        raw = gzip.open(path).read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()

    x_tr = (idx("train-images-idx3-ubyte.gz") / 255.0).astype(np.float32)[:, None]
    x_te = (idx("t10k-images-idx3-ubyte.gz") / 255.0).astype(np.float32)[:, None]
    x_tr, y_tr = as_tensors(x_tr, idx("train-labels-idx1-ubyte.gz"))
    x_te, y_te = as_tensors(x_te, idx("t10k-labels-idx1-ubyte.gz"))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"]
    return Dataset("fashion-mnist", x_tr, y_tr, x_te, y_te, names, (1, 28, 28),
                   {"kind": "scale", "divide_by": 255.0}, {"source": str(root)})


def _train_mlp(x, y, n_classes: int, cfg: LSHConfig, epochs: int, progress: bool):
    seed_everything(cfg.seed)
    in_features = int(np.prod(x.shape[1:]))
    model = MLP(in_features, cfg.width, n_classes, depth=cfg.depth)
    untrained = copy.deepcopy(model).eval()
    tcfg = TrainConfig(epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                       weight_decay=cfg.weight_decay, seed=cfg.seed, device=cfg.device)
    res = train(model, x, y, tcfg, progress=progress)
    return model.cpu().eval(), untrained, res.history


@torch.no_grad()
def _accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def one_shot_real(cfg: LSHConfig, progress: bool = False):
    """Held-out-class one-shot on ``cfg.real_dataset``: (rows, summary, info, models)."""
    ds = _load_real(cfg.real_dataset, cfg.real_dataset_options)
    classes = np.unique(ds.y_train.numpy())
    k = cfg.real_train_classes or len(classes) // 2
    if not 1 <= k < len(classes) - 1:
        raise InputError(f"real_train_classes={k}: need >= 1 training class and >= 2 held-out "
                         f"classes out of {len(classes)}")
    seen, unseen = classes[:k], classes[k:]
    mask = np.isin(ds.y_train.numpy(), seen)
    x_tr, y_tr = ds.x_train[mask], ds.y_train[mask]
    if cfg.real_max_train and len(x_tr) > cfg.real_max_train:
        keep = np.sort(np.random.default_rng([cfg.seed, 8]).permutation(len(x_tr))
                       [: cfg.real_max_train])
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    remap = {int(c): i for i, c in enumerate(seen)}
    y_tr = torch.as_tensor([remap[int(c)] for c in y_tr], dtype=torch.long)
    trained, untrained, history = _train_mlp(x_tr, y_tr, k, cfg, cfg.real_epochs, progress)
    te_mask = np.isin(ds.y_test.numpy(), seen)
    y_te_seen = torch.as_tensor([remap[int(c)] for c in ds.y_test[te_mask]], dtype=torch.long)
    info = {"dataset": ds.name, "train_classes": [ds.class_names[int(c)] for c in seen],
            "unseen_classes": [ds.class_names[int(c)] for c in unseen], "n_train": len(x_tr),
            "seen_test_accuracy": _accuracy(trained, ds.x_test[te_mask], y_te_seen)}
    models = {"trained": trained, "untrained": untrained}
    y_train_np, y_test_np = ds.y_train.numpy(), ds.y_test.numpy()
    rows = []
    jobs = [(n, rep) for n in range(2, len(unseen) + 1) for rep in range(cfg.repeats)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="one-shot (real)", unit="episode", leave=False)
    for n, rep in jobs:
        rng = np.random.default_rng([cfg.seed, 9, n, rep])
        chosen = rng.choice(unseen, size=n, replace=False)
        s_idx = [rng.choice(np.flatnonzero(y_train_np == c)) for c in chosen]
        q_idx = np.concatenate([
            rng.choice(np.flatnonzero(y_test_np == c),
                       size=min(cfg.queries_per_class, int((y_test_np == c).sum())),
                       replace=False)
            for c in chosen
        ])
        label = {int(c): i for i, c in enumerate(chosen)}
        y_s = np.arange(n)
        y_q = np.asarray([label[int(c)] for c in y_test_np[q_idx]])
        accs = _episode(models, ds.x_train[s_idx].numpy(), y_s, ds.x_test[q_idx].numpy(), y_q)
        for rep_name, acc in accs.items():
            rows.append({"dataset": ds.name, "n_unseen": n, "repeat": rep,
                         "representation": rep_name, "accuracy": acc, "chance": 1.0 / n})
    df = pd.DataFrame(rows)
    summary = summarize_one_shot(df)
    summary.insert(0, "dataset", ds.name)
    return df, summary, info, models, history


# ---------------------------------------------------------------------------- figures
def _save_fig(fig, path: Path) -> None:
    for ext in ("png", "svg"):
        with atomic_path(path.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")


def plot_lsh_curve(curve: pd.DataFrame, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    tr = curve[curve["model"] == "trained"]
    srp = sorted(tr[tr["hash"].str.startswith("srp")]["bits"].unique())
    for b in srp:
        d = tr[tr["hash"] == f"srp{b}"]
        axes[0].plot(d["gamma_distance"], d["collision"], marker="o", label=f"SRP {b} bits")
    for h, style in (("code:all", "k--"),):
        d = tr[tr["hash"] == h]
        axes[0].plot(d["gamma_distance"], d["collision"], style, marker="s",
                     label=f"full neural code ({int(d['bits'].iloc[0])} bits)")
    layer_codes = [h for h in tr["hash"].unique() if h.startswith("code:") and h != "code:all"]
    if layer_codes:
        d = tr[tr["hash"] == layer_codes[-1]]
        axes[0].plot(d["gamma_distance"], d["collision"], "k:", marker="^",
                     label=f"last layer code ({int(d['bits'].iloc[0])} bits)")
    axes[0].set_title("trained net: hashes of the representation")
    mid = srp[len(srp) // 2] if srp else None
    for model, style in (("trained", "-"), ("untrained", "--"), ("raw input", ":")):
        d = curve[(curve["model"] == model) & (curve["hash"] == f"srp{mid}")]
        axes[1].plot(d["gamma_distance"], d["collision"], style, marker="o", label=model)
    axes[1].set_title(f"SRP {mid} bits: trained vs untrained vs raw")
    for ax in axes:
        ax.set_xlabel("|gamma1 - gamma2|  (0 = same gamma, new theta)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("collision probability P[h(x1) = h(x2)]")
    if title:
        fig.suptitle(title)
    _save_fig(fig, path)
    plt.close(fig)


def plot_one_shot(summary: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rep_name in summary["representation"].unique():
        d = summary[summary["representation"] == rep_name]
        ax.errorbar(d["n_unseen"], d["mean"], yerr=d["std"], marker="o", capsize=3,
                    label=rep_name)
    ch = summary.drop_duplicates("n_unseen")
    ax.plot(ch["n_unseen"], ch["chance"], "k:", label="chance")
    ax.set_xscale("log")
    ticks = sorted(int(n) for n in summary["n_unseen"].unique())
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("number of unseen classes (one example each)")
    ax.set_ylabel("one-shot 1-NN accuracy (mean ± std)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save_fig(fig, path)
    plt.close(fig)


def plot_invariance(inv: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    base = inv[inv["layer"] == "input"]["distance_ratio"].iloc[0]
    for model in ("trained", "untrained"):
        for rep_name, style in (("preactivation", "-"), ("code", "--")):
            d = inv[(inv["model"] == model) & (inv["representation"] == rep_name)]
            ax.plot(d["depth"], d["distance_ratio"], style, marker="o",
                    label=f"{model} {rep_name}")
    ax.axhline(base, color="k", ls=":", label="raw input")
    ax.set_xticks(sorted(int(d) for d in inv["depth"].unique() if d > 0))
    ax.set_xlabel("ReLU layer (depth)")
    ax.set_ylabel("across-gamma / within-gamma mean distance")
    ax.set_title("sensitivity to gamma relative to theta, per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_fig(fig, path)
    plt.close(fig)


# ---------------------------------------------------------------------------- the study
def run_lsh_study(cfg: LSHConfig | None = None, *, out_dir: str | Path | None = None,
                  runs_root: str | Path = "runs", write: bool = True,
                  progress: bool = False) -> LSHResult:
    """Run the whole LSH study; see the module docstring for what it measures."""
    from acthash.experiment import environment_info

    cfg = cfg or LSHConfig()
    cfg.validate()
    run_dir = None
    if write:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(out_dir) if out_dir else Path(runs_root) / f"lsh-s{cfg.seed}-{stamp}"
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", {"study": "lsh", **cfg.to_dict()})
        write_json(run_dir / "environment.json", environment_info(cfg.seed))
    gen = cfg.generator_obj()
    rng = np.random.default_rng([cfg.seed, 1])
    gammas = gen.sample_gammas(cfg.n_classes, rng)
    x_tr, y_tr, _ = gen.sample(gammas, cfg.per_class, rng, cfg.theta_range, cfg.noise)
    x_te, y_te, _ = gen.sample(gammas, max(cfg.per_class // 4, 1), rng, cfg.theta_range,
                               cfg.noise)
    trained, untrained, history = _train_mlp(torch.as_tensor(x_tr), torch.as_tensor(y_tr),
                                             cfg.n_classes, cfg, cfg.epochs, progress)
    models = {"trained": trained, "untrained": untrained}
    common = {"theta_range": cfg.theta_range, "noise": cfg.noise, "seed": cfg.seed}
    curve = lsh_curve(gen, models, distances=cfg.distances, n_pairs=cfg.n_pairs,
                      srp_bits=cfg.srp_bits, progress=progress, **common)
    inv = invariance_table(gen, models, n_classes=cfg.inv_classes,
                           per_class=cfg.inv_per_class, **common)
    shots = one_shot_manifolds(gen, models, n_unseen=cfg.n_unseen,
                               queries_per_class=cfg.queries_per_class, repeats=cfg.repeats,
                               progress=progress, **common)
    shots_summary = summarize_one_shot(shots)
    summary = {
        "train_accuracy": _accuracy(trained, torch.as_tensor(x_tr), torch.as_tensor(y_tr)),
        "test_accuracy_seen_gammas": _accuracy(trained, torch.as_tensor(x_te),
                                               torch.as_tensor(y_te)),
        "one_shot_at_max_n": {
            r: float(shots_summary[(shots_summary["n_unseen"] == max(cfg.n_unseen))
                                   & (shots_summary["representation"] == r)]["mean"].iloc[0])
            for r in REPRESENTATIONS
        },
    }
    real_df = real_summary = None
    real_models = real_history = None
    if cfg.real_dataset:
        real_df, real_summary, real_info, real_models, real_history = one_shot_real(cfg,
                                                                                    progress)
        summary["real"] = real_info
    if run_dir is not None:
        write_table(run_dir / "history.parquet", history)
        write_table(run_dir / "lsh_curve.parquet", curve)
        write_table(run_dir / "lsh_curve.csv", curve)
        write_table(run_dir / "invariance.parquet", inv)
        write_table(run_dir / "invariance.csv", inv)
        write_table(run_dir / "one_shot.parquet", shots)
        write_table(run_dir / "one_shot_summary.csv", shots_summary)
        save_torch(run_dir / "model.pt", {"state_dict": trained.state_dict(),
                                          "untrained_state_dict": untrained.state_dict(),
                                          "gammas": gammas})
        figs = run_dir / "figures"
        plot_lsh_curve(curve, figs / "lsh_curve", title=f"{cfg.n_classes} training manifolds, "
                       f"fresh gammas, {cfg.n_pairs} pairs per distance")
        plot_invariance(inv, figs / "invariance")
        plot_one_shot(shots_summary, figs / "one_shot",
                      f"one-shot on unseen manifolds ({cfg.repeats} draws)")
        if real_df is not None:
            write_table(run_dir / "real_one_shot.parquet", real_df)
            write_table(run_dir / "real_one_shot_summary.csv", real_summary)
            write_table(run_dir / "real_history.parquet", real_history)
            plot_one_shot(real_summary, figs / "real_one_shot",
                          f"{summary['real']['dataset']}: one-shot on held-out classes")
        write_json(run_dir / "summary.json", summary)
    return LSHResult(run_dir, curve, inv, shots, shots_summary, real_df, real_summary, summary)
