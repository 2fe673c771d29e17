"""What this installation of noisescale was built with and what it can use."""

from __future__ import annotations

import numbers
import os
from typing import Any

from . import _core


def build_info() -> dict[str, Any]:
    """Version, compiler, OpenMP threads and CUDA availability of the compiled core."""
    info = dict(_core.build_config())
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    return info


def show_config() -> None:
    """Print how noisescale was built and which devices it will use."""
    info = build_info()
    threads = info["openmp_max_threads"]
    source = "OMP_NUM_THREADS" if info["omp_num_threads_env"] else "all cores"
    gpus = info["cuda_devices"]
    names = ", ".join(info["cuda_device_names"]) or "-"
    lines = [
        f"noisescale {info['version']}",
        f"  compiler     : {info['compiler']}",
        f"  OpenMP       : {'yes' if info['openmp'] else 'no'}, {threads} thread(s) ({source})",
        f"  CPU SIMD     : {info['simd']}",
        f"  CUDA compiled: {'yes' if info['cuda_compiled'] else 'no'}",
        f"  GPUs visible : {gpus} ({names})",
        f"  default device for device='auto': {'cuda' if gpus > 0 else 'cpu'}",
    ]
    print("\n".join(lines))


def check_seed(seed: Any) -> int:
    """Validate a ``seed=`` argument: an integer in [0, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Validate an integer option (sizes, epochs, ...) that must be >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def resolve_threads(threads: int | None) -> int:
    """Validate a ``threads=`` argument; 0 means the OpenMP default (OMP_NUM_THREADS)."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return threads


def resolve_device(device: str) -> str:
    """Validate a ``device=`` argument."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return device
