"""Claims: each finding's criterion gives the verdict its hand-made numbers call for; a
missing factor names its preset; a single seed warns; the CLI and the report show the table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from acthash._utils.io import write_json, write_table
from acthash.errors import EXIT_USER_ERROR, InputError, MissingFileError
from acthash.presentation.claims import CLAIMS, ClaimCriteria, evaluate_claims, sweep_roles

ACC = ("kmeans_test", "knn_test", "logreg_test")
MEASURES = ("redundancy_", "kmeans_", "knn_", "logreg_")


def _rows(points, seeds=(0, 1), jitter=0.002, **const):
    """Results rows: one per point and seed; seed s adds s*jitter to every measure."""
    out = []
    for i, p in enumerate(points):
        for s in seeds:
            r = {"cell": f"c{i}-{s}", "seed": s, "dataset": "digits", "n_classes": 10,
                 "epoch": 30, **const}
            for k, v in p.items():
                r[k] = v + s * jitter if k.startswith(MEASURES) else v
            out.append(r)
    return out


def _sweep(tmp_path, name, rows, preset_name=None):
    d = tmp_path / name
    write_table(d / "results.parquet", pd.DataFrame(rows))
    write_json(d / "sweep.json", {"name": preset_name or name})
    return d


def _acc(v):
    return {a: v for a in ACC}


def _model_size(tmp_path, top=0.0, dead=0.0, name="ms"):
    pts = [{"width": 2, "redundancy_train": 0.99, "redundancy_test": 0.97, "dead_units_train": 0.0,
            **_acc(0.2)},
           {"width": 32, "redundancy_train": 0.40, "redundancy_test": 0.30, "dead_units_train": 0.0,
            **_acc(0.6)},
           {"width": 256, "redundancy_train": top, "redundancy_test": top, "dead_units_train": dead,
            **_acc(0.9)}]
    return _sweep(tmp_path, name, _rows(pts), "model-size")


def _training_time(tmp_path, rise=True):
    pts = []
    for w, curve in ((16, [0.95, 0.97, 0.96]), (64, [0.10, 0.40 if rise else 0.05, 0.02]),
                     (256, [0.0, 0.0, 0.0])):
        for e, r in zip((0, 1, 30), curve, strict=True):
            pts.append({"width": w, "epoch": e, "redundancy_train": r, "redundancy_test": r,
                        **_acc(0.5 + 0.01 * e)})
    rows = _rows(pts)
    for r in rows:
        r["cell"] = f"w{r['width']}-{r['seed']}"
    return _sweep(tmp_path, "tt", rows, "training-time")


def _sample_size(tmp_path):
    pts = [{"width": w, "n_train": n, "sample_size": n, "redundancy_train": r,
            "redundancy_test": r / 2, **_acc(a)}
           for w in (16, 64)
           for n, r, a in ((10, 0.0, 0.3), (100, 0.05, 0.5), (1000, 0.2, 0.8))]
    return _sweep(tmp_path, "ss", _rows(pts), "sample-size")


def _by_claim(df):
    return df.set_index("claim")


def test_all_claims_hold_on_a_picture_like_the_paper(tmp_path):
    ms = _model_size(tmp_path)
    tt = _training_time(tmp_path)
    ss = _sample_size(tmp_path)
    wd = _sweep(tmp_path, "wd", _rows([{"width": 16, "weight_decay": w, "redundancy_train": 0.3,
                                         "redundancy_test": 0.2, **_acc(0.7 + w)}
                                        for w in (0.0, 1e-4, 1e-2)]), "regularization")
    ln = _sweep(tmp_path, "ln", _rows([{"width": 16, "label_noise": f, "redundancy_train": 0.3 + f / 20,
                                         "redundancy_test": 0.2, **_acc(0.7 - f / 10)}
                                        for f in (0.0, 0.5, 1.0)]), "label-noise")
    rd = _sweep(tmp_path, "rd", [
        *_rows([{"width": 256, "redundancy_train": 0.0, "redundancy_test": 0.0, **_acc(0.9)}]),
        *[{**r, "dataset": "random:digits"} for r in _rows(
            [{"width": 256, "redundancy_train": 0.0, "redundancy_test": 0.0, **_acc(0.11)}])],
    ], "random-data")
    df = evaluate_claims([ms, tt, ss, wd, ln, rd])
    assert list(df["claim"]) == [c.id for c in CLAIMS] and set(df["dataset"]) == {"digits"}
    v = _by_claim(df)
    assert (v["verdict"] == "holds").all(), v[["verdict", "reason"]].to_string()
    assert (v["warning"] == "").all() and (v["n_seeds"] == 2).all()
    # the numbers behind the verdicts are printed: mean ± std over the two seeds
    assert "width 2: red.train 0.991±0.001" in v.loc["redundancy-width", "measured"]
    m = v.loc["redundancy-epoch", "measured"]
    assert "w16: 0.951→0.971→0.961 (peak 0.971) saturated" in m
    assert "w256: 0.001→0.001→0.001 (peak 0.001) at the floor" in m
    assert "on all 1 widths" in v.loc["redundancy-epoch", "reason"]
    assert "K-NN +0.700" in v.loc["accuracy-width", "measured"]
    # weight decay moves knn by 0.01; the smallest main range of knn is 0.3 (training time)
    assert "K-NN 0.010" in v.loc["weight-decay-minor", "measured"]
    assert "K-NN 0.300 (training-time)" in v.loc["weight-decay-minor", "measured"]


def test_failures_give_the_measured_reason(tmp_path):
    ms = _model_size(tmp_path, top=0.41, dead=0.38)
    tt = _training_time(tmp_path, rise=False)
    big = _sweep(tmp_path, "wd", _rows([{"width": 16, "weight_decay": w,
                                         "redundancy_train": 0.0 if w == 0 else 0.9,
                                         "redundancy_test": 0.0, **_acc(0.5)}
                                        for w in (0.0, 1e-2)]), "regularization")
    v = _by_claim(evaluate_claims([ms, tt, big]))
    r = v.loc["redundancy-width"]
    assert r["verdict"] == "does not hold"
    assert "plateaus at 0.41" in r["reason"] and "38% of its units dead" in r["reason"]
    r = v.loc["redundancy-epoch"]
    assert r["verdict"] == "does not hold" and "w64 does not rise at epoch 1" in r["reason"]
    r = v.loc["weight-decay-minor"]
    assert r["verdict"] == "does not hold" and "red.train moves 0.900" in r["reason"]
    # the accuracy-with-width curve rises; training time gains only 0.3 -> holds too
    assert v.loc["accuracy-width", "verdict"] == "holds"


def test_missing_factors_name_their_preset_and_one_seed_warns(tmp_path):
    pts = [{"width": 2, "redundancy_train": 0.95, "redundancy_test": 0.95, **_acc(0.2)},
           {"width": 64, "redundancy_train": 0.0, "redundancy_test": 0.0, **_acc(0.8)}]
    ms = _sweep(tmp_path, "one", _rows(pts, seeds=(0,)), "model-size")
    v = _by_claim(evaluate_claims([ms]))
    assert v.loc["redundancy-width", "verdict"] == "holds"
    assert "one seed" in v.loc["redundancy-width", "warning"]
    assert "±" not in v.loc["redundancy-width", "measured"]
    for claim, preset in (("redundancy-epoch", "training-time"), ("accuracy-sample", "sample-size"),
                          ("label-noise-minor", "label-noise"), ("random-inputs", "random-data")):
        assert v.loc[claim, "verdict"] == "not measured here"
        assert f"--preset {preset} --dataset digits" in v.loc[claim, "reason"]
    # a minor factor alone cannot be compared with anything
    wd = _sweep(tmp_path, "wd", _rows([{"width": 16, "weight_decay": w, "redundancy_train": 0.3,
                                        "redundancy_test": 0.2, **_acc(0.7)} for w in (0, 1e-3)]),
                "regularization")
    v = _by_claim(evaluate_claims([wd]))
    assert v.loc["weight-decay-minor", "verdict"] == "not measured here"
    assert "model-size" in v.loc["weight-decay-minor", "reason"]


def test_two_sweeps_of_one_factor_are_evaluated_apart(tmp_path):
    good = _model_size(tmp_path / "a")
    bad = _model_size(tmp_path / "b", top=0.4, dead=0.5)
    df = evaluate_claims([good, bad])
    rows = df[df["claim"] == "redundancy-width"].set_index("dataset")
    assert rows.loc["digits", "verdict"] == "holds"
    assert rows.loc["digits (b/ms)", "verdict"] == "does not hold"
    assert "50% of its units dead" in rows.loc["digits (b/ms)", "reason"]
    later = df[df["dataset"] == "digits (b/ms)"].set_index("claim")
    assert "--preset training-time --dataset digits`" in later.loc["redundancy-epoch", "reason"]


def test_a_sweep_with_one_finished_value_is_not_evidence(tmp_path):
    wd = _sweep(tmp_path, "wd", _rows([{"width": 16, "weight_decay": 0.0, "redundancy_train": 0.3,
                                        "redundancy_test": 0.2, **_acc(0.7)}]), "regularization")
    v = _by_claim(evaluate_claims([_model_size(tmp_path), wd]))
    assert v.loc["weight-decay-minor", "verdict"] == "not measured here"
    assert "only 1 value of weight_decay" in v.loc["weight-decay-minor", "reason"]


def test_random_inputs_above_chance_do_not_hold(tmp_path):
    rows = [{**r, "dataset": "random:digits", "n_test": 1000} for r in _rows(
        [{"width": 64, "redundancy_train": 0.0, "redundancy_test": 0.02, **_acc(0.3)}])]
    v = _by_claim(evaluate_claims([_sweep(tmp_path, "rd", rows, "random-data")]))
    r = v.loc["random-inputs"]
    assert r["verdict"] == "does not hold" and r["dataset"] == "digits"
    assert "redundancy_test 0.021 > 0.01" in r["reason"]  # seeds 0 and 1: 0.020, 0.022
    assert "knn_test 0.301 > chance 0.100 + 0.05" in r["reason"]
    assert "kmeans_test" in r["reason"]  # 0.301 is above the matched chance of 1000 examples


def test_matched_chance_of_kmeans():
    from acthash.presentation.claims import matched_chance

    # 2 examples, 2 classes: random clusters are {0,0},{1,1} (acc 1/2) or {0,1},{1,0} (acc 1)
    assert matched_chance(2, 2, draws=4000) == pytest.approx(0.75, abs=0.02)
    # large sets approach 1/classes from above
    assert 0.10 < matched_chance(5000, 10) < 0.13
    assert matched_chance(360, 10) > matched_chance(5000, 10)


def test_criteria_are_configurable_and_checked(tmp_path):
    ms = _model_size(tmp_path, top=0.005)
    assert _by_claim(evaluate_claims([ms]))["verdict"]["redundancy-width"] == "holds"
    strict = evaluate_claims([ms], {"zero": 0.001})
    assert _by_claim(strict).loc["redundancy-width", "verdict"] == "does not hold"
    assert "≤ 0.001" in _by_claim(strict).loc["redundancy-width", "criterion"]
    c = ClaimCriteria(accuracies="knn_test, logreg_test")
    assert c.accuracies == ("knn_test", "logreg_test")
    assert "knn_test, logreg_test" in c.describe()
    with pytest.raises(InputError, match="fraction"):
        ClaimCriteria(zero=2.0)
    with pytest.raises(InputError, match="unknown claim criteria"):
        ClaimCriteria.from_dict({"nope": 1})


def test_roles_and_bad_input(tmp_path):
    df = pd.DataFrame({"width": [4, 4], "label_noise": [0.0, 0.5], "epoch": [1, 1]})
    assert sweep_roles(df) == ["label-noise"]
    assert sweep_roles(df, {"name": "model-size"}) == ["model-size"]
    assert sweep_roles(pd.DataFrame({"dataset": ["a", "random:a"]})) == ["random-data"]
    with pytest.raises(InputError, match="at least one sweep"):
        evaluate_claims([])
    with pytest.raises(MissingFileError, match="acthash sweep"):
        evaluate_claims([tmp_path / "nothing"])
    flat = _sweep(tmp_path, "flat", _rows([{"width": 4, "redundancy_train": 0.1,
                                            "redundancy_test": 0.1, **_acc(0.5)}]), "custom")
    with pytest.raises(InputError, match="no factor varies"):
        evaluate_claims([flat])


def test_cli_and_report_show_the_claims_on_a_real_sweep(tmp_path):
    """A real (tiny) model-size sweep end to end: `acthash claims` and the report section."""
    from typer.testing import CliRunner

    from acthash.cli import app
    from acthash.presentation.report import build_report
    from acthash.runs.sweep import run_sweep

    cfg = {"name": "model-size", "factor": "width",
           "base": {"dataset": "digits", "epochs": 2, "checkpoints": [2], "kmeans_n_init": 1,
                    "logreg_strategy": "ovr", "save_codes": False, "batchnorm": True},
           "grid": {"width": [2, 64]}, "seeds": [0]}
    d = tmp_path / "ms"
    run_sweep(cfg, d, progress=False)
    runner = CliRunner()
    r = runner.invoke(app, ["claims", str(d), "--zero", "0.02", "--out", str(tmp_path / "c.csv")])
    assert r.exit_code == 0, r.output
    assert "redundancy-width" in r.output and "one seed" in r.output
    assert "≤ 0.02 at the largest" in r.output  # the criteria are printed with the table
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["verdict"]) <= {"holds", "does not hold", "not measured here"}
    res = pd.read_parquet(d / "results.parquet")
    w2 = res[res["width"] == 2]["redundancy_train"].iloc[0]
    expect = "holds" if w2 >= 0.9 and res[res["width"] == 64][
        ["redundancy_train", "redundancy_test"]].max().max() <= 0.02 else "does not hold"
    assert table.set_index("claim").loc["redundancy-width", "verdict"] == expect
    r = runner.invoke(app, ["claims", str(tmp_path / "missing")])
    assert r.exit_code == EXIT_USER_ERROR and "acthash sweep" in r.output
    page = build_report(d).read_text()
    assert "Paper claims" in page and "redundancy-width" in page
    assert json.loads((d / "sweep.json").read_text())["name"] == "model-size"


def _width_sweep_at_checkpoints(tmp_path, meta):
    """A user sweep over widths, every cell measured at epochs 0 and 40: at epoch 40 the
    picture is the paper's, at epoch 0 it is not (redundancy does not fall)."""
    pts = []
    for w, red40, acc40 in ((2, 0.99, 0.2), (32, 0.40, 0.6), (256, 0.0, 0.9)):
        pts.append({"width": w, "epoch": 0, "redundancy_train": 0.5, "redundancy_test": 0.5,
                    "dead_units_train": 0.0, **_acc(0.3)})
        pts.append({"width": w, "epoch": 40, "redundancy_train": red40,
                    "redundancy_test": red40, "dead_units_train": 0.0, **_acc(acc40)})
    rows = _rows(pts)
    for r in rows:
        r["cell"] = f"w{r['width']}-{r['seed']}"
    d = tmp_path / "widths"
    write_table(d / "results.parquet", pd.DataFrame(rows))
    write_json(d / "sweep.json", meta)
    return d


