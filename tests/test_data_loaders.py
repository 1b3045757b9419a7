"""Dataset readers on small files written here in the real distribution formats."""

import gzip
import pickle
import random
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from acthash import data
from acthash.data import DatasetNotFoundError
from acthash.data.readers import read_idx


def write_idx(path, array: np.ndarray, compress=True):
    """IDX by the published spec: 0, 0, type code, ndim, big-endian uint32 dims, data."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(raw)


def write_mnist_dir(folder, n_train=30, n_test=12, seed=0, compress=True):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if compress else ""
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", x, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", y, compress)
        out[prefix] = (x, y)
    return out


# ---- IDX ---------------------------------------------------------------------------------

def test_read_idx_roundtrip_types(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.array([[-5, 7], [1 << 20, 3]], dtype=np.int32)
    write_idx(tmp_path / "b", b.astype(">i4"), compress=False)
    got = read_idx(tmp_path / "b")
    np.testing.assert_array_equal(got, b)
    assert got.dtype.byteorder in ("=", "|", "<")


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78abcd")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    a = np.zeros((4, 5), dtype=np.uint8)
    write_idx(tmp_path / "t", a, compress=False)
    raw = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "t")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_style_loader_from_directory(tmp_path, name):
    files = write_mnist_dir(tmp_path / "d")
    ds = data.load(name, root=str(tmp_path / "d"))
    x_tr, y_tr = files["train"]
    x_te, y_te = files["t10k"]
    assert ds.input_shape == (1, 28, 28)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (12, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32
    np.testing.assert_allclose(ds.x_train[:, 0].numpy(), x_tr / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_test[:, 0].numpy(), x_te / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train.numpy(), y_tr)
    np.testing.assert_array_equal(ds.y_test.numpy(), y_te)
    assert ds.n_classes == 10
    assert ds.normalization == {"kind": "scale", "divide_by": 255.0}


def test_mnist_uncompressed_and_torchvision_layout(tmp_path):
    files = write_mnist_dir(tmp_path / "MNIST" / "raw", compress=False)
    ds = data.load("mnist", root=str(tmp_path), n_train=10, n_test=5)
    assert len(ds.x_train) == 10 and len(ds.x_test) == 5
    np.testing.assert_array_equal(ds.y_train.numpy(), files["train"][1][:10])


def test_standardize_uses_training_statistics(tmp_path):
    write_mnist_dir(tmp_path)
    ds = data.load("mnist", root=str(tmp_path), normalize="standardize")
    x = ds.x_train.double()
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1.0) < 1e-4
    raw = data.load("mnist", root=str(tmp_path), normalize="none")
    m, s = raw.x_train.double().mean(), raw.x_train.double().std()
    np.testing.assert_allclose(ds.x_test.double().numpy(),
                               ((raw.x_test.double() - m) / s).numpy(), atol=1e-4)


def test_fashion_mnist_mismatched_files(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="disagree"):
        data.load("fashion-mnist", root=str(tmp_path))


# ---- CIFAR-10 ----------------------------------------------------------------------------

def write_cifar(folder, per_batch=4, seed=0):
    """The python version's layout: pickled dicts with byte keys, rows of 1024 R, G, B."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, size=(6 * per_batch, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6 * per_batch)
    names = ["test_batch" if i == 5 else f"data_batch_{i + 1}" for i in range(6)]
    for i, name in enumerate(names):
        sl = slice(i * per_batch, (i + 1) * per_batch)
        d = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels[sl]],
             b"data": images[sl].reshape(per_batch, 3072),
             b"filenames": [b"x.png"] * per_batch}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    label_names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                   b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": label_names, b"num_cases_per_batch": per_batch}, f,
                    protocol=2)
    return images, labels


def test_cifar10_reader(tmp_path):
    images, labels = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = data.load("cifar10", root=str(tmp_path))  # parent folder works too
    assert ds.input_shape == (3, 32, 32)
    assert len(ds.x_train) == 20 and len(ds.x_test) == 4
    np.testing.assert_allclose(ds.x_train.numpy(), images[:20] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_test.numpy(), images[20:] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train.numpy(), labels[:20])
    # channel order: the first 1024 values of a row are the red plane
    row = images[0].reshape(3072)
    np.testing.assert_allclose(ds.x_train[0, 0].numpy().reshape(-1), row[:1024] / 255.0,
                               rtol=1e-6)
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    ds2 = data.load("cifar10", root=str(tmp_path / "cifar-10-batches-py"))
    assert torch.equal(ds2.x_test, ds.x_test)


