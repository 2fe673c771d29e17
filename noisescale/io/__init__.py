"""Reading and writing counts: AnnData stores in row chunks, in-memory matrices as the C++ core
sees them, dask row blocks, atomic small files, and the one chunked read–transform–write driver.

- :mod:`.stores`: :class:`CountsReader` (rows of ``X`` or a layer of an .h5ad/.zarr, never
  loaded whole) and :class:`AnnDataWriter` (a new store, renamed into place on commit).
- :mod:`.chunked`: :func:`run_chunks`, shared by file thinning and ``simulate_file``.
- :mod:`.streams`: :class:`RowStream`, the cells of CSR stores in row chunks, which models fit
  on out of core.
- :mod:`.matrices`: the validator of in-memory count matrices (CSR, CSC, dense, AnnData).
- :mod:`.blocks`: dask arrays processed row block by row block.
- :mod:`.atomic`: :func:`write_atomic` for small files (tables, job records, reports).
- :mod:`.temporaries`: the hidden temporaries both write, named after the writing host and
  process, and :func:`remove_stale_temporaries` for those a killed process left.
"""

from __future__ import annotations

from .atomic import write_atomic
from .chunked import run_chunks
from .stores import AnnDataWriter, CountsReader, copy_annotations, store_format
from .streams import RowStream
from .temporaries import find_temporaries, remove_stale_temporaries

__all__ = ["AnnDataWriter", "CountsReader", "RowStream", "copy_annotations", "find_temporaries",
           "remove_stale_temporaries", "run_chunks", "store_format", "write_atomic"]
