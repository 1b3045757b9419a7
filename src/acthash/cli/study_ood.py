"""``acthash study ood``: out-of-distribution detection with neural codes against the
baselines, its sanity check, and the memorisation study (defaults from
:class:`acthash.studies.configs.OODStudyConfig`; the study code is imported when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash.cli._options import (
    BatchSize,
    DatasetOption,
    Device,
    Epochs,
    Force,
    Lr,
    Out,
    Progress,
    RunsRoot,
    _config,
    _csv,
    _dataset_options,
    _defaults,
    _parse_ints,
    _parse_names,
)
from acthash.cli._tables import console
from acthash.cli.study import study_app
from acthash.studies.configs import OODStudyConfig

_OOD = _defaults(OODStudyConfig)


def study_ood(
    dataset: Annotated[str, typer.Option(help="In-distribution dataset.")] = _OOD.dataset,
    data_dir: Annotated[Path | None, typer.Option(
        help="Directory holding the dataset's files (fashion-mnist, ...).")] = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    in_classes: Annotated[str, typer.Option(
        help="Classes trained on, comma-separated (the others are the held-out set).")] = (
            _csv(_OOD.in_classes)),
    train_size: Annotated[int, typer.Option(
        help="First N in-distribution training examples (0 = all).")] = _OOD.train_size or 0,
    test_size: Annotated[int, typer.Option(
        help="First N in-distribution test examples (0 = all).")] = _OOD.test_size or 0,
    val_fraction: Annotated[float, typer.Option(
        help="Share of the training examples kept as the sanity set.")] = _OOD.val_fraction,
    ood_sets: Annotated[str, typer.Option(
        help="OOD sets: held-out, permuted, inverted, uniform, gaussian or a dataset name.")] = (
            _csv(_OOD.ood_sets)),
    detectors: Annotated[str, typer.Option(help="Detectors, comma-separated.")] = (
        _csv(_OOD.detectors)),
    k: Annotated[int, typer.Option(help="Neighbours of the k-NN detectors.")] = _OOD.k,
    width: Annotated[str, typer.Option(help="Hidden widths of the MLP, comma-separated.")] = (
        _csv(_OOD.width)),
    epochs: Epochs = _OOD.epochs,
    lr: Lr = _OOD.lr,
    batch_size: BatchSize = _OOD.batch_size,
    seed: Annotated[str, typer.Option(help="Seeds, comma-separated (one model each).")] = (
        _csv(_OOD.seed)),
    sanity_tolerance: Annotated[float, typer.Option(
        help="Allowed |AUROC - 0.5| of validation vs test.")] = _OOD.sanity_tolerance,
    label_noise: Annotated[float, typer.Option(
        help="Label noise of the memorisation part (0 = skip it).")] = _OOD.label_noise,
    memorization_epochs: Annotated[int, typer.Option(
        help="Epochs of the noisy-label model.")] = _OOD.memorization_epochs,
    memorization_k: Annotated[int, typer.Option(
        help="Neighbours of the disagreement score.")] = _OOD.memorization_k,
    figures: Annotated[bool, typer.Option(help="Write ROC curves and histograms.")] = (
        _OOD.figures),
    device: Device = _OOD.device,
    out: Out = None,
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
) -> None:
    """Out-of-distribution detection: Hamming k-NN and coverage of neural codes against MSP,
    energy, feature k-NN and Mahalanobis (AUROC mean ± std over seeds), a sanity check, and
    flipped labels found by their codes."""
    params = dict(locals())
    from acthash.studies.ood import metric_table, run_ood_study, summarize

    cfg = _config(OODStudyConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  in_classes=_parse_ints(in_classes), train_size=train_size or None,
                  test_size=test_size or None, ood_sets=_parse_names(ood_sets),
                  detectors=_parse_names(detectors), width=_parse_ints(width),
                  seed=_parse_ints(seed) or [0])
    result = run_ood_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                           force=force)
    for metric, title in (("auroc", "AUROC"), ("fpr95", "FPR at 95 % TPR")):
        tab = metric_table(result.summary, metric)
        table = Table(title=f"{cfg.dataset}: {title} (ID test vs each OOD set)")
        table.add_column("detector")
        for c in tab.columns:
            table.add_column(str(c), justify="right")
        for det, row in tab.iterrows():
            table.add_row(str(det), *row.tolist())
        console.print(table)
    san = result.sanity.groupby("detector", sort=False)["auroc"].mean()
    console.print("sanity (validation vs test AUROC, mean over seeds): "
                  + ", ".join(f"{d} {a:.3f}" for d, a in san.items()))
    if len(result.memorization):
        mem = summarize(result.memorization, keys=("score",), metrics=("auroc",))
        table = Table(title=f"flagging the {cfg.label_noise:.0%} flipped training labels")
        table.add_column("score")
        table.add_column("AUROC", justify="right")
        for _, r in mem.iterrows():
            std = "" if r["n_seeds"] < 2 else f" ± {r['auroc_std']:.3f}"
            table.add_row(r["score"], f"{r['auroc_mean']:.3f}{std}")
        console.print(table)
    console.print(f"study directory: [bold]{result.run_dir}[/]")


def register(app: typer.Typer) -> None:
    """Add ``ood`` to the ``study`` group."""
    study_app.command("ood")(study_ood)
