"""Binomial (or per-gene) thinning and per-cell downsampling of UMI count matrices.

Every function accepts a numpy array, a scipy CSR/CSC matrix (or sparse array), a dask array
of such row blocks or an AnnData, and returns the same kind of object with the same dtype and
format (dask arrays stay lazy, with the same row chunks). Inputs are never modified
unless ``copy=False`` is passed with an AnnData.

Reproducibility contract: results depend only on the seed, the global cell (row) index, the
gene (column) index and the counts, never on thread count, chunking, storage format or device.
A chunk of rows ``X[a:b]`` thinned with ``row_offset=a`` equals rows ``a:b`` of the whole-matrix
result, bit for bit; so do the rows ``X[rows]`` of a CSR matrix thinned with ``rows=rows``
(their global row indices), for any sorted selection ``rows``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _core
from .._internal.checks import check_bool, check_int, check_seed, check_threads
from .._internal.devices import resolve_device
from ..io.blocks import is_dask, map_row_blocks
from ..io.matrices import as_compressed, as_dense, is_anndata, kind_of, source_matrix
from . import per_gene

#: Thinning methods of :func:`thin`.
METHODS = ("binomial", "per_gene")


def check_method(method: Any) -> str:
    """The thinning method, checked: one of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def as_fraction(q: Any, name: str = "fraction") -> float:
    """A fraction as a float; its range is checked by the core (``_core.check_fractions``)."""
    if isinstance(q, bool) or not isinstance(q, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(q).__name__}")
    return float(q)


