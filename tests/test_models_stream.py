"""Models fitted out of core on a RowStream of CSR stores: the same genes, the same PCA and
random projection as in memory, trained models that train from the stream, and the errors."""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import random_counts

import noisescale as ns
from noisescale import models
from noisescale.io import RowStream
from noisescale.io.chunked import chunk_rows_for
from noisescale.models.base import RepresentationModel
from noisescale.models.preprocess import log_normalize, select_hvg, select_hvg_stream
from noisescale.models.transformer import gene_medians, stream_gene_medians
from noisescale.simulate import simulate

TINY = {
    "pca": {"n_dims": 5, "n_top_genes": 120},
    "random_projection": {"n_dims": 5, "n_top_genes": 120},
    "vae": {"n_dims": 3, "n_top_genes": 80, "epochs": 2, "n_hidden": 8, "batch_size": 32},
    "transformer": {"n_top_genes": 80, "max_len": 12, "width": 8, "n_heads": 2, "epochs": 2,
                    "batch_size": 32},
}


def write_store(path, X, genes=None):
    """A CSR (or whatever X is) .h5ad store of X."""
    var = None if genes is None else pd.DataFrame(index=list(genes))
    ad.AnnData(X, var=var).write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def counts():
    """A simulated dataset of 300 cells x 500 genes, float32 CSR."""
    return sp.csr_matrix(simulate(300, 500, seed=0, n_proteins=0, n_programs=2).X,
                         dtype=np.float32)


@pytest.fixture(scope="module")
def stream(counts, tmp_path_factory):
    """The counts split over two stores (180 + 120 cells), read in chunks of 64 rows."""
    d = tmp_path_factory.mktemp("stores")
    paths = [write_store(d / "a.h5ad", counts[:180]), write_store(d / "b.h5ad", counts[180:])]
    return RowStream(paths, chunk_rows=64)


def digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


# -- the stream ----------------------------------------------------------------------------------

def test_stream_chunks_in_order_and_shuffled(stream, counts):
    assert stream.shape == counts.shape == (stream.n_cells, stream.n_genes)
    assert stream.nnz == counts.nnz and stream.rows == (180, 120)
    chunks = list(stream.chunks())
    assert [c.shape[0] for c in chunks] == [64, 64, 52, 64, 56]  # stores are not mixed
    for c in chunks:
        assert c.dtype == np.float32 and c.has_canonical_format
    assert (sp.vstack(chunks) != counts).nnz == 0
    assert (stream.read() != counts).nnz == 0
    shuffled = list(stream.chunks(seed=5, with_positions=True))
    positions = np.concatenate([p for p, _ in shuffled])
    assert sorted(positions.tolist()) == list(range(300))
    assert not np.array_equal(positions, np.arange(300))
    for pos, c in shuffled:
        assert c.has_canonical_format and (c != counts[pos]).nnz == 0
    again = np.concatenate([p for p, _ in stream.chunks(seed=5, with_positions=True)])
    other = np.concatenate([p for p, _ in stream.chunks(seed=6, with_positions=True)])
    assert np.array_equal(positions, again) and not np.array_equal(positions, other)
    # a stream pickles (paths and sizes), and picks its chunks by the entries per row
    copy = pickle.loads(pickle.dumps(stream))
    assert copy.shape == stream.shape and copy.chunk_rows == 64
    auto = RowStream(stream.paths)
    assert auto.chunk_rows == chunk_rows_for(None, 300, counts.nnz / 300)


