"""Parity with the original study: k-NN tie rules, conventions, K-Means spread, small data.

References are scikit-learn itself (KNeighborsClassifier, KMeans, LogisticRegression run the
way the original scripts call them) and hand-computed votes.
"""

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier
from sklearn.neighbors import KNeighborsClassifier

from acthash import NeuralCodes, encoding_properties
from acthash import properties as P
from acthash.errors import InputError, SmallDataWarning
from acthash.ops.hamming import (
    available_backends,
    class_counts,
    hamming_distances,
    share_counts,
    share_counts_loo,
)

# the issue's minimal case: 1-bit codes, query [1], k = 9
TIE_TR = np.array([1, 0, 0, 0, 0, 1, 1, 0, 1, 1], dtype=np.uint8)[:, None]
TIE_Y = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 0])
TIE_Q = np.array([[1]], dtype=np.uint8)


def _sk_knn(k=9):
    return KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute")


def _sk_predict(train, y, test, k=9):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn notes the conversion to bool
        return _sk_knn(k).fit(train, y).predict(test)


def _sk_loo_predict(train, y, k=9):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = _sk_knn(k).fit(train, y)
        idx = clf.kneighbors(None, return_distance=False)
    enc = np.searchsorted(clf.classes_, y)
    votes = np.stack([np.bincount(enc[r], minlength=len(clf.classes_)) for r in idx])
    return clf.classes_[votes.argmax(1)]


def test_minimal_tie_case_by_hand():
    # five codes at distance 0 (labels 0,1,0,1,0) vote once each; the five at distance 1
    # (labels 1,1,0,0,1) share the 4 remaining votes, 0.8 each:
    # class 0: 3 + 2 * 0.8 = 4.6, class 1: 2 + 3 * 0.8 = 4.4
    assert P.knn_predict(TIE_TR, TIE_Y, TIE_Q, k=9).tolist() == [0]
    # scikit-learn's selection keeps a different four of the tied codes and predicts 1
    assert _sk_predict(TIE_TR, TIE_Y, TIE_Q).tolist() == [1]
    assert P.knn_predict(TIE_TR, TIE_Y, TIE_Q, k=9, ties="sklearn").tolist() == [1]


def test_share_rule_shifts_with_the_tied_votes():
    # 2 codes at distance 0 (class 1), 4 tied at distance 1 (3 of class 0, 1 of class 1), k=3:
    # class 1: 2 + 1/4, class 0: 3/4 -> 1; with k = 5: class 1: 2 + 3/4 = 2.75, class 0: 2.25
    train = np.array([[0], [0], [1], [1], [1], [1]], dtype=np.uint8)
    y = np.array([1, 1, 0, 0, 0, 1])
    q = np.array([[0]], dtype=np.uint8)
    assert P.knn_predict(train, y, q, k=3).tolist() == [1]
    assert P.knn_predict(train, y, q, k=5).tolist() == [1]
    # a tie in the shared vote goes to the smallest label: k=6 -> class 0: 3, class 1: 3
    assert P.knn_predict(train, y, q, k=6).tolist() == [0]


@pytest.mark.parametrize("n_bits", [6, 12, 40])
def test_share_rule_ignores_row_order(rng, n_bits):
    train = rng.integers(0, 2, size=(400, n_bits)).astype(np.uint8)
    y = rng.integers(0, 5, size=400)
    test = rng.integers(0, 2, size=(150, n_bits)).astype(np.uint8)
    base = P.knn_predict(train, y, test, k=9)
    loo = P.knn_loo_predict(train, y, k=9)
    for _ in range(3):
        perm = rng.permutation(400)
        np.testing.assert_array_equal(P.knn_predict(train[perm], y[perm], test, k=9), base)
        np.testing.assert_array_equal(P.knn_loo_predict(train[perm], y[perm], k=9), loo[perm])
    # sorted by label (an unshuffled image folder) changes nothing either
    order = np.argsort(y, kind="stable")
    np.testing.assert_array_equal(P.knn_predict(train[order], y[order], test, k=9), base)


