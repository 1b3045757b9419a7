"""Metrics of latent binary encoding (Sbailò & Ghiringhelli), usable on any representation.

A representation ``z`` is an (N, d) float array (a penultimate layer, any feature vector);
labels and predictions are (N,) integer arrays. Functions accept numpy arrays or tensors.
One module per topic, every public name re-exported here (``from acthash import binary``):
:mod:`~acthash.binary.latent` (bimodality, same-encoding, hash view),
:mod:`~acthash.binary.collapse` (neural collapse), :mod:`~acthash.binary.robustness`
(DeepFool, FGSM, PGD) and :mod:`~acthash.binary.reliability` (Mahalanobis AUROC, OOD).

Where acthash's definition and the authors' code (luigisbailo/binary_encoding) differ, the
metric takes ``convention="acthash"`` (the default) or ``"authors"``; the docstrings give
both formulas.

- :func:`bimodality`: per-dimension peak separation |μ₁−μ₂| / mean σ of a 2-component
  Gaussian mixture; :func:`binarity_metrics` (mean, min, spread, mixture σ and
  log-likelihood); :func:`latent_histograms` as a tidy table.
- :func:`same_encoding_fraction`: binarize z > 0; per predicted class, the share of its
  examples on the class's most common code (1 = one hypercube vertex per class).
- :func:`neural_collapse`: NC1 = Tr(Σ_W Σ_B⁺)/C, NC1/d, σ_W, equinorm, equiangularity and
  the relative norm spread of class-mean differences.
- :func:`deepfool` / :func:`deepfool_robustness`: batched DeepFool minimal L2
  perturbation and the mean ‖r‖/‖x‖; :func:`fgsm_accuracy`, :func:`pgd_accuracy` (L∞, ε).
- :func:`auroc` (rank statistic, equal to scikit-learn's ``roc_auc_score``),
  :func:`riemann_auroc` (the authors' 101-point approximation), :func:`mahalanobis_scores`,
  :func:`mahalanobis_reliability` / :func:`mahalanobis_auroc`: reliability of predictions;
  :func:`ood_auroc`: Lee et al.'s Mahalanobis out-of-distribution detector.
- :func:`hash_view`: the code of z > 0 through :func:`acthash.properties.encoding_properties`,
  plus :func:`within_class_redundancy`.
- :mod:`~acthash.binary.measures`: the study's measurements of one model
  (:func:`model_metrics`, :func:`shifted_inputs`, :func:`latent_forward`, ...).
"""

from acthash.binary._arrays import CONVENTIONS, as_numpy
from acthash.binary.collapse import neural_collapse
from acthash.binary.latent import (
    VAR_FLOOR,
    bimodality,
    binarity_metrics,
    binarize,
    hash_view,
    latent_histograms,
    same_encoding_fraction,
    within_class_redundancy,
)
from acthash.binary.measures import (
    latent_forward,
    model_metrics,
    resize_images,
    shifted_inputs,
    split_metrics,
)
from acthash.binary.reliability import (
    auroc,
    fit_class_gaussians,
    fit_tied_gaussian,
    mahalanobis_auroc,
    mahalanobis_reliability,
    mahalanobis_scores,
    min_mahalanobis,
    ood_auroc,
    ood_scores,
    riemann_auroc,
)
from acthash.binary.robustness import (
    deepfool,
    deepfool_robustness,
    fgsm_accuracy,
    pgd_accuracy,
)

__all__ = [
    "CONVENTIONS",
    "VAR_FLOOR",
    "as_numpy",
    "bimodality",
    "binarity_metrics",
    "latent_histograms",
    "binarize",
    "same_encoding_fraction",
    "neural_collapse",
    "deepfool",
    "deepfool_robustness",
    "fgsm_accuracy",
    "pgd_accuracy",
    "auroc",
    "fit_class_gaussians",
    "mahalanobis_scores",
    "mahalanobis_auroc",
    "mahalanobis_reliability",
    "riemann_auroc",
    "fit_tied_gaussian",
    "min_mahalanobis",
    "ood_scores",
    "ood_auroc",
    "within_class_redundancy",
    "hash_view",
    "latent_forward",
    "model_metrics",
    "resize_images",
    "shifted_inputs",
    "split_metrics",
]
