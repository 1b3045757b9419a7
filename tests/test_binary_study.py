"""End-to-end latent binary encoding study (small), its directory and its CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR, ConfigError
from acthash.studies.binary import (
    AUTHORS_TRAINING,
    BinaryStudyConfig,
    run_binary_study,
    shifted_inputs,
)

SMALL = dict(epochs=3, checkpoints=[0, 3], model_options={"width": 16, "depth": 1},
             robustness_size=40, test_size=100, kmeans_n_init=1, pgd_steps=3, device="cpu",
             logreg_strategy="multinomial", bimodality_max_dims=8)


@pytest.mark.slow
def test_binary_study_writes_a_self_describing_directory(tmp_path):
    cfg = BinaryStudyConfig(**SMALL, seed=[0, 1])
    res = run_binary_study(cfg, out_dir=tmp_path / "study")
    d = res.run_dir
    for name in ("config.json", "environment.json", "dataset.json", "metrics.parquet",
                 "history.parquet", "comparison.csv", "comparison.md",
                 "latent_histograms.png", "latent_histograms.svg",
                 "metrics_over_epochs.png", "latents/compressed_seed1.npz",
                 "models/none_seed0.pt", "conventions.md", "conventions.csv", "ood.md",
                 "ood.csv"):
        assert (d / name).exists(), name
    assert json.loads((d / "config.json").read_text())["checkpoint_epochs"] == [0, 3]
    m = pd.read_parquet(d / "metrics.parquet")
    assert len(m) == 4 * 2 * 2  # variants x seeds x checkpoints
    # the compressed and the linear model share their initialization (same seed)
    init = m[m["epoch"] == 0].set_index(["variant", "seed"])
    assert init.loc[("compressed", 0), "test_acc"] == init.loc[("linear", 0), "test_acc"]
    assert (m["latent_dim"][m["variant"] != "none"] == 4).all()
    assert (m["latent_dim"][m["variant"] == "none"] == 16).all()
    assert m["bimodality_dims"].tolist() == [4 if v != "none" else 8 for v in m["variant"]]
    assert m["same_encoding_test"].between(0, 1).all() and m["auroc"].between(0, 1).all()
    # every collapse and binarity metric on both splits, in both conventions
    for name in ("nc1", "nc1_per_dim", "sigma_w", "relative_norm_std", "bimodality_mean",
                 "bimodality_std", "gmm_std", "gmm_score", "same_encoding"):
        for split in ("train", "test"):
            assert f"{name}_{split}" in m.columns and f"{name}_authors_{split}" in m.columns
    assert m["nc1_train"].gt(0).all() and m["gmm_std_test"].between(0, 1.5).all()
    # the authors' 101-point sum has weights summing to 1.01
    for col in ("auroc_riemann", "auroc_authors", "auroc_authors_riemann"):
        assert m[col].dropna().between(0, 1.01 + 1e-12).all(), col
    for shift in ("permuted", "uniform"):
        assert m[f"ood_{shift}"].between(0, 1).all()
        assert m[f"ood_{shift}_predicted"].between(0, 1).all()
    assert set(res.ood["ood_set"]) == {"permuted", "uniform"}
    assert len(res.conventions) == 4 * 9
    z = np.load(d / "latents" / "none_seed0.npz")
    assert {"distance_correct_test", "authors_distance_misclassified_test"} <= set(z.files)
    assert len(z["distance_correct_test"]) + len(z["distance_misclassified_test"]) == 100
    assert list(res.table.index) == ["compressed", "linear", "nonlinear", "none"]
    assert (res.table["n_seeds"] == 2).all()
    h = res.history
    assert (h.loc[(h["variant"] == "compressed") & (h["seed"] == 0), "gamma"].to_numpy()
            == pytest.approx(0.01 * 1.06 ** np.arange(3)))
    z = np.load(d / "latents" / "compressed_seed1.npz")
    assert z["z_test"].shape == (100, 4)
    # seeded: the same config gives the same numbers
    again = run_binary_study(BinaryStudyConfig(**SMALL, seed=[1], variants=["compressed"]),
                             write=False)
    first = res.metrics[(res.metrics["variant"] == "compressed") & (res.metrics["seed"] == 1)]
    pd.testing.assert_frame_equal(again.metrics, first.reset_index(drop=True))


def test_binary_study_rejects_unknown_variant():
    with pytest.raises(ValueError, match="unknown variants"):
        BinaryStudyConfig(variants=["compressed", "sigmoid"])
    with pytest.raises(ConfigError, match="unknown optimizer"):
        BinaryStudyConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="schedule"):
        BinaryStudyConfig(schedule="plateau")
    with pytest.raises(ConfigError, match="twice"):
        BinaryStudyConfig(ood_sets=["uniform", "uniform"])


def test_shifted_inputs_keep_the_shape_and_range():
    import torch

    x = torch.rand(30, 1, 8, 8)
    perm = shifted_inputs("permuted", x, seed=1)
    assert perm.shape == x.shape
    # the same fixed permutation of the pixels for every example
    flat, pflat = x.reshape(30, -1), perm.reshape(30, -1)
    order = [int(torch.nonzero(flat[0] == v)[0]) for v in pflat[0]]
    assert torch.equal(flat[:, order], pflat)
    uni = shifted_inputs("uniform", x, seed=1, input_range=(-1.0, 2.0))
    assert uni.shape == x.shape and uni.min() >= -1 and uni.max() <= 2
    assert torch.equal(uni, shifted_inputs("uniform", x, seed=1, input_range=(-1.0, 2.0)))
    with pytest.raises(ValueError, match="images"):
        shifted_inputs("digits", torch.rand(5, 64))


def test_authors_training_options_reach_the_optimizer():
    cfg = BinaryStudyConfig(**AUTHORS_TRAINING, epochs=1)
    assert (cfg.optimizer, cfg.weight_decay, cfg.schedule) == ("adamw", 5e-4, "step")
    assert cfg.gamma_ratio == 1.05 and cfg.to_dict()["lr_gamma"] == 0.5


@pytest.mark.slow
def test_cli_study_binary(tmp_path):
    out = tmp_path / "cli"
    r = CliRunner().invoke(app, [
        "study", "binary", "--epochs", "2", "--width", "8", "--depth", "1",
        "--variants", "compressed,none", "--checkpoints", "2", "--robustness-size", "20",
        "--test-size", "50", "--device", "cpu", "--no-progress", "--no-figures",
        "--optimizer", "adamw", "--weight-decay", "5e-4", "--schedule", "step",
        "--step-size", "1", "--lr-gamma", "0.5", "--gamma-ratio", "1.025",
        "--ood-sets", "uniform", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "same-encoding" in r.output
    assert (out / "comparison.md").exists()
    assert not (out / "latent_histograms.png").exists()
    assert not (out / "metrics_over_epochs.png").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["optimizer"], cfg["weight_decay"], cfg["schedule"]) == ("adamw", 5e-4, "step")
    assert cfg["gamma_ratio"] == 1.025 and cfg["ood_sets"] == ["uniform"]
    hist = pd.read_parquet(out / "history.parquet")
    assert hist.loc[hist["variant"] == "none", "lr"].tolist() == [1e-3, 5e-4]  # StepLR
    assert "out-of-distribution" in r.output
    bad = CliRunner().invoke(app, ["study", "binary", "--variants", "nope", "--out",
                                   str(tmp_path / "x")])
    assert bad.exit_code == EXIT_USER_ERROR and "unknown variants" in bad.output
