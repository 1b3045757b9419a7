"""A mixin for the dataclass configs of runs and studies: dict round trip with a clear error
for unknown keys."""

from __future__ import annotations

from dataclasses import asdict, fields

from acthash.errors import InputError


class ConfigDict:
    """``to_dict()`` and ``from_dict(d)`` for a dataclass; ``_kind`` names it in errors."""

    _kind = "config"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown {cls._kind} keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)
