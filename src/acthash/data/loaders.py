"""Built-in dataset loaders (each registers itself into :mod:`acthash.data.registry`).

Torch and the readers' heavy dependencies are imported when a loader runs, so importing this
module (to list the datasets) stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from acthash.data import readers
from acthash.data.registry import Dataset, as_tensors, data_root, load, register_dataset
from acthash.errors import DatasetNotFoundError, InputError

if TYPE_CHECKING:
    import torch


def _check_fraction(test_fraction) -> None:
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be a fraction strictly between 0 and 1, got "
                         f"{test_fraction!r} (e.g. -O test_fraction=0.2)")


@register_dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1 797 images, 10 classes)")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Digits scaled to [0, 1] (pixel / 16), shape (1, 8, 8); stratified train/test split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    _check_fraction(test_fraction)
    bunch = _load()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    x_tr, y_tr = as_tensors(x_tr, y_tr)
    x_te, y_te = as_tensors(x_te, y_te)
    return Dataset(
        name="digits",
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=[str(i) for i in range(10)],
        input_shape=(1, 8, 8),
        normalization={"kind": "scale", "divide_by": 16.0},
        info={"source": "sklearn.datasets.load_digits", "test_fraction": test_fraction,
              "split_seed": split_seed},
    )


# --------------------------------------------------------------------------------------------
# Image datasets in their standard formats, generated data, CSV tables, random inputs.
# --------------------------------------------------------------------------------------------

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
_NORMALIZATIONS = ("scale", "standardize", "none")


def _first(x: np.ndarray, y: np.ndarray, n: int | None, what: str):
    if n is None:
        return x, y
    if not 1 <= int(n) <= len(x):
        raise InputError(f"{what} must be between 1 and {len(x)}, got {n}")
    return x[: int(n)], y[: int(n)]


def _image_dataset(name, x_tr, y_tr, x_te, y_te, class_names, *, normalize="scale",
                   n_train=None, n_test=None, info=None) -> Dataset:
    """uint8 images (N, [C,] H, W) -> float32 Dataset (N, C, H, W).

    normalize: ``scale`` (pixel / 255, in [0, 1]), ``standardize`` (then minus the training
    set's per-channel mean, divided by its std) or ``none`` (raw 0..255 values).
    """
    import torch

    if normalize not in _NORMALIZATIONS:
        raise InputError(f"normalize must be one of {_NORMALIZATIONS}, got {normalize!r}")
    x_tr, y_tr = _first(x_tr, y_tr, n_train, "n_train")
    x_te, y_te = _first(x_te, y_te, n_test, "n_test")
    if x_tr.ndim == 3:
        x_tr, x_te = x_tr[:, None], x_te[:, None]
    scale = 1.0 if normalize == "none" else 255.0
    xt = torch.from_numpy(np.ascontiguousarray(x_tr)).float().div_(scale)
    xe = torch.from_numpy(np.ascontiguousarray(x_te)).float().div_(scale)
    norm: dict = {"kind": normalize, "divide_by": scale}
    if normalize == "standardize":
        mean = xt.mean(dim=(0, 2, 3), keepdim=True)
        std = xt.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
        xt.sub_(mean).div_(std)
        xe.sub_(mean).div_(std)
        norm.update(mean=mean.flatten().tolist(), std=std.flatten().tolist())
    return Dataset(
        name=name, x_train=xt, y_train=torch.as_tensor(y_tr, dtype=torch.long),
        x_test=xe, y_test=torch.as_tensor(y_te, dtype=torch.long),
        class_names=list(class_names), input_shape=tuple(xt.shape[1:]), normalization=norm,
        info={**(info or {}), "n_train_limit": n_train, "n_test_limit": n_test},
    )


def _user_dir(root, default: Path, how: str) -> Path:
    """The folder a user named (must exist), else ``default``."""
    if root is None:
        return default
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"data directory {root} does not exist. {how}")
    return root


def _torchvision_download(cls_name: str, root: Path, how: str, **kwargs) -> None:
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise DatasetNotFoundError(
            "download=True needs torchvision (`pip install torchvision`, or the 'vision' "
            f"extra of acthash). Without it: {how}"
        ) from None
    root.mkdir(parents=True, exist_ok=True)
    getattr(tvd, cls_name)(str(root), download=True, **kwargs)


def _idx_available(dirs) -> bool:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    return any(all((Path(d) / n).is_file() or (Path(d) / f"{n}.gz").is_file() for n in names)
               for d in dirs)


def _mnist_dirs(root: Path, sub: str) -> list[Path]:
    # the files themselves, or torchvision's layout (root/MNIST/raw, root/FashionMNIST/raw)
    return [root, root / sub / "raw", root / "raw"]


def _fashion_dirs(root=None) -> list[Path]:
    if root is not None:
        root = _user_dir(root, FASHION_SYSTEM_DIR, readers.FASHION_HOW)
        return _mnist_dirs(root, "FashionMNIST")
    return [FASHION_SYSTEM_DIR, *_mnist_dirs(data_root() / "fashion-mnist", "FashionMNIST")]


@register_dataset(
    "fashion-mnist", "Zalando Fashion-MNIST: 28x28 grey clothing images, 60 000/10 000, 10 classes",
    available=lambda: _idx_available(_fashion_dirs()),
    how_to_get="`sudo apt-get install dataset-fashion-mnist`, or the 4 IDX .gz files in "
               "--data-dir",
)
def load_fashion_mnist(root: str | None = None, normalize: str = "scale",
                       n_train: int | None = None, n_test: int | None = None,
                       download: bool = False) -> Dataset:
    """Fashion-MNIST from IDX files: ``/usr/share/datasets/fashion-mnist`` (Debian package
    dataset-fashion-mnist), ``$ACTHASH_DATA/fashion-mnist`` or ``root``. Shape (1, 28, 28);
    ``n_train``/``n_test`` keep the first N of each split."""
    if download and not (root is None and _idx_available(_fashion_dirs())):
        target = Path(root).expanduser() if root else data_root() / "fashion-mnist"
        if not _idx_available(_mnist_dirs(target, "FashionMNIST")):
            _torchvision_download("FashionMNIST", target, readers.FASHION_HOW, train=True)
            _torchvision_download("FashionMNIST", target, readers.FASHION_HOW, train=False)
        root = target
    dirs = _fashion_dirs(root)
    x_tr, y_tr = readers.read_idx_pair(dirs, "train", readers.FASHION_HOW)
    x_te, y_te = readers.read_idx_pair(dirs, "t10k", readers.FASHION_HOW)
    src = str(readers.find_file(dirs, "train-images-idx3-ubyte", readers.FASHION_HOW).parent)
    return _image_dataset("fashion-mnist", x_tr, y_tr, x_te, y_te, FASHION_CLASSES,
                          normalize=normalize, n_train=n_train, n_test=n_test,
                          info={"source": src, "format": "IDX"})


@register_dataset(
    "mnist", "MNIST handwritten digits: 28x28 grey, 60 000/10 000, 10 classes",
    available=lambda: _idx_available(_mnist_dirs(data_root() / "mnist", "MNIST")),
    how_to_get="the 4 IDX .gz files in --data-dir or $ACTHASH_DATA/mnist (torchvision: "
               "download=True)",
)
def load_mnist(root: str | None = None, normalize: str = "scale", n_train: int | None = None,
               n_test: int | None = None, download: bool = False) -> Dataset:
    """MNIST from IDX files (gzip or not) in ``root`` or ``$ACTHASH_DATA/mnist`` (also
    torchvision's ``MNIST/raw`` layout). Shape (1, 28, 28)."""
    base = _user_dir(root, data_root() / "mnist", readers.MNIST_HOW) if not download else (
        Path(root).expanduser() if root else data_root() / "mnist")
    dirs = _mnist_dirs(base, "MNIST")
    if download and not _idx_available(dirs):
        _torchvision_download("MNIST", base, readers.MNIST_HOW, train=True)
        _torchvision_download("MNIST", base, readers.MNIST_HOW, train=False)
    x_tr, y_tr = readers.read_idx_pair(dirs, "train", readers.MNIST_HOW)
    x_te, y_te = readers.read_idx_pair(dirs, "t10k", readers.MNIST_HOW)
    return _image_dataset("mnist", x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)],
                          normalize=normalize, n_train=n_train, n_test=n_test,
                          info={"source": str(base), "format": "IDX"})


