"""acthash.binary against independent implementations of both conventions (acthash's and the
authors' formulas), written here from the definitions with numpy / scipy / scikit-learn, on
synthetic clusters with known answers: collapsed, partially collapsed, unimodal, unbalanced,
rank-deficient between-class scatter, and bad input."""

from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from acthash import binary
from acthash.errors import InputError

# --------------------------------------------------------------------- synthetic clusters


def exact_cloud(means, sigma, copies=1):
    """Points around each mean whose class covariance (divisor n) is exactly σ²·I and whose
    class mean is exactly the given mean: the 2d points μ ± σ√d e_j, repeated ``copies``
    times. ``sigma`` may be one value per class. Returns (z, labels)."""
    means = np.asarray(means, float)
    c, d = means.shape
    sig = np.broadcast_to(np.asarray(sigma, float), (c,))
    pattern = np.concatenate([np.eye(d), -np.eye(d)]) * np.sqrt(d)
    z, y = [], []
    for k in range(c):
        pts = np.tile(means[k] + sig[k] * pattern, (copies[k] if np.ndim(copies) else copies, 1))
        z.append(pts)
        y.append(np.full(len(pts), k))
    return np.concatenate(z), np.concatenate(y)


def ref_nc1(z, groups, divisor):
    """Tr(Σ_W Σ_B⁺)/C from the definitions. divisor="N": Σ_W = Σ_c (n_c/N)·cov_c (bias),
    the pooled within-class covariance; divisor="n-1": Σ_W = mean_c cov_c (ddof 1)."""
    classes = np.unique(groups)
    mu_g = z.mean(0)
    covs, weights, outer = [], [], []
    for k in classes:
        zk = z[groups == k]
        if divisor == "N":
            covs.append(np.cov(zk.T, bias=True).reshape(z.shape[1], -1))
        else:
            covs.append(np.cov(zk.T, ddof=1).reshape(z.shape[1], -1))
        weights.append(len(zk) / len(z) if divisor == "N" else 1 / len(classes))
        dm = zk.mean(0) - mu_g
        outer.append(np.outer(dm, dm))
    sw = sum(w * s for w, s in zip(weights, covs, strict=True))
    sb = np.mean(outer, axis=0)
    import scipy.linalg

    return float(np.trace(sw @ scipy.linalg.pinv(sb)) / len(classes)), sw


# --------------------------------------------------------------------- neural collapse


def test_nc1_known_answer_on_isotropic_clusters_both_conventions():
    # C classes at r·e_c in d = C dims, within-class covariance σ²I: Σ_B = r²/C (I − 11ᵀ/C),
    # so NC1 = σ²·(C−1)/r² (pooled); the authors' n−1 covariance gives n/(n−1) times that
    c, r, sigma = 4, 2.0, 0.3
    z, y = exact_cloud(r * np.eye(c), sigma)
    n = 2 * c  # points per class
    a = binary.neural_collapse(z, y)
    b = binary.neural_collapse(z, y, y, convention="authors")
    assert a["nc1"] == pytest.approx(sigma**2 * (c - 1) / r**2, rel=1e-12)
    assert b["nc1"] == pytest.approx(sigma**2 * (c - 1) / r**2 * n / (n - 1), rel=1e-12)
    assert a["nc1_per_dim"] == pytest.approx(a["nc1"] / c)
    assert a["sigma_w"] == pytest.approx(sigma**2 / c, rel=1e-12)  # mean entry of σ²I
    # the means form a simplex: equal norms, equal angles, equidistant
    for key in ("equinorm", "equiangularity", "max_angle", "relative_norm_std"):
        assert a[key] == pytest.approx(0.0, abs=1e-12), key


def test_nc1_is_zero_when_fully_collapsed_and_scales_with_spread(rng):
    means = rng.normal(size=(5, 8))
    y = np.repeat(np.arange(5), 20)
    for conv in ("acthash", "authors"):
        assert binary.neural_collapse(means[y], y, y, convention=conv)["nc1"] == pytest.approx(
            0.0, abs=1e-12)
    noise = rng.normal(size=(100, 8))
    small = binary.neural_collapse(means[y] + 0.1 * noise, y)["nc1"]
    large = binary.neural_collapse(means[y] + 0.2 * noise, y)["nc1"]
    assert small > 0 and large > small
    # partially collapsed clusters: the value agrees with the reference implementation
    assert small == pytest.approx(ref_nc1(means[y] + 0.1 * noise, y, "N")[0], rel=1e-10)


