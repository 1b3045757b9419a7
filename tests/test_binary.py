"""Latent binary encoding: metrics (acthash.binary), bottleneck models and the compression loss."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from acthash import binary
from acthash.models import build_model
from acthash.models.bottleneck import BottleneckNet, CompressionLoss, split_head
from acthash.train import TrainConfig, seed_everything, train

# --------------------------------------------------------------------- same-encoding fraction


def test_same_encoding_fraction_constructed_codes():
    # class 0: 3 of 4 examples on code 101; class 1: all 2 on code 011; class 2: 1 of 2
    z = np.array([
        [1, -1, 2], [3, -2, 1], [0.5, -1, 0.1], [-1, -1, 1],   # class 0
        [-1, 2, 2], [-3, 1, 5],                                # class 1
        [1, 1, 1], [-1, -1, -1],                               # class 2
    ])
    pred = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    per = binary.same_encoding_fraction(z, pred, per_class=True)
    np.testing.assert_allclose(per.to_numpy(), [3 / 4, 1.0, 1 / 2])
    assert binary.same_encoding_fraction(z, pred) == pytest.approx((0.75 + 1 + 0.5) / 3)
    # a 0/1 code array gives the same answer as the floats it came from
    assert binary.same_encoding_fraction((z > 0).astype(int), pred) == pytest.approx(0.75)


def test_same_encoding_fraction_is_one_on_hypercube_vertices(rng):
    vertices = np.array([[1, 1, -1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]], dtype=float)
    y = rng.integers(0, 3, 300)
    z = vertices[y] * rng.uniform(0.5, 2.0, (300, 4))  # magnitudes vary, signs do not
    assert binary.same_encoding_fraction(z, y) == 1.0
    z[0] = -z[0]
    assert binary.same_encoding_fraction(z, y) < 1.0


def test_same_encoding_fraction_rejects_mismatched_predictions():
    with pytest.raises(ValueError, match="predicted"):
        binary.same_encoding_fraction(np.zeros((4, 2)), np.zeros(3))


# --------------------------------------------------------------------- bimodality


def test_bimodality_separates_two_peaks_from_one(rng):
    two = np.concatenate([rng.normal(-3, 0.5, 500), rng.normal(3, 0.5, 500)])
    one = rng.normal(0, 1, 1000)
    sep = binary.bimodality(np.stack([two, one, np.zeros(1000)], axis=1))
    assert sep[0] == pytest.approx(6 / 0.5, rel=0.1)  # |μ1−μ2| / mean σ = 12
    assert sep[1] < 2.5
    assert sep[2] == 0.0
    # a ReLU-like point mass at 0 next to a spread mode stays finite and moderate
    spike = np.concatenate([np.zeros(500), rng.normal(3, 1, 500)])
    assert 2.0 < binary.bimodality(spike[:, None])[0] < 10.0


def test_latent_histograms_count_every_example(rng):
    z = rng.normal(size=(200, 3))
    y = rng.integers(0, 4, 200)
    h = binary.latent_histograms(z, bins=10)
    assert h.groupby("dim")["count"].sum().tolist() == [200, 200, 200]
    hc = binary.latent_histograms(z, bins=10, labels=y)
    per = hc.groupby(["dim", "label"])["count"].sum().unstack()
    np.testing.assert_array_equal(per.loc[0].to_numpy(), np.bincount(y))


# --------------------------------------------------------------------- neural collapse


def test_nc1_is_zero_on_perfectly_collapsed_features(rng):
    means = rng.normal(size=(5, 8))
    y = np.repeat(np.arange(5), 20)
    nc = binary.neural_collapse(means[y], y)
    assert nc["nc1"] == pytest.approx(0.0, abs=1e-12)
    noisy = binary.neural_collapse(means[y] + 0.3 * rng.normal(size=(100, 8)), y)
    assert noisy["nc1"] > 0.01


def test_equinorm_and_equiangularity_zero_on_simplex_etf():
    c = 4
    m = np.eye(c) - 1.0 / c  # simplex ETF centred at 0, equal norms, cos = −1/(C−1)
    y = np.repeat(np.arange(c), 3)
    nc = binary.neural_collapse(m[y] * 5.0, y)
    assert nc["equinorm"] == pytest.approx(0.0, abs=1e-12)
    assert nc["equiangularity"] == pytest.approx(0.0, abs=1e-12)
    assert nc["max_angle"] == pytest.approx(0.0, abs=1e-12)
    stretched = m.copy()
    stretched[0] *= 3
    assert binary.neural_collapse(stretched[y], y)["equinorm"] > 0.1


def test_nc1_matches_direct_formula(rng):
    y = np.repeat(np.arange(3), 30)
    z = rng.normal(size=(90, 4)) + 2 * np.eye(4)[y]
    mu_g = z.mean(0)
    sw = np.zeros((4, 4))
    sb = np.zeros((4, 4))
    for k in range(3):
        mk = z[y == k].mean(0)
        for row in z[y == k]:
            sw += np.outer(row - mk, row - mk) / 90
        sb += np.outer(mk - mu_g, mk - mu_g) / 3
    expected = np.trace(sw @ np.linalg.pinv(sb)) / 3
    assert binary.neural_collapse(z, y)["nc1"] == pytest.approx(expected, rel=1e-10)


# --------------------------------------------------------------------- robustness


def _linear_model(rng, d=6, c=4):
    lin = nn.Linear(d, c).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(rng.normal(size=(c, d))))
        lin.bias.copy_(torch.as_tensor(rng.normal(size=c)))
    return lin.float()


def test_deepfool_on_linear_classifier_equals_distance_to_boundary(rng):
    model = _linear_model(rng)
    x = torch.as_tensor(rng.normal(size=(40, 6)), dtype=torch.float32)
    w = model.weight.detach().double().numpy()
    b = model.bias.detach().double().numpy()
    xs = x.double().numpy()
    f = xs @ w.T + b
    k0 = f.argmax(1)
    expected = np.empty(len(xs))
    for i in range(len(xs)):
        d = [abs(f[i, k] - f[i, k0[i]]) / np.linalg.norm(w[k] - w[k0[i]])
             for k in range(4) if k != k0[i]]
        expected[i] = min(d)
    r, flipped, iters = binary.deepfool(model, x, overshoot=0.0, batch_size=16)
    assert flipped.all()
    np.testing.assert_allclose(r.norm(dim=1).double().numpy(), expected, rtol=1e-3, atol=1e-3)
    # the step is orthogonal to the boundary: r is parallel to w_l − w_k0
    assert (iters <= 2).all()
    # with a small overshoot the label changes at x + r
    r2, flipped2, _ = binary.deepfool(model, x, overshoot=0.02)
    with torch.no_grad():
        assert (model(x + r2).argmax(1).numpy() != k0).all()
    rob = binary.deepfool_robustness(model, x, overshoot=0.0)
    ratio = expected / np.linalg.norm(xs, axis=1)
    assert rob["deepfool_rho"] == pytest.approx(ratio.mean(), rel=2e-3)
    assert rob["deepfool_flipped"] == 1.0


def test_deepfool_checks_the_label_after_its_last_step():
    # a linear model is fooled in one step; with max_iter=1 that step is the last one, and
    # before the fix its flip was never looked at (0 % flipped, rho NaN)
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x = torch.randn(100, 5)
    r, flipped, iters = binary.deepfool(model, x, max_iter=1)
    with torch.no_grad():
        truly = (model(x + r).argmax(1) != model(x).argmax(1)).numpy()
    assert truly.all()
    np.testing.assert_array_equal(flipped, truly)
    assert (iters == 1).all()
    rob = binary.deepfool_robustness(model, x, max_iter=1)
    assert rob["deepfool_flipped"] == 1.0 and np.isfinite(rob["deepfool_rho"])
    # no step at all: nothing can have flipped
    _, none_flipped, _ = binary.deepfool(model, x, max_iter=0)
    assert not none_flipped.any()


def test_fgsm_on_linear_binary_classifier_matches_closed_form(rng):
    # two classes: logit margin m(x) = (w1 − w0)·x + (b1 − b0); FGSM moves it by −ε‖w1−w0‖₁
    model = _linear_model(rng, d=5, c=2)
    x = torch.as_tensor(rng.normal(size=(200, 5)), dtype=torch.float32)
    w = (model.weight[1] - model.weight[0]).detach().double().numpy()
    b = float((model.bias[1] - model.bias[0]).detach())
    margin = x.double().numpy() @ w + b
    y = torch.as_tensor((margin > 0).astype(int))
    eps = 0.1
    survive = np.abs(margin) > eps * np.abs(w).sum()
    assert binary.fgsm_accuracy(model, x, y, eps) == pytest.approx(survive.mean())
    assert binary.pgd_accuracy(model, x, y, eps, steps=5) == pytest.approx(survive.mean())
    assert binary.fgsm_accuracy(model, x, y, 0.0) == 1.0


def test_pgd_respects_clip_and_is_no_stronger_than_clean(rng):
    model = _linear_model(rng, d=5, c=3)
    x = torch.rand(100, 5)
    with torch.no_grad():
        y = model(x).argmax(1)
    acc = binary.pgd_accuracy(model, x, y, 0.05, clip=(0.0, 1.0), seed=1)
    assert 0.0 <= acc <= 1.0
    assert binary.pgd_accuracy(model, x, y, 0.5) <= acc


# --------------------------------------------------------------------- reliability


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_equals_sklearn(rng, ties):
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y
    if ties:
        s = np.round(s, 1)
    assert binary.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_single_class_is_nan():
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert np.isnan(binary.auroc(np.ones(5), np.arange(5)))


def test_mahalanobis_distance_matches_scipy(rng):
    from scipy.spatial.distance import mahalanobis

    z = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    y = rng.integers(0, 2, 200)
    g = binary.fit_class_gaussians(z, y, shrinkage=0.0)
    q = rng.normal(size=(10, 3))
    pred = rng.integers(0, 2, 10)
    got = binary.mahalanobis_scores(g, q, pred)
    for i in range(10):
        zk = z[y == pred[i]]
        vi = np.linalg.inv(np.cov(zk, rowvar=False, bias=True))
        assert got[i] == pytest.approx(mahalanobis(q[i], zk.mean(0), vi), rel=1e-8)


def test_mahalanobis_auroc_separates_far_errors(rng):
    centres = np.array([[4.0, 0.0], [-4.0, 0.0]])
    y_tr = rng.integers(0, 2, 400)
    z_tr = centres[y_tr] + rng.normal(size=(400, 2))
    y_te = rng.integers(0, 2, 200)
    z_te = centres[y_te] + rng.normal(size=(200, 2))
    pred_te = y_te.copy()
    wrong = np.arange(20)
    pred_te[wrong] = 1 - y_te[wrong]
    z_te[wrong] += np.array([0.0, 8.0])  # the misclassified ones lie far from every class
    a = binary.mahalanobis_auroc(z_tr, y_tr, y_tr, z_te, y_te, pred_te)
    dist = binary.mahalanobis_scores(binary.fit_class_gaussians(z_tr, y_tr), z_te, pred_te)
    assert a == pytest.approx(roc_auc_score(y_te == pred_te, -dist))
    assert a > 0.95


# --------------------------------------------------------------------- hash view


def test_hash_view_binary_codes_are_redundant_within_class(rng):
    vertices = np.array([[1, 1, -1], [-1, 1, 1], [1, -1, 1], [-1, -1, -1]], dtype=float)
    y_tr, y_te = rng.integers(0, 4, 200), rng.integers(0, 4, 80)
    z_tr = vertices[y_tr] * rng.uniform(0.5, 1.5, (200, 3))
    z_te = vertices[y_te] * rng.uniform(0.5, 1.5, (80, 3))
    rec = binary.hash_view(z_tr, y_tr, z_te, y_te, kmeans_n_init=2)
    assert rec["n_bits"] == 3
    assert rec["redundancy_train"] == pytest.approx(1 - 4 / 200)
    assert rec["within_class_redundancy_test"] == pytest.approx(
        np.mean([1 - 1 / (y_te == k).sum() for k in range(4)]))
    assert rec["knn_test"] == 1.0


# --------------------------------------------------------------------- models and loss


def test_bottleneck_variants_shapes():
    x = torch.randn(7, 1, 8, 8)
    for kind, d in (("linear", 4), ("nonlinear", 4), ("none", 32)):
        seed_everything(0)
        m = build_model("bottleneck", (1, 8, 8), 10, penultimate=kind, latent_dim=4, width=32)
        assert isinstance(m, BottleneckNet)
        logits, z = m.forward_latent(x)
        assert logits.shape == (7, 10) and z.shape == (7, d)
        if kind == "nonlinear":
            assert (z >= 0).all()
        torch.testing.assert_close(m(x), logits)
    with pytest.raises(ValueError, match="penultimate"):
        build_model("bottleneck", (1, 8, 8), 10, penultimate="sigmoid")


def test_split_head_finds_last_linear():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3))
    backbone, dim = split_head(net, torch.zeros(2, 3, 4))
    assert dim == 7 and isinstance(backbone[3], nn.Identity)
    with pytest.raises(ValueError, match="no nn.Linear"):
        split_head(nn.Sequential(nn.Flatten()), torch.zeros(2, 3))


def test_compression_gamma_schedule():
    loss = CompressionLoss(gamma0=0.01, ratio=1.5, cap=0.02)
    assert loss.gamma(1) == pytest.approx(0.01)
    assert loss.gamma(2) == pytest.approx(0.015)
    assert loss.gamma(3) == pytest.approx(0.02)  # capped from 0.0225
    m = BottleneckNet(nn.Flatten(), 3, 2, latent_dim=2)
    with torch.no_grad():
        m.penultimate.weight.copy_(torch.eye(2, 3))
        m.penultimate.bias.zero_()
    out = m(torch.tensor([[1.0, 2.0, 5.0], [3.0, 0.0, 0.0]]))
    # mean(z²) = (1 + 4 + 9 + 0) / 4
    assert float(loss(m, out, 1).detach()) == pytest.approx(0.01 * 14 / 4)
    with pytest.raises(ValueError, match="last_latent"):
        loss(nn.Linear(2, 2), out, 1)


def _train_bottleneck(x, y, extra_loss):
    seed_everything(3)
    m = build_model("bottleneck", (1, 8, 8), 10, penultimate="linear", latent_dim=4, width=16)
    cfg = TrainConfig(epochs=3, lr=1e-2, batch_size=32, seed=3, device="cpu")
    res = train(m, x, y, cfg, extra_loss=extra_loss)
    return m, res


def test_compression_loss_at_gamma_zero_reproduces_linear_baseline():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (200,), generator=g)
    base, base_res = _train_bottleneck(x, y, None)
    zero, zero_res = _train_bottleneck(x, y, CompressionLoss(gamma0=0.0))
    for (k, a), (_, b) in zip(base.state_dict().items(), zero.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert (zero_res.history["train_extra"] == 0).all()
    np.testing.assert_array_equal(base_res.history["train_loss"], zero_res.history["train_ce"])
    # and the loss does act when γ > 0
    comp, comp_res = _train_bottleneck(x, y, CompressionLoss(gamma0=1.0))
    assert not torch.equal(comp.head.weight, base.head.weight)
    assert (comp_res.history["train_extra"] > 0).all()
