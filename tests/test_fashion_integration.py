"""End to end on the real Fashion-MNIST (Debian package dataset-fashion-mnist; CI installs it)."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from acthash.cli import app
from acthash.core.codes import NeuralCodes

FASHION = Path("/usr/share/datasets/fashion-mnist")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                       reason="needs `apt-get install dataset-fashion-mnist`"),
]


def test_fashion_mnist_run_codes_and_properties(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--dataset", "fashion-mnist", "--model", "mlp", "--width", "64", "--depth", "1",
        "--epochs", "2", "--checkpoints", "0,1,2", "--sample-size", "2000",
        "--label-noise", "0.2", "--weight-decay", "1e-4", "--seed", "0", "-O", "n_test=500",
        "--out", str(out), "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "redundancy ratio" in result.output and "epoch 2" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == [0, 1, 2]
    last = metrics[-1]
    for key in ("redundancy", "kmeans", "knn", "logreg", "net_acc"):
        for split in ("train", "test"):
            assert 0.0 <= last[f"{key}_{split}"] <= 1.0
    # ten balanced clothing classes: chance is 0.1; two epochs on 2000 images reach far more
    assert last["net_acc_test"] > 0.6 and last["knn_test"] > 0.6 and last["logreg_test"] > 0.6
    codes = NeuralCodes.load(out / "codes" / "epoch_0002_test.ahc")
    assert len(codes) == 500 and codes.n_bits == 64
    np.testing.assert_array_equal(codes.labels[:5], np.array([9, 2, 1, 1, 6]))  # t10k labels
    redundancy = (len(codes) - len(np.unique(codes.unpack(), axis=0))) / len(codes)
    assert last["redundancy_test"] == pytest.approx(redundancy)
    info = json.loads((out / "dataset.json").read_text())
    assert info["label_noise"]["n_noisy"] == 400 and info["dataset"]["n_test"] == 500
    assert len(np.load(out / "noisy_indices.npy")) == 400
