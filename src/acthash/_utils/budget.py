"""The memory budget and the backend vocabulary, one of each for the whole package.

Memory budget: every chunked routine takes ``memory_budget=None`` (bytes, or a string such as
``"512MB"``, ``"2GiB"``); ``None`` means the current global budget, 1 GiB unless changed with
:func:`memory_budget` (a context manager, in the style of scikit-learn's ``working_memory``)
or :func:`set_memory_budget`. Routines whose blocks are tuned to a cache level cap their block
at a fixed size below the budget (e.g. 8 MiB distance tiles); the budget is never exceeded.

Backends: ``"auto"`` and the names of :data:`BACKENDS`; :func:`resolve_backend` is the single
resolver (a routine passes the subset it implements).
"""

from __future__ import annotations

import contextlib
import re
import threading

from acthash.errors import InputError

__all__ = ["DEFAULT_MEMORY_BUDGET", "BACKENDS", "parse_memory_budget", "get_memory_budget",
           "set_memory_budget", "memory_budget", "resolve_backend", "resolve_device"]

#: default working memory of the streamed routines, in bytes (1 GiB)
DEFAULT_MEMORY_BUDGET = 1 << 30

#: every backend name any routine accepts, besides "auto":
#: sklearn (dense scikit-learn on unpacked codes), numba (compiled kernels on packed codes,
#: CPU), faiss (faiss binary indexes, CPU), numpy (chunked numpy), torch (packed words on a
#: torch device, CUDA or CPU)
BACKENDS = ("sklearn", "numba", "faiss", "numpy", "torch")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}

_state = threading.local()


def get_memory_budget() -> int:
    """The current global memory budget in bytes."""
    return getattr(_state, "budget", DEFAULT_MEMORY_BUDGET)


def _parse(budget) -> int:
    unreadable = InputError(f"cannot read memory budget {budget!r}; write a number of bytes "
                            "or e.g. '512MB', '2GB'")
    if isinstance(budget, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", budget)
        if not m or m.group(2).lower() not in _UNITS:
            raise unreadable
        budget = float(m.group(1)) * _UNITS[m.group(2).lower()]
    try:
        budget = int(budget)
    except (TypeError, ValueError):
        raise unreadable from None
    if budget <= 0:
        raise InputError(f"memory budget must be positive, got {budget} bytes")
    return budget


def parse_memory_budget(budget) -> int:
    """A memory budget in bytes from an int or a string such as ``"512MB"``, ``"2GiB"``
    (binary units either way); ``None`` gives the current global budget
    (:func:`get_memory_budget`, 1 GiB by default)."""
    return get_memory_budget() if budget is None else _parse(budget)


def set_memory_budget(budget) -> int:
    """Set the global memory budget (this thread); ``None`` restores the 1 GiB default.
    Returns the previous budget in bytes."""
    previous = get_memory_budget()
    _state.budget = DEFAULT_MEMORY_BUDGET if budget is None else _parse(budget)
    return previous


@contextlib.contextmanager
def memory_budget(budget):
    """``with acthash.memory_budget("4GB"): ...``: every routine called inside with
    ``memory_budget=None`` uses this budget; the previous one is restored on exit."""
    previous = set_memory_budget(budget)
    try:
        yield get_memory_budget()
    finally:
        _state.budget = previous


def resolve_device(device="auto"):
    """A ``torch.device`` from "auto" or ``None`` (CUDA when available, else the CPU) or any
    torch device spelling; an unknown device, or CUDA in a torch build without it, raises
    :class:`~acthash.errors.InputError` naming the fix."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA is not available in this torch build: use --device cpu "
                         "(device='cpu' in Python) or auto")
    return dev


def resolve_backend(backend: str, device=None, *, allowed=("numba", "torch"),
                    cpu_default: str = "numba", what: str = "this routine"):
    """(backend, torch device) for ``backend`` ("auto" or one of ``allowed``).

    ``device=None`` is the CPU, ``"auto"`` CUDA when available (:func:`resolve_device`).
    "auto" takes "torch" when the device is an accelerator and ``cpu_default`` otherwise. A backend outside ``allowed`` raises
    :class:`~acthash.errors.InputError` listing the choices; a CPU-only backend on an
    accelerator is refused with the fix.
    """
    if backend != "auto" and backend not in allowed:
        choices = ", ".join(repr(b) for b in ("auto", *allowed))
        raise InputError(f"unknown backend {backend!r} for {what}; use one of {choices}")
    import torch

    dev = torch.device("cpu") if device is None else resolve_device(device)
    if backend == "auto":
        backend = "torch" if dev.type != "cpu" and "torch" in allowed else cpu_default
    if backend != "torch" and dev.type != "cpu":
        raise InputError(f"backend {backend!r} runs on the CPU only; use backend='torch' "
                         f"for {dev}")
    return backend, dev
