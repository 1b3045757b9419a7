"""Model zoo and registry: ``acthash.models.build_model(name, input_shape, n_classes,
**options) -> nn.Module``. Any user ``nn.Module`` with ReLU-like units works with acthash too.

Like :mod:`acthash.data` (``register_dataset``/``list_datasets``/``load``), this package
exports its registry (``register_model``/``list_models``/``build_model``); the model classes
(:class:`MLP`, :class:`VGG`, :class:`ResNet`) load torch on first access.
"""

from __future__ import annotations

import importlib

from acthash.models.registry import build_model, builder_options, list_models, register_model

#: model classes -> the module that defines them (loaded on first access)
_LAZY = {"MLP": "acthash.models.mlp", "make_activation": "acthash.models.mlp",
         "VGG": "acthash.models.cnn", "ResNet": "acthash.models.cnn"}

__all__ = ["MLP", "make_activation", "VGG", "ResNet", "build_model", "builder_options",
           "list_models", "register_model"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'acthash.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
