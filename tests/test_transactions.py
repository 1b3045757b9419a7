"""Runs are transactions: everything that can be checked is checked before a file is written;
a run directory carries an INCOMPLETE marker until it is complete, keeps it (with the reason)
when the run fails or is interrupted, and acthash refuses to read a marked directory; an
existing --out is refused unless --force; every study goes through the same scaffolding."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import (
    EXIT_USER_ERROR,
    ConfigError,
    DivergenceError,
    IncompleteRunError,
    ResourceError,
)
from acthash.runs import experiment
from acthash.runs.experiment import RunConfig, run_experiment
from acthash.runs.results import load_results

runner = CliRunner()
TINY = ["--width", "4", "--epochs", "1", "--checkpoints", "1", "--kmeans-n-init", "1",
        "--kmeans-n-seeds", "1", "--no-save-codes", "--no-progress"]
# the files a run has written when it stops in training (nothing measured yet)
BEFORE_TRAINING = ["INCOMPLETE", "config.json", "dataset.json", "environment.json",
                   "train_indices.npy", "train_labels.npy"]


def files(root: Path) -> list[str]:
    """Every file under ``root``, relative, sorted (empty when ``root`` does not exist)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def marker(run_dir: Path) -> dict:
    return json.loads((run_dir / "INCOMPLETE").read_text())


def interrupted(result) -> bool:
    """Whether a CLI call ended on Ctrl-C (click turns it into exit status 130, "Aborted!")."""
    return isinstance(result.exception, KeyboardInterrupt) or result.exit_code == 130


def one_line(output: str) -> str:
    return " ".join(output.split())


# ------------------------------------------------------------ checked before any file


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu9"], "unknown device 'tpu9'; use 'auto', 'cpu' or 'cuda'"),
    (["--layers", "fc("], "layers 'fc(' is not a valid regular expression"),
    (["--layers", "conv"], "no captured layer matches 'conv'; layers are: features.2"),
    (["--memory-budget", "lots"], "cannot read memory budget 'lots'"),
    (["--memory-budget", "-1GB"], "cannot read memory budget '-1GB'"),
    (["-O", "test_fraction=2"], "test_fraction must be a fraction strictly between 0 and 1, "
                                "got 2"),
    (["-O", "colour=red"], "colour"),
    (["--k", "100000"], "k=100000 needs more than k training examples (the training split's "
                        "k-NN is leave-one-out), but the run trains on 1437; pass --k 1436"),
    (["--sample-size", "5", "--k", "5"], "k=5 needs more than k training examples"),
    (["--checkpoints", "0,7"], "7"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
])
def test_bad_settings_write_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", *TINY, "--out", str(out), "--runs-root",
                            str(tmp_path / "runs"), *args])
    assert r.exit_code == EXIT_USER_ERROR, r.output
    assert message in one_line(r.output)
    assert files(tmp_path) == [] and not out.exists() and not (tmp_path / "runs").exists()


def test_bad_settings_without_out_create_no_runs_root(tmp_path):
    r = runner.invoke(app, ["run", *TINY, "--runs-root", str(tmp_path / "runs"),
                            "--device", "tpu9"])
    assert r.exit_code == EXIT_USER_ERROR
    assert list(tmp_path.iterdir()) == []


def test_inf_in_a_csv_is_found_at_load_before_any_file(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20))
                   + "1,inf,0\n")
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", *TINY, "--dataset", f"csv:{csv}", "--label-column", "y",
                            "--out", str(out)])
    assert r.exit_code == EXIT_USER_ERROR, r.output
    assert f"{csv} has missing (NaN) or infinite values: line 22 column 'b' (inf)" in \
        one_line(r.output)
    assert files(tmp_path) == ["t.csv"]


# ------------------------------------------------------------ --out and --force


