"""noisescale.mi.estimate: one interface, half-sample uncertainty, shuffled-pairing null."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import t as student_t

from noisescale import mi
from noisescale.mi import resampling


def gaussian_pair(n, rho, seed=0, d=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y


def truth(rho, d=1):
    return -0.5 * d * math.log2(1 - rho**2)


# --- the interval code on a known distribution ------------------------------------------------

def test_half_sample_se_of_a_mean_is_sigma_over_root_n():
    v = np.random.default_rng(1).standard_normal(4000) * 3.0
    se, halves = resampling.half_sample_se(lambda a, b: float(v[a].mean()), v.size, 400, seed=0)
    assert halves.shape == (400, 2)
    assert se == pytest.approx(3.0 / math.sqrt(v.size), rel=0.1)


def test_interval_is_student_t_around_the_estimate():
    lo, hi = resampling.interval(1.0, 0.1, 10)
    q = student_t.ppf(0.975, 10)
    assert (lo, hi) == (pytest.approx(1 - 0.1 * q), pytest.approx(1 + 0.1 * q))


def test_interval_covers_a_known_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    hits = 0
    for rep in range(300):
        v = rng.standard_normal(400) + 5.0
        est = float(v.mean())
        se, _ = resampling.half_sample_se(lambda a, b, v=v: float(v[a].mean()), v.size, 10, rep)
        lo, hi = resampling.interval(est, se, 10)
        hits += lo <= 5.0 <= hi
    assert 0.90 <= hits / 300 <= 0.99


def test_shuffled_null_uses_permutations_of_y_only():
    seen = []
    resampling.shuffled_null(lambda a, b: seen.append((a.copy(), b.copy())) or 0.0, 50, 3, 0)
    assert len(seen) == 3
    for a, b in seen:
        np.testing.assert_array_equal(a, np.arange(50))
        np.testing.assert_array_equal(np.sort(b), np.arange(50))
    assert not np.array_equal(seen[0][1], seen[1][1])


# --- estimate ---------------------------------------------------------------------------------

def test_ksg_estimate_with_uncertainty_and_null():
    x, y = gaussian_pair(3000, 0.8)
    r = mi.estimate(x, y, "ksg", uncertainty=True, null=True)
    assert r.mi == pytest.approx(mi.ksg(x, y))  # the point estimate is the plain estimator's
    assert r.lo < r.mi < r.hi and 0 < r.se < 0.1
    assert r.lo <= truth(0.8) <= r.hi
    assert abs(r.null) < 0.03 and len(r.null_values) == 3 and r.null_sd > 0
    assert not r.within_null and r.flags == ()
    row = r.as_row()
    assert set(row) == {"mi", "mi_se", "mi_lo", "mi_hi", "mi_null", "mi_null_sd", "mi_flags"}


def test_null_is_near_zero_on_independent_data():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10_000, 1)), rng.standard_normal((10_000, 1))
    with pytest.warns(mi.WithinNullWarning, match="cannot be told apart"):
        r = mi.estimate(x, y, "ksg", uncertainty=True, null=True, shuffles=4)
    assert abs(r.null) < 0.02
    assert r.within_null and r.flags == ("within_null",)


def test_opt_in_fields_are_nan_when_not_asked():
    x, y = gaussian_pair(500, 0.5)
    r = mi.estimate(x, y)
    assert math.isnan(r.se) and math.isnan(r.null) and r.null_values == () and r.halves is None
    assert float(r) == r.mi


def test_same_seed_same_bits_and_inputs_untouched():
    x, y = gaussian_pair(800, 0.6)
    x0, y0 = x.copy(), y.copy()
    a = mi.estimate(x, y, "ksg", uncertainty=True, null=True, seed=5)
    b = mi.estimate(x, y, "ksg", uncertainty=True, null=True, seed=5)
    assert (a.mi, a.se, a.null) == (b.mi, b.se, b.null)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    c = mi.estimate(x, y, "ksg", uncertainty=True, null=True, seed=6)
    assert c.se != a.se


@pytest.mark.parametrize("method", ["ksg", "ross"])
def test_monotonic_in_correlation(method):
    values = []
    for rho in (0.2, 0.5, 0.8, 0.95):
        x, y = gaussian_pair(2000, rho, seed=4)
        target = y if method == "ksg" else np.digitize(y[:, 0], [-1, 0, 1]).astype(str)
        values.append(mi.estimate(x, target, method).mi)
    assert np.all(np.diff(values) > 0)


def test_labels_are_detected_and_ross_needs_them():
    x, y = gaussian_pair(1000, 0.9)
    lab = np.where(y[:, 0] > 0, "up", "down")
    r = mi.estimate(x, lab, "ross", uncertainty=True, null=True)
    assert r.details["labels"] and 0.3 < r.mi < 1.0 and abs(r.null) < 0.05
    with pytest.raises(ValueError, match="needs a continuous y"):
        mi.estimate(x, lab, "ksg")
    with pytest.raises(ValueError, match="categorical labels"):
        mi.estimate(x, y, "ross", labels=False)


def test_lmi_fixed_evaluation_is_cheap_and_close():
    x, y = gaussian_pair(1200, 0.8, d=2)
    r = mi.estimate(x, y, "lmi", uncertainty=True, null=True, refit=False, resamples=4,
                    epochs=30, patience=5)
    assert r.refit is False and r.details["n_eval"] == 600
    assert r.mi == pytest.approx(mi.lmi(x, y, epochs=30, patience=5).mi)
    assert r.lo < r.mi < r.hi and abs(r.null) < 0.1


def test_constant_input_is_exactly_zero_everywhere():
    x, _ = gaussian_pair(300, 0.5)
    r = mi.estimate(x, np.full(300, 2.0), "ksg", uncertainty=True, null=True)
    assert (r.mi, r.se, r.lo, r.hi, r.null, r.null_sd) == (0.0,) * 6
    assert r.flags == ("constant",) and not r.within_null
    r = mi.estimate(x, np.array(["a"] * 300), "ross", uncertainty=True)
    assert r.mi == 0.0 and r.se == 0.0


def test_ties_become_a_flag_and_a_warning():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(2000, 1)).astype(float)
    y = x + rng.integers(0, 2, size=(2000, 1))
    with pytest.warns(mi.TiesWarning):
        r = mi.estimate(x, y, "ksg", uncertainty=True)
    assert "ties" in r.flags


@pytest.mark.parametrize("bad, match", [
    (dict(y=np.zeros((9, 1))), "same number of samples"),
    (dict(x=np.array([[np.nan]] * 10)), "NaN"),
    (dict(x=np.zeros((1, 1)) + 1, y=np.ones((1, 1))), "at least 2 samples"),
    (dict(method="nope"), "method must be one of"),
    (dict(resamples=1, uncertainty=True), "resamples"),
    (dict(k=20), "more samples than k"),
])
def test_bad_input_is_a_clear_error(bad, match):
    x, y = gaussian_pair(10, 0.5)
    args = {"x": x, "y": y, "method": "ksg", **bad}
    with pytest.raises((ValueError, TypeError), match=match):
        mi.estimate(args.pop("x"), args.pop("y"), args.pop("method"), **args)


def test_too_few_samples_to_resample():
    x, y = gaussian_pair(8, 0.5)
    with pytest.raises(ValueError, match="too few to resample"):
        mi.estimate(x, y, "ksg", uncertainty=True)


def test_default_rule():
    assert mi.default_method("continuous", 2, 2) == "ksg"
    assert mi.default_method("continuous", 2, 3) == "lmi"
    assert mi.default_method("continuous", 16, 2) == "lmi"
    assert mi.default_method("categorical", 4) == "ross"
    assert mi.default_method("categorical", 16) == "lmi"


def test_compare_runs_each_method_on_the_same_samples():
    x, y = gaussian_pair(1000, 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = mi.compare(x, y, ["ksg"], resamples=3)
    assert list(table["method"]) == ["ksg"]
    assert table.loc[0, "mi"] == pytest.approx(mi.ksg(x, y))
    with pytest.raises(ValueError, match="not compared"):
        mi.compare(x, y, ["ksg"], options={"lmi": {}})


def test_ksg_and_mi_discrete_opt_in_return_an_estimate():
    x, y = gaussian_pair(1500, 0.7)
    r = mi.ksg(x, y, uncertainty=True, resamples=4)
    assert isinstance(r, mi.MIEstimate) and r.mi == pytest.approx(mi.ksg(x, y)) and r.se > 0
    assert isinstance(mi.ksg(x, y), float)
    lab = np.where(y[:, 0] > 0, "a", "b")
    r = mi.mi_discrete(x, lab, null=True)
    assert r.method == "ross" and r.mi == pytest.approx(mi.mi_discrete(x, lab))
    assert abs(r.null) < 0.05
    with pytest.raises(ValueError, match="pointwise"):
        mi.ksg(x, y, pointwise=True, uncertainty=True)


def test_lmi_held_out_evaluation_reproduces_its_estimate():
    from noisescale.mi.lmi import fit_lmi

    x, y = gaussian_pair(800, 0.8, d=2)
    fit = fit_lmi(x, y, epochs=20, patience=5)
    rows = np.arange(fit.n_eval)
    assert fit.evaluate(rows, rows) == fit.mi == fit.details["result"].mi


def test_method_options_are_what_estimate_passes_on():
    from noisescale.mi.estimate import method_options

    assert {"latent_dim", "bottleneck"} <= method_options("lmi")
    assert {"critic", "calibrate"} <= method_options("infonce")
    assert "bound" in method_options("mine") and "folds" in method_options("probe")
    for m in mi.METHODS:
        assert not method_options(m) & {"seed", "k", "uncertainty", "null", "refit", "labels"}
