"""The ``"structured"`` NTK method: layer inputs a and output gradients δ from batched
forward/backward passes, no full Jacobian (see :mod:`acthash.spectrum.ntk`).

Linear layers used once at one position contribute in Hadamard form (δδᵀ)∘(aaᵀ + 1);
Conv1d/Conv2d layers and Linear layers used at several positions or calls through their
per-example gradients Σ_t δ_t a_tᵀ. Parameters outside those layers go through the
Jacobian path (:func:`_gram_rest`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from acthash.spectrum._gram import (
    _chunks,
    _gram_jacobian,
    _gram_loop,
    _sym_block,
    _tiled_gram,
)

if TYPE_CHECKING:
    from acthash.spectrum.plan import NTKPlan, _Layer


def _conv_pads(m: nn.Module) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dimension, as the layer applies it; ``"same"``
    puts the odd element after, as PyTorch does."""
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return [(0, 0)] * len(m.kernel_size)
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                for k, d in zip(m.kernel_size, m.dilation, strict=True)]
    return [(p, p) for p in m.padding]


def _conv_input(m: nn.Module, a: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """The input padded as far as the padding cannot be left to a convolution (padding
    modes other than zeros, asymmetric ``"same"``), and the symmetric zero padding left."""
    pads = _conv_pads(m)
    if m.padding_mode == "zeros" and all(lo == hi for lo, hi in pads):
        return a, [lo for lo, _ in pads]
    flat = [v for lr in reversed(pads) for v in lr]  # F.pad wants the last dimension first
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    return F.pad(a, flat, mode=mode), [0] * len(pads)


def _patches(m: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """Unfolded input patches of a Conv1d/Conv2d call: (n, C_in·K, L), K = kernel size,
    L = output positions; the rows are ordered as the weight's (C_in, *kernel) axes."""
    a, pad = _conv_input(m, a)
    if a.dim() == 3:  # Conv1d as a Conv2d over a height-1 image
        return F.unfold(a.unsqueeze(2), (1, m.kernel_size[0]), dilation=(1, m.dilation[0]),
                        padding=(0, pad[0]), stride=(1, m.stride[0]))
    return F.unfold(a, m.kernel_size, dilation=m.dilation, padding=pad, stride=m.stride)


def _conv_weight_grads(m: nn.Module, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-example weight gradients (n, C_out·C_in/G·K) of one convolution call, as the
    weight gradient of one convolution whose groups are the n examples times the layer's
    G groups (the batch folded into the channels): no patch matrix is formed."""
    n = a.shape[0]
    a, pad = _conv_input(m, a)
    w = m.weight
    shape = (n * w.shape[0], *w.shape[1:])
    gw = torch.ops.aten.convolution_backward(
        g.reshape(1, n * g.shape[1], *g.shape[2:]), a.reshape(1, n * a.shape[1], *a.shape[2:]),
        w.new_empty(shape), None, list(m.stride), pad, list(m.dilation), False,
        [0] * len(pad), n * m.groups, [False, True, False])[1]
    return gw.reshape(n, -1)


def _call_grads(layer: _Layer, a: torch.Tensor, g: torch.Tensor):
    """Per-example parameter gradients of one call of a layer.

    a : the call's input; g : ∂f_c/∂(call's output), same shape as the output.
    Returns (n, P_w) weight gradients (weight layout flattened) or None, and (n, P_b) bias
    gradients or None."""
    m, n = layer.module, a.shape[0]
    if isinstance(m, nn.Linear):
        a3 = a.reshape(n, -1, a.shape[-1])  # (n, L, in)
        g3 = g.reshape(n, -1, g.shape[-1])  # (n, L, out)
        w = None
        if layer.p_w and a3.shape[1] == 1:  # one position: the outer product g aᵀ
            w = (g3[:, 0, :, None] * a3[:, 0, None, :]).reshape(n, -1)
        elif layer.p_w:
            w = torch.matmul(g3.transpose(1, 2), a3).reshape(n, -1)
        b = g3.sum(1) if layer.p_b else None
        return w, b
    w = _conv_weight_grads(m, a, g) if layer.p_w else None
    b = g.reshape(n, g.shape[1], -1).sum(-1) if layer.p_b else None
    return w, b


def _hadamard_parts(layer: _Layer, a: torch.Tensor, g: torch.Tensor):
    """(n, d_in) layer input and (n, d_out) output gradient of a layer used once at one
    position: its weight gradient is the outer product g aᵀ."""
    n = a.shape[0]
    if not isinstance(layer.module, nn.Linear):
        a = _patches(layer.module, a)
    return a.reshape(n, -1), g.reshape(n, -1)


def _features(model: nn.Module, xs: torch.Tensor, plan: NTKPlan):
    """Structured features of the examples ``xs`` (processed in batches of
    ``plan.batch_size``): J, per-example gradients of the layers in gradient form as a list
    of pieces (one per weight or bias), each a list over the C outputs of (n, P_piece)
    tensors; and H, per layer in Hadamard form its inputs A (n, d_in) and gradients
    D (C, n, d_out)."""
    C, n = plan.n_out, len(xs)
    grad_layers = [ly for ly in plan.layers if not ly.hadamard]
    had_layers = [ly for ly in plan.layers if ly.hadamard]
    batches = _chunks(n, plan.batch_size)
    # pieces[k][c]: list of per-batch tensors, concatenated at the end
    pieces = [[[] for _ in range(C)] for ly in grad_layers for w in (ly.p_w, ly.p_b) if w]
    like = {"dtype": plan.dtype, "device": xs.device}
    H = [(torch.empty(n, ly.d_in, **like), torch.empty(C, n, ly.d_out, **like))
         for ly in had_layers]
    calls: dict[str, list] = {}
    copy_mode = [False]  # set once an in-place op changed a captured tensor

    def hook(mod, inp, out, name):
        a = inp[0].detach()
        if copy_mode[0]:  # the layer output the backward differentiates must stay unchanged
            calls[name].append((a.clone(), out, 0, 0))
            return out.clone()
        calls[name].append((a, out, a._version, out._version))
        return None

    def run_batch(s):
        for ly in plan.layers:
            calls[ly.name] = []
        out = model(xs[s]).reshape(len(xs[s]), -1)
        if any(len(calls[ly.name]) != ly.calls for ly in plan.layers):
            raise _PlanMismatch("layer calls differ from the probe")
        changed = any(a._version != va or z._version != vz
                      for ly in plan.layers for a, z, va, vz in calls[ly.name])
        return out, changed

    handles = [ly.module.register_forward_hook(lambda mo, i, o, nm=ly.name: hook(mo, i, o, nm))
               for ly in plan.layers]
    try:
        for s in batches:
            with torch.enable_grad():
                out, changed = run_batch(s)
                if changed and not copy_mode[0]:  # in-place ops: redo keeping copies
                    copy_mode[0] = True
                    out, _ = run_batch(s)
                seq = [(ly, k) for ly in plan.layers for k in range(len(calls[ly.name]))]
                zs = [calls[ly.name][k][1] for ly, k in seq]
                for c in range(C):
                    grads = torch.autograd.grad(out[:, c].sum(), zs, retain_graph=c + 1 < C,
                                                allow_unused=True)
                    per: dict[str, list] = {}
                    for (ly, _), z, g in zip(seq, zs, grads, strict=True):
                        per.setdefault(ly.name, []).append(torch.zeros_like(z) if g is None
                                                           else g.detach())
                    k = 0
                    for ly in grad_layers:
                        parts = [_call_grads(ly, a, g) for (a, *_), g in
                                 zip(calls[ly.name], per[ly.name], strict=True)]
                        for j, width in enumerate((ly.p_w, ly.p_b)):
                            if not width:
                                continue
                            tot = parts[0][j]
                            for extra in parts[1:]:  # a layer called several times
                                tot = tot + extra[j]
                            pieces[k][c].append(tot)
                            k += 1
                    for ly, (A, D) in zip(had_layers, H, strict=True):
                        a, d = _hadamard_parts(ly, calls[ly.name][0][0], per[ly.name][0])
                        if c == 0:
                            A[s] = a
                        D[c, s] = d
            del out, zs
    finally:
        for h in handles:
            h.remove()
    J = [[bs[0] if len(bs) == 1 else torch.cat(bs) for bs in piece] for piece in pieces]
    return J, H


class _PlanMismatch(RuntimeError):
    """The forward pass of a batch used the layers differently from the one-example probe."""


def _row_blocks(n1: int, sym: bool) -> list[tuple[int, int]]:
    """Row blocks (lo, hi) of a kernel tile; for a symmetric tile each block needs only the
    columns from ``lo`` on (about 8 blocks: 56 % of the work), the rest is mirrored."""
    block = _sym_block(n1)
    if not sym or n1 < 2 * block:
        return [(0, n1)]
    return [(lo, min(lo + block, n1)) for lo in range(0, n1, block)]


def _kernel_from_features(plan: NTKPlan, f1, f2, sym: bool) -> torch.Tensor:
    """(C, n1, n2) per-logit kernel block from the structured features of two chunks,
    accumulated block row by block row: per-example-gradient pieces by J₁ J₂ᵀ, each
    Hadamard-form layer by (D₁D₂ᵀ)∘(A₁A₂ᵀ + 1)."""
    (J1, H1), (J2, H2) = f1, f2
    C = plan.n_out
    first = J1[0][0] if J1 else H1[0][0]
    n1 = first.shape[0]
    n2 = (J2[0][0] if J2 else H2[0][0]).shape[0]
    out = torch.zeros(C, n1, n2, dtype=plan.dtype, device=first.device)
    had_layers = [ly for ly in plan.layers if ly.hadamard]
    blocks = _row_blocks(n1, sym)
    mirror = len(blocks) > 1
    for lo, hi in blocks:
        c0 = lo if mirror else 0  # first column this block row needs
        for p1, p2 in zip(J1, J2, strict=True):
            for c in range(C):
                out[c, lo:hi, c0:].addmm_(p1[c][lo:hi], p2[c][c0:].T)
        for ly, (A1, D1), (A2, D2) in zip(had_layers, H1, H2, strict=True):
            aa = None
            if ly.p_w:
                aa = A1[lo:hi] @ A2[c0:].T
                if ly.p_b:
                    aa += 1.0  # bias gradient = δ: (δδᵀ)∘(aaᵀ) + δδᵀ = (δδᵀ)∘(aaᵀ + 1)
            for c in range(C):
                dd = D1[c, lo:hi] @ D2[c, c0:].T
                if aa is None:
                    out[c, lo:hi, c0:] += dd
                else:
                    out[c, lo:hi, c0:].addcmul_(dd, aa)
    if mirror:  # below the diagonal blocks: the transpose of the part above
        for lo, hi in blocks[:-1]:
            out[:, hi:, lo:hi] = out[:, lo:hi, hi:].transpose(1, 2)
    return out


def _gram_structured(model, x, x2, plan: NTKPlan):
    """(C, N1, N2) per-logit blocks of the Linear/Conv parameters: structured features per
    chunk, contracted chunk pair by chunk pair (tiled as the Jacobian method). The other
    parameters (``plan.rest``) are added by the caller through :func:`_gram_rest`."""
    sym = x2 is None
    other = x if sym else x2
    out = None
    if plan.layers:
        def block(s1, s2, f1):
            same = sym and s1 == s2
            f2 = f1 if same else _features(model, other[s2], plan)
            return _kernel_from_features(plan, f1, f2, same)

        out = _tiled_gram(x, x2, plan.chunk_size, block,
                          lambda s1: _features(model, x[s1], plan))
    if out is None:
        n2 = len(other)
        out = torch.zeros(plan.n_out, len(x), n2, dtype=plan.dtype, device=x.device)
    return out


def _gram_rest(model, x, x2, chunk_size, rest):
    try:
        return _gram_jacobian(model, x, x2, chunk_size, names=rest)
    except RuntimeError as e:  # some ops have no vmap rule (e.g. prelu in torch 2.x)
        warnings.warn(f"torch.func could not batch the Jacobian of {rest} ({e}); "
                      "falling back to a per-example loop for those parameters",
                      RuntimeWarning, stacklevel=3)
        return _gram_loop(model, x, x2, names=rest)


def _structured_agrees(model, x, x2, blocks: torch.Tensor, plan: NTKPlan) -> bool:
    """Check one entry of the structured part of the kernel against one autograd pass per
    example (x[0] with itself, or with x2[0]): a layer whose weight is also used outside the layer, a model that mixes the
    examples of a batch, or an in-place change of a layer's output would show up here."""
    names = [k for ly in plan.layers for k in ly.param_names]
    if not names:
        return True
    if x2 is None:  # the diagonal entry of the first example
        ref = _gram_loop(model, x[:1], None, names=names)[:, 0, 0]
        got, scale = blocks[:, 0, 0], ref.abs()
    else:  # the entry of the first examples of x and x2
        ref = _gram_loop(model, torch.cat([x[:1], x2[:1]]), None, names=names)
        scale = (ref[:, 0, 0].abs() * ref[:, 1, 1].abs()).sqrt()
        got, ref = blocks[:, 0, 0], ref[:, 0, 1]
    tol = 8 * torch.finfo(ref.dtype).eps ** 0.5
    return bool(((got - ref).abs() <= tol * scale + torch.finfo(ref.dtype).tiny).all())
