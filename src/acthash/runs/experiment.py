"""One experiment end to end: data -> model -> train -> codes -> properties -> run directory.

``run_experiment(RunConfig(...))`` is what ``acthash run`` calls. The run directory holds:

- ``config.json`` (the full config), ``environment.json`` (versions, machine, seed),
  ``dataset.json`` (sizes, manipulations and their seeds), ``train_indices.npy`` (rows of
  the dataset's training set used), ``train_labels.npy`` (labels trained on) and, with label
  noise, ``noisy_indices.npy`` (rows of the used training set whose label was changed);
- ``metrics.json`` and ``metrics.parquet``: one row of encoding properties per checkpoint,
  with the wall-clock seconds spent in training (``seconds_train``, cumulative up to the
  checkpoint), capture (``seconds_capture``) and each property (``seconds_redundancy``,
  ``seconds_kmeans``, ``seconds_knn``, ``seconds_logreg``);
- ``history.parquet``: the training curve, one row per epoch;
- ``codes/epoch_XXXX_{train,test}.ahc``: the neural codes at each checkpoint (with
  ``codes="aggregate"``/``"both"`` also ``codes/epoch_XXXX_{train,test}_aggregate.npy``, the
  (N, channels) float64 aggregate codes);
- ``checkpoints/epoch_XXXX.pt`` and ``model.pt`` (the final model), loadable with
  :func:`load_checkpoint`;
- ``INCOMPLETE`` while the run is being written, and afterwards when it failed or was
  interrupted (:func:`acthash._utils.run.run_transaction`); a complete run has none.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash import data as datasets
from acthash._utils.budget import parse_memory_budget
from acthash._utils.io import save_torch, write_json, write_table
from acthash._utils.run import (
    check_out_dir,
    environment_info,
    progress_stage,
    run_transaction,
    save_array,
    start_run_dir,
)
from acthash.core.aggregate import aggregate_codes
from acthash.core.capture import capture
from acthash.data.manipulate import noisy_labels, random_labels, subsample, train_val_split
from acthash.errors import ConfigError, CorruptFileError, InputError, MissingFileError
from acthash.models import build_model
from acthash.properties import (
    PropertyOptions,
    aggregate_properties,
    dead_unit_fractions,
    encoding_properties,
    network_scores,
)
from acthash.runs.config import RunConfig
from acthash.train import resolve_device, seed_everything, train

__all__ = ["RunConfig", "RunResult", "run_experiment", "load_checkpoint", "environment_info",
           "prepare_data", "training_rows", "make_model", "derived_seed", "property_options",
           "measure_codes", "read_checkpoint"]


@dataclass
class RunResult:
    metrics: pd.DataFrame  # one row per checkpoint
    history: pd.DataFrame
    run_dir: Path | None
    model: nn.Module


# tags that derive one independent seed per manipulation from the run's seed
_SEED_TAGS = {"val_split": 1, "sample": 2, "random_labels": 3, "label_noise": 4}


def derived_seed(seed: int, what: str) -> int:
    """The seed a manipulation ``what`` uses: ``SeedSequence([seed, tag])``'s first word,
    so the split, the sample and the label noise are independent yet fixed by one seed."""
    return int(np.random.SeedSequence([int(seed), _SEED_TAGS[what]]).generate_state(1)[0])


def prepare_data(cfg: RunConfig):
    """Load the dataset and apply the study manipulations, in this order: validation split,
    sample size, random labels, label noise (the last two on training labels only).

    Returns ``(dataset, info, (x_train, y_train, x_val, y_val), noisy_indices)``.
    ``info`` (JSON-ready) records every manipulation with its seed; ``noisy_indices`` index
    the training rows used (None without label noise). The dataset's tensors are never
    modified. :func:`training_rows` gives the rows' indices into the dataset's training set.
    """
    ds, info, arrays, noisy_idx, _ = _prepare(cfg)
    return ds, info, arrays, noisy_idx


def training_rows(cfg: RunConfig) -> np.ndarray:
    """Indices into ``load(cfg.dataset).x_train`` of the training examples a run uses."""
    return _prepare(cfg)[4]


def _prepare(cfg: RunConfig):
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    x_tr, y_tr = ds.x_train, ds.y_train
    rows = np.arange(len(x_tr))
    info: dict = {"dataset": ds.describe(), "seed": cfg.seed}
    x_val = y_val = None
    if cfg.val_split:
        s = derived_seed(cfg.seed, "val_split")
        tr_idx, val_idx = train_val_split(len(x_tr), cfg.val_split, seed=s)
        x_val, y_val = x_tr[val_idx], y_tr[val_idx]
        rows = rows[tr_idx]
        info["val_split"] = {"fraction": cfg.val_split, "n_val": len(val_idx), "seed": s}
    if cfg.sample_size is not None:
        s = derived_seed(cfg.seed, "sample")
        idx = subsample(y_tr[rows], cfg.sample_size, balanced=cfg.balanced, seed=s)
        rows = rows[idx]
        info["sample_size"] = {"n": cfg.sample_size, "balanced": cfg.balanced,
                               "seed": s if cfg.balanced else None,
                               "protocol": "class-balanced random" if cfg.balanced else "first N"}
    x_tr, y_tr = x_tr[rows], y_tr[rows].clone()
    noisy_idx = None
    if cfg.random_labels:
        s = derived_seed(cfg.seed, "random_labels")
        y_tr = random_labels(y_tr, ds.n_classes, seed=s)
        info["random_labels"] = {"seed": s}
    if cfg.label_noise:
        s = derived_seed(cfg.seed, "label_noise")
        y_tr, noisy_idx = noisy_labels(y_tr, cfg.label_noise, ds.n_classes, seed=s)
        info["label_noise"] = {"fraction": cfg.label_noise, "n_noisy": int(len(noisy_idx)),
                               "seed": s, "file": "noisy_indices.npy"}
    info["n_train_used"] = len(x_tr)
    return ds, info, (x_tr, y_tr, x_val, y_val), noisy_idx, rows


def property_options(cfg: RunConfig, device=None) -> PropertyOptions:
    """The property options of a run: its measurement fields (k, seed, K-Means restarts and
    seeds, logistic-regression strategy and solver, convention, ties, constant units, data
    set, backend, memory budget), resolved once under ``cfg.convention``. ``device``: the
    torch device the properties run on (None: the CPU kernels). ``drop_constant`` False is
    the convention's choice, as everywhere (:class:`PropertyOptions`)."""
    return PropertyOptions.for_convention(
        cfg.convention, k=cfg.k, seed=cfg.seed, kmeans_n_init=cfg.kmeans_n_init,
        kmeans_n_seeds=cfg.kmeans_n_seeds, logreg_strategy=cfg.logreg_strategy,
        logreg_solver=cfg.logreg_solver, ties=cfg.ties, drop_constant=cfg.drop_constant,
        dataset=cfg.dataset, backend=cfg.property_backend,
        memory_budget=parse_memory_budget(cfg.memory_budget), device=device)


