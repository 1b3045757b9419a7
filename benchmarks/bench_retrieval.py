"""Retrieval benchmarks: mAP of Hamming ranking, and exact vs faiss binary search.

Run: ``.venv/bin/python benchmarks/bench_retrieval.py`` (``--quick`` for a smaller run).

1. mAP of 1 000 queries against 60 000 database codes of 256 bits: ``acthash.retrieval.
   ranking_stats`` (compiled two-pass kernel; it also yields the tie-aware expected mAP,
   precision@k and the radius histograms) against the straightforward loop — numpy Hamming
   distances, then scikit-learn's ``average_precision_score`` per query on scores that order
   by (distance, database index). Both must agree to 1e-9.
2. Search: exact Hamming 10-NN with acthash's kernel, faiss ``IndexBinaryFlat``,
   ``IndexBinaryHNSW`` and ``IndexBinaryIVF`` — queries per second and recall@10 against exact.

Codes: sign random projections (LSH, 256 bits) of Fashion-MNIST pixels, database = the 60 000
training images, queries = the first 1 000 test images (clustered codes with many ties, like
the study's); random codes when Fashion-MNIST is not installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def codes(n_db: int, n_q: int, bits: int):
    from acthash.retrieval import SignRandomProjection

    try:
        import acthash

        ds = acthash.data.load("fashion-mnist")
        x_db, y_db = ds.x_train[:n_db].reshape(n_db, -1).numpy(), ds.y_train[:n_db].numpy()
        x_q, y_q = ds.x_test[:n_q].reshape(n_q, -1).numpy(), ds.y_test[:n_q].numpy()
        enc = SignRandomProjection(bits, seed=0).fit(x_db)
        return enc.encode(x_db).packed, enc.encode(x_q).packed, y_db, y_q, "Fashion-MNIST LSH"
    except Exception as e:  # dataset missing: random codes keep the benchmark runnable
        print(f"(Fashion-MNIST unavailable: {e}; using random codes)")
        rng = np.random.default_rng(0)
        db = np.packbits(rng.integers(0, 2, (n_db, bits)).astype(bool), axis=1)
        q = np.packbits(rng.integers(0, 2, (n_q, bits)).astype(bool), axis=1)
        return db, q, rng.integers(0, 10, n_db), rng.integers(0, 10, n_q), "random"


def sklearn_map(q, db, y_q, y_db, n_queries: int) -> tuple[np.ndarray, float]:
    """The baseline: per query, numpy distances and average_precision_score."""
    from sklearn.metrics import average_precision_score

    from acthash.ops.hamming import hamming_distances

    n = len(db)
    tiebreak = np.arange(n, dtype=np.float64)
    aps = []
    t0 = time.perf_counter()
    for lo in range(0, n_queries, 100):
        d = hamming_distances(q[lo : lo + 100], db, chunk=16)
        for i in range(d.shape[0]):
            aps.append(average_precision_score(y_db == y_q[lo + i], -(d[i] * float(n) + tiebreak)))
    return np.asarray(aps), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 000 database codes, 200 queries")
    args = ap.parse_args()
    n_db, n_q = (10_000, 200) if args.quick else (60_000, 1_000)
    from acthash.retrieval import ranking_stats, search_benchmark

    db, q, y_db, y_q, source = codes(n_db, n_q, 256)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}; codes: {source}, {n_q} queries x {n_db} database, 256 bits")
    ranking_stats(q[:2], db, y_q[:2], y_db)  # compile / load the kernel
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        stats = ranking_stats(q, db, y_q, y_db)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)
    ref, t_ref = sklearn_map(q, db, y_q, y_db, n_q)
    diff = float(np.abs(stats.ap - ref).max())
    print("\n| what | acthash | baseline | ratio |")
    print("|---|---|---|---|")
    print(f"| mAP, {n_q} x {n_db}, 256 bits | {t_ours:.2f} s (best of 3; also expected mAP, "
          f"P@k, radius histograms) | numpy distances + sklearn average_precision_score loop: "
          f"{t_ref:.1f} s | **{t_ref / t_ours:.0f}x faster** |")
    print(f"| same: mAP | {stats.ap.mean():.6f} | {ref.mean():.6f} | max |diff| per query "
          f"{diff:.1e} |")
    print(f"| same: tie-aware expected mAP | {stats.expected_ap.mean():.6f} | | |")
    assert diff <= 1e-9, f"mAP differs from the baseline by {diff}"
    table = search_benchmark(db, q, k=10, repeats=3)
    print("\n| index | params | build s | queries/s | vs exact | recall@10 (ids) | "
          "recall@10 (distance) |")
    print("|---|---|---|---|---|---|---|")
    base = float(table.loc[table["index"] == "exact", "qps"].iloc[0])
    for _, r in table.iterrows():
        print(f"| {r['index']} | {r['params']} | {r['build_s']:.2f} | {r['qps']:.0f} | "
              f"{r['qps'] / base:.2f}x | {r['recall@10']:.3f} | {r['recall@10_dist']:.3f} |")


if __name__ == "__main__":
    main()
