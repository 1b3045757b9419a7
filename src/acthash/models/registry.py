"""The model registry: build models by name from a dataset's input shape and class count.

Parallel to the dataset registry (:mod:`acthash.data.registry`): :func:`register_model`
adds a builder, :func:`list_models` names them, :func:`build_model` builds one. The table
imports no torch; each builder imports its model class when it runs.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from acthash.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["register_model", "list_models", "build_model", "builder_options",
           "import_object"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: register ``builder(input_shape, n_classes, **options) -> nn.Module`` under
    ``name``."""

    def deco(fn):
        _BUILDERS[name] = fn
        return fn

    return deco


register = register_model  # the registry's former name


@register_model("mlp")
def _mlp(input_shape, n_classes, width=100, depth=1, widths=None, batchnorm=False,
         activation="relu"):
    from acthash.models.mlp import MLP

    return MLP(math.prod(input_shape), widths if widths else width, n_classes, depth=depth,
               batchnorm=batchnorm, activation=activation)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_BUILDERS)


def import_object(spec: str):
    """The object ``module:attr`` names (``attr`` may be dotted), imported with the current
    working directory on ``sys.path`` (so ``mymodels.py`` beside the user is found without
    setting PYTHONPATH; the path is restored afterwards)."""
    import os
    import sys

    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise InputError(f"expected 'package.module:function', got {spec!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError) as e:
        raise InputError(
            f"cannot import {spec!r} ({type(e).__name__}: {e}); give 'package.module:function' "
            f"importable from the working directory ({cwd}) or the Python path"
        ) from e
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _builder(name: str) -> Callable[..., nn.Module]:
    if ":" in name:
        return import_object(name)
    if name not in _BUILDERS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(list_models())} "
                         "or give 'package.module:function'")
    return _BUILDERS[name]


def builder_options(name: str) -> set[str] | None:
    """The keyword options model ``name``'s builder takes (``None``: any, it has ``**kw``)."""
    params = inspect.signature(_builder(name)).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name not in ("input_shape", "n_classes")
            and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                           inspect.Parameter.POSITIONAL_OR_KEYWORD)}


def build_model(name: str, input_shape, n_classes: int, **options) -> nn.Module:
    """A model by registry name, or ``package.module:function`` returning an ``nn.Module``.

    The builder receives ``input_shape`` (per example), ``n_classes`` (a
    ``module:function`` builder only those of the two it names) and the options; an option
    it does not take is an error naming the ones it does. ``module`` is imported with the
    working directory on the path (:func:`import_object`).
    """
    accepted = builder_options(name)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise InputError(f"model {name!r} has no option(s) {unknown}; its options: "
                         f"{', '.join(sorted(accepted)) or 'none'}")
    fn = _builder(name)
    if ":" in name:
        from torch import nn

        try:
            params = inspect.signature(fn).parameters
        except ValueError:  # no signature to inspect (a builtin): call it and see
            params = None
        given = {"input_shape": tuple(input_shape), "n_classes": n_classes}
        if params is not None and not any(p.kind is inspect.Parameter.VAR_KEYWORD
                                          for p in params.values()):
            given = {k: v for k, v in given.items() if k in params}  # a builder may take none
        kwargs = {**given, **options}
        if params is not None:
            try:
                inspect.signature(fn).bind(**kwargs)
            except TypeError as e:
                accepted = [p for p in params if p != "self"]
                raise InputError(
                    f"model builder {name!r} does not accept the keywords "
                    f"{', '.join(kwargs)} ({e}); it accepts ({', '.join(accepted) or 'nothing'}): "
                    "give a function (or nn.Module class) taking the model options as keywords "
                    "(and input_shape=, n_classes= if it needs them)") from None
        model = fn(**kwargs)
        if not isinstance(model, nn.Module):
            raise InputError(f"{name} returned {type(model).__name__}, not an nn.Module")
        return model
    return fn(tuple(input_shape), n_classes, **options)


# ---- convolutional models (image inputs (C, H, W)) ----------------------------------------

def _vgg_builder(config: str):
    def build(input_shape, n_classes, width_mult=1.0, activation="relu"):
        from acthash.models.cnn import VGG

        return VGG(input_shape, n_classes, config=config, width_mult=width_mult,
                   batchnorm=True, activation=activation)

    build.__doc__ = f"{config.upper()}-style CNN with BatchNorm; options width_mult, activation."
    return build


for _cfg in ("vgg11", "vgg13", "vgg16", "vgg19"):
    register_model(_cfg)(_vgg_builder(_cfg))


@register_model("vgg")
def _vgg(input_shape, n_classes, config="vgg11", width_mult=1.0, activation="relu"):
    from acthash.models.cnn import VGG

    return VGG(input_shape, n_classes, config=config, width_mult=width_mult, batchnorm=True,
               activation=activation)


def _resnet_builder(depth: int):
    def build(input_shape, n_classes, width_mult=1.0, activation="relu"):
        from acthash.models.cnn import ResNet

        return ResNet(input_shape, n_classes, depth=depth, width_mult=width_mult,
                      activation=activation)

    build.__doc__ = f"CIFAR-style ResNet-{depth}; options width_mult, activation."
    return build


for _d in (20, 32, 44, 56, 110):
    register_model(f"resnet{_d}")(_resnet_builder(_d))


@register_model("resnet")
def _resnet(input_shape, n_classes, depth=20, width_mult=1.0, activation="relu"):
    """CIFAR-style ResNet of ``depth`` = 6n+2 layers (``--depth 20``)."""
    from acthash.models.cnn import ResNet

    return ResNet(input_shape, n_classes, depth=depth, width_mult=width_mult,
                  activation=activation)


@register_model("bottleneck")
def _bottleneck(input_shape, n_classes, backbone="mlp", latent_dim=4, penultimate="linear",
                latent_activation="relu", **backbone_options):
    """A backbone from the registry (its output layer removed) with a bottleneck head."""
    import torch

    from acthash.models.bottleneck import BottleneckNet, split_head

    if backbone == "bottleneck":
        raise InputError("backbone cannot itself be 'bottleneck'; pick e.g. 'mlp'")
    net = build_model(backbone, input_shape, n_classes, **backbone_options)
    net, feature_dim = split_head(net, torch.zeros((2, *input_shape)))
    return BottleneckNet(net, feature_dim, n_classes, latent_dim=latent_dim,
                         penultimate=penultimate, activation=latent_activation)
