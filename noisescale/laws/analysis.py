"""What fitted laws say: tables of fits per group, collapse, comparisons, experiment planning,
and the numbers behind the paper's figures (:func:`fraction_depth`, :func:`ratio`,
:func:`cell_collapse`, :func:`scale_up_gain`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._internal.seeding import generator
from .fit import MODELS, LawFit, fit_cell_law, fit_noise_law
from .forms import LN2, collapse_value, depth_for_fraction, joint_law

_FITTERS = {"noise": fit_noise_law, "cells": fit_cell_law}
_DEFAULT_X = {"noise": "umis_per_cell", "cells": "n_cells"}


def fit_table(df: pd.DataFrame, by: Sequence[str] = (), *, x: str | None = None,
              y: str = "mi", law: str = "noise", sigma: str | None = None,
              replicate: str | None = None, bootstrap: int = 0, level: float = 0.95,
              seed: int = 0) -> pd.DataFrame:
    """Fit a law to each group of a tidy results table; one row per group.

    Parameters
    ----------
    df
        One row per measurement, e.g. columns dataset, model, signal, n_cells,
        umis_per_cell, seed, mi.
    by
        Grouping columns (an empty list fits the whole table).
    x, y
        Columns of the independent variable (default ``umis_per_cell`` for the noise law,
        ``n_cells`` for the cell law) and of MI in bits.
    law
        ``"noise"`` or ``"cells"``.
    sigma
        None, ``"replicates"`` (weights from the spread at each x) or a column of standard
        deviations.
    replicate
        Column of replicate labels (e.g. ``seed``) for a bootstrap over whole curves.
    bootstrap, level, seed
        As in :func:`fit_noise_law`.

    Groups that cannot be fitted (too few points, invalid x) get NaN parameters, the flag
    ``failed`` and the reason in the ``error`` column instead of stopping the whole table.
    """
    if law not in _FITTERS:
        raise ValueError(f"law must be 'noise' or 'cells', got {law!r}")
    x = x or _DEFAULT_X[law]
    by = [by] if isinstance(by, str) else list(by)
    sigma_column = sigma if sigma not in (None, "replicates") else None
    needed = [c for c in (*by, x, y, replicate, sigma_column) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table (columns: {list(df.columns)})")
    groups = df.groupby(by, sort=True, dropna=False, observed=True) if by else [((), df)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        sig = g[sigma_column].to_numpy() if sigma_column else sigma
        try:
            fit = _FITTERS[law](g[x].to_numpy(), g[y].to_numpy(), sigma=sig,
                                replicate=g[replicate].to_numpy() if replicate else None,
                                bootstrap=bootstrap, level=level, seed=seed)
            row.update(fit.as_dict())
            row["error"] = ""
        except (ValueError, RuntimeError) as e:
            row.update({"law": law, "n_points": int(g[y].notna().sum()), "reliable": False,
                        "flags": "failed", "error": str(e)})
            for name in MODELS[law].names:
                row.update({name: np.nan, f"{name}_err": np.nan, f"{name}_lo": np.nan,
                            f"{name}_hi": np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def collapse(df: pd.DataFrame, fits: pd.DataFrame, by: Sequence[str] = (), *,
             x: str = "umis_per_cell", y: str = "mi") -> tuple[pd.DataFrame, float]:
    """Rescale every group's measurements onto the universal noise-law curve.

    Adds ``x_scaled = u / u_bar``, ``I_scaled = I / I_max`` and the exact collapse coordinate
    ``snr_scaled = (2^(2I) - 1) / (2^(2 I_max) - 1)``, which equals ``x/(1 + x)`` for every curve
    that follows the law (``I/I_max`` collapses only approximately: its shape still depends on
    I_max). Also adds ``z`` (:func:`collapse_coordinate`) and ``I_gap = I - I_max``, on which
    every curve that follows the law lies on ``universal_gap(z)``. Returns the table and the
    collapse quality: the RMS deviation of ``snr_scaled`` from ``x/(1+x)`` over the points of
    reliable fits (0 is perfect).
    """
    by = [by] if isinstance(by, str) else list(by)
    cols = [*by, "u_bar", "I_max", "reliable"]
    merged = df.merge(fits[cols], on=by, how="left") if by else df.assign(
        u_bar=fits["u_bar"].iloc[0], I_max=fits["I_max"].iloc[0],
        reliable=fits["reliable"].iloc[0])
    merged["x_scaled"] = merged[x] / merged["u_bar"]
    merged["I_scaled"] = merged[y] / merged["I_max"]
    merged["snr_scaled"] = collapse_value(merged[y], merged["I_max"])
    merged["z"] = collapse_coordinate(merged["x_scaled"], merged["I_max"])
    merged["I_gap"] = merged[y] - merged["I_max"]
    ok = merged["reliable"].astype(bool) & np.isfinite(merged["snr_scaled"])
    xs = merged.loc[ok, "x_scaled"]
    dev = merged.loc[ok, "snr_scaled"] - xs / (1 + xs)
    quality = float(np.sqrt(np.mean(dev ** 2))) if ok.any() else float("nan")
    return merged, quality


def collapse_coordinate(x_scaled, I_max):
    """z = (u/u_bar + 2^(-2 I_max)) / (1 - 2^(-2 I_max)) for ``x_scaled = u/u_bar``: every
    noise-law curve is ``I - I_max = universal_gap(z)`` in it, whatever its u_bar and I_max."""
    two_i = 2 * LN2 * np.asarray(I_max, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(x_scaled, dtype=float) + np.exp(-two_i)) / -np.expm1(-two_i)


def universal_gap(z):
    """The universal curve of the collapse, I - I_max = -1/2 log2(1 + 1/z)."""
    with np.errstate(divide="ignore"):
        return -np.log1p(1.0 / np.asarray(z, dtype=float)) / (2 * LN2)


def cell_collapse(df: pd.DataFrame, fits: pd.DataFrame, by: Sequence[str] = (), *,
                  x: str = "n_cells", y: str = "mi") -> pd.DataFrame:
    """Rescale every group's measurements onto the cell-number law: ``x_scaled = (N/N0)^s``
    and ``I_gap = I_inf - I``, which equal ``1 / x_scaled`` for every curve that follows
    I(N) = I_inf - (N/N0)^(-s). ``fits`` is a cell-law table (e.g. the ``law == "cells"`` rows
    of :func:`~noisescale.laws.fit_results`) keyed by ``by``."""
    by = [by] if isinstance(by, str) else list(by)
    cols = [*by, "N0", "s", "I_inf", "reliable"]
    merged = df.merge(fits[cols], on=by, how="left") if by else df.assign(
        **{c: fits[c].iloc[0] for c in cols})
    merged["x_scaled"] = (merged[x] / merged["N0"]) ** merged["s"]
    merged["I_gap"] = merged["I_inf"] - merged[y]
    return merged


@dataclass(frozen=True)
class Estimate:
    """A derived quantity of a fit with its standard error and ``level`` interval."""

    value: float
    err: float
    low: float
    high: float


def fraction_depth(fit: LawFit, f: float = 0.9, level: float = 0.95) -> Estimate:
    """The depth at which a noise-law fit reaches ``f`` * I_max (u90 for f = 0.9), with the
    delta-method standard error from the fit's covariance; the interval is symmetric on the
    log scale (normal quantile). The value is :meth:`LawFit.depth_for_fraction`, the fits
    table's ``u90``."""
    if fit.law != "noise":
        raise ValueError("fraction_depth needs a noise-law fit")
    i_max = float(fit.theta[1])

    def log_depth(i: float) -> float:
        with np.errstate(all="ignore"):
            return math.log(float(depth_for_fraction(f, 1.0, i))) if i > 0 else math.nan

    value = fit.depth_for_fraction(f)
    h = 1e-5 * max(1.0, i_max)
    grad = np.array([1.0, (log_depth(i_max + h) - log_depth(i_max - h)) / (2 * h)])
    var = float(grad @ fit.cov[:2, :2] @ grad)
    if not (np.isfinite(value) and np.isfinite(var)):
        return Estimate(value, math.nan, math.nan, math.nan)
    se = math.sqrt(max(var, 0.0))
    k = stats.norm.ppf(0.5 + level / 2) * se
    return Estimate(value, value * se, value * math.exp(-k), value * math.exp(k))


