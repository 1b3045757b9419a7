"""Multi-layer perceptron: [Linear -> (BatchNorm) -> activation] x depth -> Linear."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from acthash.errors import InputError

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "rrelu": nn.RReLU,
    "relu6": nn.ReLU6,
    "hardtanh": nn.Hardtanh,
}


def make_activation(name: str) -> nn.Module:
    """A ReLU-like activation module by name (relu, leaky_relu, prelu, rrelu, relu6, hardtanh)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise InputError(
            f"unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}"
        ) from None


class MLP(nn.Module):
    """MLP on flattened inputs.

    in_features : input size (inputs of any shape are flattened to it)
    widths : hidden width per layer, or one int repeated ``depth`` times
    n_classes : output size (logits)
    batchnorm : BatchNorm1d after each hidden Linear, before the activation (the paper's
        CIFAR-10 MLP)
    """

    def __init__(
        self,
        in_features: int,
        widths: int | Sequence[int] = 100,
        n_classes: int = 10,
        depth: int = 1,
        batchnorm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if isinstance(widths, int):
            widths = [widths] * depth
        widths = list(widths)
        if not widths or min(widths) < 1:
            raise InputError(f"widths must be positive, got {widths}")
        self.in_features, self.widths, self.n_classes = in_features, widths, n_classes
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for w in widths:
            layers.append(nn.Linear(prev, w))
            if batchnorm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(make_activation(activation))
            prev = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
