"""One layer selection rule for captured layers and for codes.

``layers`` is ``None`` or ``"all"`` (every layer), a regular expression searched in each
name, or a list of names (each must exist). Used by :func:`acthash.core.capture.capture`,
:meth:`acthash.core.codes.NeuralCodes.select_layers` and the aggregate codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from acthash._utils.validate import compile_layer_pattern
from acthash.errors import InputError

__all__ = ["choose_layers"]


def choose_layers(names: Sequence[str], layers, *, noun: str = "layer") -> list[int]:
    """Indices (forward order) of the ``names`` chosen by ``layers``.

    noun : how the layers are called in the errors ("layer", "captured layer").
    Raises InputError for an unknown name in a list, or when nothing is chosen.
    """
    names = list(names)
    if layers is None or layers == "all":
        return list(range(len(names)))
    if isinstance(layers, str):
        rx = compile_layer_pattern(layers)
        idx = [i for i, n in enumerate(names) if rx.search(n)]
    else:
        wanted = list(layers)
        missing = [w for w in wanted if w not in names]
        if missing:
            raise InputError(f"unknown layer(s) {missing}; {noun}s are: {', '.join(names)}")
        keep = set(wanted)
        idx = [i for i, n in enumerate(names) if n in keep]
    if not idx:
        raise InputError(f"no {noun} matches {layers!r}; layers are: {', '.join(names)}")
    return idx
