"""Training throughput: ``acthash.train.train`` vs a bare PyTorch loop, same run.

Same model (freshly seeded MLP), same data (the first N Fashion-MNIST training images, or
scikit-learn digits when Fashion-MNIST is not installed), same optimizer, batch size and
epochs. The two are timed alternately, several repeats each; the ratio of medians is
printed (target: acthash.train <= 1.15x the bare loop).

    PYTHONPATH=src python benchmarks/bench_train.py [--n 10000 --width 100 --epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from acthash import data
from acthash.models import MLP
from acthash.train import TrainConfig, seed_everything, train


def bare_loop(model, x, y, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """The loop one writes by hand: shuffle, slice, forward, loss, backward, step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for lo in range(0, n, batch_size):
            idx = perm[lo : lo + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    try:
        ds = data.load("fashion-mnist", n_train=a.n, n_test=10)
    except data.DatasetNotFoundError:
        ds = data.load("digits")
    x, y = ds.x_train.to(a.device), ds.y_train.to(a.device)
    cfg = TrainConfig(epochs=a.epochs, lr=1e-3, batch_size=a.batch_size, seed=0,
                      device=a.device)

    def fresh():
        seed_everything(0)
        return MLP(int(x[0].numel()), a.width, ds.n_classes).to(a.device)

    def sync():
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    times = {"bare": [], "acthash": []}
    # one warm-up of each, then alternate so both see the same machine load
    bare_loop(fresh(), x, y, 1, a.batch_size, 1e-3, 0)
    train(fresh(), x, y, TrainConfig(epochs=1, lr=1e-3, batch_size=a.batch_size,
                                     device=a.device))
    for _ in range(a.repeats):
        m = fresh()
        sync()
        t = time.perf_counter()
        bare_loop(m, x, y, a.epochs, a.batch_size, 1e-3, 0)
        sync()
        times["bare"].append(time.perf_counter() - t)
        m = fresh()
        sync()
        t = time.perf_counter()
        train(m, x, y, cfg)
        sync()
        times["acthash"].append(time.perf_counter() - t)
    bare, ours = statistics.median(times["bare"]), statistics.median(times["acthash"])
    steps = a.epochs * -(-len(x) // a.batch_size)
    print(f"data: {ds.name}, {len(x)} examples {tuple(ds.input_shape)}; MLP width {a.width}; "
          f"Adam; batch {a.batch_size}; {a.epochs} epochs ({steps} steps); device {a.device}; "
          f"torch threads {torch.get_num_threads()}; median of {a.repeats}")
    print(f"bare PyTorch loop : {bare:8.3f} s  ({steps / bare:8.0f} steps/s)")
    print(f"acthash.train     : {ours:8.3f} s  ({steps / ours:8.0f} steps/s)")
    print(f"ratio acthash/bare: {ours / bare:.3f}x  (target <= 1.15x)")
    return ours / bare


if __name__ == "__main__":
    main()
