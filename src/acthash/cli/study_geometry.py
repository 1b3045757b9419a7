"""``acthash study planes``: exact linear regions on planes through test triples, against
width and depth (Hanin & Rolnick's criterion). Added to the ``study`` sub-app when
:mod:`acthash.cli.app` imports this module; the study code is imported when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._options import (
    BatchSize,
    DataDir,
    Dataset,
    DatasetOption,
    Device,
    Epochs,
    Lr,
    Out,
    Progress,
    RunsRoot,
    Seed,
    _config,
    _dataset_options,
    _defaults,
    _parse_ints,
)
from acthash.cli._tables import _fmt, _run_dir_line, console
from acthash.cli.study import study_app
from acthash.studies.configs import PlanesConfig

_PL = _defaults(PlanesConfig)


@study_app.command("planes")
def study_planes(
    dataset: Dataset = _PL.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    widths: Annotated[str, typer.Option(help="MLP widths, comma-separated.")] = ",".join(
        map(str, _PL.widths)),
    depths: Annotated[str, typer.Option(help="MLP depths, comma-separated.")] = ",".join(
        map(str, _PL.depths)),
    n_planes: Annotated[int, typer.Option(
        help="Planes through random test triples (the same for every model).")] = _PL.n_planes,
    margin: Annotated[float, typer.Option(
        help="Square around each triangle: this fraction of its side on each side.")] = (
        _PL.margin),
    max_regions: Annotated[int, typer.Option(
        help="Stop a partition past this many regions.")] = _PL.max_regions,
    sample_size: Annotated[int | None, typer.Option(
        help="Train on the first N examples.")] = _PL.sample_size,
    epochs: Epochs = _PL.epochs,
    lr: Lr = _PL.lr,
    batch_size: BatchSize = _PL.batch_size,
    seed: Seed = _PL.seed,
    device: Device = _PL.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Exact region counts on planes through test triples vs width and depth, at init and
    after training, with Hanin & Rolnick's criterion (count ~ N^2, depth barely matters)."""
    params = dict(locals())
    from acthash.studies.planes import run_planes_study

    cfg = _config(PlanesConfig, params, dataset_options=_dataset_options(data_dir, dataset_option),
                  widths=_parse_ints(widths), depths=_parse_ints(depths))
    result = run_planes_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    table = Table(title="regions on planes: log count = a + b log N + c depth")
    for col in ("epoch", "exponent b", "factor per layer", "verdict"):
        table.add_column(col)
    for r in result.summary.itertuples():
        table.add_row(str(r.epoch), _fmt(r.exponent_in_neurons), _fmt(r.factor_per_extra_layer),
                      r.verdict)
    console.print(table)
    _run_dir_line(result.run_dir)
