#!/usr/bin/env python
"""Atlas-scale sweep benchmark: a whole sweep on a simulated atlas in bounded memory.

Simulates once into --dir (reused while a JSON sidecar matches) an atlas of --cells cells x
20,000 genes, ~2,000 UMIs per cell, obs cell_type, as .h5ad and/or .zarr; a 2x file (--double);
a --subset-cells file (same seed: the atlas's first cells, checked). Each sweep (6 depths,
n_cells [1000, 10000, 100000, "all"], PCA + VAE, MI with cell_type by ross, workers = 1) runs
in a fresh process reporting its peak RSS (VmHWM), bytes read and thinning seconds:
  a. the atlas, route by memory_gb (auto), per format;   b. --double: the 2x file;
  c. the subset with out_of_core "never" vs "always": thinned matrices identical (SHA-256),
     noise-law fits within each other's 95 % intervals;
  d. --dask: c's out-of-core sweep on `dask scheduler` + 2 `dask worker` processes: the same
     table on every column but *_seconds.
In c and d the VAE trains --vae-epochs epochs (a max_seconds cap depends on speed). Goals
(ok/MISS): peak RSS of a, b < 6 GB, b within 10 % of a; out of core >= 50 % of the in-memory
speed. Exit status 1 if an identity check fails, 2 if a sweep fails.

    python benchmarks/bench_atlas.py --quick                  # 20,000 cells, 4-8 min on 2 cores
    python benchmarks/bench_atlas.py --dir /data/atlas        # 1,000,000 cells
    python benchmarks/bench_atlas.py --dir /data/atlas --double --dask --format both
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import noisescale as ns

SIM = {"mean_umis": 2000.0, "version": 1}  # simulate's other defaults: 8 cell types, NB counts


def atlas_file(directory: str, name: str, cells: int, genes: int, seed: int) -> str:
    """The simulated file directory/name, written unless its sidecar matches."""
    from noisescale.simulate import simulate_file

    path = os.path.join(directory, name)
    params = {"n_cells": cells, "n_genes": genes, "seed": seed, **SIM}
    with contextlib.suppress(OSError, ValueError):
        if os.path.exists(path) and json.load(open(path + ".json")) == params:
            print(f"  reusing {path}", file=sys.stderr)
            return path
    t0 = time.perf_counter()
    simulate_file(path, cells, genes, seed=seed, mean_umis=SIM["mean_umis"], overwrite=True,
                  progress=True)
    with open(path + ".json", "w") as fh:
        json.dump(params, fh)
    print(f"  wrote {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def size_gb(path: str) -> float:
    files = [path] if os.path.isfile(path) else glob.glob(f"{path}/**", recursive=True)
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f)) / 1e9


def same_prefix(subset: str, atlas: str, step: int = 10_000) -> bool:
    """Whether the subset file's counts and cell types are the atlas's first cells."""
    from noisescale.io import CountsReader

    with CountsReader(subset) as s, CountsReader(atlas) as a:
        n = s.shape[0]
        types = [np.asarray(r.read("obs/cell_type"), dtype=str) for r in (s, a)]
        if not np.array_equal(types[0], types[1][:n]):
            return False
        for i in range(0, n, step):
            x, y = s.rows(i, min(n, i + step)), a.rows(i, min(n, i + step))
            if x.shape != y.shape or (x != y).nnz:
                return False
    return True


def digest(X) -> str:
    """SHA-256 of a CSR matrix (indices as int64), hashed in slices: it allocates little."""
    h = hashlib.sha256(f"{X.shape} {X.data.dtype}".encode())
    for arr, dtype in ((X.indptr, np.int64), (X.indices, np.int64), (X.data, X.data.dtype)):
        for i in range(0, arr.size, 1 << 22):
            h.update(np.ascontiguousarray(arr[i:i + (1 << 22)], dtype=dtype))
    return h.hexdigest()


def child(config: str, do_hash: bool) -> None:
    """One sweep in this fresh process; prints its measurements as JSON."""
    import noisescale.sweep.runner as runner
    from noisescale.sweep import run_sweep

    seconds, hashes = {"thin": 0.0, "hash": 0.0}, {}
    inner = getattr(runner, "thin_seed", None)

    def timed_thin_seed(*args, **kwargs):
        t = time.perf_counter()
        parts = inner(*args, **kwargs)
        seconds["thin"] += time.perf_counter() - t
        if do_hash:  # the in-memory parts as the jobs get them; not counted in the wall time
            t = time.perf_counter()
            hashes.update({f"L{lv}-{seg}": digest(p.matrix) for (lv, seg), p in parts.items()
                           if p.matrix is not None})
            seconds["hash"] += time.perf_counter() - t
        return parts

    if inner is not None:
        runner.thin_seed = timed_thin_seed
    t0 = time.perf_counter()
    run_sweep(config, progress=False)
    wall = time.perf_counter() - t0 - seconds["hash"]
    with open("/proc/self/status") as fh:  # VmHWM: this process's own peak RSS
        rss = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
    with open("/proc/self/io") as fh:
        io = {k: int(v) for k, v in (line.split(": ") for line in fh)}
    print(json.dumps({"wall": wall, "thin": seconds["thin"] if inner else None, "rss": rss,
                      "read": io["read_bytes"], "rchar": io["rchar"], "hashes": hashes}))


def toml(cfg: dict) -> str:
    lines = []
    for table, value in cfg.items():
        for t in value if isinstance(value, list) else [value]:
            lines.append(f"[[{table}]]" if isinstance(value, list) else f"[{table}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def sweep(args, label: str, path: str, cells: int, vae: dict, do_hash=False, **run) -> dict:
    """Run one sweep in a fresh process; its measurements, results table and hashes."""
    from noisescale.sweep import read_results

    n_test = min(args.n_test, int(0.3 * cells))
    sizes = [n for n in args.sizes if n < cells - n_test] + ["all"]
    out = os.path.join(args.workdir, label)
    run = {"output": out, "workers": 1, "threads_per_worker": args.threads,
           "memory_gb": args.memory_gb, "out_of_core": "auto", **run}
    cfg = {"dataset": {"path": path, "name": "atlas"}, "split": {"n_test": n_test},
           "sweep": {"fractions": args.fractions, "n_cells": sizes, "seeds": [0]},
           "models": [{"name": "pca", "n_dims": 16, "n_top_genes": 2000},
                      {"name": "vae", "n_dims": 16, **vae}],
           "signals": [{"kind": "categorical", "column": "cell_type", "estimator": "ross"}],
           "run": run}
    shutil.rmtree(out, ignore_errors=True)
    config = os.path.join(args.workdir, f"{label}.toml")
    with open(config, "w") as fh:
        fh.write(toml(cfg))
    print(f"{label}: {os.path.basename(path)}, n_test {n_test:,}, n_cells {sizes[:-1]} + all "
          f"(the whole pool, {cells - n_test:,}), out_of_core {run['out_of_core']}, "
          f"executor {run.get('executor', 'local')}, VAE {vae}", file=sys.stderr)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "_child", config,
                           "hash" if do_hash else "-"], capture_output=True, text=True,
                          cwd=args.workdir)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-6000:])
        print(f"{label}: the sweep failed (exit status {proc.returncode})", file=sys.stderr)
        raise SystemExit(2)
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    m.update(label=label, mode=run["out_of_core"], table=read_results(out))
    memory = json.load(open(os.path.join(out, "provenance.json")))["memory"]
    m["routes"] = ", ".join(f"{k} {v}" for k, v in sorted(memory["fit_routes"].items()))
    per_model = m["table"].drop_duplicates("job").groupby("model")
    for c in ("fit", "embed", "mi"):
        m[c] = per_model[f"{c}_seconds"].sum()
    jobs = sum(m[c].sum() for c in ("fit", "embed", "mi"))
    m["thin"] = m["wall"] - jobs if m["thin"] is None else m["thin"]
    m["other"] = m["wall"] - m["thin"] - jobs
    print(f"  {m['wall']:.0f} s, peak RSS {m['rss'] / 1e9:.2f} GB, fit routes: {m['routes']} "
          f"(chunks of {memory['chunk_cells']:,} cells)", file=sys.stderr)
    return m


def laws_disagree(a, b) -> tuple[int, list[str]]:
    """Noise-law (signal, model, n_cells) parameters u_bar and I_max of two tables, and those
    outside the other table's fit's 95 % interval (or not fitted)."""
    from noisescale.laws import fit_results

    key = ["signal", "model", "n_cells"]
    fa, fb = (fit_results(t).query("law == 'noise'").set_index(key) for t in (a, b))
    bad, keys = [], fa.index.union(fb.index)
    for k in keys:
        for p in ("u_bar", "I_max"):
            if k not in fa.index or k not in fb.index:
                bad.append(f"{k} {p}")
                continue
            x, y = fa.loc[k], fb.loc[k]
            if not (x[f"{p}_lo"] <= y[p] <= x[f"{p}_hi"] and y[f"{p}_lo"] <= x[p] <= y[f"{p}_hi"]):
                bad.append(f"{k} {p}: {x[p]:.3g} [{x[f'{p}_lo']:.3g}, {x[f'{p}_hi']:.3g}] vs "
                           f"{y[p]:.3g} [{y[f'{p}_lo']:.3g}, {y[f'{p}_hi']:.3g}]")
    return 2 * len(keys), bad


@contextlib.contextmanager
def dask_cluster(workdir: str):
    """`dask scheduler` and two single-thread `dask worker` processes on this machine; yields
    the scheduler's address; stops them at the end."""
    from distributed import Client

    exe = shutil.which("dask", path=os.path.dirname(sys.executable)) or "dask"
    f = os.path.join(workdir, "scheduler.json")
    cmds = [[exe, "scheduler", "--scheduler-file", f, "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard"]] + 2 * [[exe, "worker", "--scheduler-file", f, "--nthreads", "1",
                                        "--no-nanny", "--no-dashboard"]]
    procs = []
    with open(os.path.join(workdir, "dask.log"), "w") as log:
        try:
            for cmd in cmds:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                              cwd=workdir))
                for _ in range(600):  # the scheduler writes its file before workers start
                    if os.path.exists(f):
                        break
                    time.sleep(0.1)
            with Client(scheduler_file=f, timeout=60) as client:
                client.wait_for_workers(2, timeout=120)
                yield client.scheduler.address
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(15)
                p.kill()  # a no-op when it has exited
                p.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--subset-cells", type=int, default=100_000)
    p.add_argument("--format", choices=["h5ad", "zarr", "both"], default="h5ad")
    p.add_argument("--double", action="store_true", help="also the 2x-cells file (run b)")
    p.add_argument("--dask", action="store_true", help="also the Dask run (d)")
    p.add_argument("--memory-gb", type=float, help="[run] memory_gb (default 4; --quick 0.25)")
    p.add_argument("--vae-seconds", type=float, default=120.0, help="VAE max_seconds in a, b")
    p.add_argument("--vae-epochs", type=int, default=2, help="VAE epochs in c, d")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="[run] threads_per_worker (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed")
    p.add_argument("--dir", help="where the simulated files live (default: a temporary dir)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 20,000 cells x 5,000 genes, 3 depths, Dask on")
    args = p.parse_args(argv)
    args.n_test, args.sizes = 30_000, [1000, 10_000, 100_000]
    args.fractions = [1.0, 0.5, 0.25, 0.1, 0.05, 0.02]
    if args.quick:
        args.cells, args.genes, args.subset_cells, args.dask = 20_000, 5_000, 10_000, True
        args.n_test, args.sizes, args.fractions = 3_000, [1000], [1.0, 0.25, 0.05]
        args.vae_seconds, args.vae_epochs = 10.0, 1
    args.memory_gb = args.memory_gb or (0.25 if args.quick else 4.0)
    args.subset_cells = min(args.subset_cells, args.cells)
    directory = args.dir or tempfile.mkdtemp(prefix="ns-bench-atlas-")
    os.makedirs(directory, exist_ok=True)
    args.workdir = tempfile.mkdtemp(prefix="runs-", dir=directory)
    try:
        return run(args, directory)
    finally:
        shutil.rmtree(args.workdir if args.dir else directory, ignore_errors=True)


