"""The local-complexity study (Humayun, Balestriero & Baraniuk 2024, "Deep networks always
grok"): how many neurons' hyperplanes cross a small cross-polytope around train, test and
random points, over log-spaced training checkpoints, for every seed x BatchNorm x label-noise
factor of :class:`~acthash.studies.configs.LocalComplexityConfig`.

**Criterion** (:func:`lc_verdict`, per BatchNorm x label-noise cell, curves averaged over
the seeds). The train LC (all layers) first descends, so its *ascent peak* is the checkpoint
after the largest rise ``LC(e*) - min_{e <= e*} LC(e)`` and the *trough* the minimum before
it. Let ``e_i`` be the interpolation epoch, the first checkpoint where the training accuracy
(on the labels trained on, noisy ones included) reaches ``0.99``. The curve *rises until
interpolation* when the peak is at least 5 % above the trough and at least 75 % of the rise
is done at ``e_i``; it *falls after* when the final value is at least 5 % below the peak and
below the value at ``e_i``. With train LC > test LC at the peak the verdict is *holds*,
otherwise *does not hold* (*not reached* when the model never interpolates).
``descent_first``: the trough is below 95 % of the initial value.

Outputs: ``lc.csv`` (seed, batchnorm, label_noise, epoch, set, layer, mean, std),
``accuracy.csv`` (train and test accuracy at every checkpoint), ``lc_exact.csv`` (the
sampled count against the exact one on 2-D slices, per checkpoint and layer, for the first
``n_exact`` train points), ``history.parquet``, ``verdict.csv`` and the figure
``lc_over_training``.
"""

from __future__ import annotations

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
from acthash.geometry.local_complexity import LocalComplexityCallback, plane_complexity_error
from acthash.studies.configs import LocalComplexityConfig

__all__ = ["LocalComplexityConfig", "LocalComplexityResult", "run_local_complexity_study",
           "lc_verdict"]

_FACTORS = ["batchnorm", "label_noise"]
INTERPOLATED = 0.99  # training accuracy that counts as interpolation
MARGIN = 1.05  # the peak must exceed the trough and the end by 5 %
DONE = 0.75  # share of the rise done at interpolation


@dataclass
class LocalComplexityResult:
    run_dir: Path | None
    lc: pd.DataFrame
    accuracy: pd.DataFrame
    history: pd.DataFrame
    verdict: pd.DataFrame
    exact: pd.DataFrame


