"""Preprocessing fitted on training cells: highly variable genes, log-normalization.

Gene selection is scanpy's ``highly_variable_genes(flavor="seurat_v3")`` on the raw counts of
the training cells (the variance-stabilized ranking of Stuart et al. 2019, which needs counts,
not log data), computed here from per-gene sums accumulated chunk by chunk, so that a
:class:`~noisescale.io.streams.RowStream` that does not fit in memory selects the genes that
the same matrix in memory does. Every cell, at fit and at embed time, is then scaled to 10,000
counts over all genes (``normalize_total``) and ``log1p``-transformed, and the selected genes
are kept.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ..io.streams import RowStream

DEFAULT_N_GENES = 2000
#: loess spans tried in turn by :func:`select_hvg` (scanpy's default first).
LOESS_SPANS = (0.3, 0.5, 1.0)
#: the fewest varying genes in a loess neighbourhood (span x genes) for a span to be tried.
MIN_LOESS_POINTS = 3

Chunks = Callable[[], Iterable[sp.csr_matrix]]


def select_hvg(X: sp.csr_matrix, n_top_genes: int) -> np.ndarray:
    """Sorted column indices of the ``n_top_genes`` most variable genes among those with a
    nonzero count (all of those if fewer; stored zeros do not count as expressed)."""
    X = sp.csr_matrix(X)
    return _seurat_v3(lambda: (X,), X.shape[0], X.shape[1], n_top_genes)


def select_hvg_stream(stream: RowStream, n_top_genes: int) -> np.ndarray:
    """:func:`select_hvg` of the cells of a :class:`~noisescale.io.streams.RowStream`, in two
    passes over its chunks: the same genes as ``select_hvg`` of the whole matrix."""
    return _seurat_v3(stream.chunks, stream.n_cells, stream.n_genes, n_top_genes)


class GeneSums:
    """Pass 1 of seurat_v3: per-gene sums, sums of squares (float64), nonzero counts, maxima
    and minima (implicit zeros included) of raw counts, accumulated chunk by chunk.

    The sums are scanpy's (``_get_mean_var`` of a float32 CSR): each value and its float32
    square added in float64. Counts are whole numbers, so the sums are exact and do not depend
    on the chunks."""

    def __init__(self, n_genes: int):
        self.n_cells = 0
        self.sum = np.zeros(n_genes)
        self.sum_sq = np.zeros(n_genes)
        self.nonzero = np.zeros(n_genes, dtype=np.int64)
        self.max = np.full(n_genes, -np.inf)
        self.min = np.full(n_genes, np.inf)

    def add(self, X: sp.csr_matrix) -> None:
        n = self.sum.size
        data = X.data.astype(np.float32, copy=False)
        self.n_cells += X.shape[0]
        self.sum += np.bincount(X.indices, weights=data.astype(np.float64), minlength=n)
        self.sum_sq += np.bincount(X.indices, weights=(data * data).astype(np.float64),
                                   minlength=n)
        self.nonzero += np.bincount(X.indices[data > 0], minlength=n)
        if X.shape[0]:
            np.maximum(self.max, X.max(axis=0).toarray().ravel(), out=self.max)
            np.minimum(self.min, X.min(axis=0).toarray().ravel(), out=self.min)

    def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased variance per gene, as scanpy's ``_get_mean_var``."""
        n = self.n_cells
        mean = self.sum / n
        var = self.sum_sq / n - mean**2
        if n != 1:
            var *= n / (n - 1)
        return mean, var


