"""Sweep presets: the paper's factor studies as ready-made :class:`~acthash.sweep.SweepConfig` grids."""

from __future__ import annotations

from acthash.errors import InputError
from acthash.sweep import SweepConfig

__all__ = ["PRESETS", "preset"]

PRESETS = ("model-size", "training-time", "sample-size", "regularization", "label-noise",
           "random-data")

_PAPER_WIDTHS = list(range(3, 41, 2)) + [50, 60, 80, 100]  # 23 widths, 3..100
_PAPER_EPOCHS = [0, 1, 3, 6, 10, 20, 30, 40, 60, 80, 100, 120, 140, 160, 180, 200]


def preset(name: str, scale: str = "cpu", dataset: str | None = None,
           seeds: int | None = None) -> SweepConfig:
    """A sweep reproducing one of the paper's studies (He et al., 2021, science.md §1).

    scale="cpu": digits (default) or another dataset, small grids, each preset about
    2-10 minutes on 2 cores. scale="paper": the original grids (MNIST by default, Adam lr
    1e-2 x0.1 every 20 epochs, batch 64, 200 epochs, 80/20 validation split, 10 repeats).
    ``dataset`` overrides the dataset; ``seeds`` the number of repeats.
    """
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if scale not in ("cpu", "paper"):
        raise InputError(f"unknown scale {scale!r}; use 'cpu' or 'paper'")
    paper = scale == "paper"
    ds = dataset or ("mnist" if paper else "digits")
    if paper:
        epochs = 200
        base = {"dataset": ds, "epochs": epochs, "lr": 1e-2, "schedule": "step", "step_size": 20,
                "batch_size": 64, "val_split": 0.2, "weight_decay": 1e-6, "checkpoints": [epochs]}
        widths, n_seeds = _PAPER_WIDTHS, 10
        few_widths = [10, 20, 40, 100]
        epochs_grid = _PAPER_EPOCHS
        sizes = [10, 30, 100, 300, 1000, 3000, 10000, 30000, 48000]
    else:
        epochs = 30
        base = {"dataset": ds, "epochs": epochs, "lr": 1e-2, "batch_size": 64,
                "checkpoints": [epochs], "kmeans_n_init": 3, "save_codes": False}
        if ds != "digits":  # keep a big dataset at CPU scale
            base["sample_size"] = 5000
        widths, n_seeds = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256], 3
        few_widths = [8, 16, 32, 64, 128, 256]
        epochs_grid = [0, 1, 2, 3, 5, 10, 20, 30]
        sizes = [10, 30, 100, 300, 1000, 1437] if ds == "digits" else [
            10, 30, 100, 300, 1000, 3000, 10000]
    base["save_codes"] = False
    seed_list = list(range(seeds if seeds is not None else n_seeds))
    desc = {
        "model-size": "Encoding properties versus the width of a one-hidden-layer MLP.",
        "training-time": "Encoding properties at checkpoints during training, for several widths.",
        "sample-size": "Encoding properties versus the number of training examples (first N).",
        "regularization": "Encoding properties versus L2 weight decay.",
        "label-noise": "Encoding properties versus the fraction of wrong training labels.",
        "random-data": "Real versus uniformly random inputs, across widths.",
    }[name]
    b = dict(base)
    if name == "model-size":
        grid, factor, hue = {"width": widths}, "width", None
    elif name == "training-time":
        b["checkpoints"] = epochs_grid
        b["epochs"] = max(epochs_grid)
        grid, factor, hue = {"width": few_widths}, "epoch", "width"
    elif name == "sample-size":
        b.pop("sample_size", None)
        grid, factor, hue = {"width": few_widths, "sample_size": sizes}, "sample_size", "width"
    elif name == "regularization":
        wds = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
        b.pop("weight_decay", None)
        grid, factor, hue = {"width": [16, 64], "weight_decay": wds}, "weight_decay", "width"
    elif name == "label-noise":
        grid = {"width": [16, 64], "label_noise": [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]}
        factor, hue = "label_noise", "width"
    else:  # random-data
        grid = {"dataset": [ds, f"random:{ds}"], "width": few_widths if not paper else widths}
        factor, hue = "width", "dataset"
    return SweepConfig(name=name, base=b, grid=grid, seeds=seed_list, factor=factor, hue=hue,
                       description=desc + f" ({scale} scale)")

