"""Linear-probe baseline: how many bits a cross-validated linear model from x recovers about y.

Samples are split into K seeded folds (stratified by label for ``labels=True``); a model fitted
on the other K − 1 folds predicts each fold, so every sample gets an out-of-fold prediction.

- Continuous y: ridge regression (alpha chosen in each training fold by generalized
  cross-validation from a grid relative to the training size). The bits are those of a Gaussian
  channel, ½ log2(det Cov(y) / det Cov(y − ŷ)); for 1-D y that is −½ log2(1 − R²) with
  R² = 1 − var(y − ŷ) / var(y) out of fold.
- Labels: multinomial logistic regression (L2). The bits are H(labels) − mean_i(−log2 p_i[y_i]),
  the plug-in entropy of the label frequencies minus the out-of-fold cross-entropy.

Both are lower-bound-like baselines (what a linear read-out recovers on held-out samples), not
MI estimates with known bias. They can be negative when the model predicts held-out samples
worse than the mean (or the label frequencies) does, as it does for independent data about
half the time; the value is returned as is, so a null or a permuted pairing reads ≈ 0 or
below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._internal.checks import check_bool, check_int, check_number, check_seed
from .._internal.seeding import generator, legacy_seed
from ._samples import as_samples, standardize_
from ._ties import is_constant
from .discrete import encode_labels
from .gaussian import _basis
from .result import HeldOutFit

LN2 = math.log(2.0)

#: Ridge penalties tried in each training fold, as multiples of the training size n on
#: standardized x (a direction of x with variance v is shrunk by v / (v + a)).
ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def probe(x, y, **options) -> float:
    """Bits a K-fold cross-validated linear probe from ``x`` recovers about ``y``:
    ``fit_probe(x, y, **options).mi`` (see :func:`fit_probe` for the options)."""
    return fit_probe(x, y, **options).mi


def fit_probe(x, y, *, labels: bool = False, folds: int = 5, seed: int = 0,
              alphas: Sequence[float] = ALPHAS, C: float = 1.0,
              max_iter: int = 1000) -> HeldOutFit:
    """Fit the K-fold linear probe and keep its out-of-fold predictions for re-evaluation.

    Parameters
    ----------
    x
        Samples (N, dx), 1-D or 2-D, numeric and finite. Columns are standardized; exact
        duplicate columns (after standardization) and constant columns are dropped, so a
        duplicated column gives the same answer as without it. Any number of dimensions is
        allowed (the penalty regularizes dx >= N).
    y
        Continuous targets (N, dy), or with ``labels=True`` a 1-D vector of categories (any
        type; missing values are an error). Continuous y is reduced to whitened principal
        directions (null directions dropped), so the probe is invariant to invertible linear
        maps of y and to duplicated or collinear y columns.
    labels
        Whether y is a categorical label (logistic regression) rather than continuous (ridge).
    folds
        Number of cross-validation folds K, 2 <= K <= N. With labels, folds are stratified:
        each label's samples are spread over the folds, so every label with >= 2 samples is in
        every training fold; a label with a single sample is an error (its out-of-fold
        probability would be 0).
    seed
        Seeds the fold assignment (``generator(seed, "folds")``) and the solver.
    alphas
        Ridge penalties (continuous y), multiples of the training-fold size on standardized x;
        one is chosen per training fold by generalized cross-validation.
    C, max_iter
        Inverse L2 strength and iteration limit of the logistic regression (labels).

    Returns
    -------
    HeldOutFit
        ``mi`` in bits (negative when the probe predicts held-out samples worse than the
        mean or the label frequencies do; exactly 0.0 when x or y is constant), ``n_eval = N``
        (every sample is evaluated out of fold), and ``evaluate(ix, iy)``: the same bits from
        the stored out-of-fold predictions for samples ``ix`` against the targets of samples
        ``iy`` (no refitting; H is then the entropy of the labels of ``iy``).
        ``evaluate(arange(N), arange(N))`` is ``mi`` exactly. ``details``: ``target``
        ("continuous" or "labels"), ``folds``, ``fold`` (each sample's fold), ``x_columns``
        (the columns of x used), and ``alpha`` (chosen per fold, relative) or ``C``.
    """
    check_bool("labels", labels)
    seed = check_seed(seed)
    xs = as_samples("x", x)
    n = xs.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples for a cross-validated probe, got {n}")
    k = check_int("folds", folds, 2)
    if k > n:
        raise ValueError(f"folds must be <= the number of samples, got folds={k} for {n} "
                         "samples")
    if labels:
        codes, names = encode_labels(y, n)
        alphas_ = None
        C = check_number("C", C, positive=True)
        max_iter = check_int("max_iter", max_iter, 1)
    else:
        ys = as_samples("y", y, n)
        alphas_ = np.asarray([check_number("alphas", a, positive=True) for a in alphas])
        if alphas_.size == 0:
            raise ValueError("alphas must hold at least one penalty")

    standardize_(xs)
    keep = _distinct_columns(xs)
    xs = np.ascontiguousarray(xs[:, keep])
    details = {"target": "labels" if labels else "continuous", "folds": k, "x_columns": keep}

    if labels:
        constant_y = names.size == 1
    else:
        standardize_(ys)
        constant_y = is_constant(ys)
    if keep.size == 0 or constant_y:  # I(x; y) = 0 exactly when either is constant
        details["fold"] = None
        return HeldOutFit(0.0, n, _zero_evaluate(n), details)

    if labels:
        sizes = np.bincount(codes)
        if (sizes == 1).any():
            single = names[np.flatnonzero(sizes == 1)]
            raise ValueError(
                f"{single.size} label(s) have a single sample ({', '.join(map(str, single[:5]))}"
                f"{', ...' if single.size > 5 else ''}): no training fold holds them, so their "
                "out-of-fold probability is undefined; drop or merge those samples")
        fold = _folds(n, k, seed, codes)
        logp = _fit_logistic(xs, codes, fold, k, C, max_iter, seed)
        details.update(fold=fold, C=C, classes=names)

        def evaluate(ix, iy):
            ix, iy = _check_pairs(ix, iy, n)
            c = codes[iy]
            freq = np.bincount(c, minlength=names.size) / c.size
            nz = freq[freq > 0]
            entropy = -float(np.sum(nz * np.log2(nz)))
            return entropy + float(np.mean(logp[ix, c]))
    else:
        yw = _whiten(ys)
        fold = _folds(n, k, seed, None)
        yhat, chosen = _fit_ridge(xs, yw, fold, k, alphas_)
        details.update(fold=fold, alpha=chosen, y_rank=yw.shape[1])

        def evaluate(ix, iy):
            ix, iy = _check_pairs(ix, iy, n)
            return _channel_bits(yw[iy], yhat[ix])

    everything = np.arange(n, dtype=np.int64)
    return HeldOutFit(evaluate(everything, everything), n, evaluate, details)


def _distinct_columns(xs: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct non-constant (standardized) column."""
    cols = np.ascontiguousarray(xs.T) + 0.0  # + 0.0: -0.0 becomes 0.0
    nonzero = np.flatnonzero((cols != 0).any(axis=1))
    if nonzero.size == 0:
        return nonzero
    rows = cols[nonzero].view(np.dtype((np.void, cols.itemsize * cols.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    return nonzero[np.sort(first)]


def _folds(n: int, k: int, seed: int, codes: np.ndarray | None) -> np.ndarray:
    """Each sample's fold 0..k-1: a seeded permutation dealt round-robin, so fold sizes differ
    by at most one; with codes, each label's samples are dealt consecutively (stratified)."""
    gen = generator(seed, "folds")
    order = gen.permutation(n)
    if codes is not None:
        order = order[np.argsort(codes[order], kind="stable")]
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    return fold


def _whiten(ys: np.ndarray) -> np.ndarray:
    """The (standardized) y in whitened principal coordinates, null directions dropped."""
    u, _ = _basis(ys)
    return u * math.sqrt(ys.shape[0])


def _fit_ridge(xs, yw, fold, k, alphas) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    yhat = np.empty_like(yw)
    chosen = np.empty(k)
    for f in range(k):
        test = fold == f
        train = ~test
        n_train = int(train.sum())
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas * n_train))
        model.fit(xs[train], yw[train])
        yhat[test] = model.predict(xs[test]).reshape(-1, yw.shape[1])
        chosen[f] = model[-1].alpha_ / n_train
    return yhat, chosen


def _fit_logistic(xs, codes, fold, k, C, max_iter, seed) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_classes = int(codes.max()) + 1
    logp = np.empty((codes.size, n_classes))
    for f in range(k):
        test = fold == f
        train = ~test
        model = make_pipeline(StandardScaler(), LogisticRegression(
            C=C, max_iter=max_iter, random_state=legacy_seed(seed)))
        model.fit(xs[train], codes[train])
        if not np.array_equal(model.classes_, np.arange(n_classes)):  # stratified: never
            raise RuntimeError(f"fold {f}: a label is missing from the training folds")
        logp[test] = model.predict_log_proba(xs[test])
    return logp / LN2


def _channel_bits(y: np.ndarray, yhat: np.ndarray) -> float:
    """½ log2(det Cov(y) / det Cov(y − ŷ)), centered covariances."""
    if y.shape[0] < 2:
        raise ValueError("evaluate needs at least 2 pairs for continuous y")
    yc = y - y.mean(axis=0)
    r = y - yhat
    r -= r.mean(axis=0)
    sign_y, logdet_y = np.linalg.slogdet(yc.T @ yc)
    if sign_y <= 0:
        return 0.0  # the evaluated targets are constant (or collinear): nothing to predict
    sign_r, logdet_r = np.linalg.slogdet(r.T @ r)
    if sign_r <= 0:
        return math.inf  # perfect prediction
    return 0.5 * (logdet_y - logdet_r) / LN2


def _check_pairs(ix, iy, n: int) -> tuple[np.ndarray, np.ndarray]:
    ix = np.asarray(ix)
    iy = np.asarray(iy)
    if ix.ndim != 1 or iy.ndim != 1 or ix.size != iy.size or ix.size == 0:
        raise ValueError(f"ix and iy must be 1-D index arrays of the same nonzero length, got "
                         f"shapes {ix.shape} and {iy.shape}")
    for name, idx in (("ix", ix), ("iy", iy)):
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, got dtype {idx.dtype}")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{name} indexes outside the {n} evaluation samples")
    return ix.astype(np.int64, copy=False), iy.astype(np.int64, copy=False)


def _zero_evaluate(n: int):
    def evaluate(ix, iy):
        _check_pairs(ix, iy, n)
        return 0.0
    return evaluate
