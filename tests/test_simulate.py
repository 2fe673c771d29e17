"""The count simulator: determinism, chunk invariance, realism, signals and files."""

from __future__ import annotations

import threading

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

from conftest import same_matrix, shared_file
from noisescale import simulate as sim_module
from noisescale.cli import main
from noisescale.errors import Cancelled
from noisescale.io import AnnDataWriter
from noisescale.mi import ksg, mi_discrete
from noisescale.simulate import count_statistics as summary
from noisescale.simulate import simulate, simulate_file

SMALL = dict(n_genes=400, mean_umis=800.0)


@pytest.fixture(scope="module")
def cells():
    return simulate(2500, **SMALL, seed=7)


def same_adata(a: ad.AnnData, b: ad.AnnData) -> None:
    assert same_matrix(sp.csr_matrix(a.X), sp.csr_matrix(b.X))
    assert a.obs.equals(b.obs) and a.var.equals(b.var)
    assert list(a.obs_names) == list(b.obs_names)
    assert sorted(a.obsm) == sorted(b.obsm)
    for k in a.obsm:
        assert np.array_equal(a.obsm[k], b.obsm[k]) and a.obsm[k].dtype == b.obsm[k].dtype


def test_same_seed_same_data_other_seed_other_data(cells):
    same_adata(cells, simulate(2500, **SMALL, seed=7))
    other = simulate(2500, **SMALL, seed=8)
    assert (cells.X != other.X).nnz > 0
    assert not np.array_equal(cells.obsm["state"], other.obsm["state"])


def test_shapes_dtypes_and_annotations(cells, tmp_path):
    a = cells
    assert a.shape == (2500, 400)
    assert isinstance(a.X, sp.csr_matrix) and a.X.dtype == np.float32
    assert a.X.indices.dtype == np.int32 and a.X.has_sorted_indices
    assert np.all(a.X.data >= 1) and np.all(a.X.data == np.round(a.X.data))
    assert a.obs_names.is_unique and a.var_names.is_unique and a.obs_names[0] == "cell_0000"
    assert a.obs["cell_type"].dtype == "category"
    assert list(a.obs["cell_type"].cat.categories) == [f"type_{t}" for t in range(8)]
    assert a.obs["time"].dtype == np.float64 and a.obs["library_size"].min() > 0
    assert a.obsm["state"].shape == (2500, 8 + 4) and a.obsm["state"].dtype == np.float32
    assert np.array_equal(a.obsm["state"][:, :8].argmax(1), a.obs["cell_type"].cat.codes)
    assert a.obsm["protein"].shape == (2500, 20) and a.obsm["protein"].dtype == np.float32
    assert "spatial" not in a.obsm
    rec = a.uns["simulation"]
    assert rec["seed"] == 7 and rec["likelihood"] == "nb" and rec["cells"] == [0, 2500]
    a.write_h5ad(tmp_path / "a.h5ad")  # plain types only
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert back.uns["simulation"]["n_genes"] == 400
    bare = simulate(300, 50, n_programs=0, n_proteins=0, seed=1)
    assert "time" not in bare.obs and "protein" not in bare.obsm
    assert bare.obsm["state"].shape == (300, 8)


def test_depth_library_spread_and_sparsity():
    a = simulate(3000, 2000, mean_umis=1500, library_sigma=0.45, seed=2)
    total = np.asarray(a.X.sum(1)).ravel()
    assert abs(total.mean() / 1500 - 1) < 0.05
    assert 0.38 < np.log(total).std() < 0.62  # library sigma plus type sizes and sampling
    zeros = 1 - a.X.nnz / np.prod(a.shape)
    assert 0.75 < zeros < 0.99
    # without library spread: per-type sizes (sd 0.25) and NB sampling remain
    flat = simulate(3000, 2000, mean_umis=1500, library_sigma=0.0, seed=2)
    assert np.log(np.asarray(flat.X.sum(1)).ravel()).std() < np.log(total).std() - 0.1
    # NB is overdispersed against Poisson at the same means
    poisson = simulate(3000, 2000, mean_umis=1500, likelihood="poisson", seed=2)
    assert abs(poisson.X.sum() / a.X.sum() - 1) < 0.03
    assert (1 - poisson.X.nnz / np.prod(a.shape)) < zeros


