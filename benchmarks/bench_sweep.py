"""Sweep throughput: cells per minute on a tiny grid, serial vs 2 processes vs local Ray.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_sweep.py [--cells-widths 4,8,12,16]

Each executor runs the same grid from scratch (fresh sweep directory and model cache),
wall-clock time including its start-up (spawning processes, starting Ray), 1 torch thread
per cell. Prints cells/minute and the speed-up over serial, and checks that the three
result tables are identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from acthash.runs.sweep import SweepConfig, run_sweep  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="4,8,12,16", help="grid widths")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = ap.parse_args()
    cfg = SweepConfig(
        name="bench",
        base={"dataset": "digits", "epochs": args.epochs, "checkpoints": [0, args.epochs],
              "kmeans_n_init": 1, "save_codes": False},
        grid={"width": [int(w) for w in args.widths.split(",")]},
        seeds=list(range(args.seeds)),
    )
    n = len(cfg.cells())
    print(f"grid: {n} cells (digits, widths {args.widths}, {args.seeds} seeds, "
          f"{args.epochs} epochs, 2 checkpoints); {platform.machine()}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    runs = [("serial", {"executor": "serial"}),
            (f"process x{args.workers}", {"executor": "process", "workers": args.workers})]
    if not args.no_ray:
        runs.append((f"ray local x{args.workers}", {"executor": "ray", "workers": args.workers}))
    results, tables = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in runs:
            t0 = time.perf_counter()
            res = run_sweep(cfg, Path(tmp) / label.replace(" ", "_"), progress=False, **kw)
            wall = time.perf_counter() - t0
            assert res.summary()["trained"] == n
            tables.append(res.table)
            results.append((label, wall, n / wall * 60))
    base = results[0][2]
    print(f"{'executor':<16}{'wall s':>9}{'cells/min':>11}{'vs serial':>11}")
    for label, wall, cpm in results:
        print(f"{label:<16}{wall:>9.1f}{cpm:>11.1f}{cpm / base:>10.2f}x")
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t, tables[0])
    print("result tables identical across executors: yes")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
