"""Convex-polygon operations of the plane partition (plane coordinates ``(s, t)``, float64).

A polygon is a (K, 2) array of vertices in counter-clockwise order. Cutting a convex
polygon by a line gives two convex polygons, so every piece of the partition stays convex.
"""

from __future__ import annotations

import numpy as np

from acthash.errors import InputError


def area(p: np.ndarray) -> float:
    """Signed area (positive for counter-clockwise vertices)."""
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def areas(pieces: list[np.ndarray]) -> np.ndarray:
    """(n,) signed areas of many polygons at once (one pass over their stacked vertices)."""
    if not pieces:
        return np.zeros(0)
    pts = np.concatenate(pieces)
    sizes = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nxt = np.arange(len(pts)) + 1
    nxt[starts + sizes - 1] = starts  # each polygon's last vertex wraps to its first
    cross = pts[:, 0] * pts[nxt, 1] - pts[:, 1] * pts[nxt, 0]
    return 0.5 * np.add.reduceat(cross, starts)


def centroids(pieces: list[np.ndarray]) -> np.ndarray:
    """(n, 2) vertex means (an interior point of each convex polygon)."""
    if not pieces:
        return np.zeros((0, 2))
    pts = np.concatenate(pieces)
    sizes = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(pts, starts, axis=0) / sizes[:, None]


def convex_ccw(polygon) -> np.ndarray:
    """The polygon as a counter-clockwise (K, 2) array; refuses a non-convex or flat one."""
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
        raise InputError(f"polygon must be (K >= 3, 2) plane coordinates, got shape {p.shape}")
    if area(p) < 0:
        p = p[::-1].copy()
    e = np.roll(p, -1, axis=0) - p
    turn = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    if area(p) <= 0 or (turn < -1e-12 * np.abs(e).max() ** 2).any():
        raise InputError("polygon must be convex with non-zero area; pass its vertices in "
                         "order (either orientation)")
    return p


def cut(p: np.ndarray, f: np.ndarray, tol: float):
    """Split convex polygon ``p`` by the line ``f = 0`` (``f``: (K,) signed distances of its
    vertices). Returns (positive side, negative side), or None when the line does not cross
    (every vertex within ``tol`` of one side)."""
    pos_v, neg_v = f > tol, f < -tol
    if not pos_v.any() or not neg_v.any():
        return None
    g = np.roll(f, -1)
    q = np.roll(p, -1, axis=0)
    crossing = (pos_v & (g < -tol)) | (neg_v & (g > tol))
    n = len(p)
    # each vertex i, then (when edge i -> i+1 crosses) the crossing point: 2n slots in order
    slots = np.empty((2 * n, 2))
    slots[0::2] = p
    with np.errstate(divide="ignore", invalid="ignore"):
        slots[1::2] = p + (f / (f - g))[:, None] * (q - p)
    keep_pos = np.zeros(2 * n, dtype=bool)
    keep_neg = np.zeros(2 * n, dtype=bool)
    keep_pos[0::2], keep_neg[0::2] = f >= -tol, f <= tol
    keep_pos[1::2] = keep_neg[1::2] = crossing
    return slots[keep_pos], slots[keep_neg]


def clip(p: np.ndarray, f: np.ndarray, tol: float):
    """The part of convex polygon ``p`` where ``f >= 0`` (``f``: (K,) signed distances):
    ``p`` itself when no vertex is below ``-tol``, None when none is above ``tol``."""
    if not (f < -tol).any():
        return p
    if not (f > tol).any():
        return None
    return cut(p, f, tol)[0]


def split_all(pieces: list[np.ndarray], lines: list[np.ndarray], tol: float, *,
              limit: int | None = None) -> list[np.ndarray] | None:
    """The cells of the arrangement of each piece's own lines inside it, for all pieces at
    once.

    ``lines[i]`` (L_i, 3) are the lines ``a*s + b*t + c = 0`` (unit normals) of piece ``i``.
    All pieces sit in one padded (M, K, 2) array; step ``j`` cuts every piece still in work
    by the ``j``-th line of its parent (:func:`cut`, vectorised). Returns the cells, or None
    as soon as there are more than ``limit``.
    """
    n_lines = np.array([len(x) for x in lines], dtype=np.int64)
    if len(pieces) == 0 or n_lines.max(initial=0) == 0:
        return list(pieces)
    width = max(len(p) for p in pieces)
    m = len(pieces)
    verts = np.zeros((m, width, 2))
    count = np.zeros(m, dtype=np.int64)
    for i, p in enumerate(pieces):
        verts[i, : len(p)] = p
        count[i] = len(p)
    table = np.zeros((m, int(n_lines.max()), 3))
    for i, x in enumerate(lines):
        table[i, : len(x)] = x
    parent = np.arange(m)
    for step in range(int(n_lines.max())):
        active = np.flatnonzero(n_lines[parent] > step)
        if len(active) == 0:
            break
        line = table[parent[active], step]  # (A, 3)
        v = verts[active]
        valid = np.arange(verts.shape[1])[None, :] < count[active][:, None]
        f = v[..., 0] * line[:, :1] + v[..., 1] * line[:, 1:2] + line[:, 2:]
        above, below = (f > tol) & valid, (f < -tol) & valid
        crossing = above.any(axis=1) & below.any(axis=1)
        if not crossing.any():
            continue
        rows = active[crossing]
        pos, neg, n_pos, n_neg = _cut_batch(v[crossing], f[crossing], valid[crossing], tol)
        need = max(int(n_pos.max()), int(n_neg.max()))
        if need > verts.shape[1]:
            verts = np.concatenate([verts, np.zeros((len(verts), need - verts.shape[1], 2))],
                                   axis=1)
        k = verts.shape[1]
        verts[rows] = 0.0
        verts[rows, : pos.shape[1]] = pos[:, :k]
        count[rows] = n_pos
        extra = np.zeros((len(rows), k, 2))
        extra[:, : neg.shape[1]] = neg[:, :k]
        verts = np.concatenate([verts, extra])
        count = np.concatenate([count, n_neg])
        parent = np.concatenate([parent, parent[rows]])
        if limit is not None and len(verts) > limit:
            return None
    return [verts[i, : count[i]].copy() for i in range(len(verts))]


