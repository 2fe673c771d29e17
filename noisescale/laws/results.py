"""The results schema of a sweep and the one way to fit the laws to a results table.

A results table has one row per measurement (a job's MI with one signal):
:data:`RESULT_COLUMNS`, in order, built with :func:`result_row`; ``estimator`` is the method
used and :data:`MI_COLUMNS` the estimate's standard error, 95 % interval, null and flags
(:meth:`noisescale.mi.MIEstimate.as_row`; NaN and "" where not computed, and in tables from
before they existed). :func:`fit_results` fits the
noise law over depth for every group and training size, and the cell-number law at every depth
when a group has three or more training sizes; :func:`curve_fits` gives the fitted curves
behind a fits table as :class:`~noisescale.laws.LawFit` objects, for figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._internal.checks import check_int
from .analysis import fit_table
from .fit import (
    MIN_LEVELS,
    LawFit,
    fit_cell_law,
    fit_joint_law,
    fit_noise_law,
    n_levels,
    replicate_sigma,
)

#: Columns of the results table, in order (a job adds one row per signal).
RESULT_COLUMNS = [
    "dataset", "signal", "model", "estimator", "n_cells", "fraction", "seed",
    "umis_per_cell", "train_umis_per_cell", "mi", "mi_se", "mi_lo", "mi_hi", "mi_null",
    "mi_null_sd", "mi_flags", "n_test", "fit_seconds", "embed_seconds", "mi_seconds", "job",
]
#: The estimate's uncertainty, null and flags (";"-joined, see noisescale.mi.result.FLAGS).
MI_COLUMNS = ["mi_se", "mi_lo", "mi_hi", "mi_null", "mi_null_sd", "mi_flags"]
#: The fit weights of :func:`fit_results`.
WEIGHTS = ("none", "replicates", "estimate")
#: Columns that differ between runs of the same job (wall times).
TIMING_COLUMNS = ["fit_seconds", "embed_seconds", "mi_seconds"]


#: Columns a table needs for the laws to be fitted to it.
REQUIRED = ("n_cells", "fraction", "seed", "umis_per_cell", "mi")
DEFAULT_BY = ("dataset", "signal", "model")


def result_row(**values: Any) -> dict[str, Any]:
    """One row of a results table: exactly the :data:`RESULT_COLUMNS`, in order."""
    unknown = set(values) - set(RESULT_COLUMNS)
    missing = [c for c in RESULT_COLUMNS if c not in values]
    if unknown or missing:
        raise ValueError(f"a results row needs exactly {RESULT_COLUMNS}; "
                         f"unknown {sorted(unknown)}, missing {missing}")
    return {c: values[c] for c in RESULT_COLUMNS}


def results_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a results table in the stable order (dataset, signal, model, n_cells, seed,
    then decreasing fraction)."""
    df = with_mi_columns(pd.DataFrame(list(rows), columns=RESULT_COLUMNS))
    order = ["dataset", "signal", "model", "n_cells", "seed", "fraction"]
    return df.sort_values(order, ascending=[True] * 5 + [False],
                          kind="stable").reset_index(drop=True)


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """A results table from a sweep's output directory, a ``.csv`` or a ``.parquet`` file."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
        if not p.exists():
            raise FileNotFoundError(f"no results.csv in {path}: is it a sweep's output "
                                    "directory (noisescale run writes it)?")
    if not p.exists():
        raise FileNotFoundError(f"results not found: {p}")
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
    elif p.suffix in (".csv", ".tsv"):
        df = pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
    else:
        raise ValueError(f"results must be a directory, .csv, .tsv or .parquet, got {p}")
    missing = [c for c in ("umis_per_cell", "mi") if c not in df.columns]
    if missing:
        raise ValueError(f"{p} is not a results table: it has no column(s) {missing}")
    return with_mi_columns(df)


def with_mi_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every :data:`MI_COLUMNS` column (missing ones, e.g. in tables written
    before they existed, after ``mi``: NaN, and "" for ``mi_flags``); a copy when changed."""
    missing = [c for c in MI_COLUMNS if c not in df.columns]
    empty_flags = "mi_flags" in df.columns and bool(df["mi_flags"].isna().any())
    if not missing and not empty_flags:
        return df
    df = df.copy()
    at = df.columns.get_loc("mi") + 1 if "mi" in df.columns else len(df.columns)
    for c in missing:
        df.insert(at, c, "" if c == "mi_flags" else np.nan)
        at += 1
    df["mi_flags"] = df["mi_flags"].fillna("").astype(str)
    return df


