"""The ``acthash`` command line (Typer). Each command mirrors a Python function.

Conventions, the same for every command:

- an option is named after the config field it sets (``--n-points`` sets ``n_points``);
  a test checks every command's options against its config's fields;
- wherever a dataset is used: ``--dataset``, ``--data-dir`` and ``-O KEY=VALUE`` (dataset
  options); wherever a model is trained or built: the model options and ``--device``;
- lists are comma-separated (``--checkpoints 0,1,5``; ``--seeds 0,1,2``);
- companion studies live under ``acthash study``;
- a user error (bad input, missing file, ...) prints one ``error:`` line and exits with
  status 3 (:data:`acthash.errors.EXIT_USER_ERROR`); a usage error exits with 2.

The CLI draws figures with matplotlib's Agg backend (the library never chooses one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from acthash.errors import EXIT_USER_ERROR, ActhashError, ConfigError


class _ErrorBoundary(TyperGroup):
    """The one place user errors are turned into a message and an exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ActhashError as e:
            message = " ".join(str(e).split())
            err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
            ctx.exit(EXIT_USER_ERROR)


app = typer.Typer(
    name="acthash",
    cls=_ErrorBoundary,
    help="A trained neural network as a hash encoder: neural codes and their encoding properties.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: list what is available and how to get the rest.",
                       no_args_is_help=True)
