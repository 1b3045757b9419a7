"""acthash measure (a given model, no training) and acthash properties (saved codes re-scored)
on digits: parity with the run that trained the model, user models as module:callable,
TorchScript and torch.export files, checkpoint mismatches, and a re-score against
scikit-learn's k-NN."""

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier
from torch import nn
from typer.testing import CliRunner

import acthash
from acthash import NeuralCodes
from acthash.cli import app
from acthash.errors import EXIT_USER_ERROR, ConfigError, InputError
from acthash.models import MLP
from acthash.runs.experiment import RunConfig, run_experiment

runner = CliRunner()
FAST = dict(kmeans_n_init=1, kmeans_n_seeds=1, logreg_strategy="ovr", device="cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of acthash run: a 16-unit MLP, 2 epochs, codes and checkpoints at 1 and 2."""
    out = tmp_path_factory.mktemp("run") / "run"
    res = run_experiment(RunConfig(width=16, epochs=2, checkpoints=[1, 2], kmeans_n_init=2,
                                   device="cpu"), out_dir=out)
    return out, res.metrics


@pytest.fixture(scope="module")
def digits():
    return acthash.data.load("digits")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _redundancy(bits):
    """(N - distinct rows) / N, by numpy."""
    return (len(bits) - len(np.unique(bits, axis=0))) / len(bits)


def test_measure_a_run_checkpoint_reproduces_the_run_at_that_epoch(trained, tmp_path,
                                                                    monkeypatch):
    run_dir, run_metrics = trained
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["measure", "--checkpoint",
                              str(run_dir / "checkpoints" / "epoch_0001.pt"),
                              "--kmeans-n-init", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "epoch_0001.pt" in res.output and "epoch 1" not in res.output
    (out,) = (tmp_path / "runs").iterdir()  # named after the model and the checkpoint
    assert out.name.startswith("digits-mlp-w16-d1-epoch_0001-s0-")
    for name in ("train", "test"):  # the codes, bit for bit
        assert (out / "codes" / f"{name}.ahc").read_bytes() == (
            run_dir / "codes" / f"epoch_0001_{name}.ahc").read_bytes()
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert len(metrics) == 1 and "epoch" not in metrics.columns
    assert not any(c == "seconds_train" for c in metrics.columns)  # no training happened
    assert metrics.loc[0, "checkpoint"] == "epoch_0001.pt"
    assert metrics.loc[0, "checkpoint_epoch"] == 1
    ours = metrics.iloc[0]
    theirs = run_metrics[run_metrics["epoch"] == 1].iloc[0]
    shared = [c for c in ours.index if c in theirs.index and not c.startswith("seconds_")]
    assert {"redundancy_test", "kmeans_train", "knn_train", "knn_test", "logreg_test",
            "net_loss_test", "net_acc_train", "width", "depth"} <= set(shared)
    for col in shared:  # the same numbers, exactly
        assert ours[col] == theirs[col] or (pd.isna(ours[col]) and pd.isna(theirs[col])), col
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv")[["knn_test"]],
                                  metrics[["knn_test"]])
    source = json.loads((out / "source.json").read_text())
    assert source["kind"] == "checkpoint" and source["checkpoint_epoch"] == 1
    assert source["checkpoint_sha256"] == _sha(run_dir / "checkpoints" / "epoch_0001.pt")
    assert json.loads((out / "environment.json").read_text())["seed"] == 0
    assert json.loads((out / "config.json").read_text())["checkpoint"].endswith("epoch_0001.pt")


def test_a_bare_state_dict_loads_into_the_named_registry_model(trained, tmp_path, digits):
    run_dir, _ = trained
    blob = torch.load(run_dir / "model.pt", weights_only=False)
    torch.save(blob["state_dict"], tmp_path / "weights.pt")
    res = acthash.measure("mlp", "digits", checkpoint=tmp_path / "weights.pt", width=16,
                          write=False, **FAST)
    assert "checkpoint_epoch" not in res.metrics.columns  # a state_dict records no epoch
    codes = NeuralCodes.load(run_dir / "codes" / "epoch_0002_test.ahc")
    assert acthash.neural_codes(res.model, digits.x_test).equals(codes)
    assert res.metrics.loc[0, "redundancy_test"] == _redundancy(codes.unpack())
    with pytest.raises(ConfigError, match="does not describe"):  # no model, nothing to build
        acthash.measure(None, "digits", checkpoint=tmp_path / "weights.pt", write=False)


def test_module_callable_is_imported_from_the_working_directory(tmp_path, monkeypatch,
                                                                digits):
    (tmp_path / "usernet_measure.py").write_text(textwrap.dedent("""
        from torch import nn

        def build(input_shape, n_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(),
                                 nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, n_classes))
    """))
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["measure", "--model", "usernet_measure:build", "--seed", "3",
                              "--kmeans-n-init", "1", "--kmeans-n-seeds", "1",
                              "--logreg-strategy", "ovr", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "runs").iterdir()
    assert out.name.startswith("digits-usernet_measure.build-s3-")  # no -w100-d1-
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert metrics.loc[0, "model"] == "usernet_measure.build"
    assert "width" not in metrics.columns and metrics["checkpoint"].isna().all()
    # the same architecture built here under the same seed gives the same codes
    torch.manual_seed(3)
    twin = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 12),
                         nn.ReLU(), nn.Linear(12, 10))
    codes = NeuralCodes.load(out / "codes" / "train.ahc")
    assert codes.n_bits == 24 and codes.equals(acthash.neural_codes(twin, digits.x_train))
    assert metrics.loc[0, "redundancy_train"] == _redundancy(codes.unpack())
    # an option the builder does not take is an error naming it
    res = runner.invoke(app, ["measure", "--model", "usernet_measure:build", "--width", "8"])
    assert res.exit_code == EXIT_USER_ERROR and "--width" in res.output
    res = runner.invoke(app, ["measure", "--model", "no_such_module_here:build"])
    assert res.exit_code == EXIT_USER_ERROR and "working directory" in res.output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated
