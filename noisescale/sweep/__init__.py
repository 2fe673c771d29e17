"""Experiments end to end: a configuration in, a table of MI measurements out.

:func:`load_config` reads and checks a TOML sweep configuration (:data:`CONFIG_REFERENCE`),
:func:`run_sweep` runs or resumes it (locally or on Dask) and :func:`read_results` reads a
results table back. The CLI's ``noisescale run / fit / report / demo`` are built on these.
"""

from __future__ import annotations

from .config import CONFIG_REFERENCE, ConfigError, SweepConfig, load_config
from .runner import Cancelled, SweepResult, derive_seed, run_sweep
from .store import RESULT_COLUMNS, TIMING_COLUMNS, read_results

__all__ = [
    "CONFIG_REFERENCE", "Cancelled", "ConfigError", "RESULT_COLUMNS", "SweepConfig",
    "SweepResult", "TIMING_COLUMNS", "derive_seed", "load_config", "read_results", "run_sweep",
]
