"""The Gaussian channel behind the noise law: analytic MI, a sampler, and a recovery check.

Model, for independent channels j = 1..m::

    Z_j ~ N(0, s_j)                          the signal (s_j: ``signal_var``)
    Y_j = Z_j + eta_j,   eta_j ~ N(0, v_j)   an auxiliary variable, I(Z_j; Y_j) = I_max_j
    X_j = Z_j + eps_j / sqrt(u),  eps_j ~ N(0, w_j)   the signal seen at depth u

and the representation is X = R [X_1, ..., X_m, eps_{m+1}/sqrt(u), ..., eps_d/sqrt(u)] in
d >= m dimensions, R a fixed orthogonal matrix (seeded by ``basis_seed``): the signal lives in
an m-dimensional subspace in a random orientation, the other d - m directions are measurement
noise only (variance: the mean of the w_j, over u).

Derivation (one channel; drop j). I(X; Y) = -1/2 log2(1 - rho^2) with
rho^2 = s^2 / ((s + w/u)(s + v)). With S = 1 + s/v = 2^(2 I_max) and x = u / u_bar,

    u_bar = (w / s) * 2^(2 I_max)   gives   1 - rho^2 = (1 + x) / (1 + S x),

so I(u) = 1/2 log2((1 + S x)/(1 + x)) = I_max - 1/2 log2((1 + x)/(x + 2^(-2 I_max))): the noise
law (:func:`noisescale.laws.noise_law`) exactly, with A = 1/u_bar = s / (w S) and
B = S / u_bar = s / w (the signal-to-noise ratio per unit depth).

When the single law holds. R is orthogonal and the noise is independent across the rotated
coordinates, so R^T X splits into the m channels and pure noise that is independent of
everything: I(X; Y) = sum_j I_j(u) exactly, for any d. Hence the single law holds exactly in
d dimensions when one channel carries information (the others have I_max = 0); it also holds
for any noise covariance Sigma when the signal lies along one direction a, since a^T Sigma^-1 X
is then sufficient (w = 1 / a^T Sigma^-1 a). With two or more informative channels the MI is
1/2 log2 prod_j (B_j u + 1)/(A_j u + 1), a sum of laws, which is not itself a law except in
degenerate cases (e.g. B_1 = A_2, where factors cancel); a single-law fit is then only an
approximation (its u_bar lies between the channels' and its I_max is the total capacity).
:meth:`GaussianChannel.mi` gives the exact sum in every case.

Y is returned standardized, Y_j = (Z_j + eta_j) / sd(Z_j + eta_j) (no MI changes), which keeps
I_max = 0 (v = infinity) well defined. Sampling is seeded (the streams ``(seed, "gaussian",
...)``) and uses the same underlying normal draws at every u: a series over depths is one sample
path in which only the noise scale 1/sqrt(u) changes (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._internal.checks import check_int, check_seed
from .._internal.seeding import generator
from ..laws import LawFit, fit_noise_law, noise_law

LN2 = math.log(2.0)

Param = float | tuple[float, ...]


def _per_channel(name: str, value, m: int | None, *, positive: bool) -> np.ndarray:
    """A finite float vector of one value per channel (scalars broadcast to m)."""
    a = np.atleast_1d(np.asarray(value, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty sequence of numbers")
    if m is not None and a.size not in (1, m):
        raise ValueError(f"{name} has {a.size} values for {m} channels")
    if not np.all(np.isfinite(a)) or np.any(a <= 0 if positive else a < 0):
        raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    return np.broadcast_to(a, (m or a.size,)).copy()


def _stored(a: np.ndarray) -> Param:
    return float(a[0]) if a.size == 1 else tuple(float(v) for v in a)


def _orthogonal(d: int, seed: int) -> np.ndarray:
    """A seeded random d x d orthogonal matrix (Haar: QR of a Gaussian matrix, signs fixed)."""
    gen = generator(seed, "gaussian", "rotation")
    q, r = np.linalg.qr(gen.standard_normal((d, d)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _depth(u, *, allow_zero: bool) -> np.ndarray:
    ua = np.asarray(u, dtype=float)
    bad = np.isnan(ua) | (ua < 0) | ((ua == 0) & (not allow_zero))
    if np.any(bad):
        raise ValueError(f"depth u must be {'>= 0' if allow_zero else '> 0'} (inf allowed), "
                         f"got {u!r}")
    return ua


@dataclass(frozen=True)
class GaussianChannel:
    """The Gaussian model of the noise law (see the module docstring), with parameters per
    channel: ``u_bar`` (> 0) and ``I_max`` (bits, >= 0) are numbers for one channel or equal-
    length sequences for several; ``signal_var`` (s_j) sets the scale of X; ``dim`` (default:
    the number of channels) is the dimension of X; ``basis_seed`` orients the signal subspace.
    """

    u_bar: Param
    I_max: Param
    dim: int | None = None
    signal_var: Param = 1.0
    basis_seed: int = 0

    def __post_init__(self) -> None:
        ub = _per_channel("u_bar", self.u_bar, None, positive=True)
        im = _per_channel("I_max", self.I_max, None, positive=False)
        m = max(ub.size, im.size)
        ub, im = _per_channel("u_bar", ub, m, positive=True), _per_channel("I_max", im, m,
                                                                           positive=False)
        sv = _per_channel("signal_var", self.signal_var, m, positive=True)
        dim = m if self.dim is None else check_int("dim", self.dim)
        if dim < m:
            raise ValueError(f"dim must be >= the number of channels ({m}), got {dim}")
        for name, value in (("u_bar", ub), ("I_max", im), ("signal_var", sv), ("dim", dim),
                            ("basis_seed", check_seed(self.basis_seed))):
            object.__setattr__(self, name, _stored(value) if isinstance(value, np.ndarray)
                               else value)

    @classmethod
    def from_variances(cls, signal_var, aux_noise_var, noise_var, *, dim: int | None = None,
                       basis_seed: int = 0) -> GaussianChannel:
        """The channel with Var Z = ``signal_var`` (s), Var eta = ``aux_noise_var`` (v, inf for
        an uninformative Y) and Var eps = ``noise_var`` (w, at u = 1): I_max = 1/2 log2(1 + s/v)
        and u_bar = (w / s) (1 + s / v). Numbers or one value per channel."""
        s = _per_channel("signal_var", signal_var, None, positive=True)
        v = np.atleast_1d(np.asarray(aux_noise_var, dtype=float))
        if v.ndim != 1 or np.any(np.isnan(v) | (v <= 0)):
            raise ValueError(f"aux_noise_var must be > 0 (inf allowed), got {aux_noise_var!r}")
        w = _per_channel("noise_var", noise_var, None, positive=True)
        m = max(s.size, v.size, w.size)
        s = _per_channel("signal_var", s, m, positive=True)
        w = _per_channel("noise_var", w, m, positive=True)
        if v.size not in (1, m):
            raise ValueError(f"aux_noise_var has {v.size} values for {m} channels")
        snr = s / np.broadcast_to(v, (m,))
        return cls(u_bar=_stored(w / s * (1 + snr)), I_max=_stored(0.5 * np.log2(1 + snr)),
                   dim=dim, signal_var=_stored(s), basis_seed=basis_seed)

    # --- per-channel views ------------------------------------------------------------------

    @property
    def n_channels(self) -> int:
        return np.atleast_1d(self.u_bar).size

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.n_channels
        return (np.broadcast_to(np.asarray(self.u_bar, float), (m,)),
                np.broadcast_to(np.asarray(self.I_max, float), (m,)),
                np.broadcast_to(np.asarray(self.signal_var, float), (m,)))

    @property
    def capacity(self) -> float:
        """Total information as u -> infinity: the sum of the channels' I_max (bits)."""
        return float(np.sum(self._params()[1]))

    @property
    def aux_noise_var(self) -> Param:
        """v_j = s_j / (2^(2 I_max_j) - 1) (inf where I_max_j = 0)."""
        _, im, sv = self._params()
        with np.errstate(divide="ignore"):
            return _stored(sv / np.expm1(2 * LN2 * im))

    @property
    def noise_var(self) -> Param:
        """w_j = u_bar_j s_j 2^(-2 I_max_j): the measurement-noise variance at u = 1."""
        ub, im, sv = self._params()
        return _stored(ub * sv * np.exp2(-2 * im))

    # --- the analytic MI --------------------------------------------------------------------

    def mi(self, u) -> np.ndarray | float:
        """I(X; Y) in bits at depth(s) ``u`` (>= 0, inf allowed): the sum of the channels'
        noise laws, exact."""
        ua = _depth(u, allow_zero=True)
        ub, im, _ = self._params()
        finite = np.where(np.isinf(ua), 1.0, ua)[..., None]
        per = np.where(np.isinf(ua)[..., None], im, noise_law(finite, ub, im))
        out = per.sum(axis=-1)
        return float(out) if out.ndim == 0 else out

    def law_params(self) -> tuple[float, float]:
        """(u_bar, I_max) of the single noise law that :meth:`mi` equals exactly; defined when
        at most one channel carries information (ValueError otherwise: the MI is then a sum of
        laws, see the module docstring)."""
        ub, im, _ = self._params()
        informative = np.flatnonzero(im > 0)
        if informative.size > 1:
            raise ValueError(f"{informative.size} channels carry information: the MI is a sum of "
                             "noise laws, not one law (use mi(u) for the exact curve)")
        j = informative[0] if informative.size else 0
        return float(ub[j]), float(im[j])

    def covariance(self, u: float) -> np.ndarray:
        """The (dim + m) x (dim + m) covariance of (X, Y) at depth ``u`` > 0 (Y standardized);
        the Gaussian MI from it, 1/2 log2(det Sxx det Syy / det S), equals :meth:`mi`."""
        ua = float(_depth(u, allow_zero=False))
        ub, im, sv = self._params()
        m, d = self.n_channels, self.dim
        w = ub * sv * np.exp2(-2 * im)
        var = np.concatenate([sv + w / ua, np.full(d - m, w.mean() / ua)])
        R = _orthogonal(d, self.basis_seed)
        rho = np.sqrt(-np.expm1(-2 * LN2 * im))  # corr(Z_j, Y_j)
        cov = np.zeros((d + m, d + m))
        cov[:d, :d] = (R * var) @ R.T
        cov[:d, d:] = R[:, :m] * (rho * np.sqrt(sv))
        cov[d:, :d] = cov[:d, d:].T
        cov[d:, d:] = np.eye(m)
        return cov

    # --- sampling ---------------------------------------------------------------------------

    def sample(self, n: int, u: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples (x (n, dim), y (n, m)) at depth ``u`` > 0 (inf: no measurement noise).
        The same seed gives the same Z, Y and noise draws at every u (common random numbers)."""
        n = check_int("n", n)
        ua = float(_depth(u, allow_zero=False))
        seed = check_seed(seed)
        ub, im, sv = self._params()
        m, d = self.n_channels, self.dim
        gen = generator(seed, "gaussian", "samples")
        z = gen.standard_normal((n, m))
        xi = gen.standard_normal((n, m))
        eps = gen.standard_normal((n, d))
        w = ub * sv * np.exp2(-2 * im)
        scale = np.sqrt(np.concatenate([w, np.full(d - m, w.mean())]) / ua)
        xr = eps * scale
        xr[:, :m] += z * np.sqrt(sv)
        rho2 = -np.expm1(-2 * LN2 * im)
        y = z * np.sqrt(rho2) + xi * np.sqrt(1 - rho2)
        return xr @ _orthogonal(d, self.basis_seed).T, y


def recover(channel: GaussianChannel, depths: Sequence[float], *, n: int = 10_000, k: int = 3,
            seed: int = 0) -> tuple[pd.DataFrame, LawFit]:
    """Sample the channel at each depth, estimate I(X; Y) by KSG (:func:`noisescale.mi.ksg`)
    and fit the noise law to the estimates.

    Returns the table (columns u, mi, analytic, error = mi - analytic, one row per depth, all
    depths from the same sample path) and the :class:`~noisescale.laws.LawFit`, to compare
    with ``channel.law_params()``. Deterministic for a seed.
    """
    from ..mi import ksg

    u = np.asarray(depths, dtype=float)
    if u.ndim != 1 or u.size < 3:
        raise ValueError("depths must be a sequence of at least 3 depths")
    _depth(u, allow_zero=False)
    if np.any(np.isinf(u)):
        raise ValueError("depths must be finite: the law is fitted on a log scale of u")
    est = np.array([ksg(*channel.sample(n, float(ui), seed=seed), k, seed=seed) for ui in u])
    analytic = np.asarray(channel.mi(u), dtype=float)
    table = pd.DataFrame({"u": u, "mi": est, "analytic": analytic, "error": est - analytic})
    return table, fit_noise_law(u, est)
