"""What an MI estimate is: the value with its uncertainty and null, and a trained estimator's
held-out evaluation.

:class:`MIEstimate` is what :func:`noisescale.mi.estimate` returns. :class:`HeldOutFit` is what
a trained estimator (LMI, InfoNCE, MINE/NWJ, the linear probe) leaves after training: its
estimate on the held-out samples and a way to evaluate the *same* trained networks on another
pairing or subset of those samples, which is the cheap route to an uncertainty and a null
(``refit=False`` in :func:`~noisescale.mi.estimate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Flags an estimate can carry (``MIEstimate.flags``, the sweep's ``mi_flags`` column).
FLAGS = {
    "within_null": "the estimate is not above its null's 95 % upper edge (MIEstimate.null_hi): "
                   "it cannot be told apart from independence",
    "ties": "more than half of the samples share their exact point with another sample "
            "(a TiesWarning was raised): the estimate is that of discrete values",
    "constant": "x or y is constant: the MI is exactly 0 and nothing was resampled",
}


@dataclass(frozen=True)
class HeldOutFit:
    """A trained estimator's estimate on its ``n_eval`` held-out (evaluation) samples.

    ``evaluate(ix, iy)`` re-evaluates the trained networks on the pairs
    ``(x_eval[ix[j]], y_eval[iy[j]])`` (int64 index arrays of equal length into the evaluation
    samples, in their order) and returns the estimate in bits, without retraining: ``ix == iy``
    a subset gives the estimate on that subset, ``iy`` a permutation of ``ix`` a null.
    """

    mi: float
    n_eval: int
    evaluate: Callable[[np.ndarray, np.ndarray], float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MIEstimate:
    """An MI estimate in bits, with (when asked for) its uncertainty and null.

    ``se`` is the standard error from half-sampling (see :mod:`noisescale.mi.resampling`),
    ``lo``/``hi`` the 95 % interval around ``mi``; ``null`` is the mean of the same estimator
    over ``null_values``, its values on shuffled pairings, and ``null_sd`` their spread. Fields
    not computed are NaN (``null_values`` empty). ``n_samples`` counts the pairs the estimate
    used (after dropping nothing: the held-out share for trained estimators is in
    ``details["n_eval"]``). ``refit`` says whether the resamples retrained the estimator
    (None for estimators that train nothing).
    """

    method: str
    mi: float
    n_samples: int
    se: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    null: float = math.nan
    null_sd: float = math.nan
    null_values: tuple[float, ...] = ()
    halves: np.ndarray | None = None  # (resamples, 2) estimates on the two halves
    refit: bool | None = None
    flags: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.mi)

    @property
    def null_hi(self) -> float:
        """The null's 95 % upper edge: the larger of the 95 % prediction bound of one more
        shuffled estimate, ``null + t(S−1) · sqrt(1 + 1/S) · null_sd`` over S shuffles (S ≥ 2),
        and ``null + 1.96 · se``; NaN when there is no null."""
        if math.isnan(self.null):
            return math.nan
        edges = [0.0]
        s = len(self.null_values)
        if s >= 2 and not math.isnan(self.null_sd):
            from scipy.stats import t as student_t

            edges.append(float(student_t.ppf(0.975, s - 1)) * math.sqrt(1 + 1 / s)
                         * self.null_sd)
        if not math.isnan(self.se):
            edges.append(1.96 * self.se)
        return self.null + max(edges)

    @property
    def within_null(self) -> bool:
        """Whether the estimate is not above :attr:`null_hi` (False when there is no null)."""
        hi = self.null_hi
        return (not math.isnan(hi)) and self.mi <= hi and "constant" not in self.flags

    def as_row(self) -> dict[str, Any]:
        """The results-table columns of this estimate: ``mi``, ``mi_se``, ``mi_lo``,
        ``mi_hi``, ``mi_null``, ``mi_null_sd`` and ``mi_flags`` (";"-joined)."""
        return {"mi": float(self.mi), "mi_se": float(self.se), "mi_lo": float(self.lo),
                "mi_hi": float(self.hi), "mi_null": float(self.null),
                "mi_null_sd": float(self.null_sd), "mi_flags": ";".join(self.flags)}
