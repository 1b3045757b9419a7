"""Commands that read finished sweeps: ``plot``, ``phase-chart``, ``report`` and ``claims``
(the presentation layer, pandas and matplotlib only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._options import Format
from acthash.cli._tables import _fmt, console, err_console, print_frame, show


def plot(
    results: Annotated[Path, typer.Argument(help="Sweep directory or results .parquet/.csv.")],
    factor: Annotated[str | None, typer.Option(
        help="x axis (default: the sweep's factor).")] = None,
    hue: Annotated[str | None, typer.Option(
        help="Separate series per value of this column.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Figure folder (default <sweep>/figures).")] = None,
) -> None:
    """Figures: encoding properties vs the factor, mean ± std over seeds (PNG + SVG)."""
    from acthash.presentation.plots import plot_results

    for p in plot_results(results, out, factor=factor, hue=hue):
        console.print(f"wrote {p}")


def phase_chart(
    results: Annotated[list[Path], typer.Argument(help="Sweep directories or results files.")],
    out: Annotated[Path | None, typer.Option(
        help="Folder (default: the first sweep's figures/).")] = None,
    under: Annotated[float | None, typer.Option(
        help="Redundancy above this: under-expressive [default 0.1].")] = None,
    sufficient: Annotated[float | None, typer.Option(
        help="Redundancy at or below this (and accuracy at its plateau): "
        "sufficiently-expressive [default 0.001].")] = None,
    plateau_tol: Annotated[float | None, typer.Option(
        help="Accuracy within this of its plateau [default 0.02].")] = None,
    redundancy: Annotated[str | None, typer.Option(
        help="Redundancy column [default redundancy_train].")] = None,
    accuracy: Annotated[str | None, typer.Option(
        help="Categorization accuracy column [default knn_test].")] = None,
    format: Format = "table",
) -> None:
    """Classify each point into under-/critically-/sufficiently-expressive and chart it.

    Thresholds: the options, else the first sweep's `phase:` settings, else the defaults.
    """
    from acthash.presentation.phase import PhaseThresholds, phase_charts
    from acthash.runs.results import sweep_dir_of

    t = PhaseThresholds.for_results(results, under=under, sufficient=sufficient,
                                    plateau_tol=plateau_tol, redundancy=redundancy,
                                    accuracy=accuracy)
    out_dir = out or sweep_dir_of(results[0]) / "figures"
    table, paths = phase_charts(results, out_dir, t)
    if format != "table":
        print_frame(table, format)
        err_console.print(t.describe())
        for p in paths:
            err_console.print(f"wrote {p}")
        return
    colors = {"under": "red", "critical": "yellow", "sufficient": "green"}
    for source, sub in table.groupby("source", sort=False):
        sub = sub.dropna(axis=1, how="all")
        for c in sub.columns:  # integer axes come back as floats after the concat
            if sub[c].dtype.kind == "f" and sub[c].notna().all() and (sub[c] % 1 == 0).all():
                sub[c] = sub[c].astype(int)
        rt = Table(title=f"phase classification of {source} (mean over seeds)")
        cols = [c for c in sub.columns if c not in ("source", "redundancy_std", "accuracy_std")]
        for c in cols:
            rt.add_column(c, justify="left" if c == "regime" else "right")
        for _, r in sub.iterrows():
            rt.add_row(*[f"[{colors[str(r[c])]}]{r[c]}[/]" if c == "regime" else _fmt(r[c])
                         for c in cols])
        show(rt)
    console.print(t.describe())
    for p in paths:
        console.print(f"wrote {p}")


def report(
    sweep_dir: Annotated[Path, typer.Argument(help="Sweep directory.")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file (default <sweep>/report.html).")] = None,
) -> None:
    """One self-contained HTML page: figures, tables, config and environment."""
    from acthash.presentation.report import build_report

    console.print(f"wrote [bold]{build_report(sweep_dir, out)}[/]")


def claims_cmd(
    sweeps: list[Path] = typer.Argument(..., help="Sweep directories (any presets, any datasets)."),
    zero: float | None = typer.Option(None, help="Redundancy ≈ 0: at most this [default 0.01]."),
    one: float | None = typer.Option(None, help="Redundancy ≈ 1: at least this [default 0.9]."),
    rise: float | None = typer.Option(None, help="Epoch-1 rise of redundancy [default 0.01]."),
    decay: float | None = typer.Option(
        None, help="Final redundancy at most this x its peak [default 0.5]."),
    gain: float | None = typer.Option(None, help="An accuracy rises by at least this [0.02]."),
    minor: float | None = typer.Option(
        None, help="Minor factor range at most this x the smallest main range [0.5]."),
    chance_margin: float | None = typer.Option(
        None, help="Random inputs: accuracy at most 1/classes + this [0.05]."),
    accuracies: str | None = typer.Option(
        None, help="Accuracy columns, comma-separated [kmeans_test,knn_test,logreg_test]."),
    out: Path | None = typer.Option(None, help="Also write the table (.csv or .parquet)."),
) -> None:
    """State each of the paper's findings with an explicit criterion, evaluate it on the
    sweeps' results and print the numbers, a verdict and a one-line reason."""
    from acthash._utils.io import write_table
    from acthash.presentation.claims import ClaimCriteria, evaluate_claims

    given = {"zero": zero, "one": one, "rise": rise, "decay": decay, "gain": gain,
             "minor": minor, "chance_margin": chance_margin, "accuracies": accuracies}
    crit = ClaimCriteria.from_dict({k: v for k, v in given.items() if v is not None})
    table = evaluate_claims(sweeps, crit)
    if out is not None:
        write_table(out, table)
    colors = {"holds": "green", "does not hold": "red", "not measured here": "yellow"}
    for ds, sub in table.groupby("dataset", sort=False):
        rt = Table(title=f"the paper's findings on {ds}", show_lines=True)
        for col in ("claim", "verdict", "measured", "reason"):
            rt.add_column(col, overflow="fold")
        for r in sub.itertuples():
            rt.add_row(r.claim, f"[{colors[r.verdict]}]{r.verdict}[/]", r.measured,
                       r.reason + (f" [dim]({r.warning})[/]" if r.warning else ""))
        show(rt)
    console.print("criteria:\n" + crit.describe())
    if out is not None:
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``plot``, ``phase-chart``, ``report`` and ``claims`` to the root command."""
    app.command()(plot)
    app.command("phase-chart")(phase_chart)
    app.command()(report)
    app.command("claims")(claims_cmd)
