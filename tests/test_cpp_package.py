"""The C++ side as other HPC code sees it: the installed CMake package, an example consumer
bit-identical to the Python binding, and the kernels under AddressSanitizer + UBSan."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import noisescale as ns

ROOT = Path(__file__).resolve().parents[1]
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
CMAKE = shutil.which("cmake")


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_kernels_clean_under_address_and_ub_sanitizers(tmp_path):
    exe = tmp_path / "kernel_checks"
    run([CXX, "-std=c++17", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-fopenmp", "-ffp-contract=off",
         f"-I{ROOT / 'csrc' / 'include'}", str(ROOT / "tests" / "cpp" / "kernel_checks.cpp"),
         "-o", str(exe)])
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1"}
    out = run([str(exe)], env=env)
    assert out.strip().endswith("0 failed")


def parse_csr(lines):
    n_rows, n_cols, nnz = map(int, lines[0].split())
    indptr = np.array(lines[1].split(), dtype=np.int64)
    indices = np.array(lines[2].split(), dtype=np.int64)
    data = np.array(lines[3].split(), dtype=np.float64)
    assert indptr.size == n_rows + 1 and indices.size == data.size == nnz
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))


@pytest.mark.skipif(CMAKE is None or CXX is None, reason="needs cmake and a C++ compiler")
def test_installed_package_and_example_consumer_match_python(tmp_path):
    prefix = tmp_path / "prefix"
    build = tmp_path / "build"
    run([CMAKE, "-S", str(ROOT), "-B", str(build), "-DNOISESCALE_PYTHON=OFF",
         f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    run([CMAKE, "--install", str(build), "--component", "cpp"])
    assert (prefix / "include" / "noisescale" / "api.hpp").exists()
    config = list(prefix.glob("lib*/cmake/noisescale/noisescaleConfig.cmake"))
    assert config, "no noisescaleConfig.cmake installed"
    ex_build = tmp_path / "example"
    run([CMAKE, "-S", str(ROOT / "examples" / "cpp"), "-B", str(ex_build),
         f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"])
    run([CMAKE, "--build", str(ex_build)])

    rng = np.random.default_rng(5)
    X = sp.random(300, 200, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    X.data = np.floor(X.data * 40 + 1).astype(np.float32)
    X.data[::37] = 16_000_000  # large counts take the BTRS path
    matrix = tmp_path / "matrix.txt"
    matrix.write_text(f"{X.shape[0]} {X.shape[1]} {X.nnz}\n"
                      + " ".join(map(str, X.indptr)) + "\n"
                      + " ".join(map(str, X.indices)) + "\n"
                      + " ".join(str(int(v)) for v in X.data) + "\n")
    out = run([str(ex_build / "thin_csr"), str(matrix), "0.3", "12345", "50"]).splitlines()
    thinned, downsampled = parse_csr(out[:4]), parse_csr(out[4:8])
    for ours, theirs in ((thinned, ns.thin(X, 0.3, seed=12345)),
                         (downsampled, ns.downsample_to(X, 50, seed=12345))):
        assert np.array_equal(ours.indptr, theirs.indptr)
        assert np.array_equal(ours.indices, theirs.indices)
        assert np.array_equal(ours.data, theirs.data.astype(np.float64))
