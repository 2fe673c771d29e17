"""The interface every representation model follows, and the checks of its input counts."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int, check_seed
from ..io.matrices import is_anndata, source_matrix
from ..io.streams import RowStream
from ..io.temporaries import clean_destination, temporary_path


class CountsInput:
    """Raw UMI counts of some cells as float32 CSR, with the gene names when known (a
    :class:`~noisescale.io.streams.RowStream` is read whole: for small sets of cells)."""

    def __init__(self, counts, layer: str | None = None):
        genes = None
        if isinstance(counts, RowStream):
            _no_layer(layer)
            genes, counts = counts.genes, counts.read()
        elif is_anndata(counts):
            genes = np.asarray(counts.var_names.astype(str))
            counts = source_matrix(counts, layer)
        else:
            _no_layer(layer)
        if hasattr(counts, "compute") and not sp.issparse(counts):  # dask: models need memory
            counts = counts.compute()
        if sp.issparse(counts):
            X = _owned(sp.csr_matrix(counts, dtype=np.float32), counts)
        else:
            arr = np.asarray(counts)
            if arr.ndim != 2:
                raise ValueError(f"counts must be a 2-D cells x genes matrix, got shape "
                                 f"{arr.shape}")
            if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype,
                                                                        np.complexfloating):
                raise TypeError(f"counts must be numeric, got dtype {arr.dtype}")
            X = sp.csr_matrix(arr.astype(np.float32))
        check_counts(X)  # in place: X's arrays are its own (_owned)
        self.X = X
        self.genes = genes

    @property
    def n_cells(self) -> int:
        return self.X.shape[0]

    @property
    def n_genes(self) -> int:
        return self.X.shape[1]


def check_counts(X: sp.csr_matrix, *, first_row: int = 0, where: str = "") -> None:
    """Put X in canonical form in place (sorted indices, no duplicates, no stored zeros) and
    check that it holds raw counts: finite, non-negative whole numbers. Cells in messages are
    numbered from ``first_row``; ``where`` (e.g. " in cells.h5ad") follows "counts"."""
    X.sum_duplicates()
    X.eliminate_zeros()
    data = X.data
    if data.size and not np.isfinite(data).all():
        raise ValueError(f"counts{where} contain NaN or infinite values")
    if data.size and data.min() < 0:
        row = first_row + _row_of(X, np.flatnonzero(data < 0)[0])
        raise ValueError(f"counts{where} must be non-negative (first negative value in cell "
                         f"{row})")
    if data.size and not np.array_equal(data, np.round(data)):
        row = first_row + _row_of(X, np.flatnonzero(data != np.round(data))[0])
        raise ValueError(f"counts{where} must be whole numbers (raw UMI counts, not "
                         f"normalized values): cell {row} has a fractional value")


def _row_of(X: sp.csr_matrix, entry: int) -> int:
    return int(np.searchsorted(X.indptr, entry, side="right") - 1)


def _no_layer(layer: str | None) -> None:
    if layer is not None:
        raise TypeError("layer= is only meaningful with an AnnData input (a RowStream reads "
                        "the layer it was opened with: RowStream(paths, layer=...))")


def _owned(X: sp.csr_matrix, source) -> sp.csr_matrix:
    """X with fresh copies of any of its arrays that it shares with ``source``.

    scipy's conversions share what they can: ``csr_matrix(A, dtype=np.float32)`` of a float32
    CSR keeps A's data, indices and indptr, and of a float64 CSR still keeps A's indices and
    indptr. Sorting or summing duplicates in place would then rewrite the caller's matrix (or
    leave its indices permuted against its data).
    """
    theirs = [a for a in (getattr(source, n, None) for n in ("data", "indices", "indptr"))
              if isinstance(a, np.ndarray)]
    for name in ("data", "indices", "indptr"):
        mine = getattr(X, name)
        if any(np.may_share_memory(mine, a) for a in theirs):
            setattr(X, name, mine.copy())
    return X


class RepresentationModel(ABC):
    """Fit on training cells' raw counts, embed any cells with the same genes.

    Subclasses own their preprocessing: what is estimated from data (gene selection, means,
    weights) is estimated in :meth:`fit` on the training cells only and applied unchanged in
    :meth:`embed`.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.genes_: np.ndarray | None = None  # names of the genes fitted on (None for arrays)
        self.n_genes_: int | None = None
        self.history: dict[str, Any] = {}  # per-epoch losses etc. of the last fit
        self.seed: int | None = None

    # -- public API -----------------------------------------------------------------------
    def fit(self, counts, *, seed: int = 0, layer: str | None = None,
            validation=None) -> RepresentationModel:
        """Fit on raw counts (cells x genes: array, scipy sparse or AnnData with ``layer``),
        or on a :class:`~noisescale.io.streams.RowStream` of stores too large for memory,
        read chunk by chunk (the model's out-of-core route, :meth:`_fit_stream`).

        ``validation``: raw counts of other cells with the same genes (in the same forms;
        ``layer`` applies to it when it is an AnnData; a RowStream is read whole) on which a
        trained model's early stopping is decided; all of ``counts`` is then trained on
        instead of a seeded ``validation_fraction`` of it being held out. Models without a
        validation loss (PCA, random projection) check it like the training counts and then
        ignore it, so a sweep can pass it to every model. ``history["route"]`` records the
        route taken: "memory" or "stream".
        """
        seed = check_seed(seed)
        stream = counts if isinstance(counts, RowStream) else None
        if stream is not None:
            _no_layer(layer)
        data = CountsInput(counts, layer) if stream is None else stream
        held = None
        if validation is not None:
            held = CountsInput(validation, layer if is_anndata(validation) else None)
            if held.n_cells < 1:
                raise ValueError("validation has no cells: it needs at least 1 (or pass "
                                 "validation=None to hold out validation_fraction of counts)")
            _check_same_genes(held, data.n_genes, data.genes,
                              count_error=f"validation has {held.n_genes} genes but the "
                                          f"training counts have {data.n_genes}: it needs "
                                          f"the same genes in the same order",
                              names_error="validation gene names differ from the training "
                                          "ones")
        self.check_fit_shape(data.n_cells, data.n_genes,
                             n_validation=None if held is None else held.n_cells)
        if (data.nnz if stream is not None else data.X.nnz) == 0:
            raise ValueError(f"the counts are all zero ({data.n_cells} cells x {data.n_genes} "
                             f"genes without a single UMI): there is nothing to fit")
        # Unfitted until _fit succeeds: a failed fit must not leave a model that embeds.
        self.genes_, self.n_genes_, self.seed, self.history = None, None, None, {}
        if stream is None:
            self._fit(data.X, seed, None if held is None else held.X)
        else:
            self._fit_stream(stream, seed, None if held is None else held.X)
        self.history["route"] = "memory" if stream is None else "stream"
        self.seed, self.genes_, self.n_genes_ = seed, data.genes, data.n_genes
        return self

    def embed(self, counts, *, layer: str | None = None) -> np.ndarray:
        """(n_cells, n_dims) float32 embedding of raw counts with the fitted genes (a
        RowStream is embedded chunk by chunk)."""
        if self.n_genes_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted: call fit() first")
        if isinstance(counts, RowStream):
            _no_layer(layer)
            self._check_genes(counts)
            parts = [np.asarray(self._embed(X), dtype=np.float32) for X in counts.chunks()]
            out = np.concatenate(parts) if parts else np.empty((0, self.n_dims), np.float32)
            return np.ascontiguousarray(out)
        data = CountsInput(counts, layer)
        self._check_genes(data)
        return np.ascontiguousarray(self._embed(data.X), dtype=np.float32)

    def fit_embed(self, counts, *, seed: int = 0, layer: str | None = None,
                  validation=None) -> np.ndarray:
        return self.fit(counts, seed=seed, layer=layer,
                        validation=validation).embed(counts, layer=layer)

    @property
    @abstractmethod
    def n_dims(self) -> int:
        """Dimensions of the embedding."""

    def check_fit_shape(self, n_cells: int | None = None, n_genes: int | None = None, *,
                        n_validation: int | None = None) -> None:
        """Raise ValueError when this model cannot be fitted on ``n_cells`` cells x ``n_genes``
        genes (None: not known yet), before any data is read or trained on.

        :meth:`fit` calls it first; a sweep calls it with the configured training sizes and
        the dataset's genes, so impossible parameters fail with the configuration. What only
        the counts can tell (genes expressed, selected genes without counts) is checked in
        :meth:`fit`, also before training. ``n_validation``: the cells of an explicit
        ``validation=`` set (None: a trained model splits its validation cells off the
        training cells, which then need enough cells for both).
        """
        if n_cells is not None:
            n_cells = check_int("n_cells", n_cells, 0)
            if n_cells < 2:
                raise ValueError(f"{self._what()} needs at least 2 cells to fit, got "
                                 f"{n_cells}")
        if n_genes is not None and check_int("n_genes", n_genes, 0) < 1:
            raise ValueError(f"{self._what()} needs at least 1 gene to fit, got {n_genes}")
        if n_validation is not None:
            n_validation = check_int("n_validation", n_validation, 1)
        self._check_fit_shape(n_cells, n_genes, n_validation)

    def _check_fit_shape(self, n_cells: int | None, n_genes: int | None,
                         n_validation: int | None = None) -> None:
        """Model-specific limits of :meth:`check_fit_shape` (none by default)."""
        return None

    def _what(self) -> str:
        return type(self).__name__

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one file (atomically); :func:`load` reads it back."""
        import torch

        if self.n_genes_ is None:
            raise RuntimeError("only a fitted model can be saved")
        path = Path(path)
        from . import FORMAT

        # Plain values and tensors only, so that load() reads it with weights_only=True.
        state = {
            "noisescale_model": self.name,
            "format": FORMAT,
            "params": _plain(self.params()),
            "genes": None if self.genes_ is None else [str(g) for g in self.genes_],
            "n_genes": self.n_genes_,
            "seed": self.seed,
            "history": _plain(self.history),
            "state": self._state(),
        }
        clean_destination(path)
        tmp = temporary_path(path)
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- for subclasses ---------------------------------------------------------------------
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor arguments (plain values) that recreate this model unfitted."""

    @abstractmethod
    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        """Fit on the checked counts X; ``validation``: the checked counts of an explicit
        validation set with X's genes, or None."""

    @abstractmethod
    def _fit_stream(self, stream: RowStream, seed: int,
                    validation: sp.csr_matrix | None = None) -> None:
        """Fit on a RowStream, reading it chunk by chunk (its counts are checked per chunk);
        ``validation`` as in :meth:`_fit`. Every model has this out-of-core route: a sweep
        hands it the training cells that do not fit its memory budget."""

    @abstractmethod
    def _embed(self, X: sp.csr_matrix) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Fitted state: tensors and plain values only."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None: ...

    def _check_genes(self, data: CountsInput | RowStream) -> None:
        _check_same_genes(data, self.n_genes_, self.genes_,
                          count_error=f"the model was fitted on {self.n_genes_} genes but "
                                      f"these counts have {data.n_genes}",
                          names_error="gene names differ from the fitted ones")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        fitted = "" if self.n_genes_ is None else f", fitted on {self.n_genes_} genes"
        return f"{type(self).__name__}({args}){fitted}"


def _check_same_genes(data: CountsInput | RowStream, n_genes: int, genes: np.ndarray | None, *,
                      count_error: str, names_error: str) -> None:
    """ValueError(``count_error``) unless ``data`` has ``n_genes`` genes, and one starting
    with ``names_error`` unless they are named ``genes`` (where both are named)."""
    if data.n_genes != n_genes:
        raise ValueError(count_error)
    if genes is not None and data.genes is not None:
        diff = np.flatnonzero(genes != data.genes)
        if diff.size:
            i = int(diff[0])
            raise ValueError(f"{names_error} at {diff.size} position(s), first at {i}: "
                             f"{data.genes[i]!r} instead of {genes[i]!r} "
                             f"(reorder with adata[:, genes])")


def _plain(obj):
    """Parameters and history as plain Python (numpy scalars and arrays become numbers and
    lists), safe for torch.load(weights_only=True)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_, np.str_)):
        return obj.item()
    return obj
