"""No public entry point modifies its inputs (issue 16).

Every array, sparse matrix (data, indices, indptr), AnnData (X, layers, obs, var, obsm, varm,
uns, names) and DataFrame given to a public function is fingerprinted bit for bit before and
after the call, and must be unchanged. The inputs are the shapes a caller really passes:
dense arrays (int, float32 in Fortran order, read-only), CSR with unsorted indices (float32,
and float64, which scipy converts to float32 sharing the index arrays), CSR with duplicate
entries or stored zeros, CSC, and AnnData with the counts in X or in a layer, or a view (which
anndata turns into a copy, detached from its parent, if anything writes to it).

``noisescale.simulate.simulate`` takes no array input and is not covered; the image noise
functions, ``count_statistics`` and the Gaussian channel are.
"""

from __future__ import annotations

import copy
import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noisescale as ns
from noisescale import laws, mi, models

N_CELLS, N_GENES = 60, 40

# Tiny settings: these tests check side effects, not what the models learn.
TINY = {
    "pca": {"n_dims": 4, "n_top_genes": 30},
    "random_projection": {"n_dims": 4, "n_top_genes": 30},
    "vae": {"n_dims": 3, "n_top_genes": 30, "epochs": 1, "n_hidden": 8},
    "transformer": {"n_top_genes": 30, "max_len": 8, "width": 8, "n_heads": 2, "epochs": 1},
}


# ---------------------------------------------------------------------------------------------
# Fingerprints


def _sha(buf: bytes) -> str:
    return hashlib.sha256(buf).hexdigest()


def fingerprint(obj):
    """A comparable summary of everything ``obj`` holds, arrays hashed bit for bit."""
    if isinstance(obj, np.ndarray):
        data = repr(obj.tolist()).encode() if obj.dtype == object else obj.tobytes()
        return ("ndarray", obj.dtype.str, obj.shape, obj.strides, obj.flags.writeable,
                _sha(data))
    if sp.issparse(obj):
        parts = {name: fingerprint(getattr(obj, name))
                 for name in ("data", "indices", "indptr", "row", "col", "offsets")
                 if isinstance(getattr(obj, name, None), np.ndarray)}
        return (type(obj).__name__, obj.format, obj.shape, obj.dtype.str, parts)
    if isinstance(obj, pd.DataFrame):
        return ("DataFrame", list(map(str, obj.columns)), list(map(str, obj.dtypes)),
                fingerprint(obj.index), _sha(pd.util.hash_pandas_object(obj).to_numpy()))
    if isinstance(obj, pd.Series):
        return ("Series", obj.name, str(obj.dtype), fingerprint(obj.index),
                _sha(pd.util.hash_pandas_object(obj).to_numpy()))
    if isinstance(obj, pd.Index):
        return ("Index", type(obj).__name__, str(obj.dtype), obj.name,
                _sha(pd.util.hash_pandas_object(obj).to_numpy()))
    if isinstance(obj, pd.Categorical):
        return ("Categorical", fingerprint(obj.categories), obj.ordered,
                fingerprint(np.asarray(obj.codes)))
    if isinstance(obj, ad.AnnData):
        return ("AnnData", obj.shape, obj.is_view, fingerprint(obj.X),
                {k: fingerprint(v) for k, v in obj.layers.items()},
                fingerprint(obj.obs), fingerprint(obj.var),
                {k: fingerprint(v) for k, v in obj.obsm.items()},
                {k: fingerprint(v) for k, v in obj.varm.items()},
                {k: fingerprint(v) for k, v in obj.obsp.items()},
                fingerprint(dict(obj.uns)))
    if isinstance(obj, dict):
        return ("dict", [(str(k), fingerprint(v)) for k, v in obj.items()])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [fingerprint(v) for v in obj])
    return ("value", type(obj).__name__, repr(obj))


def assert_untouched(call, *args, **kwargs):
    """Run ``call(*args, **kwargs)``; every argument must be bit-for-bit what it was."""
    before = [fingerprint(a) for a in (*args, *kwargs.values())]
    out = call(*args, **kwargs)
    after = [fingerprint(a) for a in (*args, *kwargs.values())]
    for i, (b, a) in enumerate(zip(before, after)):
        assert a == b, f"argument {i} was modified by {getattr(call, '__name__', call)}"
    return out


# ---------------------------------------------------------------------------------------------
# Inputs


