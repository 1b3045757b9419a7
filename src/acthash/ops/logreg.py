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
codes, :func:`_newton_kernel`), "pairs" (one-vs-one: L-BFGS per pair in the span of its
centred rows on the Gram blocks of its two classes, :func:`_span_lbfgs`) and "lbfgs", the
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

from acthash._utils.budget import parse_memory_budget
from acthash.core.codes import as_codes
from acthash.errors import InputError, ResourceError
from acthash.ops.packed import PackedMatrix

__all__ = ["PackedLogisticRegression", "fit_logreg_packed", "kernel_fits", "kernel_logreg_predict",
           "pairs_fit"]

_FTOL = 64 * np.finfo(float).eps


def _log1pexp(s):
    return np.logaddexp(0.0, s)


def _sigmoid(s):
    out = np.empty_like(s)
    pos = s >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
    e = np.exp(s[~pos])
    out[~pos] = e / (1.0 + e)
    return out


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


class _Problems:
    """Objective and gradient of all binary problems (or the one multinomial problem)."""

    def __init__(self, mat: PackedMatrix, yi: np.ndarray, k: int, strategy: str, C: float):
        self.mat, self.yi, self.k, self.strategy, self.C = mat, yi, k, strategy, C
        self.d = mat.n_bits
        self.by_class = [np.flatnonzero(yi == c) for c in range(k)]
        if strategy == "ovo":
            self.pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
            self.n = np.array([len(self.by_class[i]) + len(self.by_class[j])
                               for i, j in self.pairs], dtype=np.float64)
            self.n_params = self.d + 1
        elif strategy == "ovr":
            self.pairs = [(c,) for c in range(k)] if k > 2 else [(1,)]
            self.n = np.full(len(self.pairs), float(len(yi)))
            self.n_params = self.d + 1
        else:
            self.pairs = [()]
            self.n = np.array([float(len(yi))])
            self.n_params = (self.d + 1) * k
        self.passes = 0

    @property
    def n_problems(self) -> int:
        return len(self.pairs)

    def __call__(self, theta: np.ndarray, active: np.ndarray):
        """theta (len(active), n_params) -> (f (len(active),), g (len(active), n_params))."""
        self.passes += 1
        if self.strategy == "multinomial":
            f, g = self._multinomial(theta[0])
            return np.array([f]), g[None, :]
        return self._binary(theta, active)

    def _binary(self, theta, active):
        d, C = self.d, self.C
        w, b = theta[:, :d], theta[:, d]
        f = np.zeros(len(active))
        gw = np.zeros((len(active), d))
        gb = np.zeros(len(active))
        if self.strategy == "ovo":
            # rows of class c take part in the active pairs that contain c
            for c, rows in enumerate(self.by_class):
                cols = [a for a, p in enumerate(active) if c in self.pairs[p]]
                if not cols or len(rows) == 0:
                    continue
                t = np.array([1.0 if self.pairs[active[a]][1] == c else 0.0 for a in cols])
                s = self.mat.matmul(w[cols].T, rows) + b[cols][None, :]
                f[cols] += (_log1pexp(s) - s * t[None, :]).sum(axis=0)
                r = _sigmoid(s) - t[None, :]
                gw[cols] += self.mat.rmatmul(r, rows).T
                gb[cols] += r.sum(axis=0)
        else:
            pos = np.array([self.pairs[p][0] for p in active])
            t = (self.yi[:, None] == pos[None, :]).astype(np.float64)
            s = self.mat.matmul(w.T) + b[None, :]
            f += (_log1pexp(s) - s * t).sum(axis=0)
            r = _sigmoid(s) - t
            gw += self.mat.rmatmul(r).T
            gb += r.sum(axis=0)
        n = self.n[active]
        f = (f + 0.5 / C * (w**2).sum(axis=1)) / n
        g = np.concatenate([(gw + w / C) / n[:, None], (gb / n)[:, None]], axis=1)
        return f, g

    def _multinomial(self, theta):
        d, k, C = self.d, self.k, self.C
        wb = theta.reshape(d + 1, k)
        w, b = wb[:d], wb[d]
        s = self.mat.matmul(w) + b[None, :]
        s -= s.max(axis=1, keepdims=True)
        lse = np.log(np.exp(s).sum(axis=1))
        n = float(len(self.yi))
        f = (lse - s[np.arange(len(s)), self.yi]).sum()
        prob = np.exp(s - lse[:, None])
        prob[np.arange(len(s)), self.yi] -= 1.0
        gw = self.mat.rmatmul(prob) + w / C
        g = np.concatenate([gw, prob.sum(axis=0)[None, :]]) / n
        return (f + 0.5 / C * (w**2).sum()) / n, g.ravel()


