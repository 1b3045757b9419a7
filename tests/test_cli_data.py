"""`acthash data list` and the dataset/model options of `acthash run`."""

import json

from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR

runner = CliRunner()


def test_data_list_shows_availability_and_how_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTHASH_DATA", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    res = runner.invoke(app, ["data", "list"])
    assert res.exit_code == 0, res.output
    lines = {line.split("│")[1].strip(): line for line in res.output.splitlines()
             if line.count("│") > 3 and line.split("│")[1].strip()}
    assert "yes" in lines["digits"] and "yes" in lines["mnist1d"]
    assert "no" in lines["cifar10"].split("│")[2] and "cifar-10-python" in lines["cifar10"]
    assert "no" in lines["svhn"].split("│")[2]


def test_run_unknown_dataset_and_missing_dir_fail_clearly(tmp_path):
    res = runner.invoke(app, ["run", "--dataset", "imagenet", "--epochs", "1", "--no-progress"])
    assert res.exit_code == EXIT_USER_ERROR and "unknown dataset 'imagenet'" in res.output
    res = runner.invoke(app, ["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "no"),
                              "--epochs", "1", "--no-progress"])
    assert res.exit_code == EXIT_USER_ERROR and "does not exist" in res.output
    res = runner.invoke(app, ["run", "--dataset", "digits", "--data-dir", str(tmp_path),
                              "--epochs", "1", "--no-progress"])
    assert res.exit_code == EXIT_USER_ERROR and "drop --data-dir" in res.output
    res = runner.invoke(app, ["run", "-O", "oops", "--no-progress"])
    assert res.exit_code != 0 and "KEY=VALUE" in res.output


def test_run_csv_with_label_column_and_cnn_width_mult(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2],
                  "kind": np.where(x[:, 0] > 0, "a", "b")}).to_csv(tmp_path / "t.csv", index=False)
    res = runner.invoke(app, ["run", "--dataset", f"csv:{tmp_path / 't.csv'}",
                              "--label-column", "kind", "--width", "8", "--epochs", "2",
                              "--out", str(tmp_path / "r"), "--no-progress"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["dataset_options"] == {"label": "kind"}
    res = runner.invoke(app, ["run", "--dataset", "random:digits", "--model", "resnet20",
                              "--width-mult", "0.25", "--epochs", "1", "--sample-size", "64",
                              "--layers", r"layer3\.2\.",
                              "-O", "seed=1", "--out", str(tmp_path / "c"), "--no-progress"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["model_options"] == {"width_mult": 0.25} and cfg["dataset_options"] == {"seed": 1}
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert len(metrics) == 1
    from acthash.core.codes import NeuralCodes

    codes = NeuralCodes.load(tmp_path / "c" / "codes" / "epoch_0001_test.ahc")
    # the last block's two ReLUs: 16 channels (64 x 0.25) at 2x2 positions each (8 -> 4 -> 2)
    assert codes.n_bits == 2 * 16 * 2 * 2


def test_option_defaults_are_the_configs_defaults():
    """The commands read defaults from the config classes' fields without building them."""
    import dataclasses

    from acthash.runs.config import RunConfig

    from acthash.cli._options import _defaults
    from acthash.studies import configs

    for cls in (RunConfig, configs.RegionsConfig, configs.LSHConfig, configs.SpectrumConfig,
                configs.BinaryStudyConfig, configs.RetrievalStudyConfig):
        assert vars(_defaults(cls)) == dataclasses.asdict(cls()), cls.__name__
