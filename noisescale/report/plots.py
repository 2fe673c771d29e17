"""Figures of scaling-law results (matplotlib); every function returns a Figure and draws
only the fits it is given (they come from :mod:`noisescale.laws`).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so they are safe
in scripts, servers and notebooks alike; save them with ``fig.savefig("curves.png")``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..laws import LawFit


def join_label(values: Sequence) -> str:
    """A group's key as a label: "a / b"."""
    return " / ".join(map(str, values))


def literal(text) -> str:
    """A string matplotlib shows literally (no mathtext)."""
    return str(text).replace("$", r"\$")


def clip_y(ax, y, pad: float = 0.1) -> None:
    """Keep the y axis on the data (and 0), ``pad`` of its range beyond, so that a wide
    confidence band cannot flatten it."""
    y = np.asarray([v for v in y if np.isfinite(v)], dtype=float)
    if y.size:
        lo, hi = min(float(y.min()), 0.0), float(y.max())
        margin = pad * (hi - lo) or 0.1
        ax.set_ylim(lo - margin, hi + margin)


def curve_and_panels(by: Sequence[str]) -> tuple[str, list[str]]:
    """The column drawn as one curve per value (``model``, else the last of ``by``) and the
    columns that make one panel per value (the rest of ``by``)."""
    curve = "model" if "model" in by else by[-1]
    return curve, [c for c in by if c != curve]