def test_a_width_sweep_with_checkpoints_is_a_model_size_sweep(tmp_path):
    d = _width_sweep_at_checkpoints(tmp_path, {"name": "my-widths", "factor": "width",
                                               "hue": None})
    from acthash.runs.results import load_results

    assert sweep_roles(load_results(d), {"name": "my-widths", "factor": "width"}) == [
        "model-size"]
    t = _by_claim(evaluate_claims([d]))
    assert t.loc["redundancy-width", "verdict"] == "holds"
    assert t.loc["accuracy-width", "verdict"] == "holds"
    # the numbers are the last checkpoint's, and the text says so
    assert "red.train 0.991" in t.loc["redundancy-width", "measured"]  # not epoch 0: 0.501
    assert "epoch 40, the last checkpoint" in t.loc["redundancy-width", "measured"]
    assert "+0.700" in t.loc["accuracy-width", "measured"]
    assert t.loc["redundancy-epoch", "verdict"] == "not measured here"
    # without a declared factor the epochs are taken as the factor, as before
    guessed = _width_sweep_at_checkpoints(tmp_path / "g", {"name": "my-widths"})
    t = _by_claim(evaluate_claims([guessed]))
    assert t.loc["redundancy-width", "verdict"] == "not measured here"


def test_checkpoint_note_and_the_width_figure_title(tmp_path, monkeypatch):
    from acthash.presentation.claims import checkpoint_note
    from acthash.presentation.plots import plot_results
    from acthash.runs.results import load_results

    d = _width_sweep_at_checkpoints(tmp_path, {"name": "my-widths", "factor": "width",
                                               "hue": None})
    df = load_results(d)
    assert checkpoint_note(df) == "epoch 40, the last checkpoint"
    assert checkpoint_note(df[df["epoch"] == 40]) == ""
    uneven = df[~((df["width"] == 256) & (df["epoch"] == 40))]
    assert checkpoint_note(uneven) == "each cell's last checkpoint"
    import matplotlib.pyplot as plt

    from acthash.presentation import plots

    titles = []
    real = plots.plot_factor

    def spy(*args, **kw):
        titles.append(kw.get("title"))
        fig = real(*args, **kw)
        titles.append(fig.axes[0].get_ylabel())
        return fig

    monkeypatch.setattr(plots, "plot_factor", spy)
    plot_results(d)
    plt.close("all")
    assert titles[0] == ("my-widths: encoding properties vs hidden units per layer "
                         "(epoch 40, the last checkpoint)")
    assert titles[1] == "mean ± std over 2 seeds"
    one_seed = df[df["seed"] == 0]
    titles.clear()
    plot_results(one_seed, tmp_path / "figs", factor="width")
    plt.close("all")
    assert titles[1] == "value (1 seed)"
