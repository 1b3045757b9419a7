"""Exact linear-region geometry of piecewise-linear networks along lines.

A network built from Linear, Conv, BatchNorm (eval mode), average pooling, flatten,
reshape, residual additions, concatenation and the ReLU-like units of
:mod:`acthash.core.capture` is piecewise linear. Along a line ``x + t*u`` every pre-activation
of a ReLU-like unit is an affine function of ``t`` while the activation pattern (the neural
code) stays fixed. Its slope is a forward-mode derivative with respect to ``t`` (dual
numbers of ``torch.autograd.forward_ad``, or ``torch.func.jvp`` with ``engine="jvp"``), so
one forward pass gives, for every unit and kink, the value of ``t`` at which it reaches its
kink; the nearest such ``t`` on either side bounds the region.

- :func:`region_segment` -- the interval ``(t_lo, t_hi)`` around ``t = 0`` on which the
  code of ``x`` holds, its length in input units and the bit that ends it on each side;
- :func:`regions_between` -- the linear regions crossed by the segment from ``a`` to ``b``:
  their count and the crossing points (a region-by-region walk);
- :func:`sampled_segment` and :func:`sampled_regions_between` -- the original study's
  fixed-step walk (codes compared at ``t = 0, ±step, ±2 step, ...``). It works for any model
  with ReLU-like units but is **approximate**: regions narrower than the step are missed and
  ends are only known to within one step.

Units with two kinks (ReLU6, Hardtanh) end a region at either kink. Bits are numbered as
in :class:`~acthash.core.codes.NeuralCodes` (global bit index, kink-major within a layer).

Max pooling is piecewise linear too, but its switch points are not units of the code, so
pre-activations are not affine across a whole region: the exact functions reject it
(:class:`NotPiecewiseLinearError`) and point to the sampled variant. Every call also checks
that the linear prediction of the pre-activations matches a real forward pass at the
region's ends (``check=True``), which catches other non-linear operations.

All functions are batched: ``x``/``u``/``a``/``b`` are ``(B, *input_shape)`` tensors and the
results are arrays with one row per line. Computation is in float64 by default (on a copy
of the model), so crossing points are exact to ~1e-10.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.run import progress_bar
from acthash.core.recorder import ActivationRecorder, no_relu_message
from acthash.errors import InputError, NoReluUnitError, NotPiecewiseLinearError

__all__ = [
    "NotPiecewiseLinearError",
    "Segment",
    "Crossings",
    "preactivations",
    "region_segment",
    "regions_between",
    "sampled_segment",
    "sampled_regions_between",
    "codes_along",
]


_SAMPLED_HINT = (
    "use acthash.geometry.regions.sampled_segment / sampled_regions_between (fixed-step walk, "
    "approximate) for this model"
)

_MAX_POOL = {
    fn
    for fn in (
        F.max_pool1d, F.max_pool2d, F.max_pool3d,
        F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
        getattr(F, "max_pool1d_with_indices", None), getattr(F, "max_pool2d_with_indices", None),
        getattr(F, "max_pool3d_with_indices", None), torch.max_pool1d, torch.max_pool2d,
        torch.max_pool3d,
    )
    if fn is not None
}

_NON_LINEAR = {
    fn
    for fn in (
        F.gelu, F.silu, F.elu, F.selu, F.celu, F.softplus, F.mish, F.hardswish, F.hardsigmoid,
        F.tanh, F.sigmoid, torch.tanh, torch.sigmoid, torch.exp, torch.log, F.softmax,
        F.log_softmax, F.layer_norm, F.group_norm, F.normalize, torch.Tensor.tanh,
        torch.Tensor.sigmoid, torch.Tensor.exp, torch.Tensor.softmax,
    )
}


class _PreRecorder:
    """Callbacks of :class:`~acthash.core.recorder.ActivationRecorder`: keeps the
    pre-activation of every ReLU-like call (a clone, still a dual/functorch tensor so
    forward-mode AD returns its slope) and rejects operations that break piecewise linearity."""

    def __init__(self):
        self.pre: list[torch.Tensor] = []
        self.records: list[tuple[str, tuple[float, ...], tuple[int, ...]]] = []  # name, kinks, shape
        self.nonlinear: str | None = None

    def before(self, call) -> None:
        if self.nonlinear is not None:
            raise NotPiecewiseLinearError(
                f"{self.nonlinear} runs before a ReLU-like unit, so pre-activations are "
                f"not linear inside a region; {_SAMPLED_HINT}"
            )
        self.pre.append(call.x.clone())
        self.records.append((call.name, call.kinks, tuple(call.x.shape[1:])))

    def other(self, func) -> None:
        if func in _MAX_POOL:
            raise NotPiecewiseLinearError(
                "max pooling is piecewise linear, but its switch points are not units of the "
                "neural code, so the exact region walk cannot use it; replace it by average "
                "pooling or " + _SAMPLED_HINT
            )
        if func in _NON_LINEAR and self.nonlinear is None:
            # anything else (products of activations, ...) is caught by the linearity check
            self.nonlinear = getattr(func, "__name__", str(func))


@dataclass
class _Layout:
    names: list[str]
    kinks: list[tuple[float, ...]]
    units: list[int]
    starts: list[int]  # global bit index of each layer's first bit

    @property
    def n_bits(self) -> int:
        return self.starts[-1] + self.units[-1] * len(self.kinks[-1]) if self.names else 0

    def locate(self, bit: int) -> tuple[str, int, int]:
        """Global bit -> (layer name, unit index, kink index)."""
        i = int(np.searchsorted(self.starts, bit, side="right") - 1)
        local = bit - self.starts[i]
        return self.names[i], local % self.units[i], local // self.units[i]


class _Linearizer:
    """Pre-activations and their slopes along directions, one forward-mode pass per batch."""

    def __init__(self, model: nn.Module, dtype: torch.dtype | None = torch.float64,
                 engine: str = "forward_ad"):
        if engine not in ("forward_ad", "jvp"):
            raise InputError(f"unknown engine {engine!r}; use 'forward_ad' or 'jvp'")
        self.engine = engine
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if dtype is not None:
            model = copy.deepcopy(model).to(dtype)
        else:
            p = next(iter(model.parameters()), None)
            dtype = p.dtype if p is not None else torch.get_default_dtype()
        self.model = model.eval()
        self.dtype = dtype
        p = next(iter(model.parameters()), None)
        self.device = p.device if p is not None else torch.device("cpu")
        self.layout: _Layout | None = None
        self.tol = 1e-7 if dtype == torch.float64 else 1e-3

    def _run(self, x: torch.Tensor):
        rec = _PreRecorder()
        with ActivationRecorder(self.model, before=rec.before, other=rec.other,
                                eval=False) as recorder:
            recorder(x)
        if not rec.pre:
            raise NoReluUnitError(no_relu_message(self.model))
        if self.layout is None:
            names = [r[0] for r in rec.records]
            kinks = [r[1] for r in rec.records]
            units = [int(math.prod(r[2])) for r in rec.records]
            starts = np.cumsum([0] + [u * len(k) for u, k in zip(units, kinks, strict=True)])
            self.layout = _Layout(names, kinks, units, [int(s) for s in starts[:-1]])
        return [p.reshape(p.shape[0], -1) for p in rec.pre]

    def values(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pre-activations at ``x``: one (B, U_l) tensor per layer."""
        with torch.no_grad():
            return self._run(self.cast(x))

    def linearize(self, x: torch.Tensor, u: torch.Tensor):
        """(values, slopes) of the pre-activations at ``x`` along ``u``; lists of (B, U_l).

        Slopes are forward-mode derivatives d z / d t of ``z(x + t*u)`` at ``t = 0``:
        ``engine="forward_ad"`` pushes ``(x, u)`` as a dual tensor through the model
        (``torch.autograd.forward_ad``), ``engine="jvp"`` calls ``torch.func.jvp`` on
        ``t -> z(x + t*u)``; both give the same numbers, forward_ad is about 2x faster.
        """
        x, u = self.cast(x), self.cast(u)
        if self.engine == "forward_ad":
            import torch.autograd.forward_ad as fwad

            with torch.no_grad(), fwad.dual_level():
                pre = self._run(fwad.make_dual(x, u))
                parts = [fwad.unpack_dual(p) for p in pre]
                z = [p.primal for p in parts]
                s = [p.tangent if p.tangent is not None else torch.zeros_like(p.primal)
                     for p in parts]
            return z, s
        shape = (-1,) + (1,) * (x.ndim - 1)

        def f(t):
            return tuple(self._run(x + t.view(shape) * u))

        t0 = torch.zeros(x.shape[0], dtype=self.dtype, device=self.device)
        with torch.no_grad():
            z, s = torch.func.jvp(f, (t0,), (torch.ones_like(t0),))
        return list(z), list(s)

    def cast(self, x) -> torch.Tensor:
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            raise InputError(f"inputs must be floating point, got {x.dtype}")
        return x.to(device=self.device, dtype=self.dtype)


