"""mAP@k and precision@k: the tie rules against brute force over every order of the tied
items, the normalisations by hand, and k = N against full-ranking AP (scikit-learn)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from acthash.errors import InputError
from acthash.retrieval import map_at_k, precision_at_k, ranking_at_k, ranking_stats


def _ap_at_k(rel, k, normalize, n_rel):
    rel = np.asarray(rel[:k], float)
    cum = np.cumsum(rel)
    top = float((rel * cum / np.arange(1, len(rel) + 1)).sum())
    z = cum[-1] if normalize == "retrieved" else min(k, n_rel)
    return top / z if z else 0.0


def _brute(d, rel, k, normalize):
    """Mean AP@k and P@k over every order of the items inside each distance tie group."""
    groups = [np.flatnonzero(d == v) for v in np.unique(d)]
    aps, ps = [], []
    for perms in itertools.product(*[itertools.permutations(g) for g in groups]):
        order = np.concatenate([np.asarray(p, int) for p in perms])
        aps.append(_ap_at_k(rel[order], k, normalize, int(rel.sum())))
        ps.append(rel[order][:k].mean())
    return np.mean(aps), np.mean(ps)


def _case(seed, n=7, n_bits=3):
    rng = np.random.default_rng(seed)
    db = rng.integers(0, 2, (n, n_bits))
    q = rng.integers(0, 2, (2, n_bits))
    return (np.packbits(q, axis=1), np.packbits(db, axis=1), rng.integers(0, 2, 2),
            rng.integers(0, 2, n), q, db)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalize", ["retrieved", "min"])
def test_expected_rule_equals_brute_force_over_tie_orders(seed, normalize):
    qp, dbp, ql, dl, q, db = _case(seed)
    if not set(ql) <= set(dl):
        dl[:2] = ql
    for k in (1, 2, 4, 7):
        ap, p = ranking_at_k(qp, dbp, ql, dl, k=k, ties="expected", normalize=normalize)
        ap_dh, p_dh = ranking_at_k(qp, dbp, ql, dl, k=k, ties="deep-hashing",
                                   normalize=normalize)
        for i in range(len(q)):
            d = np.abs(db - q[i]).sum(1)
            want_ap, want_p = _brute(d, (dl == ql[i]).astype(int), k, normalize)
            assert ap[i] == pytest.approx(want_ap) and p[i] == pytest.approx(want_p)
        assert np.allclose(ap, ap_dh) and np.allclose(p, p_dh)


def test_stable_rule_by_hand():
    # one query 000; database distances 1, 0, 1, 2 (labels 1, 0, 0, 0); query label 0
    db = np.packbits(np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0]]), axis=1)
    q = np.packbits(np.zeros((1, 3), int), axis=1)
    dl, ql = np.array([1, 0, 0, 0]), np.array([0])
    # stable order: item 1 (rel), item 0 (not), item 2 (rel), item 3 (rel)
    ap, p = ranking_at_k(q, db, ql, dl, k=2)
    assert ap.tolist() == [1.0] and p.tolist() == [0.5]
    ap3, _ = ranking_at_k(q, db, ql, dl, k=3)  # (1 + 2/3) / 2 retrieved
    assert ap3 == pytest.approx([(1 + 2 / 3) / 2])
    ap3m, _ = ranking_at_k(q, db, ql, dl, k=3, normalize="min")  # / min(3, 3)
    assert ap3m == pytest.approx([(1 + 2 / 3) / 3])
    assert map_at_k(q, db, ql, dl, k=1) == 1.0 and precision_at_k(q, db, ql, dl, k=4) == 0.75
    # expected: items 0 and 2 are tied at distance 1, so rank 2 is relevant half the time
    assert precision_at_k(q, db, ql, dl, k=2, ties="expected") == pytest.approx(0.75)
    with pytest.raises(InputError, match="tie rule"):
        ranking_at_k(q, db, ql, dl, k=1, ties="random")
    with pytest.raises(InputError, match="1..4"):
        ranking_at_k(q, db, ql, dl, k=5)


def test_k_equal_n_with_min_normalisation_is_full_ap():
    rng = np.random.default_rng(5)
    db_bits = rng.integers(0, 2, (40, 16))
    q_bits = rng.integers(0, 2, (6, 16))
    dl, ql = rng.integers(0, 3, 40), rng.integers(0, 3, 6)
    q, db = np.packbits(q_bits, axis=1), np.packbits(db_bits, axis=1)
    stats = ranking_stats(q, db, ql, dl, ks=(40,), backend="numpy")
    ap, _ = ranking_at_k(q, db, ql, dl, k=40, normalize="min")
    ap_e, _ = ranking_at_k(q, db, ql, dl, k=40, ties="expected", normalize="min")
    assert np.allclose(ap, stats.ap) and np.allclose(ap_e, stats.expected_ap)
    # without ties in the ranking, the full AP is scikit-learn's average precision
    d = np.abs(db_bits[None] - q_bits[:, None]).sum(2) + np.arange(40)[None] / 100
    for i in range(6):
        assert stats.ap[i] == pytest.approx(average_precision_score(dl == ql[i], -d[i]))
