"""Linear representations: PCA and Gaussian random projection of log-normalized HVGs."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int
from .._internal.seeding import legacy_seed
from .base import RepresentationModel
from .preprocess import DEFAULT_N_GENES, log_normalize, select_hvg


class _LinearModel(RepresentationModel):
    """Embedding = (log-normalized HVGs - center) @ components.T."""

    def __init__(self, n_dims: int = 16, n_top_genes: int = DEFAULT_N_GENES):
        super().__init__()
        self._n_dims = check_int("n_dims", n_dims)
        self.n_top_genes = check_int("n_top_genes", n_top_genes)
        self.hvg_: np.ndarray | None = None
        self.center_: np.ndarray | None = None  # (n_hvg,)
        self.components_: np.ndarray | None = None  # (n_dims, n_hvg)

    @property
    def n_dims(self) -> int:
        return self._n_dims

    def params(self) -> dict[str, Any]:
        return {"n_dims": self._n_dims, "n_top_genes": self.n_top_genes}

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        L = log_normalize(X, self.hvg_)
        return np.asarray(L @ self.components_.T) - self.center_ @ self.components_.T

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
    the centering is implicit, so the matrix is never densified). 16 dims by default."""

    name = "pca"

    def _check_fit_shape(self, n_cells: int | None, n_genes: int | None) -> None:
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

    def _fit(self, X: sp.csr_matrix, seed: int) -> None:
        import anndata as ad
        import scanpy as sc

        self.hvg_ = select_hvg(X, self.n_top_genes)
        if self.hvg_.size <= self._n_dims:
            raise ValueError(f"PCA with {self._n_dims} dims needs more than {self._n_dims} "
                             f"expressed genes, but only {self.hvg_.size} of the {X.shape[1]} "
                             f"genes have a nonzero count in the {X.shape[0]} training cells")
        L = log_normalize(X, self.hvg_)
        adata = ad.AnnData(L)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.pca(adata, n_comps=self._n_dims, zero_center=True, svd_solver="arpack",
                      random_state=legacy_seed(seed))
        comps = np.asarray(adata.varm["PCs"], dtype=np.float64).T
        # ARPACK's signs are arbitrary: fix them so the largest loading is positive.
        flip = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
        self.components_ = (comps * flip[:, None]).astype(np.float32)
        self.center_ = np.asarray(L.mean(axis=0), dtype=np.float32).ravel()
        var = np.asarray(adata.uns["pca"]["variance_ratio"], dtype=float)
        self.history = {"variance_ratio": var.tolist()}


class RandomProjection(_LinearModel):
    """Gaussian random projection of log-normalized HVGs (scikit-learn's
    ``GaussianRandomProjection``, seeded): the no-learning baseline. 16 dims by default."""

    name = "random_projection"

    def _fit(self, X: sp.csr_matrix, seed: int) -> None:
        from sklearn.random_projection import GaussianRandomProjection

        self.hvg_ = select_hvg(X, self.n_top_genes)
        L = log_normalize(X, self.hvg_)
        proj = GaussianRandomProjection(n_components=self._n_dims,
                                        random_state=legacy_seed(seed)).fit(L)
        self.components_ = np.asarray(proj.components_, dtype=np.float32)
        self.center_ = np.asarray(L.mean(axis=0), dtype=np.float32).ravel()
