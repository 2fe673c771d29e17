"""One self-contained HTML report of a sweep: :func:`write_report` renders the fits of
:func:`noisescale.laws.fit_results`, the figures of :mod:`noisescale.report.plots` (embedded as
PNG) and the run's provenance into a single file with no external resources.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import laws
from ..laws.fit import UNDETERMINED
from ..laws.results import (
    DEFAULT_BY,
    cell_law_rows,
    check_fits,
    check_results,
    curve_fits,
    fit_results,
    group_key,
    prepare_results,
)
from ..io.atomic import write_atomic
from . import plots as plot

TIMINGS = ("fit_seconds", "embed_seconds", "mi_seconds")
FLAG_NOTES = {
    "failed": "the law could not be fitted (reason shown)",
    "few_points": "fewer than p + 3 points",
    "few_levels": "fewer than three distinct depths (or cell numbers; within 10 % is one)",
    "flat": "MI does not change: the scale is undetermined (R² is NaN)",
    "unbracketed": "no depths on one side of ū: ū is extrapolated",
    "not_saturating": "the data reach less than half of the asymptote, which is extrapolated",
    "uncertain": "a standard error exceeds its parameter",
    "at_bound": "a parameter ended on its bound",
    "poor_fit": "R² below 0.5: the law explains less than half of the variance",
    "negative_mi": "some MI estimates are negative (kept)",
    "dropped_nan": "rows with NaN MI were dropped",
}


# --------------------------------------------------------------------------------------------
# The report


def write_report(results: pd.DataFrame, path: str | os.PathLike, *,
                 fits: pd.DataFrame | None = None, provenance: Mapping[str, Any] | None = None,
                 by: Sequence[str] = DEFAULT_BY, title: str | None = None,
                 dpi: int = 90, figures: Sequence[str | os.PathLike] = ()) -> Path:
    """Write a self-contained HTML report of a sweep to ``path`` (atomically) and return it.

    ``fits`` is a :func:`fit_results` table (made here, unweighted, when None; pass one e.g.
    with bootstrap intervals); the drawn curves are refits with the weights it names.
    ``provenance`` is the run's JSON-able record (version, config text and hash, seeds,
    dataset, times, ...). Figures are PNG at ``dpi`` embedded as base64; nothing is loaded
    from the network. ``figures``: PNG files to embed as they are, e.g. the paper's figures
    (:func:`noisescale.report.figures`), in a section of their own.
    """
    by = check_results(results, by)
    df = prepare_results(results, by)
    fits = check_fits(fits, by) if fits is not None else None
    with np.errstate(all="ignore"):  # bands of poorly determined fits overflow harmlessly
        fits = fit_results(results, by=by) if fits is None else fits
        page = _Page(df, fits, dict(provenance or {}), by, dpi)
        page.images = [Path(f) for f in figures]
        text = page.render(title)
    return write_atomic(Path(path), text)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any) -> str:
    """3 significant digits; thousands as integers with separators (10^6 and more in
    scientific notation); a dash for NaN."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if abs(v) >= 1e6:
        return f"{v:.3g}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _interval(lo: Any, hi: Any) -> str:
    return f"[{_num(lo)}, {_num(hi)}]"


