"""The penultimate features of a classifier: the input of its last ``nn.Linear`` call.

The one feature extractor of acthash: the LSH study's penultimate representation
(:func:`acthash.lsh.representation`, float64) and the retrieval study's ``-feat`` inputs
(:func:`acthash.retrieval.penultimate_features`, float32).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from acthash.errors import InputError

__all__ = ["penultimate_features"]


def penultimate_features(model: nn.Module, x, *, batch_size: int = 1024,
                         device: str | torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> np.ndarray:
    """(N, D) inputs of the model's last ``nn.Linear`` call (the penultimate features of a
    classifier; D its in_features), computed in eval mode without gradients, in ``dtype``
    (float32 by default). ``x``: (N, ...) tensor or array, fed in batches of ``batch_size``
    on ``device`` (default: the model's) in the model's dtype."""
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise InputError("the model has no nn.Linear layer, so it has no penultimate features; "
                         "pass features computed another way")
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError("x must be a tensor or numpy array of inputs")
    param = next(model.parameters(), None)
    dev = torch.device(device) if device is not None else (param.device if param is not None
                                                           else torch.device("cpu"))
    model_dtype = param.dtype if param is not None else torch.float32
    last: list[torch.Tensor] = []

    def hook(mod, inputs):
        last[:] = [inputs[0]]

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                last.clear()
                model(x[lo : lo + batch_size].to(dev, model_dtype))
                parts.append(last[0].reshape(last[0].shape[0], -1).to(dtype).cpu().numpy())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not parts:
        raise InputError("x is empty; pass at least one example")
    return np.concatenate(parts)
