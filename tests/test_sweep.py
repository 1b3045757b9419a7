"""Sweeps: grid parsing, cell keys, the result store, resume after a kill, the model
cache, executors giving identical tables, presets and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from acthash.errors import EXIT_USER_ERROR
from acthash.runs.experiment import RunConfig
from acthash.runs.sweep import (
    PRESETS,
    ResultStore,
    SweepConfig,
    cell_key,
    load_results,
    preset,
    run_sweep,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")

TINY = {
    "name": "tiny",
    "factor": "width",
    "base": {"dataset": "digits", "epochs": 1, "checkpoints": [0, 1], "kmeans_n_init": 1,
             "logreg_strategy": "ovr", "save_codes": False},
    "grid": {"width": [4, 8]},
    "seeds": [0, 1],
}

TINY_YAML = """\
name: tiny
factor: width
base:
  dataset: digits
  epochs: 1
  checkpoints: [0, 1]
  kmeans_n_init: 1
  logreg_strategy: ovr
  save_codes: false
grid:
  width: [4, 8]
seeds: [0, 1]
"""

TINY_TOML = """\
name = "tiny"
factor = "width"
seeds = [0, 1]
[base]
dataset = "digits"
epochs = 1
checkpoints = [0, 1]
kmeans_n_init = 1
logreg_strategy = "ovr"
save_codes = false
[grid]
width = [4, 8]
"""


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("serial")
    return run_sweep(TINY, d / "sweep", progress=False)


# ------------------------------------------------------------------ config and keys


def test_yaml_and_toml_give_the_same_cells(tmp_path):
    (tmp_path / "s.yaml").write_text(TINY_YAML)
    (tmp_path / "s.toml").write_text(TINY_TOML)
    a = SweepConfig.from_file(tmp_path / "s.yaml").cells()
    b = SweepConfig.from_file(tmp_path / "s.toml").cells()
    c = SweepConfig.from_dict(TINY).cells()
    assert [x.key for x in a] == [x.key for x in b] == [x.key for x in c]
    # grid order: grid keys outer, seeds inner
    assert [(x.params["width"], x.params["seed"]) for x in a] == [(4, 0), (4, 1), (8, 0), (8, 1)]
    assert a[3].config == RunConfig.from_dict({**TINY["base"], "width": 8, "seed": 1}).to_dict()


def test_repeats_and_bad_configs(tmp_path):
    cfg = SweepConfig.from_dict({**{k: v for k, v in TINY.items() if k != "seeds"},
                                 "repeats": 3})
    assert cfg.seeds == [0, 1, 2]
    with pytest.raises(ValueError, match="not RunConfig fields.*valid"):
        SweepConfig(grid={"widht": [4]})
    with pytest.raises(ValueError, match="unknown sweep keys"):
        SweepConfig.from_dict({"gird": {}})
    with pytest.raises(ValueError, match="non-empty list"):
        SweepConfig(grid={"width": 4})
    with pytest.raises(ValueError, match="seeds"):
        SweepConfig(grid={"width": [4]}, base={"seed": 3})
    with pytest.raises(ValueError, match="outside"):
        SweepConfig(base={"epochs": 2, "checkpoints": [5]}, grid={"width": [4]}).cells()
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(ValueError, match=r"\.yaml"):
        SweepConfig.from_file(tmp_path / "s.json")
    with pytest.raises(FileNotFoundError, match="--preset"):
        SweepConfig.from_file(tmp_path / "missing.yaml")


def test_cell_key_covers_what_determines_a_cell():
    a = RunConfig(width=8, seed=0)
    assert cell_key(a) == cell_key(RunConfig(width=8, seed=0, device="cpu", save_codes=False))
    assert cell_key(a) != cell_key(RunConfig(width=8, seed=1))
    assert cell_key(a) != cell_key(RunConfig(width=8, seed=0, weight_decay=1e-4))
    assert cell_key(RunConfig(checkpoints=[3, 0, 3])) == cell_key(RunConfig(checkpoints=[0, 3]))
    # a grid that repeats a configuration keeps one cell of it
    cfg = SweepConfig(base={"width": 8}, grid={"depth": [1, 1, 2]}, seeds=[0])
    assert len(cfg.cells()) == 2


def test_presets_build_valid_grids():
    cnn = preset("cnn")
    assert cnn.grid == {"model": ["vgg11", "resnet20"]} and cnn.base["dataset"] == "fashion-mnist"
    for name in (p for p in PRESETS if p != "cnn"):
        cpu = preset(name, seeds=2)
        cells = cpu.cells()
        assert cells and {c.params["seed"] for c in cells} == {0, 1}
        assert cpu.base["dataset"] == "digits" or cpu.grid.get("dataset", [None])[0] == "digits"
        paper = preset(name, scale="paper")
        assert paper.seeds == list(range(10)) and paper.base["epochs"] == 200
    ms = preset("model-size", scale="paper")
    assert len(ms.grid["width"]) == 23 and ms.grid["width"][0] == 3 and ms.grid["width"][-1] == 100
    tt = preset("training-time", scale="paper")
    assert tt.base["checkpoints"][:7] == [0, 1, 3, 6, 10, 20, 30] and tt.base["checkpoints"][-1] == 200
    assert preset("random-data").grid["dataset"] == ["digits", "random:digits"]
    assert preset("sample-size", dataset="fashion-mnist").base["dataset"] == "fashion-mnist"
    with pytest.raises(ValueError, match="model-size"):
        preset("model-sise")
    with pytest.raises(ValueError, match="paper"):
        preset("model-size", scale="huge")


# ------------------------------------------------------------------ store, cache, resume


def test_serial_sweep_table(serial_sweep):
    t = serial_sweep.table
    assert serial_sweep.summary()["trained"] == 4
    assert len(t) == 4 * 2  # cells x checkpoints
    assert not t.duplicated(["cell", "epoch"]).any()
    assert list(t["width"]) == [4, 4, 4, 4, 8, 8, 8, 8]
    assert list(t["seed"]) == [0, 0, 1, 1] * 2 and list(t["epoch"]) == [0, 1] * 4
    for col in ("redundancy_train", "redundancy_test", "kmeans_test", "knn_test", "logreg_test",
                "net_acc_test"):
        assert t[col].between(0, 1).all()
    d = serial_sweep.sweep_dir
    assert pd.read_parquet(d / "results.parquet").equals(t)
    assert load_results(d).equals(t)
    assert (d / "sweep.json").exists() and (d / "environment.json").exists()
    assert len(list((d / "parts").glob("*.parquet"))) == 4
    # a second run in place computes nothing
    again = run_sweep(TINY, d, progress=False)
    assert again.computed == [] and len(again.skipped) == 4
    pd.testing.assert_frame_equal(again.table, t)


def test_model_cache_is_hit_on_rerun(serial_sweep, tmp_path, monkeypatch):
    import acthash.runs.experiment

    def no_training(*a, **k):
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr(acthash.runs.experiment, "run_experiment", no_training)
    res = run_sweep(TINY, tmp_path / "other", cache_dir=serial_sweep.sweep_dir / "cache",
                    progress=False)
    assert sorted(res.cache_hits) == sorted(res.computed) and len(res.computed) == 4
    pd.testing.assert_frame_equal(res.table, serial_sweep.table)


def test_result_store_never_duplicates(tmp_path, serial_sweep):
    store = ResultStore(tmp_path)
    part = serial_sweep.table[serial_sweep.table["cell_index"] == 1]
    key = part["cell"].iloc[0]
    store.write_part(key, part)
    store.write_part(key, part)  # rewriting a part replaces it
    (store.parts / f".{key}.parquet.abc.tmp").write_bytes(b"partial")  # a killed writer
    assert store.clean() == 1
    assert store.done_keys() == {key}
    assert len(store.consolidate()) == len(part)


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    from acthash.runs.sweep import run_sweep
    cfg = {cfg!r}
    run_sweep(cfg, sys.argv[1], progress=False)
""")


