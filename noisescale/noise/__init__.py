"""The noise knob: exact binomial thinning, nested depth series and per-cell downsampling.

:mod:`.memory` works on in-memory matrices (numpy, scipy CSR/CSC, dask, AnnData);
:mod:`.files` streams .h5ad/.zarr stores chunk by chunk through :func:`noisescale.io.run_chunks`.
Both call the same C++ kernels with global row indices, so they agree bit for bit.
"""

from __future__ import annotations

from .files import downsample_file, thin_file, thin_series_file
from .memory import downsample_to, thin, thin_series

__all__ = ["downsample_file", "downsample_to", "thin", "thin_file", "thin_series",
           "thin_series_file"]
