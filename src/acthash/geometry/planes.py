"""Exact partition of a 2-D slice of input space into linear regions.

A plane through the input space is ``x(s, t) = origin + s*u + t*v``; a convex polygon in the
plane coordinates ``(s, t)`` is cut, layer by layer, into the linear regions of a
piecewise-linear network (Linear, Conv, BatchNorm in eval mode, average pooling, residual
additions, flatten and the ReLU-like units of :mod:`acthash.core.recorder`):

1. every current piece is a convex polygon on which the codes of the layers already
   processed are fixed, so the pre-activations of the next ReLU-like layer are affine in
   ``(s, t)``. The affine map is read off one forward-mode pass at the piece's vertex mean
   (value plus the two directional derivatives along ``u`` and ``v``, in float64);
2. each unit (and each kink: ReLU6/Hardtanh have two) has a zero-set line
   ``a*s + b*t + c = kink`` in the plane; every line that crosses the piece cuts it in two;
3. the pieces after the last ReLU-like layer are the linear regions. Each one carries its
   neural code (the bits of :func:`acthash.core.capture.neural_codes` at an interior point)
   and the affine map of the model's output.

:func:`plane_partition` returns a :class:`PlanePartition` with the polygons, codes, output
maps, the decision boundary (segments where the argmax of the output changes) and the
region count after each layer. Built-in checks: :meth:`PlanePartition.euler` (``V - E + F =
1 + components`` on the merged planar graph, ``F`` counting the outer face) and, with
``check=True``, a forward pass at a second interior point of every region that must match the
region's output map to ``1e-9`` (relative), which also catches operations that are not
piecewise linear.

Max pooling (``nn.MaxPool1d/2d/3d``, ``nn.AdaptiveMaxPool1d/2d/3d`` modules) adds pieces:
inside a piece its inputs are affine too, and the piece is split into the cells where the
largest entry of every window (its *switch*) is fixed (:mod:`acthash.geometry._maxpool`).
A linear region is then a fixed neural code *and* a fixed switch pattern; the switches of
each region are returned beside its code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from acthash.core.recorder import OTHER_ACTIVATIONS, ActivationRecorder, no_relu_message
from acthash.errors import InputError, NoReluUnitError, NotPiecewiseLinearError, ResourceError
from acthash.geometry._maxpool import (
    ADAPTIVE_POOLS,
    POOLS,
    check_windows,
    pool_windows,
    split_by_windows,
    switches,
)
from acthash.geometry._polygons import areas, argmax_boundary, centroids, convex_ccw, split_all
from acthash.geometry.regions import _MAX_POOL, _PreRecorder

__all__ = ["PlanePartition", "plane_partition", "plane_through", "grid_codes"]

_NOT_PL_MODULES = (*OTHER_ACTIVATIONS, nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.LayerNorm,
                   nn.GroupNorm)


@dataclass
class PlanePartition:
    """Result of :func:`plane_partition`.

    origin, u, v : the plane ``origin + s*u + t*v`` (arrays of the input's shape)
    polygon : (K, 2) the partitioned convex polygon, counter-clockwise, in ``(s, t)``
    regions : list of (n_i, 2) counter-clockwise vertex arrays, one per linear region
    interior : (R, 2) an interior point of each region (its vertex mean)
    codes : (R, n_bytes) uint8 packed neural codes (numpy.packbits order, as
        :class:`~acthash.core.codes.NeuralCodes`)
    out_jac, out_bias : (R, C, 2), (R, C): the model output on region ``r`` is
        ``out_jac[r] @ (s, t) + out_bias[r]``
    counts : regions after each piecewise-linear layer, ReLU-like or max pooling, in forward
        order (the last one is ``len(regions)``)
    layer_names, layer_kinds : those layers and their kind ("relu" or "maxpool")
    layer_bits : bits of each of those layers in the code (units x kinks; 0 for max pooling)
    n_bits : code length (ReLU-like units only)
    switches : (R, W) int32, for each of the W max-pooling windows (all pooling layers, in
        order; W = 0 without max pooling) the flat index into one example's pooling input
        (channels first) of its largest entry: PyTorch's ``return_indices`` plus the
        channel's offset ``c * H * W``
    boundary : (K, 2, 2) decision-boundary segments (argmax of the output changes)
    anchors : (3, 2) plane coordinates of the anchors, or None
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    polygon: np.ndarray
    regions: list[np.ndarray]
    interior: np.ndarray
    codes: np.ndarray
    out_jac: np.ndarray
    out_bias: np.ndarray
    counts: list[int]
    layer_names: list[str]
    n_bits: int
    boundary: np.ndarray
    anchors: np.ndarray | None = None
    scale: float = 1.0
    checks: dict = field(default_factory=dict)
    switches: np.ndarray | None = None
    layer_kinds: list[str] = field(default_factory=list)
    layer_bits: list[int] = field(default_factory=list)

    def varying_bits(self) -> np.ndarray:
        """(L,) per layer, the bits that are not the same in every region: the units whose
        kink (bent hyperplane) crosses the polygon's interior (0 for max-pooling layers)."""
        bits = np.unpackbits(self.codes, axis=1, count=self.n_bits).astype(bool)
        vary = bits.any(axis=0) & ~bits.all(axis=0)
        ends = np.cumsum([0, *self.layer_bits])
        return np.array([int(vary[a:b].sum()) for a, b in zip(ends[:-1], ends[1:],
                                                                 strict=True)])

    def __len__(self) -> int:
        return len(self.regions)

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    def areas(self) -> np.ndarray:
        """(R,) area of each region in plane units."""
        return areas(self.regions)

    def to_input(self, st) -> np.ndarray:
        """Plane coordinates (N, 2) -> input points (N, *input_shape)."""
        st = np.asarray(st, dtype=np.float64).reshape(-1, 2)
        return (self.origin[None] + st[:, 0].reshape((-1,) + (1,) * self.origin.ndim) * self.u
                + st[:, 1].reshape((-1,) + (1,) * self.origin.ndim) * self.v)

    def locate(self, st) -> np.ndarray:
        """Index of the region containing each plane point (N, 2); -1 outside the polygon.
        Points on a shared edge go to one of its regions."""
        st = np.asarray(st, dtype=np.float64).reshape(-1, 2)
        out = np.full(len(st), -1, dtype=np.int64)
        tol = 1e-12 * self.scale
        for r, p in enumerate(self.regions):
            e = np.roll(p, -1, axis=0) - p
            cross = e[None, :, 0] * (st[:, None, 1] - p[None, :, 1]) - e[None, :, 1] * (
                st[:, None, 0] - p[None, :, 0])
            inside = (cross >= -tol * np.linalg.norm(e, axis=1)[None]).all(axis=1)
            out[inside & (out < 0)] = r
        return out

    def hamming_to(self, code: np.ndarray) -> np.ndarray:
        """(R,) Hamming distance of each region's code to a packed code (n_bytes,)."""
        diff = np.bitwise_xor(self.codes, np.asarray(code, dtype=np.uint8)[None])
        return np.unpackbits(diff, axis=1).sum(axis=1)

    def euler(self, tol: float | None = None) -> dict:
        """Euler's relation on the planar graph of the subdivision.

        Vertices closer than ``tol`` (default ``1e-10 * scale``; real regions can be a few
        ``1e-6`` across, rounding errors are ~1e-14) are merged; edges are the distinct pairs
        of consecutive merged vertices of the region polygons; faces are the regions plus the outer face. Returns ``{"V", "E", "F", "components", "ok"}`` with
        ``ok = V - E + F == 1 + components``.
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        tol = 1e-10 * self.scale if tol is None else tol
        pts = np.concatenate(self.regions)
        pairs = cKDTree(pts).query_pairs(tol, output_type="ndarray")
        n = len(pts)
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, ids = connected_components(g, directed=False)
        edges = set()
        used = set()
        pos = 0
        for p in self.regions:
            seq = ids[pos : pos + len(p)]
            pos += len(p)
            seq = [int(a) for i, a in enumerate(seq) if a != seq[i - 1]] or [int(seq[0])]
            used.update(seq)
            for i in range(len(seq)):
                a, b = seq[i], seq[(i + 1) % len(seq)]
                if a != b:
                    edges.add((min(a, b), max(a, b)))
        e = np.array(sorted(edges)).reshape(-1, 2)
        remap = {k: i for i, k in enumerate(sorted(used))}
        ea = np.array([remap[a] for a in e[:, 0]]) if len(e) else np.zeros(0, int)
        eb = np.array([remap[b] for b in e[:, 1]]) if len(e) else np.zeros(0, int)
        n_v = len(used)
        graph = coo_matrix((np.ones(len(e)), (ea, eb)), shape=(n_v, n_v))
        n_comp, _ = connected_components(graph, directed=False)
        n_f = len(self.regions) + 1
        return {"V": n_v, "E": len(e), "F": n_f, "components": int(n_comp),
                "ok": n_v - len(e) + n_f == 1 + n_comp}

    def to_frame(self):
        """One row per region: index, vertices, area, interior point, Hamming weight."""
        import pandas as pd

        return pd.DataFrame({
            "region": np.arange(len(self)),
            "n_vertices": [len(p) for p in self.regions],
            "area": self.areas(),
            "s": self.interior[:, 0], "t": self.interior[:, 1],
            "ones": np.unpackbits(self.codes, axis=1).sum(axis=1),
        })


# ---------------------------------------------------------------------- plane set-up
def plane_through(anchors, *, margin: float = 0.25):
    """(origin, u, v, polygon, anchor coords) of the plane through three inputs.

    ``u, v`` are orthonormal (Gram-Schmidt on ``x1 - x0, x2 - x0``), the origin is the
    triangle's centroid, so ``(s, t)`` are Euclidean coordinates in input space; the polygon
    is the square around the triangle's bounding box, enlarged by ``margin`` of its side.
    """
    a = np.asarray(anchors.detach().cpu() if isinstance(anchors, torch.Tensor) else anchors,
                   dtype=np.float64)
    if a.ndim < 2 or a.shape[0] != 3:
        raise InputError(f"anchors must be three inputs (3, *input_shape), got shape {a.shape}")
    flat = a.reshape(3, -1)
    d1, d2 = flat[1] - flat[0], flat[2] - flat[0]
    n1 = np.linalg.norm(d1)
    if n1 == 0:
        raise InputError("anchors 0 and 1 are the same input; pick three distinct inputs")
    u = d1 / n1
    w = d2 - (d2 @ u) * u
    if np.linalg.norm(w) <= 1e-9 * max(n1, np.linalg.norm(d2)):
        raise InputError("the three anchors are collinear, so they span no plane; pick three "
                         "inputs that are not on one line")
    v = w / np.linalg.norm(w)
    origin = flat.mean(axis=0)
    st = np.stack([(flat - origin) @ u, (flat - origin) @ v], axis=1)
    lo, hi = st.min(axis=0), st.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + 2 * margin)
    square = centre + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    shape = a.shape[1:]
    return origin.reshape(shape), u.reshape(shape), v.reshape(shape), square, st


# ---------------------------------------------------------------------- forward passes
class _Enough(Exception):
    """Raised inside a forward pass that has recorded every layer it was asked for."""


class _PlaneRecorder(_PreRecorder):
    """:class:`_PreRecorder` that also keeps the input of every max-pooling module (through
    module hooks) and lets the module's own max-pool call through."""

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.in_pool = 0
        self.stop_after = stop_after  # end the pass once this layer (0-based) is recorded

    def _enough(self) -> None:
        if self.stop_after is not None and len(self.pre) > self.stop_after:
            raise _Enough

    def before(self, call) -> None:
        super().before(call)
        self._enough()

    def pool(self, name: str, x: torch.Tensor) -> None:
        if self.nonlinear is not None:
            raise NotPiecewiseLinearError(
                f"{self.nonlinear} runs before max pooling {name}, so its inputs are not "
                "piecewise linear in the plane")
        self.pre.append(x.clone())
        self.records.append((name, None, tuple(x.shape[1:])))
        self.in_pool += 1
        self._enough()

    def other(self, func) -> None:
        if func in _MAX_POOL:
            if self.in_pool:
                return
            raise NotPiecewiseLinearError(
                "max pooling is called as a function inside the model's forward; call it "
                "through an nn.MaxPool1d/2d/3d (or nn.AdaptiveMaxPool) module, whose windows "
                "the plane partition splits exactly")
        super().other(func)


class _Plane:
    """The model (float64 copy) restricted to the plane: values and (s, t) slopes of the
    pre-activations of every ReLU-like layer and the inputs of every max-pooling module."""

    def __init__(self, model, origin, u, v, dtype):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for name, m in model.named_modules():
            if isinstance(m, _NOT_PL_MODULES):
                raise NotPiecewiseLinearError(
                    f"module {name or '<root>'} ({type(m).__name__}) is not piecewise linear, "
                    "so the network has no exact linear regions; replace it by a ReLU-like unit "
                    "(ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh) or average pooling"
                )
        self.model = copy.deepcopy(model).to(dtype).eval()
        p = next(iter(self.model.parameters()), None)
        self.device = p.device if p is not None else torch.device("cpu")
        self.dtype = dtype
        self.aim(origin, u, v)
        self.names: list[str] | None = None
        self.kinks: list[tuple[float, ...] | None] = []  # None: a max-pooling layer
        self.windows: list[np.ndarray | None] = []
        self._rec: _PlaneRecorder | None = None
        self._pools = {}
        for name, m in self.model.named_modules():
            if isinstance(m, POOLS + ADAPTIVE_POOLS):
                self._pools[name] = m
                m.register_forward_pre_hook(
                    lambda mod, inputs, name=name: self._rec and self._rec.pool(name, inputs[0]))
                m.register_forward_hook(lambda mod, inputs, output: self._pool_done())

    def aim(self, origin, u, v) -> None:
        """Restrict the model to the plane ``origin + s*u + t*v`` (arrays of the input's
        shape); the float64 copy of the model is kept."""
        kw = {"dtype": self.dtype, "device": self.device}
        self.origin = torch.as_tensor(origin, **kw)
        self.u = torch.as_tensor(u, **kw)
        self.v = torch.as_tensor(v, **kw)

    def _pool_done(self) -> None:
        if self._rec is not None:
            self._rec.in_pool -= 1

    def points(self, st: np.ndarray) -> torch.Tensor:
        st = torch.as_tensor(st, dtype=self.dtype, device=self.device)
        shape = (-1,) + (1,) * self.origin.ndim
        return (self.origin[None] + st[:, 0].view(shape) * self.u
                + st[:, 1].view(shape) * self.v)

    def _record(self, x, upto: int | None = None):
        """Recorded layers (flattened) and the output; with ``upto`` (once the layout is
        known) the pass stops after that layer and the output is None."""
        rec = self._rec = _PlaneRecorder(upto if self.names is not None else None)
        out = None
        try:
            with ActivationRecorder(self.model, before=rec.before, other=rec.other,
                                    eval=False) as recorder:
                out = recorder(x)
        except _Enough:
            pass
        finally:
            self._rec = None
        if not rec.pre:
            raise NoReluUnitError(no_relu_message(self.model))
        if rec.nonlinear is not None:
            raise NotPiecewiseLinearError(
                f"{rec.nonlinear} runs inside the model's forward, so its output is not "
                "piecewise linear; remove it (return logits) or replace it by a ReLU-like unit")
        if self.names is None:
            self._layout(rec.records)
        pre = [p.reshape(p.shape[0], -1) for p in rec.pre]
        return pre, None if out is None else out.reshape(out.shape[0], -1)

    def _layout(self, records) -> None:
        self.names = [r[0] for r in records]
        self.kinks = [r[1] for r in records]
        self.windows = []
        for name, kinks, shape in records:
            if kinks is not None:
                self.windows.append(None)
                continue
            module = self._pools[name]
            windows = pool_windows(module, shape)
            if not check_windows(module, shape, windows, self.dtype):
                raise NotPiecewiseLinearError(
                    f"the windows of max pooling {name} ({module}) could not be reproduced; "
                    "the plane partition does not support this pooling configuration")
            self.windows.append(windows)

    def values(self, st: np.ndarray):
        with torch.no_grad():
            return self._record(self.points(st))

    def linearize(self, st: np.ndarray, upto: int | None = None):
        """At plane points (B, 2): [(z, dz/ds, dz/dt) per layer], (y, dy/ds, dy/dt); with
        ``upto``, only the layers up to that one (the pass stops there) and None."""
        import torch.autograd.forward_ad as fwad

        b = len(st)
        x = self.points(st).repeat((2,) + (1,) * self.origin.ndim)
        tang = torch.cat([self.u.expand((b,) + self.u.shape), self.v.expand((b,) + self.v.shape)])
        with torch.no_grad(), fwad.dual_level():
            pre, out = self._record(fwad.make_dual(x, tang), upto)

            def split(t):
                d = fwad.unpack_dual(t)
                tan = d.tangent if d.tangent is not None else torch.zeros_like(d.primal)
                return d.primal[:b], tan[:b], tan[b:]

            return [split(p) for p in pre], None if out is None else split(out)


def plane_partition(
    model: nn.Module,
    anchors=None,
    *,
    plane=None,
    margin: float = 0.25,
    max_regions: int = 200_000,
    batch_size: int = 256,
    dtype: torch.dtype = torch.float64,
    check: bool = True,
) -> PlanePartition:
    """The exact partition of a plane polygon into the linear regions of ``model``.

    anchors : three inputs (3, *input_shape): the plane through them, orthonormal
        coordinates, a square around their triangle (``margin`` of its side on each side).
    plane : instead of anchors, ``(origin, u, v, polygon)`` -- the plane ``origin + s*u +
        t*v`` and a convex polygon (K, 2) in ``(s, t)``.
    max_regions : stop with :class:`~acthash.errors.ResourceError` once the partition has
        more regions (checked after every split, before memory grows further).
    batch_size : regions linearized per forward pass (bounds memory for wide conv nets).
    check : compare each region's output map with a forward pass at a second interior
        point (relative error ``<= 1e-9``); raises NotPiecewiseLinearError otherwise.
    """
    if (anchors is None) == (plane is None):
        raise InputError("give either anchors (three inputs) or plane=(origin, u, v, polygon)")
    coords = None
    if anchors is not None:
        origin, u, v, polygon, coords = plane_through(anchors, margin=margin)
    else:
        try:
            origin, u, v, polygon = plane
        except (TypeError, ValueError):
            raise InputError("plane must be a tuple (origin, u, v, polygon)") from None
        origin, u, v = (np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a,
                                   dtype=np.float64) for a in (origin, u, v))
        if not origin.shape == u.shape == v.shape:
            raise InputError(f"origin, u and v must have one shape, got {origin.shape}, "
                             f"{u.shape}, {v.shape}")
        if np.linalg.matrix_rank(np.stack([u.ravel(), v.ravel()]), tol=1e-12) < 2:
            raise InputError("u and v are parallel (or zero), so they span no plane; give two "
                             "independent directions")
    polygon = convex_ccw(polygon)
    if max_regions < 1:
        raise InputError(f"max_regions must be >= 1, got {max_regions}")
    pl = _Plane(model, origin, u, v, dtype)
    return _partition(pl, polygon, coords, max_regions=max_regions, batch_size=batch_size,
                      check=check)


