"""``acthash sweep``: a grid of runs into a resumable sweep directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._options import Deprecated, Format, _parse_ints, _take_deprecated
from acthash.cli._tables import console, err_console, print_frame, show
from acthash.errors import EXIT_USER_ERROR, ConfigError


def sweep(
    config: Annotated[Path | None, typer.Argument(help="Sweep file (.yaml/.yml/.toml).")] = None,
    preset: Annotated[str | None, typer.Option(
        help="model-size, training-time, sample-size, regularization, label-noise or "
        "random-data (instead of CONFIG).")] = None,
    scale: Annotated[str | None, typer.Option(
        help="Preset scale: cpu (minutes on 2 cores) or paper [default: cpu]; --preset "
        "only (a sweep file sets its sizes in base/grid).")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Preset dataset (default digits; paper: mnist); --preset only (a sweep file "
        "sets base.dataset or grid.dataset).")] = None,
    seed: Annotated[str | None, typer.Option(
        help="Seeds, comma-separated (replaces the file's or preset's).")] = None,
    repeats: Annotated[int | None, typer.Option(
        help="Seeds 0..N-1 (instead of --seed).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Sweep directory (default sweeps/<name>).")] = None,
    executor: Annotated[str, typer.Option(help="serial, process or ray.")] = "serial",
    workers: Annotated[int, typer.Option(
        help="Worker processes (process) or local Ray CPUs (ray).")] = 1,
    ray_address: Annotated[str | None, typer.Option(
        help="Join a Ray cluster: auto, or ray://host:10001 (default: a local Ray).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Model cache (default <sweep>/cache).")] = None,
    threads: Annotated[int, typer.Option(help="torch threads per cell.")] = 1,
    gpus_per_cell: Annotated[float | None, typer.Option(
        help="Ray GPUs per cell (default 1 when the cluster has GPUs, else 0).")] = None,
    wait: Annotated[bool, typer.Option(
        help="If another process is computing this sweep directory, wait for it.")] = False,
    dry_run: Annotated[bool, typer.Option(help="List the cells and stop.")] = False,
    progress: Annotated[bool, typer.Option(
        help="Show a progress bar (cells done/total, ETA).")] = True,
    format: Format = "table",
    seeds_: Annotated[str | None, Deprecated("--seeds", "--seed")] = None,
) -> None:
    """Run a grid of experiments; a rerun computes only the missing cells."""
    seeds = _take_deprecated({"seed": seed, "seeds_": seeds_}, {"seeds_": "seed"})["seed"]
    from acthash.runs.presets import preset as make_preset
    from acthash.runs.sweep import SweepConfig, run_sweep

    if (config is None) == (preset is None):
        raise typer.BadParameter("give either a sweep file CONFIG or --preset NAME")
    if seeds is not None and repeats is not None:
        raise typer.BadParameter("give either --seed or --repeats, not both")
    if preset:
        cfg = make_preset(preset, scale=scale or "cpu", dataset=dataset)
    else:
        _refuse_preset_flags(config, scale=scale, dataset=dataset)
        cfg = SweepConfig.from_file(config)
    if seeds is not None or repeats is not None:
        seed_list = _parse_ints(seeds) if seeds is not None else list(range(repeats))
        cfg = SweepConfig.from_dict({**cfg.to_dict(), "seeds": seed_list})
    cells = cfg.cells()
    sweep_dir = out or Path("sweeps") / cfg.name
    notes = console if format == "table" else err_console
    notes.print(f"sweep [bold]{cfg.name}[/]: {len(cells)} cells -> {sweep_dir}")
    if dry_run and format != "table":
        import pandas as pd

        print_frame(pd.DataFrame([{"#": c.index, "key": c.key, **c.params} for c in cells]),
                    format)
        return
    if dry_run:
        table = Table(title="cells")
        keys = list(cells[0].params) if cells else []
        for col in ("#", "key", *keys):
            table.add_column(col)
        for c in cells:
            table.add_row(str(c.index), c.key, *[str(c.params[k]) for k in keys])
        show(table)
        return
    result = run_sweep(cfg, sweep_dir, executor=executor, workers=workers,
                       ray_address=ray_address, cache_dir=cache_dir, threads=threads,
                       gpus_per_cell=gpus_per_cell, progress=progress, wait=wait)
    if format == "table":
        table = Table(title=f"sweep {cfg.name}")
        table.add_column("")
        table.add_column("value", justify="right")
        for key, v in result.summary().items():
            table.add_row(key.replace("_", " "), str(v))
        show(table)
    else:
        import pandas as pd

        print_frame(pd.DataFrame([result.summary()]), format)
    notes.print(f"results: [bold]{sweep_dir / 'results.parquet'}[/]")
    if result.failed:
        for key, err in result.failed.items():
            err_console.print(f"[bold red]cell {key} failed:[/] {err}")
        err_console.print(f"{len(result.failed)} cell(s) failed (see "
                          f"{sweep_dir / 'failures.json'}); fix the config and rerun: only "
                          "missing cells run")
        raise typer.Exit(code=EXIT_USER_ERROR)


def _refuse_preset_flags(config: Path, *, scale: str | None, dataset: str | None) -> None:
    """--scale and --dataset shape a preset; with a sweep file they would be ignored, so they
    are refused, naming the file's keys that set the same things."""
    from acthash.runs.sweep import load_sweep_config

    given = [f for f, v in (("--dataset", dataset), ("--scale", scale)) if v is not None]
    if not given:
        return
    d = load_sweep_config(config)
    base, grid = d.get("base") or {}, d.get("grid") or {}
    keys = []
    if dataset is not None:
        if "dataset" in grid:
            keys.append(f"grid.dataset (now {grid['dataset']!r})")
        else:
            keys.append(f"base.dataset (now {base.get('dataset', 'digits')!r}"
                        + (")" if "dataset" in base else ", the default: the key is absent)"))
    if scale is not None:
        sizes = [f"{where}.{k}" for where, block in (("base", base), ("grid", grid))
                 for k in block if k in ("epochs", "width", "sample_size", "checkpoints")]
        keys.append("the sizes in its keys " + (", ".join(sizes) if sizes else
                                               "base.epochs, grid.width, ...")
                    + " (a sweep file has no scale)")
    raise ConfigError(
        f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --preset only and would be ignored with the sweep "
        f"file {config}: it sets {'; '.join(keys)}. Edit those keys in the file, or drop "
        f"{' and '.join(given)} (or use --preset NAME {' '.join(f'{g} ...' for g in given)})")


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the root command."""
    app.command()(sweep)
