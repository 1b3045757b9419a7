"""``acthash study``: the companion studies (regions, lsh, spectrum, binary, retrieval).
Defaults come from :mod:`acthash.studies.configs`; a study's code is imported when its
command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acthash._utils.fmt import mean_pm, spread_label
from acthash.cli._options import (
    Activation,
    Batchnorm,
    BatchSize,
    DataDir,
    Dataset,
    DatasetOption,
    Deprecated,
    Depth,
    Device,
    Epochs,
    Force,
    Lr,
    Model,
    ModelOption,
    Optimizer,
    Out,
    Progress,
    RunsRoot,
    Schedule,
    Seed,
    StepSize,
    WeightDecay,
    Width,
    _config,
    _csv,
    _dataset_options,
    _defaults,
    _model_options,
    _parse_floats,
    _parse_ints,
    _parse_names,
    _take_deprecated,
)
from acthash.cli._tables import _fmt, _run_dir_line, console, show
from acthash.studies.configs import (
    BinaryStudyConfig,
    LSHConfig,
    RegionsConfig,
    RetrievalStudyConfig,
    SpectrumConfig,
)

study_app = typer.Typer(help="Companion studies: linear regions, LSH, neural spectrum, latent "
                        "binary encoding.", no_args_is_help=True)


_REG = _defaults(RegionsConfig)


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
    force: Force = False,
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
    result = run_regions_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                               force=force)
    table = Table(title="linear regions (exact)")
    for col in ("epoch", "measure", "group", "mean", "median", "std", "n"):
        table.add_column(col, justify="right" if col in ("mean", "median", "std", "n") else "left")
    for r in result.summary.itertuples():
        table.add_row(str(r.epoch), r.measure, r.group, _fmt(float(r.mean)),
                      _fmt(float(r.median)), _fmt(float(r.std)), str(r.n))
    show(table)
    _run_dir_line(result.run_dir)


_LSH = _defaults(LSHConfig)


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
    dataset: Annotated[str, typer.Option(
        help="Real dataset for held-out-class one-shot ('' = skip).")] = _LSH.dataset,
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
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    real_dataset_: Annotated[str | None, Deprecated("--real-dataset", "--dataset")] = None,
) -> None:
    """LSH study: collision curves vs gamma distance, per-layer invariance, and one-shot
    learning of unseen classes (raw vs untrained vs trained representation vs code)."""
    params = _take_deprecated(dict(locals()), {"real_dataset_": "dataset"})
    from acthash.studies.lsh import REPRESENTATIONS, run_lsh_study

    cfg = _config(LSHConfig, params, distances=tuple(_parse_floats(distances)),
                  srp_bits=tuple(_parse_ints(srp_bits)), n_unseen=tuple(_parse_ints(n_unseen)),
                  dataset=params["dataset"] or None,
                  dataset_options=_dataset_options(data_dir, dataset_option))
    result = run_lsh_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                           force=force)
    for title, summ in (("one-shot accuracy on unseen manifolds", result.one_shot_summary),
                        ("one-shot accuracy on held-out real classes", result.real_summary)):
        if summ is None:
            continue
        wide = summ.assign(cell=[mean_pm(m, s, int(n)) for m, s, n in
                                 zip(summ["mean"], summ["std"], summ["repeats"], strict=True)])
        wide = wide.pivot(index="n_unseen", columns="representation", values="cell")
        wide = wide[[c for c in REPRESENTATIONS if c in wide.columns]]
        table = Table(title=title)
        table.add_column("unseen classes", justify="right")
        for col in wide.columns:
            table.add_column(col, justify="right")
        for n, row in wide.iterrows():
            table.add_row(str(n), *[str(v) for v in row])
        show(table)
    _run_dir_line(result.run_dir)


_SPEC = _defaults(SpectrumConfig)


@study_app.command("spectrum")
def study_spectrum(
    dataset: Annotated[str, typer.Option(
        help="'image' (2-D regression of a grayscale image from pixel coordinates) or a "
        "classification dataset name (digits, ...).")] = _SPEC.dataset,
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
        help="constant, or step (x lr-gamma at decay-at).")] = _SPEC.schedule,
    decay_at: Annotated[str, typer.Option(
        help="Step decay points as fractions of the epochs.")] = _csv(_SPEC.decay_at),
    lr_gamma: Annotated[float, typer.Option(help="Step decay factor.")] = _SPEC.lr_gamma,
    epochs: Annotated[int, typer.Option(
        help="Training epochs (full batch: one step each).")] = _SPEC.epochs,
    n_records: Annotated[int, typer.Option(
        help="Recorded epochs, log-spaced from 0 to --epochs.")] = _SPEC.n_records,
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
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    task_: Annotated[str | None, Deprecated("--task", "--dataset")] = None,
    steps_: Annotated[int | None, Deprecated("--steps", "--epochs")] = None,
    gamma_: Annotated[float | None, Deprecated("--gamma", "--lr-gamma")] = None,
) -> None:
    """Neural spectrum alignment: the NTK's spectrum and its alignment with the target
    over training (Kopitkov & Indelman)."""
    params = _take_deprecated(dict(locals()), {"task_": "dataset", "steps_": "epochs",
                                               "gamma_": "lr_gamma"})
    from acthash.studies.spectrum import run_spectrum_study, summary_table

    cfg = _config(SpectrumConfig, params, decay_at=_parse_floats(decay_at),
                  ks=_parse_ints(ks), compare=_parse_names(compare),
                  dataset_options=_dataset_options(data_dir, dataset_option))
    study = run_spectrum_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                               force=force)
    df = summary_table(study).set_index("variant")
    table = Table(title="neural spectrum alignment (first and last recorded step)")
    table.add_column("measure")
    for name in df.index:
        table.add_column(name, justify="right", overflow="fold")
    for col in df.columns:
        table.add_row(col.replace("_", " "), *[f"{v:.4g}" for v in df[col]])
    show(table)
    _run_dir_line(study.run_dir)


_BIN = _defaults(BinaryStudyConfig)


@study_app.command("binary")
def study_binary(
    dataset: Dataset = _BIN.dataset,
    data_dir: DataDir = None,
    dataset_option: DatasetOption = [],  # noqa: B006
    sample_size: Annotated[int | None, typer.Option(
        help="Class-balanced training subset size.")] = _BIN.sample_size,
    test_size: Annotated[int | None, typer.Option(
        help="Class-balanced test subset size.")] = _BIN.test_size,
    model: Annotated[str, typer.Option(
        help="Backbone model name (its output layer is removed).")] = _BIN.model,
    width: Annotated[int, typer.Option(
        help="Backbone hidden units per layer (sets model_options).")] = (
            _BIN.model_options["width"]),
    depth: Annotated[int, typer.Option(
        help="Backbone hidden layers (sets model_options).")] = _BIN.model_options["depth"],
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
    schedule: Annotated[str, typer.Option(help="none, step (StepLR) or cosine.")] = (
        _BIN.schedule),
    step_size: Annotated[int, typer.Option(help="StepLR: epochs between decays.")] = (
        _BIN.step_size),
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
    seed: Annotated[str, typer.Option(help="Seeds, comma-separated (one model each).")] = (
        _csv(_BIN.seed)),
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
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    backbone_: Annotated[str | None, Deprecated("--backbone", "--model")] = None,
    lr_schedule_: Annotated[str | None, Deprecated("--lr-schedule", "--schedule")] = None,
    lr_step_size_: Annotated[int | None, Deprecated("--lr-step-size", "--step-size")] = None,
    seeds_: Annotated[str | None, Deprecated("--seeds", "--seed")] = None,
) -> None:
    """Latent binary encoding: train the compressed bottleneck model and its three
    baselines, then compare same-encoding fraction, bimodality, robustness and reliability."""
    params = _take_deprecated(dict(locals()), {
        "backbone_": "model", "lr_schedule_": "schedule", "lr_step_size_": "step_size",
        "seeds_": "seed"})
    from acthash.studies.binary import TABLE_COLUMNS, run_binary_study

    for composite in ("width", "depth"):  # parts of model_options
        params.pop(composite)
    cfg = _config(BinaryStudyConfig, params,
                  dataset_options=_dataset_options(data_dir, dataset_option),
                  model_options={"width": width, "depth": depth,
                                 **_model_options(None, model_option)},
                  variants=_parse_names(variants), ood_sets=_parse_names(ood_sets),
                  bimodality_max_dims=bimodality_max_dims or None,
                  checkpoints=_parse_ints(checkpoints), seed=_parse_ints(params["seed"]) or [0],
                  robustness_size=robustness_size or None)
    result = run_binary_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                              force=force)
    table = Table(title=f"latent binary encoding, {cfg.dataset}, epoch {cfg.epochs}")
    table.add_column("metric")
    for v in result.table.index:
        table.add_column(v, justify="right")
    for col, label in TABLE_COLUMNS:
        if col in result.table.columns:
            table.add_row(label.replace("9-NN", f"{cfg.k}-NN"),
                          *[_fmt(float(result.table.loc[v, col])) for v in result.table.index])
    show(table)
    if result.ood is not None and len(result.ood):
        ood = Table(title="out-of-distribution AUROC (Lee et al.: tied covariance, min distance)")
        for col in ("variant", "shifted set", "Lee", "per-class at predicted"):
            ood.add_column(col, justify="right" if col[0].isupper() or col[0] == "p" else "left")
        for r in result.ood.itertuples():
            ood.add_row(r.variant, r.ood_set, _fmt(float(r.lee)), _fmt(float(r.predicted)))
        show(ood)
    console.print(f"study directory: [bold]{result.run_dir}[/]")


_RET = _defaults(RetrievalStudyConfig)
_FILE_BASED = {"fashion-mnist", "mnist", "cifar10", "svhn"}


@study_app.command("retrieval")
def study_retrieval(
    dataset: Annotated[list[str], typer.Option(
        help="Datasets: repeat the option or separate them by commas.")] = _RET.dataset,
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
    width: Annotated[str, typer.Option(
        help="Hidden widths of the MLP, one per layer, comma-separated.")] = _csv(_RET.width),
    epochs: Epochs = _RET.epochs,
    min_steps: Annotated[int, typer.Option(
        help="At least this many optimizer steps (more epochs on small training sets).")] = (
            _RET.min_steps),
    lr: Lr = _RET.lr,
    batch_size: BatchSize = _RET.batch_size,
    seed: Annotated[str, typer.Option(help="Seeds (network, LSH, ITQ), comma-separated.")] = (
        _csv(_RET.seed)),
    data_seed: Annotated[int, typer.Option(
        help="Seed of the query/database/training samples.")] = _RET.data_seed,
    select: Annotated[str, typer.Option(
        help="Neural unit selection: entropy, decorrelated, first.")] = _RET.select,
    itq_iter: Annotated[int, typer.Option(help="ITQ iterations.")] = _RET.itq_iter,
    itq_fit_size: Annotated[int, typer.Option(
        help="Database rows ITQ's rotation is fitted on (0 = all).")] = _RET.itq_fit_size or 0,
    radius: Annotated[int, typer.Option(help="Hamming radius of the radius precision.")] = (
        _RET.radius),
    map_at: Annotated[str, typer.Option(
        help="Cut-offs k of mAP@k and P@k, comma-separated (e.g. 1000; empty: none).")] = (
            _csv(_RET.map_at)),
    map_ties: Annotated[str, typer.Option(
        help="Tie rule of mAP@k: stable (database order), expected (over the orders of tied "
        "items) or deep-hashing (an unstable sort, reported as its expectation).")] = (
            _RET.map_ties),
    map_normalize: Annotated[str, typer.Option(
        help="AP@k normalised by the relevant items retrieved in the top k (retrieved) or "
        "by min(k, R) (min).")] = _RET.map_normalize,
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
    force: Force = False,
    runs_root: RunsRoot = Path("runs"),
    progress: Progress = True,
    datasets_: Annotated[str | None, Deprecated("--datasets", "--dataset")] = None,
    widths_: Annotated[str | None, Deprecated("--widths", "--width")] = None,
    seeds_: Annotated[str | None, Deprecated("--seeds", "--seed")] = None,
) -> None:
    """Neural codes as a retrieval hash: mAP, precision@k and radius-2 precision of Hamming
    ranking against LSH, PCA, ITQ and spectral hashing at equal bit budgets."""
    params = _take_deprecated(dict(locals()), {"datasets_": "dataset", "widths_": "width",
                                               "seeds_": "seed"})
    from acthash.studies.retrieval import run_retrieval_study

    given = params["dataset"]
    names = _parse_names(",".join([given] if isinstance(given, str) else given))
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
    cfg = _config(RetrievalStudyConfig, params, dataset=names, dataset_options=options,
                  bits=_parse_ints(bits), encoders=_parse_names(encoders),
                  n_queries=n_queries or None, n_database=n_database or None,
                  train_size=train_size or None, width=_parse_ints(params["width"]),
                  seed=_parse_ints(params["seed"]) or [0], itq_fit_size=itq_fit_size or None,
                  search_bits=search_bits or None, runs=run_dirs,
                  map_at=_parse_ints(map_at))
    result = run_retrieval_study(cfg, out_dir=out, runs_root=runs_root, progress=progress,
                                 force=force)
    summary = result.summary
    for name, sub in summary.groupby("dataset", sort=False):
        labels = list(dict.fromkeys(sub["bits"]))
        table = Table(title=f"{name}: mAP of Hamming ranking",
                      caption=spread_label(int(sub["n_seeds"].min())))
        table.add_column("encoder")
        for b in labels:
            table.add_column(b, justify="right")
        for enc in dict.fromkeys(sub["encoder"]):
            cells = []
            for b in labels:
                r = sub[(sub["encoder"] == enc) & (sub["bits"] == b)]
                cells.append("n/a" if r.empty else
                             mean_pm(r["map_mean"].iloc[0], r["map_std"].iloc[0],
                                     int(r["n_seeds"].iloc[0])))
            table.add_row(enc, *cells)
        show(table)
    if result.search is not None:
        st = Table(title="Hamming search (recall@10 against exact)")
        for c in ("dataset", "index", "n_bits", "build_s", "qps", "recall@10", "recall@10_dist"):
            st.add_column(c, justify="right")
        for _, r in result.search.iterrows():
            st.add_row(str(r["dataset"]), str(r["index"]), str(r["n_bits"]),
                       f"{r['build_s']:.2f}", f"{r['qps']:.0f}", f"{r['recall@10']:.3f}",
                       f"{r['recall@10_dist']:.3f}")
        show(st)
    console.print(f"study directory: [bold]{result.run_dir}[/]")


def register(app: typer.Typer) -> None:
    """Add the ``study`` group to the root command."""
    app.add_typer(study_app, name="study")
