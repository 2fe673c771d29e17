"""Least-squares fits of the scaling laws, with uncertainty and reliability flags.

Methods (for a methods section)
-------------------------------
* **Model and parameters.** Scale parameters are fitted on a log scale (u_bar, N0, s) so that
  they stay positive and their intervals are asymmetric; I_max is bounded to [0, 30] bits.
* **Objective.** Ordinary least squares on MI in bits, or weighted least squares with per-point
  standard deviations ``sigma`` (given, or estimated from the spread of replicates at each x
  with ``sigma="replicates"``). Weights are relative: the covariance is scaled by the reduced
  chi-square, as in ``scipy.optimize.curve_fit(absolute_sigma=False)``.
* **Starting points.** The objective is evaluated on a log-spaced grid of scale parameters times
  a grid of amplitudes spanning the data; the best distinct grid cells are polished with
  bounded trust-region least squares (``scipy.optimize.least_squares``, method 'trf') and the
  lowest optimum is kept, so the result does not depend on a lucky initial guess.
* **Uncertainty.** Standard errors from the Gauss-Newton covariance (J^T J)^-1 s^2 at the optimum
  (delta method for log-scaled parameters); ``level`` intervals are t-intervals with n - p degrees
  of freedom on the fitted scale (log scale for u_bar, N0, s). Optional bootstrap percentile
  intervals resample whole replicate curves when replicate labels are given, otherwise points.
* **Goodness of fit.** R^2 (unweighted; NaN when the MI values do not vary), RMSE,
  AIC = n log(RSS/n) + 2p, residuals.
* **Flags.** A fit is ``reliable`` when it has none of :data:`UNRELIABLE`:
  ``few_points`` (fewer than p + 3 points), ``few_levels`` (fewer than three distinct levels
  of x: depths for the noise law, cell numbers for the cell law, either for the joint law;
  values within :data:`LEVEL_RTOL` (10 %) of each other count as one level, so replicates
  whose measured depths differ slightly stay one level; two levels are matched by many
  (u_bar, I_max) pairs, with nothing left to test the shape), ``flat`` (all MI values
  equal: no dependence on x, scale undetermined; R^2 is NaN), ``unbracketed`` (noise and
  joint law: no depth below or none above the fitted u_bar, so u_bar is extrapolated from
  one side of the bend), ``not_saturating`` (noise law: the deepest point reaches less than
  half of I_max, so I_max is an extrapolation; cell law: the largest N is still more than
  half of I_inf away from it), ``uncertain`` (a standard error exceeds its parameter),
  ``at_bound`` (a parameter ended on its bound), ``poor_fit`` (R^2 below :data:`R2_FLOOR`
  = 0.5: the law explains less than half of the variance of MI; fits of curves that follow
  the law with 3 % noise have R^2 >= 0.72 in the coverage tests, the lowest of 800, while
  the law fitted to pure noise reaches R^2 0.42 at the 95th percentile) and, informative
  only, ``negative_mi`` (some MI < 0, kept: clipping would bias the fit), ``dropped_nan``
  (rows with NaN were dropped).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast, overload

import numpy as np
from scipy import optimize, stats

from .._internal.checks import check_int
from .._internal.seeding import generator
from .forms import cell_law, depth_for_fraction, joint_law, noise_law

MAX_BITS = 30.0
#: Flags that make a fit unreliable (see the module docstring).
UNRELIABLE = ("few_points", "few_levels", "flat", "unbracketed", "not_saturating", "uncertain",
              "at_bound", "poor_fit")
#: Flags of fits whose parameters the data do not determine: figures draw them as points only.
UNDETERMINED = frozenset({"failed", "flat", "few_points", "few_levels", "at_bound"})
#: A fit needs at least this many distinct levels of each x (depths, cell numbers).
MIN_LEVELS = 3
#: x values within this relative distance of the smallest value of a level belong to it.
LEVEL_RTOL = 0.1
#: Fits with R^2 below this are flagged ``poor_fit`` (unreliable).
R2_FLOOR = 0.5


@dataclass(frozen=True)
class _Model:
    """A law in internal coordinates theta (logs for scale parameters)."""

    law: str
    names: tuple[str, ...]
    log_scaled: tuple[bool, ...]
    fv: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (m, p) thetas, (n, k) x -> (m, n)

    def f(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self.fv(np.asarray(theta, dtype=float)[None, :], x)[0]

    def params(self, theta: np.ndarray) -> np.ndarray:
        return np.where(self.log_scaled, np.exp(theta), theta)


def _noise_fv(t, x):
    return noise_law(x[None, :, 0], np.exp(t[:, :1]), t[:, 1:2])


def _cells_fv(t, x):
    return cell_law(x[None, :, 0], np.exp(t[:, :1]), np.exp(t[:, 1:2]), t[:, 2:3])


def _joint_fv(t, x):
    return joint_law(x[None, :, 0], x[None, :, 1], np.exp(t[:, :1]), t[:, 1:2],
                     np.exp(t[:, 2:3]), np.exp(t[:, 3:4]))


MODELS = {
    "noise": _Model("noise", ("u_bar", "I_max"), (True, False), _noise_fv),
    "cells": _Model("cells", ("N0", "s", "I_inf"), (True, True, False), _cells_fv),
    "joint": _Model("joint", ("u_bar", "I_max", "N0", "s"), (True, False, True, True),
                    _joint_fv),
}


@dataclass
class LawFit:
    """A fitted law. The fitters return its subclasses, whose parameters are attributes:
    :class:`NoiseLawFit` (``u_bar``, ``I_max``), :class:`CellLawFit` (``N0``, ``s``,
    ``I_inf``) and :class:`JointLawFit` (``u_bar``, ``I_max``, ``N0``, ``s``), each with
    ``_err`` (standard error) and ``_ci`` (``level`` interval), e.g. ``fit.u_bar_ci``."""

    law: str
    params: dict[str, float]
    errors: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    n: int
    dof: int
    r2: float
    rmse: float
    aic: float
    residuals: np.ndarray
    flags: list[str]
    theta: np.ndarray
    cov: np.ndarray
    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None
    n_dropped: int = 0
    saturation: float = float("nan")
    bootstrap_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def reliable(self) -> bool:
        return not any(f in UNRELIABLE for f in self.flags)

    def predict(self, *x) -> np.ndarray:
        """The fitted law at x (u; or N; or N, u for the joint law)."""
        X = np.column_stack([np.asarray(v, dtype=float).ravel() for v in x])
        shape = np.broadcast(*[np.asarray(v) for v in x]).shape
        return MODELS[self.law].f(self.theta, X).reshape(shape)

    def band(self, *x, level: float = 0.95, draws: int = 400, seed: int = 0):
        """Pointwise ``level`` confidence band of the curve, from parameter draws."""
        rng = generator(seed, "band")
        X = np.column_stack([np.asarray(v, dtype=float).ravel() for v in x])
        cov = np.where(np.isfinite(self.cov), self.cov, 0.0)
        thetas = rng.multivariate_normal(self.theta, cov, size=draws, method="eigh")
        curves = MODELS[self.law].fv(thetas, X)
        a = (1 - level) / 2
        return np.quantile(curves, a, axis=0), np.quantile(curves, 1 - a, axis=0)

    def depth_for_fraction(self, f: float) -> float:
        """Noise law: the depth reaching a fraction f of I_max (u90 for f = 0.9)."""
        if self.law != "noise":
            raise ValueError("depth_for_fraction applies to noise-law fits")
        return float(depth_for_fraction(f, self.params["u_bar"], self.params["I_max"]))

    def as_dict(self) -> dict[str, Any]:
        """A flat row: parameters, errors, intervals, goodness of fit and flags."""
        row: dict[str, Any] = {"law": self.law, "n_points": self.n}
        for k, v in self.params.items():
            lo, hi = self.intervals[k]
            row.update({k: v, f"{k}_err": self.errors[k], f"{k}_lo": lo, f"{k}_hi": hi})
            if k in self.bootstrap_intervals:
                blo, bhi = self.bootstrap_intervals[k]
                row.update({f"{k}_boot_lo": blo, f"{k}_boot_hi": bhi})
        if self.law == "noise":
            row["u90"] = self.depth_for_fraction(0.9)
            row["saturation"] = self.saturation
        row.update({"r2": self.r2, "rmse": self.rmse, "aic": self.aic,
                    "reliable": self.reliable, "flags": ";".join(self.flags)})
        return row


T = TypeVar("T")


class _Param(Generic[T]):
    """A parameter of a fit as an attribute: its value, ``_err`` or ``_ci``."""

    def __init__(self, name: str, table: str):
        self.name, self.table = name, table

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Param[T]: ...

    @overload
    def __get__(self, obj: LawFit, owner: type | None = None) -> T: ...

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(obj, self.table)[self.name]


def _value(name: str) -> _Param[float]:
    return _Param(name, "params")


def _err(name: str) -> _Param[float]:
    return _Param(name, "errors")


def _ci(name: str) -> _Param[tuple[float, float]]:
    return _Param(name, "intervals")


class NoiseLawFit(LawFit):
    """A fit of the noise law I(u): noise sensitivity ``u_bar`` and capacity ``I_max``."""

    u_bar, u_bar_err, u_bar_ci = _value("u_bar"), _err("u_bar"), _ci("u_bar")
    I_max, I_max_err, I_max_ci = _value("I_max"), _err("I_max"), _ci("I_max")


class CellLawFit(LawFit):
    """A fit of the cell-number law I(N) = I_inf - (N/N0)^(-s)."""

    N0, N0_err, N0_ci = _value("N0"), _err("N0"), _ci("N0")
    s, s_err, s_ci = _value("s"), _err("s"), _ci("s")
    I_inf, I_inf_err, I_inf_ci = _value("I_inf"), _err("I_inf"), _ci("I_inf")


class JointLawFit(LawFit):
    """A fit of the joint law I(N, u)."""

    u_bar, u_bar_err, u_bar_ci = _value("u_bar"), _err("u_bar"), _ci("u_bar")
    I_max, I_max_err, I_max_ci = _value("I_max"), _err("I_max"), _ci("I_max")
    N0, N0_err, N0_ci = _value("N0"), _err("N0"), _ci("N0")
    s, s_err, s_ci = _value("s"), _err("s"), _ci("s")


FIT_CLASSES: dict[str, type[LawFit]] = {"noise": NoiseLawFit, "cells": CellLawFit,
                                        "joint": JointLawFit}


# --------------------------------------------------------------------------------------------
# Input checks


def _clean(xs: list[Any], y: Any, sigma: Any, names: list[str], min_points: int):
    """Finite float arrays with NaN rows dropped; clear errors for invalid input."""
    arrays = [np.asarray(v, dtype=float).ravel() for v in xs]
    yv = np.asarray(y, dtype=float).ravel()
    n = yv.shape[0]
    for a, name in zip(arrays, names):
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} values but mi has {n}")
    sv = None
    if sigma is not None:
        sv = np.asarray(sigma, dtype=float).ravel()
        if sv.shape[0] != n:
            raise ValueError(f"sigma has {sv.shape[0]} values but mi has {n}")
    keep = np.isfinite(yv)
    for a in arrays:
        keep &= ~np.isnan(a)
    if sv is not None:
        keep &= np.isfinite(sv)
    for a, name in zip(arrays, names):
        bad = ~np.isfinite(a[keep]) | (a[keep] <= 0)
        if bad.any():
            raise ValueError(f"{name} must be finite and > 0; {int(bad.sum())} value(s) are not "
                             f"(first: {a[keep][bad][0]})")
    if sv is not None and np.any(sv[keep] <= 0):
        raise ValueError("sigma must be > 0")
    dropped = int(n - keep.sum())
    if keep.sum() < min_points:
        raise ValueError(f"need at least {min_points} points with finite values to fit this "
                         f"law, got {int(keep.sum())} (after dropping {dropped} with NaN)")
    return (np.column_stack([a[keep] for a in arrays]), yv[keep],
            None if sv is None else sv[keep], dropped, keep)


def replicate_sigma(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-point sigma from the spread of replicates sharing the same x (rows of x).

    Each point gets the standard deviation of the MI values at its x; x values without
    replicates, or with zero spread, get the median spread (floored at 1e-6 bits)."""
    keys, inverse = np.unique(np.round(x, 12), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    sd = np.full(len(keys), np.nan)
    for k in range(len(keys)):
        vals = y[inverse == k]
        if vals.size >= 2:
            sd[k] = np.std(vals, ddof=1)
    good = sd[np.isfinite(sd) & (sd > 0)]
    if good.size == 0:
        raise ValueError("sigma='replicates' needs at least two MI values at some x")
    fill = max(float(np.median(good)), 1e-6)
    sd = np.where(np.isfinite(sd) & (sd > 0), np.maximum(sd, 0.1 * fill), fill)
    return sd[inverse]


def n_levels(x: np.ndarray, rtol: float = LEVEL_RTOL) -> int:
    """The number of distinct levels of positive values x: sorted, each level starts at the
    smallest value not yet taken and holds the values up to (1 + rtol) times it."""
    levels, top = 0, -math.inf
    for v in np.sort(np.asarray(x, dtype=float).ravel()):
        if v > top:
            levels, top = levels + 1, v * (1 + rtol)
    return levels


# --------------------------------------------------------------------------------------------
# The fitting engine


def _grid_and_bounds(model: _Model, x: np.ndarray, y: np.ndarray):
    """Starting-point grids and bounds in theta coordinates."""
    ymax = max(float(np.max(np.abs(y))), 1e-6)
    if model.law == "noise":
        u = x[:, 0]
        lo, hi = math.log(u.min()) - math.log(1e4), math.log(u.max()) + math.log(1e4)
        grids = [np.linspace(math.log(u.min()) - 3, math.log(u.max()) + 3, 36),
                 np.concatenate([ymax * np.linspace(0.02, 4, 40), [ymax * 10]])]
        bounds = ([lo, 0.0], [hi, MAX_BITS])
    elif model.law == "cells":
        n = x[:, 0]
        grids = [np.linspace(math.log(n.min()) - 6, math.log(n.max()) + 2, 30),
                 np.log(np.geomspace(0.05, 3, 14)),
                 ymax * np.linspace(-0.5, 3, 22)]
        bounds = ([math.log(n.min()) - 30, math.log(1e-3), -MAX_BITS],
                  [math.log(n.max()) + 30, math.log(10.0), MAX_BITS])
    else:
        n, u = x[:, 0], x[:, 1]
        grids = [np.linspace(math.log(u.min()) - 3, math.log(u.max()) + 3, 16),
                 ymax * np.linspace(0.05, 4, 16),
                 np.linspace(math.log(n.min()) - 6, math.log(n.max()) + 2, 12),
                 np.log(np.geomspace(0.05, 3, 8))]
        bounds = ([math.log(u.min()) - math.log(1e4), 0.0, math.log(n.min()) - 30,
                   math.log(1e-3)],
                  [math.log(u.max()) + math.log(1e4), MAX_BITS, math.log(n.max()) + 30,
                   math.log(10.0)])
    return grids, bounds


def _starts(model: _Model, grids, x, y, w, n_best: int = 4) -> list[np.ndarray]:
    mesh = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, len(grids))
    costs = np.empty(len(mesh))
    with np.errstate(all="ignore"):
        for a in range(0, len(mesh), 4096):
            r = (model.fv(mesh[a:a + 4096], x) - y) * w
            costs[a:a + 4096] = np.einsum("ij,ij->i", r, r)
    costs[~np.isfinite(costs)] = np.inf
    order = np.argsort(costs)
    picked: list[np.ndarray] = []
    for i in order:  # the best grid points that are not neighbours of one already picked
        if len(picked) == n_best or not np.isfinite(costs[i]):
            break
        if all(np.max(np.abs(mesh[i] - p) / _spacing(grids)) > 2.5 for p in picked):
            picked.append(mesh[i])
    return picked


