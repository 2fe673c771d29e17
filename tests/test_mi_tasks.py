"""Known-MI tasks (noisescale.simulate.mi_tasks): the truths, the samplers and the transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from noisescale.simulate import mi_tasks as mt


def direct_gaussian_mi(cov: np.ndarray, dx: int) -> float:
    """Entropies written out: h = ½ log((2πe)^d det Σ), I = h(X) + h(Y) − h(X, Y), in bits."""
    def h(c):
        d = c.shape[0]
        return 0.5 * (d * math.log(2 * math.pi * math.e) + math.log(np.linalg.det(c)))

    return (h(cov[:dx, :dx]) + h(cov[dx:, dx:]) - h(cov)) / math.log(2)


@pytest.mark.parametrize("dx,dy,pairs,rho", [(1, 1, 1, 0.8), (2, 2, 2, 0.8), (5, 5, 2, 0.8),
                                             (3, 1, 1, 0.5), (25, 25, 2, 0.8), (3, 3, 3, 0.0)])
def test_sparse_gaussian_truth(dx, dy, pairs, rho):
    cov = mt.sparse_covariance(dx, dy, pairs, rho)
    expected = -pairs / 2 * math.log2(1 - rho**2)
    assert mt.gaussian_mi(cov, dx) == pytest.approx(expected, abs=1e-12)
    assert mt.normal_task(dx, dy, pairs=pairs, rho=rho).mi == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dx,dy,c", [(1, 1, 0.5), (2, 2, 0.5), (5, 5, 0.5), (3, 1, 0.5),
                                     (4, 2, -0.1)])
def test_dense_gaussian_truth(dx, dy, c):
    cov = mt.dense_covariance(dx, dy, c)
    got = mt.gaussian_mi(cov, dx)
    assert got == pytest.approx(direct_gaussian_mi(cov, dx), rel=1e-10)
    # equicorrelation: det of a d x d block is (1 - c)^(d-1) (1 + (d-1) c)
    d = dx + dy
    closed = 0.5 * (-math.log2(1 - c) + math.log2((1 + (dx - 1) * c) * (1 + (dy - 1) * c)
                                                   / (1 + (d - 1) * c)))
    assert got == pytest.approx(closed, rel=1e-10)
    if dx == dy == 1:
        assert got == pytest.approx(-0.5 * math.log2(1 - c * c), rel=1e-12)


def test_gaussian_truth_matches_sample_covariance():
    t = mt.normal_task(3, 3, dense=0.5)
    x, y = t.sample(200_000, seed=1)
    emp = np.cov(np.hstack([x, y]), rowvar=False)
    assert mt.gaussian_mi(emp, 3) == pytest.approx(t.mi, abs=0.01)


def test_student_correction_sign_and_limits():
    for dx, dy in [(1, 1), (2, 2), (3, 1), (5, 5)]:
        values = [mt.student_t_correction(nu, dx, dy) for nu in (1, 2, 3, 5, 10, 100, 1e4)]
        assert all(v > 0 for v in values)
        assert all(a > b for a, b in zip(values, values[1:]))  # falls with the dof
        assert values[-1] < 1e-6  # Gaussian limit
    # grows with the dimensions at fixed dof
    assert mt.student_t_correction(3, 1, 1) < mt.student_t_correction(3, 2, 2) \
        < mt.student_t_correction(3, 5, 5)
    with pytest.raises(ValueError):
        mt.student_t_correction(0, 1, 1)


def test_student_correction_known_value():
    # nu = 1, 1 x 1, identity scale: 0.2242 nats (Beyond Normal's Student-t 1x1, dof 1)
    assert mt.student_t_correction(1, 1, 1) * math.log(2) == pytest.approx(0.22420, abs=5e-5)


@pytest.mark.parametrize("dof,dx,dy,rho", [(3, 2, 2, 0.8), (1, 1, 1, 0.0)])
def test_student_truth_monte_carlo(dof, dx, dy, rho):
    """E[log p(x, y) − log p(x) − log p(y)] under the t density (scipy), on the task's own
    samples: the pointwise MI's mean equals the truth within its Monte-Carlo error."""
    task = mt.student_task(dx, dy, dof, rho=rho, pairs=min(dx, dy))
    cov = mt.sparse_covariance(dx, dy, min(dx, dy), rho)
    x, y = task.sample(200_000, seed=3)
    joint = stats.multivariate_t(np.zeros(dx + dy), cov, df=dof)
    px = stats.multivariate_t(np.zeros(dx), cov[:dx, :dx], df=dof)
    py = stats.multivariate_t(np.zeros(dy), cov[dx:, dx:], df=dof)
    pmi = (joint.logpdf(np.hstack([x, y])) - px.logpdf(x) - py.logpdf(y)) / math.log(2)
    err = pmi.std() / math.sqrt(pmi.size)
    assert abs(pmi.mean() - task.mi) < 4 * err + 1e-3
    assert task.mi == pytest.approx(mt.gaussian_mi(cov, dx)
                                    + mt.student_t_correction(dof, dx, dy), abs=1e-12)


