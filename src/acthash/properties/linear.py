"""Logistic-regression accuracy of codes: one-vs-one L2 (C = 1) on the bits.

scikit-learn (lbfgs, or the original's liblinear) on small inputs, the streamed packed solvers
of :mod:`acthash.ops.logreg` on large ones (see :func:`logreg_accuracy`).
"""

from __future__ import annotations

import numpy as np

from acthash.core.codes import NeuralCodes, as_codes
from acthash.errors import InputError
from acthash.properties._common import _labels_for, _streamed, _use_sklearn
from acthash.properties.knn import _check_pair
from acthash.properties.options import (
    SKLEARN_SOLVERS,
    STRATEGIES,
    _check_backend,
    _check_solver,
    _check_strategy,
)

__all__ = ["SKLEARN_SOLVERS", "STRATEGIES", "logreg_accuracy"]


def _fit_logreg(x: np.ndarray, y: np.ndarray, C: float, strategy: str, max_iter: int, seed: int,
                solver: str = "lbfgs"):
    """scikit-learn's L2 logistic regression on a dense (N, D) ``x``; solver and strategy
    are checked by the caller, the liblinear/multinomial clash here (it needs ``y``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

    if strategy == "multinomial" and solver == "liblinear" and len(np.unique(y)) > 2:
        raise InputError("liblinear cannot fit a multinomial model; use strategy='ovo' or "
                         "'ovr' with liblinear, or another solver")
    base = LogisticRegression(C=C, max_iter=max_iter, random_state=seed, solver=solver)
    if strategy == "ovo":
        model = OneVsOneClassifier(base)
    elif strategy == "ovr":
        model = OneVsRestClassifier(base)
    else:
        model = base
    return model.fit(x, y)


def logreg_accuracy(train_codes, y_train=None, test_codes=None, y_test=None, *, C: float = 1.0,
                    strategy: str = "ovo", max_iter: int = 1000, seed: int = 0,
                    solver: str = "lbfgs", dtype="float32", return_train: bool = False,
                    backend: str = "auto", memory_budget=None, device=None, gram=None):
    """Accuracy of logistic regression on the code bits.

    L2 penalty, C = 1, one-vs-one by default (``strategy``: "ovo", "ovr" or "multinomial"),
    fit on the training codes. ``solver``: scikit-learn's, "lbfgs" by default (acthash's);
    the original study's scripts that name a solver use "liblinear" (with one-vs-one, its
    default max_iter = 100 and float64 bits; ``convention="original"`` in
    :func:`acthash.properties.encoding_properties` sets all of these). Returns the test
    accuracy (a fraction), or ``(train_accuracy, test_accuracy)`` with ``return_train=True``.
    ``backend``/``memory_budget``/``device`` choose scikit-learn or the streamed
    :func:`acthash.ops.logreg.fit_logreg_packed` (the same L2 objective and optimum on the packed
    codes: Newton's method in kernel form on the Gram matrix when it fits the budget, on the
    CPU, else full-batch L-BFGS over chunks; bounded memory, CPU or CUDA); see
    ``_use_sklearn``. A solver other than lbfgs (e.g. the original's liblinear) always runs
    in scikit-learn. ``gram``: a :class:`acthash.ops.gram.ClassGram` of the training codes for
    the per-pair solver to read its Gram blocks from (see ``encoding_properties``).
    """
    train = as_codes(train_codes)
    y_train = _labels_for(train, y_train, "training labels")
    test = as_codes(test_codes)
    y_test = _labels_for(test, y_test, "test labels")
    _check_pair(train, test)
    _check_solver(solver)
    _check_strategy(strategy)
    _check_backend(backend)
    if len(np.unique(y_train)) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    train_acc, test_acc = _logreg(train, y_train, test, y_test, C, strategy, max_iter, seed,
                                  solver, dtype, return_train, backend, memory_budget, device,
                                  gram)
    return (train_acc, test_acc) if return_train else test_acc


def _logreg(train: NeuralCodes, y_train, test: NeuralCodes, y_test, C, strategy, max_iter,
            seed, solver, dtype, with_train: bool, backend, memory_budget, device, gram):
    """(train accuracy or None, test accuracy) of :func:`logreg_accuracy` on checked input."""
    if solver == "lbfgs" and not _use_sklearn(train, backend, memory_budget, device):
        from acthash.ops.logreg import fit_logreg_packed, kernel_fits, kernel_logreg_predict

        if kernel_fits(len(train), strategy, memory_budget, _streamed(backend), device,
                       n_bits=train.n_bits):
            pred_train, pred_test = kernel_logreg_predict(
                train, y_train, test, C=C, strategy=strategy, max_iter=max_iter,
                memory_budget=memory_budget)
            return (float(np.mean(pred_train == y_train)) if with_train else None,
                    float(np.mean(pred_test == y_test)))
        opts = {"backend": _streamed(backend), "device": device, "memory_budget": memory_budget}
        model = fit_logreg_packed(train, y_train, C=C, strategy=strategy, max_iter=max_iter,
                                  gram=gram, **opts)
        test_acc = float(np.mean(model.predict(test, **opts) == y_test))
        if with_train:
            return float(np.mean(model.predict(train, **opts) == y_train)), test_acc
        return None, test_acc
    model = _fit_logreg(train.unpack().astype(dtype), y_train, C, strategy, max_iter, seed,
                        solver)
    test_acc = float(np.mean(model.predict(test.unpack().astype(dtype)) == y_test))
    if with_train:
        return float(np.mean(model.predict(train.unpack().astype(dtype)) == y_train)), test_acc
    return None, test_acc


def _measure(m) -> dict:
    """Record step (see :mod:`acthash.properties.catalog`): ``logreg_train`` (when the options
    report train scores) and ``logreg_test``, fit once on the training codes."""
    o, rec = m.options, {}
    if m.test is None:
        return rec
    if len(np.unique(m.y_train)) < 2:
        why = "the training labels hold one class"
        if o.train_scores:
            rec["logreg_train"] = m.skip("logreg_train", why)
        rec["logreg_test"] = m.skip("logreg_test", why)
        return rec
    train_acc, test_acc = _logreg(
        m.train, m.y_train, m.test, m.y_test, o.logreg_C, o.logreg_strategy, o.logreg_max_iter,
        o.logreg_seed, o.logreg_solver, o.logreg_dtype, o.train_scores, o.backend,
        o.memory_budget, o.device, m.gram if o.train_scores else None)
    if o.train_scores:
        rec["logreg_train"] = train_acc
    rec["logreg_test"] = test_acc
    return rec
