"""Training: checkpoints, seeding, schedules, optimizers, early stopping."""

import math

import numpy as np
import pytest
import torch

from acthash import data
from acthash.core.codes import NeuralCodes
from acthash.errors import ConfigError, InputError
from acthash.models import MLP
from acthash.runs.experiment import RunConfig, load_checkpoint, make_model, run_experiment
from acthash.train import TrainConfig, _lr_at, seed_everything, train


def _toy(n=120, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y % c


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_zero_is_the_initialization():
    x, y = _toy()
    seed_everything(5)
    model = MLP(6, 8, 3, batchnorm=True)
    seen = {}
    train(model, x, y, TrainConfig(epochs=2, checkpoints=[0, 2], seed=5),
          on_checkpoint=lambda e, m: seen.__setitem__(e, _state(m)))
    seed_everything(5)
    fresh = MLP(6, 8, 3, batchnorm=True).state_dict()
    assert set(seen) == {0, 2}
    assert all(torch.equal(seen[0][k], fresh[k]) for k in fresh)
    assert not torch.equal(seen[2]["features.1.weight"], fresh["features.1.weight"])


def test_run_checkpoint_zero_file_equals_fresh_model(tmp_path):
    cfg = RunConfig(epochs=1, width=12, batchnorm=True, sample_size=150, checkpoints=[0, 1],
                    seed=7, kmeans_n_init=1)
    res = run_experiment(cfg, out_dir=tmp_path / "r")
    ds = data.load("digits")
    fresh = make_model(cfg, ds.input_shape, ds.n_classes).state_dict()
    loaded = load_checkpoint(res.run_dir / "checkpoints" / "epoch_0000.pt").state_dict()
    assert all(torch.equal(loaded[k], fresh[k]) for k in fresh)
    final = load_checkpoint(res.run_dir / "model.pt").state_dict()
    assert all(torch.equal(final[k], v) for k, v in res.model.state_dict().items())


def test_two_runs_with_one_seed_give_identical_codes(tmp_path):
    cfg = RunConfig(epochs=2, width=20, sample_size=150, label_noise=0.1, checkpoints=[1, 2],
                    seed=3, kmeans_n_init=1)
    a = run_experiment(cfg, out_dir=tmp_path / "a")
    b = run_experiment(cfg, out_dir=tmp_path / "b")
    for epoch in (1, 2):
        for split in ("train", "test"):
            name = f"codes/epoch_{epoch:04d}_{split}.ahc"
            ca, cb = NeuralCodes.load(a.run_dir / name), NeuralCodes.load(b.run_dir / name)
            assert ca.equals(cb)
            assert np.array_equal(ca.packed, cb.packed)
    cols = [c for c in a.metrics.columns
            if c not in ("dataset", "model") and not c.startswith("seconds_")]
    assert a.metrics[cols].equals(b.metrics[cols])
    c = run_experiment(RunConfig(**{**cfg.to_dict(), "seed": 4}), write=False)
    assert not c.metrics["redundancy_train"].equals(a.metrics["redundancy_train"]) or \
        not c.history.equals(a.history)


def test_training_is_deterministic_and_learns():
    x, y = _toy(n=200)
    runs = []
    for _ in range(2):
        seed_everything(0)
        m = MLP(6, 16, 3)
        hist = train(m, x, y, TrainConfig(epochs=8, lr=3e-2, batch_size=50, seed=1)).history
        runs.append((_state(m), hist))
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert runs[0][1].equals(runs[1][1])
    assert runs[0][1]["train_acc"].iloc[-1] > 0.9


def test_step_and_cosine_schedules():
    cfg = TrainConfig(epochs=45, lr=1e-2, schedule="step", step_size=20, lr_gamma=0.1)
    assert [_lr_at(cfg, e) for e in (1, 20, 21, 40, 41)] == pytest.approx(
        [1e-2, 1e-2, 1e-3, 1e-3, 1e-4])
    cos = TrainConfig(epochs=10, lr=1.0, schedule="cosine")
    assert _lr_at(cos, 1) == pytest.approx(1.0)
    assert _lr_at(cos, 6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))
    x, y = _toy()
    hist = train(MLP(6, 4, 3), x, y, TrainConfig(epochs=3, lr=0.1, schedule="step",
                                                  step_size=2)).history
    assert list(hist["lr"]) == pytest.approx([0.1, 0.1, 0.01])


@pytest.mark.parametrize("opt", ["adam", "adamw", "sgd"])
def test_optimizers_and_weight_decay(opt):
    x, y = _toy()
    norms = []
    for wd in (0.0, 0.5):
        seed_everything(0)
        m = MLP(6, 16, 3)
        train(m, x, y, TrainConfig(epochs=10, lr=1e-2, optimizer=opt, weight_decay=wd))
        norms.append(float(m.features[1].weight.detach().norm()))
    assert norms[1] < norms[0]  # decay shrinks the weights


