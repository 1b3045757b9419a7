"""Detection metrics of out-of-distribution scores.

Convention of every detector in :mod:`acthash.ood`: **a higher score means more
out-of-distribution** (OOD). The metrics take the scores of the in-distribution (ID) set and
of the OOD set separately:

- :func:`auroc_ood`: area under the ROC curve; OOD = positive, score as given (the same
  number as ID = positive with the negated score). 1 = separated, 0.5 = chance. It is the
  one rank statistic of the package, :func:`acthash.binary.auroc` (Mann–Whitney with
  mid-ranks, equal to scikit-learn's ``roc_auc_score``).
- :func:`aupr_in`: average precision with **ID = positive**, ranked by −score (scikit-learn's
  ``average_precision_score``: Σₙ (Rₙ − Rₙ₋₁) Pₙ over the distinct thresholds).
- :func:`aupr_out`: average precision with **OOD = positive**, ranked by the score.
- :func:`fpr_at_tpr`: FPR at 95 % TPR, ID = positive: the threshold accepts (calls ID) every
  example with score ≤ t, t the smallest value accepting at least 95 % of the ID set
  (the ⌈0.95·n⌉-th smallest ID score); the result is the share of the OOD set accepted
  (lower is better; ties at t are accepted).
"""

from __future__ import annotations

import math

import numpy as np

from acthash.binary.reliability import auroc
from acthash.errors import InputError

__all__ = ["auroc", "auroc_ood", "aupr_in", "aupr_out", "fpr_at_tpr", "ood_metrics",
           "METRIC_NAMES"]

#: the metric names of :func:`ood_metrics`, in table order
METRIC_NAMES = ("auroc", "aupr_in", "aupr_out", "fpr95")


def _pair(s_in, s_out) -> tuple[np.ndarray, np.ndarray]:
    s_in = np.asarray(s_in, dtype=np.float64).ravel()
    s_out = np.asarray(s_out, dtype=np.float64).ravel()
    if len(s_in) == 0 or len(s_out) == 0:
        raise InputError("OOD metrics need at least one in-distribution and one OOD score")
    bad = [name for name, s in (("in-distribution", s_in), ("OOD", s_out))
           if not np.isfinite(s).all()]
    if bad:
        raise InputError(f"{' and '.join(bad)} scores contain NaN or inf; check the detector's "
                         "inputs")
    return s_in, s_out


def auroc_ood(s_in, s_out) -> float:
    """AUROC of telling OOD (positive) from ID by the score (higher = more OOD)."""
    s_in, s_out = _pair(s_in, s_out)
    return auroc(np.r_[np.zeros(len(s_in)), np.ones(len(s_out))], np.r_[s_in, s_out])


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision of ranking ``pos`` above ``neg`` by descending score, with tied
    scores forming one threshold (scikit-learn's step-wise definition)."""
    s = np.r_[pos, neg]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    n = last + 1.0
    recall = tp / len(pos)
    precision = tp / n
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def aupr_in(s_in, s_out) -> float:
    """Average precision with ID = positive, ranked by −score."""
    s_in, s_out = _pair(s_in, s_out)
    return _average_precision(-s_in, -s_out)


def aupr_out(s_in, s_out) -> float:
    """Average precision with OOD = positive, ranked by the score."""
    s_in, s_out = _pair(s_in, s_out)
    return _average_precision(s_out, s_in)


def fpr_at_tpr(s_in, s_out, tpr: float = 0.95) -> float:
    """Share of the OOD set accepted as ID when ``tpr`` of the ID set is accepted (ID =
    positive, accepted = score ≤ threshold; see the module docstring)."""
    if not 0.0 < tpr <= 1.0:
        raise InputError(f"tpr must be in (0, 1], got {tpr}")
    s_in, s_out = _pair(s_in, s_out)
    m = max(1, math.ceil(tpr * len(s_in) - 1e-9))
    t = np.sort(s_in)[m - 1]
    return float(np.mean(s_out <= t))


def ood_metrics(s_in, s_out, tpr: float = 0.95) -> dict:
    """``{"auroc", "aupr_in", "aupr_out", "fpr95"}`` of one ID/OOD pair (``fpr95`` is the FPR
    at ``tpr``)."""
    return {"auroc": auroc_ood(s_in, s_out), "aupr_in": aupr_in(s_in, s_out),
            "aupr_out": aupr_out(s_in, s_out), "fpr95": fpr_at_tpr(s_in, s_out, tpr)}
