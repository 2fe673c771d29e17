"""Count matrices as the C++ core sees them: CSR, CSC or dense, never modified in place."""

from __future__ import annotations

import sys
from dataclasses import dataclass
import numpy as np
import scipy.sparse as sp

COUNT_DTYPES = (np.int32, np.int64, np.float32, np.float64)
INDEX_DTYPES = (np.int32, np.int64)


@dataclass(frozen=True)
class Compressed:
    """Arrays of a CSR (rows major) or CSC (columns major) matrix, read-only views."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]
    rows_are_major: bool
    template: object  # the input matrix, to rebuild outputs of the same class

    @property
    def n_major(self) -> int:
        return self.shape[0] if self.rows_are_major else self.shape[1]

    @property
    def n_minor(self) -> int:
        return self.shape[1] if self.rows_are_major else self.shape[0]

    def rebuild(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray):
        """A matrix of the input's class and dtypes holding these arrays (no copies)."""
        cls = type(self.template)
        out = cls((data, indices, indptr), shape=self.shape, copy=False)
        # scipy may narrow int64 indices to int32 on construction: keep the input's dtype.
        if out.indices.dtype != indices.dtype or out.indptr.dtype != indptr.dtype:
            out.indices, out.indptr = indices, indptr
        return out


def check_count_dtype(dtype: np.dtype, what: str = "counts") -> None:
    if dtype not in COUNT_DTYPES:
        raise TypeError(
            f"{what} must have dtype int32, int64, float32 or float64, got {dtype}; "
            "convert with .astype(np.float32) or .astype(np.int64)"
        )


def as_compressed(X) -> Compressed:
    """View a scipy CSR/CSC matrix or array as C-contiguous arrays; copies only if needed."""
    if X.format not in ("csr", "csc"):
        raise TypeError(
            f"sparse counts must be CSR or CSC, got {X.format.upper()}; convert with .tocsr()"
        )
    if X.ndim != 2:
        raise ValueError(f"counts must be 2-D, got {X.ndim}-D")
    check_count_dtype(X.data.dtype)
    indptr, indices = X.indptr, X.indices
    if indptr.dtype not in INDEX_DTYPES or indices.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"index arrays must be int32 or int64, got {indptr.dtype} and {indices.dtype}"
        )
    if indptr.ndim != 1 or indices.ndim != 1 or X.data.ndim != 1:
        raise ValueError("indptr, indices and data must be 1-D arrays")
    if indptr.dtype != indices.dtype:  # widen both to int64 (index copies only)
        indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    return Compressed(
        indptr=np.ascontiguousarray(indptr),
        indices=np.ascontiguousarray(indices),
        data=np.ascontiguousarray(X.data),
        shape=(int(X.shape[0]), int(X.shape[1])),
        rows_are_major=X.format == "csr",
        template=X,
    )


def as_dense(X: np.ndarray, *, allow_fortran: bool = True) -> np.ndarray:
    """A 2-D C- (or F-) contiguous array of a supported count dtype."""
    if X.ndim != 2:
        raise ValueError(f"counts must be a 2-D array (cells x genes), got {X.ndim}-D")
    check_count_dtype(X.dtype)
    if X.flags.c_contiguous or (allow_fortran and X.flags.f_contiguous):
        return X
    return np.ascontiguousarray(X)


def kind_of(X) -> str:
    """'sparse' or 'dense'; a clear TypeError for anything else."""
    if sp.issparse(X):
        return "sparse"
    if isinstance(X, np.ndarray) and not isinstance(X, np.matrix):
        return "dense"
    raise TypeError(
        "counts must be a numpy array, a scipy CSR/CSC matrix or an AnnData, "
        f"got {type(X).__name__}"
    )


def is_anndata(obj) -> bool:
    """Whether obj is an AnnData (without importing anndata if it was never imported)."""
    ad = sys.modules.get("anndata")
    return ad is not None and isinstance(obj, ad.AnnData)


def source_matrix(adata, layer: str | None):
    """The counts of an in-memory AnnData: X, or the named layer (clear errors otherwise)."""
    if adata.isbacked:
        raise ValueError(
            "this AnnData is backed on disk; thin its file chunk by chunk with "
            "noisescale.thin_file(path, out, q), or load it with adata.to_memory() first"
        )
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty; pass layer= to name the counts layer")
        return adata.X
    if layer not in adata.layers:
        have = ", ".join(map(repr, adata.layers.keys())) or "none"
        raise KeyError(f"layer {layer!r} not found in adata.layers (available: {have})")
    return adata.layers[layer]
