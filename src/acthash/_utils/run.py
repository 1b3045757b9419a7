"""Shared scaffolding of every run and study: run directories (as transactions), provenance,
atomic saving of arrays, tables and figures, and progress bars. Studies keep only their science
and call these.

Runs are transactions. A run or study function decorated with :func:`run_transaction` opens its
run directory with :func:`start_run_dir`, which first checks the target (an existing, non-empty
``--out`` is refused unless ``force``, which empties it — only when it is an acthash run
directory), then writes an ``INCOMPLETE`` marker (JSON: status ``running``, pid, host, start
time) before any other file. When the function returns, the marker is removed: a directory
without ``INCOMPLETE`` is a complete run. When it raises (a user error, a full disk, Ctrl-C),
the directory stays as it is with the marker rewritten to status ``failed`` (with the error) or
``interrupted``; a run killed outright keeps status ``running``. Every acthash command that
reads a run or sweep directory refuses a marked one (:func:`check_complete`), naming the fix.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import platform
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from acthash._utils import package_version
from acthash._utils.io import atomic_path, save_torch, write_json, write_table
from acthash.errors import ConfigError, IncompleteRunError, ResourceError

__all__ = [
    "INCOMPLETE",
    "atomic_path",
    "check_complete",
    "check_out_dir",
    "environment_info",
    "incomplete_state",
    "new_run_dir",
    "run_transaction",
    "progress_bar",
    "progress_log",
    "progress_stage",
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


def environment_info(seed: int | None = None) -> dict:
    """Versions of acthash, Python and the numerical stack, the machine, and the seed."""
    import pandas as pd
    import sklearn
    import torch

    info = {
        "acthash": package_version(),
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


#: the marker file of a run directory that is being built, failed or was interrupted
INCOMPLETE = "INCOMPLETE"

# the run directories opened (start_run_dir) inside the innermost run_transaction
_OPEN: ContextVar[list | None] = ContextVar("acthash_open_run_dirs", default=None)


def incomplete_state(path: str | os.PathLike) -> dict | None:
    """The ``INCOMPLETE`` marker of run directory ``path`` (``status``: running, failed or
    interrupted; ``error``; ``pid``; ...), or None when ``path`` holds no marker."""
    marker = Path(path) / INCOMPLETE
    if not marker.is_file():
        return None
    try:
        state = json.loads(marker.read_text())
    except (OSError, ValueError):
        state = None
    return state if isinstance(state, dict) else {"status": "unknown"}


def _reason(state: dict) -> str:
    status = state.get("status", "unknown")
    if status == "failed":
        return f"failed: {state.get('error', 'unknown error')}"
    if status == "interrupted":
        return "interrupted"
    if status == "running":
        return (f"still being written by pid {state.get('pid', '?')} on "
                f"{state.get('host', '?')}, or that process was killed")
    return status


def check_complete(path: str | os.PathLike, what: str = "run") -> None:
    """Raise :class:`~acthash.errors.IncompleteRunError` when ``path`` holds an ``INCOMPLETE``
    marker (its run failed, was interrupted or is still running)."""
    state = incomplete_state(path)
    if state is not None:
        raise IncompleteRunError(
            f"{what} {path} is incomplete ({_reason(state)}): rerun it with --force --out "
            f"{path} (its settings are in {Path(path) / 'config.json'}), or remove the "
            "directory")


def _is_run_dir(path: Path) -> bool:
    return (path / INCOMPLETE).is_file() or (path / "config.json").is_file()


def check_out_dir(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check that a run may be written to ``path`` without writing anything.

    A missing or empty directory is fine. An existing, non-empty one is refused with a
    :class:`~acthash.errors.ConfigError` naming ``--force`` — unless ``force``, and then only
    when it is an acthash run directory (it holds ``config.json`` or ``INCOMPLETE``): --force
    never empties a folder that acthash did not write.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a directory; choose another --out")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    if not _is_run_dir(path):
        raise ConfigError(
            f"--out {path} is not empty and is not an acthash run directory; --force replaces "
            "only run directories: choose another --out (or empty it yourself)")
    if not force:
        state = incomplete_state(path)
        what = (f"holds an incomplete run ({_reason(state)})" if state is not None
                else "holds a run already (writing into it would mix two runs)")
        raise ConfigError(f"--out {path} {what}; pass --force to replace it (Python: "
                          "force=True), or choose another --out")
    return path


def _empty(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_marker(path: Path, **state) -> None:
    write_json(path / INCOMPLETE, {
        **state, "pid": os.getpid(), "host": socket.gethostname(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "meaning": "this run did not finish; acthash refuses to read it. Rerun with --force "
                   "--out THIS_DIR (settings in config.json), or remove the directory."})


def start_run_dir(out_dir: str | os.PathLike | None, runs_root: str | os.PathLike,
                  name_parts: Iterable, *, config: dict, seed: int | None,
                  force: bool = False) -> Path:
    """Open the run directory (``out_dir``, or a new one under ``runs_root`` named from
    ``name_parts``): check it (:func:`check_out_dir`; ``force`` empties an existing run),
    write the ``INCOMPLETE`` marker, then ``config.json`` and ``environment.json``.

    Call it inside a function decorated with :func:`run_transaction`, which removes the
    marker when the function returns and records the failure in it when it raises.
    """
    if out_dir:
        run_dir = check_out_dir(out_dir, force=force)
        if run_dir.is_dir():
            _empty(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        while True:  # a fresh name; two runs started in the same second get -2, -3, ...
            run_dir = new_run_dir(runs_root, *name_parts)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
    opened = _OPEN.get()
    try:
        _write_marker(run_dir, status="running")
    finally:
        if opened is not None:
            opened.append(run_dir)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "environment.json", environment_info(seed))
    return run_dir


def _disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def run_transaction(fn):
    """Make ``fn`` (a run or study function) a transaction over the run directories it opens
    with :func:`start_run_dir`: on return their ``INCOMPLETE`` marker is removed; on an
    exception (KeyboardInterrupt included) the marker is rewritten with status ``failed`` and
    the error, or ``interrupted``, and the exception propagates. A full disk (``ENOSPC``)
    becomes a :class:`~acthash.errors.ResourceError` naming the directory."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        opened: list[Path] = []
        token = _OPEN.set(opened)
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            interrupted = isinstance(e, KeyboardInterrupt)
            for path in opened:
                try:
                    _write_marker(path, status="interrupted" if interrupted else "failed",
                                  error=None if interrupted else f"{type(e).__name__}: {e}")
                except OSError:  # a full disk: the "running" marker stays, still a marker
                    pass
            if _disk_full(e):
                where = f" while writing {opened[-1]}" if opened else ""
                raise ResourceError(
                    f"no space left on the device{where} ({e}); free disk space or choose "
                    "another --out, then rerun with --force") from e
            raise
        finally:
            _OPEN.reset(token)
        for path in opened:
            (path / INCOMPLETE).unlink(missing_ok=True)
        return result

    return wrapper


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