def _nearest_kink(z, s, kinks_per_layer, starts, units, forward: bool):
    """Smallest positive (forward) or largest negative (backward) t at which a linear
    pre-activation z + s*t reaches a kink. Returns (t (B,), bit (B,) int64, -1 = none)."""
    b = z[0].shape[0]
    best = torch.full((b,), math.inf, dtype=z[0].dtype, device=z[0].device)
    bit = torch.full((b,), -1, dtype=torch.long, device=z[0].device)
    for zl, sl, kinks, start, n_units in zip(z, s, kinks_per_layer, starts, units, strict=True):
        moving = sl != 0
        for ki, k in enumerate(kinks):
            tau = (k - zl) / torch.where(moving, sl, torch.ones_like(sl))
            if not forward:
                tau = -tau
            tau = torch.where(moving & (tau > 0), tau, torch.full_like(tau, math.inf))
            m, arg = tau.min(dim=1)
            better = m < best
            best = torch.where(better, m, best)
            bit = torch.where(better, arg + start + ki * n_units, bit)
    return (best if forward else -best), bit


def _compare(lin: _Linearizer, predicted, actual, slack=None) -> None:
    """Raise if linearly predicted pre-activations differ from a real forward pass by more
    than the rounding tolerance (plus ``slack``, one float per layer)."""
    for i, (pred, al, name) in enumerate(zip(predicted, actual, lin.layout.names, strict=True)):
        if pred.numel() == 0:
            continue
        scale = 1.0 + float(pred.abs().max())
        err = float((pred - al).abs().max())
        if err > lin.tol * scale + (slack[i] if slack is not None else 0.0):
            raise NotPiecewiseLinearError(
                f"pre-activations of layer {name} are not linear inside a region (off by "
                f"{err:.3g}): the model has an operation that is not piecewise linear in its "
                f"ReLU-like units; {_SAMPLED_HINT}"
            )


