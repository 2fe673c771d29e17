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

from ..io import write_atomic

#: Columns of the results table, in order (a job adds one row per signal).
RESULT_COLUMNS = [
    "dataset", "signal", "model", "estimator", "n_cells", "fraction", "seed",
    "umis_per_cell", "train_umis_per_cell", "mi", "n_test", "fit_seconds", "embed_seconds",
    "mi_seconds", "job",
]
#: Columns that differ between runs of the same job (wall times).
TIMING_COLUMNS = ["fit_seconds", "embed_seconds", "mi_seconds"]


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
        df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
        order = ["dataset", "signal", "model", "n_cells", "seed", "fraction"]
        return df.sort_values(order, ascending=[True] * 5 + [False],
                              kind="stable").reset_index(drop=True)

    def write_table(self, df: pd.DataFrame, name: str = "results.csv") -> Path:
        return write_atomic(self.output / name, df.to_csv(index=False))


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """A results table from a sweep's output directory, a ``.csv`` or a ``.parquet`` file."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
        if not p.exists():
            raise FileNotFoundError(f"no results.csv in {path}: is it a sweep's output "
                                    "directory (noisescale run writes it)?")
    if not p.exists():
        raise FileNotFoundError(f"results not found: {p}")
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
    elif p.suffix in (".csv", ".tsv"):
        df = pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
    else:
        raise ValueError(f"results must be a directory, .csv, .tsv or .parquet, got {p}")
    missing = [c for c in ("umis_per_cell", "mi") if c not in df.columns]
    if missing:
        raise ValueError(f"{p} is not a results table: it has no column(s) {missing}")
    return df
