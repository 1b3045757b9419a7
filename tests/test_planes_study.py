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


def test_planes_factors_make_one_cell_each(tmp_path):
    from acthash.studies.planes import run_planes_study

    cfg = PlanesConfig(width=[4, 8], depth=[1], n_planes=1, epochs=1, sample_size=100,
                       seed=[0, 1], init=["default", "he"], batchnorm=[False, True],
                       label_noise=[0.0])
    res = run_planes_study(cfg, write=False)
    c = res.counts
    assert len(c) == 2 * 2 * 2 * 2 * 2  # seeds x inits x batchnorm x widths x (init, trained)
    assert c["euler_ok"].all()
    # before training the BatchNorm factor changes nothing (eval mode, fresh statistics)
    e0 = c[c["epoch"] == 0].set_index(["seed", "init", "width", "batchnorm"])["n_regions"]
    np.testing.assert_array_equal(e0.xs(False, level="batchnorm").sort_index(),
                                  e0.xs(True, level="batchnorm").sort_index())
    s = res.summary
    assert len(s) == 2 * 2 * 2  # inits x batchnorm x epochs
    assert (s["n_partitions"] == 4).all()  # two seeds x two widths x one plane
    with pytest.raises(ConfigError, match="init"):
        PlanesConfig(init=["xavier"])


def test_planes_label_noise_cells_share_the_initial_partitions():
    from acthash.studies.planes import run_planes_study

    kw = dict(width=[4, 8], depth=[1], n_planes=2, epochs=2, sample_size=100, seed=[0])
    both = run_planes_study(PlanesConfig(**kw, label_noise=[0.0, 0.5]), write=False).counts
    alone = run_planes_study(PlanesConfig(**kw, label_noise=[0.5]), write=False).counts
    assert len(both) == 2 * 2 * 2 * 2  # noise levels x widths x planes x (init, trained)
    key = ["width", "plane", "epoch"]
    noisy = both[both["label_noise"] == 0.5].set_index(key)["n_regions"].sort_index()
    # the cells with noise, computed beside the clean one, equal a run of that noise alone
    np.testing.assert_array_equal(noisy, alone.set_index(key)["n_regions"].sort_index())
    e0 = both[both["epoch"] == 0]
    assert e0.groupby(["width", "plane"])["n_regions"].nunique().eq(1).all()


def _lc_frames(train_curve, test_curve, acc_curve, epochs):
    lc, acc = [], []
    for seed in (0, 1):
        for e, tr, te, a in zip(epochs, train_curve, test_curve, acc_curve, strict=True):
            for name, v in (("train", tr), ("test", te)):
                lc.append({"seed": seed, "batchnorm": False, "label_noise": 0.0, "epoch": e,
                           "set": name, "layer": "total", "mean": v, "std": 0.0})
            acc.append({"seed": seed, "batchnorm": False, "label_noise": 0.0, "epoch": e,
                        "train_acc": a, "test_acc": a})
    return pd.DataFrame(lc), pd.DataFrame(acc)


def test_lc_verdict_reads_peak_interpolation_and_train_above_test():
    from acthash.studies.local_complexity import lc_verdict

    epochs = [0, 1, 3, 10, 30, 100, 300]
    acc = [0.1, 0.5, 0.8, 0.95, 1.0, 1.0, 1.0]
    # descent, ascent to a peak at interpolation (epoch 30), descent; train above test there
    v = lc_verdict(*_lc_frames([10, 6, 8, 12, 20, 14, 9], [9, 6, 7, 10, 15, 13, 9], acc,
                               epochs)).iloc[0]
    assert v.peak_epoch == 30 and v.interpolation_epoch == 30 and v.descent_first
    assert v.verdict == "holds" and v.n_seeds == 2
    # the same curve with test above train at the peak
    v = lc_verdict(*_lc_frames([10, 6, 8, 12, 20, 14, 9], [10, 6, 8, 12, 25, 14, 9], acc,
                               epochs)).iloc[0]
    assert not v.train_above_test_at_peak and v.verdict == "does not hold"
    # still rising at the end: no fall
    v = lc_verdict(*_lc_frames([10, 6, 8, 12, 20, 24, 29], [9, 5, 7, 10, 15, 20, 20], acc,
                               epochs)).iloc[0]
    assert not v.falls_after and v.verdict == "does not hold"
    # the initial value is the global maximum: the ascent peak is still found after the trough
    v = lc_verdict(*_lc_frames([30, 6, 8, 12, 20, 14, 9], [29, 6, 7, 10, 15, 13, 9], acc,
                               epochs)).iloc[0]
    assert (v.trough_epoch, v.peak_epoch) == (1, 30) and v.verdict == "holds"
    # a rise that mostly happens after interpolation does not "rise until interpolation"
    v = lc_verdict(*_lc_frames([10, 6, 6, 6, 7, 20, 9], [9, 6, 6, 6, 7, 15, 9], acc,
                               epochs)).iloc[0]
    assert not v.rises_until_interpolation and v.verdict == "does not hold"
    # never interpolates
    v = lc_verdict(*_lc_frames([10, 6, 8, 12, 20, 14, 9], [9, 6, 7, 10, 15, 13, 9],
                               [0.1] * 7, epochs)).iloc[0]
    assert v.verdict == "not reached"


def test_cli_local_complexity_factors(tmp_path):
    out = tmp_path / "lcf"
    r = CliRunner().invoke(app, ["study", "local-complexity", "--width", "8", "--depth", "1",
                                 "--epochs", "3", "--n-checkpoints", "2", "--n-points", "10",
                                 "--n-directions", "4", "--sample-size", "100", "--seed", "0,1",
                                 "--batchnorm", "off,on", "--label-noise", "0,0.5",
                                 "--n-exact", "3", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    lc = pd.read_csv(out / "lc.csv")
    cells = lc.groupby(["seed", "batchnorm", "label_noise"]).size()
    assert len(cells) == 2 * 2 * 2
    acc = pd.read_csv(out / "accuracy.csv")
    assert sorted(set(acc["epoch"])) == [0, 3] and acc["train_acc"].between(0, 1).all()
    verdict = pd.read_csv(out / "verdict.csv")
    assert len(verdict) == 4 and set(verdict["verdict"]) <= {"holds", "does not hold",
                                                             "not reached"}
    exact = pd.read_csv(out / "lc_exact.csv")
    assert len(exact) == 8 * 2 * 2  # models x checkpoints x (layer, total)
    assert (exact["min_gap"] >= 0).all()  # sampled never above exact
    first = exact[exact["layer"] != "total"]  # one hidden layer: exact in the sampled count
    assert (first["shortfall_mean"] == 0).all()
    assert "shortfall" in r.output
    h = pd.read_parquet(out / "history.parquet")
    assert (h["train_loss"] > 0).all()
    r = CliRunner().invoke(app, ["study", "local-complexity", "--batchnorm", "maybe"])
    assert r.exit_code != 0 and "on/off" in r.output