def panels(frame: pd.DataFrame, cols: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per panel: the groups of ``cols``, labelled "a / b"; one "all" panel
    without columns."""
    if not cols:
        return [("all", frame)]
    return [(join_label(k if isinstance(k, tuple) else (k,)), g)
            for k, g in frame.groupby(list(cols), sort=True, dropna=False, observed=True)]


def at_mean_depth(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The rows at a positive depth, each at its point's mean depth over seeds (one x per
    group, training size and fraction), for drawing."""
    df = df[np.isfinite(df["umis_per_cell"]) & (df["umis_per_cell"] > 0)]
    depth = df.groupby([*by, "n_cells", "fraction"], dropna=False,
                       observed=True)["umis_per_cell"].transform("mean")
    return df.assign(umis_per_cell=depth)


def _groups(df: pd.DataFrame, by: Sequence[str]):
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        return [("all", df)]
    out = []
    for key, g in df.groupby(by, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append((" / ".join(map(str, key)), g))
    return out


def _summary(g: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean, spread and count of ``y`` at each ``x``; ``err``: the error bar, the spread over
    replicates combined with the estimator's own standard error where the table has ``mi_se``
    (sqrt(std² + mean se²): the spread of one measurement), and ``null_hi``: the null's
    upper edge (mean mi_null + 1.96 · mean mi_null_sd) where the table has a null."""
    s = g.groupby(x)[y].agg(["mean", "std", "count"]).reset_index()
    err = s["std"].fillna(0).to_numpy()
    if y == "mi" and "mi_se" in g and g["mi_se"].notna().any():
        se2 = g.assign(_se2=pd.to_numeric(g["mi_se"], errors="coerce") ** 2).groupby(x)["_se2"]
        err = np.sqrt(err ** 2 + se2.mean().fillna(0).to_numpy())
    s["err"] = err
    s["null_hi"] = np.nan
    if y == "mi" and "mi_null" in g and g["mi_null"].notna().any():
        null = g.groupby(x)[["mi_null", "mi_null_sd"]].mean()
        s["null_hi"] = (null["mi_null"] + 1.96 * null["mi_null_sd"].fillna(0)).to_numpy()
    return s


def scaling_curves(df: pd.DataFrame, by: Sequence[str] = (), *, x: str = "umis_per_cell",
                   y: str = "mi", law: str = "noise", level: float = 0.95,
                   fits: dict[str, LawFit | None] | None = None,
                   title: str | None = None) -> Figure:
    """MI against depth (log scale; or cell number with ``law="cells"``), one colour per
    group: mean and error bar (the spread over replicates, combined with the estimator's
    standard error where the table has ``mi_se``), the null's upper edge as a dashed line where
    it has ``mi_null``, and for each group in ``fits``
    (``{group label: LawFit}``, e.g. from :func:`noisescale.laws.fit_noise_law`) the fitted
    law with its ``level`` confidence band. Groups without a fit (or with None) are drawn as
    points only: this function fits nothing."""
    if law not in ("noise", "cells"):
        raise ValueError(f"law must be 'noise' or 'cells', got {law!r}")
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    groups = _groups(df, by)
    for (label, g), color in zip(groups, _colors(len(groups))):
        s = _summary(g, x, y)
        ax.errorbar(s[x], s["mean"], yerr=s["err"], fmt="o", ms=4, color=color,
                    capsize=2, label=label)
        if s["null_hi"].notna().any():
            ax.plot(s[x], s["null_hi"], ls="--", lw=0.8, color=color, alpha=0.7)
        fit = (fits or {}).get(label)
        if fit is None:
            continue
        grid = np.geomspace(g[x].min() / 2, g[x].max() * 2, 200)
        lo, hi = fit.band(grid, level=level)
        ax.plot(grid, fit.predict(grid), color=color, lw=1.5)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("UMIs per cell" if law == "noise" else "training cells")
    ax.set_ylabel("mutual information (bits)")
    if title:
        ax.set_title(title)
    if by:
        ax.legend(fontsize="small", frameon=False)
    return fig


def collapse_plot(collapsed: pd.DataFrame, by: Sequence[str] = (), *,
                  quality: float | None = None) -> Figure:
    """The collapse (output of :func:`noisescale.laws.collapse`): left, (2^(2I) - 1) /
    (2^(2 I_max) - 1) against u/u_bar with the universal curve x/(1+x); right, I/I_max."""
    fig = Figure(figsize=(9.6, 4.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    groups = _groups(collapsed, by)
    for (label, g), color in zip(groups, _colors(len(groups))):
        left.plot(g["x_scaled"], g["snr_scaled"], "o", ms=3, color=color, label=label)
        right.plot(g["x_scaled"], g["I_scaled"], "o", ms=3, color=color, label=label)
    xs = collapsed["x_scaled"].replace([np.inf, -np.inf], np.nan).dropna()
    if len(xs):
        grid = np.geomspace(max(xs.min() / 2, 1e-6), xs.max() * 2, 200)
        left.plot(grid, grid / (1 + grid), "k-", lw=1.5, label="x / (1 + x)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("u / ū")
    left.set_ylabel("(2^{2I} − 1) / (2^{2 I_max} − 1)")
    right.set_ylabel("I / I_max")
    if quality is not None:
        left.set_title(f"collapse RMS deviation {quality:.3f}", fontsize="medium")
    left.legend(fontsize="small", frameon=False)
    return fig


def parameter_comparison(fits: pd.DataFrame, label: str | Sequence[str] = "model") -> Figure:
    """ū against I_max per group of a :func:`noisescale.laws.fit_table` table, with the
    intervals as error bars (ū on a log scale)."""
    labels = [label] if isinstance(label, str) else list(label)
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ok = fits.dropna(subset=["u_bar", "I_max"])
    for (_, row), color in zip(ok.iterrows(), _colors(len(ok))):
        name = " / ".join(str(row[c]) for c in labels if c in row)
        xerr = [[row["u_bar"] - row["u_bar_lo"]], [row["u_bar_hi"] - row["u_bar"]]]
        yerr = [[row["I_max"] - row["I_max_lo"]], [row["I_max_hi"] - row["I_max"]]]
        marker = "o" if row.get("reliable", True) else "x"
        ax.errorbar(row["u_bar"], row["I_max"], xerr=xerr, yerr=yerr, fmt=marker, color=color,
                    capsize=2, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("noise sensitivity ū (UMIs per cell)")
    ax.set_ylabel("capacity I_max (bits)")
    ax.legend(fontsize="small", frameon=False)
    return fig


def cell_curves(df: pd.DataFrame, by: Sequence[str] = (), *, x: str = "n_cells",
                y: str = "mi", level: float = 0.95,
                fits: dict[str, LawFit | None] | None = None) -> Figure:
    """MI against the number of training cells, with the cell-number law fits given."""
    return scaling_curves(df, by, x=x, y=y, law="cells", level=level, fits=fits)


def residuals(fits: dict[str, LawFit]) -> Figure:
    """Residuals (data − law) of each fit against its x, on a log x axis."""
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for (label, fit), color in zip(fits.items(), _colors(len(fits))):
        ax.plot(fit.x[:, -1], fit.residuals, "o", ms=3, color=color, label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    laws = {fit.law for fit in fits.values()}
    ax.set_xlabel("training cells" if laws == {"cells"} else "UMIs per cell")
    ax.set_ylabel("residual (bits)")
    if fits:
        ax.legend(fontsize="small", frameon=False)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(max(n, 1))]


__all__ = ["cell_curves", "collapse_plot", "parameter_comparison", "residuals",
           "scaling_curves"]
