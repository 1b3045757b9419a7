"""The result store of a sweep directory and the readers of its tables and metadata.

pandas only: plots, the phase chart, the claims and the report read results through this
module without importing the training stack.

Sweep directory::

    sweep.json, environment.json   the parsed config and the machine
    cells.parquet                  one row per cell: index, key, grid values
    parts/<key>.parquet            the rows of one finished cell, written atomically
    results.parquet                all parts in grid order (written when a sweep ends, or by
                                   :meth:`ResultStore.consolidate` on demand)
    sweep.lock                     held by the process computing the sweep
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from acthash._utils.io import write_table
from acthash._utils.run import check_complete
from acthash.errors import CorruptFileError, MissingFileError

__all__ = ["ResultStore", "load_results", "load_sweep_meta", "sweep_dir_of", "sweep_roles",
           "ROLES", "FACTOR_OF_ROLE", "final_checkpoints", "checkpoint_note", "is_random",
           "varies"]

#: a sweep's role (= the preset's name) -> the column of the factor it varies
FACTOR_OF_ROLE = {"model-size": "width", "training-time": "epoch", "sample-size": "n_train",
                  "regularization": "weight_decay", "label-noise": "label_noise"}
ROLES = (*FACTOR_OF_ROLE, "random-data")  # = the presets' names
#: the factor a sweep declares (``factor:`` in its file, or its preset's) -> its role
_ROLE_OF_FACTOR = {"width": "model-size", "epoch": "training-time",
                   "sample_size": "sample-size", "n_train": "sample-size",
                   "weight_decay": "regularization", "label_noise": "label-noise"}


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

    def table(self, order: list[str] | None = None) -> pd.DataFrame:
        """All finished rows in grid order (``order``: the grid's cell keys; else every part)."""
        done = self.done_keys()
        keys = [k for k in order if k in done] if order is not None else sorted(done)
        table = self.read_parts(keys)
        if len(table):
            table = table.sort_values(["cell_index", "epoch"], kind="stable").reset_index(drop=True)
        return table

    def consolidate(self, order: list[str] | None = None) -> pd.DataFrame:
        """Write ``results.parquet`` from the parts (grid order when ``order`` is given)."""
        table = self.table(order)
        write_table(self.table_path, table)
        return table

    def is_stale(self) -> bool:
        """True when a part is newer than ``results.parquet`` (or the table is missing)."""
        if not self.table_path.exists():
            return bool(self.done_keys())
        t = self.table_path.stat().st_mtime
        return any(p.stat().st_mtime > t for p in self.parts.glob("*.parquet"))


def load_results(path: str | Path) -> pd.DataFrame:
    """The results table of a sweep directory, or a Parquet/CSV results file.

    For a directory, ``results.parquet`` is read when it is up to date; while a sweep is
    running (or after it was killed) the finished parts are read instead. A directory (or a
    file's directory) with an ``INCOMPLETE`` marker — a run or study that failed, was
    interrupted or is still running — raises :class:`~acthash.errors.IncompleteRunError`.
    """
    path = Path(path)
    check_complete(sweep_dir_of(path))  # a run that failed or was interrupted is refused
    try:
        if path.is_dir():
            store = ResultStore(path)
            if store.table_path.exists() and not store.is_stale():
                return pd.read_parquet(store.table_path)
            if store.done_keys():
                return store.table()
            raise MissingFileError(
                f"{path} holds no results.parquet and no parts/; run a sweep into it first")
        if not path.exists():
            raise MissingFileError(f"no results at {path}; pass a sweep directory or a "
                                   ".parquet/.csv results file")
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError) as e:
        if isinstance(e, MissingFileError):
            raise
        raise CorruptFileError(f"cannot read results at {path} ({e}); rerun the sweep into "
                               "a fresh directory, or remove the damaged file") from e


def sweep_dir_of(path: str | Path) -> Path:
    """The sweep directory of ``path`` (a sweep directory, or a results file inside one)."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def load_sweep_meta(path: str | Path) -> dict:
    """The parsed ``sweep.json`` beside ``path`` (a sweep directory or a results file);
    ``{}`` when there is none."""
    p = sweep_dir_of(path) / "sweep.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"{p} is not valid JSON ({e}); rerun the sweep to rewrite it") from e




# ---------------------------------------------------------------------------- sweep roles


def is_random(df: pd.DataFrame) -> pd.Series:
    """Rows of ``random:NAME`` datasets."""
    return df["dataset"].astype(str).str.startswith("random:")


def varies(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and df[col].nunique(dropna=False) > 1


def sweep_roles(df: pd.DataFrame, meta: dict | None = None) -> list[str]:
    """The factors a results table can testify about: its preset name when it is one,
    random inputs when it holds ``random:NAME`` rows, else the factor the sweep declares
    (``factor:`` in ``sweep.json``: a width sweep measured at several checkpoints is a
    model-size sweep), else the factors that vary (sample size, weight decay, label noise,
    training time, width, in that order of precedence)."""
    meta = meta or {}
    if meta.get("name") in ROLES:
        return [meta["name"]]
    if "dataset" in df.columns and is_random(df).any():
        return ["random-data"]
    declared = _ROLE_OF_FACTOR.get(meta.get("factor") or "")
    if declared is not None:
        return [declared]
    for col, role in (("sample_size", "sample-size"), ("n_train", "sample-size"),
                      ("weight_decay", "regularization"), ("label_noise", "label-noise"),
                      ("epoch", "training-time"), ("width", "model-size")):
        if varies(df, col):
            return [role]
    return []


def final_checkpoints(df: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint of every cell."""
    if "epoch" not in df.columns:
        return df
    if "cell" not in df.columns:
        return df[df["epoch"] == df["epoch"].max()]
    return df[df["epoch"] == df.groupby("cell")["epoch"].transform("max")]


def checkpoint_note(df: pd.DataFrame) -> str:
    """Which checkpoint a figure or claim over a factor other than training time reads
    when the cells were measured at several: "epoch 40, the last checkpoint" (or "each
    cell's last checkpoint" when they differ); "" for a single checkpoint."""
    if "epoch" not in df.columns or df["epoch"].nunique() < 2:
        return ""
    last = final_checkpoints(df)["epoch"].unique()
    if len(last) == 1:
        return f"epoch {int(last[0])}, the last checkpoint"
    return "each cell's last checkpoint"
