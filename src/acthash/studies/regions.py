"""The linear-region study (He et al. §"region diameter"): sizes of the linear regions
around training vs test points, and how many regions separate pairs of examples.

:func:`run_regions_study` trains an MLP on a dataset and, at chosen epochs (0 = init):

- **diameters** (``diameters.parquet``): for ``n_points`` training and test examples, the
  exact length of the linear region through the example along a unit direction -- towards
  its class centre (the training mean of its class, as in the original) or a random one --
  clipped to ``±t_max`` (the original walked ±5);
- **region counts** (``region_counts.parquet``): exact number of linear regions crossed by
  the segment between ``n_pairs`` same-class and ``n_pairs`` different-class test pairs,
  with the count per unit length;
- ``summary.csv`` (mean / median / std per epoch and group; for diameters the two-sided
  Mann-Whitney U p-value of train vs test) and histograms in ``figures/``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash._utils.run import run_transaction, save_figure, start_run_dir, write_table
from acthash.geometry.regions import region_segment, regions_between
from acthash.studies.configs import RegionsConfig

__all__ = ["RegionsConfig", "RegionsResult", "run_regions_study", "directions"]


@dataclass
class RegionsResult:
    run_dir: Path | None
    diameters: pd.DataFrame
    region_counts: pd.DataFrame
    summary: pd.DataFrame


def directions(x: torch.Tensor, y: torch.Tensor, centres: torch.Tensor, kind: str,
               seed: int = 0) -> torch.Tensor:
    """Unit directions (N, *shape): towards ``centres[y]`` or uniformly random."""
    if kind in ("centre", "center"):
        u = centres[y] - x
    else:
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(x.shape, generator=g, dtype=x.dtype)
    norm = u.reshape(len(u), -1).norm(dim=1).clamp_min(1e-12)
    return u / norm.view((-1,) + (1,) * (u.ndim - 1))


def _pairs(y: np.ndarray, n: int, same: bool, rng) -> np.ndarray:
    out = []
    tries = 0
    while len(out) < n and tries < 100 * max(n, 1):
        i, j = rng.integers(0, len(y), size=2)
        tries += 1
        if i != j and (y[i] == y[j]) == same:
            out.append((i, j))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def _summarize(diam: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import mannwhitneyu

    rows = []
    for (epoch, split), d in diam.groupby(["epoch", "split"]):
        e = diam[diam["epoch"] == epoch]
        tr, te = e[e["split"] == "train"]["length"], e[e["split"] == "test"]["length"]
        p = float(mannwhitneyu(tr, te).pvalue) if len(tr) and len(te) else np.nan
        rows.append({"epoch": epoch, "measure": "diameter", "group": split,
                     "mean": d["length"].mean(), "median": d["length"].median(),
                     "std": d["length"].std(), "n": len(d),
                     "fraction_at_t_max": float(d["clipped"].mean()),
                     "p_train_vs_test": p})
    for (epoch, kind), d in counts.groupby(["epoch", "pair"]):
        for col, name in (("n_regions", "regions_between"),
                          ("regions_per_unit", "regions_per_unit_length")):
            rows.append({"epoch": epoch, "measure": name, "group": kind,
                         "mean": d[col].mean(), "median": d[col].median(), "std": d[col].std(),
                         "n": len(d), "fraction_at_t_max": np.nan})
    return pd.DataFrame(rows)


def _hist_per_epoch(frame: pd.DataFrame, group_col: str, groups, values, xlabel: str,
                    ylabel: str, path: Path, epochs) -> None:
    """One histogram panel per epoch, one series per group; ``values(rows)`` -> numbers."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(epochs), figsize=(5 * len(epochs), 3.6), squeeze=False)
    for ax, e in zip(axes[0], epochs, strict=True):
        for g in groups:
            rows = frame[(frame["epoch"] == e) & (frame[group_col] == g)]
            ax.hist(values(rows), bins=30, alpha=0.6, label=g)
        ax.set_xlabel(xlabel)
        ax.set_title(f"epoch {e}")
        ax.legend()
    axes[0][0].set_ylabel(ylabel)
    save_figure(fig, path)


def _plot(diam: pd.DataFrame, counts: pd.DataFrame, figs: Path) -> None:
    epochs = sorted(diam["epoch"].unique())
    _hist_per_epoch(diam, "split", ("train", "test"),
                    lambda d: np.log10(d["length"].clip(lower=1e-8)),
                    "log10 region diameter along the line", "examples", figs / "diameters",
                    epochs)
    if len(counts):
        _hist_per_epoch(counts, "pair", ("same class", "different class"),
                        lambda d: d["n_regions"], "linear regions crossed between the pair",
                        "pairs", figs / "region_counts", epochs)


