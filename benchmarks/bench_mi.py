#!/usr/bin/env python
"""Mutual-information estimator benchmark for noisescale.

KSG on one seeded dataset per size, all in the same run: x ~ N(0, I_8),
y = rho x + sqrt(1 - rho^2) noise (8 dims; I = -4 log2(1 - rho^2) bits), k = 3:

  1. noisescale.mi.ksg, C++ k-d tree (all threads)
  2. noisescale.mi.ksg with knn="faiss" (FAISS flat max-norm index: brute force, so on the CPU
     only up to --faiss-max-n; it is the GPU path)
  3. the sklearn-KDTree/Chebyshev approach of NPEET and latentmi, re-implemented in a few lines
     (KDTree(metric="chebyshev").query for eps, query_radius(count_only=True) for the counts,
     strict counts, no noise), single-threaded as sklearn runs it
  4. latentmi.ksg.mi (if latentmi is installed; it adds its own 1e-10 noise)

at N = 10k and 100k (the reference approaches), and noisescale alone at 1M (--max-n).
Then LMI: noisescale.mi.lmi vs latentmi.lmi.estimate (if installed) on a 2-D Gaussian pair
embedded linearly into 100 + 100 dims with small noise: seconds and estimate.

    python benchmarks/bench_mi.py               # ~5 min on 2 cores (sklearn at 100k is ~2 min)
    python benchmarks/bench_mi.py --quick       # 10k and 30k, smoke run
    pip install --no-deps latentmi              # optional peer (its metadata pins numpy < 2)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import resource
import time

import numpy as np
from scipy.special import digamma

from noisescale import build_info
from noisescale.mi import ksg, lmi


def gaussian_pair(n: int, d: int, rho: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y, -d * 0.5 * np.log2(1 - rho**2)


def sklearn_ksg(x, y, k):
    """KSG the way NPEET / latentmi compute it (sklearn KDTree, Chebyshev), strict counts."""
    from sklearn.neighbors import KDTree

    xy = np.hstack([x, y])
    eps = KDTree(xy, metric="chebyshev").query(xy, k=k + 1)[0][:, k]
    r = np.nextafter(eps, 0)
    nx = KDTree(x, metric="chebyshev").query_radius(x, r, count_only=True) - 1
    ny = KDTree(y, metric="chebyshev").query_radius(y, r, count_only=True) - 1
    n = len(x)
    return float(np.mean(digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)) / np.log(2))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    val = fn(*args, **kwargs)
    return val, time.perf_counter() - t


def latentmi_modules():
    try:
        from latentmi import ksg as lksg
        from latentmi import lmi as llmi
    except ImportError:
        return None, None
    if not hasattr(np, "NaN"):  # latentmi 0.1.3 uses np.NaN, removed in numpy 2
        np.NaN = np.nan
    return lksg, llmi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k and 30k only")
    ap.add_argument("--max-n", type=int, default=1_000_000, help="largest N (noisescale only)")
    ap.add_argument("--faiss-max-n", type=int, default=30_000,
                    help="largest N for knn='faiss' (a brute-force O(N^2) search on the CPU)")
    ap.add_argument("--rho", type=float, default=0.6)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--no-lmi", action="store_true")
    args = ap.parse_args()

    info = build_info()
    print(f"# {platform.processor() or platform.machine()}, {info['openmp_max_threads']} "
          f"threads, SIMD {info['simd']}, noisescale {info['version']}")
    lksg, llmi = latentmi_modules()
    sizes = [10_000, 30_000] if args.quick else [10_000, 100_000]
    big = [] if args.quick else [args.max_n]
    k = args.k
    rows = []
    print(f"\nKSG, 8 + 8 dims, rho = {args.rho}, k = {k}")
    print(f"{'N':>9} {'method':<34} {'seconds':>9} {'estimate':>10} {'truth':>7} {'speed-up':>9}")
    for n in sizes + big:
        x, y, truth = gaussian_pair(n, 8, args.rho, seed=n)
        ours, t_ours = timed(ksg, x, y, k, standardize=False, jitter=0)
        results = [("noisescale ksg (C++ tree)", t_ours, ours)]
        if n <= args.faiss_max_n:  # brute force on the CPU: O(N^2)
            f, t_f = timed(ksg, x, y, k, standardize=False, jitter=0, knn="faiss")
            results.append(("noisescale ksg (knn='faiss', CPU)", t_f, f))
        if n <= 100_000:
            ref, t_ref = timed(sklearn_ksg, x, y, k)
            results.append(("sklearn KDTree chebyshev (NPEET)", t_ref, ref))
            if lksg is not None:
                lv, t_l = timed(lksg.mi, x, y, k=k)
                lv = float(np.mean(lv))
                results.append(("latentmi.ksg.mi", t_l, lv))
        t_base = next((t for name, t, _ in results if name.startswith("sklearn")), None)
        for name, t, v in results:
            sp = f"{t_base / t:8.1f}x" if t_base else "       -"
            print(f"{n:>9,} {name:<34} {t:9.2f} {v:10.4f} {truth:7.3f} {sp:>9}")
        rows.append((n, results, t_base))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS of this process so far: {peak:.2f} GB")

    print("\nGoals:")
    for n, results, t_base in rows:
        ours = results[0]
        if t_base is not None:
            same = all(abs(v - ours[2]) < 1e-9 for name, _, v in results
                       if not name.startswith("latentmi"))
            if n >= 100_000:
                verdict = ">= 20x: met" if t_base / ours[1] >= 20 else ">= 20x: MISS"
            else:
                verdict = "the goal is at 100k"
            print(f"  N={n:,}: {t_base / ours[1]:.1f}x sklearn ({verdict}); "
                  f"identical estimates: {same}")
        else:
            print(f"  N={n:,}: {ours[1]:.0f} s ({'< 300 s: met' if ours[1] < 300 else 'MISS'})")

    if args.no_lmi:
        return
    print("\nLMI, 2-D Gaussian pair (rho = 0.8) embedded into 100 + 100 dims, noise 0.1")
    n = 4_000 if args.quick else 10_000
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, 2))
    w = 0.8 * z + 0.6 * rng.standard_normal((n, 2))
    x = z @ rng.standard_normal((2, 100)) + 0.1 * rng.standard_normal((n, 100))
    y = w @ rng.standard_normal((2, 100)) + 0.1 * rng.standard_normal((n, 100))
    truth = -np.log2(1 - 0.64)
    print(f"{'N':>9} {'method':<34} {'seconds':>9} {'estimate':>10} {'truth':>7}")
    res, t = timed(lmi, x, y, seed=0)
    print(f"{n:>9,} {'noisescale lmi':<34} {t:9.2f} {res.mi:10.4f} {truth:7.3f}"
          f"   ({res.history['epochs_run']} epochs)")
    if llmi is not None:
        import torch

        torch.manual_seed(0)
        np.random.seed(0)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints per-epoch progress anyway
            (pmis, _, _), t = timed(llmi.estimate, x, y, quiet=True)
        print(f"{n:>9,} {'latentmi.lmi.estimate':<34} {t:9.2f} {np.nanmean(pmis):10.4f} "
              f"{truth:7.3f}")
    else:
        print("  (latentmi not installed: pip install --no-deps latentmi)")


if __name__ == "__main__":
    main()
