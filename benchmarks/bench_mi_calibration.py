#!/usr/bin/env python
"""MI calibration benchmark: every noisescale estimator (and benchmark-mi's, if installed) on
tasks with an exactly known MI (noisescale.simulate.mi_tasks, "Beyond Normal" style).

For each task, N and seed the task is sampled once and every estimator runs on the same
samples. noisescale's estimators run through noisescale.mi.estimate with uncertainty=True and
null=True (half-sample standard error, 95 % interval, shuffled-pairing null); trained ones
(lmi, infonce, mine, probe) with refit=False by default: the networks are trained once on the
samples and only their held-out evaluation is resampled, so their interval leaves out the
training's own variance (--refit adds "lmi+refit", refit=True, on a subset). Methods of
noisescale.mi.METHODS that do not import yet are skipped with a note. benchmark-mi (bmi; in a
separate venv, see benchmarks/README.md) adds its KSG, CCA, MINE, InfoNCE, NWJ and
Donsker-Varadhan with their defaults (bmi reports nats; converted to bits here), with a
one-shuffle null for its KSG and CCA.

Prints, per task: mean error (estimate - truth, bits) ± sd over seeds, the 95 % interval's
coverage of the truth, mean reported se, mean null, seconds; then a summary: best noisescale vs
best bmi estimator per task, the default rule's pick and its distance to the best, calibration
(coverage where |mean error| < 2 se, the bias where not) and the null on independent data.

    python benchmarks/bench_mi_calibration.py --quick                 # smoke run, ~3 min
    python benchmarks/bench_mi_calibration.py --csv calib.csv         # full: hours on 2 cores
    python benchmarks/bench_mi_calibration.py --tasks student --n 10000 --seeds 3
    python benchmarks/bench_mi_calibration.py --merge a.runs.csv b.runs.csv  # tables of runs
"""

from __future__ import annotations

import argparse
import importlib
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from noisescale import build_info
from noisescale.mi import default_method, estimate
from noisescale.mi.estimate import METHODS, TRAINED
from noisescale.simulate.mi_tasks import tasks as all_tasks

LN2 = math.log(2.0)
#: Where each noisescale method lives: it is benchmarked only if this imports.
MODULES = {"ksg": "noisescale.mi.ksg", "lmi": "noisescale.mi.lmi",
           "infonce": "noisescale.mi.neural", "mine": "noisescale.mi.neural",
           "cca": "noisescale.mi.gaussian", "probe": "noisescale.mi.probe"}
BMI_NAMES = ("bmi-ksg", "bmi-cca", "bmi-mine", "bmi-infonce", "bmi-nwj", "bmi-dv")
REFIT_TASKS = ("normal-sparse-5x5", "student-dof2-2x2")
#: Named variants of a method with fixed options, benchmarked as estimators of their own.
VARIANTS = {"cca+copula": ("cca", {"copula": True}), "lmi+copula": ("lmi", {"copula": True})}


def resolve(name: str) -> tuple[str, dict]:
    """An estimator's name in the tables -> (noisescale method, fixed options): a variant of
    VARIANTS, "lmi+refit" (lmi, refit set by the job) or a plain method."""
    return VARIANTS.get(name, (name.split("+")[0], {}))


def available_methods(wanted: list[str] | None) -> list[str]:
    """The methods (ross needs labels: no task has them) and variants to run, those whose
    module (and torch, for trained methods) imports."""
    names = [m for m in METHODS if m != "ross"] + list(VARIANTS)
    if wanted:
        names = [m for m in names if m in wanted]
    importable: dict[str, bool] = {}
    out = []
    for name in names:
        method = resolve(name)[0]
        if method not in importable:
            try:
                importlib.import_module(MODULES[method])
                if method in TRAINED:
                    importlib.import_module("torch")
                importable[method] = True
            except (ImportError, ModuleNotFoundError) as e:
                print(f"  note: skipping noisescale {method!r}: {type(e).__name__}: {e}")
                importable[method] = False
        if importable[method]:
            out.append(name)
    return out