def test_every_task_has_shapes_and_is_deterministic():
    names = set()
    for t in mt.tasks():
        assert t.name not in names
        names.add(t.name)
        x, y = t.sample(64, seed=5)
        assert x.shape == (64, t.dim_x) and y.shape == (64, t.dim_y)
        assert x.dtype == y.dtype == np.float64
        assert np.isfinite(x).all() and np.isfinite(y).all()
        x2, y2 = t.sample(64, seed=5)
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
        x3, _ = t.sample(64, seed=6)
        assert not np.array_equal(x, x3)
        assert t.mi >= 0 and math.isfinite(t.mi)
        assert (t.mi == 0) == (t.family == "independent")
    assert {t.name for t in mt.tasks(quick=True)} <= names
    assert mt.task("normal-1x1").mi == pytest.approx(-0.5 * math.log2(0.36))
    with pytest.raises(KeyError):
        mt.task("nope")


def test_transformed_task_maps_the_base_samples():
    base = mt.normal_task(3, 3, pairs=2)
    for name, (f, inv) in mt.TRANSFORMS.items():
        t = mt.transformed_task(base, name)
        assert t.mi == base.mi and (t.dim_x, t.dim_y) == (3, 3)
        xb, yb = base.sample(100, seed=2)
        xt, yt = t.sample(100, seed=2)
        np.testing.assert_allclose(xt, f(xb))
        np.testing.assert_allclose(inv(yt), yb, atol=1e-9)
    tx = mt.transformed_task(base, "asinh", on="x")
    xb, yb = base.sample(50, seed=0)
    xt, yt = tx.sample(50, seed=0)
    assert np.array_equal(yt, yb) and np.allclose(xt, np.arcsinh(xb))


@pytest.mark.parametrize("name", sorted(mt.TRANSFORMS))
def test_transforms_invertible_and_monotone(name):
    f, inv = mt.TRANSFORMS[name]
    grid = np.linspace(-30, 30, 200_001)
    out = f(grid)
    assert np.all(np.diff(out) > 0)
    np.testing.assert_allclose(inv(out), grid, atol=1e-8, rtol=1e-10)
    assert f(np.array([0.0]))[0] == pytest.approx(f(np.array([0.0]))[0])


def test_wiggly_slope_bound():
    w = mt.WIGGLY
    assert w.max_wiggle < 1
    grid = np.linspace(-20, 20, 100_001)
    assert w.derivative(grid).min() >= 1 - w.max_wiggle - 1e-12
    num = np.gradient(w(grid), grid)
    np.testing.assert_allclose(num[1:-1], w.derivative(grid)[1:-1], atol=1e-5)
    with pytest.raises(ValueError):
        mt.Wiggly(amplitudes=(0.6,), frequencies=(2.0,), phases=(0.0,))


def test_channel_task_truth():
    from noisescale.simulate import GaussianChannel

    t = mt.channel_task(1.0, dim=8, u_bar=1.0, I_max=2.0)
    ch = GaussianChannel(u_bar=1.0, I_max=2.0, dim=8)
    assert t.mi == pytest.approx(ch.mi(1.0))
    assert t.mi == pytest.approx(mt.gaussian_mi(ch.covariance(1.0), 8), rel=1e-9)
    # noise law at u = u_bar: I_max - 1/2 log2(2 / (1 + 2^-2 I_max))
    assert t.mi == pytest.approx(2 - 0.5 * math.log2(2 / (1 + 2**-4)))
    x, y = t.sample(100, seed=0)
    assert x.shape == (100, 8) and y.shape == (100, 1)
