"""Empirical neural tangent kernel (gradient-similarity kernel) of any ``nn.Module``.

For a network f(x; θ) with C outputs and N inputs x₁..x_N, the Jacobian J has rows
∂f_c(x_n)/∂θ. The Gram matrix is G = J Jᵀ:

- ``output="scalar"``: f has one output; G is (N, N) with G[n, m] = ∇θf(x_n)·∇θf(x_m).
- ``output="per-logit"``: one kernel per output c, G[c, n, m] = ∇θf_c(x_n)·∇θf_c(x_m),
  shape (C, N, N).
- ``output="trace"``: the sum over outputs of the per-logit kernels, (N, N).

Three methods, equal up to round-off:

- ``"jacobian"``: per-example Jacobians with ``torch.func`` (``vmap`` of ``jacrev``), then
  contracted; memory grows as N·C·P (P = number of parameters) per chunk.
- ``"ntk-vp"``: NTK-vector products with ``torch.func``: ``vjp`` of a chunk's outputs with
  each basis vector, then ``jvp`` of the other chunk's outputs along it (``vmap`` over the
  basis); it never contracts a Jacobian but costs about N²·P work.
- ``"structured"``: never forms any Jacobian. For a Linear layer z = W a + b the gradient of
  f(x_n) w.r.t. W is δ_n a_nᵀ, with δ_n = ∂f(x_n)/∂z_n, so its kernel contribution is
  (δδᵀ) ∘ (aaᵀ) and the bias adds δδᵀ. The layer inputs a come from one batched forward
  pass and the δ from one batched backward pass per output (examples are independent in
  eval mode, so the gradient of Σ_n f(x_n) w.r.t. z_n is δ_n). Memory: N·Σ(layer widths)
  + N². Conv2d layers (and Linear layers applied at several positions) use their unfolded
  patches and the per-example layer gradients Σ_t δ_t a_tᵀ (N x that layer's parameters);
  any other parameter (PReLU, norms, embeddings, ...) goes through the ``"jacobian"`` path
  restricted to those parameters (a per-example loop where ``vmap`` cannot batch them).

The kernel is always evaluated with the model in eval mode (a BatchNorm in training mode
would couple the examples of a batch); the model's mode is restored afterwards. Parameters
with ``requires_grad=False`` are left out.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from acthash.errors import InputError

__all__ = ["ntk", "ntk_loop", "METHODS", "OUTPUTS", "choose_method"]

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


def _n_outputs(model, x) -> int:
    with torch.no_grad():
        out = model(x[:1])
    return int(math.prod(out.shape[1:])) if out.dim() > 1 else 1


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
# method 3: structured (layer inputs a and output gradients δ, no Jacobian)


def _supported(m: nn.Module) -> bool:
    if type(m) is nn.Linear:
        return True
    if type(m) is nn.Conv2d:
        return m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)
    return False


def _layer_input(m: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """Layer input as (n, L, d_in): rows whose product with the weight gives the outputs."""
    if isinstance(m, nn.Linear):
        return a.reshape(a.shape[0], -1, a.shape[-1])
    patches = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding,
                       stride=m.stride)  # (n, C_in*kh*kw, L)
    return patches.transpose(1, 2)


def _layer_grad(m: nn.Module, z_grad: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the layer output as (n, L, d_out)."""
    if isinstance(m, nn.Linear):
        return z_grad.reshape(z_grad.shape[0], -1, z_grad.shape[-1])
    return z_grad.flatten(2).transpose(1, 2)  # (n, C_out, H*W) -> (n, L, C_out)


def _collect(model, x, n_out, chunk_size, layers):
    """One forward (and C backwards) per chunk: per layer the inputs A (N, L, d_in) and the
    per-output gradients D (C, N, L, d_out)."""
    a_store: dict[str, list] = {n: [] for n in layers}
    d_store: dict[str, list] = {n: [] for n in layers}
    for s in _chunks(len(x), chunk_size):
        acts: dict[str, list] = {n: [] for n in layers}
        zs: dict[str, list] = {n: [] for n in layers}
        handles = []
        for name, m in layers.items():
            def hook(mod, inp, out, name=name, acts=acts, zs=zs):
                acts[name].append(inp[0].detach())
                zs[name].append(out)
            handles.append(m.register_forward_hook(hook))
        try:
            with torch.enable_grad():
                xs = x[s]
                out = model(xs).reshape(len(xs), -1)
                flat = [(n, k) for n in layers for k in range(len(zs[n]))]
                if not flat:
                    raise InputError("structured NTK: no Linear/Conv2d layer took part in the "
                                     "forward pass")
                z_list = [zs[n][k] for n, k in flat]
                per_c = []
                for c in range(n_out):
                    grads = torch.autograd.grad(out[:, c].sum(), z_list, retain_graph=True,
                                                allow_unused=True)
                    per_c.append(grads)
        finally:
            for h in handles:
                h.remove()
        for name, m in layers.items():
            k_calls = len(acts[name])
            if k_calls == 0:
                continue
            a_store[name].append(torch.cat([_layer_input(m, a) for a in acts[name]], 1))
            ds = []
            for c in range(n_out):
                parts = []
                for k in range(k_calls):
                    g = per_c[c][flat.index((name, k))]
                    if g is None:
                        g = torch.zeros_like(zs[name][k])
                    parts.append(_layer_grad(m, g.detach()))
                ds.append(torch.cat(parts, 1))
            d_store[name].append(torch.stack(ds))
    A = {n: torch.cat(v, 0) for n, v in a_store.items() if v}
    D = {n: torch.cat(v, 1) for n, v in d_store.items() if v}
    return A, D


