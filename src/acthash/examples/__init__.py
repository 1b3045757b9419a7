"""Example sweep files shipped inside the package (so a wheel has them too).

The YAML files beside this module are package data; the repository's ``examples/`` folder
links to them. An example's name is its file name without ``.yaml``, with dashes:
``sweep_digits.yaml`` is ``sweep-digits``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from acthash._utils.io import atomic_path
from acthash.errors import InputError

__all__ = ["example_text", "list_examples", "write_example"]


def _files() -> dict[str, object]:
    root = resources.files(__name__)
    return {p.name[: -len(".yaml")].replace("_", "-"): p
            for p in sorted(root.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")}


def _summary(text: str) -> str:
    """The sweep's ``description``, else its first comment line."""
    import yaml

    description = (yaml.safe_load(text) or {}).get("description")
    if description:
        return " ".join(str(description).split())
    comments = [ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")]
    return comments[0] if comments else ""


def list_examples() -> list[dict[str, str]]:
    """``[{"name", "file", "summary"}]`` of every bundled example, sorted by name."""
    out = []
    for name, path in _files().items():
        out.append({"name": name, "file": path.name, "summary": _summary(path.read_text())})
    return out


def example_text(name: str) -> str:
    """The text of the example ``name`` (``sweep-digits``; the file name is accepted too)."""
    files = _files()
    key = name[: -len(".yaml")] if name.endswith(".yaml") else name
    key = key.replace("_", "-")
    if key not in files:
        raise InputError(f"no example {name!r}; examples: {', '.join(files)}")
    return files[key].read_text(encoding="utf-8")


def write_example(name: str, out: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Write the example ``name`` to ``out`` (default: its file name in the current
    directory); refuses to replace an existing file unless ``overwrite``."""
    text = example_text(name)
    key = (name[: -len(".yaml")] if name.endswith(".yaml") else name).replace("_", "-")
    out = Path(out) if out is not None else Path(_files()[key].name)
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; pass --force to replace it, or another --out")
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return out
