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

:func:`run_spectrum_study` trains one network per variant (depth, learning-rate schedule,
optimizer) and writes a self-describing run directory with tables and figures.
"""

from __future__ import annotations

import math
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
    progress_bar,
    save_array,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.errors import DivergenceError, InputError, MissingFileError
from acthash.spectrum.ntk import ntk
from acthash.studies.configs import COMPARISONS, SpectrumConfig

__all__ = ["SpectrumConfig", "SpectrumTrace", "SpectrumStudy", "energy_fraction",
           "kernel_alignment", "eig_desc", "track_spectrum", "load_image_task",
           "run_spectrum_study", "spectrum_variants", "load_spectrum_study", "summary_table",
           "COMPARISONS"]



# ---------------------------------------------------------------------------------------
# measures


def eig_desc(g: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (N,) and eigenvectors (N, N) (columns) of a symmetric matrix, λ descending."""
    g = np.asarray(g, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise InputError(f"expected a square matrix, got shape {g.shape}")
    w, v = np.linalg.eigh((g + g.T) / 2)
    return w[::-1].copy(), v[:, ::-1].copy()


def energy_fraction(vectors: np.ndarray, phi: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """E_k(φ) for each k: share of ‖φ‖² in the span of the first k columns of ``vectors``.

    vectors : (N, m) orthonormal columns, most important first
    phi : (N,) or (N, C) (the sums then also run over the C columns)
    Returns (len(ks),) values in [0, 1]; k larger than m counts all m columns.
    """
    v = np.asarray(vectors, dtype=np.float64)
    p = np.asarray(phi, dtype=np.float64).reshape(len(v), -1)
    total = float((p**2).sum())
    if total == 0:
        return np.full(len(ks), np.nan)
    proj = ((v.T @ p) ** 2).sum(1)  # (m,) energy per eigenvector
    cum = np.cumsum(proj)
    out = []
    for k in ks:
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        out.append(cum[min(k, len(cum)) - 1] / total)
    return np.asarray(out)


def kernel_alignment(g: np.ndarray, y: np.ndarray) -> float:
    """A = tr(Yᵀ G Y) / (‖G‖_F ‖Y‖_F²); y (N,) or (N, C)."""
    g = np.asarray(g, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(g), -1)
    return float(np.einsum("nc,nm,mc->", y, g, y) / (np.linalg.norm(g) * (y**2).sum()))


# ---------------------------------------------------------------------------------------
# tracking one training run


@dataclass
class SpectrumTrace:
    """What :func:`track_spectrum` recorded.

    records : one row per recorded step (loss, alignment, rel_frob, lambda_max, E columns
        ``E{k}_{target,output,residual}``)
    eigenvalues : long table (step, index (1-based), eigenvalue)
    history : one row per step (step, lr, loss)
    arrays : ``vectors_{first,last}`` (N, n_vectors), ``slices_{first,last}``
        (len(slice_index), N) kernel rows g(x0, ·), ``output_{first,last}``
    """

    records: pd.DataFrame
    eigenvalues: pd.DataFrame
    history: pd.DataFrame
    arrays: dict


def _loss_fn(kind: str):
    if kind == "mse":
        return lambda out, y: 0.5 * ((out.reshape(y.shape) - y) ** 2).sum(-1).mean() \
            if y.dim() > 1 else 0.5 * ((out.reshape(-1) - y) ** 2).mean()
    if kind == "ce":
        return lambda out, y: F.cross_entropy(out, y)
    raise InputError(f"unknown loss {kind!r}; use 'mse' or 'ce'")


def _make_opt(model, optimizer, lr):
    if optimizer == "gd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    raise InputError(f"unknown optimizer {optimizer!r}; use 'gd' (full-batch gradient "
                     "descent) or 'adam'")


def _lr_at(step: int, lr: float, schedule: str, decay_steps: Sequence[int], gamma: float):
    if schedule == "constant":
        return lr
    if schedule == "step":
        return lr * gamma ** sum(step >= s for s in decay_steps)
    raise InputError(f"unknown schedule {schedule!r}; use 'constant' or 'step'")


def track_spectrum(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int,
    record_at: Sequence[int], optimizer: str = "gd", lr: float = 0.1,
    schedule: str = "constant", decay_steps: Sequence[int] = (), gamma: float = 0.1,
    loss: str = "mse", ks: Sequence[int] = (1, 4, 16, 64), n_eigs: int = 100,
    n_vectors: int = 0, slice_index: Sequence[int] = (), method: str = "auto",
    kernel: str = "trace", chunk_size: int | None = None, progress: bool = False,
) -> SpectrumTrace:
    """Train ``model`` full batch on (x, y) for ``steps`` steps, recording the NTK spectrum.

    x : (N, ...) inputs; y : (N,) float targets (``loss="mse"``; (N, C) for several
        outputs) or (N,) int64 classes (``loss="ce"``)
    record_at : steps at which to measure (0 = before training, ``steps`` = the end)
    schedule : ``"constant"`` or ``"step"`` (lr × ``gamma`` at each of ``decay_steps``)
    kernel : for several outputs, ``"trace"`` (one kernel, the sum over outputs) or
        ``"per-logit"`` (kernel c measured against column c; the records, eigenvalues and
        kernel change are then averaged over the outputs)
    """
    if kernel not in ("trace", "per-logit"):
        raise InputError(f"kernel must be 'trace' or 'per-logit', got {kernel!r}")
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if len(x) != len(y):
        raise InputError(f"x has {len(x)} examples but y has {len(y)}")
    if loss == "ce" and (y.is_floating_point() or y.dim() != 1):
        raise InputError("loss='ce' needs y as (N,) int64 class indices; use loss='mse' for "
                         "real-valued targets")
    if loss == "mse" and not y.is_floating_point():
        raise InputError("loss='mse' needs real-valued y; one-hot encode class labels first "
                         "or use loss='ce'")
    rec = sorted({int(s) for s in record_at})
    rec_set = set(rec)
    if not rec or rec[0] < 0 or rec[-1] > steps:
        raise InputError(f"record_at must be steps within 0..{steps}, got {list(record_at)}")
    loss_f = _loss_fn(loss)
    opt = _make_opt(model, optimizer, lr)
    if loss == "ce":
        with torch.no_grad():
            n_cls = model(x[:1]).shape[-1]
        raw = F.one_hot(y, n_cls).double().cpu().numpy()
    else:
        raw = y.detach().double().reshape(len(y), -1).cpu().numpy()
    target_mean = raw.mean(0, keepdims=True)
    target = raw - target_mean
    y_loss = y.double() if loss == "mse" else y
    g0_norm, g0 = None, None
    rows, eig_rows, hist, arrays = [], [], [], {}
    n_rec = 0

    def measures(g, tgt, outc, res):
        """Measures of one kernel g (N, N) against (N, C') target/output/residual."""
        lam, vec = eig_desc(g)
        row = {"alignment": kernel_alignment(g, tgt), "lambda_max": float(lam[0]),
               "trace": float(np.trace(g))}
        for name, phi in (("target", tgt), ("output", outc - outc.mean(0)), ("residual", res)):
            for k, e in zip(ks, energy_fraction(vec, phi, ks), strict=True):
                row[f"E{k}_{name}"] = float(e)
        return row, lam, vec

    def record(step: int) -> None:
        nonlocal g0, g0_norm, n_rec
        model.eval()
        g = ntk(model, x, method=method, chunk_size=chunk_size, dtype=torch.float64,
                output="per-logit" if kernel == "per-logit" else "auto").cpu().numpy()
        if g.ndim == 3 and len(g) == 1:  # one output: per-logit = scalar kernel
            g = g[0]
        with torch.no_grad():
            out = model(x).double()
        out = out.reshape(len(x), -1).cpu().numpy()
        resid = (torch.softmax(torch.from_numpy(out), 1).numpy() - raw
                 if loss == "ce" else out - raw)
        if g0 is None:
            g0 = g.copy()
            g0_norm = (np.linalg.norm(g0) if g.ndim == 2
                       else np.linalg.norm(g0, axis=(1, 2)))
        if g.ndim == 2:
            row, lam, vec = measures(g, target, out, resid)
            rel = float(np.linalg.norm(g - g0) / g0_norm)
        else:  # per-logit: logit c's kernel against column c; averages over the logits
            parts = [measures(g[c], target[:, c], out[:, c:c + 1], resid[:, c])
                     for c in range(len(g))]
            row = {k: float(np.mean([p[0][k] for p in parts])) for k in parts[0][0]}
            lam = np.mean([p[1] for p in parts], axis=0)
            vec = parts[0][2]
            rel = float(np.mean(np.linalg.norm(g - g0, axis=(1, 2)) / g0_norm))
        row = {"step": step, "lr": _lr_at(step, lr, schedule, decay_steps, gamma),
               "loss": float(loss_f(torch.from_numpy(out), y_loss)), "rel_frob": rel, **row}
        rows.append(row)
        m = min(n_eigs, len(lam))
        eig_rows.append(pd.DataFrame({"step": step, "index": np.arange(1, m + 1),
                                      "eigenvalue": lam[:m]}))
        tag = "first" if n_rec == 0 else "last"
        if n_vectors and g.ndim == 2:
            arrays[f"vectors_{tag}"] = vec[:, :n_vectors].astype(np.float32)
        if len(slice_index) and g.ndim == 2:
            arrays[f"slices_{tag}"] = g[list(slice_index)].astype(np.float32)
        arrays[f"output_{tag}"] = out.astype(np.float32)
        arrays[f"step_{tag}"] = np.asarray(step)
        n_rec += 1

    it = progress_bar(range(steps + 1), enabled=progress, desc="spectrum", unit="step")
    for step in it:
        if step in rec_set:
            record(step)
        if step == steps:
            break
        lr_t = _lr_at(step, lr, schedule, decay_steps, gamma)
        for group in opt.param_groups:
            group["lr"] = lr_t
        model.train()
        out = model(x)
        loss_v = loss_f(out, y)
        if not math.isfinite(float(loss_v.detach())):
            raise DivergenceError(f"training diverged at step {step} (loss {float(loss_v)}); "
                                     "lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss_v.backward()
        opt.step()
        hist.append({"step": step, "lr": lr_t, "loss": float(loss_v.detach())})
    model.eval()
    return SpectrumTrace(pd.DataFrame(rows), pd.concat(eig_rows, ignore_index=True),
                         pd.DataFrame(hist), arrays)


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

    ds = datasets.load(cfg.task, **cfg.dataset_options)
    n = min(cfg.n_train, len(ds.y_train))
    idx = subsample(ds.y_train, n, balanced=True, seed=cfg.seed)
    x = ds.x_train[idx].reshape(n, -1)
    y = ds.y_train[idx]
    return x, y, {"task": cfg.task, "n": n, "n_out": ds.n_classes, "slice_index": [],
                  "dataset": ds.describe()}


@dataclass
class SpectrumStudy:
    records: pd.DataFrame  # one row per variant and recorded step
    eigenvalues: pd.DataFrame  # variant, step, index, eigenvalue
    history: pd.DataFrame  # variant, step, lr, loss
    arrays: dict  # variant -> arrays of :class:`SpectrumTrace`
    meta: dict
    run_dir: Path | None


def run_spectrum_study(cfg: SpectrumConfig | None = None, *, out_dir: str | Path | None = None,
                       runs_root: str | Path = "runs", write: bool = True,
                       progress: bool = False,
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
        run_dir = start_run_dir(out_dir, runs_root, ("spectrum", cfg.task, f"s{cfg.seed}"),
                                seed=cfg.seed, config={
                                    "study": "spectrum", **cfg.to_dict(),
                                    "variants": [v.label() for v in variants],
                                    "record_steps": cfg.record_steps(),
                                    "decay_steps": cfg.decay_steps(),
                                    "resolved_loss": cfg.resolved_loss()})
        write_json(run_dir / "task.json", meta)
    recs, eigs, hists, arrays = [], [], [], {}
    for v in variants:
        model = _build(v, x.shape[1], meta["n_out"]).to(device)
        trace = track_spectrum(
            model, x, y_fit, steps=v.steps, record_at=v.record_steps(),
            optimizer=v.optimizer, lr=v.lr if v.optimizer == "gd" else v.adam_lr,
            schedule=v.schedule, decay_steps=v.decay_steps(), gamma=v.gamma,
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