def run(args, directory: str) -> int:
    from noisescale.sweep.thinned import cached, load_parts

    info = ns.build_info()
    print(f"noisescale {info['version']}, {os.cpu_count()} core(s), "
          f"{info['openmp_max_threads']} OpenMP thread(s), SIMD {info['simd']}; files in "
          f"{directory}; memory_gb {args.memory_gb:g}, threads_per_worker {args.threads}")
    formats = ["h5ad", "zarr"] if args.format == "both" else [args.format]
    atlas = {f: atlas_file(directory, f"atlas-{args.cells}.{f}", args.cells, args.genes,
                           args.seed) for f in formats}
    subset = atlas_file(directory, f"subset-{args.subset_cells}.{formats[0]}",
                        args.subset_cells, args.genes, args.seed)
    print(f"atlas: {args.cells:,} cells x {args.genes:,} genes, ~{SIM['mean_umis']:.0f} UMIs "
          "per cell, " + ", ".join(f"{f} {size_gb(p):.2f} GB" for f, p in atlas.items()))
    print(f"subset: simulate_file(n_cells={args.subset_cells:,}, same seed): "
          + ("its counts and cell types are the atlas's first cells (prefix-stable, checked)"
             if same_prefix(subset, atlas[formats[0]])
             else "NOT the atlas's first cells: a separate simulation"))
    print("n_cells: the issue's 1,000,000 training cells do not fit beside the held-out "
          "cells; \"all\" (the whole training pool) stands for it")
    timed, fixed = {"max_seconds": args.vae_seconds}, {"epochs": args.vae_epochs}
    runs = [sweep(args, f"a-{f}", path, args.cells, timed) for f, path in atlas.items()]
    goals = [(f"(a) peak RSS, .{r['label'][2:]}: {r['rss'] / 1e9:.2f} GB (goal < 6 GB)",
              r["rss"] < 6e9) for r in runs]
    if args.double:
        path = atlas_file(directory, f"atlas-{2 * args.cells}.{formats[0]}", 2 * args.cells,
                          args.genes, args.seed)
        a, b = runs[0], sweep(args, "b-double", path, 2 * args.cells, timed)
        runs.append(b)
        goals.append((f"(b) peak RSS, 2x file: {b['rss'] / 1e9:.2f} GB (goal < 6 GB and within "
                      f"10 % of a: {b['rss'] / a['rss'] - 1:+.0%})",
                      b["rss"] < 6e9 and b["rss"] <= 1.1 * a["rss"]))
    mem = sweep(args, "c-memory", subset, args.subset_cells, fixed, True, out_of_core="never")
    ooc = sweep(args, "c-ooc", subset, args.subset_cells, fixed, out_of_core="always",
                keep_cache=True)
    runs += [mem, ooc]
    stored = {}  # the kept cache's thinned cells, one part at a time
    for cache in glob.glob(os.path.join(args.workdir, "c-ooc", "cache", "thinned-*")):
        for (lv, seg), part in (cached(Path(cache)) or {}).items():
            stored[f"L{lv}-{seg}"] = digest(load_parts([part]))
    shutil.rmtree(os.path.join(args.workdir, "c-ooc", "cache"), ignore_errors=True)
    goals.append((f"(c) out-of-core / in-memory wall time: {ooc['wall']:.0f} / {mem['wall']:.0f}"
                  f" s = {ooc['wall'] / mem['wall']:.2f} (goal <= 2)",
                  ooc["wall"] <= 2 * mem["wall"]))
    n, bad = laws_disagree(mem["table"], ooc["table"])
    goals.append((f"(c) noise-law u_bar and I_max of in memory vs out of core within each "
                  f"other's 95 % intervals: {n - len(bad)}/{n}", not bad,
                  "".join(f"\n    not: {b}" for b in bad)))
    checks = [(f"(c) thinned matrices in memory == out-of-core cache stores (SHA-256 of "
               f"{len(mem['hashes'])} depth x segment parts)",
               bool(stored) and mem["hashes"] == stored)]
    if args.dask:
        with dask_cluster(args.workdir) as address:
            d = sweep(args, "d-dask", subset, args.subset_cells, fixed, out_of_core="always",
                      executor="dask", scheduler=address)
        runs.append(d)
        cols = [c for c in ooc["table"].columns if not c.endswith("_seconds")]
        checks.append((f"(d) Dask (2 workers) table == in-process c-ooc table on {len(cols)} "
                       f"columns (all but *_seconds), {len(d['table'])} rows",
                       d["table"][cols].equals(ooc["table"][cols])))

    print("\n| run | out_of_core | fit routes | wall s | thinning s | fit s pca / vae "
          "| embed s pca / vae | MI s pca / vae | other s | peak RSS GB | read GB | rchar GB |")
    print("|---" * 12 + "|")
    for r in runs:
        pv = {c: " / ".join(f"{r[c].get(m, 0):.0f}" for m in ("pca", "vae"))
              for c in ("fit", "embed", "mi")}
        print(f"| {r['label']} | {r['mode']} | {r['routes']} | {r['wall']:.0f} "
              f"| {r['thin']:.1f} | {pv['fit']} | {pv['embed']} | {pv['mi']} | {r['other']:.0f} "
              f"| {r['rss'] / 1e9:.2f} | {r['read'] / 1e9:.2f} | {r['rchar'] / 1e9:.2f} |")
    print()
    for text, ok, *detail in goals:
        print(f"{text}: {'ok' if ok else 'MISS'}{''.join(detail)}")
    for text, ok in checks:
        print(f"{text}: {'ok' if ok else 'FAILED'}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["_child"]:
        child(sys.argv[2], sys.argv[3] == "hash")
    else:
        sys.exit(main())