def _lbfgs(fun, n_problems: int, n_params: int, *, tol: float, max_iter: int, history: int):
    """Batched L-BFGS from zeros; returns (theta (P, n_params), iterations (P,))."""
    m = history
    x = np.zeros((n_problems, n_params))
    all_idx = np.arange(n_problems)
    f, g = fun(x, all_idx)
    s_hist = np.zeros((m, n_problems, n_params), dtype=np.float32)
    y_hist = np.zeros((m, n_problems, n_params), dtype=np.float32)
    rho = np.zeros((m, n_problems))
    ptr = np.zeros(n_problems, dtype=np.int64)
    iters = np.zeros(n_problems, dtype=np.int64)
    done = np.abs(g).max(axis=1) <= tol
    gamma = np.zeros(n_problems)  # 0: no curvature yet

    def direction(idx):
        q = -g[idx].copy()
        alpha = np.zeros((m, len(idx)))
        order = [(ptr[idx] - 1 - i) % m for i in range(m)]
        for i, slot in enumerate(order):
            si = s_hist[slot, idx].astype(np.float64)
            alpha[i] = rho[slot, idx] * np.einsum("ij,ij->i", si, q)
            q -= alpha[i][:, None] * y_hist[slot, idx]
        scale = np.where(gamma[idx] > 0, gamma[idx], 1.0 / np.maximum(
            np.linalg.norm(g[idx], axis=1), 1e-300))
        r = q * scale[:, None]
        for i in reversed(range(m)):
            slot = order[i]
            beta = rho[slot, idx] * np.einsum("ij,ij->i", y_hist[slot, idx].astype(np.float64), r)
            r += (alpha[i] - beta)[:, None] * s_hist[slot, idx]
        return r

    # per-problem line-search state
    d = np.zeros_like(x)
    step = np.ones(n_problems)
    gd = np.zeros(n_problems)
    backtracks = np.zeros(n_problems, dtype=np.int64)
    act = np.flatnonzero(~done)
    if len(act):
        d[act] = direction(act)
        gd[act] = np.einsum("ij,ij->i", g[act], d[act])
    while True:
        act = np.flatnonzero(~done)
        if len(act) == 0:
            break
        trial = x[act] + step[act, None] * d[act]
        ft, gt = fun(trial, act)
        for a, p in enumerate(act):
            if ft[a] <= f[p] + 1e-4 * step[p] * gd[p] or backtracks[p] >= 40:
                if backtracks[p] >= 40 and ft[a] > f[p]:
                    done[p] = True  # no decrease at machine precision: converged
                    continue
                sv = trial[a] - x[p]
                yv = gt[a] - g[p]
                sy = float(sv @ yv)
                f_old = f[p]
                x[p], f[p], g[p] = trial[a], ft[a], gt[a]
                iters[p] += 1
                if sy > 1e-12 * float(yv @ yv):
                    slot = ptr[p] % m
                    s_hist[slot, p], y_hist[slot, p] = sv, yv
                    rho[slot, p] = 1.0 / sy
                    ptr[p] += 1
                    gamma[p] = sy / float(yv @ yv)
                rel = (f_old - f[p]) / max(abs(f_old), abs(f[p]), 1.0)
                if np.abs(g[p]).max() <= tol or rel <= _FTOL or iters[p] >= max_iter:
                    done[p] = True
                    continue
                step[p] = 1.0
                backtracks[p] = 0
                d[p] = direction(np.array([p]))[0]
                gd[p] = float(g[p] @ d[p])
                if gd[p] >= 0:  # not a descent direction: restart from steepest descent
                    rho[:, p] = 0.0
                    gamma[p] = 0.0
                    d[p] = direction(np.array([p]))[0]
                    gd[p] = float(g[p] @ d[p])
            else:
                step[p] *= 0.5
                backtracks[p] += 1
    return x, iters


