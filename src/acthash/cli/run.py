"""``acthash run`` (train, capture, measure) and ``acthash layers`` (the layers a code is made
of). Defaults come from :class:`~acthash.runs.config.RunConfig`; the training stack is
imported when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from acthash.cli._options import (
    Activation,
    Batchnorm,
    BatchSize,
    Checkpoints,
    Codes,
    CodesToDisk,
    Convention,
    DataDir,
    Dataset,
    DatasetOption,
    Depth,
    Device,
    DropConstant,
    EarlyStopping,
    Epochs,
    Force,
    Format,
    K,
    KmeansNInit,
    KmeansNSeeds,
    Layers,
    LogregSolver,
    LogregStrategy,
    Lr,
    MemoryBudget,
    Model,
    ModelOption,
    Momentum,
    Optimizer,
    Out,
    Progress,
    PropertyBackend,
    RunsRoot,
    SaveCodes,
    Schedule,
    Seed,
    StepSize,
    Ties,
    WeightDecay,
    Width,
    WidthMult,
    _config,
    _dataset_options,
    _defaults,
    _model_options,
    _parse_ints,
)
from acthash.cli._tables import _run_dir_line, console, print_metrics
from acthash.runs.config import RunConfig

_RUN = _defaults(RunConfig)


def run(
    dataset: Dataset = _RUN.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006 - typer reads the default
    label_column: Annotated[str | None, typer.Option(
        help="Label column of a csv:PATH dataset (sets the dataset option label).")] = None,
    model: Model = _RUN.model,
    width: Width = _RUN.width,
    depth: Depth = _RUN.depth,
    batchnorm: Batchnorm = _RUN.batchnorm,
    activation: Activation = _RUN.activation,
    width_mult: WidthMult = None,
    model_option: ModelOption = [],  # noqa: B006
    epochs: Epochs = _RUN.epochs,
    lr: Lr = _RUN.lr,
    batch_size: BatchSize = _RUN.batch_size,
    optimizer: Optimizer = _RUN.optimizer,
    momentum: Momentum = _RUN.momentum,
    weight_decay: WeightDecay = _RUN.weight_decay,
    schedule: Schedule = _RUN.schedule,
    step_size: StepSize = _RUN.step_size,
    early_stopping: EarlyStopping = _RUN.early_stopping,
    checkpoints: Checkpoints = "",
    sample_size: Annotated[int | None, typer.Option(
        help="Train on the first N examples (see --balanced).")] = _RUN.sample_size,
    balanced: Annotated[bool, typer.Option(
        help="Class-balanced random sample instead of the first N.")] = _RUN.balanced,
    label_noise: Annotated[float, typer.Option(
        help="Fraction of training labels moved to another class.")] = _RUN.label_noise,
    random_labels: Annotated[bool, typer.Option(
        help="Replace all training labels at random.")] = _RUN.random_labels,
    val_split: Annotated[float, typer.Option(
        help="Hold out this fraction for validation (0.2 = the paper).")] = _RUN.val_split,
    seed: Seed = _RUN.seed,
    k: K = _RUN.k,
    layers: Layers = _RUN.layers,
    drop_constant: DropConstant = _RUN.drop_constant,
    codes: Codes = _RUN.codes,
    convention: Convention = _RUN.convention,
    ties: Ties = _RUN.ties,
    kmeans_n_seeds: KmeansNSeeds = _RUN.kmeans_n_seeds,
    kmeans_n_init: KmeansNInit = _RUN.kmeans_n_init,
    logreg_solver: LogregSolver = _RUN.logreg_solver,
    property_backend: PropertyBackend = _RUN.property_backend,
    memory_budget: MemoryBudget = _RUN.memory_budget,
    codes_to_disk: CodesToDisk = _RUN.codes_to_disk,
    logreg_strategy: LogregStrategy = _RUN.logreg_strategy,
    save_codes: SaveCodes = _RUN.save_codes,
    device: Device = _RUN.device,
    out: Out = None,
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    format: Format = "table",
) -> None:
    """Train a model, capture its neural codes and print their encoding properties."""
    params = dict(locals())
    from acthash.runs.experiment import run_experiment

    cfg = _config(RunConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option, label=label_column),
                  model_options=_model_options(width_mult, model_option),
                  checkpoints=_parse_ints(checkpoints))
    result = run_experiment(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                            force=force)
    print_metrics(result.metrics, k=cfg.k, fmt=format)
    _run_dir_line(result.run_dir, format)


def layers(
    dataset: Dataset = _RUN.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    model: Model = _RUN.model,
    width: Width = _RUN.width,
    depth: Depth = _RUN.depth,
    batchnorm: Batchnorm = _RUN.batchnorm,
    activation: Activation = _RUN.activation,
    width_mult: WidthMult = None,
    model_option: ModelOption = [],  # noqa: B006
    device: Device = _RUN.device,
) -> None:
    """List the ReLU-like layers a model's code is made of (names, shapes, bit spans)."""
    params = dict(locals())
    from acthash import data as datasets
    from acthash.core.capture import list_layers
    from acthash.models import build_model
    from acthash.train import resolve_device

    cfg = _config(RunConfig, params, dataset_options=_dataset_options(data_dir, dataset_option),
                  model_options=_model_options(width_mult, model_option))
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    m = build_model(cfg.model, ds.input_shape, ds.n_classes, **cfg.model_kwargs())
    m = m.to(resolve_device(cfg.device))
    console.print(list_layers(m, ds.x_train[:2]).to_string(index=False))


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``layers`` to the root command."""
    app.command()(run)
    app.command()(layers)
