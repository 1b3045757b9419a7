"""Study: emergence of latent binary encoding (Sbailò & Ghiringhelli, 2023–24).

``run_binary_study(BinaryStudyConfig(...))`` trains four models on one registry dataset,
all with the same backbone and, per seed, the same initialization:

===============  =========================================================================
``compressed``   linear penultimate (d units, no activation), loss CE + γₑ·mean(z²)
``linear``       the same network, cross-entropy only
``nonlinear``    penultimate followed by an activation (ReLU by default), cross-entropy
``none``         no penultimate layer (z = the backbone's features), cross-entropy
===============  =========================================================================

At each checkpoint epoch it records, from z (the penultimate output), on the training and
on the test split: accuracy, same-encoding fraction, bimodality and the mixture summaries
(:func:`acthash.binary.binarity_metrics`), neural-collapse metrics — each in the acthash
convention and in the authors' (``*_authors_*`` columns) — and on the test split DeepFool
robustness, FGSM/PGD accuracy, the Mahalanobis reliability AUROC (exact and the authors'
approximation, both conventions), Lee et al.'s out-of-distribution AUROC on each shifted
set of ``ood_sets`` and the hash view (encoding properties of z > 0).

The study directory holds ``config.json``, ``environment.json``, ``dataset.json``,
``metrics.parquet`` (one row per variant × seed × checkpoint), ``history.parquet`` (one
row per variant × seed × epoch), ``comparison.{csv,md}`` (final epoch, mean ± std over
seeds), ``conventions.{csv,md}`` (acthash against the authors' convention, final epoch),
``ood.{csv,md}`` (out-of-distribution AUROC per shifted set, final epoch),
``latents/<variant>_seed<S>.npz`` (final z, labels, predictions and the raw Mahalanobis
distances of correct and misclassified points), ``models/<variant>_seed<S>.pt`` and the
figures ``latent_histograms.{png,svg}`` and ``metrics_over_epochs.{png,svg}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash._utils.run import (
    atomic_path,
    progress_bar,
    run_transaction,
    save_figure,
    save_torch,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.binary.measures import model_metrics, shifted_inputs
from acthash.data.manipulate import subsample
from acthash.models import build_model
from acthash.models.bottleneck import CompressionLoss
from acthash.studies.configs import VARIANTS, BinaryStudyConfig
from acthash.train import TrainConfig, resolve_device, seed_everything, train

__all__ = ["VARIANTS", "AUTHORS_TRAINING", "BinaryStudyConfig", "BinaryStudyResult",
           "run_binary_study", "latent_metrics", "comparison_table", "conventions_table",
           "ood_table", "shifted_inputs", "TABLE_COLUMNS", "CONVENTION_PAIRS"]

#: the optimization of the authors' configuration files (CIFAR-10/100; their SVHN file
#: grows γ by 1.025 per epoch instead): ``BinaryStudyConfig(**AUTHORS_TRAINING, ...)``.
#: Their StepLR only starts at epoch 250 of 800, which ``schedule="step"`` does not model.
AUTHORS_TRAINING = {"optimizer": "adamw", "weight_decay": 5e-4, "schedule": "step",
                    "step_size": 50, "lr_gamma": 0.5, "gamma_ratio": 1.05}

#: (column, label) of the comparison table, in order
TABLE_COLUMNS = [
    ("test_acc", "test acc."),
    ("same_encoding_test", "same-encoding frac."),
    ("bimodality_mean_test", "bimodality (mean)"),
    ("bimodality_min_test", "bimodality (min)"),
    ("bimodality_std_test", "peak-distance spread"),
    ("gmm_std_test", "mixture σ (standardized)"),
    ("gmm_score_test", "mixture log-lik. / example"),
    ("deepfool_rho", "DeepFool ‖r‖/‖x‖"),
    ("fgsm_acc", "FGSM acc."),
    ("pgd_acc", "PGD acc."),
    ("auroc", "AUROC (Mahalanobis)"),
    ("nc1_train", "NC1 (train)"),
    ("nc1_test", "NC1 (test)"),
    ("nc1_per_dim_train", "NC1/d (train)"),
    ("sigma_w_train", "σ_W (train)"),
    ("relative_norm_std_train", "rel. std of ‖μᵢ−μⱼ‖ (train)"),
    ("redundancy_test", "redundancy (z>0)"),
    ("within_class_redundancy_test", "within-class redund."),
    ("knn_test", "9-NN acc. (z>0)"),
]

#: (label, acthash column, authors' column) of the conventions table
CONVENTION_PAIRS = [
    ("NC1 (train)", "nc1_train", "nc1_authors_train"),
    ("NC1 (test)", "nc1_test", "nc1_authors_test"),
    ("σ_W (train)", "sigma_w_train", "sigma_w_authors_train"),
    ("equinorm (test)", "equinorm_test", "equinorm_authors_test"),
    ("bimodality mean (test)", "bimodality_mean_test", "bimodality_mean_authors_test"),
    ("bimodality min (test)", "bimodality_min_test", "bimodality_min_authors_test"),
    ("same-encoding (train)", "same_encoding_train", "same_encoding_authors_train"),
    ("same-encoding (test)", "same_encoding_test", "same_encoding_authors_test"),
    ("reliability AUROC", "auroc", "auroc_authors_riemann"),
]

_SPLITS = ("train", "test")


@dataclass
class BinaryStudyResult:
    metrics: pd.DataFrame  # one row per variant x seed x checkpoint
    history: pd.DataFrame  # one row per variant x seed x epoch
    table: pd.DataFrame  # final epoch, mean and std over seeds, one row per variant
    run_dir: Path | None
    models: dict  # (variant, seed) -> trained model
    latents: dict  # (variant, seed) -> dict of final arrays
    conventions: pd.DataFrame | None = None  # acthash vs authors' convention, final epoch
    ood: pd.DataFrame | None = None  # OOD AUROC per variant and shifted set, final epoch


def latent_metrics(model: nn.Module, x_train, y_train, x_test, y_test, *,
                   x_attack=None, y_attack=None, clip=None, cfg: BinaryStudyConfig | None = None,
                   seed: int = 0, ood_inputs: dict | None = None) -> tuple[dict, dict]:
    """All study metrics of a :class:`~acthash.models.bottleneck.BottleneckNet` with the
    options of ``cfg``: :func:`acthash.binary.measures.model_metrics`."""
    cfg = cfg or BinaryStudyConfig()
    return model_metrics(model, x_train, y_train, x_test, y_test, x_attack=x_attack,
                         y_attack=y_attack, clip=clip, seed=seed, ood_inputs=ood_inputs,
                         bimodality_max_dims=cfg.bimodality_max_dims,
                         deepfool_max_iter=cfg.deepfool_max_iter,
                         deepfool_overshoot=cfg.deepfool_overshoot, attack_eps=cfg.attack_eps,
                         pgd_steps=cfg.pgd_steps, hash_metrics=cfg.hash_metrics, k=cfg.k,
                         kmeans_n_init=cfg.kmeans_n_init, logreg_strategy=cfg.logreg_strategy)


# --------------------------------------------------------------------- tables
_ID_COLUMNS = ("variant", "seed", "epoch", "dataset")


def comparison_table(metrics: pd.DataFrame, variants=None) -> pd.DataFrame:
    """Final-epoch rows, mean and std over seeds: index = variant, columns ``<metric>``
    and ``<metric>_std`` for every numeric metric column, and ``n_seeds``."""
    last = metrics[metrics["epoch"] == metrics["epoch"].max()]
    cols = [c for c in last.columns if c not in _ID_COLUMNS
            and pd.api.types.is_numeric_dtype(last[c])]
    grouped = last.groupby("variant")[cols]
    mean = grouped.mean()
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    table = pd.concat([mean, std], axis=1)
    table["n_seeds"] = last.groupby("variant")["seed"].nunique()
    order = [v for v in (variants or VARIANTS) if v in table.index]
    return table.loc[order]


def _cell(m: float, s: float, n: int, digits: int) -> str:
    if not np.isfinite(m):
        return "NaN"
    fmt = f"{{:.{digits}g}}" if 0 < abs(m) < 10 ** -(digits - 1) else f"{{:.{digits}f}}"
    return fmt.format(m) + (" ± " + fmt.format(s) if n > 1 else "")


def table_markdown(table: pd.DataFrame, digits: int = 3, columns=None) -> str:
    """The comparison table as GitHub markdown, metrics as rows, "mean ± std" cells."""
    variants = list(table.index)
    lines = ["| metric | " + " | ".join(variants) + " |",
             "|---|" + "---:|" * len(variants)]
    for col, label in (columns or TABLE_COLUMNS):
        if col not in table.columns:
            continue
        cells = [_cell(table.loc[v, col], table.loc[v, f"{col}_std"],
                       int(table.loc[v, "n_seeds"]), digits) for v in variants]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def conventions_table(metrics: pd.DataFrame, variants=None) -> pd.DataFrame:
    """acthash against the authors' convention at the final epoch, mean over seeds: one row
    per variant × metric of :data:`CONVENTION_PAIRS` with ``acthash``, ``authors`` and
    ``rel_diff`` = (authors − acthash) / |acthash|."""
    table = comparison_table(metrics, variants)
    rows = []
    for v in table.index:
        for label, a, b in CONVENTION_PAIRS:
            if a in table.columns and b in table.columns:
                x, y = float(table.loc[v, a]), float(table.loc[v, b])
                rows.append({"variant": v, "metric": label, "acthash": x, "authors": y,
                             "rel_diff": (y - x) / abs(x) if x else float("nan")})
    return pd.DataFrame(rows)


def ood_table(metrics: pd.DataFrame, variants=None) -> pd.DataFrame:
    """Out-of-distribution AUROC at the final epoch, mean and std over seeds: one row per
    variant × shifted set with ``lee`` (tied covariance, minimum distance), ``predicted``
    (per-class covariance at the predicted class) and ``diff`` = lee − predicted."""
    table = comparison_table(metrics, variants)
    sets = [c[4:] for c in table.columns
            if c.startswith("ood_") and not c.endswith(("_std", "_predicted"))]
    rows = []
    for v in table.index:
        for s in sets:
            lee, pred = table.loc[v, f"ood_{s}"], table.loc[v, f"ood_{s}_predicted"]
            rows.append({"variant": v, "ood_set": s, "lee": lee,
                         "lee_std": table.loc[v, f"ood_{s}_std"], "predicted": pred,
                         "predicted_std": table.loc[v, f"ood_{s}_predicted_std"],
                         "diff": lee - pred, "n_seeds": int(table.loc[v, "n_seeds"])})
    return pd.DataFrame(rows)


def _frame_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(
            f"{r[c]:.{digits}f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _balanced_subset(y: torch.Tensor, n: int | None, seed: int):
    if n is None or n >= len(y):
        return None
    return subsample(y, n, balanced=True, seed=seed)


@run_transaction
def run_binary_study(cfg: BinaryStudyConfig | None = None, *, out_dir: str | Path | None = None,
                     runs_root: str | Path = "runs", write: bool = True,
                     progress: bool = False, force: bool = False) -> BinaryStudyResult:
    """Train the variants over the seeds, measure them at each checkpoint, write the study
    directory (unless ``write=False``) and return the tables."""
    from acthash import data as datasets

    cfg = cfg or BinaryStudyConfig()
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    base_seed = cfg.seed[0]
    idx = _balanced_subset(y_tr, cfg.sample_size, cfg.data_seed)
    if idx is not None:
        x_tr, y_tr = x_tr[idx], y_tr[idx]
    idx = _balanced_subset(y_te, cfg.test_size, cfg.data_seed)
    if idx is not None:
        x_te, y_te = x_te[idx], y_te[idx]
    ia = _balanced_subset(y_te, cfg.robustness_size, cfg.data_seed)
    x_att, y_att = (x_te, y_te) if ia is None else (x_te[ia], y_te[ia])
    clip = (float(x_tr.min()), float(x_tr.max()))
    ood_inputs = {name: shifted_inputs(name, x_te, seed=cfg.data_seed, input_range=clip)
                  for name in cfg.ood_sets}
    device = resolve_device(cfg.device)
    epochs = cfg.checkpoint_epochs()

    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ["binary", cfg.dataset],
                                config={**cfg.to_dict(), "checkpoint_epochs": epochs},
                                seed=base_seed, force=force)
        write_json(run_dir / "dataset.json", {
            "dataset": ds.describe(), "n_train_used": len(x_tr), "n_test_used": len(x_te),
            "n_attacked": len(x_att), "input_range": list(clip),
            "ood_sets": {k: len(v) for k, v in ood_inputs.items()}})

    rows: list[dict] = []
    histories: list[pd.DataFrame] = []
    models: dict = {}
    latents: dict = {}
    jobs = [(v, s) for s in cfg.seed for v in cfg.variants]
    bar = progress_bar(total=len(jobs), enabled=progress, desc="binary study", unit="model",
                       leave=True)
    for variant, seed in jobs:
        kind, compress = VARIANTS[variant]
        seed_everything(seed)
        model = build_model("bottleneck", ds.input_shape, ds.n_classes, backbone=cfg.model,
                            latent_dim=cfg.latent_dim, penultimate=kind,
                            latent_activation=cfg.latent_activation, **cfg.model_options)
        loss = (CompressionLoss(cfg.gamma0, cfg.gamma_ratio, cfg.gamma_cap) if compress
                else None)
        tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                           optimizer=cfg.optimizer, weight_decay=cfg.weight_decay,
                           schedule=cfg.schedule, step_size=cfg.step_size,
                           lr_gamma=cfg.lr_gamma, checkpoints=epochs, seed=seed,
                           device=str(device))
        final: dict = {}

        def on_checkpoint(epoch: int, m: nn.Module, _v=variant, _s=seed, _loss=loss,
                          _final=final) -> None:
            rec, arrays = latent_metrics(m, x_tr, y_tr, x_te, y_te, x_attack=x_att,
                                         y_attack=y_att, clip=clip, cfg=cfg, seed=_s,
                                         ood_inputs=ood_inputs)
            gamma = _loss.gamma(epoch) if (_loss is not None and epoch > 0) else 0.0
            rows.append({"variant": _v, "seed": _s, "epoch": epoch, "gamma": gamma, **rec})
            if epoch == cfg.epochs:
                _final.update(arrays)
            if run_dir is not None:  # partial metrics survive an interruption
                write_table(run_dir / "metrics.parquet", pd.DataFrame(rows))

        res = train(model, x_tr, y_tr, tcfg, on_checkpoint=on_checkpoint, extra_loss=loss)
        hist = res.history.copy()
        hist.insert(0, "seed", seed)
        hist.insert(0, "variant", variant)
        if loss is not None:
            hist["gamma"] = [loss.gamma(e) for e in hist["epoch"]]
        histories.append(hist)
        models[(variant, seed)] = model
        latents[(variant, seed)] = final
        if run_dir is not None:
            with atomic_path(run_dir / "latents" / f"{variant}_seed{seed}.npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **final)
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            save_torch(run_dir / "models" / f"{variant}_seed{seed}.pt", {
                "model": "bottleneck", "input_shape": list(ds.input_shape),
                "n_classes": ds.n_classes,
                "model_kwargs": {"backbone": cfg.model, "latent_dim": cfg.latent_dim,
                                 "penultimate": kind,
                                 "latent_activation": cfg.latent_activation,
                                 **cfg.model_options},
                "epoch": cfg.epochs, "state_dict": state})
        bar.update(1)
    bar.close()
    metrics = pd.DataFrame(rows)
    metrics.insert(3, "dataset", cfg.dataset)
    history = pd.concat(histories, ignore_index=True)
    table = comparison_table(metrics, cfg.variants)
    conventions = conventions_table(metrics, cfg.variants)
    ood = ood_table(metrics, cfg.variants)
    if run_dir is not None:
        write_table(run_dir / "metrics.parquet", metrics)
        write_json(run_dir / "metrics.json", json.loads(metrics.to_json(orient="records")))
        write_table(run_dir / "history.parquet", history)
        write_table(run_dir / "comparison.csv", table.reset_index())
        write_table(run_dir / "conventions.csv", conventions)
        write_table(run_dir / "ood.csv", ood)
        for name, text in (("comparison.md", table_markdown(table)),
                           ("conventions.md", _frame_markdown(conventions)),
                           ("ood.md", _frame_markdown(ood))):
            with atomic_path(run_dir / name) as tmp:
                Path(tmp).write_text(text)
        if cfg.figures:
            plot_latent_histograms({v: latents[(v, base_seed)] for v in cfg.variants},
                                   run_dir / "latent_histograms", dims=cfg.latent_dim)
            plot_metrics_over_epochs(metrics, run_dir / "metrics_over_epochs")
    return BinaryStudyResult(metrics, history, table, run_dir, models, latents,
                             conventions, ood)


# --------------------------------------------------------------------- figures
def plot_latent_histograms(latents: dict, stem: str | Path, *, dims: int = 4,
                           split: str = "test", bins: int = 40) -> None:
    """Grid: one row per variant, one column per latent dimension, histograms of z stacked
    by true class. A representation wider than ``dims`` (the "none" variant's features)
    shows its ``dims`` dimensions of largest variance. ``latents``: variant -> arrays of
    :func:`latent_metrics`. Writes ``<stem>.png`` and ``<stem>.svg``."""
    import matplotlib.pyplot as plt

    variants = [v for v, a in latents.items() if a]
    ncol = max(min(dims, a[f"z_{split}"].shape[1]) for v, a in latents.items() if a)
    fig, axes = plt.subplots(len(variants), ncol, figsize=(2.4 * ncol, 1.9 * len(variants)),
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    for i, v in enumerate(variants):
        z, y = latents[v][f"z_{split}"], latents[v][f"y_{split}"]
        classes = np.unique(y)
        shown = (np.arange(z.shape[1]) if z.shape[1] <= ncol
                 else np.sort(np.argsort(-z.var(0), kind="stable")[:ncol]))
        for col in range(ncol):
            ax = axes[i, col]
            if col >= len(shown):
                ax.axis("off")
                continue
            j = int(shown[col])
            edges = np.histogram_bin_edges(z[:, j], bins=bins)
            ax.hist([z[y == c, j] for c in classes], bins=edges, stacked=True,
                    histtype="stepfilled", color=[cmap(int(c) % 10) for c in classes],
                    linewidth=0)
            ax.axvline(0, color="k", lw=0.6, ls=":")
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
            ax.set_title(f"z[{j}]", fontsize=8)
            if col == 0:
                ax.set_ylabel(v, fontsize=9)
    fig.suptitle(f"latent z per dimension ({split} set, stacked by class)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, Path(stem), dpi=110)


_EPOCH_PANELS = [
    ("test_acc", "test accuracy"),
    ("same_encoding_test", "same-encoding fraction"),
    ("bimodality_mean_test", "bimodality (mean)"),
    ("nc1_train", "NC1 (log)"),
    ("deepfool_rho", "DeepFool ‖r‖/‖x‖"),
    ("auroc", "AUROC (Mahalanobis)"),
]


def plot_metrics_over_epochs(metrics: pd.DataFrame, stem: str | Path) -> None:
    """Six panels (accuracy, same-encoding, bimodality, NC1, DeepFool, AUROC) over epochs,
    one line per variant (mean over seeds, band = ±1 std)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (col, label) in zip(axes.ravel(), _EPOCH_PANELS, strict=True):
        for v, part in metrics.groupby("variant", sort=False):
            g = part.groupby("epoch")[col]
            m, s = g.mean(), g.std(ddof=1).fillna(0.0)
            ax.plot(m.index, m.values, marker="o", ms=3, label=v)
            ax.fill_between(m.index, m - s, m + s, alpha=0.2)
        if col == "nc1_train":
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, Path(stem), dpi=110)