@dataclass(frozen=True)
class Comparison:
    """Difference of one parameter between two fits (ratio for scale parameters)."""

    param: str
    a: float
    b: float
    estimate: float          # b - a, or b / a for u_bar, N0, s
    low: float
    high: float
    z: float
    p_value: float
    kind: str                # "difference" or "ratio"

    def __str__(self) -> str:
        return (f"{self.param}: {self.kind} {self.estimate:.4g} "
                f"[{self.low:.4g}, {self.high:.4g}], p = {self.p_value:.3g}")


def compare(fit_a: LawFit, fit_b: LawFit, param: str = "u_bar",
            level: float = 0.95) -> Comparison:
    """Is ``param`` different between two independent fits, given their uncertainties?

    Scale parameters (u_bar, N0, s) are compared as a ratio b/a on the log scale where they were
    fitted; others (I_max, I_inf) as a difference b - a. Wald test with the two standard errors
    combined in quadrature; two-sided p-value.
    """
    if fit_a.law != fit_b.law:
        raise ValueError(f"cannot compare a {fit_a.law} fit with a {fit_b.law} fit")
    model = MODELS[fit_a.law]
    if param not in model.names:
        raise ValueError(f"{param!r} is not a parameter of the {model.law} law "
                         f"({', '.join(model.names)})")
    k = model.names.index(param)
    ta, tb = fit_a.theta[k], fit_b.theta[k]
    se = math.sqrt(fit_a.cov[k, k] + fit_b.cov[k, k])
    diff = tb - ta
    z = diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    h = stats.norm.ppf(0.5 + level / 2) * se
    if model.log_scaled[k]:
        return Comparison(param, fit_a.params[param], fit_b.params[param], math.exp(diff),
                          math.exp(diff - h), math.exp(diff + h), z, p, "ratio")
    return Comparison(param, fit_a.params[param], fit_b.params[param], diff, diff - h,
                      diff + h, z, p, "difference")


