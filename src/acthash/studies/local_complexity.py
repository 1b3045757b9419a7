"""The local-complexity study: how many neurons' hyperplanes cross a small cross-polytope
around train, test and random points, over log-spaced training checkpoints (Humayun et al.
2024 report it rising early in training and falling later, around training points first).

:func:`run_local_complexity_study` trains the configured model with a
:class:`~acthash.geometry.local_complexity.LocalComplexityCallback`; outputs ``lc.csv``
(epoch, set, layer, mean, std), ``history.parquet`` and the figure ``lc_over_training``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash._utils.run import (
    check_out_dir,
    run_transaction,
    save_figure,
    start_run_dir,
    write_table,
)
from acthash.geometry.local_complexity import LocalComplexityCallback
from acthash.studies.configs import LocalComplexityConfig

__all__ = ["LocalComplexityConfig", "LocalComplexityResult", "run_local_complexity_study"]


@dataclass
class LocalComplexityResult:
    run_dir: Path | None
    lc: pd.DataFrame
    history: pd.DataFrame


@run_transaction
def run_local_complexity_study(cfg: LocalComplexityConfig | None = None, *,
                               out_dir: str | Path | None = None, runs_root: str | Path = "runs",
                               write: bool = True, progress: bool = False, force: bool = False
                               ) -> LocalComplexityResult:
    """Train on ``cfg.dataset`` and record local complexity at log-spaced checkpoints (the
    study directory is a transaction; an existing ``out_dir`` is refused unless ``force``)."""
    from acthash import data as datasets
    from acthash.models import build_model
    from acthash.train import seed_everything, train

    cfg = cfg or LocalComplexityConfig()
    if write and out_dir:
        check_out_dir(out_dir, force=force)
    ds = datasets.load(cfg.dataset, **cfg.dataset_options)
    epochs = cfg.epochs_to_measure()
    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ("local-complexity", cfg.dataset,
                                                     f"s{cfg.seed}"), seed=cfg.seed,
                                config={"study": "local-complexity", **cfg.to_dict(),
                                        "checkpoints": epochs}, force=force)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, ds.input_shape, ds.n_classes, **cfg.model_kwargs())
    x_tr, y_tr, x_te = ds.x_train, ds.y_train, ds.x_test
    if cfg.sample_size is not None:
        x_tr, y_tr = x_tr[: cfg.sample_size], y_tr[: cfg.sample_size]
    rng = np.random.default_rng([cfg.seed, 29])
    g = torch.Generator().manual_seed(cfg.seed)
    random = x_tr.mean(0) + x_tr.std(0) * torch.randn((cfg.n_points, *x_tr.shape[1:]),
                                                      generator=g, dtype=x_tr.dtype)
    sets = {"train": x_tr[rng.permutation(len(x_tr))[: cfg.n_points]],
            "test": x_te[rng.permutation(len(x_te))[: cfg.n_points]], "random": random}
    callback = LocalComplexityCallback(sets, radius=cfg.radius, n_directions=min(
        cfg.n_directions, int(np.prod(x_tr.shape[1:]))), seed=cfg.seed)
    history = train(model, x_tr, y_tr, replace(cfg, checkpoints=epochs).train_config(),
                    on_checkpoint=callback, progress=progress).history
    lc = callback.frame()
    if run_dir is not None:
        write_table(run_dir / "lc.csv", lc)
        write_table(run_dir / "history.parquet", history)
        _plot(lc, run_dir / "figures" / "lc_over_training")
    return LocalComplexityResult(run_dir, lc, history)


def _plot(lc: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    total = lc[lc["layer"] == "total"]
    for name, d in total.groupby("set"):
        ax.plot(d["epoch"] + 1, d["mean"], "o-", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("epoch + 1")
    ax.set_ylabel("neurons crossing the neighbourhood")
    ax.legend()
    save_figure(fig, path)
