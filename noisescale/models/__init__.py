"""Representation models trained from scratch on (thinned) raw UMI counts.

Every model follows :class:`RepresentationModel`: ``fit(counts, seed=)`` on training cells,
``embed(counts)`` of any cells with the same genes, ``save(path)`` and :func:`load`. Counts are
raw UMI matrices (numpy, scipy sparse) or AnnData with ``layer=``; preprocessing fitted on the
training cells only (scanpy: seurat_v3 HVGs on counts, normalize_total, log1p) is part of the
model.

==========================  =====================================================
``get("pca")``              PCA of log-normalized HVGs (16 dims)
``get("random_projection")``  Gaussian random projection, the no-learning baseline
``get("vae")``              scVI-style VAE, negative binomial / ZINB (16 dims)
``get("transformer")``      rank-token transformer, masked-gene pre-training
==========================  =====================================================
"""

from __future__ import annotations

import os
from typing import Any

from .base import RepresentationModel
from .linear import PCA, RandomProjection
from .transformer import Transformer
from .vae import VAE

MODELS: dict[str, type[RepresentationModel]] = {
    cls.name: cls for cls in (PCA, RandomProjection, VAE, Transformer)
}


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return sorted(MODELS)


def get(name: str, **params: Any) -> RepresentationModel:
    """A new, unfitted model by registry name, e.g. ``get("vae", n_dims=10)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    try:
        return MODELS[name](**params)
    except TypeError as err:
        raise TypeError(f"bad parameters for model {name!r}: {err}") from None


def load(path: str | os.PathLike) -> RepresentationModel:
    """Read a model written by :meth:`RepresentationModel.save`."""
    import numpy as np
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "noisescale_model" not in state:
        raise ValueError(f"{os.fspath(path)!r} is not a saved noisescale model")
    model = get(state["noisescale_model"], **state["params"])
    model.genes_ = None if state["genes"] is None else np.asarray(state["genes"])
    model.n_genes_ = state["n_genes"]
    model.seed = state["seed"]
    model.history = state["history"]
    model._load_state(state["state"])
    return model


__all__ = ["MODELS", "PCA", "VAE", "RandomProjection", "RepresentationModel", "Transformer",
           "available", "get", "load"]