def test_nc1_rank_deficient_between_class_scatter():
    # two classes at ±r e_1 in d = 5: Σ_B = r² e_1e_1ᵀ has rank 1; NC1 = σ²/(2r²)
    r, sigma = 1.5, 0.4
    means = np.zeros((2, 5))
    means[0, 0], means[1, 0] = r, -r
    z, y = exact_cloud(means, sigma)
    assert binary.neural_collapse(z, y)["nc1"] == pytest.approx(sigma**2 / (2 * r**2),
                                                               rel=1e-12)


def test_nc1_balanced_error_free_conventions_differ_by_n_over_n_minus_1(rng):
    n = 12
    y = np.repeat(np.arange(3), n)
    z = rng.normal(size=(3, 4))[y] + 0.5 * rng.normal(size=(3 * n, 4))
    a = binary.neural_collapse(z, y)
    b = binary.neural_collapse(z, y, y, convention="authors")
    assert b["nc1"] / a["nc1"] == pytest.approx(n / (n - 1), rel=1e-10)
    assert b["sigma_w"] / a["sigma_w"] == pytest.approx(n / (n - 1), rel=1e-10)
    # the mean-based metrics do not depend on the covariance divisor
    assert b["equinorm"] == pytest.approx(a["equinorm"], rel=1e-12)


def test_nc1_unbalanced_classes_and_errors_against_reference(rng):
    # class 0: 40 points with σ = 0.2; class 1: 4 points with σ = 1 (exact designs in d = 2)
    z, y = exact_cloud([[3.0, 0.0], [0.0, 3.0]], [0.2, 1.0], copies=[10, 1])
    a = binary.neural_collapse(z, y)
    b = binary.neural_collapse(z, y, y, convention="authors")
    # hand-computed Σ_W: pooled (40·0.04 + 4·1)/44 I; authors (0.04·40/39 + 1·4/3)/2 I
    sw_a = (40 * 0.04 + 4 * 1.0) / 44
    sw_b = (0.04 * 40 / 39 + 4 / 3) / 2
    assert a["sigma_w"] == pytest.approx(sw_a / 2, rel=1e-12)
    assert b["sigma_w"] == pytest.approx(sw_b / 2, rel=1e-12)
    assert a["nc1"] == pytest.approx(ref_nc1(z, y, "N")[0], rel=1e-10)
    assert b["nc1"] == pytest.approx(ref_nc1(z, y, "n-1")[0], rel=1e-10)
    assert b["nc1"] / a["nc1"] > 1.3  # far more than n/(n−1)
    # with errors the authors group by the prediction
    pred = y.copy()
    wrong = rng.choice(len(y), 8, replace=False)
    pred[wrong] = 1 - pred[wrong]
    got = binary.neural_collapse(z, y, pred, convention="authors")
    assert got["nc1"] == pytest.approx(ref_nc1(z, pred, "n-1")[0], rel=1e-10)
    assert binary.neural_collapse(z, y, pred)["nc1"] == pytest.approx(a["nc1"])  # unaffected


def test_relative_norm_std_against_reference(rng):
    means = rng.normal(size=(4, 3)) * np.array([1.0, 2.0, 3.0])
    z, y = exact_cloud(means, 0.1)
    mu = np.stack([z[y == k].mean(0) for k in range(4)])
    gaps = [np.linalg.norm(mu[i] - mu[j]) for i in range(4) for j in range(i + 1, 4)]
    got = binary.neural_collapse(z, y)
    assert got["relative_norm_std"] == pytest.approx(np.std(gaps) / np.mean(gaps), rel=1e-12)


