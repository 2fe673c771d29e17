"""Thinning a sorted selection of a CSR matrix's rows keyed by their global row indices
(``rows=``): the result equals those rows of thinning the whole matrix, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import noisescale as ns
from noisescale import _core

COUNT_DTYPES = [np.int32, np.int64, np.float32, np.float64]
INDEX_DTYPES = [np.int32, np.int64]
FRACTIONS = [0.8, 0.35, 0.05]


def counts(n_rows, n_cols, dtype, index_dtype, seed, density=0.3) -> sp.csr_matrix:
    """Random CSR counts with empty rows, explicit zeros and counts large enough for every
    sampler path (up to what the dtype holds exactly)."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_rows, n_cols)) < density,
                     1 + rng.poisson(2.0, (n_rows, n_cols)), 0).astype(np.int64)
    dense[rng.random(n_rows) < 0.2] = 0  # empty rows
    big = 2**24 if dtype == np.float32 else 2**31 - 1 if dtype == np.int32 else 2**40
    nz = np.flatnonzero(dense)
    pick = rng.choice(nz, size=nz.size // 20, replace=False)
    dense.flat[pick] = rng.integers(100, big, size=pick.size, endpoint=True)
    X = sp.csr_matrix(dense.astype(dtype))
    zeros = rng.choice(X.nnz, size=X.nnz // 15, replace=False)
    X.data[zeros] = 0  # explicit zeros
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    return X


def take_rows(M: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of M, keeping every stored entry and the index and count dtypes."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, stops = M.indptr[rows].astype(np.int64), M.indptr[rows + 1].astype(np.int64)
    pos = (np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
           if rows.size else np.zeros(0, np.int64)).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(stops - starts)]).astype(M.indptr.dtype)
    out = sp.csr_matrix((M.data[pos], M.indices[pos], indptr), shape=(rows.size, M.shape[1]))
    out.indices, out.indptr = M.indices[pos], indptr  # scipy may have changed their dtype
    return out


def identical(A, B) -> bool:
    return (A.shape == B.shape and A.dtype == B.dtype and A.indptr.dtype == B.indptr.dtype
            and A.indices.dtype == B.indices.dtype and np.array_equal(A.indptr, B.indptr)
            and np.array_equal(A.indices, B.indices) and np.array_equal(A.data, B.data))


def subsets(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.zeros(0, np.int64), np.array([n - 1]), np.array([n // 2]), np.arange(n),
            np.flatnonzero(rng.random(n) < 0.3), np.flatnonzero(rng.random(n) < 0.05),
            np.unique(np.append(rng.choice(n, 10), n - 1))]


@pytest.mark.parametrize("dtype", COUNT_DTYPES)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_selection_equals_rows_of_whole(dtype, index_dtype):
    X = counts(120, 70, dtype, index_dtype,
               seed=COUNT_DTYPES.index(dtype) * 2 + INDEX_DTYPES.index(index_dtype))
    for seed in (0, 2**64 - 1):
        whole = ns.thin_series(X, FRACTIONS, seed=seed)
        whole1 = ns.thin(X, 0.3, seed=seed)
        for rows in subsets(X.shape[0], seed % 97):
            S = take_rows(X, rows)
            got = ns.thin_series(S, FRACTIONS, seed=seed, rows=rows)
            assert len(got) == len(FRACTIONS)
            for g, w in zip(got, whole):
                assert identical(g, take_rows(w, rows))
            assert identical(ns.thin(S, 0.3, seed=seed, rows=rows), take_rows(whole1, rows))
            kz = ns.thin(S, 0.3, seed=seed, rows=rows, keep_zeros=True)
            assert identical(kz, take_rows(ns.thin(X, 0.3, seed=seed, keep_zeros=True), rows))


def test_bit_identical_across_threads():
    X = counts(6000, 40, np.float32, np.int32, seed=7)  # several blocks of lines
    rows = np.flatnonzero(np.random.default_rng(1).random(X.shape[0]) < 0.7)
    S = take_rows(X, rows)
    whole = ns.thin_series(X, FRACTIONS, seed=5, threads=2)
    unkeyed = ns.thin_series(S, FRACTIONS, seed=5)  # rows keyed 0..n-1: other bits
    assert not identical(unkeyed[0], take_rows(whole[0], rows))
    for threads in (1, 2, 3):
        got = ns.thin_series(S, FRACTIONS, seed=5, rows=rows, threads=threads)
        for g, w in zip(got, whole):
            assert identical(g, take_rows(w, rows))


def test_rows_of_a_chunk_at_row_offset():
    X = counts(90, 30, np.int64, np.int64, seed=3)
    offset = 10**12
    whole = ns.thin_series(X, FRACTIONS, seed=9, row_offset=offset)
    for idx in subsets(X.shape[0], 4):
        got = ns.thin_series(take_rows(X, idx), FRACTIONS, seed=9, rows=offset + idx)
        for g, w in zip(got, whole):
            assert identical(g, take_rows(w, idx))
    assert identical(ns.thin(X, 0.4, seed=9, rows=offset + np.arange(90)),
                     ns.thin(X, 0.4, seed=9, row_offset=offset))


def test_array_likes_and_inputs_not_modified():
    X = counts(40, 20, np.float64, np.int32, seed=11)
    rows = np.array([0, 3, 4, 17, 39])
    S = take_rows(X, rows)
    before = (S.indptr.copy(), S.indices.copy(), S.data.copy(), rows.copy())
    ref = ns.thin(S, 0.5, seed=1, rows=rows)
    for like in (list(rows), tuple(rows), rows.astype(np.int32), rows.astype(np.uint16),
                 np.repeat(rows, 2)[::2]):
        assert identical(ns.thin(S, 0.5, seed=1, rows=like), ref)
    assert identical(ns.thin(sp.csr_array(S), 0.5, seed=1, rows=rows), sp.csr_array(ref))
    for a, b in zip((S.indptr, S.indices, S.data, rows), before):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    assert not np.shares_memory(ref.data, S.data)


def test_anndata_csr():
    ad = pytest.importorskip("anndata")
    X = counts(50, 20, np.float32, np.int32, seed=2)
    rows = np.array([2, 9, 10, 49])
    a = ad.AnnData(take_rows(X, rows), layers={"counts": take_rows(X, rows)})
    out = ns.thin(a, 0.5, seed=3, rows=rows, layer="counts", key_added="low")
    assert identical(out.layers["low"], take_rows(ns.thin(X, 0.5, seed=3), rows))
    levels = ns.thin_series(a, [0.5, 0.1], seed=3, rows=rows)
    for got, w in zip(levels, ns.thin_series(X, [0.5, 0.1], seed=3)):
        assert identical(got.X, take_rows(w, rows))
    with pytest.raises(TypeError, match="CSR"):
        ns.thin(ad.AnnData(X[:4].toarray()), 0.5, rows=rows)


def test_errors():
    X = counts(20, 10, np.float32, np.int32, seed=1)
    S = take_rows(X, np.arange(4))
    bad_values = {
        "strictly increasing": [0, 2, 1, 3],
        "row ids\\[2\\] = 1 follows 1": [0, 1, 1, 3],
        "row ids\\[0\\] = -1 is out of range": [-1, 1, 2, 3],
        "row ids\\[3\\] = 281474976710656 is out of range": [0, 1, 2, 2**48],
        "one per row \\(4\\), got shape \\(3,\\)": [0, 1, 2],
        "one per row \\(4\\), got shape \\(2, 2\\)": [[0, 1], [2, 3]],
    }
    for message, rows in bad_values.items():
        with pytest.raises(ValueError, match=message):
            ns.thin(S, 0.5, rows=rows)
        with pytest.raises(ValueError, match=message):
            ns.thin_series(S, [0.5, 0.2], rows=rows)
    rows = np.arange(4)
    with pytest.raises(TypeError, match="CSC"):
        ns.thin(S.tocsc(), 0.5, rows=rows)
    with pytest.raises(TypeError, match="dense"):
        ns.thin_series(S.toarray(), [0.5], rows=rows)
    with pytest.raises(TypeError, match="integer"):
        ns.thin(S, 0.5, rows=rows.astype(float))
    with pytest.raises(ValueError, match="not both"):
        ns.thin(S, 0.5, rows=rows, row_offset=3)
    with pytest.raises(ValueError, match="binomial"):
        ns.thin(S, 0.5, rows=rows, method="per_gene")
    with pytest.raises(ValueError, match="no CUDA kernel"):
        ns.thin_series(S, [0.5], rows=rows, device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        ns.thin(S, 0.5, rows=rows, device="gpu")
    assert identical(ns.thin(S, 0.5, seed=2, rows=rows, device="auto"),
                     ns.thin(S, 0.5, seed=2, device="cpu"))


def test_dask_rejected():
    da = pytest.importorskip("dask.array")
    X = counts(20, 10, np.float32, np.int32, seed=1)
    with pytest.raises(TypeError, match="dask"):
        ns.thin(da.from_array(X, chunks=(10, 10)), 0.5, rows=np.arange(20))


def test_core_keyword_and_positional_signature():
    X = counts(30, 12, np.int32, np.int32, seed=4)
    args = (X.indptr, X.indices, X.data, 30, 12, True, 0, [0.5, 0.2], 8, False, 1, "cpu")
    plain = _core.thin_compressed(*args)
    ids = _core.thin_compressed(*args, row_ids=np.arange(30, dtype=np.int64))
    for p, q in zip(plain, ids):
        assert all(np.array_equal(a, b) for a, b in zip(p, q))
    C = X.tocsc()
    with pytest.raises(ValueError, match="CSR"):
        _core.thin_compressed(C.indptr, C.indices, C.data, 12, 30, False, 0, [0.5], 8, False, 1,
                              "cpu", row_ids=np.arange(30, dtype=np.int64))
    with pytest.raises(ValueError, match="no CUDA kernel"):
        _core.thin_compressed(*args[:-1], "cuda", row_ids=np.arange(30, dtype=np.int64))
