"""The one way noisescale derives random streams in Python: a seed and purpose words.

In the spirit of numpy's ``SeedSequence.spawn``: :func:`generator` ``(seed, *purpose)`` is a
numpy Generator (Philox) whose 128-bit key is a hash of the seed and the purpose words, so
streams for different purposes never overlap and a stream never depends on the order in which
others were drawn, on threads, on processes or on the executor. :func:`derive_seed` gives the
same derivation as a plain integer for libraries that take one (torch, a model's ``seed=``).
The C++ kernels use their own counter layout (``counter_words`` in ``csrc``): (seed, global
cell, gene, stream).

The first purpose word must be one of :data:`PURPOSES`, which documents every stream of the
package; further words (a signal's name, a depth's bits, a replicate) refine it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

#: Every purpose of a random stream, and what draws from it.
PURPOSES: dict[str, str] = {
    "split": "sweep: which cells are held out (whole clones together)",
    "cells": "sweep: the order in which training cells enter the nested training subsets "
             "(with the training size: an independent sample per size)",
    "thin": "sweep: the seed of the nested thinning series of a replicate (with 'per_gene' "
            "and the level: each per-gene depth)",
    "model": "sweep: the seed a model is fitted with (its name follows)",
    "mi": "sweep: the seed an MI estimate is made with (the signal's name follows)",
    "signal": "sweep: the seed a signal is prepared with (the signal's name follows)",
    "pairs": "signals: the sister or neighbour drawn for each clone or cell",
    "validation": "models, LMI and the sweep's n_validation: the validation split for early "
                  "stopping",
    "test": "LMI and image sweeps: the held-out split",
    "jitter": "KSG: the tie-breaking jitter of each variable ('x' or 'y' follows)",
    "noise": "image sweeps: the noise drawn for a budget (its float64 bits follow)",
    "simulate": "simulate: 'globals' (parameters) or 'cells' (one Philox block per BLOCK cells)",
    "gaussian": "Gaussian channel: 'rotation' (the orthogonal mixing) or 'samples'",
    "bootstrap": "laws: bootstrap resamples of a fit",
    "band": "laws: parameter draws of a confidence band",
    "plan": "laws: parameter draws of a budget plan's uncertainty",
    "halves": "MI uncertainty: the random halves of the samples (replicate index as block)",
    "null": "MI null: the shuffled pairings of x and y (shuffle index as block)",
    "folds": "MI linear probe: the cross-validation folds",
    "stream": "models: the order of a RowStream's chunks and of the rows in each ('chunks', "
              "'rows'); a trained model's seed of each epoch's order ('epoch')",
}


def _digest(seed: int, purpose: tuple[Any, ...], size: int) -> bytes:
    if not purpose or purpose[0] not in PURPOSES:
        raise ValueError(f"unknown random-stream purpose {purpose[:1]!r}; add it to "
                         "noisescale._internal.seeding.PURPOSES with what it is for")
    text = json.dumps([int(seed), *purpose], default=str)
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def derive_seed(seed: int, *purpose: Any) -> int:
    """A 63-bit seed for one purpose of ``seed`` (e.g. ``derive_seed(s, "model", "pca")``)."""
    return int.from_bytes(_digest(seed, purpose, 8), "little") >> 1


def generator(seed: int, *purpose: Any, block: int = 0) -> np.random.Generator:
    """A Philox Generator for one purpose of ``seed``; ``block`` selects an independent
    counter block of the same key (e.g. one per chunk of cells, for chunk-invariant output)."""
    key = np.frombuffer(_digest(seed, purpose, 16), dtype="<u8").astype(np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=[0, 0, int(block), 0]))


def split(n: int, fraction: float, seed: int, *purpose: Any) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of range(n) into (kept, held), round(n * fraction) held, both sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    return split_count(n, int(round(n * fraction)), seed, *purpose)


def split_count(n: int, n_held: int, seed: int, *purpose: Any
                ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of range(n) into (kept, held) with ``n_held`` held, both sorted."""
    order = generator(seed, *purpose).permutation(n)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def legacy_seed(seed: int) -> int:
    """A seed that numpy's legacy RandomState (scanpy, scikit-learn) accepts: seeds below
    2**32 are kept, larger ones are mixed down to 32 bits."""
    return seed if seed < 2**32 else int(np.random.SeedSequence(seed).generate_state(1)[0])
