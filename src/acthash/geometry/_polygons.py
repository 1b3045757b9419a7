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


def split_by_lines(p: np.ndarray, lines: np.ndarray, tol: float) -> list[np.ndarray]:
    """The cells of the arrangement of ``lines`` (L, 3) rows ``(a, b, c)`` with unit normals
    (``a*s + b*t + c = 0``) inside convex polygon ``p``."""
    f = p @ lines[:, :2].T + lines[:, 2]
    crossing = (f > tol).any(axis=0) & (f < -tol).any(axis=0)
    pieces = [p]
    for a, b, c in lines[crossing]:
        nxt = []
        for q in pieces:
            res = cut(q, q[:, 0] * a + q[:, 1] * b + c, tol)
            if res is None:
                nxt.append(q)
            else:
                nxt.extend(res)
        pieces = nxt
    return pieces
