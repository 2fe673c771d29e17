"""benchmarks/bench_mi_calibration.py runs, resumes and merges (a smoke test on tiny tasks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_mi_calibration.py"


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_run_resume_and_merge(tmp_path):
    common = ["--n", "400", "--seeds", "2", "--no-bmi", "--threads", "1", "--resamples", "4",
              "--shuffles", "2"]
    # an exact task name selects that task alone (normal-sparse-3x3 is a substring of others)
    a = _bench(*common, "--methods", "ksg", "cca", "--tasks", "normal-sparse-3x3",
               "--csv", str(tmp_path / "a.csv"), cwd=tmp_path)
    runs = pd.read_csv(tmp_path / "a.runs.csv")
    assert set(runs["task"]) == {"normal-sparse-3x3"}
    assert len(runs) == 2 * 2 and (runs["error_msg"].isna()).all()
    assert "best noisescale vs best bmi" not in a.stdout  # no bmi: no comparison
    # resuming keeps every finished run and adds only the missing estimator
    _bench(*common, "--methods", "ksg", "cca", "cca+copula", "--tasks", "normal-sparse-3x3",
           "--csv", str(tmp_path / "a.csv"), "--resume", cwd=tmp_path)
    resumed = pd.read_csv(tmp_path / "a.runs.csv")
    assert len(resumed) == 3 * 2
    kept = resumed[resumed["estimator"] != "cca+copula"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[runs.columns], runs)
    # a second process on another task, then the two merged into one summary
    _bench(*common, "--methods", "cca", "cca+copula", "--tasks", "halfcube-normal-sparse-3x3",
           "--csv", str(tmp_path / "b.csv"), cwd=tmp_path)
    merged = _bench("--merge", str(tmp_path / "a.runs.csv"), str(tmp_path / "b.runs.csv"),
                    "--markdown", cwd=tmp_path).stdout
    assert "== normal-sparse-3x3" in merged and "== halfcube-normal-sparse-3x3" in merged
    assert "# Summary" in merged and "mean coverage" in merged
    md = [line for line in merged.splitlines() if line.startswith("| halfcube")]
    assert len(md) == 1 and "| cca+copula " in md[0]
