"""Products of a bit-packed 0/1 matrix with dense matrices, in bounded memory.

:class:`PackedMatrix` wraps (N, ceil(n_bits/8)) uint8 packed codes (in memory or a
read-only memory map) as the (N, n_bits) 0/1 matrix ``X`` and computes ``X @ W``,
``X.T @ R`` and the row sums without ever holding ``X`` unpacked:

- ``backend="numba"`` (CPU): byte lookup tables (for fewer than 64 rows, where building
  the tables would cost more than the products, the rows are unpacked in budget-sized
  blocks and multiplied densely in float64). For ``X @ W`` each byte position gets a
  256-entry table of the sums of ``W``'s rows selected by each byte value, so a row costs
  one look-up per byte (zero bytes are skipped); ``X.T @ R`` accumulates a per-byte
  histogram of ``R``'s rows and expands it to bits. Working memory: the tables,
  ``256 * n_bytes * M`` floats, split over groups of columns to fit the budget.
- ``backend="torch"``: rows are unpacked in chunks (as many as fit the budget) on the
  device (CPU or CUDA) and multiplied with ``torch.matmul`` in float32.

Both accumulate in a fixed order, so the result is the same bit for bit whether the packed
rows are in memory or memory-mapped.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads

from acthash._kernels.hamming import as_words, distance_tile
from acthash._kernels.packed import (
    add_row_bits,
    build_tables,
    expand_histogram,
    hamming_to,
    lut_matmul,
    lut_rmatmul,
    pack_planes,
)
from acthash._utils.budget import parse_memory_budget, resolve_backend
from acthash._utils.validate import as_packed
from acthash.errors import InputError, ResourceError
from acthash.ops.bits import row_popcounts

__all__ = ["PackedMatrix"]

# below this many rows per product the byte tables (256 entries per byte and column) do
# not pay for themselves: the rows are unpacked (within the budget) and multiplied densely
_DENSE_ROWS = 64
#: most rows of accumulators per task of the table product
_LUT_CHUNK = 4096
#: bytes of tables one pass of the table product keeps hot (fits L2)
_LUT_BLOCK_BYTES = 256 << 10
#: most bytes of unpacked float64 rows in one dense block, below the memory budget
_DENSE_BLOCK_BYTES = 64 << 20
#: most rows popcounted at once (a cap below the memory budget)
_POPCOUNT_ROWS = 65536

class PackedMatrix:
    """The (N, n_bits) 0/1 matrix of bit-packed codes, with chunked products.

    packed : (N, ceil(n_bits/8)) uint8 array or memory map (NeuralCodes.packed)
    n_bits : valid bits per row (pad bits must be 0)
    backend, device : "auto", "numba" or "torch" and a torch device
        (:func:`acthash._utils.budget.resolve_backend`)
    memory_budget : bytes of working memory (int or "2GB"); a budget that cannot hold the
        working set of a single row raises :class:`~acthash.errors.ResourceError`.
    """

    def __init__(self, packed, n_bits: int, *, backend: str = "auto", device=None,
                 memory_budget=None):
        packed = as_packed(packed, contiguous=False)
        if packed.shape[1] != (n_bits + 7) // 8:
            raise InputError(f"{n_bits} bits need {(n_bits + 7) // 8} bytes per row, "
                             f"packed has {packed.shape[1]}")
        self.packed = packed
        self.n_bits = int(n_bits)
        self.n_bytes = packed.shape[1]
        self.backend, self.device = resolve_backend(backend, device, what="packed products")
        self.memory_budget = parse_memory_budget(memory_budget)
        per_row = self._min_bytes()
        if self.memory_budget < per_row:
            raise ResourceError(
                f"memory budget {self.memory_budget} bytes is too small for one row of "
                f"{self.n_bits} bits (needs at least {per_row} bytes with backend "
                f"'{self.backend}'); raise memory_budget (e.g. '1GB')"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.packed.shape[0], self.n_bits)

    def __len__(self) -> int:
        return self.packed.shape[0]

    # ------------------------------------------------------------------ sizing
    def _min_bytes(self) -> int:
        if self.backend == "numba":
            return 256 * self.n_bytes * 8  # a float64 table/histogram of one column
        return self.n_bytes * 8 * 5  # one unpacked row: uint8 bits + float32 copy

    def _column_group(self, m: int) -> int:
        """Columns of W (or R) per kernel call under the budget (numba)."""
        per_col = 256 * self.n_bytes * 8 * 2
        return max(1, min(m, self.memory_budget // per_col))

    def chunk_rows(self, m: int = 1) -> int:
        """Rows unpacked at once by the torch backend under the budget."""
        per_row = self.n_bytes * 8 * 5 + 8 * m * 2
        return max(1, self.memory_budget // per_row)

    # ------------------------------------------------------------------ helpers
    def _rows(self, rows) -> np.ndarray:
        if rows is None:
            return np.arange(len(self), dtype=np.int64)
        return np.ascontiguousarray(rows, dtype=np.int64)

    def _tables(self, w: np.ndarray) -> np.ndarray:
        """(n_bits, M) -> (n_bytes, 256, M) float64 byte tables."""
        pad = self.n_bytes * 8 - self.n_bits
        if pad:
            w = np.concatenate([w, np.zeros((pad, w.shape[1]))])
        w8 = np.ascontiguousarray(w.reshape(self.n_bytes, 8, w.shape[1]))
        tables = np.empty((self.n_bytes, 256, w.shape[1]), dtype=np.float64)
        build_tables(w8, tables)
        return tables

    def _dense_chunks(self, rows: np.ndarray):
        """(offset, float64 0/1 block) for a few rows, unpacked within the budget."""
        step = max(1, min(self.memory_budget, _DENSE_BLOCK_BYTES) // (self.n_bits * 9))
        for lo in range(0, len(rows), step):
            block = np.asarray(self.packed[rows[lo : lo + step]])
            yield lo, np.unpackbits(block, axis=1, count=self.n_bits).astype(np.float64)

    def _torch_chunks(self, rows: np.ndarray, m: int):
        import torch

        step = self.chunk_rows(m)
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=self.device)
        contiguous = len(rows) == len(self) and (len(rows) == 0 or (
            rows[0] == 0 and np.all(np.diff(rows) == 1)))
        for lo in range(0, len(rows), step):
            if contiguous:
                block = np.asarray(self.packed[lo : lo + step])
            else:
                block = self.packed[rows[lo : lo + step]]
            p = torch.from_numpy(np.ascontiguousarray(block)).to(self.device)
            bits = (p.unsqueeze(-1) >> shifts) & 1
            yield lo, bits.reshape(p.shape[0], -1)[:, : self.n_bits].to(torch.float32)

    def _oom(self, e: Exception) -> ResourceError:
        return ResourceError(
            f"{self.device} ran out of memory ({e}); lower memory_budget (now "
            f"{self.memory_budget} bytes) or run on device='cpu'"
        )

    # ------------------------------------------------------------------ products
    def matmul(self, w, rows=None) -> np.ndarray:
        """``X[rows] @ w`` for a dense (n_bits, M) ``w``: (n_rows, M) float64."""
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 1:
            return self.matmul(w[:, None], rows)[:, 0]
        if w.shape[0] != self.n_bits:
            raise InputError(f"w has {w.shape[0]} rows; the codes have {self.n_bits} bits")
        rows = self._rows(rows)
        out = np.empty((len(rows), w.shape[1]), dtype=np.float64)
        if len(rows) == 0 or w.shape[1] == 0:
            return out
        if self.backend == "numba" and len(rows) < _DENSE_ROWS:
            for lo, x in self._dense_chunks(rows):
                out[lo : lo + x.shape[0]] = x @ w
            return out
        if self.backend == "numba":
            g = self._column_group(w.shape[1])
            # row chunks: at least one per thread, at most _LUT_CHUNK rows of accumulators
            chunk = max(1, min(_LUT_CHUNK, -(-len(rows) // get_num_threads())))
            for c in range(0, w.shape[1], g):
                part = np.empty((len(rows), min(g, w.shape[1] - c)), dtype=np.float64)
                byte_block = max(1, _LUT_BLOCK_BYTES // (256 * 8 * part.shape[1]))
                lut_matmul(self.packed, rows, self._tables(w[:, c : c + g]), part, chunk,
                           byte_block)
                out[:, c : c + g] = part
            return out
        import torch

        try:
            wt = torch.from_numpy(w).to(self.device, torch.float32)
            for lo, bits in self._torch_chunks(rows, w.shape[1]):
                out[lo : lo + bits.shape[0]] = (bits @ wt).double().cpu().numpy()
        except torch.OutOfMemoryError as e:  # pragma: no cover - needs a GPU
            raise self._oom(e) from e
        return out

    def rmatmul(self, r, rows=None, *, dense: bool = False) -> np.ndarray:
        """``X[rows].T @ r`` for a dense (n_rows, M) ``r``: (n_bits, M) float64. ``dense``
        (numba backend): multiply unpacked blocks of at most 64 MiB instead of building the
        (n_bytes, 256, M) histogram (less memory for a one-off product)."""
        r = np.asarray(r, dtype=np.float64)
        if r.ndim == 1:
            return self.rmatmul(r[:, None], rows)[:, 0]
        rows = self._rows(rows)
        if r.shape[0] != len(rows):
            raise InputError(f"r has {r.shape[0]} rows for {len(rows)} codes")
        out = np.zeros((self.n_bits, r.shape[1]), dtype=np.float64)
        if len(rows) == 0 or r.shape[1] == 0:
            return out
        if self.backend == "numba" and (dense or len(rows) < _DENSE_ROWS):
            for lo, x in self._dense_chunks(rows):
                out += x.T @ r[lo : lo + x.shape[0]]
            return out
        if self.backend == "numba":
            g = self._column_group(r.shape[1])
            for c in range(0, r.shape[1], g):
                part = np.ascontiguousarray(r[:, c : c + g])
                hist = np.zeros((self.n_bytes, 256, part.shape[1]), dtype=np.float64)
                lut_rmatmul(self.packed, rows, part, hist)
                bits = np.empty((self.n_bytes * 8, part.shape[1]), dtype=np.float64)
                expand_histogram(hist, bits)  # bits[8b + j] = sum of hist[b, v] over bit j of v
                out[:, c : c + g] = bits[: self.n_bits]
            return out
        import torch

        try:
            acc = torch.zeros((self.n_bits, r.shape[1]), dtype=torch.float64, device=self.device)
            for lo, bits in self._torch_chunks(rows, r.shape[1]):
                rt = torch.from_numpy(r[lo : lo + bits.shape[0]]).to(self.device, torch.float32)
                acc += (bits.T @ rt).double()
            out[:] = acc.cpu().numpy()
        except torch.OutOfMemoryError as e:  # pragma: no cover - needs a GPU
            raise self._oom(e) from e
        return out

    def plane_matmul(self, s, rows=None, *, need=None) -> np.ndarray:
        """``X[rows] @ s.T`` for a non-negative integer (M, n_bits) ``s`` (e.g. the column
        sums of groups of codes), exact, by bit planes (numba backend):
        ``x . s_m = sum_p 2^p popcount(x AND plane_p(s_m))``, where ``plane_p(s_m)`` packs
        bit ``p`` of every entry of ``s_m``. Row ``m`` takes ``bit_length(max s_m)`` planes,
        each an AND-popcount pass over a code's words (the exact Hamming kernel reading the
        codes in place, ``x . y = (|x| + |y| - hamming(x, y)) / 2``).

        need : optional (n_rows, M) bool; only those entries are computed (the others are 0).
        Returns (n_rows, M) float64 integers (exact below 2^53)."""
        s = np.asarray(s)
        if s.ndim != 2 or s.shape[1] != self.n_bits:
            raise InputError(f"s must be (M, {self.n_bits}); got shape {s.shape}")
        si = np.rint(s).astype(np.int64)
        if (si < 0).any() or not np.array_equal(si, s):
            raise InputError("plane_matmul needs non-negative integer entries")
        rows = self._rows(rows)
        out = np.zeros((len(rows), s.shape[0]))
        if need is None:
            need = np.ones(out.shape, dtype=bool)
        need = np.asarray(need, dtype=bool)
        if need.shape != out.shape:
            raise InputError(f"need has shape {need.shape}, expected {out.shape}")
        norms = self._popcounts()
        step = max(4, min(self.memory_budget, _DENSE_BLOCK_BYTES) // max(1, self.n_bytes))
        in_place = self.n_bytes % 8 == 0 and self.packed.flags.c_contiguous
        if in_place:
            words = self.packed.view(np.uint64)
        for m in np.flatnonzero(need.any(axis=0)):
            n_planes = int(si[m].max(initial=0)).bit_length()
            if n_planes == 0:
                continue
            planes = np.empty((n_planes, -(-self.n_bytes // 8)), dtype=np.uint64)
            pack_planes(si[m], n_planes, planes)
            plane_norms = row_popcounts(planes.view(np.uint8))
            power = 2.0 ** np.arange(n_planes)
            sel = np.flatnonzero(need[:, m])
            for lo in range(0, len(sel), step):
                part = sel[lo : lo + step]
                idx = rows[part]
                if in_place:
                    src, local = words, idx
                else:  # rows not a whole number of words: gather and pad a block
                    src = as_words(np.take(self.packed, idx, axis=0))
                    local = np.arange(len(idx), dtype=np.int64)
                dist = np.empty((len(idx), n_planes), dtype=np.int32)
                distance_tile(src, local, planes, dist)
                counts = (norms[idx, None] + plane_norms[None, :] - dist) // 2
                out[part, m] = counts @ power  # integers times powers of two: exact
        return out

    def group_sums(self, target, n_groups: int, rows=None, sign=None) -> np.ndarray:
        """Integer column sums of groups of rows: ``out[g] = sum of sign[r] * X[rows[r]]``
        over the rows with ``target[r] == g`` (sign 1 by default): (n_groups, n_bits) int64,
        exact (numba backend: each thread adds a share of the rows, byte by byte, into its
        own copy of the sums, within the memory budget)."""
        rows = self._rows(rows)
        target = np.ascontiguousarray(target, dtype=np.int64)
        if target.shape != rows.shape:
            raise InputError(f"target has shape {target.shape} for {len(rows)} rows")
        sign = np.ones(len(rows), np.int64) if sign is None else \
            np.ascontiguousarray(sign, dtype=np.int64)
        copy_bytes = n_groups * self.n_bytes * 8 * 8
        parts = int(max(1, min(get_num_threads(), len(rows) // 64 or 1,
                               self.memory_budget // max(1, copy_bytes))))
        acc = np.zeros((parts, n_groups, self.n_bytes * 8), dtype=np.int64)
        if len(rows):
            add_row_bits(self.packed, rows, target, sign, acc)
        return acc.sum(axis=0)[:, : self.n_bits]

    def _popcounts(self) -> np.ndarray:
        """(N,) int64 set bits of every row, computed once."""
        if getattr(self, "_norms", None) is None:
            step = max(1, min(_POPCOUNT_ROWS, self.memory_budget // max(1, 2 * self.n_bytes)))
            self._norms = row_popcounts(self.packed, step)
        return self._norms

    def row_sums(self, rows=None) -> np.ndarray:
        """Number of 1 bits of each row: (n_rows,) float64."""
        norms = self._popcounts().astype(np.float64)
        return norms if rows is None else norms[self._rows(rows)]

    def hamming_to_rows(self, query_rows) -> np.ndarray:
        """(N, len(query_rows)) float64 Hamming distances from every row to some of the rows
        (popcount of XORed 64-bit words on the CPU; ``|x| + |y| - 2 x.y`` with torch)."""
        query_rows = self._rows(query_rows)
        if self.backend != "numba":
            norms = self.row_sums()
            qb = self.unpack_rows(query_rows)
            return np.maximum(norms[:, None] + norms[query_rows][None, :] - 2 * self.matmul(qb.T),
                              0.0)
        q = as_words(np.asarray(self.packed[query_rows]))
        out = np.empty((len(self), len(query_rows)), dtype=np.float64)
        step = max(1, min(len(self), self.memory_budget // (2 * (self.n_bytes + 8))))
        for lo in range(0, len(self), step):
            block = as_words(np.asarray(self.packed[lo : lo + step]))
            hamming_to(block, q, out[lo : lo + step])
        return out

    def column_sums(self, rows=None) -> np.ndarray:
        """Number of 1 bits of each column over ``rows``: (n_bits,) float64."""
        rows = self._rows(rows)
        if self.backend == "numba":
            return self.group_sums(np.zeros(len(rows), np.int64), 1, rows)[0].astype(np.float64)
        return self.rmatmul(np.ones((len(rows), 1)), rows)[:, 0]

    def unpack_rows(self, rows) -> np.ndarray:
        """(len(rows), n_bits) float64 0/1 rows (a few rows only, e.g. K-Means seeds)."""
        rows = self._rows(rows)
        return np.unpackbits(np.asarray(self.packed[rows]), axis=1,
                             count=self.n_bits).astype(np.float64)
