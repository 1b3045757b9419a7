"""Encoding properties against independent references (scikit-learn, brute force)."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from acthash import NeuralCodes, encoding_properties, properties_table
from acthash import properties as P
from acthash.errors import InputError
from acthash.ops.hamming import available_backends, hamming_distances, hamming_knn


def _random_bits(rng, n, d):
    return rng.integers(0, 2, size=(n, d)).astype(np.uint8)


def test_redundancy_with_planted_duplicates(rng):
    base = _random_bits(rng, 200, 70)
    dup = base[rng.integers(0, 200, size=60)]
    bits = np.concatenate([base, dup])[rng.permutation(260)]
    distinct = len({tuple(r) for r in bits})
    assert P.redundancy_ratio(bits) == pytest.approx((260 - distinct) / 260)
    assert P.redundancy_ratio(base) == 0.0
    assert P.redundancy_ratio(np.zeros((10, 5), dtype=np.uint8)) == pytest.approx(0.9)


def test_redundancy_survives_hash_collisions(rng, monkeypatch):
    bits = _random_bits(rng, 100, 30)
    expected = P.redundancy_ratio(bits)
    monkeypatch.setattr(P.redundancy, "_row_hashes", lambda packed: np.zeros(len(packed), dtype=np.uint64))
    assert P.redundancy_ratio(bits) == expected


def test_hungarian_mapping_equals_brute_force(rng):
    clusters = rng.integers(0, 4, size=120)
    labels = rng.integers(0, 4, size=120)
    best = max(
        np.mean(np.array(perm)[clusters] == labels) for perm in itertools.permutations(range(4))
    )
    assert P.cluster_accuracy(clusters, labels, "hungarian") == pytest.approx(best)


def test_purity_by_hand():
    clusters = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([5, 5, 7, 7, 7, 5])
    # cluster 0 -> 5 (2), cluster 1 -> 7 (2), cluster 2 -> 5 (1)
    assert P.cluster_accuracy(clusters, labels, "purity") == pytest.approx(5 / 6)
    # one-to-one: 0->5 (2), 1->7 (2), cluster 2 has no class left
    assert P.cluster_accuracy(clusters, labels, "hungarian") == pytest.approx(4 / 6)


def test_kmeans_separates_clean_clusters(rng):
    centres = _random_bits(rng, 3, 64)
    labels = np.repeat(np.arange(3), 40)
    bits = centres[labels].copy()
    flips = rng.random(bits.shape) < 0.03
    bits[flips] ^= 1
    assert P.kmeans_accuracy(bits, labels) == 1.0
    assert P.kmeans_accuracy(bits, labels, mapping="purity") == 1.0
    with pytest.raises(ValueError, match="mapping"):
        P.kmeans_accuracy(bits, labels, mapping="best")


def _boundary_tie_free(train_bits, test_bits, k):
    d = hamming_distances(NeuralCodes.from_bits(test_bits), NeuralCodes.from_bits(train_bits))
    s = np.sort(d, axis=1)
    return s[:, k - 1] < s[:, k]


def _clustered(rng, n, d, n_classes, flip):
    centres = _random_bits(rng, n_classes, d)
    y = rng.integers(0, n_classes, size=n)
    return (centres[y] ^ (rng.random((n, d)) < flip)).astype(np.uint8), y


def test_knn_matches_sklearn_hamming_classifier(rng):
    bits, y = _clustered(rng, 550, 1000, 5, 0.45)
    train, y_train, test, y_test = bits[:400], y[:400], bits[400:], y[400:]
    ok = _boundary_tie_free(train, test, 9)  # the 9 nearest are unambiguous
    assert ok.mean() > 0.5
    ref = KNeighborsClassifier(n_neighbors=9, metric="hamming", algorithm="brute")
    expected = ref.fit(train, y_train).predict(test)
    ours = P.knn_predict(train, y_train, test, k=9)
    np.testing.assert_array_equal(ours[ok], expected[ok])
    assert P.knn_accuracy(train, y_train, test[ok], y_test[ok]) == pytest.approx(
        np.mean(expected[ok] == y_test[ok])
    )


@pytest.mark.parametrize("n_bits", [6, 77, 130])
def test_all_backends_agree_under_heavy_ties(rng, n_bits):
    assert {"numba", "faiss", "numpy"} <= set(available_backends())  # all installed by setup
    db = NeuralCodes.from_bits(_random_bits(rng, 3000, n_bits))  # 6 bits: many ties
    q = NeuralCodes.from_bits(_random_bits(rng, 200, n_bits))
    results = {b: hamming_knn(db, q, 15, backend=b) for b in available_backends()}
    full = hamming_distances(q, db)
    expected_idx = np.stack([np.lexsort((np.arange(3000), full[r]))[:15] for r in range(200)])
    for backend, (dist, idx) in results.items():
        np.testing.assert_array_equal(idx, expected_idx, err_msg=backend)
        np.testing.assert_array_equal(dist, np.take_along_axis(full, expected_idx, 1))


def test_leave_one_out_knn_matches_sklearn_refits(rng):
    bits, y = _clustered(rng, 150, 1000, 3, 0.45)
    d = hamming_distances(NeuralCodes.from_bits(bits), NeuralCodes.from_bits(bits))
    np.fill_diagonal(d, 10**6)
    s = np.sort(d, axis=1)
    ok = s[:, 8] < s[:, 9]
    assert ok.mean() > 0.5
    ref = KNeighborsClassifier(n_neighbors=9, metric="hamming", algorithm="brute")
    expected = np.array([
        ref.fit(np.delete(bits, i, 0), np.delete(y, i)).predict(bits[i : i + 1])[0]
        for i in range(len(y))
    ])
    ours = P.knn_loo_predict(bits, y)
    np.testing.assert_array_equal(ours[ok], expected[ok])


def test_loo_with_duplicates_excludes_only_self():
    bits = np.array([[0, 0], [0, 0], [1, 1], [1, 1]] * 3, dtype=np.uint8)
    y = np.array([0, 0, 1, 1] * 3)
    # every example's 3 nearest others are exact duplicates of it (2 of same class) ...
    assert P.knn_loo_accuracy(bits, y, k=3) == 1.0


def test_logreg_on_separable_bits(rng):
    y = rng.integers(0, 3, size=300)
    noise = _random_bits(rng, 300, 20)
    onehot = np.eye(3, dtype=np.uint8)[y]
    bits = np.concatenate([onehot, noise], axis=1)
    tr, te = slice(0, 200), slice(200, 300)
    for strategy in ("ovo", "ovr", "multinomial"):
        acc_tr, acc_te = P.logreg_accuracy(
            bits[tr], y[tr], bits[te], y[te], strategy=strategy, return_train=True
        )
        assert acc_tr == 1.0 and acc_te == 1.0


def test_network_scores_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    y = np.array([0, 0, 1])
    s = P.network_scores(logits, y)
    expected_loss = np.mean([np.log(1 + np.exp(-2)), np.log(1 + np.exp(1)), np.log(1 + np.exp(-2))])
    assert s["loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert s["accuracy"] == pytest.approx(2 / 3)


def test_encoding_properties_record(rng):
    centres = _random_bits(rng, 4, 48)
    y_tr, y_te = rng.integers(0, 4, 160), rng.integers(0, 4, 60)
    tr = (centres[y_tr] ^ (rng.random((160, 48)) < 0.1)).astype(np.uint8)
    te = (centres[y_te] ^ (rng.random((60, 48)) < 0.1)).astype(np.uint8)
    rec = encoding_properties(tr, y_tr, te, y_te)
    assert rec["redundancy_train"] == P.redundancy_ratio(tr)
    assert rec["knn_test"] == P.knn_accuracy(tr, y_tr, te, y_te)
    assert rec["knn_train"] == P.knn_loo_accuracy(tr, y_tr)
    assert rec["kmeans_test"] == P.kmeans_accuracy(te, y_te)
    assert rec["logreg_test"] == P.logreg_accuracy(tr, y_tr, te, y_te)
    assert rec["n_bits"] == 48 and rec["n_train"] == 160 and rec["n_test"] == 60
    table = properties_table(rec)
    assert list(table.columns) == ["train", "test"]
    assert table.loc["redundancy ratio", "test"] == rec["redundancy_test"]
    with pytest.raises(ValueError, match="labels have length 159 but there are 160"):
        encoding_properties(tr, y_tr[:-1], te, y_te)
    with pytest.raises(ValueError, match="test codes"):
        encoding_properties(tr, y_tr, te[:, :40], y_te)


def test_count_distinct_in_small_blocks_equals_unique_rows(monkeypatch):
    """Hashing and the exact check read the rows in blocks; duplicates that fall in
    different blocks still count once."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2, size=(37, 45)).astype(np.uint8)
    bits = base[rng.integers(0, 37, size=400)]
    expected = len(np.unique(bits, axis=0))
    monkeypatch.setattr(P.redundancy, "_HASH_BLOCK_BYTES", 3 * 6)  # 3 rows of 6 bytes a block
    assert P.count_distinct(NeuralCodes.from_bits(bits)) == expected
    assert P.redundancy_ratio(NeuralCodes.from_bits(bits)) == (400 - expected) / 400


