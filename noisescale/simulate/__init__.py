"""Data with a known answer: simulated counts, the Gaussian channel, and noisy images.

- :mod:`.counts`: :func:`simulate` and :func:`simulate_file` (any size, chunk by chunk) give
  UMI count datasets with a known latent state (types, programs, proteins, time, space);
  :func:`count_statistics` compares them with real data (CLI: ``noisescale simulate``).
- :mod:`.gaussian`: :class:`GaussianChannel`, whose MI is exactly the noise law, a seeded
  sampler and :func:`recover` (estimate MI on samples and fit the law).
- :mod:`.images`: digit images under shot noise, additive noise and downsampling (the image
  sweep itself is :func:`noisescale.sweep.images.noise_sweep`).

The names are loaded on first use, so that ``noisescale.simulate.images`` (and the CLI, which
reads its choices) does not import pandas or the law fitters.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .counts import count_statistics, simulate, simulate_file
    from .gaussian import GaussianChannel, recover

_WHERE = {"count_statistics": "counts", "simulate": "counts", "simulate_file": "counts",
          "GaussianChannel": "gaussian", "recover": "gaussian"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = ["GaussianChannel", "count_statistics", "recover", "simulate", "simulate_file"]
