"""Gaussian (canonical-correlation) mutual information, in bits.

For jointly Gaussian x and y the MI is a function of their canonical correlations ρ_i alone,

    I = −½ Σ_i log2(1 − ρ_i²) = ½ log2(det Σx · det Σy / det Σ),

so the plug-in estimate from sample canonical correlations is exact for Gaussian data in the
large-sample limit and a fast linear baseline for any data: it measures only the linear
dependence, and it is neither an upper nor a lower bound in general (two copies of a fair coin
share 1 bit but are perfectly correlated, so their Gaussian MI is infinite).

Small-sample bias. For Gaussian data the plug-in estimate (sample covariances with N − 1
degrees of freedom) has an expected bias that does not depend on the covariance at all
(E log det of a Wishart matrix is log det Σ plus a constant):

    bias = (1 / (2 ln 2)) Σ_{i=1}^{dy} [ψ((N − i)/2) − ψ((N − dx − i)/2)]  bits
         ≈ dx·dy / (2 N ln 2) bits (first order),

with dx, dy the ranks of x and y. :func:`cca` subtracts it by default, so its Gaussian-data
estimate is unbiased at every N and every true MI (independent data average 0, and about half
of their estimates are negative); ``bias_correction=False`` gives the plug-in value, which is
>= 0 always. The correction is exact only for Gaussian data and only without ``ridge``.

Gaussian copula (``copula=True``; Ince et al. 2017, "GCMI"). Each column is first replaced by
the normal scores of its ranks, Φ⁻¹(rank / (N + 1)), and the Gaussian MI is taken of those.
MI is unchanged by an increasing map of any coordinate, so this estimate is exact (in
expectation, with the bias correction) for every per-coordinate monotone transform of Gaussian
data — skewed, heavy-tailed or saturating marginals such as log counts, protein levels or a
bounded embedding — where plain CCA loses the part of the dependence its linear fit misses.
It still sees only the dependence a Gaussian copula carries: for one dimension per side it is a
lower bound on the MI (the Gaussian copula has the least MI for a given rank correlation), and
it misses non-monotone dependence (y = x²) entirely.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma

from .._internal.checks import check_bool, check_number
from ._samples import as_samples, rank_normal, standardize_
from ._ties import is_constant

LN2 = math.log(2.0)


def normal_scores(a) -> np.ndarray:
    """Each column of ``a`` (N, d) replaced by Φ⁻¹(rank / (N + 1)), ranks from 1 to N with
    ties sharing their average rank: a new float64 array with standard-normal marginals (up to
    ties), increasing in each column's values; a constant column becomes constant 0."""
    return rank_normal(as_samples("a", a))


def canonical_correlations(x, y, *, ridge: float = 0.0) -> np.ndarray:
    """Sample canonical correlations of ``x`` (N, dx) and ``y`` (N, dy), largest first.

    Each variable is centered, scaled to unit variance per column and reduced to an orthonormal
    basis of its column space (thin SVD; directions with a singular value below
    ``max(N, d) · eps`` of the largest are null and dropped), so duplicated or collinear columns
    (one-hot labels, whose columns sum to 1) count once. The result has min(rank x, rank y)
    entries in [0, 1]; a constant variable has rank 0 and gives an empty array.

    Parameters
    ----------
    x, y
        Samples, 1-D (one dimension) or 2-D (samples x dims), numeric, finite, same length.
    ridge
        Regularization: each covariance gets ``ridge`` times its mean variance (1 after the
        per-column scaling) added to its diagonal, shrinking the correlations. 0 (default)
        is plain CCA, which needs rank x + rank y < N: with more dimensions than that the
        column spaces always intersect and some correlations are 1 by construction, which is
        an error; ``ridge > 0`` works with any number of dimensions.

    Raises
    ------
    ValueError
        Mismatched lengths, NaN or infinite values, fewer than 2 samples, a negative ``ridge``,
        or rank x + rank y >= N with ``ridge=0``.
    """
    return _canonical(x, y, ridge)[0]


