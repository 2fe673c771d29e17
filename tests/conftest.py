"""Shared helpers for the noisescale test suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a dataset in ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{name} not found in {SHARED_DATA}")
    return path


def random_counts(n_rows: int, n_cols: int, density: float = 0.2, seed: int = 0,
                  dtype=np.float32, index_dtype=np.int32, big: bool = True) -> sp.csr_matrix:
    """A canonical CSR matrix of UMI-like counts: mostly 1s, a heavy tail, a few huge values."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    rows, cols = np.nonzero(mask)
    vals = 1 + rng.poisson(rng.lognormal(-0.5, 1.2, size=rows.size))
    if big and rows.size:
        pick = rng.choice(rows.size, size=max(1, rows.size // 200), replace=False)
        vals[pick] = rng.integers(33, 5000, size=pick.size)  # BINV/BTRS paths
    X = sp.csr_matrix((vals.astype(dtype), (rows, cols)), shape=(n_rows, n_cols))
    X.sum_duplicates()
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


def same_matrix(A, B) -> bool:
    """Equal class, shape, dtypes and stored arrays (bit for bit)."""
    if type(A) is not type(B) or A.shape != B.shape:
        return False
    if sp.issparse(A):
        return (A.format == B.format and A.dtype == B.dtype
                and np.array_equal(A.indptr, B.indptr) and np.array_equal(A.indices, B.indices)
                and np.array_equal(A.data, B.data))
    return A.dtype == B.dtype and np.array_equal(A, B)