def _seurat_v3(chunks: Chunks, n_cells: int, n_genes: int, n_top_genes: int) -> np.ndarray:
    """The one seurat_v3 rule of :func:`select_hvg` and :func:`select_hvg_stream`, on the rows
    of ``chunks()`` (called once per pass): scanpy's ``_highly_variable_genes_seurat_v3``
    (one batch) on the expressed genes, step for step, so its floats and its ranking (ties
    included) are scanpy's."""
    stats = GeneSums(n_genes)
    for X in chunks():
        stats.add(X)
    expressed = np.flatnonzero(stats.nonzero > 0)
    if expressed.size == 0:
        raise ValueError(f"no gene has a nonzero count in the {n_cells} training cells "
                         f"({n_genes} genes): there are no genes to select")
    if expressed.size <= n_top_genes:
        return expressed.astype(np.int64)
    # seurat_v3 fits a loess of log variance on log mean (span 0.3) over the genes that vary.
    # At very low depth many genes share the same few mean values and skmisc's loess can turn
    # singular; a wider span smooths over those ties, so it is tried before giving up. A loess
    # whose neighbourhood (span x varying genes) holds no point crashes the process instead of
    # raising (skmisc 0.5: segmentation fault with 3 or fewer points at span 0.3, none at 1),
    # so spans are tried only where it holds MIN_LOESS_POINTS.
    varying = int(np.count_nonzero(stats.max[expressed] != stats.min[expressed]))
    spans = [span for span in LOESS_SPANS if int(span * varying) >= MIN_LOESS_POINTS]
    if not spans:
        raise ValueError(f"could not rank highly variable genes (seurat_v3) on {n_cells} "
                         f"cells: only {varying} of the {expressed.size} expressed genes vary "
                         f"between the cells; use more cells, or n_top_genes >= "
                         f"{expressed.size} to keep every expressed gene")
    mean, var = (v[expressed] for v in stats.mean_var())
    for span in spans:
        try:
            reg_std = _loess_std(mean, var, span)
            break
        except (ValueError, RuntimeError) as err:  # skmisc's loess fails on too few cells
            error = err
    else:
        raise ValueError(f"could not rank highly variable genes (seurat_v3) on {n_cells} "
                         f"cells: {error}; use more cells, or n_top_genes >= {expressed.size} "
                         f"to keep every expressed gene") from error
    # Pass 2: sums of the counts clipped at mean + sqrt(n) * loess sd, added in row order
    # (np.add.at) as scanpy adds them, since clipped values are not whole numbers.
    clip = np.zeros(n_genes)
    clip[expressed] = reg_std * np.sqrt(n_cells) + mean
    clipped, clipped_sq = np.zeros(n_genes), np.zeros(n_genes)
    for X in chunks():
        values = np.minimum(X.data.astype(np.float64), clip[X.indices])
        np.add.at(clipped_sq, X.indices, values**2)
        np.add.at(clipped, X.indices, values)
    clipped, clipped_sq = clipped[expressed], clipped_sq[expressed]
    n_obs = n_cells
    norm_gene_var = (1 / ((n_obs - 1) * np.square(reg_std))) * (
        (n_obs * np.square(mean)) + clipped_sq - 2 * clipped * mean)
    # scanpy's ranks are argsort(argsort(-v)); its top genes are those ranked < n_top_genes
    order = np.argsort(-norm_gene_var.reshape(1, -1), axis=1)[0]
    return np.sort(expressed[order[:n_top_genes]]).astype(np.int64)


def _loess_std(mean: np.ndarray, var: np.ndarray, span: float) -> np.ndarray:
    """sqrt(10 ** loess(log10 var ~ log10 mean)) per gene (1 where var is 0), as scanpy."""
    from skmisc.loess import loess

    not_const = var > 0
    estimat_var = np.zeros(mean.size, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = loess(np.log10(mean[not_const]), np.log10(var[not_const]), span=span,
                      degree=2)
        model.fit()
    estimat_var[not_const] = model.outputs.fitted_values
    return np.sqrt(10**estimat_var)


def log_normalize(X: sp.csr_matrix, genes: np.ndarray) -> sp.csr_matrix:
    """normalize_total(target_sum=1e4) over all genes, log1p, then the columns ``genes``.
    Row by row: a chunk of cells gives the rows of the whole matrix."""
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(X.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cells with zero counts stay zero
        sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return sp.csr_matrix(adata.X[:, genes], dtype=np.float32)