def test_stream_errors(tmp_path, counts):
    good = write_store(tmp_path / "good.h5ad", counts[:20])
    dense = write_store(tmp_path / "dense.h5ad", counts[:20].toarray())
    with pytest.raises(ValueError, match="X in .*dense.h5ad is a dense array, not a CSR"):
        RowStream([good, dense])
    csc = write_store(tmp_path / "csc.h5ad", sp.csc_matrix(counts[:20]))
    with pytest.raises(ValueError, match="stored as CSC"):
        RowStream(csc)
    text = tmp_path / "notes.h5ad"
    text.write_text("not a store\n")
    with pytest.raises(ValueError, match="not an AnnData file"):
        RowStream(text)
    fewer = write_store(tmp_path / "fewer.h5ad", counts[:20, :400])
    with pytest.raises(ValueError, match="fewer.h5ad has 400 genes but .*good.h5ad has 500"):
        RowStream([good, fewer])
    names = [f"g{i}" for i in range(500)]
    renamed = write_store(tmp_path / "renamed.h5ad", counts[:20], names[::-1])
    with pytest.raises(ValueError, match="names its genes differently .*first at 0: 'g499'"):
        RowStream([good, renamed])
    with pytest.raises(ValueError, match="at least one store"):
        RowStream([])
    with pytest.raises(FileNotFoundError):
        RowStream(tmp_path / "missing.h5ad")
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        RowStream(good, chunk_rows=0)
    # counts are checked chunk by chunk, as in memory, with the store and its cell
    bad = counts[:20].copy()
    bad.data[bad.indptr[13]] = 0.5
    frac = write_store(tmp_path / "frac.h5ad", bad)
    with pytest.raises(ValueError, match=r"counts in .*frac.h5ad must be whole numbers .*cell 13"):
        list(RowStream([good, frac], chunk_rows=8).chunks())
    bad.data[bad.indptr[13]] = -1
    neg = write_store(tmp_path / "neg.h5ad", bad)
    with pytest.raises(ValueError, match=r"counts in .*neg.h5ad must be non-negative .*cell 13"):
        models.get("pca", **TINY["pca"]).fit(RowStream([good, neg]))


# -- highly variable genes -----------------------------------------------------------------------

def scanpy_hvg(X: sp.csr_matrix, n_top_genes: int) -> np.ndarray:
    """scanpy's seurat_v3 genes on the expressed genes, with select_hvg's span fallbacks."""
    import scanpy as sc

    expressed = np.flatnonzero(X.getnnz(axis=0) > 0)
    for span in (0.3, 0.5, 1.0):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = sc.pp.highly_variable_genes(ad.AnnData(X[:, expressed]), inplace=False,
                                                 flavor="seurat_v3", span=span,
                                                 n_top_genes=n_top_genes)
            return np.sort(expressed[df["highly_variable"].to_numpy()])
        except (ValueError, RuntimeError):
            pass
    raise AssertionError("scanpy could not rank the genes")


def test_streamed_hvg_are_select_hvg_and_scanpy(tmp_path, counts):
    matrices = {
        "simulated": counts,
        "shallow": ns.thin(counts, 0.03, seed=1),  # ~20 UMIs a cell: many tied genes
        "random": random_counts(250, 400, 0.05, seed=2),
        "other seed": sp.csr_matrix(simulate(200, 700, seed=3, n_proteins=0).X),
    }
    for name, X in matrices.items():
        X = sp.csr_matrix(X, dtype=np.float32)
        paths = [write_store(tmp_path / f"{name}-{i}.h5ad", X[a:b])
                 for i, (a, b) in enumerate([(0, 90), (90, X.shape[0])])]
        stream = RowStream(paths, chunk_rows=37)
        for n_top in (50, 150):
            genes = select_hvg(X, n_top)
            assert np.array_equal(select_hvg_stream(stream, n_top), genes), (name, n_top)
            assert np.array_equal(scanpy_hvg(X, n_top), genes), (name, n_top)
    # the refusals are the same too
    flat = write_store(tmp_path / "flat.h5ad", sp.csr_matrix(np.ones((10, 40), np.float32)))
    with pytest.raises(ValueError, match=re.escape("only 0 of the 40 expressed genes vary")):
        select_hvg_stream(RowStream(flat), 5)