def stderr_is_terminal() -> bool:
    """Whether progress can redraw a line: stderr is a terminal (not a file or a pipe)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_log(text: str) -> None:
    """One plain progress line on stderr (no ``\\r``; the form used when stderr is not a
    terminal)."""
    print(text, file=sys.stderr, flush=True)


def progress_bar(iterable=None, *, enabled: bool = True, desc: str = "", unit: str = "it",
                 total: int | None = None, leave: bool = False, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), or the plain iterable
    (or a no-op bar) when ``enabled`` is false. When stderr is not a terminal the bar is
    plain log lines instead (a line when it starts, at each tenth of the way and when it
    ends; never ``\\r``)."""
    if enabled:
        if not stderr_is_terminal():
            return _LogBar(iterable, desc=desc, unit=unit, total=total,
                           initial=kwargs.get("initial", 0))
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave, **kwargs)
    if iterable is not None:
        return iterable
    return _NoBar()


@contextmanager
def progress_stage(name: str, *, enabled: bool = True):
    """Show that stage ``name`` is running, for work that has no steps to count (a K-Means
    fit, a k-NN pass): a one-line status bar on a terminal, else one log line
    ``name ...``. Does nothing when ``enabled`` is false."""
    if not enabled:
        yield
        return
    if not stderr_is_terminal():
        progress_log(f"{name} ...")
        yield
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc=name, bar_format="{desc} ... {elapsed}", leave=False)
    try:
        yield
    finally:
        bar.close()


class _LogBar:
    """tqdm's interface as plain log lines on stderr (stderr is a file or a pipe)."""

    def __init__(self, iterable=None, *, desc: str, unit: str, total: int | None,
                 initial: int = 0):
        self.iterable = iterable
        self.desc = desc or "progress"
        self.unit = unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.n = initial
        self._start = time.perf_counter()
        self._tenth = self._tenth_of(initial)
        self._closed = False
        progress_log(f"{self.desc}: {initial}/{total} {unit}" if total is not None
                     else f"{self.desc} ...")

    def _tenth_of(self, n: int) -> int:
        return int(10 * n / self.total) if self.total else 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return self.total or 0

    def update(self, n: int = 1) -> None:
        self.n += n
        tenth = self._tenth_of(self.n)
        if self.total and tenth > self._tenth and self.n < self.total:
            self._tenth = tenth
            progress_log(f"{self.desc}: {self.n}/{self.total} {self.unit}")

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str) -> None:
        progress_log(str(text))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            seconds = time.perf_counter() - self._start
            progress_log(f"{self.desc}: done, {self.n} {self.unit} in {seconds:.1f} s")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _NoBar:
    """The part of tqdm's manual-bar interface the studies use, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass
