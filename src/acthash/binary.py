"""Metrics of latent binary encoding (Sbailò & Ghiringhelli), usable on any representation.

A representation ``z`` is an (N, d) float array (a penultimate layer, any feature vector);
labels and predictions are (N,) integer arrays. Functions accept numpy arrays or tensors.

- :func:`bimodality`: per-dimension peak separation |μ₁−μ₂| / mean σ of a 2-component
  Gaussian mixture; :func:`latent_histograms` as a tidy table.
- :func:`same_encoding_fraction`: binarize z > 0; per predicted class, the share of its
  examples on the class's most common code (1 = one hypercube vertex per class).
- :func:`neural_collapse`: NC1 = Tr(Σ_W Σ_B⁺)/C, equinorm and equiangularity.
- :func:`deepfool` / :func:`deepfool_robustness`: batched DeepFool minimal L2
  perturbation and the mean ‖r‖/‖x‖; :func:`fgsm_accuracy`, :func:`pgd_accuracy` (L∞, ε).
- :func:`auroc` (rank statistic, equal to scikit-learn's ``roc_auc_score``),
  :func:`mahalanobis_scores`, :func:`mahalanobis_auroc`: reliability of predictions.
- :func:`hash_view`: the code of z > 0 through :func:`acthash.properties.encoding_properties`,
  plus :func:`within_class_redundancy`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from acthash.errors import InputError

__all__ = [
    "as_numpy",
    "bimodality",
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
    "within_class_redundancy",
    "hash_view",
]


def as_numpy(a, name: str = "z", ndim: int | None = 2) -> np.ndarray:
    """A float64 numpy copy of an array or tensor, checked for its number of axes."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise InputError(f"{name} must have {ndim} axes, got shape {a.shape}")
    return a


def _as_labels(y, n: int, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"{name} must have shape ({n},) to match the representation, "
                         f"got {y.shape}")
    return y.astype(np.int64)


# --------------------------------------------------------------------- bimodality
def bimodality(z, *, seed: int = 0, max_samples: int | None = 5000,
               var_floor: float = 1e-3) -> np.ndarray:
    """(d,) peak separation |μ₁ − μ₂| / ((σ₁ + σ₂)/2) per dimension.

    Each dimension gets its own 2-component scikit-learn ``GaussianMixture`` (full
    variances, ``random_state=seed``). Large values (≫ 2) mean two well separated modes; a
    unimodal dimension gives a small value. A constant dimension gives 0. ``max_samples``
    caps the points used per fit (a seeded random subset). ``var_floor`` · var(z_j) is
    added to each component's variance (scikit-learn's ``reg_covar``), so that a point
    mass (e.g. the zeros of a ReLU unit) cannot make the ratio arbitrarily large.
    """
    from sklearn.mixture import GaussianMixture

    z = as_numpy(z)
    n, d = z.shape
    if n < 2:
        raise InputError("bimodality needs at least 2 examples")
    if max_samples is not None and n > max_samples:
        z = z[np.random.default_rng(seed).choice(n, max_samples, replace=False)]
    out = np.zeros(d)
    for j in range(d):
        col = z[:, j : j + 1]
        if np.ptp(col) <= 1e-12 * max(1.0, float(np.abs(col).max())):
            continue
        gm = GaussianMixture(2, random_state=seed,
                             reg_covar=var_floor * float(col.var()) + 1e-12)
        gm.fit(col)
        mu = gm.means_.ravel()
        sd = np.sqrt(gm.covariances_.ravel())
        out[j] = abs(mu[0] - mu[1]) / sd.mean()
    return out


