"""Max pooling as extra piecewise-linear pieces of the plane partition.

Inside a piece of the plane partition every input of a max-pooling layer is an affine
function of the plane coordinates ``(s, t)``; the layer's output takes, in each window, the
largest of them, so the piece splits into the cells where one entry of each window is the
largest (the *switch* of the window). The cell of entry ``k`` is the convex set where
``f_k - f_j >= 0`` for every other entry ``j`` of its window, cut out by clipping -- only
along lines ``f_k = f_j``, and only in windows whose largest entry is not the same at every
vertex of the piece (the largest entry at every vertex of a convex piece is the largest all
over it). Entries with the same affine function are one function: the first of them wins,
as in PyTorch.

:func:`pool_windows` lists every window's entries as flat indices into the pooling input
(-1 for padding), for ``nn.MaxPool1d/2d/3d`` (any kernel, stride, padding, dilation,
``ceil_mode``) and ``nn.AdaptiveMaxPool1d/2d/3d``; it is checked against the module's own
output on a random input when the partition starts.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from acthash.geometry._polygons import clip

POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
ADAPTIVE_POOLS = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_DIMS = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AdaptiveMaxPool1d: 1,
         nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}


def _tuple(v, nd: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * nd


def _ranges(module: nn.Module, length: int, dim: int, nd: int) -> list[list[int]]:
    """The input positions (-1: padding) of each window along one spatial dimension."""
    if isinstance(module, ADAPTIVE_POOLS):
        out = _tuple(module.output_size, nd)[dim]
        out = length if out is None else out
        return [list(range(math.floor(i * length / out), math.ceil((i + 1) * length / out)))
                for i in range(out)]
    k = _tuple(module.kernel_size, nd)[dim]
    s = _tuple(module.stride if module.stride is not None else module.kernel_size, nd)[dim]
    p = _tuple(module.padding, nd)[dim]
    d = _tuple(module.dilation, nd)[dim]
    span = d * (k - 1) + 1
    num = length + 2 * p - span
    out = (-(-num // s) if module.ceil_mode else num // s) + 1
    if module.ceil_mode and (out - 1) * s >= length + p:
        out -= 1  # the last window must start inside the input or the left padding
    windows = []
    for i in range(out):
        pos = [i * s - p + j * d for j in range(k)]
        windows.append([q if 0 <= q < length else -1 for q in pos])
    return windows


def pool_windows(module: nn.Module, in_shape: tuple[int, ...]) -> np.ndarray:
    """(n_windows, m) flat indices into one example's pooling input of shape ``in_shape``
    (channels first), -1 for padding, windows in the order of the flattened output."""
    nd = next(d for cls, d in _DIMS.items() if isinstance(module, cls))
    spatial = tuple(in_shape[-nd:])
    lead = int(np.prod(in_shape[:-nd])) if len(in_shape) > nd else 1
    per_dim = [_ranges(module, n, i, nd) for i, n in enumerate(spatial)]
    strides = np.cumprod((1,) + spatial[::-1])[:-1][::-1]  # C order
    grids = np.meshgrid(*[np.arange(len(r)) for r in per_dim], indexing="ij")
    rows = []
    for out_pos in zip(*(g.ravel() for g in grids), strict=True):
        parts = [per_dim[i][o] for i, o in enumerate(out_pos)]
        mesh = np.meshgrid(*parts, indexing="ij")
        flat = sum(m * st for m, st in zip(mesh, strides, strict=True)).ravel()
        bad = np.zeros(flat.shape, dtype=bool)
        for m in mesh:
            bad |= m.ravel() < 0
        rows.append(np.where(bad, -1, flat))
    width = max(len(r) for r in rows)
    one = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        one[i, : len(r)] = r
    size = int(np.prod(spatial))
    out = np.concatenate([np.where(one < 0, -1, one + c * size) for c in range(lead)])
    return out


def check_windows(module: nn.Module, in_shape: tuple[int, ...], windows: np.ndarray,
                  dtype: torch.dtype) -> bool:
    """Whether the window lists reproduce ``module`` on a random input."""
    x = torch.randn((1, *in_shape), generator=torch.Generator().manual_seed(0), dtype=dtype)
    p = next(iter(module.parameters()), None)
    want = module(x.to(p.device) if p is not None else x).reshape(-1).cpu()
    flat = torch.cat([x.reshape(-1), torch.tensor([-math.inf], dtype=dtype)])
    got = flat[torch.as_tensor(np.where(windows < 0, len(flat) - 1, windows))].max(dim=1).values
    return got.shape == want.shape and bool(torch.equal(got, want))


def window_values(windows: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(..., n_windows, m) values of each window's entries (``-inf`` for padding) from
    (..., n_in) values of the pooling input."""
    pad = np.concatenate([z, np.full(z.shape[:-1] + (1,), -np.inf)], axis=-1)
    return pad[..., np.where(windows < 0, z.shape[-1], windows)]


def switches(windows: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(B, n_windows) flat index into one example's pooling input of the largest entry of
    every window (the first one on a tie, as PyTorch), from (B, n_in) values."""
    pos = window_values(windows, z).argmax(axis=-1)
    return windows[np.arange(len(windows))[None, :], pos]


def split_by_windows(piece: np.ndarray, windows: np.ndarray, gs: np.ndarray, gt: np.ndarray,
                     off: np.ndarray, tol: float, scale: float) -> list[np.ndarray]:
    """The cells of convex ``piece`` on which every window's switch is fixed, for the pooling
    input ``gs*s + gt*t + off`` ((n_in,) each) on the piece."""
    vals = piece @ np.stack([gs, gt]) + off  # (K, n_in) at the vertices
    wv = window_values(windows, vals)  # (K, n_windows, m)
    arg = wv.argmax(axis=2)
    moving = np.flatnonzero((arg != arg[:1]).any(axis=0))
    cells = [piece]
    for w in moving:
        idx = windows[w]
        entries = [i for i in range(len(idx)) if idx[i] >= 0]
        g = np.stack([gs[idx[entries]], gt[idx[entries]]], axis=1)  # (m', 2)
        o = off[idx[entries]]
        nxt = []
        for cell in cells:
            f = cell @ g.T + o  # (K, m')
            best = f.argmax(axis=1)
            if (best == best[0]).all():
                nxt.append(cell)
                continue
            nxt.extend(_argmax_cells(cell, g, o, tol, scale))
        cells = nxt
    return cells


def _argmax_cells(cell: np.ndarray, g: np.ndarray, o: np.ndarray, tol: float,
                  scale: float) -> list[np.ndarray]:
    """Split convex ``cell`` into the cells where entry k of ``g @ (s, t) + o`` is largest."""
    out = []
    for k in range(len(g)):
        part = cell
        for j in range(len(g)):
            if j == k or part is None:
                continue
            dg = g[k] - g[j]
            norm = float(np.hypot(*dg))
            do = o[k] - o[j]
            if norm <= 1e-12 * (1 + np.abs(g).max()):
                if abs(do) <= 1e-12 * (1 + abs(o[k])) * scale:
                    if j < k:  # the same function: the first entry wins
                        part = None
                elif do < 0:
                    part = None
                continue
            part = clip(part, (part @ dg + do) / norm, tol)
        if part is not None and len(part) >= 3:
            out.append(part)
    return out
