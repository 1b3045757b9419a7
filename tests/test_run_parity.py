"""acthash run with the parity options: --codes aggregate/both, --convention original, --ties."""

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from acthash import aggregate_codes, data
from acthash.cli import app
from acthash.runs.experiment import load_checkpoint, training_rows

CNN = ["--model", "vgg11", "--width-mult", "0.125", "--sample-size", "200", "--epochs", "1",
       "--layers", r"features\.(2|6)$", "--kmeans-n-init", "1", "--no-progress"]


def test_cli_run_aggregate_and_original_convention(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", *CNN, "--codes", "both", "--convention", "original",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "aggregate: 9-NN (Euclidean)" in result.output
    metrics = pd.read_parquet(out / "metrics.parquet")
    row = metrics.iloc[-1]
    assert row["convention"] == "original" and row["ties"] == "sklearn"
    assert "knn_train" not in metrics.columns and "agg_knn_train" not in metrics.columns
    for col in ("knn_test", "logreg_test", "agg_knn_test", "agg_kmeans_test", "agg_logreg_test"):
        assert 0.0 <= row[col] <= 1.0, col
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["codes"] == "both" and cfg["convention"] == "original"
    # the saved aggregate codes are those of the saved model on the training rows
    saved = np.load(out / "codes" / "epoch_0001_train_aggregate.npy")
    from acthash.runs.experiment import RunConfig

    run_cfg = RunConfig.from_dict(cfg)
    ds = data.load(run_cfg.dataset, **run_cfg.dataset_options)
    x = ds.x_train[training_rows(run_cfg)]
    again = aggregate_codes(load_checkpoint(out / "model.pt"), x, layers=run_cfg.layers)
    np.testing.assert_allclose(saved, again.values, rtol=1e-6, atol=1e-9)
    assert saved.shape[1] == row["agg_n_features"]


def test_cli_run_aggregate_only_keeps_network_scores(tmp_path):
    result = CliRunner().invoke(app, ["run", *CNN, "--codes", "aggregate", "--kmeans-n-seeds",
                                      "2", "--out", str(tmp_path / "agg")])
    assert result.exit_code == 0, result.output
    m = pd.read_parquet(tmp_path / "agg" / "metrics.parquet")
    assert "redundancy_test" not in m.columns and "net_acc_test" in m.columns
    assert m["agg_kmeans_std_test"].notna().all() and "std over seeds" in result.output


def test_cli_bad_parity_options(tmp_path):
    for opt, value, words in (("--convention", "paper", "unknown convention"),
                              ("--codes", "float", "unknown codes"),
                              ("--ties", "first", "unknown ties")):
        result = CliRunner().invoke(app, ["run", "--epochs", "1", opt, value, "--out",
                                          str(tmp_path / value), "--no-progress"])
        assert result.exit_code != 0
        assert words in result.output
    # aggregate codes of an MLP: no layer has spatial dimensions
    result = CliRunner().invoke(app, ["run", "--epochs", "1", "--codes", "aggregate",
                                      "--out", str(tmp_path / "mlp"), "--no-progress"])
    assert result.exit_code != 0 and "no spatial dimensions" in result.output
