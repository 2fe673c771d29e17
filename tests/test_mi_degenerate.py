"""Degenerate inputs: constant variables give exactly 0 bits, heavy ties give the MI of the
discrete values and a TiesWarning, continuous data give no warning; inputs are never modified.

Tolerances for "about 0": with N = 2,000 the spread of these estimators over independent
samples (the permutation null) is 0.02 bits for every tie pattern below (measured over 40 seeds:
integer y vs a continuous x, 2-3 distinct embedding points vs labels, integer vs integer), so
"about 0" is |estimate| < 0.08 bits, 4 null standard deviations.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from noisescale.mi import TIES_FRACTION, LMIResult, TiesWarning, ksg, lmi, mi_discrete, one_hot
from noisescale.mi._ties import duplicates

NULL_TOL = 0.08  # 4 standard deviations of the null at N = 2,000 (see the module docstring)
# Three distinct points in 4-D: every sample of an embedding collapsed to 3 points is one of them.
P3 = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0], [-1.0, 2.0, 0.0, 7.0]])


def digest(*arrays) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
            + str(np.asarray(a).dtype) + str(np.shape(a)) for a in arrays]


def unchanged(fn, *arrays, **kwargs):
    """fn(*arrays, **kwargs), asserting that it leaves every input array as it was."""
    before = digest(*arrays)
    out = fn(*arrays, **kwargs)
    assert digest(*arrays) == before
    return out


def no_ties_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TiesWarning)
        return unchanged(fn, *args, **kwargs)


def ties_warning(fn, *args, match=None, **kwargs):
    with pytest.warns(TiesWarning, match=match) as record:
        out = unchanged(fn, *args, **kwargs)
    # Attributed to the caller's line, however deep inside noisescale.mi it was raised.
    assert all(w.filename == __file__ for w in record if w.category is TiesWarning)
    return out, record


# ------------------------------------------------------------------------- constant variables
@pytest.mark.parametrize("knn", ["tree", "faiss"])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("jitter", [1e-10, 0.0])
def test_ksg_constant_x_and_constant_y_is_zero(knn, standardize, jitter):
    x = np.full(1000, 3.0)
    y = np.full((1000, 2), -1.5)
    kw = dict(knn=knn, standardize=standardize, jitter=jitter)
    assert no_ties_warning(ksg, x, y, **kw) == 0.0  # was 12.96 bits
    pw = no_ties_warning(ksg, x, y, pointwise=True, **kw)
    assert pw.shape == (1000,) and np.array_equal(pw, np.zeros(1000))


def test_ksg_constant_x_with_varying_y_is_zero():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((800, 2))
    x = np.tile([1.0, -2.0, 0.1], (800, 1))  # every row the same 3-vector
    assert no_ties_warning(ksg, x, y) == 0.0
    assert no_ties_warning(ksg, y, x) == 0.0
    assert no_ties_warning(ksg, x, rng.integers(0, 3, 800)) == 0.0  # tied y: still exactly 0
    assert np.array_equal(ksg(x, y, pointwise=True), np.zeros(800))


def test_constant_is_detected_exactly_not_by_a_tolerance():
    """One sample one unit in the last place away from the rest is not constant: x = y then
    carries H(x) = 0.0062 bits, and the estimate sees it (measured 0.0052); the ties warn."""
    x = np.full(2000, 1.0)
    x[0] = np.nextafter(1.0, 2.0)
    est, _ = ties_warning(ksg, x, x.copy(), match="99.9% share their exact x")
    assert 0.001 < est < 0.02


@pytest.mark.parametrize("method", ["ross", "lmi"])
def test_mi_discrete_constant_embedding_is_zero(method):
    rng = np.random.default_rng(1)
    x = np.full((1500, 6), 0.25)
    labels = rng.integers(0, 4, 1500)
    kw = dict(epochs=5) if method == "lmi" else {}
    assert no_ties_warning(mi_discrete, x, labels, method=method, **kw) == 0.0  # ross was 4.16
    pw = mi_discrete(x, labels, method=method, pointwise=True, **kw)
    assert np.array_equal(pw, np.zeros(pw.size))
    assert pw.size == (1500 if method == "ross" else 750)  # lmi: the held-out half


@pytest.mark.parametrize("method", ["ross", "lmi"])
def test_mi_discrete_single_class_is_zero(method):
    rng = np.random.default_rng(2)
    kw = dict(epochs=5) if method == "lmi" else {}
    for x in (np.full((1200, 3), 1.0), rng.standard_normal((1200, 3))):
        assert no_ties_warning(mi_discrete, x, np.zeros(1200), method=method, **kw) == 0.0
        assert no_ties_warning(mi_discrete, x, np.array(["t"] * 1200), method=method,
                               **kw) == 0.0


def test_ross_single_class_among_the_kept_samples():
    """Labels seen once are left out (NaN); if one label remains, the rest are exactly 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 2))
    labels = np.array(["a"] * 498 + ["b", "c"])
    pw = mi_discrete(x, labels, pointwise=True)
    assert np.isnan(pw[-2:]).all() and np.array_equal(pw[:-2], np.zeros(498))
    assert mi_discrete(x, labels) == 0.0


