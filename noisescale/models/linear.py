"""Linear representations: PCA and Gaussian random projection of log-normalized HVGs (or, with
``log_normalize=False``, of their raw counts), centered on the training cells' mean or not.
Both also fit out of core on a :class:`~noisescale.io.streams.RowStream`: the same genes, the
same random projection, and PCA exactly, from the streamed covariance."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_bool, check_int
from .._internal.seeding import legacy_seed
from ..io.streams import RowStream
from .base import RepresentationModel
from .preprocess import DEFAULT_N_GENES, log_normalize, select_hvg, select_hvg_stream

#: Rows of a chunk densified at once for the Gram matrix of an out-of-core PCA (~32 MiB).
GRAM_ENTRIES = 1 << 22


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

    def _set_center(self, M: sp.csr_matrix | np.ndarray) -> None:
        """center_ from M, or from its column means (an array) on the stream route."""
        if not self.center:
            self.center_ = np.zeros(M.shape[-1], dtype=np.float32)
        elif sp.issparse(M):
            self.center_ = np.asarray(M.mean(axis=0), dtype=np.float32).ravel()
        else:
            self.center_ = np.asarray(M, dtype=np.float32)

    def _stream_moments(self, stream: RowStream, *, gram: bool
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """One pass over the stream: the column sums of M and (``gram``) M^T M, float64."""
        from scipy.linalg import blas

        k = self.hvg_.size
        total = np.zeros(k)
        mtm = np.zeros((k, k)) if gram else None
        step = max(1, GRAM_ENTRIES // k)
        for X in stream.chunks():
            M = self._matrix(X)
            total += np.asarray(M.sum(axis=0, dtype=np.float64)).ravel()
            for i in range(0, M.shape[0] if gram else 0, step):
                # a float32 rank-k update per block (half a GEMM's work), summed in float64
                D = M[i:i + step].toarray()
                mtm += blas.ssyrk(1.0, D.T, trans=0, lower=0)
        if gram:  # ssyrk fills the upper triangle
            mtm = np.triu(mtm) + np.triu(mtm, 1).T
        return total, mtm

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
    and the embedding is the projection of the uncentered values.

    On a RowStream (out of core): the mean and M^T M of the chunks in one pass (float64), then
    the top eigenvectors of the covariance (the second moment when not centered) with
    ``numpy.linalg.eigh``: exact PCA, the same axes as ARPACK's up to its convergence, signs
    fixed alike; ``history["method"]`` says "covariance_eigh (out-of-core)"."""

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
        self._check_genes_selected(*X.shape)
        L = self._matrix(X)
        adata = ad.AnnData(L)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.pca(adata, n_comps=self._n_dims, zero_center=self.center,
                      svd_solver="arpack", random_state=legacy_seed(seed))
        self._set_components(np.asarray(adata.varm["PCs"], dtype=np.float64).T)
        self._set_center(L)
        var = np.asarray(adata.uns["pca"]["variance_ratio"], dtype=float)
        self.history = {"variance_ratio": var.tolist()}

    def _fit_stream(self, stream: RowStream, seed: int,
                    validation: sp.csr_matrix | None = None) -> None:
        """Exact PCA out of core: one pass for the mean and M^T M, then the top eigenvectors
        of the covariance (of the second moment when not centered), ``scipy.linalg.eigh``."""
        self.hvg_ = select_hvg_stream(stream, self.n_top_genes)
        self._check_genes_selected(stream.n_cells, stream.n_genes)
        n = stream.n_cells
        total, mtm = self._stream_moments(stream, gram=True)
        mu = total / n
        if self.center:
            cov = (mtm - n * np.outer(mu, mu)) / (n - 1)
        else:
            cov = mtm / n
        from scipy.linalg import eigh

        k = cov.shape[0]  # only the top n_dims eigenpairs (LAPACK evr: much less work)
        values, vectors = eigh(cov, subset_by_index=[k - self._n_dims, k - 1])
        top = vectors[:, ::-1].T
        self._set_components(top)
        self._set_center(mu)
        if self.center:  # explained variance / total variance, as scanpy's PCA
            ratio = values[::-1] / np.trace(cov)
        else:  # TruncatedSVD's: variance of each projection / total variance (ddof 0)
            spread = mtm / n - np.outer(mu, mu)
            ratio = np.einsum("ki,ij,kj->k", top, spread, top) / np.trace(spread)
        self.history = {"variance_ratio": ratio.tolist(),
                        "method": "covariance_eigh (out-of-core)"}

    def _check_genes_selected(self, n_cells: int, n_genes: int) -> None:
        if self.hvg_.size <= self._n_dims:
            raise ValueError(f"PCA with {self._n_dims} dims needs more than {self._n_dims} "
                             f"expressed genes, but only {self.hvg_.size} of the {n_genes} "
                             f"genes have a nonzero count in the {n_cells} training cells")

    def _set_components(self, comps: np.ndarray) -> None:
        """components_ from (n_dims, n_hvg) axes of arbitrary signs: each flipped so that
        its largest loading is positive."""
        flip = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
        self.components_ = (comps * flip[:, None]).astype(np.float32)


class RandomProjection(_LinearModel):
    """Gaussian random projection of log-normalized HVGs (scikit-learn's
    ``GaussianRandomProjection``, seeded): the no-learning baseline. 16 dims by default.

    ``log_normalize=False`` projects the raw counts of the HVGs instead (all expressed genes
    with an ``n_top_genes`` at least the dataset's genes), ``center=False`` without
    subtracting the training mean (scikit-learn's ``transform``). The components depend on
    the selected genes' number and the seed only, so a RowStream fit has the same ones."""

    name = "random_projection"

    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        self.hvg_ = select_hvg(X, self.n_top_genes)
        L = self._matrix(X)
        self._set_projection(seed)
        self._set_center(L)

    def _fit_stream(self, stream: RowStream, seed: int,
                    validation: sp.csr_matrix | None = None) -> None:
        self.hvg_ = select_hvg_stream(stream, self.n_top_genes)
        self._set_projection(seed)
        if self.center:
            total, _ = self._stream_moments(stream, gram=False)
            self._set_center(total / stream.n_cells)
        else:
            self._set_center(np.zeros(self.hvg_.size))

    def _set_projection(self, seed: int) -> None:
        """scikit-learn's seeded Gaussian components for the selected genes: they depend on
        the number of genes and the seed only, so fitting on one empty row of that width
        gives the components of fitting on all the cells (tested)."""
        from sklearn.random_projection import GaussianRandomProjection

        width = sp.csr_matrix((1, self.hvg_.size), dtype=np.float32)
        proj = GaussianRandomProjection(n_components=self._n_dims,
                                        random_state=legacy_seed(seed)).fit(width)
        self.components_ = np.asarray(proj.components_, dtype=np.float32)
