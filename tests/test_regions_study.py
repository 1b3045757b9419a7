import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR
from acthash.studies.regions import RegionsConfig, run_regions_study


@pytest.mark.slow
def test_regions_study_end_to_end(tmp_path):
    cfg = RegionsConfig(width=16, epochs=2, n_points=10, n_pairs=5, checkpoints=(0, 2))
    res = run_regions_study(cfg, out_dir=tmp_path / "r")
    for name in ("config.json", "environment.json", "diameters.parquet",
                 "region_counts.parquet", "summary.csv", "figures/diameters.png",
                 "figures/region_counts.png"):
        assert (tmp_path / "r" / name).exists(), name
    d = res.diameters
    assert len(d) == 2 * 2 * 10 and (d["length"] > 0).all() and (d["length"] <= 10).all()
    assert set(res.region_counts["pair"]) == {"same class", "different class"}
    assert (res.region_counts["n_regions"] >= 1).all()


def test_regions_rejects_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        run_regions_study(RegionsConfig(direction="up"), write=False)


@pytest.mark.slow
def test_cli_regions_and_study_lsh(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["study", "regions", "--width", "8", "--epochs", "1", "--n-points", "5",
                            "--n-pairs", "3", "--out", str(tmp_path / "reg"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "diameter" in r.output and (tmp_path / "reg" / "summary.csv").exists()
    r = runner.invoke(app, ["study", "lsh", "--n-classes", "4", "--per-class", "10",
                            "--input-dim", "8", "--width", "8", "--epochs", "1", "--n-pairs", "10",
                            "--distances", "0,2", "--n-unseen", "2", "--repeats", "1",
                            "--dataset", "", "--out", str(tmp_path / "lsh"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "one-shot accuracy on unseen manifolds" in r.output and (tmp_path / "lsh" / "lsh_curve.csv").exists()
    bad = runner.invoke(app, ["study", "regions", "--direction", "sideways", "--no-progress"])
    assert bad.exit_code == EXIT_USER_ERROR and "direction" in bad.output
