"""``acthash study planes`` (exact linear regions on planes through test triples, against
width and depth: Hanin & Rolnick's criterion) and ``acthash study local-complexity``. Added to the ``study`` sub-app when
:mod:`acthash.cli.app` imports this module; the study code is imported when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._options import (
    Activation,
    BatchnormFactor,
    BatchSize,
    DataDir,
    Dataset,
    DatasetOption,
    Depth,
    Device,
    Epochs,
    Force,
    LabelNoiseFactor,
    Lr,
    Model,
    ModelOption,
    Optimizer,
    Out,
    Progress,
    RunsRoot,
    Schedule,
    SeedFactor,
    WeightDecay,
    Width,
    _config,
    _csv,
    _dataset_options,
    _defaults,
    _factor_values,
    _model_options,
    _parse_ints,
    _parse_names,
    _switches_text,
)
from acthash.cli._tables import _fmt, _run_dir_line, console
from acthash.cli.study import study_app
from acthash.studies.configs import LocalComplexityConfig, PlanesConfig

_PL = _defaults(PlanesConfig)


@study_app.command("planes")
def study_planes(
    dataset: Dataset = _PL.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    width: Annotated[str, typer.Option(help="MLP widths, comma-separated.")] = ",".join(
        map(str, _PL.width)),
    depth: Annotated[str, typer.Option(help="MLP depths, comma-separated.")] = ",".join(
        map(str, _PL.depth)),
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
    seed: SeedFactor = _csv(_PL.seed),
    init: Annotated[str, typer.Option(
        help="Initializations, comma-separated: default (PyTorch's) and/or he (normal, "
        "variance 2/fan_in).")] = ",".join(_PL.init),
    batchnorm: BatchnormFactor = _switches_text(_PL.batchnorm),
    label_noise: LabelNoiseFactor = _csv(_PL.label_noise),
    device: Device = _PL.device,
    out: Out = None,
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Exact region counts on planes through test triples vs width and depth, at init and
    after training, with Hanin & Rolnick's criterion (count ~ N^2, depth barely matters)."""
    params = dict(locals())
    from acthash.studies.planes import run_planes_study

    cfg = _config(PlanesConfig, params, dataset_options=_dataset_options(data_dir, dataset_option),
                  width=_parse_ints(width), depth=_parse_ints(depth),
                  init=_parse_names(init) or ["default"],
                  **_factor_values(seed=seed, batchnorm=batchnorm, label_noise=label_noise))
    result = run_planes_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                              force=force)
    table = Table(title="regions on planes: log count = a + b log N + c depth")
    for col in ("init", "batchnorm", "noise", "epoch", "exponent b", "factor per layer",
                "verdict"):
        table.add_column(col)
    for r in result.summary.itertuples():
        table.add_row(r.init, "on" if r.batchnorm else "off", f"{r.label_noise:g}",
                      str(r.epoch), _fmt(r.exponent_in_neurons),
                      _fmt(r.factor_per_extra_layer), r.verdict)
    console.print(table)
    _run_dir_line(result.run_dir)


_LC = _defaults(LocalComplexityConfig)


@study_app.command("local-complexity")
def study_local_complexity(
    dataset: Dataset = _LC.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    model: Model = _LC.model,
    width: Width = _LC.width,
    depth: Depth = _LC.depth,
    batchnorm: BatchnormFactor = _switches_text(_LC.batchnorm),
    label_noise: LabelNoiseFactor = _csv(_LC.label_noise),
    activation: Activation = _LC.activation,
    model_option: ModelOption = [],  # noqa: B006
    epochs: Epochs = _LC.epochs,
    lr: Lr = _LC.lr,
    batch_size: BatchSize = _LC.batch_size,
    optimizer: Optimizer = _LC.optimizer,
    weight_decay: WeightDecay = _LC.weight_decay,
    loss: Annotated[str, typer.Option(
        help="Training loss: mse (to one-hot targets, the authors') or ce.")] = _LC.loss,
    schedule: Schedule = _LC.schedule,
    sample_size: Annotated[int | None, typer.Option(
        help="Train on the first N examples.")] = _LC.sample_size,
    checkpoints: Annotated[str, typer.Option(
        help="Epochs to measure at (default: n-checkpoints log-spaced).")] = "",
    n_checkpoints: Annotated[int, typer.Option(
        help="Log-spaced checkpoints, 0 and the last included.")] = _LC.n_checkpoints,
    n_points: Annotated[int, typer.Option(
        help="Train, test and random points measured.")] = _LC.n_points,
    radius: Annotated[float, typer.Option(help="Cross-polytope radius.")] = _LC.radius,
    n_exact: Annotated[int, typer.Option(
        help="Train points also counted exactly on a 2-D slice at every checkpoint, to "
        "report the sampled count's shortfall (0: off).")] = _LC.n_exact,
    n_directions: Annotated[int, typer.Option(
        help="Orthonormal directions P (2P vertices).")] = _LC.n_directions,
    seed: SeedFactor = _csv(_LC.seed),
    device: Device = _LC.device,
    out: Out = None,
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Local complexity (neurons whose hyperplane crosses a cross-polytope around a point)
    of train, test and random points over log-spaced training checkpoints."""
    params = dict(locals())
    import pandas as pd

    from acthash.studies.local_complexity import run_local_complexity_study

    cfg = _config(LocalComplexityConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  model_options=_model_options(None, model_option),
                  checkpoints=_parse_ints(checkpoints),
                  **_factor_values(seed=seed, batchnorm=batchnorm, label_noise=label_noise))
    result = run_local_complexity_study(cfg, out_dir=out, runs_root=runs_root,
                                        progress=progress, force=force)
    total = result.lc[result.lc["layer"] == "total"]
    mean = total.groupby(["batchnorm", "label_noise", "epoch", "set"])["mean"].mean().unstack()
    acc = result.accuracy.groupby(["batchnorm", "label_noise", "epoch"])[
        ["train_acc", "test_acc"]].mean()
    table = Table(title="local complexity (all layers, mean over points and seeds)")
    for col in ("batchnorm", "noise", "epoch", *mean.columns, "train acc", "test acc"):
        table.add_column(str(col))
    for key, row in mean.iterrows():
        a = acc.loc[key]
        table.add_row("on" if key[0] else "off", f"{key[1]:g}", str(key[2]),
                      *(_fmt(v) for v in row), _fmt(a["train_acc"]), _fmt(a["test_acc"]))
    console.print(table)
    if len(result.exact):
        total = result.exact[result.exact["layer"] == "total"]
        console.print(f"sampled vs exact local complexity on 2-D slices (P = 2, every checkpoint "
                      "and model): "
                      f"mean shortfall {total['shortfall_mean'].mean():.3f} neurons "
                      f"({100 * total['relative_shortfall'].mean():.1f} % of the exact count)")
    for r in result.verdict.itertuples():
        interp = "never" if pd.isna(r.interpolation_epoch) else f"epoch {r.interpolation_epoch}"
        console.print(f"BatchNorm {'on' if r.batchnorm else 'off'}, label noise "
                      f"{r.label_noise:g}: train LC {r.train_lc_start:.2f} -> trough "
                      f"{r.train_lc_trough:.2f} (epoch {r.trough_epoch}) -> peak "
                      f"{r.train_lc_peak:.2f} (epoch {r.peak_epoch}; test {r.test_lc_at_peak:.2f})"
                      f" -> {r.train_lc_end:.2f}; interpolation: {interp} -> {r.verdict}")
    _run_dir_line(result.run_dir)
