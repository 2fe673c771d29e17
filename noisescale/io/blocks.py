"""Dask arrays of count rows: each row block is thinned by the in-memory kernel, lazily.

The blocks keep their chunking, their type (scipy sparse or numpy) and dtype; each block is
processed with its global row offset, so the result equals the in-memory call for any chunking.
Dask is imported only when a dask array is passed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def is_dask(X: Any) -> bool:
    """True for a dask array (without importing dask when it has not been imported)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def map_row_blocks(X, fn: Callable[..., list], n_out: int,
                   block_args: Callable[[int, int], tuple] = lambda start, stop: ()) -> list:
    """``n_out`` dask arrays whose row block b is ``fn(X_b, start_b, *block_args(start_b,
    stop_b))[i]``, computed once per block for all outputs.

    Column chunks are merged first (a cell's counts must be in one block).
    """
    import dask
    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"counts must be 2-D (cells x genes), got a {X.ndim}-D dask array")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("the dask array has unknown row chunk sizes; call "
                         "X.compute_chunk_sizes() first")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    outs: list[list] = [[] for _ in range(n_out)]
    for b, block in enumerate(X.to_delayed()[:, 0]):
        start, stop = int(starts[b]), int(starts[b + 1])
        parts = dask.delayed(fn, nout=n_out, pure=True)(block, start, *block_args(start, stop))
        for i in range(n_out):
            outs[i].append(da.from_delayed(parts[i], shape=(stop - start, X.shape[1]),
                                           dtype=X.dtype, meta=X._meta))
    return [da.concatenate(parts, axis=0) for parts in outs]
