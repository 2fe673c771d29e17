"""The Kraskov–Stögbauer–Grassberger estimator (algorithm 1), exact, in bits.

For samples (x_i, y_i), i = 1..N, with the joint distance the max-norm over all coordinates:

    I = ψ(k) + ψ(N) − ⟨ψ(n_x,i + 1) + ψ(n_y,i + 1)⟩,

where ε_i is the distance from sample i to its k-th nearest other sample in the joint space and
n_x,i, n_y,i count the other samples strictly closer than ε_i in each marginal. The neighbour
searches are exact (float64 distances, no approximation): the k-th neighbour distances come from
the C++ max-norm k-d tree or from a FAISS flat index whose float32 candidates are re-checked in
float64, and the strict radius counts always from the C++ tree (OpenMP).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.special import digamma

from .. import _core
from .._internal.checks import check_seed, check_threads
from .._internal.devices import resolve_device
from . import _ties as ties
from ._samples import as_samples, check_jitter, check_k, jitter_, standardize_
from ._ties import is_constant
from .result import MIEstimate

KnnBackend = Literal["auto", "tree", "faiss"]

LN2 = math.log(2.0)
# Extra FAISS candidates beyond k + 1, so float32 rounding rarely leaves a query unresolved.
_FAISS_MARGIN = 8
_FAISS_BATCH = 8192


def prepare(name: str, a, n: int | None, *, standardize: bool) -> np.ndarray:
    """Checked float64 copy of one variable, standardized as documented in ksg() (the jitter
    comes later, after the constant and tie checks)."""
    out = as_samples(name, a, n)
    if standardize:
        standardize_(out)
    return out


def ksg(
    x,
    y,
    k: int = 3,
    *,
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
) -> float | np.ndarray | MIEstimate:
    """Mutual information I(x; y) in bits by KSG (algorithm 1), with exact neighbour searches.

    Parameters
    ----------
    x, y
        Samples as (N, dx) and (N, dy) arrays (1-D arrays are one dimension). Not modified.
    k
        Joint neighbour rank; 3 is the usual choice (lower bias, higher variance as k falls).
    pointwise
        Return the N per-sample values, whose mean is the estimate, instead of the mean.
    standardize
        z-score every column first (Kraskov et al. recommend comparable scales: the max-norm
        mixes coordinates). Constant columns are kept (as 0): they add no distance, so they
        change nothing.
    jitter
        Seeded uniform noise of this size relative to each column's standard deviation, added
        to break distance ties between duplicate samples. The noise depends only on
        (seed, shapes), so results are reproducible; 0 disables it (ties are then handled
        exactly as defined: duplicates are neighbours at distance 0, which inflates the
        estimate where a sample has k or more exact duplicates).
    seed
        Seed of the jitter.
    knn
        k-th neighbour search: ``"tree"`` (the C++ max-norm k-d tree), ``"faiss"`` (a FAISS
        flat max-norm index, on the GPU when FAISS sees one, float32 candidates re-checked
        exactly in float64) or ``"auto"`` (FAISS on a GPU, else the tree). Same result.
    threads
        OpenMP threads of the C++ searches (default: OMP_NUM_THREADS or all cores).
    uncertainty, null, resamples, shuffles
        Opt in to a standard error and 95 % interval (half-sampling with ``resamples``
        replicates) and a null (``shuffles`` shuffled pairings): the result is then an
        :class:`~noisescale.mi.MIEstimate` (see :func:`noisescale.mi.estimate`), not a float.

    Degenerate inputs
    -----------------
    If all rows of x, or all rows of y, are equal (exactly, after standardization), the MI is
    exactly 0: the result is 0.0 (pointwise: zeros) without a neighbour search. When more than
    half of the samples share their exact point with another sample in x or in y (integer
    signals, one-hot labels, collapsed embeddings) a :class:`~noisescale.mi.TiesWarning` says
    so: the jitter makes each group of tied samples a tiny cluster, and the estimate is then
    that of the discrete values (for a discrete y with a continuous x it equals Ross's
    estimator, :func:`~noisescale.mi.mi_discrete`), with its own finite-sample bias.
    """
    if uncertainty or null:
        if pointwise:
            raise ValueError("pointwise values have no uncertainty: use pointwise=False with "
                             "uncertainty or null")
        from .estimate import estimate

        return estimate(x, y, "ksg", k=k, uncertainty=uncertainty, null=null,
                        resamples=resamples, shuffles=shuffles, seed=seed, threads=threads,
                        standardize=standardize, jitter=jitter, knn=knn)
    seed = check_seed(seed)
    xs = prepare("x", x, None, standardize=standardize)
    n = xs.shape[0]
    ys = prepare("y", y, n, standardize=standardize)
    jitter = check_jitter(jitter)
    k = check_k(k, n)
    nthreads = check_threads(threads)
    backend = _resolve_knn(knn)
    return _ksg(xs, ys, k, pointwise=pointwise, jitter=jitter, seed=seed, knn=backend,
                threads=nthreads)


def _ksg(xs: np.ndarray, ys: np.ndarray, k: int, *, pointwise: bool, jitter: float, seed: int,
         knn: str, threads: int, who: str = "ksg", names: tuple[str, str] = ("x", "y"),
         warn_y: bool = True, note: str = "") -> float | np.ndarray:
    """KSG on checked, standardized float64 copies (jittered here, in place). ``who``,
    ``names`` and ``note`` word the TiesWarning; ``warn_y=False``: ties in y are expected
    (one-hot labels) and only those in x are warned about."""
    n = xs.shape[0]
    if is_constant(xs) or is_constant(ys):
        values = np.zeros(n)  # I(x; y) = 0 exactly when x or y is constant
        return values if pointwise else 0.0
    _check_ties(xs, ys, k, jitter, who, names, warn_y, note)
    jitter_(xs, jitter, seed, "x")
    jitter_(ys, jitter, seed, "y")
    eps = kth_neighbor_distance(np.hstack([xs, ys]), k, knn=knn, threads=threads)
    nx = _core.count_within(xs, eps, threads)
    ny = _core.count_within(ys, eps, threads)
    values = (digamma(k) + digamma(n) - digamma(nx + 1.0) - digamma(ny + 1.0)) / LN2
    return values if pointwise else float(np.mean(values))


def _check_ties(xs: np.ndarray, ys: np.ndarray, k: int, jitter: float, who: str,
                names: tuple[str, str], warn_y: bool, note: str) -> None:
    """TiesWarning when more than TIES_FRACTION of the samples are tied in x or in y."""
    nx, ny = names
    found = [ties.describe(nx, xs), ties.describe(ny, ys)]
    if not ties.dominate(found if warn_y else found[:1]):
        return
    found.sort(key=lambda f: -f[1])  # the more tied variable first
    found.append(ties.describe(f"({nx}, {ny})", np.hstack([xs, ys])))
    n = xs.shape[0]
    discrete = ("the estimate is the MI of the discrete values, with a finite-sample bias that "
                "depends on the number of groups{}; compare it with a permutation null. For "
                "categorical labels use mi_discrete.")
    if jitter > 0:
        meaning = (f"KSG assumes continuous variables: a seeded jitter of {jitter:g} of each "
                   "column's standard deviation breaks the ties, so each group of tied samples "
                   "becomes a tiny cluster and " + discrete.format(" and on the seed"))
    elif found[2][1] > 0:
        meaning = ("With jitter=0 the ties are kept: a sample with "
                   f"{k} or more exact duplicates in ({nx}, {ny}) has ε = 0 and no strictly "
                   "closer neighbours in either marginal, which inflates the estimate; use the "
                   "default jitter.")
    else:
        meaning = (f"With jitter=0 tied samples are neighbours at distance 0; no sample is tied "
                   f"in ({nx}, {ny}), so every ε > 0 and " + discrete.format(""))
    ties.warn(f"{who}: ties dominate: {ties.summary(found, n)}. {note}{meaning}")


def kth_neighbor_distance(points: np.ndarray, k: int, *, knn: KnnBackend = "auto",
                          threads: int = 0) -> np.ndarray:
    """Exact max-norm distance from each row of ``points`` (float64, C order) to its k-th
    nearest other row."""
    backend = _resolve_knn(knn)
    if backend == "tree":
        return _core.kth_neighbor_distance(points, k, threads)
    return _kth_faiss(points, k, threads)


def _faiss_device() -> str:
    """Where FAISS runs with ``device="auto"`` (:func:`~noisescale._internal.devices.
    resolve_device`); "cpu" when faiss is not installed."""
    try:
        return resolve_device("auto", "faiss")
    except ImportError:
        return "cpu"


def _resolve_knn(knn: str) -> str:
    if knn not in ("auto", "tree", "faiss"):
        raise ValueError(f"knn must be 'auto', 'tree' or 'faiss', got {knn!r}")
    if knn == "auto":
        return "faiss" if _faiss_device() == "cuda" else "tree"
    if knn == "faiss":
        try:
            import faiss  # noqa: F401
        except ImportError as err:
            raise ImportError("knn='faiss' needs the faiss package (pip install faiss-cpu, or "
                              "faiss-gpu for CUDA)") from err
    return knn


def _kth_faiss(points: np.ndarray, k: int, threads: int) -> np.ndarray:
    """k-th neighbour distances from FAISS flat max-norm search, made exact.

    FAISS searches float32 copies. For each query the k + 1 + margin float32 candidates are
    re-measured in float64; the candidates' k-th distance (self excluded by index) is exact
    when it is below the last candidate's float32 distance by more than the float32 rounding
    bound, since every other point is at least that far. The few queries that fail the check
    are measured against all points in float64.
    """
    import faiss

    n, dim = points.shape
    if threads > 0:
        faiss.omp_set_num_threads(threads)
    xb = np.ascontiguousarray(points, dtype=np.float32)
    index = faiss.IndexFlat(dim, faiss.METRIC_Linf)
    if _faiss_device() == "cuda":
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(xb)
    n_cand = min(n, k + 1 + _FAISS_MARGIN)
    # |float32 distance - float64 distance| <= 2^-22 max|coordinate|; take twice that.
    tol = 2.0**-21 * float(np.abs(points).max())
    eps = np.empty(n)
    unresolved = []
    for start in range(0, n, _FAISS_BATCH):
        stop = min(n, start + _FAISS_BATCH)
        dist32, idx = index.search(xb[start:stop], n_cand)
        d64 = np.abs(points[idx] - points[start:stop, None, :]).max(axis=2)
        d64[idx == np.arange(start, stop)[:, None]] = np.inf
        kth = np.partition(d64, k - 1, axis=1)[:, k - 1]
        ok = (kth == 0) | (kth + tol < dist32[:, -1].astype(np.float64)) | (n_cand == n)
        eps[start:stop] = kth
        unresolved.extend((np.flatnonzero(~ok) + start).tolist())
    for i in unresolved:
        d = np.abs(points - points[i]).max(axis=1)
        d[i] = np.inf
        eps[i] = np.partition(d, k - 1)[k - 1]
    return eps
