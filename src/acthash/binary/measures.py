"""Measurements of the latent-binary-encoding study on one trained model.

- :func:`latent_forward`: logits and latent z of a model with ``forward_latent``;
- :func:`shifted_inputs` (and :func:`resize_images`): out-of-distribution sets;
- :func:`split_metrics`: encoding and collapse metrics of one split, both conventions;
- :func:`model_metrics`: every metric of the study at one checkpoint (both splits,
  reliability, OOD, robustness, hash view).

The study driver is :mod:`acthash.studies.binary`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acthash.binary.collapse import neural_collapse
from acthash.binary.latent import binarity_metrics, hash_view, same_encoding_fraction
from acthash.binary.reliability import mahalanobis_reliability, ood_auroc
from acthash.binary.robustness import deepfool_robustness, fgsm_accuracy, pgd_accuracy
from acthash.errors import InputError

__all__ = ["latent_forward", "resize_images", "shifted_inputs", "split_metrics", "model_metrics"]


def latent_forward(model: nn.Module, x: torch.Tensor, batch: int = 2048):
    """(logits, z) as CPU tensors, in eval mode without gradients."""
    device = next(model.parameters()).device
    logits, zs = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch):
                out, z = model.forward_latent(x[lo : lo + batch].to(device))
                logits.append(out.cpu())
                zs.append(z.cpu())
    finally:
        model.train(was_training)
    return torch.cat(logits), torch.cat(zs)


def resize_images(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Images (N, C', H', W') -> (N, *shape): channels averaged or repeated, area
    averaging when shrinking, bilinear interpolation when growing."""
    c, h, w = shape
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True)
        x = x.expand(-1, c, -1, -1) if c > 1 else x
    if x.shape[2] >= h and x.shape[3] >= w:
        return F.adaptive_avg_pool2d(x, (h, w))
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def shifted_inputs(name: str, x_ref: torch.Tensor, *, seed: int = 0, input_range=(0.0, 1.0),
                   dataset_options: dict | None = None) -> torch.Tensor:
    """An out-of-distribution set shaped like ``x_ref`` (N, ...), in input units.

    - ``"permuted"``: ``x_ref`` with its input features (pixels) in one fixed random order
      (the same permutation for every example; per-example statistics are kept, the
      spatial structure is destroyed).
    - ``"uniform"``: independent uniform noise over ``input_range`` (lo, hi).
    - any other name: the test images of that registry dataset (e.g. ``"fashion-mnist"``
      for a digits model), the first N of a seeded shuffle, resized to the input shape
      (area averaging when shrinking) and mapped linearly from that dataset's range onto
      ``input_range``. Needs image inputs (C, H, W) on both sides.
    """
    gen = torch.Generator().manual_seed(int(seed))
    lo, hi = float(input_range[0]), float(input_range[1])
    n = len(x_ref)
    if name == "permuted":
        flat = x_ref.reshape(n, -1)
        perm = torch.randperm(flat.shape[1], generator=gen)
        return flat[:, perm].reshape(x_ref.shape)
    if name == "uniform":
        return torch.rand(x_ref.shape, generator=gen) * (hi - lo) + lo
    from acthash import data as datasets

    other = datasets.load(name, **(dataset_options or {}))
    xo = other.x_test if len(other.x_test) else other.x_train
    if xo.dim() != 4 or x_ref.dim() != 4:
        raise InputError(f"OOD set {name!r}: resizing needs images (C, H, W) on both sides, "
                         f"got {tuple(xo.shape[1:])} and {tuple(x_ref.shape[1:])}; use "
                         f"'permuted' or 'uniform' instead")
    idx = torch.randperm(len(xo), generator=gen)[:n]
    xo = resize_images(xo[idx].float(), tuple(x_ref.shape[1:]))
    o_lo, o_hi = float(xo.min()), float(xo.max())
    scale = (hi - lo) / (o_hi - o_lo) if o_hi > o_lo else 0.0
    return (xo - o_lo) * scale + lo


def split_metrics(z, y, pred, seed: int, dims=None) -> dict:
    """Encoding and collapse metrics of one split, both conventions, without suffix;
    the mixture (binarity) metrics on the latent dimensions ``dims`` (default: all)."""
    rec = {"same_encoding": same_encoding_fraction(z, pred),
           "same_encoding_authors": same_encoding_fraction(z, pred, labels=y,
                                                                  convention="authors")}
    zb = z if dims is None else z[:, dims]
    for conv, tag in (("acthash", ""), ("authors", "_authors")):
        bm = binarity_metrics(zb, seed=seed, convention=conv)
        rec[f"bimodality_mean{tag}"] = bm["peaks_distance_mean"]
        rec[f"bimodality_min{tag}"] = bm["peaks_distance_min"]
        rec[f"bimodality_std{tag}"] = bm["peaks_distance_std"]
        rec[f"gmm_std{tag}"] = bm["gmm_std"]
        rec[f"gmm_score{tag}"] = bm["gmm_score"]
    with warnings.catch_warnings():
        # authors' NC1 is a documented NaN when a predicted class has a single example
        warnings.simplefilter("ignore", RuntimeWarning)
        for conv, tag in (("acthash", ""), ("authors", "_authors")):
            try:
                nc = neural_collapse(z, y, pred, convention=conv)
            except InputError:  # fewer than two predicted classes (e.g. at initialization)
                nc = {}
            for key in ("nc1", "nc1_per_dim", "sigma_w", "equinorm", "equiangularity",
                        "max_angle", "relative_norm_std"):
                rec[f"{key}{tag}"] = nc.get(key, float("nan"))
    return rec


