"""End-to-end latent binary encoding study (small), its directory and its CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR
from acthash.studies.binary import BinaryStudyConfig, run_binary_study

SMALL = dict(epochs=3, checkpoints=[0, 3], backbone_options={"width": 16, "depth": 1},
             robustness_size=40, test_size=100, kmeans_n_init=1, pgd_steps=3, device="cpu",
             logreg_strategy="multinomial")


@pytest.mark.slow
def test_binary_study_writes_a_self_describing_directory(tmp_path):
    cfg = BinaryStudyConfig(**SMALL, seeds=[0, 1])
    res = run_binary_study(cfg, out_dir=tmp_path / "study")
    d = res.run_dir
    for name in ("config.json", "environment.json", "dataset.json", "metrics.parquet",
                 "history.parquet", "comparison.csv", "comparison.md",
                 "latent_histograms.png", "latent_histograms.svg",
                 "metrics_over_epochs.png", "latents/compressed_seed1.npz",
                 "models/none_seed0.pt"):
        assert (d / name).exists(), name
    assert json.loads((d / "config.json").read_text())["checkpoint_epochs"] == [0, 3]
    m = pd.read_parquet(d / "metrics.parquet")
    assert len(m) == 4 * 2 * 2  # variants x seeds x checkpoints
    # the compressed and the linear model share their initialization (same seed)
    init = m[m["epoch"] == 0].set_index(["variant", "seed"])
    assert init.loc[("compressed", 0), "test_acc"] == init.loc[("linear", 0), "test_acc"]
    assert (m["latent_dim"][m["variant"] != "none"] == 4).all()
    assert (m["latent_dim"][m["variant"] == "none"] == 16).all()
    assert m["same_encoding_test"].between(0, 1).all() and m["auroc"].between(0, 1).all()
    assert list(res.table.index) == ["compressed", "linear", "nonlinear", "none"]
    assert (res.table["n_seeds"] == 2).all()
    h = res.history
    assert (h.loc[(h["variant"] == "compressed") & (h["seed"] == 0), "gamma"].to_numpy()
            == pytest.approx(0.01 * 1.06 ** np.arange(3)))
    z = np.load(d / "latents" / "compressed_seed1.npz")
    assert z["z_test"].shape == (100, 4)
    # seeded: the same config gives the same numbers
    again = run_binary_study(BinaryStudyConfig(**SMALL, seeds=[1], variants=["compressed"]),
                             write=False)
    first = res.metrics[(res.metrics["variant"] == "compressed") & (res.metrics["seed"] == 1)]
    pd.testing.assert_frame_equal(again.metrics, first.reset_index(drop=True))


def test_binary_study_rejects_unknown_variant():
    with pytest.raises(ValueError, match="unknown variants"):
        BinaryStudyConfig(variants=["compressed", "sigmoid"])


@pytest.mark.slow
def test_cli_study_binary(tmp_path):
    out = tmp_path / "cli"
    r = CliRunner().invoke(app, [
        "study", "binary", "--epochs", "2", "--width", "8", "--depth", "1",
        "--variants", "compressed,none", "--checkpoints", "2", "--robustness-size", "20",
        "--test-size", "50", "--device", "cpu", "--no-progress", "--no-figures",
        "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "same-encoding" in r.output
    assert (out / "comparison.md").exists()
    assert not (out / "latent_histograms.png").exists()
    assert not (out / "metrics_over_epochs.png").exists()
    bad = CliRunner().invoke(app, ["study", "binary", "--variants", "nope", "--out",
                                   str(tmp_path / "x")])
    assert bad.exit_code == EXIT_USER_ERROR and "unknown variants" in bad.output
