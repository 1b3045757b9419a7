"""Timings of the exact plane partition and of local complexity.

    python benchmarks/bench_planes.py [--quick]

1. ``plane_partition`` of a square with about 10^4 linear regions (MLP 784-128-128-10 at
   init, square of half-side 20 in an orthonormal plane through a Gaussian point);
   baseline: the obvious approximation, codes on a 1000 x 1000 grid (``neural_codes``) and
   their distinct count, which still misses regions.
2. Cost per region as the width grows (784-w-w-10, square of half-side 4).
3. ``local_complexity`` of 1 000 points x 50 vertices (P = 25) on 784-200-200-200-10;
   baseline: a plain float64 forward pass over the same 51 000 rows.
4. A CNN with max pooling (1x28x28 -> Conv 8 5x5 -> ReLU -> MaxPool 2 -> Conv 8 3x3 -> ReLU
   -> MaxPool 2 -> Linear 10) on a square of half-side 0.5 in a random orthonormal plane:
   regions with and without the switches' pieces (the same net with average pooling),
   cost per region.
5. Sampled local complexity against the exact count on the same 2-D squares
   (``plane_complexity_error``), MLP 784-200x4-10 on 1 000 Fashion-MNIST training images
   (MSE, AdamW, lr 1e-3, weight decay 0.01, batch 200) at init and after 50 and 500 epochs,
   200 training points, radius 0.2 (the study's), skipped without the Debian
   Fashion-MNIST files.
6. The local-complexity callback's cost per checkpoint (train, test and random sets of 300
   points, P = 25, the study's setting) against one training epoch (5 AdamW steps of batch
   200, MSE) and one step of the same 784-200x4-10 MLP.
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


def cnn(pool, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), pool(2), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         pool(2), nn.Flatten(), nn.Linear(8 * 5 * 5, 10)).eval()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(quick=False):
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    half = 3.0 if quick else 20.0
    net = mlp(784, 128, 128, 10)
    plane_partition(net, plane=plane(784, 1.0))  # warm-up: imports, forward-mode set-up
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
    if not quick:  # past 10^4 regions
        big, t_big = timed(lambda: plane_partition(net, plane=plane(784, 30.0)))
        print(f"    half-side 30: {big.n_regions} regions in {t_big:.2f} s "
              f"({1e3 * t_big / big.n_regions:.2f} ms/region), Euler ok={big.euler()['ok']}")
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


    o, u, v, sq = plane(784, 0.25 if quick else 0.5)
    img = tuple(a.reshape(1, 28, 28) for a in (o, u, v))
    for name, pool in (("max", nn.MaxPool2d), ("average", nn.AvgPool2d)):
        p, t = timed(lambda pool=pool: plane_partition(cnn(pool), plane=(*img, sq)))
        print(f"[4] CNN, {name} pooling: {p.n_regions} regions ({p.counts} per layer "
              f"{p.layer_kinds}), {t:.2f} s, {1e3 * t / p.n_regions:.2f} ms/region, "
              f"Euler ok={p.euler()['ok']}")
    lc_error(quick)
    lc_overhead(quick)


def lc_overhead(quick=False):
    from acthash.geometry import LocalComplexityCallback
    from acthash.train import TrainConfig, train

    torch.manual_seed(0)
    big = mlp(784, 200, 200, 200, 200, 10)
    x = torch.rand(1000, 784)
    y = torch.randint(0, 10, (1000,))
    n = 60 if quick else 300
    sets = {k: torch.rand(n, 784, generator=torch.Generator().manual_seed(i))
            for i, k in enumerate(("train", "test", "random"))}
    cb = LocalComplexityCallback(sets, radius=0.2, n_directions=25)
    cb(0, big)  # warm-up
    _, t_lc = timed(lambda: cb(1, big))
    epochs = 5 if quick else 20
    cfg = TrainConfig(epochs=epochs, lr=1e-3, optimizer="adamw", weight_decay=0.01,
                      batch_size=200, loss="mse")
    train(big, x, y, TrainConfig(epochs=1, batch_size=200, loss="mse"))  # warm-up
    _, t_train = timed(lambda: train(big, x, y, cfg))
    epoch, step = t_train / epochs, t_train / (5 * epochs)
    print(f"[6] local complexity per checkpoint (3 x {n} points, P = 25): {t_lc:.2f} s = "
          f"{t_lc / epoch:.1f} training epochs = {t_lc / step:.0f} steps (epoch "
          f"{1e3 * epoch:.1f} ms, step {1e3 * step:.2f} ms)")


def lc_error(quick=False):
    from acthash import data
    from acthash.errors import MissingFileError
    from acthash.geometry import plane_complexity_error
    from acthash.models import build_model
    from acthash.train import TrainConfig, train

    try:
        ds = data.load("fashion-mnist")
    except MissingFileError as e:
        print(f"[5] skipped: {e}")
        return
    x, y = ds.x_train[:1000], ds.y_train[:1000]
    torch.manual_seed(0)
    model = build_model("mlp", ds.input_shape, 10, width=200, depth=4)
    pts = x[:40 if quick else 200]
    done = 0
    for epochs in ((0, 5) if quick else (0, 50, 500)):
        if epochs > done:
            train(model, x, y, TrainConfig(epochs=epochs - done, lr=1e-3, optimizer="adamw",
                                           weight_decay=0.01, batch_size=200, loss="mse",
                                           seed=epochs))
            done = epochs
        err, t = timed(lambda: plane_complexity_error(model, pts, radius=0.2, seed=0))
        row = err.set_index("layer")
        print(f"[5] epoch {epochs}: exact vs sampled (P = 2) local complexity of {len(pts)} "
              f"points in {t:.1f} s")
        for layer, r in row.iterrows():
            print(f"      {layer:>10}: exact {r.exact_mean:6.2f}, sampled {r.sampled_mean:6.2f},"
                  f" shortfall {r.shortfall_mean:5.2f} ({100 * r.relative_shortfall:4.1f} %), "
                  f"points undercounted {100 * r.points_undercounted:4.1f} %")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
