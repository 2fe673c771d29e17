"""Per-gene thinning (the paper authors' variant): exact column takes, a uniform kept set
(multivariate hypergeometric per gene), bit-identity for any threads, chunking, kind and
route (memory, dask, files, C++ blocks), the zero-cell rule and clear errors."""

from __future__ import annotations

import itertools
import math

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

import noisescale as ns
from noisescale import _core
from noisescale.noise import per_gene
from stats_util import chisquare_pvalue


def counts(n=600, g=25, density=0.3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = sp.random(n, g, density=density, random_state=seed, format="csr", dtype=np.float64)
    X.data = rng.poisson(4, X.nnz) + 1.0
    return X.astype(dtype)


def col_sums(X) -> np.ndarray:
    return np.asarray(X.sum(axis=0), dtype=np.float64).ravel()


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
@pytest.mark.parametrize("q", [0.0, 0.013, 0.3, 0.77, 1.0])
def test_each_gene_keeps_exactly_floor_of_its_total(dtype, q):
    X = counts(dtype=dtype)
    before = X.copy()
    Y = ns.thin(X, q, seed=4, method="per_gene")
    assert Y.dtype == dtype and Y.format == "csr"
    np.testing.assert_array_equal(col_sums(Y), np.floor(col_sums(X) * q))
    assert (Y - X).max() <= 0 and Y.min() >= 0
    assert (X != before).nnz == 0  # input untouched
    if q == 1.0:
        assert (Y != X).nnz == 0


def mvhg_pmf(c: list[int], k: int) -> dict[tuple, float]:
    """Exact multivariate hypergeometric pmf of taking k of sum(c) items split as c."""
    total = math.comb(sum(c), k)
    out = {}
    for x in itertools.product(*(range(ci + 1) for ci in c)):
        if sum(x) == k:
            out[x] = math.prod(math.comb(ci, xi) for ci, xi in zip(c, x)) / total
    return out


@pytest.mark.parametrize("rows", [[0, 1, 2, 3], [3, 900, 901, 70_000]])
def test_kept_set_is_uniform_multivariate_hypergeometric(rows):
    # 6,000 identical genes are 6,000 independent draws (each gene has its own random keys);
    # the entries' rows decide which tree levels split them.
    c, q = [3, 1, 4, 2], 0.5  # T = 10, k = 5
    n_genes = 6000
    entries = np.repeat(np.array(c, float), n_genes)
    X = sp.csr_matrix((entries, (np.repeat(rows, n_genes), np.tile(np.arange(n_genes), 4))),
                      shape=(max(rows) + 1, n_genes))
    Y = ns.thin(X, q, seed=11, method="per_gene").toarray()[rows].T  # draws x 4
    pmf = mvhg_pmf(c, 5)
    keys = list(pmf)
    seen = {k: 0 for k in keys}
    for x in map(tuple, Y.astype(int)):
        seen[x] += 1  # a KeyError here would be an impossible draw
    expected = np.array([pmf[k] for k in keys]) * n_genes
    observed = np.array([seen[k] for k in keys])
    p = stats.chisquare(observed, expected).pvalue
    assert p > 1e-3, p


def test_large_counts_marginal_is_hypergeometric():
    # Three cells with 300, 500 and 200 UMIs of a gene, take 500 (the ratio-of-uniforms path):
    # the first cell keeps Hypergeometric(1000, 300, 500).
    n_genes = 4000
    X = sp.csr_matrix(np.repeat(np.array([[300.0], [500.0], [200.0]]), n_genes, axis=1))
    Y = ns.thin(X, 0.5, seed=2, method="per_gene").toarray()
    assert (Y.sum(axis=0) == 500).all()
    assert chisquare_pvalue(Y[0], stats.hypergeom(1000, 300, 500)) > 1e-3
    assert chisquare_pvalue(Y[2], stats.hypergeom(1000, 200, 500)) > 1e-3


def test_same_bits_for_any_threads_kind_and_format():
    X = counts(n=3000, g=40, dtype=np.int64)
    ref = ns.thin(X, 0.21, seed=9, method="per_gene", threads=1)
    for threads in (2, 3):
        assert (ns.thin(X, 0.21, seed=9, method="per_gene", threads=threads) != ref).nnz == 0
    csc = ns.thin(X.tocsc(), 0.21, seed=9, method="per_gene")
    assert csc.format == "csc" and (csc != ref).nnz == 0
    dense = ns.thin(X.toarray(), 0.21, seed=9, method="per_gene")
    np.testing.assert_array_equal(dense, ref.toarray())
    fortran = ns.thin(np.asfortranarray(X.toarray()), 0.21, seed=9, method="per_gene")
    assert fortran.flags.f_contiguous
    np.testing.assert_array_equal(fortran, ref.toarray())
    X64 = X.copy()
    X64.indices, X64.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    assert (ns.thin(X64, 0.21, seed=9, method="per_gene") != ref).nnz == 0
    # explicit zeros change nothing; keep_zeros keeps the structure
    Z = X.copy()
    Z.data[::5] = 0
    a = ns.thin(Z, 0.21, seed=9, method="per_gene")
    Z.eliminate_zeros()
    assert (ns.thin(Z, 0.21, seed=9, method="per_gene") != a).nnz == 0
    kept = ns.thin(X, 0.21, seed=9, method="per_gene", keep_zeros=True)
    np.testing.assert_array_equal(kept.indices, X.indices)
    # another seed, another draw
    assert (ns.thin(X, 0.21, seed=10, method="per_gene") != ref).nnz > 0


@pytest.mark.parametrize("chunks", [64, 700, 4096, 5000])
def test_dask_chunks_give_the_in_memory_bits(chunks):
    da = pytest.importorskip("dask.array")
    X = counts(n=9000, g=20)
    ref = ns.thin(X, 0.4, seed=1, method="per_gene")
    out = ns.thin(da.from_array(X, chunks=(chunks, 20)), 0.4, seed=1, method="per_gene")
    assert (sp.csr_matrix(out.compute()) != ref).nnz == 0
    # a row offset is part of the rows' keys, for the whole matrix and for blocks alike
    a = ns.thin(X, 0.4, seed=1, method="per_gene", row_offset=8192)
    b = ns.thin(da.from_array(X, chunks=(chunks, 20)), 0.4, seed=1, method="per_gene",
                row_offset=8192).compute()
    assert (sp.csr_matrix(b) != a).nnz == 0


@pytest.mark.parametrize("chunk_rows", [None, 100, 777, 4096])
def test_file_two_passes_give_the_in_memory_bits(tmp_path, chunk_rows):
    X = counts(n=6000, g=30)
    src = tmp_path / "in.h5ad"
    ad.AnnData(X).write_h5ad(src)
    ref = ns.thin(X, 0.35, seed=8, method="per_gene")
    out = ns.thin_file(src, tmp_path / "out.zarr", 0.35, seed=8, method="per_gene",
                       chunk_rows=chunk_rows)
    got = ad.read_zarr(out)
    assert (sp.csr_matrix(got.X) != ref).nnz == 0
    prov = got.uns["noisescale"]
    assert prov["method"] == "per_gene" and prov["fraction"] == 0.35
    rows = prov["chunk_rows"]
    assert rows & (rows - 1) == 0 or rows % 4096 == 0  # aligned to a power-of-two block


def test_blocks_equal_whole_matrix_in_the_core():
    X = counts(n=1000, g=12, dtype=np.int32)
    whole = sp.csr_matrix(_core.thin_per_gene_csr(X.indptr, X.indices, X.data, 1000, 12, 0,
                                                  0.3, 5, False, 1)[::-1], shape=X.shape)
    for bits in (0, 3, 8):
        rows = max(1 << bits, 96 >> bits << bits)
        tot = np.vstack([per_gene.block_totals(X[s:s + rows], s, bits)
                         for s in range(0, 1000, rows)])
        takes = per_gene.block_takes(tot, 0.3, 5, 1, bits)
        parts = [per_gene.thin_chunk(X[s:s + rows], s,
                                     takes[s >> bits:((s + min(rows, 1000 - s) - 1) >> bits) + 1],
                                     bits, 5, False, 2)
                 for s in range(0, 1000, rows)]
        assert (sp.vstack(parts).tocsr() != whole).nnz == 0


def test_drop_empty_removes_cells_without_umis_and_their_obs():
    X = counts(n=500, g=10, density=0.2)
    a = ad.AnnData(X)
    a.obs["label"] = [f"c{i}" for i in range(500)]
    before = a.copy()
    b = ns.thin(a, 0.05, seed=2, method="per_gene", drop_empty=True)
    thinned = ns.thin(X, 0.05, seed=2, method="per_gene")
    keep = np.flatnonzero(np.asarray(thinned.sum(axis=1)).ravel() > 0)
    assert 0 < b.n_obs < 500 and b.n_obs == keep.size
    assert list(b.obs["label"]) == [f"c{i}" for i in keep]
    assert (b.X != thinned[keep]).nnz == 0
    assert (a.X != before.X).nnz == 0 and a.n_obs == 500  # input untouched
    m = ns.thin(X, 0.05, seed=2, method="per_gene", drop_empty=True)
    assert m.shape == (keep.size, 10)
    # binomial thinning takes the rule too
    assert (np.asarray(ns.thin(X, 0.05, seed=2, drop_empty=True).sum(axis=1)) > 0).all()
    with pytest.raises(ValueError, match="copy=True"):
        ns.thin(a, 0.05, method="per_gene", drop_empty=True, copy=False)


def test_bad_input_is_a_clear_error_and_nothing_is_modified():
    X = counts(n=50, g=5)
    with pytest.raises(ValueError, match="method must be one of"):
        ns.thin(X, 0.5, method="gene")
    with pytest.raises(ValueError, match="no CUDA kernel"):
        ns.thin(X, 0.5, method="per_gene", device="cuda")
    with pytest.raises(TypeError, match="drop_empty must be True or False"):
        ns.thin(X, 0.5, drop_empty=1)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        ns.thin(X, 1.5, method="per_gene")
    bad = X.copy()
    bad.data[3] = -1
    with pytest.raises(ValueError, match="non-negative"):
        ns.thin(bad, 0.5, method="per_gene")
    bad.data[3] = 1.5
    with pytest.raises(ValueError, match="whole numbers"):
        ns.thin(bad, 0.5, method="per_gene")
    dup = sp.csr_matrix((np.array([1.0, 2.0]), np.array([1, 1]), np.array([0, 2])),
                        shape=(1, 3))
    with pytest.raises(ValueError, match="duplicate"):
        ns.thin(dup, 0.5, method="per_gene")
    takes = per_gene.block_takes(per_gene.block_totals(X, 0, 4), 0.5, 1, 1, 4)
    with pytest.raises(ValueError, match="do not match its counts"):
        per_gene.thin_chunk(X, 0, takes + 100, 4, 1, False, 1)
    with pytest.raises(ValueError, match="not a multiple of the block size"):
        per_gene.thin_chunk(X[:16], 8, takes[:1], 4, 1, False, 1)
    assert bad.data[3] == 1.5


def test_cli_thin_per_gene_equals_the_python_call(tmp_path):
    from noisescale.cli import main

    X = counts(n=300, g=8)
    ad.AnnData(X).write_h5ad(tmp_path / "a.h5ad")
    assert main(["thin", str(tmp_path / "a.h5ad"), str(tmp_path / "b.h5ad"), "--fraction",
                 "0.25", "--method", "per_gene", "--seed", "3", "--quiet"]) == 0
    got = ad.read_h5ad(tmp_path / "b.h5ad").X
    assert (sp.csr_matrix(got) != ns.thin(X, 0.25, seed=3, method="per_gene")).nnz == 0
    with pytest.raises(SystemExit):
        main(["thin", str(tmp_path / "a.h5ad"), str(tmp_path / "c.h5ad"), "--target-umis", "3",
              "--method", "per_gene"])
