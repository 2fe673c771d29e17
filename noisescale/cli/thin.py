"""``noisescale thin``: thin the counts of an .h5ad/.zarr store, chunk by chunk."""

from __future__ import annotations

import argparse
import sys
import time

from ._args import fraction, nonnegative_int, positive_int

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


def add_command(sub) -> None:
    p = sub.add_parser("thin", help="thin UMI counts of an .h5ad/.zarr file to a lower depth",
                       description=THIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input .h5ad file or .zarr store (only read)")
    p.add_argument("output", metavar="OUT", nargs="?",
                   help="output .h5ad or .zarr (the ending picks the format)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--fraction", type=fraction, metavar="Q",
                     help="keep each UMI with probability Q (0.1 = 10%% of the depth)")
    how.add_argument("--fractions", type=fraction, nargs="+", metavar="Q",
                     help="several decreasing depths in one pass, nested: each output is a "
                          "sub-sample of the previous one; needs --out-pattern")
    how.add_argument("--target-umis", type=nonnegative_int, metavar="T",
                     help="instead of a fraction: give each cell exactly T UMIs, drawn without "
                          "replacement (cells with fewer are kept as they are)")
    how.add_argument("--target-column", metavar="COL",
                     help="like --target-umis with each cell's own target read from obs[COL]")
    from ..noise.memory import METHODS

    p.add_argument("--method", choices=list(METHODS), default="binomial",
                   help="with --fraction: binomial (default; each UMI kept independently) or "
                        "per_gene (the paper authors' variant: each gene keeps exactly "
                        "floor(total * Q) of its UMIs; reads the input twice)")
    p.add_argument("--out-pattern", metavar="PATTERN",
                   help="output names for --fractions, with {fraction} (and optionally "
                        "{index}) filled in, e.g. cells_q{fraction}.h5ad")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="random seed (default 0); the same seed gives the same output")
    p.add_argument("--layer", metavar="L",
                   help="thin layers[L] instead of X (where your raw counts are stored)")
    p.add_argument("--chunk-rows", type=positive_int, metavar="N",
                   help="cells per chunk (default: about 8 million counts per chunk); "
                        "smaller uses less memory, never changes the result")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--keep-zeros", action="store_true",
                   help="keep entries thinned to 0 as explicit zeros (same sparsity pattern)")
    p.add_argument("--compression", choices=["gzip", "lzf"],
                   help="compress the counts in an .h5ad output (smaller, slower)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads (default: all cores); never changes the result")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_thin, parser=p)


def _run_thin(args: argparse.Namespace) -> int:
    from ..io import CountsReader
    from ..noise import downsample_file, thin_file, thin_series_file

    parser = args.parser

    common = dict(seed=args.seed, layer=args.layer, chunk_rows=args.chunk_rows,
                  overwrite=args.overwrite, keep_zeros=args.keep_zeros,
                  compression=args.compression, threads=args.threads, progress=not args.quiet,
                  cancel=args.cancel)
    t0 = time.perf_counter()
    if args.method != "binomial" and args.fraction is None:
        parser.error("--method per_gene applies to --fraction only")
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
            paths = [thin_file(args.input, args.output, args.fraction, method=args.method,
                               **common)]
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
