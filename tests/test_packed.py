"""Products on bit-packed codes, against dense numpy on the unpacked bits."""

import numpy as np
import pytest
import torch

from acthash import NeuralCodes
from acthash._utils.budget import parse_memory_budget
from acthash.errors import InputError, ResourceError
from acthash.ops import packed as packed_module
from acthash.ops.packed import PackedMatrix

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


@pytest.mark.parametrize("n_bits", [83, 192])  # gathered and padded rows / words in place
def test_bit_plane_product_and_group_sums_are_exact(rng, tmp_path, monkeypatch, n_bits):
    monkeypatch.setattr(packed_module, "_DENSE_BLOCK_BYTES", 24 * 50)  # blocks of 50+ rows
    bits = (rng.random((301, n_bits)) < 0.45).astype(np.uint8)
    codes = NeuralCodes.from_bits(bits)
    codes.save(tmp_path / "c.ahc")
    x = bits.astype(np.int64)
    s = rng.integers(0, 70000, size=(4, n_bits))  # up to 17 bit planes
    s[1] = 0  # no planes at all
    s[2] = rng.integers(0, 2, size=n_bits)  # one plane (a 0/1 code)
    need = rng.random((301, 4)) < 0.5
    rows = np.array([300, 0, 7, 7, 150])
    for packed in (codes.packed, NeuralCodes.load(tmp_path / "c.ahc", mmap=True).packed):
        m = PackedMatrix(packed, n_bits, backend="numba", memory_budget="1MB")
        np.testing.assert_array_equal(m.plane_matmul(s), x @ s.T)
        np.testing.assert_array_equal(m.plane_matmul(s, rows), x[rows] @ s.T)
        np.testing.assert_array_equal(m.plane_matmul(s, need=need), np.where(need, x @ s.T, 0))
        target = rng.integers(3, size=301)
        sign = rng.choice([-1, 1], size=301)
        expect = np.zeros((3, n_bits), np.int64)
        np.add.at(expect, target, x * sign[:, None])
        np.testing.assert_array_equal(m.group_sums(target, 3, sign=sign), expect)
        expect = np.zeros((3, n_bits), np.int64)
        np.add.at(expect, target[rows], x[rows])
        np.testing.assert_array_equal(m.group_sums(target[rows], 3, rows=rows), expect)
    # more than 255 rows of one group and sign: the byte-wide counters are flushed in time
    many = np.ones((700, 16), dtype=np.uint8)
    m = PackedMatrix(NeuralCodes.from_bits(many).packed, 16, backend="numba")
    np.testing.assert_array_equal(m.group_sums(np.zeros(700), 1), np.full((1, 16), 700))
    with pytest.raises(InputError, match="non-negative integer"):
        m.plane_matmul(np.full((1, 16), 0.5))


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


def test_one_global_memory_budget_is_the_default_of_every_routine(data):
    import acthash
    from acthash._utils.budget import DEFAULT_MEMORY_BUDGET, get_memory_budget

    _, codes = data
    assert parse_memory_budget(None) == DEFAULT_MEMORY_BUDGET == 1 << 30
    with acthash.memory_budget("64MB") as b:
        assert b == 64 << 20 and parse_memory_budget(None) == 64 << 20
        assert PackedMatrix(codes.packed, codes.n_bits).memory_budget == 64 << 20
        # an explicit budget still wins inside the context
        assert PackedMatrix(codes.packed, codes.n_bits, memory_budget="2MB").memory_budget == 2 << 20
        with pytest.raises(ResourceError, match="memory_budget"):
            with acthash.memory_budget("1KB"):  # nested, and restored on error
                PackedMatrix(codes.packed, codes.n_bits, backend="numba")
        assert get_memory_budget() == 64 << 20
    assert get_memory_budget() == DEFAULT_MEMORY_BUDGET
    with pytest.raises(InputError, match="512MB"):
        with acthash.memory_budget("lots"):
            pass
    assert get_memory_budget() == DEFAULT_MEMORY_BUDGET


def test_one_device_and_backend_resolver_names_the_fix(monkeypatch):
    import torch

    from acthash._utils.budget import resolve_backend, resolve_device
    from acthash.train import resolve_device as train_resolve_device

    assert train_resolve_device is resolve_device  # one implementation
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(InputError, match="CUDA is not available.*'cpu'"):
        resolve_device("cuda")
    assert resolve_backend("auto") == ("numba", torch.device("cpu"))  # None: the CPU
    assert resolve_backend("torch", "cpu") == ("torch", torch.device("cpu"))
    with pytest.raises(InputError, match="unknown backend 'faiss' for products.*'numba'"):
        resolve_backend("faiss", what="products")


def test_global_memory_budget_sets_the_blocks_and_is_restored(data):
    from acthash._utils.budget import get_memory_budget, memory_budget
    from acthash.ops.hamming import _tile_rows

    _, codes = data
    per_row = codes.n_bytes * 8 * 5 + 8 * 2  # one unpacked row and its product, torch path
    default = PackedMatrix(codes.packed, codes.n_bits, backend="torch").chunk_rows()
    assert default == (1 << 30) // per_row
    assert _tile_rows(128, None) == 1024  # the cache-tuned cap, below the 1 GiB budget
    with memory_budget("64MB") as budget:
        assert budget == get_memory_budget() == 64 << 20
        m = PackedMatrix(codes.packed, codes.n_bits, backend="torch")
        assert m.memory_budget == 64 << 20 and m.chunk_rows() == (64 << 20) // per_row
        with memory_budget("64KB"):  # below the 8 MiB tile cap: the budget decides
            assert _tile_rows(128, None) == (64 << 10) // (2 * (128 + 4))
        assert _tile_rows(128, None) == 1024
    assert get_memory_budget() == 1 << 30
    assert PackedMatrix(codes.packed, codes.n_bits, backend="torch").chunk_rows() == default
