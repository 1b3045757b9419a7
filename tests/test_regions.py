import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from acthash.core.capture import neural_codes
from acthash.geometry.regions import (
    NotPiecewiseLinearError,
    preactivations,
    region_segment,
    regions_between,
    sampled_regions_between,
    sampled_segment,
)


def _one_hidden(w, b, act=None):
    w = torch.as_tensor(w, dtype=torch.float32)
    net = nn.Sequential(nn.Linear(w.shape[1], w.shape[0]), act or nn.ReLU(),
                        nn.Linear(w.shape[0], 2))
    with torch.no_grad():
        net[0].weight.copy_(w)
        net[0].bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    return net.eval()


def test_segment_matches_hand_computed_interval():
    # z1 = t - 1 (ends at t=1), z2 = 2t + 0.5 (ends at t=-0.25), z3 = 3t - 4.5 (t=1.5)
    net = _one_hidden([[1, 0], [0, 1], [1, 1]], [-1.0, 0.5, -4.5])
    x = torch.zeros(1, 2)
    u = torch.tensor([[1.0, 2.0]])
    seg = region_segment(net, x, u, normalize=False)
    assert seg.t_hi[0] == pytest.approx(1.0, abs=1e-12)
    assert seg.t_lo[0] == pytest.approx(-0.25, abs=1e-12)
    assert seg.length[0] == pytest.approx(1.25 * math.sqrt(5), abs=1e-12)
    assert (seg.layer_hi[0], seg.unit_hi[0]) == ("1", 0)
    assert (seg.layer_lo[0], seg.unit_lo[0]) == ("1", 1)
    # with a unit direction, t is distance: ends scale by |u|
    seg_n = region_segment(net, x, u)
    assert seg_n.t_hi[0] == pytest.approx(math.sqrt(5), abs=1e-12)
    assert seg_n.length[0] == pytest.approx(seg.length[0], abs=1e-12)


def test_segment_unbounded_side_is_clipped_to_t_max():
    net = _one_hidden([[1, 0], [0, 1], [1, 0]], [-1.0, 0.5, -3.0])
    seg = region_segment(net, torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), t_max=10.0)
    assert seg.t_hi[0] == pytest.approx(1.0)
    assert seg.t_lo[0] == -10.0 and seg.bit_lo[0] == -1 and seg.layer_lo[0] == ""
    seg_inf = region_segment(net, torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert seg_inf.t_lo[0] == -math.inf


def test_segment_random_one_hidden_layer_against_numpy_formula():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).eval()
    x, u = torch.randn(20, 5), torch.randn(20, 5)
    seg = region_segment(net, x, u, normalize=False)
    w = net[0].weight.detach().double().numpy()
    b = net[0].bias.detach().double().numpy()
    xd, ud = x.double().numpy(), u.double().numpy()
    tau = -(xd @ w.T + b) / (ud @ w.T)  # (20, 7) crossing of each unit
    hi = np.where(tau > 0, tau, np.inf).min(1)
    lo = np.where(tau < 0, tau, -np.inf).max(1)
    np.testing.assert_allclose(seg.t_hi, hi, rtol=1e-9)
    np.testing.assert_allclose(seg.t_lo, lo, rtol=1e-9)
    np.testing.assert_array_equal(seg.unit_hi, np.where(tau > 0, tau, np.inf).argmin(1))


def test_two_kink_unit_ends_at_either_kink():
    net = nn.Sequential(nn.Linear(1, 1), nn.Hardtanh(-1.0, 2.0)).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
    seg = region_segment(net, torch.zeros(1, 1), torch.ones(1, 1))
    assert seg.t_hi[0] == pytest.approx(2.0) and seg.t_lo[0] == pytest.approx(-1.0)
    # kink-major bits: bit 0 is "> min_val", bit 1 is "> max_val" (as in NeuralCodes)
    assert seg.bit_lo[0] == 0 and seg.bit_hi[0] == 1


def _codes(net, pts):
    # float64 so that points 1e-9 apart stay apart
    return neural_codes(copy.deepcopy(net).double(), pts.double()).packed


def test_crossings_agree_with_dense_sampled_walk():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 12), nn.LeakyReLU(0.1),
                        nn.Linear(12, 3)).eval()
    a, b = torch.randn(6, 4), torch.randn(6, 4) * 2
    cr = regions_between(net, a, b)
    assert cr.n_regions.sum() > 30
    # a walk with a step below the narrowest region finds the same number of regions
    gaps = np.concatenate([np.diff(np.concatenate([[0.0], t, [1.0]])) for t in cr.t])
    step = min(1e-3, gaps.min() / 2)
    np.testing.assert_array_equal(cr.n_regions, sampled_regions_between(net, a, b, step=step))
    # ... and a coarse walk misses some
    assert sampled_regions_between(net, a, b, step=0.2).sum() < cr.n_regions.sum()
    for i in range(len(a)):
        t = cr.t[i]
        assert np.all(np.diff(t) > 0) and t.min() > 0 and t.max() < 1
        # the code changes across every crossing and is constant between two crossings
        pts = cr.points(a.double(), b.double(), i)
        d = (b[i] - a[i]).double()
        before, after = _codes(net, pts - 1e-9 * d), _codes(net, pts + 1e-9 * d)
        assert (before != after).any(axis=1).all()
        mids = np.concatenate([[0.0], t, [1.0]])
        mids = (mids[1:] + mids[:-1]) / 2
        mid_codes = _codes(net, a[i].double() + torch.as_tensor(mids)[:, None] * d)
        np.testing.assert_array_equal(mid_codes[:-1], before)
        np.testing.assert_array_equal(mid_codes[1:], after)
    frame = cr.to_frame()
    assert len(frame) == int((cr.n_regions - 1).sum())


