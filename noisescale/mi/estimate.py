"""One interface to every MI estimator: :func:`estimate`, :func:`compare` and the default rule.

=========  ==========================================================  ===========  =========
method     what it is                                                  y            refit
=========  ==========================================================  ===========  =========
ksg        Kraskov–Stögbauer–Grassberger, exact neighbours              continuous   no
ross       Ross (2014) nearest neighbours, continuous x vs labels       labels       no
lmi        latent MI: paired autoencoders, KSG on held-out latents      both         yes
infonce    InfoNCE lower bound, held-out (capped at log2 batch)         both         yes
mine       NWJ (default) or MINE/Donsker–Varadhan lower bound           both         yes
cca        Gaussian estimate from canonical correlations (``copula``)   both         no
probe      cross-validated linear probe in bits                        both         no (cheap)
=========  ==========================================================  ===========  =========

Labels (a categorical y) go to ``ross`` and ``probe`` as labels and to the others one-hot
encoded. ``uncertainty=True`` adds a standard error and 95 % interval, ``null=True`` the same
estimator on shuffled pairings (:mod:`noisescale.mi.resampling`); trained estimators refit on
every resample unless ``refit=False``.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .._internal.checks import check_int, check_seed
from . import _ties as ties
from ._samples import as_samples, standardize_
from .discrete import encode_labels
from .resampling import half_sample_se, interval, shuffled_null
from .result import HeldOutFit, MIEstimate

METHODS = ("ksg", "ross", "lmi", "infonce", "mine", "cca", "probe")
#: Methods that train networks (``refit`` applies to them). The probe trains too, but in
#: milliseconds, and a probe kept fixed gives a strongly negative null (its out-of-fold
#: predictions against shuffled targets only add variance: −0.36 bits on a 1 × 1 Gaussian), so
#: it always refits.
TRAINED = ("lmi", "infonce", "mine")
#: The default rule uses KSG while both sides have at most this many dimensions, and LMI above
#: (from benchmarks/bench_mi_calibration.py at N = 5,000: on a 3 × 3 half-cube task KSG is
#: already 0.21 bits low where LMI is 0.04 low; in 1 × 1 and 2 × 2 KSG is within 0.03).
LOW_DIM = 2
#: Ross's estimator is used for labels while the embedding has at most this many dimensions
#: (its neighbour search is in x alone), LMI above.
LOW_DIM_LABELS = 4


class WithinNullWarning(UserWarning):
    """An MI estimate is not above its null's 95 % upper edge: it cannot be told apart from
    independence at this sample size."""


def default_method(kind: str, dx: int, dy: int | None = None) -> str:
    """The estimator the sweep uses when a signal names none (``estimator = "auto"``).

    ``kind`` is ``"categorical"`` (labels) or anything continuous; ``dx``, ``dy`` the
    dimensions of the two sides (``dy`` ignored for labels). Rule: a nearest-neighbour
    estimator in low dimension, where it is close to unbiased and needs no training — Ross for
    labels when ``dx <= LOW_DIM_LABELS``, KSG when both ``dx, dy <= LOW_DIM`` — and latent MI
    above, where KSG's bias grows with the dimension (−0.43 bits on 2 dependent pairs in 5 × 5
    dims, −1.27 in 25 × 25, at N = 5,000) and LMI's bottleneck removes most of it (−0.03).
    """
    dx = check_int("dx", dx, 1)
    if kind == "categorical":
        return "ross" if dx <= LOW_DIM_LABELS else "lmi"
    dy = check_int("dy", dy, 1)
    return "ksg" if max(dx, dy) <= LOW_DIM else "lmi"


def _is_labels(y, method: str, labels: bool | None) -> bool:
    if labels is not None:
        return bool(labels)
    if method == "ross":
        return True
    if isinstance(y, pd.Series):
        y = y.to_numpy()
    arr = np.asarray(y)
    return arr.ndim == 1 and not (np.issubdtype(arr.dtype, np.floating)
                                  or np.issubdtype(arr.dtype, np.integer))


class _Data:
    """Checked copies of x and y (labels as codes and one-hot), and the constant test."""

    def __init__(self, x, y, labels: bool):
        self.x = as_samples("x", x)
        self.n = self.x.shape[0]
        self.labels = labels
        if labels:
            self.codes, names = encode_labels(y, self.n)
            self.y = np.eye(names.size)[self.codes]
            y_constant = bool((self.codes == self.codes[0]).all())
        else:
            self.codes = None
            self.y = as_samples("y", y, self.n)
            ys = self.y.copy()
            standardize_(ys)
            y_constant = ties.is_constant(ys)
        xs = self.x.copy()
        standardize_(xs)
        self.constant = [name for name, c in (("x", ties.is_constant(xs)), ("y", y_constant))
                         if c]

    def target(self, method: str, rows: np.ndarray | None = None):
        """What ``method`` receives as y: labels (codes) for ross and probe, else values."""
        raw = self.codes if (self.labels and method in ("ross", "probe")) else self.y
        return raw if rows is None else raw[rows]


def _point(method: str, x: np.ndarray, y: np.ndarray, labels: bool, k: int, seed: int,
           threads: int | None, options: dict[str, Any]) -> float:
    """The method's estimate in bits on (x, y) (y: codes for ross/probe with labels)."""
    if method == "ksg":
        from .ksg import ksg
        return float(ksg(x, y, k=k, seed=seed, threads=threads, **options))
    if method == "ross":
        from .discrete import mi_discrete
        return float(mi_discrete(x, y, k=k, seed=seed, threads=threads, **options))
    if method == "lmi":
        from .lmi import lmi
        return float(lmi(x, y, k=k, seed=seed, _y_is_labels=labels, **options).mi)
    if method == "infonce":
        from .neural import infonce
        return float(infonce(x, y, seed=seed, **options))
    if method == "mine":
        from .neural import mine
        return float(mine(x, y, seed=seed, **options))
    if method == "cca":
        from .gaussian import cca
        return float(cca(x, y, **options))
    if method == "probe":
        from .probe import probe
        return float(probe(x, y, labels=labels, seed=seed, **options))
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def _held_out(method: str, x: np.ndarray, y: np.ndarray, labels: bool, k: int, seed: int,
              threads: int | None, options: dict[str, Any]) -> HeldOutFit:
    """A trained method fitted once, with its held-out evaluation for cheap resampling."""
    fit = _function(method, held_out=True)
    if method == "lmi":
        return fit(x, y, k=k, seed=seed, threads=threads, _y_is_labels=labels, **options)
    return fit(x, y, seed=seed, **options)


