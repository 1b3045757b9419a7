import json

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from acthash.data.manifolds import ManifoldGenerator
from acthash.models import MLP
from acthash.studies.lsh import (
    LSHConfig,
    invariance_table,
    one_shot_accuracy,
    representation,
    run_lsh_study,
    srp_hash,
    summarize_one_shot,
)


def test_one_shot_on_well_separated_manifolds_is_near_one():
    gen = ManifoldGenerator(input_dim=32, gamma_dim=6, theta_dim=2, seed=0)
    rng = np.random.default_rng(0)
    gammas = gen.sample_gammas(10, rng, scale=3.0)
    x_s, y_s, _ = gen.sample(gammas, 1, rng, theta_range=0.05)
    x_q, y_q, _ = gen.sample(gammas, 30, rng, theta_range=0.05)
    assert one_shot_accuracy(x_s, y_s, x_q, y_q) >= 0.98
    # through a (random) ReLU net, by its representation and by its neural code
    torch.manual_seed(0)
    net = MLP(32, 128, 10, depth=2).eval()
    assert one_shot_accuracy(representation(net, x_s), y_s, representation(net, x_q),
                             y_q) >= 0.95
    from acthash.core.capture import neural_codes

    cs, cq = neural_codes(net, torch.as_tensor(x_s)), neural_codes(net, torch.as_tensor(x_q))
    assert one_shot_accuracy(cs, y_s, cq, y_q, metric="hamming") >= 0.9


def test_one_shot_on_pure_noise_is_at_chance():
    rng = np.random.default_rng(1)
    n_classes, n_query = 10, 4000
    support, query = rng.normal(size=(n_classes, 20)), rng.normal(size=(n_query, 20))
    y_q = rng.integers(0, n_classes, size=n_query)
    acc = one_shot_accuracy(support, np.arange(n_classes), query, y_q)
    assert abs(acc - 1 / n_classes) < 0.03
    codes_s = np.packbits(rng.integers(0, 2, size=(n_classes, 64)).astype(bool), axis=1)
    codes_q = np.packbits(rng.integers(0, 2, size=(n_query, 64)).astype(bool), axis=1)
    acc_h = one_shot_accuracy(codes_s, np.arange(n_classes), codes_q, y_q, metric="hamming")
    assert abs(acc_h - 1 / n_classes) < 0.03


def test_one_shot_euclidean_matches_sklearn_1nn():
    rng = np.random.default_rng(2)
    s, q = rng.normal(size=(15, 5)), rng.normal(size=(200, 5))
    y_s, y_q = rng.integers(0, 5, 15), rng.integers(0, 5, 200)
    ref = KNeighborsClassifier(1).fit(s, y_s).score(q, y_q)
    assert one_shot_accuracy(s, y_s, q, y_q) == pytest.approx(ref)
    with pytest.raises(ValueError, match="metric"):
        one_shot_accuracy(s, y_s, q, y_q, metric="cosine")


def test_srp_collision_probability_follows_the_angle():
    # P[all b sign bits agree] = (1 - angle/pi)^b for vectors at that angle
    rng = np.random.default_rng(3)
    n, d, angle, b = 4000, 10, np.pi / 4, 4
    u = rng.normal(size=(n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = rng.normal(size=(n, d))
    w -= (w * u).sum(1, keepdims=True) * u
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    v = np.cos(angle) * u + np.sin(angle) * w
    coll = (srp_hash(u, b, 7) == srp_hash(v, b, 7)).all(1).mean()
    assert coll == pytest.approx((1 - angle / np.pi) ** b, abs=0.03)


def test_representation_is_the_input_of_the_last_linear():
    torch.manual_seed(0)
    net = MLP(6, [9, 5], 3).eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        ref = net.features(x).double().numpy()
    np.testing.assert_allclose(representation(net, x), ref, rtol=1e-6)


def test_invariance_table_has_every_layer_and_the_input():
    gen = ManifoldGenerator(input_dim=16, gamma_dim=4, theta_dim=1, seed=0)
    torch.manual_seed(0)
    net = MLP(16, [12, 8], 3).eval()
    inv = invariance_table(gen, {"trained": net}, n_classes=4, per_class=5, theta_range=0.1)
    assert set(inv["layer"]) == {"input", "features.2", "features.4", "penultimate"}
    # tiny theta range: examples of one gamma are far more alike than examples of two
    row = inv[inv["layer"] == "input"].iloc[0]
    assert row["within_similarity"] > row["across_similarity"] and row["distance_ratio"] > 2


def test_summarize_one_shot_mean_and_std():
    import pandas as pd

    df = pd.DataFrame({"n_unseen": [2, 2, 2], "repeat": [0, 1, 2],
                       "representation": ["raw input"] * 3, "accuracy": [0.5, 1.0, 0.75]})
    s = summarize_one_shot(df).iloc[0]
    assert s["mean"] == pytest.approx(0.75) and s["std"] == pytest.approx(0.25)
    assert s["chance"] == 0.5 and s["repeats"] == 3


@pytest.mark.slow
def test_lsh_study_end_to_end(tmp_path):
    cfg = LSHConfig(n_classes=6, per_class=30, input_dim=16, gamma_dim=3, theta_dim=1,
                    width=32, depth=2, epochs=3, distances=(0.0, 3.0), n_pairs=40,
                    srp_bits=(4, 8), inv_classes=3, inv_per_class=4, n_unseen=(2, 4),
                    queries_per_class=5, repeats=2, dataset="digits", real_epochs=2,
                    real_max_train=200)
    res = run_lsh_study(cfg, out_dir=tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.json", "environment.json", "summary.json", "lsh_curve.parquet",
                 "invariance.parquet", "one_shot.parquet", "one_shot_summary.csv",
                 "real_one_shot.parquet", "real_one_shot_summary.csv",
                 "figures/lsh_curve.png", "figures/one_shot.png", "figures/real_one_shot.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    curve = res.lsh_curve
    assert set(curve["model"]) == {"trained", "untrained", "raw input"}
    assert {"code:all", "srp4", "srp8"} <= set(curve["hash"])
    assert curve["collision"].between(0, 1).all()
    assert len(res.one_shot) == 2 * 2 * 5  # n_unseen x repeats x representations
    assert res.summary["real"]["unseen_classes"] == ["5", "6", "7", "8", "9"]
    assert set(res.real_summary["n_unseen"]) == {2, 3, 4, 5}
    # seeded: a second run gives the same tables
    from dataclasses import replace

    again = run_lsh_study(replace(cfg, dataset=None), write=False)
    assert again.one_shot["accuracy"].tolist() == res.one_shot["accuracy"].tolist()
    assert again.lsh_curve["collision"].tolist() == curve["collision"].tolist()


def test_lsh_config_is_validated():
    with pytest.raises(ValueError, match="n_unseen"):
        run_lsh_study(LSHConfig(n_unseen=(1, 5)), write=False)
