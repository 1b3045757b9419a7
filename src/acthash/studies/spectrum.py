"""Neural spectrum alignment (Kopitkov & Indelman): the empirical NTK over training.

While a network trains (full batch), at chosen steps t the Gram matrix G_t of the
gradient-similarity kernel over the N training points (:func:`acthash.spectrum.ntk.ntk`, float64)
is eigen-decomposed, G_t = Σ λᵢ vᵢ vᵢᵀ (λ descending), and recorded:

- the top eigenvalues λ₁..λ_m;
- E_k(φ) = Σ_{i≤k} (vᵢᵀφ)² / ‖φ‖² for the target y, the output f_t and the residual r_t,
  for several k (for C outputs, φ is (N, C) and both sums run over the columns too);
- the kernel-target alignment A = yᵀGy / (‖G‖_F ‖y‖²) (tr(YᵀGY) for C outputs);
- the relative Frobenius distance ‖G_t − G_0‖_F / ‖G_0‖_F.

Targets are centred (zero mean per column) so that a constant shift does not count as
alignment. The residual is f_t − y for the squared loss and softmax(f_t) − onehot(y) (the
loss gradient w.r.t. the logits) for cross-entropy. Classifiers use the trace kernel, or
per-logit kernels (``kernel="per-logit"``: kernel c against column c, measures averaged
over the logits).

Tasks: ``"image"`` — a grayscale image (matplotlib's bundled ``grace_hopper.jpg`` by
default) regressed from pixel coordinates in [-1, 1]², intensities standardized, scalar
output, squared loss; or any classification dataset name of :mod:`acthash.data`
(``"digits"``, ...) on a class-balanced subset of ``n_train`` training examples.

:mod:`acthash.spectrum.measures` holds these measures and :func:`track_spectrum` (re-exported
here); this module is the study driver. :func:`run_spectrum_study` trains one network per variant (depth, learning-rate schedule,
optimizer) and writes a self-describing run directory with tables and figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.run import (
    atomic_path,
    run_transaction,
    save_array,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.errors import InputError, MissingFileError
from acthash.spectrum.measures import (
    SpectrumTrace,
    eig_desc,
    energy_fraction,
    kernel_alignment,
    track_spectrum,
)
from acthash.studies.configs import COMPARISONS, SpectrumConfig

__all__ = ["SpectrumConfig", "SpectrumTrace", "SpectrumStudy", "energy_fraction",
           "kernel_alignment", "eig_desc", "track_spectrum", "load_image_task",
           "run_spectrum_study", "spectrum_variants", "load_spectrum_study", "summary_table",
           "COMPARISONS"]



# ---------------------------------------------------------------------------------------
# tasks


def load_image_task(image: str = "grace_hopper.jpg", grid: int = 32):
    """(x (grid², 2) pixel coordinates in [-1, 1]², y (grid²,) standardized intensity).

    ``image`` is a file name in matplotlib's ``mpl-data/sample_data`` or a path to an image
    file; it is converted to grayscale and resized (bilinear) to grid x grid pixels.
    """
    from PIL import Image

    path = Path(image)
    if not path.is_file():
        import matplotlib.cbook as cbook

        try:
            path = Path(cbook.get_sample_data(image, asfileobj=False))
        except (FileNotFoundError, ValueError, OSError):
            path = None
        if path is None or not path.is_file():
            raise MissingFileError(
                f"image {image!r} is neither a file nor one of matplotlib's sample images "
                "(e.g. 'grace_hopper.jpg'); give a path to a grayscale/RGB image")
    if grid < 2:
        raise InputError(f"grid must be >= 2 pixels, got {grid}")
    with Image.open(path) as im:
        img = np.asarray(im.convert("L").resize((grid, grid), Image.BILINEAR), dtype=np.float64)
    img = (img - img.mean()) / (img.std() + 1e-12)
    c = np.linspace(-1.0, 1.0, grid)
    rr, cc = np.meshgrid(c, c, indexing="ij")
    x = np.stack([rr.ravel(), cc.ravel()], 1)
    return (torch.as_tensor(x, dtype=torch.float32),
            torch.as_tensor(img.ravel(), dtype=torch.float32))


# ---------------------------------------------------------------------------------------
# the study


def spectrum_variants(cfg: SpectrumConfig) -> list[SpectrumConfig]:
    """The base config and, per comparison axis, the base with each of the axis's values
    (duplicates removed, base first)."""
    cfg.validate()
    out = [cfg]
    for axis in cfg.compare:
        for v in COMPARISONS[axis]:
            c = replace(cfg, **{axis: v})
            if all(c.label() != o.label() for o in out):
                out.append(c)
    return out


def _build(cfg: SpectrumConfig, in_features: int, n_out: int) -> nn.Module:
    from acthash.models import MLP
    from acthash.train import seed_everything

    seed_everything(cfg.seed)
    return MLP(in_features, [cfg.width] * cfg.depth, n_classes=n_out,
               activation=cfg.activation)


def _task_data(cfg: SpectrumConfig):
    """(x, y, meta) for the task."""
    if cfg.is_image:
        x, y = load_image_task(cfg.image, cfg.grid)
        idx = [int(round(r * (cfg.grid - 1))) * cfg.grid + int(round(c * (cfg.grid - 1)))
               for r, c in cfg.slice_points]
        return x, y, {"task": "image", "image": cfg.image, "grid": cfg.grid, "n": len(x),
                      "slice_index": idx, "n_out": 1}
    from acthash import data as datasets
    from acthash.data.manipulate import subsample

    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    n = min(cfg.n_train, len(ds.y_train))
    idx = subsample(ds.y_train, n, balanced=True, seed=cfg.seed)
    x = ds.x_train[idx].reshape(n, -1)
    y = ds.y_train[idx]
    return x, y, {"task": cfg.dataset, "n": n, "n_out": ds.n_classes, "slice_index": [],
                  "dataset": ds.describe()}


@dataclass
class SpectrumStudy:
    records: pd.DataFrame  # one row per variant and recorded step
    eigenvalues: pd.DataFrame  # variant, step, index, eigenvalue
    history: pd.DataFrame  # variant, step, lr, loss
    arrays: dict  # variant -> arrays of :class:`SpectrumTrace`
    meta: dict
    run_dir: Path | None


@run_transaction
def run_spectrum_study(cfg: SpectrumConfig | None = None, *, out_dir: str | Path | None = None,
                       runs_root: str | Path = "runs", write: bool = True,
                       progress: bool = False, force: bool = False,
                       figure_formats: Sequence[str] = ("png", "svg")) -> SpectrumStudy:
    """Train every variant of ``cfg`` and record its NTK spectrum.

    With ``write`` (default) the run directory gets config.json, environment.json,
    task.json, records.{parquet,csv}, eigenvalues.parquet, history.parquet,
    arrays/<variant>.npz (eigenvectors, kernel slices, outputs at the first and last record)
    and figures/ (one file per figure and format in ``figure_formats``; empty = none).
    """
    from acthash.train import resolve_device

    cfg = cfg or SpectrumConfig()
    variants = spectrum_variants(cfg)
    x, y, meta = _task_data(cfg)
    device = resolve_device(cfg.device)
    x, y = x.to(device), y.to(device)
    if cfg.resolved_loss() == "mse" and not cfg.is_image:
        y_fit = F.one_hot(y, meta["n_out"]).float()
    else:
        y_fit = y
    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ("spectrum", cfg.dataset, f"s{cfg.seed}"),
                                seed=cfg.seed, config={
                                    "study": "spectrum", **cfg.to_dict(),
                                    "variants": [v.label() for v in variants],
                                    "record_steps": cfg.record_steps(),
                                    "decay_steps": cfg.decay_steps(),
                                    "resolved_loss": cfg.resolved_loss()},
                                force=force)
        write_json(run_dir / "task.json", meta)
    recs, eigs, hists, arrays = [], [], [], {}
    for v in variants:
        model = _build(v, x.shape[1], meta["n_out"]).to(device)
        trace = track_spectrum(
            model, x, y_fit, steps=v.epochs, record_at=v.record_steps(),
            optimizer=v.optimizer, lr=v.lr if v.optimizer == "gd" else v.adam_lr,
            schedule=v.schedule, decay_steps=v.decay_steps(), gamma=v.lr_gamma,
            loss=v.resolved_loss(), ks=v.ks, n_eigs=v.n_eigs,
            n_vectors=v.n_vectors if v.is_image else 0,
            slice_index=meta["slice_index"], method=v.method, kernel=v.kernel,
            progress=progress)
        info = {"variant": v.label(), "depth": v.depth, "optimizer": v.optimizer,
                "schedule": v.schedule}
        for df, acc in ((trace.records, recs), (trace.eigenvalues, eigs),
                        (trace.history, hists)):
            acc.append(df.assign(**info)[list(info) + list(df.columns)])
        arrays[v.label()] = trace.arrays
    study = SpectrumStudy(pd.concat(recs, ignore_index=True), pd.concat(eigs, ignore_index=True),
                          pd.concat(hists, ignore_index=True), arrays,
                          {**meta, "variants": [v.label() for v in variants]}, run_dir)
    if write:
        write_table(run_dir / "records.parquet", study.records)
        write_table(run_dir / "records.csv", study.records)
        write_table(run_dir / "eigenvalues.parquet", study.eigenvalues)
        write_table(run_dir / "history.parquet", study.history)
        for name, arrs in arrays.items():
            with atomic_path(run_dir / "arrays" / f"{name}.npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrs)
        if cfg.is_image:
            save_array(run_dir / "arrays" / "target.npy", y.cpu().numpy().reshape(cfg.grid, cfg.grid))
        if figure_formats:
            from acthash.studies.spectrum_plots import plot_study

            plot_study(study, cfg, run_dir / "figures", target=y.cpu(),
                       formats=tuple(figure_formats))
    return study


def load_spectrum_study(run_dir: str | Path) -> tuple[SpectrumStudy, SpectrumConfig]:
    """Read a study back from its run directory (tables, arrays and config)."""
    import json

    run_dir = Path(run_dir)
    if not (run_dir / "records.parquet").is_file():
        raise MissingFileError(f"{run_dir} holds no spectrum study (records.parquet missing); "
                                "give a directory written by `acthash study spectrum`")
    conf = json.loads((run_dir / "config.json").read_text())
    # the run directory's config.json adds derived keys beside the config's own fields
    derived = {"study", "variants", "record_steps", "decay_steps", "resolved_loss"}
    cfg = SpectrumConfig.from_dict({k: v for k, v in conf.items() if k not in derived})
    meta = json.loads((run_dir / "task.json").read_text())
    arrays = {}
    for name in conf["variants"]:
        with np.load(run_dir / "arrays" / f"{name}.npz") as z:
            arrays[name] = {k: z[k] for k in z.files}
    study = SpectrumStudy(pd.read_parquet(run_dir / "records.parquet"),
                          pd.read_parquet(run_dir / "eigenvalues.parquet"),
                          pd.read_parquet(run_dir / "history.parquet"), arrays,
                          {**meta, "variants": conf["variants"]}, run_dir)
    return study, cfg


def summary_table(study: SpectrumStudy, k: int | None = None) -> pd.DataFrame:
    """First and last recorded values per variant: loss, alignment, E_k(target/output/
    residual), relative kernel change."""
    r = study.records
    ks = sorted({int(c[1:].split("_")[0]) for c in r.columns if c.startswith("E")})
    k = k if k is not None else ks[min(2, len(ks) - 1)]
    rows = []
    for name, df in r.groupby("variant", sort=False):
        a, b = df.iloc[0], df.iloc[-1]
        rows.append({"variant": name, "loss_start": a["loss"], "loss_end": b["loss"],
                     "align_start": a["alignment"], "align_end": b["alignment"],
                     f"E{k}_target_start": a[f"E{k}_target"], f"E{k}_target_end": b[f"E{k}_target"],
                     f"E{k}_output_end": b[f"E{k}_output"],
                     f"E{k}_residual_end": b[f"E{k}_residual"], "rel_frob_end": b["rel_frob"]})
    return pd.DataFrame(rows)

