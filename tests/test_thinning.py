"""Behaviour of thin, thin_series and downsample_to: invariants and output formats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import noisescale as ns
from conftest import random_counts, same_matrix


@pytest.fixture(scope="module")
def X():
    return random_counts(400, 600, density=0.2, seed=2)


@pytest.mark.parametrize("cls", [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array])
def test_class_and_format_kept(X, cls):
    M = cls(X)
    Y = ns.thin(M, 0.5, seed=0)
    assert type(Y) is cls and Y.dtype == M.dtype and Y.shape == M.shape
    for S in ns.thin_series(M, [0.5, 0.25], seed=0):
        assert type(S) is cls
    assert type(ns.downsample_to(M, 20, seed=0)) is cls


def test_fraction_one_and_zero(X):
    assert same_matrix(ns.thin(X, 1.0, seed=0), X)
    Z = ns.thin(X, 0.0, seed=0)
    assert Z.nnz == 0 and Z.shape == X.shape
    K = ns.thin(X, 0.0, seed=0, keep_zeros=True)
    assert K.nnz == X.nnz and not K.data.any()
    assert np.array_equal(K.indices, X.indices) and np.array_equal(K.indptr, X.indptr)
    D = X.toarray()
    assert np.array_equal(ns.thin(D, 1.0), D) and not ns.thin(D, 0.0).any()
    levels = ns.thin_series(X, [1.0, 0.5, 0.0], seed=1)
    assert same_matrix(levels[0], X) and levels[2].nnz == 0


def test_zeros_dropped_or_kept(X):
    Y = ns.thin(X, 0.3, seed=1)
    assert Y.nnz < X.nnz and np.all(Y.data > 0) and Y.has_sorted_indices
    K = ns.thin(X, 0.3, seed=1, keep_zeros=True)
    assert K.nnz == X.nnz and np.array_equal(K.indices, X.indices)
    assert np.array_equal(K.toarray(), Y.toarray())


def test_output_never_exceeds_input(X):
    Y = ns.thin(X, 0.7, seed=3)
    assert np.all(Y.toarray() <= X.toarray())
    levels = ns.thin_series(X, [0.9, 0.6, 0.3, 0.1], seed=3)
    prev = X.toarray()
    for L in levels:
        cur = L.toarray()
        assert np.all(cur <= prev)
        # sparsity patterns are nested too
        assert np.all((cur > 0) <= (prev > 0))
        prev = cur


def test_totals_scale_with_fraction(X):
    total = X.sum()
    for q in (0.1, 0.5, 0.9):
        kept = ns.thin(X, q, seed=7).sum()
        sd = np.sqrt(total * q * (1 - q))
        assert abs(kept - q * total) < 5 * sd


def test_downsample_targets_exact(X):
    totals = np.asarray(X.sum(axis=1)).ravel()
    T = int(np.median(totals))
    Y = ns.downsample_to(X, T, seed=0)
    got = np.asarray(Y.sum(axis=1)).ravel()
    assert np.array_equal(got, np.minimum(totals, T))
    assert np.all(Y.toarray() <= X.toarray())
    low = totals <= T
    assert np.array_equal(Y.toarray()[low], X.toarray()[low])  # cells below T unchanged


def test_downsample_per_cell_targets(X):
    totals = np.asarray(X.sum(axis=1)).ravel().astype(np.int64)
    rng = np.random.default_rng(0)
    targets = rng.integers(0, totals.max() + 10, size=X.shape[0])
    Y = ns.downsample_to(X, targets, seed=0)
    assert np.array_equal(np.asarray(Y.sum(axis=1)).ravel(), np.minimum(totals, targets))
    assert ns.downsample_to(X, 0, seed=0).nnz == 0
    assert np.array_equal(
        ns.downsample_to(X, np.full(X.shape[0], 30), seed=4).toarray(),
        ns.downsample_to(X, 30, seed=4).toarray(),
    )
    assert same_matrix(ns.downsample_to(X, 10**9, seed=0), X)


def test_unsorted_indices_handled(X):
    # Reverse the order of entries in every row: same matrix, unsorted storage.
    R = X.copy()
    for r in range(R.shape[0]):
        a, b = R.indptr[r], R.indptr[r + 1]
        R.indices[a:b] = R.indices[a:b][::-1].copy()
        R.data[a:b] = R.data[a:b][::-1].copy()
    R.has_sorted_indices = False
    assert np.array_equal(ns.thin(R, 0.4, seed=2).toarray(), ns.thin(X, 0.4, seed=2).toarray())
    assert np.array_equal(ns.downsample_to(R, 25, seed=2).toarray(),
                          ns.downsample_to(X, 25, seed=2).toarray())


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0), (3, 4)])
def test_empty_inputs(shape):
    for M in (sp.csr_matrix(shape, dtype=np.float32), sp.csc_matrix(shape, dtype=np.int64),
              np.zeros(shape, dtype=np.int32)):
        Y = ns.thin(M, 0.5, seed=0)
        assert Y.shape == shape and (Y.nnz == 0 if sp.issparse(Y) else not Y.any())
        assert all(S.shape == shape for S in ns.thin_series(M, [0.5, 0.1], seed=0))
        assert ns.downsample_to(M, 3, seed=0).shape == shape


def test_input_untouched(X):
    M = X.copy()
    before = (M.data.copy(), M.indices.copy(), M.indptr.copy())
    ns.thin(M, 0.5, seed=0)
    ns.thin_series(M, [0.5, 0.2], seed=0)
    ns.downsample_to(M, 10, seed=0)
    ns.thin(M, 0.5, seed=0, keep_zeros=True)
    for a, b in zip(before, (M.data, M.indices, M.indptr)):
        assert np.array_equal(a, b)


def test_show_config_reports(capsys):
    ns.show_config()
    out = capsys.readouterr().out
    assert ns.__version__ in out and "OpenMP" in out and "CUDA compiled" in out
    info = ns.build_info()
    assert info["openmp_max_threads"] >= 1 and info["simd"] in {"avx512", "avx2", "scalar"}


def test_cuda_device_request_without_gpu(X):
    info = ns.build_info()
    if info["cuda_devices"] > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(RuntimeError, match="cuda"):
        ns.thin(X, 0.5, device="cuda")
    assert same_matrix(ns.thin(X, 0.5, device="auto"), ns.thin(X, 0.5, device="cpu"))
