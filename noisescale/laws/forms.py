"""The scaling laws as functions, their two parametrizations, and their inverses.

Noise law (information about a signal carried by a representation of cells measured at u UMIs
per cell)::

    I(u) = I_max - 1/2 log2((1 + u/u_bar) / (u/u_bar + 2^(-2 I_max)))
         = 1/2 log2((B u + 1) / (A u + 1)),   A = 1/u_bar,  B = 2^(2 I_max) / u_bar

It is the capacity of a Gaussian channel whose measurement-noise variance scales as 1/u:
I(0) = 0, I(u) -> I_max as u -> infinity, and I(u_bar) is I_max minus at most half a bit.
The exact universal form behind the collapse of all curves is
(2^(2I) - 1) / (2^(2 I_max) - 1) = x / (1 + x) with x = u / u_bar.

Cell-number law (information after training on N cells)::

    I(N) = I_inf - (N / N0)^(-s)

Joint law used for experiment planning (exact in both limits: the noise law as N -> infinity,
the cell-number law with I_inf = I_noise(u) at fixed u)::

    I(N, u) = I_noise(u; u_bar, I_max) - (N / N0)^(-s)

All functions are vectorized over numpy arrays and written to stay accurate for I_max from
~0.001 to ~30 bits (log1p forms; no overflow of 2^(2 I_max)).
"""

from __future__ import annotations

import numpy as np

LN2 = np.log(2.0)


def noise_law(u, u_bar, I_max):
    """I(u) in bits for depth ``u`` (mean UMIs per cell), noise sensitivity ``u_bar`` > 0 and
    capacity ``I_max`` >= 0 (bits)."""
    u = np.asarray(u, dtype=float)
    x = u / u_bar
    # 1/2 log2((2^(2I) x + 1)/(x + 1)) without forming 2^(2I) for large I:
    # log(2^(2I) x + 1) = 2I ln2 + log(x + 2^(-2I)).
    two_i = 2.0 * np.asarray(I_max, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        top = np.where(two_i < 50, np.log1p(np.expm1(two_i * LN2) * x + x),
                       two_i * LN2 + np.log(x + np.exp2(-two_i)))
    return (top - np.log1p(x)) / (2 * LN2)


def noise_law_ab(u, A, B):
    """The same law in the form 1/2 log2((B u + 1) / (A u + 1)), with B >= A > 0."""
    u = np.asarray(u, dtype=float)
    return (np.log1p(B * u) - np.log1p(A * u)) / (2 * LN2)


def to_ab(u_bar, I_max):
    """(A, B) = (1/u_bar, 2^(2 I_max)/u_bar)."""
    u_bar = np.asarray(u_bar, dtype=float)
    return 1.0 / u_bar, np.exp2(2.0 * np.asarray(I_max, dtype=float)) / u_bar


def from_ab(A, B):
    """(u_bar, I_max) = (1/A, 1/2 log2(B/A))."""
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    if np.any(A <= 0) or np.any(B < A):
        raise ValueError("the law needs A > 0 and B >= A")
    return 1.0 / A, 0.5 * np.log2(B / A)


def depth_for_bits(bits, u_bar, I_max):
    """Depth u at which the noise law reaches ``bits`` (< I_max); inf when out of reach."""
    bits = np.asarray(bits, dtype=float)
    u_bar = np.asarray(u_bar, dtype=float)
    I_max = np.asarray(I_max, dtype=float)
    # (2^(2y) - 1) / (2^(2 I_max) - 1) = x / (1 + x)  =>  x = r / (1 - r)
    r = np.expm1(2 * LN2 * bits) / np.expm1(2 * LN2 * I_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = u_bar * r / (1.0 - r)
    u = np.where(bits >= I_max, np.inf, u)
    return np.where(bits <= 0, 0.0, u)


def depth_for_fraction(f, u_bar, I_max):
    """Depth u_f at which I(u) = f * I_max (e.g. f = 0.9 gives u90); 0 < f < 1."""
    f = np.asarray(f, dtype=float)
    if np.any((f <= 0) | (f >= 1)):
        raise ValueError("the fraction f must be in (0, 1)")
    return depth_for_bits(f * np.asarray(I_max, dtype=float), u_bar, I_max)


def collapse_value(mi, I_max):
    """(2^(2I) - 1) / (2^(2 I_max) - 1): on the universal curve x/(1+x), x = u/u_bar."""
    return np.expm1(2 * LN2 * np.asarray(mi, dtype=float)) / np.expm1(
        2 * LN2 * np.asarray(I_max, dtype=float))


def cell_law(n, N0, s, I_inf):
    """I(N) = I_inf - (N/N0)^(-s) for N cells, scale ``N0`` > 0 and exponent ``s`` > 0."""
    n = np.asarray(n, dtype=float)
    return I_inf - np.power(n / N0, -np.asarray(s, dtype=float))


def cells_for_bits(bits, N0, s, I_inf):
    """Number of cells at which the cell-number law reaches ``bits`` (< I_inf); inf beyond."""
    gap = np.asarray(I_inf, dtype=float) - np.asarray(bits, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = N0 * np.power(gap, -1.0 / np.asarray(s, dtype=float))
    return np.where(gap <= 0, np.inf, n)


def cells_for_fraction(f, N0, s, I_inf):
    """Number of cells at which I(N) = f * I_inf; 0 < f < 1."""
    f = np.asarray(f, dtype=float)
    if np.any((f <= 0) | (f >= 1)):
        raise ValueError("the fraction f must be in (0, 1)")
    return cells_for_bits(f * np.asarray(I_inf, dtype=float), N0, s, I_inf)


def joint_law(n, u, u_bar, I_max, N0, s):
    """I(N, u) = noise_law(u; u_bar, I_max) - (N/N0)^(-s)."""
    return noise_law(u, u_bar, I_max) - np.power(np.asarray(n, dtype=float) / N0, -s)