def _check_linear(lin: _Linearizer, x, u, t, z, s):
    """Compare z + s*t with a real forward pass at x + t*u for the rows with finite t."""
    ok = torch.isfinite(t)
    if not ok.any():
        return
    shape = (-1,) + (1,) * (x.ndim - 1)
    tt = t[ok]
    actual = lin.values(x[ok] + tt.view(shape) * u[ok])
    _compare(lin, [zl[ok] + sl[ok] * tt[:, None] for zl, sl in zip(z, s, strict=True)], actual)


@dataclass
class Segment:
    """Result of :func:`region_segment`, one entry per line.

    t_lo, t_hi : (B,) the code of ``x`` holds for ``t`` in ``(t_lo, t_hi]`` (``t_lo <= 0 <=
        t_hi``); ``±t_max`` (possibly ``inf``) where no kink is reached before it
    length : (B,) region diameter along the line in input units, ``(t_hi - t_lo) * |u|``
    bit_lo, bit_hi : (B,) global bit index of the unit that ends the region on each side
        (-1: none before ``t_max``); layer_lo/layer_hi, unit_lo/unit_hi name it
    """

    t_lo: np.ndarray
    t_hi: np.ndarray
    length: np.ndarray
    bit_lo: np.ndarray
    bit_hi: np.ndarray
    layer_lo: list[str]
    layer_hi: list[str]
    unit_lo: np.ndarray
    unit_hi: np.ndarray
    u_norm: np.ndarray

    def __len__(self) -> int:
        return len(self.t_lo)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "t_lo": self.t_lo, "t_hi": self.t_hi, "length": self.length,
            "layer_lo": self.layer_lo, "unit_lo": self.unit_lo, "bit_lo": self.bit_lo,
            "layer_hi": self.layer_hi, "unit_hi": self.unit_hi, "bit_hi": self.bit_hi,
            "u_norm": self.u_norm,
        })