def make_model(cfg: RunConfig, input_shape, n_classes: int) -> nn.Module:
    seed_everything(cfg.seed)
    return build_model(cfg.model, input_shape, n_classes, **cfg.model_kwargs())


def _check_run(cfg: RunConfig, model: nn.Module, x_tr, options: PropertyOptions) -> None:
    """What can fail before training, checked before any file is written: the layers (on two
    rows, eval mode, no gradient: the model is untouched) and ``k`` against the training set."""
    n = len(x_tr)
    if options.train_scores and cfg.k >= n:
        raise ConfigError(f"k={cfg.k} needs more than k training examples (the training "
                          f"split's k-NN is leave-one-out), but the run trains on {n}; "
                          f"pass --k {max(1, n - 1)} or less, or more training examples")
    if not options.train_scores and cfg.k > n:
        raise ConfigError(f"k={cfg.k} needs at least k training examples, but the run "
                          f"trains on {n}; pass --k {n} or less")
    if cfg.codes in ("binary", "both"):
        capture(model, x_tr[:2], layers=cfg.layers, check_finite=False)
    if cfg.codes in ("aggregate", "both"):
        aggregate_codes(model, x_tr[:2], layers=cfg.layers)


def measure_codes(m: nn.Module, splits: dict, cfg, *, options: PropertyOptions, device,
                  run_dir: Path | None, stem: str = "", stage: str = "",
                  progress: bool = False) -> dict:
    """Capture ``m``'s codes of ``splits`` (``{"train": (x, y), "test": (x, y)}``, ``y`` a
    numpy array) and measure them: the encoding properties record of one checkpoint (without
    its ``epoch``), with ``seconds_capture`` and ``seconds_<property>``.

    ``cfg`` supplies the code settings (``codes``, ``layers``, ``codes_to_disk``,
    ``save_codes``, ``memory_budget``, ``convention``; a :class:`RunConfig` or a
    :class:`~acthash.runs.config.MeasureConfig`). With a ``run_dir`` and ``cfg.save_codes``
    the codes go to ``run_dir/codes/<stem>{train,test}.ahc`` (and ``_aggregate.npy``).
    Shared by :func:`run_experiment` (once per checkpoint) and
    :func:`acthash.runs.measure.measure` (once). ``progress``: each stage on stderr, its name
    prefixed by ``stage``."""
    budget = parse_memory_budget(cfg.memory_budget)
    keep = run_dir is not None and cfg.save_codes
    scratch: list[Path] = []

    def capture_split(split: str):
        """Capture in memory, or straight to a .ahc when the codes exceed the budget."""
        x, y = splits[split]
        to_disk = cfg.codes_to_disk
        if to_disk is None:
            n_bits = capture(m, x[:2], layers=cfg.layers, device=device).codes.n_bits
            to_disk = len(x) * ((n_bits + 7) // 8) > budget
        out = None
        if to_disk:
            if keep:
                out = run_dir / "codes" / f"{stem}{split}.ahc"
            else:
                import tempfile

                scratch.append(Path(tempfile.mkdtemp(prefix="acthash-codes-")))
                out = scratch[-1] / f"{split}.ahc"
        return capture(m, x, labels=y, layers=cfg.layers, keep_outputs=True, device=device,
                       out=out), out is not None

    t0 = time.perf_counter()
    rec: dict = {}
    tr = te = agg_tr = agg_te = None
    timings: dict = {}
    capture_s = 0.0
    try:
        if cfg.codes in ("binary", "both"):
            with progress_stage(f"{stage}capture", enabled=progress):
                (tr, tr_on_disk), (te, te_on_disk) = capture_split("train"), capture_split("test")
            capture_s += time.perf_counter() - t0
            rec.update(encoding_properties(tr.codes, None, te.codes, None, options=options,
                                           train_outputs=tr.outputs, test_outputs=te.outputs,
                                           timings=timings, progress=progress and stage))
            rec.update(dead_unit_fractions(tr.codes, "dead_units_train"))  # never active
            if keep:
                if not tr_on_disk:
                    tr.codes.save(run_dir / "codes" / f"{stem}train.ahc")
                if not te_on_disk:
                    te.codes.save(run_dir / "codes" / f"{stem}test.ahc")
        if cfg.codes in ("aggregate", "both"):
            t1 = time.perf_counter()
            agg = {split: aggregate_codes(m, x, labels=y, layers=cfg.layers, device=device,
                                          keep_outputs=tr is None)
                   for split, (x, y) in splits.items()}
            agg_tr, agg_te = agg["train"], agg["test"]
            capture_s += time.perf_counter() - t1
            if tr is None:
                rec.update({"n_train": len(agg_tr), "n_test": len(agg_te),
                            "n_classes": int(len(np.unique(agg_tr.labels))),
                            "convention": cfg.convention})
                for split, codes in (("train", agg_tr), ("test", agg_te)):
                    s = network_scores(codes.outputs, codes.labels)
                    rec[f"net_loss_{split}"], rec[f"net_acc_{split}"] = s["loss"], s["accuracy"]
            t2 = time.perf_counter()
            with progress_stage(f"{stage}aggregate-code properties", enabled=progress):
                rec.update(aggregate_properties(agg_tr, None, agg_te, None, options=options))
            timings["aggregate"] = time.perf_counter() - t2
            if keep:
                save_array(run_dir / "codes" / f"{stem}train_aggregate.npy", agg_tr.values)
                save_array(run_dir / "codes" / f"{stem}test_aggregate.npy", agg_te.values)
    finally:
        del tr, te
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)
    rec["seconds_capture"] = capture_s
    for key, value in timings.items():
        rec[f"seconds_{key}"] = value
    return rec


