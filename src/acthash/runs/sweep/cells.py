"""Running one cell of a sweep (or reading it from the model cache) and tidying its rows."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from acthash._utils.io import write_json
from acthash.runs.config import RunConfig
from acthash.runs.sweep.config import Cell, _canonical

__all__ = ["run_cell", "tidy_rows"]

# config columns every results row carries (beside the grid keys)
_CONFIG_COLUMNS = ("dataset", "model", "width", "depth", "batchnorm", "activation", "epochs",
                   "lr", "optimizer", "schedule", "weight_decay", "sample_size", "label_noise",
                   "random_labels", "seed", "k")


def _cache_dir_for(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / key


def run_cell(cell: Cell | dict, cache_dir: str | None = None, threads: int = 1) -> dict:
    """Run one cell (or read it from the model cache). Safe to call in a worker process.

    Returns ``{"key", "metrics" (DataFrame, one row per checkpoint), "cached", "elapsed_s"}``.
    """
    import torch

    from acthash.runs.experiment import run_experiment

    if isinstance(cell, Cell):
        cell = asdict(cell)
    key, cfg = cell["key"], RunConfig.from_dict(cell["config"])
    t0 = time.perf_counter()
    cdir = _cache_dir_for(cache_dir, key) if cache_dir else None
    if cdir is not None and (cdir / "cell.json").exists():
        try:
            metrics = pd.read_parquet(cdir / "metrics.parquet")
            return {"key": key, "metrics": metrics, "cached": True,
                    "elapsed_s": time.perf_counter() - t0}
        except Exception:  # a damaged cache entry is recomputed
            pass
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        with warnings.catch_warnings():
            # K-Means on few distinct codes warns on every cell; the redundancy column says it
            warnings.filterwarnings("ignore", message="Number of distinct clusters")
            # a cache entry without cell.json is a cell that did not finish: replace it
            res = run_experiment(cfg, out_dir=cdir, write=cdir is not None, force=True)
    finally:
        torch.set_num_threads(old)
    elapsed = time.perf_counter() - t0
    if cdir is not None:  # written last: marks the cache entry complete
        write_json(cdir / "cell.json", {"key": key, "config": cell["config"],
                                        "elapsed_s": elapsed})
    return {"key": key, "metrics": res.metrics, "cached": False, "elapsed_s": elapsed}


def _safe_run_cell(cell: dict, cache_dir: str | None = None, threads: int = 1) -> dict:
    """:func:`run_cell` that returns ``{"key", "error"}`` instead of raising, so one
    failing cell (a diverged run, a bad sample size) does not stop the sweep."""
    try:
        return run_cell(cell, cache_dir, threads)
    except Exception as e:  # reported per cell; the sweep goes on
        return {"key": cell["key"], "error": f"{type(e).__name__}: {e}"}


def tidy_rows(cell: Cell, metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics rows plus the cell's identity and config columns (deterministic: the wall-clock
    ``seconds_*`` columns stay in the cell's own run directory, not in the sweep table)."""
    df = metrics.drop(columns=[c for c in metrics.columns if c.startswith("seconds_")])
    cfg = cell.config
    cols = {"cell": cell.key, "cell_index": cell.index}
    for k in (*_CONFIG_COLUMNS, *cell.params):
        v = cfg.get(k, cell.params.get(k))
        if isinstance(v, (list, dict)):
            v = _canonical(v)
        cols[k] = v
    for k, v in cols.items():
        if k in df.columns:
            df = df.drop(columns=k)
        df[k] = v
    lead = ["cell", "cell_index", "epoch"]
    return df[lead + [c for c in df.columns if c not in lead]]


