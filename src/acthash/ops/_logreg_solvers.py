"""The numerical solvers of :mod:`acthash.ops.logreg` (private to ``acthash.ops``).

- :class:`Problems` with :func:`lbfgs`: all binary problems (or the multinomial one) of the
  packed-bit objective, batched L-BFGS, every pass over the codes serving every problem;
- :func:`newton_kernel`: one binary problem by Newton's method on the Gram matrix;
- :func:`span_lbfgs`: one binary problem by L-BFGS in the span of its centred rows.

The objective (scikit-learn's, scaled by 1/n) is given in :mod:`acthash.ops.logreg`.
"""

from __future__ import annotations

import numpy as np

from acthash.ops.packed import PackedMatrix

__all__ = ["FTOL", "Problems", "lbfgs", "log1pexp", "newton_kernel", "sigmoid", "span_lbfgs"]

#: relative decrease of the objective below which the solvers stop (scipy's L-BFGS-B factr)
FTOL = 64 * np.finfo(float).eps


def log1pexp(s):
    return np.logaddexp(0.0, s)


def sigmoid(s):
    out = np.empty_like(s)
    pos = s >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
    e = np.exp(s[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class Problems:
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
                f[cols] += (log1pexp(s) - s * t[None, :]).sum(axis=0)
                r = sigmoid(s) - t[None, :]
                gw[cols] += self.mat.rmatmul(r, rows).T
                gb[cols] += r.sum(axis=0)
        else:
            pos = np.array([self.pairs[p][0] for p in active])
            t = (self.yi[:, None] == pos[None, :]).astype(np.float64)
            s = self.mat.matmul(w.T) + b[None, :]
            f += (log1pexp(s) - s * t).sum(axis=0)
            r = sigmoid(s) - t
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


def lbfgs(fun, n_problems: int, n_params: int, *, tol: float, max_iter: int, history: int):
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
                if np.abs(g[p]).max() <= tol or rel <= FTOL or iters[p] >= max_iter:
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


def newton_kernel(gram: np.ndarray, t: np.ndarray, C: float, *, tol: float,
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
        return float((log1pexp(s) - t * s).sum() + 0.5 / C * alpha @ (s - b))

    f = objective(alpha, b, s)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        p = sigmoid(s)
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
        if rel <= FTOL:
            break
    return alpha, b, it


def span_lbfgs(matvec, t: np.ndarray, C: float, *, tol: float, max_iter: int,
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
        f = float((log1pexp(s) - t * s).sum() + 0.5 / C * (alpha @ ka)) / n
        r = sigmoid(s) - t
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
        if rel <= FTOL:
            break
    alpha, b = z[:n], z[n]
    # w = (X - mu)^T alpha = X^T (alpha - mean(alpha)); b_uncentred = b - w . mu
    return alpha - alpha.mean(), float(b - alpha @ (m - cm)), it
