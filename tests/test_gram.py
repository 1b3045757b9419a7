"""Gram blocks by class, shared by the leave-one-out k-NN and the per-pair logistic regression."""

import tempfile

import numpy as np
import pytest

import acthash.properties as properties
from acthash import NeuralCodes
from acthash.errors import InputError
from acthash.ops.gram import ClassGram, loo_share_counts
from acthash.ops.hamming import share_counts_loo


def clustered(rng, n=300, d=160, k=3, flip=0.3):
    protos = rng.random((k, d)) < 0.5
    y = rng.integers(k, size=n)
    bits = (protos[y] ^ (rng.random((n, d)) < flip)).astype(np.uint8)
    bits[5] = bits[7]  # exact duplicates: ties at the k-th distance
    bits[9] = bits[7]
    return bits, y


@pytest.mark.parametrize("budget", [None, "40KB"])  # in memory / spilled to a folder
def test_blocks_are_the_class_inner_products(rng, tmp_path, monkeypatch, budget):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bits, y = clustered(rng)
    x = bits.astype(np.int64)
    with ClassGram(NeuralCodes.from_bits(bits), y, memory_budget=budget) as gram:
        assert gram.in_memory == (budget is None)
        for a in range(3):
            for b in range(a, 3):
                m, base = gram.block(a, b)
                assert m.dtype == np.uint16
                ra, rb = np.flatnonzero(y == a), np.flatnonzero(y == b)
                np.testing.assert_array_equal(m + base[:, None], x[ra] @ x[rb].T)
        with pytest.raises(InputError, match="0 <= a <= b"):
            gram.block(2, 1)
    assert list(tmp_path.iterdir()) == []  # the spill folder is gone


@pytest.mark.parametrize("budget", [None, "40KB"])
def test_loo_share_counts_from_blocks_equal_the_direct_pass(rng, budget):
    bits, y = clustered(rng)
    codes = NeuralCodes.from_bits(bits)
    for k in (1, 9):
        expect = share_counts_loo(codes, y, k, 3)
        with ClassGram(codes, y, memory_budget=budget) as gram:
            got = loo_share_counts(gram, k)
        np.testing.assert_array_equal(got[0], expect[0])
        np.testing.assert_array_equal(got[1], expect[1])


def test_encoding_properties_share_one_gram_and_give_the_same_record(rng, monkeypatch):
    bits, y = clustered(rng, n=400)
    test_bits, yt = clustered(np.random.default_rng(1), n=200)
    train, test = NeuralCodes.from_bits(bits, labels=y), NeuralCodes.from_bits(test_bits,
                                                                                labels=yt)
    made = []
    real = properties.record._shared_gram
    monkeypatch.setattr(properties.record, "_shared_gram",
                        lambda *a: made.append(real(*a)) or made[-1])
    shared = properties.encoding_properties(train, None, test, None, backend="numba",
                                            kmeans_n_seeds=1)
    assert isinstance(made[0], ClassGram)  # 400 codes of 20 bytes: the per-pair solver
    monkeypatch.setattr(properties.record, "_shared_gram", lambda *a: None)
    separate = properties.encoding_properties(train, None, test, None, backend="numba",
                                              kmeans_n_seeds=1)
    assert shared.keys() == separate.keys()
    for key, value in shared.items():  # NaN (one K-Means seed: no std) equals NaN here
        assert value == separate[key] or value != value and separate[key] != separate[key], key
    assert not np.isnan(shared["knn_train"]) and not np.isnan(shared["logreg_train"])


def test_a_gram_of_other_labels_is_refused(rng):
    bits, y = clustered(rng)
    codes = NeuralCodes.from_bits(bits)
    with ClassGram(codes, (y + 1) % 3) as gram:
        with pytest.raises(InputError, match="other codes or labels"):
            properties.knn_loo_accuracy(codes, y, gram=gram)
    with pytest.raises(InputError, match="shape"):
        ClassGram(codes, y[:10])
