"""Uncertainty and null of an MI estimate by resampling the samples.

**Standard error: half-sampling.** Each of ``resamples`` replicates splits the N samples at
random (seeded, ``"halves"`` stream) into two disjoint halves of ⌊N/2⌋ and estimates the MI on
each. For an estimator whose variance falls as 1/N, the two halves are independent draws with
variance 2·Var(Î_N), so ``E[(a − b)²] = 4·Var(Î_N)`` and

    se = sqrt(mean over replicates of (a − b)²) / 2.

Unlike the ordinary bootstrap this never duplicates a sample, which nearest-neighbour estimators
read as a neighbour at distance 0 (a bootstrap inflates KSG by ~0.5 bits and more). The 95 %
interval is ``mi ± t · se`` with t the 97.5 % quantile of Student's t with ``resamples`` degrees
of freedom, centred on the full-sample estimate: it covers the estimator's expectation, which is
the truth only for an unbiased estimator (KSG is biased low in high dimension, variational
bounds are lower bounds; see benchmarks/bench_mi_calibration.py for how far).

**Null: shuffled pairings.** The same estimator on ``shuffles`` seeded permutations of the
pairing (``"null"`` stream: y's rows permuted against x's), which destroys the dependence and
keeps both marginals: ``null`` is their mean and ``null_sd`` their spread; an estimate not above
the null's 95 % upper edge (a prediction bound for one more shuffle, Student's t over the few
shuffles, or ``null + 1.96·se`` if wider: :attr:`~noisescale.mi.MIEstimate.null_hi`) cannot
be told apart from independence (:attr:`~noisescale.mi.MIEstimate.within_null`).

Trained estimators either **refit** on every half and every shuffle (exact: the training's own
variance is included; costs 2·resamples + shuffles trainings) or, with ``refit=False``, keep the
networks trained on the full data and resample only their held-out evaluation
(:class:`~noisescale.mi.result.HeldOutFit`): far cheaper, and it leaves out the variance from
training and from the split, so its intervals are narrower than the estimator's true spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import t as student_t

from .._internal.seeding import generator

#: A function of (rows of x, rows of y) returning the estimate on those pairs, in bits.
PairEstimate = Callable[[np.ndarray, np.ndarray], float]


def half_sample_se(run: PairEstimate, n: int, resamples: int, seed: int,
                   ) -> tuple[float, np.ndarray]:
    """(standard error of the estimate on all ``n`` samples, the (resamples, 2) estimates on
    the halves). ``run(rows, rows)`` estimates the MI on a sorted subset of the samples."""
    h = n // 2
    halves = np.empty((resamples, 2))
    for r in range(resamples):
        perm = generator(seed, "halves", block=r).permutation(n)
        a, b = np.sort(perm[:h]), np.sort(perm[h:2 * h])
        halves[r] = run(a, a), run(b, b)
    d = halves[:, 0] - halves[:, 1]
    return float(math.sqrt(np.mean(d * d)) / 2.0), halves


def interval(mi: float, se: float, resamples: int, level: float = 0.95) -> tuple[float, float]:
    """``mi ± t · se`` with t Student's quantile at ``resamples`` degrees of freedom."""
    q = float(student_t.ppf(0.5 + level / 2, df=resamples))
    return mi - q * se, mi + q * se


def shuffled_null(run: PairEstimate, n: int, shuffles: int, seed: int) -> np.ndarray:
    """The estimates on ``shuffles`` seeded random pairings: ``run(arange(n), permutation)``."""
    rows = np.arange(n)
    return np.array([run(rows, generator(seed, "null", block=s).permutation(n))
                     for s in range(shuffles)], dtype=np.float64)