def _png(fig, dpi: int, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    fig.clear()
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           classes: Sequence[str] | None = None) -> str:
    """An HTML table; cells are HTML already (escape data with _e before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _status(row: Mapping[str, Any]) -> tuple[str, str]:
    flags = [f for f in str(row.get("flags", "")).split(";") if f]
    if "failed" in flags:
        return "bad", '<span class="badge bad">failed</span>'
    if row["reliable"]:
        return "", '<span class="badge ok">reliable</span>'
    return "warn", '<span class="badge warn">unreliable</span>'


def _flags(row: Mapping[str, Any]) -> str:
    text = _e(", ".join(f for f in str(row.get("flags", "")).split(";") if f and f != "failed"))
    error = str(row.get("error", "") or "")
    return text + (f'<div class="reason">{_e(error)}</div>' if error else "")


class _Page:
    """The sections of the report for one prepared results table and its fits."""

    def __init__(self, df: pd.DataFrame, fits: pd.DataFrame, provenance: dict[str, Any],
                 by: list[str], dpi: int):
        self.df, self.by, self.dpi, self.prov = df, by, dpi, provenance
        self.curve, self.panel = plot.curve_and_panels(by)
        self.noise = _labelled(fits[fits["law"] == "noise"], self.curve)
        self.cells = _labelled(fits[fits["law"] == "cells"], self.curve)
        self.plot_df = _labelled(plot.at_mean_depth(df, by), self.curve)
        self.noise_fits = curve_fits(df, self.noise, [*by, "n_cells"], "noise")
        self.cell_fits = curve_fits(cell_law_rows(df, by), self.cells, [*by, "fraction"],
                                    "cells")
        self.images: list[Path] = []

    def _panels(self, frame: pd.DataFrame, cols: list[str] | None = None):
        """(name, rows) per panel: the groups of ``cols`` (default: by without the curve)."""
        return plot.panels(frame, self.panel if cols is None else cols)

    # -- sections -------------------------------------------------------------------------

    def render(self, title: str | None) -> str:
        df = self.df
        names = {c: sorted(map(str, df[c].unique())) for c in self.by}
        title = title or "noisescale report: " + ", ".join(names.get("dataset", names[self.by[0]]))
        sections = [("summary", "Noise law per group", self.summary()),
                    ("curves", "Scaling curves", self.curves()),
                    ("collapse", "Collapse", self.collapse()),
                    ("cells", "Cell-number law", self.cell_law()),
                    ("residuals", "Residuals", self.residuals()),
                    ("figures", "Paper figures", self.figures()),
                    ("data", "Measurements", self.measurements()),
                    ("provenance", "Provenance", self.provenance())]
        sections = [s for s in sections if s[2]]
        toc = " · ".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in sections)
        n_nan = int((~np.isfinite(df["mi"])).sum())
        facts = [f"{len(df):,} measurements", *(f"{len(v)} {_e(c)}{'s' if len(v) != 1 else ''}"
                                       for c, v in names.items()),
                 f"{df['n_cells'].nunique()} training sizes",
                 f"{df['fraction'].nunique()} depths", f"{df['seed'].nunique()} seeds"]
        if n_nan:
            facts.append(f'<span class="warn-text">{n_nan} measurements without MI (NaN)</span>')
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "".join(f'<section id="{a}"><h2>{_e(h)}</h2>{s}</section>'
                       for a, h, s in sections)
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{_e(title)}</h1><p>{' · '.join(facts)}</p>"
                f'<p class="muted">noisescale {_e(_version(self.prov))} · written {stamp}</p>'
                f"<nav>{toc}</nav></header>{body}</body></html>\n")

    def figures(self) -> str:
        """The given PNG files, embedded as they are, each under its name."""
        parts = []
        for f in self.images:
            if f.suffix.lower() != ".png":
                raise ValueError(f"report figures must be PNG files, got {f}")
            data = base64.b64encode(f.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{_e(f.stem)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{_e(f.name)}</figcaption></figure>")
        return "".join(parts)

    def summary(self) -> str:
        t = self.noise
        boot = "u_bar_boot_lo" in t and t["u_bar_boot_lo"].notna().any()
        header = [*map(_e, self.by), "N cells", "ū (UMIs/cell) [95% CI]", "I_max (bits) [95% CI]",
                  "u90", "R²", "points", "seeds", "status", "flags"]
        rows, classes = [], []
        for _, r in t.iterrows():
            cls, badge = _status(r)
            u = f"{_num(r['u_bar'])} {_interval(r['u_bar_lo'], r['u_bar_hi'])}"
            i = f"{_num(r['I_max'])} {_interval(r['I_max_lo'], r['I_max_hi'])}"
            if boot and pd.notna(r.get("u_bar_boot_lo")):
                u += (f'<div class="muted">bootstrap '
                      f'{_interval(r["u_bar_boot_lo"], r["u_bar_boot_hi"])}</div>')
                i += (f'<div class="muted">bootstrap '
                      f'{_interval(r["I_max_boot_lo"], r["I_max_boot_hi"])}</div>')
            rows.append([*(_e(r[c]) for c in self.by), _num(r["n_cells"]), u, i,
                         _num(r.get("u90")), _num(r.get("r2")), _e(r.get("n_points", "")),
                         _e(r.get("n_seeds", "")), badge, _flags(r)])
            classes.append(cls)
        n_ok, n_w = int(t["reliable"].sum()), int((t["weights"] == "replicates").sum())
        n_e = int((t["weights"] == "estimate").sum())
        weights = (f"{n_w} fits are weighted by the spread over seeds" if n_w
                   else f"{n_e} fits are weighted by the estimators' standard errors" if n_e
                   else "Fits are unweighted least squares")
        lead = (f"<p>{n_ok} of {len(t)} noise-law fits are reliable. ū is the depth at which "
                "a representation holds I_max minus at most half a bit; u90 reaches 90 % of "
                f"I_max. {weights}; intervals are 95 % t-intervals.</p>") + self.estimates()
        return lead + _table(header, rows, classes) + _glossary(t) + self.parameters()

    def estimates(self) -> str:
        """Which estimators made the MI measurements, and how many sit within their null."""
        df = self.df
        parts = []
        if "estimator" in df:
            used = ", ".join(f"{_e(m)} ({int(c)})" for m, c in
                             df["estimator"].astype(str).value_counts().sort_index().items())
            parts.append(f"MI estimators (measurements): {used}.")
        if "mi_flags" in df and "mi_null" in df and df["mi_null"].notna().any():
            within = int(df["mi_flags"].fillna("").astype(str).str.contains("within_null").sum())
            parts.append(f"{within} of {len(df)} estimates are not above their null's 95 % "
                         "upper edge (dashed lines in the curves: shuffled pairings); error bars "
                         "combine the spread over seeds with the estimators' standard errors.")
        return f"<p>{' '.join(parts)}</p>" if parts else ""

    def parameters(self) -> str:
        figs = []
        several = self.df["n_cells"].nunique() > 1
        for name, g in self._panels(self.noise):
            ok = g[np.isfinite(g[["u_bar_lo", "u_bar_hi", "I_max_lo", "I_max_hi"]]).all(axis=1)]
            if ok.empty:
                continue
            fig = plot.parameter_comparison(ok, label=["_curve", "n_cells"] if several
                                            else "_curve")
            ax = fig.axes[0]
            lo, hi = ax.get_xlim()
            if hi < 10 * lo:  # at least a decade, so that the log ticks stay legible
                mid = math.sqrt(lo * hi)
                ax.set_xlim(mid / math.sqrt(10), mid * math.sqrt(10))
            ax.set_title(plot.literal(name), fontsize="medium")
            figs.append(_png(fig, self.dpi, f"ū and I_max, {name}"))
        if not figs:
            return ""
        return ('<h3>ū against I_max</h3><p class="muted">Crosses mark unreliable fits.</p>'
                f'<div class="figs">{"".join(figs)}</div>')

    def curves(self) -> str:
        out = []
        for name, g in self._panels(self.plot_df):
            figs = []
            for n, gn in g.groupby("n_cells", sort=True):
                fits, labels = {}, gn["_curve"].copy()
                for key, gc in gn.groupby(self.by, dropna=False, observed=True):
                    key = group_key([*(key if isinstance(key, tuple) else (key,)), n])
                    shown, suffix = self._shown(self.noise, key, self.noise_fits)
                    labels[gc.index] = label = gc["_curve"].iloc[0] + suffix
                    fits[label] = shown
                gn = gn.assign(_curve=labels)
                fig = plot.scaling_curves(gn, by=["_curve"], fits=fits,
                                          title=f"{plot.literal(name)}, N = {n:,} cells")
                plot.clip_y(fig.axes[0], gn.groupby(["_curve", "fraction"])["mi"].mean(),
                            pad=0.15)
                figs.append(_png(fig, self.dpi, f"scaling curves, {name}, N = {n}"))
            out.append(f"<h3>{_e(name)}</h3><div class=\"figs\">{''.join(figs)}</div>")
        return ('<p class="muted">Mean ± sd over seeds, the fitted noise law of the table and '
                "its 95 % band; one panel per training size, one colour per "
                f"{_e(self.curve)}. No curve is drawn where the fit failed or its parameters "
                "are not determined by the data (flat, few_points, few_levels, at_bound).</p>"
                + "".join(out))

    def _shown(self, table: pd.DataFrame, key: tuple,
               fits: dict[tuple, laws.LawFit | None]) -> tuple[laws.LawFit | None, str]:
        """The fit to draw for a curve (None: points only) and its legend suffix."""
        keys = [*self.by, "n_cells" if table is self.noise else "fraction"]
        rows = table[np.logical_and.reduce([table[c].eq(v) for c, v in zip(keys, key)])]
        if rows.empty:
            return None, ""
        r = rows.iloc[0]
        undetermined = set(str(r["flags"]).split(";")) & UNDETERMINED
        fit = None if undetermined else fits.get(key)
        return fit, "" if r["reliable"] else " (unreliable)"

    def collapse(self) -> str:
        keys = [*self.by, "n_cells"]
        fits = self.noise[self.noise["reliable"]].copy()
        if fits.empty:
            return "<p>No reliable noise-law fit: nothing to collapse.</p>"
        fits["n_cells"] = fits["n_cells"].astype(self.df["n_cells"].dtype)
        u = self.df["umis_per_cell"]
        collapsed, rms = laws.collapse(self.df[np.isfinite(u) & (u > 0)],
                                       fits[[*keys, "u_bar", "I_max", "reliable"]], by=keys)
        collapsed = collapsed[collapsed["reliable"].eq(True)]
        colour = self.by if len(fits.groupby(self.by)) <= 10 else [self.curve]
        collapsed["_colour"] = [plot.literal(plot.join_label(v))
                                for v in collapsed[colour].itertuples(False)]
        fig = plot.collapse_plot(collapsed, by="_colour", quality=rms)
        return (f"<p>Collapse RMS deviation from x/(1+x): <b>{_num(rms)}</b> over the points "
                f"of the {len(fits)} reliable fits (0 is a perfect collapse).</p>"
                + _png(fig, self.dpi, "collapse"))

    def cell_law(self) -> str:
        t = self.cells
        if t.empty:
            return ""
        header = [*map(_e, self.by), "q", "UMIs/cell", "N0 [95% CI]", "s [95% CI]",
                  "I_∞ (bits) [95% CI]", "R²", "points", "status", "flags"]
        rows, classes = [], []
        for _, r in t.iterrows():
            cls, badge = _status(r)
            rows.append([*(_e(r[c]) for c in self.by), _num(r["fraction"]),
                         _num(r["umis_per_cell"]),
                         *(f"{_num(r[p])} {_interval(r[p + '_lo'], r[p + '_hi'])}"
                           for p in ("N0", "s", "I_inf")),
                         _num(r.get("r2")), _e(r.get("n_points", "")), badge, _flags(r)])
            classes.append(cls)
        figs = []
        data = self.plot_df[self.plot_df["n_cells"] > 0]
        depth = data.groupby([*self.by, "fraction"], dropna=False,
                             observed=True)["umis_per_cell"].transform("mean")
        data = data.assign(depth=depth.round().astype(int) if (depth >= 10).all()
                           else depth.round(2))
        for name, g in self._panels(data, self.by):
            fits = {}
            for key, gd in g.groupby([*self.by, "fraction"], dropna=False, observed=True):
                if group_key(key) in self.cell_fits:
                    fits[str(gd["depth"].iloc[0])] = self._shown(self.cells, group_key(key),
                                                                 self.cell_fits)[0]
            g = g[g["depth"].map(str).isin(fits)]
            if g.empty:
                continue
            fig = plot.scaling_curves(g, by=["depth"], x="n_cells", law="cells", fits=fits,
                                      title=plot.literal(name))
            fig.axes[0].legend(title="UMIs per cell", fontsize="small", frameon=False)
            plot.clip_y(fig.axes[0], g.groupby(["depth", "n_cells"])["mi"].mean(), pad=0.15)
            figs.append(_png(fig, self.dpi, f"cell-number curves, {name}"))
        return ("<p>I(N) = I_∞ − (N/N0)^(−s) fitted at each depth, one colour per depth.</p>"
                + _table(header, rows, classes) + f'<div class="figs">{"".join(figs)}</div>')

    def residuals(self) -> str:
        figs = []
        several = self.df["n_cells"].nunique() > 1
        for name, g in self._panels(self.noise):
            fits = {}
            for _, r in g.iterrows():
                fit = self._shown(self.noise, group_key(r[c] for c in [*self.by, "n_cells"]),
                                  self.noise_fits)[0]
                if fit is not None:
                    label = r["_curve"] + (f", N = {r['n_cells']:,}" if several else "")
                    fits[label] = fit
            if fits:
                fig = plot.residuals(fits)
                fig.axes[0].set_title(plot.literal(name), fontsize="medium")
                figs.append(_png(fig, self.dpi, f"residuals, {name}"))
        if not figs:
            return ""
        return ('<p class="muted">Data minus the fitted noise law; a trend means the law '
                f'misses the shape.</p><div class="figs">{"".join(figs)}</div>')

    def measurements(self) -> str:
        keys = [*self.by, "n_cells", "fraction"]
        agg = self.df.groupby(keys, sort=True, dropna=False, observed=True).agg(
            u=("umis_per_cell", "mean"), mean=("mi", "mean"), sd=("mi", "std"),
            n=("mi", lambda s: int(np.isfinite(s).sum())), jobs=("mi", "size"))
        rows, classes = [], []
        for key, r in agg.iterrows():
            missing = int(r["jobs"] - r["n"])
            rows.append([*(_e(v) for v in key[:-2]), _num(key[-2]), _num(key[-1]), _num(r["u"]),
                         f"{_num(r['mean'])} ± {_num(r['sd'])}",
                         f"{int(r['n'])}" + (f" ({missing} NaN)" if missing else "")])
            classes.append("warn" if missing else "")
        header = [*map(_e, self.by), "N cells", "q", "UMIs/cell", "MI (bits), mean ± sd",
                  "seeds"]
        return (f"<details><summary>{len(agg):,} points from {len(self.df):,} measurements: mean "
                "± sd over seeds</summary>" + _table(header, rows, classes) + "</details>")

    def provenance(self) -> str:
        parts = []
        cols = [c for c in TIMINGS if c in self.df]
        if cols:
            # A job (one fit and embedding) gives one row per signal: its fit and embed times
            # repeat on each, so they are counted once per job; MI times belong to the rows.
            jobs_df = self.df.drop_duplicates("job") if "job" in self.df else self.df
            once = [c for c in cols if c != "mi_seconds"]
            t = jobs_df.groupby(self.curve)[once].sum()
            if "mi_seconds" in cols:
                t["mi_seconds"] = self.df.groupby(self.curve)["mi_seconds"].sum()
            t["total"] = t.sum(axis=1)
            jobs = jobs_df.groupby(self.curve).size()
            t.loc["all"], jobs.loc["all"] = t.sum(), jobs.sum()
            rows = [[_e(k), f"{int(jobs[k]):,}", *(_num(v) for v in r)] for k, r in t.iterrows()]
            parts.append("<h3>Job time (seconds, summed over jobs)</h3>" + _table(
                [_e(self.curve), "jobs", *(c.replace("_seconds", "") for c in cols), "total"],
                rows))
        if not self.prov:
            return "".join(parts) + "<p>No provenance was given.</p>"
        items, long = [], []
        for k, v in self.prov.items():
            if isinstance(v, str) and ("\n" in v or len(v) > 120):
                long.append(f"<h3>{_e(k)}</h3><pre>{_e(v)}</pre>")
            elif isinstance(v, (dict, list, tuple)):
                text = json.dumps(v, default=str)
                if len(text) > 80:
                    text = json.dumps(v, indent=1, default=str)
                    items.append([_e(k), f"<pre>{_e(text)}</pre>"])
                else:
                    items.append([_e(k), _e(text)])
            else:
                items.append([_e(k), _e(v)])
        return "".join(parts) + "<h3>Run</h3>" + _table(["item", "value"], items) + "".join(long)


def _labelled(frame: pd.DataFrame, curve: str) -> pd.DataFrame:
    """A copy with ``_curve``: the curve column as matplotlib shows it literally."""
    frame = frame.reset_index(drop=True).copy()
    frame["_curve"] = frame[curve].map(plot.literal)
    return frame


def _version(prov: Mapping[str, Any]) -> str:
    for k in ("noisescale_version", "version", "noisescale"):
        if isinstance(prov.get(k), str):
            return prov[k]
    from .. import __version__

    return __version__


def _glossary(t: pd.DataFrame) -> str:
    seen = {f for flags in t["flags"] for f in str(flags).split(";") if f}
    notes = [f"<li><b>{_e(f)}</b>: {_e(n)}</li>" for f, n in FLAG_NOTES.items() if f in seen]
    if not notes:
        return ""
    return ("<p class=\"muted\">Flags (failed and all but the last two make a fit "
            "unreliable):</p>"
            f'<ul class="muted">{"".join(notes)}</ul>')


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2126;
margin:0 auto;max-width:1500px;padding:0 1.5rem 3rem}
header{border-bottom:1px solid #d8dde3;margin-bottom:1rem}h1{font-size:1.5rem;margin:1.2rem 0 .3rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #eceff2}h3{font-size:1rem}
nav a{color:#2060a0;text-decoration:none}.muted{color:#68707a;font-size:.92em}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9em}
th,td{border:1px solid #dde2e7;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}td{font-variant-numeric:tabular-nums}
tr.warn td{background:#fff8e6}tr.bad td{background:#fdecec}
.badge{border-radius:3px;padding:0 .4rem;font-size:.85em;white-space:nowrap}
.badge.ok{background:#dff3e4;color:#1b6b34}.badge.warn{background:#ffe9b3;color:#7a5300}
.badge.bad{background:#f8c9c9;color:#8a1c1c}.reason{color:#8a1c1c;font-size:.9em}
.warn-text{color:#7a5300}.figs{display:flex;flex-wrap:wrap;gap:.6rem}
.figs img{width:min(100%,470px);height:auto;border:1px solid #eceff2}
section>img{max-width:100%;height:auto;border:1px solid #eceff2}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:30rem;font-size:.85em}
details summary{cursor:pointer;margin:.4rem 0}
"""


__all__ = ["write_report"]
