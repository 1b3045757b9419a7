"""What the commands print: the rich consoles, number formatting, and the tables of a run's
metrics and timings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _run_dir_line(path) -> None:
    console.print(f"run directory: [bold]{path}[/]")


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


def print_metrics(metrics, k: int | None = None) -> None:
    """Rich table: one row per property and split, one column per checkpoint (epoch, or the
    file measured)."""
    from acthash.properties.catalog import property_rows

    if k is None and "k" in metrics.columns:
        k = int(metrics["k"].iloc[0])
    table = Table(title="encoding properties", show_lines=False)
    table.add_column("property", no_wrap=True)
    table.add_column("split")
    for label in _column_labels(metrics):
        table.add_column(label, justify="right")
    for key, label in property_rows(k):
        first = True
        for split in ("train", "test"):
            col = f"{key}_{split}"
            if col in metrics.columns and not (key.endswith("_std") and metrics[col].isna().all()):
                shown = "  std over seeds" if key.endswith("_std") else label
                table.add_row(shown if first else "", split, *[_fmt(v) for v in metrics[col]])
                first = False
    console.print(table)
    if "kmeans_n_seeds" in metrics.columns:
        n = int(metrics["kmeans_n_seeds"].iloc[0])
        console.print(f"K-Means accuracy: mean over {n} K-Means seeds" if n > 1 else
                      "K-Means accuracy: one K-Means seed")
    print_timings(metrics)


def print_timings(metrics) -> None:
    """Rich table of the ``seconds_*`` columns of a run's metrics, one column per epoch (rows:
    :func:`acthash.properties.catalog.timing_rows`)."""
    from acthash.properties.catalog import timing_rows

    present = [(key, label) for key, label in timing_rows() if f"seconds_{key}" in metrics.columns]
    if not present:
        return
    table = Table(title="seconds")
    table.add_column("stage")
    for label in _column_labels(metrics):
        table.add_column(label, justify="right")
    for key, label in present:
        table.add_row(label, *[f"{v:.1f}" for v in metrics[f"seconds_{key}"]])
    console.print(table)
