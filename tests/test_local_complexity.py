import numpy as np
import pytest
import torch
from torch import nn

from acthash.errors import InputError
from acthash.geometry import (
    LocalComplexityCallback,
    cross_polytope_directions,
    local_complexity,
)
from acthash.train import TrainConfig, train


def _mlp(seed=0, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 20), act(), nn.Linear(20, 15), nn.ReLU(),
                         nn.Linear(15, 3)).double().eval()


def _analytic_first_layer(net, x, radius, d, kinks=(0.0,)):
    w, b = net[0].weight.detach(), net[0].bias.detach()
    reach = radius * (d @ w.T).abs().max(dim=0).values  # (units,) r * max_i |w.d_i|
    z = x @ w.T + b
    return sum((((z - k).abs() < reach).sum(dim=1)) for k in kinks).numpy()


@pytest.mark.parametrize("radius", [0.05, 0.3, 1.0])
def test_first_layer_count_is_the_analytic_cut_count(radius):
    net = _mlp()
    x = torch.randn(40, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lc = local_complexity(net, x, radius=radius, n_directions=4, seed=3, batch_size=7)
    d = cross_polytope_directions(6, 4, seed=3)
    np.testing.assert_array_equal(lc.per_layer[:, 0], _analytic_first_layer(net, x, radius, d))
    assert lc.per_layer.shape == (40, 2) and lc.layer_names == ["1", "3"]
    np.testing.assert_array_equal(lc.total, lc.per_layer.sum(axis=1))


def test_two_kinks_each_count_and_radius_grows_counts():
    net = _mlp(seed=2, act=lambda: nn.Hardtanh(-0.2, 0.3))
    x = torch.randn(30, 6, dtype=torch.float64)
    d = cross_polytope_directions(6, 6, seed=0)
    small = local_complexity(net, x, radius=0.1, n_directions=6)
    big = local_complexity(net, x, radius=0.8, n_directions=6)
    np.testing.assert_array_equal(small.per_layer[:, 0],
                                  _analytic_first_layer(net, x, 0.1, d, kinks=(-0.2, 0.3)))
    # the vertex set at radius 0.8 does not contain the one at 0.1, but for the exact first
    # layer a bigger polytope (same directions, same centre) cuts a superset of hyperplanes
    assert (big.per_layer[:, 0] >= small.per_layer[:, 0]).all()
    assert big.total.mean() > small.total.mean()


def test_directions_are_orthonormal_and_seeded():
    d = cross_polytope_directions(10, 5, seed=4)
    np.testing.assert_allclose(d @ d.T, np.eye(5), atol=1e-12)
    assert torch.equal(d, cross_polytope_directions(10, 5, seed=4))
    assert not torch.equal(d, cross_polytope_directions(10, 5, seed=5))
    with pytest.raises(InputError, match="n_directions"):
        cross_polytope_directions(3, 4)
    with pytest.raises(InputError, match="radius"):
        local_complexity(_mlp(), torch.zeros(2, 6), radius=0)


def test_callback_records_every_checkpoint_and_set():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    sets = {"train": x[:16], "random": torch.randn(16, 6, generator=g)}
    cb = LocalComplexityCallback(sets, radius=0.2, n_directions=3)
    train(net, x, y, TrainConfig(epochs=2, checkpoints=[0, 2], device="cpu"), on_checkpoint=cb)
    df = cb.frame()
    assert sorted(set(df.epoch)) == [0, 2] and set(df.set) == {"train", "random"}
    assert set(df.layer) == {"1", "total"} and len(df) == 2 * 2 * 2
    # the epoch-2 row equals a direct call on the trained model
    direct = local_complexity(net, sets["train"], radius=0.2, n_directions=3)
    row = df[(df.epoch == 2) & (df.set == "train") & (df.layer == "total")]
    assert float(row["mean"].iloc[0]) == pytest.approx(direct.total.mean())


def test_exact_plane_count_bounds_the_sampled_one():
    from acthash.geometry import plane_complexity_error, plane_local_complexity

    net = _mlp(seed=4)
    x = torch.randn(25, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    radius = 0.8
    d = cross_polytope_directions(6, 2, seed=1)
    exact = plane_local_complexity(net, x, radius=radius, directions=d)
    sampled = local_complexity(net, x, radius=radius, directions=d)
    assert exact.layer_names == sampled.layer_names == ["1", "3"]
    # the first layer: exact = sampled = the analytic cut count of the square
    np.testing.assert_array_equal(exact.per_layer[:, 0], sampled.per_layer[:, 0])
    np.testing.assert_array_equal(exact.per_layer[:, 0], _analytic_first_layer(net, x, radius, d))
    # deeper: sampled points lie in the square, so they never see more than the exact count
    assert (sampled.per_layer <= exact.per_layer).all()
    # independent check of the exact count: bits that vary over a fine grid of the square
    from acthash.core.capture import neural_codes

    g = np.linspace(-1, 1, 121)
    ss, tt = np.meshgrid(g, g)
    keep = np.abs(ss) + np.abs(tt) <= 1
    st = radius * np.stack([ss[keep], tt[keep]], axis=1)
    for i in range(0, 25, 6):
        pts = x[i] + torch.as_tensor(st) @ d
        bits = np.unpackbits(neural_codes(net, pts).packed, axis=1, count=35).astype(bool)
        vary = bits.any(axis=0) & ~bits.all(axis=0)
        grid = [int(vary[:20].sum()), int(vary[20:].sum())]
        assert (np.array(grid) <= exact.per_layer[i]).all()
        assert exact.per_layer[i].sum() - sum(grid) <= 1  # a fine grid misses at most a sliver
    err = plane_complexity_error(net, x, radius=radius, seed=1)
    assert list(err["layer"]) == ["1", "3", "total"]
    first = err.iloc[0]
    assert first.shortfall_mean == 0 and first.points_undercounted == 0
    assert (err["min_gap"] >= 0).all()
    assert err.iloc[2].exact_mean == pytest.approx(exact.total.mean())
