"""The one chunked read–transform–write driver: row chunks in, row chunks out, atomically.

:func:`run_chunks` is what ``thin_file``, ``thin_series_file``, ``downsample_file`` and
``simulate_file`` share: rows ``[start, stop)`` are loaded (on a reader thread, one chunk
ahead, so reading overlaps computing; the kernels release the GIL), transformed, and appended
to every output. Memory is bounded by two chunks, never by the dataset. Outputs are built in
hidden temporary siblings (:class:`~noisescale.io.stores.AnnDataWriter`) and renamed into
place only when every output is complete, so an error, a full disk or a cancel event leaves no
partial file and never touches an existing one unless ``overwrite``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._internal.checks import check_int
from ..errors import Cancelled
from .stores import AnnDataWriter

#: Stored entries per chunk when the caller gives no chunk size (64 MiB of float32 + int32 CSR).
AUTO_CHUNK_ENTRIES = 1 << 23


def chunk_rows_for(chunk_rows: Any, n_rows: int, entries_per_row: float) -> int:
    """Validate ``chunk_rows=``; None picks about :data:`AUTO_CHUNK_ENTRIES` entries a chunk."""
    if chunk_rows is None:
        per_row = max(int(entries_per_row), 1)
        return int(min(max(n_rows, 1), max(1, AUTO_CHUNK_ENTRIES // per_row)))
    return check_int("chunk_rows", chunk_rows, 1)


def run_chunks(
    outputs: Sequence[str | os.PathLike],
    n_rows: int,
    chunk_rows: int,
    *,
    load: Callable[[int, int, int], Any],
    compute: Callable[[Any, int], Sequence[dict[str, Any]]],
    prepare: Callable[[list[AnnDataWriter]], None] | None = None,
    finish: Callable[[list[AnnDataWriter]], None] | None = None,
    overwrite: bool = False,
    zarr_format: int | None = None,
    compression: str | None = None,
    progress: bool = False,
    desc: str = "",
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Write ``outputs`` chunk by chunk and commit them together.

    For chunk ``k`` (rows ``[start, stop)``), ``block = load(k, start, stop)`` and ``parts =
    compute(block, start)``: one ``{element key: rows}`` dict per output (e.g. ``{"X": csr,
    "obsm/state": array}``), appended in order. ``prepare(writers)`` runs once the first chunk
    has been computed (so an input rejected by ``compute`` creates no file), ``finish(writers)``
    after the last (annotations, provenance). A set ``cancel`` event raises
    :class:`~noisescale.errors.Cancelled` at the next chunk. Returns the output paths.
    """
    from tqdm.auto import tqdm

    dsts = [Path(o) for o in outputs]
    starts = range(0, max(n_rows, 1), chunk_rows)
    writers: list[AnnDataWriter] = []
    bar = tqdm(total=n_rows, unit="cells", unit_scale=True, disable=not progress, desc=desc,
               smoothing=0.1)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noisescale-read")

    def fetch(k: int):
        return pool.submit(load, k, starts[k], min(n_rows, starts[k] + chunk_rows))

    try:
        ahead = fetch(0)
        for k, start in enumerate(starts):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled after {start:,} of {n_rows:,} cells; "
                                "no output was written")
            block = ahead.result()
            if k + 1 < len(starts):
                ahead = fetch(k + 1)
            parts = compute(block, start)
            if not writers:  # the first chunk passed its checks: start writing
                for d in dsts:
                    writers.append(AnnDataWriter(d, overwrite=overwrite, zarr_format=zarr_format,
                                                 compression=compression))
                if prepare is not None:
                    prepare(writers)
            for w, part in zip(writers, parts):
                for key, rows in part.items():
                    w.append_rows(key, rows)
            bar.update(min(n_rows, start + chunk_rows) - start)
            del block, parts
        if finish is not None:
            finish(writers)
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled; no output was written")
        for w in writers:
            w.commit()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for w in writers:
            w.abort()
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    return dsts
