"""Study: emergence of latent binary encoding (Sbailò & Ghiringhelli, 2023–24).

``run_binary_study(BinaryStudyConfig(...))`` trains four models on one registry dataset,
all with the same backbone and, per seed, the same initialization:

===============  =========================================================================
``compressed``   linear penultimate (d units, no activation), loss CE + γₑ·mean(z²)
``linear``       the same network, cross-entropy only
``nonlinear``    penultimate followed by an activation (ReLU by default), cross-entropy
``none``         no penultimate layer (z = the backbone's features), cross-entropy
===============  =========================================================================

At each checkpoint epoch it records, from z (the penultimate output): test/train accuracy,
same-encoding fraction, bimodality, neural-collapse metrics, DeepFool robustness, FGSM/PGD
accuracy, Mahalanobis AUROC and the hash view (encoding properties of z > 0).

The study directory holds ``config.json``, ``environment.json``, ``dataset.json``,
``metrics.parquet`` (one row per variant × seed × checkpoint), ``history.parquet`` (one
row per variant × seed × epoch), ``comparison.{csv,md}`` (final epoch, mean ± std over
seeds), ``latents/<variant>_seed<S>.npz`` (final z, labels and predictions),
``models/<variant>_seed<S>.pt`` and the figures ``latent_histograms.{png,svg}`` and
``metrics_over_epochs.{png,svg}``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash import binary
from acthash._config import ConfigDict
from acthash._io import atomic_path, save_torch, write_json, write_table
from acthash.data.manipulate import subsample
from acthash.errors import InputError
from acthash.models import build_model
from acthash.models.bottleneck import CompressionLoss
from acthash.train import TrainConfig, resolve_device, seed_everything, train

__all__ = ["VARIANTS", "BinaryStudyConfig", "BinaryStudyResult", "run_binary_study",
           "latent_metrics", "comparison_table", "TABLE_COLUMNS"]

#: variant -> (penultimate kind, compression loss on?)
VARIANTS: dict[str, tuple[str, bool]] = {
    "compressed": ("linear", True),
    "linear": ("linear", False),
    "nonlinear": ("nonlinear", False),
    "none": ("none", False),
}

#: (column, label) of the comparison table, in order
TABLE_COLUMNS = [
    ("test_acc", "test acc."),
    ("same_encoding_test", "same-encoding frac."),
    ("bimodality_mean", "bimodality (mean)"),
    ("bimodality_min", "bimodality (min)"),
    ("deepfool_rho", "DeepFool ‖r‖/‖x‖"),
    ("fgsm_acc", "FGSM acc."),
    ("pgd_acc", "PGD acc."),
    ("auroc", "AUROC (Mahalanobis)"),
    ("nc1", "NC1"),
    ("redundancy_test", "redundancy (z>0)"),
    ("within_class_redundancy_test", "within-class redund."),
    ("knn_test", "9-NN acc. (z>0)"),
]


@dataclass
class BinaryStudyConfig(ConfigDict):
    """Everything that fixes the study (with the seeds, bit for bit on CPU)."""

    _kind = "study config"

    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)
    sample_size: int | None = None  # train on a class-balanced random subset of N examples
    test_size: int | None = None  # evaluate on a class-balanced random subset of the test set
    backbone: str = "mlp"
    backbone_options: dict = field(default_factory=lambda: {"width": 100, "depth": 2})
    latent_dim: int = 4
    latent_activation: str = "relu"
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    gamma0: float = 0.01
    gamma_ratio: float = 1.06
    gamma_cap: float | None = None
    checkpoints: list[int] = field(default_factory=list)  # empty: 0 and 10 even steps
    seeds: list[int] = field(default_factory=lambda: [0])  # one model per variant and seed
    data_seed: int = 0  # fixes the train/test/attack subsets, the same for every seed
    robustness_size: int | None = 500  # test examples attacked (None: all)
    deepfool_max_iter: int = 50
    deepfool_overshoot: float = 0.02
    attack_eps: float = 0.1  # L∞ radius for FGSM/PGD, in input units
    pgd_steps: int = 10
    hash_metrics: bool = True
    figures: bool = True  # write the PNG/SVG figures into the study directory
    k: int = 9
    kmeans_n_init: int = 4
    logreg_strategy: str = "ovo"  # for the hash view: "ovo" (the original), "ovr", "multinomial"
    device: str = "auto"

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise InputError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        if not self.seeds:
            raise InputError("give at least one seed")
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1, got {self.epochs}")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.epochs]
        if bad:
            raise InputError(f"checkpoints {bad} lie outside 0..{self.epochs} epochs")

    def checkpoint_epochs(self) -> list[int]:
        if self.checkpoints:
            eps = set(int(c) for c in self.checkpoints)
        else:
            eps = set(np.linspace(0, self.epochs, 11).round().astype(int).tolist())
        return sorted(eps | {self.epochs})


@dataclass
class BinaryStudyResult:
    metrics: pd.DataFrame  # one row per variant x seed x checkpoint
    history: pd.DataFrame  # one row per variant x seed x epoch
    table: pd.DataFrame  # final epoch, mean and std over seeds, one row per variant
    run_dir: Path | None
    models: dict  # (variant, seed) -> trained model
    latents: dict  # (variant, seed) -> dict of final arrays


def _forward(model: nn.Module, x: torch.Tensor, batch: int = 2048):
    """(logits, z) as CPU tensors, in eval mode without gradients."""
    device = next(model.parameters()).device
    logits, zs = [], []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            out, z = model.forward_latent(x[lo : lo + batch].to(device))
            logits.append(out.cpu())
            zs.append(z.cpu())
    return torch.cat(logits), torch.cat(zs)


def latent_metrics(model: nn.Module, x_train, y_train, x_test, y_test, *,
                   x_attack=None, y_attack=None, clip=None, cfg: BinaryStudyConfig | None = None,
                   seed: int = 0) -> tuple[dict, dict]:
    """All study metrics of a :class:`~acthash.models.bottleneck.BottleneckNet`.

    Returns ``(record, arrays)``: the flat metric record and the arrays it came from
    (``z_train``, ``z_test``, ``pred_train``, ``pred_test``).
    """
    cfg = cfg or BinaryStudyConfig()
    lg_tr, z_tr = _forward(model, x_train)
    lg_te, z_te = _forward(model, x_test)
    p_tr, p_te = lg_tr.argmax(1).numpy(), lg_te.argmax(1).numpy()
    y_tr, y_te = np.asarray(y_train), np.asarray(y_test)
    rec: dict = {
        "train_acc": float((p_tr == y_tr).mean()),
        "test_acc": float((p_te == y_te).mean()),
        "same_encoding_train": binary.same_encoding_fraction(z_tr, p_tr),
        "same_encoding_test": binary.same_encoding_fraction(z_te, p_te),
        "latent_dim": int(z_tr.shape[1]),
    }
    bm = binary.bimodality(z_te, seed=seed)
    rec["bimodality_mean"], rec["bimodality_min"] = float(bm.mean()), float(bm.min())
    rec.update(binary.neural_collapse(z_tr, y_tr))
    rec["auroc"] = binary.mahalanobis_auroc(z_tr, y_tr, p_tr, z_te, y_te, p_te)
    xa = x_test if x_attack is None else x_attack
    ya = y_test if y_attack is None else y_attack
    rec.update(binary.deepfool_robustness(model, xa, max_iter=cfg.deepfool_max_iter,
                                          overshoot=cfg.deepfool_overshoot))
    rec["fgsm_acc"] = binary.fgsm_accuracy(model, xa, ya, cfg.attack_eps, clip=clip)
    rec["pgd_acc"] = binary.pgd_accuracy(model, xa, ya, cfg.attack_eps, steps=cfg.pgd_steps,
                                         clip=clip, seed=seed)
    if cfg.hash_metrics:
        hv = binary.hash_view(z_tr, y_tr, z_te, y_te, k=cfg.k, seed=seed,
                              kmeans_n_init=cfg.kmeans_n_init,
                              logreg_strategy=cfg.logreg_strategy)
        rec.update({k: v for k, v in hv.items() if k not in ("n_train", "n_test", "n_classes")})
    arrays = {"z_train": z_tr.numpy(), "z_test": z_te.numpy(), "pred_train": p_tr,
              "pred_test": p_te, "y_train": y_tr, "y_test": y_te}
    return rec, arrays


def comparison_table(metrics: pd.DataFrame, variants=None) -> pd.DataFrame:
    """Final-epoch rows, mean and std over seeds: index = variant, columns
    ``<metric>`` and ``<metric>_std`` for the metrics of :data:`TABLE_COLUMNS`."""
    last = metrics[metrics["epoch"] == metrics["epoch"].max()]
    cols = [c for c, _ in TABLE_COLUMNS if c in last.columns]
    grouped = last.groupby("variant")[cols]
    mean = grouped.mean()
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    table = pd.concat([mean, std], axis=1)
    table["n_seeds"] = last.groupby("variant")["seed"].nunique()
    order = [v for v in (variants or VARIANTS) if v in table.index]
    return table.loc[order]


def table_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """The comparison table as GitHub markdown, metrics as rows, "mean ± std" cells."""
    variants = list(table.index)
    lines = ["| metric | " + " | ".join(variants) + " |",
             "|---|" + "---:|" * len(variants)]
    for col, label in TABLE_COLUMNS:
        if col not in table.columns:
            continue
        cells = []
        for v in variants:
            m, s = table.loc[v, col], table.loc[v, f"{col}_std"]
            n = int(table.loc[v, "n_seeds"])
            cells.append(f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if n > 1 else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _balanced_subset(y: torch.Tensor, n: int | None, seed: int):
    if n is None or n >= len(y):
        return None
    return subsample(y, n, balanced=True, seed=seed)


def run_binary_study(cfg: BinaryStudyConfig | None = None, *, out_dir: str | Path | None = None,
                     runs_root: str | Path = "runs", write: bool = True,
                     progress: bool = False) -> BinaryStudyResult:
    """Train the variants over the seeds, measure them at each checkpoint, write the study
    directory (unless ``write=False``) and return the tables."""
    from acthash import data as datasets
    from acthash.experiment import environment_info

    cfg = cfg or BinaryStudyConfig()
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    base_seed = cfg.seeds[0]
    idx = _balanced_subset(y_tr, cfg.sample_size, cfg.data_seed)
    if idx is not None:
        x_tr, y_tr = x_tr[idx], y_tr[idx]
    idx = _balanced_subset(y_te, cfg.test_size, cfg.data_seed)
    if idx is not None:
        x_te, y_te = x_te[idx], y_te[idx]
    ia = _balanced_subset(y_te, cfg.robustness_size, cfg.data_seed)
    x_att, y_att = (x_te, y_te) if ia is None else (x_te[ia], y_te[ia])
    clip = (float(x_tr.min()), float(x_tr.max()))
    device = resolve_device(cfg.device)
    epochs = cfg.checkpoint_epochs()

    run_dir = None
    if write:
        run_dir = Path(out_dir) if out_dir else Path(runs_root) / (
            f"binary-{cfg.dataset.replace(':', '_').replace('/', '_')}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", {**cfg.to_dict(), "checkpoint_epochs": epochs})
        write_json(run_dir / "environment.json", environment_info(base_seed))
        write_json(run_dir / "dataset.json", {
            "dataset": ds.describe(), "n_train_used": len(x_tr), "n_test_used": len(x_te),
            "n_attacked": len(x_att), "input_range": list(clip)})

    rows: list[dict] = []
    histories: list[pd.DataFrame] = []
    models: dict = {}
    latents: dict = {}
    jobs = [(v, s) for s in cfg.seeds for v in cfg.variants]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="binary study", unit="model")
    for variant, seed in jobs:
        kind, compress = VARIANTS[variant]
        seed_everything(seed)
        model = build_model("bottleneck", ds.input_shape, ds.n_classes, backbone=cfg.backbone,
                            latent_dim=cfg.latent_dim, penultimate=kind,
                            latent_activation=cfg.latent_activation, **cfg.backbone_options)
        loss = (CompressionLoss(cfg.gamma0, cfg.gamma_ratio, cfg.gamma_cap) if compress
                else None)
        tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                           optimizer=cfg.optimizer, weight_decay=cfg.weight_decay,
                           checkpoints=epochs, seed=seed, device=str(device))
        final: dict = {}

        def on_checkpoint(epoch: int, m: nn.Module, _v=variant, _s=seed, _loss=loss,
                          _final=final) -> None:
            rec, arrays = latent_metrics(m, x_tr, y_tr, x_te, y_te, x_attack=x_att,
                                         y_attack=y_att, clip=clip, cfg=cfg, seed=_s)
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
                "model_kwargs": {"backbone": cfg.backbone, "latent_dim": cfg.latent_dim,
                                 "penultimate": kind,
                                 "latent_activation": cfg.latent_activation,
                                 **cfg.backbone_options},
                "epoch": cfg.epochs, "state_dict": state})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    metrics = pd.DataFrame(rows)
    metrics.insert(3, "dataset", cfg.dataset)
    history = pd.concat(histories, ignore_index=True)
    table = comparison_table(metrics, cfg.variants)
    if run_dir is not None:
        write_table(run_dir / "metrics.parquet", metrics)
        write_json(run_dir / "metrics.json", json.loads(metrics.to_json(orient="records")))
        write_table(run_dir / "history.parquet", history)
        write_table(run_dir / "comparison.csv", table.reset_index())
        with atomic_path(run_dir / "comparison.md") as tmp:
            Path(tmp).write_text(table_markdown(table))
        if cfg.figures:
            plot_latent_histograms({v: latents[(v, base_seed)] for v in cfg.variants},
                                   run_dir / "latent_histograms", dims=cfg.latent_dim)
            plot_metrics_over_epochs(metrics, run_dir / "metrics_over_epochs")
    return BinaryStudyResult(metrics, history, table, run_dir, models, latents)


# --------------------------------------------------------------------- figures
def _save(fig, stem: Path) -> None:
    for ext in ("png", "svg"):
        with atomic_path(stem.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=110, bbox_inches="tight")


def plot_latent_histograms(latents: dict, stem: str | Path, *, dims: int = 4,
                           split: str = "test", bins: int = 40) -> None:
    """Grid: one row per variant, one column per latent dimension, histograms of z stacked
    by true class. A representation wider than ``dims`` (the "none" variant's features)
    shows its ``dims`` dimensions of largest variance. ``latents``: variant -> arrays of
    :func:`latent_metrics`. Writes ``<stem>.png`` and ``<stem>.svg``."""
    import matplotlib

    matplotlib.use("Agg")
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
    _save(fig, Path(stem))
    plt.close(fig)


_EPOCH_PANELS = [
    ("test_acc", "test accuracy"),
    ("same_encoding_test", "same-encoding fraction"),
    ("bimodality_mean", "bimodality (mean)"),
    ("nc1", "NC1 (log)"),
    ("deepfool_rho", "DeepFool ‖r‖/‖x‖"),
    ("auroc", "AUROC (Mahalanobis)"),
]


def plot_metrics_over_epochs(metrics: pd.DataFrame, stem: str | Path) -> None:
    """Six panels (accuracy, same-encoding, bimodality, NC1, DeepFool, AUROC) over epochs,
    one line per variant (mean over seeds, band = ±1 std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (col, label) in zip(axes.ravel(), _EPOCH_PANELS, strict=True):
        for v, part in metrics.groupby("variant", sort=False):
            g = part.groupby("epoch")[col]
            m, s = g.mean(), g.std(ddof=1).fillna(0.0)
            ax.plot(m.index, m.values, marker="o", ms=3, label=v)
            ax.fill_between(m.index, m - s, m + s, alpha=0.2)
        if col == "nc1":
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, Path(stem))
    plt.close(fig)
