"""Retrieval quality of binary codes under Hamming ranking (the hashing field's protocol).

Every query ranks the whole database by Hamming distance; an item is *relevant* when it has
the query's class. Ties in distance are broken by **database index** (the item stored first
ranks first, the rule of :mod:`acthash.ops.hamming`). Because codes of b bits have only b + 1
distances, ties are common; each measure is therefore also given as its **tie-aware expected
value**: the mean over all orders of the items inside each tie group, all equally likely
(McSherry & Najork, 2008), computed in closed form from the per-distance counts.

Measures (per query, averaged over queries):

- average precision over the whole ranking, AP = (1/R) Σ_{relevant i} P@rank(i), R the
  number of relevant database items; mAP is its mean;
- precision@k, relevant items among the first k, divided by k;
- precision within Hamming radius r (default 2): relevant / retrieved among items at
  distance ≤ r, **0 for a query that retrieves nothing** (the usual convention; the share of
  such queries is reported beside it);
- the precision-recall curve of Hamming-radius retrieval, radius 0..b: recall averaged over
  all queries, precision over the queries that retrieve at least one item (``coverage``).

Cut-off measures of the deep-hashing protocol, for any k (:func:`map_at_k`,
:func:`precision_at_k`, :func:`ranking_at_k`): AP@k = (1/Z) Σ_{i≤k} rel(i)·P@i over the first
k ranked items, normalised either by **the number of relevant items retrieved in the top k**
(``normalize="retrieved"``, Z = Σ_{i≤k} rel(i), AP@k = 0 when none is retrieved; the
deep-hashing convention of DPSH/HashNet-style ``calc_map``/``CalcTopMap`` code) or by
**min(k, R)** (``normalize="min"``, the information-retrieval convention; at k = N it is the
AP above). The tie rule is named: ``ties="stable"`` (database order, the item stored first
ranks first), ``"expected"`` (the exact expected value over uniformly random orders of the
tied items, closed form) or ``"deep-hashing"`` (what deep-hashing code does: an *unstable*
sort by distance, whose order among ties is arbitrary, reported as that expected value —
the same number as ``"expected"``).

Backends, all exact and giving the same numbers: ``"numba"`` (a compiled two-pass kernel, no
sort), ``"torch"`` (distances by a matrix product, stable sort; runs on a GPU with
``device="cuda"``) and ``"numpy"`` (stable argsort, the reference); resolved by
:func:`acthash._utils.budget.resolve_backend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from acthash._kernels.hamming import as_words
from acthash._kernels.rank import rank_stats_words
from acthash._utils.budget import resolve_backend
from acthash._utils.validate import as_packed, check_labels
from acthash.errors import InputError
from acthash.ops.hamming import hamming_distances

__all__ = ["DEFAULT_KS", "TIE_RULES", "MAP_NORMALIZATIONS", "RankingStats", "ranking_stats",
           "mean_average_precision", "expected_average_precision", "retrieval_summary",
           "ranking_at_k", "map_at_k", "precision_at_k"]

#: tie rules of the cut-off measures
TIE_RULES = ("stable", "expected", "deep-hashing")
#: normalisations of AP@k: by the relevant items retrieved in the top k, or by min(k, R)
MAP_NORMALIZATIONS = ("retrieved", "min")

#: the cut-offs of precision@k reported by default
DEFAULT_KS = (1, 10, 100, 1000)


@dataclass
class RankingStats:
    """Per-query ranking statistics of Q queries against N database items.

    ap, expected_ap : (Q,) average precision under the (distance, index) order / its
        tie-aware expectation
    ks : the cut-offs of precision@k
    precision_at_k, expected_precision_at_k : (Q, len(ks))
    hist_n, hist_r : (Q, n_bits + 1) int64: database items / relevant items at each distance
    n_relevant : (Q,) relevant database items of each query
    """

    ap: np.ndarray
    expected_ap: np.ndarray
    ks: tuple[int, ...]
    precision_at_k: np.ndarray
    expected_precision_at_k: np.ndarray
    hist_n: np.ndarray
    hist_r: np.ndarray
    n_relevant: np.ndarray

    @property
    def n_bits(self) -> int:
        return self.hist_n.shape[1] - 1

    @property
    def n_queries(self) -> int:
        return self.hist_n.shape[0]

    def precision_within_radius(self, radius: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """``(precision, retrieved)`` per query for Hamming radius ``radius`` (distance ≤
        radius): precision is 0 where nothing is retrieved, ``retrieved`` counts items."""
        if radius < 0:
            raise InputError(f"radius must be >= 0, got {radius}")
        r = min(int(radius), self.n_bits)
        got = self.hist_n[:, : r + 1].sum(axis=1)
        rel = self.hist_r[:, : r + 1].sum(axis=1)
        prec = np.divide(rel, got, out=np.zeros(len(got)), where=got > 0)
        return prec, got

    def pr_curve(self) -> pd.DataFrame:
        """Precision-recall of Hamming-radius retrieval, one row per radius 0..n_bits.

        Columns: radius, precision (mean over queries retrieving ≥ 1 item), recall (mean over
        all queries), coverage (share of queries retrieving ≥ 1 item).
        """
        cum_n = np.cumsum(self.hist_n, axis=1)
        cum_r = np.cumsum(self.hist_r, axis=1)
        has = cum_n > 0
        prec = np.divide(cum_r, cum_n, out=np.zeros(cum_n.shape), where=has)
        n_has = has.sum(axis=0)
        precision = np.divide(prec.sum(axis=0), n_has, out=np.full(n_has.shape, np.nan),
                              where=n_has > 0)
        recall = (cum_r / self.n_relevant[:, None]).mean(axis=0)
        return pd.DataFrame({"radius": np.arange(self.n_bits + 1), "precision": precision,
                             "recall": recall, "coverage": has.mean(axis=0)})

    def summary(self, radius: int = 2) -> dict:
        """One flat record: map, map_expected, p@k and p@k_expected for each k, p_r<radius>,
        r<radius>_empty (share of queries retrieving nothing within the radius)."""
        out = {"map": float(self.ap.mean()), "map_expected": float(self.expected_ap.mean())}
        for j, k in enumerate(self.ks):
            out[f"p@{k}"] = float(self.precision_at_k[:, j].mean())
            out[f"p@{k}_expected"] = float(self.expected_precision_at_k[:, j].mean())
        prec, got = self.precision_within_radius(radius)
        out[f"p_r{radius}"] = float(prec.mean())
        out[f"r{radius}_empty"] = float((got == 0).mean())
        return out


def _packed_and_labels(codes, labels, what: str):
    packed = as_packed(codes, what)
    n_bits = getattr(codes, "n_bits", packed.shape[1] * 8)
    if labels is None:
        labels = getattr(codes, "labels", None)
    if labels is None:
        raise InputError(f"{what} codes carry no labels; pass {what}_labels (one class per row)")
    labels = check_labels(np.asarray(labels).reshape(-1), len(packed), f"{what}_labels")
    if len(packed) == 0:
        raise InputError(f"the {what} set is empty; pass at least one code")
    return packed, n_bits, labels


def _check(query, query_labels, database, database_labels, ks):
    q, qb, ql = _packed_and_labels(query, query_labels, "query")
    db, dbb, dl = _packed_and_labels(database, database_labels, "database")
    if q.shape[1] != db.shape[1] or qb != dbb:
        raise InputError(f"query codes have {qb} bits, database codes {dbb}; encode both with "
                         "the same fitted encoder")
    classes, counts = np.unique(dl, return_counts=True)
    missing = np.setdiff1d(np.unique(ql), classes)
    if len(missing):
        raise InputError(
            f"query classes {missing[:10].tolist()} do not occur in the database, so their "
            "average precision is undefined; drop those queries or add examples of those "
            "classes to the database")
    n_rel = counts[np.searchsorted(classes, ql)].astype(np.int64)
    if ks is None:  # the default cut-offs that the database can fill
        ks = [k for k in DEFAULT_KS if k <= len(db)] or [len(db)]
    ks = tuple(int(k) for k in ks)
    bad = [k for k in ks if not 1 <= k <= len(db)]
    if bad:
        raise InputError(f"precision@k cut-offs {bad} must lie in 1..{len(db)} (the database "
                         "size); choose smaller k")
    return q, ql, db, dl, n_rel, ks, dbb


def ranking_stats(query, database, query_labels=None, database_labels=None, *,
                  ks: Sequence[int] | None = None, backend: str = "auto",
                  device: str = "cpu", chunk: int = 256) -> RankingStats:
    """Rank the database for every query by Hamming distance and collect per-query stats.

    query, database : NeuralCodes (labels taken from them unless given) or packed (N, B)
        uint8 arrays with ``*_labels``
    ks : precision@k cut-offs, each between 1 and the database size (default: those of
        DEFAULT_KS = 1, 10, 100, 1000 that do not exceed it)
    backend : "auto" (numba; torch when ``device`` is an accelerator), "numba", "torch" or
        "numpy"
    device : torch device for ``backend="torch"`` ("cpu", "cuda", ...)
    """
    q, ql, db, dl, n_rel, ks, n_bits = _check(query, query_labels, database, database_labels, ks)
    backend, dev = resolve_backend(backend, device, allowed=("numba", "numpy", "torch"),
                                   what="the ranking statistics")
    if backend == "numba":
        ap, hits, hist_n, hist_r = rank_stats_words(
            as_words(db), as_words(q), dl, ql, n_rel, np.asarray(ks, np.int64), n_bits)
    elif backend == "numpy":
        ap, hits, hist_n, hist_r = _rank_numpy(q, ql, db, dl, n_rel, ks, n_bits, chunk)
    else:
        ap, hits, hist_n, hist_r = _rank_torch(q, ql, db, dl, n_rel, ks, n_bits, chunk, dev)
    karr = np.asarray(ks, dtype=np.float64)
    return RankingStats(
        ap=ap, expected_ap=_expected_ap(hist_n, hist_r, n_rel), ks=ks,
        precision_at_k=hits / karr, expected_precision_at_k=_expected_hits(hist_n, hist_r, ks) / karr,
        hist_n=hist_n, hist_r=hist_r, n_relevant=n_rel)


def _finish_ranked(rel: np.ndarray, n_rel: np.ndarray, ks) -> tuple[np.ndarray, np.ndarray]:
    """AP and hits@k from (c, N) relevance in ranked order."""
    cum = np.cumsum(rel, axis=1, dtype=np.int64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    ap = (np.where(rel, cum / ranks, 0.0)).sum(axis=1) / n_rel
    hits = cum[:, [k - 1 for k in ks]]
    return ap, hits


def _rank_numpy(q, ql, db, dl, n_rel, ks, n_bits, chunk):
    levels = n_bits + 1
    ap = np.empty(len(q))
    hits = np.empty((len(q), len(ks)), np.int64)
    hist_n = np.empty((len(q), levels), np.int64)
    hist_r = np.empty((len(q), levels), np.int64)
    for lo in range(0, len(q), chunk):
        sl = slice(lo, lo + chunk)
        d = hamming_distances(q[sl], db, chunk=32)
        rel_all = dl[None, :] == ql[sl, None]
        order = np.argsort(d, axis=1, kind="stable")
        rel = np.take_along_axis(rel_all, order, 1)
        ap[sl], hits[sl] = _finish_ranked(rel, n_rel[sl], ks)
        rows = np.arange(d.shape[0])[:, None] * levels
        hist_n[sl] = np.bincount((rows + d).ravel(), minlength=d.shape[0] * levels).reshape(-1, levels)
        hist_r[sl] = np.bincount((rows + d)[rel_all], minlength=d.shape[0] * levels).reshape(-1, levels)
    return ap, hits, hist_n, hist_r


def _rank_torch(q, ql, db, dl, n_rel, ks, n_bits, chunk, dev):
    import torch

    levels = n_bits + 1

    def bits(p):
        return torch.from_numpy(np.unpackbits(p, axis=1)).to(dev, torch.float32)

    dbb = bits(db)
    db_pop = dbb.sum(1)
    dlt = torch.from_numpy(dl).to(dev)
    ap = np.empty(len(q))
    hits = np.empty((len(q), len(ks)), np.int64)
    hist_n = np.empty((len(q), levels), np.int64)
    hist_r = np.empty((len(q), levels), np.int64)
    for lo in range(0, len(q), chunk):
        sl = slice(lo, lo + chunk)
        qb = bits(q[sl])
        # |a xor b| = |a| + |b| - 2 a.b, exact in float32 below 2**24 bits
        d = (qb.sum(1, keepdim=True) + db_pop[None, :] - 2.0 * (qb @ dbb.T)).round().long()
        qlt = torch.from_numpy(ql[sl]).to(dev)
        rel_all = dlt[None, :] == qlt[:, None]
        order = torch.sort(d, dim=1, stable=True).indices
        rel = torch.gather(rel_all, 1, order)
        cum = torch.cumsum(rel.long(), dim=1)
        ranks = torch.arange(1, d.shape[1] + 1, device=dev, dtype=torch.float64)
        ap[sl] = ((cum / ranks) * rel).sum(1).cpu().numpy() / n_rel[sl]
        hits[sl] = cum[:, [k - 1 for k in ks]].cpu().numpy()
        rows = torch.arange(d.shape[0], device=dev)[:, None] * levels
        flat = (rows + d).reshape(-1)
        size = d.shape[0] * levels
        hist_n[sl] = torch.bincount(flat, minlength=size).reshape(-1, levels).cpu().numpy()
        hist_r[sl] = torch.bincount(flat, weights=rel_all.reshape(-1).double(),
                                    minlength=size).reshape(-1, levels).round().long().cpu().numpy()
    return ap, hits, hist_n, hist_r


def _harmonic(n: int) -> np.ndarray:
    """H[0..n], H[m] = Σ_{j≤m} 1/j."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _expected_ap(hist_n: np.ndarray, hist_r: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """Tie-aware expected AP from per-distance counts.

    A tie group of n items, r relevant, follows C items of which Rb are relevant. A relevant
    item at position j of the group has precision (Rb + 1 + #relevant before it in the
    group) / (C + j); over uniformly random orders, position j holds a relevant item with
    probability r/n and then the j - 1 items before it hold (j - 1)(r - 1)/(n - 1) relevant
    ones on average. Summing over j: (r/n) [n B + (A - B - B C)(H(C + n) - H(C))] with
    A = Rb + 1, B = (r - 1)/(n - 1) (0 when n = 1), H the harmonic numbers.
    """
    n = hist_n.astype(np.float64)
    r = hist_r.astype(np.float64)
    c = np.cumsum(hist_n, axis=1) - hist_n
    rb = np.cumsum(hist_r, axis=1) - hist_r
    h = _harmonic(int(hist_n[0].sum()))
    b = np.divide(r - 1.0, n - 1.0, out=np.zeros_like(n), where=n > 1)
    a = rb + 1.0
    dh = h[c + hist_n] - h[c]
    group = np.divide(r, n, out=np.zeros_like(n), where=n > 0) * (n * b + (a - b - b * c) * dh)
    group[hist_r == 0] = 0.0
    return group.sum(axis=1) / n_rel


def _expected_hits(hist_n: np.ndarray, hist_r: np.ndarray, ks) -> np.ndarray:
    """(Q, K) expected relevant items among the first k under random order within ties."""
    cum_n = np.cumsum(hist_n, axis=1)
    cum_r = np.cumsum(hist_r, axis=1)
    rows = np.arange(len(hist_n))
    out = np.empty((len(hist_n), len(ks)))
    for j, k in enumerate(ks):
        lev = (cum_n < k).sum(axis=1)  # the level holding rank k
        nl, rl = hist_n[rows, lev], hist_r[rows, lev]
        before, rel_before = cum_n[rows, lev] - nl, cum_r[rows, lev] - rl
        out[:, j] = rel_before + (k - before) * rl / nl
    return out


def mean_average_precision(query, database, query_labels=None, database_labels=None, *,
                           backend: str = "auto") -> float:
    """mAP of Hamming ranking, ties broken by database index (see :func:`ranking_stats`)."""
    return float(ranking_stats(query, database, query_labels, database_labels, ks=(1,),
                               backend=backend).ap.mean())


def expected_average_precision(query, database, query_labels=None, database_labels=None, *,
                               backend: str = "auto") -> float:
    """Tie-aware expected mAP: the mean AP over uniformly random orders within ties."""
    return float(ranking_stats(query, database, query_labels, database_labels, ks=(1,),
                               backend=backend).expected_ap.mean())


def retrieval_summary(query, database, query_labels=None, database_labels=None, *,
                      ks: Sequence[int] | None = None, radius: int = 2,
                      backend: str = "auto") -> dict:
    """The flat record of :meth:`RankingStats.summary` for one query/database pair."""
    return ranking_stats(query, database, query_labels, database_labels, ks=ks,
                         backend=backend).summary(radius)



# ---------------------------------------------------------------------------- cut-off measures
def _group_sum(n, r, c, rb, m, h):
    """Expected Σ over the first m positions of a tie group (n items, r relevant, after c
    items of which rb relevant) of rel(j)·P@(c + j): (r/n)[m B + (A − B − B c)(H(c + m) −
    H(c))], A = rb + 1, B = (r − 1)/(n − 1) (the derivation of :func:`_expected_ap`)."""
    n = np.asarray(n, np.float64)
    r = np.asarray(r, np.float64)
    b = np.divide(r - 1.0, n - 1.0, out=np.zeros_like(n), where=n > 1)
    a = rb + 1.0
    dh = h[(c + m).astype(np.int64)] - h[np.asarray(c, np.int64)]
    out = np.divide(r, n, out=np.zeros_like(n), where=n > 0) * (m * b + (a - b - b * c) * dh)
    return np.where(r > 0, out, 0.0)


def _expected_at_k(hist_n, hist_r, n_rel, k: int, normalize: str):
    """(AP@k, hits@k) per query, expected over random orders within ties."""
    from scipy.stats import hypergeom

    cum_n = np.cumsum(hist_n, axis=1)
    cum_r = np.cumsum(hist_r, axis=1)
    c = cum_n - hist_n
    rb = cum_r - hist_r
    h = _harmonic(int(cum_n[0, -1]))
    rows = np.arange(len(hist_n))
    lev = (cum_n < k).sum(axis=1)  # the level holding rank k
    full = np.arange(hist_n.shape[1])[None, :] < lev[:, None]
    whole = np.where(full, _group_sum(hist_n, hist_r, c, rb, hist_n, h), 0.0).sum(axis=1)
    nl, rl, cl, rbl = hist_n[rows, lev], hist_r[rows, lev], c[rows, lev], rb[rows, lev]
    m = k - cl  # positions of the boundary group inside the top k
    hits = rbl + m * rl / nl
    if normalize == "min":
        top = whole + _group_sum(nl, rl, cl, rbl, m, h)
        return top / np.minimum(k, n_rel), hits
    ap = np.empty(len(hist_n))
    for q in rows:  # Z = rb + X, X ~ hypergeometric(nl, rl, m) relevant in the boundary part
        x = np.arange(max(0, m[q] - (nl[q] - rl[q])), min(m[q], rl[q]) + 1)
        p = hypergeom.pmf(x, nl[q], rl[q], m[q])
        inner = _group_sum(np.full(len(x), m[q]), x, cl[q], rbl[q], m[q], h)
        z = rbl[q] + x
        ap[q] = np.sum(np.divide(p * (whole[q] + inner), z, out=np.zeros(len(x)), where=z > 0))
    return ap, hits


def ranking_at_k(query, database, query_labels=None, database_labels=None, *, k: int,
                 ties: str = "stable", normalize: str = "retrieved",
                 chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(ap_at_k, precision_at_k)``, both (Q,): the cut-off measures of Hamming ranking for
    one k with a named tie rule and AP@k normalisation (see the module docstring)."""
    if ties not in TIE_RULES:
        raise InputError(f"unknown tie rule {ties!r}; choose {', '.join(TIE_RULES)}")
    if normalize not in MAP_NORMALIZATIONS:
        raise InputError(f"unknown normalisation {normalize!r}; choose "
                         f"{', '.join(MAP_NORMALIZATIONS)}")
    q, ql, db, dl, n_rel, (k,), n_bits = _check(query, query_labels, database,
                                                 database_labels, (k,))
    levels = n_bits + 1
    ap = np.empty(len(q))
    hits = np.empty(len(q))
    for lo in range(0, len(q), chunk):
        sl = slice(lo, lo + chunk)
        d = hamming_distances(q[sl], db, chunk=32)
        rel_all = dl[None, :] == ql[sl, None]
        if ties == "stable":
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            rel = np.take_along_axis(rel_all, order, 1)
            cum = np.cumsum(rel, axis=1)
            top = np.where(rel, cum / np.arange(1, k + 1), 0.0).sum(axis=1)
            z = cum[:, -1] if normalize == "retrieved" else np.minimum(k, n_rel[sl])
            ap[sl] = np.divide(top, z, out=np.zeros(len(top)), where=z > 0)
            hits[sl] = cum[:, -1]
            continue
        rows = np.arange(d.shape[0])[:, None] * levels
        size = d.shape[0] * levels
        hist_n = np.bincount((rows + d).ravel(), minlength=size).reshape(-1, levels)
        hist_r = np.bincount((rows + d)[rel_all], minlength=size).reshape(-1, levels)
        ap[sl], hits[sl] = _expected_at_k(hist_n, hist_r, n_rel[sl], k, normalize)
    return ap, hits / k


def map_at_k(query, database, query_labels=None, database_labels=None, *, k: int,
             ties: str = "stable", normalize: str = "retrieved") -> float:
    """mAP@k: the mean over queries of AP@k (:func:`ranking_at_k`)."""
    return float(ranking_at_k(query, database, query_labels, database_labels, k=k, ties=ties,
                              normalize=normalize)[0].mean())


def precision_at_k(query, database, query_labels=None, database_labels=None, *, k: int,
                   ties: str = "stable") -> float:
    """Mean precision@k under the tie rule ``ties`` (:func:`ranking_at_k`)."""
    return float(ranking_at_k(query, database, query_labels, database_labels, k=k,
                              ties=ties)[1].mean())
