"""One self-contained HTML page for a sweep: figures (base64), tables, config, environment.

:func:`build_report` draws the figures and phase charts that are missing, then writes
``<sweep>/report.html``: no external file, script or stylesheet, so it can be mailed.

Laid out for a page: figures are grids of at most three panels, shown side by side when
they fit and at their natural size (96 CSS px per inch of the figure, so a 9-pt tick label
is 12 px on screen) in a column of at most :data:`PAGE_WIDTH_PX`, shrunk only on a narrower
window; long text (criteria, claims, configuration) wraps; wide tables scroll inside their
box. Every measured number in a table has one format, 3 decimals (:func:`fmt_number`);
settings (width, weight decay, ...) are printed as given.
"""

from __future__ import annotations

import base64
import html
import json
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from acthash._utils.fmt import mean_pm
from acthash._utils.io import atomic_path
from acthash.errors import ActhashError, InputError, MissingFileError
from acthash.properties.catalog import summary_columns
from acthash.runs.results import load_results, load_sweep_meta

__all__ = ["build_report", "fmt_number", "png_size", "summary_table"]

#: the page's column: figures are shown at their natural size (96 CSS px per inch) up to it
PAGE_WIDTH_PX = 1140
CSS_PX_PER_INCH = 96

_CSS = f"""
*{{box-sizing:border-box}}
body{{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:{PAGE_WIDTH_PX + 32}px;color:#222;line-height:1.45;padding:0 16px;font-size:15px}}
h1{{font-size:1.6em;overflow-wrap:anywhere}}
h2{{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}}
.figs{{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}}
figure{{margin:0;max-width:100%}}
img{{max-width:100%;height:auto;display:block;outline:1px solid #eee}}
figcaption{{font-size:.85em;color:#555}}
.table{{max-width:100%;overflow-x:auto;margin:.5em 0}}
table{{border-collapse:collapse;font-size:.85em}}
th,td{{border:1px solid #ddd;padding:.2em .5em;text-align:right;vertical-align:top}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}
td.text{{text-align:left;min-width:8em;max-width:32em;overflow-wrap:anywhere}}
pre{{background:#f7f7f7;padding:.8em;font-size:.85em;white-space:pre-wrap;
overflow-wrap:anywhere;max-width:100%}}
.under{{background:#f4a6a0}}.critical{{background:#f7d774}}.sufficient{{background:#9fd49b}}
"""

# columns that hold a run's settings (shown as given) rather than measurements (3 decimals)
_SETTINGS = frozenset({"width", "depth", "epoch", "n_train", "sample_size", "weight_decay",
                       "label_noise", "lr", "seed", "k", "momentum", "val_split", "width_mult",
                       "epochs", "batch_size", "cell_index"})
_SUMMARY_COLS = summary_columns()  # the headline columns, from the property catalog


def summary_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean ± std over seeds of the headline columns per ``by`` group, as strings
    (3 decimals, the report's one number format; the value alone where a group has a single
    seed: no spread is shown)."""
    cols = [c for c in _SUMMARY_COLS if c in df.columns]
    g = df.groupby(by, dropna=False)[cols]
    mean, std = g.mean(), g.std(ddof=1)
    seeds = g.size()
    out = pd.DataFrame(index=mean.index)
    for c in cols:  # the one spread rule (_utils.fmt.mean_pm) in the report's number format
        out[c] = [fmt_number(m) if pd.isna(m) else mean_pm(m, s, n)
                  for m, s, n in zip(mean[c], std[c], seeds, strict=True)]
    out["seeds"] = seeds
    return out.reset_index()


def fmt_number(v, setting: bool = False) -> str:
    """The report's one number format: a measured value with 3 decimals (``0.125``,
    ``12.000``); an integer as an integer; a setting (a factor's value: weight decay 5e-4,
    lr 0.01) as given (``%g``); NaN as an empty cell."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if setting:
            return f"{float(v):g}"
        return f"{float(v):.3f}"
    return str(v)


def png_size(data: bytes) -> tuple[int, int, float]:
    """(width px, height px, dpi) of a PNG, from its IHDR and pHYs chunks (dpi 96 when
    the file does not say)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    dpi, pos = float(CSS_PX_PER_INCH), 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"pHYs":
            ppu_x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            if unit == 1:  # pixels per metre
                dpi = ppu_x * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return width, height, round(dpi, 1)


def _img(path: Path) -> str:
    """A figure at its natural size (its inches at 96 CSS px each), shrunk to the column
    only when wider: a figure's font sizes in points are then the same on screen at any
    DPI (a 9-pt tick label is 12 CSS px)."""
    raw = path.read_bytes()
    width, height, dpi = png_size(raw)
    css_w = round(width * CSS_PX_PER_INCH / dpi)
    css_h = round(height * CSS_PX_PER_INCH / dpi)
    data = base64.b64encode(raw).decode("ascii")
    return (f'<figure style="width:{css_w}px"><img alt="{html.escape(path.stem)}" '
            f'width="{css_w}" height="{css_h}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


_TD = {True: '<td class="text">', False: "<td>"}
_TEXT_COLUMNS = {"claim", "verdict", "measured", "reason", "warning", "value", "key",
                 "source", "dataset", "cell"}


def _table(df: pd.DataFrame, regime_col: str | None = None, max_rows: int | None = None,
           settings: set[str] | frozenset[str] = frozenset()) -> str:
    """An HTML table in the one number format (:func:`fmt_number`); ``settings``: the
    columns that hold run settings (printed as given), not measurements."""
    if max_rows is not None and len(df) > max_rows:
        df = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    text_cols = [c in _TEXT_COLUMNS or not (pd.api.types.is_numeric_dtype(df[c])
                                            or pd.api.types.is_bool_dtype(df[c]))
                 for c in df.columns]
    is_setting = [c in settings for c in df.columns]
    rows = []
    for r in df.itertuples(index=False):
        cls = ""
        if regime_col:
            cls = f' class="{html.escape(str(r[list(df.columns).index(regime_col)]))}"'
        cells = "".join(
            f"{_TD[text]}{html.escape(fmt_number(v, setting))}</td>"
            for v, text, setting in zip(r, text_cols, is_setting, strict=True))
        rows.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _claims_section(sweep_dir: Path) -> str:
    """The paper's findings evaluated on this sweep alone (others: not measured here)."""
    from acthash.presentation.claims import ClaimCriteria, evaluate_claims

    crit = ClaimCriteria()
    head = "<h2>Paper claims</h2>"
    try:
        table = evaluate_claims([sweep_dir], crit)
    except ValueError as e:  # no factor varies: say so instead of failing the report
        return head + f"<p>{html.escape(str(e))}</p>"
    shown = table[table["verdict"] != "not measured here"]
    rest = table[table["verdict"] == "not measured here"]["claim"].unique()
    cols = ["dataset", "claim", "verdict", "measured", "reason", "warning"]
    body = _table(shown[cols]) if len(shown) else "<p>no claim is measured by this sweep</p>"
    note = (f"<p>Not measured by this sweep: {html.escape(', '.join(rest))} (run "
            "<code>acthash claims</code> over several presets' sweeps).</p>" if len(rest) else "")
    return head + f"<pre>{html.escape(crit.describe())}</pre>" + body + note