def bmi_factories(steps: int | None, wanted: list[str] | None):
    """{name: (factory(seed) -> estimator, has a cheap null)}, or {} without bmi."""
    try:
        import bmi  # noqa: F401
        from bmi.estimators import (CCAMutualInformationEstimator, DonskerVaradhanEstimator,
                                    InfoNCEEstimator, KSGEnsembleFirstEstimator,
                                    MINEEstimator, NWJEstimator)
    except Exception as e:  # noqa: BLE001 - jax/bmi can fail in many ways
        print(f"  note: benchmark-mi (bmi) not available: {type(e).__name__}: {e}")
        return {}
    neural = {} if steps is None else {"max_n_steps": steps}
    table = {
        "bmi-ksg": (lambda s: KSGEnsembleFirstEstimator(), True),
        "bmi-cca": (lambda s: CCAMutualInformationEstimator(), True),
        "bmi-mine": (lambda s: MINEEstimator(verbose=False, seed=s, **neural), False),
        "bmi-infonce": (lambda s: InfoNCEEstimator(verbose=False, seed=s, **neural), False),
        "bmi-nwj": (lambda s: NWJEstimator(verbose=False, seed=s, **neural), False),
        "bmi-dv": (lambda s: DonskerVaradhanEstimator(verbose=False, seed=s, **neural), False),
    }
    if wanted:
        table = {k: v for k, v in table.items() if k in wanted or k[4:] in wanted}
    return table


def run_noisescale(name, x, y, seed, args, refit, resamples):
    method, fixed = resolve(name)
    options = {**args.method_options.get(method, {}), **fixed}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # WithinNullWarning is expected on independent data
        r = estimate(x, y, method, uncertainty=True, null=True, resamples=resamples,
                     shuffles=args.shuffles, refit=refit, seed=seed, threads=args.threads,
                     **options)
    return {"mi": r.mi, "se": r.se, "lo": r.lo, "hi": r.hi, "null": r.null,
            "null_sd": r.null_sd, "within_null": r.within_null, "flags": ";".join(r.flags),
            "seconds": time.perf_counter() - t0}


def run_bmi(factory, cheap_null, x, y, seed):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mi = float(factory(seed).estimate(x, y)) / LN2
        seconds = time.perf_counter() - t0
        null = math.nan
        if cheap_null:
            perm = np.random.default_rng(seed).permutation(len(y))
            null = float(factory(seed).estimate(x, y[perm])) / LN2
    return {"mi": mi, "se": math.nan, "lo": math.nan, "hi": math.nan, "null": null,
            "null_sd": math.nan, "within_null": math.nan, "flags": "", "seconds": seconds}


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["error_msg"] == ""].copy()
    ok["err"] = ok["mi"] - ok["truth"]
    ok["covered"] = np.where(ok["lo"].isna(), np.nan,
                             ((ok["lo"] <= ok["truth"]) & (ok["truth"] <= ok["hi"])).astype(float))
    g = ok.groupby(["task", "n", "estimator"], sort=False)
    table = g.agg(source=("source", "first"), family=("family", "first"),
                  dim_x=("dim_x", "first"), dim_y=("dim_y", "first"), truth=("truth", "first"),
                  mean_mi=("mi", "mean"), mean_error=("err", "mean"), sd_error=("err", "std"),
                  coverage=("covered", "mean"), mean_se=("se", "mean"),
                  mean_null=("null", "mean"), mean_null_sd=("null_sd", "mean"),
                  within_null=("within_null", "mean"), seconds=("seconds", "mean"),
                  seeds=("seed", "count")).reset_index()
    failed = runs[runs["error_msg"] != ""].groupby(["task", "n", "estimator"]).size()
    table["failed"] = [int(failed.get((t, n, e), 0)) for t, n, e in
                       zip(table["task"], table["n"], table["estimator"])]
    return table


def fmt(v, spec="+.3f", na="-"):
    return na if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_task(task, table: pd.DataFrame) -> None:
    print(f"\n== {task.name}: {task.dim_x} x {task.dim_y}, truth {task.mi:.3f} bits "
          f"({task.description})")
    print(f"{'N':>7} {'estimator':<12} {'error (bits)':>17} {'cov95':>6} {'se':>6} "
          f"{'null':>7} {'seconds':>8}")
    for _, r in table[table["task"] == task.name].iterrows():
        err = f"{fmt(r.mean_error)} ± {fmt(r.sd_error, '.3f')}"
        fail = f"  ({r.failed} failed)" if r.failed else ""
        print(f"{r.n:>7,} {r.estimator:<12} {err:>17} {fmt(r.coverage, '.2f'):>6} "
              f"{fmt(r.mean_se, '.3f'):>6} {fmt(r.mean_null):>7} {r.seconds:8.1f}{fail}")