def _counts(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = rng.lognormal(0.0, 1.2, size=N_GENES) * rng.lognormal(0.0, 0.5, size=(N_CELLS, 1))
    return rng.negative_binomial(2, 2 / (2 + mean)).astype(np.int64)


def _reversed_rows(A: sp.csr_matrix) -> sp.csr_matrix:
    """The same matrix with each row's entries stored in reverse order (unsorted indices)."""
    indices, data = A.indices.copy(), A.data.copy()
    for i in range(A.shape[0]):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        indices[lo:hi], data[lo:hi] = indices[lo:hi][::-1], data[lo:hi][::-1]
    out = sp.csr_matrix((data, indices, A.indptr.copy()), shape=A.shape)
    assert not out.has_sorted_indices
    return out


def _duplicates(A: sp.csr_matrix) -> sp.csr_matrix:
    """The same matrix with every row's first entry split in two stored entries."""
    coo = A.tocoo()
    first = A.indptr[:-1][np.diff(A.indptr) > 0]
    half = np.floor(A.data[first] / 2)
    data = np.concatenate([coo.data, half]).astype(A.dtype)
    data[first] -= half
    rows = np.concatenate([coo.row, coo.row[first]])
    cols = np.concatenate([coo.col, coo.col[first]])
    order = np.argsort(rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=A.shape[0]))])
    out = sp.csr_matrix((data[order], cols[order], indptr), shape=A.shape)
    assert not out.has_canonical_format and (out != A).nnz == 0
    return out


def _explicit_zeros(A: sp.csr_matrix) -> sp.csr_matrix:
    """The same matrix with zeros stored for a few absent entries of every row."""
    dense = A.toarray()
    mask = dense > 0
    mask[:, ::7] = True
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((dense[rows, cols], cols, np.concatenate(
        [[0], np.cumsum(mask.sum(axis=1))])), shape=A.shape)


def _anndata(X, layer: bool):
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["a", "b", "c"], N_CELLS)),
                        "depth": rng.random(N_CELLS)},
                       index=[f"cell{i}" for i in range(N_CELLS)])
    var = pd.DataFrame({"symbol": [f"G{j}" for j in range(N_GENES)]},
                       index=[f"g{j}" for j in range(N_GENES)])
    adata = ad.AnnData(None if layer else X, obs=obs, var=var,
                       obsm={"protein": rng.random((N_CELLS, 3))},
                       varm={"loading": rng.random((N_GENES, 2))},
                       uns={"note": "counts", "sizes": np.arange(3)})
    if layer:
        adata.X = sp.csr_matrix(adata.shape, dtype=np.float32)
        adata.layers["counts"] = X
    return adata


def count_inputs() -> dict[str, tuple[object, dict]]:
    """Name -> (counts, keyword arguments that select them), each built fresh."""
    D = _counts()
    A32 = sp.csr_matrix(D.astype(np.float32))
    readonly = D.astype(np.float64)
    readonly.setflags(write=False)
    return {
        "dense_int64": (D, {}),
        "dense_float32_fortran": (np.asfortranarray(D.astype(np.float32)), {}),
        "dense_readonly": (readonly, {}),
        "csr_unsorted_float32": (_reversed_rows(A32), {}),
        "csr_unsorted_float64": (_reversed_rows(sp.csr_matrix(D.astype(np.float64))), {}),
        "csr_duplicates": (_duplicates(A32), {}),
        "csr_explicit_zeros": (_explicit_zeros(A32), {}),
        "csc": (sp.csc_matrix(D.astype(np.float32)), {}),
        "anndata_X": (_anndata(_reversed_rows(A32), layer=False), {}),
        "anndata_layer": (_anndata(_duplicates(A32), layer=True), {"layer": "counts"}),
        "anndata_view": (_anndata(_reversed_rows(A32), layer=False)[np.arange(N_CELLS)], {}),
    }


COUNT_INPUTS = sorted(count_inputs())


# ---------------------------------------------------------------------------------------------
# Models


@pytest.fixture(scope="module")
def fitted() -> dict[str, models.RepresentationModel]:
    X = sp.csr_matrix(_counts().astype(np.float32))
    return {name: models.get(name, **TINY[name]).fit(X, seed=0) for name in models.available()}


@pytest.mark.parametrize("kind", COUNT_INPUTS)
@pytest.mark.parametrize("name", sorted(TINY))
def test_model_fit_and_fit_embed_leave_the_input(name, kind):
    assert sorted(TINY) == models.available()
    counts, kw = count_inputs()[kind]
    assert_untouched(models.get(name, **TINY[name]).fit, counts, seed=0, **kw)
    z = assert_untouched(models.get(name, **TINY[name]).fit_embed, counts, seed=0, **kw)
    assert z.shape[0] == N_CELLS and np.isfinite(z).all()


@pytest.mark.parametrize("kind", COUNT_INPUTS)
@pytest.mark.parametrize("name", sorted(TINY))
def test_model_embed_leaves_the_input(name, kind, fitted):
    counts, kw = count_inputs()[kind]
    model = fitted[name]  # fitted on an array: no gene names to compare with AnnData's
    z = assert_untouched(model.embed, counts, **kw)
    ref = fitted[name].embed(sp.csr_matrix(_counts().astype(np.float32)))
    np.testing.assert_array_equal(z, ref)  # the storage of the counts does not matter
    if name == "vae":
        assert np.isfinite(assert_untouched(model.validation_elbo, counts, **kw))


