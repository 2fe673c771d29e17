"""Bad input gets a clear error, and the input is never modified."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import noisescale as ns
from conftest import random_counts


def _snapshot(M):
    if sp.issparse(M):
        return (M.data.copy(), M.indices.copy(), M.indptr.copy())
    return (M.copy(),)


def _unchanged(M, snap):
    now = _snapshot(M)
    return all(np.array_equal(a, b, equal_nan=a.dtype.kind == "f") for a, b in zip(snap, now))


def _all_calls(M):
    return [lambda: ns.thin(M, 0.5), lambda: ns.thin_series(M, [0.5, 0.1]),
            lambda: ns.downsample_to(M, 3)]


@pytest.mark.parametrize(
    "value,message",
    [(-1.0, "non-negative"), (2.5, "whole numbers"), (np.nan, "finite"), (np.inf, "finite"),
     (-np.inf, "finite"), (2.0**25, "larger than this dtype holds")],
)
@pytest.mark.parametrize("kind", ["csr", "csc", "dense"])
def test_bad_counts(value, message, kind):
    X = random_counts(20, 30, seed=0, big=False).astype(np.float32)
    X.data[17] = value
    M = X if kind == "csr" else (X.tocsc() if kind == "csc" else X.toarray())
    snap = _snapshot(M)
    for call in _all_calls(M):
        with pytest.raises(ValueError, match=message):
            call()
    assert _unchanged(M, snap)


def test_bad_counts_report_position():
    X = sp.csr_matrix(np.array([[1, 2, 0], [0, -4, 1]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"-4 at row 1, column 1"):
        ns.thin(X, 0.5)
    with pytest.raises(ValueError, match=r"at row 6, column 1"):
        ns.thin(X, 0.5, row_offset=5)


def test_negative_integer_counts():
    for dtype in (np.int32, np.int64):
        X = np.array([[3, -1]], dtype=dtype)
        with pytest.raises(ValueError, match="non-negative"):
            ns.thin(X, 0.5)


@pytest.mark.parametrize("q", [-0.1, 1.5, np.nan, np.inf])
def test_bad_fraction(q):
    X = random_counts(5, 5, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        ns.thin(X, q)
    with pytest.raises(ValueError, match="fraction"):
        ns.thin_series(X, [0.9, q])


def test_bad_fraction_types():
    X = random_counts(5, 5, seed=0)
    with pytest.raises(TypeError):
        ns.thin(X, "0.5")
    with pytest.raises(TypeError):
        ns.thin(X, None)
    with pytest.raises(TypeError, match="sequence"):
        ns.thin_series(X, 0.5)


@pytest.mark.parametrize("fractions", [[0.5, 0.5], [0.2, 0.5], [0.5, 0.1, 0.3], []])
def test_series_fractions_must_strictly_decrease(fractions):
    X = random_counts(5, 5, seed=0)
    with pytest.raises(ValueError, match="strictly decreasing|empty"):
        ns.thin_series(X, fractions)


@pytest.mark.parametrize("target", [-1, [1, 2, -3, 4, 5], [1.5] * 5, [1, 2], np.nan])
def test_bad_targets(target):
    X = random_counts(5, 5, seed=0)
    with pytest.raises(ValueError, match="target_umis"):
        ns.downsample_to(X, target)


def test_bad_seed_and_offset_and_threads():
    X = random_counts(5, 5, seed=0)
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match="seed"):
            ns.thin(X, 0.5, seed=seed)
    with pytest.raises(TypeError, match="seed"):
        ns.thin(X, 0.5, seed=1.5)
    with pytest.raises(ValueError, match="row_offset"):
        ns.thin(X, 0.5, row_offset=-2)
    with pytest.raises(ValueError, match="2\\^48"):
        ns.thin(X, 0.5, row_offset=2**48)
    with pytest.raises(ValueError, match="threads"):
        ns.thin(X, 0.5, threads=0)
    with pytest.raises(ValueError, match="device"):
        ns.thin(X, 0.5, device="tpu")


def test_duplicate_entries_rejected():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]), np.array([0, 2, 3])),
                      shape=(2, 3))
    snap = _snapshot(X)
    for call in _all_calls(X):
        with pytest.raises(ValueError, match="duplicate"):
            call()
    assert _unchanged(X, snap)
    # also when the duplicates are not adjacent (unsorted row)
    Y = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3])),
                      shape=(1, 3))
    with pytest.raises(ValueError, match="duplicate"):
        ns.thin(Y, 0.5)


def test_malformed_compressed_arrays():
    X = random_counts(6, 8, density=0.5, seed=1, big=False)
    short = X.copy()
    short.indices = short.indices[:-1]
    with pytest.raises(ValueError, match="different lengths|does not match"):
        ns.thin(short, 0.5)
    bad_ptr = X.copy()
    bad_ptr.indptr = bad_ptr.indptr.copy()
    bad_ptr.indptr[3] = bad_ptr.indptr[4] + 1
    with pytest.raises(ValueError, match="non-decreasing"):
        ns.thin(bad_ptr, 0.5)
    out_of_range = X.copy()
    out_of_range.indices = out_of_range.indices.copy()
    out_of_range.indices[2] = 8
    with pytest.raises(ValueError, match="out of range"):
        ns.thin(out_of_range, 0.5)
    with pytest.raises(ValueError, match="out of range"):
        ns.downsample_to(out_of_range, 2)
    negative = X.copy()
    negative.indices = negative.indices.copy()
    negative.indices[0] = -1
    with pytest.raises(ValueError, match="out of range"):
        ns.thin(negative, 0.5)


def test_unsupported_inputs():
    X = random_counts(5, 5, seed=0)
    with pytest.raises(TypeError, match="CSR or CSC"):
        ns.thin(X.tocoo(), 0.5)
    with pytest.raises(TypeError, match="dtype"):
        ns.thin(X.astype(np.uint8), 0.5)
    with pytest.raises(TypeError, match="dtype"):
        ns.thin(np.ones((3, 3), dtype=bool), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        ns.thin(np.ones((2, 3, 4), dtype=np.int64), 0.5)
    for call in (ns.thin, ns.downsample_to):
        with pytest.raises(TypeError, match="numpy array"):
            call([[1, 2], [3, 4]], 1)
    with pytest.raises(ValueError, match="AnnData"):
        ns.thin(X, 0.5, layer="counts")


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_counts_beyond_2_53_are_refused_without_telling_to_convert(dtype, kind):
    """Issue 16: an int64 count above 2^53 was told to 'convert the matrix to int64'."""
    X = np.ones((3, 4), dtype=dtype)
    X[1, 2] = dtype(2**60)
    M = sp.csr_matrix(X) if kind == "csr" else X
    for call in _all_calls(M):
        with pytest.raises(ValueError, match=r"count 1152921504606846976 is larger than 2\^53, "
                                             r"the largest count .* exactly .*at row 1, "
                                             r"column 2") as info:
            call()
        assert "convert" not in str(info.value)
    X32 = np.ones((3, 4), dtype=np.float32)
    X32[0, 1] = 2.0**25
    with pytest.raises(ValueError, match=r"larger than this dtype holds exactly \(float32: "
                                         r"2\^24\); convert the matrix to int64"):
        ns.thin(X32, 0.5)


def test_downsample_row_total_beyond_2_53():
    X = np.full((2, 1025), 2**53, dtype=np.float64)  # 1025 * 2^53 would overflow int64
    with pytest.raises(ValueError, match="exceeds 2\\^53"):
        ns.downsample_to(X, 10)
    with pytest.raises(ValueError, match="exceeds 2\\^53"):
        ns.downsample_to(sp.csr_matrix(X), 10)
    assert ns.thin(X, 0.5).shape == X.shape  # thinning is per entry: fine
