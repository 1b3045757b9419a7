"""Products on bit-packed codes, against dense numpy on the unpacked bits."""

import numpy as np
import pytest
import torch

from acthash import NeuralCodes
from acthash import packed as packed_module
from acthash.errors import InputError, ResourceError
from acthash.packed import PackedMatrix, parse_memory_budget

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def data(rng):
    bits = (rng.random((211, 83)) < 0.4).astype(np.uint8)  # 83 bits: a partial last byte
    bits[:, 10:18] = 0  # a zero byte (skipped by the kernels)
    return bits, NeuralCodes.from_bits(bits)


@pytest.fixture(params=["tables", "dense"])
def numba_path(request, monkeypatch):
    """Run the numba backend's byte-table kernels, or its dense path for few rows."""
    monkeypatch.setattr(packed_module, "_DENSE_ROWS", 0 if request.param == "tables" else 10**9)
    return request.param


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_products_match_dense(data, rng, backend, numba_path):
    bits, codes = data
    x = bits.astype(np.float64)
    w = rng.normal(size=(83, 5))
    r = rng.normal(size=(211, 5))
    rows = np.array([5, 0, 200, 17, 17])
    m = PackedMatrix(codes.packed, codes.n_bits, backend=backend, memory_budget="1MB")
    tol = 1e-9 if backend == "numba" else 1e-4  # float64 tables / float32 matmul
    np.testing.assert_allclose(m.matmul(w), x @ w, atol=tol)
    np.testing.assert_allclose(m.matmul(w, rows), x[rows] @ w, atol=tol)
    np.testing.assert_allclose(m.rmatmul(r), x.T @ r, atol=tol * 10)
    np.testing.assert_allclose(m.rmatmul(r[: len(rows)], rows), x[rows].T @ r[: len(rows)],
                               atol=tol * 10)
    np.testing.assert_array_equal(m.row_sums(), bits.sum(axis=1))
    np.testing.assert_array_equal(m.column_sums(), bits.sum(axis=0))


def test_column_groups_under_a_small_budget_give_the_same_product(data, rng, monkeypatch):
    monkeypatch.setattr(packed_module, "_DENSE_ROWS", 0)
    _, codes = data
    w = rng.normal(size=(83, 7))
    big = PackedMatrix(codes.packed, codes.n_bits, backend="numba", memory_budget="1GB")
    # room for one column's table at a time: seven kernel calls
    small = PackedMatrix(codes.packed, codes.n_bits, backend="numba",
                         memory_budget=256 * codes.n_bytes * 16)
    assert small._column_group(7) == 1
    r = w[:, :3].T.repeat(71, 0)[:211]
    np.testing.assert_allclose(small.matmul(w), big.matmul(w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(small.rmatmul(r), big.rmatmul(r), rtol=1e-12, atol=1e-12)


def test_budget_too_small_for_one_row_names_the_fix(data):
    _, codes = data
    with pytest.raises(ResourceError, match="too small for one row.*raise memory_budget"):
        PackedMatrix(codes.packed, codes.n_bits, backend="torch", memory_budget=100)
    with pytest.raises(ResourceError, match="memory_budget"):
        PackedMatrix(codes.packed, codes.n_bits, backend="numba", memory_budget="1KB")


def test_parse_memory_budget():
    assert parse_memory_budget("512MB") == 512 << 20
    assert parse_memory_budget("2GiB") == 2 << 30
    assert parse_memory_budget("1.5k") == 1536
    assert parse_memory_budget(1000) == 1000
    with pytest.raises(InputError, match="512MB"):
        parse_memory_budget("lots")
    with pytest.raises(InputError, match="positive"):
        parse_memory_budget(0)


@cuda
def test_cuda_products_match_cpu(data, rng):
    _, codes = data
    w = rng.normal(size=(83, 4))
    cpu = PackedMatrix(codes.packed, codes.n_bits, backend="numba")
    gpu = PackedMatrix(codes.packed, codes.n_bits, backend="torch", device="cuda")
    np.testing.assert_allclose(gpu.matmul(w), cpu.matmul(w), atol=1e-4)


def test_device_out_of_memory_names_the_fix(data, monkeypatch):
    _, codes = data
    m = PackedMatrix(codes.packed, codes.n_bits, backend="torch", device="cpu")

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield  # a generator, like the real one

    monkeypatch.setattr(PackedMatrix, "_torch_chunks", oom)
    with pytest.raises(ResourceError, match="ran out of memory.*lower memory_budget"):
        m.matmul(np.zeros((83, 2)))
    with pytest.raises(ResourceError, match="device='cpu'"):
        m.rmatmul(np.zeros((211, 2)))
