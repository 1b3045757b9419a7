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

Solver: L-BFGS (memory ``history``, backtracking Armijo line search) run on all the binary
problems at once, so that every pass over the codes serves every problem still running:
scores ``X @ W`` and gradients ``X.T @ R`` come from
:class:`~acthash.packed.PackedMatrix` (byte lookup tables on the CPU, chunked float32
matmuls with ``backend="torch"``). It stops, as scipy's L-BFGS-B in scikit-learn, when the
largest gradient entry is at most ``tol`` or the objective stops decreasing
(relative change below 64 machine epsilons). The objective is strictly convex, so the
optimum is unique and the same as scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acthash.codes import as_codes
from acthash.errors import InputError
from acthash.packed import PackedMatrix, parse_memory_budget

__all__ = ["PackedLogisticRegression", "fit_logreg_packed"]

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
        s = self.decision_function(codes, **kwargs)
        k = len(self.classes)
        if self.strategy != "ovo":
            if s.shape[1] == 1:
                return self.classes[(s[:, 0] > 0).astype(int)]
            return self.classes[s.argmax(axis=1)]
        votes = np.zeros((s.shape[0], k))
        conf = np.zeros((s.shape[0], k))
        for p, (i, j) in enumerate(self.pairs):
            conf[:, i] -= s[:, p]
            conf[:, j] += s[:, p]
            pos = s[:, p] > 0
            votes[~pos, i] += 1
            votes[pos, j] += 1
        return self.classes[(votes + conf / (3 * (np.abs(conf) + 1))).argmax(axis=1)]


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


def fit_logreg_packed(codes, labels=None, *, C: float = 1.0, strategy: str = "ovo",
                      tol: float = 1e-4, max_iter: int = 1000, history: int = 10,
                      backend: str = "auto", device=None,
                      memory_budget=None) -> PackedLogisticRegression:
    """Fit L2 logistic regression (see the module docstring) on packed codes.

    codes : NeuralCodes (labels taken from them when ``labels`` is None) or packed rows
    strategy : "ovo" (default, the original study's), "ovr" or "multinomial" (one problem:
        fewer passes, the faster alternative)
    tol : largest gradient entry of the (1/n-scaled) objective at convergence
    memory_budget : bytes (or "2GB") of working memory for the products; the L-BFGS history
        (``2 * history`` float32 copies of the parameters) comes on top.
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
    mat = PackedMatrix(codes.packed, codes.n_bits, backend=backend, device=device,
                       memory_budget=parse_memory_budget(memory_budget))
    k = len(classes)
    eff = "ovo" if strategy == "ovo" or k == 2 and strategy == "multinomial" else strategy
    if k == 2 and eff == "ovr":
        eff = "ovr"
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