def test_sgd_uses_momentum():
    x, y = _toy()
    m = MLP(6, 4, 3)
    from acthash.train import _make_optimizer

    opt = _make_optimizer(m, TrainConfig(optimizer="sgd", momentum=0.8, weight_decay=1e-3))
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.8 and opt.defaults["weight_decay"] == 1e-3


def test_early_stopping_stops_and_restores_best():
    x, y = _toy(n=200)
    # validation labels unrelated to the inputs: the validation loss rises once it overfits
    y_val = torch.as_tensor(np.random.default_rng(0).integers(0, 3, 200))
    seed_everything(0)
    m = MLP(6, 64, 3)
    with pytest.warns(UserWarning, match="checkpoints \\[50\\] were not reached"):
        res = train(m, x, y, TrainConfig(epochs=50, lr=5e-2, early_stopping=2,
                                         restore_best=True, checkpoints=[0, 50]),
                    x_val=x, y_val=y_val)
    assert res.stopped_early and len(res.history) < 50
    h = res.history
    best_epoch = int(h["val_loss"].idxmin())
    assert len(h) == best_epoch + 1 + 2  # patience 2 after the best epoch
    assert all(torch.equal(m.state_dict()[k], v) for k, v in res.best_state.items())
    assert res.checkpoint_epochs == [0]


def test_bad_settings_are_named():
    x, y = _toy()
    m = MLP(6, 4, 3)
    with pytest.raises(ValueError, match="--val-split"):
        train(m, x, y, TrainConfig(epochs=2, early_stopping=1))
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train(m, x, y, TrainConfig(optimizer="rmsprop"))
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        train(m, x, y, TrainConfig(schedule="linear"))
    with pytest.raises(ValueError, match="outside 0..3"):
        train(m, x, y, TrainConfig(epochs=3, checkpoints=[4]))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        train(m, x, y, TrainConfig(batch_size=0))
    with pytest.raises(ValueError, match="5 inputs but 4 labels"):
        train(m, x[:5], y[:4])


def test_batchnorm_single_leftover_example_is_skipped():
    x, y = _toy(n=65)  # 64 + 1
    seed_everything(0)
    m = MLP(6, 8, 3, batchnorm=True)
    res = train(m, x, y, TrainConfig(epochs=2, batch_size=64))
    assert len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()


def test_one_optimizer_and_schedule_builder_serves_training_and_the_spectrum_study():
    from acthash._utils.config import TrainConfig as ConfigHome
    from acthash.spectrum.measures import _step_schedule
    from acthash.train import make_optimizer, make_schedule

    assert ConfigHome is TrainConfig
    sched = make_schedule(0.1, "multistep", gamma=0.5, milestones=[3, 7])
    assert [sched(e) for e in (1, 3, 4, 7, 8)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    # the spectrum study's "step": lr x gamma from each decay step (0-based) on
    study = _step_schedule(0.2, "step", [10, 20], 0.1)
    assert [study(s) for s in (0, 9, 10, 19, 20)] == [0.2 * 0.1 ** sum(s >= d for d in (10, 20))
                                                      for s in (0, 9, 10, 19, 20)]
    assert _step_schedule(0.2, "constant", [], 0.1)(50) == 0.2
    opt = make_optimizer(MLP(6, 4, 3).parameters(), "sgd", 0.3)
    assert opt.defaults["momentum"] == 0.0 and opt.defaults["lr"] == 0.3
    with pytest.raises(InputError, match="unknown optimizer"):
        make_optimizer(MLP(6, 4, 3).parameters(), "lbfgs", 0.1)


def test_mse_loss_by_hand_and_training_lowers_it():
    from acthash.train import evaluate, training_loss

    out = torch.tensor([[0.5, -1.0, 2.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([2, 1])
    # example 0: (0.25 + 1 + 1) / 3 = 0.75; example 1: (0 + 0 + 0) / 3 = 0
    assert float(training_loss(out, y, "mse")) == pytest.approx(0.375)
    assert float(training_loss(out, y, "mse", reduction="sum")) == pytest.approx(0.75)
    with pytest.raises(InputError, match="unknown loss"):
        training_loss(out, y, "hinge")
    with pytest.raises(ConfigError, match="unknown loss"):
        TrainConfig(loss="hinge")
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    labels = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    before = evaluate(model, x, labels, loss="mse")[0]
    res = train(model, x, labels, TrainConfig(epochs=30, lr=1e-2, loss="mse", batch_size=16))
    after = evaluate(model, x, labels, loss="mse")[0]
    assert after < 0.5 * before
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]
