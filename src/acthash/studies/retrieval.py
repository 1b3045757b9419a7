"""Study: neural codes as a retrieval hash, against classical hashing at equal bit budgets.

``run_retrieval_study(RetrievalStudyConfig(...))``, for every dataset and seed:

1. trains an MLP classifier on a class-balanced sample of the database (or loads the model of
   an ``acthash run`` directory);
2. fits every encoder on the **database** (the dataset's training set) without labels, at each
   bit budget (16, 32, 64, 128, 256 and "full" = every unit of the network), and encodes the
   **queries** (a seeded sample of the test set) with the fitted encoder;
3. ranks the whole database for every query by Hamming distance and records mAP (ties by
   database index), the tie-aware expected mAP, precision@k, precision within Hamming
   radius 2 and the precision-recall curve (relevance = same class).

Encoders: ``neural`` (units of all layers chosen by the label-free rule ``select``),
``neural-last`` (units of the last hidden layer), and ``lsh``, ``pca``, ``itq``, ``sh`` on raw
inputs (``-raw``) and on the network's penultimate features (``-feat``). PCA and ITQ give at
most one bit per input dimension: larger budgets are recorded as not applicable.

Then, on the largest database, exact Hamming search (acthash's kernel) and faiss binary
indexes (flat, HNSW, IVF) are timed on the neural codes, with recall@10 against exact.

The study directory holds ``config.json``, ``environment.json``, ``results.parquet`` and
``results.csv`` (one row per dataset × seed × encoder × budget), ``summary.csv`` (mean and
std over seeds), ``summary.md`` (the mAP tables), ``pr_curves.parquet``, ``search.csv``,
``models/<dataset>_seed<S>.pt``, optionally ``encoders/*.npz`` (every fitted encoder), and
the figures ``map_vs_bits.{png,svg}`` and ``pr_curves.{png,svg}``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acthash import data as datasets
from acthash._utils.fmt import mean_pm, spread_label
from acthash._utils.run import (
    progress_bar,
    run_transaction,
    save_figure,
    save_torch,
    start_run_dir,
    write_json,
    write_table,
)
from acthash.core.capture import neural_codes
from acthash.data.manipulate import subsample
from acthash.errors import ConfigError, InputError, MissingFileError
from acthash.models import build_model
from acthash.retrieval.encoders import (
    ITQ,
    NeuralCodeEncoder,
    PCABasis,
    PCAHash,
    SignRandomProjection,
    SpectralHash,
    penultimate_features,
)
from acthash.retrieval.metrics import ranking_at_k, ranking_stats
from acthash.retrieval.search import search_benchmark
from acthash.studies.configs import ENCODER_NAMES, RetrievalStudyConfig
from acthash.train import TrainConfig, resolve_device, seed_everything, train

__all__ = ["ENCODER_NAMES", "RetrievalStudyConfig", "RetrievalStudyResult",
           "run_retrieval_study", "summarize", "map_table", "plot_map_vs_bits",
           "plot_pr_curves"]


_CLASSICAL = {"lsh": SignRandomProjection, "pca": PCAHash, "itq": ITQ, "sh": SpectralHash}


@dataclass
class RetrievalStudyResult:
    results: pd.DataFrame  # one row per dataset x seed x encoder x budget
    summary: pd.DataFrame  # mean and std over seeds
    pr_curves: pd.DataFrame
    search: pd.DataFrame | None
    run_dir: Path | None
    seconds: float


def _sample(n: int, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _model_for(cfg: RetrievalStudyConfig, name: str, ds, x_db, y_db, seed: int, device):
    """(model, description): loaded from the run directory, or trained on the database."""
    if name in cfg.runs:
        from acthash.runs.experiment import load_checkpoint

        path = Path(cfg.runs[name]) / "model.pt"
        if not path.exists():
            raise MissingFileError(f"no model.pt in {cfg.runs[name]}; give the directory of a "
                                   "finished `acthash run`")
        model = load_checkpoint(path).to(device)
        return model, {"source": str(path)}
    rows = np.arange(len(y_db))
    if cfg.train_size is not None and cfg.train_size < len(y_db):
        rows = subsample(y_db, cfg.train_size, balanced=True, seed=cfg.data_seed)
    seed_everything(seed)
    model = build_model("mlp", ds.input_shape, ds.n_classes, widths=list(cfg.width))
    steps_per_epoch = -(-len(rows) // cfg.batch_size)
    epochs = max(cfg.epochs, -(-cfg.min_steps // steps_per_epoch))
    tcfg = TrainConfig(epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed,
                       device=str(device))
    res = train(model, x_db[rows], y_db[rows], tcfg)
    model.eval()
    hist = res.history.iloc[-1].to_dict() if len(res.history) else {}
    return model, {"source": "trained", "n_train": len(rows), "epochs": epochs,
                   "train_acc": hist.get("train_acc"), "train_loss": hist.get("train_loss")}


def _network_accuracy(model, x, y, device) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for lo in range(0, len(x), 2048):
            out = model(x[lo : lo + 2048].to(device))
            correct += int((out.argmax(1).cpu() == y[lo : lo + 2048]).sum())
    return correct / len(x)


@run_transaction
def run_retrieval_study(cfg: RetrievalStudyConfig | None = None, *, out_dir=None,
                        runs_root="runs", write: bool = True,
                        progress: bool = False, force: bool = False) -> RetrievalStudyResult:
    """Run the study; writes a study directory unless ``write=False``."""
    cfg = cfg or RetrievalStudyConfig()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    device = resolve_device(cfg.device)
    # loaded before the study directory is opened: a missing dataset or a bad option writes
    # nothing
    sets = {name: datasets.load(name, **cfg.dataset_options.get(name, {}))
            for name in cfg.dataset}
    run_dir = None
    if write:
        run_dir = start_run_dir(out_dir, runs_root, ["retrieval", *cfg.dataset],
                                config=cfg.to_dict(), seed=cfg.seed[0], force=force)
    rows: list[dict] = []
    curves: list[pd.DataFrame] = []
    search_codes = None
    loaded = {}
    for name in cfg.dataset:
        ds = sets[name]
        db_idx = _sample(len(ds.y_train), cfg.n_database, cfg.data_seed)
        q_idx = _sample(len(ds.y_test), cfg.n_queries, cfg.data_seed + 1)
        loaded[name] = len(db_idx)
        x_db, y_db = ds.x_train[db_idx], ds.y_train[db_idx]
        x_q, y_q = ds.x_test[q_idx], ds.y_test[q_idx]
        missing = np.setdiff1d(y_q.numpy(), y_db.numpy())
        if len(missing):
            raise InputError(f"{name}: query classes {missing.tolist()} are absent from the "
                             "database sample; enlarge n_database")
        ks = [k for k in cfg.ks if k <= len(db_idx)]
        raw_db = x_db.reshape(len(x_db), -1).double().numpy()
        raw_q = x_q.reshape(len(x_q), -1).double().numpy()
        raw_basis = None
        for seed in cfg.seed:
            model, info = _model_for(cfg, name, ds, x_db, y_db, seed, device)
            net_acc = _network_accuracy(model, x_q, y_q, device)
            if write:
                state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
                save_torch(run_dir / "models" / f"{name}_seed{seed}.pt",
                           {"model": "mlp", "model_kwargs": {"widths": list(cfg.width)},
                            "input_shape": list(ds.input_shape), "n_classes": ds.n_classes,
                            "state_dict": state, **info})
            full_db = neural_codes(model, x_db, device=device)
            full_q = neural_codes(model, x_q, device=device)
            n_full = full_db.n_bits
            last = full_db.layer_names()[-1]
            budgets = [(str(b), b) for b in cfg.bits] + ([("full", n_full)] if cfg.full else [])
            feat_db = feat_q = feat_basis = None
            plan = [(e, lab, b) for e in cfg.encoders for lab, b in budgets]
            bar = progress_bar(plan, enabled=progress, desc=f"{name} seed {seed}")
            for enc_name, label, n_bits in bar:
                base = {"dataset": name, "seed": seed, "encoder": enc_name, "bits": label,
                        "n_bits": n_bits, "n_database": len(db_idx), "n_queries": len(q_idx),
                        "network_acc": net_acc}
                t0 = time.perf_counter()
                kind, _, space = enc_name.partition("-")
                try:
                    if kind == "neural":
                        layer_codes_db = full_db if space == "" else full_db.select_layers([last])
                        layer_codes_q = full_q if space == "" else full_q.select_layers([last])
                        # "full" is every unit of the network: the last layer alone has fewer
                        whole = label == "full" and space == ""
                        enc = NeuralCodeEncoder(model, None if whole else n_bits,
                                                layers=None if space == "" else [last],
                                                select=cfg.select, device=str(device), seed=seed)
                        enc.fit(x_db, codes=layer_codes_db)
                        t1 = time.perf_counter()
                        c_db, c_q = enc.select_from(layer_codes_db), enc.select_from(layer_codes_q)
                    else:
                        if space == "raw":
                            if raw_basis is None and kind != "lsh":
                                raw_basis = PCABasis.fit(raw_db)
                            f_db, f_q, basis = raw_db, raw_q, raw_basis
                        else:
                            if feat_db is None:
                                feat_db = penultimate_features(model, x_db, device=device)
                                feat_q = penultimate_features(model, x_q, device=device)
                            if feat_basis is None and kind != "lsh":
                                feat_basis = PCABasis.fit(feat_db)
                            f_db, f_q, basis = feat_db, feat_q, feat_basis
                        opts = {} if kind == "lsh" else {"basis": basis}
                        if kind == "itq":
                            opts.update(n_iter=cfg.itq_iter, fit_size=cfg.itq_fit_size)
                        enc = _CLASSICAL[kind](n_bits, seed=seed, **opts).fit(f_db)
                        t1 = time.perf_counter()
                        c_db, c_q = enc.encode(f_db), enc.encode(f_q)
                except InputError as e:
                    if "exceeds" not in str(e):
                        raise
                    rows.append({**base, "status": f"n/a: {str(e).split(';')[0]}"})
                    continue
                t2 = time.perf_counter()
                stats = ranking_stats(c_q, c_db, y_q.numpy(), y_db.numpy(), ks=ks)
                at_k = {}
                for k in cfg.map_at:  # the deep-hashing protocol's cut-off measures
                    ap_k, p_k = ranking_at_k(c_q, c_db, y_q.numpy(), y_db.numpy(),
                                             k=min(k, len(y_db)), ties=cfg.map_ties,
                                             normalize=cfg.map_normalize)
                    at_k[f"map@{k}"], at_k[f"prec@{k}"] = float(ap_k.mean()), float(p_k.mean())
                t3 = time.perf_counter()
                rows.append({**base, "status": "ok", **stats.summary(cfg.radius), **at_k,
                             "fit_s": t1 - t0, "encode_s": t2 - t1, "eval_s": t3 - t2})
                pr = stats.pr_curve()
                for k, v in (("dataset", name), ("seed", seed), ("encoder", enc_name),
                             ("bits", label), ("n_bits", n_bits)):
                    pr.insert(0, k, v)
                curves.append(pr)
                if write and cfg.save_encoders:
                    enc.save(run_dir / "encoders" / f"{name}_{enc_name}_{label}_seed{seed}.npz")
                want_bits = cfg.search_bits if cfg.search_bits is not None else n_full
                if (cfg.search and seed == cfg.seed[0] and enc_name == cfg.search_encoder
                        and n_bits == want_bits and (label != "full" or cfg.search_bits is None)):
                    search_codes = search_codes or {}
                    search_codes[name] = (c_db, c_q, enc_name, label)
            if write:
                write_table(run_dir / "results.parquet", pd.DataFrame(rows))
    results = pd.DataFrame(rows)
    pr_curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    search = None
    if cfg.search and search_codes:
        target = cfg.search_dataset or max(search_codes, key=lambda n: loaded[n])
        if target not in search_codes:
            raise ConfigError(f"search_dataset {target!r} has no {cfg.search_encoder} codes at "
                              f"{cfg.search_bits} bits; choose one of {sorted(search_codes)}")
        c_db, c_q, enc_name, label = search_codes[target]
        search = search_benchmark(c_db, c_q, k=cfg.search_k, hnsw_m=cfg.hnsw_m,
                                  ef_search=cfg.ef_search, nprobe=cfg.nprobe, repeats=2)
        search.insert(0, "encoder", enc_name)
        search.insert(0, "dataset", target)
    summary = summarize(results)
    seconds = time.perf_counter() - t_start
    if write:
        write_table(run_dir / "results.parquet", results)
        write_table(run_dir / "results.csv", results)
        write_table(run_dir / "summary.csv", summary)
        if len(pr_curves):
            write_table(run_dir / "pr_curves.parquet", pr_curves)
        if search is not None:
            write_table(run_dir / "search.csv", search)
        (run_dir / "summary.md").write_text("\n".join(
            map_table(summary, cfg, metric=m) for m in
            ("map", "map_expected", *(f"map@{k}" for k in cfg.map_at))))
        write_json(run_dir / "study.json", {
            "seconds": seconds, "cpu_seconds": time.process_time() - cpu_start,
            "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "datasets": cfg.dataset, "database_sizes": loaded})
        if cfg.figures and results["status"].eq("ok").any():
            save_figure(plot_map_vs_bits(summary)[0].figure, run_dir / "map_vs_bits")
            if len(pr_curves):
                save_figure(plot_pr_curves(pr_curves)[0].figure, run_dir / "pr_curves")
    return RetrievalStudyResult(results, summary, pr_curves, search, run_dir, seconds)


_METRICS = ("map", "map_expected", "p@1", "p@10", "p@100", "p@1000", "p_r2", "r2_empty",
            "network_acc")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each metric, one row per dataset × encoder × budget that
    was applicable (``<metric>_mean``, ``<metric>_std``, ``n_seeds``)."""
    ok = results[results["status"] == "ok"]
    metrics = [m for m in _METRICS if m in ok.columns] + [
        c for c in ok.columns if c.startswith(("map@", "prec@"))]
    keys = ["dataset", "encoder", "bits", "n_bits"]
    g = ok.groupby(keys, sort=False)[metrics]
    mean = g.mean().add_suffix("_mean")
    std = g.std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std], axis=1).reset_index()
    out.insert(len(keys), "n_seeds", g.size().values)
    return out