@pytest.mark.slow
def test_resume_after_kill(tmp_path, serial_sweep):
    cfg = {**TINY, "grid": {"width": [4, 6, 8]}}  # 6 cells
    sweep_dir = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT.format(cfg=cfg))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(sweep_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = sweep_dir / "parts"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if parts.exists() and len(list(parts.glob("*.parquet"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = {p.stem for p in parts.glob("*.parquet")}
    all_keys = [c.key for c in SweepConfig.from_dict(cfg).cells()]
    assert 2 <= len(done_before) < 6
    res = run_sweep(cfg, sweep_dir, progress=False)
    assert set(res.skipped) == done_before
    assert sorted(res.computed) == sorted(set(all_keys) - done_before)
    t = res.table
    assert len(t) == 6 * 2 and not t.duplicated(["cell", "epoch"]).any()
    assert list(dict.fromkeys(t["cell"])) == all_keys
    assert not list(parts.glob(".*.tmp"))
    # the resumed table equals an uninterrupted run's rows for the same cells
    fresh = serial_sweep.table
    resumed = t[t["width"].isin([4, 8])].drop(columns="cell_index").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, fresh.drop(columns="cell_index"))


@pytest.mark.slow
def test_executors_give_identical_tables(serial_sweep, tmp_path):
    proc = run_sweep(TINY, tmp_path / "proc", executor="process", workers=2, progress=False)
    pd.testing.assert_frame_equal(proc.table, serial_sweep.table)
    pytest.importorskip("ray")  # the optional extra; installed in the dev environment
    ray = run_sweep(TINY, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert ray.summary()["trained"] == 4
    pd.testing.assert_frame_equal(ray.table, serial_sweep.table)


def test_bad_executor_and_workers(tmp_path):
    with pytest.raises(ValueError, match="serial, process, ray"):
        run_sweep(TINY, tmp_path, executor="dask")
    with pytest.raises(ValueError, match="at least 1"):
        run_sweep(TINY, tmp_path, workers=0)


# ------------------------------------------------------------------ CLI


def test_cli_sweep_dry_run_and_errors(tmp_path):
    from typer.testing import CliRunner

    from acthash.cli import app

    runner = CliRunner()
    cfg = tmp_path / "s.yaml"
    cfg.write_text(TINY_YAML)
    r = runner.invoke(app, ["sweep", str(cfg), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "4 cells" in r.output
    r = runner.invoke(app, ["sweep", str(cfg), "--preset", "model-size"])
    assert r.exit_code == 2 and "either" in r.output
    r = runner.invoke(app, ["sweep", "--preset", "nope"])
    assert r.exit_code == EXIT_USER_ERROR and "model-size" in r.output


def test_example_sweep_file_parses():
    from acthash.presentation.phase import PhaseThresholds

    cfg = SweepConfig.from_file(Path(__file__).resolve().parents[1] / "examples"
                                / "sweep_digits.yaml")
    cells = cfg.cells()
    assert len(cells) == 3 * 2 and cfg.factor == "epoch" and cfg.hue == "width"
    assert cells[0].config["checkpoints"] == [0, 1, 3, 10]
    assert PhaseThresholds(**cfg.phase) == PhaseThresholds()


def test_ray_requests_gpus_when_the_cluster_has_them():
    from acthash.runs.sweep.executors import _ray_gpus_per_cell

    class FakeRay:
        def __init__(self, res):
            self.res = res

        def cluster_resources(self):
            return self.res

    assert _ray_gpus_per_cell(FakeRay({"CPU": 8, "GPU": 2}), None) == 1.0
    assert _ray_gpus_per_cell(FakeRay({"CPU": 8}), None) == 0.0
    assert _ray_gpus_per_cell(FakeRay({"CPU": 8, "GPU": 2}), 0.5) == 0.5


def test_a_failing_cell_does_not_stop_the_sweep(tmp_path):
    cfg = {"name": "bad", "base": {"epochs": 1, "checkpoints": [1], "kmeans_n_init": 1,
                                   "logreg_strategy": "ovr", "save_codes": False, "width": 4},
           "grid": {"sample_size": [5000, 100]}, "seeds": [0]}  # digits has 1437
    res = run_sweep(cfg, tmp_path / "s", progress=False)
    keys = [c.key for c in SweepConfig.from_dict(cfg).cells()]
    assert list(res.failed) == [keys[0]] and "sample size 5000" in res.failed[keys[0]]
    assert res.computed == [keys[1]] and list(res.table["n_train"]) == [100]
    import json

    failures = json.loads((tmp_path / "s" / "failures.json").read_text())
    assert failures[0]["params"] == {"sample_size": 5000, "seed": 0}
    again = run_sweep(cfg, tmp_path / "s", progress=False)  # retried, not skipped
    assert list(again.failed) == [keys[0]] and again.skipped == [keys[1]]


def test_yaml_reads_scientific_notation_as_floats(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "grid:\n  weight_decay: [0, 1e-6, 1.0e-4, 5E-4]\n  lr: [1e-2]\n"
        "phase: {under: 2e-1}\n")
    cfg = SweepConfig.from_file(tmp_path / "s.yaml")
    assert cfg.grid["weight_decay"] == [0, 1e-6, 1e-4, 5e-4]
    assert all(isinstance(v, (int, float)) for v in cfg.grid["weight_decay"])
    assert cfg.grid["lr"] == [0.01] and cfg.phase == {"under": 0.2}
    with pytest.raises(ValueError, match="unknown phase keys"):
        SweepConfig(grid={"width": [4]}, phase={"undr": 0.2})


def test_unknown_dataset_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'no-such-data'.*digits"):
        run_sweep(preset("model-size", dataset="no-such-data", seeds=1), tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        run_sweep({**TINY, "base": {**TINY["base"], "dataset": "random:nope"}}, tmp_path)
    assert not (tmp_path / "parts").exists()
