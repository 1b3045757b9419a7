"""NTK Gram blocks by the Jacobian contraction, NTK-vector products and the reference
per-example loop (the ``"jacobian"``, ``"ntk-vp"`` and ``"loop"`` methods of
:func:`acthash.spectrum.ntk.ntk`), and the helpers every method shares.

Every ``_gram_*`` function returns the (C, N1, N2) per-logit blocks (``x2=None``: x with
itself, symmetric).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from acthash.errors import InputError


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise InputError("the model has no trainable parameters (requires_grad=True); "
                         "the NTK is empty")
    return params

def _chunks(n: int, size: int | None) -> list[slice]:
    size = n if not size else int(size)
    if size < 1:
        raise InputError(f"chunk_size must be a positive integer or None, got {size}")
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]

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


_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _supported(m: nn.Module) -> bool:
    """Linear, Conv1d and Conv2d (any stride, padding, padding mode, dilation, groups);
    subclasses may change ``forward``, so only these exact types qualify."""
    return type(m) in _LAYER_TYPES


def _sym_block(n: int) -> int:
    """Row-block size of the symmetric product: about 8 blocks, at least 48 rows each."""
    return max(48, -(-n // 8))
