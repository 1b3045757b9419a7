import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from acthash.core.capture import neural_codes
from acthash.errors import InputError, NotPiecewiseLinearError, ResourceError
from acthash.geometry import grid_codes, plane_partition

SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)


def _mlp(seed=0, sizes=(5, 12, 12, 3)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double().eval()


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        return x + self.act(self.bn(self.conv(x)))


def _cnn():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU6(), _Block(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(2, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 5), nn.PReLU(),
        nn.Linear(5, 3),
    ).double()
    with torch.no_grad():
        bn = net[2].bn
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _rows(codes):
    return {r.tobytes() for r in codes}


def test_three_lines_give_seven_hand_counted_regions():
    # units x, y and x + y - 0.5 in the square [-1, 1]^2: the two axes make 4 quadrants and
    # the third line crosses all but the lower-left one -> 7 regions
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1]]))
        net[0].bias.copy_(torch.tensor([0.0, 0, -0.5]))
    part = plane_partition(net, plane=(np.zeros(2), np.array([1.0, 0]), np.array([0, 1.0]),
                                       SQUARE))
    assert part.n_regions == 7 and part.counts == [7]
    assert part.areas().sum() == pytest.approx(4.0, abs=1e-12)
    # the triangle x > 0, y > 0, x + y < 0.5 has area 1/8
    assert np.sort(part.areas())[0] == pytest.approx(0.125, abs=1e-12)
    # vertices: 4 corners, the centre, 4 axis ends, 2 ends of the third line, 2 of its axis
    # crossings = 13; E = V + F - 2 (Euler, one component) = 19 with F = 7 regions + the outer face
    assert part.euler() == {"V": 13, "E": 19, "F": 8, "components": 1, "ok": True}


def test_mlp_partition_checks_and_codes():
    net = _mlp()
    anchors = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    part = plane_partition(net, anchors)
    assert part.counts[-1] == part.n_regions and part.counts == sorted(part.counts)
    assert part.n_regions > 50
    assert part.euler()["ok"]
    assert part.checks["affine_max_rel_error"] < 1e-9
    # the anchors are the plane points with these coordinates
    back = part.to_input(part.anchors)
    np.testing.assert_allclose(back, anchors.numpy(), atol=1e-12)
    # codes = acthash's capture bits at the interior points
    x = torch.as_tensor(part.to_input(part.interior))
    np.testing.assert_array_equal(part.codes, neural_codes(net, x).packed)
    # output map = forward pass at the vertices pulled into the region
    for r in range(0, part.n_regions, 7):
        q = part.regions[r]
        p = 0.9 * q + 0.1 * q.mean(axis=0)
        y = net(torch.as_tensor(part.to_input(p))).detach().numpy()
        np.testing.assert_allclose(p @ part.out_jac[r].T + part.out_bias[r], y, atol=1e-9)
    # the areas tile the square
    side = np.linalg.norm(part.polygon[1] - part.polygon[0])
    assert part.areas().sum() == pytest.approx(side**2)


def test_grid_count_converges_from_below():
    net = _mlp(seed=2, sizes=(4, 10, 10, 2))
    part = plane_partition(net, torch.randn(3, 4, dtype=torch.float64))
    regions = _rows(part.codes)
    counts = []
    for n in (20, 80, 320):
        g = grid_codes(part, net, n)
        seen = _rows(g)
        assert seen <= regions  # every grid code is one of the regions' codes
        counts.append(len(seen))
    assert counts == sorted(counts) and counts[0] < counts[-1] <= part.n_regions
    assert counts[-1] >= 0.9 * part.n_regions
    # and each grid point lies in the region with its code
    lo, hi = part.polygon.min(axis=0), part.polygon.max(axis=0)
    st = np.random.default_rng(0).uniform(lo, hi, size=(300, 2))
    idx = part.locate(st)
    codes = neural_codes(net, torch.as_tensor(part.to_input(st))).packed
    np.testing.assert_array_equal(part.codes[idx], codes)