def best_by_source(sub: pd.DataFrame) -> tuple[list, float]:
    """The rows of the noisescale and the bmi estimator with the smallest |mean error| in one
    task x N block of the task table (None for a source that did not run), and d = |error of
    ours| - |error of theirs| (NaN unless both ran)."""
    out = []
    for source in ("noisescale", "bmi"):
        s = sub[sub["source"] == source]
        out.append(None if s.empty else s.loc[s["mean_error"].abs().idxmin()])
    d = (abs(out[0].mean_error) - abs(out[1].mean_error)
         if out[0] is not None and out[1] is not None else math.nan)
    return out, d


def _sem(r) -> float:
    """Standard error of an estimator's mean error: its spread over seeds / sqrt(seeds)."""
    return r.sd_error / math.sqrt(r.seeds)


def _biased(r) -> bool:
    """Is the mean error distinguishable from 0: beyond 2 standard errors of the mean over seeds
    (from 5 seeds on), or 2 mean reported se with fewer seeds."""
    if r.seeds >= 5 and r.sd_error > 0:
        return abs(r.mean_error) > 2 * _sem(r)
    return not (r.mean_se > 0 and abs(r.mean_error) < 2 * r.mean_se)


def _paired_se(runs: pd.DataFrame, task: str, n: int, best) -> float:
    """Standard error over seeds of d = |mean err a| - |mean err b| = mean(sa·a_i - sb·b_i)
    (sa, sb the signs of the mean errors), paired by seed: both ran on the same samples."""
    sub = runs[(runs["task"] == task) & (runs["n"] == n) & (runs["error_msg"] == "")]
    err = [sub[sub["estimator"] == b.estimator].set_index("seed")["mi"] - b.truth for b in best]
    both = pd.concat(err, axis=1, join="inner").dropna()
    if len(both) < 2:
        return math.nan
    d = (np.sign(best[0].mean_error) * both.iloc[:, 0]
         - np.sign(best[1].mean_error) * both.iloc[:, 1])
    return float(d.std(ddof=1) / math.sqrt(len(d)))


