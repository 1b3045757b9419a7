"""Reproduce the model-size factor of He et al. (2021) on Fashion-MNIST.

One-hidden-layer MLPs of several widths, several seeds: test redundancy ratio and K-Means /
K-NN / logistic-regression accuracy on the neural codes (mean ± std over seeds), printed as
a Markdown table beside the original MNIST figures, and written to a CSV.

    PYTHONPATH=src python benchmarks/repro_fashion_widths.py            # the documented run
    PYTHONPATH=src python benchmarks/repro_fashion_widths.py --quick    # a smoke test

Needs /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`) or
``--data-dir``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from acthash._utils.io import write_table
from acthash.runs.experiment import RunConfig, run_experiment

# the original MNIST figures (science.md section 1), test set, 1-hidden-layer MLPs
ORIGINAL_MNIST = {
    10: {"redundancy": "≈1.0"},
    40: {"redundancy": "≈0.1"},
    100: {"redundancy": "≈0", "kmeans": "≈0.66", "knn": "≈0.95", "logreg": "≈0.93"},
}
COLUMNS = [("redundancy_test", "redundancy"), ("kmeans_test", "K-Means (Hungarian)"),
           ("kmeans_purity_test", "K-Means (purity)"), ("knn_test", "9-NN"),
           ("logreg_test", "LR (OvO)"), ("net_acc_test", "network acc.")]


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="10,40,100,400")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-train", type=int, default=10_000, help="first N training examples")
    p.add_argument("--n-test", type=int, default=2_000, help="first N test examples")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="docs/repro_fashion_widths.csv")
    p.add_argument("--quick", action="store_true", help="2 widths, 1 seed, 1 epoch, 1000/500")
    a = p.parse_args(argv)
    widths = [int(w) for w in a.widths.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.quick:
        widths, seeds, a.epochs, a.n_train, a.n_test = widths[:2], seeds[:1], 1, 1000, 500
    opts = {"n_test": a.n_test, **({"root": a.data_dir} if a.data_dir else {})}
    rows = []
    t0 = time.perf_counter()
    for width in tqdm(widths, desc="widths"):
        for seed in tqdm(seeds, desc=f"width {width}", leave=False):
            cfg = RunConfig(dataset="fashion-mnist", dataset_options=opts, model="mlp",
                            width=width, depth=1, epochs=a.epochs, lr=a.lr,
                            batch_size=a.batch_size, sample_size=a.n_train, seed=seed,
                            checkpoints=[a.epochs])
            res = run_experiment(cfg, write=False)
            rows.append(res.metrics.iloc[-1].to_dict())
    raw = pd.DataFrame(rows)
    write_table(Path(a.out), raw)
    agg = raw.groupby("width")[[c for c, _ in COLUMNS]].agg(["mean", "std"])
    lines = ["| width | " + " | ".join(label for _, label in COLUMNS) + " | original MNIST "
             "(redundancy / K-Means / K-NN / LR) |",
             "|---|" + "---|" * len(COLUMNS) + "---|"]
    for w in widths:
        cells = [f"{agg.loc[w, (c, 'mean')]:.3f} ± {agg.loc[w, (c, 'std')]:.3f}"
                 for c, _ in COLUMNS]
        o = ORIGINAL_MNIST.get(w, {})
        orig = " / ".join(o.get(k, "–") for k in ("redundancy", "kmeans", "knn", "logreg"))
        lines.append(f"| {w} | " + " | ".join(cells) + f" | {orig} |")
    print("\n".join(lines))
    print(f"\nsettings: Fashion-MNIST first {a.n_train} train / first {a.n_test} test, "
          f"1 hidden layer, Adam lr {a.lr}, batch {a.batch_size}, {a.epochs} epochs, "
          f"seeds {seeds}; {time.perf_counter() - t0:.0f} s; raw rows in {a.out}")
    return raw


if __name__ == "__main__":
    main()
