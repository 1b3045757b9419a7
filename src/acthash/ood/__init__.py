"""Out-of-distribution detection and memorisation with neural codes.

Every detector scores **higher = more out-of-distribution**; the metrics take the
in-distribution and the OOD scores apart (ID = positive for AUPR-in and FPR@95 % TPR, OOD =
positive for AUROC and AUPR-out). One module per topic, every public name re-exported here:

- :mod:`~acthash.ood.detectors`: :class:`HammingKNN` (k-th nearest training code, per class,
  per layer), :class:`Coverage` (NAC-style unit-state coverage) and the baselines
  :class:`MSP`, :class:`Energy`, :class:`FeatureKNN`, :class:`Mahalanobis`;
  :func:`make_detector` by name from :data:`DETECTORS`;
- :mod:`~acthash.ood.metrics`: :func:`auroc_ood`, :func:`aupr_in`, :func:`aupr_out`,
  :func:`fpr_at_tpr`, :func:`ood_metrics`;
- :mod:`~acthash.ood.memorization`: :func:`label_isolation_scores` (mislabelled training
  examples by their code's neighbours), :func:`per_example_loss`, :func:`flip_auroc`;
- :mod:`~acthash.ood.features`: :func:`logits_and_features` (logits and penultimate
  features of any model with an ``nn.Linear`` head).

The study driver is :mod:`acthash.studies.ood` (``acthash study ood``).
"""

from acthash.ood.detectors import (
    DETECTORS,
    MSP,
    Coverage,
    Detector,
    Energy,
    FeatureKNN,
    HammingKNN,
    Mahalanobis,
    make_detector,
)
from acthash.ood.features import logits_and_features
from acthash.ood.memorization import (
    ISOLATION_METHODS,
    flip_auroc,
    label_isolation_scores,
    per_example_loss,
)
from acthash.ood.metrics import (
    METRIC_NAMES,
    aupr_in,
    aupr_out,
    auroc,
    auroc_ood,
    fpr_at_tpr,
    ood_metrics,
)

__all__ = [
    "DETECTORS", "Detector", "HammingKNN", "Coverage", "MSP", "Energy", "FeatureKNN",
    "Mahalanobis", "make_detector", "logits_and_features", "ISOLATION_METHODS",
    "label_isolation_scores", "per_example_loss", "flip_auroc", "METRIC_NAMES", "auroc",
    "auroc_ood", "aupr_in", "aupr_out", "fpr_at_tpr", "ood_metrics",
]