# --- the catalog and PropertyOptions -------------------------------------------------------------


def _planted(rng, n, d=24, classes=3):
    centres = rng.integers(0, 2, size=(classes, d)).astype(np.uint8)
    y = rng.integers(0, classes, n)
    return (centres[y] ^ (rng.random((n, d)) < 0.2)).astype(np.uint8), y


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)


def test_options_object_and_keywords_give_the_same_record(rng):
    tr, y_tr = _planted(rng, 120)
    te, y_te = _planted(rng, 60)
    kw = {"k": 5, "seed": 3, "kmeans_n_init": 2, "convention": "original", "ties": "share",
          "dataset": "mnist"}
    by_kw = encoding_properties(tr, y_tr, te, y_te, **kw)
    options = P.PropertyOptions.for_convention(**kw)
    assert _same(by_kw, encoding_properties(tr, y_tr, te, y_te, options=options))
    # overrides on top of an options object: the convention fields not chosen follow it
    assert _same(by_kw, encoding_properties(tr, y_tr, te, y_te, options=P.PropertyOptions(
        k=5, seed=3, kmeans_n_init=2, ties="share", dataset="mnist"), convention="original"))
    with pytest.raises(InputError, match="unknown property option"):
        encoding_properties(tr, y_tr, te, y_te, kmeans_seeds=2)


