"""Cost of the k-NN tie rules, against the obvious baselines measured in the same run.

- "share" (acthash's default: a k-NN search for the k-th distance, then one counting pass
  per query) against the former "first stored" rule (the k-NN search and a vote);
- ``ties="sklearn"`` against scikit-learn's ``KNeighborsClassifier(metric="hamming",
  algorithm="brute")`` itself, which it reproduces prediction for prediction.

    PYTHONPATH=src python benchmarks/bench_knn_ties.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from acthash import NeuralCodes
from acthash import properties as P
from acthash.ops.hamming import hamming_knn


def _best(fn, repeat=3):
    fn()  # warm up (numba compilation, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _one_size(rng, n_train: int, n_test: int, n_bits: int) -> str:
    from sklearn.neighbors import KNeighborsClassifier

    tr = rng.integers(0, 2, size=(n_train, n_bits)).astype(np.uint8)
    te = rng.integers(0, 2, size=(n_test, n_bits)).astype(np.uint8)
    y = rng.integers(0, 10, size=n_train)
    trc, tec = NeuralCodes.from_bits(tr), NeuralCodes.from_bits(te)
    classes, yi, _ = P._common._encode(y)

    def first():
        _, idx = hamming_knn(trc, tec, 9)
        return classes[P.knn._vote(yi[idx], len(classes))]

    def sk():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return KNeighborsClassifier(n_neighbors=9, metric="hamming",
                                        algorithm="brute").fit(tr, y).predict(te)

    t_first = _best(first)
    t_share = _best(lambda: P.knn_predict(trc, y, tec, k=9))
    t_ours = _best(lambda: P.knn_predict(trc, y, tec, k=9, ties="sklearn"))
    t_sk = _best(sk, repeat=1)
    same = bool(np.array_equal(P.knn_predict(trc, y, tec, k=9, ties="sklearn"), sk()))
    return (f"| {n_bits} | {t_first:.3f} | {t_share:.3f} | {t_share / t_first:.2f} | "
            f"{t_ours:.3f} | {t_sk:.3f} | {t_sk / t_ours:.1f} | {same} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    n_train, n_test = (1000, 200) if args.quick else (8000, 2000)
    print(f"train {n_train}, test {n_test}, k = 9, 10 classes; best of 3")
    print("| bits | first stored (s) | share (s) | share / first | sklearn rule (s) | "
          "scikit-learn (s) | scikit-learn / sklearn rule | same predictions |")
    print("|---|---|---|---|---|---|---|---|")
    for n_bits in (16, 256) if args.quick else (16, 256, 1024):
        print(_one_size(rng, n_train, n_test, n_bits), flush=True)


if __name__ == "__main__":
    main()