def ratio(fit_a: LawFit, fit_b: LawFit, param: str = "u_bar",
          level: float = 0.95) -> Comparison:
    """The ratio b/a of one parameter of two independent fits, for every parameter (I_max
    too, where :func:`compare` gives a difference): Wald test of log(b/a) = 0 with the
    relative standard errors combined in quadrature (delta method; the fitted log scale for
    u_bar, N0, s, where it equals :func:`compare`). NaN for a parameter that is not > 0."""
    c = compare(fit_a, fit_b, param, level)  # checks the laws and the parameter
    if c.kind == "ratio":  # a log-scaled parameter: compare's ratio already
        return c
    a, b = c.a, c.b
    if not (a > 0 and b > 0):
        return Comparison(param, a, b, math.nan, math.nan, math.nan, math.nan, math.nan,
                          "ratio")
    diff = math.log(b / a)
    se = math.hypot(fit_a.errors[param] / a, fit_b.errors[param] / b)
    z = diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0
    h = stats.norm.ppf(0.5 + level / 2) * se
    return Comparison(param, a, b, b / a, math.exp(diff - h), math.exp(diff + h), z,
                      float(2 * stats.norm.sf(abs(z))), "ratio")


def scale_up_gain(fit: LawFit, n_cells, umis_per_cell, factor: float = 10.0) -> pd.DataFrame:
    """MI gained at each (N, u) of a grid by ``factor`` times more cells and by ``factor`` times
    more UMIs per cell, from a joint-law fit (:func:`~noisescale.laws.fit_joint_law`):
    columns n_cells, umis_per_cell, mi, gain_cells = I(kN, u) - I(N, u),
    gain_umis = I(N, ku) - I(N, u) and advantage = gain_cells - gain_umis (> 0: more cells
    is worth more). ``n_cells`` and ``umis_per_cell`` are crossed."""
    if fit.law != "joint":
        raise ValueError("scale_up_gain needs a joint-law fit (fit_joint_law)")
    n, u = np.meshgrid(np.asarray(n_cells, dtype=float), np.asarray(umis_per_cell, dtype=float),
                       indexing="ij")
    n, u = n.ravel(), u.ravel()
    mi = fit.predict(n, u)
    cells, umis = fit.predict(factor * n, u) - mi, fit.predict(n, factor * u) - mi
    return pd.DataFrame({"n_cells": n, "umis_per_cell": u, "mi": mi, "gain_cells": cells,
                         "gain_umis": umis, "advantage": cells - umis})


# --------------------------------------------------------------------------------------------
# Experiment planning


@dataclass
class BudgetPlan:
    """The recommended design and how sure we are of it."""

    n_cells: float
    umis_per_cell: float
    predicted_mi: float
    n_cells_ci: tuple[float, float]
    umis_per_cell_ci: tuple[float, float]
    predicted_mi_ci: tuple[float, float]
    cost: float
    frontier: pd.DataFrame   # n_cells, umis_per_cell, predicted MI (and band) along the budget

    def __str__(self) -> str:
        return (f"{self.n_cells:,.0f} cells at {self.umis_per_cell:,.0f} UMIs per cell "
                f"(predicted {self.predicted_mi:.3f} bits, "
                f"[{self.predicted_mi_ci[0]:.3f}, {self.predicted_mi_ci[1]:.3f}])")


