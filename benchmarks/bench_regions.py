"""Exact region walk (``regions_between``) vs the fixed-step sampled walk.

For pairs of digits test images under an MLP (64-100-100-10, trained 10 epochs), measures:
the exact walk's time per segment; the sampled walk at fixed steps (how many regions it
finds); and the sampled walk at the step needed to find the same crossings (half the
narrowest region on the segment), timed directly when that is at most ``--max-samples``
samples and otherwise extrapolated from the measured time per sample (marked "est.").

    PYTHONPATH=src python benchmarks/bench_regions.py [--pairs 20] [--width 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from acthash import data as datasets
from acthash.geometry.regions import regions_between, sampled_regions_between
from acthash.models import MLP
from acthash.train import TrainConfig, seed_everything, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--max-samples", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    ds = datasets.load("digits")
    seed_everything(args.seed)
    model = MLP(64, args.width, 10, depth=args.depth)
    train(model, ds.x_train, ds.y_train, TrainConfig(epochs=10, seed=args.seed))
    model.eval()
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(ds.x_test), size=(args.pairs, 2), replace=False)
    a, b = ds.x_test[idx[:, 0]], ds.x_test[idx[:, 1]]

    regions_between(model, a[:1], b[:1])  # warm-up (first jvp call loads torch.func)
    t0 = time.perf_counter()
    exact = regions_between(model, a, b)
    t_exact = (time.perf_counter() - t0) / args.pairs
    n_exact = exact.n_regions
    print(f"machine: {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"model: MLP 64-{'-'.join([str(args.width)] * args.depth)}-10 trained 10 epochs; "
          f"{args.pairs} test pairs; mean regions per segment {n_exact.mean():.1f}")
    print(f"{'method':<34}{'step':>10}{'s/segment':>12}{'regions found':>15}{'time / exact':>14}")
    print(f"{'exact (forward-mode walk, f64)':<34}{'-':>10}{t_exact:>12.4f}{'100.0%':>15}{1.0:>14.2f}")

    per_sample = []
    for step in (0.05, 0.01, 0.001):
        t0 = time.perf_counter()
        found = sampled_regions_between(model, a, b, step=step)
        dt = (time.perf_counter() - t0) / args.pairs
        per_sample.append(dt / (1 / step + 1))
        frac = (found - 1).sum() / max((n_exact - 1).sum(), 1)
        print(f"{'sampled, fixed step':<34}{step:>10g}{dt:>12.4f}{100 * frac:>14.1f}%"
              f"{dt / t_exact:>14.2f}")
    sec_per_sample = float(np.median(per_sample))

    needed, times, estimated = [], [], 0
    for i in range(args.pairs):
        gaps = np.diff(np.concatenate([[0.0], exact.t[i], [1.0]]))
        step = float(gaps.min() / 2)
        needed.append(step)
        n_samples = int(np.ceil(1 / step)) + 1
        if n_samples <= args.max_samples:
            t0 = time.perf_counter()
            found = sampled_regions_between(model, a[i : i + 1], b[i : i + 1], step=step)
            times.append(time.perf_counter() - t0)
            assert found[0] == n_exact[i], "the fine sampled walk should find every region"
        else:
            times.append(n_samples * sec_per_sample)
            estimated += 1
    t_needed = float(np.mean(times))
    label = "sampled, step needed per segment" + (" (est.)" if estimated else "")
    print(f"{label:<34}{np.median(needed):>10.1e}{t_needed:>12.4f}{'100.0%':>15}"
          f"{t_needed / t_exact:>14.2f}")
    print(f"step needed: median {np.median(needed):.2e}, min {np.min(needed):.2e} (fraction "
          f"of the segment); {estimated}/{args.pairs} segments extrapolated at "
          f"{sec_per_sample * 1e6:.1f} us per sample")


if __name__ == "__main__":
    main()
