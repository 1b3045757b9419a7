"""Gram matrices of bit-packed codes in blocks by class, computed once and shared.

For N codes in K classes, :class:`ClassGram` gives the blocks ``G_ab = X_a X_b^T`` (rows of
class a against rows of class b; ``x . y`` = bits set in both, exact popcount integers,
:func:`acthash.ops.hamming.gram_matrix`) for a <= b, each computed once, every pair of codes
once in all (N^2 / 2 popcounts of the code's words). A block is stored as uint16 above a
per-row base (exact, a quarter of float64's bytes; float32 when a row's range passes
65 535), in memory when all the blocks kept fit the memory budget, else in a temporary
folder (``TMPDIR``) removed on close.

Two properties read the same blocks: the leave-one-out k-NN share counts
(:func:`loo_share_counts`, distances ``|x| + |y| - 2 x.y``) and the per-pair one-vs-one
logistic regression (``fit_logreg_packed(solver="pairs")``), so on the training codes of a
full dataset the popcounts are paid once for both (``encoding_properties`` shares one
``ClassGram`` when both take these paths).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from acthash._kernels import hamming as _hamming_numba
from acthash._utils.budget import parse_memory_budget
from acthash._utils.validate import as_packed, check_class_indices, check_k
from acthash.errors import InputError, ResourceError
from acthash.ops.bits import row_popcounts
from acthash.ops.hamming import _share_state, gram_matrix

__all__ = ["ClassGram", "compact_block", "loo_share_counts", "pair_working_bytes"]

#: most bytes of int64 distances (with their temporaries) per chunk of a block in
#: :func:`loo_share_counts`, a cap below the memory budget
_LOO_CHUNK_BYTES = 32 << 20


def compact_block(block: np.ndarray):
    """A float32 block of integers as ``(m, base)`` with ``block[i, j] = base[i] + m[i, j]``:
    m uint16 when every row's range fits (half the bytes of float32, so half the memory
    traffic of each product), else the float32 block itself with zero bases."""
    if block.size == 0:
        return block, np.zeros(len(block))
    base = block.min(axis=1).astype(np.float64)
    if float((block.max(axis=1) - base).max()) < 65536:
        return (block - base[:, None].astype(np.float32)).astype(np.uint16), base
    return block, np.zeros(len(block))


def pair_working_bytes(class_sizes, n_bytes: int) -> int:
    """Memory of the largest pair of classes at work: its float32 blocks (``4 n^2`` bytes for
    the pair's n codes) and the packed rows of its two classes."""
    n = sum(sorted(class_sizes)[-2:])
    return 4 * n * n + n_bytes * n


class ClassGram:
    """The Gram blocks of packed codes grouped by class (see the module docstring).

    codes : NeuralCodes or (N, B) packed rows (possibly memory-mapped); labels : (N,) class
    indices in [0, K). keep : "all" (every block, for several consumers) or "diagonal" (only
    the blocks of a class with itself; a cross block is computed when asked and not kept).
    memory_budget : bytes (or "1GB"); blocks past it go to a temporary folder. Use as a
    context manager (or call :meth:`close`) so that the folder is removed.
    """

    def __init__(self, codes, labels, *, memory_budget=None, keep: str = "all"):
        self.packed = as_packed(codes, contiguous=False)
        self.labels, self.n_classes = check_class_indices(labels, len(self.packed))
        if keep not in ("all", "diagonal"):
            raise InputError(f"unknown keep={keep!r}; use 'all' or 'diagonal'")
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(self.n_classes)]
        self.order = np.concatenate(self.by_class) if self.by_class else np.zeros(0, int)
        self.offsets = np.concatenate([[0], np.cumsum([len(r) for r in self.by_class])])
        self.norms = row_popcounts(self.packed)
        self.keep = keep
        sizes = [len(r) for r in self.by_class]
        kept = sum(4 * sizes[a] * sizes[b] for a in range(len(sizes))
                   for b in range(a, len(sizes)) if keep == "all" or a == b)
        self.budget = parse_memory_budget(memory_budget)
        self.in_memory = kept + self.working_bytes() <= self.budget
        self._blocks: dict = {}
        self._tmp = None if self.in_memory else tempfile.TemporaryDirectory(
            prefix="acthash-gram-")

    def working_bytes(self) -> int:
        """See :func:`pair_working_bytes`."""
        return pair_working_bytes([len(r) for r in self.by_class], self.packed.shape[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Drop the blocks and remove the temporary folder."""
        self._blocks.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def check_labels(self, labels) -> None:
        """Raise :class:`~acthash.errors.InputError` unless the blocks were built on these
        class indices (the consumers' rows must be the same codes)."""
        labels = np.asarray(labels)
        if labels.shape != self.labels.shape or not np.array_equal(labels, self.labels):
            raise InputError("the Gram blocks were built on other codes or labels; build the "
                             "ClassGram from these codes and their class indices")

    def rows(self, c: int) -> np.ndarray:
        """(n_c, B) packed rows of class c (a copy)."""
        return np.take(self.packed, self.by_class[c], axis=0)

    def block(self, a: int, b: int):
        """``(m, base)`` of ``G_ab`` for a <= b: ``G_ab[i, j] = base[i] + m[i, j]``, rows of
        class a (in index order) against rows of class b."""
        if not 0 <= a <= b < self.n_classes:
            raise InputError(f"blocks are indexed 0 <= a <= b < {self.n_classes}; got {a}, {b}")
        if (a, b) in self._blocks:
            return self._blocks[a, b]
        stored = self.keep == "all" or a == b
        path = None if self.in_memory or not stored else \
            Path(self._tmp.name) / f"block{a}_{b}.npz"
        if path is not None and path.exists():
            with np.load(path) as f:
                return f["m"], f["base"]
        ra = self.rows(a)
        g = gram_matrix(ra, dtype=np.float32) if a == b else \
            gram_matrix(ra, self.rows(b), dtype=np.float32)
        out = compact_block(g)
        if not stored:
            return out
        if path is None:
            self._blocks[a, b] = out
        else:
            try:
                np.savez(path, m=out[0], base=out[1])
            except OSError as e:
                raise ResourceError(
                    f"cannot spill the Gram blocks to {path.parent} ({e}); free disk space "
                    "there, point TMPDIR at a larger disk, or raise memory_budget to keep "
                    "them in memory") from e
        return out


def loo_share_counts(gram: ClassGram, k: int):
    """Leave-one-out share counts from the Gram blocks: per code and class, the *other* codes
    closer than and exactly at its k-th nearest Hamming distance (``|x| + |y| - 2 x.y``),
    the same as :func:`acthash.ops.hamming.share_counts_loo` on the codes. Each block (a, b),
    a <= b, is read once: a diagonal block updates its rows, a cross block the rows of both
    classes. Returns ``(less, equal)``, both (N, K) int64, in the codes' order."""
    n = len(gram.labels)
    k = check_k(k, n - 1, "the number of other codes")
    state = _share_state(n, k, gram.n_classes)
    sorted_labels = gram.labels[gram.order]
    off = gram.offsets
    for a in range(gram.n_classes):
        for b in range(a, gram.n_classes):
            m, base = gram.block(a, b)
            na_ = gram.norms[gram.by_class[a]]
            nb_ = gram.norms[gram.by_class[b]]
            step = max(1, min(gram.budget, _LOO_CHUNK_BYTES) // (12 * max(1, len(nb_))))
            cols = sorted_labels[off[b] : off[b + 1]]
            for lo in range(0, len(na_), step):
                hi = min(len(na_), lo + step)
                dist = (na_[lo:hi, None] + nb_[None, :]
                        - 2 * (base[lo:hi, None].astype(np.int64) + m[lo:hi])).astype(np.int32)
                _hamming_numba.share_rows(dist, cols, off[a] + lo, off[b], *state, a == b)
                if a != b:
                    _hamming_numba.share_cols(dist, sorted_labels[off[a] + lo : off[a] + hi],
                                              off[a] + lo, off[b], *state, False)
    less, equal = _hamming_numba.share_finish(*state)
    out_less, out_equal = np.empty_like(less), np.empty_like(equal)
    out_less[gram.order], out_equal[gram.order] = less, equal
    return out_less, out_equal
