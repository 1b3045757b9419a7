"""The OOD study end to end at a tiny size: its tables, files and figures, the sanity check
that fails loudly, and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import ConfigError, StudyError
from acthash.studies.ood import OODStudyConfig, metric_table, ood_sets, run_ood_study

TINY = dict(epochs=3, seed=[0], train_size=400, detectors=["hamming-knn", "msp", "mahalanobis"],
            ood_sets=["held-out", "inverted", "gaussian"], label_noise=0.0, figures=False,
            width=[32])


def test_study_writes_tables_and_fails_loudly_when_the_sanity_check_fails(tmp_path):
    with pytest.raises(StudyError, match=r"sanity check failed: .*(hamming-knn|msp|mahalan)"):
        run_ood_study(OODStudyConfig(**TINY, sanity_tolerance=1e-6), out_dir=tmp_path / "s",
                      progress=False)
    # the results are written before the failure is raised
    sanity = json.loads((tmp_path / "s" / "sanity.json").read_text())
    assert set(sanity["failed"]) and set(sanity["failed"]) <= set(TINY["detectors"])
    res = pd.read_parquet(tmp_path / "s" / "results.parquet")
    assert set(res["ood_set"]) == set(TINY["ood_sets"]) and len(res) == 9
    assert res[["auroc", "aupr_in", "aupr_out", "fpr95"]].apply(
        lambda c: c.between(0, 1)).all().all()


def test_sets_and_tables():
    import torch

    x = torch.rand(10, 1, 4, 4)
    sets = ood_sets(["inverted", "gaussian", "permuted"], x, None, input_range=(0.0, 1.0))
    assert torch.allclose(sets["inverted"], 1 - x)
    assert sets["gaussian"].min() >= 0 and sets["gaussian"].max() <= 1
    assert torch.equal(sets["permuted"].sort(-1).values.flatten(1).sort(1).values,
                       x.flatten(1).sort(1).values)  # the same pixels, reordered
    with pytest.raises(ConfigError, match="held-out"):
        ood_sets(["held-out"], x, None, input_range=(0.0, 1.0))
    summary = pd.DataFrame({"detector": ["a", "a"], "ood_set": ["u", "v"],
                            "auroc_mean": [0.9, 0.8], "auroc_std": [np.nan, 0.01],
                            "n_seeds": [1, 2]})
    tab = metric_table(summary)
    assert tab.loc["a", "u"] == "0.900" and tab.loc["a", "v"] == "0.800 ± 0.010"
    with pytest.raises(ConfigError, match="unknown detectors"):
        OODStudyConfig(detectors=["nope"])


def test_cli_study_ood(tmp_path):
    res = CliRunner().invoke(app, [
        "study", "ood", "--epochs", "3", "--seed", "0,1", "--width", "32", "--train-size", "300",
        "--test-size", "100",
        "--detectors", "hamming-knn,energy", "--ood-sets", "uniform,permuted",
        "--label-noise", "0.2", "--memorization-epochs", "3", "--no-progress",
        "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "AUROC" in res.output and "±" in res.output and "flipped" in res.output
    assert (tmp_path / "c" / "roc_curves.png").exists()
    assert (tmp_path / "c" / "score_histograms.svg").exists()
    mem = pd.read_csv(tmp_path / "c" / "memorization.csv")
    assert set(mem["score"]) == {"code disagreement", "code nearest same-label",
                                 "per-example loss"}
    assert (mem["n_flipped"] == round(0.2 * mem["n_train"])).all()
    scores = np.load(tmp_path / "c" / "scores_seed0.npz")
    assert {"hamming-knn|test", "hamming-knn|val", "energy|uniform"} <= set(scores.files)


def test_every_option_is_a_config_field():
    import typer.main

    from acthash.cli import CLI_ONLY

    cmd = typer.main.get_command(app).commands["study"].commands["ood"]
    params = {p.name for p in cmd.params}
    assert params - OODStudyConfig.field_names() - CLI_ONLY == set()
    assert {"data_dir", "dataset_option", "device"} <= params
