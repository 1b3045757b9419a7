"""What the detectors read from a model: logits, penultimate features and neural codes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from acthash.errors import InputError

__all__ = ["as_inputs", "head_module", "logits_and_features"]


def as_inputs(data, labels=None) -> tuple[torch.Tensor, np.ndarray | None]:
    """``(x, y)`` from a tensor/array ``data`` or an ``(x, y)`` pair (``labels`` wins)."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data, found = data
        labels = found if labels is None else labels
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    if x.dim() < 2 or len(x) == 0:
        raise InputError(f"inputs must be an (N, ...) batch with N >= 1, got shape "
                         f"{tuple(x.shape)}")
    y = None if labels is None else np.asarray(torch.as_tensor(labels)).reshape(-1)
    if y is not None and len(y) != len(x):
        raise InputError(f"{len(y)} labels for {len(x)} inputs; pass one label per input")
    return x.float(), y


def head_module(model: nn.Module, head: str | None = None) -> nn.Module:
    """The classifier head whose *input* is the penultimate feature: the module named
    ``head``, else the last ``nn.Linear`` of ``model.modules()``."""
    if head is not None:
        mods = dict(model.named_modules())
        if head not in mods:
            raise InputError(f"the model has no module {head!r}; pass one of "
                             f"{[n for n in mods if n][:12]}")
        return mods[head]
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise InputError("the model has no nn.Linear head to read penultimate features from; "
                         "pass head='<module name>' of the layer fed by the features")
    return linear[-1]


def logits_and_features(model: nn.Module, x: torch.Tensor, *, head: str | None = None,
                        batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(logits (N, C), features (N, d))`` as float64 numpy arrays: the model's output and
    the (flattened) input of its head, in eval mode without gradients; the model's train/eval
    state is restored."""
    module = head_module(model, head)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    feats: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []
    hook = module.register_forward_pre_hook(
        lambda _m, inputs: feats.append(inputs[0].detach().flatten(1).double().cpu()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                out = model(x[lo : lo + batch_size].to(device))
                out = out[0] if isinstance(out, (tuple, list)) else out
                outs.append(out.detach().double().cpu())
    finally:
        hook.remove()
        model.train(was_training)
    if len(feats) != len(outs):
        raise InputError("the head module ran more than once per forward; pass head= naming "
                         "a module called once")
    return torch.cat(outs).numpy(), torch.cat(feats).numpy()
