"""What the commands print: the rich consoles, number formatting, the tables of a run's
metrics and timings, and the machine-readable formats (``--format csv|json|markdown``).

A table never cuts a value: columns are sized to their widest cell, labels wrap at word
boundaries, and the checkpoint columns that do not fit the terminal go into a further table
below (rich assumes 80 columns when stdout is not a terminal)."""

from __future__ import annotations

import json
import math
import sys

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

#: the values of ``--format``: a rich table for people, or plain output for scripts
FORMATS = ("table", "csv", "json", "markdown")

# a rich table's row: "│ " + cell + " " per column, then "│"
_PER_COLUMN = 3


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _run_dir_line(path, fmt: str = "table") -> None:
    (console if fmt == "table" else err_console).print(f"run directory: [bold]{path}[/]")


def _column_labels(metrics) -> list[str]:
    """One label per metrics row: ``epoch N`` for a run's checkpoints, else the checkpoint
    (or codes) file measured, else the row number."""
    if "epoch" in metrics.columns:
        return [f"epoch {e}" for e in metrics["epoch"]]
    for col in ("checkpoint", "train_codes"):
        if col in metrics.columns and metrics[col].notna().all():
            return [str(v) for v in metrics[col]]
    return ["measured" if "checkpoint" in metrics.columns else f"row {i}"
            for i in range(len(metrics))]


def show(table: Table, target: Console | None = None) -> None:
    """Print a rich table whose cells fold instead of ending in "…" when the terminal is
    narrow (rich's default overflow cuts them)."""
    for column in table.columns:
        column.overflow = "fold"
    (target or console).print(table)


def _longest_word(text: str) -> int:
    return max((len(w) for w in str(text).split()), default=0)


def fitted_tables(title: str, key_headers: list[str], keys: list[list[str]],
                  value_headers: list[str], values: list[list[str]],
                  width: int | None = None) -> list[Table]:
    """Rich tables of ``keys`` (the left columns, repeated in every table) beside ``values``
    (one column per header, right-aligned), as many tables as it takes to fit ``width``
    (default: the console's) without cutting a value. The first key column wraps at word
    boundaries when that saves a table; every other column keeps its widest cell."""
    width = width or console.width
    key_w = [max([len(h), *(len(r[i]) for r in keys)]) for i, h in enumerate(key_headers)]
    val_w = [max([len(h), *(len(r[j]) for r in values)]) for j, h in enumerate(value_headers)]
    label_min = max([_longest_word(key_headers[0]), *(_longest_word(r[0]) for r in keys), 1])
    rest = 1 + sum(w + _PER_COLUMN for w in key_w[1:])

    def chunks(label_w: int) -> list[list[int]]:
        room = width - rest - label_w - _PER_COLUMN
        out: list[list[int]] = [[]]
        used = 0
        for j, w in enumerate(val_w):
            if out[-1] and used + w + _PER_COLUMN > room:
                out.append([])
                used = 0
            out[-1].append(j)
            used += w + _PER_COLUMN
        return out

    label_w = key_w[0]
    parts = chunks(label_w)
    if len(parts) > 1:  # wrap the label column when that saves a table
        n_tables = min(len(parts), len(chunks(label_min)))
        size = math.ceil(len(val_w) / n_tables)  # balanced: as many columns in each table
        parts = [list(range(lo, min(lo + size, len(val_w))))
                 for lo in range(0, len(val_w), size)]
        need = max(sum(val_w[j] + _PER_COLUMN for j in part) for part in parts)
        label_w = max(label_min, min(key_w[0], width - rest - _PER_COLUMN - need))
    tables = []
    for n, part in enumerate(parts, 1):
        shown = title if len(parts) == 1 else f"{title} ({n}/{len(parts)})"
        table = Table(title=shown)
        for i, h in enumerate(key_headers):
            table.add_column(h, width=label_w if i == 0 else key_w[i], overflow="fold",
                             no_wrap=i > 0)
        for j in part:
            table.add_column(value_headers[j], width=val_w[j], justify="right",
                             overflow="fold", no_wrap=True)
        for key_row, value_row in zip(keys, values, strict=True):
            table.add_row(*key_row, *[value_row[j] for j in part])
        tables.append(table)
    return tables