@pytest.mark.parametrize("n_bits", [6, 9, 17, 40])
def test_sklearn_ties_equal_scikit_learn_on_tie_heavy_codes(rng, n_bits):
    train = rng.integers(0, 2, size=(600, n_bits)).astype(np.uint8)
    y = rng.integers(0, 4, size=600)
    test = rng.integers(0, 2, size=(250, n_bits)).astype(np.uint8)
    expected = _sk_predict(train, y, test)
    expected_loo = _sk_loo_predict(train, y)
    for backend in available_backends():
        np.testing.assert_array_equal(
            P.knn_predict(train, y, test, k=9, ties="sklearn", backend=backend), expected)
    np.testing.assert_array_equal(P.knn_predict(train, y, test, ties="sklearn", device="cpu"),
                                  expected)
    np.testing.assert_array_equal(P.knn_loo_predict(train, y, k=9, ties="sklearn"), expected_loo)
    np.testing.assert_array_equal(P.knn_loo_predict(train, y, ties="sklearn", device="cpu"),
                                  expected_loo)
    assert P.knn_accuracy(train, y, test, y[:250], ties="sklearn") == pytest.approx(
        np.mean(expected == y[:250]))


def test_share_rule_same_in_every_backend_and_on_torch(rng):
    train = rng.integers(0, 2, size=(500, 10)).astype(np.uint8)
    y = rng.integers(0, 3, size=500)
    test = rng.integers(0, 2, size=(120, 10)).astype(np.uint8)
    ref = P.knn_predict(train, y, test, k=9, backend="numpy")
    ref_loo = P.knn_loo_predict(train, y, k=9, backend="numpy")
    for backend in available_backends():
        np.testing.assert_array_equal(P.knn_predict(train, y, test, k=9, backend=backend), ref)
        np.testing.assert_array_equal(P.knn_loo_predict(train, y, k=9, backend=backend), ref_loo)
    np.testing.assert_array_equal(P.knn_predict(train, y, test, k=9, device="cpu"), ref)
    np.testing.assert_array_equal(P.knn_loo_predict(train, y, k=9, device="cpu"), ref_loo)


def test_share_rule_equals_scikit_learn_without_ties(rng):
    # where the k-th and (k+1)-th distances differ, every rule picks the same 9 neighbours
    centres = rng.integers(0, 2, size=(4, 300)).astype(np.uint8)
    y = rng.integers(0, 4, size=500)
    bits = (centres[y] ^ (rng.random((500, 300)) < 0.4)).astype(np.uint8)
    train, test = bits[:400], bits[400:]  # 300 bits: few ties at the 9th distance
    d = np.sort(hamming_distances(NeuralCodes.from_bits(test), NeuralCodes.from_bits(train)), 1)
    ok = d[:, 8] < d[:, 9]
    assert ok.sum() > 20
    np.testing.assert_array_equal(P.knn_predict(train, y[:400], test)[ok],
                                  _sk_predict(train, y[:400], test)[ok])


def test_class_counts_by_brute_force(rng):
    db = rng.integers(0, 2, size=(300, 21)).astype(np.uint8)
    q = rng.integers(0, 2, size=(40, 21)).astype(np.uint8)
    y = rng.integers(0, 3, size=300)
    dbc, qc = NeuralCodes.from_bits(db), NeuralCodes.from_bits(q)
    radius = rng.integers(0, 22, size=40)
    d = (q[:, None, :] != db[None, :, :]).sum(2)
    exp_less = np.stack([[np.sum((d[i] < radius[i]) & (y == c)) for c in range(3)]
                         for i in range(40)])
    exp_eq = np.stack([[np.sum((d[i] == radius[i]) & (y == c)) for c in range(3)]
                       for i in range(40)])
    for kw in [{"backend": b} for b in available_backends()] + [{"device": "cpu"}]:
        less, eq = class_counts(dbc, y, qc, radius, 3, **kw)
        np.testing.assert_array_equal(less, exp_less, err_msg=str(kw))
        np.testing.assert_array_equal(eq, exp_eq, err_msg=str(kw))


def _brute_share(d, y, k, n_classes):
    """Per row of the distance matrix d: class counts below and at its k-th distance."""
    dk = np.sort(d, axis=1)[:, k - 1]
    less = np.stack([np.bincount(y[d[i] < dk[i]], minlength=n_classes) for i in range(len(d))])
    equal = np.stack([np.bincount(y[d[i] == dk[i]], minlength=n_classes) for i in range(len(d))])
    return less, equal