# --------------------------------------------------------------------------------------------
# The parameter table


def fit_results(results: pd.DataFrame, *, by: Sequence[str] = DEFAULT_BY, bootstrap: int = 0,
                seed: int = 0, weights: str = "none") -> pd.DataFrame:
    """Fit the scaling laws to a sweep's results table; one row per fitted curve.

    ``law == "noise"``: MI against ``umis_per_cell`` for each group of ``by`` and each
    ``n_cells``. ``law == "cells"``: MI against ``n_cells`` for each group and thinning
    ``fraction`` (its mean ``umis_per_cell`` alongside), only for groups with at least three
    distinct ``n_cells``. ``bootstrap`` refits resample whole seeds when a curve has several,
    points otherwise. ``weights="estimate"`` weights each point by the estimator's own
    standard error (the ``mi_se`` column of a sweep run with uncertainty on; an estimate with
    se 0, e.g. an exact 0 for a constant embedding, is floored at a tenth of the median
    positive se of its own group of ``by``, so that signals measured with very different
    precision do not set each other's floor; a finite MI without an se is an error). Fits are
    unweighted unless ``weights="replicates"``: weights from the spread over seeds at each
    point, which needs many seeds (with 3 to 5 the 95 % intervals hold the truth in only
    60-90 % of simulated sweeps, against ~95 % unweighted). Columns
    not applying to a law are NaN; a curve that cannot be fitted has the flag ``failed`` and
    its reason in ``error``. ``reliable`` is False for ``failed`` and for the flags of
    :data:`~noisescale.laws.fit.UNRELIABLE`: ``few_points``, ``few_levels`` (fewer than three
    distinct depths, e.g. a sweep with one or two fractions, or cell numbers), ``flat``
    (``r2`` is then NaN), ``unbracketed`` (no depths on one side of ``u_bar``),
    ``not_saturating``, ``uncertain``, ``at_bound`` and ``poor_fit`` (``r2`` below 0.5);
    ``negative_mi`` and ``dropped_nan`` are informative (see :mod:`noisescale.laws.fit`).
    """
    by = check_results(results, by)
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {list(WEIGHTS)}, got {weights!r}")
    bootstrap = check_int("bootstrap", bootstrap, 0)
    with np.errstate(all="ignore"):  # intervals of poorly determined fits overflow to inf
        df = prepare_results(results, by)
        if weights == "estimate":
            df = _estimate_sigma(df, by)
        return _fit(df, by, bootstrap, seed, weights)


