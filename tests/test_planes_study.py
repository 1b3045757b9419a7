import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from acthash.cli.app import app
from acthash.errors import ConfigError
from acthash.studies.configs import PlanesConfig
from acthash.studies.planes import hanin_rolnick_verdict


def _counts(fn):
    rows = [{"epoch": 0, "width": w, "depth": d, "neurons": w * d, "plane": 0,
             "n_regions": fn(w * d, d)} for w in (4, 8, 16, 32) for d in (1, 2, 3)]
    return pd.DataFrame(rows)


def test_verdict_reads_the_exponent_and_the_depth_factor():
    quad = hanin_rolnick_verdict(_counts(lambda n, d: 3.0 * n**2)).iloc[0]
    assert quad.exponent_in_neurons == pytest.approx(2.0)
    assert quad.factor_per_extra_layer == pytest.approx(1.0)
    assert quad.verdict == "holds"
    lin = hanin_rolnick_verdict(_counts(lambda n, d: 5.0 * n)).iloc[0]
    assert lin.exponent_in_neurons == pytest.approx(1.0) and lin.verdict == "does not hold"
    deep = hanin_rolnick_verdict(_counts(lambda n, d: n**2 * 3.0**d)).iloc[0]
    assert deep.factor_per_extra_layer == pytest.approx(3.0) and deep.verdict == "does not hold"


def test_config_rejects_an_empty_width_list():
    with pytest.raises(ConfigError, match="width"):
        PlanesConfig(width=[])


def test_cli_study_planes_end_to_end(tmp_path):
    out = tmp_path / "planes"
    r = CliRunner().invoke(app, ["study", "planes", "--width", "4,8", "--depth", "1,2",
                                 "--n-planes", "1", "--epochs", "1", "--sample-size", "200",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    counts = pd.read_csv(out / "counts.csv")
    assert len(counts) == 4 * 2  # 4 models x (init, trained) x 1 plane
    assert counts["euler_ok"].all() and (counts["n_regions"] >= 1).all()
    # one hidden layer: an arrangement of N lines has at most 1 + N + N(N-1)/2 cells
    one = counts[counts["depth"] == 1]
    n = one["neurons"]
    assert (one["n_regions"] <= 1 + n + n * (n - 1) // 2).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["epoch"]) == [0, 1]
    assert set(summary["verdict"]) <= {"holds", "does not hold"}
    assert (out / "figures" / "plane_regions.png").exists()
    assert np.isfinite(summary["exponent_in_neurons"]).all()


def test_lc_checkpoints_are_log_spaced():
    from acthash.studies.configs import LocalComplexityConfig

    assert LocalComplexityConfig(epochs=20, n_checkpoints=4).epochs_to_measure() == [0, 2, 7, 20]
    assert LocalComplexityConfig(checkpoints=[3, 1]).epochs_to_measure() == [1, 3]
    with pytest.raises(ConfigError, match="radius"):
        LocalComplexityConfig(radius=0)


def test_cli_study_local_complexity_end_to_end(tmp_path):
    out = tmp_path / "lc"
    r = CliRunner().invoke(app, ["study", "local-complexity", "--width", "8", "--epochs", "2",
                                 "--n-checkpoints", "2", "--n-points", "10", "--n-directions",
                                 "4", "--sample-size", "100", "--out", str(out),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    lc = pd.read_csv(out / "lc.csv")
    assert sorted(set(lc["epoch"])) == [0, 2] and set(lc["set"]) == {"train", "test", "random"}
    # one hidden layer of 8 units: at most 8 neurons can cross
    assert (lc["mean"] <= 8).all() and (lc["mean"] >= 0).all()
    assert (out / "figures" / "lc_over_training.png").exists()
