"""Batched DeepFool against the per-example loop (the obvious baseline), same model and points.

Run: PYTHONPATH=src python benchmarks/bench_binary.py
Trains a small bottleneck MLP on digits for a few epochs, then times DeepFool on N test
points with batch_size=N (batched) and batch_size=1 (one example at a time), checks both give
the same perturbations, and prints the speed-up.
"""

from __future__ import annotations

import time

import torch

from acthash import data as datasets
from acthash.binary import deepfool
from acthash.models import build_model
from acthash.train import TrainConfig, seed_everything, train


def main(n: int = 300, repeats: int = 3) -> None:
    ds = datasets.load("digits")
    seed_everything(0)
    model = build_model("bottleneck", ds.input_shape, ds.n_classes, width=100, depth=2)
    train(model, ds.x_train, ds.y_train, TrainConfig(epochs=10, lr=1e-3, device="cpu"))
    x = ds.x_test[:n]
    timings = {}
    results = {}
    for name, bs in (("batched", n), ("per-example", 1)):
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            results[name] = deepfool(model, x, batch_size=bs)
            best = min(best, time.perf_counter() - t)
        timings[name] = best
    r_b, r_1 = results["batched"][0], results["per-example"][0]
    same = torch.allclose(r_b, r_1, rtol=1e-4, atol=1e-5)
    print(f"DeepFool on {n} digits test points, {ds.n_classes} classes, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads (best of {repeats})")
    for name, t in timings.items():
        print(f"  {name:12s} {t * 1e3:9.1f} ms  ({t / n * 1e3:.2f} ms/point)")
    print(f"  speed-up batched / per-example: {timings['per-example'] / timings['batched']:.1f}x"
          f"  (same perturbations: {same})")


if __name__ == "__main__":
    main()
