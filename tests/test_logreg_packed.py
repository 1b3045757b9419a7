"""Streamed logistic regression on packed codes against scikit-learn (the reference)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

from acthash import NeuralCodes
from acthash.errors import InputError
from acthash.ops import packed as packed_module
from acthash.ops.logreg import PackedLogisticRegression, fit_logreg_packed
from acthash.properties import logreg_accuracy

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def noisy_codes(rng, n=360, d=61, k=4, flip=0.3):
    protos = rng.random((k, d)) < 0.5
    y = rng.integers(k, size=n)
    bits = (protos[y] ^ (rng.random((n, d)) < flip)).astype(np.uint8)
    return bits, y


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture
def problem(rng):
    bits, y = noisy_codes(rng)
    return bits, y, NeuralCodes.from_bits(bits, labels=y)


@pytest.mark.parametrize("solver", ["kernel", "pairs", "lbfgs"])
def test_ovo_optimum_matches_sklearn(problem, solver):
    bits, y, codes = problem
    x = bits.astype(np.float64)
    ours = fit_logreg_packed(codes, strategy="ovo", tol=1e-9, solver=solver)
    ref = OneVsOneClassifier(LogisticRegression(C=1.0, tol=1e-12, max_iter=20000)).fit(x, y)
    assert ours.pairs == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    coef = np.array([e.coef_[0] for e in ref.estimators_])
    icpt = np.array([e.intercept_[0] for e in ref.estimators_])
    assert rel(ours.coef, coef) < 1e-3
    assert np.abs(ours.intercept - icpt).max() < 1e-3 * np.abs(icpt).max() + 1e-4
    assert abs(np.mean(ours.predict(codes) == y) - np.mean(ref.predict(x) == y)) <= 0.005


def test_ovo_vote_rule_is_sklearns(problem, rng):
    """Given scikit-learn's own pair models, the predictions are scikit-learn's exactly."""
    bits, y, codes = problem
    x = bits.astype(np.float64)
    ref = OneVsOneClassifier(LogisticRegression(C=0.05, max_iter=2000)).fit(x, y)
    model = PackedLogisticRegression(
        np.unique(y), "ovo", np.array([e.coef_[0] for e in ref.estimators_]),
        np.array([e.intercept_[0] for e in ref.estimators_]),
        [(i, j) for i in range(4) for j in range(i + 1, 4)])
    test = (rng.random((500, 61)) < 0.5).astype(np.uint8)  # many close votes
    np.testing.assert_array_equal(model.predict(NeuralCodes.from_bits(test)),
                                  ref.predict(test.astype(np.float64)))


def test_multinomial_and_ovr_match_sklearn(problem):
    bits, y, codes = problem
    x = bits.astype(np.float64)
    multi = fit_logreg_packed(codes, strategy="multinomial", tol=1e-9)
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=20000).fit(x, y)
    assert rel(multi.coef, ref.coef_) < 1e-3
    np.testing.assert_array_equal(multi.predict(codes), ref.predict(x))
    ref = OneVsRestClassifier(LogisticRegression(C=1.0, tol=1e-12, max_iter=20000)).fit(x, y)
    for solver in ("kernel", "lbfgs"):
        ovr = fit_logreg_packed(codes, strategy="ovr", tol=1e-9, solver=solver)
        assert rel(ovr.coef, np.array([e.coef_[0] for e in ref.estimators_])) < 1e-3, solver
    # one problem, far fewer passes over the codes than six binary ones
    assert multi.n_passes < 10 * fit_logreg_packed(codes, strategy="ovo", solver="lbfgs").n_passes
    # the kernel solver: one pass for the Gram matrix, one for the coefficients
    assert fit_logreg_packed(codes, strategy="ovo", solver="kernel").n_passes == 2
    with pytest.raises(InputError, match="kernel solver fits binary problems"):
        fit_logreg_packed(codes, strategy="multinomial", solver="kernel")
    with pytest.raises(InputError, match="unknown solver"):
        fit_logreg_packed(codes, solver="sgd")


def test_binary_problem_and_defaults_match_sklearn_accuracy(rng):
    bits, y = noisy_codes(rng, k=2, flip=0.35)
    x = bits.astype(np.float64)
    ours = fit_logreg_packed(NeuralCodes.from_bits(bits), y)  # default tol 1e-4 like sklearn
    ref = LogisticRegression(C=1.0).fit(x, y)
    assert abs(np.mean(ours.predict(bits) == y) - np.mean(ref.predict(x) == y)) <= 0.005
    assert rel(ours.coef[0], ref.coef_[0]) < 1e-2


def test_logreg_accuracy_streamed_equals_sklearn(problem, rng):
    bits, y, _ = problem
    test, yt = noisy_codes(np.random.default_rng(1), n=200)
    a = logreg_accuracy(bits, y, test, yt, backend="sklearn", return_train=True)
    b = logreg_accuracy(bits, y, test, yt, backend="numba", return_train=True)
    assert abs(a[0] - b[0]) <= 0.005 and abs(a[1] - b[1]) <= 0.005


def test_memory_mapped_and_torch_give_the_same_model(problem, tmp_path, monkeypatch):
    monkeypatch.setattr(packed_module, "_DENSE_ROWS", 0)  # the byte-table kernels
    _, y, codes = problem
    codes.save(tmp_path / "c.ahc")
    mapped = NeuralCodes.load(tmp_path / "c.ahc", mmap=True)
    a = fit_logreg_packed(codes)
    b = fit_logreg_packed(mapped)
    np.testing.assert_array_equal(a.coef, b.coef)  # bit for bit
    c = fit_logreg_packed(codes, backend="torch", device="cpu", memory_budget="100KB")
    assert rel(c.coef, a.coef) < 1e-2
    assert np.mean(c.predict(codes) == a.predict(codes)) >= 0.99


def test_bad_input():
    bits = np.eye(6, dtype=np.uint8)
    with pytest.raises(InputError, match="two classes"):
        fit_logreg_packed(bits, np.zeros(6, dtype=int))
    with pytest.raises(InputError, match="strategy"):
        fit_logreg_packed(bits, np.arange(6) % 2, strategy="softmax")
    with pytest.raises(InputError, match="labels are needed"):
        fit_logreg_packed(bits)


@cuda
def test_cuda_matches_cpu(problem):
    _, y, codes = problem
    a = fit_logreg_packed(codes, tol=1e-8)
    b = fit_logreg_packed(codes, tol=1e-8, backend="torch", device="cuda")
    assert rel(b.coef, a.coef) < 1e-3


@pytest.mark.parametrize("k,strategy", [(4, "ovo"), (4, "ovr"), (2, "ovo"), (2, "ovr")])
def test_kernel_predictions_equal_the_fitted_models(rng, k, strategy):
    """Scores from the Gram matrices (no coefficients formed) give the labels the fitted
    model's coefficients give, on training and test codes."""
    from acthash.ops.logreg import kernel_logreg_predict

    bits, y = noisy_codes(rng, n=500, k=k)
    codes = NeuralCodes.from_bits(bits)
    model = fit_logreg_packed(codes[:300], y[:300], strategy=strategy, solver="kernel")
    pred_train, pred_test = kernel_logreg_predict(codes[:300], y[:300], codes[300:],
                                                  strategy=strategy)
    np.testing.assert_array_equal(pred_train, model.predict(codes[:300]))
    np.testing.assert_array_equal(pred_test, model.predict(codes[300:]))
    with pytest.raises(InputError, match="binary problems"):
        kernel_logreg_predict(codes[:300], y[:300], codes[300:], strategy="multinomial")


