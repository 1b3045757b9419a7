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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash._utils.run import (
    progress_bar,
    run_transaction,
    save_torch,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.errors import InputError
from acthash.lsh.measures import (
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
from acthash.models import MLP
from acthash.studies.configs import LSHConfig
from acthash.studies.lsh_plots import plot_invariance, plot_lsh_curve, plot_one_shot
from acthash.train import evaluate, resolve_device, seed_everything, train

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


def _acc(model, x, y) -> float:
    return float(evaluate(model, x, y)[1])


def _train_mlp(x, y, n_classes: int, cfg: LSHConfig, epochs: int, progress: bool):
    seed_everything(cfg.seed)
    in_features = int(np.prod(x.shape[1:]))
    model = MLP(in_features, cfg.width, n_classes, depth=cfg.depth)
    untrained = copy.deepcopy(model).eval()
    tcfg = replace(cfg, epochs=epochs, checkpoints=[]).train_config()
    res = train(model, x, y, tcfg, progress=progress)
    return model.cpu().eval(), untrained, res.history


def one_shot_real(cfg: LSHConfig, progress: bool = False):
    """Held-out-class one-shot on ``cfg.dataset``: (rows, summary, info, models)."""
    from acthash import data as datasets

    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
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
            "seen_test_accuracy": _acc(trained, ds.x_test[te_mask], y_te_seen)}
    models = {"trained": trained, "untrained": untrained}
    y_train_np, y_test_np = ds.y_train.numpy(), ds.y_test.numpy()
    rows = []
    jobs = [(n, rep) for n in range(2, len(unseen) + 1) for rep in range(cfg.repeats)]
    jobs = progress_bar(jobs, enabled=progress, desc="one-shot (real)", unit="episode")
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
        accs = episode(models, ds.x_train[s_idx].numpy(), y_s, ds.x_test[q_idx].numpy(), y_q)
        for rep_name, acc in accs.items():
            rows.append({"dataset": ds.name, "n_unseen": n, "repeat": rep,
                         "representation": rep_name, "accuracy": acc, "chance": 1.0 / n})
    df = pd.DataFrame(rows)
    summary = summarize_one_shot(df)
    summary.insert(0, "dataset", ds.name)
    return df, summary, info, models, history



@run_transaction
def run_lsh_study(cfg: LSHConfig | None = None, *, out_dir: str | Path | None = None,
                  runs_root: str | Path = "runs", write: bool = True,
                  progress: bool = False, force: bool = False) -> LSHResult:
    """Run the whole LSH study; see the module docstring for what it measures."""
    cfg = cfg or LSHConfig()
    resolve_device(cfg.device)  # a bad device fails before the study directory is made
    gen = cfg.generator_obj()
    rng = np.random.default_rng([cfg.seed, 1])
    gammas = gen.sample_gammas(cfg.n_classes, rng)
    x_tr, y_tr, _ = gen.sample(gammas, cfg.per_class, rng, cfg.theta_range, cfg.noise)
    x_te, y_te, _ = gen.sample(gammas, max(cfg.per_class // 4, 1), rng, cfg.theta_range,
                               cfg.noise)
    run_dir = None
    if write:  # opened once the data are made (a bad generator setting writes nothing)
        run_dir = start_run_dir(out_dir, runs_root, ("lsh", f"s{cfg.seed}"),
                                config={"study": "lsh", **cfg.to_dict()}, seed=cfg.seed,
                                force=force)
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
        "train_accuracy": _acc(trained, torch.as_tensor(x_tr), torch.as_tensor(y_tr)),
        "test_accuracy_seen_gammas": _acc(trained, torch.as_tensor(x_te),
                                               torch.as_tensor(y_te)),
        "one_shot_at_max_n": {
            r: float(shots_summary[(shots_summary["n_unseen"] == max(cfg.n_unseen))
                                   & (shots_summary["representation"] == r)]["mean"].iloc[0])
            for r in REPRESENTATIONS
        },
    }
    real_df = real_summary = None
    real_models = real_history = None
    if cfg.dataset:
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