def test_signals_depend_on_state(cells):
    a = cells
    labels = a.obs["cell_type"].to_numpy()
    protein = np.log1p(a.obsm["protein"])
    assert mi_discrete(protein, labels) > 1.0
    shuffled = np.random.default_rng(0).permutation(labels)
    assert mi_discrete(protein, shuffled) < 0.1
    programs = a.obsm["state"][:, 8:]
    assert ksg(a.obs["time"].to_numpy(), programs) > 0.8
    noisy = simulate(2500, **SMALL, seed=7, protein_noise=2.0, time_noise=1.0)
    assert mi_discrete(np.log1p(noisy.obsm["protein"]), labels) < mi_discrete(protein, labels)
    assert ksg(noisy.obs["time"].to_numpy(), programs) < ksg(a.obs["time"].to_numpy(), programs)
    # the counts carry the type: a few marker genes separate it
    markers = a.var[a.var["marker"]].sort_values("mean_proportion").index[-20:]
    expr = np.log1p(a[:, markers].X.toarray())
    assert mi_discrete(expr, labels) > 0.5


def test_spatial_neighbours_share_state():
    a = simulate(3000, 100, mean_umis=200, spatial=True, seed=3)
    xy = a.obsm["spatial"]
    assert xy.shape == (3000, 2) and xy.min() >= 0
    assert xy.max() <= 10 * np.sqrt(3000)
    _, nn = cKDTree(xy).query(xy, k=2)
    pair = nn[:, 1]
    rand = np.random.default_rng(0).permutation(3000)
    t = a.obs["cell_type"].cat.codes.to_numpy()
    assert np.mean(t == t[pair]) > 0.6 > 0.3 > np.mean(t == t[rand])
    z = a.obsm["state"][:, 8:]
    corr = np.mean([np.corrcoef(z[:, k], z[pair, k])[0, 1] for k in range(z.shape[1])])
    assert corr > 0.5


def test_slice_equals_rows_of_the_whole(cells):
    for a, b in [(0, 2500), (1000, 2100), (1023, 1025), (2499, 2500), (5, 5)]:
        part = simulate(2500, **SMALL, seed=7, cells=slice(a, b))
        assert part.shape == (b - a, 400)
        assert same_matrix(part.X, cells.X[a:b])
        assert part.obs.equals(cells.obs.iloc[a:b])
        assert np.array_equal(part.obsm["protein"], cells.obsm["protein"][a:b])
    # without spatial coordinates the first cells do not depend on n_cells
    assert same_matrix(simulate(700, **SMALL, seed=7).X, cells.X[:700])


def test_file_equals_memory_for_any_chunking(cells, tmp_path):
    one = simulate_file(tmp_path / "a.h5ad", 2500, chunk_cells=333, **SMALL, seed=7)
    two = simulate_file(tmp_path / "b.zarr", 2500, chunk_cells=4096, **SMALL, seed=7)
    for path, reader in [(one, ad.read_h5ad), (two, ad.read_zarr)]:
        back = reader(path)
        same_adata(back, cells)
        assert back.uns["simulation"]["n_cells"] == 2500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad", "b.zarr"]


def test_file_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "s.h5ad"
    out.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_file(out, 100, 50)
    assert out.read_bytes() == b"old"
    calls = []
    real = AnnDataWriter.append_rows

    def failing(self, key, block):  # the disk fails on the second chunk of counts
        calls.append(key)
        if calls.count("X") == 2:
            raise RuntimeError("boom")
        return real(self, key, block)

    monkeypatch.setattr(AnnDataWriter, "append_rows", failing)
    with pytest.raises(RuntimeError, match="boom"):
        simulate_file(out, 300, 50, chunk_cells=100, overwrite=True)
    monkeypatch.undo()
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["s.h5ad"]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        simulate_file(out, 300, 50, overwrite=True, cancel=stop)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5ad"]
    simulate_file(out, 300, 50, overwrite=True, seed=4)
    assert same_matrix(ad.read_h5ad(out).X, simulate(300, 50, seed=4).X)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5ad"]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_cells=0), ValueError, "n_cells must be an integer >= 1"),
    (dict(n_cells=2.5), ValueError, "n_cells"),
    (dict(n_genes=0), ValueError, "n_genes"),
    (dict(n_types=0), ValueError, "n_types"),
    (dict(n_programs=-1), ValueError, "n_programs"),
    (dict(mean_umis=0), ValueError, "mean_umis must be a finite number > 0"),
    (dict(mean_umis=float("nan")), ValueError, "mean_umis"),
    (dict(mean_umis="many"), TypeError, "mean_umis must be a number"),
    (dict(library_sigma=-0.1), ValueError, "library_sigma"),
    (dict(library_sigma=5), ValueError, "library_sigma must be at most 3"),
    (dict(likelihood="zinb"), ValueError, "likelihood must be 'nb' or 'poisson'"),
    (dict(dispersion=-1), ValueError, "dispersion"),
    (dict(n_proteins=-2), ValueError, "n_proteins"),
    (dict(protein_noise=float("inf")), ValueError, "protein_noise"),
    (dict(time_noise=-1), ValueError, "time_noise"),
    (dict(spatial="yes"), TypeError, "spatial must be True or False"),
    (dict(seed=-1), ValueError, "seed must be in"),
    (dict(seed=1.5), TypeError, "seed must be an integer"),
    (dict(cells=[1, 2]), TypeError, "cells must be a slice"),
    (dict(cells=slice(0, 10, 2)), ValueError, "contiguous"),
])
def test_bad_arguments_name_the_parameter(kwargs, error, match):
    kwargs = {"n_cells": 10, "n_genes": 20, **kwargs}
    with pytest.raises(error, match=match):
        simulate(**kwargs)


