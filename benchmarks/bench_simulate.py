"""The count simulator: realism against real data, generation speed and memory.

1. Summary statistics of the shared real datasets next to the simulator run at each dataset's
   depth, library spread and gene count (skipped when ../shared/data is absent).
2. In-memory generation speed (cells/s, M UMIs/s) for NB and Poisson counts, against a plain
   numpy baseline that draws every (cell, gene) entry densely (gamma-Poisson).
3. ``simulate_file`` chunk by chunk at two sizes in fresh subprocesses: wall time and peak
   RSS, to show that memory stays flat as the file grows.

    python benchmarks/bench_simulate.py                  # ~6 min on 2 cores (200k-cell file)
    python benchmarks/bench_simulate.py --file-cells 1000000
    python benchmarks/bench_simulate.py --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from noisescale.simulate import count_statistics as summary
from noisescale.simulate import simulate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STATS = ["mean_umis", "log_library_sd", "zero_fraction", "detected_median",
         "detected_vs_depth_slope", "mean_var_slope", "overdispersion", "excess_zeros"]


def realism(n_cells: int) -> None:
    import anndata as ad

    rows = []
    for name in ["pbmc4k_soupx.h5ad", "paul2015_tradeseq.h5ad"]:
        if not (DATA / name).exists():
            print(f"({name} not found in {DATA}; skipped)")
            continue
        X = ad.read_h5ad(DATA / name).X
        real = summary(X)
        sim = summary(simulate(n_cells, X.shape[1], mean_umis=real["mean_umis"],
                               library_sigma=real["log_library_sd"], seed=0).X)
        rows.append((name.split("_")[0], X.shape, real, sim))
    if not rows:
        return
    print(f"\n## Real vs simulated (simulator at the dataset's depth, library sd and gene count; "
          f"{n_cells:,} cells)\n")
    head = "| statistic | " + " | ".join(f"{n} real | {n} sim" for n, *_ in rows) + " |"
    print(head)
    print("|---" * (1 + 2 * len(rows)) + "|")
    for key in STATS:
        cells = " | ".join(f"{r[key]:.3g} | {s[key]:.3g}" for _, _, r, s in rows)
        print(f"| {key} | {cells} |")


def numpy_baseline(n_cells: int, n_genes: int, mean_umis: float) -> float:
    """Cells/s of the obvious dense approach: a gamma and a Poisson per (cell, gene)."""
    rng = np.random.default_rng(0)
    p = rng.lognormal(0, 2.75, n_genes)
    p /= p.sum()
    r = 1 / (0.2 * rng.lognormal(0, 0.5, n_genes))
    t0 = time.perf_counter()
    lib = mean_umis * rng.lognormal(-0.45**2 / 2, 0.45, (n_cells, 1))
    mu = lib * p * rng.gamma(r, 1 / r, (n_cells, n_genes))
    sp.csr_matrix(rng.poisson(mu).astype(np.float32))
    return n_cells / (time.perf_counter() - t0)


def speed(n_cells: int) -> None:
    print(f"\n## In-memory generation ({n_cells:,} cells x 20,000 genes, 3,000 UMIs/cell)\n")
    print("| method | cells/s | M UMIs/s |")
    print("|---|---|---|")
    for likelihood in ["nb", "poisson"]:
        simulate(1024, seed=1, likelihood=likelihood)  # warm-up
        t0 = time.perf_counter()
        a = simulate(n_cells, seed=1, likelihood=likelihood)
        dt = time.perf_counter() - t0
        print(f"| `simulate(likelihood={likelihood!r})` | {n_cells / dt:,.0f} | "
              f"{a.X.sum() / dt / 1e6:.1f} |")
    rate = numpy_baseline(min(n_cells, 1000), 20000, 3000.0)
    print(f"| numpy dense gamma-Poisson per entry (NB) | {rate:,.0f} | {rate * 3000 / 1e6:.1f} |")


CHILD = """
import json, resource, sys, time
from noisescale.simulate import simulate_file
t0 = time.perf_counter()
simulate_file(sys.argv[1], int(sys.argv[2]), seed=0)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def files(sizes: list[int], directory: str | None) -> None:
    print("\n## `simulate_file` (.h5ad, 20,000 genes, 3,000 UMIs/cell, default 8,192-cell chunks)\n")
    print("| cells | seconds | cells/s | file GB | peak RSS GB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        for n in sizes:
            out = Path(tmp) / f"sim_{n}.h5ad"
            res = subprocess.run([sys.executable, "-c", CHILD, str(out), str(n)],
                                 capture_output=True, text=True, check=True, cwd=tmp)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"| {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | "
                  f"{out.stat().st_size / 1e9:.2f} | {r['peak_rss_gb']:.2f} |", flush=True)
            out.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    ap.add_argument("--cells", type=int, default=20000, help="in-memory speed run")
    ap.add_argument("--file-cells", type=int, default=200000, help="the large file")
    ap.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    args = ap.parse_args()
    if args.quick:
        args.cells, args.file_cells = 2048, 20000
    realism(2000)
    speed(args.cells)
    files([args.file_cells // 10, args.file_cells], args.dir)


if __name__ == "__main__":
    main()
