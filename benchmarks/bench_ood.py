"""Scoring throughput of the Hamming k-NN OOD detector: queries per second against the
training codes, acthash's exact k-NN (``hamming_knn``, numba popcount kernel) against faiss
``IndexBinaryFlat`` (exact, the same k-th distances), at a few code lengths and database
sizes. Random codes: the cost of an exact scan does not depend on the codes' values.

    PYTHONPATH=src python benchmarks/bench_ood.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from bench_core import best_of  # the benchmarks' one timer (run from benchmarks/)

from acthash.ops.hamming import hamming_knn


def _best(fn, repeat=3):
    fn()  # warm up (numba compilation)
    return best_of(fn, repeat)


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sizes = [(5_000, 128), (20_000, 256)] if args.quick else [
        (5_000, 128), (20_000, 256), (60_000, 256), (60_000, 1024)]
    n_q, k = 2_000, 10
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, faiss {faiss.__version__}, {n_q} queries, k = {k}")
    print("| training codes | bits | acthash hamming_knn (q/s) | faiss IndexBinaryFlat (q/s) | same k-th distances |")
    print("|---|---|---|---|---|")
    for n_db, n_bits in sizes:
        db = np.packbits(rng.integers(0, 2, (n_db, n_bits), dtype=np.uint8), axis=1)
        q = np.packbits(rng.integers(0, 2, (n_q, n_bits), dtype=np.uint8), axis=1)
        index = faiss.IndexBinaryFlat(n_bits)
        index.add(db)
        t_a = _best(lambda db=db, q=q: hamming_knn(db, q, k, backend="numba"))
        t_f = _best(lambda index=index, q=q: index.search(q, k))
        same = np.array_equal(hamming_knn(db, q, k, backend="numba")[0][:, -1],
                              index.search(q, k)[0][:, -1])
        print(f"| {n_db} | {n_bits} | {n_q / t_a:,.0f} | {n_q / t_f:,.0f} | {same} |")


if __name__ == "__main__":
    main()
