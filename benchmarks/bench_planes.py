"""Timings of the exact plane partition and of local complexity.

    python benchmarks/bench_planes.py [--quick]

1. ``plane_partition`` of a square with about 10^4 linear regions (MLP 784-128-128-10 at
   init, square of half-side 20 in an orthonormal plane through a Gaussian point);
   baseline: the obvious approximation, codes on a 1000 x 1000 grid (``neural_codes``) and
   their distinct count, which still misses regions.
2. Cost per region as the width grows (784-w-w-10, square of half-side 4).
3. ``local_complexity`` of 1 000 points x 50 vertices (P = 25) on 784-200-200-200-10;
   baseline: a plain float64 forward pass over the same 51 000 rows.
"""

import sys
import time

import numpy as np
import torch
from torch import nn

from acthash.core.capture import neural_codes
from acthash.geometry import local_complexity, plane_partition


def mlp(*sizes, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def plane(dim, half, seed=0):
    g = torch.Generator().manual_seed(seed)
    origin = torch.randn(dim, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g, dtype=torch.float64))
    square = half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    return origin.numpy(), q[:, 0].numpy(), q[:, 1].numpy(), square


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(quick=False):
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    half = 3.0 if quick else 20.0
    net = mlp(784, 128, 128, 10)
    pl = plane(784, half)
    part, t_exact = timed(lambda: plane_partition(net, plane=pl))
    n = 200 if quick else 1000
    s = np.linspace(-half, half, n)
    ss, tt = np.meshgrid(s, s)
    st = np.stack([ss.ravel(), tt.ravel()], axis=1)

    def grid():  # in chunks of 20 000 points, so the 784-d grid never sits in memory at once
        return np.concatenate([
            neural_codes(net, torch.as_tensor(part.to_input(st[i : i + 20_000]),
                                              dtype=torch.float32), batch_size=5000).packed
            for i in range(0, len(st), 20_000)])

    codes, t_grid = timed(grid)
    n_grid = len(np.unique(codes, axis=0))
    print(f"[1] exact partition: {part.n_regions} regions in {t_exact:.2f} s "
          f"({1e3 * t_exact / part.n_regions:.2f} ms/region), Euler ok={part.euler()['ok']}")
    print(f"    grid {n}x{n} codes: {t_grid:.2f} s, {n_grid} distinct "
          f"({n_grid / part.n_regions:.3f} of the exact count); "
          f"exact/grid time ratio {t_exact / t_grid:.2f}")
    for w in ((16, 32) if quick else (16, 32, 64, 128, 256)):
        p, t = timed(lambda w=w: plane_partition(mlp(784, w, w, 10), plane=plane(784, 4.0)))
        print(f"[2] width {w:4d}: {p.n_regions:6d} regions, {t:7.2f} s, "
              f"{1e3 * t / p.n_regions:.3f} ms/region")
    big = mlp(784, 200, 200, 200, 10)
    pts = torch.randn(100 if quick else 1000, 784, dtype=torch.float64)
    lc, t_lc = timed(lambda: local_complexity(big, pts, radius=0.5, n_directions=25,
                                              batch_size=100))
    rows = pts.repeat_interleave(51, dim=0)
    b64 = mlp(784, 200, 200, 200, 10).double()
    with torch.no_grad():
        _, t_fw = timed(lambda: [b64(rows[i : i + 5100]) for i in range(0, len(rows), 5100)])
    print(f"[3] local complexity {len(pts)} points x 50 vertices: {t_lc:.2f} s; plain "
          f"float64 forward over the {len(rows)} rows {t_fw:.2f} s; ratio {t_lc / t_fw:.2f}; "
          f"mean LC {lc.total.mean():.1f} (per layer {lc.per_layer.mean(axis=0).round(1)})")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
