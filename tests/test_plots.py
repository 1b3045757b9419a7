"""Figures: expected panels, series, means and bands, axis scales; the HTML report."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from acthash.presentation.plots import (  # noqa: E402
    QUANTITIES,
    aggregate,
    infer_factor,
    plot_factor,
    plot_results,
)

PANEL_TITLES = ["redundancy ratio", "K-Means accuracy (Hungarian)", "k-NN accuracy (Hamming)",
                "logistic regression accuracy", "network accuracy", "dead units (never active, train)"]


def _results(factor="width", values=(4, 16, 64, 256), seeds=(0, 1, 2), hue=None, hues=(None,)):
    """A results table where every quantity is value-dependent and seed-dependent."""
    rows = []
    for h in hues:
        for i, v in enumerate(values):
            for s in seeds:
                row = {"epoch": 5, factor: v, "seed": s, "cell": f"{h}-{v}-{s}"}
                if hue:
                    row[hue] = h
                base = 0.1 * i + (0.05 if h == hues[-1] and hue else 0.0)
                for q, _ in QUANTITIES:
                    row[f"{q}_train"] = base + 0.01 * s
                    row[f"{q}_test"] = base + 0.02 * s
                rows.append(row)
    return pd.DataFrame(rows)


def test_aggregate_mean_std_over_seeds():
    agg = aggregate(_results(), "width")
    assert list(agg["width"]) == [4, 16, 64, 256]
    # test values per width: base + (0, 0.02, 0.04) -> mean base + 0.02, std 0.02
    assert np.allclose(agg["knn_test_mean"], [0.02, 0.12, 0.22, 0.32])
    assert np.allclose(agg["knn_test_std"], 0.02)
    assert np.allclose(agg["redundancy_train_std"], 0.01)
    assert (agg["n"] == 3).all()


def test_factor_figure_panels_and_series():
    fig = plot_factor(_results(), "width")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == PANEL_TITLES
    for ax in axes:
        lines = ax.get_lines()
        assert [ln.get_label() for ln in lines] == ["train", "test"]
        assert lines[0].get_linestyle() == "--" and lines[1].get_linestyle() == "-"
        assert np.allclose(lines[1].get_xdata(), [4, 16, 64, 256])
        assert np.allclose(lines[1].get_ydata(), [0.02, 0.12, 0.22, 0.32])
        assert np.allclose(lines[0].get_ydata(), [0.01, 0.11, 0.21, 0.31])
        assert len(ax.collections) == 2  # one ± std band per series
        assert ax.get_xscale() == "log"  # 4..256 spans more than a factor of 20
        assert ax.get_xlabel() == "hidden units per layer"
    plt.close(fig)


def test_hue_series_and_scales():
    df = _results("epoch", values=(0, 1, 3, 10, 30), hue="width", hues=(8, 64))
    fig = plot_factor(df, "epoch", "width")
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["width=8, train", "width=8, test", "width=64, train", "width=64, test"]
    assert ax.get_xscale() == "symlog"  # epochs include 0
    assert np.allclose(ax.get_lines()[3].get_ydata(), np.array([0, 1, 2, 3, 4]) * 0.1 + 0.07)
    plt.close(fig)
    lin = plot_factor(_results("label_noise", values=(0.0, 0.2, 0.4)), "label_noise")
    assert lin.axes[0].get_xscale() == "linear"
    plt.close(lin)
    cat = plot_factor(_results("dataset", values=("digits", "random:digits")), "dataset")
    assert [t.get_text() for t in cat.axes[0].get_xticklabels()] == ["digits", "random:digits"]
    plt.close(cat)


def test_infer_factor_and_errors():
    df = _results("epoch", values=(0, 1, 3), hue="width", hues=(8, 64))
    assert infer_factor(df) == ("width", "epoch")
    with pytest.raises(ValueError, match="not a column"):
        plot_factor(_results(), "depth")


def test_plot_results_writes_png_and_svg(tmp_path):
    paths = plot_results(_results(), tmp_path, factor="width", name="demo")
    assert sorted(p.name for p in paths) == ["demo_width.png", "demo_width.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:500]


@pytest.mark.slow
def test_report_of_a_real_sweep(tmp_path):
    from acthash.presentation.report import build_report
    from acthash.runs.sweep import run_sweep

    cfg = {"name": "rep", "factor": "width",
           "base": {"epochs": 1, "checkpoints": [0, 1], "kmeans_n_init": 1,
                    "logreg_strategy": "ovr", "save_codes": False},
           "grid": {"width": [4, 8]}, "seeds": [0]}
    run_sweep(cfg, tmp_path / "s", progress=False)
    out = build_report(tmp_path / "s")
    page = out.read_text()
    figs = sorted(p.name for p in (tmp_path / "s" / "figures").glob("*.png"))
    assert figs == ["phase_width_epoch.png", "rep_epoch.png", "rep_width.png"]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(b)[:4] == b"\x89PNG" for b in images)
    # self-contained: no external resource of any kind
    assert not re.search(r'(src|href)="(?!data:)', page)
    for text in ("Phase classification", "Sweep configuration", "Environment", "torch",
                 "redundancy_train", "&quot;width&quot;"):
        assert text in page, text
