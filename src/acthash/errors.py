"""Every user-facing error of acthash, under one base class.

Each error's message says what is wrong and how to fix it. The classes also derive from the
built-in exception a Python user would expect (``ValueError``, ``FileNotFoundError``, ...), so
``except ValueError`` keeps working. The CLI catches :class:`ActhashError` at one boundary and
prints its message as one line, exiting with :data:`EXIT_USER_ERROR` (usage errors exit 2);
the same boundary turns the machine's refusals (a full disk, a read-only or unwritable
folder, a path that is a file where a folder is wanted) into one line with the same status.
"""

from __future__ import annotations

__all__ = [
    "EXIT_USER_ERROR",
    "EXIT_INTERRUPTED",
    "ActhashError",
    "InputError",
    "ConfigError",
    "NoReluUnitError",
    "NotPiecewiseLinearError",
    "CorruptFileError",
    "MissingFileError",
    "DatasetNotFoundError",
    "MissingDependencyError",
    "DivergenceError",
    "ResourceError",
    "StorageError",
    "SweepLockedError",
    "IncompleteRunError",
    "StudyError",
    "SmallDataWarning",
]

#: exit status of the CLI for an :class:`ActhashError` and for an environment error (full
#: disk, unwritable folder, ...); click/typer use 2 for usage errors
EXIT_USER_ERROR = 3
#: exit status of the CLI after Ctrl-C (128 + SIGINT, as a shell reports it)
EXIT_INTERRUPTED = 130


class ActhashError(Exception):
    """Base class of every error caused by the user's input, files, settings or machine."""


class InputError(ActhashError, ValueError):
    """An argument, array or tensor that acthash cannot use (shape, dtype, values, labels)."""


class ConfigError(InputError):
    """A setting that is unknown, out of range or inconsistent with another setting."""


class NoReluUnitError(InputError):
    """The model has no ReLU-like unit, so it has no neural code."""


class NotPiecewiseLinearError(InputError):
    """The model is not piecewise linear in the way the exact region walk needs."""


class CorruptFileError(ActhashError, ValueError):
    """A codes file, checkpoint or result file that cannot be read back."""


class MissingFileError(ActhashError, FileNotFoundError):
    """A file or directory the command needs is not there."""


class DatasetNotFoundError(MissingFileError):
    """The dataset's files are not on this machine; the message says how to get them."""


class MissingDependencyError(ActhashError, ImportError):
    """An optional package needed for this path is not installed; the message names it."""


class DivergenceError(ActhashError, FloatingPointError):
    """Training produced a non-finite loss; the message suggests a smaller learning rate."""


class ResourceError(ActhashError, MemoryError):
    """A memory budget, disk or device too small for the requested work."""


class StorageError(ActhashError, OSError):
    """A file that cannot be written: no space left on the device, a read-only or
    unwritable folder. The message names the file; ``errno`` and ``filename`` are the
    refused write's. Raise it as ``StorageError(errno, message, filename)``."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class SweepLockedError(ActhashError, RuntimeError):
    """Another process holds the sweep directory's lock."""


class IncompleteRunError(ActhashError, RuntimeError):
    """A run or study directory whose ``INCOMPLETE`` marker says it failed, was interrupted
    or is still being written; the message says how to rerun it."""


class StudyError(ActhashError, RuntimeError):
    """A study's built-in check failed (e.g. an OOD detector that tells two in-distribution
    splits apart); the message names what failed and where the results were written."""


class SmallDataWarning(UserWarning):
    """A split too small for a property (fewer codes than K-Means clusters or k-NN
    neighbours, one training class); the property is reported as NaN."""