def _cut_batch(v: np.ndarray, f: np.ndarray, valid: np.ndarray, tol: float):
    """:func:`cut` of B padded polygons (B, K, 2) at once: (pos, neg) padded vertex arrays
    and their vertex counts."""
    b, k = f.shape
    n = valid.sum(axis=1)
    nxt = (np.arange(k)[None, :] + 1) % n[:, None]
    g = np.take_along_axis(f, nxt, axis=1)
    q = np.take_along_axis(v, nxt[..., None], axis=1)
    crossing = valid & (((f > tol) & (g < -tol)) | ((f < -tol) & (g > tol)))
    slots = np.empty((b, 2 * k, 2))
    slots[:, 0::2] = v
    with np.errstate(divide="ignore", invalid="ignore"):
        slots[:, 1::2] = v + (f / (f - g))[..., None] * (q - v)
    keep_pos = np.zeros((b, 2 * k), dtype=bool)
    keep_neg = np.zeros((b, 2 * k), dtype=bool)
    keep_pos[:, 0::2], keep_neg[:, 0::2] = valid & (f >= -tol), valid & (f <= tol)
    keep_pos[:, 1::2] = keep_neg[:, 1::2] = crossing

    def compact(keep):
        order = np.argsort(~keep, axis=1, kind="stable")
        cnt = keep.sum(axis=1)
        width = int(cnt.max())
        out = np.take_along_axis(slots, order[:, :width, None], axis=1)
        out[np.arange(width)[None, :] >= cnt[:, None]] = 0.0
        return out, cnt

    pos, n_pos = compact(keep_pos)
    neg, n_neg = compact(keep_neg)
    return pos, neg, n_pos, n_neg


def argmax_boundary(pieces, jac, bias, tol) -> np.ndarray:
    """(K, 2, 2) segments where the argmax of an output that is affine on each piece changes
    (``out_jac[r] @ (s, t) + out_bias[r]`` on piece r; one output: where it changes sign)."""
    if jac.shape[1] == 1:
        jac = np.concatenate([np.zeros_like(jac), jac], axis=1)
        bias = np.concatenate([np.zeros_like(bias), bias], axis=1)
    segs = []
    n_cls = jac.shape[1]
    # the polygon is convex and so is each argmax cell: where one class wins at every vertex
    # it wins everywhere; only the other regions are cut (one pass over all vertices)
    pts = np.concatenate(pieces)
    owner = np.repeat(np.arange(len(pieces)), [len(q) for q in pieces])
    win = (np.einsum("vcd,vd->vc", jac[owner], pts) + bias[owner]).argmax(axis=1)
    starts = np.concatenate([[0], np.cumsum([len(q) for q in pieces])[:-1]])
    changes = np.flatnonzero(np.maximum.reduceat(win, starts) != np.minimum.reduceat(
        win, starts))
    for r in changes:
        q = pieces[r]
        for i in range(n_cls):
            cell = q
            for k in range(n_cls):
                if k == i or cell is None:
                    continue
                g = jac[r, i] - jac[r, k]
                ng = np.hypot(*g)
                if ng == 0:
                    if bias[r, i] < bias[r, k]:
                        cell = None
                    continue
                f = (cell @ g + bias[r, i] - bias[r, k]) / ng
                res = cut(cell, f, tol)
                if res is not None:
                    cell = res[0]
                elif (f < tol).all():
                    cell = None
            if cell is None or len(cell) < 2:
                continue
            for j in range(i + 1, n_cls):
                g = jac[r, i] - jac[r, j]
                ng = np.hypot(*g)
                if ng == 0:
                    continue
                f = np.abs(cell @ g + bias[r, i] - bias[r, j]) / ng <= 1e3 * tol
                for a in range(len(cell)):
                    b = (a + 1) % len(cell)
                    if f[a] and f[b] and np.linalg.norm(cell[a] - cell[b]) > tol:
                        segs.append(np.stack([cell[a], cell[b]]))
    return np.array(segs).reshape(-1, 2, 2)
