"""The random-data control: ``random:NAME`` is dataset NAME with its inputs replaced.

Inputs are drawn i.i.d. uniformly in [min, max] of the real training inputs (per dataset,
one range), with the real dataset's shapes, sizes and labels, so nothing an encoder could
learn links an input to its label. The draw is fixed by ``seed`` (default 0), independent
of the run seed, so every run of a sweep sees the same random inputs.
"""

from __future__ import annotations

import torch

from acthash.data.registry import Dataset, load, register_dataset


@register_dataset("random:", "random:NAME - NAME's shapes and labels, inputs uniform at random")
def load_random(name: str, seed: int = 0, **options) -> Dataset:
    """Dataset ``name`` (loaded with ``options``) with uniformly random inputs."""
    if not name:
        raise ValueError("random data needs a base dataset: use e.g. 'random:digits'")
    real = load(name, **options)
    lo, hi = float(real.x_train.min()), float(real.x_train.max())
    gen = torch.Generator().manual_seed(seed)

    def draw(x: torch.Tensor) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(x.shape, generator=gen, dtype=torch.float32)

    return Dataset(
        name=f"random:{real.name}",
        x_train=draw(real.x_train), y_train=real.y_train.clone(),
        x_test=draw(real.x_test), y_test=real.y_test.clone(),
        class_names=list(real.class_names), input_shape=tuple(real.input_shape),
        normalization={"kind": "uniform", "low": lo, "high": hi},
        info={"base": real.name, "random_seed": seed},
    )