def test_streamed_gene_medians_are_exact(counts):
    X = sp.csr_matrix(counts[:, :200] @ sp.diags((np.arange(200) != 7).astype(np.float32)))
    X.eliminate_zeros()  # gene 7 is expressed by no cell: its median is 1
    assert X[:, 7].nnz == 0 and X.dtype == np.float32
    for Y in (X, ns.thin(X, 0.05, seed=0)):
        expected = gene_medians(Y)
        chunks = [Y[i:i + 50] for i in range(0, 300, 50)]
        for budget in (1 << 24, 40, 0):  # collect at once, after a few passes, never
            got = stream_gene_medians(chunks.__iter__, 200, max_candidates=budget)
            assert np.array_equal(got, expected)
    assert np.array_equal(stream_gene_medians(lambda: (), 3), np.ones(3))


# -- linear models -------------------------------------------------------------------------------

@pytest.mark.parametrize("center", [True, False])
def test_pca_stream_is_exact_pca(stream, counts, center):
    """Covariance + eigh is exact PCA: on the same cells the components are ARPACK's up to
    its convergence (1e-4) and the embeddings correlate > 0.9999 per dimension."""
    params = {**TINY["pca"], "center": center}
    memory = models.get("pca", **params).fit(counts, seed=0)
    streamed = models.get("pca", **params).fit(stream, seed=0)
    assert streamed.history["route"] == "stream" and memory.history["route"] == "memory"
    assert streamed.history["method"] == "covariance_eigh (out-of-core)"
    assert np.array_equal(streamed.hvg_, memory.hvg_)
    np.testing.assert_allclose(streamed.components_, memory.components_, atol=1e-4)
    np.testing.assert_allclose(streamed.center_, memory.center_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(streamed.history["variance_ratio"],
                               memory.history["variance_ratio"], rtol=1e-4)
    a, b = memory.embed(counts), streamed.embed(stream)
    assert b.dtype == np.float32 and b.shape == (300, 5)
    for k in range(5):
        assert np.corrcoef(a[:, k], b[:, k])[0, 1] > 0.9999
    np.testing.assert_allclose(streamed.embed(counts), b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("params", [{}, {"log_normalize": False, "center": False}])
def test_random_projection_stream(stream, counts, params):
    from sklearn.random_projection import GaussianRandomProjection

    params = {**TINY["random_projection"], **params}
    memory = models.get("random_projection", **params).fit(counts, seed=4)
    streamed = models.get("random_projection", **params).fit(stream, seed=4)
    assert np.array_equal(streamed.components_, memory.components_)
    # the components depend on the genes and the seed only: those of a fit on the matrix
    L = log_normalize(counts, memory.hvg_)
    fitted = GaussianRandomProjection(n_components=5, random_state=4).fit(L)
    assert np.array_equal(memory.components_, fitted.components_.astype(np.float32))
    np.testing.assert_allclose(streamed.center_, memory.center_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(streamed.embed(stream), memory.embed(counts), rtol=1e-4,
                               atol=1e-4)


# -- trained models ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vae", "transformer"])
def test_trained_models_fit_on_a_stream(name, stream, counts, tmp_path):
    before = digest(stream.paths)
    m = models.get(name, **TINY[name]).fit(stream, seed=2)
    assert m.history["route"] == "stream"
    assert m.history["training_cells"] == 270 and m.history["validation_cells"] == 30
    assert m.history["epochs_run"] == 2 and np.isfinite(m.history["val_loss"]).all()
    assert np.array_equal(m.hvg_, select_hvg(counts, TINY[name]["n_top_genes"]))
    if name == "transformer":
        assert np.array_equal(m.medians_, gene_medians(counts[:, m.hvg_]))
    z = m.embed(stream)
    assert z.shape == (300, m.n_dims) and z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z, m.embed(counts), rtol=1e-5, atol=1e-6)
    again = models.get(name, **TINY[name]).fit(stream, seed=2)
    assert np.array_equal(again.embed(stream), z)  # the same seed: the same bits
    # given validation cells (a stream too is read whole): every streamed cell trains, and
    # they decide early stopping
    val = counts[:40]
    v = models.get(name, **TINY[name]).fit(
        stream, seed=2, validation=RowStream(write_store(tmp_path / "val.h5ad", val)))
    assert v.history["training_cells"] == 300 and v.history["validation_cells"] == 40
    if name == "vae":
        best = v.history["val_loss"][v.history["best_epoch"]]
        assert v.validation_elbo(val) == pytest.approx(best, rel=1e-5)
    m.save(tmp_path / "m.pt")
    loaded = models.load(tmp_path / "m.pt")
    assert loaded.history["route"] == "stream"
    assert np.array_equal(loaded.embed(stream), z)
    assert digest(stream.paths) == before  # nothing is written into the stores
    assert sorted(p.name for p in stream.paths[0].parent.iterdir()) == ["a.h5ad", "b.h5ad"]


def test_stream_split_and_batches(stream, counts):
    """The validation cells are the in-memory split's; each epoch's batches hold every other
    cell once, in a seeded order, and drop a last batch of one cell for BatchNorm."""
    vae = models.get("vae", **{**TINY["vae"], "batch_size": 2})
    genes = np.arange(0, 500, 7)
    part = vae._stream_split(stream, 2, None, genes)
    train_X, val_X, _ = vae._training_split(counts, 2, None)
    assert part.n_train == 270 and part.has_counts and part.held.sum() == 30
    assert (part.validation != val_X[:, genes]).nnz == 0
    for size, last in [(32, 14), (2, 2), (269, 1)]:  # 270 = 8 x 32 + 14 = 135 x 2
        vae.batch_size = size
        batches = list(vae._stream_batches(stream, genes, part.held, 2, epoch=0))
        sizes = [b.shape[0] for b in batches]
        assert set(sizes[:-1]) <= {size}
        if last == 1:  # dropped
            assert sizes == [269]
        else:
            assert sizes[-1] == last and sum(sizes) == 270
            rows = sp.vstack(batches)
            assert np.array_equal(rows.sum(axis=0), train_X[:, genes].sum(axis=0))
    vae.batch_size = 32
    first = sp.vstack(list(vae._stream_batches(stream, genes, part.held, 2, epoch=0)))
    second = sp.vstack(list(vae._stream_batches(stream, genes, part.held, 2, epoch=1)))
    repeat = sp.vstack(list(vae._stream_batches(stream, genes, part.held, 2, epoch=0)))
    assert (first != repeat).nnz == 0 and (first != second).nnz > 0


# -- what a stream cannot do ---------------------------------------------------------------------

class MemoryOnly(RepresentationModel):
    name = "memory_only"

    @property
    def n_dims(self) -> int:
        return 2

    def params(self):
        return {}

    def _fit(self, X, seed, validation=None):
        pass

    def _embed(self, X):
        return np.zeros((X.shape[0], 2))

    def _state(self):
        return {}

    def _load_state(self, state):
        pass


def test_stream_refusals(stream, counts, tmp_path):
    # every model has an out-of-core route: one without it cannot be made
    with pytest.raises(TypeError, match="abstract method '?_fit_stream"):
        MemoryOnly()
    assert models.get("pca", **TINY["pca"]).fit(counts).history["route"] == "memory"
    pca = models.get("pca", **TINY["pca"])
    with pytest.raises(TypeError, match="layer= is only meaningful with an AnnData input"):
        pca.fit(stream, layer="counts")
    with pytest.raises(ValueError, match="validation has 499 genes but the training counts "
                                         "have 500"):
        models.get("vae", **TINY["vae"]).fit(stream, validation=counts[:10, :499])
    pca.fit(counts)
    with pytest.raises(ValueError, match="fitted on 500 genes but these counts have 400"):
        pca.embed(RowStream(write_store(tmp_path / "narrow.h5ad", counts[:10, :400])))
    five = RowStream(write_store(tmp_path / "five.h5ad", counts[:5]))
    with pytest.raises(ValueError, match="PCA with 5 dims needs more than 5 training cells"):
        pca.fit(five)
