"""acthash study retrieval: the study end to end at a tiny size, its files and its CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import acthash
from acthash.cli import app
from acthash.errors import ConfigError
from acthash.retrieval import mean_average_precision
from acthash.runs.experiment import load_checkpoint
from acthash.studies.retrieval import RetrievalStudyConfig, map_table, run_retrieval_study


def _tiny(**kw):
    base = dict(dataset=["digits"], bits=[8, 16], encoders=["neural", "neural-last", "lsh-raw",
                "pca-raw", "itq-feat", "sh-feat"], n_queries=60, n_database=400, train_size=None,
                width=[48, 40], epochs=2, min_steps=0, seed=[0, 1], itq_iter=5, ks=[1, 10],
                search_bits=16, device="cpu")
    base.update(kw)
    return RetrievalStudyConfig(**base)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("retrieval")
    return run_retrieval_study(_tiny(), out_dir=out)


def test_study_rows_and_not_applicable_budgets(study):
    res = study.results
    # 2 seeds x 6 encoders x 3 budgets (8, 16, full = 48 + 40 units)
    assert len(res) == 2 * 6 * 3
    full = res[res["bits"] == "full"]
    assert set(full["n_bits"]) == {88}
    # PCA on raw digits has at most 64 bits, ITQ on the 40 penultimate features at most 40,
    # and the last layer has 40 units: 88 bits are out of reach for all three
    na = res[res["status"] != "ok"]
    assert set(zip(na["encoder"], na["bits"], strict=True)) == {
        ("pca-raw", "full"), ("itq-feat", "full"), ("neural-last", "full")}
    assert na["status"].str.contains("exceeds").all()
    ok = res[res["status"] == "ok"]
    assert ok["map"].between(0, 1).all() and ok["map_expected"].between(0, 1).all()
    # mAP well above the chance level of ten balanced classes (0.1) for the network's code
    assert ok.loc[ok["encoder"] == "neural", "map"].min() > 0.15


def test_full_neural_map_recomputed_from_the_saved_model(study):
    run_dir = study.run_dir
    cfg = _tiny()
    ds = acthash.data.load("digits")
    db_idx = np.sort(np.random.default_rng(cfg.data_seed).choice(len(ds.y_train), 400,
                                                                 replace=False))
    q_idx = np.sort(np.random.default_rng(cfg.data_seed + 1).choice(len(ds.y_test), 60,
                                                                    replace=False))
    model = acthash.models.build_model("mlp", ds.input_shape, 10, widths=[48, 40])
    blob = torch.load(run_dir / "models" / "digits_seed1.pt", weights_only=False)
    model.load_state_dict(blob["state_dict"])
    assert blob["epochs"] == 2 and blob["n_train"] == 400
    db = acthash.neural_codes(model, ds.x_train[db_idx])
    q = acthash.neural_codes(model, ds.x_test[q_idx])
    expect = mean_average_precision(q, db, ds.y_test[q_idx].numpy(), ds.y_train[db_idx].numpy(),
                                    backend="numpy")
    row = study.results.query("encoder == 'neural' and bits == 'full' and seed == 1")
    assert row["map"].iloc[0] == pytest.approx(expect, abs=1e-12)


def test_study_files_and_summary(study):
    d = study.run_dir
    for name in ("config.json", "environment.json", "results.parquet", "results.csv",
                 "summary.csv", "summary.md", "pr_curves.parquet", "search.csv",
                 "map_vs_bits.png", "map_vs_bits.svg", "pr_curves.png"):
        assert (d / name).exists(), name
    summary = pd.read_csv(d / "summary.csv")
    assert set(summary["n_seeds"]) == {2}
    text = (d / "summary.md").read_text()
    assert "| neural |" in text and "full (88)" in text and "n/a" in text
    search = pd.read_csv(d / "search.csv")
    assert list(search["index"]) == ["exact", "flat", "hnsw", "ivf"]
    assert (search["n_bits"] == 16).all()
    assert search.loc[search["index"] == "flat", "recall@10_dist"].iloc[0] == 1.0


def test_study_is_deterministic_given_the_seed():
    cfg = _tiny(seed=[3], encoders=["neural", "lsh-feat", "itq-raw", "sh-raw"], search=False)
    a = run_retrieval_study(cfg, write=False).results
    b = run_retrieval_study(cfg, write=False).results
    cols = ["encoder", "bits", "map", "map_expected", "p@10", "p_r2"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_study_uses_the_model_of_a_run(tmp_path):
    run = acthash.run(dataset="digits", width=24, epochs=1, out_dir=tmp_path / "run")
    cfg = _tiny(encoders=["neural"], bits=[8], seed=[0], runs={"digits": str(run.run_dir)},
                search=False, figures=False)
    res = run_retrieval_study(cfg, out_dir=tmp_path / "study").results
    assert res.loc[res["bits"] == "full", "n_bits"].iloc[0] == 24
    model = load_checkpoint(run.run_dir / "model.pt")
    assert model.features[1].out_features == 24


def test_study_config_errors():
    with pytest.raises(ConfigError, match="choose from"):
        _tiny(encoders=["deep-hash"])
    with pytest.raises(ConfigError, match="not among the datasets"):
        _tiny(runs={"mnist": "runs/x"})
    with pytest.raises(ConfigError, match="positive integers"):
        _tiny(bits=[0])


def test_map_table_marks_missing_budgets(study):
    text = map_table(study.summary)
    row = next(line for line in text.splitlines() if line.startswith("| pca-raw |"))
    assert row.endswith("n/a |")


def test_cli_study_retrieval(tmp_path):
    result = CliRunner().invoke(app, [
        "study", "retrieval", "--dataset", "digits", "--bits", "8", "--encoders",
        "neural,lsh-raw", "--n-queries", "40", "--n-database", "300", "--train-size", "0",
        "--width", "16", "--epochs", "1", "--min-steps", "0", "--seed", "0", "--search-bits", "8",
        "--device", "cpu", "--out", str(tmp_path / "s"), "--no-progress", "--no-figures"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())  # a narrow table wraps its title
    assert "mAP of Hamming ranking" in words and "recall@10" in words
    assert "value (1 seed)" in words and "±" not in result.output  # one seed: no spread
    assert (tmp_path / "s" / "results.csv").exists()
    bad = CliRunner().invoke(app, ["study", "retrieval", "--encoders", "kmeans", "--out",
                                   str(tmp_path / "t")])
    assert bad.exit_code != 0 and "choose from" in bad.output


def test_map_at_k_columns_follow_the_deep_hashing_protocol(tmp_path):
    """mAP@k with k = the whole database, normalised by the relevant items retrieved, is the
    whole-ranking AP; with the expected tie rule it equals the study's map_expected."""
    cfg = _tiny(encoders=["neural", "lsh-raw"], bits=[8], seed=[0], map_at=[10, 400],
                map_ties="expected", search=False, figures=False)
    res = run_retrieval_study(cfg, out_dir=tmp_path / "s")
    ok = res.results[res.results["status"] == "ok"]
    np.testing.assert_allclose(ok["map@400"], ok["map_expected"], rtol=1e-9)
    assert ((ok["prec@10"] >= 0) & (ok["prec@10"] <= 1)).all()
    assert {"map@10_mean", "prec@10_mean"} <= set(res.summary.columns)
    assert "map@10" in (tmp_path / "s" / "summary.md").read_text()
    with pytest.raises(ConfigError, match="map_ties"):
        _tiny(map_ties="random")
