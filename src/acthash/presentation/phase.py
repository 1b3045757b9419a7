"""The activation hash phase chart: under-, critically- and sufficiently-expressive regimes.

Each point of the (model size, training time, sample size) space — one row of
:func:`classify`'s table, averaged over seeds — gets one regime:

- **under-expressive**: redundancy > ``under`` (default 0.1). He et al. report MNIST
  width 40 at a test redundancy of about 0.1, the width where the collapse to 0 is under
  way; above it more than one example in ten shares its linear region with another, so
  the code cannot tell a sizeable part of the data apart.
- **sufficiently-expressive**: redundancy ≤ ``sufficient`` (default 0.001: at most one
  example in a thousand shares a region, i.e. "almost every linear region contains at
  most one training example"; below 1 000 examples it means no collision at all) *and*
  the categorization accuracy within ``plateau_tol`` (default 0.02 = 2 points) of its
  plateau. Two points is about two binomial standard errors of an accuracy near 0.9 on
  1 000 test examples and about the seed-to-seed spread of K-NN accuracy in our sweeps,
  so a point that close cannot be told apart from the plateau.
- **critically-expressive**: everything in between (redundancy collapsing, or ≈ 0 while
  the accuracy still improves).

The *plateau* is the best mean accuracy reached on the same data: the maximum over the
points that share every varying column except model size and training time (``width``,
``depth``, ``epoch``). So a small training set has its own, lower plateau, and a model
is "sufficient" for it once more width or training no longer helps.

Redundancy is read from ``redundancy_train`` (the paper's headline statement is about
training examples) and accuracy from ``knn_test`` (Hamming k-NN, the steadiest of the
categorization scores); both are configurable (:class:`PhaseThresholds`).

:func:`phase_chart` draws 2-D charts (size × training time, size × sample size): regimes
as coloured cells, mean redundancy as labelled contours, the thresholds printed on the
chart. Axes are evenly spaced by grid index and labelled with the real values, so
log-spaced grids and epoch 0 read naturally.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from acthash._utils.io import write_table
from acthash._utils.run import save_figure
from acthash.errors import ConfigError, InputError
from acthash.runs.results import load_results, load_sweep_meta

__all__ = ["PhaseThresholds", "REGIMES", "REGIME_COLORS", "classify", "phase_chart",
           "phase_charts", "point_columns"]

REGIMES = ("under", "critical", "sufficient")
REGIME_LABELS = {"under": "under-expressive", "critical": "critically-expressive",
                 "sufficient": "sufficiently-expressive"}
REGIME_COLORS = {"under": "#f4a6a0", "critical": "#f7d774", "sufficient": "#9fd49b"}
# columns that locate a point (beside those, all else is fixed within a sweep)
_POINT_CANDIDATES = ("dataset", "model", "depth", "width", "epoch", "n_train", "weight_decay",
                     "label_noise", "random_labels", "lr", "batchnorm")
_CAPACITY_TIME = ("width", "depth", "epoch")
AXIS_LABELS = {"width": "model size (hidden units per layer)", "epoch": "training time (epochs)",
               "n_train": "training sample size", "depth": "hidden layers"}


@dataclass
class PhaseThresholds:
    """Explicit regime thresholds (see the module docstring for the defaults' reasons).

    under: redundancy above this is under-expressive.
    sufficient: redundancy at or below this (and accuracy at its plateau) is sufficient.
    plateau_tol: accuracy within this of its plateau (fraction: 0.02 = 2 points).
    redundancy / accuracy: the columns read.
    """

    under: float = 0.1
    sufficient: float = 0.001
    plateau_tol: float = 0.02
    redundancy: str = "redundancy_train"
    accuracy: str = "knn_test"

    @classmethod
    def for_results(cls, results=None, **overrides) -> PhaseThresholds:
        """Thresholds for a sweep: the defaults, updated by the sweep's ``phase:`` settings
        (``sweep.json`` beside ``results``, a path), updated by the non-None ``overrides``."""
        settings: dict = {}
        if isinstance(results, (list, tuple)):
            results = results[0] if results else None
        if results is not None and not isinstance(results, pd.DataFrame):
            settings.update(load_sweep_meta(results).get("phase") or {})
        settings.update({k: v for k, v in overrides.items() if v is not None})
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ConfigError(f"unknown phase keys {unknown}; valid: {sorted(names)}")
        return cls(**settings)

    def __post_init__(self) -> None:
        if not 0 <= self.sufficient <= self.under <= 1:
            raise ConfigError(
                f"need 0 <= sufficient ({self.sufficient}) <= under ({self.under}) <= 1"
            )
        if not 0 <= self.plateau_tol <= 1:
            raise ConfigError(f"plateau_tol must be a fraction in [0, 1], got {self.plateau_tol}")

    def describe(self) -> str:
        return (f"under: {self.redundancy} > {self.under:g}\n"
                f"sufficient: {self.redundancy} ≤ {self.sufficient:g} and "
                f"{self.accuracy} ≥ plateau − {self.plateau_tol:g}\n"
                "critical: otherwise")

    def to_dict(self) -> dict:
        return asdict(self)


def point_columns(df: pd.DataFrame) -> list[str]:
    """The columns that vary across the table and locate a point (seed excluded)."""
    return [c for c in _POINT_CANDIDATES if c in df.columns and df[c].nunique(dropna=False) > 1]


def classify(df: pd.DataFrame, thresholds: PhaseThresholds | None = None,
             by: list[str] | None = None) -> pd.DataFrame:
    """One row per point (mean over seeds) with its regime.

    df: results rows (one per cell and checkpoint) holding the threshold columns.
    by: the columns that locate a point (default: the varying ones, :func:`point_columns`).
    Returns columns: by..., ``redundancy``, ``redundancy_std``, ``accuracy``,
    ``accuracy_std``, ``n_seeds``, ``plateau``, ``regime``.
    """
    t = thresholds or PhaseThresholds()
    for col in (t.redundancy, t.accuracy):
        if col not in df.columns:
            raise InputError(f"column {col!r} is not in the results; choose another with "
                             "PhaseThresholds(redundancy=..., accuracy=...)")
    by = list(by) if by is not None else point_columns(df)
    if not by:
        raise InputError("no column varies across the results: nothing to chart")
    g = df.groupby(by, dropna=False)
    out = pd.DataFrame({
        "redundancy": g[t.redundancy].mean(),
        "redundancy_std": g[t.redundancy].std(ddof=1).fillna(0.0),
        "accuracy": g[t.accuracy].mean(),
        "accuracy_std": g[t.accuracy].std(ddof=1).fillna(0.0),
        "n_seeds": g.size(),
    }).reset_index()
    data_cols = [c for c in by if c not in _CAPACITY_TIME]
    if data_cols:
        out["plateau"] = out.groupby(data_cols, dropna=False)["accuracy"].transform("max")
    else:
        out["plateau"] = out["accuracy"].max()
    eps = 1e-12  # means of equal values must not fall on the wrong side by rounding
    regime = np.where(out["redundancy"] > t.under + eps, "under",
                      np.where((out["redundancy"] <= t.sufficient + eps)
                               & (out["accuracy"] >= out["plateau"] - t.plateau_tol - eps),
                               "sufficient", "critical"))
    out["regime"] = pd.Categorical(regime, categories=list(REGIMES))
    return out


def _labels(values) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out.append(f"{v:g}" if isinstance(v, float) else str(v))
    return out


def phase_chart(df: pd.DataFrame, x: str = "width", y: str = "epoch",
                thresholds: PhaseThresholds | None = None, *, title: str | None = None,
                table: pd.DataFrame | None = None, axes=None):
    """A regime map over ``x`` × ``y`` (one panel per combination of other varying columns).

    Regimes are coloured cells, mean redundancy labelled contours (0.001, 0.01, 0.1, 0.5),
    the thresholds a text box on the chart. ``axes``: one Axes per panel to draw into
    (default: a new figure). Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    t = thresholds or PhaseThresholds()
    cls = table if table is not None else classify(df, t)
    for axis in (x, y):
        if axis not in cls.columns:
            raise InputError(f"{axis!r} does not vary in these results; a {x} × {y} chart "
                             f"needs both (varying: {point_columns(df)})")
    others = [c for c in cls.columns
              if c in _POINT_CANDIDATES and c not in (x, y)]
    groups = list(cls.groupby(others, dropna=False)) if others else [((), cls)]
    n = len(groups)
    if axes is None:  # a grid of at most 3 columns that fits a page, legend below
        ncols = min(3, n)
        nrows = -(-n // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(3.7 * ncols + 0.4, 3.3 * nrows + 1.4),
                                 squeeze=False, constrained_layout=True)
        flat = list(grid.ravel())
        for ax in flat[n:]:
            ax.remove()
        axes = np.array(flat[:n], dtype=object)[None, :]
    else:
        axes = np.ravel(axes)
        if len(axes) != n:
            raise InputError(f"this chart has {n} panel(s); pass {n} axes, got {len(axes)}")
        fig = axes[0].figure
        axes = axes[None, :]
    cmap = ListedColormap([REGIME_COLORS[r] for r in REGIMES])
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
    for ax, (gkey, sub) in zip(axes[0], groups, strict=True):
        xs = sorted(sub[x].unique())
        ys = sorted(sub[y].unique())
        code = np.full((len(ys), len(xs)), np.nan)
        red = np.full((len(ys), len(xs)), np.nan)
        xi = {v: i for i, v in enumerate(xs)}
        yi = {v: i for i, v in enumerate(ys)}
        for _, row in sub.iterrows():
            code[yi[row[y]], xi[row[x]]] = REGIMES.index(row["regime"])
            red[yi[row[y]], xi[row[x]]] = row["redundancy"]
        ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5,
                      np.ma.masked_invalid(code), cmap=cmap, norm=norm, shading="flat",
                      edgecolors="white", linewidth=0.5)
        levels = [lv for lv in (0.001, 0.01, 0.1, 0.5)
                  if np.nanmin(red) < lv < np.nanmax(red)]
        if levels and len(xs) > 1 and len(ys) > 1 and not np.isnan(red).any():
            cs = ax.contour(np.arange(len(xs)), np.arange(len(ys)), red, levels=levels,
                            colors="k", linewidths=1.0)
            ax.clabel(cs, fmt=lambda v: f"{v:g}", fontsize=8)
        ax.set_xticks(range(len(xs)), _labels(xs), rotation=45 if len(xs) > 8 else 0)
        ax.set_yticks(range(len(ys)), _labels(ys))
        ax.tick_params(labelsize=9)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        if others:
            gk = gkey if isinstance(gkey, tuple) else (gkey,)
            ax.set_title(", ".join(f"{c}={v}" for c, v in zip(others, gk, strict=True)),
                         fontsize=10)
    handles = [Patch(color=REGIME_COLORS[r], label=REGIME_LABELS[r]) for r in REGIMES]
    handles.append(plt.Line2D([], [], color="k", lw=1, label=f"mean {t.redundancy}"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncol=2, title="thresholds\n" + t.describe().replace(" and ", "\n    and "),
               title_fontsize=8, alignment="left")
    fig.suptitle(title or f"activation hash phase chart:\n{AXIS_LABELS.get(x, x)} × "
                 f"{AXIS_LABELS.get(y, y)}", fontsize=11)
    return fig


_CHARTS = (("width", "epoch"), ("width", "n_train"))


def phase_charts(results, out_dir: str | Path, thresholds: PhaseThresholds | None = None,
                 name: str | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """Classify each results table and draw the size × time and size × sample-size charts
    that apply (both axes vary). ``results``: a DataFrame, a path, or a list of them (each
    classified on its own). Writes ``phase_<x>_<y>.png/svg`` (``_<i>`` added when two
    tables span the same plane) and ``phase_table.csv``;
    returns (the concatenated classification table, written paths).

    ``thresholds`` defaults to :meth:`PhaseThresholds.for_results` of the first path: the
    sweep's own ``phase:`` settings, else the defaults.
    """
    t = thresholds or PhaseThresholds.for_results(results)
    items = results if isinstance(results, (list, tuple)) else [results]
    out_dir = Path(out_dir)
    tables, paths, used = [], [], set()
    for i, item in enumerate(items):
        df = item if isinstance(item, pd.DataFrame) else load_results(item)
        if df.empty:
            raise InputError(f"results {i} are empty; run the sweep first")
        cls = classify(df, t)
        src = name or (Path(item).name if not isinstance(item, pd.DataFrame) else f"table{i}")
        cls.insert(0, "source", src)
        tables.append(cls)
        for x, y in _CHARTS:
            if x in cls.columns and y in cls.columns:
                fig = phase_chart(df, x, y, t, table=cls.drop(columns="source"))
                stem = f"phase_{x}_{y}"
                if stem in used:  # two tables span the same plane
                    stem = f"{stem}_{i}"
                used.add(stem)
                paths += save_figure(fig, out_dir / stem)
    table = pd.concat(tables, ignore_index=True)
    if not paths:
        raise InputError("no phase chart applies: the results need width and epoch (several "
                         "checkpoints) or width and sample size to vary")
    table_out = table.assign(regime=table["regime"].astype(str))
    paths.append(write_table(out_dir / "phase_table.csv", table_out))
    return table, paths