def test_canonical_copy_keeps_the_callers_matrix_valid():
    """The defect of issue 16: after fit, a duplicate-entry CSR still thins and still equals
    itself (its indptr matched its data before; it must still)."""
    counts, _ = count_inputs()["csr_duplicates"]
    ref = counts.toarray()
    models.get("pca", **TINY["pca"]).fit(counts)
    assert counts.indptr[-1] == counts.data.size
    np.testing.assert_array_equal(counts.toarray(), ref)
    unsorted, _ = count_inputs()["csr_unsorted_float64"]
    ref = unsorted.toarray()
    models.get("random_projection", **TINY["random_projection"]).fit(unsorted)
    np.testing.assert_array_equal(unsorted.toarray(), ref)
    assert not unsorted.has_sorted_indices


# ---------------------------------------------------------------------------------------------
# Thinning


@pytest.mark.parametrize("kind", COUNT_INPUTS)
@pytest.mark.parametrize("call", ["thin", "thin_series", "downsample_to"])
def test_thinning_leaves_the_input(call, kind):
    counts, kw = count_inputs()[kind]
    args = {"thin": (0.5,), "thin_series": ([0.5, 0.2],), "downsample_to": (20,)}[call]
    fn = getattr(ns, call)
    if kind in ("csr_duplicates", "anndata_layer"):  # refused: duplicates are ambiguous
        with pytest.raises(ValueError, match="duplicate entries"):
            assert_untouched(fn, counts, *args, seed=1, **kw)
        return
    assert_untouched(fn, counts, *args, seed=1, **kw)


# ---------------------------------------------------------------------------------------------
# MI estimators


def embedding_inputs() -> dict[str, object]:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((120, 3))
    readonly = z.copy()
    readonly.setflags(write=False)
    return {
        "float64": z,
        "float32_fortran": np.asfortranarray(z.astype(np.float32)),
        "readonly": readonly,
        "strided": np.repeat(z, 2, axis=1)[:, ::2],
        "one_dim": z[:, 0].copy(),
        "csr_unsorted": _reversed_rows(sp.csr_matrix(np.where(np.abs(z) > 0.3, z, 0.0))),
        "dataframe": pd.DataFrame(z, columns=list("abc"), index=[f"c{i}" for i in range(120)]),
    }


def label_inputs() -> dict[str, object]:
    codes = np.random.default_rng(3).integers(0, 3, size=120)
    names = np.array(["t0", "t1", "t2"])[codes]
    return {"str_array": names, "int_array": codes, "list": names.tolist(),
            "categorical": pd.Categorical(names, categories=["t2", "t1", "t0"]),
            "series": pd.Series(names, index=np.arange(120)[::-1], dtype="category")}


TINY_LMI = {"latent_dim": 2, "hidden": 8, "epochs": 2, "patience": 1, "batch_size": 64}


@pytest.mark.parametrize("kind", sorted(embedding_inputs()))
def test_ksg_and_ross_leave_the_input(kind):
    x = embedding_inputs()[kind]
    y = embedding_inputs()["float64"][:, :2] ** 2
    assert_untouched(mi.ksg, x, y, 3)
    assert_untouched(mi.ksg, y, x, 3, standardize=False, jitter=1e-6)
    assert_untouched(mi.kth_neighbor_distance, np.asarray(y), 3)
    labels = label_inputs()["str_array"]
    assert_untouched(mi.mi_discrete, x, labels, 3)


@pytest.mark.parametrize("kind", sorted(label_inputs()))
def test_discrete_labels_are_left(kind):
    x = embedding_inputs()["float64"]
    labels = label_inputs()[kind]
    assert_untouched(mi.mi_discrete, x, labels, 3, pointwise=True)
    assert_untouched(mi.one_hot, labels)
    assert_untouched(mi.mi_discrete, x, labels, 3, method="lmi", **TINY_LMI)


@pytest.mark.parametrize("kind", ["float64", "float32_fortran", "readonly", "one_dim"])
def test_lmi_leaves_the_input(kind):
    x = embedding_inputs()[kind]
    y = embedding_inputs()["readonly"]
    assert_untouched(mi.lmi, x, y, **TINY_LMI)


# ---------------------------------------------------------------------------------------------
# Laws


