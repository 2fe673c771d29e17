"""Thinning real single-cell data from ../shared/data (skipped when absent)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import noisescale as ns
from conftest import shared_file


@pytest.mark.parametrize("name", ["pbmc4k_soupx.h5ad", "paul2015_tradeseq.h5ad"])
def test_thin_real_data_keeps_a_tenth(name):
    adata = ad.read_h5ad(shared_file(name))
    X = adata.X
    totals = np.asarray(X.sum(axis=1)).ravel()
    out = ns.thin(adata, 0.1, seed=0)
    thinned = np.asarray(out.X.sum(axis=1)).ravel()
    # Sum of per-cell totals ~ Binomial(total UMIs, 0.1): within 5 standard deviations.
    total = totals.sum()
    sd = np.sqrt(total * 0.1 * 0.9)
    assert abs(thinned.sum() - 0.1 * total) < 5 * sd
    # Each cell's total is Binomial(t_i, 0.1) on its own: the z-scores have unit spread (a
    # kernel that rounded t_i * q, or reused random numbers across cells, would not).
    kept = totals > 0
    z = (thinned[kept] - 0.1 * totals[kept]) / np.sqrt(totals[kept] * 0.1 * 0.9)
    assert abs(z.mean()) < 5 / np.sqrt(kept.sum())
    assert 0.9 < z.std() < 1.1
    assert out.X.dtype == X.dtype and out.X.format == X.format
    assert np.all(thinned <= totals)


def test_downsample_real_data_to_median():
    adata = ad.read_h5ad(shared_file("paul2015_tradeseq.h5ad"))
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    T = int(np.median(totals))
    out = ns.downsample_to(adata.X, T, seed=1)
    assert np.array_equal(np.asarray(out.sum(axis=1)).ravel(), np.minimum(totals, T))


def test_series_real_data_monotone():
    adata = ad.read_h5ad(shared_file("larry_cospar_subset.h5ad"))
    levels = ns.thin_series(adata.X, [0.5, 0.2, 0.05], seed=2)
    sums = [L.sum() for L in levels]
    assert sums[0] > sums[1] > sums[2] > 0
    dense = [L.toarray() for L in levels]
    assert np.all(dense[0] >= dense[1]) and np.all(dense[1] >= dense[2])
