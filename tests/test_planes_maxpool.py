"""Max pooling in the exact plane partition: windows, hand-counted pool-only planes, and a
small CNN checked against PyTorch's own switches (``return_indices``) and codes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from acthash.core.capture import neural_codes
from acthash.errors import NotPiecewiseLinearError, ResourceError
from acthash.geometry import plane_partition
from acthash.geometry._maxpool import pool_windows

SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)


def test_windows_by_hand():
    w = pool_windows(nn.MaxPool2d(2), (1, 4, 4))
    np.testing.assert_array_equal(w[0], [0, 1, 4, 5])
    np.testing.assert_array_equal(w[3], [10, 11, 14, 15])
    w = pool_windows(nn.MaxPool1d(3, stride=2, padding=1), (2, 5))
    np.testing.assert_array_equal(w, [[-1, 0, 1], [1, 2, 3], [3, 4, -1],
                                      [-1, 5, 6], [6, 7, 8], [8, 9, -1]])
    # adaptive: 5 inputs into 3 windows -> [0, 1], [1, 2, 3], [3, 4]
    w = pool_windows(nn.AdaptiveMaxPool1d(3), (1, 5))
    np.testing.assert_array_equal(w, [[0, 1, -1], [1, 2, 3], [3, 4, -1]])


@pytest.mark.parametrize("module, shape", [
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 7, 6)),
    (nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1)), (1, 7, 8)),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), (1, 6, 6)),
    (nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (3, 5, 5)),
    (nn.MaxPool1d(4, stride=3, padding=2, ceil_mode=True), (2, 11)),
    (nn.MaxPool3d(2, stride=(1, 2, 2)), (1, 3, 4, 5)),
    (nn.AdaptiveMaxPool2d((3, 2)), (2, 7, 5)),
    (nn.AdaptiveMaxPool3d(2), (1, 3, 5, 4)),
])
def test_windows_reproduce_pytorch(module, shape):
    w = pool_windows(module, shape)
    for seed in range(3):
        x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        flat = torch.cat([x.reshape(-1), torch.tensor([-np.inf], dtype=torch.float64)])
        got = flat[torch.as_tensor(np.where(w < 0, len(flat) - 1, w))].max(dim=1).values
        torch.testing.assert_close(got, module(x).reshape(-1), rtol=0, atol=0)


def _plane(u, v):
    return (np.zeros((1, 4)), np.asarray(u, float).reshape(1, 4),
            np.asarray(v, float).reshape(1, 4), SQUARE)


def test_pool_only_planes_by_hand():
    net = nn.Sequential(nn.MaxPool1d(2)).double()
    # x = (s, 0, t, 0): windows max(s, 0) and max(t, 0) switch on the two axes: 4 quadrants
    part = plane_partition(net, plane=_plane([1, 0, 0, 0], [0, 0, 1, 0]))
    assert part.n_regions == 4 and part.counts == [4] and part.layer_kinds == ["maxpool"]
    assert part.n_bits == 0 and part.codes.shape == (4, 0)
    assert part.euler()["ok"]
    np.testing.assert_allclose(part.areas(), 1.0)
    quadrant = {(bool(s > 0), bool(t > 0)) for s, t in part.interior}
    assert len(quadrant) == 4
    for (s, t), sw in zip(part.interior, part.switches, strict=True):
        assert list(sw) == [0 if s > 0 else 1, 2 if t > 0 else 3]
    # x = (s, t, 0, 0): max(s, t) switches on s = t; max(0, 0) is a tie of one function
    part = plane_partition(net, plane=_plane([1, 0, 0, 0], [0, 1, 0, 0]))
    assert part.n_regions == 2
    np.testing.assert_allclose(np.sort(part.areas()), [2.0, 2.0])
    assert set(part.switches[:, 1]) == {2}  # the first entry of the tie, as PyTorch


class _Net(nn.Module):
    def __init__(self, functional=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8, 3)
        self.functional = functional

    def forward(self, x):
        z = torch.relu(self.conv(x))
        z = F.max_pool2d(z, 2) if self.functional else self.pool(z)
        return self.head(z.flatten(1))


def _cnn(seed=0):
    torch.manual_seed(seed)
    return _Net().double().eval()


def _torch_switches(net, x):
    """PyTorch's own switch indices (flat in the pooling input, channel offset added)."""
    with torch.no_grad():
        z = torch.relu(net.conv(x))
        _, idx = F.max_pool2d(z, 2, return_indices=True)
    offset = (torch.arange(z.shape[1]) * z.shape[2] * z.shape[3]).view(1, -1, 1, 1)
    return (idx + offset).reshape(len(x), -1).numpy().astype(np.int32)