@pytest.mark.parametrize("budget", [None, 2 * (8 + 4) * 7])  # default tiles, 7-row tiles
def test_share_counts_one_pass_by_brute_force(rng, budget):
    # few distinct codes and short rows: many ties at the k-th distance, so the counts of
    # codes tied there (not in the running list) are exercised
    base = rng.integers(0, 2, size=(12, 13)).astype(np.uint8)
    db = base[rng.integers(0, 12, size=203)]
    q = np.concatenate([base[:5], rng.integers(0, 2, size=(30, 13)).astype(np.uint8)])
    y = rng.integers(0, 4, size=203)
    d = (q[:, None, :] != db[None, :, :]).sum(2)
    dbc, qc = NeuralCodes.from_bits(db), NeuralCodes.from_bits(q)
    for k in (1, 9, 40):
        less, eq = share_counts(dbc, y, qc, k, 4, memory_budget=budget)
        exp_less, exp_eq = _brute_share(d, y, k, 4)
        np.testing.assert_array_equal(less, exp_less, err_msg=f"k={k}")
        np.testing.assert_array_equal(eq, exp_eq, err_msg=f"k={k}")
        # leave-one-out: each code against the others (self masked out of the brute force)
        dd = (db[:, None, :] != db[None, :, :]).sum(2).astype(float)
        np.fill_diagonal(dd, np.inf)
        less, eq = share_counts_loo(dbc, y, k, 4, memory_budget=budget)
        exp_less, exp_eq = _brute_share(dd, y, k, 4)
        np.testing.assert_array_equal(less, exp_less, err_msg=f"loo k={k}")
        np.testing.assert_array_equal(eq, exp_eq, err_msg=f"loo k={k}")


def test_share_counts_do_not_depend_on_row_order(rng):
    db = rng.integers(0, 2, size=(150, 9)).astype(np.uint8)
    y = rng.integers(0, 3, size=150)
    perm = rng.permutation(150)
    a = share_counts_loo(NeuralCodes.from_bits(db), y, 9, 3, memory_budget=2 * 12 * 16)
    b = share_counts_loo(NeuralCodes.from_bits(db[perm]), y[perm], 9, 3)
    np.testing.assert_array_equal(a[0][perm], b[0])
    np.testing.assert_array_equal(a[1][perm], b[1])


def test_share_counts_bad_input():
    codes = NeuralCodes.from_bits(np.eye(5, dtype=np.uint8))
    with pytest.raises(InputError, match="between 1 and the number of other codes 4"):
        share_counts_loo(codes, np.arange(5) % 2, 5)
    with pytest.raises(InputError, match="between 1 and the database size 5"):
        share_counts(codes, np.arange(5) % 2, codes, 6)
    with pytest.raises(InputError, match="one class index per database row"):
        share_counts(codes, np.arange(4), codes, 2)
    from acthash.errors import ResourceError
    with pytest.raises(ResourceError, match="raise memory_budget"):
        share_counts(codes, np.arange(5) % 2, codes, 2, memory_budget=8)


def test_unknown_ties_and_too_large_k():
    with pytest.raises(InputError, match="unknown ties 'first'.*'share'"):
        P.knn_predict(TIE_TR, TIE_Y, TIE_Q, ties="first")
    with pytest.raises(InputError, match="k=11 needs at least 11 training codes"):
        P.knn_predict(TIE_TR, TIE_Y, TIE_Q, k=11)
    with pytest.raises(InputError, match="more than k=10"):
        P.knn_loo_predict(TIE_TR, TIE_Y, k=10)


# ------------------------------------------------------------------------- K-Means, logreg


def test_kmeans_spread_over_seeds_equals_separate_sklearn_fits(rng):
    centres = rng.integers(0, 2, size=(5, 30)).astype(np.uint8)
    y = rng.integers(0, 5, size=200)
    bits = (centres[y] ^ (rng.random((200, 30)) < 0.3)).astype(np.uint8)
    km = P.kmeans_scores(bits, y, seed=3, n_init=2, n_seeds=4)
    runs = []
    for s in range(3, 7):
        c = KMeans(n_clusters=5, n_init=2, random_state=s).fit_predict(bits.astype(np.float32))
        runs.append(P.cluster_accuracy(c, y, "hungarian"))
    assert km["seeds"] == [3, 4, 5, 6]
    assert km["hungarian_runs"] == pytest.approx(runs)
    assert km["hungarian"] == pytest.approx(np.mean(runs))
    assert km["hungarian_std"] == pytest.approx(np.std(runs, ddof=1))
    assert np.isnan(P.kmeans_scores(bits, y, n_seeds=1)["hungarian_std"])


def test_kmeans_k_larger_than_examples_is_an_error():
    bits = np.eye(4, dtype=np.uint8)
    with pytest.raises(InputError, match="K=5 clusters needs at least 5 codes"):
        P.kmeans_scores(bits, np.arange(4), n_clusters=5)


