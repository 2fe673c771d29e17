"""Every figure of the paper from a results table: :func:`figures` writes each one as PNG and
PDF (vector) at journal sizes (3.5 in single column, 7 in double column), with the table
behind it as CSV beside it.

Figures (file stems):

* ``noise_curves``: MI against depth per model and training size, mean ± sd over seeds,
  the fitted noise law and its 2σ band (:func:`~noisescale.laws.fit_results`,
  :func:`~noisescale.laws.results.curve_fits`); one panel per dataset / signal.
* ``annotated_curve``: one noise curve with ū, I_max and u90 marked.
* ``cell_curves`` and ``cell_collapse``: MI against training cells at each depth with the
  cell-number law, and all of them on I_∞ − I = (N/N0)^(−s)
  (:func:`~noisescale.laws.analysis.cell_collapse`).
* ``collapse``: every curve on the universal noise-law curve, I − I_max against
  z = (u/ū + 2^(−2 I_max)) / (1 − 2^(−2 I_max)) (:func:`~noisescale.laws.collapse`).
* ``parameters``: bars of ū and I_max per model and training size, 1σ error bars.
* ``r2``: heat maps of the noise-law fits' R² (model × training size).
* ``u90``: the depth reaching 90 % of I_max with its 95 % interval
  (:func:`~noisescale.laws.analysis.fraction_depth`): CSV, Markdown and LaTeX, no figure.
* ``scale_up``: where 10× more cells beat 10× more UMIs per cell, over (N, u), from a joint
  fit of I(N, u) per group (:func:`~noisescale.laws.results.joint_fits`,
  :func:`~noisescale.laws.analysis.scale_up_gain`).
* ``ratios``: ū and I_max of each model relative to a reference model, 1σ errors
  propagated from both fits (:func:`~noisescale.laws.analysis.ratio`).

Nothing here fits or derives a law: the numbers come from :mod:`noisescale.laws`; curves are
drawn only for fits whose parameters the data determine (none for the flags in
:data:`~noisescale.laws.fit.UNDETERMINED`). A figure that a table cannot support (one
training size: no cell-number law; one model: no ratios) is skipped with its reason.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.colors import LogNorm, TwoSlopeNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from .. import laws
from ..io.atomic import write_atomic
from ..laws.analysis import (
    cell_collapse,
    fraction_depth,
    ratio,
    scale_up_gain,
    universal_gap,
)
from ..laws.fit import UNDETERMINED
from ..laws.results import (
    DEFAULT_BY,
    cell_law_rows,
    check_fits,
    check_results,
    curve_fits,
    fit_results,
    group_key,
    joint_fits,
    prepare_results,
)
from .plots import (
    _colors,
    _summary,
    at_mean_depth,
    clip_y,
    curve_and_panels,
    join_label,
    literal,
    panels,
)

SINGLE, DOUBLE = 3.5, 7.0          # column widths (inches)
TWO_SIGMA, ONE_SIGMA = 0.9545, 0.6827
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "legend.fontsize": 6, "legend.title_fontsize": 6,
         "lines.linewidth": 1.0, "axes.linewidth": 0.6, "pdf.fonttype": 42,
         "ps.fonttype": 42}
FORMATS = ("png", "pdf", "svg", "eps")
NAMES = ("noise_curves", "annotated_curve", "cell_curves", "cell_collapse", "collapse",
         "parameters", "r2", "u90", "scale_up", "ratios")


@dataclass
class FigureSet:
    """What :func:`figures` wrote (figure name -> files) and skipped (name -> reason)."""

    out: Path
    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [p for files in self.written.values() for p in files]

    def lines(self) -> list[str]:
        """One line per figure written and per figure skipped."""
        return ([f"wrote {n}: {', '.join(p.name for p in ps)}" for n, ps in self.written.items()]
                + [f"skipped {n}: {why}" for n, why in self.skipped.items()])


class Skip(Exception):
    """A figure the table cannot support; the message is the reason."""


@dataclass
class _Made:
    fig: Figure | None
    table: pd.DataFrame
    texts: dict[str, str] = field(default_factory=dict)   # extension -> text


def figures(results: pd.DataFrame, out: str | os.PathLike, *,
            fits: pd.DataFrame | None = None, formats: Sequence[str] = ("png", "pdf"),
            by: Sequence[str] = DEFAULT_BY, reference: Any = None,
            annotate: Mapping[str, Any] | None = None, factor: float = 10.0,
            only: Iterable[str] | None = None, dpi: int = 300) -> FigureSet:
    """Write every figure of the paper for ``results`` into ``out`` (created if needed).

    ``fits`` is a :func:`~noisescale.laws.fit_results` table (made here, unweighted, when
    None); curves are its fits, refitted with the weights it names. ``by`` groups the table
    (its last column, or ``model``, gives one curve each; the others one panel each).
    ``reference`` is the model the ratios are relative to (default the first in the table);
    ``annotate`` picks the annotated curve by column values, e.g. ``{"model": "pca",
    "n_cells": 8000}`` (default: the first model's largest training size in the first
    panel). ``factor`` is the scale-up of the ``scale_up`` figure, ``only`` a subset of
    :data:`NAMES`. The input table is not modified. Returns the files written and the
    figures skipped, with reasons.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be among {list(FORMATS)}, got {list(formats)}")
    only = list(NAMES if only is None else only)
    unknown = [n for n in only if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; the figures are {list(NAMES)}")
    names = [n for n in NAMES if n in only]
    data = _Data(results, fits, check_results(results, by))
    if reference is not None:
        reference = _match(data.curves, reference, data.curve)
    if annotate:
        keys = [*data.by, "n_cells"]
        unknown = [c for c in annotate if c not in keys]
        if unknown:
            raise ValueError(f"annotate: {unknown} are not columns of the curves ({keys})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"reference": reference, "annotate": annotate, "factor": factor}
    done = FigureSet(out)
    for name in names:
        # curves and bands of poorly determined fits overflow harmlessly (as in the report)
        with rc_context(STYLE), np.errstate(all="ignore"):
            try:
                made = BUILDERS[name](data, **{k: v for k, v in options.items()
                                               if k in BUILDER_OPTIONS.get(name, ())})
            except Skip as e:
                done.skipped[name] = str(e)
                continue
            done.written[name] = _save(made, out / name, formats, dpi)
    return done


def _save(made: _Made, stem: Path, formats: Sequence[str], dpi: int) -> list[Path]:
    paths = []
    if made.fig is not None:
        for fmt in formats:
            buf = io.BytesIO()
            meta = {"CreationDate": None} if fmt == "pdf" else {}
            made.fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
            paths.append(write_atomic(stem.with_suffix(f".{fmt}"), buf.getvalue()))
    csv = made.table.to_csv(index=False, float_format="%.10g")
    paths.append(write_atomic(stem.with_suffix(".csv"), csv))
    for ext, text in made.texts.items():
        paths.append(write_atomic(stem.with_suffix(f".{ext}"), text))
    return paths


# --------------------------------------------------------------------------------------------
# The data and fits behind all figures


class _Data:
    """The prepared table, its fits table and the fits that may be drawn."""

    def __init__(self, results: pd.DataFrame, fits: pd.DataFrame | None, by: list[str]):
        self.by = by
        self.curve, self.panel = curve_and_panels(by)
        with np.errstate(all="ignore"):
            df = prepare_results(results, by)
            df = df[np.isfinite(df["mi"]) & np.isfinite(df["umis_per_cell"])
                    & (df["umis_per_cell"] > 0)]
            if df.empty:
                raise ValueError("the results table has no finite MI at a positive depth")
            self.fits = fit_results(results, by=by) if fits is None else check_fits(fits, by)
            self.noise = self.fits[self.fits["law"] == "noise"].reset_index(drop=True)
            self.cells = self.fits[self.fits["law"] == "cells"].reset_index(drop=True)
            self.df, self.df_cells = df, cell_law_rows(df, by)
        self.plot_df = at_mean_depth(df, by)
        self.curves = list(dict.fromkeys(df[self.curve]))   # in table order
        self.sizes = sorted(df["n_cells"].unique())

    @cached_property
    def noise_fits(self) -> dict[tuple, laws.LawFit]:
        """The noise-law curves to draw, by (*by, n_cells)."""
        keys = [*self.by, "n_cells"]
        with np.errstate(all="ignore"):
            return _drawable(self.noise, keys, curve_fits(self.df, self.noise, keys, "noise"))

    @cached_property
    def cell_fits(self) -> dict[tuple, laws.LawFit]:
        """The cell-number-law curves to draw, by (*by, fraction)."""
        keys = [*self.by, "fraction"]
        if self.cells.empty or self.df_cells.empty:
            return {}
        with np.errstate(all="ignore"):
            return _drawable(self.cells, keys,
                             curve_fits(self.df_cells, self.cells, keys, "cells"))

    def panels(self, frame: pd.DataFrame, cols: list[str] | None = None):
        """(label, rows) per panel: the groups of ``cols`` (default: by without the curve)."""
        return panels(frame, self.panel if cols is None else cols)

    def shade(self, curve: Any, n: Any) -> tuple:
        """The curve's colour, lighter for fewer training cells."""
        base = np.array(to_rgb(_colors(len(self.curves))[self.curves.index(curve)]))
        k = len(self.sizes)
        t = 1.0 if k == 1 else 0.4 + 0.6 * self.sizes.index(n) / (k - 1)
        return tuple(1 - t * (1 - base))


def _drawable(table: pd.DataFrame, keys: list[str], fits: Mapping[tuple, laws.LawFit | None]
              ) -> dict[tuple, laws.LawFit]:
    """The fits of ``table`` whose parameters the data determine."""
    out = {}
    for _, r in table.iterrows():
        key = group_key(r[keys])
        if not set(str(r["flags"]).split(";")) & UNDETERMINED and fits.get(key) is not None:
            out[key] = fits[key]
    return out


def _grid(n: int, ncols: int | None = None, width: float = DOUBLE, height: float = 2.3,
          sharey: bool = False):
    """A figure with ``n`` panels (extra axes hidden) and the axes as a flat list."""
    ncols = ncols or (1 if n == 1 else 2 if n in (2, 4) else 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width if n > 1 else SINGLE, height * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _plain_log(ax, which: str) -> None:
    """Make the ``which`` ("x" or "y") axis, once drawn on, a log axis labelled with plain
    numbers: powers of ten over many decades, more steps (1-2-5, 1-1.5-2-3-5-7) over few."""
    getattr(ax, f"set_{which}scale")("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = getattr(ax, f"get_{which}lim")()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else (
        1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v:,.0f}" if v >= 1000 else f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _n(v: float) -> str:
    """A number as a label: thousands with separators, else 3 significant digits."""
    return "—" if not np.isfinite(v) else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


# --------------------------------------------------------------------------------------------
# 1, 2: noise curves


def _curve_rows(d: _Data, g: pd.DataFrame, key: tuple, grid_points: int = 120) -> pd.DataFrame:
    """Points (mean, sd over seeds) and the fitted curve with its 2σ band, one curve."""
    s = _summary(g, "umis_per_cell", "mi")
    rows = pd.DataFrame({"kind": "data", "umis_per_cell": s["umis_per_cell"],
                         "mi": s["mean"], "mi_err": s["err"], "n_seeds": s["count"]})
    fit = d.noise_fits.get(key)
    if fit is not None:
        u = g["umis_per_cell"]
        grid = np.geomspace(u.min() / 1.5, u.max() * 1.5, grid_points)
        lo, hi = fit.band(grid, level=TWO_SIGMA)
        rows = pd.concat([rows, pd.DataFrame({"kind": "fit", "umis_per_cell": grid,
                                              "mi": fit.predict(grid), "mi_lo": lo,
                                              "mi_hi": hi})], ignore_index=True)
        rows["u_bar"], rows["I_max"] = fit.u_bar, fit.I_max
        rows["u90"] = fit.depth_for_fraction(0.9)
    for c, v in zip(reversed([*d.by, "n_cells"]), reversed(key)):
        rows.insert(0, c, v)
    return rows


def _draw_curve(ax, rows: pd.DataFrame, color, label: str) -> None:
    pts, fit = rows[rows["kind"] == "data"], rows[rows["kind"] == "fit"]
    ax.errorbar(pts["umis_per_cell"], pts["mi"], yerr=pts["mi_err"], fmt="o", ms=2.5,
                color=color, capsize=1.5, elinewidth=0.6, label=label)
    if len(fit):
        ax.plot(fit["umis_per_cell"], fit["mi"], color=color, lw=1)
        ax.fill_between(fit["umis_per_cell"], fit["mi_lo"], fit["mi_hi"], color=color,
                        alpha=0.2, lw=0)


def noise_curves(d: _Data) -> _Made:
    panels = d.panels(d.plot_df)
    fig, axes = _grid(len(panels))
    parts = []
    for ax, (name, g) in zip(axes, panels):
        curves = [(group_key(k), gc) for k, gc in g.groupby([*d.by, "n_cells"], observed=True)]
        curves.sort(key=lambda kc: (d.curves.index(kc[0][d.by.index(d.curve)]), kc[0][-1]))
        for key, gc in curves:
            rows = _curve_rows(d, gc, key)
            curve, n = key[d.by.index(d.curve)], key[-1]
            _draw_curve(ax, rows, d.shade(curve, n), f"{literal(curve)}, N = {n:,}")
            parts.append(rows)
        clip_y(ax, g.groupby([*d.by, "n_cells", "fraction"], observed=True)["mi"].mean())
        ax.set(xscale="log", title=literal(name), xlabel="UMIs per cell",
               ylabel="MI (bits)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append((Line2D([], [], color="0.4"), Patch(color="0.4", alpha=0.25, lw=0)))
    labels.append("noise law ± 2σ")
    if len(axes) == 1:
        axes[0].legend(frameon=False, fontsize=5.5)
    else:
        # one column per training size, one row per curve
        order = sorted(range(len(labels) - 1), key=lambda i: (i % len(d.sizes), i))
        grid = len(labels) - 1 == len(d.sizes) * len(d.curves)
        fig.legend([handles[i] for i in order] + handles[-1:],
                   [labels[i] for i in order] + labels[-1:], loc="outside lower center",
                   frameon=False, ncol=len(d.sizes) + 1 if grid else 3)
    return _Made(fig, pd.concat(parts, ignore_index=True))


def annotated_curve(d: _Data, annotate: Mapping[str, Any] | None = None) -> _Made:
    key = _pick(d, annotate)
    fit = d.noise_fits.get(key)
    if fit is None:
        raise Skip(f"the curve {join_label(key)} has no noise-law fit its data determine")
    g = d.plot_df[np.logical_and.reduce([d.plot_df[c].eq(v)
                                         for c, v in zip([*d.by, "n_cells"], key)])]
    rows = _curve_rows(d, g, key)
    fig = Figure(figsize=(SINGLE, 2.5), layout="constrained")
    ax = fig.add_subplot()
    color = _colors(1)[0]
    _draw_curve(ax, rows, color, "data")
    u_bar, i_max, u90 = fit.u_bar, fit.I_max, float(rows["u90"].iloc[0])
    ax.axhline(i_max, color="0.3", ls="--", lw=0.7)
    ax.text(0.02, i_max, f"$I_{{max}}$ = {i_max:.2f} bits", transform=ax.get_yaxis_transform(),
            va="bottom", ha="left", fontsize=6)
    for x, text, y in ((u_bar, f"ū = {_n(u_bar)}", float(fit.predict(u_bar))),
                       (u90, f"$u_{{90}}$ = {_n(u90)}", 0.9 * i_max)):
        ax.axvline(x, color="0.3", ls=":", lw=0.7)
        ax.plot([x], [y], "s", ms=3.5, color="k", zorder=5)
        ax.annotate(text, (x, y), xytext=(4, -10), textcoords="offset points", fontsize=6)
    clip_y(ax, [*rows.loc[rows["kind"] == "data", "mi"], i_max * 1.05])
    ax.set(xscale="log", xlabel="UMIs per cell", ylabel="MI (bits)",
           title=literal(join_label(key[:-1])) + f", N = {key[-1]:,}")
    return _Made(fig, rows)


def _pick(d: _Data, annotate: Mapping[str, Any] | None) -> tuple:
    """The noise curve to annotate: the rows of the fits table matching ``annotate``, else
    the first model's largest training size in the first panel."""
    t = d.noise
    keys = [*d.by, "n_cells"]
    if annotate:
        for c, v in annotate.items():
            t = t[t[c].astype(str) == str(v)]
        if t.empty:
            raise Skip(f"no noise curve matches {dict(annotate)}")
    else:
        t = t[t[d.curve].eq(d.curves[0])]
    if t.empty:
        raise Skip(f"no noise-law fit of {d.curve} {d.curves[0]}")
    t = t.sort_values([*d.panel, "n_cells"], ascending=[True] * len(d.panel) + [False])
    if d.panel:
        first = t.iloc[0]
        t = t[np.logical_and.reduce([t[c].eq(first[c]) for c in d.panel])]
    return group_key(t.iloc[0][keys])


# --------------------------------------------------------------------------------------------
# 3: cell-number curves and their collapse


def _cells_needed(d: _Data) -> None:
    if d.df_cells.empty or d.cells.empty:
        raise Skip("no group has three or more training sizes (n_cells): no cell-number law")
    if not d.cell_fits:
        raise Skip("no cell-number fit is determined by its data (all failed or flat)")


def cell_curves(d: _Data) -> _Made:
    _cells_needed(d)
    data = d.plot_df[d.plot_df.index.isin(d.df_cells.index)]
    depth = data.groupby([*d.by, "fraction"], observed=True)["umis_per_cell"].transform("mean")
    data = data.assign(depth=depth)
    panels = d.panels(data, d.by)
    fig, axes = _grid(len(panels))
    norm = LogNorm(data["depth"].min(), max(data["depth"].max(), data["depth"].min() * 1.01))
    cmap = colormaps["viridis"]
    parts = []
    for ax, (name, g) in zip(axes, panels):
        for key, gq in g.groupby([*d.by, "fraction"], observed=True):
            key = group_key(key)
            color = cmap(norm(gq["depth"].iloc[0]))
            s = _summary(gq, "n_cells", "mi")
            ax.errorbar(s["n_cells"], s["mean"], yerr=s["err"], fmt="o", ms=2.5, color=color,
                        capsize=1.5, elinewidth=0.6)
            rows = pd.DataFrame({"kind": "data", "n_cells": s["n_cells"], "mi": s["mean"],
                                 "mi_err": s["err"]})
            fit = d.cell_fits.get(key)
            if fit is not None:
                grid = np.geomspace(gq["n_cells"].min() / 1.5, gq["n_cells"].max() * 1.5, 80)
                lo, hi = fit.band(grid, level=TWO_SIGMA)
                ax.plot(grid, fit.predict(grid), color=color, ls="-" if fit.reliable else "--")
                if fit.reliable:
                    ax.fill_between(grid, lo, hi, color=color, alpha=0.12, lw=0)
                rows = pd.concat([rows, pd.DataFrame(
                    {"kind": "fit", "n_cells": grid, "mi": fit.predict(grid), "mi_lo": lo,
                     "mi_hi": hi, "N0": fit.N0, "s": fit.s, "I_inf": fit.I_inf})],
                    ignore_index=True)
            rows.insert(0, "umis_per_cell", gq["depth"].iloc[0])
            for c, v in zip(reversed([*d.by, "fraction"]), reversed(key)):
                rows.insert(0, c, v)
            parts.append(rows)
        clip_y(ax, g.groupby(["fraction", "n_cells"], observed=True)["mi"].mean())
        ax.set(xscale="log", title=literal(name), xlabel="training cells N", ylabel="MI (bits)")
    fig.colorbar(_mappable(norm, cmap), ax=axes, label="UMIs per cell", shrink=0.8)
    fig.suptitle("cell-number law at each depth: solid with 2σ band, dashed where the fit is "
                 "unreliable", fontsize=6)
    return _Made(fig, pd.concat(parts, ignore_index=True))


def _mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def cell_collapse_figure(d: _Data) -> _Made:
    _cells_needed(d)
    keys = [*d.by, "fraction"]
    ok = d.cells[d.cells["reliable"]
                 & d.cells.apply(lambda r: group_key(r[keys]) in d.cell_fits, axis=1)]
    if ok.empty:
        raise Skip("no reliable cell-number fit to collapse")
    table = cell_collapse(d.df_cells, ok, by=keys)
    table = table[table["reliable"].eq(True)]
    fig = Figure(figsize=(SINGLE, 2.6), layout="constrained")
    ax = fig.add_subplot()
    groups = d.panels(table, d.by)
    shown = table[(table["I_gap"] > 0) & (table["x_scaled"] > 0)]
    for (name, g), color in zip(groups, _colors(len(groups))):
        g = g[g.index.isin(shown.index)]
        ax.plot(g["x_scaled"], g["I_gap"], "o", ms=2, alpha=0.7, color=color,
                label=literal(name))
    if len(shown):
        x = np.geomspace(shown["x_scaled"].min() / 1.5, shown["x_scaled"].max() * 1.5, 100)
        ax.plot(x, 1 / x, "k-", lw=1, label="$1/x$")
    hidden = len(table) - len(shown)
    note = f" ({hidden} point{'s' * (hidden != 1)} ≤ 0 not shown)" if hidden else ""
    ax.set(xscale="log", yscale="log", xlabel="$(N/N_0)^{s}$",
           ylabel="I(N → ∞) − I(N) (bits)", title="cell-number law collapse" + note)
    ax.legend(frameon=False, fontsize=5.5)
    cols = [*keys, "n_cells", "seed", "umis_per_cell", "mi", "N0", "s", "I_inf",
            "x_scaled", "I_gap"]
    return _Made(fig, table[cols].reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# 4: the universal collapse


def collapse_figure(d: _Data) -> _Made:
    keys = [*d.by, "n_cells"]
    ok = d.noise[d.noise["reliable"]
                 & d.noise.apply(lambda r: group_key(r[keys]) in d.noise_fits, axis=1)].copy()
    if ok.empty:
        raise Skip("no reliable noise-law fit to collapse")
    ok["n_cells"] = ok["n_cells"].astype(d.df["n_cells"].dtype)
    table = laws.collapse(d.df, ok[[*keys, "u_bar", "I_max", "reliable"]], by=keys)[0]
    table = table[table["reliable"].eq(True)]
    rms = float(np.sqrt(np.mean((table["I_gap"] - universal_gap(table["z"])) ** 2)))
    fig = Figure(figsize=(SINGLE, 2.6), layout="constrained")
    ax = fig.add_subplot()
    colour = d.panel or d.by
    groups = d.panels(table, colour)
    for (name, g), color in zip(groups, _colors(len(groups))):
        ax.plot(g["z"], g["I_gap"], "o", ms=2, alpha=0.6, color=color, mew=0,
                label=literal(name))
    z = np.geomspace(table["z"].min() / 1.5, table["z"].max() * 1.5, 200)
    ax.plot(z, universal_gap(z), "k-", lw=1, label="$-\\frac{1}{2}\\log_2(1 + 1/z)$")
    ax.set(xscale="log", xlabel="$z = (u/\\bar{u} + 2^{-2I_{max}})\\,/\\,(1 - 2^{-2I_{max}})$",
           ylabel="$I - I_{max}$ (bits)", title=f"universal collapse (RMS {rms:.3f} bits)")
    ax.legend(frameon=False, fontsize=5.5, loc="lower right")
    cols = [*keys, "fraction", "seed", "umis_per_cell", "mi", "u_bar", "I_max", "x_scaled",
            "z", "I_gap"]
    table = table[cols].assign(universal=universal_gap(table["z"]), collapse_rms=rms)
    return _Made(fig, table.reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# 5, 6, 7: parameters, R², u90


def _determined(d: _Data) -> pd.DataFrame:
    keys = [*d.by, "n_cells"]
    t = d.noise[d.noise.apply(lambda r: group_key(r[keys]) in d.noise_fits, axis=1)]
    if t.empty:
        raise Skip("no noise-law fit is determined by its data (all failed, flat or too few "
                   "depths)")
    return t


def parameters(d: _Data) -> _Made:
    t = _determined(d)
    keys = [*d.by, "n_cells"]
    # 1σ on the fitted scale: log for u_bar, so that the bar stays positive
    table = t[[*keys, "u_bar", "u_bar_err", "I_max", "I_max_err", "reliable"]].copy()
    rel = table["u_bar_err"] / table["u_bar"]
    table["u_bar_1s_lo"] = table["u_bar"] * np.exp(-rel)
    table["u_bar_1s_hi"] = table["u_bar"] * np.exp(rel)
    table["I_max_1s_lo"] = table["I_max"] - table["I_max_err"]
    table["I_max_1s_hi"] = table["I_max"] + table["I_max_err"]
    panels = d.panels(table)
    fig = Figure(figsize=(DOUBLE if len(panels) > 1 else SINGLE, 3.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, len(panels), squeeze=False))
    width = 0.8 / len(d.sizes)
    for j, (name, g) in enumerate(panels):
        for row, (p, label) in enumerate((("u_bar", "ū (UMIs per cell)"),
                                          ("I_max", "$I_{max}$ (bits)"))):
            ax = axes[row, j]
            for _, r in g.iterrows():
                i, k = d.curves.index(r[d.curve]), d.sizes.index(r["n_cells"])
                x = i - 0.4 + width * (k + 0.5)
                err = [[r[p] - r[f"{p}_1s_lo"]], [r[f"{p}_1s_hi"] - r[p]]]
                ax.bar(x, r[p], width, color=d.shade(r[d.curve], r["n_cells"]),
                       hatch=None if r["reliable"] else "////", edgecolor="0.2", lw=0.3,
                       yerr=err, capsize=1.2, error_kw={"elinewidth": 0.6})
            ax.set_xticks(range(len(d.curves)), [literal(c) for c in d.curves])
            ax.set_ylabel(label)
            if p == "u_bar":
                if table["u_bar"].max() > 30 * table["u_bar"].min():  # bars from 0 otherwise
                    _plain_log(ax, "y")
                ax.set_title(literal(name))
    shades = [Patch(color=d.shade(d.curves[0], n)) for n in d.sizes]
    fig.legend(shades, [f"N = {n:,}" for n in d.sizes], loc="outside lower center",
               ncol=len(d.sizes), frameon=False,
               title="training cells (hatched: unreliable fit; bars ±1σ)")
    return _Made(fig, table.reset_index(drop=True))


def r2_maps(d: _Data) -> _Made:
    t = d.noise[[*d.by, "n_cells", "r2", "reliable"]].reset_index(drop=True)
    if not np.isfinite(t["r2"].astype(float)).any():
        raise Skip("no noise-law fit has an R² (all failed or flat)")
    panels = d.panels(t)
    fig, axes = _grid(len(panels), height=0.9 + 0.3 * len(d.curves))
    vmin = min(0.9, math.floor(20 * float(np.nanmin(t["r2"].astype(float)))) / 20)
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = None
    for ax, (name, g) in zip(axes, panels):
        m = np.full((len(d.curves), len(d.sizes)), np.nan)
        for _, r in g.iterrows():
            m[d.curves.index(r[d.curve]), d.sizes.index(r["n_cells"])] = r["r2"]
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=1, aspect="auto")
        for (i, k), v in np.ndenumerate(m):
            ax.text(k, i, "—" if np.isnan(v) else f"{v:.3f}", ha="center", va="center",
                    fontsize=5.5, color="k" if np.isnan(v) or v > vmin + 0.6 * (1 - vmin)
                    else "w")
        ax.set_xticks(range(len(d.sizes)), [f"{n:,}" for n in d.sizes])
        ax.set_yticks(range(len(d.curves)), [literal(c) for c in d.curves])
        ax.set(xlabel="training cells N", title=literal(name))
    fig.colorbar(image, ax=axes, label="R² of the noise-law fit", shrink=0.9)
    return _Made(fig, t)


def u90_table(d: _Data) -> _Made:
    t = _determined(d)
    keys = [*d.by, "n_cells"]
    rows = []
    for _, r in t.iterrows():
        e = fraction_depth(d.noise_fits[group_key(r[keys])], 0.9)
        rows.append({**{c: r[c] for c in keys}, "u90": r["u90"], "u90_err": e.err,
                     "u90_lo": e.low, "u90_hi": e.high, "u_bar": r["u_bar"],
                     "u_bar_err": r["u_bar_err"], "I_max": r["I_max"],
                     "I_max_err": r["I_max_err"], "r2": r["r2"], "reliable": r["reliable"],
                     "flags": r["flags"]})
    table = pd.DataFrame(rows)
    return _Made(None, table, {"md": _markdown(table, keys), "tex": _latex(table, keys)})


def _pm(value: float, err: float) -> str:
    """``value ± err`` with err to two significant digits and value to the same decimals."""
    if not (np.isfinite(value) and np.isfinite(err) and err > 0):
        return _n(value)
    decimals = max(0, 1 - math.floor(math.log10(err)))
    return f"{value:,.{decimals}f} ± {err:,.{decimals}f}"


def _u90_cells(r: Mapping[str, Any]) -> list[str]:
    mark = "" if r["reliable"] else "†"
    return [f"{_n(r['u90'])} ({_n(r['u90_lo'])}–{_n(r['u90_hi'])}){mark}",
            _pm(r["u_bar"], r["u_bar_err"]), _pm(r["I_max"], r["I_max_err"]),
            f"{r['r2']:.3f}"]


U90_HEAD = ["u90 (UMIs/cell) (95% CI)", "ū ± se", "I_max (bits) ± se", "R²"]
U90_NOTE = ("u90: the depth at which the fitted noise law reaches 90 % of I_max; "
            "† unreliable fit (see the flags in u90.csv).")


def _markdown(table: pd.DataFrame, keys: list[str]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    head = [*keys, *U90_HEAD]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        values = [*(f"{r[c]:,}" if c == "n_cells" else r[c] for c in keys), *_u90_cells(r)]
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines) + f"\n\n{U90_NOTE}\n"


TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def _tex(v: Any) -> str:
    return "".join(TEX_ESCAPES.get(ch, ch) for ch in str(v))


def _latex(table: pd.DataFrame, keys: list[str]) -> str:
    head = [*(_tex(c) for c in keys), r"$u_{90}$ (UMIs/cell) (95\% CI)", r"$\bar u$ $\pm$ se",
            r"$I_{\max}$ (bits) $\pm$ se", r"$R^2$"]
    body = []
    for _, r in table.iterrows():
        cells = [_tex(f"{r[c]:,}" if c == "n_cells" else r[c]) for c in keys]
        cells += [_tex(c).replace("±", r"$\pm$").replace("†", r"$^\dagger$")
                  .replace("–", "--").replace("—", "---") for c in _u90_cells(r)]
        body.append(" & ".join(cells) + r" \\")
    note = _tex(U90_NOTE).replace("†", r"$^\dagger$")
    return ("% u90 table written by noisescale figures; needs \\usepackage{booktabs}\n"
            f"\\begin{{tabular}}{{{'l' * len(keys)}rrrr}}\n\\toprule\n"
            + " & ".join(head) + " \\\\\n\\midrule\n" + "\n".join(body)
            + f"\n\\bottomrule\n\\end{{tabular}}\n% {note}\n")


# --------------------------------------------------------------------------------------------
# 8: 10x more cells or 10x more UMIs


def scale_up(d: _Data, factor: float = 10.0) -> _Made:
    """Joint fits of I(N, u) = I_noise(u; ū, I_max) − (N/N0)^(−s), one per group of ``by``
    with at least three training sizes and three depths, evaluated on a grid over the
    measured range of N and u (:func:`~noisescale.laws.analysis.scale_up_gain`). The joint
    law, not per-N noise fits interpolated over N, because the gain from more cells needs the
    law between and beyond the measured N."""
    fits, reasons = {}, []
    rows = {group_key(k if isinstance(k, tuple) else (k,)): g
            for k, g in d.df_cells.groupby(d.by, observed=True)}
    for key, fit in joint_fits(d.df_cells, d.by).items():
        name = join_label(key)
        if isinstance(fit, str):
            reasons.append(f"{name}: {fit}")
            continue
        bad = set(fit.flags) & UNDETERMINED
        if bad:
            reasons.append(f"{name}: joint fit {', '.join(sorted(bad))}")
            continue
        fits[key] = (fit, rows[key])
    if not fits:
        raise Skip("no joint fit of I(N, u): " + ("; ".join(reasons) if reasons else
                   "no group has three or more training sizes (n_cells)"))
    parts = []
    for key, (fit, g) in fits.items():
        n = np.geomspace(g["n_cells"].min(), g["n_cells"].max(), 30)
        u = np.geomspace(g["umis_per_cell"].min(), g["umis_per_cell"].max(), 30)
        t = scale_up_gain(fit, n, u, factor=factor)
        for c, v in zip(reversed(d.by), reversed(key)):
            t.insert(0, c, v)
        for p in ("u_bar", "I_max", "N0", "s"):
            t[p] = fit.params[p]
        t["r2"], t["reliable"] = fit.r2, fit.reliable
        parts.append((key, g, t))
    fig, axes = _grid(len(parts), height=2.4)
    vmax = max(float(np.nanmax(np.abs(t["advantage"]))) for _, _, t in parts) or 1e-3
    norm = TwoSlopeNorm(0.0, -vmax, vmax)
    image = None
    for ax, (key, g, t) in zip(axes, parts):
        n, u = np.unique(t["n_cells"]), np.unique(t["umis_per_cell"])
        a = t["advantage"].to_numpy().reshape(len(n), len(u)).T
        image = ax.pcolormesh(n, u, a, cmap="RdBu_r", norm=norm, shading="nearest",
                              rasterized=True)
        if np.nanmin(a) < 0 < np.nanmax(a):
            ax.contour(n, u, a, levels=[0.0], colors="k", linewidths=0.8)
        design = g.groupby(["n_cells", "fraction"])["umis_per_cell"].mean().reset_index()
        ax.plot(design["n_cells"], design["umis_per_cell"], ".", color="k", ms=2)
        title = literal(join_label(key)) + ("" if t["reliable"].iloc[0] else " (unreliable fit)")
        _plain_log(ax, "x")
        _plain_log(ax, "y")
        ax.set(xlabel="training cells N", ylabel="UMIs per cell u", title=title)
    k = f"{factor:g}×"
    fig.colorbar(image, ax=axes, shrink=0.9,
                 label=f"gain from {k} cells − gain from {k} UMIs (bits)")
    fig.suptitle(f"red: {k} more cells gains more MI than {k} more UMIs per cell; line: equal "
                 "gains; dots: measured designs (joint fit of I(N, u))", fontsize=6)
    return _Made(fig, pd.concat([t for _, _, t in parts], ignore_index=True))


# --------------------------------------------------------------------------------------------
# 9: ratios between models


def ratios(d: _Data, reference: Any = None) -> _Made:
    if len(d.curves) < 2:
        raise Skip(f"only one {d.curve} ({d.curves[0]}): no {d.curve}-to-{d.curve} ratios")
    ref = d.curves[0] if reference is None else _match(d.curves, reference, d.curve)
    rows = []
    for key, fit in d.noise_fits.items():
        values = dict(zip([*d.by, "n_cells"], key))
        if values[d.curve] == ref:
            continue
        ref_fit = d.noise_fits.get(group_key([ref if c == d.curve else values[c]
                                              for c in [*d.by, "n_cells"]]))
        if ref_fit is None:
            continue
        for p in ("u_bar", "I_max"):
            c = ratio(ref_fit, fit, p, level=ONE_SIGMA)
            rows.append({**values, "reference": ref, "param": p, "reference_value": c.a,
                         "value": c.b, "ratio": c.estimate, "ratio_1s_lo": c.low,
                         "ratio_1s_hi": c.high, "z": c.z, "p_value": c.p_value})
    if not rows:
        raise Skip(f"no training size has determined noise-law fits of both the reference "
                   f"{d.curve} {ref} and another")
    table = pd.DataFrame(rows)
    others = [c for c in d.curves if c != ref and c in set(table[d.curve])]
    panels = d.panels(table)
    fig = Figure(figsize=(DOUBLE if len(panels) > 1 else SINGLE, 3.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, len(panels), squeeze=False, sharey="row"))
    width = 0.8 / len(d.sizes)
    for j, (name, g) in enumerate(panels):
        for row, p in enumerate(("u_bar", "I_max")):
            ax = axes[row, j]
            for _, r in g[g["param"] == p].iterrows():
                k = d.sizes.index(r["n_cells"])
                x = others.index(r[d.curve]) - 0.4 + width * (k + 0.5)
                ax.errorbar(x, r["ratio"], yerr=[[r["ratio"] - r["ratio_1s_lo"]],
                                                 [r["ratio_1s_hi"] - r["ratio"]]],
                            fmt="o", ms=3, capsize=1.5, elinewidth=0.7,
                            color=d.shade(r[d.curve], r["n_cells"]))
            ax.axhline(1, color="0.4", lw=0.6, ls="--")
            _plain_log(ax, "y")
            ax.set_xticks(range(len(others)), [literal(c) for c in others])
            ax.set_xlim(-0.6, len(others) - 0.4)
            ax.set_ylabel(("ū" if p == "u_bar" else "$I_{max}$") + f" / {literal(ref)}")
            if row == 0:
                ax.set_title(literal(name))
    fig.suptitle(f"relative to {literal(ref)} at the same training size (±1σ)", fontsize=6)
    fig.legend([Patch(color=d.shade(others[0], n)) for n in d.sizes],
               [f"N = {n:,}" for n in d.sizes], loc="outside lower center",
               ncol=len(d.sizes), frameon=False)
    return _Made(fig, table)


def _match(values: list, wanted: Any, column: str) -> Any:
    for v in values:
        if v == wanted or str(v) == str(wanted):
            return v
    raise ValueError(f"reference {wanted!r} is not a {column} of the table "
                     f"({', '.join(map(str, values))})")


BUILDERS: dict[str, Callable[..., _Made]] = {
    "noise_curves": noise_curves, "annotated_curve": annotated_curve,
    "cell_curves": cell_curves, "cell_collapse": cell_collapse_figure,
    "collapse": collapse_figure, "parameters": parameters, "r2": r2_maps, "u90": u90_table,
    "scale_up": scale_up, "ratios": ratios,
}
BUILDER_OPTIONS = {"annotated_curve": ("annotate",), "scale_up": ("factor",),
                   "ratios": ("reference",)}

__all__ = ["NAMES", "FigureSet", "figures"]