def _newton_kernel(gram: np.ndarray, t: np.ndarray, C: float, *, tol: float,
                   max_iter: int):
    """One binary problem in kernel form: w = X^T alpha (the optimum lies in the span of the
    rows), scores s = gram @ alpha + b, objective
    ``F = sum[log(1 + e^s) - t s] + alpha^T gram alpha / (2C)`` (scikit-learn's, divided by
    C). Newton's method on (alpha, b): with r = sigmoid(s) - t and D = sigmoid'(s), the step
    solves ``[D gram + I/C, D; D^T gram, sum D] [da; db] = -[r + alpha/C; sum r]`` (the
    primal Newton step, written in the span), with a backtracking Armijo line search. Stops
    when ``max|r + alpha/C| / n`` (which bounds the primal gradient per code bit, times the
    bits set) and the summed residual are below ``tol * 1e-3``. Returns (alpha, b, iters)."""
    n = len(t)
    alpha = np.zeros(n)
    b = 0.0
    s = np.zeros(n)

    def objective(alpha, b, s):
        return float((_log1pexp(s) - t * s).sum() + 0.5 / C * alpha @ (s - b))

    f = objective(alpha, b, s)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        p = _sigmoid(s)
        r = p - t
        res = r + alpha / C
        if np.abs(res).max() / n <= tol * 1e-3 and abs(r.sum()) / n <= tol * 1e-3:
            it -= 1
            break
        dd = p * (1.0 - p)
        a = np.empty((n + 1, n + 1))
        a[:n, :n] = dd[:, None] * gram
        a[np.arange(n), np.arange(n)] += 1.0 / C
        a[:n, n] = dd
        a[n, :n] = dd @ gram
        a[n, n] = dd.sum()
        step = np.linalg.solve(a, -np.concatenate([res, [r.sum()]]))
        da, db = step[:n], step[n]
        # directional derivative of F along the step: grad = (gram @ res, sum r)
        slope = float(res @ (gram @ da) + r.sum() * db)
        if slope >= 0:  # at machine precision already
            break
        ds = gram @ da + db
        lr = 1.0
        while True:
            s_new = s + lr * ds
            f_new = objective(alpha + lr * da, b + lr * db, s_new)
            if f_new <= f + 1e-4 * lr * slope or lr < 1e-10:
                break
            lr *= 0.5
        if f_new > f:
            break
        rel = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        alpha, b, s, f = alpha + lr * da, b + lr * db, s_new, f_new
        if rel <= _FTOL:
            break
    return alpha, b, it


