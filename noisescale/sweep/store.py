"""Where a sweep's results live: one file per finished job, merged into one tidy table.

Every file is written to a hidden temporary sibling and renamed into place, so a process
killed at any moment leaves either a complete job file or none; a re-run skips the jobs whose
files exist. The merged ``results.csv`` is rewritten the same way from the job files.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..io.atomic import write_atomic
from ..laws.results import results_table

class ResultStore:
    """The job files of a sweep under ``output/jobs``."""

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.jobs = self.output / "jobs"

    def create(self) -> None:
        self.jobs.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.json"

    def finished(self) -> set[str]:
        """Ids of the jobs whose result files exist."""
        if not self.jobs.is_dir():
            return set()
        return {p.stem for p in self.jobs.glob("*.json")}

    def save(self, job_id: str, rows: list[dict[str, Any]], run_id: str) -> None:
        """Record a finished job (atomically)."""
        write_atomic(self._path(job_id), json.dumps({"job": job_id, "run": run_id,
                                                     "rows": rows}, default=float))

    def record(self, job_id: str) -> dict[str, Any]:
        return json.loads(self._path(job_id).read_text())

    def table(self, job_ids: Iterable[str]) -> pd.DataFrame:
        """The rows of the given finished jobs as one table, in a stable order."""
        rows: list[dict[str, Any]] = []
        for job_id in job_ids:
            try:
                rows.extend(self.record(job_id)["rows"])
            except FileNotFoundError:
                continue
            except (ValueError, KeyError) as e:  # not ours: leave it, run the job again
                warnings.warn(f"ignoring unreadable job file {self._path(job_id)}: {e}",
                              stacklevel=2)
        return results_table(rows)

    def write_table(self, df: pd.DataFrame, name: str = "results.csv") -> Path:
        return write_atomic(self.output / name, df.to_csv(index=False))