def as_fractions(fractions: Any) -> list[float]:
    """Fractions as a list of floats, checked by the core: 1 to 64, in [0, 1], decreasing."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, (Sequence, np.ndarray)):
        raise TypeError("fractions must be a sequence of numbers, e.g. [0.5, 0.2, 0.1]")
    qs = [as_fraction(q, "each fraction") for q in fractions]
    _core.check_fractions(qs)
    return qs


def as_targets(target_umis: Any, n_rows: int) -> np.ndarray:
    """Targets as int64 (a scalar or one per cell), checked by the core: the shape and >= 0."""
    t = np.asarray(target_umis)
    numeric = np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)
    if t.dtype == bool or not numeric:
        raise TypeError(f"target_umis must be an integer or integer array, got dtype {t.dtype}")
    if np.issubdtype(t.dtype, np.floating):
        if not np.all(np.isfinite(t)) or np.any(t != np.floor(t)):
            raise ValueError("target_umis must hold whole numbers")
    if np.any(t >= 2**63):
        raise ValueError("target_umis is too large")
    t = np.array(t, dtype=np.int64, order="C")  # keeps a scalar 0-d (ascontiguousarray would not)
    _core.check_targets(t, n_rows)
    return t


def _check_rows(rows: Any, row_offset: Any, device: Any) -> tuple[np.ndarray | None, Any]:
    """``rows=`` of thin/thin_series as an int64 array (None stays None), and the device to
    run on: row-id thinning has no CUDA kernel, so "auto" runs on the CPU and "cuda" is an
    error. Values and length are checked by the core (``_core.thin_compressed``)."""
    if rows is None:
        return None, device
    r = np.asarray(rows)
    if r.size and (r.dtype == bool or r.dtype.kind not in "iu"):
        raise TypeError(f"rows must hold integer row indices, got dtype {r.dtype}")
    if check_int("row_offset", row_offset, 0) != 0:
        raise ValueError("pass rows= or row_offset=, not both (rows are global row indices)")
    if device == "cuda":
        raise ValueError("no CUDA kernel for row-id thinning; use device='cpu' or 'auto' "
                         "(it runs on the CPU)")
    resolve_device(device, "thinning")  # the usual error for anything else
    return np.asarray(r, dtype=np.int64), "cpu"


def _run_options(seed, keep_zeros, row_offset, threads, device) -> tuple:
    """The validated (seed, keep_zeros, row_offset, threads, device) shared by every call."""
    return (check_seed(seed), bool(keep_zeros), check_int("row_offset", row_offset, 0),
            check_threads(threads), resolve_device(device, "thinning"))


# --------------------------------------------------------------------------------------------
# Matrix-level work


def _thin_matrix(X, fractions: list[float], seed: int, keep_zeros: bool, row_offset: int,
                 threads: int, device: str, rows: np.ndarray | None = None) -> list:
    if rows is not None and (is_dask(X) or kind_of(X) != "sparse" or X.format != "csr"):
        what = "a dask array" if is_dask(X) else (
            f"a {X.format.upper()} matrix" if kind_of(X) == "sparse" else "a dense array")
        raise TypeError(f"rows= needs a scipy CSR matrix (or an AnnData whose X or layer is "
                        f"CSR), got {what}; convert it with scipy.sparse.csr_matrix()")
    if is_dask(X):
        return map_row_blocks(X, _thin_block, len(fractions), lambda start, stop: (
            fractions, seed, keep_zeros, row_offset + start, threads, device))
    if kind_of(X) == "sparse":
        c = as_compressed(X)
        parts = _core.thin_compressed(
            c.indptr, c.indices, c.data, c.n_major, c.n_minor, c.rows_are_major, row_offset,
            fractions, seed, keep_zeros, threads, device, rows,
        )
        return [c.rebuild(*p) for p in parts]
    D = as_dense(X)
    return list(_core.thin_dense(D, row_offset, fractions, seed, threads, device))


def _thin_block(X, _start: int, *args) -> list:
    return _thin_matrix(X, *args)


def _downsample_block(X, _start: int, *args) -> list:
    return [_downsample_matrix(X, *args)]


def _downsample_matrix(X, targets: Any, seed: int, keep_zeros: bool, row_offset: int,
                       threads: int, device: str):
    if is_dask(X):
        t = as_targets(targets, X.shape[0])
        scalar = np.ndim(targets) == 0
        return map_row_blocks(X, _downsample_block, 1, lambda start, stop: (
            t if scalar else t[start:stop], seed, keep_zeros, row_offset + start, threads,
            device))[0]
    kind = kind_of(X)
    t = as_targets(targets, X.shape[0])
    if kind == "sparse":
        was_csc = X.format == "csc"
        c = as_compressed(X.tocsr() if was_csc else X)
        out = c.rebuild(*_core.downsample_csr(
            c.indptr, c.indices, c.data, c.shape[0], c.shape[1], row_offset, t, seed,
            keep_zeros, threads, device,
        ))
        return out.tocsc() if was_csc else out
    D = as_dense(X, allow_fortran=False)
    out = _core.downsample_dense(D, row_offset, t, seed, threads, device)
    return np.asfortranarray(out) if (X.flags.f_contiguous and not X.flags.c_contiguous) else out


# --------------------------------------------------------------------------------------------
# AnnData plumbing


def _store(adata, matrix, key: str | None) -> None:
    if key is None:
        adata.X = matrix
    else:
        adata.layers[key] = matrix


def _nonempty_rows(X) -> np.ndarray:
    """Row indices of the cells with at least one UMI."""
    if is_dask(X):
        raise ValueError("drop_empty=True needs an in-memory matrix (a dask array's row count "
                         "would depend on its values)")
    return np.flatnonzero(np.asarray(X.sum(axis=1)).ravel() > 0)


def _dispatch(data, compute: Callable[[Any], list], *, layer: str | None,
              keys: list[str | None], copy: bool, drop_empty: bool = False) -> list | None:
    """Run `compute` on a matrix or an AnnData's layer and place the results scanpy-style;
    with ``drop_empty``, cells left without UMIs are removed (one result only)."""
    if not is_anndata(data):
        if layer is not None or any(k is not None for k in keys):
            raise ValueError("layer= and key_added= apply to AnnData input only")
        results = compute(data)
        return [r[_nonempty_rows(r)] for r in results] if drop_empty else results
    if not copy and (data.is_view or drop_empty):
        raise ValueError("adata is a view; pass copy=True or call adata.copy() first"
                         if data.is_view else "drop_empty=True needs copy=True (the result "
                         "has fewer cells than adata)")
    results = compute(source_matrix(data, layer))
    targets = [k if k is not None else layer for k in keys]
    if copy:
        outs = []
        for matrix, key in zip(results, targets):
            keep = _nonempty_rows(matrix) if drop_empty else None
            new = data[keep].copy() if drop_empty else data.copy()
            _store(new, matrix[keep] if drop_empty else matrix, key)
            outs.append(new)
        return outs
    for matrix, key in zip(results, targets):
        _store(data, matrix, key)
    return None


# --------------------------------------------------------------------------------------------
# Public API


def thin(
    data,
    fraction: float,
    *,
    seed: int = 0,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = True,
    keep_zeros: bool = False,
    row_offset: int = 0,
    threads: int | None = None,
    device: str = "auto",
    method: str = "binomial",
    drop_empty: bool = False,
    rows: Sequence[int] | np.ndarray | None = None,
):
    """Keep each UMI independently with probability ``fraction`` (exact binomial thinning).

    Every stored count ``c`` becomes a draw from Binomial(c, fraction). With
    ``method="per_gene"`` (the variant of the paper's authors) each gene (column) instead keeps
    exactly ``floor(T * fraction)`` of its ``T`` UMIs, a uniform sample without replacement
    across the cells (:mod:`noisescale.noise.per_gene`; CPU only).

    Parameters
    ----------
    data
        Counts, cells x genes: numpy array, scipy CSR/CSC matrix or array, or AnnData.
        Values must be non-negative whole numbers (int32, int64, float32 or float64).
    fraction
        Probability of keeping each UMI, in [0, 1].
    seed
        Integer in [0, 2**64). Same seed, same result, on any machine.
    layer
        AnnData only: thin ``adata.layers[layer]`` instead of ``adata.X``.
    key_added
        AnnData only: store the result in ``layers[key_added]`` instead of replacing the source.
    copy
        AnnData only: return a new AnnData (default). With ``copy=False`` the result is written
        into ``data`` (``layers[key_added]``, or over the source) and None is returned.
    keep_zeros
        Sparse only: keep entries thinned to 0 as explicit zeros (same sparsity structure).
    row_offset
        Global index of the first row, for callers that thin a large matrix in row chunks.
    rows
        Binomial thinning of CSR input only (a scipy CSR matrix, or an AnnData whose X or
        ``layer`` is CSR): the global row index of each row (strictly increasing integers,
        one per row), instead of ``row_offset + i``; for thinning a selection of a larger
        matrix's rows with the same bits: ``thin(X[rows], q, rows=rows)`` equals
        ``thin(X, q)[rows]``. Not with a nonzero ``row_offset``; runs on the CPU
        (``device="cuda"`` is an error).
    threads
        CPU threads; default: ``OMP_NUM_THREADS`` or all cores. Never changes the result.
    device
        ``"auto"`` (GPU when noisescale was built with CUDA and one is visible), ``"cpu"`` or
        ``"cuda"``. Never changes the result. Per-gene thinning and ``rows=`` run on the CPU
        ("cuda" is an error).
    method
        ``"binomial"`` (default) or ``"per_gene"``.
    drop_empty
        Remove the cells left without any UMI (the authors' rule; with an AnnData, its obs
        rows too; needs ``copy=True``). The result then has fewer rows than ``data``.
    """
    q = as_fractions([as_fraction(fraction)])[0]
    method = check_method(method)
    drop_empty = check_bool("drop_empty", drop_empty)
    if method != "binomial" and rows is not None:
        raise ValueError(f"rows= applies to method='binomial' only, not {method!r}")
    if method == "per_gene":
        per_gene.check_device(device)
        opts = _run_options(seed, keep_zeros, row_offset, threads, "cpu")[:4]

        def compute(X):
            return [per_gene.thin_per_gene_matrix(X, q, *opts)]
    else:
        rows, device = _check_rows(rows, row_offset, device)
        args = _run_options(seed, keep_zeros, row_offset, threads, device)

        def compute(X):
            return _thin_matrix(X, [q], *args, rows)
    out = _dispatch(data, compute, layer=layer, keys=[key_added], copy=copy,
                    drop_empty=drop_empty)
    return None if out is None else out[0]


def thin_series(
    data,
    fractions: Sequence[float],
    *,
    seed: int = 0,
    layer: str | None = None,
    key_added: Sequence[str] | None = None,
    copy: bool = True,
    keep_zeros: bool = False,
    row_offset: int = 0,
    threads: int | None = None,
    device: str = "auto",
    rows: Sequence[int] | np.ndarray | None = None,
) -> list | None:
    """Nested thinning to fractions q1 > q2 > ... > qk in one pass over the counts.

    Level i is a sub-sample of level i - 1: each UMI kept at level i - 1 survives to level i
    with probability q_i / q_{i-1} (conditional binomials), so counts decrease monotonically
    along the series, entry by entry, and each level alone is an exact Binomial(c, q_i)
    thinning of the input. Level 1 equals ``thin(data, q1, seed=seed)``.

    Returns a list with one result per fraction (for AnnData with ``copy=False``: writes
    ``layers[key_added[i]]`` and returns None). ``rows``: the global row index of each row
    (strictly increasing, one per row; CSR input only), instead of ``row_offset + i``, so that
    ``thin_series(X[rows], qs, rows=rows)`` equals the rows ``rows`` of
    ``thin_series(X, qs)``, bit for bit. Other parameters as in :func:`thin`.
    """
    qs = as_fractions(fractions)
    if key_added is None:
        if is_anndata(data) and not copy:
            raise ValueError(
                "thin_series with copy=False needs key_added: one layer name per fraction")
        keys: list[str | None] = [None] * len(qs)
    else:
        if isinstance(key_added, str) or len(key_added) != len(qs):
            raise ValueError(f"key_added must be a list of {len(qs)} layer names, one per fraction")
        keys = list(key_added)
    rows, device = _check_rows(rows, row_offset, device)
    args = _run_options(seed, keep_zeros, row_offset, threads, device)
    return _dispatch(data, lambda X: _thin_matrix(X, qs, *args, rows), layer=layer, keys=keys,
                     copy=copy)


def downsample_to(
    data,
    target_umis: int | Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = True,
    keep_zeros: bool = False,
    row_offset: int = 0,
    threads: int | None = None,
    device: str = "auto",
):
    """Downsample each cell (row) to at most ``target_umis`` UMIs, without replacement.

    A cell with more than T UMIs keeps a uniformly random subset of exactly T of them (a
    multivariate hypergeometric draw over its genes); cells with at most T are unchanged.
    This is scanpy's ``pp.downsample_counts(counts_per_cell=T)``, exact and reproducible.

    ``target_umis`` is one integer for all cells or one per cell. Other parameters as in
    :func:`thin`.
    """
    args = _run_options(seed, keep_zeros, row_offset, threads, device)
    out = _dispatch(data, lambda X: [_downsample_matrix(X, target_umis, *args)], layer=layer,
                    keys=[key_added], copy=copy)
    return None if out is None else out[0]