def build_report(sweep_dir: str | Path, out: str | Path | None = None, *,
                 max_rows: int = 2000) -> Path:
    """Write a self-contained HTML report of a sweep directory; returns its path.

    Missing figures (``figures/``) and phase charts (when width and epoch or sample size
    vary) are drawn first. The full results table is included up to ``max_rows`` rows
    (the Parquet file holds all of them).
    """
    from acthash.presentation.phase import PhaseThresholds, classify, phase_charts
    from acthash.presentation.plots import knn_label, plot_results

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise MissingFileError(f"no sweep directory at {sweep_dir}; pass the --out of a sweep")
    df = load_results(sweep_dir)
    meta = load_sweep_meta(sweep_dir)
    env_path = sweep_dir / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    k = df["k"].dropna().unique() if "k" in df.columns else []
    knn = knn_label(k[0] if len(k) == 1 else None)
    fig_dir = sweep_dir / "figures"
    if not any(not p.name.startswith("phase_") for p in fig_dir.glob("*.png")):
        plot_results(sweep_dir, fig_dir)
    thresholds = PhaseThresholds.for_results(sweep_dir)
    phase_table = None
    try:
        if not list(fig_dir.glob("phase_*.png")):
            phase_table, _ = phase_charts([sweep_dir], fig_dir, thresholds)
        else:
            phase_table = classify(df, thresholds)
    except ActhashError:
        phase_table = None  # no size x time / size x sample-size plane in this sweep
    name = meta.get("name", sweep_dir.name)
    parts = [f"<h1>acthash sweep report: {html.escape(name)}</h1>"]
    if meta.get("description"):
        parts.append(f"<p>{html.escape(meta['description'])}</p>")
    n_cells = meta.get("n_cells")
    parts.append(f"<p>{df['cell'].nunique() if 'cell' in df else '?'} of {n_cells or '?'} cells "
                 f"finished, {len(df)} result rows (one per cell and checkpoint). Accuracies "
                 f"are fractions; K-Means is Hungarian-matched; K-NN is Hamming {knn} "
                 "(train: leave-one-out); logistic regression is one-vs-one L2, C=1.</p>")
    parts.append('<h2>Figures</h2><div class="figs">')
    main = f"{meta.get('name', '')}_{meta.get('factor', '')}.png"  # the sweep's own factor first
    for p in sorted(fig_dir.glob("*.png"),
                    key=lambda p: (p.name.startswith("phase_"), p.name != main, p.name)):
        parts.append(_img(p))
    parts.append("</div>")
    settings = _SETTINGS | set(meta.get("grid") or {}) | set(meta.get("base") or {})
    by = [c for c in ("dataset", "width", "depth", "n_train", "weight_decay", "label_noise",
                      "epoch") if c in df.columns and df[c].nunique(dropna=False) > 1]
    if by:
        parts.append("<h2>Summary (mean ± std over seeds; the value alone for one seed)</h2>")
        parts.append(_table(summary_table(df, by), settings=settings))
    if phase_table is not None:
        parts.append("<h2>Phase classification</h2>")
        parts.append(f"<pre>{html.escape(thresholds.describe())}</pre>")
        pt = phase_table.drop(columns=[c for c in ("source",) if c in phase_table.columns])
        parts.append(_table(pt.assign(regime=pt["regime"].astype(str)), regime_col="regime",
                            settings=settings))
    parts.append(_claims_section(sweep_dir))
    parts.append("<h2>Sweep configuration</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre>")
    parts.append("<h2>Environment</h2>")
    parts.append(_table(pd.DataFrame({"key": list(env), "value": [str(v) for v in env.values()]})))
    parts.append(f"<h2>All results ({len(df)} rows"
                 f"{f', first {max_rows} shown' if len(df) > max_rows else ''})</h2>")
    parts.append(f"<details><summary>show table</summary>{_table(df, max_rows=max_rows, settings=settings)}"
                 "</details>")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>acthash sweep {html.escape(name)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    out = Path(out) if out is not None else sweep_dir / "report.html"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out
