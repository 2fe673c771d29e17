"""noisescale: how measurement noise limits what representation models learn about cells.

This release provides the noise knob of the toolkit: exact, reproducible binomial thinning of
UMI count matrices (:func:`thin`), nested depth series (:func:`thin_series`) and per-cell
downsampling to a target depth (:func:`downsample_to`), on arrays, AnnData and dask arrays,
and the same for .h5ad/.zarr stores streamed in chunks (:func:`thin_file`,
:func:`thin_series_file`, :func:`downsample_file`; CLI: ``noisescale thin``). The
mutual-information estimators (KSG, Ross's discrete estimator, latent MI) live in
:mod:`noisescale.mi`, the representation models (PCA, random projection, VAE, transformer) in
:mod:`noisescale.models`, the scaling laws in :mod:`noisescale.laws` (fits, collapse, comparisons,
budget plans) and their figures in :mod:`noisescale.plot`. :mod:`noisescale.theory` is the
Gaussian channel whose MI is the noise law; :mod:`noisescale.images` shows the law for digit
images under shot noise, additive noise and downsampling.

:mod:`noisescale.simulate` generates count datasets with a known latent state, at any size
(CLI: ``noisescale simulate``).
"""

from __future__ import annotations

from ._config import build_info, show_config
from .stream import downsample_file, thin_file, thin_series_file
from .thinning import downsample_to, thin, thin_series

__version__: str = build_info()["version"]

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
