"""Properties of the network itself: its loss and accuracy, and its dead units."""

from __future__ import annotations

import numpy as np

from acthash.core.codes import as_codes
from acthash.errors import InputError

__all__ = ["network_scores", "dead_unit_fractions"]


def network_scores(outputs, labels) -> dict:
    """The network's own mean cross-entropy loss (nats) and accuracy from (N, C) logits."""
    import torch
    import torch.nn.functional as F

    logits = torch.as_tensor(outputs).float()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if logits.ndim != 2 or y.ndim != 1 or logits.shape[0] != y.shape[0]:
        raise InputError(f"outputs {tuple(logits.shape)} do not match {y.shape[0]} labels")
    return {
        "loss": float(F.cross_entropy(logits, y)),
        "accuracy": float((logits.argmax(1) == y).float().mean()),
    }


def dead_unit_fractions(codes, prefix: str = "dead_units") -> dict:
    """Fraction of units never active (every bit 0 on every row) over ``codes``, per layer.

    codes: :class:`NeuralCodes` of the training set (layer spans used; a plain array counts
    as one layer of one-bit units). A unit with two kinks (ReLU6, Hardtanh; bits stored
    kink-major) is dead when none of its bits is ever 1. Returns ``{"dead_units": fraction
    over all units, "dead_units_l1": first captured layer, "dead_units_l2": ...}`` (fractions
    in [0, 1]; layers numbered in forward order; ``prefix`` names the keys: runs store
    ``dead_units_train``, ``dead_units_train_l1``, ...). A redundancy plateau of a wide network
    with many dead units is a training failure, not a property of the code.
    """
    codes = as_codes(codes)
    if len(codes) == 0:
        raise InputError("no codes: dead units need at least one training example")
    ever = np.zeros(codes.n_bytes, dtype=np.uint8)
    for lo in range(0, len(codes), 65536):
        ever |= np.bitwise_or.reduce(np.asarray(codes.packed[lo: lo + 65536]), axis=0)
    ever = np.unpackbits(ever, count=codes.n_bits).astype(bool)
    spans = codes.layers or []
    if not spans:
        dead = ~ever
        return {prefix: float(dead.mean()), f"{prefix}_l1": float(dead.mean())}
    out, n_dead, n_units = {}, 0, 0
    for i, s in enumerate(spans, start=1):
        bits = ever[s.start: s.stop].reshape(s.bits_per_unit, -1)  # kink-major
        dead = ~bits.any(axis=0)
        out[f"{prefix}_l{i}"] = float(dead.mean()) if dead.size else 0.0
        n_dead += int(dead.sum())
        n_units += dead.size
    return {prefix: n_dead / max(n_units, 1), **out}


def _measure(m) -> dict:
    """Record step (see :mod:`acthash.properties.catalog`): ``net_loss_{split}`` and
    ``net_acc_{split}`` of each split whose network outputs were given."""
    rec = {}
    for split, outputs, y in (("train", m.train_outputs, m.y_train),
                              ("test", m.test_outputs, m.y_test)):
        if outputs is not None:
            s = network_scores(outputs, y)
            rec[f"net_loss_{split}"] = s["loss"]
            rec[f"net_acc_{split}"] = s["accuracy"]
    return rec
