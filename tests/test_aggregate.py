"""Aggregate codes (per-channel spatial sums of post-activation outputs) and their properties,
against hand computations and scikit-learn."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from acthash import properties as P
from acthash.core import aggregate as A
from acthash.errors import InputError, NoReluUnitError


class SmallCNN(nn.Module):
    """A reused in-place ReLU module, a functional relu and a ReLU on a flat layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        a = self.relu(self.conv1(x))
        b = self.relu(F.max_pool2d(self.conv2(a), 2))
        return torch.relu(self.fc(b.flatten(1)))


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return SmallCNN().eval()


def _by_hand(model, x):
    with torch.no_grad():
        a = torch.relu(model.conv1(x))
        b = torch.relu(F.max_pool2d(model.conv2(a), 2))
    sa, sb = a.double().sum((2, 3)).numpy(), b.double().sum((2, 3)).numpy()
    return sa, sb


def test_aggregate_codes_are_range_normalised_channel_sums(cnn):
    x = torch.randn(37, 1, 8, 8)
    codes = A.aggregate_codes(cnn, x, batch_size=10)  # several batches
    sa, sb = _by_hand(cnn, x)
    assert [s.name for s in codes.layers] == ["relu", "relu#2"]  # the flat ReLU is left out
    assert codes.values.shape == (37, 7)
    np.testing.assert_allclose(codes.values[:, :3], sa / (sa.max() - sa.min()), rtol=1e-5)
    np.testing.assert_allclose(codes.values[:, 3:], sb / (sb.max() - sb.min()), rtol=1e-5)
    assert codes.layers[0].scale == pytest.approx(sa.max() - sa.min(), rel=1e-5)
    raw = A.aggregate_codes(cnn, x, normalize=None, layers=["relu#2"])
    np.testing.assert_allclose(raw.values, sb, rtol=1e-5)
    # a test set normalised with the training ranges
    y = torch.randn(5, 1, 8, 8)
    other = A.aggregate_codes(cnn, y, ranges=codes.ranges)
    ta, _ = _by_hand(cnn, y)
    np.testing.assert_allclose(other.values[:, :3], ta / codes.layers[0].scale, rtol=1e-5)


def test_aggregate_codes_bad_input(cnn):
    x = torch.randn(4, 1, 8, 8)
    with pytest.raises(InputError, match="no spatial dimensions.*binary neural codes"):
        A.aggregate_codes(cnn, x, layers=["relu", ":relu"])
    with pytest.raises(InputError, match="no spatial dimensions"):
        A.aggregate_codes(cnn, x, layers=r"^:relu$")
    with pytest.raises(InputError, match="unknown layer"):
        A.aggregate_codes(cnn, x, layers=["conv9"])
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU())
    with pytest.raises(InputError, match="no ReLU-like layer of this model has spatial"):
        A.aggregate_codes(mlp, x)
    with pytest.raises(NoReluUnitError):
        A.aggregate_codes(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), x)
    with pytest.raises(InputError, match="normalize"):
        A.aggregate_codes(cnn, x, normalize="minmax")


def _blobs(rng, n, d=6, n_classes=3, spread=1.2):
    centres = rng.normal(size=(n_classes, d)) * 2
    y = rng.integers(0, n_classes, size=n)
    return centres[y] + spread * rng.normal(size=(n, d)), y


def test_euclidean_knn_matches_scikit_learn(rng):
    x, y = _blobs(rng, 400)
    tr, te = slice(0, 300), slice(300, 400)
    ref = KNeighborsClassifier(n_neighbors=9, metric="euclidean").fit(x[tr], y[tr])
    expected = ref.predict(x[te])
    for ties in ("share", "sklearn"):  # continuous data: no ties, both rules agree
        np.testing.assert_array_equal(
            P.euclidean_knn_predict(x[tr], y[tr], x[te], ties=ties), expected)
    acc = P.euclidean_knn_accuracy(x[tr], y[tr], x[te], y[te], device="cpu")
    assert acc == pytest.approx(np.mean(expected == y[te]))
    loo_ref = np.mean([
        KNeighborsClassifier(n_neighbors=9).fit(np.delete(x[tr], i, 0), np.delete(y[tr], i))
        .predict(x[i : i + 1])[0] == y[i] for i in range(300)
    ])
    assert P.euclidean_knn_loo_accuracy(x[tr], y[tr]) == pytest.approx(loo_ref)
    assert P.euclidean_knn_loo_accuracy(x[tr], y[tr], ties="sklearn") == pytest.approx(loo_ref)


def test_euclidean_share_rule_on_duplicates_ignores_order(rng):
    # integer points: many exact ties
    x = rng.integers(0, 3, size=(200, 2)).astype(float)
    y = rng.integers(0, 3, size=200)
    q = rng.integers(0, 3, size=(50, 2)).astype(float)
    base = P.euclidean_knn_predict(x, y, q)
    perm = rng.permutation(200)
    np.testing.assert_array_equal(P.euclidean_knn_predict(x[perm], y[perm], q), base)


def test_aggregate_properties_against_scikit_learn(rng):
    x, y = _blobs(rng, 300)
    tr, te = slice(0, 200), slice(200, 300)
    rec = P.aggregate_properties(x[tr], y[tr], x[te], y[te], kmeans_n_seeds=2, kmeans_n_init=3)
    km = [P.cluster_accuracy(KMeans(3, n_init=3, random_state=s).fit_predict(x[te]), y[te],
                             "hungarian") for s in (0, 1)]
    assert rec["agg_kmeans_test"] == pytest.approx(np.mean(km))
    assert rec["agg_kmeans_std_test"] == pytest.approx(np.std(km, ddof=1))
    ref = KNeighborsClassifier(n_neighbors=9, metric="euclidean").fit(x[tr], y[tr])
    assert rec["agg_knn_test"] == pytest.approx(np.mean(ref.predict(x[te]) == y[te]))
    orig = P.aggregate_properties(x[tr], y[tr], x[te], y[te], convention="original")
    lr = OneVsOneClassifier(LogisticRegression(solver="liblinear", random_state=9))
    assert orig["agg_logreg_test"] == pytest.approx(
        np.mean(lr.fit(x[tr], y[tr]).predict(x[te]) == y[te]))
    c = KMeans(3, n_init=10, random_state=9).fit_predict(x[te])
    assert orig["agg_kmeans_test"] == pytest.approx(P.cluster_accuracy(c, y[te], "hungarian"))
    assert "agg_knn_train" not in orig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = P.aggregate_properties(x[:5], y[:5], x[te], y[te], kmeans_n_seeds=1)
    assert np.isnan(small["agg_knn_test"]) and np.isnan(small["agg_knn_train"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_aggregate_on_cuda_equals_cpu(cnn, rng):
    x = torch.randn(20, 1, 8, 8)
    np.testing.assert_allclose(A.aggregate_codes(cnn.cuda(), x).values,
                               A.aggregate_codes(cnn.cpu(), x).values, rtol=1e-4)
    pts, y = _blobs(rng, 120)
    np.testing.assert_array_equal(P.euclidean_knn_predict(pts[:90], y[:90], pts[90:], device="cuda"),
                                  P.euclidean_knn_predict(pts[:90], y[:90], pts[90:]))
