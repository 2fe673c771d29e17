"""Checks of scalar arguments shared by the whole package (one rule, one message each)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def check_seed(seed: Any) -> int:
    """Validate a ``seed=`` argument: an integer in [0, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def check_int(name: str, value: Any, minimum: int = 1, *,
              error: type[Exception] = ValueError) -> int:
    """Validate an integer option (sizes, epochs, ...) that must be >= ``minimum``; bools are
    not integers here. ``error`` is the exception class raised (e.g. a ConfigError)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None,
                 positive: bool = False, error: type[Exception] | None = None) -> float:
    """Validate a finite real option; ``minimum`` is inclusive, ``positive`` means > 0.

    A value that is not a real number (a string, a bool) raises TypeError, one out of range
    ValueError; with ``error`` (e.g. a ConfigError) both raise that class."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise (error or TypeError)(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if math.isfinite(v) and (minimum is None or v >= minimum) and (not positive or v > 0):
        return v
    bound = " > 0" if positive else (f" >= {minimum:g}" if minimum is not None else "")
    raise (error or ValueError)(f"{name} must be a finite number{bound}, got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    """Validate a True/False option (numpy bools too; 0 and 1 are not bools here)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_threads(threads: Any) -> int:
    """Validate a ``threads=`` argument; None gives 0, the OpenMP default (OMP_NUM_THREADS)."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)
