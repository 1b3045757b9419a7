"""Atomic file writes: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` on success.

    A crash or exception leaves any existing ``path`` untouched and removes the temporary.
    A full disk or an unwritable folder raises :class:`~acthash.errors.StorageError` naming
    ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise storage_error(e, path) from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise storage_error(e, path) from e
        raise


#: the errno values of a machine that refuses a write (not a bug, not the user's input)
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                  errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def storage_error(e: OSError, path=None) -> BaseException:
    """``e`` as a :class:`~acthash.errors.StorageError` naming the file and the fix when it is
    a refused write (:data:`STORAGE_ERRNOS`); any other ``e`` unchanged."""
    from acthash.errors import ActhashError, StorageError

    if isinstance(e, ActhashError) or e.errno not in STORAGE_ERRNOS:
        return e
    name = e.filename if e.filename is not None else path
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        text = (f"no space left on device while writing {name}: free disk space or write "
                "elsewhere (--out / --runs-root)")
    elif e.errno in (errno.EACCES, errno.EPERM):
        text = (f"permission denied writing {name}: choose a folder you can write to "
                "(--out / --runs-root)")
    elif e.errno == errno.EROFS:
        text = (f"{name} is on a read-only file system: choose a writable folder "
                "(--out / --runs-root)")
    elif e.errno == errno.EISDIR:
        text = f"{name} is a directory, not a file: give a file path"
    else:  # EEXIST, ENOTDIR: a file where a folder is wanted
        text = (f"{name} (or a folder above it) is an existing file, not a directory: give "
                "--out a new or existing directory")
    return StorageError(e.errno, text, name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def write_table(path: str | os.PathLike, df) -> Path:
    """Write a pandas DataFrame as Parquet (``.parquet``) or CSV (``.csv``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path


def save_torch(path: str | os.PathLike, obj) -> Path:
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch's zip writer reports a failed write as RuntimeError
            if "write" not in str(e).lower():
                raise
            from acthash.errors import StorageError

            raise StorageError(
                errno.ENOSPC, f"no space left on device while writing {path} (torch: "
                f"{' '.join(str(e).split())[-120:]}): free disk space or write elsewhere "
                "(--out / --runs-root)", str(path)) from e
    return Path(path)