#: Where each method's functions live: (module, estimate function, held-out fit function).
_FUNCTIONS = {"ksg": ("ksg", "ksg", None), "ross": ("discrete", "mi_discrete", None),
              "lmi": ("lmi", "lmi", "fit_lmi"), "infonce": ("neural", "fit_infonce", "fit_infonce"),
              "mine": ("neural", "fit_mine", "fit_mine"), "cca": ("gaussian", "cca", None),
              "probe": ("probe", "fit_probe", None)}
#: Parameters :func:`estimate` sets itself, so they are not a method's options.
_SET_BY_ESTIMATE = {"x", "y", "labels", "k", "seed", "threads", "progress", "pointwise",
                    "method", "uncertainty", "null", "resamples", "shuffles", "refit"}


def _function(method: str, held_out: bool = False):
    import importlib

    module, name, fit = _FUNCTIONS[method]
    return getattr(importlib.import_module(f"{__package__}.{module}"), fit if held_out else name)


def method_options(method: str) -> set[str]:
    """The names of the options :func:`estimate` passes on to ``method``'s function (its
    keyword parameters, less those ``estimate`` sets itself): what a sweep's
    ``[estimator] <method> = {...}`` table may hold."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    params = inspect.signature(_function(method)).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and not p.name.startswith("_")} - _SET_BY_ESTIMATE


def estimate(
    x,
    y,
    method: str = "ksg",
    *,
    labels: bool | None = None,
    k: int = 3,
    uncertainty: bool = False,
    null: bool = False,
    resamples: int = 10,
    shuffles: int = 3,
    refit: bool = True,
    seed: int = 0,
    threads: int | None = None,
    **options: Any,
) -> MIEstimate:
    """MI in bits between samples ``x`` (N, dx) and ``y`` (N, dy, or N labels) by ``method``.

    Parameters
    ----------
    method
        One of :data:`METHODS` (see the module table).
    labels
        Whether y is categorical. Default: yes for ``"ross"`` and for a 1-D y that is neither
        float nor integer (strings, categories, booleans); integer codes need ``labels=True``.
    k
        Neighbour rank of the nearest-neighbour estimators (KSG, Ross, LMI's KSG on latents).
    uncertainty
        Add ``se``, ``lo``, ``hi``: half-sampling with ``resamples`` replicates
        (:mod:`noisescale.mi.resampling`).
    null
        Add ``null``, ``null_sd``, ``null_values``: the estimator on ``shuffles`` shuffled
        pairings. A :class:`WithinNullWarning` says when the estimate is not above the null's
        upper edge.
    refit
        Trained methods (:data:`TRAINED`) retrain on every resample (exact, costly); False
        keeps the networks trained on all samples and resamples their held-out evaluation
        (cheap; leaves out the training's own variance).
    seed
        Seed of the estimator and of the resamples (each drawn from its own stream).
    options
        Passed to the method's function (e.g. ``latent_dim`` for ``lmi``, ``critic`` for
        ``infonce``, ``bound`` for ``mine``).

    x or y constant (after standardization; labels all equal) gives exactly 0 with ``se``,
    ``lo``, ``hi``, ``null`` and ``null_sd`` 0 where asked for, and the flag ``"constant"``.
    A :class:`~noisescale.mi.TiesWarning` of the estimator adds the flag ``"ties"``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    seed = check_seed(seed)
    k = check_int("k", k, 1)
    resamples = check_int("resamples", resamples, 2)
    shuffles = check_int("shuffles", shuffles, 1)
    is_labels = _is_labels(y, method, labels)
    if method == "ross" and not is_labels:
        raise ValueError("method 'ross' needs categorical labels as y (labels=True)")
    if method == "ksg" and is_labels:
        raise ValueError("method 'ksg' needs a continuous y; for categorical labels use 'ross' "
                         "(or one-hot encode them yourself)")
    data = _Data(x, y, is_labels)
    n = data.n
    if n < 2:
        raise ValueError(f"need at least 2 samples to estimate MI, got {n}")
    details: dict[str, Any] = {"labels": is_labels, "k": k}
    t0 = time.perf_counter()
    if data.constant:
        z = 0.0 if uncertainty else math.nan
        zn = 0.0 if null else math.nan
        details["constant"] = data.constant
        return MIEstimate(method=method, mi=0.0, n_samples=n, se=z, lo=z, hi=z, null=zn,
                          null_sd=zn, null_values=(0.0,) * shuffles if null else (),
                          refit=(refit if method in TRAINED else None), flags=("constant",),
                          details=details)
    if (uncertainty or null) and n // 2 <= k + 1:
        raise ValueError(f"{n} samples are too few to resample: each half needs more than "
                         f"k + 1 = {k + 1} samples")

    def point(rx, ry):
        return _point(method, data.x[rx], data.target(method, ry), is_labels, k, seed,
                      threads, options)

    fixed = (not refit) and method in TRAINED and (uncertainty or null)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ties.TiesWarning)
        if fixed:
            fit = _held_out(method, data.x, data.target(method), is_labels, k, seed, threads,
                            options)
            mi, n_run, run = float(fit.mi), fit.n_eval, fit.evaluate
            details.update(n_eval=fit.n_eval, **fit.details)
        else:
            rows = np.arange(n)
            mi, n_run, run = point(rows, rows), n, point
    flags = []
    for w in caught:
        if issubclass(w.category, ties.TiesWarning):
            flags.append("ties")
            ties.warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    flags = list(dict.fromkeys(flags))
    se = lo = hi = nl = nsd = math.nan
    halves, null_values = None, ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ties.TiesWarning)  # said once, for the full estimate
        if uncertainty:
            se, halves = half_sample_se(run, n_run, resamples, seed)
            lo, hi = interval(mi, se, resamples)
        if null:
            values = shuffled_null(run, n_run, shuffles, seed)
            null_values = tuple(float(v) for v in values)
            nl = float(values.mean())
            nsd = float(values.std(ddof=1)) if values.size > 1 else math.nan
    details["seconds"] = time.perf_counter() - t0
    result = MIEstimate(method=method, mi=mi, n_samples=n, se=se, lo=lo, hi=hi, null=nl,
                        null_sd=nsd, null_values=null_values, halves=halves,
                        refit=(refit if method in TRAINED else None), flags=tuple(flags),
                        details=details)
    if result.within_null:
        result = replace(result, flags=(*result.flags, "within_null"))
        warnings.warn(f"{method}: the estimate {mi:.4g} bits is not above its null's upper edge "
                      f"{result.null_hi:.4g} bits (null {nl:.4g} bits, the mean over "
                      f"{shuffles} shuffled pairings): it cannot be told apart from "
                      f"independence with {n} samples", WithinNullWarning,
                      stacklevel=ties._external_stacklevel())
    return result


