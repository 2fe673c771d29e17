"""Property-based tests (hypothesis) of the kernels over random CSR shapes, dtypes and counts,
including empty rows and matrices, counts near 2^31 - 1 and int64 indices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import noisescale as ns
from noisescale import _core

MAX_COUNT = {np.int32: 2**31 - 1, np.int64: 2**31 - 1, np.float32: 2**24, np.float64: 2**31 - 1}
PROFILE = settings(max_examples=60, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])


@st.composite
def csr_matrices(draw):
    n_rows = draw(st.integers(0, 12))
    n_cols = draw(st.integers(1, 12))
    value_dtype = draw(st.sampled_from([np.int32, np.int64, np.float32, np.float64]))
    index_dtype = draw(st.sampled_from([np.int32, np.int64]))
    top = MAX_COUNT[value_dtype]
    count = st.one_of(st.integers(0, 5), st.integers(0, 100_000), st.integers(top - 3, top))
    dense = np.zeros((n_rows, n_cols), dtype=np.int64)
    mask = draw(st.lists(st.booleans(), min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    values = draw(st.lists(count, min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    if n_rows:
        dense[np.array(mask, dtype=bool).reshape(n_rows, n_cols)] = np.array(
            values, dtype=np.int64).reshape(n_rows, n_cols)[
                np.array(mask, dtype=bool).reshape(n_rows, n_cols)]
    X = sp.csr_matrix(dense.astype(value_dtype))
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


@PROFILE
@given(X=csr_matrices(), seed=st.integers(0, 2**64 - 1),
       fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4, unique=True))
def test_thin_series_is_nested_and_whole(X, seed, fractions):
    fractions = sorted(fractions, reverse=True)
    levels = ns.thin_series(X, fractions, seed=seed, keep_zeros=True)
    previous = X
    for q, level in zip(fractions, levels):
        assert level.dtype == X.dtype and level.indices.dtype == X.indices.dtype
        assert np.array_equal(level.indices, X.indices)  # keep_zeros: same structure
        assert (level.data >= 0).all() and (level.data <= previous.data).all()
        assert np.array_equal(level.data, np.floor(level.data))
        if q == 1.0:
            assert np.array_equal(level.data, previous.data)
        if q == 0.0:
            assert not level.data.any()
        previous = level
    first = ns.thin(X, fractions[0], seed=seed, keep_zeros=True)
    assert np.array_equal(first.data, levels[0].data)


@PROFILE
@given(X=csr_matrices(), seed=st.integers(0, 2**63), split=st.integers(0, 12))
def test_chunks_equal_whole(X, seed, split):
    split = min(split, X.shape[0])
    whole = ns.thin(X, 0.37, seed=seed)
    top = ns.thin(X[:split], 0.37, seed=seed)
    bottom = ns.thin(X[split:], 0.37, seed=seed, row_offset=split)
    assert (sp.vstack([top, bottom]) != whole).nnz == 0


@PROFILE
@given(X=csr_matrices(), seed=st.integers(0, 2**63), target=st.integers(0, 300))
def test_downsample_totals(X, seed, target):
    out = ns.downsample_to(X, target, seed=seed)
    before = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
    after = np.asarray(out.sum(axis=1, dtype=np.float64)).ravel()
    assert np.array_equal(after, np.minimum(before, target))
    assert ((X - out).toarray() >= 0).all()


@PROFILE
@given(pts=st.integers(2, 60).flatmap(lambda n: st.integers(1, 5).flatmap(
    lambda d: st.lists(st.integers(-3, 3), min_size=n * d, max_size=n * d).map(
        lambda v: np.array(v, dtype=np.float64).reshape(n, d)))),
       k=st.integers(1, 10), scale=st.sampled_from([1.0, 1e-9, 1e6, 1e-40]))
def test_tree_equals_brute_force(pts, k, scale):
    pts = pts * scale
    n = pts.shape[0]
    k = min(k, n - 1)
    d = np.abs(pts[:, None, :] - pts[None, :, :]).max(axis=2)
    np.fill_diagonal(d, np.inf)
    kth = np.sort(d, axis=1)[:, k - 1]
    assert np.array_equal(_core.kth_neighbor_distance(pts, k, 0), kth)
    assert np.array_equal(_core.count_within(pts, kth, 0), (d < kth[:, None]).sum(axis=1))
