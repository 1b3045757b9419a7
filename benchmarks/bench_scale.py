"""Encoding properties at CNN scale: ResNet-20 codes of Fashion-MNIST (144 256 bits).

Run one case (each stage runs in its own process, so its peak memory is its own):

    .venv/bin/python benchmarks/bench_scale.py small --work /tmp/acthash-scale-small
    .venv/bin/python benchmarks/bench_scale.py full  --work /tmp/acthash-scale-full

``small``: a ResNet-20 trained one epoch on the first 5 000 training images; codes of those
5 000 and the 10 000 test images. Measures the streamed properties on all of them, and the
scikit-learn path (dense unpacked codes) against the streamed path on the same first
``--subset`` codes (scikit-learn cannot hold the whole case on a 24 GB machine), with the
accuracies of both and the ratios of time and peak memory; checks that in-memory and
memory-mapped codes give the same record bit for bit.

``full``: codes of all 60 000 + 10 000 images captured straight to ``.ahc`` files from a
ResNet-20 trained one epoch (on all 60 000 images, or ``--n-train``, or reuse the small
case's model with ``--model-from DIR/model.pt``); every property (redundancy, K-Means,
9-NN with leave-one-out train score, one-vs-one logistic regression, on train and test)
from the memory-mapped files, each in its own process, with seconds, CPU seconds and peak
memory, training excluded. The leave-one-out 9-NN and the logistic regression run in one
stage that shares the training codes' Gram blocks (``acthash.ops.gram.ClassGram``), as
``encoding_properties`` does.

Both report the k-NN kernel's rate against the machine's popcount limit measured in the
same process (``hamming.popcount_rate``). Results are printed and written to
``<work>/results.json``. Timings on a shared machine are noisy; ratios within one run are
what matter.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(obj: dict) -> None:
    obj["peak_rss_bytes"] = peak_rss_bytes()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    obj["cpu_s"] = ru.ru_utime + ru.ru_stime
    print("RESULT " + json.dumps(obj), flush=True)


#: seconds one stage may run (``--stage-timeout``); a stage past it is reported unfinished
STAGE_TIMEOUT = None


def stage(work: Path, name: str, *args) -> dict:
    """Run one stage in a fresh process; return its RESULT dict."""
    cmd = [sys.executable, __file__, "_stage", name, *map(str, args), "--work", str(work)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=STAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        out = {"unfinished_after_s": STAGE_TIMEOUT, "seconds": float("nan"),
               "cpu_s": float("nan"), "peak_rss_bytes": 0}
        print(f"  {name} {' '.join(map(str, args))}: unfinished after {STAGE_TIMEOUT} s",
              flush=True)
        return out
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"stage {name} failed")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    out["process_wall_s"] = time.perf_counter() - t
    print(f"  {name}: {json.dumps(out)}", flush=True)
    return out


# --------------------------------------------------------------------------- stages
def st_train(work: Path, n_train: int, width_mult: float) -> None:
    import torch

    from acthash import data
    from acthash.models import build_model
    from acthash.train import TrainConfig, train

    ds = data.load("fashion-mnist")
    x, y = ds.x_train[:n_train], ds.y_train[:n_train]
    torch.manual_seed(0)
    model = build_model("resnet20", ds.input_shape, ds.n_classes, width_mult=width_mult)
    t = time.perf_counter()
    train(model, x, y, TrainConfig(epochs=1, lr=1e-2, batch_size=64, seed=0, device="cpu"))
    torch.save(model.state_dict(), work / "model.pt")
    emit({"train_s": time.perf_counter() - t, "n_train": n_train})


def _model(work: Path, width_mult: float):
    import torch

    from acthash import data
    from acthash.models import build_model

    ds = data.load("fashion-mnist")
    model = build_model("resnet20", ds.input_shape, ds.n_classes, width_mult=width_mult)
    model.load_state_dict(torch.load(work / "model.pt"))
    return ds, model.eval()


def st_capture(work: Path, n_train: int, width_mult: float) -> None:
    from acthash import neural_codes

    ds, model = _model(work, width_mult)
    t = time.perf_counter()
    tr = neural_codes(model, ds.x_train[:n_train], labels=ds.y_train[:n_train].numpy(),
                      batch_size=256, out=work / "train.ahc")
    t_tr = time.perf_counter() - t
    te = neural_codes(model, ds.x_test, labels=ds.y_test.numpy(), batch_size=256,
                      out=work / "test.ahc")
    emit({"capture_train_s": t_tr, "capture_s": time.perf_counter() - t, "n_bits": tr.n_bits,
          "n_train": len(tr), "n_test": len(te), "codes_bytes": tr.nbytes + te.nbytes})


def _codes(work: Path, n: int | None, split: str, mmap: bool = True):
    from acthash import NeuralCodes

    c = NeuralCodes.load(work / f"{split}.ahc", mmap=mmap)
    return c if n is None else c[:n]


def st_knn_rate(work: Path) -> None:
    """The k-NN kernel's rate (test queries against training codes) and the popcount limit."""
    from acthash.ops.hamming import hamming_knn, popcount_rate, share_counts

    tr, te = _codes(work, None, "train"), _codes(work, None, "test")
    rate = popcount_rate(2.0)
    q, db = te[:256], tr[: min(len(tr), 4096)]
    hamming_knn(db[:64], q[:8], 9)  # compile

    def best_of(fn, repeats=3):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    knn_s = best_of(lambda: hamming_knn(db, q, 9))
    words = (tr.n_bytes + 7) // 8
    knn_rate = len(q) * len(db) * words / knn_s
    # the kernel behind the k-NN properties: one pass for the share tie rule
    y = np.asarray(db.labels)
    share_counts(db[:64], y[:64], q[:8], 9, 10)  # compile
    share_rate = len(q) * len(db) * words / best_of(lambda: share_counts(db, y, q, 9, 10))
    emit({"popcount_words_per_s": rate, "knn_words_per_s": knn_rate,
          "popcount_limit_over_knn": rate / knn_rate, "share_words_per_s": share_rate,
          "popcount_limit_over_share": rate / share_rate})


