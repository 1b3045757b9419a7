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
  :func:`load_checkpoint`.
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
from acthash._utils.run import environment_info, new_run_dir, save_array
from acthash.core.aggregate import aggregate_codes
from acthash.core.capture import capture
from acthash.data.manipulate import noisy_labels, random_labels, subsample, train_val_split
from acthash.errors import CorruptFileError, InputError, MissingFileError
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
           "prepare_data", "training_rows", "make_model", "derived_seed", "property_options"]


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


def run_experiment(cfg: RunConfig | None = None, *, out_dir: str | Path | None = None,
                   runs_root: str | Path = "runs", write: bool = True,
                   progress: bool = False) -> RunResult:
    """Train, capture codes at each checkpoint and compute the encoding properties.

    Writes a self-describing run directory (``out_dir``, or a new folder under
    ``runs_root``) unless ``write=False``.
    """
    cfg = cfg or RunConfig()
    if cfg.tile_to is not None and int(cfg.tile_to) < 1:
        raise InputError(f"tile_to must be a positive number of rows, got {cfg.tile_to}")
    ds, data_info, (x_tr, y_tr, x_val, y_val), noisy_idx, train_rows = _prepare(cfg)
    model = make_model(cfg, ds.input_shape, ds.n_classes)
    tcfg = cfg.train_config()
    run_dir = None
    if write:
        run_dir = Path(out_dir) if out_dir else new_run_dir(
            runs_root, cfg.dataset, *cfg.model_name_parts(), f"s{cfg.seed}")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "environment.json", environment_info(cfg.seed))
        data_info["files"] = {"train_indices": "train_indices.npy",
                              "train_labels": "train_labels.npy"}
        write_json(run_dir / "dataset.json", data_info)
        save_array(run_dir / "train_indices.npy", train_rows)
        save_array(run_dir / "train_labels.npy", y_tr.numpy())
        if noisy_idx is not None:
            save_array(run_dir / "noisy_indices.npy", noisy_idx)
    device = resolve_device(cfg.device)
    rows: list[dict] = []
    ckpt_meta = {"model": cfg.model, "model_kwargs": cfg.model_kwargs(),
                 "input_shape": list(ds.input_shape), "n_classes": ds.n_classes}

    budget = parse_memory_budget(cfg.memory_budget)
    # CPU: the compiled kernels
    options = property_options(cfg, device if device.type != "cpu" else None)
    clock = {"start": time.perf_counter(), "in_checkpoints": 0.0}
    scratch: list[Path] = []

    def capture_split(m, x, y, split: str, epoch: int):
        """Capture in memory, or straight to a .ahc when the codes exceed the budget."""
        to_disk = cfg.codes_to_disk
        if to_disk is None:
            n_bits = capture(m, x[:2], layers=cfg.layers, device=device).codes.n_bits
            to_disk = len(x) * ((n_bits + 7) // 8) > budget
        out = None
        if to_disk:
            if run_dir is not None and cfg.save_codes:
                out = run_dir / "codes" / f"epoch_{epoch:04d}_{split}.ahc"
            else:
                import tempfile

                scratch.append(Path(tempfile.mkdtemp(prefix="acthash-codes-")))
                out = scratch[-1] / f"{split}.ahc"
        return capture(m, x, labels=y, layers=cfg.layers, keep_outputs=True, device=device,
                       out=out), out is not None

    def on_checkpoint(epoch: int, m: nn.Module) -> None:
        t0 = time.perf_counter()
        seconds_train = t0 - clock["start"] - clock["in_checkpoints"]
        rec = {"epoch": epoch}
        tr = te = agg_tr = agg_te = None
        tr_on_disk = te_on_disk = False
        timings: dict = {}
        capture_s = 0.0
        if cfg.codes in ("binary", "both"):
            tr, tr_on_disk = capture_split(m, x_tr, y_tr.numpy(), "train", epoch)
            te, te_on_disk = capture_split(m, ds.x_test, ds.y_test.numpy(), "test", epoch)
            capture_s += time.perf_counter() - t0
            rec.update(encoding_properties(tr.codes, None, te.codes, None, options=options,
                                           train_outputs=tr.outputs, test_outputs=te.outputs,
                                           timings=timings))
            rec.update(dead_unit_fractions(tr.codes, "dead_units_train"))  # never active
        if cfg.codes in ("aggregate", "both"):
            t1 = time.perf_counter()
            agg_tr = aggregate_codes(m, x_tr, labels=y_tr.numpy(), layers=cfg.layers,
                                     device=device, keep_outputs=tr is None)
            agg_te = aggregate_codes(m, ds.x_test, labels=ds.y_test.numpy(), layers=cfg.layers,
                                     device=device, keep_outputs=te is None)
            capture_s += time.perf_counter() - t1
            if tr is None:
                rec.update({"n_train": len(agg_tr), "n_test": len(agg_te),
                            "n_classes": int(len(np.unique(agg_tr.labels))),
                            "convention": cfg.convention})
                for split, codes in (("train", agg_tr), ("test", agg_te)):
                    s = network_scores(codes.outputs, codes.labels)
                    rec[f"net_loss_{split}"], rec[f"net_acc_{split}"] = s["loss"], s["accuracy"]
            t2 = time.perf_counter()
            rec.update(aggregate_properties(agg_tr, None, agg_te, None, options=options))
            timings["aggregate"] = time.perf_counter() - t2
        rec["seconds_train"] = seconds_train
        rec["seconds_capture"] = capture_s
        for key, value in timings.items():
            rec[f"seconds_{key}"] = value
        rows.append(rec)
        if run_dir is not None:
            if cfg.save_codes and tr is not None:
                if not tr_on_disk:
                    tr.codes.save(run_dir / "codes" / f"epoch_{epoch:04d}_train.ahc")
                if not te_on_disk:
                    te.codes.save(run_dir / "codes" / f"epoch_{epoch:04d}_test.ahc")
            if cfg.save_codes and agg_tr is not None:
                save_array(run_dir / "codes" / f"epoch_{epoch:04d}_train_aggregate.npy",
                           agg_tr.values)
                save_array(run_dir / "codes" / f"epoch_{epoch:04d}_test_aggregate.npy",
                           agg_te.values)
            state = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
            save_torch(run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt",
                       {**ckpt_meta, "epoch": epoch, "state_dict": state})
            # partial metrics survive an interruption
            write_table(run_dir / "metrics.parquet", pd.DataFrame(rows))
        del tr, te
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)
        scratch.clear()
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


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint written by a run into ``model`` (or a model rebuilt from it).

    Raises CorruptFileError for an unreadable file and ValueError, naming the mismatching
    tensors, when the checkpoint does not fit the model.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise CorruptFileError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: {e}); rerun the "
            "training or restore the file"
        ) from e
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CorruptFileError(f"{path} holds no state_dict")
    if model is None:
        if "model" not in blob:
            raise InputError(f"{path} has no model description; pass the model to load into")
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
            "build the model with the options recorded in the run's config.json"
        )
    model.load_state_dict(state)
    model.eval()
    return model