def test_out_on_an_existing_run_is_refused_and_force_replaces_it(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    first = files(out)
    assert "INCOMPLETE" not in first and "metrics.parquet" in first
    (out / "stray.txt").write_text("from an earlier run")
    r = runner.invoke(app, ["run", *TINY, "--out", str(out), "--width", "6"])
    assert r.exit_code == EXIT_USER_ERROR
    assert (f"--out {out} holds a run already (writing into it would mix two runs); pass "
            "--force to replace it") in one_line(r.output)
    assert json.loads((out / "config.json").read_text())["width"] == 4  # untouched
    assert (out / "stray.txt").exists()
    r = runner.invoke(app, ["run", *TINY, "--out", str(out), "--width", "6", "--force"])
    assert r.exit_code == 0, r.output
    assert files(out) == first  # emptied first: the stray file is gone
    assert json.loads((out / "config.json").read_text())["width"] == 6


def test_an_empty_out_is_used_and_force_never_empties_a_foreign_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not empty and is not an acthash run directory"):
        run_experiment(RunConfig(width=4, epochs=1), out_dir=mine, force=True)
    assert files(mine) == ["thesis.tex"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        run_experiment(RunConfig(width=4, epochs=1), out_dir=not_a_dir)
    with pytest.raises(KeyboardInterrupt):  # an empty directory is fine (stopped early here)
        _interrupted_run(empty)
    assert files(empty) == BEFORE_TRAINING


# ------------------------------------------------------------ failures leave a marked run


def _interrupted_run(out, **kwargs):
    def stop(*args, **kw):
        raise KeyboardInterrupt

    old = experiment.train
    experiment.train = stop
    try:
        return run_experiment(RunConfig(width=4, epochs=1, kmeans_n_init=1), out_dir=out,
                              **kwargs)
    finally:
        experiment.train = old


def test_ctrl_c_leaves_a_marked_run_that_commands_refuse(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _interrupted_run(out)
    assert files(tmp_path) == [f"run/{f}" for f in BEFORE_TRAINING]
    state = marker(out)
    assert state["status"] == "interrupted" and isinstance(state["pid"], int)
    expected = f"run {out} is incomplete (interrupted): rerun it with --force --out {out}"
    with pytest.raises(IncompleteRunError, match="incomplete"):
        load_results(out)
    for command in (["plot", str(out)], ["report", str(out)], ["phase-chart", str(out)],
                    ["claims", str(out)]):
        r = runner.invoke(app, command)
        assert r.exit_code == EXIT_USER_ERROR, (command, r.output)
        assert expected in one_line(r.output), command
    assert files(tmp_path) == [f"run/{f}" for f in BEFORE_TRAINING]  # they wrote nothing
    r = runner.invoke(app, ["run", *TINY, "--out", str(out)])
    assert r.exit_code == EXIT_USER_ERROR
    assert (f"--out {out} holds an incomplete run (interrupted); pass --force to replace it"
            in one_line(r.output))
    r = runner.invoke(app, ["run", *TINY, "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert "INCOMPLETE" not in files(out) and "metrics.parquet" in files(out)


def test_an_error_in_a_stage_is_recorded_in_the_marker(tmp_path, monkeypatch):
    def diverge(*args, **kwargs):
        raise DivergenceError("training loss became nan at epoch 1; lower the learning rate")

    monkeypatch.setattr(experiment, "train", diverge)
    out = tmp_path / "run"
    with pytest.raises(DivergenceError):
        run_experiment(RunConfig(width=4, epochs=1), out_dir=out)
    assert files(out) == BEFORE_TRAINING
    state = marker(out)
    assert state["status"] == "failed"
    assert state["error"] == ("DivergenceError: training loss became nan at epoch 1; lower "
                              "the learning rate")
    with pytest.raises(IncompleteRunError, match=r"is incomplete \(failed: DivergenceError: "
                       "training loss became nan"):
        load_results(out / "metrics.parquet")  # a file inside the run: refused too


def test_an_error_after_a_checkpoint_keeps_its_partial_files(tmp_path, monkeypatch):
    calls = []
    real = experiment.encoding_properties

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "encoding_properties", second_fails)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(RunConfig(width=4, epochs=1, checkpoints=[0, 1], kmeans_n_init=1,
                                 kmeans_n_seeds=1, save_codes=False), out_dir=out)
    assert files(out) == sorted([*BEFORE_TRAINING, "checkpoints/epoch_0000.pt",
                                 "metrics.parquet"])
    assert marker(out)["status"] == "interrupted"


def test_a_full_disk_becomes_a_resource_error_and_leaves_a_marked_run(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(experiment, "save_array", full)
    out = tmp_path / "run"
    with pytest.raises(ResourceError, match=f"no space left on the device while writing {out}"):
        run_experiment(RunConfig(width=4, epochs=1), out_dir=out)
    assert files(out) == ["INCOMPLETE", "config.json", "dataset.json", "environment.json"]
    assert marker(out)["status"] == "failed"
    assert "No space left on device" in marker(out)["error"]


def test_a_disk_too_full_for_the_marker_keeps_the_running_marker(tmp_path, monkeypatch):
    import acthash._utils.run as run_mod

    real = run_mod.write_json
    written = []

    def full_after_the_marker(path, obj):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real(path, obj)

    monkeypatch.setattr(run_mod, "write_json", full_after_the_marker)
    out = tmp_path / "run"
    with pytest.raises(ResourceError, match="free disk space or choose another --out"):
        run_experiment(RunConfig(width=4, epochs=1), out_dir=out)
    assert files(out) == ["INCOMPLETE"]
    assert marker(out)["status"] == "running"
    monkeypatch.undo()
    with pytest.raises(IncompleteRunError, match="still being written by pid .* or that "
                       "process was killed"):
        load_results(out)


def test_a_default_run_directory_is_marked_too(tmp_path):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    old, experiment.train = experiment.train, stop
    try:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(RunConfig(width=4, epochs=1), runs_root=tmp_path / "runs")
    finally:
        experiment.train = old
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("digits-mlp-w4-d1-s0-")
    assert files(run_dir) == BEFORE_TRAINING


def test_a_complete_run_has_no_marker_and_write_false_writes_nothing(tmp_path):
    res = run_experiment(RunConfig(width=4, epochs=1, kmeans_n_init=1, kmeans_n_seeds=1,
                                   save_codes=False), out_dir=tmp_path / "run")
    assert res.run_dir == tmp_path / "run"
    assert files(res.run_dir) == sorted([
        "checkpoints/epoch_0001.pt", "config.json", "dataset.json", "environment.json",
        "history.parquet", "metrics.json", "metrics.parquet", "model.pt",
        "train_indices.npy", "train_labels.npy"])
    res = run_experiment(RunConfig(width=4, epochs=1, kmeans_n_init=1, kmeans_n_seeds=1),
                         out_dir=tmp_path / "no", write=False)
    assert res.run_dir is None and not (tmp_path / "no").exists()


# ------------------------------------------------------------ every study


def _stop(*args, **kwargs):
    raise KeyboardInterrupt


STUDIES = [
    # (study, monkeypatched stage, files left, CLI args of a small config)
    ("regions", "acthash.train.train", ["INCOMPLETE", "config.json", "environment.json"],
     []),
    ("lsh", "acthash.studies.lsh._train_mlp", ["INCOMPLETE", "config.json",
                                               "environment.json"], []),
    ("spectrum", "acthash.studies.spectrum.track_spectrum",
     ["INCOMPLETE", "config.json", "environment.json", "task.json"], []),
    ("binary", "acthash.studies.binary.train",
     ["INCOMPLETE", "config.json", "dataset.json", "environment.json"], []),
    ("retrieval", "acthash.studies.retrieval._model_for",
     ["INCOMPLETE", "config.json", "environment.json"], ["--datasets", "digits"]),
]


@pytest.mark.parametrize("study, stage, left, args", STUDIES, ids=[s[0] for s in STUDIES])
def test_every_study_is_a_transaction(tmp_path, monkeypatch, study, stage, left, args):
    monkeypatch.setattr(stage, _stop)
    out = tmp_path / study
    r = runner.invoke(app, ["study", study, *args, "--out", str(out), "--no-progress"])
    assert interrupted(r), r.output
    assert files(tmp_path) == [f"{study}/{f}" for f in left]
    assert marker(out)["status"] == "interrupted"
    r = runner.invoke(app, ["study", study, *args, "--out", str(out), "--no-progress"])
    assert r.exit_code == EXIT_USER_ERROR
    assert (f"--out {out} holds an incomplete run (interrupted); pass --force to replace it"
            in one_line(r.output))
    (out / "stray.txt").write_text("x")
    r = runner.invoke(app, ["study", study, *args, "--out", str(out), "--no-progress",
                            "--force"])
    assert interrupted(r), r.output
    assert files(out) == left  # emptied, then rebuilt up to the same stage


def test_every_run_and_study_command_has_force():
    import typer.main

    group = typer.main.get_command(app)
    study = group.commands["study"]
    commands = [group.commands["run"], group.commands["measure"], *study.commands.values()]
    assert {c.name for c in study.commands.values()} == {
        "regions", "lsh", "spectrum", "binary", "retrieval", "planes", "local-complexity", "ood"}
    for cmd in commands:
        assert "--force" in [o for p in cmd.params for o in p.opts], cmd.name


# ------------------------------------------------------------ sweeps keep resuming


def test_an_interrupted_sweep_cell_is_marked_in_the_cache_and_recomputed(tmp_path):
    from acthash.runs.sweep import run_sweep

    cfg = {"name": "one", "base": {"dataset": "digits", "epochs": 1, "checkpoints": [1],
                                   "kmeans_n_init": 1, "kmeans_n_seeds": 1,
                                   "save_codes": False},
           "grid": {"width": [4]}, "seeds": [0]}
    sweep = tmp_path / "sweep"
    old, experiment.train = experiment.train, _stop
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(cfg, sweep, progress=False)
    finally:
        experiment.train = old
    (entry,) = (sweep / "cache").glob("*/*")
    assert files(entry) == BEFORE_TRAINING and marker(entry)["status"] == "interrupted"
    assert not (sweep / "parts").exists() or files(sweep / "parts") == []
    res = run_sweep(cfg, sweep, progress=False)  # resumes: the cell is run again
    assert res.summary()["trained"] == 1 and len(res.table) == 1
    assert "INCOMPLETE" not in files(entry) and "cell.json" in files(entry)
    again = run_sweep(cfg, sweep, progress=False)
    assert again.summary()["already_done"] == 1 and again.summary()["trained"] == 0


@pytest.mark.parametrize("study", ["regions", "lsh", "spectrum", "binary", "retrieval"])
def test_a_bad_study_setting_writes_nothing(tmp_path, study):
    r = runner.invoke(app, ["study", study, "--device", "tpu9", "--out", str(tmp_path / "s"),
                            "--runs-root", str(tmp_path / "runs"), "--no-progress"])
    assert r.exit_code == EXIT_USER_ERROR, r.output
    assert "unknown device 'tpu9'" in r.output
    assert list(tmp_path.iterdir()) == []


def test_python_api_takes_force(tmp_path):
    import acthash

    out = tmp_path / "run"
    kw = dict(width=4, epochs=1, checkpoints=[1], kmeans_n_init=1, kmeans_n_seeds=1,
              save_codes=False, out_dir=out)
    acthash.run(**kw)
    with pytest.raises(ConfigError, match="pass --force to replace it"):
        acthash.run(**kw)
    assert acthash.run(**kw, force=True).run_dir == out and "INCOMPLETE" not in files(out)


def test_ctrl_c_in_the_cli_says_the_run_is_marked_and_exits_130(tmp_path, monkeypatch):
    from acthash.errors import EXIT_INTERRUPTED

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "encoding_properties", stop)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "--width", "4", "--epochs", "1", "--checkpoints", "1",
                                   "--out", str(out), "--no-progress"])
    assert res.exit_code == EXIT_INTERRUPTED == 130
    assert "interrupted:" in res.output and "--force --out" in res.output
    assert "Traceback" not in res.output and "Aborted" not in res.output
    assert marker(out)["status"] == "interrupted"
