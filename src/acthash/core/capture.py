"""Find the ReLU-like units of any ``nn.Module`` and record their activation patterns.

Every call of a ReLU-like function during the forward pass is one *layer* of the code, in
forward order, whether it comes from a module (``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PReLU``,
``nn.RReLU``, ``nn.ReLU6``, ``nn.Hardtanh``) or from a functional call inside ``forward``
(``F.relu``, ``torch.relu``, ``Tensor.relu``, their in-place forms, ``F.leaky_relu``,
``F.prelu``, ``F.rrelu``, ``F.relu6``, ``F.hardtanh``). Calls are intercepted with a
``TorchFunctionMode`` and the bits are computed from the *input* of the call (the
pre-activation) before the function runs, so in-place activations are captured correctly.

Bits: one per unit and kink, 1 where the pre-activation is strictly above the kink. ReLU,
LeakyReLU, PReLU and RReLU have one kink (at 0); ReLU6 and Hardtanh have two
(``min_val`` and ``max_val``), stored kink-major: the layer's first ``U`` bits are
``x > min_val`` for its ``U`` units, the next ``U`` bits ``x > max_val``.

Layer names: the qualified name of the activation module (``features.2``), or for a
functional call ``<enclosing module>:<function>`` (``layer1.0:relu``; ``:relu`` in the
root module's own ``forward``). A module or call met again in the same forward pass gets ``#2``, ``#3``, ... so a
ResNet that reuses one ``nn.ReLU`` contributes one layer per call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from acthash._utils.run import progress_bar
from acthash.core.codes import CodesWriter, LayerSpan, NeuralCodes
from acthash.errors import InputError, NoReluUnitError

__all__ = [
    "NoReluUnitError",
    "Capture",
    "capture",
    "neural_codes",
    "list_layers",
    "RELU_LIKE_MODULES",
    "ACTIVATION_FUNCTIONS",
    "ActivationRecorder",
    "install_name_hooks",
    "no_relu_message",
]

# Module classes whose call is one layer; the functional call inside is attributed to them.
RELU_LIKE_MODULES: dict[type, str] = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.RReLU: "rrelu",
    nn.ReLU6: "relu6",
    nn.Hardtanh: "hardtanh",
}


def _one_kink(args, kwargs):
    return (0.0,)


def _hardtanh_kinks(args, kwargs):
    lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
    hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
    return (float(lo), float(hi))


def _relu6_kinks(args, kwargs):
    return (0.0, 6.0)


def _build_function_table():
    table = {}

    def add(fn, kind, kinks):
        if fn is not None:
            table[fn] = (kind, kinks)

    for fn in (F.relu, torch.relu, torch.relu_, getattr(F, "relu_", None)):
        add(fn, "relu", _one_kink)
    add(torch.Tensor.relu, "relu", _one_kink)
    add(torch.Tensor.relu_, "relu", _one_kink)
    for fn in (F.leaky_relu, getattr(F, "leaky_relu_", None)):
        add(fn, "leaky_relu", _one_kink)
    for fn in (F.prelu, torch.prelu):
        add(fn, "prelu", _one_kink)
    for fn in (F.rrelu, getattr(F, "rrelu_", None), torch.rrelu, torch.rrelu_):
        add(fn, "rrelu", _one_kink)
    add(F.relu6, "relu6", _relu6_kinks)
    for fn in (F.hardtanh, getattr(F, "hardtanh_", None)):
        add(fn, "hardtanh", _hardtanh_kinks)
    return table


ACTIVATION_FUNCTIONS = _build_function_table()

# Activation modules that are not ReLU-like, named in the "no ReLU-like unit" error.
_OTHER_ACTIVATIONS = (
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
)


@dataclass
class _Record:
    name: str
    kind: str
    shape: tuple[int, ...]
    kinks: tuple[float, ...]
    bits: torch.Tensor  # (B, n_kinks * U) bool


class ActivationRecorder(TorchFunctionMode):
    """Intercepts ReLU-like calls; computes their bits from the pre-activation.

    On the first batch the bits of every call are kept (to learn the layer list). Later
    batches write the bits of selected layers straight into one (B, n_bits) bool buffer,
    so no concatenation is needed.
    """

    def __init__(self, module_stack: list, plan: list | None = None,
                 buffer: torch.Tensor | None = None):
        super().__init__()
        self.stack = module_stack
        self.records: list[_Record] = []
        self.seen: dict[str, int] = {}
        self.plan = plan  # per call: (start, n_units) in the buffer, or None if not selected
        self.buffer = buffer
        self.host_buffer = (
            buffer.numpy() if buffer is not None and buffer.device.type == "cpu" else None
        )
        self.calls = 0

    def _name(self, func, kind: str) -> tuple[str, str]:
        owner_name, owner = self.stack[-1] if self.stack else ("", None)
        if owner is not None and type(owner) in RELU_LIKE_MODULES:
            name, kind = owner_name, RELU_LIKE_MODULES[type(owner)]
        else:
            fname = getattr(func, "__name__", kind).rstrip("_")
            name = f"{owner_name}:{fname}"
        count = self.seen.get(name, 0) + 1
        self.seen[name] = count
        return (f"{name}#{count}" if count > 1 else name), kind

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = ACTIVATION_FUNCTIONS.get(func)
        if entry is not None and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            kind, kinks_of = entry
            kinks = kinks_of(args, kwargs)
            flat = x.detach().reshape(x.shape[0], -1)
            if self.plan is not None:
                i = self.calls
                self.calls += 1
                if i >= len(self.plan):
                    raise InputError(_CONTROL_FLOW)
                slot = self.plan[i]
                if slot is not None:
                    start, units = slot
                    if flat.shape[1] != units:
                        raise InputError(_CONTROL_FLOW)
                    host = self.host_buffer
                    if host is not None and flat.device.type == "cpu" and flat.dtype in _NUMPY_OK:
                        flat_np = flat.numpy()  # numpy's strided compare is ~5x torch's here
                        for j, k in enumerate(kinks):
                            lo = start + j * units
                            np.greater(flat_np, k, out=host[:, lo : lo + units])
                    else:
                        for j, k in enumerate(kinks):
                            lo = start + j * units
                            torch.gt(flat, k, out=self.buffer[:, lo : lo + units])
            else:
                name, kind = self._name(func, kind)
                if len(kinks) == 1:
                    bits = flat > kinks[0]
                else:
                    bits = torch.cat([flat > k for k in kinks], dim=1)
                self.records.append(_Record(name, kind, tuple(x.shape[1:]), kinks, bits))
        return func(*args, **kwargs)


_NUMPY_OK = (torch.float32, torch.float64, torch.float16)

_CONTROL_FLOW = (
    "this batch went through different ReLU-like layers than the first batch "
    "(data-dependent control flow?); neural codes need one fixed layer list"
)


def install_name_hooks(model: nn.Module, stack: list):
    handles = []
    for name, module in model.named_modules():

        def pre(mod, inputs, _name=name):
            stack.append((_name, mod))

        def post(mod, inputs, output):
            if stack:
                stack.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles


def _model_device_dtype(model: nn.Module):
    for p in model.parameters():
        return p.device, p.dtype
    for b in model.buffers():
        return b.device, b.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _begin_capture(model: nn.Module, device):
    """Check ``model``, put it in eval mode and install the name hooks.

    Returns ``(device, dtype, stack, restore)``: the device to run on (``device`` or the
    model's), the model's float dtype, the module-name stack the hooks fill, and a callable
    that removes the hooks and restores the model's train/eval state.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model_device, model_dtype = _model_device_dtype(model)
    device = torch.device(device) if device is not None else model_device
    was_training = model.training
    model.eval()
    stack: list = []
    handles = install_name_hooks(model, stack)

    def restore() -> None:
        for h in handles:
            h.remove()
        model.train(was_training)

    return device, model_dtype, stack, restore


def _iter_batches(data, batch_size: int):
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


def _select(names: list[str], layers) -> list[int]:
    if layers is None or layers == "all":
        return list(range(len(names)))
    if isinstance(layers, str):
        rx = re.compile(layers)
        idx = [i for i, n in enumerate(names) if rx.search(n)]
    else:
        wanted = list(layers)
        missing = [w for w in wanted if w not in names]
        if missing:
            raise InputError(
                f"unknown layer(s) {missing}; captured layers are: {', '.join(names)}"
            )
        idx = [i for i, n in enumerate(names) if n in set(wanted)]
    if not idx:
        raise InputError(f"no captured layer matches {layers!r}; layers are: {', '.join(names)}")
    return idx


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
    device, model_dtype, stack, restore = _begin_capture(model, device)
    packed_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    output_parts: list[torch.Tensor] = []
    signature = None
    spans: list[LayerSpan] = []
    chosen: list[int] = []
    plan: list = []
    buffer = None
    out_path, writer = out, None
    n_seen = 0
    batches = progress_bar(_iter_batches(data, batch_size), enabled=progress, desc="capture",
                           unit="batch")
    try:
        with torch.no_grad():
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
                stack.clear()
                if signature is None:
                    recorder = ActivationRecorder(stack)
                    with recorder:
                        out = model(x)
                    recs = recorder.records
                    if not recs:
                        raise NoReluUnitError(no_relu_message(model))
                    signature = len(recs)
                    chosen = _select([r.name for r in recs], layers)
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
                    del recorder, recs
                else:
                    if buffer is None or buffer.shape[0] != x.shape[0]:
                        buffer = torch.empty((x.shape[0], spans[-1].stop), dtype=torch.bool,
                                             device=device)
                    recorder = ActivationRecorder(stack, plan, buffer)
                    with recorder:
                        out = model(x)
                    if recorder.calls != signature:
                        raise InputError(_CONTROL_FLOW)
                    bits = buffer
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
    finally:
        restore()
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


def no_relu_message(model: nn.Module) -> str:
    others = sorted(
        {type(m).__name__ for m in model.modules() if isinstance(m, _OTHER_ACTIVATIONS)}
    )
    found = f" It uses {', '.join(others)}, which are not piecewise linear." if others else ""
    return (
        f"{type(model).__name__} has no ReLU-like unit, so it has no neural code.{found} "
        "acthash captures nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ReLU6, nn.Hardtanh "
        "and their functional forms (F.relu, torch.relu, Tensor.relu, F.leaky_relu, ...): "
        "use one of them, or call them inside forward."
    )
