"""Regenerate the console output README.md shows, from the program itself.

    python tools/readme_output.py            # run the commands, rewrite the output blocks
    python tools/readme_output.py --check    # exit 1 with a diff when a block is stale
    python tools/readme_output.py --list     # the blocks and their commands

A generated block in README.md reads::

    <!-- output: NAME -->
    ```console
    $ acthash run ...         <- the command shown (OUTPUTS[NAME].shown)
    ...                       <- what the program printed
    ```
    <!-- /output -->

``NAME`` is a key of :data:`OUTPUTS`. Each command runs as a subprocess in a scratch
directory (so run directories land in ``runs/`` there), without progress bars, with a fixed
terminal width; nothing here re-renders a table, so the README follows the program's own
output. Before comparing, lines that differ between two identical runs are normalised
(:func:`normalise`: seconds, run-directory time stamps).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COLUMNS = 100  # the terminal width the shown output is rendered at


@dataclass(frozen=True)
class Output:
    """A command whose output the README shows: ``shown`` (after ``$ ``) and the extra
    arguments it runs with that a reader need not type."""

    shown: tuple[str, ...]
    extra: tuple[str, ...] = ("--no-progress",)

    def argv(self) -> list[str]:
        if self.shown[0] != "acthash":
            raise ValueError(f"only acthash commands are shown, got {self.shown[0]!r}")
        return [sys.executable, "-m", "acthash.cli", *self.shown[1:], *self.extra]


OUTPUTS: dict[str, Output] = {
    "quick-tour": Output(("acthash", "run", "--dataset", "digits", "--width", "100",
                          "--depth", "1", "--epochs", "20", "--checkpoints", "0,1,5,20")),
}

_BLOCK = re.compile(r"(<!-- output: (?P<name>[\w.-]+) -->\n)```console\n(?P<body>.*?)```\n"
                    r"(<!-- /output -->)", re.S)
_STAMP = re.compile(r"\d{8}-\d{6}(-\d+)?")
_SECONDS = re.compile(r"second|\btime\b|\bs\b", re.I)
_BOX = set("┏┃┡│└┗┠┣╭╰|+")  # the first character of a table line


def normalise(text: str) -> str:
    """``text`` with what varies between identical runs masked: run-directory time stamps
    (``20261201-081512`` -> ``<time>``), the numbers on lines about seconds and every
    number of a table titled with seconds (the timing table)."""
    out, timing = [], False
    for line in text.splitlines():
        line = _STAMP.sub("<time>", line.rstrip())
        boxed = line.lstrip()[:1] in _BOX
        if _SECONDS.search(line) and not boxed:
            timing = True  # a table title: the table below it is timings
        elif not boxed:
            timing = False
        if timing or _SECONDS.search(line):
            line = re.sub(r"\s+", " ", re.sub(r"\d+(\.\d+)?", "#", line))  # and the padding
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def run_output(name: str) -> str:
    """The console text of block ``name``: ``$ <command>`` and what the program printed."""
    spec = OUTPUTS[name]
    env = {**os.environ, "COLUMNS": str(COLUMNS), "NO_COLOR": "1", "TERM": "dumb",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="acthash-readme-") as cwd:
        res = subprocess.run(spec.argv(), cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(spec.shown)} failed ({res.returncode}):\n{res.stderr}")
    return f"$ {' '.join(spec.shown)}\n{res.stdout.rstrip()}\n"


def blocks(text: str) -> dict[str, str]:
    """NAME -> the console text of each output block of ``text`` (README.md)."""
    found: dict[str, str] = {}
    for m in _BLOCK.finditer(text):
        if m["name"] in found:
            raise ValueError(f"output block {m['name']!r} appears twice")
        found[m["name"]] = m["body"]
    return found


def rewrite(text: str, outputs: dict[str, str]) -> str:
    """``text`` with each named block's body replaced by ``outputs[name]``."""
    def sub(m: re.Match) -> str:
        body = outputs.get(m["name"], m["body"])
        return f"{m.group(1)}```console\n{body}```\n{m.group(4)}"

    return _BLOCK.sub(sub, text)


def stale(text: str, outputs: dict[str, str]) -> list[str]:
    """Unified diffs of the blocks whose normalised text differs from ``outputs``."""
    diffs = []
    for name, shown in blocks(text).items():
        if name not in outputs:
            continue
        a, b = normalise(shown).splitlines(), normalise(outputs[name]).splitlines()
        if a != b:
            diffs.append("\n".join(difflib.unified_diff(a, b, f"README.md ({name})",
                                                        "the program", lineterm="")))
    return diffs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    p.add_argument("--list", action="store_true", help="list the blocks and stop")
    p.add_argument("names", nargs="*", help="blocks to regenerate (default: all)")
    args = p.parse_args(argv)
    text = README.read_text()
    shown = blocks(text)
    unknown = sorted(set(shown) - set(OUTPUTS))
    if unknown:
        print(f"README.md has output blocks {unknown} that OUTPUTS does not define",
              file=sys.stderr)
        return 2
    if args.list:
        for name in shown:
            print(f"{name}: {' '.join(OUTPUTS[name].shown)}")
        return 0
    names = args.names or list(shown)
    outputs = {n: run_output(n) for n in names}
    if args.check:
        diffs = stale(text, outputs)
        for d in diffs:
            print(d)
        return 1 if diffs else 0
    new = rewrite(text, outputs)
    if new != text:
        README.write_text(new)
        print(f"rewrote {', '.join(names)} in {README.name}")
    else:
        print("README.md is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