study_app = typer.Typer(help="Companion studies: linear regions, LSH, neural spectrum, latent "
                        "binary encoding.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _main() -> None:
    """A trained neural network as a hash encoder: neural codes and their encoding properties."""
    import matplotlib

    matplotlib.use("Agg")  # the CLI writes files; it never opens a window


# ---------------------------------------------------------------------------- parsing


def _parse_ints(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _parse_floats(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


def _parse_names(text: str | None) -> list[str]:
    return [t for t in (text or "").replace(" ", "").split(",") if t]


def _csv(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def parse_key_values(items: list[str]) -> dict:
    """``["n_test=2000", "normalize=standardize"]`` -> {"n_test": 2000, ...} (YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value else None
    return out


def _dataset_options(data_dir: Path | None, items: list[str], **extra) -> dict:
    opts = parse_key_values(items)
    if data_dir:
        opts["root"] = str(data_dir)
    opts.update({k: v for k, v in extra.items() if v is not None})
    return opts


def _model_options(width_mult: float | None, items: list[str]) -> dict:
    opts = parse_key_values(items)
    if width_mult is not None:
        opts["width_mult"] = width_mult
    return opts


#: options that steer the command rather than set a config field
CLI_ONLY = {"data_dir", "dataset_option", "model_option", "width_mult", "label_column", "out",
            "runs_root", "progress"}


def _config(cls, params: dict, **derived):
    """``cls`` from the command's parameters that are its fields (plus ``derived`` ones)."""
    names = cls.field_names()
    unknown = sorted(set(params) - names - CLI_ONLY - set(derived))
    if unknown:  # a programming error: an option that maps to no field
        raise ConfigError(f"options {unknown} are not fields of {cls.__name__}")
    values = {k: v for k, v in params.items() if k in names}
    values.update(derived)
    return cls(**values)


# ---------------------------------------------------------------------------- shared options
# Defaults come from the config blocks, so the CLI, the Python API and YAML cannot drift.

Dataset = Annotated[str, typer.Option(help="Dataset name (see `acthash data list`).")]
DataDir = Annotated[Path | None, typer.Option(
    help="Directory holding the dataset's files (sets the dataset option root).")]
DatasetOption = Annotated[list[str], typer.Option(
    "--dataset-option", "-O",
    help="Dataset option KEY=VALUE, repeatable (e.g. -O n_test=2000 -O normalize=standardize).")]
Model = Annotated[str, typer.Option(help="Model name (mlp, vgg11, resnet20, ...), or "
                                    "package.module:function.")]
Width = Annotated[int, typer.Option(help="Hidden units per layer (MLP).")]
Depth = Annotated[int, typer.Option(help="Hidden layers (MLP) or depth (resnet).")]
Batchnorm = Annotated[bool, typer.Option(help="BatchNorm after each hidden Linear (MLP).")]
Activation = Annotated[str, typer.Option(
    help="relu, leaky_relu, prelu, rrelu, relu6 or hardtanh.")]
WidthMult = Annotated[float | None, typer.Option(
    help="Channel multiplier of vgg*/resnet* models (1.0 = the standard widths).")]
ModelOption = Annotated[list[str], typer.Option(
    "--model-option", "-M", help="Model option KEY=VALUE, repeatable (e.g. -M width_mult=0.5).")]
Epochs = Annotated[int, typer.Option(help="Training epochs.")]
Lr = Annotated[float, typer.Option(help="Learning rate.")]
BatchSize = Annotated[int, typer.Option(help="Mini-batch size.")]
Optimizer = Annotated[str, typer.Option(help="adam, adamw or sgd (with --momentum).")]
Momentum = Annotated[float, typer.Option(help="SGD momentum.")]
WeightDecay = Annotated[float, typer.Option(help="L2 weight decay.")]
Schedule = Annotated[str, typer.Option(
    help="none, step (x0.1 every --step-size epochs) or cosine.")]
StepSize = Annotated[int, typer.Option(help="Epochs between the step schedule's decays.")]
EarlyStopping = Annotated[int | None, typer.Option(
    help="Patience (epochs) on the validation loss.")]
Checkpoints = Annotated[str, typer.Option(
    help="Epochs to measure at, comma-separated, e.g. 0,1,3,10 (0 = initialization).")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")]
Out = Annotated[Path | None, typer.Option(help="Output directory (default: a new one under "
                                          "--runs-root).")]
RunsRoot = Annotated[Path, typer.Option(help="Where new run directories go.")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _run_dir_line(path) -> None:
    console.print(f"run directory: [bold]{path}[/]")



# ---------------------------------------------------------------------------- run, layers, data


def print_metrics(metrics, k: int | None = None) -> None:
    """Rich table: one row per property and split, one column per checkpoint epoch."""
    from acthash.properties import property_rows

    if k is None and "k" in metrics.columns:
        k = int(metrics["k"].iloc[0])
    table = Table(title="encoding properties", show_lines=False)
    table.add_column("property", no_wrap=True)
    table.add_column("split")
    for epoch in metrics["epoch"]:
        table.add_column(f"epoch {epoch}", justify="right")
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


# --- scaling: where the time goes ---------------------------------------------------------
_TIMING_ROWS = [("train", "training (cumulative)"), ("capture", "capture (train + test)"),
                ("redundancy", "redundancy"), ("kmeans", "K-Means"), ("knn", "k-NN"),
                ("logreg", "logistic regression")]


def print_timings(metrics) -> None:
    """Rich table of the ``seconds_*`` columns of a run's metrics, one column per epoch."""
    present = [(key, label) for key, label in _TIMING_ROWS if f"seconds_{key}" in metrics.columns]
    if not present:
        return
    table = Table(title="seconds")
    table.add_column("stage")
    for epoch in metrics["epoch"]:
        table.add_column(f"epoch {epoch}", justify="right")
    for key, label in present:
        table.add_row(label, *[f"{v:.1f}" for v in metrics[f"seconds_{key}"]])
    console.print(table)


from acthash.runs.experiment import RunConfig  # noqa: E402  (defaults of `acthash run`)

_RUN = RunConfig()


@app.command()
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
    k: Annotated[int, typer.Option(help="Neighbours of the Hamming k-NN.")] = _RUN.k,
    layers: Annotated[str | None, typer.Option(
        help="Regular expression selecting the captured layers.")] = _RUN.layers,
    drop_constant: Annotated[bool, typer.Option(
        help="Drop constant units (over the training set; the original convention: over "
        "train and test).")] = _RUN.drop_constant,
    codes: Annotated[str, typer.Option(
        help="binary (neural codes), aggregate (per-channel sums of convolutional layers, "
        "Euclidean k-NN) or both.")] = _RUN.codes,
    convention: Annotated[str, typer.Option(
        help="acthash, or original: the original study's scripts (sklearn k-NN ties, union "
        "constant mask, K-Means seed 9 float64 fixed K, liblinear, test-only scores).")] = (
            _RUN.convention),
    ties: Annotated[str | None, typer.Option(
        help="k-NN tie rule: share (order-independent) or sklearn [default: the "
        "convention's].")] = _RUN.ties,
    kmeans_n_seeds: Annotated[int | None, typer.Option(
        help="K-Means seeds, reported as mean ± std [default: 5; original: 1].")] = (
            _RUN.kmeans_n_seeds),
    kmeans_n_init: Annotated[int, typer.Option(
        help="K-Means restarts per seed (best inertia kept).")] = _RUN.kmeans_n_init,
    logreg_solver: Annotated[str | None, typer.Option(
        help="Logistic-regression solver: lbfgs, liblinear, ... [default: the "
        "convention's].")] = _RUN.logreg_solver,
    property_backend: Annotated[str, typer.Option(
        help="K-Means/logreg/k-NN backend: auto, sklearn, numba (streamed, CPU), torch "
        "(streamed, CPU or CUDA).")] = _RUN.property_backend,
    memory_budget: Annotated[str | None, typer.Option(
        help="Working memory of the streamed properties, e.g. 2GB (default 1GiB); codes "
        "larger than it are captured straight to disk.")] = _RUN.memory_budget,
    codes_to_disk: Annotated[bool | None, typer.Option(
        help="Capture the codes straight to a memory-mapped .ahc [default: when they exceed "
        "--memory-budget].")] = _RUN.codes_to_disk,
    logreg_strategy: Annotated[str, typer.Option(
        help="Logistic regression: ovo (the original), ovr or multinomial.")] = (
            _RUN.logreg_strategy),
    save_codes: Annotated[bool, typer.Option(
        help="Store the packed codes of every checkpoint in the run directory.")] = (
            _RUN.save_codes),
    device: Device = _RUN.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Train a model, capture its neural codes and print their encoding properties."""
    params = dict(locals())
    from acthash.runs.experiment import run_experiment

    cfg = _config(RunConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option, label=label_column),
                  model_options=_model_options(width_mult, model_option),
                  checkpoints=_parse_ints(checkpoints))
    result = run_experiment(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    print_metrics(result.metrics, k=cfg.k)
    _run_dir_line(result.run_dir)


@app.command()
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
    device: Device = "cpu",
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


@data_app.command("list")
def data_list() -> None:
    """Datasets known to acthash, whether each is available here, and how to get it."""
    from acthash.data import list_datasets

    table = Table(title="datasets")
    for col in ("name", "available", "description", "how to get"):
        table.add_column(col)
    for d in list_datasets():
        table.add_row(d["name"], "yes" if d["available"] else "no", d["description"],
                      d["how_to_get"])
    console.print(table)


# ---------------------------------------------------------------------------- sweeps, figures


@app.command()
def sweep(
    config: Annotated[Path | None, typer.Argument(help="Sweep file (.yaml/.yml/.toml).")] = None,
    preset: Annotated[str | None, typer.Option(
        help="model-size, training-time, sample-size, regularization, label-noise or "
        "random-data (instead of CONFIG).")] = None,
    scale: Annotated[str, typer.Option(
        help="Preset scale: cpu (minutes on 2 cores) or paper.")] = "cpu",
    dataset: Annotated[str | None, typer.Option(
        help="Preset dataset (default digits; paper: mnist).")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="Seeds, comma-separated (replaces the file's or preset's).")] = None,
    repeats: Annotated[int | None, typer.Option(
        help="Seeds 0..N-1 (instead of --seeds).")] = None,
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
) -> None:
    """Run a grid of experiments; a rerun computes only the missing cells."""
    from acthash.runs.presets import preset as make_preset
    from acthash.runs.sweep import SweepConfig, run_sweep

    if (config is None) == (preset is None):
        raise typer.BadParameter("give either a sweep file CONFIG or --preset NAME")
    if seeds is not None and repeats is not None:
        raise typer.BadParameter("give either --seeds or --repeats, not both")
    cfg = (make_preset(preset, scale=scale, dataset=dataset) if preset
           else SweepConfig.from_file(config))
    if seeds is not None or repeats is not None:
        seed_list = _parse_ints(seeds) if seeds is not None else list(range(repeats))
        cfg = SweepConfig.from_dict({**cfg.to_dict(), "seeds": seed_list})
    cells = cfg.cells()
    sweep_dir = out or Path("sweeps") / cfg.name
    console.print(f"sweep [bold]{cfg.name}[/]: {len(cells)} cells -> {sweep_dir}")
    if dry_run:
        table = Table(title="cells")
        keys = list(cells[0].params) if cells else []
        for col in ("#", "key", *keys):
            table.add_column(col)
        for c in cells:
            table.add_row(str(c.index), c.key, *[str(c.params[k]) for k in keys])
        console.print(table)
        return
    result = run_sweep(cfg, sweep_dir, executor=executor, workers=workers,
                       ray_address=ray_address, cache_dir=cache_dir, threads=threads,
                       gpus_per_cell=gpus_per_cell, progress=progress, wait=wait)
    table = Table(title=f"sweep {cfg.name}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, v in result.summary().items():
        table.add_row(key.replace("_", " "), str(v))
    console.print(table)
    console.print(f"results: [bold]{sweep_dir / 'results.parquet'}[/]")
    if result.failed:
        for key, err in result.failed.items():
            err_console.print(f"[bold red]cell {key} failed:[/] {err}")
        err_console.print(f"{len(result.failed)} cell(s) failed (see "
                          f"{sweep_dir / 'failures.json'}); fix the config and rerun: only "
                          "missing cells run")
        raise typer.Exit(code=EXIT_USER_ERROR)


@app.command()
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


@app.command("phase-chart")
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
        console.print(rt)
    console.print(t.describe())
    for p in paths:
        console.print(f"wrote {p}")


@app.command()
def report(
    sweep_dir: Annotated[Path, typer.Argument(help="Sweep directory.")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file (default <sweep>/report.html).")] = None,
) -> None:
    """One self-contained HTML page: figures, tables, config and environment."""
    from acthash.presentation.report import build_report

    console.print(f"wrote [bold]{build_report(sweep_dir, out)}[/]")


# ---------------------------------------------------------------------------- claims


@app.command("claims")
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
        console.print(rt)
    console.print("criteria:\n" + crit.describe())
    if out is not None:
        console.print(f"wrote {out}")


# ---------------------------------------------------------------------------- studies

from acthash.studies.regions import RegionsConfig  # noqa: E402

_REG = RegionsConfig()


@study_app.command("regions")
def study_regions(
    dataset: Dataset = _REG.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    model: Model = _REG.model,
    width: Width = _REG.width,
    depth: Depth = _REG.depth,
    batchnorm: Batchnorm = _REG.batchnorm,
    activation: Activation = _REG.activation,
    model_option: ModelOption = [],  # noqa: B006
    epochs: Epochs = _REG.epochs,
    lr: Lr = _REG.lr,
    batch_size: BatchSize = _REG.batch_size,
    optimizer: Optimizer = _REG.optimizer,
    weight_decay: WeightDecay = _REG.weight_decay,
    schedule: Schedule = _REG.schedule,
    step_size: StepSize = _REG.step_size,
    sample_size: Annotated[int | None, typer.Option(
        help="Train (and pick training points) on the first N examples.")] = _REG.sample_size,
    checkpoints: Annotated[str, typer.Option(
        help="Epochs to measure at (default: 0 and the last).")] = "",
    n_points: Annotated[int, typer.Option(
        help="Train and test points whose regions are measured.")] = _REG.n_points,
    direction: Annotated[str, typer.Option(
        help="centre (towards the class mean) or random.")] = _REG.direction,
    t_max: Annotated[float, typer.Option(
        help="Walk at most this far on each side (original: 5).")] = _REG.t_max,
    n_pairs: Annotated[int, typer.Option(
        help="Same-class and different-class test pairs.")] = _REG.n_pairs,
    seed: Seed = _REG.seed,
    device: Device = _REG.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Exact linear-region diameters around train vs test points and region counts between
    same-class vs different-class pairs (with histograms)."""
    params = dict(locals())
    from acthash.studies.regions import run_regions_study

    cfg = _config(RegionsConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  model_options=_model_options(None, model_option),
                  checkpoints=_parse_ints(checkpoints))
    result = run_regions_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    table = Table(title="linear regions (exact)")
    for col in ("epoch", "measure", "group", "mean", "median", "std", "n"):
        table.add_column(col, justify="right" if col in ("mean", "median", "std", "n") else "left")
    for r in result.summary.itertuples():
        table.add_row(str(r.epoch), r.measure, r.group, _fmt(float(r.mean)),
                      _fmt(float(r.median)), _fmt(float(r.std)), str(r.n))
    console.print(table)
    _run_dir_line(result.run_dir)


from acthash.studies.lsh import LSHConfig  # noqa: E402

_LSH = LSHConfig()


@study_app.command("lsh")
def study_lsh(
    n_classes: Annotated[int, typer.Option(help="Training manifolds (classes).")] = (
        _LSH.n_classes),
    per_class: Annotated[int, typer.Option(help="Training examples per manifold.")] = (
        _LSH.per_class),
    input_dim: Annotated[int, typer.Option(
        help="Input dimension of x = G(gamma, theta).")] = _LSH.input_dim,
    gamma_dim: Annotated[int, typer.Option(
        help="Dimension of the manifold identifier gamma.")] = _LSH.gamma_dim,
    theta_dim: Annotated[int, typer.Option(
        help="Dimension of the transformation parameter theta.")] = _LSH.theta_dim,
    theta_range: Annotated[float, typer.Option(
        help="theta is uniform on [-range, range].")] = _LSH.theta_range,
    generator: Annotated[str, typer.Option(
        help="relu (piecewise linear G) or smooth (tanh).")] = _LSH.generator,
    noise: Annotated[float, typer.Option(help="Input noise std.")] = _LSH.noise,
    width: Annotated[int, typer.Option(help="Hidden units per layer of the classifier.")] = (
        _LSH.width),
    depth: Annotated[int, typer.Option(help="Hidden layers of the classifier.")] = _LSH.depth,
    epochs: Epochs = _LSH.epochs,
    lr: Lr = _LSH.lr,
    batch_size: BatchSize = _LSH.batch_size,
    optimizer: Optimizer = _LSH.optimizer,
    weight_decay: WeightDecay = _LSH.weight_decay,
    distances: Annotated[str, typer.Option(help="gamma distances of the LSH curve.")] = (
        _csv(_LSH.distances)),
    n_pairs: Annotated[int, typer.Option(help="Pairs per distance.")] = _LSH.n_pairs,
    srp_bits: Annotated[str, typer.Option(help="Bit lengths of the SRP hashes.")] = (
        _csv(_LSH.srp_bits)),
    n_unseen: Annotated[str, typer.Option(help="Numbers of unseen classes (one-shot).")] = (
        _csv(_LSH.n_unseen)),
    queries_per_class: Annotated[int, typer.Option(
        help="Query examples per unseen class.")] = _LSH.queries_per_class,
    repeats: Annotated[int, typer.Option(help="Draws per number of unseen classes.")] = (
        _LSH.repeats),
    real_dataset: Annotated[str, typer.Option(
        help="Real dataset for held-out-class one-shot ('' = skip).")] = _LSH.real_dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    real_train_classes: Annotated[int | None, typer.Option(
        help="Train on the first this many classes (default: half).")] = (
            _LSH.real_train_classes),
    real_epochs: Annotated[int, typer.Option(help="Training epochs on the real dataset.")] = (
        _LSH.real_epochs),
    real_max_train: Annotated[int | None, typer.Option(
        help="Cap the real training set size.")] = _LSH.real_max_train,
    seed: Seed = _LSH.seed,
    device: Device = _LSH.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """LSH study: collision curves vs gamma distance, per-layer invariance, and one-shot
    learning of unseen classes (raw vs untrained vs trained representation vs code)."""
    params = dict(locals())
    from acthash.studies.lsh import REPRESENTATIONS, run_lsh_study

    params.pop("dataset_option")
    cfg = _config(LSHConfig, params, distances=tuple(_parse_floats(distances)),
                  srp_bits=tuple(_parse_ints(srp_bits)), n_unseen=tuple(_parse_ints(n_unseen)),
                  real_dataset=real_dataset or None,
                  real_dataset_options=_dataset_options(data_dir, dataset_option))
    result = run_lsh_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    for title, summ in (("one-shot accuracy on unseen manifolds", result.one_shot_summary),
                        ("one-shot accuracy on held-out real classes", result.real_summary)):
        if summ is None:
            continue
        wide = summ.assign(cell=[f"{m:.3f} ± {s:.3f}" for m, s in zip(summ["mean"], summ["std"],
                                                                       strict=True)])
        wide = wide.pivot(index="n_unseen", columns="representation", values="cell")
        wide = wide[[c for c in REPRESENTATIONS if c in wide.columns]]
        table = Table(title=title)
        table.add_column("unseen classes", justify="right")
        for col in wide.columns:
            table.add_column(col, justify="right")
        for n, row in wide.iterrows():
            table.add_row(str(n), *[str(v) for v in row])
        console.print(table)
    _run_dir_line(result.run_dir)


from acthash.studies.spectrum import SpectrumConfig  # noqa: E402

_SPEC = SpectrumConfig()


@study_app.command("spectrum")
def study_spectrum(
    task: Annotated[str, typer.Option(
        help="'image' (2-D regression of a grayscale image from pixel coordinates) or a "
        "classification dataset name (digits, ...).")] = _SPEC.task,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    image: Annotated[str, typer.Option(
        help="Image file, or a matplotlib sample image.")] = _SPEC.image,
    grid: Annotated[int, typer.Option(help="Image task: grid x grid pixels (N = grid²).")] = (
        _SPEC.grid),
    n_train: Annotated[int, typer.Option(
        help="Classification: class-balanced training subset size.")] = _SPEC.n_train,
    depth: Annotated[int, typer.Option(help="Hidden layers of the Leaky-ReLU MLP.")] = (
        _SPEC.depth),
    width: Annotated[int, typer.Option(help="Hidden units per layer.")] = _SPEC.width,
    activation: Activation = _SPEC.activation,
    optimizer: Annotated[str, typer.Option(
        help="gd (full-batch gradient descent) or adam.")] = _SPEC.optimizer,
    lr: Annotated[float, typer.Option(help="Learning rate for gd.")] = _SPEC.lr,
    adam_lr: Annotated[float, typer.Option(help="Learning rate for adam.")] = _SPEC.adam_lr,
    schedule: Annotated[str, typer.Option(
        help="constant, or step (x gamma at decay-at).")] = _SPEC.schedule,
    decay_at: Annotated[str, typer.Option(
        help="Step decay points as fractions of steps.")] = _csv(_SPEC.decay_at),
    gamma: Annotated[float, typer.Option(help="Step decay factor.")] = _SPEC.gamma,
    steps: Annotated[int, typer.Option(help="Training steps (full batch).")] = _SPEC.steps,
    n_records: Annotated[int, typer.Option(
        help="Recorded steps, log-spaced from 0 to steps.")] = _SPEC.n_records,
    ks: Annotated[str, typer.Option(help="k values for E_k (top-k energy).")] = _csv(_SPEC.ks),
    n_eigs: Annotated[int, typer.Option(help="Eigenvalues kept per record.")] = _SPEC.n_eigs,
    n_vectors: Annotated[int, typer.Option(
        help="Image task: eigenvectors stored as images.")] = _SPEC.n_vectors,
    compare: Annotated[str, typer.Option(
        help="Comma list of depth, schedule, optimizer: runs d2 vs d6, constant vs step "
        "decay, gd vs adam in one go.")] = "",
    loss: Annotated[str, typer.Option(
        help="auto (mse for image, ce for classes), mse or ce.")] = _SPEC.loss,
    kernel: Annotated[str, typer.Option(
        help="Several outputs: trace, or per-logit (measures averaged over the logits).")] = (
            _SPEC.kernel),
    method: Annotated[str, typer.Option(
        help="NTK method: auto (fastest by the cost model), structured, jacobian, ntk-vp, "
        "loop.")] = _SPEC.method,
    seed: Seed = _SPEC.seed,
    device: Device = _SPEC.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Neural spectrum alignment: the NTK's spectrum and its alignment with the target
    over training (Kopitkov & Indelman)."""
    params = dict(locals())
    from acthash.studies.spectrum import run_spectrum_study, summary_table

    cfg = _config(SpectrumConfig, params, decay_at=_parse_floats(decay_at),
                  ks=_parse_ints(ks), compare=_parse_names(compare),
                  dataset_options=_dataset_options(data_dir, dataset_option))
    study = run_spectrum_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    df = summary_table(study).set_index("variant")
    table = Table(title="neural spectrum alignment (first and last recorded step)")
    table.add_column("measure")
    for name in df.index:
        table.add_column(name, justify="right", overflow="fold")
    for col in df.columns:
        table.add_row(col.replace("_", " "), *[f"{v:.4g}" for v in df[col]])
    console.print(table)
    _run_dir_line(study.run_dir)


from acthash.studies.binary import BinaryStudyConfig  # noqa: E402

_BIN = BinaryStudyConfig()


@study_app.command("binary")
def study_binary(
    dataset: Dataset = _BIN.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    sample_size: Annotated[int | None, typer.Option(
        help="Class-balanced training subset size.")] = _BIN.sample_size,
    test_size: Annotated[int | None, typer.Option(
        help="Class-balanced test subset size.")] = _BIN.test_size,
    backbone: Annotated[str, typer.Option(
        help="Backbone model name (its output layer is removed).")] = _BIN.backbone,
    width: Annotated[int, typer.Option(
        help="Backbone hidden units per layer (sets backbone_options).")] = (
            _BIN.backbone_options["width"]),
    depth: Annotated[int, typer.Option(
        help="Backbone hidden layers (sets backbone_options).")] = _BIN.backbone_options["depth"],
    model_option: ModelOption = [],  # noqa: B006
    latent_dim: Annotated[int, typer.Option(
        help="Penultimate dimension d (~ceil(log2 classes)).")] = _BIN.latent_dim,
    variants: Annotated[str, typer.Option(help="Models to train (comma-separated).")] = (
        _csv(_BIN.variants)),
    epochs: Epochs = _BIN.epochs,
    lr: Lr = _BIN.lr,
    batch_size: BatchSize = _BIN.batch_size,
    optimizer: Annotated[str, typer.Option(help="adam, adamw (the authors') or sgd.")] = (
        _BIN.optimizer),
    weight_decay: Annotated[float, typer.Option(
        help="Weight decay (the authors: 5e-4, AdamW).")] = _BIN.weight_decay,
    lr_schedule: Annotated[str, typer.Option(help="none, step (StepLR) or cosine.")] = (
        _BIN.lr_schedule),
    lr_step_size: Annotated[int, typer.Option(help="StepLR: epochs between decays.")] = (
        _BIN.lr_step_size),
    lr_gamma: Annotated[float, typer.Option(
        help="StepLR: learning-rate factor per decay.")] = _BIN.lr_gamma,
    ood_sets: Annotated[str, typer.Option(
        help="Shifted sets for the OOD AUROC: permuted, uniform or a dataset name (e.g. "
        "fashion-mnist), comma-separated.")] = _csv(_BIN.ood_sets),
    bimodality_max_dims: Annotated[int, typer.Option(
        help="Fit the bimodality mixtures on at most this many latent dimensions (largest "
        "training variance; 0 = all).")] = _BIN.bimodality_max_dims or 0,
    gamma0: Annotated[float, typer.Option(help="Compression weight in epoch 1.")] = _BIN.gamma0,
    gamma_ratio: Annotated[float, typer.Option(
        help="Geometric growth of the weight per epoch.")] = _BIN.gamma_ratio,
    gamma_cap: Annotated[float | None, typer.Option(help="Largest compression weight.")] = (
        _BIN.gamma_cap),
    checkpoints: Annotated[str, typer.Option(
        help="Epochs to measure at (default: 0 and 10 even steps).")] = "",
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated (one model each).")] = (
        _csv(_BIN.seeds)),
    data_seed: Annotated[int, typer.Option(
        help="Seed of the train/test/attack subsets (the same for every seed).")] = (
            _BIN.data_seed),
    attack_eps: Annotated[float, typer.Option(
        help="L-inf radius of the FGSM/PGD attacks (input units).")] = _BIN.attack_eps,
    robustness_size: Annotated[int, typer.Option(help="Test examples attacked (0 = all).")] = (
        _BIN.robustness_size or 0),
    k: Annotated[int, typer.Option(help="Neighbours of the k-NN on z > 0.")] = _BIN.k,
    device: Device = _BIN.device,
    figures: Annotated[bool, typer.Option(
        help="Write the latent-histogram and metric figures.")] = _BIN.figures,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Latent binary encoding: train the compressed bottleneck model and its three
    baselines, then compare same-encoding fraction, bimodality, robustness and reliability."""
    params = dict(locals())
    from acthash.studies.binary import TABLE_COLUMNS, run_binary_study

    for composite in ("width", "depth"):  # parts of backbone_options
        params.pop(composite)
    cfg = _config(BinaryStudyConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  backbone_options={"width": width, "depth": depth,
                                    **_model_options(None, model_option)},
                  variants=_parse_names(variants), ood_sets=_parse_names(ood_sets),
                  bimodality_max_dims=bimodality_max_dims or None,
                  checkpoints=_parse_ints(checkpoints), seeds=_parse_ints(seeds) or [0],
                  robustness_size=robustness_size or None)
    result = run_binary_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    table = Table(title=f"latent binary encoding, {cfg.dataset}, epoch {cfg.epochs}")
    table.add_column("metric")
    for v in result.table.index:
        table.add_column(v, justify="right")
    for col, label in TABLE_COLUMNS:
        if col in result.table.columns:
            table.add_row(label.replace("9-NN", f"{cfg.k}-NN"),
                          *[_fmt(float(result.table.loc[v, col])) for v in result.table.index])
    console.print(table)
    if result.ood is not None and len(result.ood):
        ood = Table(title="out-of-distribution AUROC (Lee et al.: tied covariance, min distance)")
        for col in ("variant", "shifted set", "Lee", "per-class at predicted"):
            ood.add_column(col, justify="right" if col[0].isupper() or col[0] == "p" else "left")
        for r in result.ood.itertuples():
            ood.add_row(r.variant, r.ood_set, _fmt(float(r.lee)), _fmt(float(r.predicted)))
        console.print(ood)
    console.print(f"study directory: [bold]{result.run_dir}[/]")


from acthash.studies.retrieval import RetrievalStudyConfig  # noqa: E402

_RET = RetrievalStudyConfig()
_FILE_BASED = {"fashion-mnist", "mnist", "cifar10", "svhn"}


@study_app.command("retrieval")
def study_retrieval(
    datasets: Annotated[str, typer.Option(help="Datasets, comma-separated.")] = (
        _csv(_RET.datasets)),
    data_dir: Annotated[Path | None, typer.Option(
        help="Directory holding the files of file-based datasets (fashion-mnist, ...).")] = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    bits: Annotated[str, typer.Option(help="Bit budgets, comma-separated.")] = _csv(_RET.bits),
    full: Annotated[bool, typer.Option(help="Also the budget of every unit of the network.")] = (
        _RET.full),
    encoders: Annotated[str, typer.Option(help="Encoders, comma-separated.")] = (
        _csv(_RET.encoders)),
    n_queries: Annotated[int, typer.Option(
        help="Queries: a seeded sample of the test set (0 = all).")] = _RET.n_queries or 0,
    n_database: Annotated[int, typer.Option(
        help="Database: a seeded sample of the training set (0 = all).")] = _RET.n_database or 0,
    train_size: Annotated[int, typer.Option(
        help="Class-balanced training sample of the database for the network (0 = all).")] = (
            _RET.train_size or 0),
    widths: Annotated[str, typer.Option(help="Hidden widths of the MLP, comma-separated.")] = (
        _csv(_RET.widths)),
    epochs: Epochs = _RET.epochs,
    min_steps: Annotated[int, typer.Option(
        help="At least this many optimizer steps (more epochs on small training sets).")] = (
            _RET.min_steps),
    lr: Lr = _RET.lr,
    batch_size: BatchSize = _RET.batch_size,
    seeds: Annotated[str, typer.Option(help="Seeds (network, LSH, ITQ), comma-separated.")] = (
        _csv(_RET.seeds)),
    data_seed: Annotated[int, typer.Option(
        help="Seed of the query/database/training samples.")] = _RET.data_seed,
    select: Annotated[str, typer.Option(
        help="Neural unit selection: entropy, decorrelated, first.")] = _RET.select,
    itq_iter: Annotated[int, typer.Option(help="ITQ iterations.")] = _RET.itq_iter,
    itq_fit_size: Annotated[int, typer.Option(
        help="Database rows ITQ's rotation is fitted on (0 = all).")] = _RET.itq_fit_size or 0,
    radius: Annotated[int, typer.Option(help="Hamming radius of the radius precision.")] = (
        _RET.radius),
    search: Annotated[bool, typer.Option(
        help="Time exact and faiss search on the largest database.")] = _RET.search,
    search_bits: Annotated[int, typer.Option(
        help="Budget of the neural codes searched (0 = full).")] = _RET.search_bits or 0,
    runs: Annotated[list[str], typer.Option(
        "--runs", "--from-run",
        help="DATASET=RUN_DIR: use the model of an `acthash run` (repeatable).")] = [],  # noqa: B006
    save_encoders: Annotated[bool, typer.Option(
        help="Write every fitted encoder (encoders/*.npz).")] = _RET.save_encoders,
    figures: Annotated[bool, typer.Option(
        help="Write the mAP-vs-bits and PR-curve figures.")] = _RET.figures,
    device: Device = _RET.device,
    out: Out = None,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Neural codes as a retrieval hash: mAP, precision@k and radius-2 precision of Hamming
    ranking against LSH, PCA, ITQ and spectral hashing at equal bit budgets."""
    params = dict(locals())
    from acthash.studies.retrieval import run_retrieval_study

    names = _parse_names(datasets)
    run_dirs = {}
    for item in runs:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected DATASET=RUN_DIR, got {item!r}")
        run_dirs[key.strip()] = value.strip()
    shared = _dataset_options(None, dataset_option)
    options = {n: {**shared, **({"root": str(data_dir)} if data_dir and n in _FILE_BASED
                                else {})} for n in names}
    options = {n: o for n, o in options.items() if o}
    cfg = _config(RetrievalStudyConfig, params, datasets=names, dataset_options=options,
                  bits=_parse_ints(bits), encoders=_parse_names(encoders),
                  n_queries=n_queries or None, n_database=n_database or None,
                  train_size=train_size or None, widths=_parse_ints(widths),
                  seeds=_parse_ints(seeds) or [0], itq_fit_size=itq_fit_size or None,
                  search_bits=search_bits or None, runs=run_dirs)
    result = run_retrieval_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    summary = result.summary
    for name, sub in summary.groupby("dataset", sort=False):
        labels = list(dict.fromkeys(sub["bits"]))
        table = Table(title=f"{name}: mAP of Hamming ranking (mean ± std over seeds)")
        table.add_column("encoder")
        for b in labels:
            table.add_column(b, justify="right")
        for enc in dict.fromkeys(sub["encoder"]):
            cells = []
            for b in labels:
                r = sub[(sub["encoder"] == enc) & (sub["bits"] == b)]
                cells.append("n/a" if r.empty else
                             f"{r['map_mean'].iloc[0]:.3f} ± {r['map_std'].iloc[0]:.3f}")
            table.add_row(enc, *cells)
        console.print(table)
    if result.search is not None:
        st = Table(title="Hamming search (recall@10 against exact)")
        for c in ("dataset", "index", "n_bits", "build_s", "qps", "recall@10", "recall@10_dist"):
            st.add_column(c, justify="right")
        for _, r in result.search.iterrows():
            st.add_row(str(r["dataset"]), str(r["index"]), str(r["n_bits"]),
                       f"{r['build_s']:.2f}", f"{r['qps']:.0f}", f"{r['recall@10']:.3f}",
                       f"{r['recall@10_dist']:.3f}")
        console.print(st)
    console.print(f"study directory: [bold]{result.run_dir}[/]")



def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
