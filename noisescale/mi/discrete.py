"""Mutual information between a continuous representation and a categorical label, in bits.

The default is the nearest-neighbour estimator of Ross (2014, PLoS ONE 9:e87357): for sample i
with label c (N_c samples), d_i is the max-norm distance to its k-th nearest sample of the same
label and m_i the number of samples of any label within d_i (the k-th neighbour included), and

    I = ψ(N) − ⟨ψ(N_c)⟩ + ⟨ψ(k)⟩ − ⟨ψ(m_i)⟩.

The alternative is the route the paper used: one-hot encode the label and estimate latent MI
(:func:`noisescale.mi.lmi`) between the representation and the one-hot matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import digamma

from .. import _core
from .._internal.checks import check_seed, check_threads
from . import _ties as ties
from ._samples import check_jitter, check_k, jitter_
from ._ties import is_constant
from .result import MIEstimate
from .ksg import LN2, KnnBackend, _resolve_knn, kth_neighbor_distance, prepare


def encode_labels(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..C-1 and the category names of a label vector (missing -> error)."""
    lab = pd.Series(np.asarray(labels).ravel() if not isinstance(labels, pd.Series) else labels)
    if lab.ndim != 1 or len(lab) != n:
        raise ValueError(f"labels must have one entry per sample: got {len(lab)} for {n} samples")
    if lab.isna().any():
        raise ValueError(f"labels has {int(lab.isna().sum())} missing value(s) (first at sample "
                         f"{int(np.flatnonzero(lab.isna().to_numpy())[0])})")
    codes, names = pd.factorize(lab, sort=True)
    return codes.astype(np.int64), np.asarray(names)


def one_hot(labels) -> np.ndarray:
    """(N, C) float32 one-hot matrix of a label vector, categories in sorted order."""
    codes, names = encode_labels(labels, len(labels))
    return np.eye(names.size, dtype=np.float32)[codes]


