"""Constant variables and exactly tied samples: detection, and the warning when ties dominate.

MI of a constant variable with anything is exactly 0, so the estimators return 0 for a variable
whose rows are all equal (compared exactly, after the estimator's preprocessing) instead of
running the nearest-neighbour formulas, which read duplicate points at distance 0 as infinitely
dense.

Ties short of that (integer-valued signals, one-hot labels, many identical embeddings) are
broken by the seeded jitter (see ``_samples.jitter_``); the estimate is then that of the
discrete values, which is well defined but has a finite-sample bias of its own. When more than
:data:`TIES_FRACTION` of the samples share their exact point with another sample, the estimators
say so with a :class:`TiesWarning`.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

#: Warn when more than this fraction of the samples share their exact point with another sample
#: (in x or in y; a sample tied in the joint space is tied in both).
TIES_FRACTION = 0.5


class TiesWarning(UserWarning):
    """Most samples share their exact point with another sample (discrete-valued data, or an
    embedding that maps many samples to one point): a nearest-neighbour MI estimate then
    measures the MI of the discrete values, with a finite-sample bias continuous data do not
    have. The message gives the fractions found and what they mean for the estimate."""


def is_constant(a: np.ndarray) -> bool:
    """Whether every row of the 2-D array ``a`` equals the first, exactly (no tolerance)."""
    return bool((a == a[0]).all())


def duplicates(a: np.ndarray) -> tuple[int, int]:
    """(number of rows equal to at least one other row, number of distinct rows) of the 2-D
    float array ``a``, compared exactly (-0.0 equals 0.0).

    Only rows whose first coordinate is repeated can be duplicates, so continuous data cost one
    1-D sort; the candidates are then compared as whole rows (sorted as bytes).
    """
    n = a.shape[0]
    if n < 2:
        return 0, n
    order = np.argsort(a[:, 0], kind="stable")
    first = a[order, 0]
    eq = first[1:] == first[:-1]
    if not eq.any():
        return 0, n
    tied = np.zeros(n, dtype=bool)
    tied[1:] = eq
    tied[:-1] |= eq
    if a.shape[1] == 1:
        return int(tied.sum()), n - int(eq.sum())
    cand = np.ascontiguousarray(a[order[tied]]) + 0.0  # + 0.0: -0.0 becomes 0.0
    rows = np.sort(cand.view(np.dtype((np.void, cand.itemsize * cand.shape[1]))).ravel())
    same = rows[1:] == rows[:-1]
    dup = np.zeros(rows.size, dtype=bool)
    dup[1:] = same
    dup[:-1] |= same
    return int(dup.sum()), n - int(same.sum())


def describe(name: str, a: np.ndarray) -> tuple[str, float, int]:
    """(name, fraction of samples tied with another sample, number of distinct points)."""
    dup, distinct = duplicates(a)
    return name, dup / a.shape[0], distinct


def dominate(found: list[tuple[str, float, int]]) -> bool:
    return any(frac > TIES_FRACTION for _, frac, _ in found)


def summary(found: list[tuple[str, float, int]], n: int) -> str:
    """'among the 2000 samples, 97.0% share their exact y with another sample (4 distinct
    points), 0.0% their x (2000 distinct points), ...' (fractions rounded down)."""
    parts = []
    for i, (name, frac, distinct) in enumerate(found):
        pct = f"{math.floor(frac * 1000) / 10:.1f}%"
        pts = f"{distinct} distinct point{'' if distinct == 1 else 's'}"
        if i == 0:
            parts.append(f"among the {n} samples, {pct} share their exact {name} with another "
                         f"sample ({pts})")
        else:
            parts.append(f"{pct} their {name} ({pts})")
    return ", ".join(parts)


def warn(message: str) -> None:
    """``warnings.warn(message, TiesWarning)`` attributed to the first caller outside
    noisescale.mi (the line that called ksg, mi_discrete or lmi), however deep the call."""
    warnings.warn(message, TiesWarning, stacklevel=_external_stacklevel())


def _external_stacklevel() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1  # level 1: the caller of warnings.warn, i.e. warn()
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level
