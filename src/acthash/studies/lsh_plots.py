"""Figures of the LSH study (PNG + SVG): the collision curve, one-shot accuracy, invariance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from acthash._utils.run import save_figure

__all__ = ["plot_lsh_curve", "plot_one_shot", "plot_invariance"]


def plot_lsh_curve(curve: pd.DataFrame, path: Path, title: str = "") -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    tr = curve[curve["model"] == "trained"]
    srp = sorted(tr[tr["hash"].str.startswith("srp")]["bits"].unique())
    for b in srp:
        d = tr[tr["hash"] == f"srp{b}"]
        axes[0].plot(d["gamma_distance"], d["collision"], marker="o", label=f"SRP {b} bits")
    for h, style in (("code:all", "k--"),):
        d = tr[tr["hash"] == h]
        axes[0].plot(d["gamma_distance"], d["collision"], style, marker="s",
                     label=f"full neural code ({int(d['bits'].iloc[0])} bits)")
    layer_codes = [h for h in tr["hash"].unique() if h.startswith("code:") and h != "code:all"]
    if layer_codes:
        d = tr[tr["hash"] == layer_codes[-1]]
        axes[0].plot(d["gamma_distance"], d["collision"], "k:", marker="^",
                     label=f"last layer code ({int(d['bits'].iloc[0])} bits)")
    axes[0].set_title("trained net: hashes of the representation")
    mid = srp[len(srp) // 2] if srp else None
    for model, style in (("trained", "-"), ("untrained", "--"), ("raw input", ":")):
        d = curve[(curve["model"] == model) & (curve["hash"] == f"srp{mid}")]
        axes[1].plot(d["gamma_distance"], d["collision"], style, marker="o", label=model)
    axes[1].set_title(f"SRP {mid} bits: trained vs untrained vs raw")
    for ax in axes:
        ax.set_xlabel("|gamma1 - gamma2|  (0 = same gamma, new theta)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("collision probability P[h(x1) = h(x2)]")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def plot_one_shot(summary: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for rep_name in summary["representation"].unique():
        d = summary[summary["representation"] == rep_name]
        ax.errorbar(d["n_unseen"], d["mean"], yerr=d["std"], marker="o", capsize=3,
                    label=rep_name)
    ch = summary.drop_duplicates("n_unseen")
    ax.plot(ch["n_unseen"], ch["chance"], "k:", label="chance")
    ax.set_xscale("log")
    ticks = sorted(int(n) for n in summary["n_unseen"].unique())
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("number of unseen classes (one example each)")
    ax.set_ylabel("one-shot 1-NN accuracy (mean ± std)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)


def plot_invariance(inv: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    base = inv[inv["layer"] == "input"]["distance_ratio"].iloc[0]
    for model in ("trained", "untrained"):
        for rep_name, style in (("preactivation", "-"), ("code", "--")):
            d = inv[(inv["model"] == model) & (inv["representation"] == rep_name)]
            ax.plot(d["depth"], d["distance_ratio"], style, marker="o",
                    label=f"{model} {rep_name}")
    ax.axhline(base, color="k", ls=":", label="raw input")
    ax.set_xticks(sorted(int(d) for d in inv["depth"].unique() if d > 0))
    ax.set_xlabel("ReLU layer (depth)")
    ax.set_ylabel("across-gamma / within-gamma mean distance")
    ax.set_title("sensitivity to gamma relative to theta, per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


