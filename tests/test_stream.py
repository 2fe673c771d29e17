"""Out-of-core thinning of .h5ad/.zarr stores: bit-identity with the in-memory calls."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noisescale as ns
from conftest import random_counts, same_matrix, shared_file
from noisescale.io import CountsReader


def make_adata(n_obs: int = 300, n_vars: int = 40, seed: int = 0) -> ad.AnnData:
    """An AnnData with counts in X and layers['counts'] and every kind of annotation."""
    rng = np.random.default_rng(seed)
    X = random_counts(n_obs, n_vars, density=0.3, seed=seed)
    a = ad.AnnData(X, obs=pd.DataFrame(
        {"type": pd.Categorical(rng.choice(["B", "T", "NK"], n_obs)),
         "depth": rng.integers(0, 60, n_obs)},
        index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame({"symbol": [f"G{j}" for j in range(n_vars)]},
                         index=[f"g{j}" for j in range(n_vars)]))
    a.layers["counts"] = random_counts(n_obs, n_vars, density=0.25, seed=seed + 1,
                                       dtype=np.int64, index_dtype=np.int64)
    a.layers["lognorm"] = np.log1p(X)
    a.obsm["protein"] = rng.poisson(5.0, (n_obs, 3)).astype(np.float32)
    a.obsp["distances"] = sp.random(n_obs, n_obs, density=0.01, format="csr", random_state=1)
    a.varm["loadings"] = rng.normal(size=(n_vars, 2))
    a.uns["note"] = "kept"
    return a


def write(a: ad.AnnData, path) -> None:
    if str(path).endswith(".zarr"):
        a.write_zarr(path)
    else:
        a.write_h5ad(path)


def read(path) -> ad.AnnData:
    return ad.read_zarr(path) if str(path).endswith(".zarr") else ad.read_h5ad(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    a = make_adata()
    paths = {fmt: d / f"cells.{fmt}" for fmt in ("h5ad", "zarr")}
    for p in paths.values():
        write(a, p)
    return a, paths


# zarr calls cost milliseconds each, so zarr sides get the larger chunks
@pytest.mark.parametrize("src_fmt, chunk_rows, dst_fmt", [
    ("h5ad", 1, "h5ad"), ("h5ad", 7, "h5ad"), ("h5ad", 128, "h5ad"), ("h5ad", None, "h5ad"),
    ("h5ad", 64, "zarr"), ("zarr", 64, "h5ad"), ("zarr", None, "zarr")])
@pytest.mark.parametrize("layer", [None, "counts"])
def test_thin_file_equals_in_memory(stores, tmp_path, src_fmt, dst_fmt, layer, chunk_rows):
    a, paths = stores
    out = ns.thin_file(paths[src_fmt], tmp_path / f"out.{dst_fmt}", 0.3, seed=11, layer=layer,
                       chunk_rows=chunk_rows)
    b = read(out)
    expected = ns.thin(a, 0.3, seed=11, layer=layer)
    key = "X" if layer is None else layer
    got = b.X if layer is None else b.layers[layer]
    assert same_matrix(got, expected.X if layer is None else expected.layers[layer]), key
    # annotations carried over unchanged
    pd.testing.assert_frame_equal(b.obs, a.obs)
    pd.testing.assert_frame_equal(b.var, a.var)
    assert np.array_equal(b.obsm["protein"], a.obsm["protein"])
    assert np.array_equal(b.varm["loadings"], a.varm["loadings"])
    assert same_matrix(b.obsp["distances"], a.obsp["distances"])
    assert b.uns["note"] == "kept"
    # matrices that would still hold full-depth data are not copied
    assert set(b.layers.keys()) == (set() if layer is None else {layer})
    if layer is not None:
        assert b.X is None


def test_series_file_equals_in_memory_and_is_nested(stores, tmp_path):
    a, paths = stores
    qs = [0.6, 0.25, 0.05]
    outs = ns.thin_series_file(paths["h5ad"], [tmp_path / f"q{q}.h5ad" for q in qs], qs,
                               seed=3, chunk_rows=50)
    expected = ns.thin_series(a.X, qs, seed=3)
    levels = [ad.read_h5ad(p).X for p in outs]
    for got, exp in zip(levels, expected):
        assert same_matrix(got, exp)
    dense = [L.toarray() for L in levels]
    assert np.all(dense[0] >= dense[1]) and np.all(dense[1] >= dense[2])
    prov = ad.read_h5ad(outs[2]).uns["noisescale"]
    assert prov["operation"] == "thin_series" and prov["level"] == 2
    assert prov["fraction"] == 0.05 and list(prov["fractions"]) == qs


@pytest.mark.parametrize("target", [20, "depth", "array"])
def test_downsample_file_equals_in_memory(stores, tmp_path, target):
    a, paths = stores
    t = {"depth": a.obs["depth"].to_numpy(), "array": np.arange(a.n_obs) % 37}.get(target, target)
    arg = "depth" if target == "depth" else t
    out = ns.downsample_file(paths["zarr"], tmp_path / "d.h5ad", arg, seed=5, chunk_rows=33)
    b = ad.read_h5ad(out)
    assert same_matrix(b.X, ns.downsample_to(a.X, t, seed=5))
    totals = np.asarray(a.X.sum(axis=1)).ravel()
    assert np.array_equal(np.asarray(b.X.sum(axis=1)).ravel(), np.minimum(totals, t))
    prov = b.uns["noisescale"]
    if target == "depth":
        assert prov["target_column"] == "depth"
    elif target == "array":
        assert prov["target_umis"] == "per cell"
        assert list(prov["target_umis_min_median_max"]) == [0, 18, 36]
    else:
        assert prov["target_umis"] == 20


def test_dense_x_streams(tmp_path):
    a = make_adata(n_obs=90, n_vars=12)
    a.X = a.X.toarray()
    write(a, tmp_path / "dense.h5ad")
    for dst in ("o.h5ad", "o.zarr"):
        out = ns.thin_file(tmp_path / "dense.h5ad", tmp_path / dst, 0.5, seed=2, chunk_rows=8)
        got = read(out).X
        assert isinstance(got, np.ndarray)
        assert same_matrix(got, ns.thin(a.X, 0.5, seed=2))


def test_provenance(stores, tmp_path):
    a, paths = stores
    out = ns.thin_file(paths["h5ad"], tmp_path / "p.h5ad", 0.2, seed=9, layer="counts")
    prov = ad.read_h5ad(out).uns["noisescale"]
    assert prov["version"] == ns.__version__
    assert prov["operation"] == "thin" and prov["seed"] == 9 and prov["fraction"] == 0.2
    assert prov["source"] == str(paths["h5ad"].resolve()) and prov["source_layer"] == "counts"
    thinned = ns.thin(a.layers["counts"], 0.2, seed=9)
    assert prov["n_cells"] == a.n_obs
    assert prov["mean_umis_per_cell"] == pytest.approx(thinned.sum() / a.n_obs, rel=1e-6)
    assert prov["source_mean_umis_per_cell"] == pytest.approx(
        a.layers["counts"].sum() / a.n_obs, rel=1e-6)
    # thinning a thinned file keeps the history
    again = ns.thin_file(out, tmp_path / "p2.h5ad", 0.5, seed=1, layer="counts")
    prov2 = ad.read_h5ad(again).uns["noisescale"]
    assert prov2["previous"]["fraction"] == 0.2 and prov2["fraction"] == 0.5


def test_unsigned_and_mixed_index_dtypes(tmp_path):
    """anndata can store indices as the smallest unsigned type; they are widened on read."""
    a = make_adata(n_obs=50, n_vars=20)
    with ad.settings.override(write_csr_csc_indices_with_min_possible_dtype=True):
        a.write_h5ad(tmp_path / "u.h5ad")
    with CountsReader(tmp_path / "u.h5ad") as r:
        block = r.rows(0, 50)
    assert block.indices.dtype.kind == "i"
    out = ns.thin_file(tmp_path / "u.h5ad", tmp_path / "o.h5ad", 0.4, seed=1)
    got = ad.read_h5ad(out).X
    assert np.array_equal(got.toarray(), ns.thin(a.X, 0.4, seed=1).toarray())


def test_empty_store(tmp_path):
    a = ad.AnnData(sp.csr_matrix((0, 5), dtype=np.float32))
    a.write_h5ad(tmp_path / "e.h5ad")
    out = ns.thin_file(tmp_path / "e.h5ad", tmp_path / "o.h5ad", 0.5)
    b = ad.read_h5ad(out)
    assert b.shape == (0, 5) and b.X.nnz == 0


def test_reader_rows_reuse_and_range(stores):
    a, paths = stores
    with CountsReader(paths["h5ad"]) as r:
        buf: dict = {}
        assert same_matrix(r.rows(10, 40, reuse=buf), a.X[10:40])
        assert same_matrix(r.rows(0, 300, reuse=buf), a.X)
        with pytest.raises(IndexError, match="out of range"):
            r.rows(0, 301)


def test_real_data_streams_like_in_memory(tmp_path):
    path = shared_file("pbmc4k_soupx.h5ad")
    out = ns.thin_file(path, tmp_path / "pbmc.zarr", 0.1, seed=4, chunk_rows=500)
    got = ad.read_zarr(out)
    full = ad.read_h5ad(path)
    assert same_matrix(got.X, ns.thin(full.X, 0.1, seed=4))
    pd.testing.assert_frame_equal(got.obs, full.obs)
    assert np.array_equal(got.obsm["X_tsne"], full.obsm["X_tsne"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # zarr/anndata notes on v3 defaults
def test_zarr_v3_in_gives_zarr_v3_out(tmp_path):
    import zarr
    a = make_adata(n_obs=60, n_vars=10)
    with ad.settings.override(zarr_write_format=3):
        a.write_zarr(tmp_path / "v3.zarr")
    out = ns.thin_file(tmp_path / "v3.zarr", tmp_path / "o.zarr", 0.5, seed=1, chunk_rows=25)
    assert zarr.open_group(out, mode="r").metadata.zarr_format == 3
    assert same_matrix(ad.read_zarr(out).X, ns.thin(a.X, 0.5, seed=1))