@run_transaction
def run_experiment(cfg: RunConfig | None = None, *, out_dir: str | Path | None = None,
                   runs_root: str | Path = "runs", write: bool = True,
                   progress: bool = False, force: bool = False) -> RunResult:
    """Train, capture codes at each checkpoint and compute the encoding properties.

    Writes a self-describing run directory (``out_dir``, or a new folder under
    ``runs_root``) unless ``write=False``. Everything that can be checked (the out
    directory, dataset and its options, device, memory budget, layers, ``k`` against the
    training set) is checked before any file is written. An existing, non-empty ``out_dir``
    is refused unless ``force`` (which empties it). The run is a transaction
    (:func:`acthash._utils.run.run_transaction`): the directory carries an ``INCOMPLETE``
    marker until the run has finished, and keeps it, with the error, if it fails.
    """
    cfg = cfg or RunConfig()
    if cfg.tile_to is not None and int(cfg.tile_to) < 1:
        raise InputError(f"tile_to must be a positive number of rows, got {cfg.tile_to}")
    if write and out_dir:
        check_out_dir(out_dir, force=force)
    device = resolve_device(cfg.device)
    parse_memory_budget(cfg.memory_budget)  # an unreadable budget fails before any file
    # CPU: the compiled kernels
    options = property_options(cfg, device if device.type != "cpu" else None)
    tcfg = cfg.train_config()
    with progress_stage(f"loading {cfg.dataset}", enabled=progress):
        ds, data_info, (x_tr, y_tr, x_val, y_val), noisy_idx, train_rows = _prepare(cfg)
    model = make_model(cfg, ds.input_shape, ds.n_classes)
    _check_run(cfg, model, x_tr, options)
    run_dir = None
    if write:
        run_dir = start_run_dir(
            out_dir, runs_root, (cfg.dataset, *cfg.model_name_parts(), f"s{cfg.seed}"),
            config=cfg.to_dict(), seed=cfg.seed, force=force)
        data_info["files"] = {"train_indices": "train_indices.npy",
                              "train_labels": "train_labels.npy"}
        write_json(run_dir / "dataset.json", data_info)
        save_array(run_dir / "train_indices.npy", train_rows)
        save_array(run_dir / "train_labels.npy", y_tr.numpy())
        if noisy_idx is not None:
            save_array(run_dir / "noisy_indices.npy", noisy_idx)
    rows: list[dict] = []
    ckpt_meta = {"model": cfg.model, "model_kwargs": cfg.model_kwargs(),
                 "input_shape": list(ds.input_shape), "n_classes": ds.n_classes}
    clock = {"start": time.perf_counter(), "in_checkpoints": 0.0}
    splits = {"train": (x_tr, y_tr.numpy()), "test": (ds.x_test, ds.y_test.numpy())}

    def on_checkpoint(epoch: int, m: nn.Module) -> None:
        t0 = time.perf_counter()
        seconds_train = t0 - clock["start"] - clock["in_checkpoints"]
        measured = measure_codes(m, splits, cfg, options=options, device=device,
                                 run_dir=run_dir, stem=f"epoch_{epoch:04d}_",
                                 stage=f"epoch {epoch}: ", progress=progress)
        seconds = {k: v for k, v in measured.items() if k.startswith("seconds_")}
        rec = {"epoch": epoch, **{k: v for k, v in measured.items() if k not in seconds},
               "seconds_train": seconds_train, **seconds}
        rows.append(rec)
        if run_dir is not None:
            state = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
            save_torch(run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt",
                       {**ckpt_meta, "epoch": epoch, "state_dict": state})
            # partial metrics survive an interruption
            write_table(run_dir / "metrics.parquet", pd.DataFrame(rows))
        clock["in_checkpoints"] += time.perf_counter() - t0

    x_fit, y_fit = x_tr, y_tr
    if cfg.tile_to:  # the codes and properties stay on the N distinct rows
        reps = max(1, int(cfg.tile_to) // len(x_tr))
        x_fit = x_tr.repeat((reps,) + (1,) * (x_tr.ndim - 1))
        y_fit = y_tr.repeat(reps)
        data_info["tile_to"] = {"target": int(cfg.tile_to), "repeats": reps,
                                "rows_per_epoch": len(x_fit)}
        if run_dir is not None:
            write_json(run_dir / "dataset.json", data_info)
    result = train(model, x_fit, y_fit, tcfg, x_val=x_val, y_val=y_val,
                   on_checkpoint=on_checkpoint, progress=progress)
    metrics = pd.DataFrame(rows)
    for key, value in (("dataset", cfg.dataset), ("model", cfg.model), ("width", cfg.width),
                       ("depth", cfg.depth), ("seed", cfg.seed)):
        metrics.insert(len(metrics.columns), key, value)
    if run_dir is not None:
        write_table(run_dir / "metrics.parquet", metrics)
        write_json(run_dir / "metrics.json", json.loads(metrics.to_json(orient="records")))
        write_table(run_dir / "history.parquet", result.history)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        save_torch(run_dir / "model.pt", {**ckpt_meta, "epoch": cfg.epochs, "state_dict": state})
    return RunResult(metrics, result.history, run_dir, model)


def read_checkpoint(path: str | Path) -> dict:
    """The contents of a checkpoint file: a run's (``{"model", "model_kwargs",
    "input_shape", "n_classes", "epoch", "state_dict"}``) or a bare state_dict (then
    ``{"state_dict": ...}``). Raises MissingFileError / CorruptFileError."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise CorruptFileError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: {e}); rerun the "
            "training or restore the file"
        ) from e
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        return blob
    if isinstance(blob, dict) and blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return {"state_dict": blob}
    raise CorruptFileError(f"{path} holds no state_dict (a mapping of tensor names to "
                           "tensors, or a run's checkpoint); save model.state_dict()")


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    blob: dict | None = None) -> nn.Module:
    """Load a checkpoint into ``model`` (or a model rebuilt from it), in eval mode.

    ``path``: a checkpoint written by a run (``model.pt``, ``checkpoints/epoch_XXXX.pt``,
    which also describe the model) or a file of ``model.state_dict()``. ``blob``: its
    contents already read (:func:`read_checkpoint`). Raises MissingFileError or
    CorruptFileError for a missing or unreadable file, and InputError (a ValueError) naming
    the missing, unexpected and mis-shaped tensors when the checkpoint does not fit the model.
    """
    path = Path(path)
    blob = read_checkpoint(path) if blob is None else blob
    state = blob["state_dict"]
    if model is None:
        if "model" not in blob:
            raise InputError(f"{path} has no model description (a bare state_dict); pass the "
                             "model to load into (acthash measure: --model)")
        model = build_model(blob["model"], blob["input_shape"], blob["n_classes"],
                            **blob["model_kwargs"])
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                for k in wrong[:5]))
        raise InputError(
            f"checkpoint {path} does not match {type(model).__name__} ({'; '.join(parts)}); "
            "build the model with the options recorded in the run's config.json "
            "(acthash measure: --model, --width, --depth, -M)"
        )
    model.load_state_dict(state)
    model.eval()
    return model
