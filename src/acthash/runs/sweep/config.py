"""Sweep files and grids: :class:`SweepConfig`, its :class:`Cell` s and their cache keys."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from acthash.errors import ConfigError, MissingFileError
from acthash.runs.config import RunConfig

__all__ = ["SweepConfig", "Cell", "cell_key", "load_sweep_config", "check_datasets"]

_NOT_IN_KEY = ("device", "save_codes")  # do not change what a cell computes
_KEY_VERSION = 1  # bump when the meaning of cached results changes
_PHASE_KEYS = {"under", "sufficient", "plateau_tol", "redundancy", "accuracy"}
_TOP_KEYS = {"name", "description", "factor", "hue", "base", "grid", "seeds", "repeats",
             "phase", "provenance"}


def _run_fields() -> set[str]:
    return {f.name for f in fields(RunConfig)}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cell_key(cfg: RunConfig | dict) -> str:
    """Hex SHA-256 of everything that determines a cell's results (24 characters)."""
    d = cfg.to_dict() if isinstance(cfg, RunConfig) else dict(cfg)
    d = {k: v for k, v in d.items() if k not in _NOT_IN_KEY}
    if d.get("checkpoints"):
        d["checkpoints"] = sorted(set(int(c) for c in d["checkpoints"]))
    return hashlib.sha256(_canonical({"v": _KEY_VERSION, "cfg": d}).encode()).hexdigest()[:24]


@dataclass
class Cell:
    """One grid point x seed: ``index`` (grid order), ``key``, the full run ``config``
    and the ``params`` that vary across the grid (grid keys and ``seed``)."""

    index: int
    key: str
    config: dict
    params: dict


@dataclass
class SweepConfig:
    """A grid of runs. ``grid`` maps RunConfig fields to value lists; ``base`` fixes the
    other fields; ``seeds`` are the repeats. ``factor``/``hue`` tell the figures what to
    put on the x axis / in the legend; ``phase`` holds phase-chart threshold overrides."""

    name: str = "sweep"
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    factor: str | None = None
    hue: str | None = None
    description: str = ""
    phase: dict = field(default_factory=dict)
    # where the recipe comes from and every deviation from it (presets fill it in)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _run_fields()
        bad = sorted((set(self.base) | set(self.grid)) - names)
        if bad:
            raise ConfigError(f"sweep keys {bad} are not RunConfig fields; valid: {sorted(names)}")
        if "seed" in self.grid or "seed" in self.base:
            raise ConfigError("give the repeats as `seeds: [...]` or `repeats: N`, not as 'seed'")
        for k, v in self.grid.items():
            if not isinstance(v, (list, tuple)) or len(v) == 0:
                raise ConfigError(f"grid.{k} must be a non-empty list of values, got {v!r}")
        if not self.seeds:
            raise ConfigError("a sweep needs at least one seed")
        self.seeds = [int(s) for s in self.seeds]
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {self.seeds} repeat a value")
        bad = sorted(set(self.phase) - _PHASE_KEYS)
        if bad:
            raise ConfigError(f"unknown phase keys {bad}; valid: {sorted(_PHASE_KEYS)}")
        for axis in (self.factor, self.hue):
            if axis is not None and axis not in self.grid and axis not in ("epoch", "n_train"):
                raise ConfigError(
                    f"factor/hue {axis!r} is neither a grid key {sorted(self.grid)} nor 'epoch'"
                )

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        d = dict(d)
        unknown = sorted(set(d) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"unknown sweep keys {unknown}; valid keys: {sorted(_TOP_KEYS)}")
        if "repeats" in d:
            if "seeds" in d:
                raise ConfigError("give either `seeds` or `repeats`, not both")
            d["seeds"] = list(range(int(d.pop("repeats"))))
        return cls(**{k: v for k, v in d.items() if v is not None or k in ("factor", "hue")})

    @classmethod
    def from_file(cls, path: str | Path) -> SweepConfig:
        return cls.from_dict(load_sweep_config(path))

    def to_dict(self) -> dict:
        return asdict(self)

    def cells(self) -> list[Cell]:
        """The cells in grid order (grid keys in file order, seeds innermost); duplicate
        configurations (same key) appear once."""
        keys = list(self.grid)
        out: list[Cell] = []
        seen: set[str] = set()
        for values in itertools.product(*(self.grid[k] for k in keys)):
            for seed in self.seeds:
                params = dict(zip(keys, values, strict=True))
                cfg = RunConfig.from_dict({**self.base, **params, "seed": seed})
                cfg.checkpoint_epochs()  # validate early
                key = cell_key(cfg)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Cell(len(out), key, cfg.to_dict(), {**params, "seed": seed}))
        return out


def _yaml_load(text: str):
    """``yaml.safe_load`` that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def load_sweep_config(path: str | Path) -> dict:
    """Read a YAML or TOML sweep file into a dict."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no sweep file at {path}; pass a .yaml/.yml/.toml file or --preset")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; give a YAML or TOML sweep file") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            d = _yaml_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{path} is not valid YAML{where}: {problem}; fix the file "
                              "(docs/sweeps.md shows the format)"
                              ) from None
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}; fix the file") from None
    else:
        raise ConfigError(f"{path}: unknown sweep file type {path.suffix!r}; use .yaml, .yml or .toml")
    if not isinstance(d, dict):
        raise ConfigError(f"{path} does not hold a mapping of sweep keys")
    return d


def check_datasets(config: SweepConfig) -> None:
    """Fail before any training when a dataset is unknown or not on this machine."""
    from acthash.data import list_datasets

    names = config.grid.get("dataset", [config.base.get("dataset", RunConfig.dataset)])
    known = {d["name"]: d for d in list_datasets()}

    def check(name: str) -> None:
        prefix, sep, rest = name.partition(":")
        if sep and f"{prefix}:" in known:
            if prefix == "random":
                check(rest)
            return
        d = known.get(name)
        if d is None:
            raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(known))} "
                             "(see `acthash data list`)")
        if not d["available"]:
            raise MissingFileError(
                f"dataset {name!r} is not available on this machine; {d['how_to_get']} "
                "(or use --dataset digits)"
            )

    for name in names:
        check(str(name))
