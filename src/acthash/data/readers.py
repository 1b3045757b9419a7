"""Readers for the standard distribution formats of image datasets, and for CSV tables.

Each reader returns plain numpy arrays (uint8 images, int64 labels) and raises
:class:`DatasetNotFoundError` with instructions when a file is missing, or ValueError when a
file is present but not in the expected format.

- IDX (MNIST, Fashion-MNIST): ``train-images-idx3-ubyte[.gz]`` etc., big-endian header.
- CIFAR-10 python pickle batches: ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``,
  ``batches.meta``.
- SVHN cropped digits: ``train_32x32.mat`` / ``test_32x32.mat`` (``X``: (32, 32, 3, N),
  ``y``: (N, 1) with label 10 for the digit 0).
- CSV tables (:func:`read_csv_table`), checked at load: errors name the file's line numbers
  (the header is line 1) and the columns.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from acthash.errors import DatasetNotFoundError, InputError

__all__ = ["read_idx", "find_file", "read_idx_pair", "read_cifar10", "read_svhn",
           "read_csv_table"]

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its stored shape.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then
    one big-endian uint32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise InputError(f"{path} cannot be read as an IDX file ({e}); re-download it") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise InputError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - header != count * dtype.itemsize:
        raise InputError(
            f"{path}: header says shape {shape} ({count * dtype.itemsize} bytes) but the file "
            f"holds {len(raw) - header} bytes; the file is truncated or damaged"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def find_file(roots: list[Path], stem: str, how_to_get: str) -> Path:
    """The first of ``root/stem``, ``root/stem.gz`` over ``roots``, else DatasetNotFoundError."""
    tried = []
    for root in roots:
        for name in (stem, stem + ".gz"):
            p = Path(root) / name
            tried.append(str(p))
            if p.is_file():
                return p
    raise DatasetNotFoundError(f"{stem}[.gz] not found (looked in {', '.join(map(str, roots))}). "
                               f"{how_to_get}")


def read_idx_pair(roots: list[Path], prefix: str, how_to_get: str):
    """Images (N, H, W) uint8 and labels (N,) int64 from ``{prefix}-images-idx3-ubyte[.gz]``
    and ``{prefix}-labels-idx1-ubyte[.gz]`` (prefix ``train`` or ``t10k``)."""
    images = read_idx(find_file(roots, f"{prefix}-images-idx3-ubyte", how_to_get))
    labels = read_idx(find_file(roots, f"{prefix}-labels-idx1-ubyte", how_to_get))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(
            f"{prefix} IDX files disagree: images {images.shape}, labels {labels.shape}; "
            "expected (N, H, W) and (N,)"
        )
    return images, labels.astype(np.int64)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            d = pickle.load(f, encoding="bytes")
        except Exception as e:  # pickle raises many kinds for a damaged file
            raise InputError(f"{path} is not a CIFAR-10 python batch ({e}); re-download it") from e
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def read_cifar10(folder: Path):
    """CIFAR-10 python batches in ``folder`` -> (x_train, y_train, x_test, y_test, names).

    Images are (N, 3, 32, 32) uint8 (the batches store each row as 1024 R, G, then B values).
    """
    folder = Path(folder)
    files = [folder / f"data_batch_{i}" for i in range(1, 6)] + [folder / "test_batch"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"CIFAR-10 batches {missing} not found in {folder}. " + CIFAR10_HOW
        )

    def batch(path):
        d = _unpickle(path)
        x = np.asarray(d["data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3072:
            raise InputError(f"{path}: 'data' has shape {x.shape}, expected (N, 3072)")
        return x.reshape(-1, 3, 32, 32), np.asarray(d["labels"], dtype=np.int64)

    parts = [batch(f) for f in files[:5]]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = batch(files[5])
    names = [f"class_{i}" for i in range(10)]
    meta = folder / "batches.meta"
    if meta.is_file():
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in _unpickle(meta)["label_names"]]
    return x_tr, y_tr, x_te, y_te, names


def read_svhn(folder: Path, split: str):
    """``{split}_32x32.mat`` in ``folder`` -> images (N, 3, 32, 32) uint8, labels (N,) int64
    in 0..9 (the files label the digit 0 as 10)."""
    from scipy.io import loadmat

    path = Path(folder) / f"{split}_32x32.mat"
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found. " + SVHN_HOW)
    try:
        d = loadmat(path)
    except Exception as e:  # scipy raises several kinds for a damaged .mat
        raise InputError(f"{path} is not a readable SVHN .mat file ({e}); re-download it") from e
    if "X" not in d or "y" not in d:
        raise InputError(f"{path} lacks the 'X' and 'y' arrays of the SVHN format")
    x = np.asarray(d["X"], dtype=np.uint8)
    if x.ndim != 4 or x.shape[2] != 3:
        raise InputError(f"{path}: X has shape {x.shape}, expected (32, 32, 3, N)")
    y = np.asarray(d["y"]).reshape(-1).astype(np.int64)
    if len(y) != x.shape[3]:
        raise InputError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    y[y == 10] = 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y


def _csv_lines(path: Path, rows) -> list[int]:
    """The 1-based line numbers of the file (header = line 1) of data rows ``rows`` (0-based,
    as pandas numbers them: blank lines skipped; one row per line)."""
    wanted = sorted({int(r) for r in rows})
    out: dict[int, int] = {}
    row = -1
    with open(path, errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            if line_no == 1 or not line.strip():
                continue
            row += 1
            if row in wanted:
                out[row] = line_no
                if len(out) == len(wanted):
                    break
    return [out.get(int(r), int(r) + 2) for r in rows]


def _cells(path: Path, hits: list[tuple[int, str, str]], limit: int = 5) -> str:
    """'line 4 column 'x' (value), ...' for (row, column, value) hits, the first ``limit``."""
    hits = sorted(hits)
    lines = _csv_lines(path, [r for r, _, _ in hits[:limit]])
    text = ", ".join(f"line {n} column {c!r} ({v})"
                     for n, (_, c, v) in zip(lines, hits[:limit], strict=True))
    return text + (f" ({len(hits)} cells in all)" if len(hits) > limit else "")


def read_csv_table(path: str | Path, label: str, *, categorical=()):
    """Read and check a CSV table: returns a pandas DataFrame whose ``label`` column has a
    value in every row and whose other columns are numeric (finite) or categorical.

    Refused, with the fix: a missing file (:class:`DatasetNotFoundError`), an empty file, a
    header without rows, no column ``label``, names in ``categorical`` that are not columns,
    a numeric column holding stray strings (a typo such as ``1.2x``: a column most of whose
    values are numbers), unless it is declared ``categorical``, and missing (NaN) or infinite
    values in any column. Each error names the file's line numbers (header = line 1) and the
    columns. Declared categorical columns are returned as strings.
    """
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFoundError(f"CSV file {p} does not exist; give an existing path "
                                   "after 'csv:' (and with test=...)")
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise InputError(f"{p} is empty (no header, no rows); a CSV dataset needs a header "
                         "line and one row per example") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not a readable CSV table ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:160]}); give a comma-separated UTF-8 "
                         "text file with a header row (check its delimiter and quoting)") from None
    if label not in df.columns:
        raise InputError(f"{p} has no label column {label!r}; its columns are "
                         f"{list(df.columns)} (choose one with label=... / --label-column)")
    if len(df) == 0:
        raise InputError(f"{p} has a header but no rows; add one row per example")
    unknown = [c for c in categorical if c not in df.columns]
    if unknown:
        raise InputError(f"categorical columns {unknown} are not in {p}; its columns are "
                         f"{list(df.columns)}")
    for col in df.columns:
        if col == label or col in categorical or pd.api.types.is_numeric_dtype(df[col]):
            continue
        present = df[col].notna()
        numbers = pd.to_numeric(df[col], errors="coerce").notna()
        stray = present & ~numbers
        if numbers.sum() > present.sum() / 2 and stray.any():  # a numeric column, with typos
            rows = list(np.flatnonzero(stray.to_numpy()))
            raise InputError(
                f"{p}: column {col!r} is numeric but holds text: "
                + _cells(p, [(r, col, repr(df[col].iloc[r])) for r in rows])
                + f"; fix the value(s), or declare the column categorical with -O "
                f"categorical={col} (Python: categorical=[{col!r}])")
    for col in categorical:
        df[col] = df[col].where(df[col].isna(), df[col].astype(str))
    hits: list[tuple[int, str, str]] = []
    numeric = [c for c in df.columns if c != label and c not in categorical
               and pd.api.types.is_numeric_dtype(df[c])]
    if numeric:
        values = df[numeric].to_numpy(dtype=np.float64)
        rows, cols = np.nonzero(~np.isfinite(values))
        hits += [(int(r), numeric[c], "NaN" if np.isnan(values[r, c]) else
                  ("inf" if values[r, c] > 0 else "-inf")) for r, c in zip(rows, cols, strict=True)]
    for col in [c for c in df.columns if c not in numeric]:
        hits += [(int(r), col, "missing") for r in np.flatnonzero(df[col].isna().to_numpy())]
    if hits:
        raise InputError(f"{p} has missing (NaN) or infinite values: {_cells(p, hits)}; fill "
                         "or drop those rows")
    return df


MNIST_HOW = (
    "Download the four IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (e.g. from "
    "https://ossci-datasets.s3.amazonaws.com/mnist/) into one directory and pass it with "
    "--data-dir (Python: root=...), or set ACTHASH_DATA to a folder holding mnist/; with "
    "torchvision installed, root=DIR, download=True fetches them."
)
FASHION_HOW = (
    "Install the Debian package: `sudo apt-get install dataset-fashion-mnist` (files land in "
    "/usr/share/datasets/fashion-mnist), or download the four IDX .gz files from "
    "https://github.com/zalandoresearch/fashion-mnist (data/fashion) into a directory and "
    "pass it with --data-dir (Python: root=...)."
)
CIFAR10_HOW = (
    "Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it (it makes "
    "cifar-10-batches-py/) and pass that folder or its parent with --data-dir "
    "(Python: root=...), or set ACTHASH_DATA to a folder holding cifar10/; with torchvision "
    "installed, root=DIR, download=True fetches it."
)
SVHN_HOW = (
    "Download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ "
    "into one directory and pass it with --data-dir (Python: root=...), or set ACTHASH_DATA to "
    "a folder holding svhn/; with torchvision installed, root=DIR, download=True fetches them."
)
