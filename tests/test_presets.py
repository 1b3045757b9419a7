"""Presets follow the original study's recipe per data set; the pieces the recipes need
(multistep schedule, tiled samples, dead-unit fractions) behave as specified."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from acthash.core.codes import LayerSpan, NeuralCodes
from acthash.errors import InputError
from acthash.properties import dead_unit_fractions
from acthash.runs.experiment import RunConfig, run_experiment
from acthash.runs.presets import NEAREST, PRESETS, RECIPES, preset, recipe_for
from acthash.runs.sweep import SweepConfig, run_sweep
from acthash.train import TrainConfig, _lr_at

# ------------------------------------------------------------------ recipes


def test_each_dataset_gets_its_original_recipe_at_both_scales():
    for scale in ("cpu", "paper"):
        svhn = preset("model-size", scale=scale, dataset="svhn").base
        # SVHN/utils.py: no BatchNorm, SGD momentum 0.9, wd 5e-4, lr 0.01, x0.2 steps, batch 128
        assert svhn["batchnorm"] is False and svhn["optimizer"] == "sgd"
        assert svhn["momentum"] == 0.9 and svhn["weight_decay"] == 5e-4 and svhn["lr"] == 0.01
        assert svhn["schedule"] == "multistep" and svhn["lr_gamma"] == 0.2
        assert svhn["batch_size"] == 128 and svhn["val_split"] == 0.0
        for ds in ("mnist", "digits", "fashion-mnist"):
            b = preset("model-size", scale=scale, dataset=ds).base
            assert b["batchnorm"] is True and b["depth"] == 1 and b["optimizer"] == "adam"
            assert b["lr"] == 1e-2 and b["schedule"] == "step" and b["step_size"] == 20
            assert b["batch_size"] == 64 and b["val_split"] == 0.2
        cifar = preset("model-size", scale=scale, dataset="cifar10").base
        assert cifar["depth"] == 5 and cifar["batchnorm"] is True
    # the original's milestones on 100 epochs, scaled to the CPU scale's 30
    assert preset("model-size", scale="paper", dataset="svhn").base["milestones"] == [41, 61, 91]
    assert preset("model-size", dataset="svhn").base["milestones"] == [12, 18, 27]
    assert preset("model-size", scale="paper", dataset="svhn").seeds == list(range(5))
    assert preset("model-size", scale="paper", dataset="cifar10").grid["width"] == list(
        range(10, 201, 10))  # num_neuron 50..1000 over 5 layers


def test_datasets_outside_the_study_say_which_recipe_they_use():
    for ds, name in NEAREST.items():
        recipe, why = recipe_for(ds)
        assert recipe is RECIPES[name] and "nearest recipe" in why
    assert recipe_for("random:svhn")[0] is RECIPES["svhn"]
    cfg = preset("training-time", dataset="fashion-mnist")
    assert "nearest recipe mnist" in cfg.description
    assert cfg.provenance["recipe"] == "mnist" and cfg.provenance["scale"] == "cpu"


def test_cpu_deviations_are_named_and_recorded_in_sweep_json(tmp_path):
    cfg = preset("model-size", dataset="fashion-mnist", seeds=1)
    dev = cfg.provenance["deviations"]
    assert any("30 epochs instead of 200" in d for d in dev)
    assert any("2 seeds instead of 10" in d for d in dev)
    assert any("2000 of the 48000" in d for d in dev)
    assert any("first 2000 test examples" in d for d in dev)
    assert any("1 seed(s) requested" in d for d in dev)
    assert cfg.base["sample_size"] == 2000 and cfg.base["dataset_options"] == {"n_test": 2000}
    assert "sample_size" not in preset("model-size").base  # digits is small: no cap
    assert "30 epochs instead of 200" in cfg.description
    # digits is small: no cap, and the sample-size grid ends at the 1150 rows left after
    # the 20 % validation split, each sample tiled to fill them
    ss = preset("sample-size")
    assert ss.grid["sample_size"][-1] == 1437 - round(0.2 * 1437) and ss.base["tile_to"] == 1150
    assert "sample_size" not in ss.base
    # the provenance reaches sweep.json (one 1-epoch cell to keep it fast)
    tiny = SweepConfig(name="p", base={**cfg.base, "dataset": "digits", "epochs": 1,
                                       "checkpoints": [1], "sample_size": None,
                                       "dataset_options": {}, "kmeans_n_init": 1},
                       grid={"width": [4]}, seeds=[0], provenance=cfg.provenance)
    run_sweep(tiny, tmp_path / "s", progress=False)
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert meta["provenance"]["deviations"] == dev
    assert SweepConfig.from_dict({k: v for k, v in meta.items() if k != "n_cells"}).provenance


def test_paper_scale_keeps_the_original_grids():
    ss = preset("sample-size", scale="paper")
    assert ss.grid["sample_size"][0] == 10 and ss.grid["sample_size"][-1] == 40000
    assert ss.base["tile_to"] == 48000 and ss.base["epochs"] == 200
    assert preset("training-time", scale="paper", dataset="svhn").base["checkpoints"] == [
        0, 1, 2, 3, 6, 10, 15, 30, 40, 60, 70, 90, 100]
    for name in PRESETS:
        assert preset(name, scale="paper").provenance["scale"] == "paper"
    with pytest.raises(InputError, match="at least 1"):
        preset("model-size", seeds=0)


# ------------------------------------------------------------------ schedule, tiling, dead units


def test_multistep_schedule_matches_the_svhn_learning_rate_function():
    cfg = TrainConfig(epochs=100, lr=0.01, schedule="multistep", milestones=[41, 61, 91],
                      lr_gamma=0.2)

    def original(epoch0):  # SVHN/utils.learning_rate on the 0-based epoch
        f = 3 if epoch0 > 90 else 2 if epoch0 > 60 else 1 if epoch0 > 40 else 0
        return 0.01 * 0.2 ** f

    for epoch in range(1, 101):
        assert _lr_at(cfg, epoch) == pytest.approx(original(epoch - 1))
    with pytest.raises(InputError, match="milestones"):
        TrainConfig(schedule="multistep")
    with pytest.raises(InputError, match="gamma"):
        TrainConfig(lr_gamma=0.0)


def test_tiling_repeats_the_sample_but_codes_stay_on_its_rows(tmp_path):
    base = dict(width=8, epochs=1, checkpoints=[1], sample_size=10, kmeans_n_init=1,
                logreg_strategy="ovr", save_codes=False)
    plain = run_experiment(RunConfig(**base), out_dir=tmp_path / "a")
    tiled = run_experiment(RunConfig(**base, tile_to=100), out_dir=tmp_path / "b")
    assert tiled.metrics["n_train"].iloc[0] == 10 == plain.metrics["n_train"].iloc[0]
    info = json.loads((tmp_path / "b" / "dataset.json").read_text())
    assert info["tile_to"] == {"target": 100, "repeats": 10, "rows_per_epoch": 100}
    # ten times the steps: batch 64 over 100 rows is 2 steps per epoch instead of 1
    assert not torch.equal(plain.model.features[1].weight, tiled.model.features[1].weight)
    with pytest.raises(InputError, match="tile_to"):
        run_experiment(RunConfig(**base, tile_to=0), write=False)


def test_dead_unit_fractions_by_hand():
    bits = np.array([[1, 0, 0, 1, 0],
                     [1, 0, 0, 0, 0],
                     [0, 0, 0, 1, 0]], dtype=np.uint8)
    spans = [LayerSpan("a", "relu", (3,), 1, 0, 3), LayerSpan("b", "relu", (2,), 1, 3, 5)]
    d = dead_unit_fractions(NeuralCodes.from_bits(bits, layers=spans))
    assert d == {"dead_units": 3 / 5, "dead_units_l1": 2 / 3, "dead_units_l2": 1 / 2}
    # a two-kink layer stores kink-major: unit u owns bits u and U + u
    two = np.array([[0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.uint8)  # unit 1 fires (kink 2 bit)
    assert dead_unit_fractions(NeuralCodes.from_bits(two, layers=[
        LayerSpan("r6", "relu6", (2,), 2, 0, 4)]), prefix="d") == {"d": 0.5, "d_l1": 0.5}
    with pytest.raises(InputError):
        dead_unit_fractions(np.zeros((0, 4), dtype=np.uint8))


def test_every_run_records_dead_units_per_layer():
    res = run_experiment(RunConfig(width=6, depth=2, epochs=1, checkpoints=[0, 1],
                                   kmeans_n_init=1, logreg_strategy="ovr"), write=False)
    m = res.metrics
    for col in ("dead_units_train", "dead_units_train_l1", "dead_units_train_l2"):
        assert col in m.columns and m[col].between(0, 1).all()
    # an independent count on the first layer at the last checkpoint
    from acthash.core.capture import capture
    from acthash.runs.experiment import prepare_data

    _, _, (x, _, _, _), _ = prepare_data(RunConfig())
    pre = res.model.features[1](res.model.features[0](x))
    expected = float(((pre > 0).sum(0) == 0).float().mean())
    assert m["dead_units_train_l1"].iloc[-1] == pytest.approx(expected)
    assert capture(res.model, x[:2]).codes.n_bits == 12


def test_figures_get_a_dead_units_panel_only_when_the_results_hold_it():
    import pandas as pd

    from acthash.presentation.plots import plot_factor

    rows = pd.DataFrame({"width": [4, 8, 4, 8], "seed": [0, 0, 1, 1],
                         "redundancy_train": [0.9, 0.1, 0.8, 0.2],
                         "redundancy_test": [0.9, 0.1, 0.8, 0.2]})
    assert len(plot_factor(rows, "width").axes) == 1
    fig = plot_factor(rows.assign(dead_units_train=[0.5, 0.0, 0.25, 0.0]), "width")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["redundancy ratio", "dead units (never active, train)"]
    line = fig.axes[1].get_lines()[0]
    assert list(line.get_ydata()) == [0.375, 0.0]  # mean over the two seeds
