"""Core benchmarks: capture overhead, Hamming k-NN, redundancy ratio, code memory.

Run: ``.venv/bin/python benchmarks/bench_core.py`` (add ``--quick`` for a smaller run).
Every ratio is measured against its baseline in the same run.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from torch import nn

from acthash import NeuralCodes, neural_codes
from acthash.properties import knn_predict, redundancy_ratio


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_capture(n: int, batch: int = 1000, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10),
    ).eval().to(device)
    x = torch.randn(n, 784)

    def plain():  # the same host batches, moved to the device, outputs back to the host
        with torch.no_grad():
            for lo in range(0, n, batch):
                model(x[lo : lo + batch].to(device)).cpu()

    def codes():
        neural_codes(model, x, batch_size=batch)

    plain(), codes()  # warm up
    t_plain, t_codes = best_of(plain), best_of(codes)
    return {"plain_forward_s": t_plain, "neural_codes_s": t_codes, "ratio": t_codes / t_plain}


def clustered_codes(rng, n, d, centres, flip):
    y = rng.integers(0, len(centres), size=n)
    bits = centres[y] ^ (rng.random((n, d)) < flip)
    return bits.astype(np.uint8), y


def bench_knn(n_train: int, n_test: int, d: int, sk_queries: int) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, size=(10, d)).astype(np.uint8)
    tr, y_tr = clustered_codes(rng, n_train, d, centres, 0.4)
    te, y_te = clustered_codes(rng, n_test, d, centres, 0.4)
    c_tr, c_te = NeuralCodes.from_bits(tr), NeuralCodes.from_bits(te)
    t0 = time.perf_counter()
    pred = knn_predict(c_tr, y_tr, c_te, k=9)
    t_ours = time.perf_counter() - t0
    acc_ours = float(np.mean(pred == y_te))
    sk = KNeighborsClassifier(n_neighbors=9, metric="hamming")
    tr8, te8 = tr.astype(np.int8), te[:sk_queries].astype(np.int8)
    t0 = time.perf_counter()
    sk.fit(tr8, y_tr)
    sk_pred = sk.predict(te8)
    t_sk = (time.perf_counter() - t0) * n_test / sk_queries  # scaled to all queries
    return {
        "n_train": n_train, "n_test": n_test, "bits": d, "sklearn_queries_timed": sk_queries,
        "acthash_s": t_ours, "sklearn_s_scaled": t_sk, "speedup": t_sk / t_ours,
        "acc_acthash": acc_ours,
        "acc_acthash_on_subset": float(np.mean(pred[:sk_queries] == y_te[:sk_queries])),
        "acc_sklearn_on_subset": float(np.mean(sk_pred == y_te[:sk_queries])),
    }


def bench_redundancy(n: int, d: int) -> dict:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2, size=(n // 2, d)).astype(np.int8)
    bits = np.concatenate([base, base[rng.integers(0, n // 2, n - n // 2)]])
    codes = NeuralCodes.from_bits(bits.astype(np.uint8))
    r_ours = redundancy_ratio(codes)
    r_np = (n - len(np.unique(bits, axis=0))) / n
    assert r_ours == r_np
    t_ours = best_of(lambda: redundancy_ratio(codes))
    t_np = best_of(lambda: np.unique(bits, axis=0), repeats=1)
    return {"n": n, "bits": d, "acthash_s": t_ours, "np_unique_s": t_np, "speedup": t_np / t_ours}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes for a fast check")
    ap.add_argument("--device", default="cpu", help="device for the capture benchmark")
    ap.add_argument("--only", default="capture,knn,redundancy,memory",
                    help="comma-separated subset of benchmarks")
    args = ap.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")

    if "capture" in only:
        cap = bench_capture(6000 if q else 60000, device=args.device)
        print(f"[capture] 3-layer MLP (784-512-512-512) on {args.device}, "
          f"{6000 if q else 60000} inputs, batch 1000: "
          f"plain forward {cap['plain_forward_s']:.3f}s, neural_codes {cap['neural_codes_s']:.3f}s "
          f"-> {cap['ratio']:.3f}x (target <= 1.1x)")

    if "knn" in only:
        knn = bench_knn(4800 if q else 48000, 1000 if q else 10000, 1000, 100 if q else 300)
        print(f"[knn] {knn['n_train']} x {knn['n_test']} codes of {knn['bits']} bits, k=9: "
          f"acthash {knn['acthash_s']:.2f}s, sklearn Hamming KNN on int8 "
          f"{knn['sklearn_s_scaled']:.1f}s (timed on {knn['sklearn_queries_timed']} queries, "
          f"scaled) -> {knn['speedup']:.0f}x faster (target >= 100x); accuracy on the timed "
          f"subset: acthash {knn['acc_acthash_on_subset']:.4f} vs sklearn "
          f"{knn['acc_sklearn_on_subset']:.4f}; acthash on all: {knn['acc_acthash']:.4f}")

    if "redundancy" in only:
        red = bench_redundancy(4800 if q else 48000, 1000)
        print(f"[redundancy] {red['n']} codes of {red['bits']} bits: acthash {red['acthash_s']:.4f}s, "
          f"np.unique(axis=0) on int8 {red['np_unique_s']:.2f}s -> {red['speedup']:.0f}x faster "
          "(target >= 20x)")

    if "memory" in only:
        bits = np.zeros((1, 1000), dtype=np.int8)
        packed = NeuralCodes.from_bits(bits.astype(np.uint8))
        print(f"[memory] 1000-bit code: {packed.n_bytes} bytes/example packed vs {bits.nbytes} as int8 "
          f"-> {bits.nbytes / packed.n_bytes:.0f}x smaller (target 8x)")


if __name__ == "__main__":
    main()