def summary(table: pd.DataFrame, runs: pd.DataFrame, task_list, ns: list[int]) -> None:
    by_name = {t.name: t for t in task_list}
    print("\n# Summary")
    print("\nBest estimator per task (|mean error|, bits); d = |err(best noisescale)| - "
          "|err(best bmi)| (<= 0: noisescale at least as close), +- its standard error over "
          "seeds, paired (both ran on the same samples); verdict ns: d <= 0, tie: d within 2 se or "
          "both mean errors within 2 se of 0, bmi: beyond; default = default_method('continuous', dx, dy); gap = "
          "|err(default)| - |err(best noisescale)|")
    print(f"{'task':<30} {'N':>7} {'truth':>6} {'best noisescale':>22} {'best bmi':>22} "
          f"{'d':>15} {'default':>16} {'gap':>6}")
    gaps, verdicts = [], []
    for name in by_name:
        t = by_name[name]
        for n in ns:
            sub = table[(table["task"] == name) & (table["n"] == n)]
            if sub.empty:
                continue
            best, d = best_by_source(sub)
            cells = [("-", math.nan) if b is None else
                     (f"{b.estimator} {b.mean_error:+.3f}", b.mean_error) for b in best]
            dcell_vs = "-"
            if not math.isnan(d):
                se_d = _paired_se(runs, name, n, best)
                # a tie: bmi closer by less than 2 paired se, or both means within 2 se of
                # the truth (then which is closer is the samples' common error, not a bias)
                unbiased = all(b.seeds >= 2 and abs(b.mean_error) <= 2 * _sem(b) for b in best)
                verdict = ("ns" if d <= 0 else "tie" if (d <= 2 * se_d or unbiased)
                           else "bmi")
                verdicts.append((name, n, verdict, d, se_d))
                dcell_vs = f"{d:+.3f}±{se_d:.3f} {verdict}"
            pick = default_method("continuous", t.dim_x, t.dim_y)
            d = sub[sub["estimator"] == pick]
            dcell, gap = "-", math.nan
            if not d.empty and not math.isnan(cells[0][1]):
                dcell = f"{pick} {d.iloc[0].mean_error:+.3f}"
                gap = abs(d.iloc[0].mean_error) - abs(cells[0][1])
                if max(t.dim_x, t.dim_y) <= 5 and t.mi > 0:
                    gaps.append((name, n, gap))
            print(f"{name:<30} {n:>7,} {t.mi:6.3f} {cells[0][0]:>22} {cells[1][0]:>22} "
                  f"{dcell_vs:>15} {dcell:>16} {fmt(gap, '.3f'):>6}")
    if verdicts:
        count = {v: [f"{name} (N={n:,}, {d:+.3f}±{se:.3f})" for name, n, vv, d, se in verdicts
                     if vv == v] for v in ("ns", "tie", "bmi")}
        print(f"best noisescale vs best bmi on {len(verdicts)} task x N cells: at least as close "
              f"on {len(count['ns'])}, bmi closer but within noise (tie) on {len(count['tie'])}"
              + (f" [{'; '.join(count['tie'])}]" if count["tie"] else "")
              + f", bmi closer beyond 2 se on {len(count['bmi'])}"
              + (f" [{'; '.join(count['bmi'])}]" if count["bmi"] else ""))
    if gaps:
        g = np.array([v for _, _, v in gaps])
        worst = gaps[int(np.argmax(g))]
        print(f"default rule on the {len(gaps)} low-dimensional (dims <= 5) task x N cells: "
              f"picks the best noisescale estimator in {int(np.sum(g <= 1e-12))}, within 0.1 "
              f"bits of it in {int(np.sum(g <= 0.1))}, mean gap {g.mean():.3f} bits, worst "
              f"{worst[2]:.3f} ({worst[0]}, N={worst[1]:,})")

    ours = [e for e in table.loc[table["source"] == "noisescale", "estimator"].unique()]
    print("\nCalibration of noisescale's intervals: coverage of the truth by the 95 % interval; "
          "'b' marks an estimator biased at this resolution, with its bias (mean error, bits): "
          "|mean error| > 2 x its standard error over seeds (sd / sqrt(seeds), from 5 seeds "
          "on; with fewer, 2 x the mean reported se)")
    ok = table["source"] == "noisescale"
    table = table.assign(biased=[_biased(r) for _, r in table.iterrows()])
    for n in ns:
        print(f"N = {n:,}")
        print(f"  {'task':<30} " + " ".join(f"{e:>12}" for e in ours))
        for name in by_name:
            sub = table[(table["task"] == name) & (table["n"] == n)].set_index("estimator")
            if sub.empty:
                continue
            cells = []
            for e in ours:
                if e not in sub.index:
                    cells.append("-")
                    continue
                r = sub.loc[e]
                cells.append(f"{r.coverage:.2f}" + (f" b{r.mean_error:+.3f}" if r.biased else ""))
            print(f"  {name:<30} " + " ".join(f"{c:>12}" for c in cells))
        unb = table[(table["n"] == n) & ok & ~table["biased"] & table["coverage"].notna()]
        if not unb.empty:
            cov = unb["coverage"].to_numpy()
            line = (f"  where unbiased ({len(unb)} cells, {int(unb['seeds'].sum())} intervals): "
                    f"mean coverage {np.average(cov, weights=unb['seeds']):.3f}")
            if unb["seeds"].min() >= 20:  # a cell's own coverage means something
                line += (f"; cells at 0.90-0.99: {int(np.sum((cov >= 0.9) & (cov <= 0.99)))}, "
                         f"above: {int(np.sum(cov > 0.99))}, below: {int(np.sum(cov < 0.9))}")
            print(line)

    nn = 10_000 if 10_000 in ns else max(ns)
    ind = table[(table["family"] == "independent") & (table["n"] == nn)]
    print(f"\nNull on independent data (truth 0), N = {nn:,}"
          + ("" if nn == 10_000 else " (10,000 not run: the largest N instead)"))
    print(f"  {'task':<20} {'estimator':<12} {'estimate':>9} {'null':>8} {'null sd':>8} "
          f"{'within null':>12}")
    for _, r in ind.iterrows():
        print(f"  {r.task:<20} {r.estimator:<12} {r.mean_mi:+9.4f} {fmt(r.mean_null, '+8.4f')} "
              f"{fmt(r.mean_null_sd, '8.4f')} {fmt(r.within_null, '.2f'):>12}")


def read_runs(paths: list[Path]) -> pd.DataFrame:
    """Per-seed runs written by --csv (several files: concatenated; a repeated run keeps the
    last one)."""
    frames = [pd.read_csv(p, keep_default_na=True) for p in paths]
    runs = pd.concat(frames, ignore_index=True)
    for col in ("error_msg", "flags"):
        runs[col] = runs[col].fillna("").astype(str) if col in runs else ""
    keys = ["task", "n", "seed", "estimator"]
    return runs.drop_duplicates(keys, keep="last").reset_index(drop=True)


