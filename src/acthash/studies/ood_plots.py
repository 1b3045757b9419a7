"""Figures of the OOD study, from its scores ``{detector: {"test", "val", OOD set: scores}}``
(higher = more OOD): ROC curves per OOD set and score histograms per detector."""

from __future__ import annotations

import numpy as np

__all__ = ["roc_points", "plot_roc_curves", "plot_score_histograms"]


def roc_points(s_in, s_out) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of flagging OOD (positive) as the threshold falls, from (0, 0) to (1, 1)."""
    s = np.r_[s_in, s_out]
    y = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = last + 1 - tp
    return np.r_[0.0, fp / len(s_in)], np.r_[0.0, tp / len(s_out)]


def _sets(scores: dict) -> list[str]:
    first = next(iter(scores.values()))
    return [k for k in first if k not in ("test", "val")]


def plot_roc_curves(scores: dict, detectors=None, axes=None):
    """One panel per OOD set, one ROC curve per detector."""
    import matplotlib.pyplot as plt

    detectors = list(detectors or scores)
    sets = _sets(scores)
    if axes is None:
        fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 3.2), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, name in zip(axes, sets, strict=False):
        for det in detectors:
            fpr, tpr = roc_points(scores[det]["test"], scores[det][name])
            ax.plot(fpr, tpr, lw=1.2, label=det,
                    ls="-" if det.startswith(("hamming", "coverage")) else "--")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set_title(f"ID test vs {name}")
        ax.set_xlabel("FPR (ID flagged)")
    axes[0].set_ylabel("TPR (OOD flagged)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_score_histograms(scores: dict, detectors=None, axes=None, bins: int = 30):
    """One panel per detector: the scores of the ID test set and of every OOD set."""
    import matplotlib.pyplot as plt

    detectors = list(detectors or scores)
    if axes is None:
        fig, axes = plt.subplots(1, len(detectors), figsize=(3.0 * len(detectors), 2.8),
                                 squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, det in zip(axes, detectors, strict=False):
        per = scores[det]
        lo = min(float(np.min(v)) for v in per.values())
        hi = max(float(np.max(v)) for v in per.values())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for name, v in per.items():
            if name == "val":
                continue
            ax.hist(v, bins=edges, histtype="step", density=True, lw=1.5 if name == "test"
                    else 1.0, label="ID test" if name == "test" else name)
        ax.set_title(det, fontsize=9)
        ax.set_xlabel("score (higher = more OOD)", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig
