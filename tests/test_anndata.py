"""AnnData entry points in the scanpy style: layer=, key_added=, copy=."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import noisescale as ns
from conftest import random_counts, same_matrix


@pytest.fixture
def adata():
    X = random_counts(50, 40, seed=3)
    a = ad.AnnData(X=X.copy())
    a.layers["counts"] = X.copy()
    a.obs["group"] = np.arange(50) % 3
    return a


def test_copy_returns_new_object_and_leaves_input(adata):
    before = adata.X.copy()
    out = ns.thin(adata, 0.5, seed=1)
    assert isinstance(out, ad.AnnData) and out is not adata
    assert same_matrix(out.X, ns.thin(before, 0.5, seed=1))
    assert same_matrix(adata.X, before)
    assert list(out.obs["group"]) == list(adata.obs["group"])


def test_layer_and_key_added(adata):
    out = ns.thin(adata, 0.2, seed=1, layer="counts", key_added="thinned")
    assert same_matrix(out.layers["thinned"], ns.thin(adata.layers["counts"], 0.2, seed=1))
    assert same_matrix(out.layers["counts"], adata.layers["counts"])
    assert "thinned" not in adata.layers


def test_in_place(adata):
    X0 = adata.X.copy()
    assert ns.thin(adata, 0.3, seed=2, key_added="q03", copy=False) is None
    assert same_matrix(adata.layers["q03"], ns.thin(X0, 0.3, seed=2))
    assert same_matrix(adata.X, X0)
    assert ns.downsample_to(adata, 5, seed=2, copy=False) is None
    assert same_matrix(adata.X, ns.downsample_to(X0, 5, seed=2))


def test_series_on_anndata(adata):
    outs = ns.thin_series(adata, [0.5, 0.1], seed=4)
    assert len(outs) == 2 and all(isinstance(o, ad.AnnData) for o in outs)
    with pytest.raises(ValueError, match="key_added"):
        ns.thin_series(adata, [0.5, 0.1], copy=False)
    ns.thin_series(adata, [0.5, 0.1], seed=4, layer="counts", key_added=["a", "b"], copy=False)
    assert same_matrix(adata.layers["b"], outs[1].X)
    with pytest.raises(ValueError, match="2 layer names"):
        ns.thin_series(adata, [0.5, 0.1], key_added=["only_one"])


def test_anndata_errors(adata, tmp_path):
    with pytest.raises(KeyError, match="raw_counts"):
        ns.thin(adata, 0.5, layer="raw_counts")
    view = adata[:10]
    with pytest.raises(ValueError, match="view"):
        ns.thin(view, 0.5, copy=False)
    assert ns.thin(view, 0.5, seed=1).n_obs == 10
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match="backed"):
        ns.thin(backed, 0.5)
    backed.file.close()
