"""Record the activation patterns (neural codes) of any ``nn.Module``.

Every ReLU-like call of the forward pass is one *layer* of the code, in forward order; the
calls, their kinks and their layer names come from
:class:`~acthash.core.recorder.ActivationRecorder`. The bits are computed from the *input*
of each call (the pre-activation) before the function runs, so in-place activations are
captured correctly.

Bits: one per unit and kink, 1 where the pre-activation is strictly above the kink. ReLU,
LeakyReLU, PReLU and RReLU have one kink (at 0); ReLU6 and Hardtanh have two
(``min_val`` and ``max_val``), stored kink-major: the layer's first ``U`` bits are
``x > min_val`` for its ``U`` units, the next ``U`` bits ``x > max_val``.

Layer names: the activation module's qualified name (``features.2``), or for a functional
call ``<enclosing module>:<function>`` (``layer1.0:relu``); a name met again in one pass
gets ``#2``, ``#3``, ... (a ResNet reusing one ``nn.ReLU`` gives one layer per call).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.run import progress_bar
from acthash.core.codes import CodesWriter, LayerSpan, NeuralCodes
from acthash.core.layers import choose_layers
from acthash.core.recorder import (
    RELU_LIKE_MODULES,
    ActivationRecorder,
    model_device_dtype,
    no_relu_message,
)
from acthash.errors import InputError, NoReluUnitError

__all__ = [
    "NoReluUnitError",
    "Capture",
    "capture",
    "neural_codes",
    "list_layers",
    "RELU_LIKE_MODULES",
    "iter_batches",
    "pack_bits_torch",
]

@dataclass
class _Record:
    name: str
    kind: str
    shape: tuple[int, ...]
    kinks: tuple[float, ...]
    bits: torch.Tensor  # (B, n_kinks * U) bool


class _FirstPass:
    """``before`` callback of the first batch: the bits of every call (to learn the layers)."""

    def __init__(self):
        self.records: list[_Record] = []

    def __call__(self, call) -> None:
        x, kinks = call.x, call.kinks
        flat = x.detach().reshape(x.shape[0], -1)
        if len(kinks) == 1:
            bits = flat > kinks[0]
        else:
            bits = torch.cat([flat > k for k in kinks], dim=1)
        self.records.append(_Record(call.name, call.kind, tuple(x.shape[1:]), kinks, bits))


class _Writer:
    """``before`` callback of later batches: the bits of the selected calls go straight into
    one (B, n_bits) bool buffer, so no concatenation is needed."""

    def __init__(self, plan: list):
        self.plan = plan  # per call: (start, n_units) in the buffer, or None if not selected
        self.buffer: torch.Tensor | None = None
        self.host_buffer = None

    def set_buffer(self, buffer: torch.Tensor) -> None:
        self.buffer = buffer
        self.host_buffer = buffer.numpy() if buffer.device.type == "cpu" else None

    def __call__(self, call) -> None:
        i = call.index
        if i >= len(self.plan):
            raise InputError(_CONTROL_FLOW)
        slot = self.plan[i]
        if slot is None:
            return
        start, units = slot
        flat = call.x.detach().reshape(call.x.shape[0], -1)
        if flat.shape[1] != units:
            raise InputError(_CONTROL_FLOW)
        host = self.host_buffer
        if host is not None and flat.device.type == "cpu" and flat.dtype in _NUMPY_OK:
            flat_np = flat.numpy()  # numpy's strided compare is ~5x torch's here
            for j, k in enumerate(call.kinks):
                lo = start + j * units
                np.greater(flat_np, k, out=host[:, lo : lo + units])
        else:
            for j, k in enumerate(call.kinks):
                lo = start + j * units
                torch.gt(flat, k, out=self.buffer[:, lo : lo + units])


_NUMPY_OK = (torch.float32, torch.float64, torch.float16)

_CONTROL_FLOW = (
    "this batch went through different ReLU-like layers than the first batch "
    "(data-dependent control flow?); neural codes need one fixed layer list"
)


def iter_batches(data, batch_size: int):
    """Yield (x, y_or_None) batches from a tensor/array, an iterable of batches or a DataLoader."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise InputError("inputs must have a batch dimension, got a scalar")
        for lo in range(0, data.shape[0], batch_size):
            yield data[lo : lo + batch_size], None
        return
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
        isinstance(d, (torch.Tensor, np.ndarray)) for d in data
    ) and len(data[0]) == len(data[1]) and np.ndim(data[1]) == 1:
        x, y = (torch.as_tensor(d) for d in data)
        for lo in range(0, x.shape[0], batch_size):
            yield x[lo : lo + batch_size], y[lo : lo + batch_size]
        return
    if not isinstance(data, Iterable):
        raise InputError(
            f"cannot read inputs from a {type(data).__name__}; pass a tensor, a numpy array, "
            "an iterable of batches or a DataLoader"
        )
    for item in data:
        if isinstance(item, (tuple, list)):
            x = item[0]
            y = item[1] if len(item) > 1 else None
        elif isinstance(item, dict):
            x, y = item.get("x", item.get("input")), item.get("y", item.get("label"))
        else:
            x, y = item, None
        yield torch.as_tensor(x), (None if y is None else torch.as_tensor(y))


