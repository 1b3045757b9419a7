"""The encoding properties of a model the user brings, with no training (``acthash measure``).

``measure(model, data, checkpoint=...)`` builds or loads the model, loads the checkpoint into
it, captures the codes of the dataset's training and test sets and measures them with the
same steps as a run (:func:`acthash.runs.experiment.measure_codes`, options from
:func:`acthash.runs.experiment.property_options`). The model is

- an ``nn.Module`` (Python only);
- a registry name (``mlp`` with ``width``/``depth``/..., ``resnet20``, ...; see
  :func:`acthash.models.list_models`);
- ``module:callable``, imported with the working directory on the path: a builder taking
  (some of) ``input_shape``, ``n_classes`` and the model options, an ``nn.Module`` class, or
  an ``nn.Module`` instance;
- a TorchScript file or a ``torch.export`` program (``.pt2``)
  (:func:`acthash.models.files.load_model_file`);
- None: the model a run's checkpoint describes (``model.pt``, ``checkpoints/epoch_XXXX.pt``).

The run directory (``out_dir``, or ``<runs_root>/<dataset>-<model>[-w..-d..]-<checkpoint>-s<seed>-<time>``)
holds ``config.json``, ``environment.json``, ``dataset.json``, ``source.json`` (what was
measured: the model's kind, files and their SHA-256), ``metrics.parquet``/``metrics.csv``
(one row; ``checkpoint`` is the checkpoint's file name, ``checkpoint_epoch`` the epoch a run's
checkpoint records; there is no ``epoch`` and no training time) and
``codes/{train,test}.ahc``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from acthash import data as datasets
from acthash._utils.config import ModelFields
from acthash._utils.io import write_json, write_table
from acthash._utils.run import check_out_dir, progress_stage, run_transaction, start_run_dir
from acthash.errors import ConfigError, InputError
from acthash.models import build_model
from acthash.models.files import is_model_file, load_model_file
from acthash.models.registry import import_object
from acthash.runs.config import MeasureConfig
from acthash.runs.experiment import (
    load_checkpoint,
    measure_codes,
    property_options,
    read_checkpoint,
)
from acthash.train import resolve_device, seed_everything

__all__ = ["MeasureConfig", "MeasureResult", "measure", "resolve_model"]


@dataclass
class MeasureResult:
    metrics: pd.DataFrame  # one row of encoding properties
    run_dir: Path | None
    model: nn.Module
    config: MeasureConfig


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fixed_architecture(cfg: MeasureConfig, what: str) -> None:
    """A model whose architecture is fixed takes no model option."""
    defaults = {f.name: f.default for f in fields(ModelFields) if f.name != "model"}
    given = [k for k, v in defaults.items()
             if k != "model_options" and getattr(cfg, k) != v]
    if cfg.model_options:
        given.append("model_options")
    if given:
        flags = ", ".join("-M" if k == "model_options" else f"--{k.replace('_', '-')}"
                          for k in given)
        raise ConfigError(f"{what} fixes its architecture, so it takes no model option; "
                          f"remove {flags}")


def resolve_model(model, cfg: MeasureConfig, input_shape, n_classes: int,
                  example: torch.Tensor, blob: dict | None = None):
    """``(module, kind, name, builder_kwargs)`` of a model spec (see the module docstring);
    ``kind`` is "module", "registry", "callable", "file" or "checkpoint"; ``name`` names the
    model (registry name, ``module.callable``, file name or class name); ``builder_kwargs``
    are the options a builder received (empty for a model with a fixed architecture)."""
    seed_everything(cfg.seed)  # a built model's initialization (a checkpoint replaces it)
    if isinstance(model, nn.Module):
        _fixed_architecture(cfg, f"the given {type(model).__name__}")
        return model, "module", type(model).__name__, {}
    if model is None:
        if blob is None or "model" not in blob:
            raise ConfigError("nothing to measure: give the model (a registry name, "
                              "module:callable, a TorchScript or .pt2 file); a bare "
                              "state_dict checkpoint does not describe one")
        _fixed_architecture(cfg, f"the model recorded in {Path(cfg.checkpoint).name}")
        kwargs = dict(blob["model_kwargs"])
        built = build_model(blob["model"], input_shape, n_classes, **kwargs)
        return built, "checkpoint", blob["model"].replace(":", "."), kwargs
    if not isinstance(model, str):
        raise InputError(f"model must be an nn.Module or a model spec string, got "
                         f"{type(model).__name__}")
    if is_model_file(model):
        _fixed_architecture(cfg, f"the model file {model}")
        return load_model_file(model, example), "file", Path(model).name, {}
    if ":" in model:
        obj = import_object(model)
        if isinstance(obj, nn.Module):
            _fixed_architecture(cfg, f"the module instance {model}")
            return obj, "callable", model.replace(":", "."), {}
        kwargs = cfg.model_kwargs()
        built = build_model(model, input_shape, n_classes, **kwargs)
        return built, "callable", model.replace(":", "."), kwargs
    kwargs = cfg.model_kwargs()
    return build_model(model, input_shape, n_classes, **kwargs), "registry", model, kwargs


def _dir_parts(name: str, kwargs: dict) -> list[str]:
    """``[mlp, w100, d1]``: the model's name, with width and depth when its builder took
    them (a model file or a fixed class is named by itself alone)."""
    if name.endswith((".pt", ".pt2")):
        name = name.rsplit(".", 1)[0]
    return [name] + [f"{key[0]}{kwargs[key]}" for key in ("width", "depth") if key in kwargs]


@run_transaction
def measure(model=None, data="digits", *, checkpoint: str | Path | None = None,
            config: MeasureConfig | None = None, out_dir: str | Path | None = None,
            runs_root: str | Path = "runs", write: bool = True, force: bool = False,
            progress: bool = False, **options) -> MeasureResult:
    """The encoding properties of ``model`` on ``data``, without training.

    model : an ``nn.Module``, a registry name, ``module:callable``, a TorchScript or ``.pt2``
        file, or None (the model a run's ``checkpoint`` describes).
    data : a dataset name (``dataset_options=`` its loader options) or an
        :class:`acthash.data.Dataset`.
    checkpoint : a state_dict file or a run's checkpoint, loaded into the model (a mismatch
        is an InputError naming the missing, unexpected and mis-shaped tensors).
    options : the :class:`MeasureConfig` fields (``k``, ``convention``, ``width``, ``seed``,
        ``device``, ``layers``, ``codes``, ...), or a whole ``config``.

    Writes a run directory (module docstring) unless ``write=False``, as a transaction
    (:func:`acthash._utils.run.run_transaction`: an ``INCOMPLETE`` marker until it has
    finished; an existing ``out_dir`` is refused unless ``force``); returns a
    :class:`MeasureResult` (one-row ``metrics``, ``run_dir``, the measured ``model``).
    """
    if isinstance(data, datasets.Dataset):
        ds, name = data, data.name
        if options.get("dataset_options"):
            raise InputError("dataset_options apply to a dataset name, not to a loaded Dataset")
    elif isinstance(data, str):
        ds, name = None, data
    else:
        raise InputError(f"data must be a dataset name or an acthash.data.Dataset, got "
                         f"{type(data).__name__}")
    if config is not None and (options or checkpoint is not None or model is not None):
        raise InputError("pass either config or the model, checkpoint and options, not both")
    cfg = config if config is not None else MeasureConfig(
        model=model if isinstance(model, str) else None, dataset=name,
        checkpoint=None if checkpoint is None else str(checkpoint), **options)
    if write and out_dir:
        check_out_dir(out_dir, force=force)
    if ds is None:
        with progress_stage(f"loading {cfg.dataset}", enabled=progress):
            ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    blob = read_checkpoint(cfg.checkpoint) if cfg.checkpoint else None
    target = model if isinstance(model, nn.Module) else cfg.model
    if target is None and blob is None:
        raise ConfigError("nothing to measure: give a model (a registry name, module:callable, "
                          "a TorchScript or .pt2 file) or a run's checkpoint")
    net, kind, model_name, kwargs = resolve_model(target, cfg, ds.input_shape, ds.n_classes,
                                                  ds.x_train[:2], blob)
    if blob is not None:
        net = load_checkpoint(cfg.checkpoint, net, blob=blob)
    device = resolve_device(cfg.device)
    net = net.to(device).eval()

    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    run_dir = None
    if write:
        parts = [cfg.dataset, *_dir_parts(model_name, kwargs), ckpt.stem if ckpt else None,
                 f"s{cfg.seed}"]
        run_dir = start_run_dir(out_dir, runs_root, parts, config=cfg.to_dict(), seed=cfg.seed,
                                force=force)
        write_json(run_dir / "dataset.json", {"dataset": ds.describe(),
                                              "n_train_used": len(ds.x_train)})
        source = {"kind": kind, "model": cfg.model if kind != "module" else None,
                  "class": type(net).__name__ if kind != "file" else None,
                  "model_kwargs": kwargs}
        if kind == "module":
            source["class"] = type(model).__module__ + "." + type(model).__qualname__
        if kind == "file":
            source["model_file"] = str(Path(cfg.model).resolve())
            source["model_sha256"] = _sha256(Path(cfg.model))
        if ckpt is not None:
            source["checkpoint"] = str(ckpt.resolve())
            source["checkpoint_sha256"] = _sha256(ckpt)
            source["checkpoint_epoch"] = blob.get("epoch")
        write_json(run_dir / "source.json", source)

    options_ = property_options(cfg, device if device.type != "cpu" else None)
    splits = {"train": (ds.x_train, ds.y_train.numpy()), "test": (ds.x_test, ds.y_test.numpy())}
    row = {"checkpoint": ckpt.name if ckpt else None}
    if blob is not None and blob.get("epoch") is not None:
        row["checkpoint_epoch"] = int(blob["epoch"])
    row.update(measure_codes(net, splits, cfg, options=options_, device=device,
                             run_dir=run_dir, stem="", progress=progress))
    metrics = pd.DataFrame([row])
    meta = {"dataset": cfg.dataset, "model": model_name, "seed": cfg.seed}
    for key in ("width", "depth"):
        if key in kwargs:
            meta[key] = kwargs[key]
    for key, value in meta.items():
        metrics.insert(len(metrics.columns), key, value)
    if run_dir is not None:
        write_table(run_dir / "metrics.parquet", metrics)
        write_table(run_dir / "metrics.csv", metrics)
    return MeasureResult(metrics, run_dir, net, cfg)
