"""Benchmark: empirical NTK Gram matrix, every method against the per-example autograd loop.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_ntk.py

A Leaky-ReLU MLP (64 -> 205 -> 205 -> 205 -> 1, 97 991 parameters) on N = 1 000 random
inputs. Each method runs in its own subprocess so its peak resident memory (``ru_maxrss``
above the process's level just before the call) is its own; the Gram matrices are
compared with the loop's. A second table gives the structured method's peak memory as the
parameter count grows (its memory is N x sum of widths + N^2, not N x P).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def worker(args) -> None:
    import torch

    sys.path.insert(0, str(HERE.parent / "src"))
    from acthash.models import MLP
    from acthash.spectrum.ntk import ntk

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = MLP(args.in_features, [args.width] * args.depth, n_classes=1,
                activation="leaky_relu").to(dtype)
    x = torch.randn(args.n, args.in_features, dtype=dtype)
    chunk = args.chunk or None
    ntk(model, x[:8], method=args.worker, chunk_size=chunk)  # warm up (kernels, vmap)
    base = _rss_mb()
    times, start = [], time.perf_counter()
    # best of up to ``repeat`` runs (the machine is shared), stopping after ~10 s in total
    while len(times) < args.repeat and (not times or time.perf_counter() - start < 10):
        t0 = time.perf_counter()
        g = ntk(model, x, method=args.worker, chunk_size=chunk)
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    peak = _rss_mb() - base
    if args.save:
        np.save(args.save, g.numpy())
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"method": args.worker, "seconds": seconds, "peak_mb": peak,
                      "n_params": n_params, "runs": len(times), "chunk": args.chunk}))


def run_worker(spec: str, args, width: int | None = None, save: str | None = None) -> dict:
    """Run ``spec`` (``method`` or ``method:chunk``) in a fresh interpreter."""
    method, _, chunk = spec.partition(":")
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(args.n),
           "--width", str(width or args.width), "--depth", str(args.depth),
           "--in-features", str(args.in_features), "--dtype", args.dtype,
           "--chunk", chunk or str(args.chunk), "--repeat", str(args.repeat)]
    if save:
        cmd += ["--save", save]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")})
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["method"] = spec
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="number of inputs")
    ap.add_argument("--width", type=int, default=205)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--in-features", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--chunk", type=int, default=100, help="chunk size for the torch.func "
                    "recipes (0 = all at once)")
    ap.add_argument("--methods", default="loop,structured,jacobian,jacobian:0,ntk-vp",
                    help="comma list of method or method:chunk (chunk 0 = all at once)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (a run "
                    "is not repeated once 10 s have passed)")
    ap.add_argument("--memory-widths", default="100,205,400,800",
                    help="widths for the structured-memory table ('' to skip)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    methods = [m for m in args.methods.split(",") if m]
    if "loop" not in methods:
        methods.insert(0, "loop")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        grams = {}
        for m in methods:
            path = os.path.join(tmp, f"{m.replace(':', '_')}.npy")
            print(f"running {m} ...", file=sys.stderr, flush=True)
            rows.append(run_worker(m, args, save=path))
            grams[m] = np.load(path)
        ref = grams["loop"]
        scale = np.abs(ref).max()
        for r in rows:
            r["max_rel_err"] = float(np.abs(grams[r["method"]] - ref).max() / scale)
    t = {r["method"]: r["seconds"] for r in rows}
    print(f"\nNTK Gram of N={args.n} inputs, Leaky-ReLU MLP {args.in_features}->"
          f"{args.width}x{args.depth}->1 ({rows[0]['n_params']} parameters), {args.dtype}, "
          f"torch threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"{'method':<14}{'chunk':>6}{'seconds':>10}{'runs':>6}{'structured x faster':>22}"
          f"{'peak MB':>10}{'max |G-G_loop|/max|G_loop|':>30}")
    for r in rows:
        speed = t[r["method"]] / t["structured"] if "structured" in t else float("nan")
        chunk = r["chunk"] if r["method"].split(":")[0] in ("jacobian", "ntk-vp") else "-"
        print(f"{r['method']:<14}{chunk or 'all':>6}{r['seconds']:>10.3f}{r['runs']:>6}"
              f"{speed:>22.1f}{r['peak_mb']:>10.1f}{r['max_rel_err']:>30.2e}")

    widths = [int(w) for w in args.memory_widths.split(",") if w]
    if widths:
        print(f"\nstructured method, N={args.n}: peak memory vs parameter count")
        print(f"{'width':>8}{'parameters':>12}{'seconds':>10}{'peak MB':>10}")
        for w in widths:
            r = run_worker("structured", args, width=w)
            print(f"{w:>8}{r['n_params']:>12}{r['seconds']:>10.3f}{r['peak_mb']:>10.1f}")


if __name__ == "__main__":
    main()
