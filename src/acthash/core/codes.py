"""NeuralCodes: bit-packed activation patterns, one row per example.

A code of ``n_bits`` bits is stored as ``ceil(n_bits / 8)`` bytes per row, most significant
bit first (``numpy.packbits`` order); pad bits are always 0. Layer spans name which bits
came from which captured layer. On disk a code set is one ``.ahc`` file: a JSON header and
raw, 64-byte aligned arrays, so that ``NeuralCodes.load(path, mmap=True)`` maps the packed
rows without reading them.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from acthash._utils.io import atomic_path
from acthash._utils.validate import as_packed, check_labels
from acthash.core.layers import choose_layers
from acthash.errors import CorruptFileError, InputError, MissingFileError, ResourceError

__all__ = ["LayerSpan", "NeuralCodes", "CorruptFileError", "CodesWriter"]

_MAGIC = b"ACTHASH\x01"
_ALIGN = 64


@dataclass(frozen=True)
class LayerSpan:
    """One captured layer: ``name``, activation ``kind``, per-example ``shape`` of the
    activation tensor, ``bits_per_unit`` (1, or 2 for two-kink units such as ReLU6) and the
    half-open bit range ``[start, stop)`` it occupies in the code."""

    name: str
    kind: str
    shape: tuple[int, ...]
    bits_per_unit: int
    start: int
    stop: int

    @property
    def n_bits(self) -> int:
        return self.stop - self.start

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayerSpan:
        return cls(
            name=d["name"],
            kind=d["kind"],
            shape=tuple(d["shape"]),
            bits_per_unit=int(d["bits_per_unit"]),
            start=int(d["start"]),
            stop=int(d["stop"]),
        )


def _n_bytes(n_bits: int) -> int:
    return (n_bits + 7) // 8


class NeuralCodes:
    """Bit-packed neural codes.

    Attributes
    ----------
    packed : (N, ceil(n_bits/8)) uint8 array (may be a read-only memory map)
    n_bits : number of valid bits per row
    layers : tuple of LayerSpan covering ``[0, n_bits)`` in forward order
    labels : optional (N,) integer array
    kept : optional (n_bits_original,) bool mask of the units kept by ``drop_constant``
    """

    def __init__(
        self,
        packed: np.ndarray,
        n_bits: int,
        layers: Sequence[LayerSpan] | None = None,
        labels: np.ndarray | Sequence[int] | None = None,
        kept: np.ndarray | None = None,
    ) -> None:
        packed = as_packed(packed, contiguous=False)  # a memory map stays one
        if packed.shape[1] != _n_bytes(n_bits):
            raise InputError(
                f"{n_bits} bits need {_n_bytes(n_bits)} bytes per row, packed has {packed.shape[1]}"
            )
        self.packed = packed
        self.n_bits = int(n_bits)
        if layers is None:
            layers = (LayerSpan("bits", "bits", (self.n_bits,), 1, 0, self.n_bits),)
        self.layers = tuple(layers)
        if self.layers and self.layers[-1].stop != self.n_bits:
            raise InputError("layer spans do not cover the code")
        self.labels = None if labels is None else check_labels(labels, len(packed))
        self.kept = None if kept is None else np.asarray(kept, dtype=bool)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bits(
        cls,
        bits: np.ndarray,
        labels: np.ndarray | Sequence[int] | None = None,
        layers: Sequence[LayerSpan] | None = None,
    ) -> NeuralCodes:
        """Pack a (N, n_bits) array of 0/1 (or bool) values.

        Validation and packing run in one pass over row blocks of about 4 MB (each block
        checked while it is in cache, then packed), so a large array costs about one read.
        """
        bits = np.asarray(bits)
        if bits.ndim != 2:
            raise InputError(f"bits must be a 2-D (N, n_bits) array, got shape {bits.shape}")
        n, n_bits = bits.shape
        kind = bits.dtype.kind
        if kind not in "biuf":
            raise InputError(f"bits must be a boolean or numeric 0/1 array, got dtype {bits.dtype}")
        packed = np.empty((n, _n_bytes(n_bits)), dtype=np.uint8)
        step = max(1, (4 << 20) // max(1, n_bits * bits.dtype.itemsize))
        unsigned = np.dtype(f"u{bits.dtype.itemsize}") if kind == "i" else None
        for lo in range(0, n, step):
            block = bits[lo : lo + step]
            if kind in "iu":
                # negative values read as large unsigned ones: one max() checks 0 <= b <= 1
                view = block.view(unsigned) if unsigned is not None else block
                ok = block.size == 0 or int(view.max()) <= 1
            elif kind == "f":
                ok = bool(np.logical_or(block == 0, block == 1).all())
            else:
                ok = True
            if not ok:
                bad = lo + int(np.argmax(~np.isin(block, (0, 1)).all(axis=1)))
                raise InputError(f"bits must contain only 0 and 1 (row {bad} does not); "
                                 "threshold the activations first, e.g. (a > 0)")
            packed[lo : lo + step] = np.packbits(block if kind != "f" else block != 0, axis=1)
        return cls(packed, n_bits, layers=layers, labels=labels)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.packed.shape[0]

    @property
    def n_bytes(self) -> int:
        """Bytes per example."""
        return self.packed.shape[1]

    @property
    def nbytes(self) -> int:
        """Total bytes of the packed codes."""
        return int(self.packed.shape[0] * self.packed.shape[1])

    def __repr__(self) -> str:
        lab = "" if self.labels is None else ", labelled"
        return f"NeuralCodes(n={len(self)}, n_bits={self.n_bits}, layers={len(self.layers)}{lab})"

    def unpack(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Return the (N, n_bits) uint8 array of 0/1 bits (optionally of some rows)."""
        packed = self.packed if rows is None else self.packed[rows]
        return np.unpackbits(np.asarray(packed), axis=1, count=self.n_bits)

    def __getitem__(self, idx) -> NeuralCodes:
        """Row subset, keeping layers and labels."""
        if isinstance(idx, (int, np.integer)):
            idx = slice(int(idx), int(idx) + 1)
        packed = np.asarray(self.packed[idx])
        labels = None if self.labels is None else self.labels[idx]
        return NeuralCodes(packed, self.n_bits, self.layers, labels, self.kept)

    def with_labels(self, labels) -> NeuralCodes:
        return NeuralCodes(self.packed, self.n_bits, self.layers, labels, self.kept)

    def layer_names(self) -> list[str]:
        return [s.name for s in self.layers]

    def select_layers(self, pattern: str | Sequence[str]) -> NeuralCodes:
        """Codes of the layers whose name matches a regular expression (or is in a list)."""
        chosen = [self.layers[i] for i in choose_layers(self.layer_names(), pattern)]
        bits = self.unpack()
        cols = np.concatenate([np.arange(s.start, s.stop) for s in chosen])
        spans, pos = [], 0
        for s in chosen:
            spans.append(replace(s, start=pos, stop=pos + s.n_bits))
            pos += s.n_bits
        return NeuralCodes.from_bits(bits[:, cols], labels=self.labels, layers=spans)

    def constant_units(self) -> np.ndarray:
        """(n_bits,) bool: True for bits equal on every row (all-0 or all-1)."""
        if len(self) == 0:
            return np.ones(self.n_bits, dtype=bool)
        first = np.asarray(self.packed[0])
        differs = np.zeros(self.n_bytes, dtype=np.uint8)
        for lo in range(0, len(self), 65536):
            block = np.asarray(self.packed[lo : lo + 65536])
            differs |= np.bitwise_or.reduce(block ^ first, axis=0)
        return np.unpackbits(differs, count=self.n_bits) == 0

    def drop_constant(self, reference: NeuralCodes | None = None) -> NeuralCodes:
        """Drop units constant over ``reference`` (default: these codes).

        The original study drops units that never change over the evaluated data; pass the
        training codes as ``reference`` to apply the training mask to test codes. The kept
        mask is stored in ``kept`` and layer spans shrink accordingly.
        """
        ref = self if reference is None else reference
        if ref.n_bits != self.n_bits:
            raise InputError("reference codes have a different number of bits")
        keep = ~ref.constant_units()
        spans, pos = [], 0
        for s in self.layers:
            n = int(keep[s.start : s.stop].sum())
            spans.append(replace(s, start=pos, stop=pos + n))
            pos += n
        bits = self.unpack()[:, keep]
        out = NeuralCodes.from_bits(bits, labels=self.labels, layers=spans)
        out.kept = keep if self.kept is None else _compose_masks(self.kept, keep)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.ahc`` file atomically (temporary file, then rename)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {"packed": np.ascontiguousarray(self.packed)}
        if self.labels is not None:
            arrays["labels"] = np.ascontiguousarray(self.labels.astype(np.int64))
        if self.kept is not None:
            arrays["kept"] = np.packbits(self.kept)
        header = {
            "format": "acthash-codes",
            "version": 1,
            "n": len(self),
            "n_bits": self.n_bits,
            "n_kept_source_bits": None if self.kept is None else int(self.kept.size),
            "layers": [s.to_dict() for s in self.layers],
            "arrays": {},
        }
        # Offsets depend on the header length, which depends on the offsets: fix point.
        header_len = 4096
        while True:
            offset = _round_up(len(_MAGIC) + 8 + header_len)
            for name, arr in arrays.items():
                header["arrays"][name] = {
                    "dtype": arr.dtype.str,
                    "shape": list(arr.shape),
                    "offset": offset,
                }
                offset = _round_up(offset + arr.nbytes)
            header["file_size"] = offset
            blob = json.dumps(header).encode()
            if len(blob) <= header_len:
                break
            header_len = _round_up(len(blob) + 1024)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(struct.pack("<Q", header_len))
            f.write(blob.ljust(header_len, b" "))
            for name, arr in arrays.items():
                f.seek(header["arrays"][name]["offset"])
                f.write(arr.tobytes(order="C"))
            f.truncate(header["file_size"])
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False) -> NeuralCodes:
        """Read a ``.ahc`` file; ``mmap=True`` maps the packed rows read-only (for codes
        larger than RAM)."""
        path = Path(path)
        if not path.exists():
            raise MissingFileError(f"no codes file at {path}")
        try:
            with open(path, "rb") as f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    raise CorruptFileError(
                        f"{path} is not an acthash codes file (bad magic bytes); "
                        "write codes with NeuralCodes.save"
                    )
                (header_len,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(header_len).decode())
        except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorruptFileError(f"{path} has a corrupt header ({e}); recompute the codes") from e
        size = path.stat().st_size
        if size != header.get("file_size"):
            raise CorruptFileError(
                f"{path} is truncated or corrupt: {size} bytes on disk, header says "
                f"{header.get('file_size')}; recompute the codes"
            )
        arrays = {}
        for name, meta in header["arrays"].items():
            dtype, shape, offset = np.dtype(meta["dtype"]), tuple(meta["shape"]), meta["offset"]
            if mmap and name == "packed":
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            else:
                count = int(np.prod(shape))
                arr = np.fromfile(path, dtype=dtype, count=count, offset=offset)
                arrays[name] = arr.reshape(shape)
        kept = None
        if "kept" in arrays:
            kept = np.unpackbits(arrays["kept"], count=header["n_kept_source_bits"]).astype(bool)
        layers = [LayerSpan.from_dict(d) for d in header["layers"]]
        return cls(arrays["packed"], header["n_bits"], layers, arrays.get("labels"), kept)

    def equals(self, other: NeuralCodes) -> bool:
        """Bitwise equality of codes (labels and layer names ignored)."""
        return self.n_bits == other.n_bits and np.array_equal(
            np.asarray(self.packed), np.asarray(other.packed)
        )