def model_metrics(model: nn.Module, x_train, y_train, x_test, y_test, *, x_attack=None,
                  y_attack=None, clip=None, seed: int = 0, ood_inputs: dict | None = None,
                  bimodality_max_dims: int | None = 16, deepfool_max_iter: int = 50,
                  deepfool_overshoot: float = 0.02, attack_eps: float = 0.1, pgd_steps: int = 10,
                  hash_metrics: bool = True, k: int = 9, kmeans_n_init: int = 4,
                  logreg_strategy: str = "ovo") -> tuple[dict, dict]:
    """All latent-encoding metrics of a model with ``forward_latent`` (a
    :class:`~acthash.models.bottleneck.BottleneckNet`) on a train and a test split.

    ``ood_inputs``: name -> (M, ...) shifted inputs (:func:`shifted_inputs`), scored against
    the test split; ``x_attack``/``y_attack``: the attacked subset (default: the test split);
    ``clip``: (lo, hi) input range of the attacks. The other options are those of the
    metrics (mixtures on the ``bimodality_max_dims`` latent dimensions of largest training
    variance; DeepFool, FGSM/PGD at L∞ radius ``attack_eps``; the hash view with k-NN ``k``).
    Returns ``(record, arrays)``: the flat metric record (per-split metrics end in ``_train``
    / ``_test``; the authors' convention has ``_authors`` before the split) and the arrays it
    came from (``z_*``, ``pred_*``, ``y_*`` and the raw Mahalanobis distances
    ``[authors_]distance_{correct,misclassified}_{train,test}``).
    """
    lg_tr, z_tr = latent_forward(model, x_train)
    lg_te, z_te = latent_forward(model, x_test)
    p_tr, p_te = lg_tr.argmax(1).numpy(), lg_te.argmax(1).numpy()
    y_tr, y_te = np.asarray(y_train), np.asarray(y_test)
    zn_tr, zn_te = z_tr.numpy().astype(np.float64), z_te.numpy().astype(np.float64)
    rec: dict = {
        "train_acc": float((p_tr == y_tr).mean()),
        "test_acc": float((p_te == y_te).mean()),
        "latent_dim": int(z_tr.shape[1]),
    }
    dims = None
    if bimodality_max_dims is not None and zn_tr.shape[1] > bimodality_max_dims:
        dims = np.sort(np.argsort(-zn_tr.var(0), kind="stable")[: bimodality_max_dims])
    rec["bimodality_dims"] = zn_tr.shape[1] if dims is None else len(dims)
    for split, z, y, p in (("train", zn_tr, y_tr, p_tr), ("test", zn_te, y_te, p_te)):
        rec.update({f"{k}_{split}": v for k, v in split_metrics(z, y, p, seed, dims).items()})
    arrays = {"z_train": z_tr.numpy(), "z_test": z_te.numpy(), "pred_train": p_tr,
              "pred_test": p_te, "y_train": y_tr, "y_test": y_te}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # documented NaNs (few errors)
        for conv, tag in (("acthash", ""), ("authors", "_authors")):
            try:
                rel = mahalanobis_reliability(zn_tr, y_tr, p_tr, zn_te, y_te, p_te,
                                                     convention=conv)
            except InputError:  # no correct training example (a model at initialization)
                rel = {}
            rec[f"auroc{tag}"] = rel.get("auroc", float("nan"))
            rec[f"auroc{tag}_riemann"] = rel.get("auroc_riemann", float("nan"))
            rec[f"reliability{tag}_n_misclassified"] = rel.get("n_misclassified_test", 0)
            for key, val in rel.items():
                if key.startswith("distance_"):
                    arrays[f"{tag.lstrip('_')}{'_' if tag else ''}{key}"] = val
        for name, x_out in (ood_inputs or {}).items():
            lg_o, z_o = latent_forward(model, x_out)
            zo = z_o.numpy().astype(np.float64)
            key = name.replace("-", "_").replace(":", "_")
            rec[f"ood_{key}"] = ood_auroc(zn_tr, y_tr, zn_te, zo)
            try:
                rec[f"ood_{key}_predicted"] = ood_auroc(
                    zn_tr, y_tr, zn_te, zo, method="predicted", pred_train=p_tr,
                    pred_in=p_te, pred_out=lg_o.argmax(1).numpy())
            except InputError:
                rec[f"ood_{key}_predicted"] = float("nan")
    xa = x_test if x_attack is None else x_attack
    ya = y_test if y_attack is None else y_attack
    rec.update(deepfool_robustness(model, xa, max_iter=deepfool_max_iter,
                                          overshoot=deepfool_overshoot))
    rec["fgsm_acc"] = fgsm_accuracy(model, xa, ya, attack_eps, clip=clip)
    rec["pgd_acc"] = pgd_accuracy(model, xa, ya, attack_eps, steps=pgd_steps,
                                         clip=clip, seed=seed)
    if hash_metrics:
        hv = hash_view(z_tr, y_tr, z_te, y_te, k=k, seed=seed,
                              kmeans_n_init=kmeans_n_init,
                              logreg_strategy=logreg_strategy)
        rec.update({k: v for k, v in hv.items() if k not in ("n_train", "n_test", "n_classes")})
    return rec, arrays