def _prepare_lines(x, u, normalize: bool, lin: _Linearizer):
    x, u = lin.cast(x), lin.cast(u)
    if x.shape != u.shape:
        raise InputError(f"x has shape {tuple(x.shape)} but u has {tuple(u.shape)}; pass one "
                         "direction per point (same shape, batch first)")
    if x.ndim < 2:
        raise InputError("x must have a batch dimension: (B, *input_shape); use x[None] for one")
    norm = u.reshape(u.shape[0], -1).norm(dim=1)
    if (norm == 0).any():
        rows = (norm == 0).nonzero().flatten()[:5].tolist()
        raise InputError(f"direction u is zero in rows {rows}; give a non-zero direction")
    if normalize:
        u = u / norm.view((-1,) + (1,) * (u.ndim - 1))
    return x, u, norm


def _names(lin: _Linearizer, bits: torch.Tensor):
    layers, units = [], []
    for b in bits.tolist():
        if b < 0:
            layers.append("")
            units.append(-1)
        else:
            name, unit, _ = lin.layout.locate(b)
            layers.append(name)
            units.append(unit)
    return layers, np.asarray(units, dtype=np.int64)


def region_segment(
    model: nn.Module,
    x,
    u,
    *,
    t_max: float = math.inf,
    normalize: bool = True,
    dtype: torch.dtype | None = torch.float64,
    batch_size: int = 512,
    check: bool = True,
    engine: str = "forward_ad",
) -> Segment:
    """The linear region of each ``x`` along direction ``u``, exactly.

    x, u : (B, *input_shape) points and directions (one direction per point).
    normalize : scale ``u`` to unit length, so ``t`` is Euclidean distance in input space.
    t_max : search limit on each side (the original study walked ±5); ``inf`` = none.
    dtype : compute on a copy of the model in this dtype (``None``: the model's own).
    check : verify linearity with a forward pass at the region's ends (one extra pass).
    engine : how slopes are computed, "forward_ad" or "jvp" (``torch.func.jvp``).
    """
    lin = _Linearizer(model, dtype, engine)
    x, u, norm = _prepare_lines(x, u, normalize, lin)
    parts = []
    for lo in range(0, x.shape[0], batch_size):
        xb, ub = x[lo : lo + batch_size], u[lo : lo + batch_size]
        z, s = lin.linearize(xb, ub)
        lay = lin.layout
        t_hi, bit_hi = _nearest_kink(z, s, lay.kinks, lay.starts, lay.units, forward=True)
        t_lo, bit_lo = _nearest_kink(z, s, lay.kinks, lay.starts, lay.units, forward=False)
        if check:
            _check_linear(lin, xb, ub, torch.clamp(t_hi, max=t_max), z, s)
            _check_linear(lin, xb, ub, torch.clamp(t_lo, min=-t_max), z, s)
        bit_hi = torch.where(t_hi > t_max, -1, bit_hi)
        bit_lo = torch.where(t_lo < -t_max, -1, bit_lo)
        parts.append((torch.clamp(t_lo, min=-t_max), torch.clamp(t_hi, max=t_max), bit_lo,
                      bit_hi))
    t_lo, t_hi, bit_lo, bit_hi = (torch.cat(p) for p in zip(*parts, strict=True))
    scale = torch.ones_like(norm) if normalize else norm
    length = (t_hi - t_lo) * scale
    layer_lo, unit_lo = _names(lin, bit_lo)
    layer_hi, unit_hi = _names(lin, bit_hi)
    return Segment(
        t_lo.cpu().numpy(), t_hi.cpu().numpy(), length.cpu().numpy(),
        bit_lo.cpu().numpy(), bit_hi.cpu().numpy(), layer_lo, layer_hi, unit_lo, unit_hi,
        norm.cpu().numpy(),
    )


