"""Linear representations: PCA and Gaussian random projection of log-normalized HVGs (or, with
``log_normalize=False``, of their raw counts), centered on the training cells' mean or not."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_bool, check_int
from .._internal.seeding import legacy_seed
from .base import RepresentationModel
from .preprocess import DEFAULT_N_GENES, log_normalize, select_hvg


class _LinearModel(RepresentationModel):
    """Embedding = (M - center) @ components.T, M the HVGs' log-normalized values
    (``log_normalize=True``) or raw counts (False), center the training cells' mean of M
    (``center=True``) or 0 (False). ``fit(validation=)`` is checked and ignored."""

    def __init__(self, n_dims: int = 16, n_top_genes: int = DEFAULT_N_GENES, *,
                 center: bool = True, log_normalize: bool = True):
        super().__init__()
        self._n_dims = check_int("n_dims", n_dims)
        self.n_top_genes = check_int("n_top_genes", n_top_genes)
        self.center = check_bool("center", center)
        self.log_normalize = check_bool("log_normalize", log_normalize)
        self.hvg_: np.ndarray | None = None
        self.center_: np.ndarray | None = None  # (n_hvg,); zeros when not centered
        self.components_: np.ndarray | None = None  # (n_dims, n_hvg)

    @property
    def n_dims(self) -> int:
        return self._n_dims

    def params(self) -> dict[str, Any]:
        return {"n_dims": self._n_dims, "n_top_genes": self.n_top_genes, "center": self.center,
                "log_normalize": self.log_normalize}

    def _matrix(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """M: the selected genes of X, log-normalized or raw."""
        if self.log_normalize:
            return log_normalize(X, self.hvg_)
        return sp.csr_matrix(X[:, self.hvg_], dtype=np.float32)

    def _set_center(self, M: sp.csr_matrix) -> None:
        if self.center:
            self.center_ = np.asarray(M.mean(axis=0), dtype=np.float32).ravel()
        else:
            self.center_ = np.zeros(M.shape[1], dtype=np.float32)

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        M = self._matrix(X)
        out = np.asarray(M @ self.components_.T)
        return out - self.center_ @ self.components_.T if self.center else out

    def _state(self) -> dict[str, Any]:
        import torch

        return {"hvg": torch.from_numpy(self.hvg_), "center": torch.from_numpy(self.center_),
                "components": torch.from_numpy(self.components_)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.hvg_ = state["hvg"].numpy()
        self.center_ = state["center"].numpy()
        self.components_ = state["components"].numpy()


class PCA(_LinearModel):
    """Principal components of log-normalized HVGs (scanpy ``pp.pca``, ARPACK, sparse-aware:
    the centering is implicit, so the matrix is never densified). 16 dims by default.

    ``center=False``: a truncated SVD of the uncentered matrix instead (scanpy's
    ``pp.pca(zero_center=False)``, i.e. scikit-learn's ``TruncatedSVD``, here with ARPACK),
    and the embedding is the projection of the uncentered values."""

    name = "pca"

    def _check_fit_shape(self, n_cells: int | None, n_genes: int | None,
                         n_validation: int | None = None) -> None:
        # ARPACK finds fewer components than min(cells, genes); the genes are the selected
        # ones, at most n_top_genes.
        d = self._n_dims
        if d >= self.n_top_genes:
            raise ValueError(f"PCA with {d} dims needs n_top_genes > {d} (the components "
                             f"span the selected genes), got n_top_genes={self.n_top_genes}")
        if n_cells is not None and d >= n_cells:
            raise ValueError(f"PCA with {d} dims needs more than {d} training cells, got "
                             f"{n_cells}")
        if n_genes is not None and d >= n_genes:
            raise ValueError(f"PCA with {d} dims needs more than {d} genes, got {n_genes}")

    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        import anndata as ad
        import scanpy as sc

        self.hvg_ = select_hvg(X, self.n_top_genes)
        if self.hvg_.size <= self._n_dims:
            raise ValueError(f"PCA with {self._n_dims} dims needs more than {self._n_dims} "
                             f"expressed genes, but only {self.hvg_.size} of the {X.shape[1]} "
                             f"genes have a nonzero count in the {X.shape[0]} training cells")
        L = self._matrix(X)
        adata = ad.AnnData(L)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.pca(adata, n_comps=self._n_dims, zero_center=self.center,
                      svd_solver="arpack", random_state=legacy_seed(seed))
        comps = np.asarray(adata.varm["PCs"], dtype=np.float64).T
        # ARPACK's signs are arbitrary: fix them so the largest loading is positive.
        flip = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
        self.components_ = (comps * flip[:, None]).astype(np.float32)
        self._set_center(L)
        var = np.asarray(adata.uns["pca"]["variance_ratio"], dtype=float)
        self.history = {"variance_ratio": var.tolist()}


class RandomProjection(_LinearModel):
    """Gaussian random projection of log-normalized HVGs (scikit-learn's
    ``GaussianRandomProjection``, seeded): the no-learning baseline. 16 dims by default.

    ``log_normalize=False`` projects the raw counts of the HVGs instead (all expressed genes
    with an ``n_top_genes`` at least the dataset's genes), ``center=False`` without
    subtracting the training mean (scikit-learn's ``transform``)."""

    name = "random_projection"

    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        from sklearn.random_projection import GaussianRandomProjection

        self.hvg_ = select_hvg(X, self.n_top_genes)
        L = self._matrix(X)
        proj = GaussianRandomProjection(n_components=self._n_dims,
                                        random_state=legacy_seed(seed)).fit(L)
        self.components_ = np.asarray(proj.components_, dtype=np.float32)
        self._set_center(L)