def report(runs: pd.DataFrame, task_list, as_markdown: bool = False) -> pd.DataFrame:
    """Print every task's table and the summary of the given runs; return the task table."""
    table = aggregate(runs)
    present = [t for t in task_list if t.name in set(table["task"])]
    for task in present:
        print_task(task, table)
    ns = sorted(int(n) for n in table["n"].unique())
    summary(table, runs, present, ns)
    if as_markdown:
        markdown(table, present, ns)
    return table


def markdown(table: pd.DataFrame, task_list, ns: list[int],
             columns=("ksg", "lmi", "lmi+copula", "cca", "cca+copula")) -> None:
    """The summary as a Markdown table (mean error in bits over seeds), for the README."""
    print("\n| task (truth, bits) | N | best noisescale | best benchmark-mi | d | "
          + " | ".join(columns) + " | default |")
    print("|---|---|---|---|---|" + "---|" * len(columns) + "---|")
    for t in task_list:
        for n in ns:
            sub = table[(table["task"] == t.name) & (table["n"] == n)]
            if sub.empty:
                continue
            best, d = best_by_source(sub)
            cell = ["-" if b is None else f"{b.estimator} {b.mean_error:+.3f}" for b in best]
            sub = sub.set_index("estimator")
            d = "-" if math.isnan(d) else f"{d:+.3f}"
            cols = [f"{sub.loc[c, 'mean_error']:+.3f}" if c in sub.index else "-"
                    for c in columns]
            pick = default_method("continuous", t.dim_x, t.dim_y)
            dflt = f"{pick} {sub.loc[pick, 'mean_error']:+.3f}" if pick in sub.index else pick
            print(f"| {t.name} ({t.mi:.3f}) | {n:,} | {cell[0]} | {cell[1]} | {d} | "
                  + " | ".join(cols) + f" | {dflt} |")


