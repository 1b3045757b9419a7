"""Models saved as files: TorchScript (``torch.jit.save``) and ``torch.export`` programs
(``torch.export.save``, ``.pt2``), turned into ordinary modules whose ReLU-like calls the
activation recorder sees.

A compiled module hides its activations from Python hooks, so both are brought to one
``torch.fx.GraphModule``: a ``.pt2`` program through ``ExportedProgram.module()``, a
TorchScript module through torch's TorchScript-to-export converter (traced on two example
rows, the batch dimension left free). Each ATen activation in the graph (``relu``,
``leaky_relu``, ``hardtanh``, ``relu6``, ``prelu``, ``rrelu`` and their in-place forms) is
replaced by its ``torch.nn.functional`` call, which the recorder intercepts; the layers are
then named ``:relu``, ``:relu#2``, ... in forward order.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from acthash.errors import CorruptFileError, InputError, MissingFileError

__all__ = ["load_model_file", "is_model_file", "MODEL_FILE_SUFFIXES"]

#: suffixes read as a ``torch.export`` program; any other file is tried as TorchScript
MODEL_FILE_SUFFIXES = (".pt2",)


def is_model_file(spec) -> bool:
    """Whether ``spec`` names an existing file (a model file rather than a registry name or
    ``module:callable``)."""
    try:
        return Path(spec).is_file()
    except (TypeError, OSError):
        return False


def _functional_table():
    import torch
    import torch.nn.functional as F

    aten = torch.ops.aten

    def relu(x):
        return F.relu(x)

    def relu_(x):
        return F.relu(x, inplace=True)

    table = {aten.relu.default: relu, aten.relu_.default: relu_,
             aten.leaky_relu.default: F.leaky_relu, aten.leaky_relu_.default: F.leaky_relu_,
             aten.hardtanh.default: F.hardtanh, aten.hardtanh_.default: F.hardtanh_,
             aten.prelu.default: F.prelu}
    for name, fn in (("relu6", F.relu6), ("rrelu", F.rrelu)):
        if hasattr(aten, name):
            table[getattr(aten, name).default] = fn
    return table


def recordable(gm):
    """A fresh ``GraphModule`` of ``gm``'s graph with every ATen activation replaced by its
    functional call (a fresh module also drops the export wrapper's refusal of ``train()``
    and ``eval()``, which the recorder calls)."""
    import torch

    table = _functional_table()
    graph = gm.graph
    for node in graph.nodes:
        if node.op == "call_function" and node.target in table:
            node.target = table[node.target]
    out = torch.fx.GraphModule(gm, graph)
    out.recompile()
    return out.eval()


def load_model_file(path, example=None):
    """The model in file ``path`` as a module the recorder can read, in eval mode.

    ``.pt2``: a ``torch.export`` program (export it with a dynamic batch dimension, e.g.
    ``dynamic_shapes={"x": {0: torch.export.Dim("batch")}}``, so any batch size runs); any
    other file: TorchScript, converted on ``example`` (a tensor of a few input rows).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no model file at {path}")
    if path.suffix in MODEL_FILE_SUFFIXES:
        try:
            program = torch.export.load(str(path))
        except Exception as e:  # torch raises many kinds for a foreign or damaged file
            raise CorruptFileError(
                f"{path} is not a readable torch.export program ({type(e).__name__}: {e}); "
                "write it with torch.export.save(torch.export.export(model, (x,)), path)"
            ) from e
        return recordable(program.module())
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the user chose it
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise CorruptFileError(
            f"{path} is not a TorchScript file ({type(e).__name__}: {e}); save the model "
            "with torch.jit.save, export it to a .pt2 file, or pass a state_dict as "
            "--checkpoint together with --model"
        ) from e
    if example is None:
        raise InputError("a TorchScript model is converted on example inputs: pass example")
    try:
        from torch._export.converter import TS2EPConverter

        program = TS2EPConverter(scripted, (example,)).convert()
    except Exception as e:  # the converter does not cover every TorchScript program
        raise InputError(
            f"cannot convert the TorchScript model {path} to a graph acthash can record "
            f"({type(e).__name__}: {e}); export it with torch.export to a .pt2 file instead"
        ) from e
    return recordable(program.module())
