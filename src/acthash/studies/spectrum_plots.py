"""Figures of the spectrum study (matplotlib): PNG + SVG in the run's figures/ folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acthash._utils.run import save_figure

__all__ = ["plot_study", "plot_spectra", "plot_energy", "plot_alignment", "plot_eigvec_images",
           "plot_summary"]


def _plt():
    """pyplot, imported on first use (the backend is the caller's choice)."""
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: Path, name: str, formats=("png", "svg")) -> list[Path]:
    return save_figure(fig, Path(folder) / name, formats=formats)


def _ks(records) -> list[int]:
    return sorted({int(c[1:].split("_")[0]) for c in records.columns if c.startswith("E")
                   and c.endswith("_target")})


def plot_spectra(study):
    """Eigenvalues λ_i vs index i (log-log), one panel per variant, colour = training step."""
    ev = study.eigenvalues
    names = list(dict.fromkeys(ev["variant"]))
    fig, axes = _plt().subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        d = ev[ev["variant"] == name]
        steps = sorted(d["step"].unique())
        cmap = _plt().get_cmap("viridis")
        for i, s in enumerate(steps):
            e = d[d["step"] == s]
            ax.loglog(e["index"], np.clip(e["eigenvalue"], 1e-12, None),
                      color=cmap(i / max(len(steps) - 1, 1)), lw=1,
                      label=f"step {s}" if i in (0, len(steps) - 1) else None)
        ax.set_title(name)
        ax.set_xlabel("index i")
        ax.set_ylabel("eigenvalue λ_i of G_t")
        ax.legend(fontsize=7)
    fig.suptitle("NTK eigenvalue spectrum over training (dark = early, yellow = late)")
    fig.tight_layout()
    return fig


