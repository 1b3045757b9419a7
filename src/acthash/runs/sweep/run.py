"""``run_sweep``: every missing cell of a grid, under a lock, into a resumable result store."""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from acthash._utils.io import write_json, write_table
from acthash._utils.run import environment_info, progress_bar
from acthash.errors import ConfigError, SweepLockedError
from acthash.runs.results import ResultStore
from acthash.runs.sweep.cells import tidy_rows
from acthash.runs.sweep.config import SweepConfig, _canonical, check_datasets
from acthash.runs.sweep.executors import EXECUTORS, iter_cells

__all__ = ["SweepResult", "run_sweep", "sweep_lock"]


@dataclass
class SweepResult:
    table: pd.DataFrame  # all finished rows, grid order
    sweep_dir: Path
    n_cells: int
    skipped: list[str]  # keys already in the result store
    computed: list[str]  # keys run (or read from the cache) by this call
    cache_hits: list[str]  # subset of computed read from the model cache
    elapsed_s: float
    failed: dict = field(default_factory=dict)  # key -> "ErrorType: message"

    def summary(self) -> dict:
        return {"cells": self.n_cells, "already_done": len(self.skipped),
                "computed": len(self.computed), "cache_hits": len(self.cache_hits),
                "trained": len(self.computed) - len(self.cache_hits),
                "failed": len(self.failed), "elapsed_s": round(self.elapsed_s, 2), "rows": len(self.table)}


@contextmanager
def sweep_lock(sweep_dir: str | Path, *, wait: bool = False, poll_s: float = 2.0):
    """Hold ``sweep_dir/sweep.lock`` (an advisory ``flock``) for the duration of the block.

    A second process that asks for the lock gets :class:`SweepLockedError` naming the holder
    (``wait=False``) or blocks until the holder finishes (``wait=True``). The lock dies with
    its process, so a killed sweep never leaves a stale lock behind.
    """
    import fcntl

    path = Path(sweep_dir) / "sweep.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - held until the block ends
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise SweepLockedError(
                        f"{sweep_dir} is being computed by {holder}; wait for it to finish "
                        "(or pass --wait / wait=True), or give another --out"
                    ) from None
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        yield path
    finally:
        fh.close()  # releases the flock


def _coerce_config(config) -> SweepConfig:
    if isinstance(config, SweepConfig):
        return config
    if isinstance(config, dict):
        return SweepConfig.from_dict(config)
    return SweepConfig.from_file(config)


def run_sweep(config: SweepConfig | dict | str | Path, sweep_dir: str | Path, *,
              executor: str = "serial", workers: int = 1, ray_address: str | None = None,
              cache_dir: str | Path | None = None, threads: int = 1,
              gpus_per_cell: float | None = None, ray_runtime_env: dict | None = None,
              progress: bool = True, wait: bool = False) -> SweepResult:
    """Run every missing cell of ``config`` and return the consolidated results.

    executor: "serial", "process" (``workers`` spawned processes) or "ray" (local Ray with
    ``workers`` CPUs, or the cluster at ``ray_address``; ``gpus_per_cell`` defaults to 1
    when the cluster has GPUs). cache_dir: model cache (default ``sweep_dir/cache``).
    threads: torch threads per cell (fixed, so results do not depend on the executor).
    The sweep directory is locked while this runs: a second ``run_sweep`` into it raises
    :class:`~acthash.errors.SweepLockedError` (or waits, with ``wait=True``).
    """
    config = _coerce_config(config)
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if workers < 1 or threads < 1:
        raise ConfigError("workers and threads must be at least 1")
    check_datasets(config)
    t0 = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cells = config.cells()
    order = [c.key for c in cells]
    with sweep_lock(sweep_dir, wait=wait):
        write_json(sweep_dir / "sweep.json", {**config.to_dict(), "n_cells": len(cells)})
        write_json(sweep_dir / "environment.json",
                   {**environment_info(), "executor": executor, "workers": workers,
                    "threads_per_cell": threads, "ray_address": ray_address})
        write_table(sweep_dir / "cells.parquet", pd.DataFrame(
            [{"cell_index": c.index, "cell": c.key,
              **{k: (_canonical(v) if isinstance(v, (list, dict)) else v)
                 for k, v in c.params.items()}}
             for c in cells]))
        store = ResultStore(sweep_dir)
        store.clean()
        done = store.done_keys()
        skipped = [k for k in order if k in done]
        todo = [c for c in cells if c.key not in done]
        cache = str(Path(cache_dir if cache_dir is not None else sweep_dir / "cache").resolve())
        it = iter_cells(executor, todo, cache, threads, workers, ray_address, gpus_per_cell,
                        ray_runtime_env)
        bar = progress_bar(enabled=progress, total=len(cells), initial=len(skipped),
                           desc=f"sweep {config.name}", unit="cell", dynamic_ncols=True,
                           leave=True)
        computed, hits, failed = [], [], {}
        try:
            for cell, out in it:
                if "error" in out:
                    failed[cell.key] = out["error"]
                    bar.update(1)
                    bar.write(f"cell {cell.index} {cell.params} failed: {out['error']}")
                    continue
                store.write_part(cell.key, tidy_rows(cell, out["metrics"]))
                computed.append(cell.key)
                if out["cached"]:
                    hits.append(cell.key)
                bar.update(1)
                bar.set_postfix(cached=len(hits))
        finally:
            bar.close()
        table = store.consolidate(order)  # once, at the end: parts are the live store
        failures = sweep_dir / "failures.json"
        if failed:
            write_json(failures, [{"cell": k, "cell_index": order.index(k), "error": v,
                                   "params": next(c.params for c in cells if c.key == k)}
                                  for k, v in failed.items()])
        elif failures.exists():
            failures.unlink()
    return SweepResult(table, sweep_dir, len(cells), skipped, computed, hits,
                       time.perf_counter() - t0, failed)