@run_transaction
def run_regions_study(cfg: RegionsConfig | None = None, *, out_dir: str | Path | None = None,
                      runs_root: str | Path = "runs", write: bool = True,
                      progress: bool = False, force: bool = False) -> RegionsResult:
    """Train on ``cfg.dataset`` and measure region diameters and region counts (exact)."""
    from acthash import data as datasets
    from acthash.models import build_model
    from acthash.train import resolve_device, seed_everything, train

    cfg = cfg or RegionsConfig()
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    resolve_device(cfg.device)  # a bad device fails before the study directory is made
    seed_everything(cfg.seed)
    model = build_model(cfg.model, ds.input_shape, ds.n_classes, **cfg.model_kwargs())
    run_dir = None
    if write:
        run_dir = start_run_dir(
            out_dir, runs_root, ("regions", cfg.dataset, f"s{cfg.seed}"), seed=cfg.seed,
            config={"study": "regions", **cfg.to_dict(), "checkpoints": cfg.epochs_to_measure()},
            force=force)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if cfg.sample_size is not None:  # the first N, so the network can fit them
        x_tr, y_tr = x_tr[: cfg.sample_size], y_tr[: cfg.sample_size]
    centres = torch.stack([x_tr[y_tr == c].mean(0) if (y_tr == c).any() else x_tr.mean(0)
                           for c in range(ds.n_classes)])
    rng = np.random.default_rng([cfg.seed, 11])
    pick_tr = np.sort(rng.permutation(len(x_tr))[: cfg.n_points])
    pick_te = np.sort(rng.permutation(len(x_te))[: cfg.n_points])
    pairs = {"same class": _pairs(y_te.numpy(), cfg.n_pairs, True, rng),
             "different class": _pairs(y_te.numpy(), cfg.n_pairs, False, rng)}
    snapshots: dict[int, torch.nn.Module] = {}

    def on_checkpoint(epoch, m):
        snapshots[epoch] = copy.deepcopy(m).cpu().eval()

    tcfg = replace(cfg, checkpoints=cfg.epochs_to_measure()).train_config()
    history = train(model, x_tr, y_tr, tcfg, on_checkpoint=on_checkpoint,
                    progress=progress).history
    diam_rows, count_rows = [], []
    for epoch, m in snapshots.items():
        for split, x, y, pick in (("train", x_tr, y_tr, pick_tr), ("test", x_te, y_te, pick_te)):
            xs, ys = x[pick], y[pick]
            u = directions(xs, ys, centres, cfg.direction, seed=cfg.seed)
            seg = region_segment(m, xs, u, t_max=cfg.t_max)
            df = seg.to_frame()
            df.insert(0, "index", pick)
            df.insert(0, "split", split)
            df.insert(0, "epoch", epoch)
            df["label"] = ys.numpy()
            df["direction"] = cfg.direction
            df["clipped"] = (seg.t_hi >= cfg.t_max) | (seg.t_lo <= -cfg.t_max)
            diam_rows.append(df)
        for kind, pr in pairs.items():
            if not len(pr):
                continue
            cr = regions_between(m, x_te[pr[:, 0]], x_te[pr[:, 1]], progress=progress)
            count_rows.append(pd.DataFrame({
                "epoch": epoch, "pair": kind, "i": pr[:, 0], "j": pr[:, 1],
                "n_regions": cr.n_regions, "length": cr.length,
                "regions_per_unit": (cr.n_regions - 1) / np.maximum(cr.length, 1e-12),
            }))
    diam = pd.concat(diam_rows, ignore_index=True)
    counts = pd.concat(count_rows, ignore_index=True) if count_rows else pd.DataFrame(
        columns=["epoch", "pair", "i", "j", "n_regions", "length", "regions_per_unit"])
    summary = _summarize(diam, counts)
    if run_dir is not None:
        write_table(run_dir / "history.parquet", history)
        write_table(run_dir / "diameters.parquet", diam)
        write_table(run_dir / "region_counts.parquet", counts)
        write_table(run_dir / "summary.csv", summary)
        _plot(diam, counts, run_dir / "figures")
    return RegionsResult(run_dir, diam, counts, summary)
