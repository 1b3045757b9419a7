"""What the command line shows: help and tables that fit 80 columns without cutting a value,
``--format`` for scripts, ``--version``, one ``error:`` line (exit status 3) for user and
environment errors, one ``warning:`` line per warning, and progress as plain log lines when
stderr is not a terminal."""

from __future__ import annotations

import ast
import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR, InputError

SRC = Path(__file__).resolve().parents[1] / "src"
# a run of a few seconds: 200 training digits, 8 units, one K-Means restart
TINY = ["--width", "8", "--sample-size", "200", "--kmeans-n-init", "1", "--kmeans-n-seeds",
        "2"]
runner = CliRunner()


def _commands(cmd=None, path=()):
    import typer.main

    cmd = cmd or typer.main.get_command(app)
    yield list(path), cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _squash(text: str) -> str:
    """Whitespace collapsed, and undone where the help's wrapper broke a word at a hyphen."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


# ---------------------------------------------------------------------------- help, version


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "root")
def test_help_fits_80_columns_and_shows_every_bracket(path):
    cmd = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    assert "…" not in result.output
    shown = _squash(result.output)
    for param in cmd.params:
        if getattr(param, "hidden", False):  # a former spelling, kept hidden one release
            assert all(opt not in result.output.split() for opt in param.opts), param.name
            continue
        if param.help and "[" in param.help:  # rich markup used to eat "[default: ...]"
            start = param.help.index("[")
            assert _squash(param.help[start:]) in shown, (param.name, param.help)
        for opt in param.opts:
            assert opt in result.output


def test_run_help_renders_the_defaults_in_brackets():
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "80"})
    text = _squash(result.output)
    for words in ("k-NN tie rule: share (order-independent) or sklearn [default: the "
                  "convention's]", "[default: 5; original: 1]",
                  "lbfgs, liblinear, ... [default: the convention's]",
                  "[default: when they exceed --memory-budget]", "--codes-to-disk",
                  "--format"):
        assert words in text, words


def test_version():
    from acthash._utils import package_version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"acthash {package_version()}"


# ---------------------------------------------------------------------------- tables, formats


def test_metrics_table_fits_80_columns_and_progress_is_plain_lines(tmp_path):
    """A real terminal-less run: stdout at 80 columns, stderr redirected to a file."""
    out = tmp_path / "run"
    with open(tmp_path / "stdout.txt", "w") as so, open(tmp_path / "stderr.txt", "w") as se:
        res = subprocess.run(
            [sys.executable, "-m", "acthash.cli", "run", *TINY, "--epochs", "6",
             "--checkpoints", "0,1,2,3,4,5,6", "--out", str(out)],
            stdout=so, stderr=se, timeout=900,
            env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "80"})
    stdout = (tmp_path / "stdout.txt").read_text(encoding="utf-8")
    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
    assert res.returncode == 0, stderr
    assert max(len(ln) for ln in stdout.splitlines()) <= 80
    assert "…" not in stdout
    # seven checkpoint columns do not fit 80 columns beside the labels: two tables
    assert "encoding properties (1/2)" in stdout and "encoding properties (2/2)" in stdout
    metrics = pd.read_parquet(out / "metrics.parquet")
    for col in ("knn_test", "logreg_train", "net_loss_test"):
        for v in metrics[col]:
            assert f"{v:.4f}" in stdout, (col, v)
    for e in range(7):
        assert f"epoch {e}" in stdout
    # progress: plain lines, one per stage, never a carriage return
    assert "\r" not in stderr
    lines = stderr.splitlines()
    for stage in ("loading digits", "train:", "epoch 0: capture", "epoch 0: redundancy (train)",
                  "epoch 0: K-Means (train)", "epoch 0: K-Means (test)", "epoch 6: k-NN",
                  "epoch 6: logistic regression", "epoch 3: capture"):
        assert any(ln.startswith(stage) for ln in lines), stage
    assert "Traceback" not in stderr


def test_format_csv_and_json_give_the_numbers_of_metrics_parquet(tmp_path):
    for fmt in ("csv", "json"):
        out = tmp_path / fmt
        result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--checkpoints", "0,1",
                                     "--out", str(out), "--no-progress", "--format", fmt])
        assert result.exit_code == 0, result.output
        metrics = pd.read_parquet(out / "metrics.parquet")
        stdout = result.stdout
        if fmt == "csv":
            got = pd.read_csv(io.StringIO(stdout))
        else:
            got = pd.DataFrame(json.loads(stdout))
        assert list(got.columns) == list(metrics.columns)
        assert len(got) == len(metrics) == 2
        for col in metrics.columns:
            if metrics[col].dtype.kind in "iuf":
                np.testing.assert_array_equal(got[col].to_numpy(float),
                                              metrics[col].to_numpy(float), err_msg=col)
            else:
                assert list(got[col].astype(str)) == list(metrics[col].astype(str)), col
        assert "run directory" not in stdout  # notes go to stderr
        assert "run directory" in result.stderr


def test_format_markdown_and_a_bad_format(tmp_path):
    import acthash.cli._tables as tables

    metrics = pd.DataFrame({"epoch": [0, 3], "knn_train": [0.5, 0.123456], "knn_test": [0.25, 1.0],
                            "k": [9, 9], "seconds_knn": [1.0, 2.25]})
    buf = io.StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        tables.print_metrics(metrics, fmt="markdown")
    finally:
        sys.stdout = old
    lines = buf.getvalue().splitlines()
    assert lines[0] == "| property | split | epoch 0 | epoch 3 |"
    assert "| 9-NN acc. (train: leave-one-out) | train | 0.5000 | 0.1235 |" in lines
    assert "| k-NN | 1.0 | 2.2 |" in lines
    result = runner.invoke(app, ["run", "--format", "xml"])
    assert result.exit_code == 2 and "table, csv, json, markdown" in result.output


def test_fitted_tables_split_columns_and_keep_every_value():
    from rich.console import Console

    from acthash.cli._tables import fitted_tables

    values = [[f"{1000 + 7 * i + j:.4f}" for j in range(12)] for i in range(3)]
    keys = [["a rather long property label", "train"], ["", "test"], ["short", "train"]]
    tables = fitted_tables("t", ["property", "split"], keys, [f"epoch {j}" for j in range(12)],
                           values, width=60)
    assert len(tables) > 1
    text = ""
    for t in tables:
        buf = io.StringIO()
        Console(file=buf, width=60).print(t)
        text += buf.getvalue()
    assert max(len(ln) for ln in text.splitlines()) <= 60 and "…" not in text
    for row in values:
        for v in row:
            assert v in text
    assert sum(len(t.columns) - 2 for t in tables) == 12


# ---------------------------------------------------------------------------- errors


def _one_error(result, *words):
    assert result.exit_code == EXIT_USER_ERROR == 3, result.output
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


def test_cuda_on_a_cpu_only_torch(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--device", "cuda", "--out",
                                 str(tmp_path / "r"), "--no-progress"])
    _one_error(result, "CUDA is not available in this torch build: use --device cpu")


def test_unknown_device(tmp_path):
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--device", "tpu", "--out",
                                 str(tmp_path / "r"), "--no-progress"])
    _one_error(result, "unknown device 'tpu'", "'cpu'")


def test_out_is_an_existing_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--out", str(f),
                                 "--no-progress"])
    _one_error(result, str(f), "not a directory", "--out")


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only file system")])
def test_unwritable_out_or_runs_root(tmp_path, monkeypatch, code, words):
    """Permissions do not stop root, so the refusal of mkdir is simulated."""
    real_mkdir = Path.mkdir
    locked = tmp_path / "locked"

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(locked)):
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    for option in ("--out", "--runs-root"):
        result = runner.invoke(app, ["run", *TINY, "--epochs", "1", option, str(locked),
                                     "--no-progress"])
        _one_error(result, words, str(locked), "--out / --runs-root")


def test_full_disk_while_saving_a_checkpoint(tmp_path, monkeypatch):
    import torch

    def full(obj, f, *args, **kwargs):  # what torch's zip writer says on ENOSPC
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--checkpoints", "1", "--out",
                                 str(out), "--no-progress"])
    _one_error(result, "no space left on device while writing",
               str(out / "checkpoints" / "epoch_0001.pt"))
    assert not list((out / "checkpoints").glob("*.tmp"))


def test_full_disk_while_writing_a_table(tmp_path, monkeypatch):
    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--checkpoints", "1", "--out",
                                 str(out), "--no-progress"])
    _one_error(result, "no space left on device while writing", str(out / "metrics.parquet"))


def test_empty_and_binary_csv_datasets(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    result = runner.invoke(app, ["run", "--dataset", f"csv:{empty}", "--out",
                                 str(tmp_path / "a"), "--no-progress"])
    _one_error(result, str(empty), "is empty")
    result = runner.invoke(app, ["run", "--dataset", f"csv:{binary}", "--out",
                                 str(tmp_path / "b"), "--no-progress"])
    _one_error(result, str(binary), "not a readable CSV table")
    # the Python API raises the same error
    from acthash import data

    with pytest.raises(InputError, match="is empty"):
        data.load(f"csv:{empty}")


def test_malformed_sweep_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid:\n  width: [1, 2\n  depth: 3\n")
    result = runner.invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "s")])
    _one_error(result, str(bad), "not valid YAML at line 4, column 8")


def test_bad_layers_regex(tmp_path):
    result = runner.invoke(app, ["run", *TINY, "--epochs", "1", "--layers", "(", "--out",
                                 str(tmp_path / "r"), "--no-progress"])
    _one_error(result, "layers '(' is not a valid regular expression")


def test_user_model_with_other_keywords(tmp_path, monkeypatch):
    (tmp_path / "acthash_test_usermodel.py").write_text(
        "from torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, d_in, n_out):\n"
        "        super().__init__()\n"
        "        self.f = nn.Sequential(nn.Flatten(), nn.Linear(d_in, 4), nn.ReLU(),\n"
        "                               nn.Linear(4, n_out))\n\n"
        "    def forward(self, x):\n"
        "        return self.f(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["run", "--model", "acthash_test_usermodel:Net", "--epochs",
                                 "1", "--out", str(tmp_path / "r"), "--no-progress"])
    _one_error(result, "'acthash_test_usermodel:Net' does not accept", "input_shape",
               "(d_in, n_out)")


def test_debug_reraises_with_the_traceback(tmp_path, monkeypatch):
    args = ["run", *TINY, "--epochs", "1", "--layers", "(", "--out", str(tmp_path / "r"),
            "--no-progress"]
    result = runner.invoke(app, ["--debug", *args])
    assert isinstance(result.exception, InputError) and result.exit_code == 1
    monkeypatch.setenv("ACTHASH_DEBUG", "1")
    result = runner.invoke(app, args)
    assert isinstance(result.exception, InputError)


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch):
    """Only refused writes among OSErrors become one line; anything else keeps its traceback."""
    import importlib

    app_module = importlib.import_module("acthash.cli.app")

    assert app_module._environment_error(OSError(errno.ECONNRESET, "reset")) is None
    mapped = app_module._environment_error(OSError(errno.ENOSPC, "full", "/x/y.parquet"))
    assert str(mapped) == ("no space left on device while writing /x/y.parquet: free disk "
                           "space or write elsewhere (--out / --runs-root)")


def test_small_data_warning_is_one_clean_line(tmp_path):
    result = runner.invoke(app, ["run", "--width", "8", "--sample-size", "8", "--epochs", "1",
                                 "--checkpoints", "1", "--kmeans-n-init", "1", "--k", "3",
                                 "--convention", "original", "--out",
                                 str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 0, result.output
    warned = [ln for ln in result.output.splitlines() if "split too small" in ln]
    assert warned and all(ln.startswith("warning: split too small") for ln in warned)
    assert "SmallDataWarning" not in result.output and "warnings.warn" not in result.output


# ---------------------------------------------------------------------------- numba warm-up


def test_numba_kernels_are_cached_on_disk():
    """Every compiled kernel of acthash._kernels (not the inlined helpers) has cache=True, so
    only the first process on a machine pays the JIT."""
    n = 0
    for path in sorted((SRC / "acthash" / "_kernels").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "njit":
                    kw = {k.arg: k.value for k in dec.keywords}
                    if "inline" in kw:
                        continue
                    n += 1
                    assert isinstance(kw.get("cache"), ast.Constant) and kw["cache"].value, (
                        path.name, node.name)
    assert n >= 10


def test_knn_warm_up_runs_once_before_the_timed_steps(monkeypatch):
    import torch

    from acthash.properties import knn, record

    calls = []
    original = knn.warm_up

    def spy():
        calls.append("warm_up")
        return original()

    monkeypatch.setattr(record, "warm_up", spy)
    monkeypatch.setattr(knn, "_warmed", [])
    monkeypatch.setattr(record, "_warmed", knn._warmed)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    assert knn.warm_up() is True and knn.warm_up() is False  # once per process
    # no global random state is consumed by the warm-up
    assert (np.random.get_state()[1] == np_state).all()
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    rng = np.random.default_rng(1)
    codes = (rng.random((60, 24)) < 0.5).astype(np.uint8)
    labels = np.arange(60) % 3
    timings: dict = {}
    rec = record.encoding_properties(codes, labels, codes[:30], labels[:30], timings=timings,
                                     kmeans_n_init=1, kmeans_n_seeds=1)
    assert calls == ["warm_up"]
    assert {"redundancy", "kmeans", "knn", "logreg"} <= set(timings)
    assert 0.0 <= rec["knn_test"] <= 1.0


def test_sweep_dry_run_as_csv():
    result = runner.invoke(app, ["sweep", "--preset", "model-size", "--dry-run", "--format",
                                 "csv"])
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(io.StringIO(result.stdout))
    assert list(cells.columns[:2]) == ["#", "key"] and len(cells) == 16
    assert cells["width"].nunique() > 1 and cells["key"].is_unique
    assert "16 cells" in result.stderr


def test_manual_progress_bar_is_log_lines_without_a_terminal(capsys):
    from acthash._utils.run import progress_bar, progress_stage

    bar = progress_bar(total=20, initial=5, desc="cells", unit="cell")
    for _ in range(15):
        bar.update(1)
    bar.write("cell 3 failed")
    bar.close()
    with progress_stage("epoch 2: K-Means (test)"):
        pass
    assert list(progress_bar([1, 2, 3], desc="train", unit="epoch")) == [1, 2, 3]
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    assert lines[0] == "cells: 5/20 cell"
    assert "cells: 10/20 cell" in lines and "cell 3 failed" in lines
    assert any(ln.startswith("cells: done, 20 cell in ") for ln in lines)
    assert "epoch 2: K-Means (test) ..." in lines
    assert lines[-1].startswith("train: done, 3 epoch in ")
