"""Aggregate codes: real-valued codes of CNNs too large to binarise in full.

The original study handled ImageNet and Tiny ImageNet CNNs this way: for chosen blocks, the
per-channel spatial sum of the post-ReLU output, one real number per channel instead of one
bit per channel and position; each layer's block divided by its range (max - min over all
examples and channels of the data set it was computed on), the blocks concatenated, and
Euclidean 9-NN, K-Means and logistic regression run on the result.

- :func:`aggregate_codes` computes them for any ``nn.Module`` (the same ReLU-like layers and
  names as :func:`acthash.core.capture`; only layers whose output has spatial dimensions).
- Their properties (Euclidean k-NN, :func:`acthash.properties.aggregate_properties`) are
  in :mod:`acthash.properties.aggregate`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from acthash.core.capture import (
    _FUNCTIONS,
    _begin_capture,
    _iter_batches,
    _no_relu_message,
    _Recorder,
)
from acthash.errors import InputError, NoReluUnitError

__all__ = ["AggregateSpan", "AggregateCodes", "aggregate_codes"]


@dataclass(frozen=True)
class AggregateSpan:
    """One layer's block of an aggregate code: columns ``[start, stop)`` (one per channel),
    the layer's per-example output ``shape`` (C, H, W, ...) and the ``scale`` it was divided
    by (its range, or 1.0 when not normalised or constant)."""

    name: str
    kind: str
    shape: tuple
    start: int
    stop: int
    scale: float


@dataclass
class AggregateCodes:
    """Real-valued aggregate codes: ``values`` (N, n_features) float64, ``layers`` (one
    :class:`AggregateSpan` per layer, forward order) and optional (N,) ``labels``."""

    values: np.ndarray
    layers: tuple
    labels: np.ndarray | None = None
    outputs: torch.Tensor | None = None  # (N, ...) model outputs on CPU, with keep_outputs

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_features(self) -> int:
        return self.values.shape[1]

    @property
    def ranges(self) -> dict:
        """{layer name: scale}, to normalise another data set with the same scales."""
        return {s.name: s.scale for s in self.layers}

    def __repr__(self) -> str:
        lab = ", labelled" if self.labels is not None else ""
        return (f"AggregateCodes(n={len(self)}, n_features={self.n_features}, "
                f"layers={len(self.layers)}{lab})")


class _SumRecorder(TorchFunctionMode):
    """Intercepts ReLU-like calls and keeps the spatial sum of each one's output."""

    _name = _Recorder._name  # same layer names as the binary capture

    def __init__(self, module_stack: list):
        super().__init__()
        self.stack = module_stack
        self.seen: dict[str, int] = {}
        self.records: list[tuple[str, str, tuple, torch.Tensor | None]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        entry = _FUNCTIONS.get(func)
        if entry is not None and args and isinstance(args[0], torch.Tensor):
            name, kind = self._name(func, entry[0])
            o = out.detach()
            sums = o.sum(dim=tuple(range(2, o.ndim)), dtype=torch.float64) if o.ndim >= 3 else None
            self.records.append((name, kind, tuple(o.shape[1:]), sums))
        return out


def _choose(records, layers) -> list[int]:
    names = [r[0] for r in records]
    spatial = [r[3] is not None for r in records]

    def flat(i):
        return (f"{names[i]} (output shape {records[i][2]}) has no spatial dimensions: aggregate "
                "codes sum each channel over height and width, so choose layers of a "
                "convolutional part (acthash.list_layers shows the shapes), or use binary "
                "neural codes (acthash.neural_codes) for this layer")

    if layers is None or layers == "all":
        idx = [i for i in range(len(names)) if spatial[i]]
        if not idx:
            raise InputError(f"no ReLU-like layer of this model has spatial dimensions; "
                             f"{flat(0)}")
        return idx
    if isinstance(layers, str):
        rx = re.compile(layers)
        idx = [i for i, n in enumerate(names) if rx.search(n)]
        if not idx:
            raise InputError(f"no layer matches {layers!r}; layers are: {', '.join(names)}")
        kept = [i for i in idx if spatial[i]]
        if not kept:
            raise InputError(flat(idx[0]))
        return kept
    wanted = list(layers)
    missing = [w for w in wanted if w not in names]
    if missing:
        raise InputError(f"unknown layer(s) {missing}; layers are: {', '.join(names)}")
    idx = [i for i, n in enumerate(names) if n in set(wanted)]
    for i in idx:
        if not spatial[i]:
            raise InputError(flat(i))
    return idx


def aggregate_codes(model: nn.Module, data, *, layers: str | Sequence[str] | None = None,
                    labels=None, normalize: str | None = "range", ranges: dict | None = None,
                    batch_size: int = 256, device=None,
                    keep_outputs: bool = False) -> AggregateCodes:
    """Aggregate codes of ``data`` under ``model`` (eval mode, no gradients).

    For each chosen ReLU-like layer whose output is (B, C, H, W, ...), the per-channel sum of
    the post-activation output over the spatial dimensions: C features per layer.

    layers : None (every ReLU-like layer with spatial dimensions), a regular expression
        (the matching layers with spatial dimensions) or a list of names (each must have
        spatial dimensions); names as in :func:`acthash.list_layers`.
    normalize : "range" (default, as the original): each layer's block divided by its range
        (max - min over all examples and channels of ``data``); None: raw sums.
    ranges : {layer name: scale} to divide by instead of ``data``'s own range (e.g. the
        training codes' ``.ranges`` for a test set); the original used each set's own.
    data, labels, batch_size, device, keep_outputs : as in :func:`acthash.core.capture`.
    Returns :class:`AggregateCodes` with float64 values (N, sum of the layers' channels).
    """
    if normalize not in ("range", None):
        raise InputError(f"unknown normalize={normalize!r}; use 'range' or None")
    device, model_dtype, stack, restore = _begin_capture(model, device)
    chosen: list[int] | None = None
    n_calls = 0
    meta: list = []
    parts: list[list[np.ndarray]] = []
    label_parts: list[np.ndarray] = []
    output_parts: list[torch.Tensor] = []
    n_seen = 0
    try:
        with torch.no_grad():
            for x, y in _iter_batches(data, batch_size):
                if x.shape[0] == 0:
                    continue
                x = x.to(device=device, dtype=model_dtype) if x.is_floating_point() else x.to(device)
                stack.clear()
                rec = _SumRecorder(stack)
                with rec:
                    out = model(x)
                if keep_outputs:
                    o = out[0] if isinstance(out, (tuple, list)) else out
                    output_parts.append(o.detach().float().cpu())
                if chosen is None:
                    if not rec.records:
                        raise NoReluUnitError(_no_relu_message(model))
                    chosen = _choose(rec.records, layers)
                    n_calls = len(rec.records)
                    meta = [rec.records[i][:3] for i in chosen]
                    parts = [[] for _ in chosen]
                elif len(rec.records) != n_calls:
                    raise InputError("this batch went through different ReLU-like layers than "
                                     "the first batch; aggregate codes need one layer list")
                for j, i in enumerate(chosen):
                    parts[j].append(rec.records[i][3].cpu().numpy())
                if y is not None:
                    label_parts.append(np.asarray(y.cpu()).reshape(-1))
                n_seen += x.shape[0]
    finally:
        restore()
    if n_seen == 0:
        raise InputError("no inputs: the data is empty; pass at least one example")
    blocks, spans, pos = [], [], 0
    for (name, kind, shape), block_parts in zip(meta, parts, strict=True):
        block = np.concatenate(block_parts)
        scale = 1.0
        if ranges is not None:
            if name not in ranges:
                raise InputError(f"ranges has no scale for layer {name!r}; pass the .ranges of "
                                 "aggregate codes computed with the same layers")
            scale = float(ranges[name])
        elif normalize == "range":
            spread = float(block.max() - block.min())
            scale = spread if spread > 0 else 1.0
        blocks.append(block / scale)
        spans.append(AggregateSpan(name, kind, shape, pos, pos + block.shape[1], scale))
        pos += block.shape[1]
    if labels is None and label_parts and sum(len(p) for p in label_parts) == n_seen:
        labels = np.concatenate(label_parts)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_seen,):
            raise InputError(f"labels have shape {labels.shape} but there are {n_seen} inputs")
    outputs = torch.cat(output_parts) if keep_outputs else None
    return AggregateCodes(np.concatenate(blocks, axis=1), tuple(spans), labels, outputs)
