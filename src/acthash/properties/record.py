"""All encoding properties as one flat record, and the record as a table.

:func:`encoding_properties` resolves its options once (:class:`PropertyOptions`), drops
constant units, then runs the record step of every catalog entry that has one
(:mod:`acthash.properties.catalog`); :func:`properties_table` lays a record out by the
catalog's rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from acthash._utils.run import progress_stage
from acthash.core.codes import NeuralCodes, as_codes
from acthash.errors import InputError
from acthash.properties._common import _encode, _labels_for, _Measurement, _use_sklearn
from acthash.properties.catalog import Property, _catalog, property_rows, timing_keys
from acthash.properties.clustering import original_kmeans_mapping
from acthash.properties.knn import _check_pair, _knn_options, _one_pass, _warmed, warm_up
from acthash.properties.options import PropertyOptions, resolve_options

__all__ = ["encoding_properties", "properties_table"]


def _union_reference(train: NeuralCodes, test: NeuralCodes | None) -> NeuralCodes:
    if test is None:
        return train
    return NeuralCodes(np.concatenate([np.asarray(train.packed), np.asarray(test.packed)]),
                       train.n_bits, train.layers)


def _drop_constant(how: str, train: NeuralCodes, test: NeuralCodes | None):
    """The codes with the units constant on train ("train") or train ∪ test ("union")
    dropped from both splits; "none" keeps them."""
    if how == "none":
        return train, test
    ref = train if how == "train" else _union_reference(train, test)
    return (train.drop_constant(reference=ref) if how == "union" else train.drop_constant(),
            test.drop_constant(reference=ref) if test is not None else None)


def encoding_properties(train_codes, y_train=None, test_codes=None, y_test=None, *,
                        options: PropertyOptions | None = None, train_outputs=None,
                        test_outputs=None, timings: dict | None = None,
                        catalog: Sequence[Property] | None = None,
                        progress: bool | str = False, **overrides) -> dict:
    """All encoding properties on train and test as one flat record.

    train_codes, test_codes : :class:`NeuralCodes` or (N, n_bits) 0/1 arrays (test optional);
    y_train, y_test : (N,) integer labels (default: the labels stored on the codes).
    options : a :class:`PropertyOptions` (default ``PropertyOptions()``); ``overrides`` are
        its fields as keywords (``k=5, convention="original", ties="share", ...``), applied
        with :meth:`PropertyOptions.updated`: convention fields not set explicitly follow the
        convention, an explicit value always wins.
    train_outputs, test_outputs : (N, C) network logits, for ``net_loss_*``/``net_acc_*``.
    timings : a dict that receives the wall-clock seconds of each property's step
        (``redundancy``, ``kmeans``, ``knn``, ``logreg``; both splits together).
    catalog : the property catalog whose record steps run (default
        :data:`acthash.properties.catalog.PROPERTIES`).
    progress : show each step as it runs (:func:`acthash._utils.run.progress_stage`); a
        string is put before each step's name (``"epoch 5: "``).

    The numba k-NN kernels are compiled once per process before any step is timed
    (:func:`acthash.properties.knn.warm_up`).

    Keys: ``redundancy_{train,test}``; ``kmeans_{train,test}`` (Hungarian-matched, the mean
    over ``kmeans_n_seeds`` K-Means seeds; transductive: K-Means is fit on each split's own
    codes) with ``kmeans_std_{train,test}`` (std over the seeds), ``kmeans_purity_*`` and
    ``kmeans_purity_std_*``; ``knn_train`` (leave-one-out) and ``knn_test``;
    ``logreg_{train,test}``; the network's ``net_loss_*``/``net_acc_*`` when outputs are
    given; sizes, ``convention``, ``ties`` and ``kmeans_n_seeds``. Accuracies are fractions.

    Conventions (:data:`acthash.properties.CONVENTIONS`): acthash (default): order-independent
    k-NN ties ("share"), no unit dropped, 5 K-Means seeds (``seed``, ``seed + 1``, ...) in
    float32 with K = the split's own number of classes, lbfgs one-vs-one logistic
    regression, train and test scores. original: scikit-learn's k-NN ties, units constant
    over train ∪ test dropped, one float64 K-Means fit with random_state = 9 and K = the
    number of classes of both splits, liblinear one-vs-one logistic regression
    (random_state = 9, 100 iterations), no train k-NN or train logistic-regression score,
    plus ``kmeans_original_{train,test}``: the accuracy under the mapping the original's
    script used for ``dataset`` (:func:`acthash.properties.original_kmeans_mapping`).
    A split too small for a property (fewer codes than K-Means clusters, fewer than k
    training codes, at most k for leave-one-out, one training class) gives NaN and one
    ``SmallDataWarning``, or an InputError with ``small="raise"``.
    """
    o = resolve_options(options, overrides)
    steps = [p for p in _catalog(catalog) if p.compute is not None]
    clock = {} if timings is None else timings
    for key in timing_keys(steps):
        clock.setdefault(key, 0.0)
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes) if test_codes is not None else None
    if test is not None:
        y_test = _labels_for(test, y_test, "test labels")
        _check_pair(train, test)
    train, test = _drop_constant(o.drop_constant, train, test)
    m = _Measurement(o, train, y_train, test, y_test if test is not None else None,
                     train_outputs=train_outputs, test_outputs=test_outputs)
    rec: dict = {
        "n_bits": train.n_bits,
        "n_train": len(train),
        "n_test": 0 if test is None else len(test),
        "n_classes": int(len(np.unique(y_train))),
        "k": int(o.k),
        "convention": o.convention,
        "ties": o.ties,
        "kmeans_n_seeds": o.kmeans_n_seeds,
    }

    prefix = progress if isinstance(progress, str) else ""
    if any(p.timing == "knn" for p in steps):
        with progress_stage(f"{prefix}compiling the k-NN kernels (once per process)",
                            enabled=bool(progress) and not _warmed):
            warm_up()

    def run(p: Property, *args) -> None:
        name = p.timing_label or p.title(o.k)
        with progress_stage(f"{prefix}{name}" + (f" ({args[0]})" if p.per_split else ""),
                            enabled=bool(progress)):
            t0 = time.perf_counter()
            rec.update(p.compute(m, *args))
            if p.timing is not None:
                clock[p.timing] += time.perf_counter() - t0

    for split, codes, y in m.splits():
        for p in steps:
            if p.per_split:
                run(p, split, codes, y)
    if o.is_original:
        rec["kmeans_mapping_original"] = original_kmeans_mapping(o.dataset)
    with progress_stage(f"{prefix}Gram blocks of the training codes", enabled=bool(progress)):
        m.gram = _shared_gram(m)
    try:
        for p in steps:
            if not p.per_split:
                run(p)
    finally:
        if m.gram is not None:
            m.gram.close()
    m.warn(stacklevel=2)
    return rec


def _shared_gram(m: _Measurement):
    """A :class:`acthash.ops.gram.ClassGram` of the training codes when both the leave-one-out
    k-NN (share rule, one numba pass) and the logistic regression (the per-pair solver) will
    run on them: the Gram blocks then serve both, so their popcounts are paid once."""
    from acthash.ops.gram import ClassGram
    from acthash.ops.logreg import kernel_fits, pairs_fit

    o, train, knn_run = m.options, m.train, _knn_options(m.options)
    if not (o.train_scores and m.test is not None and len(train) > o.k and o.ties == "share"
            and _one_pass(knn_run["backend"], knn_run["device"]) and o.logreg_solver == "lbfgs"
            and o.logreg_strategy == "ovo" and o.device is None
            and o.backend in ("auto", "numba")):
        return None
    _, yi, _ = _encode(m.y_train)
    sizes = np.bincount(yi)
    budget = o.memory_budget
    if (len(sizes) < 2 or _use_sklearn(train, o.backend, budget, o.device)
            or kernel_fits(len(train), "ovo", budget, "numba", None, n_bits=train.n_bits)
            or not pairs_fit(sizes, train.n_bits, budget)):
        return None
    return ClassGram(train, yi, memory_budget=budget, keep="all")


def properties_table(record: dict, *, k: int | None = None,
                     catalog: Sequence[Property] | None = None) -> pd.DataFrame:
    """A record from :func:`encoding_properties` as rows = property, columns = train/test.

    ``k`` (for the k-NN label) defaults to the record's own ``k``; rows follow
    :func:`acthash.properties.catalog.property_rows` of ``catalog``; a property absent from
    the record is left out.
    """
    if not hasattr(record, "get"):
        raise InputError(f"record must be a dict from encoding_properties, got "
                         f"{type(record).__name__}")
    rows = []
    for key, label in property_rows(k if k is not None else record.get("k", 9), catalog):
        tr, te = record.get(f"{key}_train"), record.get(f"{key}_test")
        if tr is None and te is None:
            continue
        rows.append({"property": label, "train": tr, "test": te})
    return pd.DataFrame(rows).set_index("property")