def plot_energy(study):
    """E_k(target), E_k(output), E_k(residual) over training; rows = variants, lines = k."""
    r = study.records
    names = list(dict.fromkeys(r["variant"]))
    ks = _ks(r)
    fig, axes = _plt().subplots(len(names), 3, figsize=(11, 2.6 * len(names)), squeeze=False,
                             sharey=True)
    cmap = _plt().get_cmap("plasma")
    for row, name in zip(axes, names, strict=True):
        d = r[r["variant"] == name]
        for ax, what in zip(row, ("target", "output", "residual"), strict=True):
            for j, k in enumerate(ks):
                ax.plot(d["step"] + 1, d[f"E{k}_{what}"], marker=".", ms=3,
                        color=cmap(j / max(len(ks), 1)), label=f"k={k}")
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{name}: E_k({what})", fontsize=9)
            ax.set_xlabel("step + 1")
        row[0].set_ylabel("energy share in top-k")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_alignment(study):
    """Kernel-target alignment, relative kernel change and loss over training."""
    r = study.records
    fig, axes = _plt().subplots(1, 3, figsize=(12, 3.3))
    for name, d in r.groupby("variant", sort=False):
        axes[0].plot(d["step"] + 1, d["alignment"], marker=".", label=name)
        axes[1].plot(d["step"] + 1, d["rel_frob"], marker=".", label=name)
        axes[2].plot(d["step"] + 1, d["loss"], marker=".", label=name)
    for ax, t in zip(axes, ("kernel-target alignment yᵀGy/(‖G‖_F‖y‖²)",
                            "‖G_t − G_0‖_F / ‖G_0‖_F", "training loss"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_title(t, fontsize=9)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_eigvec_images(study, variant: str, grid: int, target=None, slice_index=()):
    """Top eigenvectors and kernel slices g(x0, ·) as images, at the first and last record."""
    arr = study.arrays[variant]
    n_vec = arr["vectors_first"].shape[1]
    n_sl = len(slice_index)
    cols = 1 + n_vec + n_sl
    fig, axes = _plt().subplots(2, cols, figsize=(1.7 * cols, 4.4), squeeze=False)
    for r, tag in enumerate(("first", "last")):
        ax = axes[r, 0]
        if tag == "first" and target is not None:
            ax.imshow(np.asarray(target).reshape(grid, grid), cmap="gray")
            ax.set_title("target y", fontsize=8)
        else:
            ax.imshow(arr[f"output_{tag}"].reshape(grid, grid), cmap="gray")
            ax.set_title(f"f at step {int(arr[f'step_{tag}'])}", fontsize=8)
        for i in range(n_vec):
            v = arr[f"vectors_{tag}"][:, i].reshape(grid, grid)
            axes[r, 1 + i].imshow(v, cmap="RdBu_r", vmin=-abs(v).max(), vmax=abs(v).max())
            axes[r, 1 + i].set_title(f"v{i + 1} (step {int(arr[f'step_{tag}'])})", fontsize=8)
        for j, idx in enumerate(slice_index):
            s = arr[f"slices_{tag}"][j].reshape(grid, grid)
            ax = axes[r, 1 + n_vec + j]
            ax.imshow(s, cmap="magma")
            ax.plot(idx % grid, idx // grid, "c+", ms=8)
            ax.set_title(f"g(x0, ·) #{j + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{variant}: top NTK eigenvectors and kernel slices, start (top) vs end "
                 "(bottom)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_summary(study, grid: int | None = None, target=None, k_show=(16, 64)):
    """One-figure finding: E_k(target) over training per variant, alignment over training,
    E_k(output) at the end, and (image task) the base variant's top eigenvectors."""
    r = study.records
    names = list(dict.fromkeys(r["variant"]))
    ks = [k for k in k_show if k in _ks(r)] or _ks(r)[:3]
    image = grid is not None and "vectors_first" in study.arrays[names[0]]
    fig = _plt().figure(figsize=(15.5, 7.2 if image else 3.6))
    gs = fig.add_gridspec(2 if image else 1, 5)
    ax0 = fig.add_subplot(gs[0, 0:2])
    styles = ["-", "--", ":", "-."]
    cmap = _plt().get_cmap("tab10")
    for i, name in enumerate(names):
        d = r[r["variant"] == name]
        for j, k in enumerate(ks):
            ax0.plot(d["step"] + 1, d[f"E{k}_target"], styles[j % 4], color=cmap(i),
                     label=f"{name}, k={k}")
    ax0.set_xscale("log")
    ax0.set_xlabel("step + 1")
    ax0.set_ylabel("E_k(target)")
    ax0.set_title("target energy in the top-k NTK eigenvectors", fontsize=9)
    ax0.legend(fontsize=6, ncol=2)
    ax1 = fig.add_subplot(gs[0, 2])
    for i, name in enumerate(names):
        d = r[r["variant"] == name]
        ax1.plot(d["step"] + 1, d["alignment"], color=cmap(i), marker=".", label=name)
    ax1.set_xscale("log")
    ax1.set_xlabel("step + 1")
    ax1.set_title("kernel-target alignment", fontsize=9)
    ax1.legend(fontsize=6)
    ax2 = fig.add_subplot(gs[0, 3])
    for i, name in enumerate(names):
        d = r[r["variant"] == name]
        k = ks[-1]
        ax2.plot(d["step"] + 1, d[f"E{k}_output"], color=cmap(i), marker=".", label=name)
        ax2.plot(d["step"] + 1, d[f"E{k}_residual"], color=cmap(i), ls=":", lw=1)
    ax2.set_xscale("log")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_xlabel("step + 1")
    ax2.set_title(f"E_{ks[-1]}(output) (solid), E_{ks[-1]}(residual) (dotted)", fontsize=9)
    ax3 = fig.add_subplot(gs[0, 4])
    for i, name in enumerate(names):
        d = r[r["variant"] == name]
        ax3.plot(d["step"] + 1, d["lambda_max"], color=cmap(i), marker=".", label=name)
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.set_xlabel("step + 1")
    ax3.set_title("top eigenvalue λ₁ of G_t", fontsize=9)
    if image:
        arr = study.arrays[names[0]]
        sub = gs[1, :].subgridspec(2, 7)
        for rr, tag in enumerate(("first", "last")):
            ax = fig.add_subplot(sub[rr, 0])
            img = (np.asarray(target).reshape(grid, grid) if tag == "first" and target is not None
                   else arr[f"output_{tag}"].reshape(grid, grid))
            ax.imshow(img, cmap="gray")
            ax.set_title("target" if tag == "first" else f"f, step {int(arr['step_last'])}",
                         fontsize=8)
            for i in range(min(6, arr[f"vectors_{tag}"].shape[1])):
                v = arr[f"vectors_{tag}"][:, i].reshape(grid, grid)
                ax = fig.add_subplot(sub[rr, 1 + i])
                ax.imshow(v, cmap="RdBu_r", vmin=-abs(v).max(), vmax=abs(v).max())
                ax.set_title(f"{names[0]} v{i + 1}, step {int(arr[f'step_{tag}'])}", fontsize=7)
        for ax in fig.axes[4:]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_study(study, cfg, folder: str | Path, target=None,
               formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write every figure of a study into ``folder`` (one file per figure and format)."""
    folder = Path(folder)
    paths = []
    paths += _save(plot_spectra(study), folder, "spectra", formats)
    paths += _save(plot_energy(study), folder, "energy", formats)
    paths += _save(plot_alignment(study), folder, "alignment", formats)
    grid = cfg.grid if cfg.is_image else None
    if cfg.is_image:
        for name in study.arrays:
            paths += _save(plot_eigvec_images(study, name, cfg.grid, target,
                                              study.meta.get("slice_index", ())),
                           folder, f"eigvecs_{name}", formats)
    paths += _save(plot_summary(study, grid, target), folder, "summary", formats)
    return paths
