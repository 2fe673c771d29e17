"""Mutual-information estimators, in bits.

- :func:`ksg`: Kraskov–Stögbauer–Grassberger (algorithm 1) between two continuous variables,
  with exact max-norm neighbour searches (C++ k-d tree, OpenMP; FAISS on a GPU).
- :func:`mi_discrete`: between a continuous variable and a categorical label (Ross 2014), or the
  one-hot + latent-MI route.
- :func:`lmi`: latent MI (paired autoencoders with cross-prediction, then KSG on held-out
  latents) for high-dimensional variables; needs torch.

All three return exactly 0 when a variable is constant, and warn (:class:`TiesWarning`) when
more than half of the samples share their exact point with another sample.
"""

from __future__ import annotations

from .discrete import mi_discrete, one_hot
from .ksg import ksg, kth_neighbor_distance
from ._ties import TIES_FRACTION, TiesWarning
from .estimate import METHODS, WithinNullWarning, compare, default_method, estimate
from .lmi import LMIResult, lmi
from .result import HeldOutFit, MIEstimate

__all__ = ["HeldOutFit", "LMIResult", "METHODS", "MIEstimate", "TIES_FRACTION", "TiesWarning",
           "WithinNullWarning", "compare", "default_method", "estimate", "ksg",
           "kth_neighbor_distance", "lmi", "mi_discrete", "one_hot"]