def test_cifar10_missing_batch(tmp_path):
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3.*cifar-10-python.tar.gz"):
        data.load("cifar10", root=str(tmp_path / "c"))


# ---- SVHN --------------------------------------------------------------------------------

def test_svhn_reader(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    made = {}
    for split, n in (("train", 7), ("test", 5)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # the .mat layout
        y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)  # 10 means the digit 0
        y[0, 0] = 10
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
        made[split] = (x, y)
    ds = data.load("svhn", root=str(tmp_path))
    x, y = made["train"]
    assert ds.x_train.shape == (7, 3, 32, 32)
    # example 2, channel 1 (green), pixel (row 4, col 9)
    assert ds.x_train[2, 1, 4, 9].item() == pytest.approx(x[4, 9, 1, 2] / 255.0)
    want = y[:, 0].astype(np.int64) % 10
    np.testing.assert_array_equal(ds.y_train.numpy(), want)
    assert ds.y_train[0].item() == 0 and int(ds.y_train.max()) <= 9
    assert ds.x_test.shape == (5, 3, 32, 32)


def test_svhn_missing_file_says_how(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat.*housenumbers"):
        data.load("svhn", root=str(tmp_path))


# ---- CSV ---------------------------------------------------------------------------------

def test_csv_numeric_and_categorical(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "hours": rng.normal(40, 5, n),
        "work": rng.choice(["private", "state", "self"], n),
        "income": np.where(np.arange(n) % 2 == 0, ">50K", "<=50K"),
    })
    df.to_csv(tmp_path / "adult.csv", index=False)
    ds = data.load(f"csv:{tmp_path / 'adult.csv'}", label="income", test_fraction=0.25)
    assert ds.class_names == ["<=50K", ">50K"]
    assert ds.input_shape == (2 + 3,)  # two numeric + three one-hot indicators
    assert len(ds.x_train) == 30 and len(ds.x_test) == 10
    np.testing.assert_array_equal(np.bincount(ds.y_test.numpy()), [5, 5])  # stratified
    x = ds.x_train.numpy()
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    assert ds.info["one_hot_columns"] == ["work"]
    # the numeric columns are the table's, standardized with training statistics
    mu, sd = ds.normalization["mean"][0], ds.normalization["std"][0]
    ages = ds.x_train[:, 0].numpy() * sd + mu
    assert set(np.round(ages).astype(int)) <= set(df["age"].astype(int))


def test_csv_with_test_file_and_errors(tmp_path):
    pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 1, 0, 0], "y": [0, 1, 0, 1]}).to_csv(
        tmp_path / "tr.csv", index=False)
    pd.DataFrame({"a": [5.0, 6], "b": [0.0, 1], "y": [1, 1]}).to_csv(tmp_path / "te.csv",
                                                                       index=False)
    ds = data.load(f"csv:{tmp_path / 'tr.csv'}", label="y", test=str(tmp_path / "te.csv"),
                   standardize=False)
    np.testing.assert_array_equal(ds.x_test.numpy(), [[5, 0], [6, 1]])
    np.testing.assert_array_equal(ds.y_train.numpy(), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="no label column 'target'.*'a', 'b', 'y'"):
        data.load(f"csv:{tmp_path / 'tr.csv'}", label="target")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        data.load(f"csv:{tmp_path / 'nope.csv'}")


# ---- generated data, random inputs and labels --------------------------------------------

def test_mnist1d_generator_is_local_seeded_and_restores_global_rng():
    np.random.seed(123)
    random.seed(5)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(5)
    a = data.load("mnist1d", n_samples=200)
    assert np.random.rand() == expected_np and random.random() == expected_py
    b = data.load("mnist1d", n_samples=200)
    c = data.load("mnist1d", n_samples=200, seed=7)
    assert a.input_shape == (40,) and len(a.x_train) == 160 and len(a.x_test) == 40
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert sorted(set(a.y_train.tolist())) == list(range(10))
    with pytest.raises(ValueError, match="unknown mnist1d generator options"):
        data.load("mnist1d", n_samples=200, bogus=1)