def test_nc1_bad_input():
    z, y = exact_cloud(np.eye(3) * 2, 0.3)
    with pytest.raises(InputError, match="predicted"):
        binary.neural_collapse(z, y, convention="authors")  # predictions required
    with pytest.raises(InputError, match="predicted classes \\[7\\]"):
        binary.neural_collapse(z, y, np.where(y == 2, 7, y), convention="authors")
    with pytest.raises(InputError, match="convention"):
        binary.neural_collapse(z, y, convention="paper")
    # one predicted example in a class: the n−1 covariance is undefined -> documented NaN
    pred = y.copy()
    pred[y == 2] = 0
    pred[np.flatnonzero(y == 2)[0]] = 2
    with pytest.warns(RuntimeWarning, match="single example"):
        lone = binary.neural_collapse(z, y, pred, convention="authors")
    assert np.isnan(lone["nc1"]) and np.isnan(lone["sigma_w"])
    assert np.isfinite(lone["equinorm"])
    # the pooled convention is defined for a one-example class (zero scatter)
    z1 = np.vstack([z, [[5.0, 5.0, 5.0]]])
    y1 = np.append(y, 3)
    assert np.isfinite(binary.neural_collapse(z1, y1)["nc1"])
    # a constant latent dimension is a zero direction of Σ_B, ignored by the pseudo-inverse
    zc = np.hstack([z, np.ones((len(z), 1))])
    assert binary.neural_collapse(zc, y)["nc1"] == pytest.approx(
        binary.neural_collapse(z, y)["nc1"], rel=1e-10)
    zn = z.copy()
    zn[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        binary.neural_collapse(zn, y)


# --------------------------------------------------------------------- bimodality


def ref_peaks(col, reg, seed):
    """The separation, σ and score of a 2-component mixture on the standardized column."""
    u = ((col - col.mean()) / col.std()).reshape(-1, 1)
    gm = GaussianMixture(n_components=2, reg_covar=reg, random_state=seed).fit(u)
    sd = np.sqrt(gm.covariances_.ravel())
    return abs(gm.means_[0, 0] - gm.means_[1, 0]) / sd.mean(), sd.mean(), gm.score(u)


def test_bimodality_narrow_modes_floor_per_convention(rng):
    # modes at ±1 with σ = 0.01: separation 2/√(σ² + f·var): ≈ 60 (f = 1e-3), ≈ 199 (1e-6)
    col = np.concatenate([rng.normal(-1, 0.01, 1000), rng.normal(1, 0.01, 1000)])
    z = col[:, None]
    sig2 = np.mean([col[:1000].var(), col[1000:].var()])
    for conv, f in (("acthash", 1e-3), ("authors", 1e-6)):
        expect = 2 / np.sqrt(sig2 + f * col.var())
        assert binary.bimodality(z, convention=conv)[0] == pytest.approx(expect, rel=0.01)
    assert binary.bimodality(z)[0] < 63.3  # the acthash floor caps it at 2/√1e-3
    assert binary.bimodality(z, convention="authors")[0] > 190
    # the same points through scikit-learn directly (reference): equal to 1e-9
    for conv, f in (("acthash", 1e-3), ("authors", 1e-6)):
        ref = ref_peaks(col, f, seed=0)
        got = binary.binarity_metrics(z, convention=conv, max_samples=None)
        assert got["peaks_distance_mean"] == pytest.approx(ref[0], rel=1e-9)
        assert got["gmm_std"] == pytest.approx(ref[1], rel=1e-9)
        assert got["gmm_score"] == pytest.approx(ref[2], rel=1e-9)
    # an explicit floor overrides the convention
    assert binary.bimodality(z, var_floor=1e-6)[0] == pytest.approx(
        binary.bimodality(z, convention="authors")[0])


def test_binarity_metrics_over_dimensions(rng):
    two = np.concatenate([rng.normal(-3, 0.5, 400), rng.normal(3, 0.5, 400)])
    wide = np.concatenate([rng.normal(-2, 1.0, 400), rng.normal(2, 1.0, 400)])
    one = rng.normal(0, 1, 800)  # unimodal
    z = np.stack([two, wide, one, np.full(800, 4.0)], axis=1)  # last one: constant
    got = binary.binarity_metrics(z, convention="authors")
    refs = [ref_peaks(z[:, j], 1e-6, 0) for j in range(3)]
    seps = np.array([r[0] for r in refs] + [0.0])
    assert got["peaks_distance_mean"] == pytest.approx(seps.mean(), rel=1e-9)
    assert got["peaks_distance_std"] == pytest.approx(seps.std(), rel=1e-9)
    assert got["peaks_distance_min"] == 0.0
    # σ and score exclude the constant dimension (documented)
    assert got["gmm_std"] == pytest.approx(np.mean([r[1] for r in refs]), rel=1e-9)
    assert got["gmm_score"] == pytest.approx(np.mean([r[2] for r in refs]), rel=1e-9)
    sep = binary.bimodality(z)
    assert sep[0] == pytest.approx(6 / 0.5, rel=0.1) and sep[1] == pytest.approx(4, rel=0.15)
    assert sep[2] < 2.5 and sep[3] == 0.0
    dead = binary.binarity_metrics(np.ones((50, 2)))
    assert dead["peaks_distance_mean"] == 0.0 and np.isnan(dead["gmm_std"])


def test_bimodality_bad_input():
    with pytest.raises(InputError, match="NaN"):
        binary.bimodality(np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(InputError, match="at least 2"):
        binary.bimodality(np.zeros((1, 3)))
    with pytest.raises(InputError, match="convention"):
        binary.bimodality(np.zeros((5, 1)), convention="x")


# --------------------------------------------------------------------- same-encoding


def ref_same_encoding(z, pred):
    codes = [tuple(row) for row in (z > 0).astype(int)]
    per, modal = {}, 0
    for k in sorted(set(pred.tolist())):
        cnt = Counter(c for c, p in zip(codes, pred, strict=True) if p == k)
        top = max(cnt.values())
        per[k] = top / sum(cnt.values())
        modal += top
    return float(np.mean(list(per.values()))), modal / len(z)


def test_same_encoding_weighting_known_answer():
    # class 0: 9 of 10 on its modal code; class 1: 1 of 2 -> 0.70 (per class) vs 10/12
    z = np.array([[1.0, -1.0]] * 9 + [[-1.0, -1.0]] + [[1.0, 1.0], [-1.0, 1.0]])
    pred = np.array([0] * 10 + [1] * 2)
    assert binary.same_encoding_fraction(z, pred) == pytest.approx(0.70)
    assert binary.same_encoding_fraction(z, pred, convention="authors") == pytest.approx(10 / 12)


def test_same_encoding_against_reference(rng):
    vertices = rng.choice([-1.0, 1.0], size=(5, 3))
    pred = rng.choice(5, 300, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    z = vertices[pred] * rng.uniform(0.2, 1, (300, 3))
    flip = rng.random((300, 3)) < 0.1
    z[flip] *= -1
    per, pooled = ref_same_encoding(z, pred)
    assert binary.same_encoding_fraction(z, pred) == pytest.approx(per, rel=1e-12)
    assert binary.same_encoding_fraction(z, pred, convention="authors") == pytest.approx(
        pooled, rel=1e-12)
    with pytest.raises(InputError, match="do not occur among the labels"):
        binary.same_encoding_fraction(z, pred, labels=np.minimum(pred, 3),
                                      convention="authors")
    z[0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        binary.same_encoding_fraction(z, pred)


# --------------------------------------------------------------------- reliability


def ref_riemann(d_correct, d_mis):
    """The authors' sum from its definition: Σ over x = 0, 0.01, ..., 1 of
    0.01 · P(d_correct < x-quantile of d_mis)."""
    total = 0.0
    for k in range(101):
        q = np.quantile(d_mis, k / 100)
        total += 0.01 * np.mean(d_correct < q)
    return total


def ref_authors_reliability(z_tr, y_tr, p_tr, z_te, y_te, p_te):
    mu, sd = z_tr.mean(0), z_tr.std(0)
    u_tr, u_te = (z_tr - mu) / sd, (z_te - mu) / sd
    correct, wrong = [], []
    for k in np.unique(y_tr):
        fit = (p_tr == k) & (y_tr == p_tr)
        if fit.sum() <= 2:
            continue
        m = u_tr[fit].mean(0)
        cov = np.cov(u_tr[fit].T, bias=True) + 1e-6 * np.eye(z_tr.shape[1])
        vi = np.linalg.inv(cov)
        for sel, out in (((p_te == k) & (y_te == p_te), correct),
                         ((p_te == k) & (y_te != p_te), wrong)):
            if sel.sum() > 2:
                out.extend(cdist(u_te[sel], m[None], "mahalanobis", VI=vi).ravel())
    return np.array(correct), np.array(wrong)


def _classified_clusters(rng, n=600, d=3, c=4, noise=1.0, flip=0.15):
    means = rng.normal(size=(c, d)) * 3
    y = rng.integers(0, c, n)
    z = means[y] + noise * rng.normal(size=(n, d))
    pred = y.copy()
    wrong = rng.random(n) < flip
    pred[wrong] = rng.integers(0, c, wrong.sum())
    return z, y, pred


def test_riemann_auroc_known_answers(rng):
    # perfectly separated: every one of the 101 terms is 1 -> 1.01, the exact AUROC is 1
    lab = np.r_[np.ones(50), np.zeros(30)]
    s = np.r_[rng.uniform(2, 3, 50), rng.uniform(0, 1, 30)]
    assert binary.riemann_auroc(lab, s) == pytest.approx(1.01)
    assert binary.auroc(lab, s) == 1.0
    s = rng.normal(size=80) + lab
    approx = binary.riemann_auroc(lab, s)
    assert approx == pytest.approx(ref_riemann(-s[lab == 1], -s[lab == 0]), abs=1e-12)
    assert 0 <= approx - roc_auc_score(lab, s) <= 0.0101 + 0.02  # quadrature + bias


def test_mahalanobis_reliability_authors_convention_against_reference(rng):
    z_tr, y_tr, p_tr = _classified_clusters(rng)
    z_te, y_te, p_te = _classified_clusters(rng, n=400, flip=0.25)
    got = binary.mahalanobis_reliability(z_tr, y_tr, p_tr, z_te, y_te, p_te,
                                         convention="authors")
    dc, dm = ref_authors_reliability(z_tr, y_tr, p_tr, z_te, y_te, p_te)
    np.testing.assert_allclose(np.sort(got["distance_correct_test"]), np.sort(dc), rtol=1e-9)
    np.testing.assert_allclose(np.sort(got["distance_misclassified_test"]), np.sort(dm),
                               rtol=1e-9)
    assert got["auroc_riemann"] == pytest.approx(ref_riemann(dc, dm), abs=1e-9)
    lab = np.r_[np.ones(len(dc)), np.zeros(len(dm))]
    assert got["auroc"] == pytest.approx(roc_auc_score(lab, -np.r_[dc, dm]), rel=1e-12)


def test_mahalanobis_reliability_acthash_convention_against_reference(rng):
    z_tr, y_tr, p_tr = _classified_clusters(rng, d=2)
    z_te, y_te, p_te = _classified_clusters(rng, n=300, d=2, flip=0.3)
    got = binary.mahalanobis_reliability(z_tr, y_tr, p_tr, z_te, y_te, p_te)
    dist = np.empty(len(z_te))
    for k in np.unique(p_te):
        ok = (y_tr == k) & (p_tr == k)
        cov = np.cov(z_tr[ok].T, bias=True)
        cov += 1e-6 * np.trace(cov) / 2 * np.eye(2)
        sel = p_te == k
        dist[sel] = cdist(z_te[sel], z_tr[ok].mean(0)[None], "mahalanobis",
                          VI=np.linalg.inv(cov)).ravel()
    ok_te = y_te == p_te
    assert got["auroc"] == pytest.approx(roc_auc_score(ok_te, -dist), rel=1e-10)
    assert got["n_correct_test"] + got["n_misclassified_test"] == len(z_te)  # no filter
    np.testing.assert_allclose(got["distance_correct_test"], dist[ok_te], rtol=1e-9)
    assert binary.mahalanobis_auroc(z_tr, y_tr, p_tr, z_te, y_te, p_te) == got["auroc"]
    assert binary.mahalanobis_auroc(z_tr, y_tr, p_tr, z_te, y_te, p_te,
                                    method="riemann") == got["auroc_riemann"]


def test_reliability_without_enough_errors_is_a_documented_nan(rng):
    # no class has more than 2 misclassified test points: the authors' code crashes
    z_tr, y_tr, p_tr = _classified_clusters(rng)
    z_te, y_te, _ = _classified_clusters(rng, n=200, flip=0.0)
    p_te = y_te.copy()
    p_te[:2] = (y_te[:2] + 1) % 4  # two errors, at most 2 per class
    with pytest.warns(RuntimeWarning, match="undefined"):
        got = binary.mahalanobis_reliability(z_tr, y_tr, p_tr, z_te, y_te, p_te,
                                             convention="authors")
    assert np.isnan(got["auroc"]) and np.isnan(got["auroc_riemann"])
    # the acthash convention keeps every point and is defined
    assert np.isfinite(binary.mahalanobis_auroc(z_tr, y_tr, p_tr, z_te, y_te, p_te))


def test_reliability_bad_input(rng):
    z_tr, y_tr, p_tr = _classified_clusters(rng)
    z_te, y_te, p_te = _classified_clusters(rng, n=100)
    # a class with one correct training example gets no Gaussian: its points score inf
    p1 = p_tr.copy()
    only = np.flatnonzero((y_tr == 3) & (p_tr == 3))
    p1[only[1:]] = 0
    with pytest.warns(RuntimeWarning, match="fewer than 2"):
        got = binary.mahalanobis_reliability(z_tr, y_tr, p1, z_te, y_te, p_te)
    assert np.isinf(np.r_[got["distance_correct_test"],
                          got["distance_misclassified_test"]]).any()
    with pytest.raises(InputError, match="no correctly classified"):
        binary.mahalanobis_reliability(z_tr, y_tr, (y_tr + 1) % 4, z_te, y_te, p_te)
    with pytest.raises(InputError, match="dimensions"):
        binary.mahalanobis_reliability(z_tr, y_tr, p_tr, z_te[:, :2], y_te, p_te)
    bad = z_te.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="z_test has NaN"):
        binary.mahalanobis_reliability(z_tr, y_tr, p_tr, bad, y_te, p_te)


# --------------------------------------------------------------------- out of distribution


def ref_lee_scores(z_tr, y_tr, z):
    lda = LinearDiscriminantAnalysis(solver="lsqr", store_covariance=True).fit(z_tr, y_tr)
    vi = np.linalg.inv(lda.covariance_)  # the tied covariance, divisor N
    return -cdist(z, lda.means_, "mahalanobis", VI=vi).min(axis=1)


def test_ood_auroc_matches_tied_covariance_reference(rng):
    z_tr, y_tr, _ = _classified_clusters(rng, d=4)
    z_in, _, _ = _classified_clusters(np.random.default_rng(0), n=300, d=4)
    z_out = rng.normal(size=(200, 4)) * 4
    s_in, s_out = binary.ood_scores(z_tr, y_tr, z_in, z_out, shrinkage=0.0)
    np.testing.assert_allclose(s_in, ref_lee_scores(z_tr, y_tr, z_in), rtol=1e-9)
    np.testing.assert_allclose(s_out, ref_lee_scores(z_tr, y_tr, z_out), rtol=1e-9)
    lab = np.r_[np.ones(300), np.zeros(200)]
    expect = roc_auc_score(lab, np.r_[ref_lee_scores(z_tr, y_tr, z_in),
                                      ref_lee_scores(z_tr, y_tr, z_out)])
    assert binary.ood_auroc(z_tr, y_tr, z_in, z_out) == pytest.approx(expect, abs=1e-6)


def test_ood_auroc_shapes_of_the_answer(rng):
    z_tr, y_tr, p_tr = _classified_clusters(rng, noise=0.5)
    z_in, y_in, p_in = _classified_clusters(np.random.default_rng(0), n=300, noise=0.5)
    same, _, p_same = _classified_clusters(np.random.default_rng(0), n=300, noise=0.5)
    far = rng.normal(size=(300, 3)) + 50.0
    assert binary.ood_auroc(z_tr, y_tr, z_in, far) == 1.0
    assert binary.ood_auroc(z_tr, y_tr, z_in, same + 1e-9) == pytest.approx(0.5, abs=0.01)
    pred = binary.ood_auroc(z_tr, y_tr, z_in, far, method="predicted", pred_train=p_tr,
                            pred_in=p_in, pred_out=np.zeros(300, int))
    assert pred == 1.0
    with pytest.raises(InputError, match="needs pred_train"):
        binary.ood_auroc(z_tr, y_tr, z_in, far, method="predicted")
    with pytest.raises(InputError, match="unknown method"):
        binary.ood_auroc(z_tr, y_tr, z_in, far, method="energy")
    far[0, 0] = np.nan
    with pytest.raises(InputError, match="z_out has NaN"):
        binary.ood_auroc(z_tr, y_tr, z_in, far)


def test_tied_and_per_class_covariances_disagree_when_classes_differ_in_shape(rng):
    # class 0 elongated along x, class 1 along y: per-class covariances see that, the tied
    # one averages it away, so the two detectors rank shifted points differently
    n = 400
    z0 = rng.normal(size=(n, 2)) * [3.0, 0.2]
    z1 = rng.normal(size=(n, 2)) * [0.2, 3.0] + [8.0, 0.0]
    z_tr = np.vstack([z0, z1])
    y_tr = np.repeat([0, 1], n)
    z_in = np.vstack([rng.normal(size=(100, 2)) * [3.0, 0.2],
                      rng.normal(size=(100, 2)) * [0.2, 3.0] + [8.0, 0.0]])
    p_in = np.repeat([0, 1], 100)
    z_out = rng.normal(size=(200, 2)) * [0.2, 3.0]  # class 1's shape at class 0's place
    lee = binary.ood_auroc(z_tr, y_tr, z_in, z_out)
    per = binary.ood_auroc(z_tr, y_tr, z_in, z_out, method="predicted", pred_train=y_tr,
                           pred_in=p_in, pred_out=np.zeros(200, int))
    assert per > lee + 0.1
