"""Bottleneck head on any backbone, for the latent binary encoding study (Sbailò &
Ghiringhelli): backbone -> penultimate layer z of small dimension d -> linear output.

Penultimate variants (``penultimate``):

- ``"linear"``: z = Linear(features) with no activation (the paper's architecture; with the
  compression loss of :class:`CompressionLoss` it is the "compressed" model);
- ``"nonlinear"``: z = activation(Linear(features)) (baseline);
- ``"none"``: no penultimate layer; z is the backbone's feature vector (baseline).

The latent of the last forward pass is kept in ``model.last_latent`` (with its graph while
training), so a loss hook can use it without a second forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from acthash.errors import InputError
from acthash.models.mlp import make_activation

__all__ = ["BottleneckNet", "split_head", "CompressionLoss", "PENULTIMATE_VARIANTS"]

PENULTIMATE_VARIANTS = ("linear", "nonlinear", "none")


def _get_parent(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    parent = root
    for p in parts[:-1]:
        parent = getattr(parent, p)
    return parent, parts[-1]


def split_head(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """Remove a classifier's output layer in place; return (backbone, feature size).

    The output layer is the attribute ``head`` when it is an ``nn.Linear``, otherwise the
    last ``nn.Linear`` among the modules; it is replaced by ``nn.Identity``. The feature
    size is measured with one forward pass of ``example`` (a (n, ...) input batch).
    """
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        name = "head"
    else:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise InputError(
                f"{type(model).__name__} has no nn.Linear output layer to replace; pass a "
                "backbone that ends in a Linear classifier (or give a 'head' attribute)"
            )
        name = linears[-1]
    parent, attr = _get_parent(model, name)
    setattr(parent, attr, nn.Identity())
    was_training = model.training
    model.eval()
    with torch.no_grad():
        feats = model(example)
    model.train(was_training)
    if feats.ndim != 2:
        raise InputError(
            f"the backbone's features have shape {tuple(feats.shape)} after removing {name!r}; "
            "expected (batch, features); flatten inside the backbone"
        )
    return model, int(feats.shape[1])


class BottleneckNet(nn.Module):
    """backbone -> [penultimate, d units] -> Linear(n_classes).

    backbone : module mapping (N, ...) inputs to (N, feature_dim) features
    latent_dim : d, the penultimate size (ignored for ``penultimate="none"``)
    penultimate : "linear", "nonlinear" or "none" (see the module docstring)
    activation : the non-linear penultimate's activation (a ReLU-like name)
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, n_classes: int,
                 latent_dim: int = 4, penultimate: str = "linear",
                 activation: str = "relu") -> None:
        super().__init__()
        if penultimate not in PENULTIMATE_VARIANTS:
            raise InputError(f"unknown penultimate {penultimate!r}; choose one of "
                             f"{', '.join(PENULTIMATE_VARIANTS)}")
        if penultimate != "none" and latent_dim < 1:
            raise InputError(f"latent_dim must be >= 1, got {latent_dim}")
        self.backbone = backbone
        self.penultimate_kind = penultimate
        if penultimate == "none":
            self.penultimate = nn.Identity()
            self.latent_dim = feature_dim
        else:
            lin = nn.Linear(feature_dim, latent_dim)
            self.penultimate = (lin if penultimate == "linear"
                                else nn.Sequential(lin, make_activation(activation)))
            self.latent_dim = latent_dim
        self.head = nn.Linear(self.latent_dim, n_classes)
        self.last_latent: torch.Tensor | None = None

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """z: (N, latent_dim)."""
        return self.penultimate(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.latent(x)
        self.last_latent = z
        return self.head(z)

    def forward_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, C), z (N, latent_dim))."""
        z = self.latent(x)
        return self.head(z), z


class CompressionLoss:
    """γₑ · mean(z²), the extra loss that drives latent binary encoding.

    γₑ = min(γ₀ · ratio^(e−1), cap) in epoch e (1-based): geometric growth per epoch.
    Use as ``train(..., extra_loss=CompressionLoss(...))`` with a :class:`BottleneckNet`
    (it reads ``model.last_latent``). Defaults follow the paper (γ₀ = 0.01, ×1.06 per epoch).
    """

    def __init__(self, gamma0: float = 0.01, ratio: float = 1.06,
                 cap: float | None = None) -> None:
        if gamma0 < 0 or ratio <= 0 or (cap is not None and cap < 0):
            raise InputError(
                f"need gamma0 >= 0, ratio > 0 and cap >= 0 (or None); got gamma0={gamma0}, "
                f"ratio={ratio}, cap={cap}"
            )
        self.gamma0, self.ratio, self.cap = float(gamma0), float(ratio), cap

    def gamma(self, epoch: int) -> float:
        g = self.gamma0 * self.ratio ** (max(int(epoch), 1) - 1)
        return g if self.cap is None else min(g, float(self.cap))

    def __call__(self, model: nn.Module, outputs: torch.Tensor, epoch: int) -> torch.Tensor:
        z = getattr(model, "last_latent", None)
        if z is None:
            raise InputError(
                "the compression loss needs the model's latent z: use a BottleneckNet (or a "
                "model that stores its penultimate output in .last_latent)"
            )
        return self.gamma(epoch) * z.pow(2).mean()

    def to_dict(self) -> dict:
        return {"gamma0": self.gamma0, "ratio": self.ratio, "cap": self.cap}
