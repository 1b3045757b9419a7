import numpy as np
import pytest
import torch

from acthash import data as datasets
from acthash.data.manifolds import ManifoldGenerator


def test_manifolds_is_registered_and_has_the_requested_shape():
    assert "manifolds" in [d["name"] for d in datasets.list_datasets()]
    ds = datasets.load("manifolds", n_classes=4, per_class=7, test_per_class=3, input_dim=12,
                       gamma_dim=3, theta_dim=2)
    assert ds.x_train.shape == (28, 12) and ds.x_test.shape == (12, 12)
    assert ds.x_train.dtype == torch.float32
    np.testing.assert_array_equal(np.bincount(ds.y_train.numpy()), [7, 7, 7, 7])
    assert ds.n_classes == 4 and np.asarray(ds.info["gammas"]).shape == (4, 3)


def test_manifolds_are_deterministic_for_a_seed():
    a = datasets.load("manifolds", n_classes=3, per_class=5, seed=4)
    b = datasets.load("manifolds", n_classes=3, per_class=5, seed=4)
    c = datasets.load("manifolds", n_classes=3, per_class=5, seed=5)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.allclose(a.x_train, c.x_train)


@pytest.mark.parametrize("kind", ["relu", "smooth"])
def test_output_moves_along_the_manifold_with_theta(kind):
    gen = ManifoldGenerator(input_dim=16, gamma_dim=4, theta_dim=1, kind=kind, seed=0)
    gamma = np.random.default_rng(0).normal(size=(1, 4)).repeat(50, 0)
    theta = np.linspace(-1, 1, 50)[:, None]
    x = gen(gamma, theta)
    steps = np.linalg.norm(np.diff(x, axis=0), axis=1)
    assert np.all(steps > 0)  # every change of theta moves x
    assert steps.max() < 0.2 * np.linalg.norm(x[-1] - x[0]) + 1e-9  # continuously
    # the map is a fixed function of (gamma, theta): same inputs, same outputs
    np.testing.assert_array_equal(gen(gamma, theta), x)
    # a different gamma gives a different manifold
    assert not np.allclose(gen(gamma + 1.0, theta), x)


def test_relu_generator_matches_its_weights():
    gen = ManifoldGenerator(input_dim=3, gamma_dim=2, theta_dim=1, hidden=5, depth=1, seed=1)
    g, t = np.array([[0.3, -1.0]]), np.array([[0.5]])
    h = np.maximum(np.array([[0.3, -1.0, 0.5]]) @ gen.weights[0] + gen.biases[0], 0)
    np.testing.assert_allclose(gen(g, t), h @ gen.weights[1] + gen.biases[1], rtol=1e-6)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="relu"):
        ManifoldGenerator(kind="sine")
    with pytest.raises(ValueError, match="gamma must be"):
        ManifoldGenerator(gamma_dim=3)(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_classes"):
        datasets.load("manifolds", n_classes=0)
