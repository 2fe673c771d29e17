"""C++-level checks of the header-only core, compiled with the system compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
@pytest.mark.parametrize("simd", [None, "avx2", "scalar"])
def test_simd_batches_equal_scalar(tmp_path, simd):
    exe = tmp_path / "simd_equivalence"
    subprocess.run(
        [CXX, "-std=c++17", "-O2", "-ffp-contract=off", f"-I{ROOT / 'csrc' / 'include'}",
         str(ROOT / "tests" / "cpp" / "simd_equivalence.cpp"), "-o", str(exe)],
        check=True, capture_output=True, text=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "NOISESCALE_SIMD"}
    if simd:
        env["NOISESCALE_SIMD"] = simd
    run = subprocess.run([str(exe)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 mismatches" in run.stdout