def optimize_budget(fit: LawFit, budget: float, *, cost_per_cell: float = 0.0,
                    cost_per_read: float = 1.0, reads_per_umi: float = 1.0,
                    n_range: tuple[float, float] = (100, 1e8),
                    u_range: tuple[float, float] = (1.0, 1e6), draws: int = 300,
                    level: float = 0.95, seed: int = 0) -> BudgetPlan:
    """Choose cell number and depth that maximize the predicted MI within a budget.

    Cost model: ``cost = N * (cost_per_cell + cost_per_read * reads_per_umi * u)``; e.g.
    ``cost_per_cell=0, cost_per_read=1`` makes the budget a total number of reads, and
    ``reads_per_umi`` (1 / sequencing efficiency; often 2-10) converts UMIs to reads. The
    whole budget is spent: for each N the depth is what remains per cell, so the search is
    one-dimensional over log N within ``n_range`` (and the depths it implies within
    ``u_range``).

    ``fit`` must be a joint-law fit (:func:`fit_joint_law`). The uncertainty comes from
    ``draws`` parameter sets drawn from the fit's covariance: each is optimized too, giving
    ``level`` intervals for the optimal N, u and for the MI predicted at the recommended
    design.
    """
    if fit.law != "joint":
        raise ValueError("optimize_budget needs a joint-law fit (fit_joint_law)")
    for name, v in (("budget", budget), ("cost_per_read", cost_per_read),
                    ("reads_per_umi", reads_per_umi)):
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if cost_per_cell < 0:
        raise ValueError("cost_per_cell must be >= 0")
    per_umi = cost_per_read * reads_per_umi

    def depth(n):
        return (budget / n - cost_per_cell) / per_umi

    # N range in which the budget buys a depth inside u_range
    n_lo = max(n_range[0], budget / (cost_per_cell + per_umi * u_range[1]))
    n_hi = min(n_range[1], budget / (cost_per_cell + per_umi * u_range[0]))
    if not n_lo < n_hi:
        raise ValueError("no design fits: the budget cannot buy any (N, u) within n_range and "
                         "u_range")
    grid = np.geomspace(n_lo, n_hi, 400)

    def best(theta) -> tuple[float, float]:
        u_bar, I_max, N0, s = MODELS["joint"].params(theta)

        def neg(logn):
            n = math.exp(logn)
            return -float(joint_law(n, depth(n), u_bar, I_max, N0, s))

        vals = np.array([neg(math.log(n)) for n in grid])
        i = int(np.argmin(vals))
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
        if hi > lo:
            r = optimize.minimize_scalar(neg, bounds=(lo, hi), method="bounded",
                                         options={"xatol": 1e-6})
            logn = r.x if r.fun <= vals[i] else math.log(grid[i])
        else:
            logn = math.log(grid[i])
        n = math.exp(logn)
        return n, depth(n)

    n_opt, u_opt = best(fit.theta)
    rng = generator(seed, "plan")
    cov = np.where(np.isfinite(fit.cov), fit.cov, 0.0)
    thetas = rng.multivariate_normal(fit.theta, cov, size=draws, method="eigh")
    opts = np.array([best(t) for t in thetas])
    f = MODELS["joint"].f
    mi_at_opt = np.array([f(t, np.array([[n_opt, u_opt]]))[0] for t in thetas])
    a = (1 - level) / 2

    def ci(v):
        return float(np.quantile(v, a)), float(np.quantile(v, 1 - a))

    lo_band, hi_band = fit.band(grid, depth(grid), level=level, seed=seed)
    frontier = pd.DataFrame({"n_cells": grid, "umis_per_cell": depth(grid),
                             "predicted_mi": fit.predict(grid, depth(grid)),
                             "mi_lo": lo_band, "mi_hi": hi_band})
    return BudgetPlan(n_cells=n_opt, umis_per_cell=u_opt,
                      predicted_mi=float(fit.predict(n_opt, u_opt)),
                      n_cells_ci=ci(opts[:, 0]), umis_per_cell_ci=ci(opts[:, 1]),
                      predicted_mi_ci=ci(mi_at_opt),
                      cost=n_opt * (cost_per_cell + per_umi * u_opt), frontier=frontier)