def _span_lbfgs(matvec, t: np.ndarray, C: float, *, tol: float, max_iter: int,
                history: int):
    """One binary problem by L-BFGS in the span of its centred rows, from their Gram matrix.

    ``matvec(v)`` gives ``G @ v`` for the (n, n) Gram matrix ``G = X X^T`` of the problem's
    rows; targets ``t`` (n,) in {0, 1}. The features are centred (``x - mu``, ``mu`` the
    rows' mean, the intercept absorbing ``w . mu``: the same optimum, far better conditioned)
    and ``w = (X - mu)^T alpha``, so every iterate, gradient and L-BFGS pair of the primal
    problem (the (1/n)-scaled objective of the module docstring) is a coefficient vector
    with its centred-Gram product, and primal inner products are ``u^T G_c v``: the iterates
    are primal L-BFGS's, at one product with ``G`` per iteration. Stops when the Euclidean
    norm of the primal gradient (which bounds its largest entry, scikit-learn's test) is at
    most ``tol``, or the objective stops decreasing. Returns (alpha (n,), b, iterations) of
    the uncentred model ``w = X^T alpha``, scores ``X w + b``."""
    n = len(t)
    m = matvec(np.ones(n)) / n  # x_i . mu
    cm = float(m.mean())  # mu . mu

    def centred(v):
        sv = v.sum()
        return matvec(v) - m * sv - (m @ v) + cm * sv

    def inner(u, v):  # vectors [coefficients (n), intercept, centred-Gram product (n)]
        return float(u[:n] @ v[n + 1 :] + u[n] * v[n])

    def value(z):
        alpha, b, ka = z[:n], z[n], z[n + 1 :]
        s = ka + b
        f = float((_log1pexp(s) - t * s).sum() + 0.5 / C * (alpha @ ka)) / n
        r = _sigmoid(s) - t
        return f, (r + alpha / C) / n, r.sum() / n

    def gradient(gam, gb):
        return np.concatenate([gam, [gb], centred(gam)])

    z = np.zeros(2 * n + 1)
    f, gam, gb = value(z)
    g = gradient(gam, gb)
    s_hist, y_hist = [], []
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        gnorm = np.sqrt(max(inner(g, g), 0.0))
        if gnorm <= tol:
            it -= 1
            break
        q = -g
        alphas = []
        for sv, yv in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = inner(sv, q) / inner(sv, yv)
            alphas.append(a)
            q = q - a * yv
        scale = (inner(s_hist[-1], y_hist[-1]) / inner(y_hist[-1], y_hist[-1])
                 if s_hist else 1.0 / gnorm)
        d = q * scale
        for (sv, yv), a in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
            d = d + (a - inner(yv, d) / inner(sv, yv)) * sv
        slope = inner(g, d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist, y_hist = [], []
            d, slope = -g / gnorm, -gnorm
        step, ok = 1.0, False
        for _ in range(40):
            z_new = z + step * d
            f_new, gam, gb = value(z_new)
            if f_new <= f + 1e-4 * step * slope:
                ok = True
                break
            step *= 0.5
        if not ok:  # no decrease at machine precision: converged
            break
        g_new = gradient(gam, gb)
        sv, yv = z_new - z, g_new - g
        if inner(sv, yv) > 1e-12 * inner(yv, yv):
            s_hist.append(sv)
            y_hist.append(yv)
            if len(s_hist) > history:
                s_hist.pop(0)
                y_hist.pop(0)
        rel = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        z, f, g = z_new, f_new, g_new
        if rel <= _FTOL:
            break
    alpha, b = z[:n], z[n]
    # w = (X - mu)^T alpha = X^T (alpha - mean(alpha)); b_uncentred = b - w . mu
    return alpha - alpha.mean(), float(b - alpha @ (m - cm)), it


def _fit_pairs(codes, yi, k, C, tol, max_iter, history, budget, gram=None):
    """One-vs-one problems, each by :func:`_span_lbfgs` on the Gram blocks of its two classes
    (:class:`acthash.ops.gram.ClassGram`: exact integers, uint16 above per-row bases; products
    accumulated in float64, :func:`acthash._kernels.packed.pair_matvec`): the blocks of each
    class with itself are computed once, the cross block of a pair when the pair comes (or
    all are read from ``gram``, built on the same codes and labels, e.g. shared with the
    leave-one-out k-NN). Returns (weights (N, P), intercepts (P,), pairs, iterations (P,))."""
    from acthash._kernels.packed import pair_matvec
    from acthash.ops.gram import ClassGram

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
            alpha, bias, it = _span_lbfgs(matvec, t, C, tol=tol, max_iter=max_iter,
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
    from acthash.ops.gram import pair_working_bytes

    n_bytes = (n_bits + 7) // 8
    return (len(class_sizes) >= 2
            and pair_working_bytes(class_sizes, n_bytes) <= parse_memory_budget(memory_budget)
            and sum(class_sizes) <= 64 * n_bytes)


#: logistic-regression solvers of :func:`fit_logreg_packed`
SOLVERS = ("auto", "kernel", "pairs", "lbfgs")


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
        alpha, b, it = _newton_kernel(gram[np.ix_(rows, rows)], t, C, tol=tol,
                                      max_iter=max_iter)
        weights[rows, p] = alpha
        intercept[p] = b
        iters[p] = it
    return weights, intercept, pairs, iters


def _fit_kernel(codes, mat, yi, k, eff, C, tol, max_iter, budget):
    """:func:`_kernel_problems` from the Gram matrix of the codes; the coefficients are then
    ``X^T alpha`` (one product over the codes)."""
    from acthash.ops.hamming import gram_matrix

    gram = gram_matrix(codes, memory_budget=min(budget, 32 << 20))
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
    from acthash._utils.budget import resolve_backend

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
    from acthash.ops.hamming import gram_matrix

    train, test = as_codes(train_codes), as_codes(test_codes)
    labels = np.asarray(labels)
    if labels.shape != (len(train),):
        raise InputError(f"labels have shape {labels.shape} for {len(train)} codes")
    if strategy not in ("ovo", "ovr"):
        raise InputError(f"the kernel solver fits binary problems; got strategy {strategy!r}")
    classes, yi = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    budget = min(parse_memory_budget(memory_budget), 32 << 20)
    gram = gram_matrix(train, memory_budget=budget)
    weights, intercept, pairs, _ = _kernel_problems(gram, yi, len(classes), strategy, C, tol,
                                                    max_iter)
    s_train = gram @ weights + intercept[None, :]
    del gram
    s_test = np.empty((len(test), weights.shape[1]))
    step = max(1, (64 << 20) // (8 * max(1, len(train))))  # 64 MiB of cross products at once
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
        rows, :func:`_newton_kernel`; converged to ``tol * 1e-3``, so the same optimum more
        tightly); "pairs" (one-vs-one: per pair, L-BFGS in the span of its centred rows on
        the Gram blocks of its two classes, :func:`_span_lbfgs`,
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
    labels = np.asarray(labels)
    if labels.shape != (len(codes),):
        raise InputError(f"labels have shape {labels.shape} for {len(codes)} codes")
    if strategy not in ("ovo", "ovr", "multinomial"):
        raise InputError(f"unknown strategy {strategy!r}; use 'ovo', 'ovr' or 'multinomial'")
    if C <= 0:
        raise InputError(f"C must be positive, got {C}")
    classes, yi = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError("logistic regression needs at least two classes in the training labels")
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; use 'auto', 'kernel', 'pairs' or "
                         "'lbfgs'")
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
        from acthash.ops.gram import pair_working_bytes

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
    problems = _Problems(mat, yi, k, eff, C)
    theta, iters = _lbfgs(problems, problems.n_problems, problems.n_params, tol=tol,
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
