"""Preprocessing fitted on training cells with scanpy: highly variable genes, log-normalization.

Gene selection is scanpy's ``highly_variable_genes(flavor="seurat_v3")`` on the raw counts of
the training cells (the variance-stabilized ranking of Stuart et al. 2019, which needs counts,
not log data). Every cell, at fit and at embed time, is then scaled to 10,000 counts over all
genes (``normalize_total``) and ``log1p``-transformed, and the selected genes are kept.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

DEFAULT_N_GENES = 2000
#: loess spans tried in turn by :func:`select_hvg` (scanpy's default first).
LOESS_SPANS = (0.3, 0.5, 1.0)
#: the fewest varying genes in a loess neighbourhood (span x genes) for a span to be tried.
MIN_LOESS_POINTS = 3


def select_hvg(X: sp.csr_matrix, n_top_genes: int) -> np.ndarray:
    """Sorted column indices of the ``n_top_genes`` most variable genes among those with a
    nonzero count (all of those if fewer; stored zeros do not count as expressed). scanpy is
    imported only when there is something to select."""
    n_genes = X.shape[1]
    expressed = np.flatnonzero(np.asarray((X > 0).sum(axis=0)).ravel() > 0)
    if expressed.size == 0:
        raise ValueError(f"no gene has a nonzero count in the {X.shape[0]} training cells "
                         f"({n_genes} genes): there are no genes to select")
    if expressed.size <= n_top_genes:
        return expressed.astype(np.int64)
    import anndata as ad
    import scanpy as sc

    sub = sp.csr_matrix(X[:, expressed])
    # seurat_v3 fits a loess of log variance on log mean (span 0.3) over the genes that vary.
    # At very low depth many genes share the same few mean values and skmisc's loess can turn
    # singular; a wider span smooths over those ties, so it is tried before giving up. A loess
    # whose neighbourhood (span x varying genes) holds no point crashes the process instead of
    # raising (skmisc 0.5: segmentation fault with 3 or fewer points at span 0.3, none at 1),
    # so spans are tried only where it holds MIN_LOESS_POINTS.
    varying = int(np.count_nonzero(sub.max(axis=0).toarray() != sub.min(axis=0).toarray()))
    spans = [span for span in LOESS_SPANS if int(span * varying) >= MIN_LOESS_POINTS]
    if not spans:
        raise ValueError(f"could not rank highly variable genes (seurat_v3) on {X.shape[0]} "
                         f"cells: only {varying} of the {expressed.size} expressed genes vary "
                         f"between the cells; use more cells, or n_top_genes >= "
                         f"{expressed.size} to keep every expressed gene")
    adata = ad.AnnData(sub)
    for span in spans:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scanpy's notes on flavors and copies
                hvg = sc.pp.highly_variable_genes(adata, flavor="seurat_v3", span=span,
                                                  n_top_genes=n_top_genes, inplace=False)
            break
        except (ValueError, RuntimeError) as err:  # skmisc's loess fails on too few cells
            error = err
    else:
        raise ValueError(f"could not rank highly variable genes (seurat_v3) on {X.shape[0]} "
                         f"cells: {error}; use more cells, or n_top_genes >= {expressed.size} "
                         f"to keep every expressed gene") from error
    mask = np.asarray(hvg["highly_variable"], dtype=bool)
    chosen = np.sort(expressed[mask]).astype(np.int64)
    assert chosen.size == n_top_genes and chosen.max() < n_genes
    return chosen


def log_normalize(X: sp.csr_matrix, genes: np.ndarray) -> sp.csr_matrix:
    """normalize_total(target_sum=1e4) over all genes, log1p, then the columns ``genes``."""
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(X.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cells with zero counts stay zero
        sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return sp.csr_matrix(adata.X[:, genes], dtype=np.float32)