def test_kernel_fits_rule():
    from acthash.ops.logreg import kernel_fits

    assert kernel_fits(2000, "ovo", n_bits=144256)
    assert not kernel_fits(2000, "ovo", n_bits=1000)  # short codes: L-BFGS passes are cheaper
    assert not kernel_fits(2000, "multinomial", n_bits=144256)
    assert not kernel_fits(20000, "ovo", n_bits=10**6)  # 3.2 GB Gram matrix > 1 GiB budget
    assert kernel_fits(20000, "ovo", "4GB", n_bits=10**6)
    assert not kernel_fits(2000, "ovo", backend="torch", device="cpu", n_bits=144256)


@pytest.mark.parametrize("spread", [1, 2000])  # uint16 above row bases / float32 blocks
def test_pair_matvec_is_the_block_product(rng, spread):
    from acthash._kernels.packed import pair_matvec
    from acthash.ops.gram import compact_block as _compact

    x = (rng.random((70, 40)) < 0.5).astype(np.float64) * spread
    g = x @ x.T + 5000.0  # integers, exact in float32; row ranges 40 or 1.6e8
    v = rng.normal(size=70)
    blocks = [_compact(np.ascontiguousarray(m, dtype=np.float32))
              for m in (g[:30, :30], g[:30, 30:], g[30:, 30:])]
    assert blocks[1][0].dtype == (np.uint16 if spread == 1 else np.float32)
    np.testing.assert_array_equal(blocks[1][0] + blocks[1][1][:, None], g[:30, 30:])
    ua, ub = np.empty(30), np.empty(40)
    pair_matvec(*blocks[0], *blocks[1], *blocks[2], v[:30].copy(), v[30:].copy(), ua, ub)
    np.testing.assert_allclose(np.concatenate([ua, ub]), g @ v, rtol=1e-12)


def test_pair_blocks_spilled_to_disk_give_the_same_model(problem, monkeypatch, tmp_path):
    import tempfile

    from acthash.errors import ResourceError

    _, y, codes = problem
    in_memory = fit_logreg_packed(codes, solver="pairs")
    # room for one pair's blocks but not for every class's: the class blocks go to a
    # temporary folder, removed afterwards
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spilled = fit_logreg_packed(codes, solver="pairs", memory_budget="200KB")
    np.testing.assert_array_equal(spilled.coef, in_memory.coef)
    np.testing.assert_array_equal(spilled.intercept, in_memory.intercept)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ResourceError, match="raise memory_budget or use solver='lbfgs'"):
        fit_logreg_packed(codes, solver="pairs", memory_budget="64KB")
    with pytest.raises(InputError, match="one-vs-one"):
        fit_logreg_packed(codes, solver="pairs", strategy="ovr")


def test_pairs_fit_rule():
    from acthash.ops.logreg import pairs_fit

    sizes = [6000] * 10  # the full Fashion-MNIST training split
    assert pairs_fit(sizes, 144256)  # ResNet-20 codes: 432 MB of pair blocks
    assert not pairs_fit(sizes, 1000)  # short codes: the passes over the bits are cheaper
    assert not pairs_fit([30000, 30000], 10**6)  # 14.4 GB of blocks for the one pair
    assert pairs_fit([30000, 30000], 10**6, "32GB")  # and 7.5 GB of packed rows