def test_conv_bn_pool_residual_and_two_kink_units():
    net = _cnn()
    anchors = torch.rand(3, 1, 4, 4, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0)) * 4 - 2
    part = plane_partition(net, anchors, margin=0.5)
    assert part.n_bits == 2 * 8 + 8 + 2 * 6 + 5  # ReLU6 and Hardtanh have two kinks
    assert part.n_regions > 20 and part.euler()["ok"]
    x = torch.as_tensor(part.to_input(part.interior))
    np.testing.assert_array_equal(part.codes, neural_codes(net, x).packed)
    assert _rows(grid_codes(part, net, 120)) <= _rows(part.codes)


def test_decision_boundary_lies_on_argmax_ties():
    net = _mlp(seed=4, sizes=(3, 16, 4))
    part = plane_partition(net, torch.randn(3, 3, dtype=torch.float64) * 3)
    assert len(part.boundary) > 0
    mid = part.boundary.mean(axis=1)
    y = np.sort(net(torch.as_tensor(part.to_input(mid))).detach().numpy(), axis=1)
    np.testing.assert_allclose(y[:, -1], y[:, -2], atol=1e-9)
    # and the argmax differs on the two sides of each segment
    d = part.boundary[:, 1] - part.boundary[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.linalg.norm(d, axis=1)[:, None]
    h = 1e-6
    a = net(torch.as_tensor(part.to_input(mid + h * normal))).argmax(1)
    b = net(torch.as_tensor(part.to_input(mid - h * normal))).argmax(1)
    assert (a != b).all()


class _Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):
        return F.softmax(F.relu(self.lin(x)), dim=1)


def test_bad_inputs_are_refused():
    x = torch.randn(3, 3, dtype=torch.float64)
    gelu = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.GELU()).double()
    with pytest.raises(NotPiecewiseLinearError, match=r"module 3 \(GELU\)"):
        plane_partition(gelu, x)
    with pytest.raises(NotPiecewiseLinearError, match="softmax"):
        plane_partition(_Softmaxed().double(), x)
    line = torch.stack([x[0], 2 * x[0], 3 * x[0]])
    with pytest.raises(InputError, match="collinear"):
        plane_partition(_mlp(sizes=(3, 4, 2)), line)
    with pytest.raises(ResourceError, match="max_regions=10"):
        plane_partition(_mlp(sizes=(3, 30, 2)), x, max_regions=10)
    with pytest.raises(InputError, match="convex"):
        plane_partition(_mlp(sizes=(3, 4, 2)), plane=(np.zeros(3), np.eye(3)[0], np.eye(3)[1],
                                                      [[0, 0], [1, 1], [1, 0], [0, 1]]))


def test_figures_draw_one_patch_per_region():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acthash.geometry.plane_plots import (
        anchor_codes,
        plot_plane_hamming,
        plot_plane_regions,
        plot_plane_strip,
    )

    net = _mlp(sizes=(4, 8, 3))
    anchors = torch.randn(3, 4, dtype=torch.float64)
    part = plane_partition(net, anchors)
    fig, ax = plt.subplots()
    plot_plane_regions(part, ax=ax)
    assert len(ax.collections[0].get_paths()) == part.n_regions
    assert ax.get_title() == f"{part.n_regions} regions"
    # anchor codes are the capture codes of the anchors themselves
    np.testing.assert_array_equal(anchor_codes(part), neural_codes(net, anchors).packed)
    fig2, ax2 = plt.subplots()
    plot_plane_hamming(part, 1, ax=ax2)
    face = ax2.collections[0].get_facecolors()
    own = part.hamming_to(anchor_codes(part)[1]) == 0
    assert own.sum() >= 1 and len(np.unique(face[own], axis=0)) == 1
    axes = plot_plane_strip([part, part], ["epoch 0", "epoch 1"])
    assert len(axes) == 2 and axes[1].get_title().startswith("epoch 1")
    plt.close("all")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_partition_equals_cpu():
    net = _mlp(seed=5, sizes=(4, 10, 10, 3))
    anchors = torch.randn(3, 4, dtype=torch.float64)
    cpu = plane_partition(net, anchors)
    gpu = plane_partition(net.cuda(), anchors.cuda())
    assert gpu.n_regions == cpu.n_regions and gpu.euler()["ok"]
    np.testing.assert_array_equal(np.sort(cpu.codes, axis=0), np.sort(gpu.codes, axis=0))
