"""Adversarial robustness: batched DeepFool (minimal L2 perturbation), FGSM and PGD (L∞)."""

from __future__ import annotations

import torch
from torch import nn

from acthash._utils.run import progress_bar
from acthash.errors import InputError


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
    (1 + overshoot) at the end. The label is checked before every step and after the last
    one, so ``flipped`` is exactly ``model(x + r).argmax(1) != model(x).argmax(1)``.
    Returns ``(r, flipped, iterations)``: r (N, ...) float32 perturbations on the CPU,
    flipped (N,) bool (the label changed within max_iter), iterations (N,) int.
    """
    x = torch.as_tensor(x).float()
    device = _model_device(model)
    was_training = model.training
    model.eval()
    rs, flips, iters = [], [], []
    starts = progress_bar(range(0, len(x), batch_size), enabled=progress, desc="deepfool",
                          unit="batch")
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
    else:
        # max_iter steps taken: the label after the last step has not been looked at yet
        if len(active):
            xa = (flat[active] + (1 + overshoot) * r_tot[active]).reshape(
                len(active), *x0.shape[1:])
            with torch.no_grad():
                flipped[active] = model(xa).argmax(1) != k0[active]
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