def _cifar_dir(base: Path) -> Path:
    return base / "cifar-10-batches-py" if (base / "cifar-10-batches-py").is_dir() else base


@register_dataset(
    "cifar10", "CIFAR-10: 32x32 colour images, 50 000/10 000, 10 classes",
    available=lambda: (_cifar_dir(data_root() / "cifar10") / "test_batch").is_file(),
    how_to_get="unpack cifar-10-python.tar.gz into --data-dir or $ACTHASH_DATA/cifar10 "
               "(torchvision: download=True)",
)
def load_cifar10(root: str | None = None, normalize: str = "scale", n_train: int | None = None,
                 n_test: int | None = None, download: bool = False) -> Dataset:
    """CIFAR-10 python pickle batches in ``root`` (or its ``cifar-10-batches-py``) or
    ``$ACTHASH_DATA/cifar10``. Shape (3, 32, 32)."""
    base = _user_dir(root, data_root() / "cifar10", readers.CIFAR10_HOW) if not download else (
        Path(root).expanduser() if root else data_root() / "cifar10")
    if download and not (_cifar_dir(base) / "test_batch").is_file():
        _torchvision_download("CIFAR10", base, readers.CIFAR10_HOW, train=True)
    folder = _cifar_dir(base)
    x_tr, y_tr, x_te, y_te, names = readers.read_cifar10(folder)
    return _image_dataset("cifar10", x_tr, y_tr, x_te, y_te, names, normalize=normalize,
                          n_train=n_train, n_test=n_test,
                          info={"source": str(folder), "format": "CIFAR-10 python batches"})


