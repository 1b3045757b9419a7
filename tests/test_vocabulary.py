"""One option vocabulary: former spellings still read (with a warning), options a model
ignores refused when set, run directories named after the options a model takes, class
names in every dataset.json, one spread rule and the same K-Means default everywhere."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash import errors
from acthash.cli import app
from acthash.studies.configs import (
    BinaryStudyConfig,
    LSHConfig,
    RegionsConfig,
    RetrievalStudyConfig,
    SpectrumConfig,
)

runner = CliRunner()


@pytest.mark.parametrize("cls, old, new", [
    (BinaryStudyConfig, {"backbone": "mlp", "backbone_options": {"width": 8, "depth": 1},
                         "lr_schedule": "step", "lr_step_size": 3, "seeds": [4, 5]},
     {"model": "mlp", "model_options": {"width": 8, "depth": 1}, "schedule": "step",
      "step_size": 3, "seed": [4, 5]}),
    (RetrievalStudyConfig, {"datasets": ["digits"], "widths": [32], "seeds": [2]},
     {"dataset": ["digits"], "width": [32], "seed": [2]}),
    (SpectrumConfig, {"task": "digits", "steps": 7, "gamma": 0.5},
     {"dataset": "digits", "epochs": 7, "lr_gamma": 0.5}),
    (LSHConfig, {"real_dataset": None, "real_dataset_options": {"n_test": 10}},
     {"dataset": None, "dataset_options": {"n_test": 10}}),
])
def test_saved_configs_with_former_keys_still_load(cls, old, new):
    with pytest.warns(DeprecationWarning, match="is now"):
        cfg = cls.from_dict(old)
    assert {k: getattr(cfg, k) for k in new} == new
    assert not set(old) & set(cfg.to_dict())  # written back under the new names
    key = next(iter(old))
    with pytest.raises(errors.ConfigError, match="only one"):
        cls.from_dict({key: old[key], cls._renamed[key]: old[key]})


def test_list_fields_take_one_value_or_a_comma_list():
    cfg = RetrievalStudyConfig(dataset="digits,fashion-mnist", width=64, seed="0, 1")
    assert (cfg.dataset, cfg.width, cfg.seed) == (["digits", "fashion-mnist"], [64], [0, 1])
    assert BinaryStudyConfig(seed=3).seed == [3]
    with pytest.raises(errors.ConfigError, match="int"):
        RetrievalStudyConfig(width=["wide"])


def test_device_defaults_to_auto_in_every_config():
    for cls in (RegionsConfig, LSHConfig, SpectrumConfig, BinaryStudyConfig,
                RetrievalStudyConfig):
        assert cls().device == "auto", cls


def _capture(monkeypatch, module, name):
    """Replace a study driver by one that records its config and stops the command."""
    import importlib

    seen = {}

    def stub(cfg, **kw):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(importlib.import_module(module), name, stub)
    return seen


def test_former_option_spellings_warn_and_set_the_new_field(monkeypatch):
    seen = _capture(monkeypatch, "acthash.studies.retrieval", "run_retrieval_study")
    res = runner.invoke(app, ["study", "retrieval", "--datasets", "digits", "--widths", "12,8",
                              "--seeds", "3"])
    assert res.exit_code == 0, res.output
    assert "--datasets is deprecated" in res.output and "use --dataset" in res.output
    assert "--seeds is deprecated" in res.output
    cfg = seen["cfg"]
    assert (cfg.dataset, cfg.width, cfg.seed) == (["digits"], [12, 8], [3])
    # the new spellings: repeatable or comma-separated, no warning
    res = runner.invoke(app, ["study", "retrieval", "--dataset", "digits", "--dataset",
                              "mnist1d,fashion-mnist", "--width", "16", "--seed", "0,1"])
    assert res.exit_code == 0 and "deprecated" not in res.output
    assert seen["cfg"].dataset == ["digits", "mnist1d", "fashion-mnist"]
    assert seen["cfg"].seed == [0, 1]
    # both spellings: a usage error
    res = runner.invoke(app, ["study", "retrieval", "--seed", "1", "--seeds", "2"])
    assert res.exit_code == 2 and "former name" in res.output


def test_binary_and_spectrum_take_the_shared_names(monkeypatch):
    seen = _capture(monkeypatch, "acthash.studies.binary", "run_binary_study")
    res = runner.invoke(app, ["study", "binary", "--model", "mlp", "--schedule", "step",
                              "--step-size", "4", "--lr-gamma", "0.3", "--seed", "1,2"])
    assert res.exit_code == 0, res.output
    c = seen["cfg"]
    assert (c.model, c.schedule, c.step_size, c.lr_gamma, c.seed) == ("mlp", "step", 4, 0.3,
                                                                       [1, 2])
    res = runner.invoke(app, ["study", "binary", "--lr-schedule", "cosine", "--backbone", "mlp"])
    assert res.exit_code == 0 and "--lr-schedule is deprecated" in res.output
    assert seen["cfg"].schedule == "cosine"
    seen = _capture(monkeypatch, "acthash.studies.spectrum", "run_spectrum_study")
    res = runner.invoke(app, ["study", "spectrum", "--task", "digits", "--steps", "9",
                              "--gamma", "0.5"])
    assert res.exit_code == 0, res.output
    c = seen["cfg"]
    assert (c.dataset, c.epochs, c.lr_gamma) == ("digits", 9, 0.5)
    seen = _capture(monkeypatch, "acthash.studies.lsh", "run_lsh_study")
    res = runner.invoke(app, ["study", "lsh", "--real-dataset", ""])
    assert res.exit_code == 0 and seen["cfg"].dataset is None


def test_an_option_the_model_ignores_is_refused_when_set_at_its_default(tmp_path):
    res = runner.invoke(app, ["run", "--model", "resnet20", "--width", "100", "--epochs", "0",
                              "--no-progress", "--out", str(tmp_path / "r")])
    assert res.exit_code == errors.EXIT_USER_ERROR
    assert "--width" in res.output and "resnet20" in res.output
    res = runner.invoke(app, ["layers", "--model", "resnet20", "--dataset", "digits",
                              "--depth", "1"])
    assert res.exit_code == errors.EXIT_USER_ERROR and "--depth" in res.output
    res = runner.invoke(app, ["layers", "--model", "resnet20", "--dataset", "digits"])
    assert res.exit_code == 0, res.output


def test_run_directory_names_follow_the_options_the_model_takes(tmp_path):
    from acthash.runs.config import RunConfig

    assert RunConfig().model_name_parts() == ["mlp", "w100", "d1"]
    assert RunConfig(width=7, depth=2).model_name_parts() == ["mlp", "w7", "d2"]
    assert RunConfig(model="resnet20", model_options={"width_mult": 0.25}).model_name_parts() \
        == ["resnet20", "wm0.25"]
    assert RunConfig(model="vgg11").model_name_parts() == ["vgg11"]
    res = runner.invoke(app, ["run", "--model", "vgg11", "--width-mult", "0.125", "--epochs",
                              "0", "--checkpoints", "0", "--kmeans-n-init", "1",
                              "--kmeans-n-seeds", "1", "--no-save-codes", "--no-progress",
                              "--runs-root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (name,) = [p.name for p in tmp_path.iterdir()]
    assert name.startswith("digits-vgg11-wm0.125-s0-") and "-w100-" not in name


def test_a_csv_run_records_its_class_names(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((60, 3)), columns=["a", "b", "c"])
    df["kind"] = np.array(["cat", "dog", "eel"])[np.arange(60) % 3]
    df.to_csv(tmp_path / "t.csv", index=False)
    res = runner.invoke(app, ["run", "--dataset", f"csv:{tmp_path / 't.csv'}",
                              "--label-column", "kind", "--width", "8", "--epochs", "0",
                              "--checkpoints", "0", "--kmeans-n-init", "1",
                              "--kmeans-n-seeds", "1", "--no-save-codes", "--no-progress",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "r" / "dataset.json").read_text())
    assert info["dataset"]["class_names"] == ["cat", "dog", "eel"]


def test_kmeans_defaults_equal_the_record_defaults():
    import acthash

    rng = np.random.default_rng(1)
    centres = rng.random((3, 40)) < 0.5
    y = rng.integers(0, 3, 90)
    bits = (centres[y] ^ (rng.random((90, 40)) < 0.35)).astype(np.uint8)
    km = acthash.properties.kmeans_scores(bits, y)
    assert km["seeds"] == [0, 1, 2, 3, 4]  # the acthash convention: 5 K-Means seeds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = acthash.encoding_properties(bits[:60], y[:60], bits[60:], y[60:])
    assert rec["kmeans_train"] == acthash.kmeans_accuracy(bits[:60], y[:60])


def test_one_seed_shows_no_spread():
    from acthash._utils.fmt import mean_pm, spread_label
    from acthash.presentation.report import summary_table

    assert mean_pm(0.5, 0.0, 1) == "0.500" and mean_pm(0.5, 0.01, 2) == "0.500 ± 0.010"
    assert mean_pm(0.5, float("nan"), 3) == "0.500"
    assert spread_label(1) == "value (1 seed)" and spread_label(3) == "mean ± std over 3 seeds"
    df = pd.DataFrame({"width": [4, 4, 8], "seed": [0, 1, 0], "knn_test": [0.5, 0.7, 0.9]})
    t = summary_table(df, ["width"]).set_index("width")
    assert t.loc[4, "knn_test"] == "0.600 ± 0.141" and t.loc[8, "knn_test"] == "0.900"
