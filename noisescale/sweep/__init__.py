"""Experiments end to end: a configuration in, a table of MI measurements out.

:func:`load_config` reads and checks a TOML sweep configuration (:data:`CONFIG_REFERENCE`),
:func:`run_sweep` runs or resumes it (locally or on Dask) and :func:`read_results` reads a
results table back (the schema and the fits live in :mod:`noisescale.laws.results`).
:mod:`.images` runs the same experiment on digit images. The CLI's ``noisescale run / fit /
report / demo / images`` are built on these.
"""

from __future__ import annotations

from ..errors import Cancelled, ConfigError
from ..laws.results import RESULT_COLUMNS, TIMING_COLUMNS, read_results
from .config import CONFIG_REFERENCE, SweepConfig, load_config
from .runner import SweepResult, run_sweep

__all__ = [
    "CONFIG_REFERENCE", "Cancelled", "ConfigError", "RESULT_COLUMNS", "SweepConfig",
    "SweepResult", "TIMING_COLUMNS", "load_config", "read_results", "run_sweep",
]