@register_dataset(
    "svhn", "SVHN cropped house-number digits: 32x32 colour, 73 257/26 032, 10 classes",
    available=lambda: (data_root() / "svhn" / "test_32x32.mat").is_file(),
    how_to_get="train_32x32.mat and test_32x32.mat in --data-dir or $ACTHASH_DATA/svhn "
               "(torchvision: download=True)",
)
def load_svhn(root: str | None = None, normalize: str = "scale", n_train: int | None = None,
              n_test: int | None = None, extra: bool = False,
              download: bool = False) -> Dataset:
    """SVHN ``{train,test}[,extra]_32x32.mat`` in ``root`` or ``$ACTHASH_DATA/svhn``; the digit
    0 (labelled 10 in the files) becomes class 0. Shape (3, 32, 32)."""
    base = _user_dir(root, data_root() / "svhn", readers.SVHN_HOW) if not download else (
        Path(root).expanduser() if root else data_root() / "svhn")
    splits = ["train", "test"] + (["extra"] if extra else [])
    if download:
        for s in splits:
            if not (base / f"{s}_32x32.mat").is_file():
                _torchvision_download("SVHN", base, readers.SVHN_HOW, split=s)
    x_tr, y_tr = readers.read_svhn(base, "train")
    x_te, y_te = readers.read_svhn(base, "test")
    if extra:
        x_ex, y_ex = readers.read_svhn(base, "extra")
        x_tr, y_tr = np.concatenate([x_tr, x_ex]), np.concatenate([y_tr, y_ex])
    return _image_dataset("svhn", x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)],
                          normalize=normalize, n_train=n_train, n_test=n_test,
                          info={"source": str(base), "format": "SVHN .mat", "extra": extra})


@register_dataset(
    "mnist1d", "MNIST-1D: 1-D signals of length 40 from the mnist1d generator, 10 classes",
    how_to_get="generated locally (package mnist1d, a dependency)",
)
def load_mnist1d(n_samples: int = 5000, train_split: float = 0.8, seed: int = 42,
                 **generator_args) -> Dataset:
    """Generate MNIST-1D with ``mnist1d.data.make_dataset`` (never its download).

    n_samples : total examples (split ``train_split`` / rest); seed : the generator's seed
    (42 reproduces the published set's recipe); further keys override
    ``mnist1d.data.get_dataset_args()`` (e.g. ``iid_noise_scale``). Inputs (40,), already
    standardized by the generator (zero mean, unit std over the whole set).
    """
    import random

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DatasetNotFoundError("mnist1d needs the package mnist1d: `pip install mnist1d`") \
            from None
    args = get_dataset_args(as_dict=True)
    unknown = sorted(set(generator_args) - set(args))
    if unknown:
        raise InputError(f"unknown mnist1d generator options {unknown}; valid: {sorted(args)}")
    if n_samples < 20:
        raise InputError(f"mnist1d needs n_samples >= 20, got {n_samples}")
    args.update(generator_args, num_samples=int(n_samples), train_split=float(train_split),
                seed=int(seed))
    args.pop("url", None)
    # the generator seeds numpy's and Python's global generators: put them back afterwards
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        from mnist1d.utils import ObjectView

        d = make_dataset(ObjectView(args))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x_tr, y_tr = as_tensors(d["x"].astype(np.float32), d["y"].astype(np.int64))
    x_te, y_te = as_tensors(d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))
    return Dataset(
        name="mnist1d", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=[str(i) for i in range(10)], input_shape=tuple(x_tr.shape[1:]),
        normalization={"kind": "standardize (by the mnist1d generator, whole set)"},
        info={"source": "mnist1d.data.make_dataset", "generator_args": args},
    )


