#!/usr/bin/env python
"""Thinning throughput benchmark for noisescale.

Builds one seeded synthetic single-cell count matrix (CSR, float32 counts, int32 indices)
and times, on that same matrix and in the same run:

  1. noisescale.thin, 1 thread
  2. noisescale.thin, all threads
  3. noisescale.thin, all threads, keep_zeros=True
  4. noisescale.thin_series([4q, 2q, q]), all threads
  5. noisescale.downsample_to(T = median UMIs/cell * q), all threads
  6. numpy Generator.binomial on X.data (+ the float32 output array)
  7. scanpy pp.downsample_counts(counts_per_cell=T) (if scanpy is importable)
  8. memcpy: X.data.copy() (bandwidth reference; elements/s)

Every timing is the best of --repeats runs after one warm-up run (time.perf_counter).
Rates are stored entries (nnz) of the input per second.

    python benchmarks/bench_thin.py            # ~40 M entries (20,000 cells x 2,000 genes/cell)
    python benchmarks/bench_thin.py --quick    # 2,000 cells, smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import scipy
import scipy.sparse as sp

import noisescale as ns

# ----------------------------------------------------------------------------- data


def make_counts(cells: int, nnz_per_cell: int, genes: int, seed: int, chunk: int = 1000):
    """Synthetic UMI matrix: CSR float32, int32 indices, sorted unique columns per row.

    Columns: a uniformly spread strictly increasing set of ``nnz_per_cell`` genes per row
    (floor of normalised exponential cumulative sums plus ``arange``: no duplicates, no sort).
    Counts: 1 + Poisson(lambda x cell size factor), size factor lognormal(0, 0.35);
    lambda = lognormal(-0.5, 1.2) for ordinary genes (most counts are 1, heavy tail), and for
    ~0.1 % of genes ("mito/ribo-like") lambda = s_g x lognormal(0, 0.3) with s_g log-uniform in
    [50, 1500], giving a few counts in the hundreds/thousands.
    """
    if not 0 < nnz_per_cell <= genes:
        raise ValueError("need 0 < nnz_per_cell <= genes")
    k, n = nnz_per_cell, genes
    rng = np.random.default_rng(seed)
    gene_mu = np.full(n, -0.5)  # log-scale location and spread of lambda, per gene
    gene_sigma = np.full(n, 1.2)
    n_hot = max(1, n // 1000)
    hot = rng.choice(n, size=n_hot, replace=False)
    gene_mu[hot] = rng.uniform(np.log(50.0), np.log(1500.0), size=n_hot)
    gene_sigma[hot] = 0.3

    nnz = cells * k
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=np.int32)
    ar = np.arange(k, dtype=np.int64)
    for r0 in range(0, cells, chunk):
        m = min(chunk, cells - r0)
        e = rng.standard_exponential((m, k + 1))
        np.cumsum(e, axis=1, out=e)
        # floor(c_j / c_{k+1} * (n-k+1)) is non-decreasing in j and <= n-k; + j -> strictly
        # increasing, max n-1.
        pos = (e[:, :k] / e[:, k:] * (n - k + 1)).astype(np.int64)
        cols = pos + ar
        size_factor = np.exp(rng.normal(0.0, 0.35, size=(m, 1)))
        lam = np.exp(gene_mu[cols] + gene_sigma[cols] * rng.standard_normal((m, k))) * size_factor
        counts = 1 + rng.poisson(lam)
        sl = slice(r0 * k, (r0 + m) * k)
        data[sl] = counts.ravel()
        indices[sl] = cols.ravel()
    indptr = np.arange(0, nnz + 1, k, dtype=np.int64)
    if nnz < 2**31:
        indptr = indptr.astype(np.int32)
    X = sp.csr_matrix((data, indices, indptr), shape=(cells, genes), copy=False)
    return X


# ----------------------------------------------------------------------------- timing


def best_time(fn, repeats: int):
    """Warm up once, then return (best seconds over `repeats`, last result)."""
    out = fn()
    del out
    best = float("inf")
    out = None
    for _ in range(repeats):
        out = None
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
    return best, out


def row_totals(M) -> np.ndarray:
    return np.asarray(M.sum(axis=1), dtype=np.float64).ravel()


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=20_000)
    p.add_argument("--nnz-per-cell", type=int, default=2_000)
    p.add_argument("--genes", type=int, default=30_000)
    p.add_argument("--fraction", type=float, default=0.1, help="thinning fraction q (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic matrix")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row; best is reported")
    p.add_argument("--quick", action="store_true", help="small matrix (2,000 cells) for smoke runs")
    p.add_argument("--numpy-max-nnz", type=int, default=4_000_000,
                   help="time numpy on a slice of at most this many entries (rate extrapolated)")
    p.add_argument("--scanpy-budget", type=float, default=8.0,
                   help="if scanpy on the whole matrix would take longer than this many seconds "
                        "per run, time it on a row subset instead")
    p.add_argument("--no-scanpy", action="store_true", help="skip the scanpy row")
    args = p.parse_args(argv)
    if args.quick:
        args.cells = 2_000
    q = float(args.fraction)
    if not 0.0 < q <= 1.0:
        p.error("--fraction must be in (0, 1]")
    R = max(1, args.repeats)

    info = ns.build_info()
    nthreads = int(info.get("openmp_max_threads") or 1)

    print("noisescale thinning benchmark")
    print(f"  noisescale {info.get('version')}  compiler {info.get('compiler')}  "
          f"openmp_max_threads={nthreads}  cuda_compiled={info.get('cuda_compiled')}  "
          f"cuda_devices={info.get('cuda_devices')}")
    print(f"  python {platform.python_version()}  numpy {np.__version__}  scipy {scipy.__version__}  "
          f"os.cpu_count()={os.cpu_count()}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")

    t0 = time.perf_counter()
    X = make_counts(args.cells, args.nnz_per_cell, args.genes, args.seed)
    t_gen = time.perf_counter() - t0
    nnz = X.nnz
    d = X.data
    totals = row_totals(X)
    med = float(np.median(totals))
    T = int(round(med * q))
    print()
    print(f"matrix: {X.shape[0]:,} cells x {X.shape[1]:,} genes, {nnz:,} stored entries "
          f"({nnz / 1e6:.1f} M), CSR {X.dtype} data / {X.indices.dtype} indices / "
          f"{X.indptr.dtype} indptr, {(d.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20:.0f} MiB "
          f"(built in {t_gen:.1f} s, seed {args.seed})")
    print(f"  UMIs per cell: mean {totals.mean():,.0f}, median {med:,.0f}, "
          f"min {totals.min():,.0f}, max {totals.max():,.0f}")
    qs = np.quantile(d, [0.5, 0.9, 0.99, 0.999])
    print(f"  counts: fraction of 1s {np.mean(d == 1):.3f}, of <=2 {np.mean(d <= 2):.3f}; "
          f"quantiles 50/90/99/99.9% = {qs[0]:.0f}/{qs[1]:.0f}/{qs[2]:.0f}/{qs[3]:.0f}; "
          f"max {d.max():,.0f}; entries >=100: {int(np.sum(d >= 100)):,}, >=1000: {int(np.sum(d >= 1000)):,}")
    series = [f for f in (4 * q, 2 * q, q) if f <= 1.0]
    print(f"  fraction q = {q}, thin_series fractions = {series}, "
          f"downsample target T = round(median x q) = {T:,}; repeats = {R} (best), 1 warm-up")

    rows = []  # (label, seconds, entries_timed, note)

    # --- memcpy first (reference)
    t_mem, _ = best_time(lambda: d.copy(), R)
    rows_mem = ("memcpy: X.data.copy()", t_mem, nnz, f"{d.nbytes / 1e9:.2f} GB copied at {d.nbytes / t_mem / 1e9:.1f} GB/s (bandwidth reference)")

    # --- noisescale
    t1, out_thin1 = best_time(lambda: ns.thin(X, q, seed=0, threads=1), R)
    rows.append(("ns.thin threads=1", t1, nnz, ""))
    tN, out_thin = best_time(lambda: ns.thin(X, q, seed=0), R)
    rows.append((f"ns.thin threads={nthreads} (all)", tN, nnz, ""))
    tK, out_keep = best_time(lambda: ns.thin(X, q, seed=0, keep_zeros=True), R)
    rows.append((f"ns.thin keep_zeros threads={nthreads}", tK, nnz, ""))
    tS, out_series = best_time(lambda: ns.thin_series(X, series, seed=0), R)
    rows.append((f"ns.thin_series x{len(series)} threads={nthreads}", tS, nnz, f"{len(series)} outputs; rate = input nnz / time"))
    tD, out_down = best_time(lambda: ns.downsample_to(X, T, seed=0), R)
    rows.append((f"ns.downsample_to threads={nthreads}", tD, nnz, f"T={T:,}"))

    # --- numpy baseline
    m_np = min(nnz, max(1, args.numpy_max_nnz))
    d_np = d[:m_np]

    def numpy_thin():
        rng = np.random.default_rng(0)
        return rng.binomial(d_np.astype(np.int64), q).astype(np.float32)

    t_np, out_np = best_time(numpy_thin, R)
    note_np = "binomial on .data + float32 output"
    if m_np < nnz:
        note_np += f"; timed on first {m_np / 1e6:.1f} M entries, rate extrapolated"
    row_np = ("numpy default_rng.binomial", t_np, m_np, note_np)
    rows.append(row_np)

    # --- scanpy baseline
    sc_result = None
    sc_note = None
    if args.no_scanpy:
        sc_note = "skipped (--no-scanpy)"
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import anndata as ad
                import scanpy as sc
        except Exception as exc:  # pragma: no cover - depends on environment
            sc_note = f"skipped: scanpy not importable ({type(exc).__name__}: {exc})"
    if sc_note is None:
        from importlib.metadata import version as _v

        def sc_run(M):
            a = ad.AnnData(M)
            return sc.pp.downsample_counts(a, counts_per_cell=T, copy=True)

        # compile numba on a tiny slice, then probe on a row subset to estimate the full cost
        n_probe = min(X.shape[0], 1000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc_run(X[:50].copy())
            Xp = X[:n_probe].copy()
            tp0 = time.perf_counter()
            sc_run(Xp)
            tp = time.perf_counter() - tp0
            est_full = tp * nnz / max(1, Xp.nnz)
            if est_full <= args.scanpy_budget or n_probe == X.shape[0]:
                Xs, sub = X, False
            else:
                n_sub = max(n_probe, int(X.shape[0] * args.scanpy_budget / est_full / 2))
                n_sub = min(n_sub, X.shape[0])
                Xs, sub = X[:n_sub].copy(), n_sub < X.shape[0]
            t_sc, sc_result = best_time(lambda: sc_run(Xs), R)
        note = f"scanpy {_v('scanpy')}, per-cell mode T={T:,}, copy=True"
        if sub:
            note += f"; timed on first {Xs.shape[0]:,} cells ({Xs.nnz / 1e6:.1f} M entries), rate extrapolated"
        rows.append(("scanpy pp.downsample_counts", t_sc, Xs.nnz, note))
    else:
        rows.append(("scanpy pp.downsample_counts", None, 0, sc_note))

    rows.append(rows_mem)

    # --- table
    np_rate = m_np / t_np
    mem_rate = nnz / t_mem
    hdr = f"{'#':>2}  {'method':<34} {'entries':>9} {'best s':>8} {'M nnz/s':>9} {'x numpy':>8} {'% memcpy':>9}  note"
    print()
    print(hdr)
    print("-" * len(hdr) + "-" * 40)
    for i, (label, sec, ent, note) in enumerate(rows, 1):
        if sec is None:
            print(f"{i:>2}  {label:<34} {'-':>9} {'-':>8} {'-':>9} {'-':>8} {'-':>9}  {note}")
            continue
        rate = ent / sec
        print(f"{i:>2}  {label:<34} {ent / 1e6:>8.1f}M {sec:>8.3f} {rate / 1e6:>9.1f} "
              f"{rate / np_rate:>7.1f}x {100 * rate / mem_rate:>8.1f}%  {note}")
    print()
    print("rates: stored input entries per second (memcpy: float32 elements copied per second)")

    # --- goals
    rate_all = nnz / tN
    r_np = rate_all / np_rate
    r_mem = rate_all / mem_rate
    print()
    print(f"goal: ns.thin all threads ({nthreads}) vs numpy     : {r_np:7.1f}x   (goal >= 25x)   "
          f"{'PASS' if r_np >= 25 else 'MISS'}")
    print(f"goal: ns.thin all threads ({nthreads}) vs memcpy    : {100 * r_mem:7.1f}%   (goal >= 25%)   "
          f"{'PASS' if r_mem >= 0.25 else 'MISS'}")
    print(f"      (1-thread thin vs numpy {nnz / t1 / np_rate:.1f}x; all-thread speed-up over 1 thread "
          f"{t1 / tN:.2f}x)")

    # --- sanity checks
    print()
    print("sanity checks")
    ok_all = True

    def check(name, ok, detail):
        nonlocal ok_all
        ok_all &= bool(ok)
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")

    mean_tot = totals.mean()
    # relative s.d. of the thinned grand total ~ sqrt((1-q)/(q * total UMIs)); allow 6 s.d. + slack
    tol = 6 * np.sqrt((1 - q) / (q * totals.sum())) + 1e-6
    for name, M in (("thin threads=1", out_thin1), (f"thin threads={nthreads}", out_thin),
                    ("thin keep_zeros", out_keep)):
        rel = row_totals(M).mean() / (q * mean_tot) - 1
        check(f"{name} mean total/cell vs q x original", abs(rel) <= tol,
              f"{row_totals(M).mean():,.2f} vs {q * mean_tot:,.2f} (rel. err {rel:+.2e}, tol {tol:.1e})")
    check("thin output class / shape", type(out_thin) is type(X) and out_thin.shape == X.shape,
          f"{type(out_thin).__name__} {out_thin.shape}, nnz {out_thin.nnz:,} ({out_thin.nnz / nnz:.3f} of input), "
          f"explicit zeros {int(np.sum(out_thin.data == 0))}")
    check("thin threads=1 == all threads", (out_thin1 != out_thin).nnz == 0, "identical results")
    check("keep_zeros keeps the structure",
          out_keep.nnz == nnz and np.array_equal(out_keep.indices, X.indices)
          and np.array_equal(out_keep.indptr, X.indptr),
          f"nnz {out_keep.nnz:,}, max(out - X) = {float((out_keep - X).max()):.0f}")
    for f, M in zip(series, out_series):
        tl = 6 * np.sqrt((1 - f) / (f * totals.sum())) + 1e-6
        rel = row_totals(M).mean() / (f * mean_tot) - 1
        check(f"thin_series level q={f:g} mean total/cell", abs(rel) <= tl, f"rel. err {rel:+.2e} (tol {tl:.1e})")
    mono = all((out_series[i + 1] - out_series[i]).max() <= 0 for i in range(len(series) - 1))
    check("thin_series nested (entry-wise non-increasing)", mono, f"{len(series)} levels")
    first = ns.thin(X, series[0], seed=0)
    check(f"thin_series level 1 == thin(X, {series[0]:g}) (documented)", (first != out_series[0]).nnz == 0,
          f"differing entries: {(first != out_series[0]).nnz:,}")
    del first
    dt = row_totals(out_down)
    n_over = int(np.sum(totals > T))
    check("downsample_to totals <= T", dt.max() <= T, f"max {dt.max():,.0f} <= T={T:,}")
    check("downsample_to cells above T hit T exactly", np.all(dt[totals > T] == T) and np.all(dt[totals <= T] == totals[totals <= T]),
          f"{n_over:,} of {X.shape[0]:,} cells were above T")
    rel_np = float(out_np.sum()) / (q * float(d_np.sum())) - 1
    check("numpy baseline mean", abs(rel_np) < 0.01, f"rel. err {rel_np:+.2e}")
    if sc_result is not None:
        st = row_totals(sc_result.X)
        check("scanpy totals <= T", st.max() <= T, f"max {st.max():,.0f}")

    print()
    print("all sanity checks passed" if ok_all else "SOME SANITY CHECKS FAILED")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
