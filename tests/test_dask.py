"""Dask arrays of row blocks: lazy, block-wise, bit-identical to the in-memory call."""

from __future__ import annotations

import anndata as ad
import dask
import dask.array as da
import distributed
import numpy as np
import pytest

import noisescale as ns
from conftest import random_counts, same_matrix

X = random_counts(240, 50, density=0.3, seed=7)
CHUNKINGS = [(1, 50), (17, 50), (100, 20), (240, 50), ((10, 200, 30), (25, 25))]


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_thin_dask_sparse_equals_in_memory(chunks):
    d = da.from_array(X, chunks=chunks, asarray=False)
    out = ns.thin(d, 0.3, seed=5)
    assert isinstance(out, da.Array) and out.dtype == X.dtype
    assert out.chunks[0] == d.chunks[0]  # row chunking kept
    assert same_matrix(out.compute(), ns.thin(X, 0.3, seed=5))


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_series_and_downsample_dask_equal_in_memory(chunks):
    d = da.from_array(X, chunks=chunks, asarray=False)
    levels = dask.compute(*ns.thin_series(d, [0.5, 0.2, 0.1], seed=2))
    for got, exp in zip(levels, ns.thin_series(X, [0.5, 0.2, 0.1], seed=2)):
        assert same_matrix(got, exp)
    t = np.arange(X.shape[0]) % 31
    assert same_matrix(ns.downsample_to(d, t, seed=3).compute(), ns.downsample_to(X, t, seed=3))
    assert same_matrix(ns.downsample_to(d, 9, seed=3).compute(), ns.downsample_to(X, 9, seed=3))


@pytest.mark.parametrize("chunks", [(1, 50), (33, 7), (240, 50)])
def test_thin_dask_dense_equals_in_memory(chunks):
    D = X.toarray().astype(np.int64)
    out = ns.thin(da.from_array(D, chunks=chunks), 0.7, seed=1)
    assert same_matrix(out.compute(), ns.thin(D, 0.7, seed=1))


def test_series_blocks_are_computed_once():
    """thin_series on dask goes through io.blocks.map_row_blocks: one call per row block
    makes every level, whatever the number of outputs."""
    from noisescale.io.blocks import map_row_blocks

    calls = []

    def both(block, start):
        calls.append(start)
        return [block, 2 * block]

    d = da.from_array(X, chunks=(60, 50), asarray=False)
    one, two = map_row_blocks(d, both, 2)
    a, b = dask.compute(one, two)
    assert sorted(calls) == [0, 60, 120, 180]
    assert same_matrix(a, X) and same_matrix(b, 2 * X)


def test_anndata_with_dask_x():
    a = ad.AnnData(da.from_array(X, chunks=(50, 50), asarray=False))
    out = ns.thin(a, 0.4, seed=8)
    assert isinstance(out.X, da.Array)
    assert same_matrix(out.X.compute(), ns.thin(X, 0.4, seed=8))


def test_dask_errors():
    with pytest.raises(ValueError, match="2-D"):
        ns.thin(da.ones(10, chunks=5), 0.5)
    unknown = da.from_array(X.toarray(), chunks=(60, 50))
    unknown = unknown[unknown[:, 0] >= 0]  # boolean mask: unknown row chunk sizes
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        ns.thin(unknown, 0.5)
    with pytest.raises(ValueError, match="one value per cell"):
        ns.downsample_to(da.from_array(X, chunks=(60, 50), asarray=False), np.ones(3, int))


def test_distributed_client_equals_in_memory():
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1,
                            dashboard_address=None) as client:
        d = da.from_array(X, chunks=(40, 50), asarray=False)
        got = client.compute(ns.thin(d, 0.25, seed=6)).result()
    assert same_matrix(got, ns.thin(X, 0.25, seed=6))
