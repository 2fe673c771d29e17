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
        (self.output / "cache" / "running").mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.json"

    def finished(self) -> set[str]:
        """Ids of the jobs whose result files exist."""
        if not self.jobs.is_dir():
            return set()
        return {p.stem for p in self.jobs.glob("*.json")}

    def save(self, job_id: str, rows: list[dict[str, Any]], run_id: str,
             fit: dict[str, Any] | None = None) -> None:
        """Record a finished job (atomically), with how its model was fitted (``fit``: the
        route, memory or stream, and the method)."""
        record = {"job": job_id, "run": run_id, "rows": rows}
        if fit is not None:
            record["fit"] = fit
        write_atomic(self._path(job_id), json.dumps(record, default=float))
        self.stage_path(job_id).unlink(missing_ok=True)

    def stage_path(self, job_id: str) -> Path:
        """Where a running job writes its stage (fitting, embedding, MI): a file in the run's
        cache, which goes with it."""
        return self.output / "cache" / "running" / job_id

    def stages(self) -> str:
        """The running jobs' stages, counted: 'fitting: epoch 3/20: 1, MI with protein: 1'."""
        seen: dict[str, int] = {}
        running = self.output / "cache" / "running"
        for path in running.iterdir() if running.is_dir() else ():
            try:
                text = path.read_text()
            except OSError:  # finished meanwhile
                continue
            seen[text] = seen.get(text, 0) + 1
        return ", ".join(f"{k}: {v}" for k, v in sorted(seen.items()))

    def fit_routes(self, job_ids: Iterable[str]) -> dict[str, int]:
        """How many of these finished jobs fitted in memory and how many from a stream (and
        with which method), from their job files."""
        counts: dict[str, int] = {}
        for job_id in job_ids:
            try:
                fit = self.record(job_id).get("fit", {"route": "memory"})
            except (OSError, ValueError):
                continue
            key = fit["route"] + (f" ({fit['method']})" if "method" in fit else "")
            counts[key] = counts.get(key, 0) + 1
        return counts

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
