"""The one rule for showing a spread over seeds: ``mean ± std`` with at least two seeds,
the value alone with one (a single run has no spread, and ``± 0.000`` would claim one)."""

from __future__ import annotations

import math

__all__ = ["mean_pm", "spread_label", "NO_SPREAD"]

#: what stands in for a spread that one seed cannot give
NO_SPREAD = "–"


def mean_pm(mean: float, std: float | None, n_seeds: int, fmt: str = ".3f") -> str:
    """``"0.512 ± 0.013"`` over ``n_seeds`` >= 2 seeds, ``"0.512"`` for one seed (or a
    missing std)."""
    if n_seeds < 2 or std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:{fmt}}"
    return f"{mean:{fmt}} ± {std:{fmt}}"


def spread_label(n_seeds: int) -> str:
    """What a table or axis shows: "mean ± std over 3 seeds" or "value (1 seed)"."""
    return f"mean ± std over {n_seeds} seeds" if n_seeds >= 2 else "value (1 seed)"
