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
    """Read a model written by :meth:`RepresentationModel.save`.

    The file is read with ``torch.load(weights_only=True)``: tensors and plain values only,
    never arbitrary objects. Anything else (another file, another torch file, a truncated
    model) raises ValueError saying that it is not a saved noisescale model.
    """
    import zipfile

    import numpy as np
    import torch

    where = repr(os.fspath(path))
    if not os.path.isfile(path):  # FileNotFoundError or IsADirectoryError, as open() says
        open(path, "rb").close()
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{where} is not a saved noisescale model: model.save() writes a "
                         f"torch zip archive and this file is not one (another kind of file, "
                         f"or a truncated copy)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's own message suggests unsafe unpickling: not repeated
        raise ValueError(f"{where} is not a saved noisescale model: torch could not read it "
                         f"as tensors and plain values ({type(err).__name__}); it is "
                         f"corrupt or another program's file") from None
    if not isinstance(state, dict) or "noisescale_model" not in state:
        raise ValueError(f"{where} is not a saved noisescale model: it is a torch file "
                         f"without noisescale's model record")
    fmt = state.get("format", FORMAT)
    if fmt != FORMAT:
        raise ValueError(f"{where} is a saved noisescale model of format {fmt!r}, which this "
                         f"version (format {FORMAT}) cannot read")
    problem = _check_record(state)
    if problem:
        raise ValueError(f"{where} is not a saved noisescale model: {problem}")
    try:
        model = get(state["noisescale_model"], **state["params"])
        model._load_state(state["state"])
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as err:
        raise ValueError(f"{where} is not a saved noisescale model: its "
                         f"{state['noisescale_model']!r} record does not rebuild the model "
                         f"({type(err).__name__}: {err})") from None
    model.genes_ = None if state["genes"] is None else np.asarray(state["genes"])
    model.n_genes_ = state["n_genes"]
    model.seed = state["seed"]
    model.history = state["history"]
    return model


#: Version of the file layout written by :meth:`RepresentationModel.save`.
FORMAT = 1

_RECORD = {"noisescale_model": str, "params": dict, "n_genes": int, "history": dict,
           "state": dict}


def _check_record(state: dict) -> str:
    """What is wrong with a loaded model record ('' if nothing)."""
    for key, kind in _RECORD.items():
        if not isinstance(state.get(key), kind):
            return f"its {key!r} entry is missing or not a {kind.__name__}"
    if state["noisescale_model"] not in MODELS:
        return (f"it names the model {state['noisescale_model']!r}; known: "
                f"{', '.join(available())}")
    genes = state.get("genes")
    if genes is not None and (not isinstance(genes, list) or len(genes) != state["n_genes"]):
        return "its gene names do not match its gene count"
    if state.get("seed") is not None and not isinstance(state["seed"], int):
        return "its seed is not an integer"
    return ""


__all__ = ["MODELS", "PCA", "VAE", "RandomProjection", "RepresentationModel", "Transformer",
           "available", "get", "load"]