def test_options_resolve_once_from_the_convention():
    o = P.PropertyOptions.for_convention("original", seed=4)
    assert (o.ties, o.kmeans_seed, o.kmeans_n_seeds, o.kmeans_dtype, o.fixed_k) == (
        "sklearn", 9, 1, "float64", True)
    assert (o.logreg_solver, o.logreg_max_iter, o.logreg_seed, o.train_scores) == (
        "liblinear", 100, 9, False)
    a = P.PropertyOptions(seed=4)
    assert (a.kmeans_seed, a.logreg_seed, a.kmeans_n_seeds, a.drop_constant) == (4, 4, 5, "none")
    assert a.updated(seed=7).kmeans_seed == 7  # not chosen: follows the seed
    assert P.PropertyOptions(kmeans_seed=2).updated(seed=7).kmeans_seed == 2
    assert a.updated(convention="original").ties == "sklearn"
    assert a.updated(convention="original", ties="share").updated(convention="acthash").ties \
        == "share"
    for bad, match in (({"k": 0}, "k must be a positive integer"),
                       ({"ties": "first"}, "unknown ties 'first'"),
                       ({"logreg_solver": "newton"}, "unknown solver 'newton'"),
                       ({"convention": "paper"}, "unknown convention 'paper'"),
                       ({"small": "skip"}, "unknown small"),
                       ({"drop_constant": "test"}, "unknown drop_constant"),
                       ({"kmeans_n_seeds": 0}, "n_seeds must be at least 1")):
        with pytest.raises(InputError, match=match):
            P.PropertyOptions(**bad)


def test_drop_constant_false_is_the_conventions_choice(rng):
    tr, y_tr = _planted(rng, 80)
    te, y_te = _planted(rng, 40)
    tr[:, 0] = te[:, 0] = 1  # a unit constant over train and test
    kw = {"kmeans_n_seeds": 1, "kmeans_n_init": 1}
    for convention, bits in (("acthash", 24), ("original", 23)):
        recs = [encoding_properties(tr, y_tr, te, y_te, convention=convention,
                                    drop_constant=d, **kw) for d in (None, False)]
        assert recs[0]["n_bits"] == recs[1]["n_bits"] == bits and _same(*recs)
    keep = encoding_properties(tr, y_tr, te, y_te, convention="original", drop_constant="none",
                               **kw)
    assert keep["n_bits"] == 24


def test_every_record_column_is_declared_in_the_catalog(rng):
    from acthash.properties.catalog import PROPERTIES

    tr, y_tr = _planted(rng, 100)
    te, y_te = _planted(rng, 50)
    logits = rng.normal(size=(100, 3))
    meta = {"n_bits", "n_train", "n_test", "n_classes", "k", "convention", "ties",
            "kmeans_n_seeds", "kmeans_mapping_original"}
    columns = {c for p in PROPERTIES for c in p.columns()}
    columns |= {f"{p.key}_std_{s}" for p in PROPERTIES if p.std_label for s in p.splits}
    for convention in ("acthash", "original"):
        rec = encoding_properties(tr, y_tr, te, y_te, convention=convention, kmeans_n_seeds=2,
                                  train_outputs=logits, test_outputs=logits[:50])
        assert set(rec) - meta <= columns, set(rec) - meta - columns
    agg = P.aggregate_properties(tr.astype(float), y_tr, te.astype(float), y_te,
                                 kmeans_n_seeds=2)
    assert {c.replace("_purity", "") for c in agg} - {"agg_n_features"} <= columns


def test_catalog_rows_and_timings_are_todays():
    assert P.property_rows(5)[6] == ("knn", "5-NN acc. (train: leave-one-out)")
    assert P.property_rows(None)[10] == ("agg_knn", "aggregate: k-NN (Euclidean)")
    assert [k for k, _ in P.timing_rows()] == ["train", "capture", "redundancy", "kmeans", "knn",
                                               "logreg"]
    from acthash.presentation.plots import QUANTITIES

    assert [q for q, _ in QUANTITIES] == ["redundancy", "kmeans", "knn", "logreg", "net_acc",
                                          "dead_units"]


def test_docs_add_a_property_example_runs():
    """docs/properties.md: a toy property in a copy of the catalog shows in properties_table."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "properties.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert len(blocks) == 2
    for block in blocks:
        scope: dict = {}
        exec(compile(block, "docs/properties.md", "exec"), scope)
    table = scope["table"]
    assert "fraction of active bits" in table.index
    assert "fraction of active bits" not in properties_table(scope["record"]).index
