"""The README shows what the program does: every Python block runs as written, in a fresh
interpreter, and prints the numbers its comments show; every console block between
``<!-- output: NAME -->`` markers is what the command prints (``tools/readme_output.py``
regenerates them)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _tool():
    spec = importlib.util.spec_from_file_location("readme_output", ROOT / "tools" /
                                                  "readme_output.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_output"] = mod
    spec.loader.exec_module(mod)
    return mod


def shown_prints(block: str) -> dict[int, list[str]]:
    """Line number (1-based, in the block) -> the numbers a ``print(...)  # ...`` comment
    shows, for every print whose comment shows numbers."""
    out = {}
    for i, line in enumerate(block.splitlines(), start=1):
        code, sep, comment = line.partition("  #")
        if sep and code.lstrip().startswith("print(") and _NUMBER.search(comment):
            out[i] = _NUMBER.findall(comment)
    return out


#: prints tag their output with the line they were called from
_PREFIX = ("import builtins as _b, sys as _s\n"
           "_p = _b.print\n"
           "_t = lambda *a, **k: _p(f'@@{_s._getframe(1).f_lineno - 3}@@', *a, **k); "
           "_t.__name__, _t.__qualname__, _t.__module__ = 'print', 'print', 'builtins'; "
           "_b.print = _t\n")  # named like the builtin: numba registers print by its name


def printed(stdout: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for m in re.finditer(r"@@(\d+)@@ ?(.*)", stdout):
        out.setdefault(int(m[1]), m[2])
    return out


def test_the_readme_has_python_blocks_and_output_blocks():
    assert BLOCKS
    tool = _tool()
    shown = tool.blocks(TEXT)
    assert "quick-tour" in shown and set(shown) <= set(tool.OUTPUTS)
    for name, body in shown.items():  # each block starts with the command it shows
        assert body.startswith(f"$ {' '.join(tool.OUTPUTS[name].shown)}\n"), name
    # the quick tour shown is the one `make demo` runs
    assert " ".join(tool.OUTPUTS["quick-tour"].shown[1:]) in (ROOT / "Makefile").read_text()


def test_shown_numbers_are_read_from_the_comments():
    block = "x = 1\nprint(x)  # 1.0\nprint(y)   # seconds per property\nprint(z)  # 0.5 and 2\n"
    assert shown_prints(block) == {2: ["1.0"], 4: ["0.5", "2"]}
    assert printed("@@2@@ 1.0\nnoise\n@@4@@ 0.5 2\n") == {2: "1.0", 4: "0.5 2"}


def test_normalise_masks_what_varies_between_runs():
    tool = _tool()
    a = "run directory: runs/digits-mlp-w100-d1-s0-20261201-081512\n│ seconds_train │ 1.25 │\n"
    b = "run directory: runs/digits-mlp-w100-d1-s0-20261203-101010-2\n│ seconds_train │ 3.5 │\n"
    assert tool.normalise(a) == tool.normalise(b)
    assert tool.normalise("│ redundancy │ 0.0007 │") != tool.normalise("│ redundancy │ 0.0008 │")
    timing = "      seconds\n┏━━━┓\n│ K-Means │ {} │\n└───┘\nrun directory: x\n"
    assert tool.normalise(timing.format("  81.9")) == tool.normalise(timing.format("   5.3"))
    assert "81.9" not in tool.normalise(timing.format("81.9"))
    text = "a\n<!-- output: quick-tour -->\n```console\n$ old\n```\n<!-- /output -->\nb\n"
    new = tool.rewrite(text, {"quick-tour": "$ new\n1\n"})
    assert new == "a\n<!-- output: quick-tour -->\n```console\n$ new\n1\n```\n<!-- /output -->\nb\n"
    assert tool.stale(new, {"quick-tour": "$ new\n1\n"}) == []
    assert tool.stale(new, {"quick-tour": "$ new\n2\n"})


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_and_prints_what_it_shows(index, tmp_path):
    block = BLOCKS[index]
    res = subprocess.run([sys.executable, "-c", _PREFIX + block], cwd=tmp_path,
                         capture_output=True, text=True, timeout=900,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin",
                              "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2"})
    assert res.returncode == 0, f"README block {index} failed:\n{block}\n{res.stderr}"
    got = printed(res.stdout)
    for line, numbers in shown_prints(block).items():
        assert line in got, f"README block {index}, line {line}: nothing printed"
        assert _NUMBER.findall(got[line]) == numbers, (
            f"README block {index}, line {line} shows {numbers}, the program printed "
            f"{got[line]!r}")


@pytest.mark.slow
def test_the_quick_tour_output_is_what_the_program_prints():
    """Runs the quick tour once (about a minute on 2 cores)."""
    tool = _tool()
    diffs = tool.stale(TEXT, {"quick-tour": tool.run_output("quick-tour")})
    assert not diffs, ("README.md's quick tour is stale; run `python tools/readme_output.py`"
                       "\n" + "\n".join(diffs))
