"""Figures of a sweep: encoding properties against one factor, mean ± std over seeds.

:func:`plot_factor` draws one panel per quantity (``QUANTITIES``: redundancy ratio,
K-Means, K-NN, logistic regression, the network's own accuracy and, when the results
hold it, the fraction of dead units on the training set), each with a train
(dashed) and a test (solid) series per ``hue`` value; the band is ± one standard
deviation over the seeds. Panels sit in a grid of at most three columns, sized for a page.
The x axis is base-2 logarithmic for powers of two (widths, sample sizes), logarithmic when
other values span more than a factor of 20 (symmetric-log when they include 0, e.g. epoch 0
or weight decay 0), linear otherwise.
:func:`plot_results` writes PNG and SVG figures for a sweep directory or results file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from acthash._utils.run import save_figure
from acthash.errors import InputError
from acthash.properties.catalog import knn_label, quantities
from acthash.runs.results import checkpoint_note, load_results, load_sweep_meta

__all__ = ["QUANTITIES", "FACTOR_LABELS", "PANEL_COLUMNS", "TICK_FONTSIZE", "aggregate", "plot_factor", "plot_results",
           "infer_factor", "factor_column", "knn_label", "save_figure"]

#: (column prefix, axis label) of each panel, from the property catalog
QUANTITIES = quantities()
SPLITS = ("train", "test")
#: page layout of a factor figure: panels per row, inches per panel (width, height), and
#: font sizes in points. At most 3 panels of 3.7 in: the figure is at most 11.1 in wide, so
#: the report shows it at its natural size (96 CSS px per inch) in a 1100-px column, where a
#: 9-pt tick label is 12 px high.
PANEL_COLUMNS = 3
PANEL_SIZE = (3.7, 3.0)
TICK_FONTSIZE = 9
LEGEND_FONTSIZE = 8
FACTOR_LABELS = {
    "width": "hidden units per layer",
    "depth": "hidden layers",
    "epoch": "training epoch",
    "sample_size": "training examples",
    "n_train": "training examples",
    "weight_decay": "L2 weight decay",
    "label_noise": "fraction of wrong training labels",
    "dataset": "dataset",
    "lr": "learning rate",
}
# factors tried, in order, when a results table does not say which one it studies
_CANDIDATES = ("width", "depth", "n_train", "weight_decay", "label_noise", "dataset", "lr",
               "epoch")


def _k_of(df: pd.DataFrame):
    if "k" in df.columns and df["k"].nunique(dropna=True) == 1:
        return df["k"].dropna().iloc[0]
    return None


def _quantity_labels(df: pd.DataFrame, quantities) -> list[tuple[str, str]]:
    k = knn_label(_k_of(df))
    return [(q, label.replace("k-NN", k)) for q, label in quantities]


def factor_column(df: pd.DataFrame, factor: str) -> str:
    """The column holding ``factor``'s values (``sample_size`` is read as ``n_train``,
    the number of training examples actually used)."""
    if factor == "sample_size" and "n_train" in df.columns:
        return "n_train"
    if factor not in df.columns:
        raise InputError(f"factor {factor!r} is not a column of the results; "
                         f"columns: {sorted(df.columns)}")
    return factor


def infer_factor(df: pd.DataFrame) -> tuple[str, str | None]:
    """(factor, hue) from the columns that vary: the first varying candidate is the factor,
    the next (if any) the hue."""
    varying = [c for c in _CANDIDATES if c in df.columns and df[c].nunique(dropna=False) > 1]
    if not varying:
        raise InputError("no factor varies in these results; pass --factor")
    # with several checkpoints and one other factor, epoch is usually the hue
    factor = varying[0]
    hue = varying[1] if len(varying) > 1 else None
    return factor, hue


def aggregate(df: pd.DataFrame, factor: str, hue: str | None = None,
              quantities=None) -> pd.DataFrame:
    """Mean, std and count over seeds of each ``<quantity>_<split>`` column, per
    (hue, factor) value. Columns: [hue,] factor, ``<col>_mean``, ``<col>_std``, ``n``."""
    fcol = factor_column(df, factor)
    keys = ([hue] if hue else []) + [fcol]
    cols = [f"{q}_{s}" for q, _ in (quantities or QUANTITIES) for s in SPLITS
            if f"{q}_{s}" in df.columns]
    if not cols:
        raise InputError("the results hold no encoding-property columns (redundancy_train, ...)")
    g = df.groupby(keys, dropna=False)[cols]
    mean = g.mean().add_suffix("_mean")
    std = g.std(ddof=1).fillna(0.0).add_suffix("_std")
    parts = [mean, std]
    # K-Means accuracy is itself a mean over K-Means seeds: keep that spread too, as the
    # root-mean-square of the per-run stds (column <col>_seed_std)
    seed_cols = {f"{q}_std_{s}": f"{q}_{s}_seed_std" for q, _ in (quantities or QUANTITIES)
                 for s in SPLITS if f"{q}_std_{s}" in df.columns and f"{q}_{s}" in cols}
    if seed_cols:
        sq = df[keys].copy()
        for src in seed_cols:
            sq[src] = df[src].astype(float) ** 2
        parts.append(np.sqrt(sq.groupby(keys, dropna=False)[list(seed_cols)].mean())
                     .rename(columns=seed_cols))
    out = pd.concat(parts, axis=1)
    out["n"] = g.size()
    return out.reset_index().sort_values(keys, kind="stable").reset_index(drop=True)


def _powers_of_two(pos: np.ndarray) -> bool:
    ints = pos[np.isclose(pos, np.round(pos))].astype(np.int64)
    return len(ints) == len(pos) and bool(np.all(ints & (ints - 1) == 0))


def _axis_scale(ax, values: np.ndarray, axis: str = "x") -> str:
    """The axis scale for a factor's values; returns it.

    Powers of two (widths 2, 8, ..., 256; sample sizes 64, ..., 4096) spanning a factor of
    4 or more: a base-2 log axis ticked at the values (``"log2"``; symlog when 0 is among
    them). Other positive values spanning a factor of 20 or more: a log axis (``"log"``;
    ``"symlog"`` with 0, e.g. epoch 0 or weight decay 0). Otherwise linear.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    axis_obj = ax.xaxis if axis == "x" else ax.yaxis
    v = np.asarray(values, dtype=float)
    pos = v[v > 0]
    if len(pos) < 2 or (v < 0).any():
        return "linear"
    span = pos.max() / pos.min()
    if _powers_of_two(pos) and span >= 4:
        if (v == 0).any():
            set_scale("symlog", base=2, linthresh=float(pos.min()))
        else:
            set_scale("log", base=2)
        ticks = np.unique(v)
        axis_obj.set_major_locator(FixedLocator(ticks))
        axis_obj.set_minor_locator(NullLocator())
        axis_obj.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
        if len(ticks) > 6 and axis == "x":
            ax.tick_params(axis="x", labelrotation=45)
        return "log2"
    if span < 20:
        return "linear"
    if (v == 0).any():
        set_scale("symlog", linthresh=float(pos.min()))
        scale = "symlog"
    else:
        set_scale("log")
        scale = "log"
    axis_obj.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
    return scale


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def plot_factor(df: pd.DataFrame, factor: str, hue: str | None = None, *,
                title: str | None = None, quantities=None, axes=None):
    """One panel per quantity vs ``factor``; returns the matplotlib Figure.

    Series: for each hue value, ``<hue>=<v>, train`` (dashed) and ``..., test`` (solid)
    (just ``train``/``test`` without a hue); shaded band = ± 1 std over seeds. For K-Means,
    whose accuracy is a mean over K-Means seeds, the band adds that spread in quadrature
    (sqrt(std over runs² + mean K-Means-seed variance)).
    ``axes``: one matplotlib Axes per quantity to draw into (default: a new figure).
    The k of the k-NN panel is read from the results' ``k`` column.
    """
    import matplotlib.pyplot as plt

    quantities = [(q, label) for q, label in (quantities or QUANTITIES)
                  if any(f"{q}_{s}" in df.columns for s in SPLITS)]  # panels with data
    quantities = _quantity_labels(df, quantities)
    fcol = factor_column(df, factor)
    if hue is not None and hue == fcol:
        hue = None
    agg = aggregate(df, factor, hue, quantities)
    numeric = _is_numeric(agg[fcol])
    if not numeric:
        cats = list(dict.fromkeys(agg[fcol]))
        agg["_x"] = agg[fcol].map({c: i for i, c in enumerate(cats)})
    else:
        agg["_x"] = agg[fcol].astype(float)
    hues = list(dict.fromkeys(agg[hue])) if hue else [None]
    cmap = plt.get_cmap("viridis" if len(hues) > 2 else "tab10")
    colors = ([cmap(i / max(len(hues) - 1, 1)) for i in range(len(hues))] if len(hues) > 2
              else [cmap(i) for i in range(len(hues))])
    n = len(quantities)
    ncols = min(PANEL_COLUMNS, n)
    if axes is None:  # a grid of panels that fits a page (README: figures for a page)
        nrows = -(-n // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(PANEL_SIZE[0] * ncols,
                                                        PANEL_SIZE[1] * nrows + 0.5),
                                 squeeze=False, constrained_layout=True)
        flat = list(grid.ravel())
        for ax in flat[n:]:
            ax.remove()
        axes = flat[:n]
    else:
        axes = list(np.ravel(axes))
        if len(axes) != n:
            raise InputError(f"pass {n} axes, one per quantity, got {len(axes)}")
        fig = axes[0].figure
    for ax, (q, label) in zip(axes, quantities, strict=True):
        for h, color in zip(hues, colors, strict=True):
            sub = agg if h is None else agg[agg[hue] == h]
            for split, style in (("train", "--"), ("test", "-")):
                col = f"{q}_{split}"
                if f"{col}_mean" not in sub.columns:
                    continue
                name = split if h is None else f"{hue}={h}, {split}"
                m, s = sub[f"{col}_mean"].to_numpy(), sub[f"{col}_std"].to_numpy()
                if f"{col}_seed_std" in sub.columns:
                    seed_sd = np.nan_to_num(sub[f"{col}_seed_std"].to_numpy(dtype=float))
                    s = np.sqrt(s.astype(float) ** 2 + seed_sd ** 2)
                x = sub["_x"].to_numpy()
                ax.plot(x, m, style, color=color, marker="o", ms=3, lw=1.4, label=name)
                ax.fill_between(x, m - s, m + s, color=color, alpha=0.15, lw=0)
        ax.set_title(label + ("\n(band: runs and K-Means seeds)"
                              if any(c.startswith(f"{q}_") and c.endswith("_seed_std")
                                     for c in agg.columns) else ""), fontsize=10)
        ax.set_xlabel(FACTOR_LABELS.get(fcol, fcol))
        if numeric:
            _axis_scale(ax, agg["_x"].to_numpy())
        else:
            ax.set_xticks(range(len(cats)), [str(c) for c in cats], rotation=20)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=TICK_FONTSIZE)
    n_min = int(agg["n"].min()) if len(agg) else 0
    y_label = f"mean ± std over {n_min} seeds" if n_min >= 2 else "value (1 seed)"
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(y_label)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(labels) <= 4:
        axes[0].legend(fontsize=LEGEND_FONTSIZE, loc="best")
    else:  # below the grid, so the figure keeps the width of its panels
        fig.legend(handles, labels, loc="outside lower center", fontsize=LEGEND_FONTSIZE,
                   frameon=False, ncol=min(4, len(labels)))
    seeds = int(agg["n"].max()) if len(agg) else 0
    fig.suptitle(title or f"encoding properties vs {FACTOR_LABELS.get(fcol, fcol)} "
                 f"({seeds} seed{'s' if seeds != 1 else ''})", fontsize=12)
    return fig


