"""Model zoo. Any user ``nn.Module`` with ReLU-like units works with acthash too."""

from acthash.models.mlp import MLP, make_activation
from acthash.models.registry import build_model, list_models

__all__ = ["MLP", "make_activation", "build_model", "list_models"]

from acthash.models.cnn import VGG, ResNet  # noqa: E402

__all__ += ["VGG", "ResNet"]
