"""Figures of a :class:`~acthash.geometry.planes.PlanePartition` (matplotlib, lazy import).

- :func:`plot_plane_regions` -- regions in random (seeded) colours, the decision boundary
  and the anchors;
- :func:`plot_plane_hamming` -- regions coloured by the Hamming distance of their code to the
  code of an anchor;
- :func:`plot_plane_strip` -- the same plane at several checkpoints, one panel each.

Every function draws on ``ax`` (a new figure when ``None``) and returns the axes.
"""

from __future__ import annotations

import numpy as np

from acthash.errors import InputError
from acthash.geometry.planes import PlanePartition

__all__ = ["plot_plane_regions", "plot_plane_hamming", "plot_plane_strip", "anchor_codes"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4, 4))
    return ax


def _draw(part: PlanePartition, colors, ax, boundary: bool, anchors: bool, edges: bool):
    from matplotlib.collections import LineCollection, PolyCollection

    ax.add_collection(PolyCollection(part.regions, facecolors=colors,
                                     edgecolors="k" if edges else "none",
                                     linewidths=0.15 if edges else 0))
    if boundary and len(part.boundary):
        ax.add_collection(LineCollection(part.boundary, colors="k", linewidths=1.6))
    if anchors and part.anchors is not None:
        ax.scatter(part.anchors[:, 0], part.anchors[:, 1], c="w", edgecolors="k", s=40,
                   zorder=3)
        for i, (s, t) in enumerate(part.anchors):
            ax.annotate(str(i), (s, t), xytext=(4, 4), textcoords="offset points", fontsize=8)
    lo, hi = part.polygon.min(axis=0), part.polygon.max(axis=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_plane_regions(part: PlanePartition, *, ax=None, seed: int = 0, boundary: bool = True,
                       anchors: bool = True, edges: bool = True, title: str | None = None):
    """The plane coloured by linear region (random colours from ``seed``)."""
    ax = _axes(ax)
    colors = np.random.default_rng(seed).uniform(0.25, 1.0, size=(len(part), 3))
    _draw(part, colors, ax, boundary, anchors, edges)
    ax.set_title(title if title is not None else f"{len(part)} regions", fontsize=9)
    return ax


def anchor_codes(part: PlanePartition) -> np.ndarray:
    """(3, n_bytes) codes of the regions that contain the anchors."""
    if part.anchors is None:
        raise InputError("this partition has no anchors; build it with plane_partition(model, "
                         "anchors)")
    return part.codes[part.locate(part.anchors)]


def plot_plane_hamming(part: PlanePartition, anchor: int = 0, *, ax=None, cmap: str = "viridis",
                       boundary: bool = True, colorbar: bool = True):
    """The plane coloured by the Hamming distance of each region's code to the code of
    anchor ``anchor`` (0, 1 or 2)."""
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    dist = part.hamming_to(anchor_codes(part)[anchor])
    norm = plt.Normalize(0, max(int(dist.max()), 1))
    colors = plt.get_cmap(cmap)(norm(dist))
    _draw(part, colors, ax, boundary, True, False)
    if colorbar:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        ax.figure.colorbar(sm, ax=ax, fraction=0.046, pad=0.04, label="Hamming distance")
    ax.set_title(f"Hamming distance to anchor {anchor}", fontsize=9)
    return ax


def plot_plane_strip(parts, titles=None, *, axes=None, seed: int = 0):
    """The same plane at several checkpoints: one :func:`plot_plane_regions` panel each.
    ``titles`` label the panels (e.g. ``["epoch 0", "epoch 5"]``); returns the axes."""
    parts = list(parts)
    if not parts:
        raise InputError("give at least one partition")
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(parts), figsize=(3 * len(parts), 3.2), squeeze=False)
        axes = axes[0]
    if len(axes) != len(parts):
        raise InputError(f"{len(parts)} partitions but {len(axes)} axes")
    titles = titles or [""] * len(parts)
    for ax, part, name in zip(axes, parts, titles, strict=True):
        plot_plane_regions(part, ax=ax, seed=seed, title=f"{name}  {len(part)} regions".strip())
    return axes
