#!/usr/bin/env python
"""Out-of-core thinning benchmark: stream-thin an atlas-sized .h5ad and compare side by side.

1. Generates (seeded, chunk by chunk, in a temporary directory) an .h5ad of --cells cells x
   --genes genes with 1,000-2,000 stored counts per cell (CSR, float32 counts, int32 indices,
   uncompressed like anndata's default), plus a slice file holding its first --slice-cells.
2. Times, each in a fresh subprocess so peak RSS is its own (VmHWM):
   a. `noisescale thin` streaming the whole file (the product);
   b. `noisescale thin` streaming the slice;
   c. the in-memory route on the slice: anndata.read_h5ad -> noisescale.thin -> write_h5ad;
   d. the usual hand-written route on the slice: read_h5ad -> numpy Generator.binomial on
      X.data -> write_h5ad;
   e. the kernel alone on the slice in memory: noisescale.thin on the loaded CSR matrix
      (the "in-memory rate"; best of 3).
3. Checks that the streamed slice equals noisescale.thin of the loaded slice, bit for bit.

Rates are stored input entries (nnz) per second, wall time including reading and writing.
Goals (issue 3): peak RSS of (a) <= 1.5 GB; streaming nnz/s >= 50 % of the in-memory rate (e).

    python benchmarks/bench_stream.py                  # 1,000,000 cells (~1.5 G entries, ~12 GB on disk)
    python benchmarks/bench_stream.py --cells 100000   # quicker
    python benchmarks/bench_stream.py --quick          # smoke run, 20,000 cells
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import noisescale as ns
from noisescale.io import AnnDataWriter, CountsReader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_thin import make_counts  # noqa: E402  (the same synthetic counts as bench_thin)

GENERATE_CHUNK = 2000


def generate(path: str, cells: int, genes: int, seed: int) -> int:
    """Write the synthetic atlas chunk by chunk; returns its nnz."""
    rng = np.random.default_rng(seed)
    nnz = 0
    with AnnDataWriter(path) as w:
        w.write("obs", pd.DataFrame(
            {"batch": pd.Categorical(rng.integers(0, 8, cells).astype(str))},
            index=pd.Index([f"cell{i}" for i in range(cells)])))
        w.write("var", pd.DataFrame(index=pd.Index([f"gene{j}" for j in range(genes)])))
        for b, r0 in enumerate(range(0, cells, GENERATE_CHUNK)):
            m = min(GENERATE_CHUNK, cells - r0)
            k = int(rng.integers(1000, 2001))
            X = make_counts(m, k, genes, seed=seed * 1_000_003 + b, chunk=1000)
            w.append_rows("X", X)
            nnz += X.nnz
            print(f"\r  generating: {r0 + m:,}/{cells:,} cells", end="", file=sys.stderr)
        w.commit()
    print(file=sys.stderr)
    return nnz


CHILD = r"""
import json, sys, time
import numpy as np
kind, src, dst, q = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
import anndata as ad, noisescale as ns
t0 = time.perf_counter()
if kind == "stream":
    from noisescale.cli import main
    rc = main(["thin", src, dst, "--fraction", str(q), "--quiet", "--overwrite"])
    assert rc == 0
elif kind in ("memory", "numpy"):
    a = ad.read_h5ad(src)
    if kind == "memory":
        a = ns.thin(a, q, seed=0)
    else:
        X = a.X
        X.data = np.random.default_rng(0).binomial(X.data.astype(np.int64), q).astype(X.dtype)
        X.eliminate_zeros()
    a.write_h5ad(dst)
