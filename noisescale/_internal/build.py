"""What this installation of noisescale was built with and what it can use."""

from __future__ import annotations

import os
from typing import Any

from .. import _core
from .devices import choices


def build_info() -> dict[str, Any]:
    """Version, compiler, OpenMP threads, CUDA availability of the compiled core, and what
    ``device="auto"`` resolves to for thinning, torch models and FAISS (those two only once
    torch or faiss has been imported)."""
    info = dict(_core.build_config())
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    info["device_auto"] = choices()
    return info


def show_config() -> None:
    """Print how noisescale was built and which devices it will use."""
    info = build_info()
    threads = info["openmp_max_threads"]
    source = "OMP_NUM_THREADS" if info["omp_num_threads_env"] else "all cores"
    gpus = info["cuda_devices"]
    names = ", ".join(info["cuda_device_names"]) or "-"
    auto = ", ".join(f"{k} -> {v}" for k, v in info["device_auto"].items())
    lines = [
        f"noisescale {info['version']}",
        f"  compiler     : {info['compiler']}",
        f"  OpenMP       : {'yes' if info['openmp'] else 'no'}, {threads} thread(s) ({source})",
        f"  CPU SIMD     : {info['simd']}",
        f"  CUDA compiled: {'yes' if info['cuda_compiled'] else 'no'}",
        f"  GPUs visible : {gpus} ({names})",
        f"  device='auto': {auto}",
    ]
    print("\n".join(lines))