def test_liblinear_solver_equals_the_original_call(rng):
    y = rng.integers(0, 3, size=240)
    bits = ((np.eye(3)[y] + (rng.random((240, 3)) < 0.35)) % 2).astype(np.uint8)
    bits = np.concatenate([bits, rng.integers(0, 2, size=(240, 12))], 1).astype(np.uint8)
    tr, te = slice(0, 160), slice(160, 240)
    ref = OneVsOneClassifier(LogisticRegression(solver="liblinear", random_state=9))
    expected = np.mean(ref.fit(bits[tr].astype(float), y[tr]).predict(bits[te]) == y[te])
    ours = P.logreg_accuracy(bits[tr], y[tr], bits[te], y[te], solver="liblinear", seed=9,
                             max_iter=100, dtype="float64")
    assert ours == pytest.approx(expected)
    with pytest.raises(InputError, match="unknown solver 'newton'"):
        P.logreg_accuracy(bits[tr], y[tr], bits[te], y[te], solver="newton")


# ------------------------------------------------------------------------- conventions


def _original_reference(tr_bits, y_tr, te_bits, y_te, k=9):
    """The original scripts' pipeline, with scikit-learn, on the same codes."""
    both = np.concatenate([tr_bits, te_bits])
    keep = ~(np.all(both == 0, axis=0) | np.all(both == 1, axis=0))
    tr, te = tr_bits[:, keep], te_bits[:, keep]
    n_cls = len(np.unique(np.concatenate([y_tr, y_te])))
    out = {}
    for split, x, y in (("train", tr, y_tr), ("test", te, y_te)):
        c = KMeans(n_clusters=n_cls, n_init=10, random_state=9).fit_predict(x.astype(float))
        out[f"kmeans_{split}"] = P.cluster_accuracy(c, y, "hungarian")
        out[f"kmeans_purity_{split}"] = P.cluster_accuracy(c, y, "purity")
    out["knn_test"] = np.mean(_sk_predict(tr, y_tr, te, k) == y_te)
    lr = OneVsOneClassifier(LogisticRegression(solver="liblinear", random_state=9))
    out["logreg_test"] = np.mean(lr.fit(tr.astype(float), y_tr).predict(te.astype(float)) == y_te)
    out["n_bits"] = int(keep.sum())
    return out


def test_original_convention_reproduces_the_original_pipeline(rng):
    centres = rng.integers(0, 2, size=(4, 14)).astype(np.uint8)
    y_tr, y_te = rng.integers(0, 4, 300), rng.integers(0, 4, 120)
    tr = (centres[y_tr] ^ (rng.random((300, 14)) < 0.25)).astype(np.uint8)
    te = (centres[y_te] ^ (rng.random((120, 14)) < 0.25)).astype(np.uint8)
    tr[:, 0] = 1  # constant over train and test: dropped
    te[:, 0] = 1
    tr[:, 1] = 0  # constant on train only: kept by the union mask
    rec = encoding_properties(tr, y_tr, te, y_te, convention="original", dataset="mnist")
    ref = _original_reference(tr, y_tr, te, y_te)
    for key, value in ref.items():
        assert rec[key] == pytest.approx(value), key
    assert "knn_train" not in rec and "logreg_train" not in rec
    assert rec["ties"] == "sklearn" and rec["kmeans_n_seeds"] == 1
    # MNIST's script maps clusters by majority; SVHN's one-to-one
    assert rec["kmeans_mapping_original"] == "purity"
    assert rec["kmeans_original_test"] == rec["kmeans_purity_test"]
    svhn = encoding_properties(tr, y_tr, te, y_te, convention="original", dataset="svhn")
    assert svhn["kmeans_original_test"] == svhn["kmeans_test"]
    # an explicit option wins over the convention
    own = encoding_properties(tr, y_tr, te, y_te, convention="original", ties="share")
    assert own["knn_test"] == P.knn_accuracy(tr[:, 1:], y_tr, te[:, 1:], y_te)


