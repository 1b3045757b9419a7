"""Measures of the neural spectrum over training (Kopitkov & Indelman).

- :func:`eig_desc`, :func:`energy_fraction`, :func:`kernel_alignment`: the spectrum of one
  Gram matrix and how a target lies in it;
- :func:`track_spectrum`: train a network full batch and record those measures of its
  empirical NTK (:func:`acthash.spectrum.ntk.ntk`, float64) at chosen steps.

The optimizer and the learning-rate schedule are those of :mod:`acthash.train`
(:func:`~acthash.train.make_optimizer`, :func:`~acthash.train.make_schedule`), under the
study's names (:data:`STUDY_OPTIMIZERS`, :data:`STUDY_SCHEDULES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.run import progress_bar
from acthash.errors import DivergenceError, InputError
from acthash.spectrum.ntk import ntk
from acthash.train import make_optimizer, make_schedule

__all__ = ["SpectrumTrace", "eig_desc", "energy_fraction", "kernel_alignment", "track_spectrum",
           "STUDY_OPTIMIZERS", "STUDY_SCHEDULES"]


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


#: the spectrum study's optimizer and schedule names -> those of :mod:`acthash.train`:
#: "gd" is full-batch SGD without momentum; "constant" is "none"; "step" (lr x gamma at each
#: of ``decay_steps``, from that 0-based step on) is "multistep" with ``milestones =
#: decay_steps``, read at ``epoch = step + 1``
STUDY_OPTIMIZERS = {"gd": "sgd", "adam": "adam"}
STUDY_SCHEDULES = {"constant": "none", "step": "multistep"}


def _make_opt(model, optimizer, lr):
    if optimizer not in STUDY_OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; use 'gd' (full-batch gradient "
                         "descent) or 'adam'")
    return make_optimizer(model.parameters(), STUDY_OPTIMIZERS[optimizer], lr)


def _step_schedule(lr: float, schedule: str, decay_steps: Sequence[int], gamma: float):
    """``step -> lr`` (0-based training steps) of the study's schedule names."""
    if schedule not in STUDY_SCHEDULES:
        raise InputError(f"unknown schedule {schedule!r}; use 'constant' or 'step'")
    at_epoch = make_schedule(lr, STUDY_SCHEDULES[schedule], gamma=gamma,
                             milestones=[math.ceil(s) for s in decay_steps])
    return lambda step: at_epoch(step + 1)


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
    lr_at = _step_schedule(lr, schedule, decay_steps, gamma)
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
        row = {"step": step, "lr": lr_at(step),
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
        lr_t = lr_at(step)
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
