"""Where the Gram / kernel solvers pay off: ``python benchmarks/bench_solvers.py``.

K-Means (``kmeans_packed``, ``n_init=10``) with ``solver="gram"``, ``"planes"`` and
``"tables"``, and one-vs-one logistic regression (``fit_logreg_packed``) with
``solver="kernel"``, ``"pairs"`` and ``"lbfgs"``, on clustered random codes of several
lengths (10 classes, 35 % of the bits flipped from the class prototype). Prints the seconds
of each and the fastest; the ``solver="auto"`` rules come from these crossovers. With
``--codes`` it also times the Gram kernel for three tile sizes (the 8 MiB cap of
``acthash.ops.hamming``). ``--codes FILE.ahc --n N`` adds the first N codes of a real capture.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from acthash import NeuralCodes
from acthash.ops.kmeans import kmeans_packed
from acthash.ops.logreg import fit_logreg_packed


def clustered(n: int, bits: int, seed: int = 0) -> NeuralCodes:
    rng = np.random.default_rng(seed)
    protos = rng.random((10, bits)) < 0.5
    y = rng.integers(10, size=n)
    x = protos[y] ^ (rng.random((n, bits)) < 0.35)
    return NeuralCodes.from_bits(x.astype(np.uint8), labels=y)


def seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


KM_SOLVERS = ("gram", "planes", "tables")
LR_SOLVERS = ("kernel", "pairs", "lbfgs")


def compare(name: str, codes: NeuralCodes, skip=()) -> None:
    small = codes[:100]
    for s in KM_SOLVERS:  # compile outside the timings
        kmeans_packed(small, 10, n_init=1, solver=s)
    for s in LR_SOLVERS:
        fit_logreg_packed(small, solver=s)
    km = {s: seconds(lambda s=s: kmeans_packed(codes, 10, n_init=10, solver=s))
          for s in KM_SOLVERS if s not in skip}
    lr = {s: seconds(lambda s=s: fit_logreg_packed(codes, solver=s))
          for s in LR_SOLVERS if s not in skip}
    per_byte = len(codes) / codes.packed.shape[1]
    km_best, lr_best = min(km, key=km.get), min(lr, key=lr.get)
    print(f"{name:>28} ({per_byte:5.1f} codes/byte) | K-Means "
          + ", ".join(f"{s} {t:6.2f} s" for s, t in km.items()) + f" (fastest {km_best}) | LR "
          + ", ".join(f"{s} {t:6.2f} s" for s, t in lr.items()) + f" (fastest {lr_best})",
          flush=True)


def tile_rates(codes: NeuralCodes, n: int = 4000) -> None:
    """The Gram kernel's rate on the first ``n`` codes for tiles of 32, 8 (the default cap)
    and 4 MiB of packed rows, best of 2 each, and the ratio to the 32 MiB tiles."""
    from acthash import hamming

    rows = np.ascontiguousarray(codes.packed[:n])
    words = n * (n - 1) / 2 * ((rows.shape[1] + 7) // 8)
    hamming.gram_matrix(rows[:100], dtype=np.float32)  # compile
    default = hamming._TILE_BYTES
    rates = {}
    try:
        for mib in (32, 8, 4):
            hamming._TILE_BYTES = mib << 20
            rates[mib] = words / min(seconds(lambda b=mib << 20: hamming.gram_matrix(
                rows, dtype=np.float32, memory_budget=b)) for _ in range(2))
    finally:
        hamming._TILE_BYTES = default
    print(f"Gram kernel on {n} codes: " + ", ".join(
        f"{mib} MiB tiles {r:.3g} words/s ({r / rates[32]:.2f}x)" for mib, r in rates.items()),
        flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codes", default=None, help="a captured .ahc file (with labels)")
    p.add_argument("--n", type=int, default=2000, help="codes of --codes to use")
    p.add_argument("--fast", action="store_true", help="skip the slow solvers on --codes")
    a, _ = p.parse_known_args()  # run_all passes e.g. --quick
    for n, bits in ((3000, 1000), (3000, 8000), (6000, 2000)):
        compare(f"random {n} x {bits} bits", clustered(n, bits))
    if a.codes:
        # (the table K-Means and L-BFGS take minutes here: skipped with --fast)
        codes = NeuralCodes.load(a.codes, mmap=True)
        tile_rates(codes)
        compare(f"{a.codes} [:{a.n}]", codes[: a.n], skip=("tables", "lbfgs") if a.fast else ())


if __name__ == "__main__":
    main()
