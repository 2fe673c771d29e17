"""The thinned cells a sweep's jobs use: which cells each replicate seed needs, thinned chunk by
chunk into memory or into an on-disk cache, and read back in a job in memory or as a stream.

For one seed the cells fall into *segments*: the held-out cells, the validation cells and the
training cells; with nested training sizes N1 < N2 < ... the training cells of size Ni are
segments 1..i (the cells ranked N(i-1) to Ni in the seed's permutation of the pool), with
independent samples each size is a segment of its own. Every segment is thinned to every
depth. Binomial thinning is keyed by the cells' global positions in the (filtered) dataset, so
thinning only these cells, in chunks, gives the bits that thinning the whole matrix gives;
per-gene thinning sums the genes over all cells first and then thins aligned chunks, with
the whole-matrix bits too.

Small sweeps keep the thinned segments in memory. When they would not fit ``run.memory_gb``
(or with ``out_of_core = "always"``), every (depth, segment) is written to a CSR ``.h5ad`` in
``output/cache/thinned-<key>/``; all of a seed's stores are committed together and a
``manifest.json`` written after them marks the seed complete, so a killed run reuses only
whole entries. A job reads its training cells back into memory when they fit the budget
(the same matrix as the in-memory route: same results), or else trains from a
:class:`~noisescale.io.streams.RowStream` of the stores (an out-of-core method, recorded as
the fit's route in the job file and the provenance).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.seeding import derive_seed, generator
from ..errors import ConfigError
from ..io.atomic import write_atomic

#: Bytes of memory a stored entry costs in the thinning pass: float64 or int64 counts plus an
#: int64 index, for the input chunk and each depth.
PASS_BYTES_PER_ENTRY = 16
#: Bytes a training entry costs in an in-memory fit (float32 CSR, normalized copies, HVG
#: subsets): the fit route's rule of thumb.
FIT_BYTES_PER_ENTRY = 48
#: The fewest cells a thinning chunk may hold.
MIN_CHUNK_CELLS = 64


@dataclass(frozen=True)
class Part:
    """One segment at one depth: in memory (``rows`` and ``matrix``, or a handle of
    ``executor.put``) or a committed cache store at ``path``."""

    n_rows: int
    nnz: int
    umis: float
    rows: Any = None
    matrix: Any = None
    path: str = ""


def memory_budget(gb: float | None) -> int:
    """``run.memory_gb`` in bytes; None: a quarter of this machine's physical memory."""
    if gb is not None:
        return int(gb * 2**30)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(total // 4)


def training_rows(seed: int, n_pool: int, n_cells: int, nested: bool) -> np.ndarray:
    """The pool positions (sorted) a job of this replicate seed trains on: the first
    ``n_cells`` of one permutation per seed (nested), or a sample of its own per N."""
    if nested:
        return np.sort(_nested_order(seed, n_pool)[:n_cells])
    return np.sort(generator(seed, "cells", n_cells).choice(n_pool, n_cells, replace=False))


def _nested_order(seed: int, n_pool: int) -> np.ndarray:
    """The order in which pool cells enter the nested training subsets of a seed."""
    return generator(seed, "cells").permutation(n_pool)


def segments(seed: int, test: np.ndarray, validation: np.ndarray, pool: np.ndarray,
             sizes: tuple[int, ...], nested: bool) -> dict[str, np.ndarray]:
    """The sorted dataset positions of each segment of one seed: the cells of the nested
    training size N(i) are those ranked N(i-1) to N(i) in :func:`training_rows`' order."""
    out = {"test": test}
    if validation.size:
        out["validation"] = validation
    if nested:
        order = _nested_order(seed, pool.size)
        prev = 0
        for n in sorted(sizes):
            out[f"train{n}"] = np.sort(pool[order[prev:n]])
            prev = n
    else:
        for n in sizes:
            out[f"train{n}"] = pool[training_rows(seed, pool.size, n, False)]
    return out


def training_segments(n_cells: int, sizes: tuple[int, ...], nested: bool) -> list[str]:
    """The segments whose cells a job of ``n_cells`` trains on."""
    if nested:
        return [f"train{n}" for n in sorted(sizes) if n <= n_cells]
    return [f"train{n_cells}"]


def chunk_cells(budget: int, entries_per_cell: float, n_levels: int) -> int:
    """Cells per thinning chunk so that a chunk and its depths fit ``budget`` bytes; a
    ConfigError when not even :data:`MIN_CHUNK_CELLS` cells fit."""
    per_cell = max(entries_per_cell, 1.0) * PASS_BYTES_PER_ENTRY * (n_levels + 1)
    cells = int(budget // (2 * per_cell))  # two chunks: one read ahead
    if cells < MIN_CHUNK_CELLS:
        need = 2 * per_cell * MIN_CHUNK_CELLS / 2**30
        raise ConfigError(f"run.memory_gb = {budget / 2**30:.3g} is too small for one chunk of "
                          f"{MIN_CHUNK_CELLS} cells at {n_levels} depths ({entries_per_cell:.0f} "
                          f"stored counts per cell): it needs at least {need:.3g} GB")
    return min(cells, max(1, (1 << 23) // max(int(entries_per_cell), 1)))


def cache_dir(output: Path, key: dict[str, Any]) -> Path:
    from .config import stable_hash

    return output / "cache" / f"thinned-{stable_hash(key)[:16]}"


def _name(level: int, segment: str) -> str:
    return f"L{level}-{segment}.h5ad"


def cached(directory: Path) -> dict[tuple[int, str], Part] | None:
    """The parts of a complete cache entry (its manifest exists), or None."""
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    entries = json.loads(manifest.read_text())["parts"]
    parts = {}
    for e in entries:
        path = directory / _name(e["level"], e["segment"])
        if not path.exists():
            return None
        parts[(e["level"], e["segment"])] = Part(n_rows=e["n_rows"], nnz=e["nnz"],
                                                 umis=e["umis"], path=str(path))
    return parts


def thin_seed(reader, cells: np.ndarray, segs: dict[str, np.ndarray], fractions, seed: int,
              thinning: str, *, chunk: int, directory: Path | None, progress: bool = False,
              cancel=None) -> dict[tuple[int, str], Part]:
    """Every segment of one seed at every depth: in memory (``directory`` None) or committed
    to the cache ``directory``. ``cells[i]``: the store row of dataset position i.

    Binomial thinning reads only the segments' cells, ``chunk`` at a time. Per-gene thinning
    draws each gene across all cells: it sums the genes over every cell first (a pass over
    the whole store), then thins the aligned chunks holding segment cells."""
    from ..noise import per_gene, thin_series

    union = np.unique(np.concatenate(list(segs.values())))
    levels = range(len(fractions))
    if thinning == "per_gene":
        chunk = per_gene.aligned_rows(chunk)[0]
        thin = per_gene.chunk_thinner(
            lambda a, b: _csr(reader.take(cells[a:b])), cells.size, reader.shape[1], chunk,
            [(q, derive_seed(seed, "thin", "per_gene", lv)) for lv, q in enumerate(fractions)],
            keep_zeros=False, threads=0, cancel=cancel, where=str(reader.path))
        n_rows = cells.size

        def load(k: int, start: int, stop: int):
            window = union[np.searchsorted(union, start):np.searchsorted(union, stop)]
            return window, _csr(reader.take(cells[start:stop])) if window.size else None

        def depths(window, X, start: int) -> list:
            return [L[window - start] for L in thin(X, start)]
    else:
        n_rows = union.size

        def load(k: int, start: int, stop: int):
            window = union[start:stop]
            return window, _csr(reader.take(cells[window]))

        def depths(window, X, start: int) -> list:
            return thin_series(X, list(fractions), seed=derive_seed(seed, "thin"), rows=window)

    def compute(block, start: int) -> list[dict[str, Any]]:
        window, X = block
        if X is None:
            return [{} for _ in names]
        thinned = depths(window, X, start)
        takes = []  # each segment's cells in this window, as window positions
        for rows in segs.values():
            a = np.searchsorted(rows, window[0])
            b = np.searchsorted(rows, window[-1], side="right")
            takes.append(np.searchsorted(window, rows[a:b]))
        return [{"X": thinned[lv][take]} if take.size else {}
                for lv in levels for take in takes]

    names = [(lv, name) for lv in levels for name in segs]
    if directory is not None:
        return _write_cache(reader, n_rows, segs, names, chunk, load, compute, directory,
                            progress, cancel, seed)
    blocks: dict[tuple[int, str], list] = {key: [] for key in names}
    for start in range(0, n_rows, chunk):
        for key, part in zip(names, compute(load(0, start, min(n_rows, start + chunk)), start)):
            if part:
                blocks[key].append(part["X"])
    return {key: _memory_part(segs[key[1]], sp.vstack(b, format="csr") if len(b) > 1
                              else b[0]) for key, b in blocks.items()}


def _csr(X) -> sp.csr_matrix:
    return X if sp.issparse(X) else sp.csr_matrix(X)


def _memory_part(rows: np.ndarray, X) -> Part:
    X = sp.csr_matrix(X)
    return Part(n_rows=X.shape[0], nnz=int(X.nnz), umis=float(X.sum()), rows=rows, matrix=X)


def _write_cache(reader, n_rows, segs, names, chunk, load, compute, directory: Path, progress,
                 cancel, seed) -> dict[tuple[int, str], Part]:
    import pandas as pd

    from ..io.chunked import run_chunks

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").unlink(missing_ok=True)
    paths = [directory / _name(lv, name) for lv, name in names]
    stats = {key: [0, 0.0] for key in names}  # nnz, umis

    def counted(block, start):
        parts = compute(block, start)
        for key, part in zip(names, parts):
            if part:
                stats[key][0] += int(part["X"].nnz)
                stats[key][1] += float(part["X"].sum())
        return parts

    def finish(writers) -> None:
        n_genes = reader.shape[1]
        for (_, name), w in zip(names, writers):
            rows = segs[name]
            if not rows.size:
                w.write("X", sp.csr_matrix((0, n_genes), dtype=reader.dtype))
            w.write("obs", pd.DataFrame({"row": rows}, index=rows.astype(str)))
            w.write("var", pd.DataFrame(index=np.arange(n_genes).astype(str)))

    run_chunks(paths, n_rows, chunk, load=load, compute=counted, finish=finish,
               overwrite=True, progress=progress, desc=f"thinning seed {seed}", cancel=cancel)
    entries = [{"level": lv, "segment": name, "n_rows": int(segs[name].size),
                "nnz": stats[(lv, name)][0], "umis": stats[(lv, name)][1]}
               for lv, name in names]
    write_atomic(directory / "manifest.json", json.dumps({"parts": entries}))
    return cached(directory)


# ---------------------------------------------------------------------------------------------
# In a job


def load_parts(parts: list[Part]):
    """The parts' cells in one CSR matrix, in increasing dataset position (the matrix the
    in-memory route builds)."""
    from ..io.stores import CountsReader
    from .executors import resolve

    mats, rows = [], []
    for p in parts:
        if p.path:
            with CountsReader(p.path) as r:
                mats.append(sp.csr_matrix(r.rows(0, r.shape[0])))
                rows.append(r.obs_column("row"))
        else:
            mats.append(resolve(p.matrix))
            rows.append(np.asarray(p.rows))
    if len(mats) == 1:
        return mats[0]
    order = np.argsort(np.concatenate(rows), kind="stable")
    return sp.vstack(mats, format="csr")[order]


def training_input(parts: list[Part], budget: int, mode: str):
    """What a job fits on: the training matrix in memory, or a
    :class:`~noisescale.io.streams.RowStream` over the cache stores when it would not fit
    ``budget`` bytes (``mode`` "always": whenever the parts are stored)."""
    stored = all(p.path for p in parts)
    fits = sum(p.nnz for p in parts) * FIT_BYTES_PER_ENTRY <= budget
    if stored and (mode == "always" or (mode == "auto" and not fits)):
        from ..io.streams import RowStream

        return RowStream([p.path for p in parts])
    return load_parts(parts)