def latent_histograms(z, *, bins: int = 50, labels=None, dims=None) -> pd.DataFrame:
    """Histogram of each latent dimension as a tidy table.

    Rows: ``dim``, ``bin_left``, ``bin_right``, ``count`` (and ``label`` when labels are
    given: one histogram per class on the dimension's common bins).
    """
    z = as_numpy(z)
    dims = range(z.shape[1]) if dims is None else dims
    lab = None if labels is None else _as_labels(labels, len(z), "labels")
    rows = []
    for j in dims:
        edges = np.histogram_bin_edges(z[:, j], bins=bins)
        groups = [(None, z[:, j])] if lab is None else [(c, z[lab == c, j]) for c in np.unique(lab)]
        for c, vals in groups:
            counts, _ = np.histogram(vals, bins=edges)
            part = {"dim": j, "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts}
            if c is not None:
                part["label"] = int(c)
            rows.append(pd.DataFrame(part))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------- binary codes
def binarize(z, threshold: float = 0.0) -> np.ndarray:
    """(N, d) bool: z > threshold."""
    return as_numpy(z) > threshold


def same_encoding_fraction(z, predicted, *, threshold: float = 0.0,
                           per_class: bool = False):
    """Share of examples on their predicted class's most common binary code.

    z : (N, d) representation (binarized as z > threshold; a 0/1 code array works too)
    predicted : (N,) predicted classes
    Returns the mean over predicted classes of (count of the class's modal code) / (class
    size): 1 means each class sits on one hypercube vertex. ``per_class=True`` returns a
    Series indexed by class instead.
    """
    bits = binarize(z, threshold)
    pred = _as_labels(predicted, len(bits), "predicted")
    if len(bits) == 0:
        raise InputError("no examples")
    packed = np.packbits(bits, axis=1)
    keys = pd.Series([row.tobytes() for row in packed])
    frame = pd.DataFrame({"cls": pred, "key": keys})
    counts = frame.groupby(["cls", "key"]).size()
    modal = counts.groupby(level="cls").max()
    sizes = frame.groupby("cls").size()
    share = (modal / sizes).astype(float)
    share.index.name = "class"
    return share if per_class else float(share.mean())


# --------------------------------------------------------------------- neural collapse
def neural_collapse(z, labels) -> dict:
    """Neural-collapse metrics of features ``z`` (N, d) grouped by ``labels``.

    - ``nc1`` = Tr(Σ_W Σ_B⁺) / C with Σ_W the within-class covariance (1/N Σᵢ (zᵢ−μ_c)(…)ᵀ)
      and Σ_B the between-class covariance of the class means around the global mean
      (1/C Σ_c (μ_c−μ_G)(…)ᵀ); 0 = every example on its class mean.
    - ``equinorm`` = std / mean of ‖μ_c − μ_G‖ over classes (0 = equal norms).
    - ``equiangularity`` = std of the cosines between centred class means over class
      pairs (0 = equal angles); ``max_angle`` = mean |cos + 1/(C−1)| (0 = simplex ETF).
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    classes = np.unique(y)
    c = len(classes)
    if c < 2:
        raise InputError("neural-collapse metrics need at least two classes")
    mu_g = z.mean(0)
    means = np.stack([z[y == k].mean(0) for k in classes])
    centred = z - means[np.searchsorted(classes, y)]
    sigma_w = centred.T @ centred / len(z)
    m = means - mu_g
    sigma_b = m.T @ m / c
    nc1 = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / c)
    norms = np.linalg.norm(m, axis=1)
    equinorm = float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan")
    unit = m / np.where(norms > 0, norms, 1.0)[:, None]
    cos = unit @ unit.T
    iu = np.triu_indices(c, k=1)
    pair = cos[iu]
    return {
        "nc1": nc1,
        "equinorm": equinorm,
        "equiangularity": float(pair.std()),
        "max_angle": float(np.abs(pair + 1.0 / (c - 1)).mean()),
    }


# --------------------------------------------------------------------- robustness
def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def deepfool(model: nn.Module, x, *, max_iter: int = 50, overshoot: float = 0.02,
             batch_size: int = 512, progress: bool = False):
    """Batched DeepFool (Moosavi-Dezfooli et al., 2016): minimal L2 perturbations.

    x : (N, ...) inputs. The model runs in eval mode and must treat examples independently
    (no batch statistics). At each step every still-unflipped example moves to the nearest
    linearized decision boundary among all classes; the total step is scaled by
    (1 + overshoot) at the end.
    Returns ``(r, flipped, iterations)``: r (N, ...) float32 perturbations on the CPU,
    flipped (N,) bool (the label changed within max_iter), iterations (N,) int.
    """
    x = torch.as_tensor(x).float()
    device = _model_device(model)
    was_training = model.training
    model.eval()
    rs, flips, iters = [], [], []
    starts = range(0, len(x), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="deepfool", unit="batch", leave=False)
    try:
        for lo in starts:
            r, f, it = _deepfool_batch(model, x[lo : lo + batch_size].to(device), max_iter,
                                       overshoot)
            rs.append(r.cpu())
            flips.append(f.cpu())
            iters.append(it.cpu())
    finally:
        model.train(was_training)
    return torch.cat(rs), torch.cat(flips).numpy(), torch.cat(iters).numpy()


def _deepfool_batch(model, x0, max_iter, overshoot):
    n = len(x0)
    flat = x0.reshape(n, -1)
    with torch.no_grad():
        k0 = model(x0).argmax(1)
    r_tot = torch.zeros_like(flat)
    flipped = torch.zeros(n, dtype=torch.bool, device=x0.device)
    iters = torch.zeros(n, dtype=torch.long, device=x0.device)
    active = torch.arange(n, device=x0.device)
    for _ in range(max_iter):
        if len(active) == 0:
            break
        xa = (flat[active] + (1 + overshoot) * r_tot[active]).reshape(
            len(active), *x0.shape[1:]).requires_grad_(True)
        logits = model(xa)
        ka = k0[active]
        now = logits.argmax(1)
        done = now != ka
        flipped[active[done]] = True
        keep = ~done
        if not keep.any():
            break
        n_cls = logits.shape[1]
        grads = torch.stack([
            torch.autograd.grad(logits[:, k].sum(), xa, retain_graph=k < n_cls - 1)[0]
            .reshape(len(active), -1) for k in range(n_cls)
        ], dim=1)  # (n_active, C, D)
        logits = logits.detach()
        rows = torch.arange(len(active), device=x0.device)
        w = grads - grads[rows, ka][:, None, :]
        f = logits - logits[rows, ka][:, None]
        wn = w.norm(dim=2)
        ratio = f.abs() / wn.clamp_min(1e-12)
        ratio[rows, ka] = float("inf")
        ratio[wn == 0] = float("inf")
        best = ratio.argmin(1)
        wl = w[rows, best]
        step = ((f[rows, best].abs() + 1e-4) / wn[rows, best].clamp_min(1e-12) ** 2)[:, None] * wl
        sel = active[keep]
        r_tot[sel] += step[keep]
        iters[sel] += 1
        active = sel
    return ((1 + overshoot) * r_tot).reshape(x0.shape), flipped, iters


def deepfool_robustness(model: nn.Module, x, **kwargs) -> dict:
    """Mean ‖r‖₂/‖x‖₂ over examples (DeepFool's ρ_adv) and the share it flipped."""
    x = torch.as_tensor(x).float()
    r, flipped, iters = deepfool(model, x, **kwargs)
    ratio = r.reshape(len(r), -1).norm(dim=1) / x.reshape(len(x), -1).norm(dim=1).clamp_min(1e-12)
    ratio = ratio.numpy()
    return {
        "deepfool_rho": float(ratio[flipped].mean()) if flipped.any() else float("nan"),
        "deepfool_flipped": float(flipped.mean()),
        "deepfool_iterations": float(iters.mean()),
    }


def _clip(x, clip):
    return x if clip is None else x.clamp(clip[0], clip[1])


def _loss_grad(model, x, y):
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0]


def _accuracy(model, x, y, batch_size):
    with torch.no_grad():
        return sum(int((model(x[lo : lo + batch_size]).argmax(1) == y[lo : lo + batch_size]).sum())
                   for lo in range(0, len(x), batch_size)) / len(x)


def fgsm_accuracy(model: nn.Module, x, y, eps: float, *, clip=None,
                  batch_size: int = 1024) -> float:
    """Accuracy on x + ε·sign(∇ₓ CE) (L∞ FGSM); ``clip=(lo, hi)`` keeps inputs in range."""
    return pgd_accuracy(model, x, y, eps, steps=1, step_size=eps, random_start=False,
                        clip=clip, batch_size=batch_size)


def pgd_accuracy(model: nn.Module, x, y, eps: float, *, steps: int = 10,
                 step_size: float | None = None, random_start: bool = True, seed: int = 0,
                 clip=None, batch_size: int = 1024) -> float:
    """Accuracy under an L∞ PGD attack of radius ε (``steps`` signed-gradient steps of
    ``step_size`` (default 2.5·ε/steps), projected on the ε-ball, from a seeded random
    start in the ball)."""
    if eps < 0:
        raise InputError(f"eps must be >= 0, got {eps}")
    device = _model_device(model)
    x = torch.as_tensor(x).float().to(device)
    y = torch.as_tensor(y).long().to(device)
    step_size = 2.5 * eps / steps if step_size is None else step_size
    was_training = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    advs = []
    try:
        for lo in range(0, len(x), batch_size):
            xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
            adv = xb.clone()
            if random_start and eps > 0:
                noise = (torch.rand(xb.shape, generator=gen) * 2 - 1) * eps
                adv = _clip(xb + noise.to(device), clip)
            for _ in range(steps):
                g = _loss_grad(model, adv, yb)
                adv = adv + step_size * g.sign()
                adv = _clip(xb + (adv - xb).clamp(-eps, eps), clip)
            advs.append(adv.detach())
        return _accuracy(model, torch.cat(advs), y, batch_size)
    finally:
        model.train(was_training)


# --------------------------------------------------------------------- reliability
def auroc(labels, scores) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive).

    The Mann–Whitney statistic with mid-ranks for ties: the probability that a random
    positive scores above a random negative (ties count 1/2); equals scikit-learn's
    ``roc_auc_score``. NaN (with a warning) when only one class is present.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"labels {y.shape} and scores {s.shape} differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        warnings.warn("AUROC is undefined with only one class present; returning NaN",
                      RuntimeWarning, stacklevel=2)
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_class_gaussians(z, labels, *, shrinkage: float = 1e-6) -> dict:
    """Per-class mean and inverse covariance of z (N, d) -> ``{class: (mean, precision)}``.

    The covariance gets ``shrinkage · mean variance`` added on its diagonal so that
    degenerate classes (few examples, collapsed dimensions) stay invertible.
    """
    z = as_numpy(z)
    y = _as_labels(labels, len(z), "labels")
    out = {}
    for k in np.unique(y):
        zk = z[y == k]
        mu = zk.mean(0)
        cov = np.cov(zk, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
        ridge = shrinkage * max(float(np.trace(cov)) / z.shape[1], 1e-12)
        out[int(k)] = (mu, np.linalg.pinv(cov + ridge * np.eye(z.shape[1])))
    return out


def mahalanobis_scores(gaussians: dict, z, predicted) -> np.ndarray:
    """(N,) Mahalanobis distance of each z to its predicted class's Gaussian (inf when the
    class has no Gaussian)."""
    z = as_numpy(z)
    pred = _as_labels(predicted, len(z), "predicted")
    dist = np.full(len(z), np.inf)
    for k, (mu, prec) in gaussians.items():
        sel = pred == k
        if sel.any():
            dz = z[sel] - mu
            dist[sel] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", dz, prec, dz), 0.0))
    return dist


def mahalanobis_auroc(z_train, y_train, pred_train, z_test, y_test, pred_test, *,
                      shrinkage: float = 1e-6) -> float:
    """Reliability: AUROC of telling correct from misclassified test examples by the
    Mahalanobis distance of z to its predicted class's Gaussian, fit on the correctly
    classified training examples. Correct = positive, score = −distance (1 = perfect)."""
    z_train = as_numpy(z_train, "z_train")
    z_test = as_numpy(z_test, "z_test")
    y_tr = _as_labels(y_train, len(z_train), "y_train")
    p_tr = _as_labels(pred_train, len(z_train), "pred_train")
    y_te = _as_labels(y_test, len(z_test), "y_test")
    p_te = _as_labels(pred_test, len(z_test), "pred_test")
    ok = y_tr == p_tr
    if not ok.any():
        raise InputError("no correctly classified training example to fit the Gaussians on")
    gauss = fit_class_gaussians(z_train[ok], y_tr[ok], shrinkage=shrinkage)
    dist = mahalanobis_scores(gauss, z_test, p_te)
    dist = np.where(np.isfinite(dist), dist, np.finfo(np.float64).max)
    return auroc(y_te == p_te, -dist)


# --------------------------------------------------------------------- hash view
def within_class_redundancy(codes, labels) -> float:
    """Mean over classes of the redundancy ratio of the codes of that class (1 − distinct
    codes / class size); near 1 when each class shares a few codes."""
    from acthash.codes import as_codes
    from acthash.properties import redundancy_ratio

    codes = as_codes(codes)
    y = _as_labels(labels, len(codes), "labels")
    return float(np.mean([redundancy_ratio(codes[np.flatnonzero(y == k)]) for k in np.unique(y)]))


def hash_view(z_train, y_train, z_test, y_test, *, threshold: float = 0.0, **kwargs) -> dict:
    """Encoding properties (He et al.) of the binary code z > threshold, plus
    ``within_class_redundancy_{train,test}``. ``kwargs`` go to
    :func:`acthash.properties.encoding_properties` (k, seed, kmeans_n_init, ...)."""
    from acthash.codes import NeuralCodes
    from acthash.properties import encoding_properties

    z_train, z_test = as_numpy(z_train, "z_train"), as_numpy(z_test, "z_test")
    y_tr = _as_labels(y_train, len(z_train), "y_train")
    y_te = _as_labels(y_test, len(z_test), "y_test")
    tr = NeuralCodes.from_bits(binarize(z_train, threshold), labels=y_tr)
    te = NeuralCodes.from_bits(binarize(z_test, threshold), labels=y_te)
    with warnings.catch_warnings():
        # few distinct codes: K-Means warns that it found fewer clusters than asked for
        warnings.simplefilter("ignore", category=Warning)
        rec = encoding_properties(tr, None, te, None, **kwargs)
    rec["within_class_redundancy_train"] = within_class_redundancy(tr, y_tr)
    rec["within_class_redundancy_test"] = within_class_redundancy(te, y_te)
    return rec