def mi_discrete(
    x,
    labels,
    k: int = 3,
    *,
    method: Literal["ross", "lmi"] = "ross",
    pointwise: bool = False,
    standardize: bool = True,
    jitter: float = 1e-10,
    seed: int = 0,
    knn: KnnBackend = "auto",
    threads: int | None = None,
    uncertainty: bool = False,
    null: bool = False,
    resamples: int = 10,
    shuffles: int = 3,
    refit: bool = True,
    **lmi_kwargs,
) -> float | np.ndarray | MIEstimate:
    """MI in bits between samples ``x`` (N, d) and categorical ``labels`` (N,).

    ``method="ross"`` (default) is Ross's estimator. Labels of a single sample carry no
    neighbour and are left out, as in Ross's method (pointwise values NaN there); a label with
    N_c <= k samples uses k = N_c - 1 for its samples. ``standardize``, ``jitter``, ``seed``,
    ``knn`` and ``threads`` are as in :func:`noisescale.mi.ksg`.

    ``method="lmi"`` one-hot encodes the labels and returns :func:`noisescale.mi.lmi`'s estimate
    (``pointwise``: its values on the held-out samples); ``lmi_kwargs`` go to it.

    ``uncertainty``/``null`` opt in to a standard error, 95 % interval and shuffled-labels null
    (``resamples`` half-samples, ``shuffles`` shuffles; ``refit`` for ``"lmi"``): the result is
    then an :class:`~noisescale.mi.MIEstimate` (see :func:`noisescale.mi.estimate`).

    Degenerate inputs: if all rows of x are equal (exactly, after standardization) or all
    labels are the same, the MI is exactly 0 and both methods return 0.0 (pointwise: zeros,
    for every sample with ``"ross"``, for the held-out ones with ``"lmi"``); with
    ``method="ross"`` the same holds for the kept samples when a single label has more than one
    sample. When more than half of the samples share their exact x
    with another sample, a :class:`~noisescale.mi.TiesWarning` says so (ties among the labels
    are what labels are, and are never warned about).
    """
    if uncertainty or null:
        if pointwise:
            raise ValueError("pointwise values have no uncertainty: use pointwise=False with "
                             "uncertainty or null")
        from .estimate import estimate

        options = dict(lmi_kwargs) if method == "lmi" else {
            "standardize": standardize, "jitter": jitter, "knn": knn, **lmi_kwargs}
        if method not in ("ross", "lmi"):
            raise ValueError(f"method must be 'ross' or 'lmi', got {method!r}")
        return estimate(x, labels, method, labels=True, k=k, uncertainty=uncertainty,
                        null=null, resamples=resamples, shuffles=shuffles, refit=refit,
                        seed=seed, threads=threads if method == "ross" else None, **options)
    if method == "lmi":
        from .lmi import lmi

        xs = np.asarray(x)
        codes, names = encode_labels(labels, xs.shape[0])
        result = lmi(xs, np.eye(names.size, dtype=np.float32)[codes], k=k, seed=seed,
                     _y_is_labels=True, **lmi_kwargs)
        return result.pointwise if pointwise else result.mi
    if method != "ross":
        raise ValueError(f"method must be 'ross' or 'lmi', got {method!r}")
    if lmi_kwargs:
        raise TypeError(f"unexpected arguments for method='ross': {sorted(lmi_kwargs)}")
    seed = check_seed(seed)
    xs = prepare("x", x, None, standardize=standardize)
    n = xs.shape[0]
    jitter = check_jitter(jitter)
    k = check_k(k, n)
    codes, _ = encode_labels(labels, n)
    nthreads = check_threads(threads)
    knn = _resolve_knn(knn)
    if is_constant(xs) or (codes == codes[0]).all():
        values = np.zeros(n)  # I(x; label) = 0 exactly when x or the label is constant
        return values if pointwise else 0.0
    sizes = np.bincount(codes)
    keep = sizes[codes] > 1
    if keep.sum() < 2:
        raise ValueError("every label has a single sample: no neighbours to estimate MI from")
    kept = np.flatnonzero(keep)
    ck = codes[kept]
    if (ck == ck[0]).all():  # one label among the kept samples: nothing to tell apart
        values = np.full(n, np.nan)
        values[kept] = 0.0
        return values if pointwise else 0.0
    _check_ties(xs, k, jitter)
    jitter_(xs, jitter, seed, "x")
    xk = xs[kept]
    radius = np.empty(kept.size)
    k_used = np.empty(kept.size)
    for c in np.unique(ck):
        members = np.flatnonzero(ck == c)
        kc = min(k, members.size - 1)
        radius[members] = kth_neighbor_distance(np.ascontiguousarray(xk[members]), kc, knn=knn,
                                                threads=nthreads)
        k_used[members] = kc
    # Others strictly closer than d_i, plus the k-th neighbour itself.
    m = _core.count_within(xk, radius, nthreads) + 1.0
    n_kept = kept.size
    values = np.full(n, np.nan)
    values[kept] = (digamma(n_kept) - digamma(np.bincount(ck)[ck]) + digamma(k_used)
                    - digamma(m)) / LN2
    return values if pointwise else float(np.nanmean(values))


def _check_ties(xs: np.ndarray, k: int, jitter: float) -> None:
    """TiesWarning when more than TIES_FRACTION of the samples share their exact x."""
    found = [ties.describe("x", xs)]
    if not ties.dominate(found):
        return
    if jitter > 0:
        meaning = (
            f"Ross's estimator assumes a continuous x: a seeded jitter of {jitter:g} of each "
            "column's standard deviation breaks the ties, so each group of tied samples becomes "
            "a tiny cluster and the estimate is the MI between the discrete values of x and the "
            "labels, with a finite-sample bias that depends on the number of groups and on the "
            "seed; compare it with a permutation null of the labels.")
    else:
        meaning = (
            f"With jitter=0 the ties are kept: a sample with {k} or more exact duplicates of its "
            "own label has d = 0 and counts only itself, which inflates the estimate; use the "
            "default jitter.")
    ties.warn(f"mi_discrete: ties dominate: {ties.summary(found, xs.shape[0])}. {meaning}")
