"""Linear baselines: the Gaussian (CCA) estimate and the cross-validated linear probe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisescale.mi.gaussian import canonical_correlations, cca, gaussian_bias, normal_scores
from noisescale.mi.probe import fit_probe, probe


def gaussian_pair(n, sigma, seed):
    """n samples of a jointly Gaussian (x, y) with joint covariance sigma (x first)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, sigma.shape[0])) @ np.linalg.cholesky(sigma).T


def closed_form_bits(sigma, dx):
    sx, sy = sigma[:dx, :dx], sigma[dx:, dx:]
    return 0.5 * math.log2(np.linalg.det(sx) * np.linalg.det(sy) / np.linalg.det(sigma))


def population_rho(sigma, dx):
    def inv_sqrt(m):
        w, v = np.linalg.eigh(m)
        return v @ np.diag(w**-0.5) @ v.T
    sx, sy, sxy = sigma[:dx, :dx], sigma[dx:, dx:], sigma[:dx, dx:]
    return np.linalg.svd(inv_sqrt(sx) @ sxy @ inv_sqrt(sy), compute_uv=False)


SIGMA = np.array([
    [1.0, 0.3, 0.0, 0.5, 0.1],
    [0.3, 1.0, 0.2, 0.0, 0.4],
    [0.0, 0.2, 1.5, 0.3, 0.0],
    [0.5, 0.0, 0.3, 1.0, 0.2],
    [0.1, 0.4, 0.0, 0.2, 1.0],
])


def exact_sample(n, rhos, extra_x, seed=0):
    """x (n, len(rhos) + extra_x) and y (n, len(rhos)) whose *sample* canonical correlations
    are exactly ``rhos``: built from centered orthonormal columns."""
    rng = np.random.default_rng(seed)
    d = len(rhos)
    m = rng.standard_normal((n, 2 * d + extra_x))
    q, _ = np.linalg.qr(m - m.mean(axis=0))
    x = q[:, :d + extra_x]
    y = np.stack([r * q[:, i] + math.sqrt(1 - r * r) * q[:, d + extra_x + i]
                  for i, r in enumerate(rhos)], axis=1)
    return x, y


# --- cca -------------------------------------------------------------------------------------


def test_cca_matches_closed_form_for_gaussian_data():
    xy = gaussian_pair(20000, SIGMA, seed=1)
    x, y = xy[:, :3], xy[:, 3:]
    rho = canonical_correlations(x, y)
    assert rho.shape == (2,)
    assert np.allclose(rho, population_rho(SIGMA, 3), atol=0.015)
    truth = closed_form_bits(SIGMA, 3)
    assert truth > 0.2
    assert abs(cca(x, y) - truth) < 0.025  # sampling sd ~ 0.006 bits
    assert abs(cca(x, y, bias_correction=False) - truth) < 0.025


def test_canonical_correlations_exact_on_constructed_samples():
    rhos = [0.9, 0.5]
    x, y = exact_sample(400, rhos, extra_x=1)
    assert np.allclose(canonical_correlations(x, y), rhos, atol=1e-12)
    plug_in = -0.5 * sum(math.log2(1 - r * r) for r in rhos)
    assert cca(x, y, bias_correction=False) == pytest.approx(plug_in, abs=1e-12)
    assert cca(x, y) == pytest.approx(plug_in - gaussian_bias(400, 3, 2), abs=1e-12)
    # Correlations within 1e-9 of 1 keep their precision (1 - ρ² from residuals).
    x, y = exact_sample(400, [1 - 1e-9], extra_x=0)
    assert cca(x, y, bias_correction=False) == pytest.approx(
        -0.5 * math.log2(1 - (1 - 1e-9) ** 2), rel=1e-6)


def test_cca_invariant_to_invertible_linear_maps():
    xy = gaussian_pair(3000, SIGMA, seed=2)
    x, y = xy[:, :3], xy[:, 3:]
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((2, 2)) + 3 * np.eye(2)
    base = cca(x, y)
    mapped = cca(x @ a + 7.0, 1e4 * (y @ b) - 3.0)
    assert abs(mapped - base) < 1e-10
    assert np.allclose(canonical_correlations(x @ a, y @ b), canonical_correlations(x, y),
                       atol=1e-10)


