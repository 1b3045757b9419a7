"""Streamed K-Means on packed codes against scikit-learn's KMeans (the reference)."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from acthash import NeuralCodes
from acthash.errors import InputError
from acthash.ops import packed as packed_module
from acthash.ops.hamming import gram_matrix
from acthash.ops.kmeans import _lloyd, _lloyd_gram, kmeans_packed
from acthash.ops.packed import PackedMatrix
from acthash.properties import cluster_accuracy, kmeans_scores

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def clustered(rng, n=500, d=157, k=5, flip=0.2):
    protos = rng.random((k, d)) < 0.5
    y = rng.integers(k, size=n)
    bits = (protos[y] ^ (rng.random((n, d)) < flip)).astype(np.uint8)
    return bits, y


@pytest.mark.parametrize("solver", ["planes", "tables"])
@pytest.mark.parametrize("flip", [0.1, 0.35])
def test_inertia_and_accuracy_match_sklearn(rng, flip, solver):
    bits, y = clustered(rng, flip=flip)
    codes = NeuralCodes.from_bits(bits, labels=y)
    ours = kmeans_packed(codes, 5, n_init=10, seed=0, solver=solver)
    ref = KMeans(5, n_init=10, random_state=0).fit(bits.astype(np.float64))
    assert ours.inertia <= ref.inertia_ * (1 + 1e-4)
    assert abs(ours.inertia - ref.inertia_) / ref.inertia_ < 1e-4 or ours.inertia < ref.inertia_
    # the inertia it reports is the one of its labels and centres
    x = bits.astype(np.float64)
    direct = ((x - ours.centers[ours.labels]) ** 2).sum()
    assert ours.inertia == pytest.approx(direct, rel=1e-9)
    for mapping in ("hungarian", "purity"):
        a = cluster_accuracy(ours.labels, y, mapping)
        b = cluster_accuracy(ref.labels_, y, mapping)
        assert abs(a - b) <= 0.005


def test_lloyd_from_sklearns_seeds_follows_sklearns_iterations(rng):
    bits, _ = clustered(rng, n=400, d=90, k=4, flip=0.4)
    x = bits.astype(np.float64)
    # real-valued seeds: no exactly tied distances, whose order would depend on rounding
    init = 0.8 * x[rng.choice(len(x), 4, replace=False)] + 0.2 * rng.random((4, 90))
    ref = KMeans(4, init=init, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd").fit(x)
    codes = NeuralCodes.from_bits(bits)
    mat = PackedMatrix(codes.packed, codes.n_bits)
    tol = float(np.var(x, axis=0).mean()) * 1e-4
    labels, centers, inertia, n_iter = _lloyd(mat, mat.row_sums(), init.copy(), 300, tol)
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(centers, ref.cluster_centers_, atol=1e-9)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-6)
    assert n_iter == ref.n_iter_


def test_gram_iterations_equal_the_table_iterations(rng):
    bits, _ = clustered(rng, n=400, d=90, k=4, flip=0.4)
    x = bits.astype(np.float64)
    codes = NeuralCodes.from_bits(bits)
    mat = PackedMatrix(codes.packed, codes.n_bits)
    tol = float(np.var(x, axis=0).mean()) * 1e-4
    seeds = rng.choice(len(x), 4, replace=False)
    gram = gram_matrix(codes)
    np.testing.assert_array_equal(gram, x @ x.T)
    # 7-row tiles, and the cross products of two sets of codes
    np.testing.assert_array_equal(gram_matrix(codes, memory_budget=2 * (16 + 4) * 7), gram)
    np.testing.assert_array_equal(gram_matrix(codes[:50], codes[100:333],
                                              memory_budget=2 * (16 + 4) * 7),
                                  x[:50] @ x[100:333].T)
    labels, weights, counts, inertia, n_iter = _lloyd_gram(gram, mat.row_sums(), seeds, 300,
                                                           tol)
    ref_labels, ref_centers, ref_inertia, ref_iter = _lloyd(mat, mat.row_sums(),
                                                            x[seeds].copy(), 300, tol)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(weights.T @ x / counts[:, None], ref_centers, atol=1e-12)
    assert inertia == pytest.approx(ref_inertia, rel=1e-9)
    assert n_iter == ref_iter
    # (the table iterations follow scikit-learn's: test_lloyd_from_sklearns_seeds_...; from
    # binary seeds, exactly tied distances make scikit-learn's own path rounding-dependent)


@pytest.mark.parametrize("d", [157, 256])  # rows gathered and padded / read in place
def test_plane_iterations_equal_the_table_iterations(rng, d):
    bits, _ = clustered(rng, n=400, d=d, k=4, flip=0.4)
    x = bits.astype(np.float64)
    codes = NeuralCodes.from_bits(bits)
    mat = PackedMatrix(codes.packed, codes.n_bits)
    tol = float(np.var(x, axis=0).mean()) * 1e-4
    for seeds in (rng.choice(len(x), 4, replace=False), np.array([0, 1, 2, 2])):
        # (a repeated seed leaves a cluster empty: relocated to the farthest code)
        ref = _lloyd(mat, mat.row_sums(), x[seeds].copy(), 300, tol)
        got = _lloyd(mat, mat.row_sums(), x[seeds].copy(), 300, tol, planes=True)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_allclose(got[1], ref[1], atol=1e-12)
        assert got[2] == pytest.approx(ref[2], rel=1e-9) and got[3] == ref[3]
        # the reported inertia is the one of the labels and centres
        assert got[2] == pytest.approx(((x - got[1][got[0]]) ** 2).sum(), rel=1e-9)


def test_gram_plane_and_table_solvers_give_the_same_kmeans(rng):
    bits, y = clustered(rng, n=300, flip=0.3)
    codes = NeuralCodes.from_bits(bits, labels=y)
    a = kmeans_packed(codes, 5, seed=1, solver="gram")
    for solver in ("planes", "tables"):
        b = kmeans_packed(codes, 5, seed=1, solver=solver)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.centers, b.centers, atol=1e-12)
        assert a.inertia == pytest.approx(b.inertia, rel=1e-9) and a.n_iter == b.n_iter
    with pytest.raises(InputError, match="unknown solver"):
        kmeans_packed(codes, 5, solver="elkan")
    with pytest.raises(InputError, match="solver='tables'"):
        kmeans_packed(codes, 5, solver="planes", backend="torch")


@pytest.mark.parametrize("solver,dense_rows", [("tables", 0), ("tables", 10**9),
                                               ("planes", 0)])  # byte tables, dense blocks
def test_reproducible_and_identical_memory_mapped(rng, tmp_path, monkeypatch, solver,
                                                  dense_rows):
    monkeypatch.setattr(packed_module, "_DENSE_ROWS", dense_rows)
    bits, y = clustered(rng, n=300, d=192)  # whole 64-bit words: planes read in place
    codes = NeuralCodes.from_bits(bits, labels=y)
    codes.save(tmp_path / "c.ahc")
    mapped = NeuralCodes.load(tmp_path / "c.ahc", mmap=True)
    assert isinstance(mapped.packed, np.memmap)
    a = kmeans_packed(codes, 5, seed=3, solver=solver)
    b = kmeans_packed(mapped, 5, seed=3, solver=solver)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia
    c = kmeans_packed(codes, 5, seed=4, solver=solver)
    assert c.best_init >= 0 and c.inertia == pytest.approx(a.inertia, rel=0.05)


def test_torch_backend_finds_the_same_clustering(rng):
    bits, y = clustered(rng, n=300, flip=0.15)
    codes = NeuralCodes.from_bits(bits, labels=y)
    a = kmeans_packed(codes, 5, seed=0, backend="numba")
    b = kmeans_packed(codes, 5, seed=0, backend="torch", device="cpu", memory_budget="200KB")
    assert cluster_accuracy(a.labels, b.labels) == 1.0
    assert b.inertia == pytest.approx(a.inertia, rel=1e-5)


def test_empty_cluster_is_relocated_and_duplicates_are_fine():
    # 3 distinct codes, 3 clusters, many duplicates: every cluster ends non-empty
    bits = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]] * 20, dtype=np.uint8)
    res = kmeans_packed(NeuralCodes.from_bits(bits), 3, n_init=3, seed=0)
    assert res.inertia == pytest.approx(0.0, abs=1e-9)
    assert len(np.unique(res.labels)) == 3


def test_kmeans_scores_routes_to_the_streamed_path(rng):
    bits, y = clustered(rng, n=400, flip=0.15)
    sk = kmeans_scores(bits, y, backend="sklearn")
    st = kmeans_scores(bits, y, backend="numba")
    assert abs(sk["hungarian"] - st["hungarian"]) <= 0.005
    assert abs(sk["purity"] - st["purity"]) <= 0.005
    with pytest.raises(InputError, match="sklearn"):
        kmeans_scores(bits, y, backend="gpu")


def test_bad_arguments():
    bits = np.eye(4, dtype=np.uint8)
    with pytest.raises(InputError, match="between 1 and"):
        kmeans_packed(bits, 5)
    with pytest.raises(InputError, match="at least one"):
        kmeans_packed(np.zeros((0, 4), dtype=np.uint8), 1)


@cuda
def test_cuda_matches_cpu(rng):
    bits, y = clustered(rng, n=300)
    a = kmeans_packed(bits, 5, seed=0, backend="numba")
    b = kmeans_packed(bits, 5, seed=0, backend="torch", device="cuda")
    assert b.inertia == pytest.approx(a.inertia, rel=1e-5)


def test_auto_takes_the_gram_path_for_long_codes_only(rng, monkeypatch):
    import acthash.ops.kmeans as km

    calls = []
    real = km._kmeans_gram
    monkeypatch.setattr(km, "_kmeans_gram", lambda *a: calls.append(1) or real(*a))
    long_bits, _ = clustered(rng, n=200, d=8000)   # 1 000 bytes: 3 bytes or more per code
    short_bits, _ = clustered(rng, n=200, d=20)    # 3 bytes: the byte tables are cheaper
    kmeans_packed(NeuralCodes.from_bits(long_bits), 5, n_init=2)
    assert calls == [1]
    kmeans_packed(NeuralCodes.from_bits(short_bits), 5, n_init=2)
    assert calls == [1]
    budget = 8 * 200 * 199  # the Gram matrix would not fit; one row's byte tables do
    monkeypatch.setattr(km.PackedMatrix, "_min_bytes", lambda self: 1)
    kmeans_packed(NeuralCodes.from_bits(long_bits), 5, n_init=2, memory_budget=budget)
    assert calls == [1]
    # off the Gram path the CPU takes the bit planes for long codes, the tables for short
    lloyd_planes = []
    real_lloyd = km._lloyd
    monkeypatch.setattr(km, "_lloyd", lambda *a, **kw: lloyd_planes.append(kw["planes"])
                        or real_lloyd(*a, **kw))
    mid_bits, _ = clustered(rng, n=700, d=8000)  # 1 000 bytes, 0.7 codes per byte
    kmeans_packed(NeuralCodes.from_bits(mid_bits), 5, n_init=1)
    kmeans_packed(NeuralCodes.from_bits(short_bits), 5, n_init=1)
    kmeans_packed(NeuralCodes.from_bits(short_bits), 5, n_init=1, backend="torch")
    assert lloyd_planes == [True, False, False] and calls == [1]