@dataclass
class Crossings:
    """Result of :func:`regions_between`, one entry per segment ``a -> b``.

    n_regions : (B,) linear regions the closed segment meets (crossings + 1)
    t : list of B arrays, the crossing points as fractions ``t in (0, 1)`` of ``a + t(b - a)``
    bits : list of B arrays, the global bit that flips at each crossing
    layers : list of B lists of layer names, one per crossing
    length : (B,) Euclidean length of each segment
    """

    n_regions: np.ndarray
    t: list[np.ndarray]
    bits: list[np.ndarray]
    layers: list[list[str]]
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.n_regions)

    def points(self, a, b, i: int) -> torch.Tensor:
        """The crossing points of segment ``i`` in input space: (n_crossings, *input_shape)."""
        a, b = torch.as_tensor(a)[i], torch.as_tensor(b)[i]
        t = torch.as_tensor(self.t[i], dtype=a.dtype).view((-1,) + (1,) * a.ndim)
        return a + t * (b - a)

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per crossing (pair, t, bit, layer)."""
        rows = [
            {"pair": i, "t": float(t), "bit": int(b), "layer": name}
            for i in range(len(self))
            for t, b, name in zip(self.t[i], self.bits[i], self.layers[i], strict=True)
        ]
        return pd.DataFrame(rows, columns=["pair", "t", "bit", "layer"])


def regions_between(
    model: nn.Module,
    a,
    b,
    *,
    dtype: torch.dtype | None = torch.float64,
    max_crossings: int = 100_000,
    batch_size: int = 512,
    check: bool = True,
    progress: bool = False,
    engine: str = "forward_ad",
) -> Crossings:
    """Walk region by region from ``a`` to ``b`` (both (B, *input_shape)); exact.

    Each step linearizes the network just past the previous crossing and jumps to the next
    kink. Crossings closer together than ~1e-9 (relative) count once. ``check`` compares
    each new linearization with the previous piece's prediction (no extra forward pass).
    """
    lin = _Linearizer(model, dtype, engine)
    a, b = lin.cast(a), lin.cast(b)
    if a.shape != b.shape:
        raise InputError(f"a has shape {tuple(a.shape)} but b has {tuple(b.shape)}")
    if a.ndim < 2:
        raise InputError("a and b must have a batch dimension: (B, *input_shape)")
    d = b - a
    eps = 1e-9 if lin.dtype == torch.float64 else 1e-5
    n = a.shape[0]
    ts: list[list[float]] = [[] for _ in range(n)]
    bits: list[list[int]] = [[] for _ in range(n)]
    bar = progress_bar(enabled=progress, total=n, desc="regions", unit="segment")
    shape = (-1,) + (1,) * (a.ndim - 1)
    for lo in range(0, n, batch_size):
        idx = torch.arange(lo, min(lo + batch_size, n), device=a.device)
        t = torch.zeros(len(idx), dtype=lin.dtype, device=a.device)
        active = torch.ones(len(idx), dtype=torch.bool, device=a.device)
        steps = 0
        pred = None  # linear prediction of the values at the next linearization point
        s_prev, shift = [], 0.0
        while active.any():
            rows = active.nonzero().flatten()
            ab, db = a[idx[rows]], d[idx[rows]]
            start = ab + t[rows].view(shape) * db
            z, s = lin.linearize(start, db)
            if check and pred is not None:
                # just past a crossing, slopes downstream of the flipped unit changed
                slack = [2 * shift * (sp + float(sl.abs().max()) if sl.numel() else 0.0)
                         for sp, sl in zip(s_prev, s, strict=True)]
                _compare(lin, pred, z, slack)
            lay = lin.layout
            tau, bit = _nearest_kink(z, s, lay.kinks, lay.starts, lay.units, forward=True)
            t_next = t[rows] + tau
            done = t_next >= 1.0
            if check and done.any():  # the last piece of a segment: check it at b
                _check_linear(lin, start[done], db[done], 1.0 - t[rows][done],
                              [zl[done] for zl in z], [sl[done] for sl in s])
            for r, tn, bt, dn in zip(rows.tolist(), t_next.tolist(), bit.tolist(),
                                     done.tolist(), strict=True):
                if not dn:
                    ts[lo + r].append(tn)
                    bits[lo + r].append(bt)
            t_new = torch.where(done, t[rows], t_next + eps * torch.clamp(t_next.abs(), min=1))
            keep = ~done
            pred = [zl[keep] + sl[keep] * (t_new - t[rows])[keep, None]
                    for zl, sl in zip(z, s, strict=True)]
            s_prev = [float(sl.abs().max()) if sl.numel() else 0.0 for sl in s]
            shift = float((t_new - t_next)[keep].max()) if keep.any() else 0.0
            t[rows] = t_new
            active[rows[done]] = False
            bar.update(int(done.sum()))
            steps += 1
            if steps > max_crossings:
                raise InputError(
                    f"more than {max_crossings} crossings on one segment; raise max_crossings"
                )
    bar.close()
    layout = lin.layout
    layers = [[layout.locate(bt)[0] for bt in row] for row in bits]
    return Crossings(
        n_regions=np.asarray([len(r) + 1 for r in ts], dtype=np.int64),
        t=[np.asarray(r, dtype=np.float64) for r in ts],
        bits=[np.asarray(r, dtype=np.int64) for r in bits],
        layers=layers,
        length=d.reshape(n, -1).norm(dim=1).cpu().numpy(),
    )


def preactivations(model: nn.Module, x, *, dtype: torch.dtype | None = None) -> dict:
    """Pre-activations of every ReLU-like layer: ``{layer name: (N, units) tensor}``."""
    lin = _Linearizer(model, dtype)
    vals = lin.values(x)
    return dict(zip(lin.layout.names, vals, strict=True))


# ---------------------------------------------------------------------- sampled (approximate)
def _packed_codes(model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    from acthash.core.capture import neural_codes

    return neural_codes(model, x, batch_size=batch_size, check_finite=False).packed


def codes_along(model: nn.Module, x, u, ts, *, batch_size: int = 4096) -> np.ndarray:
    """Packed codes at ``x + t*u`` for every line and every ``t`` in ``ts``: (B, T, n_bytes)."""
    x, u = torch.as_tensor(x), torch.as_tensor(u)
    ts = torch.as_tensor(np.asarray(ts), dtype=x.dtype)
    shape = (-1,) + (1,) * (x.ndim - 1)
    out = []
    for i in range(x.shape[0]):
        pts = x[i] + ts.view(shape) * u[i]
        out.append(_packed_codes(model, pts, batch_size))
    return np.stack(out)


def sampled_segment(
    model: nn.Module,
    x,
    u,
    *,
    step: float = 0.05,
    t_max: float = 5.0,
    normalize: bool = True,
) -> Segment:
    """**Approximate** region interval by the original fixed-step walk.

    Codes are compared at ``t = k*step`` for ``|t| <= t_max``; the interval is the run of
    samples around ``t = 0`` with the code of ``x`` (its ends are the last equal samples, so
    the true ends lie up to one step further out). ``bit``/``layer`` fields are unknown (-1).
    """
    x, u = torch.as_tensor(x), torch.as_tensor(u)
    if x.shape != u.shape or x.ndim < 2:
        raise InputError("x and u must both be (B, *input_shape)")
    if step <= 0 or t_max <= 0:
        raise InputError(f"step and t_max must be positive, got {step}, {t_max}")
    norm = u.reshape(u.shape[0], -1).norm(dim=1)
    if normalize:
        u = u / norm.view((-1,) + (1,) * (u.ndim - 1))
    k = int(math.floor(t_max / step + 1e-9))
    ts = np.arange(-k, k + 1) * step
    codes = codes_along(model, x, u, ts)
    same = (codes == codes[:, k : k + 1]).all(axis=2)  # (B, T)
    t_lo = np.empty(len(x))
    t_hi = np.empty(len(x))
    for i in range(len(x)):
        right = same[i, k:]
        left = same[i, : k + 1][::-1]
        n_r = len(right) if right.all() else int(np.argmin(right))
        n_l = len(left) if left.all() else int(np.argmin(left))
        t_hi[i] = (n_r - 1) * step
        t_lo[i] = -(n_l - 1) * step
    scale = np.ones(len(x)) if normalize else norm.numpy()
    none = np.full(len(x), -1, dtype=np.int64)
    return Segment(t_lo, t_hi, (t_hi - t_lo) * scale, none, none.copy(), [""] * len(x),
                   [""] * len(x), none.copy(), none.copy(), norm.numpy())


def sampled_regions_between(model: nn.Module, a, b, *, step: float = 0.01) -> np.ndarray:
    """**Approximate** region count on segments ``a -> b``: 1 + the number of code changes
    between consecutive samples at ``t = 0, step, ..., 1``. Misses regions narrower than the
    step (and counts several crossings between two samples once). Returns (B,) ints."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.ndim < 2:
        raise InputError("a and b must both be (B, *input_shape)")
    if not 0 < step <= 1:
        raise InputError(f"step is a fraction of the segment in (0, 1], got {step}")
    n = int(math.ceil(1.0 / step - 1e-9))
    ts = np.linspace(0.0, 1.0, n + 1)
    codes = codes_along(model, a, b - a, ts)
    changes = (codes[:, 1:] != codes[:, :-1]).any(axis=2).sum(axis=1)
    return 1 + changes.astype(np.int64)