def results_table() -> pd.DataFrame:
    """A sweep-like results table, with a categorical column and a shuffled string index."""
    rows = []
    for model, (u_bar, i_max) in {"pca": (300.0, 2.0), "vae": (150.0, 2.5)}.items():
        for n in (100, 200, 400):
            for seed in (0, 1, 2):
                for q in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02):
                    u = 2000.0 * q
                    value = laws.noise_law(u, u_bar, i_max) - (n / 50.0) ** -0.7
                    value += 0.01 * np.sin(seed + 7 * q + n)
                    rows.append({"dataset": "sim", "signal": "cell_type", "model": model,
                                 "n_cells": n, "fraction": q, "seed": seed,
                                 "umis_per_cell": u, "mi": value})
    df = pd.DataFrame(rows)
    df["model"] = df["model"].astype("category")
    order = np.random.default_rng(4).permutation(len(df))
    df = df.iloc[order]
    df.index = [f"r{i}" for i in order]
    return df


def test_law_fits_leave_the_input():
    df = results_table()
    one = df[(df["model"] == "pca") & (df["n_cells"] == 400)]
    u, y, seeds = one["umis_per_cell"], one["mi"], one["seed"]
    assert_untouched(laws.fit_noise_law, u, y)
    assert_untouched(laws.fit_noise_law, u.to_numpy(), y.to_numpy(), sigma="replicates",
                     bootstrap=5, replicate=seeds.to_numpy())
    assert_untouched(laws.fit_noise_law, u.to_numpy(), y.to_numpy(),
                     sigma=np.full(len(one), 0.05))
    cells = df[(df["model"] == "pca") & (df["fraction"] == 1.0)]
    assert_untouched(laws.fit_cell_law, cells["n_cells"], cells["mi"])
    sub = df[df["model"] == "pca"]
    assert_untouched(laws.fit_joint_law, sub["n_cells"].to_numpy(),
                     sub["umis_per_cell"].to_numpy(), sub["mi"].to_numpy())
    assert_untouched(laws.replicate_sigma, u.to_numpy()[:, None], y.to_numpy())


def test_law_tables_leave_the_input():
    df = results_table()
    fits = assert_untouched(laws.fit_table, df, ["model", "n_cells"], sigma="replicates",
                            replicate="seed", bootstrap=3)
    assert_untouched(laws.collapse, df, fits, ["model", "n_cells"])
    assert_untouched(laws.fit_table, df, ["model", "fraction"], law="cells")
    table = assert_untouched(laws.fit_results, df, bootstrap=2)
    assert not table["error"].astype(bool).all()
    assert_untouched(laws.fit_results, df, weights="replicates")


# ---------------------------------------------------------------------------------------------
# Simulation helpers that take data


@pytest.mark.parametrize("kind", COUNT_INPUTS)
def test_count_statistics_leaves_the_input(kind):
    from noisescale.simulate import count_statistics

    counts, kw = count_inputs()[kind]
    if isinstance(counts, ad.AnnData):
        counts = counts.layers["counts"] if kw else counts.X
    assert_untouched(count_statistics, counts)


def test_image_noise_and_gaussian_channel_leave_the_input():
    from noisescale.simulate import GaussianChannel
    from noisescale.simulate.images import apply_noise, downsample, gaussian_noise, poisson_noise

    images = np.random.default_rng(5).random((6, 8, 8))
    images.setflags(write=False)
    as_int = (images * 16).astype(np.int64)
    for imgs in (images, as_int, np.asfortranarray(images)):
        assert_untouched(poisson_noise, imgs, 50.0)
        assert_untouched(gaussian_noise, imgs, 2.0)
        assert_untouched(downsample, imgs, 16)
        assert_untouched(apply_noise, imgs, "poisson", 10.0)
    u_bar, i_max = np.array([10.0, 40.0]), np.array([1.0, 0.5])
    channel = assert_untouched(GaussianChannel, u_bar, i_max)
    assert_untouched(GaussianChannel.from_variances, np.array([1.0, 2.0]),
                     np.array([0.5, np.inf]), np.array([3.0, 1.0]))
    assert_untouched(channel.mi, np.array([1.0, 10.0, 100.0]))


# ---------------------------------------------------------------------------------------------
# Sweep configuration


def test_sweep_config_dict_is_left(tmp_path):
    from noisescale.sweep import load_config

    raw = {
        "dataset": {"path": "cells.h5ad", "filter": {"valid": 1}},
        "sweep": {"fractions": [1.0, 0.5], "n_cells": [100, "all"], "seeds": [0]},
        "models": [{"name": "pca", "n_dims": 4}, {"name": "vae", "epochs": 2}],
        "signals": [{"kind": "continuous", "key": "protein", "estimator": "ksg"},
                    {"kind": "spatial_neighbor", "key": "spatial", "estimator": "ksg"}],
        "estimator": {"lmi": {"epochs": 3}},
        "run": {"output": str(tmp_path / "out")},
    }
    before = copy.deepcopy(raw)
    cfg = load_config(raw)
    assert raw == before
    assert cfg.signals[0].options["transform"] == "log1p"  # defaults go to the spec only
