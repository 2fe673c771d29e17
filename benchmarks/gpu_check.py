#!/usr/bin/env python
"""The GPU check of noisescale: one run, one table (section | case | cpu | gpu | result).

Sections (each case runs in a child process with a time cap, so a hung or crashed case costs
its cap and is reported, never the whole run):

  config    show_config(), where noisescale was imported from, torch and FAISS devices;
            a GPU run without a usable GPU, torch CUDA or FAISS GPU fails here
  fallback  with CUDA_VISIBLE_DEVICES="" (no usable GPU): device="cuda" raises a RuntimeError
            naming the reason for thin / thin_series / downsample_to, the VAE, the
            transformer, lmi and FAISS, and device="auto" records "cpu" (build_info); with the
            GPU: device="cuda" is accepted and "auto" records "cuda" for every backend
  identity  thin, thin_series and downsample_to on the GPU against the CPU for every count
            dtype x index dtype, CSR / CSC / dense, keep_zeros, empty rows, large counts
            (BTRS), per-cell targets, row_offset: hashes equal. The CPU side is also compared
            across threads (1 vs all) and SIMD caps (NOISESCALE_SIMD, in child processes).
            GPU calls run under torch's profiler, which must see noisescale's kernels: a call
            that ran on the CPU instead fails ("silent fallback")
  speed     GPU thinning of 40 M stored counts (20,000 x 30,000, bench_thin.py's matrix) and
            of 400 M (the same stacked 10x: 200,000 x 30,000) against the CPU with all cores,
            X.data.copy() on the host and on the device, H2D upload; outputs equal
  ksg       ksg(knn="faiss") (FAISS on the GPU) against the C++ tree: equal estimates at
            N = 10^5, time at 10^5 and 10^6 in 8 + 8 and 16 + 16 dimensions (10^6 capped)
  torch     VAE, transformer and LMI: seconds per epoch on CUDA and on the CPU, and that a
            seeded run repeats bit for bit on the device

--cpu-only runs every section's CPU half (small sizes with --quick; the CI smoke test) and
checks the no-GPU errors; the gpu column then says "no GPU". Exit status 1 if any check
fails (a hash mismatch, a silent fallback, an exception, a correctness section cut by its cap).

    python benchmarks/gpu_check.py --cpu-only --quick      # CI smoke test, ~20 s on 2 cores
    benchmarks/gpu_check.sh                                 # on a GPU machine: build, then this
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(__file__)
SECTIONS = ("config", "fallback", "identity", "speed", "ksg", "torch")
COUNT_DTYPES = ("int32", "int64", "float32", "float64")
INDEX_DTYPES = ("int32", "int64")
NO_GPU = "no GPU"

# Time caps (seconds) of each section on the device; the whole script stays under ~7 min.
CAPS = {"config": 20, "fallback": 25, "identity": 60, "speed": 90, "ksg": 110, "torch": 110}
KSG_EQ_CAP = 25  # the tree / FAISS comparison at 10^5, per dimension
KSG_1E6_CAP = {"faiss": 25, "tree": 15}  # per 10^6 case
MODEL_CAP = {"vae": 45, "transformer": 45, "lmi": 30}


# =========================================================================== child side

def emit(kind: str, payload) -> None:
    print(f"@@{kind} " + json.dumps(payload), flush=True)


def row(section, case, cpu="", gpu="", result="ok") -> None:
    emit("ROW", {"section": section, "case": case, "cpu": str(cpu), "gpu": str(gpu),
                 "result": result})


def fmt_s(t: float) -> str:
    return f"{t:.3g} s" if t < 100 else f"{t:.0f} s"


def best_time(fn, repeats: int, warmup: bool = True):
    """(best seconds of `repeats` runs after an optional warm-up, last result)."""
    out = fn() if warmup else None
    best = float("inf")
    for _ in range(repeats):
        out = None
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def digest(obj) -> str:
    """Hash of a result: format, shape, dtypes and the bytes of every array."""
    import scipy.sparse as sp

    h = hashlib.sha256()
    if isinstance(obj, (list, tuple)):
        for o in obj:
            h.update(digest(o).encode())
    elif sp.issparse(obj):
        h.update(f"{obj.format}{obj.shape}{obj.dtype}{obj.indices.dtype}"
                 f"{obj.indptr.dtype}".encode())
        for a in (obj.indptr, obj.indices, obj.data):
            h.update(np.ascontiguousarray(a).tobytes())
    else:
        a = np.asarray(obj)
        h.update(f"dense{a.shape}{a.dtype}{a.flags.f_contiguous}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".replace("\n", " ")[:160]


# ---------------------------------------------------------------- GPU kernel probe

class KernelProbe:
    """Runs a function under torch's profiler (CUDA activity, CUPTI) and lists the CUDA
    kernels launched meanwhile, by any library in the process. noisescale's own kernels are
    the proof that a call ran on the GPU (the package does not say which device ran a call).
    A torch kernel launched alongside is the control: if even it is not seen, the profiler
    cannot see kernels here and the probe says "unverified" instead of failing."""

    def __init__(self):
        import torch

        self.torch = torch

    def run(self, fn):
        from torch.profiler import ProfilerActivity, profile

        torch = self.torch
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            (torch.ones(64, device="cuda") * 2).sum().item()  # control kernel
            out = fn()
            torch.cuda.synchronize()
        names = self.kernel_names(prof)
        control = any(re.search(r"at::native|at6native|elementwise|reduce", n) for n in names)
        return out, [n for n in names if "noisescale" in n], control

    @staticmethod
    def kernel_names(prof) -> list[str]:
        from torch.autograd import DeviceType

        try:
            events = prof.profiler.kineto_results.events()
            return [e.name() for e in events if e.device_type() == DeviceType.CUDA]
        except Exception:  # another torch version: the parsed events
            return [e.name for e in prof.events() if e.device_type == DeviceType.CUDA]


# ---------------------------------------------------------------- section: config

def child_config(p):
    import contextlib
    import io

    import noisescale as ns
    from noisescale import _core

    cfg = _core.build_config()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ns.show_config()
    gpu_run = not p["cpu_only"]
    row("config", "noisescale imported from", os.path.dirname(ns.__file__), "", "info")
    row("config", "version / compiler / SIMD",
        f"{cfg['version']} / {cfg['compiler']} / {cfg['simd']}", "", "info")
    row("config", "OpenMP threads", cfg["openmp_max_threads"], "", "info")
    cuda_ok = bool(cfg["cuda_compiled"]) and cfg["cuda_devices"] > 0
    gpu_txt = (f"compiled: {cfg['cuda_compiled']}, devices: {cfg['cuda_devices']} "
               f"({', '.join(cfg['cuda_device_names']) or '-'})")
    row("config", "CUDA kernels", "", gpu_txt,
        "ok" if cuda_ok or not gpu_run else "FAIL: no usable GPU for the thinning kernels")
    try:
        import torch

        t_cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if t_cuda else NO_GPU
        row("config", "torch", torch.__version__, f"CUDA {torch.version.cuda}: {name}",
            "ok" if t_cuda or not gpu_run else "FAIL: torch sees no CUDA device")
    except ImportError as e:
        row("config", "torch", "not installed", "", f"FAIL: {reason(e)}")
    try:
        import faiss

        gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
        build = "GPU build" if hasattr(faiss, "StandardGpuResources") else "CPU-only build"
        row("config", "faiss", f"{faiss.__version__} ({build})", f"GPUs: {gpus}",
            "ok" if gpus or not gpu_run else "FAIL: faiss cannot use a GPU")
    except ImportError as e:
        row("config", "faiss", "not installed", "", f"FAIL: {reason(e)}")
    auto = ns.build_info()["device_auto"]
    row("config", "device='auto' (build_info)", ", ".join(f"{k} -> {v}" for k, v in auto.items()),
        "", "info")
    emit("RESULT", {"show_config": buf.getvalue(), "simd": cfg["simd"],
                    "cuda_usable": cuda_ok, "nproc": os.cpu_count()})


# ---------------------------------------------------------------- section: fallback

def _expect_error(what, fn, backend_words):
    """A RuntimeError whose message names device='cuda' and a reason."""
    try:
        fn()
    except RuntimeError as e:
        msg = str(e)
        named = "cuda" in msg.lower() and any(w in msg for w in backend_words)
        row("fallback", f"{what}, device='cuda', no usable GPU", "", msg[:220],
            "ok" if named else f"FAIL: the error does not name the reason: {msg[:80]}")
        return
    except Exception as e:  # noqa: BLE001
        row("fallback", f"{what}, device='cuda', no usable GPU", "", reason(e),
            "FAIL: not a RuntimeError")
        return
    row("fallback", f"{what}, device='cuda', no usable GPU", "", "ran",
        "FAIL: ran without a usable GPU (silent fallback)")


def child_fallback_nogpu(p):
    """Run with CUDA_VISIBLE_DEVICES="" (set by the parent): nothing may run on 'cuda'."""
    import noisescale as ns
    from noisescale import mi, models
    from noisescale._internal.devices import resolve_device

    X = np.arange(12, dtype=np.int64).reshape(3, 4)
    why_thin = ("built without CUDA", "no CUDA device is visible")
    _expect_error("thin", lambda: ns.thin(X, 0.5, device="cuda"), why_thin)
    _expect_error("thin_series", lambda: ns.thin_series(X, [0.5, 0.2], device="cuda"), why_thin)
    _expect_error("downsample_to", lambda: ns.downsample_to(X, 3, device="cuda"), why_thin)
    why_torch = ("torch sees no CUDA device", "CPU-only build")
    _expect_error("models.get('vae')", lambda: models.get("vae", device="cuda"), why_torch)
    _expect_error("models.get('transformer')",
                  lambda: models.get("transformer", device="cuda"), why_torch)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    _expect_error("mi.lmi", lambda: mi.lmi(x, x, epochs=1, device="cuda"), why_torch)
    try:
        import faiss  # noqa: F401

        _expect_error("faiss (resolve_device)", lambda: resolve_device("cuda", "faiss"),
                      ("CPU-only build", "faiss sees no GPU"))
    except ImportError as e:
        row("fallback", "faiss (resolve_device)", "", reason(e), "FAIL: faiss not installed")
    auto = ns.build_info()["device_auto"]
    bad = {k: v for k, v in auto.items() if v != "cpu"}
    row("fallback", "device='auto' without a usable GPU records",
        ", ".join(f"{k} -> {v}" for k, v in auto.items()), "",
        "ok" if not bad else f"FAIL: auto chose {bad} without a usable GPU")
    out = ns.thin(X, 0.5, seed=1, device="auto")
    same = np.array_equal(out, ns.thin(X, 0.5, seed=1, device="cpu"))
    row("fallback", "thin(device='auto') without a GPU = device='cpu'", "equal" if same else
        "differs", "", "ok" if same else "FAIL")


def child_fallback_gpu(p):
    """With the GPU: device='cuda' is accepted by every backend and 'auto' records 'cuda'."""
    import noisescale as ns
    from noisescale._internal.devices import resolve_device

    try:
        import faiss  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        pass
    for backend in ("thinning", "torch", "faiss"):
        try:
            dev = resolve_device("cuda", backend)
            row("fallback", f"{backend}: device='cuda' with the GPU", "", dev,
                "ok" if dev == "cuda" else f"FAIL: resolved to {dev}")
        except Exception as e:  # noqa: BLE001
            row("fallback", f"{backend}: device='cuda' with the GPU", "", reason(e), "FAIL")
    auto = ns.build_info()["device_auto"]
    bad = {k: v for k, v in auto.items() if v != "cuda"}
    row("fallback", "device='auto' with the GPU records", "",
        ", ".join(f"{k} -> {v}" for k, v in auto.items()),
        "ok" if not bad else f"FAIL: auto would run {bad} on the CPU")


# ---------------------------------------------------------------- section: identity

def _base(rows, cols, density, seed, big):
    """indptr, columns, int64 counts of a CSR matrix; every 5th row is empty."""
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, cols)) < density
    mask[::5] = False
    r, c = np.nonzero(mask)
    if big:  # large counts: n p >= 10 for every fraction used, so BTRS
        vals = rng.integers(1000, 1_000_000, size=r.size)
    else:
        vals = 1 + rng.poisson(np.exp(rng.normal(-0.3, 1.3, size=r.size)))
        hot = rng.random(r.size) < 0.03
        vals[hot] = rng.integers(20, 5000, size=int(hot.sum()))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows))])
    return indptr, c, vals.astype(np.int64), (rows, cols)


def _csr(base, vdt, idt, *, huge=False):
    import scipy.sparse as sp

    indptr, cols, vals, shape = base
    vals = vals.copy()
    if huge and vdt in ("int64", "float64"):  # counts beyond 2^32 where the dtype holds them
        vals[::7] = 2**40 + np.arange(vals[::7].size)
    X = sp.csr_matrix((vals.astype(vdt), cols.astype(idt), indptr.astype(idt)), shape=shape)
    X.indices, X.indptr = cols.astype(idt), indptr.astype(idt)  # scipy may narrow int64
    return X


def _csc(X, idt):
    Y = X.tocsc()
    Y.indices, Y.indptr = Y.indices.astype(idt), Y.indptr.astype(idt)
    return Y


def identity_cases(quick: bool):
    """[(group, label, marker kernel, fn(device, threads))], built the same in every child."""
    import noisescale as ns

    if quick:
        base = _base(120, 150, 0.10, 11, False)
        big = _base(40, 60, 0.25, 12, True)
    else:
        base = _base(400, 600, 0.08, 11, False)
        big = _base(120, 200, 0.20, 12, True)
    empty = (np.zeros(31, dtype=np.int64), np.zeros(0, dtype=np.int64),
             np.zeros(0, dtype=np.int64), (30, 40))
    totals = np.add.reduceat(base[2], base[0][:-1])[np.diff(base[0]) > 0]
    T = int(np.median(totals) // 3)
    rng = np.random.default_rng(5)
    per_cell = rng.integers(0, 2 * T + 1, size=base[3][0])
    big_totals = np.add.reduceat(big[2], big[0][:-1])[np.diff(big[0]) > 0]
    T_big = int(np.median(big_totals) // 4)
    q, series = 0.37, [0.8, 0.37, 0.05]
    cases = []

    def add(group, label, marker, fn):
        cases.append((group, label, marker, fn))

    for vdt in COUNT_DTYPES:
        for idt in INDEX_DTYPES:
            pair = f"{vdt}/{idt}"
            X = _csr(base, vdt, idt)
            C = _csc(X, idt)
            B = _csr(big, vdt, idt, huge=True)
            E = _csr(empty, vdt, idt)
            sk = "scatter_kept"
            add("thin CSR", pair, sk, lambda d, t, X=X: ns.thin(X, q, seed=3, device=d, threads=t))
            add("thin CSR keep_zeros", pair, sk, lambda d, t, X=X: ns.thin(
                X, q, seed=3, keep_zeros=True, device=d, threads=t))
            add("thin CSR row_offset=10^9", pair, sk, lambda d, t, X=X: ns.thin(
                X, q, seed=3, row_offset=10**9, device=d, threads=t))
            add("thin CSC", pair, sk, lambda d, t, C=C: ns.thin(C, q, seed=3, device=d, threads=t))
            add("thin_series CSR", pair, sk, lambda d, t, X=X: ns.thin_series(
                X, series, seed=4, device=d, threads=t))
            add("thin_series CSC keep_zeros", pair, sk, lambda d, t, C=C: ns.thin_series(
                C, series, seed=4, keep_zeros=True, device=d, threads=t))
            add("downsample_to CSR", pair, sk, lambda d, t, X=X: ns.downsample_to(
                X, T, seed=5, device=d, threads=t))
            add("downsample_to CSR per-cell targets", pair, sk, lambda d, t, X=X: ns.downsample_to(
                X, per_cell, seed=5, device=d, threads=t))
            add("downsample_to CSC keep_zeros", pair, sk, lambda d, t, C=C: ns.downsample_to(
                C, T, seed=5, keep_zeros=True, device=d, threads=t))
            add("large counts (BTRS): thin_series", pair, sk, lambda d, t, B=B: ns.thin_series(
                B, [0.9, 0.5, 0.01], seed=6, device=d, threads=t))
            add("large counts: downsample_to", pair, sk, lambda d, t, B=B: ns.downsample_to(
                B, T_big, seed=6, device=d, threads=t))
            add("all rows empty (30 x 40, nnz 0)", pair, sk, lambda d, t, E=E: [
                ns.thin(E, q, device=d, threads=t), ns.downsample_to(E, 3, device=d, threads=t)])
    for vdt in COUNT_DTYPES:
        D = _csr(base, vdt, "int64").toarray()
        F = np.asfortranarray(D)
        DB = _csr(big, vdt, "int64", huge=True).toarray()
        add("dense thin (C order)", vdt, "thin_dense_entries",
            lambda d, t, D=D: ns.thin(D, q, seed=7, device=d, threads=t))
        add("dense thin (F order)", vdt, "thin_dense_entries",
            lambda d, t, F=F: ns.thin(F, q, seed=7, device=d, threads=t))
        add("dense thin_series", vdt, "thin_dense_entries",
            lambda d, t, D=D: ns.thin_series(D, series, seed=8, device=d, threads=t))
        add("dense large counts (BTRS): thin", vdt, "thin_dense_entries",
            lambda d, t, DB=DB: ns.thin(DB, 0.5, seed=9, device=d, threads=t))
        add("dense downsample_to per-cell targets", vdt, "downsample_dense_rows",
            lambda d, t, D=D: ns.downsample_to(D, per_cell, seed=10, device=d, threads=t))
        add("dense downsample_to (F order)", vdt, "downsample_dense_rows",
            lambda d, t, F=F: ns.downsample_to(F, T, seed=10, device=d, threads=t))
    return cases


def _probed(probe, fn, out):
    """probe.run(fn), or fn() alone (kernels unverified) when the profiler itself fails."""
    try:
        return probe.run(fn)
    except Exception as e:  # noqa: BLE001
        out.setdefault("probe_errors", []).append(reason(e))
        return fn(), [], False


def child_identity(p):
    """CPU hashes (all threads, 1 thread) and, with p['gpu'], GPU hashes with a kernel probe.
    With p['hashes_only']: the all-thread CPU hashes alone (the SIMD-cap children)."""
    from noisescale import _core

    cases = identity_cases(p["quick"])
    out = {"simd": _core.build_config()["simd"], "cases": {}}
    for group, label, _, fn in cases:
        key = f"{group} | {label}"
        rec = {}
        try:
            rec["cpu"] = digest(fn("cpu", None))
            if not p.get("hashes_only"):
                rec["cpu1"] = digest(fn("cpu", 1))
        except Exception as e:  # noqa: BLE001
            rec["error"] = reason(e)
        out["cases"][key] = rec
    if p.get("gpu"):
        probe = KernelProbe()
        groups: dict[str, list] = {}
        for case in cases:
            groups.setdefault(case[0], []).append(case)
        for group, members in groups.items():
            def run_all(members=members):
                res = {}
                for _, label, _, fn in members:
                    try:
                        res[label] = digest(fn("cuda", None))
                    except Exception as e:  # noqa: BLE001
                        res[label] = "error: " + reason(e)
                return res

            res, names, control = _probed(probe, run_all, out)
            marker = members[0][2]
            seen = sum(marker in n for n in names)
            for _, label, _, _ in members:
                out["cases"][f"{group} | {label}"]["gpu"] = res[label]
            out.setdefault("kernels", {})[group] = {"calls": len(members), "seen": seen,
                                                    "control": control, "marker": marker}
        # device="auto" records cuda and runs there
        import noisescale as ns

        X = _csr(_base(200, 300, 0.1, 13, False), "float32", "int32")
        auto = ns.build_info()["device_auto"]["thinning"]
        res, names, control = _probed(
            probe, lambda: digest(ns.thin(X, 0.3, seed=2, device="auto")), out)
        cpu = digest(ns.thin(X, 0.3, seed=2, device="cpu"))
        out["auto"] = {"recorded": auto, "gpu_kernels": sum("scatter_kept" in n for n in names),
                       "control": control, "equal": res == cpu}
    emit("RESULT", out)


# ---------------------------------------------------------------- section: speed

def child_speed(p):
    import scipy.sparse as sp

    sys.path.insert(0, HERE)
    from bench_thin import make_counts

    cells, per_cell = (2_000, 200) if p["quick"] else (20_000, 2_000)
    t0 = time.perf_counter()
    X = make_counts(cells, per_cell, 30_000, seed=0)
    row("speed", f"matrix {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz / 1e6:.3g} M entries "
        f"(bench_thin.py, float32/int32)", f"built in {fmt_s(time.perf_counter() - t0)}", "",
        "info")
    _speed_case(X, "", 3, p["gpu"])
    stack = 10
    X = sp.csr_matrix((np.tile(X.data, stack), np.tile(X.indices, stack),
                       np.arange(0, X.nnz * stack + 1, per_cell, dtype=np.int64)),
                      shape=(X.shape[0] * stack, X.shape[1]), copy=False)
    if X.nnz < 2**31:
        X.indptr = X.indptr.astype(np.int32)
    _speed_case(X, f" (stacked {stack}x)", 2, p["gpu"])


def _speed_case(X, note: str, reps: int, gpu: bool, q: float = 0.1) -> None:
    import noisescale as ns

    threads = ns.build_info()["openmp_max_threads"]
    label = f"{X.nnz / 1e6:.3g} M entries, {X.shape[0]:,} x {X.shape[1]:,}{note}"
    t_cpu, out_cpu = best_time(lambda: ns.thin(X, q, seed=0, device="cpu"), reps)
    cpu_txt = f"{fmt_s(t_cpu)} ({X.nnz / t_cpu / 1e6:,.0f} M/s, {threads} thr)"
    if gpu:
        t_gpu, out_gpu = best_time(lambda: ns.thin(X, q, seed=0, device="cuda"), reps)
        equal = all(np.array_equal(getattr(out_cpu, a), getattr(out_gpu, a))
                    for a in ("indptr", "indices", "data"))
        row("speed", f"thin q={q}: {label}", cpu_txt,
            f"{fmt_s(t_gpu)} ({X.nnz / t_gpu / 1e6:,.0f} M/s, {t_cpu / t_gpu:.1f}x CPU)",
            "ok" if equal else "FAIL: GPU output differs from CPU")
        del out_gpu
    else:
        row("speed", f"thin q={q}: {label}", cpu_txt, NO_GPU, "ok")
    del out_cpu
    t_mem, _ = best_time(lambda: X.data.copy(), 3)
    gpu_txt = NO_GPU
    if gpu:
        import torch

        def upload():
            a = torch.from_numpy(X.data).to("cuda")
            b = torch.from_numpy(X.indices).to("cuda")
            torch.cuda.synchronize()
            return a, b

        t_up, (dev_data, _) = best_time(upload, 2)

        def dev_copy():
            c = dev_data.clone()
            torch.cuda.synchronize()
            return c

        t_dev, _ = best_time(dev_copy, 5)
        gpu_txt = (f"device clone {t_dev * 1e3:.3g} ms ({X.nnz / t_dev / 1e9:.1f} G entries/s); "
                   f"H2D upload of data+indices {fmt_s(t_up)}")
        del dev_data
        torch.cuda.empty_cache()
    row("speed", f"X.data.copy(): {label}",
        f"host {t_mem * 1e3:.3g} ms ({X.nnz / t_mem / 1e9:.2f} G entries/s)", gpu_txt, "info")


# ---------------------------------------------------------------- section: ksg

def gaussian_pair(n: int, d: int, seed: int, rho: float = 0.6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y, -d * 0.5 * np.log2(1 - rho**2)


def child_ksg(p):
    """Each case of p['cases'] ([n, d, knn]): one RESULT with the estimate and seconds."""
    from noisescale.mi import ksg
    from noisescale.mi.ksg import _faiss_device

    for n, d, knn in p["cases"]:
        x, y, _ = gaussian_pair(n, d, seed=n + d)
        where = "C++ tree (CPU)" if knn == "tree" else f"faiss on {_faiss_device()}"
        t0 = time.perf_counter()
        value = ksg(x, y, knn=knn)
        emit("RESULT", {"case": [n, d, knn], "mi": value,
                        "seconds": time.perf_counter() - t0, "where": where})


# ---------------------------------------------------------------- section: torch

def nb_counts(cells: int, genes: int, seed: int):
    """Negative binomial counts of 8 cell types (every gene expressed in some cell)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(-1.0, 1.5, size=genes))
    types = np.exp(rng.normal(0, 0.8, size=(8, genes)))
    label = rng.integers(0, 8, size=cells)
    size = np.exp(rng.normal(0, 0.3, size=(cells, 1)))
    mu = base * types[label] * size * 2.0
    theta = 5.0
    X = rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float32)
    X[0] = 1  # every gene expressed: the models keep all genes, no HVG step, so scanpy is never imported
    return sp.csr_matrix(X)


