"""Factor sweeps: a grid of runs, a model cache, a resumable result store and executors.

A sweep file (YAML ``.yaml/.yml`` or TOML ``.toml``) names a grid over
:class:`~acthash.experiment.RunConfig` fields::

    name: model-size
    factor: width            # x axis of the figures (a grid key, or "epoch")
    hue: null                # optional second grid key drawn as separate series
    base:                    # fixed RunConfig fields for every cell
      dataset: digits
      epochs: 20
      checkpoints: [20]      # training time: checkpoints inside one run
    grid:                    # RunConfig field -> list of values (Cartesian product)
      width: [4, 8, 16, 32]
    seeds: [0, 1, 2]         # or ``repeats: 3`` (seeds 0..2)

Each grid point x seed is a *cell*: one :class:`RunConfig`, trained once. Its key is the
SHA-256 of the canonical JSON of everything that determines its results (every RunConfig
field except ``device`` and ``save_codes``), so equal cells share a key in any sweep.

Sweep directory::

    sweep.json, environment.json   the parsed config and the machine
    cells.parquet                  one row per cell: index, key, grid values
    parts/<key>.parquet            the rows of one finished cell, written atomically
    results.parquet                all parts, in grid order (rebuilt after every cell)
    cache/<kk>/<key>/              model cache: the cell's run directory + cell.json

A part file appears (by atomic rename) only once its cell is complete, and a cell is run
only when its part is missing, so a killed sweep loses at most the cells in flight and a
rerun computes exactly those (and retries failed cells, listed in ``failures.json``);
``results.parquet`` is rebuilt from the parts, so it never
holds a partial or duplicated row. A cell whose model is in the cache (``cell.json`` is
written last) is read back instead of trained. Rerunning a changed grid in the same
directory computes only its new cells; ``results.parquet`` holds the current grid's cells.

Executors: ``serial``, ``process`` (``workers`` spawned processes) and ``ray`` (a local
Ray, or ``ray_address="auto"``/``"ray://host:10001"``). Every cell runs with
``threads`` torch threads and its own seed, so the table is the same whatever the
executor.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from acthash._io import write_json, write_table
from acthash.errors import InputError, MissingDependencyError, MissingFileError
from acthash.experiment import RunConfig

__all__ = [
    "SweepConfig", "Cell", "ResultStore", "SweepResult", "run_sweep", "run_cell", "cell_key",
    "preset", "PRESETS", "load_results", "load_sweep_config", "EXECUTORS",
]

EXECUTORS = ("serial", "process", "ray")
_NOT_IN_KEY = ("device", "save_codes")  # do not change what a cell computes
_KEY_VERSION = 1  # bump when the meaning of cached results changes
# config columns every results row carries (beside the grid keys)
_CONFIG_COLUMNS = ("dataset", "model", "width", "depth", "batchnorm", "activation", "epochs",
                   "lr", "optimizer", "schedule", "weight_decay", "sample_size", "label_noise",
                   "random_labels", "seed")
_PHASE_KEYS = {"under", "sufficient", "plateau_tol", "redundancy", "accuracy"}
_TOP_KEYS = {"name", "description", "factor", "hue", "base", "grid", "seeds", "repeats",
             "phase", "provenance"}


def _run_fields() -> set[str]:
    return {f.name for f in fields(RunConfig)}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cell_key(cfg: RunConfig | dict) -> str:
    """Hex SHA-256 of everything that determines a cell's results (24 characters)."""
    d = cfg.to_dict() if isinstance(cfg, RunConfig) else dict(cfg)
    d = {k: v for k, v in d.items() if k not in _NOT_IN_KEY}
    if d.get("checkpoints"):
        d["checkpoints"] = sorted(set(int(c) for c in d["checkpoints"]))
    return hashlib.sha256(_canonical({"v": _KEY_VERSION, "cfg": d}).encode()).hexdigest()[:24]


@dataclass
class Cell:
    """One grid point x seed: ``index`` (grid order), ``key``, the full run ``config``
    and the ``params`` that vary across the grid (grid keys and ``seed``)."""

    index: int
    key: str
    config: dict
    params: dict