def _partition(pl: _Plane, polygon: np.ndarray, coords, *, max_regions: int, batch_size: int,
               check: bool) -> PlanePartition:
    """The partition of convex ``polygon`` (counter-clockwise) in the plane ``pl`` is aimed
    at (see :func:`plane_partition`)."""
    scale = float(np.abs(polygon).max() + (polygon.max(axis=0) - polygon.min(axis=0)).max())
    tol = 1e-11 * scale
    pl.values(polygon[:1])  # layout (names and kinks), and the model checks
    pieces = [polygon]
    counts = []
    for layer, kinks in enumerate(pl.kinks):
        new: list[np.ndarray] = []
        for lo in range(0, len(pieces), batch_size):
            chunk = pieces[lo : lo + batch_size]
            c = centroids(chunk)
            lins, _ = pl.linearize(c, upto=layer)
            z, gs, gt = (a.cpu().numpy() for a in lins[layer])
            off = z - gs * c[:, :1] - gt * c[:, 1:]  # affine map: gs*s + gt*t + off
            if kinks is None:  # max pooling: split into the cells of fixed switches
                for i, q in enumerate(chunk):
                    new.extend(split_by_windows(q, pl.windows[layer], gs[i], gt[i], off[i],
                                                tol, scale))
                    if len(new) + len(pieces) - lo - i - 1 > max_regions:
                        raise _too_many(max_regions, pl.names[layer])
                continue
            norm = np.hypot(gs, gt)
            per_piece = []
            for i, q in enumerate(chunk):
                moving = norm[i] > 1e-12 * (1 + np.abs(z[i]).max())
                nn_ = norm[i][moving]
                lines = np.concatenate([
                    np.stack([gs[i][moving] / nn_, gt[i][moving] / nn_,
                              (off[i][moving] - k) / nn_], axis=1) for k in kinks])
                f = q @ lines[:, :2].T + lines[:, 2]  # only the lines that cross the piece
                per_piece.append(lines[(f > tol).any(axis=0) & (f < -tol).any(axis=0)])
            budget = max_regions - len(new) - (len(pieces) - lo - len(chunk))
            cells = split_all(chunk, per_piece, tol, limit=budget)
            if cells is None:
                raise _too_many(max_regions, pl.names[layer])
            new.extend(cells)
        keep = areas(new) > 1e-20 * scale**2
        pieces = [q for q, k in zip(new, keep, strict=True) if k]
        counts.append(len(pieces))
    return _finish(pl, pieces, polygon, counts, coords, scale, tol, batch_size, check)