def _layer_kernel(m, a1, d1, a2, d2, row_chunk):
    """Per-logit kernel (C, N1, N2) of one layer's weight and bias."""
    C, L = d1.shape[0], a1.shape[1]
    has_bias = m.bias is not None and m.bias.requires_grad
    has_w = m.weight.requires_grad
    if L == 1 and a2.shape[1] == 1:
        aa = a1[:, 0] @ a2[:, 0].T  # (N1, N2)
        dd = torch.einsum("cno,cmo->cnm", d1[:, :, 0], d2[:, :, 0])
        k = dd * aa if has_w else torch.zeros_like(dd)
        return k + dd if has_bias else k
    # shared weights over L positions: the per-example layer gradient Σ_t δ_t a_tᵀ is small
    # (d_out x d_in), cheaper than the (N L)² position-pair product for conv layers
    out = torch.zeros(C, a1.shape[0], a2.shape[0], dtype=a1.dtype, device=a1.device)
    for c in range(C):
        g2w = torch.einsum("nlo,nli->noi", d2[c], a2).flatten(1) if has_w else None
        g2b = d2[c].sum(1) if has_bias else None
        for s in _chunks(a1.shape[0], row_chunk):
            if has_w:
                g1w = torch.einsum("nlo,nli->noi", d1[c, s], a1[s]).flatten(1)
                out[c, s] += g1w @ g2w.T
            if has_bias:
                out[c, s] += d1[c, s].sum(1) @ g2b.T
    return out


def _gram_structured(model, x, x2, chunk_size, n_out):
    layers = {n: m for n, m in model.named_modules() if _supported(m)
              and any(p.requires_grad for p in m.parameters(recurse=False))}
    covered = set()
    for n, m in layers.items():
        for pn, p in m.named_parameters(recurse=False):
            if p.requires_grad:
                covered.add(f"{n}.{pn}" if n else pn)
    rest = [k for k in _params(model) if k not in covered]
    A1, D1 = _collect(model, x, n_out, chunk_size, layers)
    A2, D2 = (A1, D1) if x2 is None else _collect(model, x2, n_out, chunk_size, layers)
    n2 = len(x) if x2 is None else len(x2)
    out = None
    for name in A1:
        k = _layer_kernel(layers[name], A1[name], D1[name], A2[name], D2[name], chunk_size)
        out = k if out is None else out + k
    if out is None:
        dtype = _model_dtype(model)
        out = torch.zeros(n_out, len(x), n2, dtype=dtype, device=x.device)
    if rest:  # parameters outside Linear/Conv2d layers: generic path on those only
        try:
            extra = _gram_jacobian(model, x, x2, chunk_size, names=rest)
        except RuntimeError as e:  # some ops have no vmap rule (e.g. prelu in torch 2.x)
            warnings.warn(f"torch.func could not batch the Jacobian of {rest} ({e}); "
                          "falling back to a per-example loop for those parameters",
                          RuntimeWarning, stacklevel=3)
            extra = _gram_loop(model, x, x2, names=rest)
        out = out + extra
    return out


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
# public entry point


def choose_method(model: nn.Module) -> str:
    """``"structured"`` when Linear/Conv2d layers hold most of the trainable parameters
    (the rest go through the Jacobian path), else ``"jacobian"``."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    covered = sum(p.numel() for m in model.modules() if _supported(m)
                  for p in m.parameters(recurse=False) if p.requires_grad)
    return "structured" if total and covered >= 0.5 * total else "jacobian"


def ntk(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, *,
        output: str = "auto", method: str = "auto", chunk_size: int | None = None,
        dtype: torch.dtype | None = None) -> torch.Tensor:
    """Empirical NTK Gram matrix G = J(x) J(x2)ᵀ of ``model`` at its current parameters.

    model : any ``nn.Module`` mapping (n, *input_shape) to (n,) or (n, C) outputs
    x : (N1, *input_shape) inputs; x2 : optional (N2, *input_shape) (default: ``x``)
    output : ``"scalar"`` (one output), ``"trace"`` (sum of the per-logit kernels),
        ``"per-logit"`` or ``"auto"`` (scalar for one output, else trace)
    method : ``"structured"``, ``"jacobian"``, ``"ntk-vp"``, ``"loop"`` (reference) or
        ``"auto"`` (:func:`choose_method`)
    chunk_size : examples per batch (bounds memory; ``None`` = all at once)
    dtype : compute in this dtype (e.g. ``torch.float64``) on a converted copy of the model

    Returns (N1, N2), or (C, N1, N2) for ``output="per-logit"``, in the compute dtype.
    """
    _check(model, x, x2, output, method)
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) < 1):
        raise InputError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    if method == "auto":
        method = choose_method(model)
    with _EvalMode(model, dtype) as m:
        dt = _model_dtype(m)
        dev = next(iter(m.parameters())).device if any(True for _ in m.parameters()) else None
        def _to(t):  # float inputs follow the compute dtype; integer ones (tokens) do not
            return t.to(dtype=dt, device=dev) if t.is_floating_point() else t.to(device=dev)

        x = _to(x)
        x2 = None if x2 is None else _to(x2)
        n_out = _n_outputs(m, x)
        output = _resolve_output(output, n_out)
        if method == "structured":
            blocks = _gram_structured(m, x, x2, chunk_size, n_out)
        elif method in ("jacobian", "ntk-vp"):
            fn = _gram_jacobian if method == "jacobian" else _gram_ntkvp
            try:
                blocks = fn(m, x, x2, chunk_size)
            except RuntimeError as e:
                if "out of memory" in str(e).lower() or "DefaultCPUAllocator" in str(e):
                    raise
                raise InputError(f"torch.func could not transform this model for "
                                   f"method={method!r} ({e}); use method='structured' or "
                                   "'loop'") from e
        else:
            blocks = _gram_loop(m, x, x2)
    return _finish(blocks.detach(), output)
