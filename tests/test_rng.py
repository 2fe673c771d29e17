"""The counter-based generator: Random123 known answers and SIMD/scalar agreement."""

import os
import subprocess
import sys

import pytest

from noisescale import _core


def test_philox_known_answers():
    # Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    zero = _core.philox4x32_10([0, 0, 0, 0], [0, 0])
    assert zero == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = 0xFFFFFFFF
    assert _core.philox4x32_10([ones] * 4, [ones, ones]) == [
        0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    assert _core.philox4x32_10(
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]
    ) == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


_SCRIPT = """
import hashlib, numpy as np, noisescale as ns, scipy.sparse as sp
rng = np.random.default_rng(3)
X = sp.random(300, 400, density=0.3, random_state=4, format="csr", dtype=np.float64)
X.data = np.floor(1 + rng.lognormal(0, 1.5, X.nnz))
X64 = X.astype(np.int32)
X64.indices, X64.indptr = X64.indices.astype(np.int64), X64.indptr.astype(np.int64)
outs = [ns.thin(X, 0.3, seed=9), *ns.thin_series(X, [0.7, 0.2, 0.05], seed=9),
        ns.downsample_to(X, 40, seed=9), ns.thin(X.toarray(), 0.8, seed=9),
        ns.thin(X, 0.3, seed=9, keep_zeros=True), ns.thin(X.tocsc(), 0.6, seed=9),
        ns.thin(X64, 0.3, seed=9), ns.thin(X.astype(np.float32), 0.3, seed=9)]
h = hashlib.sha256()
for o in outs:
    d = o.toarray() if sp.issparse(o) else o
    h.update(np.ascontiguousarray(d).tobytes())
print(ns.build_info()["simd"], h.hexdigest())
"""


def _run(simd: str | None, cwd) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("NOISESCALE_SIMD", None)
    if simd is not None:
        env["NOISESCALE_SIMD"] = simd
    # Run outside the source tree so the installed package (with its extension) is imported.
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, check=True, cwd=cwd).stdout.split()
    return out[0], out[1]


def test_simd_paths_give_identical_bits(tmp_path):
    best_isa, best = _run(None, tmp_path)
    results = {best_isa: best}
    for cap in ("avx2", "scalar"):
        isa, digest = _run(cap, tmp_path)
        results[isa] = digest
    if len(results) < 2:
        pytest.skip(f"this CPU has only the {best_isa} path: no other SIMD path to compare")
    assert "scalar" in results
    assert len(set(results.values())) == 1, results