def _too_many(max_regions: int, layer: str) -> ResourceError:
    return ResourceError(
        f"the partition has more than max_regions={max_regions} linear regions (at layer "
        f"{layer}); raise max_regions or shrink the polygon")


def _finish(pl: _Plane, pieces, polygon, counts, coords, scale, tol, batch_size, check):
    from acthash.core.capture import pack_bits_torch

    interior = centroids(pieces)
    codes, sw, jac, bias = [], [], [], []
    for lo in range(0, len(pieces), batch_size):
        c = interior[lo : lo + batch_size]
        lins, (y, ys, yt) = pl.linearize(c)
        bits, pos = [], []
        for (z, _, _), kinks, windows in zip(lins, pl.kinks, pl.windows, strict=True):
            if kinks is None:
                pos.append(switches(windows, z.cpu().numpy()))
            else:
                bits.extend(z > k for k in kinks)
        codes.append(pack_bits_torch(torch.cat(bits, dim=1)).cpu().numpy() if bits
                     else np.zeros((len(c), 0), dtype=np.uint8))
        sw.append(np.concatenate(pos, axis=1).astype(np.int32) if pos
                  else np.zeros((len(c), 0), dtype=np.int32))
        y, ys, yt = (a.cpu().numpy() for a in (y, ys, yt))
        jac.append(np.stack([ys, yt], axis=2))
        bias.append(y - ys * c[:, :1] - yt * c[:, 1:])
    codes, jac, bias = np.concatenate(codes), np.concatenate(jac), np.concatenate(bias)
    sw = np.concatenate(sw)
    checks = {}
    if check:
        # a second interior point: halfway between the vertex mean and the first vertex
        other = (interior + np.array([q[0] for q in pieces])) / 2
        err = 0.0
        for lo in range(0, len(pieces), batch_size):
            sl = slice(lo, lo + batch_size)
            _, y = pl.values(other[sl])
            pred = np.einsum("rcd,rd->rc", jac[sl], other[sl]) + bias[sl]
            y = y.cpu().numpy()
            err = max(err, float((np.abs(pred - y) / (1 + np.abs(y))).max()))
        checks["affine_max_rel_error"] = err
        if err > 1e-9:
            raise NotPiecewiseLinearError(
                f"the model's output is not affine inside a region (relative error {err:.3g}): "
                "it has an operation that is not piecewise linear in its ReLU-like units")
    layer_bits = [0 if k is None else len(k) * int(z[0].shape[1])
                  for k, z in zip(pl.kinks, lins, strict=True)]
    n_bits = sum(layer_bits)
    boundary = argmax_boundary(pieces, jac, bias, tol)
    return PlanePartition(
        origin=pl.origin.cpu().numpy(), u=pl.u.cpu().numpy(), v=pl.v.cpu().numpy(),
        polygon=polygon, regions=pieces, interior=interior, codes=codes, out_jac=jac,
        out_bias=bias, counts=counts, layer_names=list(pl.names), n_bits=n_bits,
        boundary=boundary, anchors=coords, scale=scale, checks=checks, switches=sw,
        layer_kinds=["maxpool" if k is None else "relu" for k in pl.kinks],
        layer_bits=layer_bits)


def grid_codes(partition: PlanePartition, model: nn.Module, n: int, *,
               batch_size: int = 4096) -> np.ndarray:
    """Packed codes (n*n, n_bytes) of ``model`` (via :func:`acthash.core.capture.neural_codes`)
    on an ``n x n`` grid over the polygon's bounding box, restricted to points inside it; an
    independent, approximate count of the regions is the number of distinct rows."""
    from acthash.core.capture import neural_codes

    lo, hi = partition.polygon.min(axis=0), partition.polygon.max(axis=0)
    gs, gt = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    st = np.stack([gs.ravel(), gt.ravel()], axis=1)
    p = partition.polygon
    e = np.roll(p, -1, axis=0) - p
    cross = e[None, :, 0] * (st[:, None, 1] - p[None, :, 1]) - e[None, :, 1] * (
        st[:, None, 0] - p[None, :, 0])
    st = st[(cross >= 0).all(axis=1)]
    dtype = next(iter(model.parameters())).dtype
    x = torch.as_tensor(partition.to_input(st), dtype=dtype)
    return neural_codes(model, x, batch_size=batch_size, check_finite=False).packed