def compare(
    x,
    y,
    methods: Iterable[str] | None = None,
    *,
    labels: bool | None = None,
    uncertainty: bool = True,
    null: bool = True,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    **common: Any,
) -> pd.DataFrame:
    """Several estimators on the same samples, one row each.

    ``methods`` defaults to every method that applies (``ross`` for labels, ``ksg`` for a
    continuous y, and the rest). ``options`` maps a method to its own options; ``common``
    (``k``, ``seed``, ``resamples``, ``shuffles``, ``refit``, ``threads``) go to every
    :func:`estimate` call. Columns: method, mi, se, lo, hi, null, null_sd, flags, n_samples,
    seconds.
    """
    is_labels = _is_labels(y, "", labels)
    if methods is None:
        methods = [m for m in METHODS if m != ("ksg" if is_labels else "ross")]
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty list of {list(METHODS)}, got {methods}")
    options = dict(options or {})
    extra = set(options) - set(methods)
    if extra:
        raise ValueError(f"options given for method(s) not compared: {sorted(extra)}")
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        r = estimate(x, y, m, labels=is_labels, uncertainty=uncertainty, null=null,
                     **common, **dict(options.get(m, {})))
        rows.append({"method": m, "mi": r.mi, "se": r.se, "lo": r.lo, "hi": r.hi,
                     "null": r.null, "null_sd": r.null_sd, "flags": ";".join(r.flags),
                     "n_samples": r.n_samples, "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)
