"""Checking and preparing sample matrices for the estimators (never modifying the input)."""

from __future__ import annotations

import math

import numpy as np

from .._internal.checks import check_int
from .._internal.seeding import generator
import scipy.sparse as sp


def as_samples(name: str, a, n: int | None = None) -> np.ndarray:
    """``a`` as a new C-contiguous float64 (n_samples, n_dims) array, with clear errors.

    1-D input is one dimension per sample; scipy sparse input is densified (representations are
    low-dimensional).
    """
    if sp.issparse(a):
        a = a.toarray()
    arr = np.asarray(a)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array (samples x dims), got shape "
                         f"{arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no dimensions (shape {arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"x and {name} must have the same number of samples, got {n} and "
                         f"{arr.shape[0]}")
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite value(s) (first in sample "
                         f"{row}); remove or impute them before estimating MI")
    return out


def rank_normal(a: np.ndarray) -> np.ndarray:
    """:func:`~noisescale.mi.gaussian.normal_scores` of an already checked (N, d) float64
    array (a new array)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    return ndtri(rankdata(a, axis=0, method="average") / (a.shape[0] + 1.0))


def check_k(k, n: int) -> int:
    """Validate the neighbour count against the sample count."""
    k = check_int("k", k, 1)
    if n <= k:
        raise ValueError(f"need more samples than k: got {n} sample(s) with k={k}")
    return int(k)


def standardize_(a: np.ndarray) -> None:
    """z-score each column in place; constant columns (all values equal) become exactly 0."""
    const = (a == a[0]).all(axis=0)
    a -= a.mean(axis=0)
    std = a.std(axis=0)
    std[std == 0] = 1.0
    a /= std
    a[:, const] = 0.0


def check_jitter(jitter) -> float:
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise ValueError(f"jitter must be a finite number >= 0, got {jitter!r}")
    return float(jitter)


def jitter_(a: np.ndarray, scale: float, seed: int, stream: str) -> None:
    """Add seeded uniform noise in [-scale, scale) times each column's standard deviation, in
    place.

    The noise breaks distance ties (duplicate points are common in count-derived data) the same
    way every time: it depends only on (seed, stream, shape); ``stream`` names the variable.
    Every column that is not constant has a nonzero standard deviation, so any two duplicate
    rows of a variable that is not constant are separated (the estimators return 0 for a
    constant variable before jittering). Constant columns stay exactly as they were: they add no
    distance, jittered or not. A column whose mean exceeds its standard deviation (an offset,
    possible with ``standardize=False``) is centered first, a translation that leaves distances
    unchanged up to rounding, so the noise is not rounded away by the offset (1e-10 of a
    standard deviation is below the float64 resolution of values beyond ~1e5 standard
    deviations). Standardized columns have mean ~0 and are never shifted.
    """
    if scale == 0:
        return
    std = a.std(axis=0)
    const = (a == a[0]).all(axis=0)
    std[const] = 0.0
    offset = np.abs(a.mean(axis=0)) > std
    offset &= ~const
    if offset.any():
        a[:, offset] -= a[:, offset].mean(axis=0)
    gen = generator(seed, "jitter", stream)
    noise = gen.random(a.shape)
    noise *= 2.0
    noise -= 1.0
    noise *= scale * std
    a += noise