def test_cnn_with_max_pooling_matches_pytorch():
    net = _cnn()
    anchors = torch.randn(3, 1, 6, 6, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(1))
    part = plane_partition(net, anchors, margin=0.5)
    assert part.layer_kinds == ["relu", "maxpool"]
    assert part.counts[0] <= part.counts[1] == part.n_regions
    assert part.counts[1] > part.counts[0]  # the switches add regions
    assert part.n_bits == 2 * 4 * 4 and part.switches.shape == (part.n_regions, 8)
    assert part.euler()["ok"] and part.checks["affine_max_rel_error"] < 1e-9
    x = torch.as_tensor(part.to_input(part.interior))
    np.testing.assert_array_equal(part.codes, neural_codes(net, x).packed)
    np.testing.assert_array_equal(part.switches, _torch_switches(net, x))
    # every (code, switches) pair is one region: no two regions share both
    keys = {(c.tobytes(), s.tobytes()) for c, s in zip(part.codes, part.switches, strict=True)}
    assert len(keys) == part.n_regions
    # random points: located region's code and switches are the point's own
    lo, hi = part.polygon.min(axis=0), part.polygon.max(axis=0)
    st = np.random.default_rng(0).uniform(lo, hi, size=(400, 2))
    idx = part.locate(st)
    xs = torch.as_tensor(part.to_input(st))
    np.testing.assert_array_equal(part.codes[idx], neural_codes(net, xs).packed)
    np.testing.assert_array_equal(part.switches[idx], _torch_switches(net, xs))
    # the output map is the forward pass near every region's vertices
    for r in range(part.n_regions):
        q = part.regions[r]
        p = 0.95 * q + 0.05 * q.mean(axis=0)
        y = net(torch.as_tensor(part.to_input(p))).detach().numpy()
        np.testing.assert_allclose(p @ part.out_jac[r].T + part.out_bias[r], y, atol=1e-9)


def test_grid_patterns_converge_to_the_region_count():
    net = _cnn(seed=3)
    anchors = torch.randn(3, 1, 6, 6, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(4))
    part = plane_partition(net, anchors)
    regions = {(c.tobytes(), s.tobytes()) for c, s in zip(part.codes, part.switches, strict=True)}
    lo, hi = part.polygon.min(axis=0), part.polygon.max(axis=0)
    counts = []
    for n in (20, 80, 320):
        g = np.linspace(0, 1, n)
        st = lo + (hi - lo) * np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
        x = torch.as_tensor(part.to_input(st))
        seen = {(c.tobytes(), s.tobytes()) for c, s in
                zip(neural_codes(net, x).packed, _torch_switches(net, x), strict=True)}
        assert seen <= regions
        counts.append(len(seen))
    assert counts == sorted(counts) and counts[0] < counts[-1] <= part.n_regions
    assert counts[-1] >= 0.9 * part.n_regions


def test_max_pooling_refusals():
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    with pytest.raises(NotPiecewiseLinearError, match="nn.MaxPool"):
        plane_partition(_Net(functional=True).double(), x)
    with pytest.raises(ResourceError, match="max_regions=3"):
        plane_partition(nn.Sequential(nn.MaxPool2d(2)).double(), x * 10, max_regions=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_max_pooling_partition_equals_cpu():
    net = _cnn(seed=5)
    anchors = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    cpu = plane_partition(net, anchors)
    gpu = plane_partition(net.cuda(), anchors.cuda())
    assert gpu.n_regions == cpu.n_regions and gpu.euler()["ok"]
    key = lambda p: sorted(c.tobytes() + s.tobytes()  # noqa: E731
                           for c, s in zip(p.codes, p.switches, strict=True))
    assert key(cpu) == key(gpu)
