"""The ``acthash`` command line (Typer). Each command mirrors a Python function."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acthash.errors import InputError

app = typer.Typer(
    name="acthash",
    help="A trained neural network as a hash encoder: neural codes and their encoding properties.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: list what is available and how to get the rest.",
                       no_args_is_help=True)
study_app = typer.Typer(help="Companion studies (LSH, neural spectrum, latent binary encoding).",
                        no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")

console = Console()


def _parse_ints(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


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


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


_PROPERTY_ROWS = [
    ("redundancy", "redundancy ratio"),
    ("kmeans", "K-Means acc. (Hungarian)"),
    ("kmeans_purity", "K-Means acc. (purity)"),
    ("knn", "9-NN acc. (train: LOO)"),
    ("logreg", "logistic regression acc."),
    ("net_acc", "network accuracy"),
    ("net_loss", "network loss"),
]


def print_metrics(metrics) -> None:
    """Rich table: one row per property and split, one column per checkpoint epoch."""
    table = Table(title="encoding properties", show_lines=False)
    table.add_column("property")
    table.add_column("split")
    for epoch in metrics["epoch"]:
        table.add_column(f"epoch {epoch}", justify="right")
    for key, label in _PROPERTY_ROWS:
        for split in ("train", "test"):
            col = f"{key}_{split}"
            if col in metrics.columns:
                table.add_row(label if split == "train" else "", split,
                              *[_fmt(v) for v in metrics[col]])
    console.print(table)


def _fail(e: Exception) -> None:
    console.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(code=2)


@app.command()
def run(
    dataset: str = typer.Option("digits", help="Dataset name (see `acthash data list`)."),
    data_dir: Path | None = typer.Option(
        None, help="Directory holding the dataset's files (mnist, fashion-mnist, cifar10, svhn)."),
    label_column: str | None = typer.Option(None, help="Label column of a csv:PATH dataset."),
    data_option: list[str] = typer.Option(
        [], "--data-option", "-O",
        help="Dataset option KEY=VALUE, repeatable (e.g. -O n_test=2000 -O normalize=standardize)."),
    model: str = typer.Option("mlp", help="Model name, or package.module:function."),
    width: int = typer.Option(100, help="Hidden units per layer (MLP)."),
    width_mult: float | None = typer.Option(
        None, help="Channel multiplier of vgg*/resnet* models (1.0 = the standard widths)."),
    depth: int = typer.Option(1, help="Hidden layers (MLP) or depth (ResNet)."),
    batchnorm: bool = typer.Option(False, help="BatchNorm after each hidden Linear."),
    activation: str = typer.Option("relu", help="relu, leaky_relu, prelu, rrelu, relu6, hardtanh."),
    epochs: int = typer.Option(20, help="Training epochs."),
    lr: float = typer.Option(1e-2, help="Learning rate."),
    batch_size: int = typer.Option(64, help="Mini-batch size."),
    optimizer: str = typer.Option("adam", help="adam or sgd (momentum 0.9)."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    schedule: str = typer.Option("none", help="none, step (x0.1 every --step-size epochs) or cosine."),
    step_size: int = typer.Option(20, help="Epochs between x0.1 steps of the step schedule."),
    checkpoints: str = typer.Option("", help="Epochs to measure at, e.g. 0,1,3,10 (0 = init)."),
    sample_size: int | None = typer.Option(None, help="Train on the first N examples."),
    balanced: bool = typer.Option(False, help="Class-balanced random sample instead of first N."),
    label_noise: float = typer.Option(0.0, help="Fraction of training labels made wrong."),
    random_labels: bool = typer.Option(False, help="Replace all training labels at random."),
    val_split: float = typer.Option(0.0, help="Hold out this fraction for validation (0.2 = paper)."),
    early_stopping: int | None = typer.Option(None, help="Patience (epochs) on validation loss."),
    seed: int = typer.Option(0, help="Random seed (init, shuffles, manipulations, K-Means)."),
    k: int = typer.Option(9, help="Neighbours for Hamming k-NN."),
    layers: str | None = typer.Option(None, help="Regular expression selecting layers."),
    drop_constant: bool = typer.Option(False, help="Drop units constant over the training set."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, ..."),
    out: Path | None = typer.Option(None, help="Run directory (default: a new one under runs/)."),
    runs_root: Path = typer.Option(Path("runs"), help="Where new run directories go."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Train a model, capture its neural codes and print their encoding properties."""
    from acthash.experiment import RunConfig, run_experiment

    try:
        dataset_options = parse_key_values(data_option)
        if data_dir:
            dataset_options["root"] = str(data_dir)
        if label_column:
            dataset_options["label"] = label_column
        cfg = RunConfig(
            dataset=dataset,
            dataset_options=dataset_options,
            model_options={"width_mult": width_mult} if width_mult is not None else {},
            step_size=step_size,
            model=model, width=width, depth=depth, batchnorm=batchnorm, activation=activation,
            epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
            weight_decay=weight_decay, schedule=schedule, checkpoints=_parse_ints(checkpoints),
            sample_size=sample_size, balanced=balanced, label_noise=label_noise,
            random_labels=random_labels, val_split=val_split, early_stopping=early_stopping,
            seed=seed, k=k, layers=layers, drop_constant=drop_constant, device=device,
        )
        result = run_experiment(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    except (ValueError, FileNotFoundError, TypeError) as e:
        _fail(e)
    print_metrics(result.metrics)
    console.print(f"run directory: [bold]{result.run_dir}[/]")


@app.command()
def layers(
    dataset: str = typer.Option("digits", help="Dataset whose input shape to use."),
    data_dir: Path | None = typer.Option(None, help="Directory holding the dataset's files."),
    model: str = typer.Option("mlp", help="Model name, or package.module:function."),
    width: int = typer.Option(100),
    width_mult: float | None = typer.Option(None, help="Channel multiplier (vgg*/resnet*)."),
    depth: int = typer.Option(1),
    batchnorm: bool = typer.Option(False),
    activation: str = typer.Option("relu"),
) -> None:
    """List the ReLU-like layers a model's code is made of (names, shapes, bit spans)."""
    from acthash import data as datasets
    from acthash.capture import list_layers
    from acthash.models import build_model

    try:
        ds = datasets.load(dataset, **({"root": str(data_dir)} if data_dir else {}))
        extra = {"width_mult": width_mult} if width_mult is not None else {}
        m = build_model(model, ds.input_shape, ds.n_classes, width=width, depth=depth,
                        batchnorm=batchnorm, activation=activation, **extra)
        console.print(list_layers(m, ds.x_train[:2]).to_string(index=False))
    except (ValueError, FileNotFoundError, TypeError) as e:
        _fail(e)


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


@app.command()
def regions(
    dataset: str = typer.Option("digits", help="Dataset name (see `acthash data list`)."),
    model: str = typer.Option("mlp", help="Model name, or package.module:function."),
    width: int = typer.Option(100, help="Hidden units per layer of the MLP."),
    depth: int = typer.Option(1, help="Hidden layers."),
    batchnorm: bool = typer.Option(False, help="BatchNorm after each hidden Linear."),
    activation: str = typer.Option("relu", help="relu, leaky_relu, prelu, relu6, hardtanh."),
    epochs: int = typer.Option(20, help="Training epochs."),
    lr: float = typer.Option(1e-2, help="Learning rate (Adam)."),
    schedule: str = typer.Option("none", help="none, or step (x0.1 every --step-size epochs)."),
    step_size: int = typer.Option(20, help="Epochs between x0.1 steps of the step schedule."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    sample_size: int | None = typer.Option(None, help="Train on the first N examples."),
    data_option: list[str] = typer.Option(
        [], "--data-option", "-O", help="Dataset option KEY=VALUE (e.g. -O n_test=2000)."),
    checkpoints: str = typer.Option("", help="Epochs to measure at (default: 0 and last)."),
    points: int = typer.Option(200, help="Train and test points whose regions are measured."),
    direction: str = typer.Option("centre", help="centre (towards the class mean) or random."),
    t_max: float = typer.Option(5.0, help="Walk at most this far on each side (original: 5)."),
    pairs: int = typer.Option(100, help="Same-class and different-class test pairs."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Run directory (default: a new one under runs/)."),
    runs_root: Path = typer.Option(Path("runs"), help="Where new run directories go."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Exact linear-region diameters around train vs test points and region counts between
    same-class vs different-class pairs (with histograms)."""
    from acthash.studies.regions import RegionsConfig, run_regions_study

    try:
        cfg = RegionsConfig(dataset=dataset, model=model, width=width, depth=depth,
                            batchnorm=batchnorm, schedule=schedule, step_size=step_size,
                            weight_decay=weight_decay, sample_size=sample_size,
                            dataset_options=parse_key_values(data_option),
                            activation=activation, epochs=epochs, lr=lr,
                            checkpoints=tuple(_parse_ints(checkpoints)), n_points=points,
                            direction=direction, t_max=t_max, n_pairs=pairs, seed=seed)
        result = run_regions_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    except (ValueError, FileNotFoundError, TypeError) as e:
        _fail(e)
    table = Table(title="linear regions (exact)")
    for col in ("epoch", "measure", "group", "mean", "median", "std", "n"):
        table.add_column(col, justify="right" if col in ("mean", "median", "std", "n") else "left")
    for r in result.summary.itertuples():
        table.add_row(str(r.epoch), r.measure, r.group, _fmt(float(r.mean)),
                      _fmt(float(r.median)), _fmt(float(r.std)), str(r.n))
    console.print(table)
    console.print(f"run directory: [bold]{result.run_dir}[/]")


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


@study_app.command("lsh")
def study_lsh(
    classes: int = typer.Option(100, help="Training manifolds (classes)."),
    per_class: int = typer.Option(100, help="Training examples per manifold."),
    input_dim: int = typer.Option(64, help="Input dimension of x = G(gamma, theta)."),
    gamma_dim: int = typer.Option(8, help="Dimension of the manifold identifier gamma."),
    theta_dim: int = typer.Option(4, help="Dimension of the transformation parameter theta."),
    theta_range: float = typer.Option(2.0, help="theta is uniform on [-range, range]."),
    generator: str = typer.Option("relu", help="relu (piecewise linear G) or smooth (tanh)."),
    width: int = typer.Option(256, help="Hidden units per layer of the classifier."),
    depth: int = typer.Option(2, help="Hidden layers of the classifier."),
    epochs: int = typer.Option(20, help="Training epochs (manifolds)."),
    lr: float = typer.Option(1e-3, help="Learning rate (Adam)."),
    distances: str = typer.Option("0,0.25,0.5,1,2,3,4,6", help="gamma distances of the LSH curve."),
    pairs: int = typer.Option(400, help="Pairs per distance."),
    srp_bits: str = typer.Option("4,8,16,32", help="Bit lengths of the SRP hashes."),
    unseen: str = typer.Option("2,5,10,20,50", help="Numbers of unseen classes (one-shot)."),
    queries: int = typer.Option(20, help="Query examples per unseen class."),
    repeats: int = typer.Option(10, help="Draws per number of unseen classes."),
    real: str = typer.Option("digits", help="Real dataset for held-out-class one-shot ('' = skip)."),
    real_epochs: int = typer.Option(20, help="Training epochs on the real dataset."),
    real_max_train: int | None = typer.Option(None, help="Cap the real training set size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Run directory (default: a new one under runs/)."),
    runs_root: Path = typer.Option(Path("runs"), help="Where new run directories go."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """LSH study: collision curves vs gamma distance, per-layer invariance, and one-shot
    learning of unseen classes (raw vs untrained vs trained representation vs code)."""
    from acthash.studies.lsh import REPRESENTATIONS, LSHConfig, run_lsh_study

    try:
        cfg = LSHConfig(n_classes=classes, per_class=per_class, input_dim=input_dim,
                        gamma_dim=gamma_dim, theta_dim=theta_dim, theta_range=theta_range,
                        generator=generator, width=width, depth=depth, epochs=epochs, lr=lr,
                        distances=_parse_floats(distances), n_pairs=pairs,
                        srp_bits=tuple(_parse_ints(srp_bits)),
                        n_unseen=tuple(_parse_ints(unseen)), queries_per_class=queries,
                        repeats=repeats, real_dataset=real or None, real_epochs=real_epochs,
                        real_max_train=real_max_train, seed=seed)
        result = run_lsh_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    except (ValueError, FileNotFoundError, TypeError) as e:
        _fail(e)
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
    console.print(f"run directory: [bold]{result.run_dir}[/]")


# ---------------------------------------------------------------- sweeps, figures, reports


@app.command()
def sweep(
    config: Path | None = typer.Argument(None, help="Sweep file (.yaml/.yml/.toml)."),
    preset: str | None = typer.Option(
        None, help="model-size, training-time, sample-size, regularization, label-noise or "
        "random-data (instead of CONFIG)."),
    scale: str = typer.Option("cpu", help="Preset scale: cpu (minutes on 2 cores) or paper."),
    dataset: str | None = typer.Option(None, help="Preset dataset (default digits; paper: mnist)."),
    seeds: int | None = typer.Option(None, help="Preset repeats (seeds 0..N-1)."),
    out: Path | None = typer.Option(None, help="Sweep directory (default sweeps/<name>)."),
    executor: str = typer.Option("serial", help="serial, process or ray."),
    workers: int = typer.Option(1, help="Worker processes (process) or local Ray CPUs (ray)."),
    ray_address: str | None = typer.Option(
        None, help="Join a Ray cluster: auto, or ray://host:10001 (default: a local Ray)."),
    cache_dir: Path | None = typer.Option(None, help="Model cache (default <sweep>/cache)."),
    threads: int = typer.Option(1, help="torch threads per cell."),
    gpus_per_cell: float | None = typer.Option(
        None, help="Ray GPUs per cell (default 1 when the cluster has GPUs, else 0)."),
    dry_run: bool = typer.Option(False, help="List the cells and stop."),
    progress: bool = typer.Option(True, help="Show a progress bar (cells done/total, ETA)."),
) -> None:
    """Run a grid of experiments; a rerun computes only the missing cells."""
    from acthash.sweep import SweepConfig, run_sweep
    from acthash.sweep import preset as make_preset

    try:
        if (config is None) == (preset is None):
            raise InputError("give either a sweep file CONFIG or --preset NAME")
        cfg = (make_preset(preset, scale=scale, dataset=dataset, seeds=seeds) if preset
               else SweepConfig.from_file(config))
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
                           gpus_per_cell=gpus_per_cell, progress=progress)
    except (ValueError, FileNotFoundError, TypeError, ImportError) as e:
        _fail(e)
    table = Table(title=f"sweep {cfg.name}")
    table.add_column("")
    table.add_column("value", justify="right")
    for k, v in result.summary().items():
        table.add_row(k.replace("_", " "), str(v))
    console.print(table)
    console.print(f"results: [bold]{sweep_dir / 'results.parquet'}[/]")
    if result.failed:
        for key, err in result.failed.items():
            console.print(f"[bold red]cell {key} failed:[/] {err}")
        console.print(f"{len(result.failed)} cell(s) failed (see {sweep_dir / 'failures.json'}); "
                      "fix the config and rerun: only missing cells run")
        raise typer.Exit(code=1)


@app.command()
def plot(
    results: Path = typer.Argument(..., help="Sweep directory or results .parquet/.csv."),
    factor: str | None = typer.Option(None, help="x axis (default: the sweep's factor)."),
    hue: str | None = typer.Option(None, help="Separate series per value of this column."),
    out: Path | None = typer.Option(None, help="Figure folder (default <sweep>/figures)."),
) -> None:
    """Figures: encoding properties vs the factor, mean ± std over seeds (PNG + SVG)."""
    from acthash.plots import plot_results

    try:
        paths = plot_results(results, out, factor=factor, hue=hue)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    for p in paths:
        console.print(f"wrote {p}")


@app.command("phase-chart")
def phase_chart_cmd(
    results: list[Path] = typer.Argument(..., help="Sweep directories or results files."),
    out: Path | None = typer.Option(None, help="Folder (default: the first sweep's figures/)."),
    under: float | None = typer.Option(
        None, help="Redundancy above this: under-expressive [default 0.1]."),
    sufficient: float | None = typer.Option(
        None, help="Redundancy at or below this (and accuracy at its plateau): "
        "sufficiently-expressive [default 0.001]."),
    plateau_tol: float | None = typer.Option(
        None, help="Accuracy within this of its plateau [default 0.02]."),
    redundancy: str | None = typer.Option(
        None, help="Redundancy column [default redundancy_train]."),
    accuracy: str | None = typer.Option(
        None, help="Categorization accuracy column [default knn_test]."),
) -> None:
    """Classify each point into under-/critically-/sufficiently-expressive and chart it.

    Thresholds: the options, else the first sweep's `phase:` settings, else the defaults.
    """
    import json

    from acthash.phase import PhaseThresholds, phase_charts

    try:
        first = results[0]
        meta_path = (first if first.is_dir() else first.parent) / "sweep.json"
        settings = json.loads(meta_path.read_text()).get("phase", {}) if meta_path.exists() else {}
        given = {"under": under, "sufficient": sufficient, "plateau_tol": plateau_tol,
                 "redundancy": redundancy, "accuracy": accuracy}
        settings.update({k: v for k, v in given.items() if v is not None})
        t = PhaseThresholds(**settings)
        out_dir = out or ((first if first.is_dir() else first.parent) / "figures")
        table, paths = phase_charts(results, out_dir, t)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
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
    sweep_dir: Path = typer.Argument(..., help="Sweep directory."),
    out: Path | None = typer.Option(None, help="HTML file (default <sweep>/report.html)."),
) -> None:
    """One self-contained HTML page: figures, tables, config and environment."""
    from acthash.report import build_report

    try:
        path = build_report(sweep_dir, out)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    console.print(f"wrote [bold]{path}[/]")



# ---------------------------------------------------------------- claims (the paper's findings)


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
    from acthash._io import write_table
    from acthash.claims import ClaimCriteria, evaluate_claims

    given = {"zero": zero, "one": one, "rise": rise, "decay": decay, "gain": gain,
             "minor": minor, "chance_margin": chance_margin, "accuracies": accuracies}
    try:
        crit = ClaimCriteria.from_dict({k: v for k, v in given.items() if v is not None})
        table = evaluate_claims(sweeps, crit)
        if out is not None:
            write_table(out, table)
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
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


@study_app.command("spectrum")
def study_spectrum(
    task: str = typer.Option("image", help="'image' (2-D regression of a grayscale image from "
                             "pixel coordinates) or a classification dataset name (digits, ...)."),
    image: str = typer.Option("grace_hopper.jpg", help="Image file, or a matplotlib sample image."),
    grid: int = typer.Option(32, help="Image task: grid x grid pixels (N = grid²)."),
    n_train: int = typer.Option(500, help="Classification: class-balanced training subset size."),
    depth: int = typer.Option(6, help="Hidden layers of the Leaky-ReLU MLP."),
    width: int = typer.Option(64, help="Hidden units per layer."),
    optimizer: str = typer.Option("gd", help="gd (full-batch gradient descent) or adam."),
    lr: float = typer.Option(0.2, help="Learning rate for gd."),
    adam_lr: float = typer.Option(1e-3, help="Learning rate for adam."),
    schedule: str = typer.Option("constant", help="constant, or step (x gamma at decay-at)."),
    decay_at: str = typer.Option("0.5,0.75", help="Step decay points as fractions of steps."),
    gamma: float = typer.Option(0.1, help="Step decay factor."),
    steps: int = typer.Option(3000, help="Training steps (full batch)."),
    records: int = typer.Option(16, help="Recorded steps, log-spaced from 0 to steps."),
    ks: str = typer.Option("1,4,16,64,256", help="k values for E_k (top-k energy)."),
    compare: str = typer.Option("", help="Comma list of depth, schedule, optimizer: runs "
                                "d2 vs d6, constant vs step decay, gd vs adam in one go."),
    loss: str = typer.Option("auto", help="auto (mse for image, ce for classes), mse or ce."),
    kernel: str = typer.Option("trace", help="Several outputs: trace, or per-logit (measures "
                               "averaged over the logits)."),
    method: str = typer.Option("auto", help="NTK method: auto, structured, jacobian, ntk-vp."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Run directory (default: new one under runs/)."),
    runs_root: Path = typer.Option(Path("runs"), help="Where new run directories go."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Neural spectrum alignment: the NTK's spectrum and its alignment with the target
    over training (Kopitkov & Indelman)."""
    from acthash.studies.spectrum import SpectrumConfig, run_spectrum_study, summary_table

    fracs = list(_parse_floats(decay_at))
    try:
        cfg = SpectrumConfig(
            task=task, image=image, grid=grid, n_train=n_train, depth=depth, width=width,
            optimizer=optimizer, lr=lr, adam_lr=adam_lr, schedule=schedule, decay_at=fracs,
            gamma=gamma, steps=steps, n_records=records, ks=_parse_ints(ks),
            compare=[c.strip() for c in compare.split(",") if c.strip()], loss=loss,
            kernel=kernel, method=method, seed=seed)
        study = run_spectrum_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    except (ValueError, FileNotFoundError, TypeError, FloatingPointError) as e:
        _fail(e)
    df = summary_table(study).set_index("variant")
    table = Table(title="neural spectrum alignment (first and last recorded step)")
    table.add_column("measure")
    for name in df.index:
        table.add_column(name, justify="right", overflow="fold")
    for col in df.columns:
        table.add_row(col.replace("_", " "), *[f"{v:.4g}" for v in df[col]])
    console.print(table)
    console.print(f"run directory: [bold]{study.run_dir}[/]")


@study_app.command("binary")
def study_binary(
    dataset: str = typer.Option("digits", help="Dataset name (see `acthash data list`)."),
    data_dir: Path | None = typer.Option(None, help="Directory holding the dataset's files."),
    sample_size: int | None = typer.Option(None, help="Class-balanced training subset size."),
    test_size: int | None = typer.Option(None, help="Class-balanced test subset size."),
    backbone: str = typer.Option("mlp", help="Backbone model name (its output layer is removed)."),
    width: int = typer.Option(100, help="Backbone hidden units per layer."),
    depth: int = typer.Option(2, help="Backbone hidden layers."),
    latent_dim: int = typer.Option(4, help="Penultimate dimension d (~ceil(log2 classes))."),
    variants: str = typer.Option("compressed,linear,nonlinear,none",
                                 help="Models to train (comma-separated)."),
    epochs: int = typer.Option(100, help="Training epochs."),
    lr: float = typer.Option(1e-3, help="Learning rate (Adam)."),
    batch_size: int = typer.Option(64, help="Mini-batch size."),
    gamma0: float = typer.Option(0.01, help="Compression weight in epoch 1."),
    gamma_ratio: float = typer.Option(1.06, help="Geometric growth of the weight per epoch."),
    gamma_cap: float | None = typer.Option(None, help="Largest compression weight."),
    checkpoints: str = typer.Option("", help="Epochs to measure at (default: 0 and 10 steps)."),
    seeds: str = typer.Option("0", help="Seeds, comma-separated (one model each)."),
    eps: float = typer.Option(0.1, help="L-inf radius of the FGSM/PGD attacks (input units)."),
    robustness_size: int = typer.Option(500, help="Test examples attacked (0 = all)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, ..."),
    figures: bool = typer.Option(True, help="Write the latent-histogram and metric figures."),
    out: Path | None = typer.Option(None, help="Study directory (default: new one under runs/)."),
    runs_root: Path = typer.Option(Path("runs"), help="Where new study directories go."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Latent binary encoding: train the compressed bottleneck model and its three
    baselines, then compare same-encoding fraction, bimodality, robustness and reliability."""
    from acthash.studies.binary import TABLE_COLUMNS, BinaryStudyConfig, run_binary_study

    try:
        cfg = BinaryStudyConfig(
            dataset=dataset, dataset_options={"root": str(data_dir)} if data_dir else {},
            sample_size=sample_size, test_size=test_size, backbone=backbone,
            backbone_options={"width": width, "depth": depth}, latent_dim=latent_dim,
            variants=[v for v in variants.replace(" ", "").split(",") if v],
            epochs=epochs, lr=lr, batch_size=batch_size, gamma0=gamma0,
            gamma_ratio=gamma_ratio, gamma_cap=gamma_cap,
            checkpoints=_parse_ints(checkpoints), seeds=_parse_ints(seeds) or [0],
            attack_eps=eps, robustness_size=robustness_size or None, device=device,
            figures=figures,
        )
        result = run_binary_study(cfg, out_dir=out, runs_root=runs_root, progress=progress)
    except (ValueError, FileNotFoundError, TypeError) as e:
        _fail(e)
    table = Table(title=f"latent binary encoding, {dataset}, epoch {epochs}")
    table.add_column("metric")
    for v in result.table.index:
        table.add_column(v, justify="right")
    for col, label in TABLE_COLUMNS:
        if col in result.table.columns:
            table.add_row(label, *[_fmt(float(result.table.loc[v, col]))
                                   for v in result.table.index])
    console.print(table)
    console.print(f"study directory: [bold]{result.run_dir}[/]")


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