def map_table(summary: pd.DataFrame, cfg: RetrievalStudyConfig | None = None,
              metric: str = "map") -> str:
    """Markdown: per dataset, one row per encoder, one column per budget, mean ± std."""
    parts = []
    for name, sub in summary.groupby("dataset", sort=False):
        labels = list(dict.fromkeys(sub["bits"]))
        full = sub.loc[sub["bits"] == "full", "n_bits"]
        head = [f"full ({int(full.iloc[0])})" if b == "full" and len(full) else b for b in labels]
        lines = [f"**{name}** — {metric} ({spread_label(int(sub['n_seeds'].min()))})", "",
                 "| encoder | " + " | ".join(head) + " |",
                 "|---|" + "---:|" * len(labels)]
        order = [e for e in ENCODER_NAMES if e in set(sub["encoder"])]
        for enc in order:
            cells = []
            for b in labels:
                r = sub[(sub["encoder"] == enc) & (sub["bits"] == b)]
                cells.append("n/a" if r.empty else
                             mean_pm(r[metric + "_mean"].iloc[0], r[metric + "_std"].iloc[0],
                                     int(r["n_seeds"].iloc[0])))
            lines.append(f"| {enc} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


_STYLE = {"neural": ("black", "-", "o"), "neural-last": ("0.45", "-", "s"),
          "lsh": ("tab:blue", None, "^"), "pca": ("tab:orange", None, "v"),
          "itq": ("tab:green", None, "D"), "sh": ("tab:red", None, "P")}


def _style(enc: str):
    kind, _, space = enc.partition("-")
    if kind == "neural":
        return _STYLE[enc]
    color, _, marker = _STYLE[kind]
    return color, "--" if space == "raw" else "-", marker


def _panels(n: int, ax=None):
    """``n`` axes in a row (a new figure), or the given ``ax`` (one Axes or a sequence)."""
    if ax is not None:
        return np.atleast_1d(ax)
    import matplotlib.pyplot as plt

    return plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)[1][0]


