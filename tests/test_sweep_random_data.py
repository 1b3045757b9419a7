"""The random-data control dataset ``random:NAME`` used by the random-data preset."""

import pytest
import torch

from acthash import data


def test_random_digits_keeps_shapes_and_labels_and_is_seeded():
    real = data.load("digits")
    rnd = data.load("random:digits")
    assert rnd.name == "random:digits" and rnd.input_shape == real.input_shape
    assert rnd.x_train.shape == real.x_train.shape and rnd.x_test.shape == real.x_test.shape
    assert torch.equal(rnd.y_train, real.y_train) and torch.equal(rnd.y_test, real.y_test)
    lo, hi = float(real.x_train.min()), float(real.x_train.max())
    assert float(rnd.x_train.min()) >= lo and float(rnd.x_train.max()) <= hi
    # uniform on [0, 1]: mean 1/2, variance 1/12 (digits pixels are far from that)
    assert abs(float(rnd.x_train.mean()) - 0.5) < 0.01
    assert abs(float(rnd.x_train.var()) - 1 / 12) < 0.005
    assert torch.equal(data.load("random:digits").x_train, rnd.x_train)
    assert not torch.equal(data.load("random:digits", seed=1).x_train, rnd.x_train)


def test_random_needs_a_base_dataset():
    with pytest.raises(ValueError, match="needs an argument, e.g. random:"):
        data.load("random:")