def st_prop(work: Path, name: str) -> None:
    """One encoding property on the memory-mapped codes (default backends and budget)."""
    from acthash import properties as P

    tr, te = _codes(work, None, "train"), _codes(work, None, "test")
    t = time.perf_counter()
    if name == "redundancy":
        out = {"redundancy_train": P.redundancy_ratio(tr), "redundancy_test": P.redundancy_ratio(te)}
    elif name in ("kmeans_train", "kmeans_test"):
        km = P.kmeans_scores(tr if name == "kmeans_train" else te)
        split = name.split("_")[1]
        out = {f"kmeans_{split}": km["hungarian"], f"kmeans_purity_{split}": km["purity"]}
    elif name == "knn_test":
        out = {"knn_test": P.knn_accuracy(tr, None, te, None, k=9)}
    elif name == "knn_loo":
        out = {"knn_train": P.knn_loo_accuracy(tr, k=9)}
    elif name == "logreg":
        a, b = P.logreg_accuracy(tr, None, te, None, return_train=True)
        out = {"logreg_train": a, "logreg_test": b}
    elif name == "knn_loo_logreg":
        # what encoding_properties does when both take the Gram-block paths: one ClassGram
        # of the training codes serves the leave-one-out 9-NN and the per-pair LR
        from acthash.ops.gram import ClassGram

        _, yi = np.unique(np.asarray(tr.labels), return_inverse=True)
        with ClassGram(tr, yi, keep="all") as gram:
            knn = P.knn_loo_accuracy(tr, k=9, gram=gram)
            t_knn = time.perf_counter() - t
            a, b = P.logreg_accuracy(tr, None, te, None, return_train=True, gram=gram)
        out = {"knn_train": knn, "logreg_train": a, "logreg_test": b,
               "knn_loo_s": t_knn, "logreg_s": time.perf_counter() - t - t_knn}
    else:
        raise SystemExit(f"unknown property {name}")
    emit({**out, "seconds": time.perf_counter() - t})


def st_kmeans(work: Path, n: int, backend: str) -> None:
    from acthash.properties import kmeans_scores

    c = _codes(work, n, "train")
    t = time.perf_counter()
    km = kmeans_scores(c, backend=backend)
    emit({"kmeans_s": time.perf_counter() - t, **km})


