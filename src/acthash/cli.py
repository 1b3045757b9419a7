"""The ``acthash`` command line (Typer). Each command mirrors a Python function."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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
    data_dir: Path | None = typer.Option(None, help="Directory holding the dataset's files."),
    model: str = typer.Option("mlp", help="Model name, or package.module:function."),
    width: int = typer.Option(100, help="Hidden units per layer (MLP) or width multiplier."),
    depth: int = typer.Option(1, help="Hidden layers (MLP) or depth (ResNet)."),
    batchnorm: bool = typer.Option(False, help="BatchNorm after each hidden Linear."),
    activation: str = typer.Option("relu", help="relu, leaky_relu, prelu, rrelu, relu6, hardtanh."),
    epochs: int = typer.Option(20, help="Training epochs."),
    lr: float = typer.Option(1e-2, help="Learning rate."),
    batch_size: int = typer.Option(64, help="Mini-batch size."),
    optimizer: str = typer.Option("adam", help="adam or sgd (momentum 0.9)."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay."),
    schedule: str = typer.Option("none", help="none, step (x0.1 every 20 epochs) or cosine."),
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
        cfg = RunConfig(
            dataset=dataset,
            dataset_options={"root": str(data_dir)} if data_dir else {},
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
    model: str = typer.Option("mlp", help="Model name, or package.module:function."),
    width: int = typer.Option(100),
    depth: int = typer.Option(1),
    batchnorm: bool = typer.Option(False),
    activation: str = typer.Option("relu"),
) -> None:
    """List the ReLU-like layers a model's code is made of (names, shapes, bit spans)."""
    from acthash import data as datasets
    from acthash.capture import list_layers
    from acthash.models import build_model

    try:
        ds = datasets.load(dataset)
        m = build_model(model, ds.input_shape, ds.n_classes, width=width, depth=depth,
                        batchnorm=batchnorm, activation=activation)
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
