"""Encoding properties against independent references (scikit-learn, brute force)."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from acthash import NeuralCodes, encoding_properties, properties_table
from acthash import properties as P
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
    monkeypatch.setattr(P, "_row_hashes", lambda packed: np.zeros(len(packed), dtype=np.uint64))
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
    monkeypatch.setattr(P, "_HASH_BLOCK_BYTES", 3 * 6)  # 3 rows of 6 bytes a block
    assert P.count_distinct(NeuralCodes.from_bits(bits)) == expected
    assert P.redundancy_ratio(NeuralCodes.from_bits(bits)) == (400 - expected) / 400