def test_constant_unit_masks_issue_case():
    tr = np.array([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 1]], dtype=np.uint8)
    te = np.array([[0, 0, 1], [1, 0, 1]], dtype=np.uint8)
    y_tr, y_te = np.array([0, 1, 0, 1]), np.array([0, 1])
    kw = {"k": 1, "kmeans_n_seeds": 1, "kmeans_n_init": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = encoding_properties(tr, y_tr, te, y_te, **kw)
        train_mask = encoding_properties(tr, y_tr, te, y_te, drop_constant="train", **kw)
        union = encoding_properties(tr, y_tr, te, y_te, drop_constant="union", **kw)
    assert plain["redundancy_test"] == 0.0
    assert train_mask["redundancy_test"] == 0.5  # unit 0 varies only on test: dropped
    assert union["redundancy_test"] == 0.0
    assert union["n_bits"] == 2 and train_mask["n_bits"] == 1


def test_default_reports_kmeans_mean_and_std_over_five_seeds(rng):
    centres = rng.integers(0, 2, size=(3, 20)).astype(np.uint8)
    y_tr, y_te = rng.integers(0, 3, 120), rng.integers(0, 3, 60)
    tr = (centres[y_tr] ^ (rng.random((120, 20)) < 0.3)).astype(np.uint8)
    te = (centres[y_te] ^ (rng.random((60, 20)) < 0.3)).astype(np.uint8)
    rec = encoding_properties(tr, y_tr, te, y_te, seed=2, kmeans_n_init=2)
    km = P.kmeans_scores(te, y_te, seed=2, n_init=2, n_seeds=5)
    assert rec["kmeans_n_seeds"] == 5
    assert rec["kmeans_test"] == pytest.approx(km["hungarian"])
    assert rec["kmeans_std_test"] == pytest.approx(km["hungarian_std"])
    assert rec["kmeans_purity_std_test"] == pytest.approx(km["purity_std"])


def test_bad_convention_and_drop_values():
    with pytest.raises(InputError, match="unknown convention 'paper'"):
        encoding_properties(TIE_TR, TIE_Y, TIE_TR, TIE_Y, convention="paper")
    with pytest.raises(InputError, match="drop_constant"):
        encoding_properties(TIE_TR, TIE_Y, TIE_TR, TIE_Y, drop_constant="test")


def test_small_splits_are_nan_with_one_warning_or_an_error(rng):
    tr = rng.integers(0, 2, size=(6, 8)).astype(np.uint8)
    te = rng.integers(0, 2, size=(2, 8)).astype(np.uint8)
    y_tr, y_te = np.array([0, 1, 2, 0, 1, 2]), np.array([0, 1])
    with pytest.warns(SmallDataWarning, match="knn_train.*knn_test") as record:
        rec = encoding_properties(tr, y_tr, te, y_te, k=9, n_classes=3)
    assert len(record) == 1
    assert np.isnan(rec["knn_train"]) and np.isnan(rec["knn_test"])
    assert np.isnan(rec["kmeans_test"])  # 2 test codes < K = 3
    assert not np.isnan(rec["kmeans_train"]) and not np.isnan(rec["logreg_test"])
    with pytest.raises(InputError, match="kmeans_test: 2 codes < K=3"):
        encoding_properties(tr, y_tr, te, y_te, k=3, n_classes=3, small="raise")
    with pytest.warns(SmallDataWarning, match="logreg_train"):
        one = encoding_properties(tr, np.zeros(6, int), te, y_te, k=3)
    assert np.isnan(one["logreg_test"])


def test_sweep_figures_carry_the_kmeans_seed_spread():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from acthash.presentation.plots import aggregate, plot_factor

    rows = [{"width": w, "seed": s, "kmeans_test": 0.5 + 0.1 * s, "kmeans_std_test": sd,
             "knn_test": 0.7} for w in (4, 8) for s, sd in ((0, 0.03), (1, 0.04))]
    agg = aggregate(pd.DataFrame(rows), "width")
    # per-run K-Means stds 0.03 and 0.04: root-mean-square sqrt((0.0009 + 0.0016) / 2)
    assert np.allclose(agg["kmeans_test_seed_std"], np.sqrt(0.00125))
    assert np.allclose(agg["kmeans_test_std"], np.std([0.5, 0.6], ddof=1))
    assert "knn_test_seed_std" not in agg.columns
    fig = plot_factor(pd.DataFrame(rows), "width")
    km_ax = next(ax for ax in fig.axes if ax.get_title().startswith("K-Means"))
    band = km_ax.collections[0].get_paths()[0].vertices[:, 1]
    total = np.sqrt(np.std([0.5, 0.6], ddof=1) ** 2 + 0.00125)
    assert np.isclose(band.max() - band.min(), 2 * total)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_tie_rules_on_cuda_equal_cpu(rng):
    train = rng.integers(0, 2, size=(700, 11)).astype(np.uint8)
    y = rng.integers(0, 4, size=700)
    test = rng.integers(0, 2, size=(90, 11)).astype(np.uint8)
    for ties in P.TIES:
        np.testing.assert_array_equal(P.knn_predict(train, y, test, ties=ties, device="cuda"),
                                      P.knn_predict(train, y, test, ties=ties))
        np.testing.assert_array_equal(P.knn_loo_predict(train, y, ties=ties, device="cuda"),
                                      P.knn_loo_predict(train, y, ties=ties))