def test_cca_duplicated_and_collinear_columns_count_once():
    xy = gaussian_pair(3000, SIGMA, seed=4)
    x, y = xy[:, :3], xy[:, 3:]
    base = cca(x, y)
    assert abs(cca(np.c_[x, x[:, 1]], y) - base) < 1e-10
    assert abs(cca(x, np.c_[y, y[:, 0], 2 * y[:, 1] - y[:, 0]]) - base) < 1e-10
    assert abs(cca(np.c_[x, np.ones(3000)], y) - base) < 1e-10  # a constant column adds nothing
    # One-hot labels: the columns sum to 1, so all C columns say what C - 1 of them say.
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 4, 3000)
    oh = np.eye(4)[lab]
    x2 = oh @ rng.standard_normal((4, 2)) + rng.standard_normal((3000, 2))
    full = canonical_correlations(x2, oh)
    assert full.shape == (2,)
    assert np.allclose(full, canonical_correlations(x2, oh[:, 1:]), atol=1e-10)
    assert abs(cca(x2, oh) - cca(x2, oh[:, 1:])) < 1e-10


def test_cca_monotonic_in_rho():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(2000)
    noise = rng.standard_normal(2000)
    values = [cca(x, r * x + math.sqrt(1 - r * r) * noise) for r in (0.0, 0.2, 0.4, 0.6, 0.8,
                                                                        0.95)]
    assert np.all(np.diff(values) > 0)


def test_cca_independent_data_within_stated_bias():
    n, d = 2000, 25
    bias = gaussian_bias(n, d, d)
    assert bias == pytest.approx(d * d / (2 * n * math.log(2)), rel=0.02)
    plug, corrected = [], []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        plug.append(cca(x, y, bias_correction=False))
        corrected.append(cca(x, y))
    # sd of one estimate ~ 0.012 bits here, so the mean of 12 is within ~0.004
    assert min(plug) > 0
    assert abs(np.mean(plug) - bias) < 0.015
    assert abs(np.mean(corrected)) < 0.015
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((5000, 4)), rng.standard_normal((5000, 4))
    assert 0 < cca(x, y, bias_correction=False) < 0.008
    assert abs(cca(x, y)) < 0.005


def test_gaussian_bias_is_symmetric_and_matches_plug_in_on_average():
    assert gaussian_bias(300, 2, 5) == pytest.approx(gaussian_bias(300, 5, 2), rel=1e-12)
    assert gaussian_bias(300, 0, 5) == 0.0
    with pytest.raises(ValueError, match="dx \\+ dy < N"):
        gaussian_bias(10, 5, 5)


def test_cca_constant_is_exactly_zero():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((50, 3))
    for kwargs in ({}, {"bias_correction": False}, {"ridge": 0.5}):
        assert cca(x, np.full(50, 2.5), **kwargs) == 0.0
        assert cca(np.zeros((50, 2)), x, **kwargs) == 0.0
    assert canonical_correlations(x, np.ones((50, 2))).shape == (0,)
    # constant even when dims exceed N: no rank error for a variable with nothing in it
    assert cca(rng.standard_normal((5, 10)), np.ones(5)) == 0.0


def test_cca_exact_linear_relation_is_infinite():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((200, 3))
    assert cca(x, 2 * x[:, 0] - x[:, 2] + 1) == math.inf
    assert cca(x, x) == math.inf


def test_normal_scores_ranks_ties_and_constant_columns():
    a = np.array([[3.0, 1.0, 7.0], [1.0, 1.0, 7.0], [2.0, 5.0, 7.0], [2.0, 1.0, 7.0]])
    before = a.copy()
    z = normal_scores(a)
    np.testing.assert_array_equal(a, before)  # input untouched
    from scipy.stats import norm
    # column 0: ranks 4, 1, 2.5, 2.5 of N = 4
    np.testing.assert_allclose(z[:, 0], norm.ppf(np.array([4, 1, 2.5, 2.5]) / 5), rtol=1e-14)
    np.testing.assert_allclose(z[:, 1], norm.ppf(np.array([2, 2, 4, 2]) / 5), rtol=1e-14)
    assert (z[:, 2] == 0.0).all()  # constant -> the middle rank -> exactly 0