@dataclass
class SweepConfig:
    """A grid of runs. ``grid`` maps RunConfig fields to value lists; ``base`` fixes the
    other fields; ``seeds`` are the repeats. ``factor``/``hue`` tell the figures what to
    put on the x axis / in the legend; ``phase`` holds phase-chart threshold overrides."""

    name: str = "sweep"
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    factor: str | None = None
    hue: str | None = None
    description: str = ""
    phase: dict = field(default_factory=dict)
    # where the recipe comes from and every deviation from it (presets fill it in)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _run_fields()
        bad = sorted((set(self.base) | set(self.grid)) - names)
        if bad:
            raise InputError(f"sweep keys {bad} are not RunConfig fields; valid: {sorted(names)}")
        if "seed" in self.grid or "seed" in self.base:
            raise InputError("give the repeats as `seeds: [...]` or `repeats: N`, not as 'seed'")
        for k, v in self.grid.items():
            if not isinstance(v, (list, tuple)) or len(v) == 0:
                raise InputError(f"grid.{k} must be a non-empty list of values, got {v!r}")
        if not self.seeds:
            raise InputError("a sweep needs at least one seed")
        self.seeds = [int(s) for s in self.seeds]
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"seeds {self.seeds} repeat a value")
        bad = sorted(set(self.phase) - _PHASE_KEYS)
        if bad:
            raise InputError(f"unknown phase keys {bad}; valid: {sorted(_PHASE_KEYS)}")
        for axis in (self.factor, self.hue):
            if axis is not None and axis not in self.grid and axis not in ("epoch", "n_train"):
                raise InputError(
                    f"factor/hue {axis!r} is neither a grid key {sorted(self.grid)} nor 'epoch'"
                )

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        d = dict(d)
        unknown = sorted(set(d) - _TOP_KEYS)
        if unknown:
            raise InputError(f"unknown sweep keys {unknown}; valid keys: {sorted(_TOP_KEYS)}")
        if "repeats" in d:
            if "seeds" in d:
                raise InputError("give either `seeds` or `repeats`, not both")
            d["seeds"] = list(range(int(d.pop("repeats"))))
        return cls(**{k: v for k, v in d.items() if v is not None or k in ("factor", "hue")})

    @classmethod
    def from_file(cls, path: str | Path) -> SweepConfig:
        return cls.from_dict(load_sweep_config(path))

    def to_dict(self) -> dict:
        return asdict(self)

    def cells(self) -> list[Cell]:
        """The cells in grid order (grid keys in file order, seeds innermost); duplicate
        configurations (same key) appear once."""
        keys = list(self.grid)
        out: list[Cell] = []
        seen: set[str] = set()
        for values in itertools.product(*(self.grid[k] for k in keys)):
            for seed in self.seeds:
                params = dict(zip(keys, values, strict=True))
                cfg = RunConfig.from_dict({**self.base, **params, "seed": seed})
                cfg.checkpoint_epochs()  # validate early
                key = cell_key(cfg)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Cell(len(out), key, cfg.to_dict(), {**params, "seed": seed}))
        return out


def _yaml_load(text: str):
    """``yaml.safe_load`` that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def load_sweep_config(path: str | Path) -> dict:
    """Read a YAML or TOML sweep file into a dict."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no sweep file at {path}; pass a .yaml/.yml/.toml file or --preset")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        d = _yaml_load(text)
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        d = tomllib.loads(text)
    else:
        raise InputError(f"{path}: unknown sweep file type {path.suffix!r}; use .yaml, .yml or .toml")
    if not isinstance(d, dict):
        raise InputError(f"{path} does not hold a mapping of sweep keys")
    return d


# ---------------------------------------------------------------------------- cells


