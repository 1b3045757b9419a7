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

Layout: this module is the API; the ``"jacobian"``, ``"ntk-vp"`` and ``"loop"`` methods are
in :mod:`acthash.spectrum._gram`, the structured one in :mod:`acthash.spectrum._structured`
and the cost model in :mod:`acthash.spectrum.plan`.
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn

from acthash.errors import InputError
from acthash.spectrum._gram import _gram_jacobian, _gram_loop, _gram_ntkvp, _model_dtype
from acthash.spectrum._structured import (
    _gram_rest,
    _gram_structured,
    _PlanMismatch,
    _structured_agrees,
)
from acthash.spectrum.plan import MethodEstimate, NTKPlan, _plan

logger = logging.getLogger(__name__)

__all__ = ["ntk", "ntk_loop", "METHODS", "OUTPUTS", "choose_method", "NTKPlan", "MethodEstimate"]

METHODS = ("auto", "structured", "jacobian", "ntk-vp", "loop")
OUTPUTS = ("auto", "scalar", "trace", "per-logit")


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

def _finish(blocks: torch.Tensor, output: str) -> torch.Tensor:
    """(C, N1, N2) per-logit blocks -> the requested kernel."""
    if output == "per-logit":
        return blocks
    return blocks.sum(0)

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


def ntk_loop(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, *,
             output: str = "auto", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Reference NTK: one ``torch.autograd.grad`` per example and output, then J Jᵀ.

    Slow; for tests and benchmarks. Same arguments and result as :func:`ntk`.
    """
    return ntk(model, x, x2, output=output, method="loop", dtype=dtype)


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
