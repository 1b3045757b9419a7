"""The activation recorder: every ReLU-like call of a forward pass, named, with its input.

Every call of a ReLU-like function during the forward pass is one *layer*, in forward
order, whether it comes from a module (``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PReLU``,
``nn.RReLU``, ``nn.ReLU6``, ``nn.Hardtanh``) or from a functional call inside ``forward``
(``F.relu``, ``torch.relu``, ``Tensor.relu``, their in-place forms, ``F.leaky_relu``,
``F.prelu``, ``F.rrelu``, ``F.relu6``, ``F.hardtanh``). Calls are intercepted with a
``TorchFunctionMode``; the callbacks see the *input* of the call (the pre-activation)
before the function runs, so in-place activations are seen intact.

Kinks: ReLU, LeakyReLU, PReLU and RReLU have one (at 0); ReLU6 and Hardtanh two
(``min_val`` and ``max_val``).

Layer names: the qualified name of the activation module (``features.2``), or for a
functional call ``<enclosing module>:<function>`` (``layer1.0:relu``; ``:relu`` in the root
module's own ``forward``). A name met again in the same pass gets ``#2``, ``#3``, ... so a
ResNet that reuses one ``nn.ReLU`` contributes one layer per call.

Usage::

    with ActivationRecorder(model, before=lambda call: ...) as rec:
        out = rec(x)          # one forward pass; rec.calls = ReLU-like calls in it

The ``with`` block installs the naming hooks and puts the model in eval mode; leaving it
(also on an exception) removes the hooks and restores the train/eval flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from acthash.errors import InputError

__all__ = ["ActivationRecorder", "ActivationCall", "RELU_LIKE_MODULES", "RELU_LIKE_FUNCTIONS",
           "OTHER_ACTIVATIONS", "no_relu_message", "model_device_dtype"]

#: module class -> kind; the functional call inside such a module is attributed to it
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


#: ReLU-like function -> (kind, kinks(args, kwargs) -> tuple of floats)
RELU_LIKE_FUNCTIONS: dict = _build_function_table()

#: activation modules that are not ReLU-like, named in the "no ReLU-like unit" error
OTHER_ACTIVATIONS = (
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


def no_relu_message(model: nn.Module) -> str:
    """The text of :class:`~acthash.errors.NoReluUnitError` for ``model``."""
    others = sorted(
        {type(m).__name__ for m in model.modules() if isinstance(m, OTHER_ACTIVATIONS)}
    )
    found = f" It uses {', '.join(others)}, which are not piecewise linear." if others else ""
    return (
        f"{type(model).__name__} has no ReLU-like unit, so it has no neural code.{found} "
        "acthash captures nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ReLU6, nn.Hardtanh "
        "and their functional forms (F.relu, torch.relu, Tensor.relu, F.leaky_relu, ...): "
        "use one of them, or call them inside forward."
    )


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the model's first parameter (else buffer; else CPU, default)."""
    for p in model.parameters():
        return p.device, p.dtype
    for b in model.buffers():
        return b.device, b.dtype
    return torch.device("cpu"), torch.get_default_dtype()


@dataclass(slots=True)
class ActivationCall:
    """One ReLU-like call of a forward pass.

    index : 0-based position among the pass's ReLU-like calls
    name, kind : layer name (see the module docstring) and activation kind ("relu", ...)
    func : the torch function called
    module : the ReLU-like module making the call (None for a functional call)
    x : the pre-activation (the call's input, not detached), (B, *unit_shape)
    kinks : the kink positions, one or two floats
    """

    index: int
    name: str
    kind: str
    func: Callable
    module: nn.Module | None
    x: torch.Tensor
    kinks: tuple[float, ...]

    @property
    def n_kinks(self) -> int:
        return len(self.kinks)


class _Mode(TorchFunctionMode):
    def __init__(self, recorder: ActivationRecorder):
        super().__init__()
        self.rec = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        entry = RELU_LIKE_FUNCTIONS.get(func)
        if entry is None or not args or not isinstance(args[0], torch.Tensor):
            if rec.other is not None:
                rec.other(func)
            return func(*args, **kwargs)
        call = rec._call(func, entry, args, kwargs)
        if rec.before is not None:
            rec.before(call)
        out = func(*args, **kwargs)
        if rec.after is not None:
            rec.after(call, out)
        return out


class ActivationRecorder:
    """Context manager that reports every ReLU-like call of ``model``'s forward passes.

    before(call) : called with an :class:`ActivationCall` before the function runs
    after(call, output) : called after it, with the function's output
    other(func) : called for every other torch function of the pass (e.g. to reject
        operations that are not piecewise linear)
    eval : put the model in eval mode inside the block (every module's train/eval flag is
        restored on exit; with ``eval=False`` the flags are left alone)

    Inside the block, ``rec(*inputs)`` runs one forward pass (``model(*inputs)``) and
    returns its output; names restart at every pass. ``rec.calls`` is the number of
    ReLU-like calls of the last pass.
    """

    def __init__(self, model: nn.Module, *, before: Callable | None = None,
                 after: Callable | None = None, other: Callable | None = None,
                 eval: bool = True):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.before, self.after, self.other = before, after, other
        self.eval = eval
        self.calls = 0
        self._stack: list = []
        self._seen: dict[str, int] = {}
        self._handles: list = []
        self._flags: list[tuple[nn.Module, bool]] = []

    # -------------------------------------------------------------- model state
    def __enter__(self) -> ActivationRecorder:
        if self._handles:
            raise InputError("this ActivationRecorder is already active; use one per with-block")
        stack = self._stack
        try:
            for name, module in self.model.named_modules():

                def pre(mod, inputs, _name=name):
                    stack.append((_name, mod))

                def post(mod, inputs, output):
                    if stack:
                        stack.pop()

                self._handles.append(module.register_forward_pre_hook(pre))
                self._handles.append(module.register_forward_hook(post))
            if self.eval:
                self._flags = [(m, m.training) for m in self.model.modules()]
                self.model.eval()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._stack.clear()
        if self._flags:
            self.model.train(self._flags[0][1])  # the root's flag, through its train()
            for m, flag in self._flags:  # then each module's own flag
                if m.training != flag:
                    m.training = flag
        self._flags = []

    # -------------------------------------------------------------- one pass
    def __call__(self, *args, **kwargs):
        if not self._handles:
            raise InputError("run the forward pass inside `with ActivationRecorder(model) as "
                             "rec:`")
        self._stack.clear()
        self._seen.clear()
        self.calls = 0
        with _Mode(self):
            return self.model(*args, **kwargs)

    def _call(self, func, entry, args, kwargs) -> ActivationCall:
        kind, kinks_of = entry
        kinks = kinks_of(args, kwargs)
        owner_name, owner = self._stack[-1] if self._stack else ("", None)
        if owner is not None and type(owner) in RELU_LIKE_MODULES:
            name, kind, module = owner_name, RELU_LIKE_MODULES[type(owner)], owner
        else:
            fname = getattr(func, "__name__", kind).rstrip("_")
            name, module = f"{owner_name}:{fname}", None
        count = self._seen.get(name, 0) + 1
        self._seen[name] = count
        index = self.calls
        self.calls += 1
        return ActivationCall(index, f"{name}#{count}" if count > 1 else name, kind, func,
                              module, args[0], kinks)
