"""Study manipulations: label noise, sample size, validation split, and how a run records them."""

import json

import numpy as np
import pytest
import torch

from acthash import data
from acthash.data.manipulate import noisy_labels, random_labels, subsample, train_val_split
from acthash.runs.experiment import (
    RunConfig,
    derived_seed,
    prepare_data,
    run_experiment,
    training_rows,
)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_label_noise_changes_exactly_the_fraction(fraction):
    y = torch.as_tensor(np.random.default_rng(0).integers(0, 7, size=1000))
    y_before = y.clone()
    new, idx = noisy_labels(y, fraction, 7, seed=3)
    assert torch.equal(y, y_before)  # caller's labels untouched
    changed = np.flatnonzero(new.numpy() != y.numpy())
    assert len(changed) == round(fraction * 1000)
    np.testing.assert_array_equal(changed, idx)  # every noisy index really changed
    assert new.dtype == torch.long and int(new.min()) >= 0 and int(new.max()) < 7


def test_label_noise_is_uniform_over_other_classes_and_seeded():
    y = torch.zeros(20000, dtype=torch.long)
    new, idx = noisy_labels(y, 0.5, 5, seed=0)
    counts = np.bincount(new[idx].numpy(), minlength=5)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / len(idx), 0.25, atol=0.02)
    again, idx2 = noisy_labels(y, 0.5, 5, seed=0)
    assert torch.equal(new, again) and np.array_equal(idx, idx2)
    other, _ = noisy_labels(y, 0.5, 5, seed=1)
    assert not torch.equal(new, other)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        noisy_labels(y, 1.5, 5)


def test_balanced_sampling_counts():
    y = torch.as_tensor(np.repeat(np.arange(4), [50, 30, 20, 100]))
    idx = subsample(y, 42, balanced=True, seed=0)
    counts = np.bincount(y[idx].numpy(), minlength=4)
    np.testing.assert_array_equal(counts, [11, 11, 10, 10])  # 42 = 4*10 + 2 extra
    assert len(np.unique(idx)) == 42 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(subsample(y, 42, balanced=True, seed=0), idx)
    np.testing.assert_array_equal(subsample(y, 5), np.arange(5))  # first N
    with pytest.raises(ValueError, match="class 2 has only 20"):
        subsample(y, 100, balanced=True)
    with pytest.raises(ValueError, match="between 1 and"):
        subsample(y, 0)


def test_train_val_split_partitions():
    tr, va = train_val_split(101, 0.2, seed=0)
    assert len(va) == 20 and len(tr) == 81
    assert set(tr) | set(va) == set(range(101)) and not set(tr) & set(va)


def test_random_labels_seeded():
    y = torch.zeros(500, dtype=torch.long)
    a = random_labels(y, 10, seed=2)
    assert torch.equal(a, random_labels(y, 10, seed=2)) and len(set(a.tolist())) == 10


def test_prepare_data_never_touches_dataset_or_test_labels():
    ds = data.load("digits")
    cfg = RunConfig(sample_size=300, balanced=True, label_noise=0.3, val_split=0.2, seed=4)
    ds2, info, (x_tr, y_tr, x_val, y_val), noisy = prepare_data(cfg)
    assert torch.equal(ds2.y_train, ds.y_train) and torch.equal(ds2.y_test, ds.y_test)
    assert torch.equal(ds2.x_train, ds.x_train)
    rows = training_rows(cfg)
    assert len(rows) == 300 == len(x_tr)
    assert torch.equal(x_tr, ds.x_train[rows])
    clean = ds.y_train[rows]
    changed = np.flatnonzero((clean != y_tr).numpy())
    np.testing.assert_array_equal(changed, noisy)
    assert len(noisy) == 90
    np.testing.assert_array_equal(np.bincount(clean.numpy()), [30] * 10)  # balanced
    # validation rows are disjoint from training rows
    assert len(x_val) == round(0.2 * len(ds.x_train))
    assert info["label_noise"]["seed"] == derived_seed(4, "label_noise")
    assert info["sample_size"]["seed"] == derived_seed(4, "sample")
    # independent seeds per manipulation
    assert len({derived_seed(4, w) for w in ("val_split", "sample", "label_noise")}) == 3


def test_run_directory_records_manipulations(tmp_path):
    cfg = RunConfig(epochs=1, width=16, sample_size=200, label_noise=0.25, seed=1,
                    checkpoints=[0, 1], kmeans_n_init=1)
    res = run_experiment(cfg, out_dir=tmp_path / "run")
    d = res.run_dir
    info = json.loads((d / "dataset.json").read_text())
    assert info["label_noise"]["n_noisy"] == 50 and info["sample_size"]["n"] == 200
    noisy = np.load(d / "noisy_indices.npy")
    rows = np.load(d / "train_indices.npy")
    labels = np.load(d / "train_labels.npy")
    clean = data.load("digits").y_train.numpy()[rows]
    np.testing.assert_array_equal(rows, np.arange(200))  # first N
    np.testing.assert_array_equal(np.flatnonzero(labels != clean), noisy)
    cfg_back = RunConfig.from_dict(json.loads((d / "config.json").read_text()))
    assert cfg_back == cfg
    env = json.loads((d / "environment.json").read_text())
    assert env["seed"] == 1
    assert list(res.metrics["epoch"]) == [0, 1]
