"""Wall and CPU time of every sweep preset at CPU scale, then the claims table.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_presets.py \\
        --dataset digits [--out sweeps/claims-digits] [--workers 1] [--presets model-size,...]

Each preset runs as ``acthash sweep --preset NAME --dataset DATASET`` in a child process
(so its CPU seconds, children included, are measured with ``getrusage``), one after the
other, into ``OUT/NAME``. A preset already complete in OUT is not rerun (a sweep computes
only its missing cells), so the script resumes after an interruption; its time is then
the rerun's. ``OUT/timings.csv`` gets one row per preset (cells, wall s, CPU s, CPU/wall,
against the 600 s target), and ``acthash claims OUT/*`` writes ``OUT/claims.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from acthash.runs.presets import PRESETS, preset

TARGET_S = 600.0


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--out", type=Path, default=None,
                    help="sweep folder (default sweeps/bench-presets-DATASET)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--presets", default=",".join(PRESETS))
    args, _ = ap.parse_known_args(argv)  # run_all.py may pass --quick
    args.out = args.out or Path("sweeps") / f"bench-presets-{args.dataset}"
    exe = Path(sys.executable).with_name("acthash")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in [p for p in args.presets.split(",") if p]:
        n_cells = len(preset(name, dataset=args.dataset).cells())
        cmd = [str(exe), "sweep", "--preset", name, "--dataset", args.dataset,
               "--out", str(args.out / name), "--no-progress"]
        if args.workers > 1:
            cmd += ["--executor", "process", "--workers", str(args.workers)]
        load = os.getloadavg()[0]
        c0, t0 = _cpu_children(), time.perf_counter()
        rc = subprocess.call(cmd)
        wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
        row = {"dataset": args.dataset, "preset": name, "cells": n_cells,
               "workers": args.workers, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
               "cpu_per_wall": round(cpu / wall, 2) if wall else None,
               "load_at_start": round(load, 1), "vs_600s_target": round(wall / TARGET_S, 2),
               "exit": rc, "finished_utc": time.strftime("%H:%M:%S", time.gmtime())}
        rows.append(row)
        print(row, flush=True)
        with open(args.out / "timings.csv", "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if f.tell() == 0:
                w.writeheader()
            w.writerow(row)
    done = [str(args.out / r["preset"]) for r in rows if r["exit"] == 0]
    if done:
        subprocess.call([str(exe), "claims", *done, "--out", str(args.out / "claims.csv")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
