"""The sweep's subcommands: ``noisescale run``, ``fit``, ``report`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._args import positive_int

RUN_HELP = """\
Run a noise-scaling sweep described by a TOML file: split the cells into a training pool and
held-out cells, thin both to every depth, train each model on each number of training cells,
embed the held-out cells and measure the mutual information with each auxiliary signal.
Writes OUTPUT/results.csv (one row per dataset, signal, model, cells, depth and seed),
fits.csv (the fitted laws), figures/ (the paper's figures, `noisescale figures`),
report.html (with the figures) and provenance.json.

Each finished job is stored at once (OUTPUT/jobs/): run the same command again after an
interruption and only the missing jobs run. `noisescale run --example-config` prints a
documented configuration to start from.

examples:
  noisescale run --example-config > sweep.toml
  noisescale run --example-config paper > paper.toml   # the paper's protocol
  noisescale run sweep.toml
  noisescale run sweep.toml --executor dask --scheduler tcp://10.0.0.5:8786
"""

DEMO_HELP = """\
A complete small sweep on a simulated CITE-seq-like dataset (cell types, a protein panel, a
time-like program), made on the spot: no download. Trains PCA, a random projection and a
small VAE at seven depths and three numbers of cells, measures MI with the cell type, the
proteins and time, fits the noise and cell-number laws and writes an HTML report. Takes a few
minutes on 2 cores (--quick: under a minute, without the VAE).
"""


def add_commands(sub) -> None:
    """Register ``run``, ``fit``, ``report`` and ``demo`` on the CLI's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("run", help="run (or resume) a sweep from a TOML config",
                       description=RUN_HELP, formatter_class=fmt)
    p.add_argument("config", metavar="CONFIG", nargs="?", help="the sweep's .toml file")
    p.add_argument("--example-config", nargs="?", const="reference", metavar="NAME",
                   choices=["reference", "paper"],
                   help="print an example configuration and exit: reference (default; every "
                        "key documented) or paper (the protocol of Gowri, Yin & Klein 2025)")
    p.add_argument("--output", metavar="DIR", help="output directory (default: run.output)")
    p.add_argument("--executor", choices=["local", "dask"], help="where jobs run")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask scheduler address (default: start a LocalCluster)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="processes (local) or LocalCluster workers (dask)")
    p.add_argument("--threads-per-worker", type=positive_int, metavar="N",
                   help="threads of each job (default 1)")
    p.add_argument("--memory-gb", type=float, metavar="GB",
                   help="memory a sweep process may fill with counts (default: run.memory_gb, "
                        "else a quarter of the RAM); more goes out of core")
    p.add_argument("--out-of-core", choices=["auto", "always", "never"],
                   help="thinned cells in an on-disk cache and streamed fits: by --memory-gb "
                        "(auto), always or never")
    p.add_argument("--no-report", action="store_true",
                   help="skip fits.csv, figures/ and report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run, parser=p)

    p = sub.add_parser("fit", help="fit the scaling laws to a results table",
                       description="Fit the noise law (and, with three or more cell numbers, "
                                   "the cell-number law) to each group of a results table; "
                                   "print the parameters and write them as CSV.")
    p.add_argument("results", metavar="RESULTS",
                   help="a sweep's output directory, or its results .csv/.parquet")
    p.add_argument("-o", "--output", metavar="CSV",
                   help="where to write the table (default: fits.csv beside the results)")
    p.add_argument("--by", nargs="+", default=["dataset", "signal", "model"], metavar="COL",
                   help="grouping columns (default: dataset signal model)")
    p.add_argument("--bootstrap", type=positive_int, metavar="N",
                   help="bootstrap refits for the intervals (resampling seeds)")
    p.add_argument("--weights", choices=["none", "replicates", "estimate"], default="none",
                   help="least-squares weights: none (default), the spread over seeds, or "
                        "the estimators' standard errors (mi_se)")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    p.set_defaults(run=_fit, parser=p)

    p = sub.add_parser("report", help="write a self-contained HTML report of a results table",
                       description="One HTML file with the fitted ū and I_max, the scaling "
                                   "curves, the collapse, cell-number curves, residuals, the "
                                   "paper's figures found in figures/ beside the results "
                                   "(`noisescale figures`) and the run's provenance; it loads "
                                   "nothing from the network.")
    p.add_argument("results", metavar="RESULTS",
                   help="a sweep's output directory, or its results .csv/.parquet")
    p.add_argument("-o", "--output", metavar="HTML", default=None,
                   help="the report file (default: report.html beside the results)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(run=_report, parser=p)

    p = sub.add_parser("demo", help="a small complete sweep on simulated data, with a report",
                       description=DEMO_HELP, formatter_class=fmt)
    p.add_argument("--output", metavar="DIR", default="noisescale-demo",
                   help="output directory (default: ./noisescale-demo)")
    p.add_argument("--quick", action="store_true", help="smaller: no VAE, fewer depths")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="processes (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_demo, parser=p)


def _run(args: argparse.Namespace) -> int:
    from ..sweep.config import load_config
    from ..sweep.presets import EXAMPLES

    if args.example_config:
        print(EXAMPLES[args.example_config], end="")
        return 0
    if args.config is None:
        args.parser.error("give the sweep's CONFIG file (or --example-config)")
    cfg = load_config(args.config)
    cfg = cfg.with_run(output=str(Path(args.output).resolve()) if args.output else None,
                       executor=args.executor, scheduler=args.scheduler,
                       workers=args.workers, threads_per_worker=args.threads_per_worker,
                       memory_gb=args.memory_gb, out_of_core=args.out_of_core)
    return _sweep_and_report(cfg, args, report=not args.no_report)


def _sweep_and_report(cfg, args: argparse.Namespace, *, report: bool) -> int:
    import warnings

    from ..mi import TiesWarning, WithinNullWarning
    from ..sweep.runner import run_sweep

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WithinNullWarning)
        warnings.simplefilter("always", TiesWarning)
        result = run_sweep(cfg, progress=not args.quiet, cancel=args.cancel)
    out = result.output
    if not args.quiet:
        print(f"{result.n_jobs} jobs ({result.n_ran} run, {result.n_reused} reused) in "
              f"{result.seconds:.1f} s; results: {out / 'results.csv'}", file=sys.stderr)
    for w in caught:  # the sweep's summary of its MI flags, one line each, also with --quiet
        if issubclass(w.category, (WithinNullWarning, TiesWarning)):
            print(f"warning: {w.category.__name__}: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if report:
        from ..report import figures

        fits = _write_fits(result.results, out / "fits.csv", ["dataset", "signal", "model"],
                           bootstrap=0, quiet=args.quiet, laws=("noise",))
        made = figures(result.results, out / "figures", fits=fits)
        if not args.quiet:
            print(f"wrote {len(made.written)} figures to {out / 'figures'} ({len(made.skipped)} "
                  "skipped: `noisescale figures` says why)", file=sys.stderr)
        _write_report(result.results, out, out / "report.html", fits=fits, quiet=args.quiet)
    return 0


def _write_fits(results, path: Path, by: list[str], *, bootstrap: int, quiet: bool,
                laws: tuple[str, ...] = ("noise", "cells"), weights: str = "none"):
    """Fit, write the table to ``path``, print the rows of ``laws``."""
    from ..io.atomic import write_atomic
    from ..laws import fit_results

    fits = fit_results(results, by=by, bootstrap=bootstrap, weights=weights)
    write_atomic(path, fits.to_csv(index=False))
    if not quiet:
        show = [c for c in (*by, "law", "n_cells", "fraction", "u_bar", "u_bar_lo", "u_bar_hi",
                            "I_max", "I_max_lo", "I_max_hi", "N0", "s", "I_inf", "r2", "flags")
                if c in fits.columns]
        table = fits.loc[fits["law"].isin(laws), show].dropna(axis=1, how="all")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"wrote {path}", file=sys.stderr)
    return fits


def _read(results_arg: str):
    """A results table and the directory beside it (where fits, report, provenance go)."""
    from ..laws import read_results

    path = Path(results_arg)
    return read_results(path), (path if path.is_dir() else path.parent)


def _write_report(results, base: Path, path: Path, *, fits=None, title: str | None = None,
                  quiet: bool = False) -> Path:
    """The HTML report of ``results``, with the provenance.json found in ``base`` and the
    figures in ``base/figures`` (``noisescale figures``) embedded."""
    from ..report import write_report

    prov_file = base / "provenance.json"
    provenance = json.loads(prov_file.read_text()) if prov_file.exists() else None
    images = sorted((base / "figures").glob("*.png"))
    out = write_report(results, path, fits=fits, provenance=provenance, title=title,
                       figures=images)
    if not quiet:
        print(f"wrote {out}", file=sys.stderr)
    return out


def _fit(args: argparse.Namespace) -> int:
    results, base = _read(args.results)
    out = Path(args.output) if args.output else base / "fits.csv"
    _write_fits(results, out, args.by, bootstrap=args.bootstrap or 0, quiet=args.quiet,
                weights=args.weights)
    return 0


def _report(args: argparse.Namespace) -> int:
    results, base = _read(args.results)
    out = Path(args.output) if args.output else base / "report.html"
    _write_report(results, base, out, title=args.title, quiet=args.quiet)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..sweep.demo import demo_config

    cfg = demo_config(args.output, quick=args.quick, workers=args.workers or 0,
                      progress=not args.quiet)
    code = _sweep_and_report(cfg, args, report=True)
    if not args.quiet:
        print(f"open {Path(cfg.run.output) / 'report.html'} in a browser", file=sys.stderr)
    return code
