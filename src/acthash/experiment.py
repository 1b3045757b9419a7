"""One experiment end to end: data -> model -> train -> codes -> properties -> run directory.

``run_experiment(RunConfig(...))`` is what ``acthash run`` calls. The run directory holds:

- ``config.json`` (the full config), ``environment.json`` (versions, machine, seed),
  ``dataset.json`` (sizes, manipulations and their seeds), ``train_indices.npy`` (rows of
  the dataset's training set used), ``train_labels.npy`` (labels trained on) and, with label
  noise, ``noisy_indices.npy`` (rows of the used training set whose label was changed);
- ``metrics.json`` and ``metrics.parquet``: one row of encoding properties per checkpoint;
- ``history.parquet``: the training curve, one row per epoch;
- ``codes/epoch_XXXX_{train,test}.ahc``: the neural codes at each checkpoint;
- ``checkpoints/epoch_XXXX.pt`` and ``model.pt`` (the final model), loadable with
  :func:`load_checkpoint`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash import data as datasets
from acthash._config import ConfigDict
from acthash._io import atomic_path, save_torch, write_json, write_table
from acthash._run import environment_info
from acthash.capture import capture
from acthash.data.manipulate import noisy_labels, random_labels, subsample, train_val_split
from acthash.errors import CorruptFileError, InputError, MissingFileError
from acthash.models import build_model
from acthash.properties import dead_unit_fractions, encoding_properties
from acthash.train import TrainConfig, resolve_device, seed_everything, train

__all__ = ["RunConfig", "RunResult", "run_experiment", "load_checkpoint", "environment_info",
           "prepare_data", "training_rows", "make_model", "derived_seed"]


@dataclass
class RunConfig(ConfigDict):
    """Everything that determines a run (with the seed, it fixes the codes bit for bit)."""

    _kind = "run config"

    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)
    model: str = "mlp"
    width: int = 100
    depth: int = 1
    batchnorm: bool = False
    activation: str = "relu"
    model_options: dict = field(default_factory=dict)
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 64
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    step_size: int = 20
    lr_gamma: float = 0.1  # decay factor of the step and multistep schedules
    milestones: list[int] = field(default_factory=list)  # multistep: decay after these epochs
    early_stopping: int | None = None
    checkpoints: list[int] = field(default_factory=list)  # empty: the last epoch only
    sample_size: int | None = None
    balanced: bool = False
    # repeat the training rows floor(tile_to / N) times per epoch (the original sample-size
    # scripts), so a small sample gets as many steps as a large one; codes use the N rows
    tile_to: int | None = None
    label_noise: float = 0.0
    random_labels: bool = False
    val_split: float = 0.0
    seed: int = 0
    k: int = 9
    layers: str | None = None
    drop_constant: bool = False
    kmeans_n_init: int = 10
    logreg_strategy: str = "ovo"
    device: str = "auto"
    save_codes: bool = True

    def checkpoint_epochs(self) -> list[int]:
        eps = sorted(set(self.checkpoints)) if self.checkpoints else [self.epochs]
        bad = [e for e in eps if not 0 <= e <= self.epochs]
        if bad:
            raise InputError(f"checkpoints {bad} lie outside 0..{self.epochs} epochs")
        return eps

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
            momentum=self.momentum, weight_decay=self.weight_decay, schedule=self.schedule,
            step_size=self.step_size, gamma=self.lr_gamma, milestones=tuple(self.milestones),
            early_stopping=self.early_stopping,
            checkpoints=self.checkpoint_epochs(), seed=self.seed, device=self.device,
        )

    def model_kwargs(self) -> dict:
        return {"width": self.width, "depth": self.depth, "batchnorm": self.batchnorm,
                "activation": self.activation, **self.model_options}


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


def make_model(cfg: RunConfig, input_shape, n_classes: int) -> nn.Module:
    seed_everything(cfg.seed)
    return build_model(cfg.model, input_shape, n_classes, **cfg.model_kwargs())


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))


def _default_run_dir(cfg: RunConfig, root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{cfg.dataset.replace(':', '_').replace('/', '_')}-{cfg.model.replace(':', '_')}"
    return root / f"{name}-w{cfg.width}-d{cfg.depth}-s{cfg.seed}-{stamp}"


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
        run_dir = Path(out_dir) if out_dir else _default_run_dir(cfg, Path(runs_root))
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "environment.json", environment_info(cfg.seed))
        data_info["files"] = {"train_indices": "train_indices.npy",
                              "train_labels": "train_labels.npy"}
        write_json(run_dir / "dataset.json", data_info)
        _save_npy(run_dir / "train_indices.npy", train_rows)
        _save_npy(run_dir / "train_labels.npy", y_tr.numpy())
        if noisy_idx is not None:
            _save_npy(run_dir / "noisy_indices.npy", noisy_idx)
    device = resolve_device(cfg.device)
    rows: list[dict] = []
    ckpt_meta = {"model": cfg.model, "model_kwargs": cfg.model_kwargs(),
                 "input_shape": list(ds.input_shape), "n_classes": ds.n_classes}

    def on_checkpoint(epoch: int, m: nn.Module) -> None:
        tr = capture(m, x_tr, labels=y_tr.numpy(), layers=cfg.layers, keep_outputs=True,
                     device=device)
        te = capture(m, ds.x_test, labels=ds.y_test.numpy(), layers=cfg.layers,
                     keep_outputs=True, device=device)
        rec = {"epoch": epoch}
        rec.update(encoding_properties(
            tr.codes, None, te.codes, None, k=cfg.k, seed=cfg.seed,
            kmeans_n_init=cfg.kmeans_n_init, logreg_strategy=cfg.logreg_strategy,
            train_outputs=tr.outputs, test_outputs=te.outputs, drop_constant=cfg.drop_constant,
        ))
        rec.update(dead_unit_fractions(tr.codes, "dead_units_train"))  # never active on train
        rows.append(rec)
        if run_dir is not None:
            if cfg.save_codes:
                tr.codes.save(run_dir / "codes" / f"epoch_{epoch:04d}_train.ahc")
                te.codes.save(run_dir / "codes" / f"epoch_{epoch:04d}_test.ahc")
            state = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
            save_torch(run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt",
                       {**ckpt_meta, "epoch": epoch, "state_dict": state})
            # partial metrics survive an interruption
            write_table(run_dir / "metrics.parquet", pd.DataFrame(rows))

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