def pack_bits_torch(bits: torch.Tensor) -> torch.Tensor:
    """(B, n_bits) bool tensor -> (B, ceil(n_bits/8)) uint8 tensor on the same device,
    in numpy.packbits order (most significant bit first, zero padding)."""
    n = bits.shape[1]
    pad = (-n) % 8
    if pad:
        bits = F.pad(bits, (0, pad))
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=bits.device)
    return (bits.view(bits.shape[0], -1, 8).to(torch.uint8) * weights).sum(-1, dtype=torch.uint8)


def _pack_rows(bits: torch.Tensor) -> np.ndarray:
    """(B, n_bits) bool tensor -> (B, ceil(n_bits/8)) uint8 numpy array. On an accelerator
    the packing runs there, so only 1/8 of the bits cross to the host."""
    if bits.device.type == "cpu":
        return np.packbits(bits.numpy(), axis=1)
    return pack_bits_torch(bits).cpu().numpy()


@dataclass
class Capture:
    """Result of :func:`capture`: the codes, and the model outputs when asked for."""

    codes: NeuralCodes
    outputs: torch.Tensor | None = None  # (N, ...) on CPU


def capture(
    model: nn.Module,
    data,
    *,
    labels=None,
    layers: str | Sequence[str] | None = None,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    keep_outputs: bool = False,
    check_finite: bool = True,
    progress: bool = False,
    out: str | Path | None = None,
) -> Capture:
    """Run ``model`` over ``data`` in eval mode under ``torch.no_grad()`` and pack the codes.

    data : a (N, ...) tensor or array, ``(x, y)`` arrays, an iterable of batches or a
        DataLoader (batches may be ``x`` or ``(x, y, ...)``; ``y`` becomes the labels).
    labels : optional (N,) labels (override labels found in the batches).
    layers : ``None``/"all", a regular expression on layer names, or a list of names.
    keep_outputs : also return the model outputs (for the network's own loss/accuracy).

    out : a ``.ahc`` path: the packed codes of each batch are written there as they come
        (:class:`~acthash.core.codes.CodesWriter`) and the returned codes are that file,
        memory-mapped, so codes larger than RAM never sit in memory. The file appears only
        when complete (an error, a full disk included, leaves nothing behind).

    Each batch is packed as it arrives, so peak memory holds one batch of activations.
    The model's train/eval state is restored afterwards.
    """
    recorder = ActivationRecorder(model)
    model_device, model_dtype = model_device_dtype(model)
    device = torch.device(device) if device is not None else model_device
    packed_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    output_parts: list[torch.Tensor] = []
    signature = None
    spans: list[LayerSpan] = []
    chosen: list[int] = []
    sink: _Writer | None = None
    out_path, writer = out, None
    n_seen = 0
    batches = progress_bar(iter_batches(data, batch_size), enabled=progress, desc="capture",
                           unit="batch")
    with recorder, torch.no_grad():  # leaving it restores the model (hooks, train/eval)
        try:
            for x, y in batches:
                if x.shape[0] == 0:
                    continue
                if x.is_floating_point():
                    # a sum is finite iff every element is (barring overflow, checked below)
                    if check_finite and not (
                        torch.isfinite(x.sum()) or torch.isfinite(x).all()
                    ):
                        bad = (~torch.isfinite(x.reshape(x.shape[0], -1))).any(1).nonzero()
                        rows = (bad.flatten()[:5] + n_seen).tolist()
                        raise InputError(
                            f"inputs contain NaN or inf (rows {rows} ...); clean or impute "
                            "them before computing neural codes"
                        )
                    x = x.to(device=device, dtype=model_dtype)
                else:
                    x = x.to(device)
                if signature is None:
                    first = recorder.before = _FirstPass()
                    out = recorder(x)
                    recs = first.records
                    if not recs:
                        raise NoReluUnitError(no_relu_message(model))
                    signature = len(recs)
                    chosen = choose_layers([r.name for r in recs], layers, noun="captured layer")
                    pos = 0
                    plan = [None] * len(recs)
                    for i in chosen:
                        r = recs[i]
                        n = r.bits.shape[1]
                        spans.append(LayerSpan(r.name, r.kind, r.shape, len(r.kinks), pos, pos + n))
                        plan[i] = (pos, n // len(r.kinks))
                        pos += n
                    bits = recs[chosen[0]].bits if len(chosen) == 1 else torch.cat(
                        [recs[i].bits for i in chosen], dim=1
                    )
                    sink = recorder.before = _Writer(plan)
                    del first, recs
                else:
                    if sink.buffer is None or sink.buffer.shape[0] != x.shape[0]:
                        sink.set_buffer(torch.empty((x.shape[0], spans[-1].stop),
                                                    dtype=torch.bool, device=device))
                    out = recorder(x)
                    if recorder.calls != signature:
                        raise InputError(_CONTROL_FLOW)
                    bits = sink.buffer
                if out_path is None:
                    packed_parts.append(_pack_rows(bits))
                else:
                    if writer is None:
                        writer = CodesWriter(out_path, spans[-1].stop, spans)
                    writer.append(_pack_rows(bits))
                if keep_outputs:
                    o = out[0] if isinstance(out, (tuple, list)) else out
                    output_parts.append(o.detach().float().cpu())
                if y is not None:
                    label_parts.append(np.asarray(y.cpu()).reshape(-1))
                n_seen += x.shape[0]
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if n_seen == 0:
        raise InputError("no inputs: the data is empty; pass at least one example")
    n_bits = spans[-1].stop
    if labels is None and label_parts and sum(len(p) for p in label_parts) == n_seen:
        labels = np.concatenate(label_parts)
    if writer is not None:
        writer.close(labels)  # wrong-length labels: InputError, the file removed
        codes = NeuralCodes.load(out_path, mmap=True)
    else:
        packed = packed_parts[0] if len(packed_parts) == 1 else np.concatenate(packed_parts)
        codes = NeuralCodes(packed, n_bits, spans, labels)
    outputs = torch.cat(output_parts) if keep_outputs else None
    return Capture(codes, outputs)


def neural_codes(model: nn.Module, data, **kwargs) -> NeuralCodes:
    """The (N, n_bits) bit-packed neural codes of ``data`` under ``model``.

    Shorthand for ``capture(model, data, **kwargs).codes``; see :func:`capture`.
    """
    return capture(model, data, **kwargs).codes


def list_layers(model: nn.Module, example, layers=None) -> pd.DataFrame:
    """Table of captured layers: name, kind, per-example shape, units, bits and bit span.

    ``example`` is one batch of inputs (a few rows are enough).
    """
    if isinstance(example, np.ndarray):
        example = torch.from_numpy(example)
    codes = neural_codes(model, example[:2], layers=layers, check_finite=False)
    rows = [
        {
            "layer": s.name,
            "kind": s.kind,
            "shape": "x".join(map(str, s.shape)),
            "units": s.n_bits // s.bits_per_unit,
            "bits_per_unit": s.bits_per_unit,
            "start": s.start,
            "stop": s.stop,
        }
        for s in codes.layers
    ]
    return pd.DataFrame(rows)
