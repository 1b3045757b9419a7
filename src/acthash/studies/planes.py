"""The plane study (Hanin & Rolnick 2019, "Complexity of linear regions in deep networks"):
exact counts of linear regions on 2-D planes through triples of inputs, against width and
depth, at initialization and after training.

:func:`run_planes_study` builds a ReLU MLP for every width x depth, partitions ``n_planes``
planes through random triples of test points (the same triples for every model) with
:func:`acthash.geometry.plane_partition`, trains the model and partitions them again; for
every seed x init x BatchNorm x label-noise cell of the config.

**Criterion** (Hanin & Rolnick: the number of regions a 2-D slice meets grows like ``N^2`` in
the number of neurons ``N`` and barely depends on depth). Fit ``log count = a + b log N +
c depth`` over all models, planes and seeds of one cell at one epoch: *holds* when the
exponent ``b`` lies in ``[1.5, 2.5]`` and one extra layer at fixed ``N`` changes the count by
less than a factor ``1.5`` (``|c| < log 1.5``); otherwise *does not hold*. Outputs:
``counts.csv`` (one row per model, epoch and plane), ``summary.csv`` (the fit and verdict
per cell and epoch) and region figures of the first plane for the widest, deepest model of
the first cell (init vs trained).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash._utils.run import (
    check_out_dir,
    progress_bar,
    run_transaction,
    save_figure,
    start_run_dir,
    write_table,
)
from acthash.geometry.planes import plane_partition
from acthash.studies.configs import PlanesConfig

__all__ = ["PlanesConfig", "PlanesResult", "run_planes_study", "hanin_rolnick_verdict",
           "he_init"]

_CELL = ["init", "batchnorm", "label_noise"]


@dataclass
class PlanesResult:
    run_dir: Path | None
    counts: pd.DataFrame
    summary: pd.DataFrame


def he_init(model: torch.nn.Module) -> torch.nn.Module:
    """Redraw every ``nn.Linear`` weight from a normal of variance ``2 / fan_in`` (He et al.,
    in place, from torch's global generator); biases are left as drawn."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return model


def hanin_rolnick_verdict(counts: pd.DataFrame) -> pd.DataFrame:
    """Per factor cell (the columns of ``init``, ``batchnorm``, ``label_noise`` present) and
    epoch: the fit ``log count = a + b log N + c depth`` (least squares over every model,
    plane and seed), the exponent ``b``, the per-layer factor ``exp(c)`` and the verdict."""
    rows = []
    by = [c for c in _CELL if c in counts.columns] + ["epoch"]
    for key, d in counts.groupby(by):
        key = key if isinstance(key, tuple) else (key,)
        cell = dict(zip(by, key, strict=True))
        epoch = cell.pop("epoch")
        design = np.stack([np.ones(len(d)), np.log(d["neurons"]), d["depth"]], axis=1)
        coef, *_ = np.linalg.lstsq(design, np.log(d["n_regions"].to_numpy(float)), rcond=None)
        if d["depth"].nunique() < 2:
            coef[2] = 0.0
        exponent, per_layer = float(coef[1]), float(np.exp(coef[2]))
        holds = 1.5 <= exponent <= 2.5 and abs(coef[2]) < np.log(1.5)
        rows.append({**cell, "epoch": int(epoch), "n_partitions": len(d),
                     "exponent_in_neurons": exponent,
                     "factor_per_extra_layer": per_layer,
                     "criterion": "exponent in [1.5, 2.5] and per-layer factor in (1/1.5, 1.5)",
                     "verdict": "holds" if holds else "does not hold"})
    return pd.DataFrame(rows)


@run_transaction
def run_planes_study(cfg: PlanesConfig | None = None, *, out_dir: str | Path | None = None,
                     runs_root: str | Path = "runs", write: bool = True,
                     progress: bool = False, force: bool = False) -> PlanesResult:
    """Exact region counts on planes through test triples, per width x depth, init vs trained.
    The study directory is a transaction (``INCOMPLETE`` until done; an existing ``out_dir``
    is refused unless ``force``)."""
    from acthash import data as datasets
    from acthash.data.manipulate import noisy_labels
    from acthash.models import build_model
    from acthash.train import seed_everything, train

    cfg = cfg or PlanesConfig()
    if write and out_dir:
        check_out_dir(out_dir, force=force)
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ("planes", cfg.dataset, "s" + "-".join(
            map(str, cfg.seed))), seed=cfg.seed[0], config={"study": "planes", **cfg.to_dict()},
                                force=force)
    x_tr, y_tr, x_te = ds.x_train, ds.y_train, ds.x_test
    if cfg.sample_size is not None:
        x_tr, y_tr = x_tr[: cfg.sample_size], y_tr[: cfg.sample_size]
    rng = np.random.default_rng([cfg.seed[0], 23])
    triples = [rng.choice(len(x_te), size=3, replace=False) for _ in range(cfg.n_planes)]
    rows, figure_parts = [], {}
    at_init: dict[tuple, list[dict]] = {}  # epoch-0 rows of each model, shared by noise levels
    grid = [(cell, w, d) for cell in cfg.factors() for d in cfg.depth for w in cfg.width]
    first = cfg.factors()[0]
    bar = progress_bar(enabled=progress, total=len(grid), desc="planes", unit="model")
    for (seed, init, bn, noise), width, depth in grid:
        y_fit = noisy_labels(y_tr, noise, ds.n_classes, seed=seed)[0] if noise else y_tr
        tcfg = replace(cfg.train_config(), seed=seed, checkpoints=[0, cfg.epochs])
        seed_everything(seed)
        model = build_model("mlp", ds.input_shape, ds.n_classes, width=width, depth=depth,
                            batchnorm=bn)
        if init == "he":
            he_init(model)
        snaps: dict[int, torch.nn.Module] = {}
        train(model, x_tr, y_fit, tcfg,
              on_checkpoint=lambda e, m, s=snaps: s.__setitem__(e, copy.deepcopy(m).cpu()))
        for epoch, m in sorted(snaps.items()):
            model_key = (seed, init, bn, width, depth)
            if epoch == 0 and model_key in at_init:  # the labels play no part before training
                rows.extend({**r, "label_noise": noise} for r in at_init[model_key])
                continue
            done = []
            for k, tri in enumerate(triples):
                part = plane_partition(m, x_te[tri].double(), margin=cfg.margin,
                                       max_regions=cfg.max_regions)
                done.append({"seed": seed, "init": init, "batchnorm": bn, "label_noise": noise,
                             "width": width, "depth": depth, "neurons": width * depth,
                             "epoch": epoch, "plane": k, "n_regions": part.n_regions,
                             "euler_ok": part.euler()["ok"],
                             "boundary_segments": len(part.boundary)})
                if k == 0 and (seed, init, bn, noise) == first and (width, depth) == (
                        max(cfg.width), max(cfg.depth)):
                    figure_parts[epoch] = part
            rows.extend(done)
            if epoch == 0:
                at_init[model_key] = done
        bar.update(1)
    bar.close()
    counts = pd.DataFrame(rows)
    summary = hanin_rolnick_verdict(counts)
    if run_dir is not None:
        write_table(run_dir / "counts.csv", counts)
        write_table(run_dir / "summary.csv", summary)
        _plot(counts, figure_parts, run_dir / "figures")
    return PlanesResult(run_dir, counts, summary)


def _plot(counts: pd.DataFrame, parts: dict, figs: Path) -> None:
    import matplotlib.pyplot as plt

    from acthash.geometry.plane_plots import plot_plane_strip

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    first = counts.iloc[0]
    counts = counts[(counts[_CELL] == first[_CELL]).all(axis=1)]
    mean = counts.groupby(["epoch", "depth", "neurons"])["n_regions"].mean().reset_index()
    for (epoch, depth), d in mean.groupby(["epoch", "depth"]):
        ax.loglog(d["neurons"], d["n_regions"], "o-" if epoch == 0 else "s--",
                  label=f"depth {depth}, epoch {epoch}")
    ax.set_title(f"init {first['init']}, BatchNorm {'on' if first['batchnorm'] else 'off'}, "
                 f"label noise {first['label_noise']:g}", fontsize=8)
    ax.set_xlabel("neurons N")
    ax.set_ylabel("regions on the plane")
    ax.legend(fontsize=7)
    save_figure(fig, figs / "counts_vs_neurons")
    if parts:
        axes = plot_plane_strip([parts[e] for e in sorted(parts)],
                                [f"epoch {e}" for e in sorted(parts)])
        save_figure(axes[0].figure, figs / "plane_regions")