def test_bad_file_arguments(tmp_path):
    with pytest.raises(ValueError, match="chunk_cells"):
        simulate_file(tmp_path / "x.h5ad", 10, 20, chunk_cells=0)
    with pytest.raises(TypeError, match="unknown simulate parameter.*n_type"):
        simulate_file(tmp_path / "x.h5ad", 10, 20, n_type=3)
    with pytest.raises(TypeError, match="cells="):
        simulate_file(tmp_path / "x.h5ad", 10, 20, cells=slice(0, 5))
    with pytest.raises(ValueError, match="must end in .h5ad or .zarr"):
        simulate_file(tmp_path / "x.csv", 10, 20)
    with pytest.raises(FileNotFoundError, match="output directory"):
        simulate_file(tmp_path / "no" / "x.h5ad", 10, 20)
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path, capsys):
    out = tmp_path / "c.h5ad"
    assert main(["simulate", str(out), "--cells", "600", "--genes", "120", "--seed", "2",
                 "--spatial", "--likelihood", "poisson", "--chunk-cells", "250",
                 "--quiet"]) == 0
    want = simulate(600, 120, seed=2, spatial=True, likelihood="poisson")
    same_adata(ad.read_h5ad(out), want)
    assert main(["simulate", str(out), "--cells", "10", "--genes", "5"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["simulate", str(out), "--cells", "10", "--mean-umis", "-3",
                 "--overwrite"]) == 1
    assert "mean_umis must be" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# Realism: the simulator at a real dataset's depth against that dataset.


def matched(real: dict[str, float], n_genes: int, seed: int = 0) -> dict[str, float]:
    return summary(simulate(2000, n_genes, mean_umis=real["mean_umis"],
                            library_sigma=real["log_library_sd"], seed=seed).X)


def test_statistics_like_pbmc4k():
    real = summary(ad.read_h5ad(shared_file("pbmc4k_soupx.h5ad")).X)  # 10x, all genes
    sim = matched(real, 33694)
    assert abs(sim["mean_umis"] / real["mean_umis"] - 1) < 0.05
    assert abs(sim["zero_fraction"] - real["zero_fraction"]) < 0.02
    assert 0.67 < sim["detected_median"] / real["detected_median"] < 1.5
    assert abs(sim["detected_vs_depth_slope"] - real["detected_vs_depth_slope"]) < 0.12
    assert abs(sim["mean_var_slope"] - real["mean_var_slope"]) < 0.15
    assert 0.4 < sim["overdispersion"] / real["overdispersion"] < 2.5


def test_statistics_like_paul2015():
    # 3,004 selected genes, so only the depth-driven statistics are comparable
    real = summary(ad.read_h5ad(shared_file("paul2015_tradeseq.h5ad")).X)
    sim = matched(real, 3004)
    assert abs(sim["log_library_sd"] - real["log_library_sd"]) < 0.1
    assert abs(sim["detected_vs_depth_slope"] - real["detected_vs_depth_slope"]) < 0.15
    assert abs(sim["mean_var_slope"] - real["mean_var_slope"]) < 0.2
    assert 0.25 < sim["overdispersion"] / real["overdispersion"] < 4


def test_module_is_not_exported_at_top_level():
    import noisescale

    assert "simulate" not in noisescale.__all__
    assert sim_module.simulate is simulate


def test_statistics_count_genes_not_stored_entries():
    """Duplicate entries and stored zeros are storage, not data: the statistics of a CSR equal
    those of its canonical form (they counted stored entries as detected genes)."""
    X = simulate(200, 300, seed=3).X.tocsr()
    stored_zeros = X.copy()
    stored_zeros.data[::4] = 0
    dup = sp.csr_matrix((np.repeat(X.data / 2, 2), np.repeat(X.indices, 2), 2 * X.indptr),
                        shape=X.shape)
    assert summary(dup) == summary(X)
    assert summary(stored_zeros) == summary(sp.csr_matrix(stored_zeros.toarray()))
