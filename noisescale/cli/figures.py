"""``noisescale figures``: every figure of the paper from a results table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """\
Write every figure of the paper for a results table: noise curves with their fits and 2-sigma
bands, one annotated curve (u_bar, I_max, u90), cell-number curves and their collapse, the
universal collapse, bars of u_bar and I_max, R^2 heat maps, the u90 table (CSV, Markdown,
LaTeX), where 10x more cells beat 10x more UMIs, and ratios between models. Each figure is
written as PNG and PDF with its table as CSV; figures the table cannot support (one training
size, one model) are skipped with the reason.

examples:
  noisescale figures out/results.csv --out figures
  noisescale figures out --fits out/fits.csv --format pdf --reference pca
"""


def add_command(sub) -> None:
    """Register ``figures`` on the CLI's subparsers."""
    from ..report.figures import FORMATS, NAMES

    p = sub.add_parser("figures", help="write every figure of the paper from a results table",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", metavar="RESULTS",
                   help="a sweep's output directory, or its results .csv/.parquet")
    p.add_argument("--out", metavar="DIR",
                   help="where to write the figures (default: figures/ beside the results)")
    p.add_argument("--fits", metavar="CSV",
                   help="a fits table from `noisescale fit` (default: fitted here)")
    p.add_argument("--format", nargs="+", default=["png", "pdf"], choices=FORMATS,
                   dest="formats", metavar="FMT",
                   help=f"file formats, among {', '.join(FORMATS)} (default: png pdf)")
    p.add_argument("--by", nargs="+", default=["dataset", "signal", "model"], metavar="COL",
                   help="grouping columns (default: dataset signal model)")
    p.add_argument("--reference", metavar="MODEL",
                   help="the model the ratios are relative to (default: the first)")
    p.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME",
                   help=f"only these figures ({', '.join(NAMES)})")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(run=_figures, parser=p)


def _figures(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..report.figures import figures
    from .sweep import _read

    results, base = _read(args.results)
    fits = None
    if args.fits:
        path = Path(args.fits)
        if not path.exists():
            raise FileNotFoundError(f"fits table not found: {path}")
        fits = pd.read_csv(path)
    out = Path(args.out) if args.out else base / "figures"
    done = figures(results, out, fits=fits, formats=args.formats, by=args.by,
                   reference=args.reference, only=args.only, dpi=args.dpi)
    if not args.quiet:
        for line in done.lines():
            print(line)
        print(f"{len(done.written)} figures written to {out}, {len(done.skipped)} skipped",
              file=sys.stderr)
    return 0