def st_kmeans_same_init(work: Path, n: int) -> None:
    """The streamed K-Means and scikit-learn's Lloyd iterations from the same k-means++ seeds
    (acthash's, restart by restart): inertia and accuracy of every restart and of the best."""
    from sklearn.cluster import KMeans

    from acthash.ops.hamming import gram_matrix
    from acthash.ops.kmeans import _lloyd_gram, _plusplus_rows
    from acthash.properties import cluster_accuracy

    c = _codes(work, n, "train")
    y = np.asarray(c.labels)
    gram = gram_matrix(c)
    norms = np.diag(gram).copy()
    x = c.unpack().astype(np.float64)
    tol = float(np.var(x, axis=0).mean()) * 1e-4
    rows = []
    for i in range(10):
        rng = np.random.default_rng(np.random.SeedSequence([0, i]))
        seeds = _plusplus_rows(lambda r: norms[:, None] + norms[r][None, :] - 2 * gram[:, r],
                               n, 10, rng)
        labels, _, _, inertia, n_iter = _lloyd_gram(gram, norms, seeds, 300, tol)
        sk = KMeans(10, init=x[seeds], n_init=1, max_iter=300, tol=1e-4,
                    algorithm="lloyd").fit(x)
        rows.append({"restart": i, "inertia": inertia, "sklearn_inertia": float(sk.inertia_),
                     "rel_diff": abs(inertia - sk.inertia_) / sk.inertia_, "n_iter": n_iter,
                     "sklearn_n_iter": int(sk.n_iter_),
                     "same_labels": float(cluster_accuracy(labels, sk.labels_)),
                     "acc": cluster_accuracy(labels, y), "sklearn_acc": cluster_accuracy(sk.labels_, y)})
    best = min(rows, key=lambda r: r["inertia"])
    best_sk = min(rows, key=lambda r: r["sklearn_inertia"])
    emit({"restarts": rows, "best_restart": best["restart"],
          "sklearn_best_restart": best_sk["restart"],
          "best_rel_inertia_diff": abs(best["inertia"] - best_sk["sklearn_inertia"])
          / best_sk["sklearn_inertia"],
          "best_acc": best["acc"], "sklearn_best_acc": best_sk["sklearn_acc"]})


def st_logreg(work: Path, n: int, backend: str) -> None:
    from acthash.properties import logreg_accuracy

    tr, te = _codes(work, n, "train"), _codes(work, n, "test")
    t = time.perf_counter()
    acc_tr, acc_te = logreg_accuracy(tr, None, te, None, backend=backend, return_train=True)
    emit({"logreg_s": time.perf_counter() - t, "logreg_train": acc_tr, "logreg_test": acc_te})


def st_same(work: Path, n: int) -> None:
    """The record from in-memory codes equals the one from memory-mapped codes."""
    from acthash.properties import encoding_properties

    args = [(_codes(work, n, s, mmap=False), _codes(work, n, s, mmap=True))
            for s in ("train", "test")]
    (tr_mem, tr_map), (te_mem, te_map) = args
    tr_mem = type(tr_mem)(np.array(tr_mem.packed), tr_mem.n_bits, tr_mem.layers, tr_mem.labels)
    te_mem = type(te_mem)(np.array(te_mem.packed), te_mem.n_bits, te_mem.layers, te_mem.labels)
    kw = {"backend": "numba"}
    a = encoding_properties(tr_mem, None, te_mem, None, **kw)
    b = encoding_properties(tr_map, None, te_map, None, **kw)
    emit({"identical": a == b, "in_memory": a, "memory_mapped": b})


PROPERTIES = ["redundancy", "kmeans_test", "knn_test", "knn_loo", "logreg", "kmeans_train"]
#: the full case: the leave-one-out 9-NN and the logistic regression share their Gram blocks
FULL_PROPERTIES = ["redundancy", "kmeans_test", "knn_test", "knn_loo_logreg", "kmeans_train"]
STAGES = {"train": st_train, "capture": st_capture, "knn_rate": st_knn_rate, "prop": st_prop,
          "kmeans": st_kmeans, "logreg": st_logreg, "same": st_same,
          "kmeans_same_init": st_kmeans_same_init}


