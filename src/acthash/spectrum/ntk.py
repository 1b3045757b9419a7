"""Empirical neural tangent kernel (gradient-similarity kernel) of any ``nn.Module``.

For a network f(x; θ) with C outputs and N inputs x₁..x_N, the Jacobian J has rows
∂f_c(x_n)/∂θ. The Gram matrix is G = J Jᵀ:

- ``output="scalar"``: f has one output; G is (N, N) with G[n, m] = ∇θf(x_n)·∇θf(x_m).
- ``output="per-logit"``: one kernel per output c, G[c, n, m] = ∇θf_c(x_n)·∇θf_c(x_m),
  shape (C, N, N).
- ``output="trace"``: the sum over outputs of the per-logit kernels, (N, N).

Four methods, equal up to round-off:

- ``"jacobian"``: per-example Jacobians with ``torch.func`` (``vmap`` of ``jacrev``), then
  contracted; memory grows as N·C·P (P = number of parameters) per chunk.
- ``"ntk-vp"``: NTK-vector products with ``torch.func``: ``vjp`` of a chunk's outputs with
  each basis vector, then ``jvp`` of the other chunk's outputs along it (``vmap`` over the
  basis); it never contracts a Jacobian but costs about N²·P work.
- ``"structured"``: never forms the full Jacobian. For a Linear layer z = W a + b the
  gradient of f(x_n) w.r.t. W is δ_n a_nᵀ, with δ_n = ∂f(x_n)/∂z_n, so a layer used once at
  one position contributes (δδᵀ) ∘ (aaᵀ + 1) (Hadamard form, with the bias). The layer
  inputs a come from one batched forward pass and the δ from one batched backward pass per
  output (examples are independent in eval mode, so the gradient of Σ_n f(x_n) w.r.t. z_n
  is δ_n). Conv1d/Conv2d layers (any stride, padding, padding mode, dilation, groups) and
  Linear layers used at several positions or calls contribute through their per-example
  gradients Σ_t δ_t a_tᵀ (N x that layer's parameters); for a convolution these are the
  weight gradient of one convolution whose groups are the examples. Symmetric products
  are computed in row blocks on and above the diagonal. Any other parameter (PReLU, norms,
  embeddings, ...) goes through the ``"jacobian"`` path restricted to those parameters (a
  per-example loop where ``vmap`` cannot batch them).
- ``"loop"``: reference, one ``torch.autograd.grad`` per example and output.

``method="auto"`` estimates every method's multiply-adds, memory and time from one probe
forward pass (layer shapes, N, P) and runs the fastest that fits a memory budget
(:func:`choose_method`, :class:`NTKPlan`). A structured kernel is checked against one
autograd pass on one example and recomputed by the Jacobian path if they disagree.

The kernel is always evaluated with the model in eval mode (a BatchNorm in training mode
would couple the examples of a batch); the model's mode is restored afterwards. Parameters
with ``requires_grad=False`` are left out.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from acthash.errors import InputError, ResourceError

logger = logging.getLogger(__name__)

__all__ = ["ntk", "ntk_loop", "METHODS", "OUTPUTS", "choose_method", "NTKPlan", "MethodEstimate"]

METHODS = ("auto", "structured", "jacobian", "ntk-vp", "loop")
OUTPUTS = ("auto", "scalar", "trace", "per-logit")


# ---------------------------------------------------------------------------------------
# helpers


def _check(model, x, x2, output, method):
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be an nn.Module, got {type(model).__name__}")
    for name, t in (("x", x), ("x2", x2)):
        if t is not None and (not isinstance(t, torch.Tensor) or t.dim() < 1 or len(t) == 0):
            raise InputError(f"{name} must be a non-empty tensor of shape (N, *input_shape)")
    if x2 is not None and x2.shape[1:] != x.shape[1:]:
        raise InputError(f"x has examples of shape {tuple(x.shape[1:])} but x2 has "
                         f"{tuple(x2.shape[1:])}; both must match the model's input")
    if output not in OUTPUTS:
        raise InputError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise InputError("the model has no trainable parameters (requires_grad=True); "
                         "the NTK is empty")
    return params


def _resolve_output(output: str, n_out: int) -> str:
    if output == "auto":
        return "scalar" if n_out == 1 else "trace"
    if output == "scalar" and n_out != 1:
        raise InputError(f"output='scalar' needs a model with one output, this one has "
                         f"{n_out}; use output='trace' or 'per-logit'")
    return output


def _finish(blocks: torch.Tensor, output: str) -> torch.Tensor:
    """(C, N1, N2) per-logit blocks -> the requested kernel."""
    if output == "per-logit":
        return blocks
    return blocks.sum(0)


def _chunks(n: int, size: int | None) -> list[slice]:
    size = n if not size else int(size)
    if size < 1:
        raise InputError(f"chunk_size must be a positive integer or None, got {size}")
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]


class _EvalMode:
    """Context: the model in eval mode, optionally a float64 copy; restores the mode."""

    def __init__(self, model: nn.Module, dtype: torch.dtype | None):
        self.orig, self.dtype = model, dtype

    def __enter__(self) -> nn.Module:
        self.was_training = self.orig.training
        model = self.orig
        p = next(iter(model.parameters()), None)
        if self.dtype is not None and p is not None and p.dtype != self.dtype:
            model = copy.deepcopy(model).to(self.dtype)
        model.eval()
        self.model = model
        return model

    def __exit__(self, *exc) -> None:
        self.orig.train(self.was_training)


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None else torch.get_default_dtype()


def _single_fn(model: nn.Module, buffers: dict):
    """f(params, x_single) -> (C,) outputs for one example."""

    def f(params, x1):
        out = functional_call(model, (params, buffers), (x1.unsqueeze(0),))
        return out.reshape(-1)

    return f


# ---------------------------------------------------------------------------------------
# method 1: Jacobian contraction


def _tiled_gram(x, x2, chunk_size, block, row_state=None):
    """Assemble a (C, N1, N2) kernel from chunk-pair blocks ``block(s1, s2, state)``.

    With ``x2 is None`` the kernel is symmetric: only blocks on or above the diagonal are
    computed and mirrored. ``row_state(s1)``, when given, is computed once per row chunk and
    passed to ``block`` (e.g. that chunk's Jacobian)."""
    sym = x2 is None
    n2 = len(x) if sym else len(x2)
    c1 = _chunks(len(x), chunk_size)
    c2 = c1 if sym else _chunks(n2, chunk_size)
    out = None
    for i, s1 in enumerate(c1):
        state = row_state(s1) if row_state is not None else None
        for j, s2 in enumerate(c2):
            if sym and j < i:
                continue
            blk = block(s1, s2, state)
            if out is None:
                out = blk.new_zeros(blk.shape[0], len(x), n2)
            out[:, s1, s2] = blk
            if sym and j != i:
                out[:, s2, s1] = blk.transpose(1, 2)
    return out


def _jacobian_rows(f, params, x):
    """Per-example Jacobians: dict name -> (n, C, P_name)."""
    jac = vmap(jacrev(f), (None, 0))(params, x)
    return {k: v.reshape(v.shape[0], v.shape[1], -1) for k, v in jac.items()}


def _gram_jacobian(model, x, x2, chunk_size, names: Sequence[str] | None = None):
    """(C, N1, N2) per-logit blocks by the Jacobian-contraction recipe."""
    params_all = _params(model)
    names = list(params_all) if names is None else list(names)
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    fixed = {k: v for k, v in params_all.items() if k not in names}
    free = {k: params_all[k] for k in names}

    def f(p, x1):
        return _single_fn(model, buffers)({**fixed, **p}, x1)

    sym = x2 is None
    other = x if sym else x2

    def block(s1, s2, j1):
        j2 = j1 if (sym and s1 == s2) else _jacobian_rows(f, free, other[s2])
        return sum(torch.einsum("ncp,mcp->cnm", j1[k], j2[k]) for k in names)

    return _tiled_gram(x, x2, chunk_size, block, lambda s1: _jacobian_rows(f, free, x[s1]))


# ---------------------------------------------------------------------------------------
# method 2: NTK-vector products


def _gram_ntkvp(model, x, x2, chunk_size):
    """(C, N1, N2) per-logit blocks by NTK-vector products: for a chunk of rows, ``vjp`` of
    the batched outputs with each basis vector e_(n,c) gives ∇θf_c(x_n), and ``jvp`` of the
    batched outputs on the column chunk along it gives row (n, c) of the block."""
    params = _params(model)
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def fb(p, xs):
        out = functional_call(model, (p, buffers), (xs,))
        return out.reshape(len(xs), -1)

    def block(x1, x2_):
        out, vjp_fn = vjp(lambda p: fb(p, x1), params)
        n1, c = out.shape
        basis = torch.eye(n1 * c, dtype=out.dtype, device=out.device).reshape(n1 * c, n1, c)

        def row(v):
            (g,) = vjp_fn(v)
            _, t = jvp(lambda p: fb(p, x2_), (params,), (g,))
            return t  # (n2, C)

        res = vmap(row)(basis).reshape(n1, c, len(x2_), c)
        return res.diagonal(dim1=1, dim2=3).permute(2, 0, 1)  # (C, n1, n2)

    other = x if x2 is None else x2
    return _tiled_gram(x, x2, chunk_size, lambda s1, s2, _: block(x[s1], other[s2]))


# ---------------------------------------------------------------------------------------
# method 3: structured (layer inputs a and output gradients δ, no full Jacobian)

_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _supported(m: nn.Module) -> bool:
    """Linear, Conv1d and Conv2d (any stride, padding, padding mode, dilation, groups);
    subclasses may change ``forward``, so only these exact types qualify."""
    return type(m) in _LAYER_TYPES


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


def _sym_block(n: int) -> int:
    """Row-block size of the symmetric product: about 8 blocks, at least 48 rows each."""
    return max(48, -(-n // 8))


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


# ---------------------------------------------------------------------------------------
# reference: per-example autograd loop


def _gram_loop(model, x, x2, names: Sequence[str] | None = None):
    named = dict(model.named_parameters())
    names = list(_params(model)) if names is None else list(names)
    params = [named[k] for k in names]

    def rows(xs):
        js = []
        for i in range(len(xs)):
            out = model(xs[i : i + 1]).reshape(-1)
            per_c = []
            for c in range(out.numel()):
                g = torch.autograd.grad(out[c], params, retain_graph=c + 1 < out.numel(),
                                        allow_unused=True)
                per_c.append(torch.cat([(gi if gi is not None else torch.zeros_like(p))
                                        .reshape(-1) for gi, p in zip(g, params, strict=True)]))
            js.append(torch.stack(per_c))
        return torch.stack(js)  # (N, C, P)

    with torch.enable_grad():
        j1 = rows(x)
        j2 = j1 if x2 is None else rows(x2)
    return torch.einsum("ncp,mcp->cnm", j1, j2)


def ntk_loop(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, *,
             output: str = "auto", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Reference NTK: one ``torch.autograd.grad`` per example and output, then J Jᵀ.

    Slow; for tests and benchmarks. Same arguments and result as :func:`ntk`.
    """
    return ntk(model, x, x2, output=output, method="loop", dtype=dtype)


# ---------------------------------------------------------------------------------------
# cost model for method="auto"

#: multiply-adds per second of one CPU thread in dense kernels (a nominal figure: only the
#: ratios between the methods' estimates decide, and the fixed per-call overheads below)
_MACS_PER_S = 2.5e10
_TRANSIENT_BYTES = 256 * 2**20  # structured: bound on one feature batch's scratch memory


@dataclass
class _Layer:
    """A Linear/Conv layer as seen by the one-example probe (all sizes per example)."""

    name: str
    module: nn.Module = field(repr=False)
    calls: int  # times the forward pass calls it (weight sharing)
    positions: int  # output positions L summed over the calls
    d_in: int  # input features per position (Linear: in_features; conv: C_in·kernel size)
    d_out: int  # output features per position
    groups: int
    p_w: int  # trainable weight entries (0 if frozen)
    p_b: int  # trainable bias entries
    macs: int  # forward multiply-adds
    param_names: tuple[str, ...]
    hadamard: bool = False  # kernel as (δδᵀ)∘(aaᵀ) instead of per-example gradients


@dataclass
class MethodEstimate:
    """Estimated cost of one method: ``macs`` multiply-adds, ``bytes`` peak memory,
    ``seconds`` (from a nominal single-thread speed plus per-call overheads; for ranking),
    the ``chunk_size`` it would run with (None = all examples at once) and whether it
    ``fits`` the memory budget."""

    method: str
    macs: float
    bytes: float
    seconds: float
    chunk_size: int | None
    fits: bool


@dataclass
class NTKPlan:
    """What :func:`ntk` runs and why: the ``method`` (after ``"auto"``), the ``requested``
    one, ``chunk_size`` (examples per kernel tile), ``batch_size`` (examples per structured
    feature batch), ``memory_budget`` (bytes), the ``estimates`` of every method, ``n_out``
    outputs, ``n_params`` trainable parameters, the structured layers and the parameters
    left to the Jacobian path (``rest``), and a one-line ``note`` (fallbacks)."""

    method: str
    requested: str
    chunk_size: int | None
    batch_size: int
    memory_budget: int
    estimates: dict[str, MethodEstimate]
    n_out: int
    n_params: int
    dtype: torch.dtype
    layers: list[_Layer] = field(default_factory=list, repr=False)
    rest: list[str] = field(default_factory=list)
    note: str = ""

    def summary(self) -> str:
        """One line: the choice and every estimate."""
        est = ", ".join(f"{e.method} {e.seconds:.3g} s/{e.bytes / 2**20:.0f} MiB"
                        + ("" if e.fits else " (over budget)") for e in self.estimates.values())
        chunk = "all" if self.chunk_size is None else self.chunk_size
        line = (f"ntk: method={self.method} ({self.requested}), chunk_size={chunk}; estimates: "
                f"{est}; budget {self.memory_budget / 2**20:.0f} MiB")
        return line + (f"; {self.note}" if self.note else "")


def _default_budget(device: torch.device) -> int:
    """Half the memory available now (CPU: MemAvailable; CUDA: free device memory), at
    most 16 GiB; 4 GiB when it cannot be read."""
    try:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return int(min(0.8 * free, 16 * 2**30))
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(min(0.5 * int(line.split()[1]) * 1024, 16 * 2**30))
    except (OSError, RuntimeError, ValueError):
        pass
    return 4 * 2**30


def _probe(model: nn.Module, x: torch.Tensor):
    """One no-grad forward pass on one example: output count, the Linear/Conv layers that
    take part, forward multiply-adds and activation entries per example, and the trainable
    parameters outside those layers."""
    seen: dict[str, list] = {}
    leaf_out = [0]
    handles = []
    mods = dict(model.named_modules())
    for name, m in mods.items():
        if _supported(m):
            seen[name] = []
            handles.append(m.register_forward_hook(
                lambda mo, i, o, nm=name: seen[nm].append((tuple(i[0].shape), tuple(o.shape)))))
        if not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(
                lambda mo, i, o: leaf_out.__setitem__(0, leaf_out[0] + (
                    o.numel() if isinstance(o, torch.Tensor) else 0))))
    try:
        with torch.no_grad():
            out = model(x[:1])
    finally:
        for h in handles:
            h.remove()
    n_out = int(math.prod(out.shape[1:])) if out.dim() > 1 else 1
    params = _params(model)
    layers, covered, macs = [], set(), 0
    for name, shapes in seen.items():
        m = mods[name]
        own = [(f"{name}.{pn}" if name else pn, p) for pn, p in m.named_parameters(recurse=False)
               if p.requires_grad]
        if not shapes or not own:
            continue
        if isinstance(m, nn.Linear):
            d_in, d_out, groups, k = m.in_features, m.out_features, 1, 1
            pos = sum(math.prod(o) // d_out for _, o in shapes)
        else:
            k = math.prod(m.kernel_size)
            d_in, d_out, groups = m.in_channels * k, m.out_channels, m.groups
            pos = sum(math.prod(o[2:]) for _, o in shapes)
        p_w = m.weight.numel() if m.weight.requires_grad else 0
        p_b = m.bias.numel() if m.bias is not None and m.bias.requires_grad else 0
        layer_macs = pos * d_out * d_in // groups
        macs += layer_macs
        layers.append(_Layer(name, m, len(shapes), pos, d_in, d_out, groups, p_w, p_b,
                             layer_macs, tuple(n for n, _ in own)))
        covered.update(n for n, _ in own)
    rest = [k for k in params if k not in covered]
    flops_rest = sum(params[k].numel() for k in rest)  # at least one MAC per parameter
    return n_out, layers, macs + flops_rest + leaf_out[0], leaf_out[0], rest, params


def _sym_fraction(n: int, chunk: int, blocked: bool) -> float:
    """Fraction of the N² kernel entries a symmetric computation evaluates: tiles on and
    above the diagonal, and (``blocked``, :func:`_row_blocks`) row blocks within a tile."""
    k = -(-n // chunk)
    c = min(n, chunk)
    fb = 1.0  # fraction evaluated within a diagonal tile
    if blocked and c >= 2 * _sym_block(c):
        kb = -(-c // _sym_block(c))
        fb = 0.5 * (1 + 1 / kb)
    return (fb + (k - 1) / 2) / k


def _estimates(layers, rest, params, fwd, act, n_out, n1, n2, sym, itemsize,
               chunk_size, budget) -> tuple[dict[str, MethodEstimate], int]:
    """Every method's estimate, and the structured scratch bytes per example of a batch."""
    C = n_out
    P = sum(p.numel() for p in params.values())
    p_rest = sum(params[k].numel() for k in rest)
    n_max = max(n1, n2)
    for ly in layers:  # Hadamard form when its per-entry work is smaller than C·P_layer
        had = ly.calls == 1 and ly.positions == 1 and ly.groups == 1 and ly.p_w > 0
        ly.hadamard = had and ly.d_in + C * (ly.d_out + 1) < C * (ly.p_w + ly.p_b)
    grad = [ly for ly in layers if not ly.hadamard]
    had = [ly for ly in layers if ly.hadamard]
    p_grad = sum(ly.p_w + ly.p_b for ly in grad)
    per_entry_struct = C * p_grad + sum(ly.d_in + C * (ly.d_out + 2) for ly in had)
    transient = (3 + C) * act + 2 * C * p_grad  # per example in a feature batch
    out_bytes = C * n1 * n2 * itemsize

    def tiles(c):
        """(examples whose features are computed, kernel entries, feature calls)."""
        k1 = -(-n1 // c)
        if sym:
            ex = n1 + c * k1 * (k1 - 1) / 2
            return ex, k1, k1 + k1 * (k1 - 1) / 2
        k2 = -(-n2 // c)
        return n1 + k1 * n2, k1, k1 + k1 * k2

    def entries(c, blocked):
        return n1 * n2 * (_sym_fraction(n1, c, blocked) if sym else 1.0)

    def structured(c):
        ex, _, calls = tiles(c)
        batch = max(1, min(c, int(_TRANSIENT_BYTES // max(1, transient * itemsize))))
        macs = ex * (fwd + C * fwd + C * sum(ly.positions * ly.p_w for ly in grad))
        macs += entries(c, True) * per_entry_struct
        sec = macs / _MACS_PER_S + calls * (5e-4 + 5e-5 * C * len(layers))
        sec += -(-ex // batch) * 2e-4 * C
        sec += (1 if sym else 2) * loop_example  # the gradient check (_structured_agrees)
        mem = (out_bytes + 2 * c * (C * p_grad + sum(ly.d_in + C * ly.d_out for ly in had))
               * itemsize + C * c * c * itemsize + batch * transient * itemsize)
        if rest:
            m2, mem2, s2 = jacobian(c, p_rest)
            macs, sec, mem = macs + m2, sec + s2, max(mem, mem2)
        return macs, mem, sec, batch

    def jacobian(c, p=P):
        ex, _, calls = tiles(c)
        macs = ex * 1.5 * (fwd + 2 * C * fwd) + entries(c, False) * C * p
        sec = macs / _MACS_PER_S + calls * 4e-3
        mem = out_bytes + (2 * C * p + (1 + C) * act) * c * itemsize + C * c * c * itemsize
        return macs, mem, sec

    def ntkvp(c):
        ex, _, calls = tiles(c)
        macs = 4 * fwd * C * entries(c, False) + ex * 3 * fwd
        sec = macs / _MACS_PER_S + calls * 1e-2
        mem = out_bytes + c * C * (P + c * act) * itemsize
        return macs, mem, sec

    loop_example = 2 * (fwd + 2 * C * fwd) / _MACS_PER_S + C * 2e-4  # seconds

    def loop():
        ex = n1 + (0 if sym else n2)
        macs = ex * 2 * (fwd + 2 * C * fwd) + n1 * n2 * C * P
        sec = macs / _MACS_PER_S + ex * C * 2e-4
        mem = out_bytes + ex * C * P * itemsize + act * itemsize * 4
        return macs, mem, sec

    def fit(fn):
        """(chunk, result) with the given chunk_size, or the largest chunk that fits."""
        if chunk_size is not None:
            c = min(int(chunk_size), n_max)
            return c, fn(c)
        r = fn(n_max)
        if r[1] <= budget:
            return None, r
        lo, hi = 1, n_max - 1
        if fn(1)[1] > budget:
            return 1, fn(1)
        while lo < hi:  # memory grows with the chunk: largest chunk within the budget
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fn(mid)[1] <= budget else (lo, mid - 1)
        return lo, fn(lo)

    est = {}
    if layers:
        c, (macs, mem, sec, _) = fit(structured)
        est["structured"] = MethodEstimate("structured", macs, mem, sec, c, mem <= budget)
    for name, fn in (("jacobian", jacobian), ("ntk-vp", ntkvp)):
        c, (macs, mem, sec) = fit(fn)
        est[name] = MethodEstimate(name, macs, mem, sec, c, mem <= budget)
    macs, mem, sec = loop()
    est["loop"] = MethodEstimate("loop", macs, mem, sec, None, mem <= budget)
    return est, transient * itemsize


def _plan(model, x, x2, output, method, chunk_size, memory_budget) -> tuple[NTKPlan, str]:
    """Probe the model, estimate every method, pick one (``method='auto'``)."""
    requested = method
    n_out, layers, fwd, act, rest, params = _probe(model, x)
    output = _resolve_output(output, n_out)
    dtype = _model_dtype(model)
    budget = int(memory_budget) if memory_budget is not None else _default_budget(x.device)
    n1, n2 = len(x), len(x) if x2 is None else len(x2)
    itemsize = torch.empty((), dtype=dtype).element_size()
    est, per_example = _estimates(layers, rest, params, fwd, act, n_out, n1, n2, x2 is None,
                            itemsize, chunk_size, budget)
    note = ""
    if method == "auto":
        fitting = [e for e in est.values() if e.fits]
        if not fitting:
            best = min(est.values(), key=lambda e: e.bytes)
            raise ResourceError(
                f"no NTK method fits memory_budget={budget / 2**20:.0f} MiB for {n1}x{n2} "
                f"inputs, {n_out} output(s) and {sum(p.numel() for p in params.values())} "
                f"parameters: the smallest estimate is {best.bytes / 2**20:.0f} MiB "
                f"({best.method}, chunk_size={best.chunk_size}; the kernel alone needs "
                f"{n_out * n1 * n2 * itemsize / 2**20:.0f} MiB). Pass a smaller chunk_size, a "
                "larger memory_budget, or fewer inputs per call")
        chosen = min(fitting, key=lambda e: e.seconds)
        method, chunk = chosen.method, chosen.chunk_size
    else:
        chunk = chunk_size
    if method == "structured" and not layers:
        note = "no Linear/Conv layer with trainable parameters: Jacobian path"
        method = "jacobian"
    elif method == "structured" and rest:
        shown = ", ".join(rest[:3]) + (", ..." if len(rest) > 3 else "")
        note = (f"{len(rest)} parameter tensor(s) outside Linear/Conv layers ({shown}) go "
                "through the Jacobian path")
    tile = chunk if chunk is not None else max(n1, n2)
    batch = max(1, min(tile, int(_TRANSIENT_BYTES // max(1, per_example))))
    plan = NTKPlan(method, requested, chunk, batch, budget, est, n_out,
                   sum(p.numel() for p in params.values()), dtype, layers, rest, note)
    return plan, output


# ---------------------------------------------------------------------------------------
# public entry point


def choose_method(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, *,
                  output: str = "auto", chunk_size: int | None = None,
                  dtype: torch.dtype | None = None,
                  memory_budget: int | None = None) -> NTKPlan:
    """The plan :func:`ntk` would follow with ``method="auto"`` (same arguments): the
    cheapest method by estimated time among those whose estimated peak memory fits
    ``memory_budget`` (bytes; default half the available memory, at most 16 GiB), with
    every method's estimate. Runs one forward pass on one example."""
    _check(model, x, x2, output, "auto")
    _check_chunk(chunk_size)
    with _EvalMode(model, dtype) as m:
        x, x2 = _to_model(m, x, x2)
        plan, _ = _plan(m, x, x2, output, "auto", chunk_size, memory_budget)
    return plan


def _check_chunk(chunk_size) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) < 1):
        raise InputError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def _to_model(m: nn.Module, x, x2):
    """Float inputs follow the model's dtype and device; integer ones (tokens) only the
    device."""
    dt = _model_dtype(m)
    dev = next(iter(m.parameters())).device if any(True for _ in m.parameters()) else None

    def to(t):
        return t.to(dtype=dt, device=dev) if t.is_floating_point() else t.to(device=dev)

    return to(x), None if x2 is None else to(x2)


def ntk(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, *,
        output: str = "auto", method: str = "auto", chunk_size: int | None = None,
        dtype: torch.dtype | None = None, memory_budget: int | None = None,
        return_info: bool = False):
    """Empirical NTK Gram matrix G = J(x) J(x2)ᵀ of ``model`` at its current parameters.

    model : any ``nn.Module`` mapping (n, *input_shape) to (n,) or (n, C) outputs
    x : (N1, *input_shape) inputs; x2 : optional (N2, *input_shape) (default: ``x``)
    output : ``"scalar"`` (one output), ``"trace"`` (sum of the per-logit kernels),
        ``"per-logit"`` or ``"auto"`` (scalar for one output, else trace)
    method : ``"structured"``, ``"jacobian"``, ``"ntk-vp"``, ``"loop"`` (reference) or
        ``"auto"``: the cheapest by the cost model of :func:`choose_method` that fits
        ``memory_budget``
    chunk_size : examples per kernel tile (bounds memory; ``None`` = all at once, or with
        ``method="auto"`` the largest tile that fits the budget)
    dtype : compute in this dtype (e.g. ``torch.float64``) on a converted copy of the model
    memory_budget : bytes the computation may use (``method="auto"`` only; default half the
        available memory, at most 16 GiB); when no method fits, :class:`ResourceError`
    return_info : also return the :class:`NTKPlan` (choice, estimates, fallback note)

    Returns (N1, N2), or (C, N1, N2) for ``output="per-logit"``, in the compute dtype;
    with ``return_info=True`` the pair (kernel, plan). The plan's one-line summary is also
    logged (logger ``acthash.spectrum.ntk``, level INFO).
    """
    _check(model, x, x2, output, method)
    _check_chunk(chunk_size)
    if memory_budget is not None and (isinstance(memory_budget, bool) or memory_budget <= 0):
        raise InputError(f"memory_budget must be a positive number of bytes or None, got "
                         f"{memory_budget!r}")
    with _EvalMode(model, dtype) as m:
        x, x2 = _to_model(m, x, x2)
        plan, output = _plan(m, x, x2, output, method, chunk_size, memory_budget)
        blocks = None
        if plan.method == "structured":
            try:
                blocks = _gram_structured(m, x, x2, plan)
            except _PlanMismatch:
                plan.note = ("the forward pass used the layers differently from the probe; "
                             "recomputed with the Jacobian path")
            if blocks is not None and not _structured_agrees(m, x, x2, blocks, plan):
                plan.note = ("structured kernel failed the per-example gradient check (a "
                             "weight used outside its layer, examples mixed within a batch, "
                             "or an in-place change of a layer output); recomputed with the "
                             "Jacobian path")
                blocks = None
            if blocks is None:
                warnings.warn(f"ntk: {plan.note}", RuntimeWarning, stacklevel=2)
                plan.method = "jacobian"
            elif plan.rest:
                blocks = blocks + _gram_rest(m, x, x2, plan.chunk_size, plan.rest)
        if plan.method in ("jacobian", "ntk-vp"):
            fn = _gram_jacobian if plan.method == "jacobian" else _gram_ntkvp
            try:
                blocks = fn(m, x, x2, plan.chunk_size)
            except RuntimeError as e:
                if "out of memory" in str(e).lower() or "DefaultCPUAllocator" in str(e):
                    raise
                raise InputError(f"torch.func could not transform this model for "
                                 f"method={plan.method!r} ({e}); use method='structured' or "
                                 "'loop'") from e
        elif plan.method == "loop":
            blocks = _gram_loop(m, x, x2)
    if logger.isEnabledFor(logging.INFO):
        logger.info(plan.summary())
    result = _finish(blocks.detach(), output)
    return (result, plan) if return_info else result