def parse_options(items: list[str]) -> dict[str, dict]:
    """--option lmi.epochs=40 -> {"lmi": {"epochs": 40}} (values parsed as Python literals)."""
    import ast

    out: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        method, _, name = key.partition(".")
        if not name or not value:
            raise SystemExit(f"--option needs METHOD.NAME=VALUE, got {item!r}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out.setdefault(method, {})[name] = parsed
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="5 tasks, N = 2,000, 2 seeds, LMI capped at 40 epochs, bmi neural "
                         "estimators at 500 steps: a smoke run")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="sample sizes (5000 10000)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per task and N (5)")
    ap.add_argument("--methods", nargs="+", default=None,
                    help="noisescale methods and/or bmi estimators (bmi-ksg, ...) to run")
    ap.add_argument("--tasks", nargs="+", default=None, help="task names, or substrings of them (a pattern equal to a name selects that task alone)")
    ap.add_argument("--refit", action="store_true",
                    help=f"also LMI with refit=True on {', '.join(REFIT_TASKS)} at the "
                         "smallest N (--refit-resamples half-samples)")
    ap.add_argument("--refit-resamples", type=int, default=4)
    ap.add_argument("--resamples", type=int, default=10)
    ap.add_argument("--shuffles", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--option", action="append", default=[], metavar="METHOD.NAME=VALUE",
                    help="an option for one noisescale method, e.g. lmi.epochs=100")
    ap.add_argument("--bmi-steps", type=int, default=None,
                    help="training steps of bmi's neural estimators (bmi's default 10,000)")
    ap.add_argument("--no-bmi", action="store_true")
    ap.add_argument("--csv", type=Path, default=None,
                    help="write the per-task table here and the per-seed runs to *.runs.csv "
                         "(rewritten after every task)")
    ap.add_argument("--resume", action="store_true",
                    help="with --csv: keep the runs already in *.runs.csv and run only the "
                         "(task, N, seed, estimator) cells it lacks")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RUNS_CSV",
                    help="run nothing: print the tables and summary of these *.runs.csv files "
                         "(e.g. the parts of a run split over processes)")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the summary as a Markdown table (mean errors, bits)")
    args = ap.parse_args()
    if args.merge:
        runs = read_runs(args.merge)
        print(f"# merged {len(runs)} runs from {len(args.merge)} file(s): "
              f"{', '.join(sorted(runs['estimator'].unique()))}")
        report(runs, all_tasks(quick=False), as_markdown=args.markdown)
        return
    ns = args.n or ([2_000] if args.quick else [5_000, 10_000])
    n_seeds = args.seeds or (2 if args.quick else 5)
    args.method_options = parse_options(args.option)
    if args.quick:
        args.method_options.setdefault("lmi", {}).setdefault("epochs", 40)
        if args.bmi_steps is None:
            args.bmi_steps = 500

    info = build_info()
    import torch

    print(f"# {platform.processor() or platform.machine()}, {info['openmp_max_threads']} "
          f"threads, SIMD {info['simd']}, noisescale {info['version']}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"python {platform.python_version()}")
    task_list = all_tasks(quick=args.quick)
    if args.tasks:
        names = {t.name for t in task_list}
        pick = set()  # a pattern naming a task exactly selects it alone, else every match
        for pat in args.tasks:
            pick |= {pat} if pat in names else {n for n in names if pat in n}
        task_list = [t for t in task_list if t.name in pick]
    methods = available_methods(args.methods)
    bmi = {} if args.no_bmi else bmi_factories(args.bmi_steps, args.methods)
    if bmi:
        import bmi as bmi_module
        import jax

        print(f"# benchmark-mi {getattr(bmi_module, '__version__', '?')}, jax {jax.__version__}"
              f"; bmi neural steps: {args.bmi_steps or 'default (10,000)'}")
    opts = "; ".join(f"{m}: {o}" for m, o in args.method_options.items()) or "defaults"
    print(f"# tasks {len(task_list)}, N {ns}, seeds {n_seeds}, noisescale {methods} (trained: "
          f"refit=False; options {opts}), bmi {list(bmi) or 'none'}; "
          f"{args.resamples} half-samples, {args.shuffles} shuffles")

    rows: list[dict] = []
    done: set[tuple] = set()
    if args.resume:
        if args.csv is None:
            raise SystemExit("--resume needs --csv")
        previous = args.csv.with_suffix(".runs.csv")
        if previous.exists():
            old = read_runs([previous])
            old = old[old["error_msg"] == ""]
            rows = old.to_dict("records")
            done = {(r["task"], int(r["n"]), int(r["seed"]), r["estimator"]) for r in rows}
            print(f"# resuming: {len(done)} runs kept from {previous}")
    table = pd.DataFrame()
    t_start = time.perf_counter()
    for task in task_list:
        for n in ns:
            for seed in range(n_seeds):
                jobs = [(m, "noisescale", False, args.resamples) for m in methods]
                if args.refit and "lmi" in methods and task.name in REFIT_TASKS and n == min(ns):
                    jobs.append(("lmi+refit", "noisescale", True, args.refit_resamples))
                jobs += [(b, "bmi", None, None) for b in bmi]
                jobs = [j for j in jobs if (task.name, n, seed, j[0]) not in done]
                if not jobs:
                    continue
                x, y = task.sample(n, seed)  # only for cells with runs left (--resume)
                for name, source, refit, resamples in jobs:
                    base = {"task": task.name, "family": task.family, "dim_x": task.dim_x,
                            "dim_y": task.dim_y, "truth": task.mi, "n": n, "seed": seed,
                            "estimator": name, "source": source,
                            "refit": refit if resolve(name)[0] in TRAINED else None}
                    try:
                        if source == "bmi":
                            res = run_bmi(*bmi[name], x, y, seed)
                        else:
                            res = run_noisescale(name, x, y, seed, args,
                                                 refit or resolve(name)[0] not in TRAINED,
                                                 resamples)
                        res["error_msg"] = ""
                    except Exception as e:  # noqa: BLE001 - record and go on
                        res = {"mi": math.nan, "seconds": math.nan,
                               "error_msg": f"{type(e).__name__}: {e}"[:300]}
                        print(f"  ! {task.name} N={n} seed={seed} {name}: {res['error_msg']}",
                              file=sys.stderr)
                    rows.append({**base, **res})
                print(f"  [{time.perf_counter() - t_start:7.0f} s] {task.name} N={n:,} "
                      f"seed={seed} done", file=sys.stderr, flush=True)
        runs = pd.DataFrame(rows)
        table = aggregate(runs)
        print_task(task, table)
        sys.stdout.flush()
        if args.csv:
            table.to_csv(args.csv, index=False)
            runs.to_csv(args.csv.with_suffix(".runs.csv"), index=False)
    if table.empty:
        print("no results")
        return
    summary(table, runs, task_list, ns)
    if args.markdown:
        markdown(table, task_list, ns)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
