"""Factor sweeps: a grid of runs, a model cache, a resumable result store and executors.

A sweep file (YAML ``.yaml/.yml`` or TOML ``.toml``) names a grid over
:class:`~acthash.runs.experiment.RunConfig` fields::

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
    results.parquet                all parts, in grid order (written when the sweep ends)
    sweep.lock                     held while a process computes the sweep
    cache/<kk>/<key>/              model cache: the cell's run directory + cell.json

A part file appears (by atomic rename) only once its cell is complete, and a cell is run
only when its part is missing, so a killed sweep loses at most the cells in flight and a
rerun computes exactly those (and retries failed cells, listed in ``failures.json``);
``results.parquet`` is written from the parts when the sweep ends, so it never
holds a partial or duplicated row. A cell whose model is in the cache (``cell.json`` is
written last) is read back instead of trained. Rerunning a changed grid in the same
directory computes only its new cells; ``results.parquet`` holds the current grid's cells.

Executors: ``serial``, ``process`` (``workers`` spawned processes) and ``ray`` (a local
Ray, or ``ray_address="auto"``/``"ray://host:10001"``). Every cell runs with
``threads`` torch threads and its own seed, so the table is the same whatever the
executor.
"""

from acthash.runs.presets import PRESETS, preset  # noqa: E402  (presets build SweepConfigs)
from acthash.runs.results import ResultStore, load_results
from acthash.runs.sweep.cells import run_cell, tidy_rows
from acthash.runs.sweep.config import Cell, SweepConfig, cell_key, check_datasets, load_sweep_config
from acthash.runs.sweep.executors import EXECUTORS
from acthash.runs.sweep.run import SweepResult, run_sweep, sweep_lock

__all__ = [
    "SweepConfig", "Cell", "ResultStore", "SweepResult", "run_sweep", "run_cell", "cell_key",
    "preset", "PRESETS", "load_results", "load_sweep_config", "EXECUTORS", "check_datasets",
    "sweep_lock", "tidy_rows",
]
