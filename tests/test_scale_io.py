"""Streamed Hamming k-NN, capture straight to disk, and run timings."""

import errno

import numpy as np
import pandas as pd
import pytest
import torch

from acthash import NeuralCodes, neural_codes
from acthash.core import codes as codes_module
from acthash.errors import InputError, ResourceError
from acthash.models import MLP
from acthash.ops.hamming import available_backends, hamming_distances, hamming_knn
from acthash.properties import encoding_properties, knn_loo_accuracy

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def brute_force_knn(db, q, k):
    """Reference: all distances, then (distance, index) order by lexsort."""
    d = hamming_distances(q, db)
    idx = np.tile(np.arange(db.shape[0]), (q.shape[0], 1))
    order = np.lexsort((idx, d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), order


@pytest.fixture
def tied(rng):
    db = rng.integers(0, 256, size=(413, 13), dtype=np.uint8)
    db[:, :10] &= 0x0F  # few distinct distances: many ties
    db[rng.integers(0, 413, 80)] = db[rng.integers(0, 413, 80)]  # duplicate rows
    q = np.concatenate([db[:30], rng.integers(0, 256, size=(31, 13), dtype=np.uint8)])
    return db, q


@pytest.mark.parametrize("backend", available_backends() + ["torch"])
@pytest.mark.parametrize("budget", [None, 13 * 50])
def test_streamed_knn_equals_brute_force(tied, backend, budget):
    db, q = tied
    want_d, want_i = brute_force_knn(db, q, 9)
    d, i = hamming_knn(db, q, 9, backend=backend, memory_budget=budget)
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(i, want_i)


def test_blocks_of_a_few_rows_keep_the_tie_order(tied):
    db, q = tied
    want = brute_force_knn(db, q, 9)
    for backend in ("numpy", "numba"):
        d, i = hamming_knn(db, q, 9, backend=backend, memory_budget=13 * 7)
        np.testing.assert_array_equal(i, want[1])


def test_knn_from_a_memory_mapped_database(tied, tmp_path):
    db, q = tied
    y = np.arange(len(db)) % 3
    NeuralCodes(db, 13 * 8, labels=y).save(tmp_path / "db.ahc")
    mapped = NeuralCodes.load(tmp_path / "db.ahc", mmap=True)
    assert isinstance(mapped.packed, np.memmap)
    a = hamming_knn(mapped, q, 5, memory_budget=13 * 16)
    b = brute_force_knn(db, q, 5)
    np.testing.assert_array_equal(a[1], b[1])
    in_memory = NeuralCodes(db, 13 * 8, labels=y)
    assert knn_loo_accuracy(mapped, memory_budget=13 * 16) == knn_loo_accuracy(in_memory)


def _model_and_data():
    torch.manual_seed(0)
    model = MLP(12, widths=[29, 11], n_classes=3)
    x = torch.randn(230, 12)
    y = np.arange(230) % 3
    return model, x, y


def test_capture_to_disk_equals_in_memory(tmp_path):
    model, x, y = _model_and_data()
    mem = neural_codes(model, x, labels=y, batch_size=64)
    disk = neural_codes(model, x, labels=y, batch_size=64, out=tmp_path / "c.ahc")
    assert isinstance(disk.packed, np.memmap)
    assert disk.equals(mem) and disk.n_bits == 40
    np.testing.assert_array_equal(disk.labels, y)
    assert [s.name for s in disk.layers] == [s.name for s in mem.layers]
    again = NeuralCodes.load(tmp_path / "c.ahc")
    assert again.equals(mem)
    # from an iterable of (x, y) batches of unknown total length
    batches = [(x[lo : lo + 50], torch.as_tensor(y[lo : lo + 50])) for lo in range(0, 230, 50)]
    it = neural_codes(model, iter(batches), out=tmp_path / "it.ahc")
    assert it.equals(mem)
    np.testing.assert_array_equal(it.labels, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ahc", "it.ahc"]


def test_full_disk_leaves_no_file_and_names_the_fix(tmp_path, monkeypatch):
    model, x, y = _model_and_data()
    calls = {"n": 0}

    def full(f, data):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        f.write(data)

    monkeypatch.setattr(codes_module, "_write_bytes", full)
    with pytest.raises(ResourceError, match="disk is full.*free space"):
        neural_codes(model, x, labels=y, batch_size=64, out=tmp_path / "c.ahc")
    assert list(tmp_path.iterdir()) == []


def test_failed_capture_leaves_no_file(tmp_path):
    model, x, y = _model_and_data()
    x = x.clone()
    x[200, 3] = float("nan")  # in the fourth batch, after three were written
    with pytest.raises(InputError, match="NaN"):
        neural_codes(model, x, batch_size=64, out=tmp_path / "c.ahc")
    with pytest.raises(InputError, match="labels"):
        neural_codes(model, x[:100], labels=y, out=tmp_path / "c.ahc")
    assert list(tmp_path.iterdir()) == []


def test_encoding_properties_streamed_and_timed(rng):
    protos = rng.random((3, 70)) < 0.5
    y = rng.integers(3, size=300)
    bits = (protos[y] ^ (rng.random((300, 70)) < 0.2)).astype(np.uint8)
    tr, te = NeuralCodes.from_bits(bits[:200], labels=y[:200]), NeuralCodes.from_bits(
        bits[200:], labels=y[200:])
    timings = {}
    a = encoding_properties(tr, None, te, None, backend="numba", timings=timings)
    b = encoding_properties(tr, None, te, None, backend="sklearn")
    assert set(timings) == {"redundancy", "kmeans", "knn", "logreg"}
    assert all(v >= 0 for v in timings.values())
    for key in ("kmeans_train", "kmeans_test", "logreg_train", "logreg_test"):
        assert abs(a[key] - b[key]) <= 0.005, key
    for key in ("redundancy_train", "knn_train", "knn_test"):
        assert a[key] == b[key]


@pytest.mark.slow
def test_run_records_timings_and_codes_on_disk_change_nothing(tmp_path):
    from acthash.runs.experiment import RunConfig, run_experiment

    base = {"dataset": "digits", "width": 24, "epochs": 1, "checkpoints": [1],
            "sample_size": 200, "property_backend": "numba", "kmeans_n_init": 2,
            "logreg_strategy": "multinomial"}
    mem = run_experiment(RunConfig(**base, codes_to_disk=False), out_dir=tmp_path / "a")
    disk = run_experiment(RunConfig(**base, codes_to_disk=True), out_dir=tmp_path / "b")
    m = pd.read_parquet(tmp_path / "b" / "metrics.parquet")
    for col in ("seconds_train", "seconds_capture", "seconds_redundancy", "seconds_kmeans",
                "seconds_knn", "seconds_logreg"):
        assert col in m.columns and (m[col] >= 0).all()
    props = [c for c in mem.metrics.columns if not c.startswith("seconds_")]
    pd.testing.assert_frame_equal(mem.metrics[props], disk.metrics[props])  # bit for bit
    assert NeuralCodes.load(tmp_path / "b" / "codes" / "epoch_0001_train.ahc").n_bits == 24


def test_budget_too_small_for_the_streamed_path_names_the_fix(rng):
    bits = (rng.random((50, 300)) < 0.5).astype(np.uint8)
    with pytest.raises(ResourceError, match="raise memory_budget"):
        encoding_properties(bits[:30], np.arange(30) % 2, bits[30:], np.arange(20) % 2,
                            backend="numba", memory_budget="4KB")


@cuda
def test_cuda_knn_equals_cpu(tied):
    db, q = tied
    a = hamming_knn(db, q, 9, backend="torch", device="cuda")
    b = brute_force_knn(db, q, 9)
    np.testing.assert_array_equal(a[1], b[1])