# --------------------------------------------------------------------------- cases
def machine() -> dict:
    import platform

    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_avg_1m": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def run_case(case: str, work: Path, subset: int, width_mult: float, n_train: int | None = None,
             model_from: Path | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    n_codes = 5000 if case == "small" else 60000
    res: dict = {"case": case, "machine_start": machine(), "width_mult": width_mult}
    results = work / "results.json"

    def save():
        results.write_text(json.dumps(res, indent=2) + "\n")

    if model_from is not None and not (work / "model.pt").exists():
        import shutil

        shutil.copy(model_from, work / "model.pt")
        res["model_from"] = str(model_from)
    if not (work / "model.pt").exists():
        res["train"] = stage(work, "train", n_train or n_codes, width_mult)
        save()
    if not (work / "test.ahc").exists():
        res["capture"] = stage(work, "capture", n_codes, width_mult)
        save()
    if case == "small":
        res["sklearn_kmeans"] = stage(work, "kmeans", subset, "sklearn")
        res["streamed_kmeans"] = stage(work, "kmeans", subset, "numba")
        res["sklearn_logreg"] = stage(work, "logreg", subset, "sklearn")
        res["streamed_logreg"] = stage(work, "logreg", subset, "numba")
        sk_s = res["sklearn_kmeans"]["kmeans_s"] + res["sklearn_logreg"]["logreg_s"]
        st_s = res["streamed_kmeans"]["kmeans_s"] + res["streamed_logreg"]["logreg_s"]
        sk_m = max(res["sklearn_kmeans"]["peak_rss_bytes"], res["sklearn_logreg"]["peak_rss_bytes"])
        st_m = max(res["streamed_kmeans"]["peak_rss_bytes"],
                   res["streamed_logreg"]["peak_rss_bytes"])
        res["subset_ratios"] = {
            "n": subset, "speedup_kmeans_plus_logreg": sk_s / st_s,
            "speedup_kmeans": res["sklearn_kmeans"]["kmeans_s"] / res["streamed_kmeans"]["kmeans_s"],
            "speedup_logreg": res["sklearn_logreg"]["logreg_s"] / res["streamed_logreg"]["logreg_s"],
            "peak_memory_ratio": sk_m / st_m,
            "kmeans_acc_diff_points": 100 * abs(res["sklearn_kmeans"]["hungarian"]
                                                - res["streamed_kmeans"]["hungarian"]),
            "logreg_test_acc_diff_points": 100 * abs(res["sklearn_logreg"]["logreg_test"]
                                                     - res["streamed_logreg"]["logreg_test"]),
        }
        save()
        res["same"] = stage(work, "same", min(subset, 500))
        save()
    res["knn_rate"] = stage(work, "knn_rate")
    save()
    res["properties"] = {}
    for name in PROPERTIES if case == "small" else FULL_PROPERTIES:
        res["properties"][name] = stage(work, "prop", name)
        save()
    props = res["properties"].values()
    res["properties_total"] = {"seconds": sum(p["seconds"] for p in props),
                               "unfinished": [n for n, p in res["properties"].items()
                                              if "unfinished_after_s" in p],
                               "cpu_s": sum(p["cpu_s"] for p in props),
                               "peak_rss_bytes": max(p["peak_rss_bytes"] for p in props)}
    save()
    res["machine_end"] = machine()
    save()
    return res


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_stage":
        p = argparse.ArgumentParser()
        p.add_argument("_stage")
        p.add_argument("name")
        p.add_argument("--work", type=Path)
        p.add_argument("args", nargs="*")
        a = p.parse_args()
        conv = [int(x) if x.isdigit() else (float(x) if x.replace(".", "", 1).isdigit() else x)
                for x in a.args]
        STAGES[a.name](a.work, *conv)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=["small", "full"])
    p.add_argument("--work", type=Path, required=True, help="folder for the model and codes")
    p.add_argument("--subset", type=int, default=2000,
                   help="codes compared against scikit-learn (small case)")
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--n-train", type=int, default=None,
                   help="images the model trains on for its one epoch (default: all the codes)")
    p.add_argument("--model-from", type=Path, default=None,
                   help="reuse a trained model.pt (e.g. the small case's) instead of training")
    p.add_argument("--stage-timeout", type=float, default=None,
                   help="seconds one stage may run before it is reported unfinished")
    a = p.parse_args()
    global STAGE_TIMEOUT
    STAGE_TIMEOUT = a.stage_timeout
    res = run_case(a.case, a.work, a.subset, a.width_mult, a.n_train, a.model_from)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