def test_lmi_constant_inputs_are_zero_without_training():
    rng = np.random.default_rng(4)
    x = np.full((1000, 20), 2.0)
    y = np.full((1000, 5), -3.0)
    res = no_ties_warning(lmi, x, y, seed=0, epochs=5)  # was 11.96 bits
    assert isinstance(res, LMIResult) and res.mi == 0.0
    assert np.array_equal(res.pointwise, np.zeros(500)) and res.test_index.shape == (500,)
    assert np.array_equal(res.zx, np.zeros((500, 8))) and np.array_equal(res.zy, res.zx)
    assert res.history["epochs_run"] == 0 and res.history["stopped"] == "constant"
    assert res.history["constant"] == ["x", "y"]
    # Constant x, informative-looking y: still exactly 0, and the split is the usual one.
    varying = rng.standard_normal((1000, 5))
    res2 = lmi(x, varying, seed=0, epochs=5, latent_dim=4)
    assert res2.mi == 0.0 and res2.history["constant"] == ["x"] and res2.zx.shape == (500, 4)
    assert np.array_equal(res2.test_index, res.test_index)


# ------------------------------------------------------------------------------ heavy ties
def test_embedding_collapsed_to_three_points_vs_its_labels():
    """x is one of 3 points and the label says which: I = H(label) = log2(3) = 1.585 bits.
    Ross's estimator: measured within 0.002 bits over 40 seeds; allowed 0.01. KSG with the
    one-hot labels (both variables discrete): measured 0.03 +- 0.02 bits low; allowed 0.1."""
    rng = np.random.default_rng(5)
    which = rng.integers(0, 3, 2000)
    x = P3[which]
    est, record = ties_warning(mi_discrete, x, which, match="100.0% share their exact x")
    assert abs(est - np.log2(3)) < 0.01
    assert "3 distinct points" in str(record[0].message)
    est, _ = ties_warning(ksg, x, one_hot(which), match=r"\(x, y\) \(3 distinct points\)")
    assert abs(est - np.log2(3)) < 0.1


def test_embedding_collapsed_to_two_points_vs_independent_labels():
    rng = np.random.default_rng(6)
    x = P3[rng.integers(0, 2, 2000)]
    labels = rng.integers(0, 3, 2000)
    est, _ = ties_warning(mi_discrete, x, labels, match="2 distinct points")
    assert abs(est) < NULL_TOL
    est, _ = ties_warning(ksg, x, one_hot(labels))
    assert abs(est) < NULL_TOL


