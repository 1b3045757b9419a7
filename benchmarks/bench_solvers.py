"""Where the Gram / kernel solvers pay off: ``python benchmarks/bench_solvers.py``.

K-Means (``kmeans_packed``, ``n_init=10``) with ``solver="gram"``, ``"planes"`` and
``"tables"``, and one-vs-one logistic regression (``fit_logreg_packed``) with
``solver="kernel"``, ``"pairs"`` and ``"lbfgs"``, on clustered random codes of several
lengths (10 classes, 35 % of the bits flipped from the class prototype). Prints the seconds
of each and the fastest; the ``solver="auto"`` rules come from these crossovers. ``--codes FILE.ahc --n N`` adds the first N codes of a real capture.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from acthash import NeuralCodes
from acthash.kmeans import kmeans_packed
from acthash.logreg import fit_logreg_packed


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
        compare(f"{a.codes} [:{a.n}]", NeuralCodes.load(a.codes, mmap=True)[: a.n],
                skip=("tables", "lbfgs") if a.fast else ())


if __name__ == "__main__":
    main()