def _cache_dir_for(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / key


def run_cell(cell: Cell | dict, cache_dir: str | None = None, threads: int = 1) -> dict:
    """Run one cell (or read it from the model cache). Safe to call in a worker process.

    Returns ``{"key", "metrics" (DataFrame, one row per checkpoint), "cached", "elapsed_s"}``.
    """
    import torch

    from acthash.experiment import run_experiment

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
            res = run_experiment(cfg, out_dir=cdir, write=cdir is not None)
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


def _tidy(cell: Cell, metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics rows plus the cell's identity and config columns (deterministic)."""
    df = metrics.copy()
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


# ---------------------------------------------------------------------------- store


class ResultStore:
    """Finished cells of one sweep directory: one Parquet part per cell + a consolidated table."""

    def __init__(self, sweep_dir: str | Path):
        self.dir = Path(sweep_dir)
        self.parts = self.dir / "parts"
        self.table_path = self.dir / "results.parquet"

    def clean(self) -> int:
        """Remove temporaries left by a killed writer; returns how many."""
        n = 0
        if self.parts.exists():
            for p in self.parts.glob(".*.tmp"):
                p.unlink(missing_ok=True)
                n += 1
        return n

    def done_keys(self) -> set[str]:
        if not self.parts.exists():
            return set()
        return {p.stem for p in self.parts.glob("*.parquet")}

    def write_part(self, key: str, rows: pd.DataFrame) -> Path:
        return write_table(self.parts / f"{key}.parquet", rows)

    def read_parts(self, keys=None) -> pd.DataFrame:
        keys = sorted(self.done_keys()) if keys is None else list(keys)
        frames = [pd.read_parquet(self.parts / f"{k}.parquet") for k in keys]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def consolidate(self, order: list[str] | None = None) -> pd.DataFrame:
        """Rebuild ``results.parquet`` from the parts (grid order when ``order`` is given)."""
        done = self.done_keys()
        keys = [k for k in order if k in done] if order is not None else sorted(done)
        table = self.read_parts(keys)
        if len(table):
            table = table.sort_values(["cell_index", "epoch"], kind="stable").reset_index(drop=True)
        write_table(self.table_path, table)
        return table


def load_results(path: str | Path) -> pd.DataFrame:
    """The results table of a sweep directory, or a Parquet/CSV results file."""
    path = Path(path)
    if path.is_dir():
        store = ResultStore(path)
        if store.table_path.exists():
            return pd.read_parquet(store.table_path)
        if store.done_keys():
            return store.read_parts().sort_values(["cell_index", "epoch"]).reset_index(drop=True)
        raise MissingFileError(f"{path} holds no results.parquet and no parts/; run a sweep first")
    if not path.exists():
        raise MissingFileError(f"no results at {path}")
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


# ---------------------------------------------------------------------------- executors


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


def _iter_serial(todo, cache_dir, threads):
    for cell in todo:
        yield cell, _safe_run_cell(asdict(cell), cache_dir, threads)


def _iter_process(todo, cache_dir, threads, workers):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_safe_run_cell, asdict(c), cache_dir, threads): c for c in todo}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _ray_gpus_per_cell(ray, requested: float | None) -> float:
    if requested is not None:
        return float(requested)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _iter_ray(todo, cache_dir, threads, workers, address, gpus_per_cell, runtime_env):
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the Ray executor needs Ray: pip install 'acthash[ray]' (or pip install ray)"
        ) from None
    started = False
    if not ray.is_initialized():
        kwargs: dict = {"include_dashboard": False, "log_to_driver": False}
        if address:  # an existing cluster (also via the Ray client): only the runtime env
            env = runtime_env
            if env is None:  # ship this package to the cluster's workers
                import acthash

                env = {"py_modules": [str(Path(acthash.__file__).parent)]}
            ray.init(address=address, runtime_env=env)
        else:
            import acthash  # workers import this very package

            path = [str(Path(acthash.__file__).resolve().parents[1]),
                    *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(path),
                                "OMP_NUM_THREADS": str(threads)}}
            ray.init(num_cpus=workers or os.cpu_count(), runtime_env=env, **kwargs)
        started = True
    try:
        gpus = _ray_gpus_per_cell(ray, gpus_per_cell)
        remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=1)(_safe_run_cell)
        pending = {remote.remote(asdict(c), cache_dir, threads): c for c in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            cell = pending.pop(ref)
            yield cell, ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def run_sweep(config: SweepConfig | dict | str | Path, sweep_dir: str | Path, *,
              executor: str = "serial", workers: int = 1, ray_address: str | None = None,
              cache_dir: str | Path | None = None, threads: int = 1,
              gpus_per_cell: float | None = None, ray_runtime_env: dict | None = None,
              progress: bool = True) -> SweepResult:
    """Run every missing cell of ``config`` and return the consolidated results.

    executor: "serial", "process" (``workers`` spawned processes) or "ray" (local Ray with
    ``workers`` CPUs, or the cluster at ``ray_address``; ``gpus_per_cell`` defaults to 1
    when the cluster has GPUs). cache_dir: model cache (default ``sweep_dir/cache``).
    threads: torch threads per cell (fixed, so results do not depend on the executor).
    """
    from acthash.experiment import environment_info

    if not isinstance(config, SweepConfig):
        config = (SweepConfig.from_dict(config) if isinstance(config, dict)
                  else SweepConfig.from_file(config))
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if workers < 1 or threads < 1:
        raise InputError("workers and threads must be at least 1")
    _check_datasets(config)
    t0 = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cells = config.cells()
    order = [c.key for c in cells]
    write_json(sweep_dir / "sweep.json", {**config.to_dict(), "n_cells": len(cells)})
    write_json(sweep_dir / "environment.json",
               {**environment_info(), "executor": executor, "workers": workers,
                "threads_per_cell": threads, "ray_address": ray_address})
    write_table(sweep_dir / "cells.parquet", pd.DataFrame(
        [{"cell_index": c.index, "cell": c.key, **{k: (_canonical(v) if isinstance(v, (list, dict))
                                                       else v) for k, v in c.params.items()}}
         for c in cells]))
    store = ResultStore(sweep_dir)
    store.clean()
    done = store.done_keys()
    skipped = [k for k in order if k in done]
    todo = [c for c in cells if c.key not in done]
    cache = str(Path(cache_dir if cache_dir is not None else sweep_dir / "cache").resolve())
    if executor == "serial":
        it = _iter_serial(todo, cache, threads)
    elif executor == "process":
        it = _iter_process(todo, cache, threads, workers)
    else:
        it = _iter_ray(todo, cache, threads, workers, ray_address, gpus_per_cell,
                       ray_runtime_env)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=len(skipped), desc=f"sweep {config.name}",
                   unit="cell", dynamic_ncols=True)
    computed, hits, failed = [], [], {}
    try:
        for cell, out in it:
            if "error" in out:
                failed[cell.key] = out["error"]
                if bar is not None:
                    bar.update(1)
                    bar.write(f"cell {cell.index} {cell.params} failed: {out['error']}")
                continue
            store.write_part(cell.key, _tidy(cell, out["metrics"]))
            computed.append(cell.key)
            if out["cached"]:
                hits.append(cell.key)
            store.consolidate(order)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cached=len(hits))
    finally:
        if bar is not None:
            bar.close()
    table = store.consolidate(order)
    failures = sweep_dir / "failures.json"
    if failed:
        write_json(failures, [{"cell": k, "cell_index": order.index(k), "error": v,
                               "params": next(c.params for c in cells if c.key == k)}
                              for k, v in failed.items()])
    elif failures.exists():
        failures.unlink()
    return SweepResult(table, sweep_dir, len(cells), skipped, computed, hits,
                       time.perf_counter() - t0, failed)


def _check_datasets(config: SweepConfig) -> None:
    """Fail before any training when a dataset is unknown or not on this machine."""
    from acthash.data import list_datasets

    names = config.grid.get("dataset", [config.base.get("dataset", RunConfig.dataset)])
    known = {d["name"]: d for d in list_datasets()}

    def check(name: str) -> None:
        prefix, sep, rest = name.partition(":")
        if sep and f"{prefix}:" in known:
            if prefix == "random":
                check(rest)
            return
        d = known.get(name)
        if d is None:
            raise InputError(f"unknown dataset {name!r}; known: {', '.join(sorted(known))} "
                             "(see `acthash data list`)")
        if not d["available"]:
            raise MissingFileError(
                f"dataset {name!r} is not available on this machine; {d['how_to_get']} "
                "(or use --dataset digits)"
            )

    for name in names:
        check(str(name))


from acthash.presets import PRESETS, preset  # noqa: E402  (presets live in their own module)
