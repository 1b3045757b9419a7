"""One self-contained HTML page for a sweep: figures (base64), tables, config, environment.

:func:`build_report` draws the figures and phase charts that are missing, then writes
``<sweep>/report.html``: no external file, script or stylesheet, so it can be mailed.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from acthash._utils.io import atomic_path
from acthash.errors import ActhashError, MissingFileError
from acthash.properties.catalog import summary_columns
from acthash.runs.results import load_results, load_sweep_meta

__all__ = ["build_report", "summary_table"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1250px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.82em}
.under{background:#f4a6a0}.critical{background:#f7d774}.sufficient{background:#9fd49b}
figcaption{font-size:.85em;color:#555}
"""

_SUMMARY_COLS = summary_columns()  # the headline columns, from the property catalog


def summary_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean ± std over seeds of the headline columns per ``by`` group, as strings (the
    value alone where a group has a single seed: no spread is shown)."""
    cols = [c for c in _SUMMARY_COLS if c in df.columns]
    g = df.groupby(by, dropna=False)[cols]
    mean, std = g.mean(), g.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    for c in cols:
        out[c] = [f"{m:.3f}" if pd.isna(s) else f"{m:.3f} ± {s:.3f}"
                  for m, s in zip(mean[c], std[c], strict=True)]
    out["seeds"] = g.size()
    return out.reset_index()


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _table(df: pd.DataFrame, regime_col: str | None = None, max_rows: int | None = None) -> str:
    if max_rows is not None and len(df) > max_rows:
        df = df.head(max_rows)
    fmt = df.copy()
    for c in fmt.columns:
        if pd.api.types.is_float_dtype(fmt[c]):
            fmt[c] = fmt[c].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in fmt.columns)
    rows = []
    for _, r in fmt.iterrows():
        cls = f' class="{html.escape(str(r[regime_col]))}"' if regime_col else ""
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in r)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
    parts.append("<h2>Figures</h2>")
    for p in sorted(fig_dir.glob("*.png"), key=lambda p: (p.name.startswith("phase_"), p.name)):
        parts.append(_img(p))
    by = [c for c in ("dataset", "width", "depth", "n_train", "weight_decay", "label_noise",
                      "epoch") if c in df.columns and df[c].nunique(dropna=False) > 1]
    if by:
        parts.append("<h2>Summary (mean ± std over seeds; the value alone for one seed)</h2>")
        parts.append(_table(summary_table(df, by)))
    if phase_table is not None:
        parts.append("<h2>Phase classification</h2>")
        parts.append(f"<pre>{html.escape(thresholds.describe())}</pre>")
        pt = phase_table.drop(columns=[c for c in ("source",) if c in phase_table.columns])
        parts.append(_table(pt.assign(regime=pt["regime"].astype(str)), regime_col="regime"))
    parts.append(_claims_section(sweep_dir))
    parts.append("<h2>Sweep configuration</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre>")
    parts.append("<h2>Environment</h2>")
    parts.append(_table(pd.DataFrame({"key": list(env), "value": [str(v) for v in env.values()]})))
    parts.append(f"<h2>All results ({len(df)} rows"
                 f"{f', first {max_rows} shown' if len(df) > max_rows else ''})</h2>")
    parts.append(f"<details><summary>show table</summary>{_table(df, max_rows=max_rows)}"
                 "</details>")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>acthash sweep {html.escape(name)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    out = Path(out) if out is not None else sweep_dir / "report.html"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out