def cca(x, y, *, bias_correction: bool | None = None, ridge: float = 0.0,
        copula: bool = False) -> float:
    """Gaussian MI in bits, −½ Σ log2(1 − ρ_i²), from the canonical correlations of x and y.

    Exact (in expectation, with the default bias correction) for jointly Gaussian data; for
    other data it is the MI of the Gaussian with the same covariance, a linear baseline.
    Invariant to invertible linear maps of x and of y (with ``ridge=0``), to duplicated or
    collinear columns (see :func:`canonical_correlations`); with ``copula=True`` to increasing
    maps of each column instead.

    Parameters
    ----------
    x, y
        Samples, 1-D or 2-D (samples x dims), numeric, finite, same length.
    bias_correction
        Subtract the plug-in estimate's expected bias for Gaussian data (module docstring; about
        dx·dy / (2 N ln 2) bits), which makes the estimate unbiased for Gaussian data and lets
        it be negative. None (default) means True with ``ridge=0`` and False with ``ridge > 0``
        (the correction does not hold for the shrunk correlations; asking for both is an
        error).
    ridge
        As in :func:`canonical_correlations`; > 0 allows rank x + rank y >= N, at the price of
        an estimate shrunk towards 0 by an amount that depends on the scale of ``ridge``.
    copula
        Take the Gaussian MI of each column's normal scores (:func:`normal_scores`): the
        Gaussian-copula estimate, exact for monotone transforms of Gaussian data (module
        docstring). Tied values share their average rank, so a binary or one-hot column is
        an affine map of itself and counts as in plain CCA.

    Returns
    -------
    float
        Bits. Exactly 0.0 when x or y is constant. ``inf`` when a direction of y is an exact
        linear function of x (a canonical correlation of 1 to rounding): Gaussian MI is then
        infinite.
    """
    ridge = check_number("ridge", ridge, minimum=0.0)
    if bias_correction is None:
        bias_correction = ridge == 0
    elif not isinstance(bias_correction, bool | np.bool_):
        raise TypeError(f"bias_correction must be True, False or None, got {bias_correction!r}")
    if bias_correction and ridge > 0:
        raise ValueError("bias_correction=True holds only for ridge=0: the bias of the "
                         "regularized estimate is not known; pass bias_correction=False")
    rho, one_minus_rho2, n, rx, ry = _canonical(x, y, ridge, copula=check_bool("copula", copula))
    if rx == 0 or ry == 0:
        return 0.0
    if (one_minus_rho2 <= 0).any():
        return math.inf
    mi = -0.5 * float(np.sum(np.log(one_minus_rho2))) / LN2
    if bias_correction:
        mi -= gaussian_bias(n, rx, ry)
    return mi


def gaussian_bias(n: int, dx: int, dy: int) -> float:
    """Expected bias in bits of the plug-in Gaussian MI of N samples of dx- and dy-dimensional
    jointly Gaussian variables (any covariance), for dx + dy < N; 0 when dx or dy is 0."""
    if dx == 0 or dy == 0:
        return 0.0
    if dx + dy >= n:
        raise ValueError(f"the bias is defined for dx + dy < N, got {dx} + {dy} with N={n}")
    i = np.arange(1, min(dx, dy) + 1)
    big = max(dx, dy)  # symmetric in dx, dy; sum over the smaller one
    return 0.5 * float(np.sum(digamma((n - i) / 2) - digamma((n - big - i) / 2))) / LN2


def _canonical(x, y, ridge, copula: bool = False
               ) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """(ρ descending, 1 − ρ² computed accurately near ρ = 1, N, rank x, rank y)."""
    ridge = check_number("ridge", ridge, minimum=0.0)
    xs = as_samples("x", x)
    n = xs.shape[0]
    ys = as_samples("y", y, n)
    if n < 2:
        raise ValueError(f"need at least 2 samples for canonical correlations, got {n}")
    if copula:
        xs, ys = rank_normal(xs), rank_normal(ys)
    empty = np.zeros(0)
    standardize_(xs)
    standardize_(ys)
    if is_constant(xs) or is_constant(ys):
        return empty, empty, n, 0, 0
    ux, sx = _basis(xs)
    uy, sy = _basis(ys)
    rx, ry = ux.shape[1], uy.shape[1]
    if ridge == 0 and rx + ry >= n:
        raise ValueError(
            f"too few samples for CCA: x has rank {rx} and y rank {ry} but there are only {n} "
            f"samples (need rank x + rank y < N = {n}); with that many dimensions some "
            "canonical correlations are 1 whatever the data. Reduce the dimensions (e.g. PCA) "
            "or pass ridge > 0")
    if ridge == 0:
        u, rho, vt = np.linalg.svd(ux.T @ uy, full_matrices=False)
        rho = np.clip(rho, 0.0, 1.0)
        # 1 - ρ² as the squared residual of each y canonical variate after projecting it on
        # x's column space: accurate to rounding even for ρ within 1e-16 of 1.
        b = uy @ vt.T
        resid = b - ux @ (ux.T @ b)
        s2 = np.einsum("ij,ij->j", resid, resid)
        tol = max(n, rx, ry) * np.finfo(float).eps
        s2[np.sqrt(s2) <= tol] = 0.0
        return rho, np.clip(s2, 0.0, 1.0), n, rx, ry
    # Regularized: singular values of (Cxx + λI)^-1/2 Cxy (Cyy + λI)^-1/2 in the bases of the
    # column spaces (the null directions carry no covariance). Mean variance is 1 per column.
    lam_x = ridge * (n - 1) * (np.sum(sx**2) / (n - 1)) / xs.shape[1]
    lam_y = ridge * (n - 1) * (np.sum(sy**2) / (n - 1)) / ys.shape[1]
    dx = sx / np.sqrt(sx**2 + lam_x)
    dy = sy / np.sqrt(sy**2 + lam_y)
    rho = np.linalg.svd((ux * dx).T @ (uy * dy), compute_uv=False)
    rho = np.clip(rho, 0.0, 1.0)
    return rho, (1.0 - rho) * (1.0 + rho), n, rx, ry


def _basis(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis (N, r) of the column space of the centered ``a`` and its r singular
    values; directions below max(N, d)·eps of the largest singular value are dropped."""
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    keep = s > max(a.shape) * np.finfo(float).eps * s[0]
    return u[:, keep], s[keep]