def test_random_inputs_keep_shape_size_and_labels():
    real = data.load("digits")
    r = data.load("random:digits", seed=3)
    assert r.x_train.shape == real.x_train.shape and r.x_test.shape == real.x_test.shape
    assert torch.equal(r.y_train, real.y_train) and torch.equal(r.y_test, real.y_test)
    assert float(r.x_train.min()) >= 0.0 and float(r.x_train.max()) <= 1.0
    # uniform on [0, 1]: mean 1/2, variance 1/12
    assert abs(float(r.x_train.mean()) - 0.5) < 0.01
    assert abs(float(r.x_train.var()) - 1 / 12) < 0.005
    assert torch.equal(r.x_train, data.load("random:digits", seed=3).x_train)
    assert not torch.equal(r.x_train, data.load("random:digits", seed=4).x_train)


def test_random_labels_on_any_dataset():
    real = data.load("digits")
    ds = data.load("digits", random_labels=True, random_labels_seed=1)
    assert torch.equal(ds.x_train, real.x_train) and torch.equal(ds.y_test, real.y_test)
    want = np.random.default_rng(1).integers(0, 10, size=len(real.y_train))
    np.testing.assert_array_equal(ds.y_train.numpy(), want)
    r = data.load("random:mnist1d", n_samples=100, random_labels=True)
    assert r.name == "random:mnist1d" and len(r.y_train) == 80


# ---- errors ------------------------------------------------------------------------------

def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*fashion-mnist"):
        data.load("imagenet")


def test_missing_directory_gives_instructions(tmp_path):
    missing = tmp_path / "nowhere"
    for name, hint in (("mnist", "IDX"), ("fashion-mnist", "dataset-fashion-mnist"),
                       ("cifar10", "cifar-10-python"), ("svhn", "32x32.mat")):
        with pytest.raises(DatasetNotFoundError, match=f"does not exist.*{hint}"):
            data.load(name, root=str(missing))
    # an existing but empty directory names the missing file
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.*--data-dir"):
        data.load("mnist", root=str(tmp_path))
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_download_without_torchvision_says_how(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *a, **k):
        if name.startswith("torchvision"):
            raise ImportError("no torchvision")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(DatasetNotFoundError, match="pip install torchvision"):
        data.load("mnist", root=str(tmp_path), download=True)


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="takes no option.*root.*drop --data-dir"):
        data.load("digits", root="/tmp")
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['bogus'\]"):
        data.load("random:digits", bogus=1)
    write_mnist_dir(tmp_path)
    with pytest.raises(ValueError, match="normalize must be one of"):
        data.load("mnist", root=str(tmp_path), normalize="zscore")
    with pytest.raises(ValueError, match="n_train must be between 1 and 30"):
        data.load("mnist", root=str(tmp_path), n_train=31)


def test_list_reports_availability(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTHASH_DATA", str(tmp_path))
    rows = {d["name"]: d for d in data.list_datasets()}
    assert {"digits", "mnist1d", "fashion-mnist", "mnist", "cifar10", "svhn", "csv:",
            "random:"} <= set(rows)
    assert rows["digits"]["available"] and not rows["mnist"]["available"]
    write_mnist_dir(tmp_path / "mnist")
    assert {d["name"]: d for d in data.list_datasets()}["mnist"]["available"]
    ds = data.load("mnist")  # found through $ACTHASH_DATA/mnist
    assert len(ds.x_train) == 30
    assert all(d["how_to_get"] for d in rows.values())


def test_download_goes_through_torchvision_when_installed(tmp_path, monkeypatch):
    """A stand-in torchvision writes files where the real one does (root/MNIST/raw)."""
    import sys
    import types

    calls = []

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            raw = tmp_path / "dl" / "MNIST" / "raw"
            if not (raw / "train-images-idx3-ubyte").exists():
                write_mnist_dir(raw, n_train=9, n_test=4, compress=False)

    tv = types.ModuleType("torchvision")
    tvd = types.ModuleType("torchvision.datasets")
    tvd.MNIST = FakeMNIST
    tv.datasets = tvd
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", tvd)
    ds = data.load("mnist", root=str(tmp_path / "dl"), download=True)
    assert len(ds.x_train) == 9 and len(ds.x_test) == 4
    assert calls and all(c[2] for c in calls)
    n = len(calls)
    data.load("mnist", root=str(tmp_path / "dl"), download=True)  # present: no new download
    assert len(calls) == n
