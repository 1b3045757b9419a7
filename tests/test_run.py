"""acthash run end to end on digits: run directory, reproducibility, checkpoints, errors."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import acthash
from acthash import CorruptFileError, NeuralCodes
from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR
from acthash.models import MLP
from acthash.runs.experiment import RunConfig, load_checkpoint, run_experiment

SMALL = dict(width=16, epochs=2, checkpoints=[0, 2], kmeans_n_init=2)


def test_cli_run_writes_a_self_describing_directory(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", "--width", "16", "--epochs", "2", "--checkpoints", "0,1,2", "--out",
              str(out), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "redundancy ratio" in result.output and "epoch 2" in result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["width"] == 16 and cfg["checkpoints"] == [0, 1, 2] and cfg["seed"] == 0
    env = json.loads((out / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["seed"] == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics["epoch"]) == [0, 1, 2]
    assert json.loads((out / "metrics.json").read_text())[2]["epoch"] == 2
    for col in ("redundancy_train", "redundancy_test", "kmeans_test", "knn_test", "logreg_test",
                "net_acc_test", "net_loss_train"):
        assert metrics[col].between(0, np.inf).all()
    assert len(pd.read_parquet(out / "history.parquet")) == 2
    codes = NeuralCodes.load(out / "codes" / "epoch_0002_test.ahc")
    assert codes.n_bits == 16 and len(codes) == 360
    model = load_checkpoint(out / "model.pt")
    assert isinstance(model, MLP)


def test_same_seed_same_codes_bit_for_bit(tmp_path):
    a = run_experiment(RunConfig(**SMALL), out_dir=tmp_path / "a")
    b = run_experiment(RunConfig(**SMALL), out_dir=tmp_path / "b")
    run_experiment(RunConfig(**SMALL, seed=1), out_dir=tmp_path / "c")
    for name in ("epoch_0000_train.ahc", "epoch_0002_test.ahc"):
        assert (tmp_path / "a/codes" / name).read_bytes() == (tmp_path / "b/codes" / name).read_bytes()
    timing = [c for c in a.metrics.columns if c.startswith("seconds_")]  # wall clock varies
    pd.testing.assert_frame_equal(a.metrics.drop(columns=timing), b.metrics.drop(columns=timing))
    assert not NeuralCodes.load(tmp_path / "c/codes/epoch_0002_train.ahc").equals(
        NeuralCodes.load(tmp_path / "a/codes/epoch_0002_train.ahc"))


def test_codes_of_saved_model_match_saved_codes(tmp_path):
    res = run_experiment(RunConfig(**SMALL), out_dir=tmp_path)
    ds = acthash.data.load("digits")
    model = load_checkpoint(tmp_path / "checkpoints" / "epoch_0002.pt")
    codes = acthash.neural_codes(model, ds.x_test)
    assert codes.equals(NeuralCodes.load(tmp_path / "codes" / "epoch_0002_test.ahc"))
    assert res.metrics.loc[1, "redundancy_test"] == acthash.redundancy_ratio(codes)


def test_checkpoint_errors(tmp_path):
    run_experiment(RunConfig(**SMALL), out_dir=tmp_path)
    wrong = MLP(64, 32, 10)
    with pytest.raises(ValueError, match=r"does not match MLP .*shape mismatch"):
        load_checkpoint(tmp_path / "model.pt", wrong)
    bad = tmp_path / "bad.pt"
    bad.write_bytes((tmp_path / "model.pt").read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="not a readable checkpoint"):
        load_checkpoint(bad)


def test_python_api_mirrors_cli(tmp_path):
    res = acthash.run(width=8, epochs=1, kmeans_n_init=2, out_dir=tmp_path)
    assert list(res.metrics["epoch"]) == [1]
    assert (tmp_path / "metrics.parquet").exists()


def test_unknown_dataset_is_a_clear_cli_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--dataset", "nope", "--out", str(tmp_path)])
    assert result.exit_code == EXIT_USER_ERROR
    assert "unknown dataset 'nope'" in result.output and "digits" in result.output


def test_cli_layers_lists_spans():
    result = CliRunner().invoke(app, ["layers", "--width", "12", "--depth", "2"])
    assert result.exit_code == 0, result.output
    lines = [ln.split() for ln in result.output.strip().splitlines()]
    assert lines[0][:2] == ["layer", "kind"]
    assert [ln[0] for ln in lines[1:]] == ["features.2", "features.4"]
    assert lines[-1][-2:] == ["12", "24"]  # second layer occupies bits 12..24