def test_cca_copula_is_invariant_to_monotone_maps_and_exact_for_them():
    xy = gaussian_pair(20000, SIGMA, seed=11)
    x, y = xy[:, :3], xy[:, 3:]
    truth = closed_form_bits(SIGMA, 3)
    # increasing maps of each column: the ranks, hence the estimate, are unchanged exactly
    xt = np.c_[np.exp(x[:, 0]), np.sign(x[:, 1]) * np.abs(x[:, 1]) ** 1.5, np.arcsinh(5 * x[:, 2])]
    yt = np.c_[y[:, 0] ** 3, -np.exp(-y[:, 1])]
    assert cca(xt, yt, copula=True) == cca(x, y, copula=True)
    assert abs(cca(xt, yt, copula=True) - truth) < 0.025  # sampling sd ~ 0.006 bits
    assert cca(xt, yt) < truth - 0.05  # plain CCA loses what its linear fit misses
    assert abs(cca(x, y, copula=True) - cca(x, y)) < 0.01  # Gaussian data: both exact


def test_cca_copula_degenerate_inputs_and_bad_option():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 2))
    assert cca(x, np.full(3000, 4.0), copula=True) == 0.0
    assert cca(x, x, copula=True) == math.inf
    # non-monotone dependence is invisible to a Gaussian copula (documented)
    assert abs(cca(x[:, 0], x[:, 0] ** 2, copula=True)) < 0.01
    with pytest.raises(TypeError, match="copula must be True or False"):
        cca(x, x[:, 0], copula="yes")


def test_estimate_passes_the_copula_option_to_cca():
    from noisescale.mi.estimate import estimate, method_options

    assert "copula" in method_options("cca")
    xy = gaussian_pair(4000, SIGMA, seed=13)
    x, y = np.exp(xy[:, :3]), xy[:, 3:] ** 3
    r = estimate(x, y, "cca", copula=True, uncertainty=True, seed=1)
    assert r.mi == cca(x, y, copula=True)
    assert r.lo < closed_form_bits(SIGMA, 3) < r.hi


def test_cca_too_many_dimensions_is_an_error_unless_regularized():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((30, 20)), rng.standard_normal((30, 10))
    with pytest.raises(ValueError, match="rank 20 and y rank 10 .* only 30 samples"):
        cca(x, y)
    with pytest.raises(ValueError, match="ridge > 0"):
        canonical_correlations(x, y)
    rho = canonical_correlations(x, y, ridge=1.0)
    assert rho.shape == (10,) and rho.max() < 1
    value = cca(x, y, ridge=1.0)
    assert math.isfinite(value) and value > 0
    # the ridge shrinks the estimate
    x, y = rng.standard_normal((500, 3)), rng.standard_normal((500, 2))
    y += x[:, :2]
    assert cca(x, y, ridge=0.1) < cca(x, y, bias_correction=False)


def test_cca_errors():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 2))
    with pytest.raises(ValueError, match="same number of samples"):
        cca(x, x[:30])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cca(x, bad)
    with pytest.raises(ValueError, match="at least 2 samples"):
        cca(x[:1], x[:1])
    with pytest.raises(ValueError, match="ridge must be a finite number >= 0"):
        cca(x, x[:, 0], ridge=-1)
    with pytest.raises(ValueError, match="bias_correction=True holds only for ridge=0"):
        cca(x, x[:, 0], ridge=0.1, bias_correction=True)
    with pytest.raises(TypeError, match="bias_correction"):
        cca(x, x[:, 0], bias_correction="yes")
    with pytest.raises(TypeError, match="numeric"):
        cca(x, np.array(["a"] * 40))


