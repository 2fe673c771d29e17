"""The CPU half of benchmarks/gpu_check.py runs (the smoke test of the prepared GPU check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_gpu_check_cpu_only_quick(tmp_path):
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-only", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    table = out.read_text()
    assert "| section | case | cpu | gpu | result |" in table
    for section in ("config", "fallback", "identity", "speed", "ksg", "torch"):
        assert f"| {section} |" in table, f"no {section} rows"
    # The no-GPU errors were checked for every backend, and nothing failed or was skipped.
    for what in ("thin", "models.get('vae')", "mi.lmi"):
        assert f"| fallback | {what}, device='cuda', no usable GPU |" in table
    assert "FAIL" not in table
    assert "| skipped" not in table
    assert "0 failed, 0 skipped" in proc.stdout


def test_gpu_check_rejects_unknown_section():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sections", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown sections" in proc.stderr
