"""``noisescale simulate``: write a simulated dataset with known structure."""

from __future__ import annotations

import argparse
import sys
import time

from ._args import nonnegative_int, positive_int

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


def add_command(sub) -> None:
    p = sub.add_parser("simulate", help="write a simulated dataset with known structure",
                       description=SIMULATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", metavar="OUT", help="output .h5ad or .zarr (the ending picks "
                                                 "the format)")
    p.add_argument("--cells", type=positive_int, required=True, metavar="N", help="cells")
    p.add_argument("--genes", type=positive_int, default=20000, metavar="G",
                   help="genes (default 20000)")
    p.add_argument("--types", type=positive_int, default=8, help="cell types (default 8)")
    p.add_argument("--programs", type=nonnegative_int, default=4,
                   help="continuous programs (default 4)")
    p.add_argument("--mean-umis", type=float, default=3000.0, metavar="U",
                   help="mean UMIs per cell (default 3000)")
    p.add_argument("--library-sigma", type=float, default=0.45, metavar="S",
                   help="sd of log library size (default 0.45)")
    p.add_argument("--likelihood", choices=["nb", "poisson"], default="nb",
                   help="count distribution (default nb)")
    p.add_argument("--dispersion", type=float, default=0.2, metavar="PHI",
                   help="median gene NB dispersion (default 0.2)")
    p.add_argument("--proteins", type=nonnegative_int, default=20,
                   help="proteins in the panel (default 20)")
    p.add_argument("--protein-noise", type=float, default=0.3, metavar="S",
                   help="sd of the protein log-scale noise (default 0.3)")
    p.add_argument("--time-noise", type=float, default=0.1, metavar="S",
                   help="sd of the noise on the time-like scalar (default 0.1)")
    p.add_argument("--spatial", action="store_true", help="add spatial coordinates")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--chunk-cells", type=positive_int, metavar="N",
                   help="cells per chunk (default 8192); never changes the result")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--compression", choices=["gzip", "lzf"],
                   help="compress the counts in an .h5ad output")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_simulate, parser=p)


def _run_simulate(args: argparse.Namespace) -> int:
    from ..simulate import simulate_file

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