def test_cca_does_not_modify_inputs():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((100, 3)) * 5 + 2
    y = rng.standard_normal((100, 2)).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    cca(x, y)
    cca(x, y, ridge=0.3)
    canonical_correlations(x, y)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


# --- probe -----------------------------------------------------------------------------------


def correlated(n, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)


def classes(n, sep, seed, n_classes=2, d=1):
    """Balanced labels; x = class mean (spaced sep apart on a line) + unit noise."""
    rng = np.random.default_rng(seed)
    lab = np.arange(n) % n_classes
    x = (sep * lab)[:, None] * np.ones(d) / math.sqrt(d) + rng.standard_normal((n, d))
    return x, lab


def two_class_bits(sep):
    """I(x; label) of two balanced unit Gaussians sep apart, by quadrature."""
    t = np.linspace(-12, 12 + sep, 200001)
    p0 = np.exp(-0.5 * t**2)
    p1 = np.exp(-0.5 * (t - sep) ** 2)
    post = p0 / (p0 + p1)
    h = -(post * np.log2(np.clip(post, 1e-300, None))
          + (1 - post) * np.log2(np.clip(1 - post, 1e-300, None)))
    mix = 0.5 * (p0 + p1) / math.sqrt(2 * math.pi)
    return 1.0 - float(np.sum(h * mix) * (t[1] - t[0]))


def test_probe_continuous_gaussian_pair():
    x, y = correlated(5000, 0.8, seed=1)
    assert abs(probe(x, y) - (-0.5 * math.log2(1 - 0.64))) < 0.05


def test_probe_multivariate_agrees_with_cca():
    xy = gaussian_pair(5000, SIGMA, seed=2)
    x, y = xy[:, :3], xy[:, 3:]
    assert abs(probe(x, y) - cca(x, y)) < 0.03


def test_probe_labels_between_zero_and_entropy_increasing_with_separation():
    values = []
    for sep in (0.5, 1.0, 2.0, 4.0):
        x, lab = classes(4000, sep, seed=3)
        v = probe(x, lab, labels=True)
        assert 0 < v < 1.0  # H(labels) = 1 bit
        # equal-variance Gaussians: the logistic model is the Bayes posterior
        assert abs(v - two_class_bits(sep)) < 0.03
        values.append(v)
    assert np.all(np.diff(values) > 0)
    x, lab = classes(3000, 30.0, seed=4, n_classes=3, d=3)
    assert abs(probe(x, np.array(["a", "b", "c"])[lab], labels=True) - math.log2(3)) < 0.02


def test_probe_independent_is_near_zero():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5000, 3))
    assert abs(probe(x, rng.standard_normal(5000))) < 0.05
    assert abs(probe(x, rng.standard_normal((5000, 2)))) < 0.05
    assert abs(probe(x, rng.integers(0, 4, 5000), labels=True)) < 0.05
    # more dimensions than samples: the penalty keeps it near 0 instead of overfitting
    assert abs(probe(rng.standard_normal((80, 200)), rng.standard_normal(80))) < 0.1


def test_probe_deterministic_for_a_seed():
    x, y = correlated(1000, 0.5, seed=6)
    assert probe(x, y, seed=3) == probe(x, y, seed=3)
    assert probe(x, y, seed=3) != probe(x, y, seed=4)
    xl, lab = classes(1000, 1.0, seed=7, n_classes=3, d=2)
    assert probe(xl, lab, labels=True, seed=2) == probe(xl, lab, labels=True, seed=2)
    f1, f2 = fit_probe(x, y, seed=3), fit_probe(x, y, seed=3)
    assert np.array_equal(f1.details["fold"], f2.details["fold"])


