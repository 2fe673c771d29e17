"""No public entry point modifies its inputs (issue 16).

Every array, sparse matrix (data, indices, indptr), AnnData (X, layers, obs, var, obsm, varm,
uns, names) and DataFrame given to a public function is fingerprinted bit for bit before and
after the call, and must be unchanged. The inputs are the shapes a caller really passes:
dense arrays (int, float32 in Fortran order, read-only), CSR with unsorted indices (float32,
and float64, which scipy converts to float32 sharing the index arrays), CSR with duplicate
entries or stored zeros, CSC, and AnnData with the counts in X or in a layer.

``noisescale.simulate.simulate`` takes no array input and is not covered; the image noise
functions, ``count_statistics`` and the Gaussian channel are.
"""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from noisescale import models

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