def test_integer_y_vs_independent_x_is_null_and_equals_ross():
    """With a continuous x and an integer y whose every value is taken by more than k samples,
    the jittered KSG is Ross's estimator with y as the label (the same counts), to rounding, as
    long as each sample's k-th joint neighbour has its y: true when the y values are far apart
    on the scale of x's neighbour distances. Standardized, adjacent values are 0.7 apart and a
    few samples in sparse regions reach the next value: measured 0.003 bits from Ross."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2000, 2))
    y = rng.integers(0, 5, 2000)
    est, record = ties_warning(ksg, x, y, match="100.0% share their exact y")
    assert abs(est) < NULL_TOL
    assert "5 distinct points" in str(record[0].message)
    assert abs(est - mi_discrete(x, y)) < 0.01
    far, _ = ties_warning(ksg, x, 1e3 * y, standardize=False)
    assert abs(far - mi_discrete(x, y, standardize=False)) < 1e-12
    counts = rng.poisson(2.0, 2000)  # Poisson counts: a few rare values too
    est, _ = ties_warning(ksg, x, counts)
    assert abs(est) < NULL_TOL
    est, _ = ties_warning(ksg, rng.integers(0, 4, 2000), rng.integers(0, 3, 2000))
    assert abs(est) < NULL_TOL  # integer vs integer: MI of the discrete values, 0 here


@pytest.mark.parametrize("sep,truth,tol", [(40.0, 2.0, 0.01), (0.0, 0.0, NULL_TOL)])
def test_one_hot_labels_as_y_in_ksg(sep, truth, tol):
    """One-hot labels are a y with as many distinct points as classes; KSG then equals Ross's
    estimator (to rounding): log2(4) for well-separated clusters, about 0 for none."""
    rng = np.random.default_rng(8)
    labels = np.repeat(np.arange(4), 500)
    x = sep * rng.standard_normal((4, 3))[labels] + rng.standard_normal((2000, 3))
    y = one_hot(labels)
    est, _ = ties_warning(ksg, x, y, match="100.0% share their exact y")
    assert abs(est - truth) < tol
    assert abs(est - mi_discrete(x, labels)) < 1e-12


def test_offset_does_not_swallow_the_jitter():
    """Without standardization, 1e-10 standard deviations is below the float64 resolution of
    values near 1e6: the jitter used to be rounded away, leaving exact duplicates (13.8 bits
    for independent integers). Columns whose mean exceeds their spread are now centered first."""
    rng = np.random.default_rng(9)
    xi = rng.integers(0, 3, 2000).astype(float)
    yi = rng.integers(0, 4, 2000).astype(float)
    with pytest.warns(TiesWarning):
        base = ksg(xi, yi, standardize=False)
        shifted = ksg(xi + 1e6, yi + 1e6, standardize=False)
        ross = mi_discrete(np.column_stack([xi, xi]) + 1e6, yi, standardize=False)
    assert abs(base) < NULL_TOL and abs(shifted - base) < 1e-9 and abs(ross) < NULL_TOL


def test_jitter_zero_with_joint_duplicates_says_it_inflates():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 3, 1000)
    y = rng.integers(0, 3, 1000)
    est, _ = ties_warning(ksg, x, y, jitter=0, match="inflates the estimate")
    assert est > 1.0  # what the warning is about: exact duplicates read as infinitely dense
    _, _ = ties_warning(mi_discrete, P3[x], y, jitter=0, match="inflates the estimate")


# ------------------------------------------------------------------------ the warning itself
def test_warning_threshold():
    """Warned when more than TIES_FRACTION (one half) of the samples are duplicated."""
    assert TIES_FRACTION == 0.5
    rng = np.random.default_rng(11)
    y = rng.standard_normal(1000)
    for n_dup, warned in ((500, False), (502, True)):
        x = rng.standard_normal((1000, 2))
        x[1:n_dup:2] = x[0:n_dup:2]  # n_dup samples in pairs
        if warned:
            _, record = ties_warning(ksg, x, y, match=r"50\.2% share their exact x")
            assert "0.0% their (x, y) (1000 distinct points)" in str(record[0].message)
            ties_warning(mi_discrete, x, rng.integers(0, 2, 1000), match=r"50\.2%")
        else:
            no_ties_warning(ksg, x, y)
            no_ties_warning(mi_discrete, x, rng.integers(0, 2, 1000))


def test_no_warning_for_continuous_gaussians():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 3))
    y = 0.8 * x[:, :2] + 0.6 * rng.standard_normal((3000, 2))
    assert no_ties_warning(ksg, x, y) > 0.5
    assert no_ties_warning(ksg, x.astype(np.float32), y.astype(np.float32)) > 0.5
    assert no_ties_warning(mi_discrete, x, (y[:, 0] > 0).astype(int)) > 0.1
    no_ties_warning(lmi, x[:1500], y[:1500], seed=0, epochs=3, patience=2)
    # One-hot labels are ties by design on the LMI route: not warned about.
    no_ties_warning(mi_discrete, x[:1500], (y[:1500, 0] > 0), method="lmi", epochs=3)


def test_lmi_warns_about_tied_latents():
    """Tied inputs give tied latents; KSG on the latents warns, naming them."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1200, 10))
    t = rng.integers(0, 4, 1200).astype(float)  # a scalar signal with 4 values
    res, _ = ties_warning(lmi, x, t, seed=0, epochs=3, patience=2,
                          match=r"lmi \(KSG on the held-out latents\).*exact zy")
    assert np.unique(res.zy, axis=0).shape[0] <= 4


def test_duplicates_counts_exactly():
    rng = np.random.default_rng(14)
    for shape in ((1, 1), (2, 1), (500, 1), (500, 3), (2000, 4)):
        a = rng.integers(0, 4, size=shape).astype(float)
        zero = a == 0
        a[zero] = np.where(rng.integers(0, 2, size=int(zero.sum())) == 1, -0.0, 0.0)
        _, inverse, counts = np.unique(a + 0.0, axis=0, return_inverse=True,
                                       return_counts=True)
        assert duplicates(a) == (int((counts[inverse.ravel()] > 1).sum()), counts.size)
    assert duplicates(rng.standard_normal((1000, 3))) == (0, 1000)
