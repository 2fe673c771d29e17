"""Raw counts too large for memory as a stream of row chunks: the cells of one or more CSR
AnnData stores, one store after the other, for models that train out of core.

A :class:`RowStream` holds only the stores' paths and sizes (so it pickles and crosses
processes); every :meth:`RowStream.chunks` opens the stores, reads them chunk by chunk, checks
each chunk's counts as an in-memory fit does, and closes them. Nothing is ever written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._internal import seeding
from .chunked import chunk_rows_for
from .stores import CountsReader


class RowStream:
    """Cells x genes raw counts of CSR AnnData stores (``.h5ad`` or ``.zarr``), the rows of
    each store in turn, read in chunks of at most ``chunk_rows`` rows (None: about
    :data:`~noisescale.io.chunked.AUTO_CHUNK_ENTRIES` stored entries a chunk). ``layer``:
    read ``layers[layer]`` instead of ``X``. The stores need the same genes in the same order.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                 chunk_rows: int | None = None, layer: str | None = None):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = tuple(Path(p) for p in paths)
        if not self.paths:
            raise ValueError("a RowStream needs at least one store")
        self.layer = layer
        rows, nnz, genes = [], 0, None
        for path in self.paths:
            try:
                reader = CountsReader(path, layer)
            except KeyError as err:  # no X, or no such layer
                raise ValueError(err.args[0]) from None
            with reader:
                if not reader.sparse:
                    raise ValueError(f"{reader.where} in {path} is a dense array, not a CSR "
                                     f"matrix: a RowStream reads CSR stores (rewrite it with "
                                     f"adata.X = scipy.sparse.csr_matrix(adata.X))")
                names = np.asarray(reader.read("var").index.astype(str))
                if genes is None:
                    genes = names
                elif names.size != genes.size:
                    raise ValueError(f"{path} has {names.size} genes but {self.paths[0]} has "
                                     f"{genes.size}: the stores of a RowStream need the same "
                                     f"genes in the same order")
                elif not np.array_equal(names, genes):
                    i = int(np.flatnonzero(names != genes)[0])
                    raise ValueError(f"{path} names its genes differently from "
                                     f"{self.paths[0]} (first at {i}: {names[i]!r} instead of "
                                     f"{genes[i]!r}): the stores of a RowStream need the same "
                                     f"genes in the same order")
                rows.append(reader.shape[0])
                nnz += reader.nnz
        #: rows of each store, in order
        self.rows: tuple[int, ...] = tuple(rows)
        self.shape: tuple[int, int] = (sum(rows), int(genes.size))
        self.nnz = nnz  # stored entries (explicit zeros included)
        self.genes: np.ndarray = genes
        self.chunk_rows = chunk_rows_for(chunk_rows, self.n_cells,
                                         nnz / max(self.n_cells, 1))

    @property
    def n_cells(self) -> int:
        return self.shape[0]

    @property
    def n_genes(self) -> int:
        return self.shape[1]

    def _spans(self) -> list[tuple[int, int, int, int]]:
        """(store, start, stop, first stream row) of every chunk, in stored order."""
        spans, offset = [], 0
        for f, n in enumerate(self.rows):
            spans += [(f, a, min(a + self.chunk_rows, n), offset + a)
                      for a in range(0, n, self.chunk_rows)]
            offset += n
        return spans

    def chunks(self, seed: int | None = None, *, with_positions: bool = False
               ) -> Iterator[sp.csr_matrix] | Iterator[tuple[np.ndarray, sp.csr_matrix]]:
        """Float32 CSR chunks (sorted indices, no stored zeros) of at most ``chunk_rows``
        rows whose counts are checked (finite, non-negative whole numbers); in stored order,
        or with a ``seed`` the chunks in a seeded order and the rows of each shuffled.
        ``with_positions``: (positions, chunk) pairs, positions the stream rows (0 to
        n_cells - 1, in stored order) of the chunk's rows."""
        from ..models.base import check_counts  # not at import: the models import this

        spans = self._spans()
        order = (range(len(spans)) if seed is None
                 else seeding.generator(seed, "stream", "chunks").permutation(len(spans)))
        readers: dict[int, CountsReader] = {}
        try:
            for k in order:
                f, start, stop, first = spans[k]
                if f not in readers:
                    readers[f] = CountsReader(self.paths[f], self.layer)
                X = sp.csr_matrix(readers[f].rows(start, stop), dtype=np.float32)
                check_counts(X, first_row=start, where=f" in {self.paths[f]}")
                positions = np.arange(first, first + stop - start)
                if seed is not None:
                    perm = seeding.generator(seed, "stream", "rows", block=int(k)).permutation(
                        stop - start)
                    X, positions = X[perm], positions[perm]
                    X.sort_indices()
                yield (positions, X) if with_positions else X
        finally:
            for reader in readers.values():
                reader.close()

    def read(self) -> sp.csr_matrix:
        """All cells as one float32 CSR in memory (for small streams: validation cells)."""
        parts = list(self.chunks())
        if not parts:
            return sp.csr_matrix(self.shape, dtype=np.float32)
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)

    def __repr__(self) -> str:
        return (f"RowStream({len(self.paths)} store{'s' * (len(self.paths) != 1)}, "
                f"{self.n_cells} cells x {self.n_genes} genes, chunk_rows={self.chunk_rows})")
