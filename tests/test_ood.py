"""acthash.ood: detection metrics against scikit-learn, detectors on hand-made and small
trained models, memorisation scores on a hand-made case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import nn

import acthash
from acthash import ood
from acthash.errors import ConfigError, InputError


def _scores(seed, n_in=60, n_out=45, ties=False):
    rng = np.random.default_rng(seed)
    s_in, s_out = rng.normal(0, 1, n_in), rng.normal(0.8, 1, n_out)
    if ties:
        s_in, s_out = np.round(s_in), np.round(s_out)
    return s_in, s_out


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, True)])
def test_metrics_match_scikit_learn(seed, ties):
    s_in, s_out = _scores(seed, ties=ties)
    s = np.r_[s_in, s_out]
    is_out = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    m = ood.ood_metrics(s_in, s_out)
    assert m["auroc"] == pytest.approx(roc_auc_score(is_out, s))
    assert m["aupr_out"] == pytest.approx(average_precision_score(is_out, s))
    assert m["aupr_in"] == pytest.approx(average_precision_score(1 - is_out, -s))
    fpr, tpr, _ = roc_curve(1 - is_out, -s, drop_intermediate=False)  # ID positive
    assert m["fpr95"] == pytest.approx(fpr[np.searchsorted(tpr, 0.95 - 1e-12)])
    assert ood.auroc is acthash.binary.auroc  # one AUROC serves the binary study and this


def test_fpr_at_tpr_by_hand():
    s_in = np.arange(1, 21, dtype=float)  # 20 ID scores 1..20: 95 % accepted at t = 19
    assert ood.fpr_at_tpr(s_in, [18.5, 19.0, 19.5, 30.0]) == 0.5  # 18.5 and 19 (tie) accepted
    assert ood.fpr_at_tpr(s_in, [100.0]) == 0.0
    assert ood.auroc_ood([0, 1], [2, 3]) == 1.0 and ood.auroc_ood([2, 3], [0, 1]) == 0.0
    with pytest.raises(InputError, match="NaN"):
        ood.auroc_ood([0, np.nan], [1])


class _Fixed(nn.Module):
    """Logits = x itself through an identity Linear head, ReLU features = relu(x)."""

    def __init__(self, d):
        super().__init__()
        self.head = nn.Linear(d, d, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(d))

    def forward(self, x):
        return self.head(torch.relu(x))


def test_logit_baselines_by_hand():
    model = _Fixed(3)
    x = torch.tensor([[5.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    msp = ood.make_detector("msp").fit(model, x).score(x)
    p = np.exp([5, 0, 0]) / np.exp([5, 0, 0]).sum()
    assert msp == pytest.approx([-p[0], -1 / 3, -1 / 3])
    energy = ood.make_detector("energy").fit(model, x).score(x)
    assert energy == pytest.approx([-np.log(np.exp(5) + 2), -(1 + np.log(3)), -np.log(3)])


def test_hamming_knn_and_coverage_by_hand():
    model = _Fixed(4)
    # training codes (units on): 1100, 1100, 1110; query 0011 is 3/4 away from the nearest
    x_tr = torch.tensor([[1, 1, -1, -1], [1, 1, -1, -1], [1, 1, 1, -1.0]])
    y_tr = np.array([0, 0, 1])
    q = torch.tensor([[1, 1, -1, -1], [-1, -1, 1, 1.0]])
    det = ood.HammingKNN(k=1).fit(model, x_tr)
    assert det.score(q).tolist() == [0.0, 3.0]
    assert ood.HammingKNN(k=3).fit(model, x_tr).score(q).tolist() == [1.0, 4.0]
    # per class: the logits (relu(x)) predict class 0 for the first query, its own code;
    # class 2 for the second, which has no training code: the largest distance, 4 bits
    per = ood.HammingKNN(k=1, per_class=True).fit(model, (x_tr, y_tr))
    assert per.score(q).tolist() == [0.0, 4.0]
    q1 = torch.tensor([[0.5, 0.5, 2.0, -1.0]])  # code 1110, predicted class 2: no codes
    q2 = torch.tensor([[0.5, 2.0, -1.0, -1.0]])  # code 1100, predicted class 1 (code 1110)
    assert per.score(q1).tolist() == [4.0] and det.score(q1).tolist() == [0.0]
    assert per.score(q2).tolist() == [1.0] and det.score(q2).tolist() == [0.0]
    # coverage, r = 0.5: unit 0 is on in all training codes (off-state freq 0 -> kappa 0),
    # unit 2 on 1/3 (kappa on = 2/3, off = 1), unit 3 never on
    cov = ood.Coverage(r=0.5).fit(model, x_tr).score(q)
    assert cov == pytest.approx([1 - (1 + 1 + 1 + 1) / 4, 1 - (0 + 0 + 2 / 3 + 0) / 4])
    with pytest.raises(InputError, match="labels"):
        ood.HammingKNN(per_class=True).fit(model, x_tr)
    with pytest.raises(ConfigError, match="aggregate"):
        ood.HammingKNN(aggregate="median")
    with pytest.raises(InputError, match="not fitted"):
        ood.MSP().score(q)


@pytest.fixture(scope="module")
def digits_model():
    from acthash.models import MLP
    from acthash.train import TrainConfig, train

    ds = acthash.data.load("digits")
    keep = ds.y_train < 5
    x, y = ds.x_train[keep], ds.y_train[keep]
    torch.manual_seed(0)
    model = MLP(64, widths=[64, 32], n_classes=5)
    train(model, x, y, TrainConfig(epochs=15, seed=0))
    te = ds.y_test < 5
    return model, x, y, ds.x_test[te], ds.x_test[~ds.y_test.lt(5)]


def test_every_detector_separates_far_ood(digits_model):
    model, x, y, x_in, _ = digits_model
    noise = torch.rand(len(x_in), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    # measured on uniform noise: Hamming k-NN 0.99-1.0, Mahalanobis 1.0, feature k-NN 0.97,
    # MSP/energy 0.83-0.84; coverage of the binary states is weak on noise (0.5-0.8) but
    # flags inverted images (0.93-0.99)
    for name in ood.DETECTORS:
        det = ood.make_detector(name).fit(model, (x, y))
        s_in = det.score(x_in)
        assert s_in.shape == (len(x_in),) and np.isfinite(s_in).all(), name
        if name == "coverage":
            assert ood.auroc_ood(s_in, det.score(1 - x_in)) > 0.85
        else:
            floor = 0.75 if name in ("msp", "energy") else 0.9
            assert ood.auroc_ood(s_in, det.score(noise)) > floor, name
    for agg in ("max", "vote"):
        det = ood.HammingKNN(aggregate=agg).fit(model, x)
        assert ood.auroc_ood(det.score(x_in), det.score(noise)) > 0.7, agg


def test_label_isolation_by_hand_and_flip_auroc():
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]])
    codes = acthash.NeuralCodes.from_bits(bits)
    y = np.array([0, 0, 1, 1, 0])  # row 4 sits among the 1s
    dis = ood.label_isolation_scores(codes, y, k=1)
    # nearest other code: 0->1 (same), 1->0 (same; tie with 2 broken by index), 2->1 (diff),
    # 3->4 (diff), 4->3 (diff)
    assert dis.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    near = ood.label_isolation_scores(codes, y, method="nearest-same")
    assert near.tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert ood.flip_auroc(near, [4], n=5) == 1.0
    assert ood.flip_auroc(near, np.array([0, 0, 0, 0, 1], bool)) == 1.0
    loss = ood.per_example_loss(_Fixed(2), torch.tensor([[3.0, 0.0]]), [1])
    assert loss == pytest.approx([np.log(np.exp(3) + 1) - 0.0])
