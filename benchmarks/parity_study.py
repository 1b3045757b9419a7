"""How much the conventions of the encoding properties move the numbers, on the same codes.

Trains small models on scikit-learn's digits (seed 0) and prints Markdown tables:

1. test 9-NN accuracy under three tie rules (acthash's order-independent "share", scikit-learn's
   selection, and "first stored", the rule acthash used before) for the training rows as
   given, sorted by label and in 5 random orders;
2. K-Means test accuracy (Hungarian) over 20 single seeds, the 5-seed default and the
   original's seed 9 in float64;
3. one record under ``convention="acthash"`` and ``convention="original"``;
4. binary neural codes beside aggregate codes of one CNN.

    PYTHONPATH=src python benchmarks/parity_study.py          # the documented run (~minutes)
    PYTHONPATH=src python benchmarks/parity_study.py --quick  # a smoke test
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import acthash
from acthash import properties as P
from acthash.models import MLP, build_model
from acthash.ops.hamming import hamming_knn
from acthash.train import TrainConfig, seed_everything, train


def _first_stored_predict(train, y, test, k=9):
    """The former rule: the k first-stored among codes tied at the k-th distance."""
    classes, yi, _ = P._common._encode(y)
    _, idx = hamming_knn(train, test, k)
    return classes[P.knn._vote(yi[idx], len(classes))]


def _train(model, ds, epochs, seed=0):
    seed_everything(seed)
    train(model, ds.x_train, ds.y_train, TrainConfig(epochs=epochs, seed=seed))
    return model.eval()


def knn_table(ds, widths, epochs, n_perm):
    print("\n### 1. test 9-NN accuracy by tie rule and training-row order\n")
    print("| width | test redundancy | share (any order) | sklearn: as given / sorted / "
          "random orders | first stored: as given / sorted / random orders |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for w in widths:
        seed_everything(0)
        model = _train(MLP(64, widths=w, n_classes=10), ds, epochs)
        tr = acthash.neural_codes(model, ds.x_train, labels=ds.y_train.numpy())
        te = acthash.neural_codes(model, ds.x_test, labels=ds.y_test.numpy())
        y_tr, y_te = tr.labels, te.labels
        bits = tr.unpack()
        orders = {"given": np.arange(len(y_tr)), "sorted": np.argsort(y_tr, kind="stable")}
        for i in range(n_perm):
            orders[f"perm{i}"] = rng.permutation(len(y_tr))
        res: dict = {"share": [], "sklearn": [], "first": []}
        for order in orders.values():
            b, y = bits[order], y_tr[order]
            res["share"].append(P.knn_accuracy(b, y, te, y_te))
            res["sklearn"].append(P.knn_accuracy(b, y, te, y_te, ties="sklearn"))
            res["first"].append(float(np.mean(_first_stored_predict(
                acthash.NeuralCodes.from_bits(b), y, te) == y_te)))

        def fmt(v):
            rand = v[2:]
            return f"{v[0]:.3f} / {v[1]:.3f} / {min(rand):.3f}–{max(rand):.3f}"

        share = res["share"]
        assert max(share) == min(share), "the share rule must not depend on row order"
        print(f"| {w} | {acthash.redundancy_ratio(te):.3f} | {share[0]:.3f} | "
              f"{fmt(res['sklearn'])} | {fmt(res['first'])} |")


def kmeans_table(ds, width, epochs, n_single):
    print(f"\n### 2. K-Means test accuracy (Hungarian), width {width}\n")
    model = _train(MLP(64, widths=width, n_classes=10), ds, epochs)
    te = acthash.neural_codes(model, ds.x_test, labels=ds.y_test.numpy())
    single = P.kmeans_scores(te, seed=0, n_seeds=n_single)["hungarian_runs"]
    five = P.kmeans_scores(te, seed=0, n_seeds=5)
    orig = P.kmeans_scores(te, seed=9, n_seeds=1, dtype="float64", n_clusters=10)
    print("| fit | Hungarian accuracy |")
    print("|---|---|")
    print(f"| single seeds 0–{n_single - 1} (float32, n_init 10) | {min(single):.3f}–"
          f"{max(single):.3f} (mean {np.mean(single):.3f}, std {np.std(single, ddof=1):.3f}) |")
    print(f"| acthash default: seeds 0–4 | {five['hungarian']:.3f} ± {five['hungarian_std']:.3f} |")
    print(f"| original: seed 9, float64, K = 10 | {orig['hungarian']:.3f} |")
    return model


def convention_table(ds, model):
    print("\n### 3. one record, two conventions (same codes)\n")
    tr = acthash.neural_codes(model, ds.x_train, labels=ds.y_train.numpy())
    te = acthash.neural_codes(model, ds.x_test, labels=ds.y_test.numpy())
    a = P.encoding_properties(tr, None, te, None)
    o = P.encoding_properties(tr, None, te, None, convention="original", dataset="digits")
    keys = [("redundancy_test", "redundancy (test)"), ("kmeans_test", "K-Means Hungarian (test)"),
            ("kmeans_purity_test", "K-Means purity (test)"), ("knn_test", "9-NN (test)"),
            ("knn_train", "9-NN leave-one-out (train)"), ("logreg_test", "logistic regression (test)"),
            ("logreg_train", "logistic regression (train)"), ("n_bits", "bits")]
    print("| property | acthash | original |")
    print("|---|---|---|")
    std_key = {"kmeans_test": "kmeans_std_test", "kmeans_purity_test": "kmeans_purity_std_test"}
    for key, label in keys:
        cells = []
        for r in (a, o):
            v, sd = r.get(key), r.get(std_key.get(key, "-"))
            if v is None:
                cells.append("–")
            elif isinstance(v, float) and isinstance(sd, float) and sd == sd:
                cells.append(f"{v:.3f} ± {sd:.3f}")
            else:
                cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"| {label} | {cells[0]} | {cells[1]} |")


def aggregate_table(ds, epochs):
    print("\n### 4. binary neural codes and aggregate codes of one CNN\n")
    seed_everything(0)
    model = build_model("vgg11", ds.input_shape, ds.n_classes, width_mult=0.25)
    _train(model, ds, epochs)
    tr = acthash.neural_codes(model, ds.x_train, labels=ds.y_train.numpy())
    te = acthash.neural_codes(model, ds.x_test, labels=ds.y_test.numpy())
    b = P.encoding_properties(tr, None, te, None)
    agg_tr = acthash.aggregate_codes(model, ds.x_train, labels=ds.y_train.numpy())
    agg_te = acthash.aggregate_codes(model, ds.x_test, labels=ds.y_test.numpy())
    g = acthash.aggregate_properties(agg_tr, None, agg_te, None)
    print("| codes | features | K-Means (Hungarian, test) | 9-NN (test) | LR (test) |")
    print("|---|---|---|---|---|")
    print(f"| binary (Hamming) | {tr.n_bits} bits | {b['kmeans_test']:.3f} ± "
          f"{b['kmeans_std_test']:.3f} | {b['knn_test']:.3f} | {b['logreg_test']:.3f} |")
    print(f"| aggregate (Euclidean) | {agg_tr.n_features} channel sums | "
          f"{g['agg_kmeans_test']:.3f} ± {g['agg_kmeans_std_test']:.3f} | "
          f"{g['agg_knn_test']:.3f} | {g['agg_logreg_test']:.3f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    ds = acthash.data.load("digits")
    t0 = time.perf_counter()
    epochs = 2 if args.quick else 20
    knn_table(ds, [6] if args.quick else [6, 24], epochs, 2 if args.quick else 5)
    model = kmeans_table(ds, 100, epochs, 3 if args.quick else 20)
    convention_table(ds, model)
    aggregate_table(ds, 1 if args.quick else 10)
    print(f"\n(digits, seed 0, {epochs} epochs; {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
