"""The OOD study (``acthash study ood``): neural-code detectors against the standard baselines
on held-out classes, permuted, inverted and noise images, with a built-in sanity check, and
the memorisation study (flipped labels found by their codes' neighbours).

Per seed, an MLP is trained on ``in_classes`` of the dataset; a seeded ``val_fraction`` of
those training images is kept aside. Each detector of :mod:`acthash.ood` is fitted on the
remaining training images and scores the in-distribution (ID) test set, the validation set
and every OOD set; the metrics are those of :func:`acthash.ood.ood_metrics`. **Sanity
check**: validation vs test are two samples of one distribution, so every detector must give
them an AUROC of 0.5 ± ``sanity_tolerance`` (mean over seeds); otherwise the results are
written and :class:`~acthash.errors.StudyError` names the detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash._utils.run import (
    check_out_dir,
    progress_bar,
    run_transaction,
    save_array,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.errors import ConfigError, StudyError
from acthash.studies.configs import OOD_DETECTORS, OOD_SHIFTS, OODStudyConfig

__all__ = ["OODStudyConfig", "OOD_SHIFTS", "OOD_DETECTORS", "OODStudyResult", "run_ood_study",
           "ood_sets", "summarize", "metric_table"]

_K_DETECTORS = ("hamming-knn", "hamming-knn-class", "hamming-knn-layers", "feature-knn")


@dataclass
class OODStudyResult:
    """results: one row per (seed, detector, ood_set) with auroc, aupr_in, aupr_out, fpr95;
    summary: their mean and std over seeds; sanity: one row per (seed, detector) with the
    validation-vs-test AUROC; memorization: one row per (seed, score) with the flip AUROC;
    scores: {detector: {split or OOD set: scores}} of the first seed."""

    run_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    sanity: pd.DataFrame
    memorization: pd.DataFrame
    scores: dict


def ood_sets(names, x_in: torch.Tensor, x_held: torch.Tensor | None, *, input_range,
             seed: int = 0) -> dict[str, torch.Tensor]:
    """The OOD sets by name, each shaped like ``x_in``: ``held-out`` (``x_held``, the images of
    the classes not trained on), ``permuted`` (one fixed pixel permutation), ``inverted``
    (lo + hi − x), ``uniform`` noise over the input range, ``gaussian`` noise with the ID
    set's mean and std, clipped to the range, or a registry dataset's test images resized
    (:func:`acthash.binary.shifted_inputs`)."""
    from acthash.binary.measures import shifted_inputs

    lo, hi = float(input_range[0]), float(input_range[1])
    out = {}
    for name in names:
        if name == "held-out":
            if x_held is None or len(x_held) == 0:
                raise ConfigError("the held-out OOD set needs classes outside in_classes; "
                                  "train on fewer classes or drop 'held-out' from ood_sets")
            out[name] = x_held
        elif name == "inverted":
            out[name] = lo + hi - x_in
        elif name == "gaussian":
            gen = torch.Generator().manual_seed(int(seed))
            z = torch.randn(x_in.shape, generator=gen)
            out[name] = (x_in.mean() + x_in.std() * z).clamp(lo, hi)
        else:  # "permuted", "uniform" or a dataset name
            out[name] = shifted_inputs(name, x_in, seed=seed, input_range=(lo, hi))
    return out


def _train_mlp(cfg: OODStudyConfig, input_shape, n_classes, x, y, seed: int, epochs: int):
    from acthash.models import build_model
    from acthash.train import TrainConfig, seed_everything, train

    seed_everything(seed)
    model = build_model("mlp", input_shape, n_classes, widths=list(cfg.width))
    train(model, x, y, TrainConfig(epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                                   seed=seed, device=cfg.device))
    return model.eval()


def _memorization(cfg: OODStudyConfig, ds, seed: int) -> list[dict]:
    """Flip AUROCs of the isolation scores and the per-example loss for one seed."""
    from acthash.core.capture import neural_codes
    from acthash.data.manipulate import noisy_labels
    from acthash.ood import flip_auroc, label_isolation_scores, per_example_loss

    x, y = ds.x_train, ds.y_train
    if cfg.train_size is not None:
        x, y = x[: cfg.train_size], y[: cfg.train_size]
    y_noisy, flipped = noisy_labels(y, cfg.label_noise, ds.n_classes, seed=seed)
    model = _train_mlp(cfg, ds.input_shape, ds.n_classes, x, y_noisy, seed,
                       cfg.memorization_epochs)
    codes = neural_codes(model, x)
    with torch.no_grad():
        fits = (model(x).argmax(1) == y_noisy).numpy()
    mask = np.zeros(len(y), bool)
    mask[flipped] = True
    scores = {
        "code disagreement": label_isolation_scores(codes, y_noisy.numpy(),
                                                    k=cfg.memorization_k),
        "code nearest same-label": label_isolation_scores(codes, y_noisy.numpy(),
                                                          method="nearest-same"),
        "per-example loss": per_example_loss(model, x, y_noisy),
    }
    return [{"seed": seed, "score": name, "auroc": flip_auroc(s, mask),
             "n_train": len(y), "n_flipped": int(mask.sum()),
             "flipped_fitted": float(fits[mask].mean()),
             "clean_fitted": float(fits[~mask].mean())} for name, s in scores.items()]


def summarize(results: pd.DataFrame, keys=("ood_set", "detector"),
              metrics=("auroc", "aupr_in", "aupr_out", "fpr95")) -> pd.DataFrame:
    """Mean and std over seeds (``<metric>_mean``, ``<metric>_std``; std NaN with one seed)
    per ``keys``, in the order of first appearance."""
    keys = list(keys)
    g = results.groupby(keys, sort=False)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_seeds"] = g.size()
    return out.reset_index()


def metric_table(summary: pd.DataFrame, metric: str = "auroc", rows: str = "detector",
                 cols: str = "ood_set", digits: int = 3) -> pd.DataFrame:
    """A (rows × cols) table of strings: ``mean ± std`` with two or more seeds, else the
    mean."""
    def cell(r):
        m, s = r[f"{metric}_mean"], r[f"{metric}_std"]
        return f"{m:.{digits}f}" if r["n_seeds"] < 2 or np.isnan(s) else (
            f"{m:.{digits}f} ± {s:.{digits}f}")

    df = summary.assign(cell=summary.apply(cell, axis=1))
    order_r = list(dict.fromkeys(df[rows]))
    order_c = list(dict.fromkeys(df[cols]))
    return df.pivot(index=rows, columns=cols, values="cell").loc[order_r, order_c]


@run_transaction
def run_ood_study(cfg: OODStudyConfig | None = None, *, out_dir=None, runs_root="runs",
                  progress: bool = True, force: bool = False) -> OODStudyResult:
    """Run the study (see the module docstring); writes results.parquet, summary.csv,
    sanity.csv, memorization.csv, scores_seed<first>.npz and the figures into the study
    directory, then raises StudyError if the sanity check failed (the directory then keeps
    its ``INCOMPLETE`` marker, status failed, with the results beside it). An existing
    ``out_dir`` is refused unless ``force``."""
    from acthash import data as datasets
    from acthash.data.manipulate import train_val_split
    from acthash.ood import make_detector, ood_metrics
    from acthash.ood.metrics import auroc_ood
    from acthash.train import evaluate

    cfg = cfg or OODStudyConfig()
    if out_dir:
        check_out_dir(out_dir, force=force)
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    classes = sorted(set(int(c) for c in cfg.in_classes))
    if classes[0] < 0 or classes[-1] >= ds.n_classes:
        raise ConfigError(f"in_classes {classes} must lie in 0..{ds.n_classes - 1}")
    run_dir = start_run_dir(out_dir, runs_root, ("ood", cfg.dataset), config=cfg.to_dict(),
                            seed=cfg.seed[0], force=force)
    remap = torch.full((ds.n_classes,), -1, dtype=torch.long)
    remap[classes] = torch.arange(len(classes))
    in_tr = remap[ds.y_train] >= 0
    in_te = remap[ds.y_test] >= 0
    x_id, y_id = ds.x_train[in_tr], remap[ds.y_train[in_tr]]
    x_te, y_te = ds.x_test[in_te], remap[ds.y_test[in_te]]
    if cfg.train_size is not None:
        x_id, y_id = x_id[: cfg.train_size], y_id[: cfg.train_size]
    if cfg.test_size is not None:
        x_te, y_te = x_te[: cfg.test_size], y_te[: cfg.test_size]
    x_held = ds.x_test[~in_te][: len(x_te)]
    input_range = (float(ds.x_train.min()), float(ds.x_train.max()))
    shifted = ood_sets(cfg.ood_sets, x_te, x_held, input_range=input_range, seed=0)

    rows, sanity, first_scores = [], [], {}
    bar = progress_bar(total=len(cfg.seed) * len(cfg.detectors), enabled=progress,
                       desc="ood", unit="detector")
    with bar:
        for seed in cfg.seed:
            tr, val = train_val_split(len(x_id), cfg.val_fraction, seed=seed)
            model = _train_mlp(cfg, ds.input_shape, len(classes), x_id[tr], y_id[tr], seed,
                               cfg.epochs)
            _, test_acc = evaluate(model, x_te, y_te)
            for name in cfg.detectors:
                opts = {"k": cfg.k} if name in _K_DETECTORS else {}
                det = make_detector(name, **opts).fit(model, (x_id[tr], y_id[tr]))
                s_te, s_val = det.score(x_te), det.score(x_id[val])
                sanity.append({"seed": seed, "detector": name,
                               "auroc": auroc_ood(s_te, s_val), "n_val": len(val),
                               "n_test": len(x_te)})
                kept = {"test": s_te, "val": s_val}
                for set_name, x_o in shifted.items():
                    s_o = det.score(x_o)
                    kept[set_name] = s_o
                    rows.append({"seed": seed, "detector": name, "ood_set": set_name,
                                 "test_acc": test_acc, **ood_metrics(s_te, s_o)})
                if seed == cfg.seed[0]:
                    first_scores[name] = kept
                bar.update(1)
    results = pd.DataFrame(rows)
    sanity_df = pd.DataFrame(sanity)
    summary = summarize(results)
    mem_rows = []
    if cfg.label_noise > 0:
        for seed in progress_bar(cfg.seed, enabled=progress, desc="memorization"):
            mem_rows += _memorization(cfg, ds, seed)
    memorization = pd.DataFrame(mem_rows)

    write_table(run_dir / "results.parquet", results)
    write_table(run_dir / "summary.csv", summary)
    write_table(run_dir / "sanity.csv", sanity_df)
    if len(memorization):
        write_table(run_dir / "memorization.csv", memorization)
    flat = {f"{d}|{s}": v for d, per in first_scores.items() for s, v in per.items()}
    with open(run_dir / f"scores_seed{cfg.seed[0]}.npz", "wb") as f:
        np.savez(f, **flat)
    save_array(run_dir / "in_classes.npy", np.asarray(classes))
    if cfg.figures:
        from acthash._utils.run import save_figure
        from acthash.studies.ood_plots import plot_roc_curves, plot_score_histograms

        save_figure(plot_roc_curves(first_scores), run_dir / "roc_curves")
        save_figure(plot_score_histograms(first_scores), run_dir / "score_histograms")
    means = sanity_df.groupby("detector", sort=False)["auroc"].mean()
    failed = {d: float(a) for d, a in means.items() if abs(a - 0.5) > cfg.sanity_tolerance}
    write_json(run_dir / "sanity.json", {"tolerance": cfg.sanity_tolerance,
                                         "mean_auroc": {d: float(a) for d, a in means.items()},
                                         "failed": failed})
    if failed:
        worst = ", ".join(f"{d} (AUROC {a:.3f})" for d, a in failed.items())
        raise StudyError(
            f"sanity check failed: {worst} told the in-distribution validation set from the "
            f"test set (allowed 0.5 ± {cfg.sanity_tolerance}, mean over {len(cfg.seed)} "
            f"seeds); the detector reads something other than the distribution, or the "
            f"splits are too small (use more seeds or a larger test set); results in {run_dir}")
    return OODStudyResult(run_dir, results, summary, sanity_df, memorization, first_scores)