def test_fit_probe_evaluate_reuses_out_of_fold_predictions():
    x, y = correlated(2000, 0.8, seed=8)
    fit = fit_probe(x, y, folds=4)
    n = 2000
    assert fit.n_eval == n
    every = np.arange(n)
    assert fit.evaluate(every, every) == fit.mi
    sub = np.arange(0, n, 2)
    assert abs(fit.evaluate(sub, sub) - fit.mi) < 0.1
    perm = np.random.default_rng(0).permutation(n)
    assert fit.evaluate(every, perm) < 0.01
    fold = fit.details["fold"]
    assert np.bincount(fold).tolist() == [500] * 4
    xl, lab = classes(2000, 2.0, seed=9, n_classes=3, d=2)
    fit = fit_probe(xl, lab, labels=True, folds=4)
    assert fit.evaluate(every, every) == fit.mi > 0.3
    assert fit.evaluate(every, perm) < 0
    # stratified: each label split evenly over the folds
    counts = np.array([np.bincount(fit.details["fold"][lab == c], minlength=4)
                       for c in range(3)])
    assert counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="same nonzero length"):
        fit.evaluate(every, every[:-1])
    with pytest.raises(ValueError, match="outside"):
        fit.evaluate(np.array([0, n]), np.array([0, 1]))


def test_probe_duplicated_columns_and_linear_maps_of_y():
    xy = gaussian_pair(2000, SIGMA, seed=10)
    x, y = xy[:, :3], xy[:, 3:]
    base = probe(x, y)
    assert probe(np.c_[x, x[:, 2]], y) == pytest.approx(base, abs=1e-10)
    assert probe(np.c_[x, np.zeros(2000)], y) == pytest.approx(base, abs=1e-10)
    assert probe(x, np.c_[y, y[:, 1]]) == pytest.approx(base, abs=1e-8)
    b = np.array([[2.0, 1.0], [-0.5, 3.0]])
    assert probe(x, y @ b + 4) == pytest.approx(base, abs=1e-8)
    xl, lab = classes(2000, 1.5, seed=11, n_classes=3, d=2)
    assert probe(np.c_[xl, xl[:, 0]], lab, labels=True) == pytest.approx(
        probe(xl, lab, labels=True), abs=1e-10)


def test_probe_constant_is_exactly_zero():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((100, 2))
    assert probe(x, np.full(100, 3.0)) == 0.0
    assert probe(np.ones((100, 2)), x) == 0.0
    assert probe(x, np.array(["a"] * 100), labels=True) == 0.0
    fit = fit_probe(np.ones(100), x[:, 0])
    assert fit.mi == 0.0 and fit.evaluate(np.arange(10), np.arange(10)) == 0.0


def test_probe_errors():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((40, 2))
    y = rng.standard_normal(40)
    with pytest.raises(ValueError, match="same number of samples"):
        probe(x, y[:30])
    bad = y.copy()
    bad[5] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        probe(x, bad)
    with pytest.raises(ValueError, match="at least 2 samples"):
        probe(x[:1], y[:1])
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        probe(x, y, folds=1)
    with pytest.raises(ValueError, match="folds must be <= the number of samples"):
        probe(x, y, folds=41)
    with pytest.raises(ValueError, match="folds must be an integer"):
        probe(x, y, folds=2.5)
    with pytest.raises(TypeError, match="seed"):
        probe(x, y, seed=1.5)
    lab = np.array(["a", "b"] * 19 + ["c", "b"])
    with pytest.raises(ValueError, match="single sample \\(c\\)"):
        probe(x, lab, labels=True)
    with pytest.raises(ValueError, match="missing"):
        probe(x, np.array([1.0, None] * 20, dtype=object), labels=True)
    with pytest.raises(ValueError, match="one entry per sample"):
        probe(x, np.array([0, 1] * 10), labels=True)
    with pytest.raises(ValueError, match="alphas must"):
        probe(x, y, alphas=[0.0])


def test_probe_does_not_modify_inputs():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((200, 3)) * 4 + 1
    y = rng.standard_normal((200, 2))
    lab = np.array(["u", "v", "w", "v"] * 50)
    x0, y0, lab0 = x.copy(), y.copy(), lab.copy()
    probe(x, y)
    probe(x, lab, labels=True)
    fit_probe(x, y).evaluate(np.arange(200), np.arange(200)[::-1])
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(lab, lab0)