def plot_map_vs_bits(summary: pd.DataFrame, metric: str = "map", ax=None):
    """mAP against the bit budget, one line per encoder (mean ± std over seeds, no bar with
    one seed), one panel
    per dataset (``ax``: a sequence of axes, one per dataset). Returns the axes array."""
    names = list(dict.fromkeys(summary["dataset"]))
    axes = _panels(len(names), ax)
    for a, name in zip(axes, names, strict=True):
        sub = summary[summary["dataset"] == name]
        for enc in [e for e in ENCODER_NAMES if e in set(sub["encoder"])]:
            s = sub[sub["encoder"] == enc].sort_values("n_bits")
            color, ls, marker = _style(enc)
            spread = s[metric + "_std"] if s["n_seeds"].min() >= 2 else None  # one seed: none
            a.errorbar(s["n_bits"], s[metric + "_mean"], yerr=spread, color=color,
                       ls=ls, marker=marker, ms=4, lw=2.2 if enc == "neural" else 1.3,
                       capsize=2, label=enc)
        ticks = sub.drop_duplicates("bits").sort_values("n_bits")
        a.set_xscale("log", base=2)
        a.set_xticks(ticks["n_bits"])
        a.set_xticklabels([f"full\n{n}" if b == "full" else b for b, n in
                           zip(ticks["bits"], ticks["n_bits"], strict=True)])
        a.minorticks_off()
        a.set_xlabel("bits")
        a.set_ylabel("mAP (Hamming ranking)" if metric == "map" else metric)
        a.set_title(name)
        a.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return np.asarray(axes)


