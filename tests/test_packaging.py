"""Packaging for users: the metadata does not replace a user's torch, the long description
has no link a wheel cannot follow, and the wheel — built here, installed into a fresh
virtual environment — runs ``acthash run`` and ``acthash example`` from an empty directory.

The fresh environment gets the wheel alone (``pip install --no-deps``); its dependencies
(torch, scikit-learn, ...) come from this interpreter's site-packages through a plain path
in a ``.pth`` file, so the test needs no download and no second torch. A plain path line
does not run the ``.pth`` files of that folder, so the editable install of the checkout
there is not seen: the fresh environment imports the wheel's copy (checked).
"""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_torch_is_a_lower_bound_and_the_tested_pin_lives_in_the_install_step():
    deps = PYPROJECT["project"]["dependencies"]
    torch = [d for d in deps if re.match(r"torch\b", d)]
    assert torch == ["torch>=2.1"]  # keeps a researcher's CUDA torch
    assert not any("==" in d for d in deps)
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install -q torch==\d+\.\d+\.\d+\n", make)  # before "-e .[dev]"
    assert make.index("torch==") < make.index('-e ".[dev]"')


def test_long_description_has_no_link_a_wheel_cannot_follow():
    readme = PYPROJECT["project"]["readme"]
    text = (ROOT / readme["file"]).read_text()
    assert readme["content-type"] == "text/markdown"
    targets = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r'(?:src|href)="([^"]+)"', text)
    relative = [t for t in targets if not re.match(r"https?://", t)]
    assert relative == []
    # the README itself links docs/: that is why it is not the long description
    assert re.search(r"\]\(docs/", (ROOT / "README.md").read_text())


def test_examples_are_package_data_and_the_repository_links_to_them():
    from acthash.examples import example_text, list_examples

    names = [e["name"] for e in list_examples()]
    assert names == ["sweep-digits", "sweep-fashion-no-batchnorm"]
    for name in names:
        repo_file = ROOT / "examples" / f"{name.replace('-', '_')}.yaml"
        assert repo_file.read_text() == example_text(name)
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["acthash"] == ["examples/*.yaml"]


def test_example_command_writes_lists_and_refuses_to_overwrite(tmp_path):
    from typer.testing import CliRunner

    from acthash.cli import app
    from acthash.errors import EXIT_USER_ERROR

    runner = CliRunner()
    res = runner.invoke(app, ["example", "list"])
    assert res.exit_code == 0 and "sweep-digits" in res.output
    out = tmp_path / "my.yaml"
    res = runner.invoke(app, ["example", "sweep-digits", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == (ROOT / "examples" / "sweep_digits.yaml").read_text()
    res = runner.invoke(app, ["example", "sweep-digits", "--out", str(out)])
    assert res.exit_code == EXIT_USER_ERROR and "--force" in res.output
    out.write_text("changed")
    res = runner.invoke(app, ["example", "sweep-digits", "--out", str(out), "--force"])
    assert res.exit_code == 0 and out.read_text().startswith("# A small size")
    res = runner.invoke(app, ["example", "sweep-digits", "--out", "-"])
    assert res.exit_code == 0 and "name: digits-demo" in res.output


def _run(cmd, timeout, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_and_runs_from_an_empty_directory(tmp_path):
    dist = tmp_path / "dist"
    # this interpreter's setuptools builds it: no build isolation, no download
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
          "--no-cache-dir", "-q", "-w", str(dist)], 600, env={**os.environ,
                                                              "PIP_NO_INPUT": "1"})
    wheels = list(dist.glob("acthash-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
    assert "acthash/examples/sweep_digits.yaml" in names
    assert "acthash/cli/examples.py" in names
    assert not any(n.startswith("docs/") for n in names)
    requires = meta.get_all("Requires-Dist")
    assert "torch>=2.1" in requires and not any(r.startswith("torch==") for r in requires)
    assert "](docs/" not in meta.get_payload()  # the long description: docs/pypi.md

    venv = tmp_path / "venv"
    # no PYTHONPATH: this checkout must be invisible to pip and to the installed command
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{venv / 'bin'}:/usr/bin:/bin",
               MPLBACKEND="Agg", PIP_NO_INPUT="1")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], 300, env=env)
    vpy = venv / "bin" / "python"
    purelib = _run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   60, env=env).stdout.strip()
    _run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps",
          "--no-index", "-q", str(wheels[0])], 300, env=env)
    assert (venv / "bin" / "acthash").exists()  # the console script
    # then the dependencies (after the install: pip must not see this checkout's acthash)
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_acthash_test_deps.pth").write_text("\n".join(sorted(here)) + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([str(vpy), "-c", "import acthash; print(acthash.__file__)"], 120, cwd=empty,
                 env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the checkout
    acthash = str(venv / "bin" / "acthash")
    res = _run([acthash, "run", "--epochs", "1", "--width", "16", "--checkpoints", "0,1",
                "--kmeans-n-init", "1", "--logreg-strategy", "ovr", "--no-save-codes",
                "--no-progress"], 600, cwd=empty, env=env)
    assert "encoding properties" in res.stdout and "redundancy ratio" in res.stdout
    runs = list((empty / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.parquet").exists()
    # the trained model, measured again from its checkpoint (no training)
    res = _run([acthash, "measure", "--checkpoint", str(runs[0] / "model.pt"),
                "--kmeans-n-init", "1", "--logreg-strategy", "ovr", "--no-save-codes",
                "--no-progress", "--out", "measured"], 600, cwd=empty, env=env)
    assert "encoding properties" in res.stdout and "redundancy ratio" in res.stdout
    measured = pd.read_parquet(empty / "measured" / "metrics.parquet")
    trained = pd.read_parquet(runs[0] / "metrics.parquet")
    assert measured["redundancy_train"].iloc[0] == trained["redundancy_train"].iloc[-1]

    res = _run([acthash, "example", "list"], 120, cwd=empty, env=env)
    assert "sweep-digits" in res.stdout and "sweep-fashion-no-batchnorm" in res.stdout
    _run([acthash, "example", "sweep-digits"], 120, cwd=empty, env=env)
    written = empty / "sweep_digits.yaml"
    assert written.read_text() == (ROOT / "examples" / "sweep_digits.yaml").read_text()
    res = _run([acthash, "sweep", str(written), "--dry-run"], 120, cwd=empty, env=env)
    assert "digits-demo: 6 cells" in res.stdout