@register_dataset(
    "csv:", "csv:PATH — a table; one column is the label, the others numeric or categorical",
    how_to_get="your own file: --dataset csv:path/to/table.csv",
)
def load_csv(path: str, label: str = "label", test: str | None = None,
             test_fraction: float = 0.2, split_seed: int = 0, standardize: bool = True,
             one_hot: bool = True, categorical: str | list | None = None) -> Dataset:
    """A CSV table as a dataset, checked at load (:func:`acthash.data.readers.read_csv_table`).

    label : the label column (any values; classes are its sorted distinct values; the
        training file needs at least two)
    test : a second CSV with the same columns for the test set; else a stratified split of
        ``test_fraction`` with ``split_seed``
    categorical : columns to one-hot encode whatever their values (a list, or a
        comma-separated string: ``-O categorical=zip,grade``); columns of text are
        categorical anyway, but a mostly numeric column with stray text is refused unless
        named here
    one_hot : expand categorical feature columns into indicator columns (else an error)
    standardize : z-score every feature with the training set's mean and std
    """
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if test is None:
        _check_fraction(test_fraction)
    if categorical is None:
        categorical = []
    elif not isinstance(categorical, (list, tuple)):  # "a,b" from -O categorical=a,b
        categorical = str(categorical).split(",")
    declared = [str(c).strip() for c in categorical if str(c).strip() not in ("", label)]
    df = readers.read_csv_table(path, label, categorical=declared)
    classes_first = df[label].astype(str).unique()
    if len(classes_first) < 2:
        raise InputError(f"{Path(path).expanduser()}: the label column {label!r} holds a single "
                         f"class ({classes_first[0]!r}); a classifier needs at least two (is "
                         "label=... / --label-column the right column?)")
    n_first = len(df)
    if test is not None:
        df_test = readers.read_csv_table(test, label, categorical=declared)
        if set(df_test.columns) != set(df.columns):
            raise InputError(f"test file {test} has columns {list(df_test.columns)} but {path} "
                             f"has {list(df.columns)}; give both files the same columns")
        df = pd.concat([df, df_test[list(df.columns)]], ignore_index=True)
    y_raw = df.pop(label)
    cat = [c for c in df.columns
           if c in declared or not pd.api.types.is_numeric_dtype(df[c])]
    if cat and not one_hot:
        raise InputError(f"columns {cat} are categorical; pass one_hot=True or encode them")
    if cat:
        df = pd.get_dummies(df, columns=cat, dtype=np.float32)
    if df.shape[1] == 0:
        raise InputError(f"{path} has no feature columns besides {label!r}")
    classes = np.array(sorted(y_raw.astype(str).unique()))
    y = np.searchsorted(classes, y_raw.astype(str).to_numpy()).astype(np.int64)
    x = df.to_numpy(dtype=np.float32)
    if test is not None:
        x_tr, x_te, y_tr, y_te = x[:n_first], x[n_first:], y[:n_first], y[n_first:]
    else:
        try:
            x_tr, x_te, y_tr, y_te = train_test_split(
                x, y, test_size=test_fraction, random_state=split_seed,
                stratify=y if np.bincount(y).min() >= 2 else None)
        except ValueError as e:  # too few rows for the split
            raise InputError(f"{path}: cannot split {len(y)} rows into a training and a test "
                             f"set with test_fraction={test_fraction} ({e}); give more rows, "
                             "another test_fraction, or a test file (test=...)") from None
    norm: dict = {"kind": "none"}
    if standardize:
        mu, sd = x_tr.mean(0), x_tr.std(0)
        sd[sd == 0] = 1.0
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
        norm = {"kind": "standardize", "mean": mu.tolist(), "std": sd.tolist()}
    xt, yt = as_tensors(x_tr, y_tr)
    xe, ye = as_tensors(x_te, y_te)
    return Dataset(
        name=f"csv:{path}", x_train=xt, y_train=yt, x_test=xe, y_test=ye,
        class_names=[str(c) for c in classes], input_shape=(x.shape[1],), normalization=norm,
        info={"source": str(path), "label_column": label, "test_file": test,
              "test_fraction": None if test else test_fraction, "split_seed": split_seed,
              "one_hot_columns": cat, "categorical": declared,
              "feature_names": list(df.columns)},
    )


@register_dataset(
    "random:", "random:NAME — uniform random inputs with dataset NAME's shape, size and labels",
    how_to_get="generated (NAME must be available)",
)
def load_random(base: str, seed: int = 0, **options) -> Dataset:
    """Dataset ``base`` with every input replaced by i.i.d. uniform noise on
    [min, max] of ``base``'s normalized training inputs (so [0, 1] for scaled images).
    Labels and sizes are ``base``'s; ``seed`` fixes the noise; options go to ``base``."""
    import torch

    real = load(base, **options)
    lo, hi = float(real.x_train.min()), float(real.x_train.max())
    gen = torch.Generator().manual_seed(int(seed))

    def noise(like: torch.Tensor) -> torch.Tensor:
        return torch.rand(like.shape, generator=gen).mul_(hi - lo).add_(lo)

    return Dataset(
        name=f"random:{real.name}", x_train=noise(real.x_train), y_train=real.y_train,
        x_test=noise(real.x_test), y_test=real.y_test, class_names=list(real.class_names),
        input_shape=tuple(real.input_shape),
        normalization={"kind": "uniform", "low": lo, "high": hi},
        info={"source": f"uniform noise shaped like {real.name}", "seed": seed,
              "base": real.describe()},
    )