def _metric_rows(metrics, k: int | None):
    """(property label, split) keys and the formatted values of the metrics table."""
    from acthash.properties.catalog import property_rows

    keys, values = [], []
    for key, label in property_rows(k):
        first = True
        for split in ("train", "test"):
            col = f"{key}_{split}"
            if col in metrics.columns and not (key.endswith("_std") and metrics[col].isna().all()):
                shown = "  std over seeds" if key.endswith("_std") else label
                keys.append([shown if first else "", split])
                values.append([_fmt(v) for v in metrics[col]])
                first = False
    return keys, values


def _timing_rows(metrics):
    from acthash.properties.catalog import timing_rows

    present = [(key, label) for key, label in timing_rows() if f"seconds_{key}" in metrics.columns]
    return ([[label] for _, label in present],
            [[f"{v:.1f}" for v in metrics[f"seconds_{key}"]] for key, _ in present])


def _kmeans_note(metrics) -> str | None:
    if "kmeans_n_seeds" not in metrics.columns:
        return None
    n = int(metrics["kmeans_n_seeds"].iloc[0])
    return f"K-Means accuracy: mean over {n} K-Means seeds" if n > 1 else (
        "K-Means accuracy: one K-Means seed")


def print_metrics(metrics, k: int | None = None, fmt: str = "table") -> None:
    """A run's metrics: with ``fmt="table"`` rich tables (one row per property and split,
    one column per checkpoint epoch, then the timings); ``"csv"``/``"json"``: every column
    of ``metrics`` (the rows of ``metrics.parquet``) on stdout at full precision;
    ``"markdown"``: the property and timing tables as Markdown. Only the data go to stdout
    in the plain formats; notes go to stderr."""
    if k is None and "k" in metrics.columns:
        k = int(metrics["k"].iloc[0])
    if fmt in ("csv", "json"):
        print_frame(metrics, fmt)
        return
    headers = _column_labels(metrics)
    keys, values = _metric_rows(metrics, k)
    t_keys, t_values = _timing_rows(metrics)
    note = _kmeans_note(metrics)
    if fmt == "markdown":
        out = [markdown_table(["property", "split", *headers],
                              [[*a, *b] for a, b in zip(keys, values, strict=True)])]
        if t_keys:
            out.append(markdown_table(["seconds", *headers],
                                      [[*a, *b] for a, b in zip(t_keys, t_values, strict=True)]))
        sys.stdout.write("\n".join(out))
        if note:
            err_console.print(note)
        return
    for table in fitted_tables("encoding properties", ["property", "split"], keys, headers,
                               values):
        console.print(table)
    if note:
        console.print(note)
    print_timings(metrics)


def print_timings(metrics) -> None:
    """Rich table of the ``seconds_*`` columns of a run's metrics, one column per epoch (rows:
    :func:`acthash.properties.catalog.timing_rows`)."""
    keys, values = _timing_rows(metrics)
    if not keys:
        return
    for table in fitted_tables("seconds", ["stage"], keys,
                               _column_labels(metrics), values):
        console.print(table)


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in a cell escaped)."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |\n"

    return line(headers) + line(["---"] * len(headers)) + "".join(line(r) for r in rows)


def _plain(v):
    """A JSON-ready Python value: numpy scalars unwrapped, NaN/inf as null."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def print_frame(df, fmt: str, title: str = "") -> None:
    """A DataFrame on stdout for scripts (``csv``: header and rows, floats at full
    precision; ``json``: a list of records, NaN as null; ``markdown``: a table) or as a rich
    table (``table``, titled ``title``)."""
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif fmt == "json":
        records = [{str(c): _plain(v) for c, v in row.items()}
                   for row in df.to_dict(orient="records")]
        sys.stdout.write(json.dumps(records, indent=1, default=str) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(markdown_table([str(c) for c in df.columns],
                                        [[_fmt(v) for v in r] for r in df.itertuples(index=False)]))
    else:
        table = Table(title=title or None)
        for c in df.columns:
            table.add_column(str(c), justify="right" if df[c].dtype.kind in "iuf" else "left")
        for r in df.itertuples(index=False):
            table.add_row(*[_fmt(v) for v in r])
        show(table)