def child_model(p):
    """Each model of p['models'], fitted once per entry of p['devices']: one RESULT each."""
    import torch

    if p["quick"]:  # a smoke test on a shared machine: oversubscribed OpenMP spins for seconds
        torch.set_num_threads(1)
    for name in p["models"]:
        t0 = time.perf_counter()
        try:
            what, runs = _fit_runs(name, p["quick"], p["devices"])
        except Exception as e:  # noqa: BLE001
            emit("RESULT", {"model": name, "error": reason(e)})
            continue
        emit("RESULT", {"model": name, "what": what, "runs": runs,
                        "threads": torch.get_num_threads(),
                        "seconds": time.perf_counter() - t0})


def _fit_runs(name, quick, devices):
    from noisescale import mi, models

    runs = []
    if name == "lmi":
        n, dim, epochs = (1_000, 10, 2) if quick else (20_000, 100, 8)
        rng = np.random.default_rng(1)
        z = rng.standard_normal((n, 2))
        wz = rng.standard_normal((2, 2))
        x = z @ rng.standard_normal((2, dim)) + 0.1 * rng.standard_normal((n, dim))
        y = (z @ wz) @ rng.standard_normal((2, dim)) + 0.1 * rng.standard_normal((n, dim))
        what = f"{n:,} samples, {dim} + {dim} dims, {epochs} epochs"
        for dev in devices:
            r = mi.lmi(x, y, epochs=epochs, patience=1000, seed=0, device=dev)
            h = r.history
            runs.append({"device": dev, "epoch_s": h["seconds"] / h["epochs_run"],
                         "epochs": h["epochs_run"],
                         "digest": digest([r.zx, r.zy, np.array([r.mi])]), "mi": r.mi})
    else:
        if name == "vae":
            cells, genes, epochs = (300, 100, 2) if quick else (20_000, 2_000, 4)
            kw = {}
        else:
            cells, genes, epochs = (200, 100, 1) if quick else (5_000, 2_000, 2)
            kw = {"max_len": 32, "width": 32, "n_heads": 2} if quick else {}
        X = nb_counts(cells, genes, seed=2)
        what = f"{cells:,} cells x {genes:,} genes, {epochs} epochs"
        for dev in devices:
            m = models.get(name, n_top_genes=genes, epochs=epochs, patience=1000, device=dev,
                           **kw)
            m.fit(X, seed=0)
            h = m.history
            emb = m.embed(X[: min(cells, 2000)])
            runs.append({"device": dev, "epoch_s": h["seconds"] / h["epochs_run"],
                         "epochs": h["epochs_run"],
                         "digest": digest([emb, np.array(h["val_loss"])])})
    return what, runs