def lc_verdict(lc: pd.DataFrame, accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per BatchNorm x label-noise cell: the train-LC peak, the interpolation epoch
    and the verdict of the module docstring's criterion (curves averaged over seeds)."""
    total = lc[lc["layer"] == "total"]
    rows = []
    for key, d in total.groupby(_FACTORS):
        curve = d.groupby(["set", "epoch"])["mean"].mean()
        train = curve.loc["train"].sort_index()
        test = (curve.loc["test"].reindex(train.index)
                if "test" in curve.index.get_level_values(0) else None)
        acc = accuracy.set_index(_FACTORS).loc[key].groupby("epoch")["train_acc"].mean()
        reached = acc.index[acc.to_numpy() >= INTERPOLATED]
        e_interp = int(reached[0]) if len(reached) else None
        values = train.to_numpy()
        running_min = np.minimum.accumulate(values)
        k_peak = int(np.argmax(values - running_min))
        k_trough = int(np.argmin(values[: k_peak + 1]))
        e_peak, e_trough = int(train.index[k_peak]), int(train.index[k_trough])
        peak, trough = float(values[k_peak]), float(values[k_trough])
        start, end = float(values[0]), float(values[-1])
        at_interp = float(train.loc[: e_interp].iloc[-1]) if e_interp is not None else np.nan
        rise = peak - trough
        rises = peak >= MARGIN * trough and e_interp is not None and (
            at_interp - trough >= DONE * rise)
        falls = e_interp is not None and MARGIN * end <= peak and end < at_interp
        above = test is not None and float(train.loc[e_peak]) > float(test.loc[e_peak])
        if e_interp is None:
            verdict = "not reached"
        else:
            verdict = "holds" if rises and falls and above else "does not hold"
        rows.append({
            "batchnorm": bool(key[0]), "label_noise": float(key[1]),
            "n_seeds": int(d["seed"].nunique()),
            "interpolation_epoch": e_interp, "trough_epoch": e_trough, "peak_epoch": e_peak,
            "train_lc_start": start, "train_lc_trough": trough,
            "train_lc_at_interpolation": at_interp, "train_lc_peak": peak,
            "train_lc_end": end,
            "test_lc_at_peak": float(test.loc[e_peak]) if test is not None else float("nan"),
            "descent_first": bool(trough < 0.95 * start),
            "rises_until_interpolation": bool(rises), "falls_after": bool(falls),
            "train_above_test_at_peak": bool(above),
            "criterion": (f"ascent peak >= {MARGIN:g} x trough with >= {DONE:.0%} of the rise "
                          f"done at interpolation; end <= peak / {MARGIN:g} and below its "
                          "value at interpolation; train > test at the peak"),
            "verdict": verdict})
    out = pd.DataFrame(rows)
    if len(out):  # None (never interpolated) stays missing, the others stay integers
        out["interpolation_epoch"] = out["interpolation_epoch"].astype("Int64")
    return out


@run_transaction
def run_local_complexity_study(cfg: LocalComplexityConfig | None = None, *,
                               out_dir: str | Path | None = None, runs_root: str | Path = "runs",
                               write: bool = True, progress: bool = False, force: bool = False
                               ) -> LocalComplexityResult:
    """Train one model per seed x BatchNorm x label noise on ``cfg.dataset`` and record local
    complexity and accuracy at log-spaced checkpoints (the study directory is a transaction;
    an existing ``out_dir`` is refused unless ``force``)."""
    from acthash import data as datasets
    from acthash.data.manipulate import noisy_labels
    from acthash.models import build_model
    from acthash.train import evaluate, seed_everything, train

    cfg = cfg or LocalComplexityConfig()
    if write and out_dir:
        check_out_dir(out_dir, force=force)
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    epochs = cfg.epochs_to_measure()
    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ("local-complexity", cfg.dataset,
                                                     "s" + "-".join(map(str, cfg.seed))),
                                seed=cfg.seed[0], config={"study": "local-complexity",
                                                          **cfg.to_dict(), "checkpoints": epochs},
                                force=force)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if cfg.sample_size is not None:
        x_tr, y_tr = x_tr[: cfg.sample_size], y_tr[: cfg.sample_size]
    n_dir = min(cfg.n_directions, int(np.prod(x_tr.shape[1:])))
    lc_parts, acc_rows, histories, exact_parts = [], [], [], []
    factors = cfg.factors()
    bar = progress_bar(enabled=progress, total=len(factors), desc="local complexity",
                       unit="model")
    for seed, bn, noise in factors:
        rng = np.random.default_rng([seed, 29])
        g = torch.Generator().manual_seed(seed)
        random = x_tr.mean(0) + x_tr.std(0) * torch.randn((cfg.n_points, *x_tr.shape[1:]),
                                                          generator=g, dtype=x_tr.dtype)
        sets = {"train": x_tr[rng.permutation(len(x_tr))[: cfg.n_points]],
                "test": x_te[rng.permutation(len(x_te))[: cfg.n_points]], "random": random}
        y_fit = noisy_labels(y_tr, noise, ds.n_classes, seed=seed)[0] if noise else y_tr
        kwargs = cfg.model_kwargs()
        if "batchnorm" in kwargs:
            kwargs["batchnorm"] = bn
        seed_everything(seed)
        model = build_model(cfg.model, ds.input_shape, ds.n_classes, **kwargs)
        callback = LocalComplexityCallback(sets, radius=cfg.radius, n_directions=n_dir,
                                           seed=seed)
        tag = {"seed": seed, "batchnorm": bn, "label_noise": noise}

        def on_checkpoint(epoch, m, callback=callback, y_fit=y_fit, tag=tag,
                          probe=sets["train"][: cfg.n_exact]):
            callback(epoch, m)
            if cfg.n_exact:
                err = plane_complexity_error(m, probe, radius=cfg.radius, seed=tag["seed"])
                exact_parts.append(err.assign(**tag, epoch=int(epoch)))
            acc_rows.append({**tag, "epoch": int(epoch),
                             "train_acc": evaluate(m, x_tr, y_fit, loss=cfg.loss)[1],
                             "test_acc": evaluate(m, x_te, y_te, loss=cfg.loss)[1]})

        tcfg = replace(cfg.train_config(loss=cfg.loss), seed=seed, checkpoints=epochs)
        history = train(model, x_tr, y_fit, tcfg, on_checkpoint=on_checkpoint).history
        lc_parts.append(callback.frame().assign(**tag))
        histories.append(history.assign(**tag))
        bar.update(1)
    bar.close()
    lc = _lead(pd.concat(lc_parts, ignore_index=True), ["seed", *_FACTORS])
    accuracy = pd.DataFrame(acc_rows)
    history = pd.concat(histories, ignore_index=True)
    verdict = lc_verdict(lc, accuracy)
    exact = (_lead(pd.concat(exact_parts, ignore_index=True), ["seed", *_FACTORS, "epoch"])
             if exact_parts else pd.DataFrame())
    if run_dir is not None:
        write_table(run_dir / "lc.csv", lc)
        write_table(run_dir / "accuracy.csv", accuracy)
        write_table(run_dir / "history.parquet", history)
        write_table(run_dir / "verdict.csv", verdict)
        if len(exact):
            write_table(run_dir / "lc_exact.csv", exact)
        _plot(lc, accuracy, run_dir / "figures" / "lc_over_training")
    return LocalComplexityResult(run_dir, lc, accuracy, history, verdict, exact)


def _lead(df: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """``df`` with the columns ``first`` moved to the front."""
    return df[first + [c for c in df.columns if c not in first]]


def _plot(lc: pd.DataFrame, accuracy: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    total = lc[lc["layer"] == "total"]
    cells = list(total.groupby(_FACTORS))
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 3.5), squeeze=False,
                             sharey=True)
    for ax, (key, d) in zip(axes[0], cells, strict=True):
        for name, dd in d.groupby("set"):
            m = dd.groupby("epoch")["mean"].agg(["mean", "std"])
            ax.errorbar(m.index + 1, m["mean"], yerr=m["std"].fillna(0), fmt="o-", ms=3,
                        label=f"{name} LC", capsize=2)
        acc = accuracy.set_index(_FACTORS).loc[key].groupby("epoch")["train_acc"].mean()
        twin = ax.twinx()
        twin.plot(acc.index + 1, acc.to_numpy(), "k:", label="train accuracy")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("training accuracy (dotted)", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("epoch + 1")
        ax.set_title(f"BatchNorm {'on' if key[0] else 'off'}, label noise {key[1]:g}",
                     fontsize=9)
    axes[0, 0].set_ylabel("neurons crossing the neighbourhood")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    save_figure(fig, path)
