"""Thinning and downsampling draw from exactly the right distributions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

import noisescale as ns
from stats_util import chisquare_pvalue, mean_var_z

N_SAMPLES = 100_000
P_MIN = 1e-4  # fixed seeds make each test deterministic; a true sampler fails this 1 in 10^4

COUNTS = [1, 2, 7, 20, 50, 1_000, 1_000_000]
FRACTIONS = [1e-3, 0.05, 0.5, 0.93, 0.999]


def binomial_draws(c: int, q: float, seed: int = 1, n: int = N_SAMPLES) -> np.ndarray:
    """n independent Binomial(c, q) draws: one row of n copies of the count c."""
    X = np.full((1, n), c, dtype=np.int64)
    return ns.thin(X, q, seed=seed)[0]


@pytest.mark.parametrize("c", COUNTS)
@pytest.mark.parametrize("q", FRACTIONS)
def test_thin_is_binomial(c, q):
    draws = binomial_draws(c, q, seed=c * 7 + int(q * 1000))
    dist = stats.binom(c, q)
    assert draws.min() >= 0 and draws.max() <= c
    assert chisquare_pvalue(draws, dist) > P_MIN
    z_mean, z_var = mean_var_z(draws, dist.mean(), dist.var())
    assert abs(z_mean) < 5 and abs(z_var) < 5


@pytest.mark.parametrize("c", [2**31 - 1, 2**40])
def test_huge_counts_moments(c):
    q = 0.3
    X = np.full((1, 20_000), c, dtype=np.int64)
    draws = ns.thin(X, q, seed=5)[0]
    z_mean, z_var = mean_var_z(draws, c * q, c * q * (1 - q))
    assert abs(z_mean) < 5 and abs(z_var) < 5


def test_int32_max_count_in_float64_and_int32():
    for dtype in (np.int32, np.float64):
        X = np.full((2, 1000), 2**31 - 1, dtype=dtype)
        Y = ns.thin(X, 0.5, seed=1)
        assert Y.dtype == dtype
        assert abs(Y.mean() / (2**31 - 1) - 0.5) < 1e-3


def test_mixed_counts_in_one_matrix_match_binomial():
    # Counts of different sizes in one sparse matrix (table, inversion and BTRS paths together).
    rng = np.random.default_rng(0)
    c = rng.choice([1, 3, 9, 40, 700], size=200_000)
    X = sp.csr_matrix(c.reshape(400, 500).astype(np.float32))
    Y = ns.thin(X, 0.37, seed=11, keep_zeros=True)
    y = Y.toarray().ravel()
    for value in np.unique(c):
        sel = y[c == value]
        assert chisquare_pvalue(sel, stats.binom(value, 0.37)) > P_MIN


@pytest.mark.parametrize("fractions", [[0.9, 0.5, 0.1], [0.5, 0.499, 0.01, 0.001]])
def test_series_levels_are_binomial_and_nested(fractions):
    c = 30
    X = np.full((1, N_SAMPLES), c, dtype=np.int64)
    levels = ns.thin_series(X, fractions, seed=4)
    prev = X[0]
    for q, Y in zip(fractions, levels):
        y = Y[0]
        assert np.all(y <= prev), "each level must be a sub-sample of the previous one"
        assert chisquare_pvalue(y, stats.binom(c, q)) > P_MIN
        prev = y
    # Conditional law: level 2 given level 1 is Binomial(level1, q2/q1).
    y1, y2 = levels[0][0], levels[1][0]
    ratio = fractions[1] / fractions[0]
    for k in (10, 15, 20, 27):
        sel = y2[y1 == k]
        if sel.size > 500:
            assert chisquare_pvalue(sel, stats.binom(k, ratio)) > P_MIN


@pytest.mark.parametrize(
    "total,marked,take",
    [(10, 3, 5), (40, 10, 30), (1000, 400, 300), (1000, 5, 990), (10**6, 17, 500),
     (10**6, 5 * 10**5, 1000), (10**6, 999_990, 10**5), (50_000, 20_000, 49_995)],
)
def test_downsample_entry_is_hypergeometric(total, marked, take):
    # Each row holds [marked, total - marked]; downsampling to `take` UMIs draws the first
    # entry from Hypergeometric(total, marked, take).
    n = 30_000
    X = np.tile(np.array([[marked, total - marked]], dtype=np.int64), (n, 1))
    Y = ns.downsample_to(X, take, seed=total + marked)
    assert np.all(Y.sum(axis=1) == take)
    dist = stats.hypergeom(total, marked, take)
    assert chisquare_pvalue(Y[:, 0], dist) > P_MIN
    z_mean, z_var = mean_var_z(Y[:, 0], dist.mean(), dist.var())
    assert abs(z_mean) < 5 and abs(z_var) < 5


def test_downsample_is_uniform_over_umis():
    # Without replacement over UMIs: every gene keeps each of its UMIs with probability T/total,
    # so E[kept_j] = c_j * T / total for every gene, whatever its position in the row.
    counts = np.array([5, 1, 100, 3, 40, 1, 1, 250, 7], dtype=np.int64)
    total, target = counts.sum(), 60
    X = np.tile(counts, (40_000, 1))
    Y = ns.downsample_to(X, target, seed=2)
    assert np.all(Y.sum(axis=1) == target)
    assert np.all(Y <= counts)
    expected = counts * target / total
    for j in range(counts.size):
        dist = stats.hypergeom(total, counts[j], target)
        z_mean, _ = mean_var_z(Y[:, j], expected[j], dist.var())
        assert abs(z_mean) < 5, (j, Y[:, j].mean(), expected[j])
