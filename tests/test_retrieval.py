"""acthash.retrieval: ranking metrics, hash encoders and binary search indexes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score

from acthash import neural_codes
from acthash.core.codes import NeuralCodes
from acthash.errors import InputError
from acthash.models import MLP
from acthash.ops.hamming import hamming_distances, hamming_knn
from acthash.retrieval import (
    ITQ,
    BinaryIndex,
    NeuralCodeEncoder,
    PCAHash,
    SignRandomProjection,
    SpectralHash,
    bit_entropy,
    expected_average_precision,
    load_encoder,
    make_encoder,
    mean_average_precision,
    penultimate_features,
    ranking_stats,
    recall_at_k,
    search_benchmark,
)


def _codes(rng, n, bits):
    return NeuralCodes.from_bits(rng.integers(0, 2, (n, bits)))


@pytest.fixture
def tied():
    """Few bits, many ties: 30 queries against 200 database codes of 6 bits, 3 classes."""
    rng = np.random.default_rng(1)
    db, q = _codes(rng, 200, 6), _codes(rng, 30, 6)
    return q, db, rng.integers(0, 3, 30), rng.integers(0, 3, 200)


# ------------------------------------------------------------------ metrics
def test_ap_by_hand():
    # query 0000; database 0000 (relevant), 0001 (not), 0011 (relevant): ranks 1, 2, 3
    db = NeuralCodes.from_bits([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1]])
    q = NeuralCodes.from_bits([[0, 0, 0, 0]])
    ap = mean_average_precision(q, db, [1], [1, 0, 1])
    assert ap == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_index_tie_rule_and_expected_ap_by_hand():
    # all three items at distance 1: index order gives relevant, not, relevant
    db = NeuralCodes.from_bits([[1, 0], [0, 1], [1, 0]])
    q = NeuralCodes.from_bits([[0, 0]])
    s = ranking_stats(q, db, [0], [0, 1, 0], ks=(1, 2))
    assert s.ap[0] == pytest.approx((1 + 2 / 3) / 2)
    # orders of {r, n, r}: rrn (AP 1), rnr (5/6), nrr ((1/2 + 2/3)/2 = 7/12), each 1/3
    assert s.expected_ap[0] == pytest.approx((1 + 5 / 6 + 7 / 12) / 3)
    np.testing.assert_allclose(s.precision_at_k[0], [1.0, 0.5])
    np.testing.assert_allclose(s.expected_precision_at_k[0], [2 / 3, 2 / 3])


@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_ap_equals_sklearn_with_index_tiebreak(tied, backend):
    q, db, ql, dl = tied
    d = hamming_distances(q, db)
    n = len(dl)
    # distinct scores that order by (distance, index): sklearn then sees no ties
    ref = [average_precision_score(dl == ql[i], -(d[i] * n + np.arange(n))) for i in range(len(ql))]
    s = ranking_stats(q, db, ql, dl, ks=(1, 10, 100), backend=backend)
    np.testing.assert_allclose(s.ap, ref, atol=1e-12)
    # precision@k: relevant items among the first k of the stable distance order
    order = np.argsort(d, axis=1, kind="stable")
    rel = dl[order] == ql[:, None]
    for j, k in enumerate((1, 10, 100)):
        np.testing.assert_allclose(s.precision_at_k[:, j], rel[:, :k].mean(axis=1))
    hist = np.stack([np.bincount(row, minlength=7) for row in d])
    np.testing.assert_array_equal(s.hist_n, hist)


def _brute_expected(d, rel):
    """Mean AP and P@k over every order within tie groups (tiny inputs only)."""
    levels = sorted(set(d.tolist()))
    groups = [np.flatnonzero(d == v) for v in levels]
    aps, p2 = [], []
    for perm in itertools.product(*[itertools.permutations(g) for g in groups]):
        order = np.concatenate(perm)
        r = rel[order]
        cum = np.cumsum(r)
        aps.append((cum / np.arange(1, len(r) + 1))[r].sum() / r.sum())
        p2.append(r[:2].mean())
    return np.mean(aps), np.mean(p2)


def test_expected_ap_equals_enumeration_over_tie_orders():
    rng = np.random.default_rng(3)
    for _ in range(5):
        db = _codes(rng, 8, 3)
        q = _codes(rng, 1, 3)
        dl = rng.integers(0, 2, 8)
        dl[0] = 1
        s = ranking_stats(q, db, [1], dl, ks=(2,))
        d = hamming_distances(q, db)[0]
        ap, p2 = _brute_expected(d, dl == 1)
        assert s.expected_ap[0] == pytest.approx(ap, abs=1e-12)
        assert s.expected_precision_at_k[0, 0] == pytest.approx(p2, abs=1e-12)


def test_expected_ap_equals_ap_without_ties():
    # 16-bit codes that are all distinct from the query at distinct distances: no ties
    bits = np.zeros((6, 16), dtype=np.uint8)
    for i in range(6):
        bits[i, : 2 * i] = 1
    db = NeuralCodes.from_bits(bits)
    q = NeuralCodes.from_bits(np.zeros((1, 16), dtype=np.uint8))
    dl = [1, 0, 0, 1, 0, 1]
    assert expected_average_precision(q, db, [1], dl) == pytest.approx(
        mean_average_precision(q, db, [1], dl))


def test_radius_precision_and_pr_curve(tied):
    q, db, ql, dl = tied
    s = ranking_stats(q, db, ql, dl)
    d = hamming_distances(q, db)
    within = d <= 2
    rel = dl[None, :] == ql[:, None]
    got = within.sum(1)
    expect = np.where(got > 0, (within & rel).sum(1) / np.maximum(got, 1), 0.0)
    prec, n = s.precision_within_radius(2)
    np.testing.assert_allclose(prec, expect)
    np.testing.assert_array_equal(n, got)
    pr = s.pr_curve()
    assert list(pr["radius"]) == list(range(7))
    assert np.all(np.diff(pr["recall"]) >= 0)
    assert pr["recall"].iloc[-1] == pytest.approx(1.0)
    # at the largest radius everything is retrieved: precision = the class share
    share = np.mean([np.mean(dl == c) for c in ql])
    assert pr["precision"].iloc[-1] == pytest.approx(share)


def test_radius_zero_empty_query_counts_zero():
    db = NeuralCodes.from_bits([[1, 1, 1, 1]])
    q = NeuralCodes.from_bits([[0, 0, 0, 0]])
    s = ranking_stats(q, db, [0], [0], ks=(1,))
    summary = s.summary(radius=2)
    assert summary["p_r2"] == 0.0 and summary["r2_empty"] == 1.0


def test_metric_bad_input(tied):
    q, db, ql, dl = tied
    with pytest.raises(InputError, match="do not occur in the database"):
        ranking_stats(q, db, np.full(len(ql), 7), dl)
    with pytest.raises(InputError, match="database size"):
        ranking_stats(q, db, ql, dl, ks=(1000,))
    with pytest.raises(InputError, match="same fitted encoder"):
        ranking_stats(_codes(np.random.default_rng(0), 3, 12), db, ql[:3], dl)
    with pytest.raises(InputError, match="labels"):
        ranking_stats(q, db, None, dl)


# ------------------------------------------------------------------ encoders
@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 10))
    y = rng.permutation(np.repeat(np.arange(4), 60))
    x = centres[y] + rng.normal(0, 1, (240, 10))
    return x, y


@pytest.mark.parametrize("cls", [SignRandomProjection, PCAHash, ITQ, SpectralHash])
def test_classical_encoders_deterministic_and_saved(cls, blobs, tmp_path):
    x, y = blobs
    enc = cls(8, seed=5).fit(x[:200])
    codes = enc.encode(x[200:])
    assert codes.n_bits == 8 and len(codes) == 40
    again = cls(8, seed=5).fit(x[:200]).encode(x[200:])
    assert codes.equals(again)
    path = enc.save(tmp_path / "enc.npz")
    loaded = load_encoder(path)
    assert type(loaded) is cls and loaded.encode(x[200:]).equals(codes)
    # the codes carry the class structure: well above chance (0.25) for every encoder
    m = mean_average_precision(enc.encode(x[200:]), enc.encode(x[:200]), y[200:], y[:200])
    assert m > 0.4


def test_seed_changes_random_encoders(blobs):
    x, _ = blobs
    a = SignRandomProjection(16, seed=0).fit_encode(x)
    b = SignRandomProjection(16, seed=1).fit_encode(x)
    assert not a.equals(b)


def test_encode_before_fit_and_budget_errors(blobs):
    x, _ = blobs
    for enc in (SignRandomProjection(4), PCAHash(4), ITQ(4), SpectralHash(4)):
        with pytest.raises(InputError, match=r"not fitted yet; call \.fit\(database\)"):
            enc.encode(x)
    with pytest.raises(InputError, match="exceeds the 10 dimensions"):
        PCAHash(16).fit(x)
    with pytest.raises(InputError, match="exceeds the 10 dimensions"):
        ITQ(16).fit(x)
    with pytest.raises(InputError, match="5 features, the encoder was fitted on 10"):
        PCAHash(4).fit(x).encode(x[:, :5])
    # LSH and spectral hashing are not limited by the input dimension
    assert SpectralHash(24).fit_encode(x).n_bits == 24
    assert SignRandomProjection(24).fit_encode(x).n_bits == 24


def test_pca_hash_is_sign_of_sklearn_pca(blobs):
    x, _ = blobs
    codes = PCAHash(5).fit_encode(x).unpack().astype(bool)
    z = PCA(5, svd_solver="full").fit_transform(x)
    for j in range(5):  # components agree up to sign
        col = z[:, j] > 0
        assert np.array_equal(codes[:, j], col) or np.array_equal(codes[:, j], ~col)


def test_itq_lowers_quantization_error(blobs):
    x, _ = blobs
    start = ITQ(6, seed=2, n_iter=0).fit(x).quantization_error_
    end = ITQ(6, seed=2, n_iter=50).fit(x).quantization_error_
    assert end < start


def test_spectral_hash_one_dimension_by_hand():
    # uniform 1-D data on [0, 1]: modes k = 1, 2, 3 are cos(kπt) > 0 with t = y - min
    t = np.linspace(0, 1, 101)
    x = np.stack([t, np.zeros_like(t)], axis=1)
    bits = SpectralHash(3).fit_encode(x).unpack().astype(bool)
    y = t - t.mean()
    sign = 1 if bits[0, 0] == (np.cos(np.pi * 0) > 0) else -1  # PCA sign convention
    u = (sign * y) - (sign * y).min()
    for k in (1, 2, 3):
        np.testing.assert_array_equal(bits[:, k - 1], np.sin(np.pi / 2 + k * np.pi * u) > 0)


def _mlp(seed=0, width=12):
    torch.manual_seed(seed)
    return MLP(10, widths=[width, width], n_classes=4)


def test_neural_encoder_full_equals_neural_codes(blobs, tmp_path):
    x, _ = blobs
    xt = torch.tensor(x, dtype=torch.float32)
    model = _mlp()
    enc = NeuralCodeEncoder(model).fit(xt[:200])
    assert enc.n_bits == 24
    assert enc.encode(xt[200:]).equals(neural_codes(model, xt[200:]))
    one = NeuralCodeEncoder(model, layers=["features.4"]).fit(xt)
    assert one.encode(xt).equals(neural_codes(model, xt).select_layers(["features.4"]))
    path = enc.save(tmp_path / "neural.npz")
    assert load_encoder(path, model=model).encode(xt).equals(enc.encode(xt))
    with pytest.raises(InputError, match="pass the trained model"):
        load_encoder(path)
    with pytest.raises(InputError, match="not the one the encoder was fitted with"):
        load_encoder(path, model=_mlp(seed=1))


def test_neural_encoder_entropy_selection(blobs):
    x, _ = blobs
    xt = torch.tensor(x, dtype=torch.float32)
    model = _mlp()
    full = neural_codes(model, xt[:200]).unpack()
    ent = bit_entropy(full)
    enc = NeuralCodeEncoder(model, 6).fit(xt[:200])
    # the six chosen units are the six most entropic (ties to the lower index)
    expect = sorted(range(24), key=lambda i: (-ent[i], i))[:6]
    assert list(enc.units_) == expect
    assert enc.encode(xt[200:]).equals(NeuralCodes.from_bits(
        neural_codes(model, xt[200:]).unpack()[:, expect]))
    with pytest.raises(InputError, match="exceeds the 24 units"):
        NeuralCodeEncoder(model, 32).fit(xt)
    with pytest.raises(InputError, match="not fitted yet"):
        NeuralCodeEncoder(model, 4).encode(xt)


def test_decorrelated_selection_skips_a_duplicated_unit(blobs):
    x, _ = blobs
    xt = torch.tensor(x, dtype=torch.float32)
    model = _mlp(width=6)
    with torch.no_grad():  # hidden unit 1 of the first layer copies unit 0
        lin = model.features[1]
        lin.weight[1] = lin.weight[0]
        lin.bias[1] = lin.bias[0]
    bits = neural_codes(model, xt).unpack()
    assert np.array_equal(bits[:, 0], bits[:, 1]) and 0.05 < bits[:, 0].mean() < 0.95
    dec = NeuralCodeEncoder(model, 4, select="decorrelated").fit(xt)
    assert len(set(dec.units_)) == 4 and not {0, 1} <= set(dec.units_.tolist())
    ent = NeuralCodeEncoder(model, 12, select="entropy").fit(xt)
    assert {0, 1} <= set(ent.units_.tolist())  # entropy alone keeps both copies


def test_neural_encoder_refuses_a_changed_model(blobs):
    x, _ = blobs
    xt = torch.tensor(x, dtype=torch.float32)
    model = _mlp()
    enc = NeuralCodeEncoder(model, 4).fit(xt)
    with torch.no_grad():
        model.features[1].bias += 1.0
    with pytest.raises(InputError, match="changed since this encoder was fitted"):
        enc.encode(xt)


def test_penultimate_features_are_the_last_hidden_layer(blobs):
    x, _ = blobs
    xt = torch.tensor(x, dtype=torch.float32)
    model = _mlp()
    feats = penultimate_features(model, xt, batch_size=64)
    with torch.no_grad():
        np.testing.assert_allclose(feats, model.features(xt).numpy(), rtol=1e-6)


def test_make_encoder_names():
    assert isinstance(make_encoder("itq", 8, seed=1), ITQ)
    with pytest.raises(InputError, match="choose one of"):
        make_encoder("kmeans", 8)
    with pytest.raises(InputError, match="needs the trained model"):
        make_encoder("neural", 8)


# ------------------------------------------------------------------ search
def test_exact_and_faiss_indexes():
    rng = np.random.default_rng(0)
    db, q = _codes(rng, 2000, 64), _codes(rng, 50, 64)
    exact = BinaryIndex("exact").build(db).search(q, 10)
    ref = hamming_knn(db, q, 10, backend="numpy")
    np.testing.assert_array_equal(exact[0], ref[0])
    flat = BinaryIndex("flat").build(db).search(q, 10)
    np.testing.assert_array_equal(flat[0], exact[0])
    assert recall_at_k(exact, flat)[1] == 1.0
    table = search_benchmark(db, q, k=10, nlist=16, nprobe=16)
    assert list(table["index"]) == ["exact", "flat", "hnsw", "ivf"]
    row = table.set_index("index")
    assert row.loc["exact", "recall@10"] == 1.0
    assert row.loc["flat", "recall@10_dist"] == 1.0
    assert row.loc["ivf", "recall@10_dist"] == 1.0  # nprobe = nlist visits every cell
    assert 0.0 <= row.loc["hnsw", "recall@10"] <= 1.0
    assert (table["qps"] > 0).all()


def test_recall_at_k_by_hand():
    exact = (np.array([[0, 1, 1]]), np.array([[5, 6, 7]]))
    approx = (np.array([[0, 1, 2]]), np.array([[5, 8, 9]]))  # 8 ties with 6/7, 9 is farther
    by_id, by_dist = recall_at_k(exact, approx)
    assert by_id == pytest.approx(1 / 3) and by_dist == pytest.approx(2 / 3)


def test_index_errors():
    with pytest.raises(InputError, match="choose one of"):
        BinaryIndex("lsh")
    with pytest.raises(InputError, match="build"):
        BinaryIndex("exact").search(np.zeros((1, 8), np.uint8), 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_backend_on_gpu_equals_numba(tied):
    q, db, ql, dl = tied
    gpu = ranking_stats(q, db, ql, dl, ks=(1, 10), backend="torch", device="cuda")
    cpu = ranking_stats(q, db, ql, dl, ks=(1, 10), backend="numba")
    np.testing.assert_allclose(gpu.ap, cpu.ap, atol=1e-12)
    np.testing.assert_array_equal(gpu.hist_r, cpu.hist_r)