CHILDREN = {"config": child_config, "fallback_nogpu": child_fallback_nogpu,
            "fallback_gpu": child_fallback_gpu, "identity": child_identity,
            "speed": child_speed, "ksg": child_ksg, "model": child_model}


# =========================================================================== parent side

class Run:
    def __init__(self, args):
        self.args = args
        self.gpu = not args.cpu_only
        self.rows: list[dict] = []
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + args.budget

    def add(self, section, case, cpu="", gpu="", result="ok"):
        r = {"section": section, "case": case, "cpu": str(cpu), "gpu": str(gpu),
             "result": result}
        self.rows.append(r)
        print(f"  [{section}] {case}: {result}" + (f" | cpu {cpu}" if cpu else "")
              + (f" | gpu {gpu}" if gpu else ""), flush=True)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def child(self, name, params, cap, env=None, section=None, what=None, strict=True):
        """Run one child; its rows are added, its RESULT returned (None if it failed or hit
        the cap, which adds a FAIL row when `strict`, else a skipped row)."""
        cap = max(1.0, min(cap, self.left()))
        full_env = dict(os.environ, **(env or {}))
        cmd = [sys.executable, SCRIPT, "--child", name, "--params", json.dumps(params)]
        t0 = time.perf_counter()
        timed_out = False
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, env=full_env)
            out, err, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            rc, timed_out = None, True
        result, self.results = None, []
        for line in out.splitlines():
            if line.startswith("@@ROW "):
                r = json.loads(line[6:])
                self.add(r["section"], r["case"], r["cpu"], r["gpu"], r["result"])
            elif line.startswith("@@RESULT "):
                result = json.loads(line[9:])
                self.results.append(result)
        section = section or name
        what = what or name
        if timed_out:
            msg = f"stopped at its {cap:.0f} s cap"
            self.add(section, what, "", "", f"FAIL: {msg}" if strict else f"skipped: {msg}")
            return None
        if rc != 0:
            tail = " / ".join(err.strip().splitlines()[-3:])[:200]
            self.add(section, what, "", "", f"FAIL: child exited {rc}: {tail}")
            return None
        self.last_seconds = time.perf_counter() - t0
        return result

    # ------------------------------------------------------------------ sections
    def config(self):
        res = self.child("config", {"cpu_only": not self.gpu}, CAPS["config"])
        self.info = res or {}
        if res:
            print(res["show_config"].rstrip())

    def fallback(self):
        self.child("fallback_nogpu", {}, CAPS["fallback"], env={"CUDA_VISIBLE_DEVICES": ""},
                   section="fallback", what="no-GPU errors")
        if self.gpu:
            self.child("fallback_gpu", {}, max(5.0, CAPS["fallback"] / 2), section="fallback",
                       what="with the GPU")

    def identity(self):
        quick = self.args.quick
        cap = CAPS["identity"]
        end = time.perf_counter() + cap
        main = self.child("identity", {"quick": quick, "gpu": self.gpu}, cap,
                          section="identity", what="CPU and GPU hashes")
        if main is None:
            return
        native = main["simd"]
        caps = [c for c in ("avx2", "scalar") if c != native and not (native == "scalar")]
        capped = {}
        for c in caps:
            r = self.child("identity", {"quick": quick, "hashes_only": True},
                           max(1.0, end - time.perf_counter()), env={"NOISESCALE_SIMD": c},
                           section="identity", what=f"CPU hashes, NOISESCALE_SIMD={c}")
            if r is not None:
                capped[f"{r['simd']}"] = r["cases"]
        groups: dict[str, list] = {}
        for key, rec in main["cases"].items():
            group, label = key.split(" | ")
            groups.setdefault(group, []).append((label, key, rec))
        kernels = main.get("kernels", {})
        for group, members in groups.items():
            bad, n = [], len(members)
            for label, key, rec in members:
                if "error" in rec:
                    bad.append(f"{label}: {rec['error']}")
                    continue
                if rec["cpu1"] != rec["cpu"]:
                    bad.append(f"{label}: 1 thread != all threads")
                for simd, hashes in capped.items():
                    if hashes.get(key, {}).get("cpu") != rec["cpu"]:
                        bad.append(f"{label}: SIMD {simd} differs")
                if self.gpu and rec.get("gpu") != rec["cpu"]:
                    bad.append(f"{label}: GPU {rec.get('gpu')} != CPU {rec['cpu']}")
            simd_txt = "/".join([native, *capped]) if capped else native
            cpu_txt = f"{n} cases; 1 thr = all thr; SIMD {simd_txt}"
            if self.gpu:
                k = kernels.get(group, {})
                gpu_txt = f"{n - sum(1 for b in bad if 'GPU' in b)}/{n} hashes = CPU"
                if not k.get("control"):
                    gpu_txt += "; kernels unverified (profiler saw none)"
                elif k["seen"] < k["calls"]:
                    bad.append(f"{k['marker']} ran for {k['seen']} of {k['calls']} calls "
                               "(silent CPU fallback)")
                else:
                    gpu_txt += f"; {k['marker']} seen {k['seen']}x"
            else:
                gpu_txt = NO_GPU
            self.add("identity", group, cpu_txt, gpu_txt,
                     "ok" if not bad else "FAIL: " + "; ".join(bad)[:300])
        if self.gpu and "auto" in main:
            a = main["auto"]
            ok = a["recorded"] == "cuda" and a["equal"] and (a["gpu_kernels"] > 0
                                                              or not a["control"])
            self.add("identity", "thin(device='auto')", "",
                     f"build_info: thinning -> {a['recorded']}; GPU kernels: "
                     f"{a['gpu_kernels'] if a['control'] else 'unverified'}; = CPU: {a['equal']}",
                     "ok" if ok else "FAIL: auto did not run on the GPU as recorded")
        for e in main.get("probe_errors", [])[:3]:
            self.add("identity", "kernel probe", "", e, "info")

    def speed(self):
        self.child("speed", {"quick": self.args.quick, "gpu": self.gpu}, CAPS["speed"],
                   section="speed", what="thinning speed", strict=False)

    def ksg(self):
        quick = self.args.quick
        end = time.perf_counter() + CAPS["ksg"]
        if quick:
            n_eq, n_big = 2_000, 3_000
        elif self.gpu:
            n_eq, n_big = 100_000, 1_000_000
        else:  # FAISS brute force on a few CPU cores: 10^5 would take minutes
            n_eq, n_big = 10_000, 100_000
        # (cases of one child, its cap): the comparison size in one child per dimension, then
        # each large run alone under its own cap, FAISS first; --quick: one child for all.
        plan = [([(n_eq, d, "tree"), (n_eq, d, "faiss")], KSG_EQ_CAP) for d in (8, 16)]
        plan += [([(n_big, d, knn)], KSG_1E6_CAP[knn]) for knn in ("faiss", "tree")
                 for d in (8, 16)]
        if quick:
            plan = [([c for cases, _ in plan for c in cases], None)]
        res = {}
        for cases, cap in plan:
            left = end - time.perf_counter()
            what = ", ".join(f"N={n:,} {d}+{d} {k}" for n, d, k in cases)
            if left < 2:
                self.add("ksg", what, "", "", "skipped: section time cap")
                continue
            self.child("ksg", {"cases": cases}, min(left, cap or left), section="ksg",
                       what=what, strict=False)
            for r in self.results:
                res[tuple(r["case"])] = r
        for d in (8, 16):
            truth = gaussian_pair(2, d, 0)[2]
            for n in (n_eq, n_big):
                tree, fa = res.get((n, d, "tree")), res.get((n, d, "faiss"))
                cpu_txt = (f"tree {fmt_s(tree['seconds'])}, {tree['mi']:.4f} bits"
                           if tree else "tree: not timed (cap)")
                fa_txt = (f"{fa['where']} {fmt_s(fa['seconds'])}, {fa['mi']:.4f} bits"
                          if fa else "faiss: not timed (cap)")
                if self.gpu and fa and "cuda" not in fa["where"]:
                    result = "FAIL: knn='faiss' did not run on the GPU"
                elif tree and fa:
                    diff = abs(tree["mi"] - fa["mi"])
                    result = ("ok" if diff <= 1e-9 else f"FAIL: |tree - faiss| = {diff:.3g}")
                    if diff <= 1e-9:
                        result += (f" ({'bit-identical' if diff == 0 else 'equal to 1e-9'}; "
                                   f"faiss {tree['seconds'] / fa['seconds']:.2g}x tree speed)")
                elif n == n_eq:
                    result = "FAIL: no tree / faiss comparison at this N"
                else:
                    result = "skipped: a run hit its cap (no comparison)"
                if not self.gpu:
                    fa_txt = f"{NO_GPU}; {fa_txt}"
                    result = result.replace("faiss ", "faiss-cpu ", 1)
                self.add("ksg", f"N={n:,}, {d}+{d} dims (true I = {truth:.3f} bits)",
                         cpu_txt, fa_txt, result)

    def torch(self):
        devices = ["cpu", "cuda", "cuda"] if self.gpu else ["cpu", "cpu"]
        names = ("vae", "transformer", "lmi")
        end = time.perf_counter() + CAPS["torch"]
        # --quick: one child (torch and scanpy imports once); else one per model.
        groups = [list(names)] if self.args.quick else [[n] for n in names]
        for group in groups:
            left = end - time.perf_counter()
            if len(group) == 1 and self.gpu:
                left = min(left, MODEL_CAP[group[0]])
            if left < 3:
                self.add("torch", ", ".join(group), "", "", "skipped: section time cap")
                continue
            self.child("model", {"models": group, "quick": self.args.quick,
                                 "devices": devices}, left, section="torch",
                       what=", ".join(group), strict=False)
            for r in self.results:
                self._model_row(r)

    def _model_row(self, r):
        if "error" in r:
            self.add("torch", r["model"], "", "", f"FAIL: {r['error']}")
            return
        runs = r["runs"]
        cpu = runs[0]
        cpu_txt = f"{cpu['epoch_s']:.3g} s/epoch ({r['threads']} thr)"
        repeat = len({x["digest"] for x in runs[1:]}) == 1
        again = "identical" if repeat else "DIFFERS"
        if self.gpu:
            g = runs[1]
            gpu_txt = (f"{g['epoch_s']:.3g} s/epoch ({cpu['epoch_s'] / g['epoch_s']:.1f}x "
                       f"CPU); seeded CUDA rerun {again}")
        else:
            gpu_txt = f"{NO_GPU}; seeded CPU rerun {again}"
        self.add("torch", f"{r['model']}: {r['what']}", cpu_txt, gpu_txt,
                 "ok" if repeat else "FAIL: a seeded run does not repeat")

    # ------------------------------------------------------------------ output
    def table(self) -> str:
        cols = ("section", "case", "cpu", "gpu", "result")
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in self.rows:
            lines.append("| " + " | ".join(r[c].replace("|", "/") for c in cols) + " |")
        return "\n".join(lines)

    def summary(self) -> tuple[str, int]:
        fails = [r for r in self.rows if r["result"].startswith("FAIL")]
        skipped = [r for r in self.rows if r["result"].startswith("skipped")]
        oks = [r for r in self.rows if r["result"].startswith("ok")]
        mode = "cpu-only" if not self.gpu else "GPU"
        text = (f"gpu_check ({mode}{', quick' if self.args.quick else ''}): {len(oks)} ok, "
                f"{len(fails)} failed, {len(skipped)} skipped, in "
                f"{time.perf_counter() - self.t0:.0f} s")
        return text, (1 if fails else 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--cpu-only", action="store_true",
                    help="the CPU half of every section, and the no-GPU errors")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds for the whole run; sections are cut when it runs out")
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        try:
            CHILDREN[args.child](json.loads(args.params))
        except Exception:
            traceback.print_exc()
            return 1
        return 0

    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown sections: {', '.join(unknown)}")
    run = Run(args)
    print(f"gpu_check: {'cpu-only' if args.cpu_only else 'GPU'} run"
          f"{' (quick)' if args.quick else ''}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, budget {args.budget:.0f} s", flush=True)
    for section in SECTIONS:
        if section not in chosen:
            continue
        if run.left() < 2:
            run.add(section, "(whole section)", "", "", "skipped: run budget spent")
            continue
        t = time.perf_counter()
        print(f"== {section}", flush=True)
        getattr(run, section)()
        print(f"   ({time.perf_counter() - t:.1f} s)", flush=True)
    text, status = run.summary()
    table = run.table()
    print()
    print(table)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            cfg = getattr(run, "info", {}).get("show_config", "")
            f.write(f"# noisescale gpu_check\n\n```\n{cfg.rstrip()}\n```\n\n{table}\n\n{text}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
