"""The cost model of ``method="auto"`` in :func:`acthash.spectrum.ntk.ntk`.

One probe forward pass on one example gives the output count, the Linear/Conv layers, the
forward multiply-adds and activation entries; from them every method's multiply-adds,
peak memory and time are estimated (:class:`MethodEstimate`) and the fastest method that
fits the memory budget is chosen (:class:`NTKPlan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from acthash.errors import InputError, ResourceError
from acthash.spectrum._gram import _model_dtype, _params, _supported, _sym_block

__all__ = ["NTKPlan", "MethodEstimate"]


def _resolve_output(output: str, n_out: int) -> str:
    if output == "auto":
        return "scalar" if n_out == 1 else "trace"
    if output == "scalar" and n_out != 1:
        raise InputError(f"output='scalar' needs a model with one output, this one has "
                         f"{n_out}; use output='trace' or 'per-logit'")
    return output


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
