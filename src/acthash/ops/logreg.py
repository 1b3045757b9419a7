"""L2 logistic regression on bit-packed neural codes, streamed over the rows.

The objective is scikit-learn's ``LogisticRegression(C=C)`` (lbfgs): for a binary problem
on ``n`` rows with targets ``t`` in {0, 1} and scores ``s = x.w + b``

    F(w, b) = (1/n) * sum_i [log(1 + exp(s_i)) - t_i s_i] + ||w||^2 / (2 C n)

(the intercept is not penalised; scikit-learn minimises ``n`` times this, the same optimum),
and for ``strategy="multinomial"`` the softmax cross-entropy with a (n_bits, K) weight
matrix and the same penalty. ``strategy="ovo"`` (the original study's setting) fits one
binary problem per pair of classes (i < j, target 1 for class j) on the rows of those two
classes and predicts as scikit-learn's ``OneVsOneClassifier`` (votes, ties broken by the
summed confidences); ``"ovr"`` one binary problem per class on all rows.

Solvers (``solver=``): "kernel" (Newton's method per problem on the Gram matrix of the
codes, :func:`newton_kernel`), "pairs" (one-vs-one: L-BFGS per pair in the span of its
centred rows on the Gram blocks of its two classes, :func:`span_lbfgs`) and "lbfgs", the
fallback described here: L-BFGS (memory ``history``, backtracking Armijo line search) run on
all the binary problems at once, so that every pass over the codes serves every problem still running:
scores ``X @ W`` and gradients ``X.T @ R`` come from
:class:`~acthash.ops.packed.PackedMatrix` (byte lookup tables on the CPU, chunked float32
matmuls with ``backend="torch"``). It stops, as scipy's L-BFGS-B in scikit-learn, when the
largest gradient entry is at most ``tol`` or the objective stops decreasing
(relative change below 64 machine epsilons). The objective is strictly convex, so the
optimum is unique and the same as scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acthash._kernels.packed import pair_matvec
from acthash._utils.budget import parse_memory_budget, resolve_backend
from acthash._utils.validate import check_label_shape
from acthash.core.codes import as_codes
from acthash.errors import InputError, ResourceError
from acthash.ops._logreg_solvers import Problems, lbfgs, newton_kernel, span_lbfgs
from acthash.ops.gram import ClassGram, pair_working_bytes
from acthash.ops.hamming import gram_matrix
from acthash.ops.packed import PackedMatrix

__all__ = ["LOGREG_SOLVERS", "PackedLogisticRegression", "fit_logreg_packed", "kernel_fits",
           "kernel_logreg_predict", "pairs_fit"]

#: logistic-regression solvers of :func:`fit_logreg_packed`
LOGREG_SOLVERS = ("auto", "kernel", "pairs", "lbfgs")
#: most bytes of test-by-training inner products formed at once by
#: :func:`kernel_logreg_predict`, a cap below the memory budget
_CROSS_BYTES = 64 << 20


@dataclass
class PackedLogisticRegression:
    """A fitted model. ``coef`` (P, n_bits) and ``intercept`` (P,) are, for "ovo", one row
    per pair in ``pairs`` (class indices i < j; positive class j), for "ovr" one per class,
    for "multinomial" one per class (softmax). ``classes`` are the label values."""

    classes: np.ndarray
    strategy: str
    coef: np.ndarray
    intercept: np.ndarray
    pairs: list = field(default_factory=list)
    n_iter: np.ndarray | None = None  # L-BFGS iterations per problem
    n_passes: int = 0  # passes over the training codes

    def decision_function(self, codes, *, backend="auto", device=None, memory_budget=None):
        """(N, P) scores ``x.w + b`` of each problem."""
        codes = as_codes(codes)
        if codes.n_bits != self.coef.shape[1]:
            raise InputError(f"codes have {codes.n_bits} bits, the model {self.coef.shape[1]}")
        mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                           memory_budget=memory_budget)
        return mat.matmul(self.coef.T) + self.intercept[None, :]

    def predict(self, codes, **kwargs) -> np.ndarray:
        """Predicted labels (N,)."""
        return _labels_from_scores(self.decision_function(codes, **kwargs), self.classes,
                                   self.strategy, self.pairs)


def _labels_from_scores(s: np.ndarray, classes: np.ndarray, strategy: str,
                        pairs) -> np.ndarray:
    """Labels from the (N, P) scores of the problems: the sign (one binary problem), the
    largest score ("ovr", "multinomial"), or scikit-learn's one-vs-one vote with its
    confidence tie rule."""
    k = len(classes)
    if strategy != "ovo":
        if s.shape[1] == 1:
            return classes[(s[:, 0] > 0).astype(int)]
        return classes[s.argmax(axis=1)]
    votes = np.zeros((s.shape[0], k))
    conf = np.zeros((s.shape[0], k))
    for p, (i, j) in enumerate(pairs):
        conf[:, i] -= s[:, p]
        conf[:, j] += s[:, p]
        pos = s[:, p] > 0
        votes[~pos, i] += 1
        votes[pos, j] += 1
    return classes[(votes + conf / (3 * (np.abs(conf) + 1))).argmax(axis=1)]


def _fit_pairs(codes, yi, k, C, tol, max_iter, history, budget, gram=None):
    """One-vs-one problems, each by :func:`span_lbfgs` on the Gram blocks of its two classes
    (:class:`acthash.ops.gram.ClassGram`: exact integers, uint16 above per-row bases; products
    accumulated in float64, :func:`acthash._kernels.packed.pair_matvec`): the blocks of each
    class with itself are computed once, the cross block of a pair when the pair comes (or
    all are read from ``gram``, built on the same codes and labels, e.g. shared with the
    leave-one-out k-NN). Returns (weights (N, P), intercepts (P,), pairs, iterations (P,))."""
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    weights = np.zeros((len(yi), len(pairs)))
    intercept = np.zeros(len(pairs))
    iters = np.zeros(len(pairs), dtype=np.int64)
    own = gram is None
    if own:
        gram = ClassGram(codes, yi, memory_budget=budget, keep="diagonal")
    else:
        gram.check_labels(yi)
    try:
        for p, (i, j) in enumerate(pairs):
            ra, rb = gram.by_class[i], gram.by_class[j]
            a, b, d = gram.block(i, i), gram.block(i, j), gram.block(j, j)
            na = len(ra)

            def matvec(v, a=a, b=b, d=d, na=na):
                ua, ub = np.empty(na), np.empty(len(v) - na)
                pair_matvec(*a, *b, *d, np.ascontiguousarray(v[:na]),
                            np.ascontiguousarray(v[na:]), ua, ub)
                return np.concatenate([ua, ub])

            t = np.concatenate([np.zeros(na), np.ones(len(rb))])  # positive class j
            alpha, bias, it = span_lbfgs(matvec, t, C, tol=tol, max_iter=max_iter,
                                          history=history)
            weights[ra, p], weights[rb, p] = alpha[:na], alpha[na:]
            intercept[p], iters[p] = bias, it
            del a, b, d
    finally:
        if own:
            gram.close()
    return weights, intercept, pairs, iters


def pairs_fit(class_sizes, n_bits: int, memory_budget=None) -> bool:
    """Whether ``solver="auto"`` takes the "pairs" solver for one-vs-one problems (when the
    full Gram matrix of :func:`kernel_fits` does not fit): the working set of the largest
    pair within the budget, and at most 64 codes per byte of code (its L-BFGS iterations
    cost one pass over the pair's Gram blocks, ``4 n_pair^2`` bytes, against a pass over the
    bits, ``n_pair * n_bytes`` look-ups, and the Gram blocks themselves
    ``N^2 / 2`` popcounts of the code's words)."""
    n_bytes = (n_bits + 7) // 8
    return (len(class_sizes) >= 2
            and pair_working_bytes(class_sizes, n_bytes) <= parse_memory_budget(memory_budget)
            and sum(class_sizes) <= 64 * n_bytes)


def _kernel_problems(gram, yi, k, eff, C, tol, max_iter):
    """All binary problems ("ovo"/"ovr") in kernel form on one Gram matrix: returns the
    weights (N, P) (alpha of problem p on its rows, 0 elsewhere), intercepts (P,), pairs
    and Newton iterations (P,)."""
    n = len(yi)
    if eff == "ovo":
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    else:
        pairs = [(c,) for c in range(k)] if k > 2 else [(1,)]
    weights = np.zeros((n, len(pairs)))
    intercept = np.zeros(len(pairs))
    iters = np.zeros(len(pairs), dtype=np.int64)
    for p, pair in enumerate(pairs):
        if eff == "ovo":
            rows = np.flatnonzero((yi == pair[0]) | (yi == pair[1]))
            t = (yi[rows] == pair[1]).astype(np.float64)
        else:
            rows = np.arange(n)
            t = (yi == pair[0]).astype(np.float64)
        alpha, b, it = newton_kernel(gram[np.ix_(rows, rows)], t, C, tol=tol,
                                      max_iter=max_iter)
        weights[rows, p] = alpha
        intercept[p] = b
        iters[p] = it
    return weights, intercept, pairs, iters


def _fit_kernel(codes, mat, yi, k, eff, C, tol, max_iter, budget):
    """:func:`_kernel_problems` from the Gram matrix of the codes; the coefficients are then
    ``X^T alpha`` (one product over the codes)."""
    gram = gram_matrix(codes, memory_budget=budget)  # tiles capped at 8 MiB inside
    weights, intercept, pairs, iters = _kernel_problems(gram, yi, k, eff, C, tol, max_iter)
    del gram
    coef = mat.rmatmul(weights, dense=True).T.copy()  # X^T alpha, in 64 MiB dense blocks
    return coef, intercept, pairs, iters


def kernel_fits(n_train: int, strategy: str, memory_budget=None, backend: str = "auto",
                device=None, *, n_bits: int) -> bool:
    """Whether ``solver="auto"`` takes the kernel solver: binary problems, the CPU, the
    (n_train, n_train) float64 Gram matrix within the budget, and long codes (at most one
    training code per byte of code: the Newton solves cost about n^3 per problem, the
    L-BFGS passes n * n_bytes each; measured crossover)."""
    return (strategy in ("ovo", "ovr") and resolve_backend(backend, device)[0] == "numba"
            and 8 * n_train * n_train <= parse_memory_budget(memory_budget)
            and n_train <= (n_bits + 7) // 8)


def kernel_logreg_predict(train_codes, labels, test_codes, *, C: float = 1.0,
                          strategy: str = "ovo", tol: float = 1e-4, max_iter: int = 1000,
                          memory_budget=None):
    """Fit as ``fit_logreg_packed(..., solver="kernel")`` and predict the training and the
    test codes without forming the coefficients: the scores are ``G @ alpha + b`` on the
    training codes and ``G_test,train @ alpha + b`` on the test codes (inner products from
    the popcount kernel, ``8 * N_test * N_train`` bytes). Returns (train labels, test
    labels)."""
    train, test = as_codes(train_codes), as_codes(test_codes)
    labels = check_label_shape(labels, len(train))
    if strategy not in ("ovo", "ovr"):
        raise InputError(f"the kernel solver fits binary problems; got strategy {strategy!r}")
    classes, yi = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    budget = parse_memory_budget(memory_budget)
    gram = gram_matrix(train, memory_budget=budget)  # tiles capped at 8 MiB inside
    weights, intercept, pairs, _ = _kernel_problems(gram, yi, len(classes), strategy, C, tol,
                                                    max_iter)
    s_train = gram @ weights + intercept[None, :]
    del gram
    s_test = np.empty((len(test), weights.shape[1]))
    step = max(1, min(budget, _CROSS_BYTES) // (8 * max(1, len(train))))
    for lo in range(0, len(test), step):
        cross = gram_matrix(test.packed[lo : lo + step], train, memory_budget=budget)
        s_test[lo : lo + step] = cross @ weights + intercept[None, :]
    return (_labels_from_scores(s_train, classes, strategy, pairs),
            _labels_from_scores(s_test, classes, strategy, pairs))


def fit_logreg_packed(codes, labels=None, *, C: float = 1.0, strategy: str = "ovo",
                      tol: float = 1e-4, max_iter: int = 1000, history: int = 10,
                      backend: str = "auto", device=None, memory_budget=None,
                      solver: str = "auto", gram=None) -> PackedLogisticRegression:
    """Fit L2 logistic regression (see the module docstring) on packed codes.

    codes : NeuralCodes (labels taken from them when ``labels`` is None) or packed rows
    strategy : "ovo" (default, the original study's), "ovr" or "multinomial" (one problem:
        fewer passes, the faster alternative)
    tol : largest gradient entry of the (1/n-scaled) objective at convergence
    memory_budget : bytes (or "2GB") of working memory for the products; the L-BFGS history
        (``2 * history`` float32 copies of the parameters) comes on top.
    solver : "lbfgs" (the batched L-BFGS on the packed bits described above); "kernel"
        (binary problems, "ovo"/"ovr": the Gram matrix ``X X^T`` of the codes from
        popcounts, ``8 N^2`` bytes, then Newton's method per problem in the span of its
        rows, :func:`newton_kernel`; converged to ``tol * 1e-3``, so the same optimum more
        tightly); "pairs" (one-vs-one: per pair, L-BFGS in the span of its centred rows on
        the Gram blocks of its two classes, :func:`span_lbfgs`,
        :class:`acthash.ops.gram.ClassGram`); or "auto": on the CPU "kernel" when the Gram
        matrix fits ``memory_budget``, the strategy is binary and there is at most one
        training code per byte of code (:func:`kernel_fits`), else "pairs" for one-vs-one
        with the largest pair's blocks within the budget and at most 64 codes per byte of
        code (:func:`pairs_fit`), else "lbfgs".
    gram : a :class:`acthash.ops.gram.ClassGram` of these codes and their class indices (in
        the order of ``np.unique(labels)``) for the "pairs" solver to read its blocks from
        (e.g. shared with :func:`acthash.properties.knn_loo_predict`).
    """
    codes = as_codes(codes)
    if labels is None:
        labels = codes.labels
    if labels is None:
        raise InputError("training labels are needed: pass them, or build the codes with labels")
    labels = check_label_shape(labels, len(codes))
    if strategy not in ("ovo", "ovr", "multinomial"):
        raise InputError(f"unknown strategy {strategy!r}; use 'ovo', 'ovr' or 'multinomial'")
    if C <= 0:
        raise InputError(f"C must be positive, got {C}")
    classes, yi = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    if solver not in LOGREG_SOLVERS:
        raise InputError(f"unknown solver {solver!r} for logistic regression; use one of "
                         f"{', '.join(repr(x) for x in LOGREG_SOLVERS)}")
    budget = parse_memory_budget(memory_budget)
    mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                       memory_budget=budget)
    k = len(classes)
    eff = "ovo" if strategy == "ovo" or k == 2 and strategy == "multinomial" else strategy
    n = len(codes)
    if solver == "auto":
        if kernel_fits(n, eff, budget, mat.backend, device, n_bits=codes.n_bits):
            solver = "kernel"
        elif eff == "ovo" and mat.backend == "numba" and pairs_fit(
                np.bincount(yi, minlength=k), codes.n_bits, budget):
            solver = "pairs"
        else:
            solver = "lbfgs"
    if solver == "pairs":
        if eff != "ovo":
            raise InputError("the pairs solver fits one-vs-one problems; use strategy='ovo', "
                             "or solver='kernel' / 'lbfgs'")
        if mat.backend != "numba":
            raise InputError("the pairs solver runs on the CPU (numba backend); use "
                             "solver='lbfgs' with backend='torch'")
        need = pair_working_bytes(np.bincount(yi, minlength=k), codes.n_bytes)
        if need > budget:
            raise ResourceError(
                f"the Gram blocks of the largest pair of classes need {need} bytes, more "
                f"than memory_budget={budget}; raise memory_budget or use solver='lbfgs'")
        weights, intercept, pairs, iters = _fit_pairs(codes, yi, k, C, tol, max_iter,
                                                      history, budget, gram)
        coef = mat.rmatmul(weights, dense=True).T.copy()  # X^T alpha, in 64 MiB dense blocks
        return PackedLogisticRegression(classes, "ovo", coef, intercept, pairs, iters, 2)
    if solver == "kernel":
        if eff == "multinomial":
            raise InputError("the kernel solver fits binary problems; use strategy='ovo' or "
                             "'ovr', or solver='lbfgs' for the multinomial model")
        coef, intercept, pairs, iters = _fit_kernel(codes, mat, yi, k, eff, C, tol, max_iter,
                                                    budget)
        return PackedLogisticRegression(classes, eff, coef, intercept,
                                        pairs if eff == "ovo" else [], iters, 2)
    problems = Problems(mat, yi, k, eff, C)
    theta, iters = lbfgs(problems, problems.n_problems, problems.n_params, tol=tol,
                          max_iter=max_iter, history=history)
    d = codes.n_bits
    if eff == "multinomial":
        wb = theta[0].reshape(d + 1, k)
        coef, intercept = wb[:d].T.copy(), wb[d].copy()
    else:
        coef, intercept = theta[:, :d].copy(), theta[:, d].copy()
    out_strategy = eff if not (k == 2 and strategy == "multinomial") else "ovo"
    return PackedLogisticRegression(classes, out_strategy, coef, intercept,
                                    problems.pairs if eff == "ovo" else [], iters,
                                    problems.passes)