def check_fits(fits: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """A copy of a :func:`fit_results` table ready to draw: the columns the figures need are
    checked, flags and errors are strings, ``reliable`` is boolean, ``n_cells`` an integer."""
    need = [*by, "law", "n_cells", "fraction", "u_bar", "u_bar_lo", "u_bar_hi", "I_max",
            "I_max_lo", "I_max_hi", "reliable"]
    missing = [c for c in need if c not in fits.columns]
    if missing:
        raise ValueError(f"the fits table lacks column(s) {missing}; make it with fit_results")
    fits = fits.copy()
    for c in ("flags", "error"):
        fits[c] = fits[c].fillna("").astype(str) if c in fits else ""
    fits["reliable"] = fits["reliable"].eq(True)
    fits["n_cells"] = pd.to_numeric(fits["n_cells"]).astype("Int64")
    fits["weights"] = fits["weights"].fillna("none") if "weights" in fits else "none"
    return fits


def check_results(results: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """The grouping columns as a list, after checking the table has what the fits need."""
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise ValueError("by needs at least one grouping column, e.g. ('dataset', 'model')")
    clash = [c for c in by if c in REQUIRED]
    if clash:
        raise ValueError(f"{clash} cannot be grouping columns: the laws are fitted over them")
    missing = [c for c in dict.fromkeys([*by, *REQUIRED]) if c not in results.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing} "
                         f"(it has: {list(results.columns)})")
    if results.empty:
        raise ValueError("the results table is empty: no finished jobs to fit or report")
    return by


def prepare_results(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """A copy with numeric MI/depths and the fit weights and replicate labels of both laws
    (``by`` checked with :func:`check_results`): the table :func:`fit_results` fits."""
    df = results.reset_index(drop=True).copy()
    for c in ("mi", "umis_per_cell", "fraction"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for law, keys, x in (("noise", [*by, "n_cells"], "fraction"),
                         ("cells", [*by, "fraction"], "n_cells")):
        sigma = np.full(len(df), np.nan)
        rep = np.array([f"r{i}" for i in range(len(df))], dtype=object)
        weighted = np.zeros(len(df), dtype=bool)
        for _, g in df.groupby(keys, sort=False, dropna=False, observed=True):
            ok = g[np.isfinite(g["mi"]) & g[x].notna()]
            if ok.empty:
                continue
            idx = ok.index.to_numpy()
            try:
                sigma[idx] = replicate_sigma(ok[x].to_numpy(float)[:, None],
                                                  ok["mi"].to_numpy(float))
                weighted[g.index.to_numpy()] = True
            except ValueError:  # no replicates: equal weights, i.e. ordinary least squares
                sigma[idx] = 1.0
            if g["seed"].nunique() >= 2:
                rep[g.index.to_numpy()] = [f"s{s}" for s in g["seed"]]
        df[f"_sigma_{law}"], df[f"_rep_{law}"], df[f"_weighted_{law}"] = sigma, rep, weighted
    return df


def _estimate_sigma(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``df`` with ``_sigma_estimate``: ``mi_se`` floored at a tenth of the median positive
    ``mi_se`` of its group of ``by`` (of the whole table for a group with none), for
    ``weights="estimate"``."""
    if "mi_se" not in df.columns:
        raise ValueError("weights='estimate' needs an mi_se column (a sweep run with "
                         "[estimator] uncertainty = true)")
    se = pd.to_numeric(df["mi_se"], errors="coerce").to_numpy(float)
    missing = np.isfinite(df["mi"].to_numpy(float)) & ~np.isfinite(se)
    if missing.any():
        raise ValueError(f"weights='estimate': {int(missing.sum())} of {len(df)} rows have an MI "
                         "but no finite mi_se (rerun with uncertainty, or use weights='none')")
    positive = np.isfinite(se) & (se > 0)
    if not positive.any():
        raise ValueError("weights='estimate': no row has a positive mi_se")
    floor = np.full(len(df), 0.1 * float(np.median(se[positive])))
    groups = df.groupby(by, sort=False, dropna=False, observed=True).indices
    for idx in groups.values():
        own = se[idx][positive[idx]]
        if own.size:
            floor[idx] = 0.1 * float(np.median(own))
    df["_sigma_estimate"] = np.maximum(np.nan_to_num(se, nan=0.0), floor)
    return df


def _sigma_column(weights: str, law: str) -> str | None:
    return {"replicates": f"_sigma_{law}", "estimate": "_sigma_estimate"}.get(weights)


def cell_law_rows(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The rows of the groups of ``by`` with three or more training sizes: those the
    cell-number law is fitted to."""
    n_sizes = df.groupby(list(by), dropna=False, observed=True)["n_cells"].transform("nunique")
    return df[n_sizes >= 3]


def _fit(df: pd.DataFrame, by: list[str], bootstrap: int, seed: int,
         weights: str) -> pd.DataFrame:
    parts = []
    for law, key, x, sub in (("noise", "n_cells", "umis_per_cell", df),
                             ("cells", "fraction", "n_cells", cell_law_rows(df, by))):
        if sub.empty:
            continue
        keys = [*by, key]
        table = fit_table(sub, by=keys, x=x, law=law,
                               sigma=_sigma_column(weights, law),
                               replicate=f"_rep_{law}", bootstrap=bootstrap, seed=seed)
        agg = {"n_seeds": ("seed", "nunique"),
               "weighted": (f"_weighted_{law}", "any" if weights == "replicates"
                            else lambda s: weights == "estimate")}
        if law == "cells":
            agg["umis_per_cell"] = ("umis_per_cell", "mean")
        if "estimator" in df.columns and "estimator" not in by:
            agg["estimator"] = ("estimator", lambda s: ",".join(sorted(map(str, s.unique()))))
        meta = sub.groupby(keys, dropna=False, observed=True).agg(**agg).reset_index()
        meta["weights"] = np.where(meta.pop("weighted"), weights, "none")
        parts.append(table.merge(meta, on=keys, how="left"))
    out = pd.concat(parts, ignore_index=True)
    for c in ("fraction", "umis_per_cell"):
        if c not in out:
            out[c] = np.nan
    out["n_cells"] = out["n_cells"].astype("Int64")
    front = [*by, *(["estimator"] if "estimator" in out else []), "law", "n_cells", "fraction",
             "umis_per_cell", "n_seeds", "weights", "n_points"]
    back = ["r2", "rmse", "aic", "reliable", "flags", "error"]
    for c in back:
        if c not in out:
            out[c] = np.nan
    middle = [c for c in out.columns if c not in front and c not in back]
    out["reliable"] = out["reliable"].eq(True)
    out["flags"] = out["flags"].fillna("")
    out["error"] = out["error"].fillna("")
    return out[front + middle + back]


def curve_fits(df: pd.DataFrame, fits: pd.DataFrame, keys: list[str],
               law: str) -> dict[tuple, LawFit | None]:
    """The curves of a fits table as LawFit objects (for figures), refitted on the prepared
    table ``df`` (:func:`prepare_results`) with the weights the table names; None where the
    fit fails. ``keys`` are the grouping columns plus ``n_cells`` (noise) or ``fraction``
    (cells)."""
    fitter, x = ((fit_noise_law, "umis_per_cell") if law == "noise"
                 else (fit_cell_law, "n_cells"))
    if (fits["weights"] == "estimate").any() and "_sigma_estimate" not in df.columns:
        df = _estimate_sigma(df.copy(), keys[:-1])
    weighted = {group_key(r[keys]): r["weights"] for _, r in fits.iterrows()}
    out: dict[tuple, LawFit | None] = {}
    for key, g in df.groupby(keys, dropna=False, observed=True):
        column = _sigma_column(weighted.get(group_key(key), "none"), law)
        sigma = g[column].to_numpy() if column else None
        try:
            out[group_key(key)] = fitter(g[x].to_numpy(float), g["mi"].to_numpy(), sigma=sigma)
        except (ValueError, RuntimeError):
            out[group_key(key)] = None
    return out


def joint_fits(df: pd.DataFrame, by: Sequence[str]) -> dict[tuple, LawFit | str]:
    """The joint law I(N, u) fitted to each group of ``by`` of a prepared table (unweighted),
    or why it was not: fewer than three depths, or the fitter's error."""
    out: dict[tuple, LawFit | str] = {}
    for key, g in df.groupby(list(by), observed=True):
        key = group_key(key if isinstance(key, tuple) else (key,))
        if n_levels(g["umis_per_cell"].to_numpy()) < MIN_LEVELS:
            out[key] = "fewer than three depths"
            continue
        try:
            out[key] = fit_joint_law(g["n_cells"], g["umis_per_cell"], g["mi"])
        except (ValueError, RuntimeError) as e:
            out[key] = str(e)
    return out


def group_key(values) -> tuple:
    """A group key with numpy scalars as Python numbers, to match keys across tables."""
    return tuple(v.item() if isinstance(v, np.generic) else v for v in values)
