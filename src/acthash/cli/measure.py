"""``acthash measure`` (the encoding properties of a model the user brings, no training) and
``acthash properties`` (saved codes re-scored with other options). Defaults come from
:class:`~acthash.runs.config.MeasureConfig` and :class:`~acthash.runs.config.PropertiesConfig`;
the measuring stack is imported when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from acthash.cli._options import (
    Activation,
    Batchnorm,
    Codes,
    CodesToDisk,
    Convention,
    DataDir,
    Dataset,
    DatasetOption,
    Depth,
    Device,
    DropConstant,
    Force,
    Format,
    K,
    KmeansNInit,
    KmeansNSeeds,
    Layers,
    LogregSolver,
    LogregStrategy,
    MemoryBudget,
    ModelOption,
    Out,
    Progress,
    PropertyBackend,
    RunsRoot,
    SaveCodes,
    Seed,
    Ties,
    Width,
    WidthMult,
    _config,
    _dataset_options,
    _defaults,
    _model_options,
)
from acthash.cli._tables import _run_dir_line, console, err_console, print_metrics
from acthash.runs.config import MeasureConfig, PropertiesConfig

_MEASURE = _defaults(MeasureConfig)
_PROPS = _defaults(PropertiesConfig)


def measure(
    model: Annotated[str | None, typer.Option(
        help="A registry name (mlp, resnet20, ...), module:callable (importable from the "
        "working directory), a TorchScript file or a torch.export .pt2 file [default: the "
        "model a run's --checkpoint records].")] = _MEASURE.model,
    checkpoint: Annotated[str | None, typer.Option(
        help="A state_dict file, or a run's model.pt / checkpoints/epoch_XXXX.pt, loaded "
        "into the model.")] = _MEASURE.checkpoint,
    dataset: Dataset = _MEASURE.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006 - typer reads the default
    width: Width = _MEASURE.width,
    depth: Depth = _MEASURE.depth,
    batchnorm: Batchnorm = _MEASURE.batchnorm,
    activation: Activation = _MEASURE.activation,
    width_mult: WidthMult = None,
    model_option: ModelOption = [],  # noqa: B006
    seed: Seed = _MEASURE.seed,
    k: K = _MEASURE.k,
    layers: Layers = _MEASURE.layers,
    drop_constant: DropConstant = _MEASURE.drop_constant,
    codes: Codes = _MEASURE.codes,
    convention: Convention = _MEASURE.convention,
    ties: Ties = _MEASURE.ties,
    kmeans_n_seeds: KmeansNSeeds = _MEASURE.kmeans_n_seeds,
    kmeans_n_init: KmeansNInit = _MEASURE.kmeans_n_init,
    logreg_solver: LogregSolver = _MEASURE.logreg_solver,
    logreg_strategy: LogregStrategy = _MEASURE.logreg_strategy,
    property_backend: PropertyBackend = _MEASURE.property_backend,
    memory_budget: MemoryBudget = _MEASURE.memory_budget,
    codes_to_disk: CodesToDisk = _MEASURE.codes_to_disk,
    save_codes: SaveCodes = _MEASURE.save_codes,
    device: Device = _MEASURE.device,
    out: Out = None,
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    format: Format = "table",
) -> None:
    """Measure the encoding properties of a given model (no training): a registry model, a
    module:callable, a TorchScript or .pt2 file, with an optional --checkpoint."""
    params = dict(locals())
    from acthash.runs.measure import measure as measure_model

    cfg = _config(MeasureConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  model_options=_model_options(width_mult, model_option))
    result = measure_model(config=cfg, out_dir=out, runs_root=runs_root, force=force,
                           progress=progress)
    print_metrics(result.metrics, k=cfg.k, fmt=format)
    _run_dir_line(result.run_dir, format)


def properties(
    sources: Annotated[list[Path], typer.Argument(
        help="A run directory, or TRAIN.ahc TEST.ahc.", show_default=False)],
    k: K = _PROPS.k,
    drop_constant: DropConstant = _PROPS.drop_constant,
    convention: Convention = _PROPS.convention,
    ties: Ties = _PROPS.ties,
    kmeans_n_seeds: KmeansNSeeds = _PROPS.kmeans_n_seeds,
    kmeans_n_init: KmeansNInit = _PROPS.kmeans_n_init,
    logreg_solver: LogregSolver = _PROPS.logreg_solver,
    logreg_strategy: LogregStrategy = _PROPS.logreg_strategy,
    property_backend: PropertyBackend = _PROPS.property_backend,
    memory_budget: MemoryBudget = _PROPS.memory_budget,
    seed: Annotated[int | None, typer.Option(
        help="Seed of K-Means and logistic regression [default: the run's, else 0].")] = (
            _PROPS.seed),
    dataset: Annotated[str | None, typer.Option(
        help="Dataset name, for the original convention's K-Means mapping [default: the "
        "run's].")] = _PROPS.dataset,
    device: Device = _PROPS.device,
    out: Annotated[Path | None, typer.Option(
        help="Folder of the new table [default: the run directory].")] = None,
    format: Format = "table",
) -> None:
    """Re-score saved codes with other property options: a new properties-<key> table beside
    the old one (never overwritten; the same options again reuse the stored table)."""
    params = dict(locals())
    from acthash.errors import InputError
    from acthash.runs.rescore import rescore

    if len(sources) not in (1, 2):
        raise InputError(f"expected a run directory or TRAIN.ahc TEST.ahc, got {len(sources)} "
                         "paths")
    cfg = _config(PropertiesConfig, {k: v for k, v in params.items() if k != "sources"})
    result = rescore(*sources, config=cfg, out_dir=out)
    print_metrics(result.metrics, k=cfg.k, fmt=format)
    verb = "reused (these options were scored before)" if result.reused else "written"
    (console if format == "table" else err_console).print(
        f"properties table {verb}: [bold]{result.path}[/]")


def register(app: typer.Typer) -> None:
    """Add ``measure`` and ``properties`` to the root command."""
    app.command()(measure)
    app.command()(properties)