def _spacing(grids) -> np.ndarray:
    return np.array([max(float(np.ptp(g)) / max(len(g) - 1, 1), 1e-12) for g in grids])


def _solve(model: _Model, x, y, w, starts, bounds):
    best = None
    lo, hi = np.asarray(bounds[0]), np.asarray(bounds[1])
    for s in starts:
        s = np.clip(s, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        with np.errstate(all="ignore"):
            res = optimize.least_squares(lambda t: (model.f(t, x) - y) * w, s,
                                         bounds=(lo, hi), method="trf", x_scale="jac",
                                         xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise RuntimeError("the fit did not converge from any starting point")
    return best


def _fit(model: _Model, X: np.ndarray, y: np.ndarray, sigma: np.ndarray | None, *,
         level: float, dropped: int, bootstrap: int, replicate: np.ndarray | None,
         seed: int) -> LawFit:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = len(model.names)
    n = len(y)
    w = np.ones(n) if sigma is None else 1.0 / sigma
    grids, bounds = _grid_and_bounds(model, X, y)
    res = _solve(model, X, y, w, _starts(model, grids, X, y, w), bounds)
    theta = res.x
    resid_w = res.fun
    dof = n - p
    chi2 = float(resid_w @ resid_w)
    s2 = chi2 / dof if dof > 0 else float("nan")
    J = res.jac
    cov = np.linalg.pinv(J.T @ J) * s2
    se_theta = np.sqrt(np.clip(np.diag(cov), 0, None))
    t = stats.t.ppf(0.5 + level / 2, dof) if dof > 0 else float("inf")
    values = model.params(theta)
    params, errors, intervals = {}, {}, {}
    for k, name in enumerate(model.names):
        lo_t, hi_t = theta[k] - t * se_theta[k], theta[k] + t * se_theta[k]
        if model.log_scaled[k]:
            params[name] = float(values[k])
            errors[name] = float(values[k] * se_theta[k])
            with np.errstate(over="ignore"):  # an undetermined log-scale end is +inf
                intervals[name] = (float(np.exp(lo_t)), float(np.exp(hi_t)))
        else:
            params[name] = float(theta[k])
            errors[name] = float(se_theta[k])
            intervals[name] = (float(lo_t), float(hi_t))

    fitted = model.f(theta, X)
    resid = y - fitted
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    flat = bool(np.ptp(y) <= 1e-12 * max(1.0, float(np.max(np.abs(y)))))
    # equal values leave a rounding-sized tss: 1 - rss/tss would be a meaningless -1e22
    r2 = 1 - rss / tss if tss > 0 and not flat else float("nan")
    aic = n * math.log(max(rss, 1e-300) / n) + 2 * p

    flags = []
    if n < p + 3:
        flags.append("few_points")
    if any(n_levels(X[:, k]) < MIN_LEVELS for k in range(X.shape[1])):
        flags.append("few_levels")
    if flat:
        flags.append("flat")
    if model.law in ("noise", "joint"):
        u = X[:, -1]
        if not u.min() < params["u_bar"] < u.max():
            flags.append("unbracketed")
    saturation = float("nan")
    if model.law == "noise":
        I_max = params["I_max"]
        saturation = float(model.f(theta, X[[np.argmax(X[:, 0])]])[0] / I_max) if I_max > 0 \
            else float("nan")
        if I_max > 0 and saturation < 0.5:
            flags.append("not_saturating")
    elif model.law == "cells":
        gap = (X[:, 0].max() / params["N0"]) ** (-params["s"])
        if gap > 0.5 * abs(params["I_inf"]):
            flags.append("not_saturating")
    if any(not np.isfinite(errors[k]) or errors[k] > abs(params[k]) for k in model.names):
        flags.append("uncertain")
    lo, hi = np.asarray(bounds[0]), np.asarray(bounds[1])
    tol = 1e-6 * (hi - lo)
    if np.any(theta - lo < tol) or np.any(hi - theta < tol):
        flags.append("at_bound")
    if np.isfinite(r2) and r2 < R2_FLOOR:
        flags.append("poor_fit")
    if np.any(y < 0):
        flags.append("negative_mi")
    if dropped:
        flags.append("dropped_nan")

    fit = FIT_CLASSES[model.law](
        law=model.law, params=params, errors=errors, intervals=intervals, level=level, n=n,
        dof=dof, r2=r2, rmse=math.sqrt(rss / n), aic=aic, residuals=resid, flags=flags,
        theta=theta, cov=cov, x=X, y=y, sigma=sigma, n_dropped=dropped, saturation=saturation)
    if bootstrap:
        fit.bootstrap_intervals = _bootstrap(model, fit, w, bounds, bootstrap, replicate, seed)
    return fit


def _bootstrap(model: _Model, fit: LawFit, w, bounds, draws: int, replicate, seed: int):
    """Percentile intervals from refits on resampled replicate curves (or points)."""
    rng = generator(seed, "bootstrap")
    X, y = fit.x, fit.y
    p = len(model.names)
    groups = [np.flatnonzero(replicate == r) for r in np.unique(replicate)] \
        if replicate is not None else [np.array([i]) for i in range(len(y))]
    samples = []
    for _ in range(draws):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        if len(np.unique(X[idx], axis=0)) < p + 1:
            continue  # too few distinct x to identify the law
        res = _solve(model, X[idx], y[idx], w[idx], [fit.theta], bounds)
        samples.append(model.params(res.x))
    if len(samples) < max(20, draws // 2):
        return {}
    samples = np.array(samples)
    a = (1 - fit.level) / 2
    return {name: (float(np.quantile(samples[:, k], a)), float(np.quantile(samples[:, k], 1 - a)))
            for k, name in enumerate(model.names)}


# --------------------------------------------------------------------------------------------
# Public entry points


def fit_noise_law(u, mi, *, sigma=None, level: float = 0.95, bootstrap: int = 0,
                  replicate=None, seed: int = 0) -> NoiseLawFit:
    """Fit ``I(u) = I_max - 1/2 log2((1 + u/u_bar) / (u/u_bar + 2^(-2 I_max)))``.

    Parameters
    ----------
    u
        Depths: mean UMIs per cell (> 0). Repeated values (replicates) are welcome.
    mi
        MI estimates in bits; small negative values are kept. Rows with NaN are dropped.
    sigma
        Per-point standard deviations (relative weights), ``"replicates"`` to estimate them
        from the spread at each depth, or None (unweighted).
    level
        Confidence level of the intervals.
    bootstrap
        Number of bootstrap refits for percentile intervals (0: none).
    replicate
        Replicate label per point: the bootstrap then resamples whole curves.
    seed
        Seed of the bootstrap.

    Returns a :class:`LawFit` with ``u_bar``, ``I_max``, ``u_bar_err``, ``I_max_err``,
    ``u_bar_ci``, ``I_max_ci``, ``r2``, ``aic``, ``flags``; see the module docstring.
    """
    return cast(NoiseLawFit, _fit_public("noise", [u], ["u"], mi, sigma, level, bootstrap,
                                         replicate, seed))


def fit_cell_law(n_cells, mi, *, sigma=None, level: float = 0.95, bootstrap: int = 0,
                 replicate=None, seed: int = 0) -> CellLawFit:
    """Fit ``I(N) = I_inf - (N/N0)^(-s)``; parameters as in :func:`fit_noise_law`."""
    return cast(CellLawFit, _fit_public("cells", [n_cells], ["n_cells"], mi, sigma, level,
                                        bootstrap, replicate, seed))


def fit_joint_law(n_cells, u, mi, *, sigma=None, level: float = 0.95, bootstrap: int = 0,
                  replicate=None, seed: int = 0) -> JointLawFit:
    """Fit ``I(N, u) = I_noise(u; u_bar, I_max) - (N/N0)^(-s)`` to a grid of cell numbers and
    depths; parameters as in :func:`fit_noise_law`."""
    return cast(JointLawFit, _fit_public("joint", [n_cells, u], ["n_cells", "u"], mi, sigma,
                                         level, bootstrap, replicate, seed))


def _fit_public(law, xs, names, mi, sigma, level, bootstrap, replicate, seed) -> LawFit:
    model = MODELS[law]
    from_replicates = isinstance(sigma, str)
    if from_replicates and sigma != "replicates":
        raise ValueError(f"sigma must be None, an array or 'replicates', got {sigma!r}")
    X, y, sv, dropped, keep = _clean(xs, mi, None if from_replicates else sigma, names,
                                     min_points=len(model.names) + 1)
    if from_replicates:
        sv = replicate_sigma(X, y)
    rep = None
    if replicate is not None:
        rep = np.asarray(replicate).ravel()
        if rep.shape[0] != keep.shape[0]:
            raise ValueError(f"replicate has {rep.shape[0]} labels but mi has {keep.shape[0]}")
        rep = rep[keep]
    bootstrap = check_int("bootstrap", bootstrap, 0)
    return _fit(model, X, y, sv, level=level, dropped=dropped, bootstrap=bootstrap,
                replicate=rep, seed=seed)
