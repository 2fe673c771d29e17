"""noisescale: how measurement noise limits what representation models learn about cells.

The data path, one package per stage (each imports only the stages before it):

- :mod:`noisescale.io`: AnnData stores read and written in row chunks, in-memory matrices as
  the C++ core sees them, and the one chunked read–transform–write driver.
- :mod:`noisescale.noise`: exact binomial thinning (:func:`thin`), nested depth series
  (:func:`thin_series`) and per-cell downsampling (:func:`downsample_to`) of arrays, AnnData
  and dask arrays, and the same for .h5ad/.zarr stores streamed in chunks (:func:`thin_file`,
  :func:`thin_series_file`, :func:`downsample_file`; CLI: ``noisescale thin``). The thinning
  functions are re-exported here.
- :mod:`noisescale.models`: representation models trained from scratch (PCA, random
  projection, scVI-style VAE, rank-token transformer).
- :mod:`noisescale.mi`: mutual-information estimators (KSG, Ross, latent MI).
- :mod:`noisescale.laws`: the noise and cell-number laws, fits, collapse, comparisons,
  budget plans, and the results schema with :func:`~noisescale.laws.fit_results`.
- :mod:`noisescale.report`: figures of fitted laws and the HTML report of a sweep.

Beside the path: :mod:`noisescale.simulate` (count data, the Gaussian channel and noisy images
with a known answer), :mod:`noisescale.sweep` (the protocol: configured experiments, resumable,
local or on Dask; image sweeps), :mod:`noisescale.cli` (the ``noisescale`` command) and
:mod:`noisescale.errors`. Importing noisescale loads numpy, scipy and the compiled core only.
"""

from __future__ import annotations

from . import _core
from ._internal.build import build_info, show_config
from .noise import downsample_file, downsample_to, thin, thin_file, thin_series, thin_series_file

__version__: str = _core.build_config()["version"]

__all__ = [
    "__version__",
    "build_info",
    "downsample_file",
    "downsample_to",
    "show_config",
    "thin",
    "thin_file",
    "thin_series",
    "thin_series_file",
]