def plot_pr_curves(pr_curves: pd.DataFrame, bits: str = "64", seed: int | None = None, ax=None):
    """Precision-recall curves of Hamming-radius retrieval at one budget (first seed by
    default), one panel per dataset. Returns the axes array."""
    if bits not in set(pr_curves["bits"]):
        bits = str(pr_curves["bits"].iloc[0])
    seed = int(pr_curves["seed"].iloc[0]) if seed is None else seed
    sel = pr_curves[(pr_curves["bits"] == bits) & (pr_curves["seed"] == seed)]
    names = list(dict.fromkeys(sel["dataset"]))
    axes = _panels(len(names), ax)
    for a, name in zip(axes, names, strict=True):
        sub = sel[sel["dataset"] == name]
        for enc in [e for e in ENCODER_NAMES if e in set(sub["encoder"])]:
            s = sub[(sub["encoder"] == enc) & sub["precision"].notna()]
            color, ls, _ = _style(enc)
            a.plot(s["recall"], s["precision"], color=color, ls=ls,
                   lw=2.2 if enc == "neural" else 1.2, label=enc)
        a.set_xlabel("recall")
        a.set_ylabel("precision")
        a.set_title(f"{name}, {bits} bits, Hamming radius 0..b (seed {seed})")
        a.set_xlim(0, 1)
        a.set_ylim(0, 1.02)
        a.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return np.asarray(axes)
