"""Local complexity: how many neurons' kink hyperplanes cross a small neighbourhood.

For an input ``x`` the neighbourhood is the cross-polytope with the ``2P`` vertices ``x ± r
d_i`` for ``P`` orthonormal directions ``d_i`` (the same directions for every point, drawn
from ``seed``). A neuron (a unit and one of its kinks: ReLU6 and Hardtanh have two) **counts
when its pre-activation minus the kink changes sign across the 2P vertices and the centre**
(some of the ``2P + 1`` points strictly above the kink and some at or below it, the bit
convention of :func:`acthash.core.capture.neural_codes`). The count is per ReLU-like layer.

For the first layer the pre-activation is affine in the input, so the count is exact: it is
the number of first-layer hyperplanes ``w.x + b = kink`` that cut the cross-polytope, i.e.
``|w.x + b - kink| < r * max_i |w.d_i|``. Deeper layers are sampled at the vertices (a
hyperplane that bends inside the neighbourhood and leaves every vertex on one side is
missed), which is the local-complexity measure of Humayun et al. (2024).

Points are streamed ``batch_size`` at a time (``batch_size * (2P + 1)`` rows per forward
pass), so memory is bounded whatever the number of points.

**Against the exact partition.** With ``P = 2`` the neighbourhood is a square (a diamond) in
the plane of its two directions, and :func:`plane_local_complexity` counts exactly the units
whose bent hyperplane crosses it: the bits that differ between the linear regions of the
diamond's exact partition (:func:`acthash.geometry.planes.plane_partition`). A sampled point
lies in the diamond, so the sampled count never exceeds the exact one; the first layer is
equal, deeper layers fall short by the hyperplanes that bend in and out between the
vertices. :func:`plane_complexity_error` reports the shortfall per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from acthash._utils.run import progress_bar
from acthash.errors import InputError
from acthash.geometry.regions import _Linearizer

__all__ = ["LocalComplexity", "local_complexity", "cross_polytope_directions",
           "LocalComplexityCallback", "plane_local_complexity", "plane_complexity_error"]


@dataclass
class LocalComplexity:
    """Result of :func:`local_complexity`.

    per_layer : (N, L) neurons crossing each point's neighbourhood, per ReLU-like layer
    layer_names : the L layer names; radius, n_directions : the neighbourhood
    """

    per_layer: np.ndarray
    layer_names: list[str]
    radius: float
    n_directions: int

    @property
    def total(self) -> np.ndarray:
        """(N,) neurons crossing the neighbourhood, all layers together."""
        return self.per_layer.sum(axis=1)

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame(self.per_layer, columns=self.layer_names)
        df.insert(0, "point", np.arange(len(df)))
        df["total"] = self.total
        return df


def cross_polytope_directions(dim: int, n_directions: int, seed: int = 0) -> torch.Tensor:
    """(P, dim) orthonormal directions (QR of a seeded Gaussian matrix), float64."""
    if not 1 <= n_directions <= dim:
        raise InputError(f"n_directions must be between 1 and the input dimension {dim}, got "
                         f"{n_directions}")
    g = torch.randn(dim, n_directions, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    q, _ = torch.linalg.qr(g)
    return q.T.contiguous()


def local_complexity(
    model: nn.Module,
    x,
    *,
    radius: float,
    n_directions: int = 25,
    seed: int = 0,
    batch_size: int = 64,
    dtype: torch.dtype | None = torch.float64,
    directions=None,
    progress: bool = False,
) -> LocalComplexity:
    """Neurons whose hyperplane crosses the cross-polytope of radius ``radius`` around each
    row of ``x`` (N, *input_shape); see the module docstring for the exact rule.

    n_directions : P, the cross-polytope has 2P vertices (same seeded directions for all).
    directions : instead, the (P, dim) directions themselves (orthonormal rows).
    batch_size : points per forward pass (each brings 2P + 1 rows).
    dtype : compute on a copy of the model in this dtype (``None``: the model's own).
    """
    if not radius > 0:
        raise InputError(f"radius must be positive, got {radius}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    lin = _Linearizer(model, dtype)
    x = lin.cast(x)
    if x.ndim < 2:
        raise InputError("x must have a batch dimension: (N, *input_shape)")
    shape = x.shape[1:]
    dim = int(np.prod(shape))
    if directions is None:
        d = cross_polytope_directions(dim, n_directions, seed)
    else:
        d = torch.as_tensor(np.asarray(directions), dtype=torch.float64).reshape(-1, dim)
        n_directions = len(d)
    d = d.to(lin.device, lin.dtype)
    offsets = torch.cat([torch.zeros(1, d.shape[1], dtype=lin.dtype, device=lin.device),
                         radius * d, -radius * d]).reshape((-1,) + tuple(shape))
    n_pts = offsets.shape[0]
    rows = []
    bar = progress_bar(enabled=progress, total=len(x), desc="local complexity", unit="point")
    for lo in range(0, len(x), batch_size):
        xb = x[lo : lo + batch_size]
        pts = (xb[:, None] + offsets[None]).reshape((-1,) + tuple(shape))
        pre = lin.values(pts)
        counts = []
        for z, kinks in zip(pre, lin.layout.kinks, strict=True):
            z = z.reshape(len(xb), n_pts, -1)
            c = torch.zeros(len(xb), dtype=torch.long, device=z.device)
            for k in kinks:
                above = z > k
                c += (above.any(dim=1) & ~above.all(dim=1)).sum(dim=1)
            counts.append(c)
        rows.append(torch.stack(counts, dim=1).cpu().numpy())
        bar.update(len(xb))
    bar.close()
    return LocalComplexity(np.concatenate(rows), list(lin.layout.names), float(radius),
                           int(n_directions))


class LocalComplexityCallback:
    """``on_checkpoint`` callback for :func:`acthash.train.train` that records the local
    complexity of named point sets at every checkpoint.

    ``sets`` maps a name ("train", "test", "random") to a (N, *input_shape) tensor; the
    directions are the same at every checkpoint (one seed). :meth:`frame` gives one row per
    (epoch, set, layer) with the mean and standard deviation over the points.
    """

    def __init__(self, sets: dict, *, radius: float, n_directions: int = 25, seed: int = 0,
                 batch_size: int = 64):
        if not sets:
            raise InputError("give at least one point set, e.g. {'train': x_train[:500]}")
        self.sets = sets
        self.kwargs = {"radius": radius, "n_directions": n_directions, "seed": seed,
                       "batch_size": batch_size}
        self.records: list[dict] = []

    def __call__(self, epoch: int, model: nn.Module) -> None:
        for name, pts in self.sets.items():
            lc = local_complexity(model, pts, **self.kwargs)
            layers = [*lc.layer_names, "total"]
            values = np.concatenate([lc.per_layer, lc.total[:, None]], axis=1)
            for j, layer in enumerate(layers):
                self.records.append({"epoch": int(epoch), "set": name, "layer": layer,
                                     "mean": float(values[:, j].mean()),
                                     "std": float(values[:, j].std())})

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.records, columns=["epoch", "set", "layer", "mean", "std"])


def plane_local_complexity(model: nn.Module, x, *, radius: float, directions=None,
                           seed: int = 0, progress: bool = False) -> LocalComplexity:
    """The exact count, per ReLU-like layer, of units whose kink crosses the square with
    vertices ``x ± radius * d_1``, ``x ± radius * d_2`` around each row of ``x``: the bits
    that differ between the linear regions of its exact partition. ``directions`` (2, dim)
    orthonormal rows; default the first two seeded directions of
    :func:`cross_polytope_directions` (those of ``local_complexity(..., seed=seed)``)."""
    from acthash.geometry.planes import _partition, _Plane

    if not radius > 0:
        raise InputError(f"radius must be positive, got {radius}")
    x = torch.as_tensor(x).detach().cpu().double()
    if x.ndim < 2:
        raise InputError("x must have a batch dimension: (N, *input_shape)")
    shape = tuple(x.shape[1:])
    dim = int(np.prod(shape))
    if directions is None:
        directions = cross_polytope_directions(dim, 2, seed)
    d = np.asarray(directions, dtype=np.float64).reshape(-1, dim)
    if len(d) != 2:
        raise InputError(f"give two directions (2, {dim}), got {len(d)}")
    diamond = radius * np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    u, v = d[0].reshape(shape), d[1].reshape(shape)
    rows, names = [], None
    bar = progress_bar(enabled=progress, total=len(x), desc="exact local complexity",
                       unit="point")
    plane = None
    for xi in x.numpy():
        if plane is None:  # one float64 copy of the model for every point
            plane = _Plane(model, xi, u, v, torch.float64)
        else:
            plane.aim(xi, u, v)
        part = _partition(plane, diamond, None, max_regions=200_000, batch_size=256,
                          check=False)
        relu = [i for i, k in enumerate(part.layer_kinds) if k == "relu"]
        names = [part.layer_names[i] for i in relu]
        rows.append(part.varying_bits()[relu])
        bar.update(1)
    bar.close()
    return LocalComplexity(np.array(rows).reshape(len(x), -1), names or [], float(radius), 2)


def plane_complexity_error(model: nn.Module, x, *, radius: float, seed: int = 0):
    """Sampled (:func:`local_complexity` with the same two directions) against exact
    (:func:`plane_local_complexity`) local complexity: one row per layer and a total, with
    the means, the mean shortfall ``exact - sampled`` (never negative), its share of the
    exact mean, and the share of points undercounted."""
    import pandas as pd

    xt = torch.as_tensor(x).detach().cpu().double()
    dim = int(np.prod(xt.shape[1:]))
    d = cross_polytope_directions(dim, 2, seed)
    exact = plane_local_complexity(model, xt, radius=radius, directions=d)
    sampled = local_complexity(model, xt, radius=radius, directions=d)
    rows = []
    for j, name in enumerate([*exact.layer_names, "total"]):
        e = exact.total if name == "total" else exact.per_layer[:, j]
        s = sampled.total if name == "total" else sampled.per_layer[:, j]
        gap = e - s
        rows.append({"layer": name, "exact_mean": float(e.mean()), "sampled_mean": float(
            s.mean()), "shortfall_mean": float(gap.mean()),
            "relative_shortfall": float(gap.mean() / e.mean()) if e.mean() > 0 else 0.0,
            "points_undercounted": float((gap > 0).mean()), "min_gap": int(gap.min())})
    return pd.DataFrame(rows)