class _ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class _ResNet(nn.Module):
    def __init__(self, pool="avg"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU6())
        self.block = _ResBlock(3)
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)
        self.head = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.block(self.stem(x))), 1))


def _randomize_bn(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def test_residual_block_with_batchnorm_and_conv():
    torch.manual_seed(0)
    net = _randomize_bn(_ResNet())
    x, u = torch.randn(4, 1, 6, 6), torch.randn(4, 1, 6, 6)
    seg = region_segment(net, x, u)
    assert np.all(seg.t_hi > 0) and np.all(seg.t_lo < 0)
    u64 = u.double()
    un = u64 / u64.reshape(4, -1).norm(dim=1).view(-1, 1, 1, 1)
    for i in range(4):
        base = _codes(net, x[i : i + 1])
        for t, sign in ((seg.t_hi[i], 1), (seg.t_lo[i], -1)):
            inside = _codes(net, x[i : i + 1].double() + (t - sign * 1e-9) * un[i].double())
            outside = _codes(net, x[i : i + 1].double() + (t + sign * 1e-9) * un[i].double())
            np.testing.assert_array_equal(inside, base)
            assert (outside != base).any()
    approx = sampled_segment(net, x, u, step=1e-3, t_max=1)
    np.testing.assert_array_less(approx.t_hi, seg.t_hi + 1e-9)
    np.testing.assert_array_less(np.minimum(seg.t_hi, 1) - approx.t_hi, 1e-3 + 1e-9)
    torch.manual_seed(5)
    a = torch.randn(2, 1, 6, 6)
    b = a + 0.3 * torch.randn(2, 1, 6, 6)
    cr = regions_between(net, a, b)
    assert cr.n_regions.sum() > 10
    gaps = np.concatenate([np.diff(np.concatenate([[0.0], t, [1.0]])) for t in cr.t])
    step = min(1e-3, gaps.min() / 2)
    np.testing.assert_array_equal(cr.n_regions, sampled_regions_between(net, a, b, step=step))
    names = set(preactivations(net, x))
    assert {"stem.2", "block:relu", "block:relu#2"} <= names


def test_max_pooling_is_rejected_with_a_pointer_to_the_sampled_walk():
    net = _randomize_bn(_ResNet(pool="max"))
    x = torch.randn(2, 1, 6, 6)
    with pytest.raises(NotPiecewiseLinearError, match="max pooling.*sampled"):
        region_segment(net, x, torch.randn_like(x))
    assert sampled_segment(net, x, torch.randn_like(x), step=0.1).length.shape == (2,)


def test_smooth_operations_before_a_relu_are_rejected():
    gelu_net = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 4), nn.ReLU()).eval()
    with pytest.raises(NotPiecewiseLinearError, match="gelu"):
        region_segment(gelu_net, torch.randn(2, 3), torch.randn(2, 3))

    class Square(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            return torch.relu(self.b(h * h))

    with pytest.raises(NotPiecewiseLinearError, match="not linear inside a region"):
        region_segment(Square().eval(), torch.randn(3, 3), torch.randn(3, 3))
    # a smooth function after the last ReLU-like unit does not matter
    tail = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(dim=1)).eval()
    assert np.isfinite(region_segment(tail, torch.randn(2, 3), torch.randn(2, 3),
                                      t_max=50).length).all()


def test_bad_inputs_give_clear_errors():
    net = _one_hidden([[1, 0]], [0.0])
    with pytest.raises(ValueError, match="zero"):
        region_segment(net, torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        region_segment(net, torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="batch dimension"):
        regions_between(net, torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="step"):
        sampled_regions_between(net, torch.zeros(1, 2), torch.ones(1, 2), step=0)


def test_sampled_segment_brackets_exact_interval():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 2)).eval()
    x, u = torch.randn(8, 3), torch.randn(8, 3)
    exact = region_segment(net, x, u, t_max=5)
    approx = sampled_segment(net, x, u, step=0.05, t_max=5)
    assert np.all(approx.t_hi <= exact.t_hi + 1e-9) and np.all(exact.t_hi - approx.t_hi < 0.05)
    assert np.all(approx.t_lo >= exact.t_lo - 1e-9) and np.all(approx.t_lo - exact.t_lo < 0.05)


def test_forward_ad_and_jvp_engines_agree():
    torch.manual_seed(4)
    net = _randomize_bn(_ResNet())
    x, u = torch.randn(3, 1, 6, 6), torch.randn(3, 1, 6, 6)
    s1 = region_segment(net, x, u, engine="forward_ad")
    s2 = region_segment(net, x, u, engine="jvp")
    np.testing.assert_allclose(s1.t_hi, s2.t_hi, rtol=1e-12)
    np.testing.assert_allclose(s1.t_lo, s2.t_lo, rtol=1e-12)
    c1 = regions_between(net, x, x + 0.2 * u, engine="forward_ad")
    c2 = regions_between(net, x, x + 0.2 * u, engine="jvp")
    np.testing.assert_array_equal(c1.n_regions, c2.n_regions)
    with pytest.raises(ValueError, match="engine"):
        region_segment(net, x, u, engine="reverse")
