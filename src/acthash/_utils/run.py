"""Shared scaffolding of every run and study: run directories, provenance, atomic saving of
arrays, tables and figures, and progress bars. Studies keep only their science and call these.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from acthash._utils.io import atomic_path, save_torch, write_json, write_table

__all__ = [
    "atomic_path",
    "environment_info",
    "new_run_dir",
    "progress_bar",
    "safe_name",
    "save_array",
    "save_figure",
    "save_torch",
    "start_run_dir",
    "write_json",
    "write_table",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(text: str, max_len: int = 60) -> str:
    """``text`` as one path component: runs of characters other than letters, digits and
    ``._+=-`` become ``_`` (so ``csv:/data/x.csv`` gives ``csv_data_x.csv``), never empty."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "run"
    return name[:max_len]


def new_run_dir(root: str | os.PathLike, *parts) -> Path:
    """A new, not yet existing folder ``root/<part1>-<part2>-...-<YYYYmmdd-HHMMSS>``.

    Parts are sanitised with :func:`safe_name`; ``None`` parts are skipped; a suffix ``-2``,
    ``-3``, ... is added when a folder of that name exists already (two runs in one second).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = "-".join(safe_name(p) for p in (*parts, stamp) if p is not None and p != "")
    path = Path(root) / stem
    n = 2
    while path.exists():
        path = Path(root) / f"{stem}-{n}"
        n += 1
    return path


def _acthash_version() -> str:
    """The installed distribution's version (not the package root's, which would import it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("acthash")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0+unknown"


def environment_info(seed: int | None = None) -> dict:
    """Versions of acthash, Python and the numerical stack, the machine, and the seed."""
    import pandas as pd
    import sklearn
    import torch

    info = {
        "acthash": _acthash_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "cuda": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import faiss

        info["faiss"] = faiss.__version__
    except ImportError:  # pragma: no cover
        info["faiss"] = None
    if seed is not None:
        info["seed"] = seed
    return info


def start_run_dir(out_dir: str | os.PathLike | None, runs_root: str | os.PathLike,
                  name_parts: Iterable, *, config: dict, seed: int | None) -> Path:
    """Create the run directory (``out_dir``, or a new one under ``runs_root`` named from
    ``name_parts``) and write its ``config.json`` and ``environment.json``."""
    run_dir = Path(out_dir) if out_dir else new_run_dir(runs_root, *name_parts)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "environment.json", environment_info(seed))
    return run_dir


def save_array(path: str | os.PathLike, array) -> Path:
    """Write one array as ``.npy``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
    return path


def save_figure(fig, stem: str | os.PathLike, formats=("png", "svg"), dpi: int = 120,
                *, close: bool = True) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` (tight bounding box) atomically; close the figure.

    ``stem`` may carry a suffix (``x.png``): it is replaced by each format's.
    """
    stem = Path(stem)
    if stem.suffix.lower() in (".png", ".svg", ".pdf"):
        stem = stem.with_suffix("")
    out = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        out.append(path)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out


def progress_bar(iterable=None, *, enabled: bool = True, desc: str = "", unit: str = "it",
                 total: int | None = None, leave: bool = False, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), or the plain iterable
    (or a no-op bar) when ``enabled`` is false."""
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave, **kwargs)
    if iterable is not None:
        return iterable
    return _NoBar()


class _NoBar:
    """The part of tqdm's manual-bar interface the studies use, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass
