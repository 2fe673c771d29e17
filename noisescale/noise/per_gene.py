"""Per-gene thinning, the variant the paper's authors used (Gowri, Yin & Klein 2025).

Gene (column) j keeps exactly ``floor(T_j * q)`` of its ``T_j`` UMIs, a uniform sample without
replacement across the cells (a multivariate hypergeometric draw per column), where binomial
thinning keeps each UMI independently. The draw is counter-based, down a fixed binary tree over
global row indices (``csrc/include/noisescale/per_gene.hpp``), so it is bit-identical for any
thread count and, for chunked inputs (dask arrays, files), for any chunking: a chunk aligned
to blocks of ``2**block_bits`` rows is thinned from its blocks' takes, which come from the
per-block gene totals of the whole matrix (pass one).

Runs on the CPU only: there is no CUDA kernel, and ``device="cuda"`` is an error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .. import _core
from ..io.blocks import is_dask, map_row_blocks
from ..io.matrices import as_compressed, as_dense, kind_of

#: Rows per block of chunked per-gene thinning: 2**12 = 4096 (files, dask arrays).
BLOCK_BITS = 12


def check_device(device: str) -> str:
    """Per-gene thinning runs on the CPU: 'auto' and 'cpu' are accepted, 'cuda' is an error."""
    if device == "cuda":
        raise ValueError("per-gene thinning has no CUDA kernel; use device='cpu' or 'auto' "
                         "(it runs on the CPU)")
    _core.resolve_device(device)  # the usual error for anything else
    return "cpu"


def aligned_rows(rows: int, limit: int = BLOCK_BITS) -> tuple[int, int]:
    """(chunk rows rounded down to a multiple of the block, block_bits) for a chunk size."""
    bits = min(limit, max(int(rows), 1).bit_length() - 1)
    return (int(rows) >> bits) << bits, bits


def _as_csr(X):
    """X as checked CSR arrays (a CSC or dense input converted)."""
    if kind_of(X) == "dense":
        return as_compressed(sp.csr_matrix(as_dense(X)))
    return as_compressed(X.tocsr() if X.format == "csc" else X)


def _on_csr(X, fn: Callable[[object], tuple]):
    """``fn`` on X as checked CSR arrays; the result rebuilt as X's kind (CSR, CSC, dense)."""
    c = _as_csr(X)
    out = c.rebuild(*fn(c))
    if kind_of(X) == "sparse":
        return out.tocsc() if X.format == "csc" else out
    dense = out.toarray()
    fortran = X.flags.f_contiguous and not X.flags.c_contiguous
    return np.asfortranarray(dense) if fortran else dense


def thin_per_gene_matrix(X, q: float, seed: int, keep_zeros: bool, row_offset: int,
                         threads: int):
    """Per-gene thinning of a whole matrix (numpy, scipy or dask); same kind and dtype out."""
    if is_dask(X):
        return _thin_dask(X, q, seed, keep_zeros, row_offset, threads)
    return _on_csr(X, lambda c: _core.thin_per_gene_csr(
        c.indptr, c.indices, c.data, c.shape[0], c.shape[1], row_offset, q, seed, keep_zeros,
        threads))


def block_totals(X, start: int, block_bits: int) -> np.ndarray:
    """Gene totals per aligned block of a chunk whose first global row is ``start``; checks
    the counts (pass one)."""
    c = _as_csr(X)
    return _core.per_gene_block_totals(c.indptr, c.indices, c.data, c.shape[0], c.shape[1],
                                       start, block_bits)


def block_takes(totals: np.ndarray, q: float, seed: int, threads: int, block_bits: int,
                first_block: int = 0) -> np.ndarray:
    """Each block's per-gene takes from the block totals of the whole matrix."""
    return _core.per_gene_block_takes(np.ascontiguousarray(totals, dtype=np.int64), first_block,
                                      block_bits, q, seed, threads)


def thin_chunk(X, start: int, takes: np.ndarray, block_bits: int, seed: int, keep_zeros: bool,
               threads: int):
    """Per-gene thinning of an aligned chunk (first global row ``start``) from the takes of the
    blocks it spans (``takes[b]`` for block ``(start >> block_bits) + b``)."""
    t = np.ascontiguousarray(takes, dtype=np.int64)
    return _on_csr(X, lambda c: _core.thin_per_gene_blocks(
        c.indptr, c.indices, c.data, c.shape[0], c.shape[1], start, t, block_bits, seed,
        keep_zeros, threads))


def chunk_thinner(read: Callable[[int, int], object], n_rows: int, n_cols: int, rows: int,
                  draws: list[tuple[float, int]], *, keep_zeros: bool, threads: int,
                  cancel=None, where: str = "") -> Callable[[object, int], list]:
    """Pass one of chunked per-gene thinning and what pass two needs.

    Reads rows ``[0, n_rows)`` as ``read(start, stop)`` in aligned chunks of ``rows`` (a
    multiple of the block, see :func:`aligned_rows`), sums each gene per block, and returns
    ``thin(X, start)``: the aligned chunk X (first global row ``start``) thinned once per
    ``(fraction, seed)`` of ``draws``, each the rows of thinning the whole matrix. ``where``
    prefixes errors in the counts."""
    from ..errors import Cancelled

    bits = aligned_rows(rows)[1]
    totals = []
    for start in range(0, n_rows, rows):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled while summing the genes; nothing was written")
        try:
            totals.append(block_totals(read(start, min(start + rows, n_rows)), start, bits))
        except ValueError as e:
            raise ValueError(f"{where}: {e}" if where else str(e)) from None
    stacked = np.vstack(totals) if totals else np.zeros((0, n_cols), np.int64)
    takes = [block_takes(stacked, q, seed, threads, bits) for q, seed in draws]
    del stacked, totals

    def thin(X, start: int) -> list:
        blocks = slice(start >> bits, ((start + X.shape[0] - 1) >> bits) + 1)
        return [thin_chunk(X, start, t[blocks], bits, seed, keep_zeros, threads)
                for t, (_, seed) in zip(takes, draws)]

    return thin


def _thin_dask(X, q, seed, keep_zeros, row_offset, threads):
    """Two passes over row blocks rechunked to whole blocks of rows: totals (computed now),
    then the lazy thinning of each block from its takes."""
    import dask

    # blocks must start at multiples of 2**bits in global rows, the first one included
    bits = BLOCK_BITS
    if row_offset:
        bits = min(bits, (row_offset & -row_offset).bit_length() - 1)
    if X.ndim != 2:
        raise ValueError(f"counts must be 2-D (cells x genes), got a {X.ndim}-D dask array")
    rows = max(1 << bits, (int(np.median(X.chunks[0])) >> bits) << bits)
    X = X.rechunk({0: rows, 1: -1})
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    parts = [dask.delayed(block_totals, pure=True)(b, row_offset + int(s), bits)
             for b, s in zip(X.to_delayed()[:, 0], starts[:-1])]
    totals = np.vstack(dask.compute(*parts)) if parts else np.zeros((0, X.shape[1]), np.int64)
    first = row_offset >> bits
    takes = block_takes(totals, q, seed, threads, bits, first)

    def one(block, start, *args):
        return [thin_chunk(block, row_offset + start, *args)]

    return map_row_blocks(X, one, 1, lambda start, stop: (
        takes[start >> bits: ((stop - 1) >> bits) + 1], bits, seed, keep_zeros, threads))[0]
