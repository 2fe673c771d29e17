"""noisescale: how measurement noise limits what representation models learn about cells.

This release provides the noise knob of the toolkit: exact, reproducible binomial thinning of
UMI count matrices (:func:`thin`), nested depth series (:func:`thin_series`) and per-cell
downsampling to a target depth (:func:`downsample_to`).
"""

from __future__ import annotations

from ._config import build_info, show_config
from .thinning import downsample_to, thin, thin_series

__version__: str = build_info()["version"]

__all__ = ["__version__", "build_info", "downsample_to", "show_config", "thin", "thin_series"]