def _write_bytes(f, data) -> None:
    """One write of the codes writer (a seam for tests that simulate a full disk)."""
    f.write(data)


class CodesWriter:
    """Write a ``.ahc`` file batch by batch, without holding the codes in memory.

    The packed rows are appended at a fixed offset after a header of reserved size; on
    :meth:`close` the labels are written after them and the header (with the final row
    count) is rewritten in place. The file is built under a temporary name in the target's
    folder and renamed onto ``path`` only when complete; any error (a full disk included,
    raised as :class:`~acthash.errors.ResourceError`) removes it, so no half-written codes
    file is ever left behind. :meth:`NeuralCodes.load` reads it like a saved file (the
    header area is larger; the arrays are the same).
    """

    def __init__(self, path: str | os.PathLike, n_bits: int, layers: Sequence[LayerSpan]):
        import tempfile

        self.path = Path(path)
        self.n_bits = int(n_bits)
        self.layers = tuple(layers)
        self.n = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        self.tmp = Path(tmp)
        self._f = os.fdopen(fd, "wb")
        # the largest header these codes can have: every number at 16 digits
        big = 10**15
        blob = json.dumps(self._header(big, {"packed": big, "labels": big}, big)).encode()
        self.header_len = _round_up(len(blob) + 256)
        self.offset = _round_up(len(_MAGIC) + 8 + self.header_len)
        self._guard(lambda: self._f.seek(self.offset))

    def _header(self, n: int, offsets: dict, file_size: int) -> dict:
        arrays = {"packed": {"dtype": "|u1", "shape": [n, _n_bytes(self.n_bits)],
                             "offset": offsets["packed"]}}
        if "labels" in offsets:
            arrays["labels"] = {"dtype": "<i8", "shape": [n], "offset": offsets["labels"]}
        return {"format": "acthash-codes", "version": 1, "n": n, "n_bits": self.n_bits,
                "n_kept_source_bits": None, "layers": [s.to_dict() for s in self.layers],
                "arrays": arrays, "file_size": file_size}

    def _guard(self, fn):
        try:
            return fn()
        except OSError as e:
            self.abort()
            import errno

            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ResourceError(
                    f"the disk is full while writing codes to {self.path} ({e.strerror}); "
                    "free space there or write the codes to another folder"
                ) from e
            raise

    def append(self, packed: np.ndarray) -> None:
        """Add rows: a (B, ceil(n_bits/8)) uint8 array."""
        packed = np.ascontiguousarray(packed, dtype=np.uint8)
        if packed.ndim != 2 or packed.shape[1] != _n_bytes(self.n_bits):
            raise InputError(f"rows of {packed.shape} do not hold {self.n_bits} packed bits")
        self._guard(lambda: _write_bytes(self._f, packed.tobytes()))
        self.n += packed.shape[0]

    def close(self, labels=None) -> Path:
        """Write the labels (optional, one per row) and the header; rename into place."""
        try:
            labels = None if labels is None else check_labels(labels, self.n)
        except InputError:
            self.abort()
            raise
        end = self.offset + self.n * _n_bytes(self.n_bits)
        offsets = {"packed": self.offset}
        if labels is not None:
            offsets["labels"] = _round_up(end)
            end = offsets["labels"] + 8 * self.n
        size = _round_up(end)
        blob = json.dumps(self._header(self.n, offsets, size)).encode()

        def finish():
            if labels is not None:
                self._f.seek(offsets["labels"])
                _write_bytes(self._f, labels.astype("<i8").tobytes())
            self._f.truncate(size)
            self._f.seek(0)
            self._f.write(_MAGIC)
            self._f.write(struct.pack("<Q", self.header_len))
            self._f.write(blob.ljust(self.header_len, b" "))
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

        self._guard(finish)
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file (nothing is left at ``path``)."""
        try:
            self._f.close()
        except OSError:
            pass
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def _round_up(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _compose_masks(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    out = outer.copy()
    idx = np.flatnonzero(outer)
    out[idx[~inner]] = False
    return out


def as_codes(x, labels=None) -> NeuralCodes:
    """Accept NeuralCodes or a (N, n_bits) 0/1 array; attach ``labels`` when given."""
    if isinstance(x, NeuralCodes):
        codes = x
    else:
        arr = np.asarray(x)
        codes = NeuralCodes.from_bits(arr)
    if labels is not None:
        codes = codes.with_labels(labels)
    return codes