secs = time.perf_counter() - t0
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's RSS at fork)
with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
print(json.dumps({"seconds": secs, "rss": hwm * 1024}))
"""


def run_child(kind: str, src: str, dst: str, q: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, src, dst, str(q)],
                         check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(src))  # never the source tree: import the install
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--slice-cells", type=int, default=100_000)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    p.add_argument("--quick", action="store_true", help="20,000 cells, 5,000 in the slice")
    args = p.parse_args(argv)
    if args.quick:
        args.cells, args.slice_cells = 20_000, 5_000
    args.slice_cells = min(args.slice_cells, args.cells)
    tmp = tempfile.mkdtemp(prefix="ns-bench-stream-", dir=args.dir)
    try:
        return run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: str) -> int:
    info = ns.build_info()
    print(f"noisescale {info['version']}, {info['openmp_max_threads']} thread(s), "
          f"SIMD {info['simd']}; files in {tmp}")
    src, piece = os.path.join(tmp, "atlas.h5ad"), os.path.join(tmp, "slice.h5ad")
    t0 = time.perf_counter()
    nnz = generate(src, args.cells, args.genes, args.seed)
    gen_s = time.perf_counter() - t0
    with CountsReader(src) as r:
        head = r.rows(0, args.slice_cells)
    with AnnDataWriter(piece) as w:
        with CountsReader(src) as r:
            obs = r.read("obs").iloc[:args.slice_cells]
            w.write("obs", obs)
            w.write("var", r.read("var"))
        w.append_rows("X", head)
        w.commit()
    size_gb = os.path.getsize(src) / 1e9
    print(f"input: {args.cells:,} cells x {args.genes:,} genes, {nnz:,} stored counts, "
          f"{size_gb:.1f} GB (generated in {gen_s:.0f} s); slice: {args.slice_cells:,} cells, "
          f"{head.nnz:,} counts; q = {args.fraction}")

    q = args.fraction
    rows = []
    for label, kind, path, n_cells, n in [
        ("noisescale thin, streamed (whole file)", "stream", src, args.cells, nnz),
        ("noisescale thin, streamed (slice)", "stream", piece, args.slice_cells, head.nnz),
        ("read_h5ad + ns.thin + write_h5ad (slice)", "memory", piece, args.slice_cells,
         head.nnz),
        ("read_h5ad + numpy binomial + write_h5ad (slice)", "numpy", piece, args.slice_cells,
         head.nnz),
    ]:
        res = run_child(kind, path, os.path.join(tmp, f"out_{kind}.h5ad"), q)
        rows.append((label, n_cells, n, res["seconds"], res["rss"]))
        print(f"  {label}: {res['seconds']:.1f} s", file=sys.stderr)
        if kind == "stream" and path == piece:
            streamed = ns.io.CountsReader(os.path.join(tmp, "out_stream.h5ad")).rows(
                0, args.slice_cells)
        for f in os.listdir(tmp):
            if f.startswith("out_") and not (kind == "stream" and path == piece):
                os.remove(os.path.join(tmp, f))

    best = float("inf")
    for _ in range(4):
        t0 = time.perf_counter()
        ref = ns.thin(head, q, seed=0)
        best = min(best, time.perf_counter() - t0)
    rows.append(("noisescale thin in memory, kernel only (slice)", args.slice_cells, head.nnz,
                 best, float("nan")))
    identical = (np.array_equal(streamed.indptr, ref.indptr)
                 and np.array_equal(streamed.indices, ref.indices)
                 and np.array_equal(streamed.data, ref.data))

    print()
    print("| method | cells | M entries | seconds | M entries/s | peak RSS (GB) |")
    print("|---|---|---|---|---|---|")
    for label, n_cells, n, secs, rss in rows:
        rss_s = "-" if np.isnan(rss) else f"{rss / 1e9:.2f}"
        print(f"| {label} | {n_cells:,} | {n / 1e6:,.0f} | {secs:.2f} | {n / secs / 1e6:,.0f} "
              f"| {rss_s} |")
    stream_rate = rows[0][2] / rows[0][3]
    mem_rate = rows[-1][2] / rows[-1][3]
    print()
    ratio = stream_rate / mem_rate
    print(f"streaming / in-memory rate: {ratio:.0%} (goal >= 50 %): "
          f"{'met' if ratio >= 0.5 else 'MISS'}")
    print(f"peak RSS streaming the whole file: {rows[0][4] / 1e9:.2f} GB (goal <= 1.5 GB): "
          f"{'met' if rows[0][4] <= 1.5e9 else 'MISS'}")
    print(f"streamed slice == in-memory thin, bit for bit: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