@pytest.mark.parametrize("kind", ["script", "trace", "export"])
def test_model_files_measure_like_the_module_they_hold(kind, tmp_path, digits):
    torch.manual_seed(1)
    model = MLP(64, 16, 10, depth=2).eval()
    x = digits.x_train[:4]
    if kind == "export":
        path = tmp_path / "net.pt2"
        program = torch.export.export(model, (x,),
                                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        torch.export.save(program, path)
    else:
        path = tmp_path / "net.pt"
        compiled = torch.jit.script(model) if kind == "script" else torch.jit.trace(model, x)
        torch.jit.save(compiled, path)
    res = acthash.measure(str(path), "digits", out_dir=tmp_path / "out", **FAST)
    want_tr = acthash.neural_codes(model, digits.x_train, labels=digits.y_train)
    want_te = acthash.neural_codes(model, digits.x_test, labels=digits.y_test)
    assert NeuralCodes.load(tmp_path / "out" / "codes" / "test.ahc").equals(want_te)
    row = res.metrics.iloc[0]
    assert row["n_bits"] == 32 and row["model"] == path.name
    assert row["redundancy_test"] == _redundancy(want_te.unpack())
    assert row["knn_test"] == acthash.knn_accuracy(want_tr, None, want_te, None, k=9)
    assert row["net_acc_test"] == pytest.approx(acthash.network_scores(
        model(digits.x_test).detach().numpy(), digits.y_test.numpy())["accuracy"])
    source = json.loads((tmp_path / "out" / "source.json").read_text())
    assert source["kind"] == "file" and source["model_sha256"] == _sha(path)
    with pytest.raises(ConfigError, match="--width"):  # the file fixes the architecture
        acthash.measure(str(path), "digits", width=8, write=False)


def test_a_checkpoint_that_does_not_fit_names_the_tensors(tmp_path, monkeypatch):
    torch.save(MLP(64, 32, 10).state_dict(), tmp_path / "wide.pt")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["measure", "--model", "mlp", "--width", "16", "--checkpoint",
                              "wide.pt", "--device", "cpu", "--no-progress"])
    assert res.exit_code == EXIT_USER_ERROR
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[0].startswith("error: checkpoint wide.pt does not match MLP")
    assert "shape mismatch" in res.output and "features.1.weight: checkpoint (32, 64) vs " \
        "model (16, 64)" in " ".join(res.output.split())
    assert not (tmp_path / "runs").exists()  # nothing written for a failed load
    state = MLP(64, 16, 10).state_dict()
    state["extra.weight"] = state.pop("head.weight")
    torch.save(state, tmp_path / "renamed.pt")
    with pytest.raises(InputError, match=r"missing \['head.weight'\]; unexpected "
                                         r"\['extra.weight'\]"):
        acthash.measure("mlp", "digits", checkpoint=tmp_path / "renamed.pt", width=16,
                        write=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(acthash.CorruptFileError, match="not a readable checkpoint"):
        acthash.measure("mlp", "digits", checkpoint=tmp_path / "junk.pt", write=False)


def test_measure_takes_a_module_and_a_dataset_object(digits):
    torch.manual_seed(0)
    model = MLP(64, 8, 10)
    res = acthash.measure(model, digits, write=False, k=3, **FAST)
    codes = acthash.neural_codes(model, digits.x_test)
    assert res.metrics.loc[0, "k"] == 3 and res.metrics.loc[0, "model"] == "MLP"
    assert res.metrics.loc[0, "redundancy_test"] == _redundancy(codes.unpack())
    with pytest.raises(ConfigError, match="--depth"):
        acthash.measure(model, digits, depth=3, write=False)


def _sklearn_knn(train: NeuralCodes, test: NeuralCodes, k: int) -> float:
    clf = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute")
    clf.fit(train.unpack().astype(bool), train.labels)
    return float(np.mean(clf.predict(test.unpack().astype(bool)) == test.labels))


def test_properties_rescores_a_run_with_k5_beside_the_untouched_table(trained, tmp_path):
    run_dir, _ = trained
    before = {p.relative_to(run_dir): _sha(p) for p in run_dir.rglob("*") if p.is_file()}
    args = ["properties", str(run_dir), "--k", "5", "--ties", "sklearn", "--kmeans-n-init",
            "1", "--kmeans-n-seeds", "1", "--logreg-strategy", "ovr"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "5-NN acc." in res.output and "table written" in res.output
    new = sorted(run_dir.glob("properties-*.parquet"))
    assert len(new) == 1
    assert {name: _sha(run_dir / name) for name in before} == before  # nothing overwritten
    table = pd.read_parquet(new[0])
    assert list(table["epoch"]) == [1, 2] and (table["k"] == 5).all()
    meta = json.loads(new[0].with_suffix(".json").read_text())
    assert meta["options"]["k"] == 5 and meta["options"]["seed"] == 0  # the run's seed
    assert meta["options"]["dataset"] == "digits"
    assert meta["resolved"]["ties"] == "sklearn"
    for epoch, row in zip((1, 2), table.itertuples(), strict=True):
        tr = NeuralCodes.load(run_dir / "codes" / f"epoch_{epoch:04d}_train.ahc")
        te = NeuralCodes.load(run_dir / "codes" / f"epoch_{epoch:04d}_test.ahc")
        assert row.knn_test == _sklearn_knn(tr, te, 5)
        assert row.redundancy_test == _redundancy(te.unpack())
    # the same options again: the stored table is reused, nothing is rewritten
    stamp = new[0].stat().st_mtime_ns
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "reused" in res.output
    assert new[0].stat().st_mtime_ns == stamp and len(list(run_dir.glob("properties-*.parquet"))) == 1
    # other options: another table; the default tie rule matches the library's own k-NN
    other = acthash.rescore(run_dir, k=5, kmeans_n_init=1, kmeans_n_seeds=1,
                            logreg_strategy="ovr")
    assert not other.reused and other.path != new[0] and other.path.is_file()
    tr = NeuralCodes.load(run_dir / "codes" / "epoch_0002_train.ahc")
    te = NeuralCodes.load(run_dir / "codes" / "epoch_0002_test.ahc")
    assert other.metrics.loc[1, "knn_test"] == acthash.knn_accuracy(tr, None, te, None, k=5)
    assert _sha(run_dir / "metrics.parquet") == before[Path("metrics.parquet")]


def test_properties_of_two_codes_files(trained, tmp_path):
    run_dir, _ = trained
    tr = run_dir / "codes" / "epoch_0002_train.ahc"
    te = run_dir / "codes" / "epoch_0002_test.ahc"
    res = acthash.rescore(tr, te, k=5, ties="sklearn", out_dir=tmp_path, **{
        k: v for k, v in FAST.items() if k != "device"})
    assert res.path.parent == tmp_path and res.metrics.loc[0, "train_codes"] == tr.name
    assert res.metrics.loc[0, "knn_test"] == _sklearn_knn(NeuralCodes.load(tr),
                                                          NeuralCodes.load(te), 5)
    unlabelled = NeuralCodes.load(tr)
    unlabelled = NeuralCodes.from_bits(unlabelled.unpack())
    unlabelled.save(tmp_path / "nolabels_train.ahc")
    res = runner.invoke(app, ["properties", str(tmp_path / "nolabels_train.ahc"), str(te)])
    assert res.exit_code == EXIT_USER_ERROR and "no labels" in res.output
    res = runner.invoke(app, ["properties", str(tmp_path / "empty")])
    assert res.exit_code == EXIT_USER_ERROR and "run directory" in res.output