def plot_results(results, out_dir: str | Path | None = None, *, factor: str | None = None,
                 hue: str | None = None, name: str | None = None) -> list[Path]:
    """Figures of a sweep directory / results file / DataFrame, as PNG and SVG.

    The factor and hue come from the arguments, else the sweep's ``sweep.json``, else
    the varying columns. With several checkpoints and a factor other than ``epoch``, the
    last checkpoint is plotted (and a second figure against ``epoch`` is drawn).
    Returns the written paths (``out_dir`` defaults to ``<sweep>/figures``).
    """
    meta: dict = {}
    if isinstance(results, pd.DataFrame):
        df = results
        if out_dir is None:
            raise InputError("pass out_dir when plotting a DataFrame")
    else:
        path = Path(results)
        df = load_results(path)
        meta = load_sweep_meta(path)
        if out_dir is None:
            out_dir = (path if path.is_dir() else path.parent) / "figures"
    if df.empty:
        raise InputError("the results table is empty; run the sweep first")
    factor = factor or meta.get("factor")
    hue = hue if hue is not None else meta.get("hue")
    if factor is None:
        factor, inferred_hue = infer_factor(df)
        hue = hue or inferred_hue
    name = name or meta.get("name") or "sweep"
    out_dir = Path(out_dir)
    paths: list[Path] = []
    multi_epoch = "epoch" in df.columns and df["epoch"].nunique() > 1
    plot_df = df
    if factor != "epoch" and multi_epoch:
        plot_df = df[df["epoch"] == df["epoch"].max()]
    title = f"{name}: encoding properties vs {FACTOR_LABELS.get(factor, factor)}" + (f" ({checkpoint_note(df)})" if factor != "epoch" and multi_epoch else "")
    fig = plot_factor(plot_df, factor, hue, title=title)
    paths += save_figure(fig, out_dir / f"{name}_{factor}")
    if factor != "epoch" and multi_epoch:
        fig = plot_factor(df, "epoch", hue or factor, title=f"{name}: vs training epoch")
        paths += save_figure(fig, out_dir / f"{name}_epoch")
    return paths
