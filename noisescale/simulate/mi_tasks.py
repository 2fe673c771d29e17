"""Sampling tasks with an exactly known mutual information, for calibrating MI estimators.

In the style of "Beyond Normal" (Czyż et al., NeurIPS 2023; the ``benchmark-mi`` package,
``bmi``): each :class:`MITask` has a name, the dimensions of x and y, the true I(X; Y) in bits
and a seeded sampler ``sample(n, seed) -> (x, y)``. Families:

``normal``
    Jointly Gaussian (x, y) with unit variances. *Sparse*: ``pairs`` coordinate pairs
    (x_i, y_i), i < pairs, correlated with ρ and everything else independent, so
    I = −pairs/2 · log2(1 − ρ²). *Dense*: every off-diagonal correlation (within x, within y and
    across) equal to ``c``. In every case I = ½ log2(det Σx · det Σy / det Σ)
    (:func:`gaussian_mi`), computed from the covariance.
``student``
    Multivariate Student-t with ν degrees of freedom and the same scale (dispersion) matrix Σ:
    x, y = z / sqrt(w / ν), z ~ N(0, Σ), w ~ χ²_ν. Its MI is the Gaussian MI of Σ plus a
    correction that depends only on ν and the dimensions (:func:`student_t_correction`), which is
    > 0: even Σ = I gives dependent x and y (the common scale w).
``transformed``
    A base task with an invertible map applied to every coordinate of x and/or y
    (:func:`half_cube`, :func:`asinh`, :class:`Wiggly`): the MI is unchanged, the samples are
    no longer Gaussian. A transformed task draws exactly the base task's samples (same stream)
    and maps them, so its errors are paired with the base task's.
``channel``
    :class:`noisescale.simulate.GaussianChannel` at one depth: x in ``dim`` dimensions, y one
    standardized auxiliary variable per channel, the truth its exact :meth:`~GaussianChannel.mi`.
``independent``
    A normal task with ρ = 0: the truth is exactly 0 (the null of every estimator).

:func:`tasks` lists the benchmark's tasks (``quick=True``: a handful), :func:`task` finds one by
name. Random streams: ``generator(seed, "simulate", "mi_task", <base task name>)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln

from .._internal.checks import check_int, check_seed
from .._internal.seeding import generator

LN2 = math.log(2.0)

Sampler = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


# --- exact MI --------------------------------------------------------------------------------

def gaussian_mi(cov: np.ndarray, dim_x: int) -> float:
    """I(X; Y) in bits of a Gaussian with covariance ``cov`` whose first ``dim_x`` coordinates
    are X: ½ log2(det Σx det Σy / det Σ), from log-determinants (stable in 50 dimensions)."""
    cov = np.asarray(cov, dtype=float)
    d = cov.shape[0]
    if cov.shape != (d, d) or not 0 < dim_x < d:
        raise ValueError(f"need a square covariance with 0 < dim_x < {d}, got {cov.shape}, "
                         f"dim_x={dim_x}")

    def logdet(a):
        sign, value = np.linalg.slogdet(a)
        if sign <= 0:
            raise ValueError("the covariance is not positive definite")
        return value

    nats = 0.5 * (logdet(cov[:dim_x, :dim_x]) + logdet(cov[dim_x:, dim_x:]) - logdet(cov))
    return float(max(nats, 0.0) / LN2)


def student_t_correction(dof: float, dim_x: int, dim_y: int) -> float:
    """The MI of a multivariate Student-t minus the Gaussian MI of its scale matrix, in bits.

    With g(d) = −lnΓ((ν+d)/2) + (ν+d)/2 · ψ((ν+d)/2) (the d-dependent part of the entropy of a
    d-dimensional t, whose marginals are t with the same ν and the sub-matrix of Σ), the
    correction is g(dx) + g(dy) − g(dx + dy) − g(0) nats: the ½ log det Σ terms give the
    Gaussian MI and the (νπ)^(d/2) terms cancel. It is positive and falls to 0 as ν → ∞ (the
    Gaussian limit); tests check it against a Monte-Carlo estimate of E[log p(x, y) −
    log p(x) − log p(y)].
    """
    if not (dof > 0 and math.isfinite(dof)):
        raise ValueError(f"dof must be finite and > 0, got {dof!r}")

    def g(d: int) -> float:
        a = (dof + d) / 2.0
        return float(-gammaln(a) + a * digamma(a))

    nats = g(dim_x) + g(dim_y) - g(dim_x + dim_y) - g(0)
    return max(nats, 0.0) / LN2


def sparse_covariance(dim_x: int, dim_y: int, pairs: int, rho: float) -> np.ndarray:
    """Unit variances; corr(x_i, y_i) = ρ for i < ``pairs``, every other pair uncorrelated."""
    if not 0 <= pairs <= min(dim_x, dim_y):
        raise ValueError(f"pairs must be in [0, {min(dim_x, dim_y)}], got {pairs}")
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    cov = np.eye(dim_x + dim_y)
    for i in range(pairs):
        cov[i, dim_x + i] = cov[dim_x + i, i] = rho
    return cov


def dense_covariance(dim_x: int, dim_y: int, c: float) -> np.ndarray:
    """Unit variances and every off-diagonal correlation ``c`` (within and across x and y)."""
    d = dim_x + dim_y
    if not -1.0 / (d - 1) < c < 1:
        raise ValueError(f"c must be in (-1/{d - 1}, 1) to be a covariance, got {c}")
    return np.full((d, d), c) + (1 - c) * np.eye(d)


# --- invertible per-coordinate maps ----------------------------------------------------------

def half_cube(x: np.ndarray) -> np.ndarray:
    """h(x) = |x|^1.5 · sign(x): strictly increasing, heavier tails (inverse |y|^(2/3)·sign)."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.abs(x) ** 1.5


def half_cube_inverse(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return np.sign(y) * np.abs(y) ** (2.0 / 3.0)


def asinh(x: np.ndarray) -> np.ndarray:
    """arcsinh: strictly increasing, compresses the tails logarithmically (inverse sinh)."""
    return np.arcsinh(np.asarray(x, dtype=float))


@dataclass(frozen=True)
class Wiggly:
    """w(x) = x + Σ a_i sin(ω_i x + φ_i). Its slope is at least 1 − Σ|a_i ω_i| > 0, so it is
    strictly increasing (invertible) with a non-monotone wiggle in its density."""

    amplitudes: tuple[float, ...] = (0.5, 0.1)
    frequencies: tuple[float, ...] = (1.0, 3.0)
    phases: tuple[float, ...] = (0.0, 0.5)

    def __post_init__(self) -> None:
        if not len(self.amplitudes) == len(self.frequencies) == len(self.phases):
            raise ValueError("amplitudes, frequencies and phases need one value per term")
        if self.max_wiggle >= 1:
            raise ValueError(f"sum |a_i w_i| = {self.max_wiggle} must be < 1 to be invertible")

    @property
    def max_wiggle(self) -> float:
        return float(sum(abs(a * w) for a, w in zip(self.amplitudes, self.frequencies)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = x.copy()
        for a, w, p in zip(self.amplitudes, self.frequencies, self.phases):
            out += a * np.sin(w * x + p)
        return out

    def derivative(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.ones_like(x)
        for a, w, p in zip(self.amplitudes, self.frequencies, self.phases):
            out += a * w * np.cos(w * x + p)
        return out

    def inverse(self, y: np.ndarray, iterations: int = 100) -> np.ndarray:
        """Bisection on [y − Σ|a|, y + Σ|a|], which holds the unique root."""
        y = np.asarray(y, dtype=float)
        span = sum(abs(a) for a in self.amplitudes)
        lo, hi = y - span, y + span
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            above = self(mid) > y
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        return 0.5 * (lo + hi)


WIGGLY = Wiggly()

#: The per-coordinate maps a transformed task can use: name -> (map, inverse).
TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                            Callable[[np.ndarray], np.ndarray]]] = {
    "halfcube": (half_cube, half_cube_inverse),
    "asinh": (asinh, np.sinh),
    "wiggly": (WIGGLY, WIGGLY.inverse),
}


# --- tasks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MITask:
    """A distribution of (x, y) with a known I(X; Y) (``mi``, bits) and its seeded sampler."""

    name: str
    dim_x: int
    dim_y: int
    mi: float
    family: str
    description: str = ""
    _sampler: Sampler | None = field(default=None, repr=False, compare=False)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples: x (n, dim_x) and y (n, dim_y), float64; the same for a seed."""
        n = check_int("n", n)
        seed = check_seed(seed)
        if self._sampler is None:
            raise ValueError(f"task {self.name!r} has no sampler")
        x, y = self._sampler(n, seed)
        return np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, np.float64)


def _stream(seed: int, name: str) -> np.random.Generator:
    return generator(seed, "simulate", "mi_task", name)


def _gaussian_sampler(name: str, cov: np.ndarray, dim_x: int) -> Sampler:
    chol = np.linalg.cholesky(cov)

    def sample(n: int, seed: int):
        z = _stream(seed, name).standard_normal((n, cov.shape[0])) @ chol.T
        return z[:, :dim_x], z[:, dim_x:]

    return sample


def _student_sampler(name: str, cov: np.ndarray, dim_x: int, dof: float) -> Sampler:
    chol = np.linalg.cholesky(cov)

    def sample(n: int, seed: int):
        gen = _stream(seed, name)
        z = gen.standard_normal((n, cov.shape[0])) @ chol.T
        w = gen.chisquare(dof, size=(n, 1))
        t = z / np.sqrt(w / dof)
        return t[:, :dim_x], t[:, dim_x:]

    return sample


def normal_task(dim_x: int, dim_y: int, *, pairs: int | None = None, rho: float = 0.8,
                dense: float | None = None, name: str | None = None) -> MITask:
    """A Gaussian task: sparse (``pairs`` pairs at correlation ``rho``; default all
    min(dx, dy)) or, with ``dense=c``, every off-diagonal correlation c."""
    if dense is not None:
        cov = dense_covariance(dim_x, dim_y, dense)
        kind, desc = "dense", f"all correlations {dense:g}"
    else:
        pairs = min(dim_x, dim_y) if pairs is None else pairs
        cov = sparse_covariance(dim_x, dim_y, pairs, rho)
        kind, desc = "sparse", f"{pairs} pair(s) at rho {rho:g}"
    mi = gaussian_mi(cov, dim_x)
    family = "independent" if mi == 0 else "normal"
    name = name or f"normal-{kind}-{dim_x}x{dim_y}"
    return MITask(name, dim_x, dim_y, mi, family, f"Gaussian, {desc}",
                  _gaussian_sampler(name, cov, dim_x))


def student_task(dim_x: int, dim_y: int, dof: float, *, pairs: int | None = None,
                 rho: float = 0.8, name: str | None = None) -> MITask:
    """Multivariate Student-t, ν = ``dof``, with the sparse scale matrix of :func:`normal_task`;
    truth = Gaussian MI of the scale matrix + :func:`student_t_correction`."""
    pairs = min(dim_x, dim_y) if pairs is None else pairs
    cov = sparse_covariance(dim_x, dim_y, pairs, rho)
    mi = gaussian_mi(cov, dim_x) + student_t_correction(dof, dim_x, dim_y)
    name = name or f"student-dof{dof:g}-{dim_x}x{dim_y}"
    return MITask(name, dim_x, dim_y, mi, "student",
                  f"Student-t, {dof:g} dof, scale: {pairs} pair(s) at rho {rho:g}",
                  _student_sampler(name, cov, dim_x, dof))


def transformed_task(base: MITask, transform: str, *, on: str = "xy",
                     name: str | None = None) -> MITask:
    """``base`` with :data:`TRANSFORMS` [``transform``] applied to every coordinate of x and/or
    y (``on``: "x", "y" or "xy"). Same samples as ``base`` before the map; same MI."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {sorted(TRANSFORMS)}, got {transform!r}")
    if on not in ("x", "y", "xy"):
        raise ValueError(f"on must be 'x', 'y' or 'xy', got {on!r}")
    f = TRANSFORMS[transform][0]
    base_sampler = base._sampler

    def sample(n: int, seed: int):
        x, y = base_sampler(n, seed)
        return (f(x) if "x" in on else x), (f(y) if "y" in on else y)

    suffix = "" if on == "xy" else f"-{on}"
    return MITask(name or f"{transform}{suffix}-{base.name}", base.dim_x, base.dim_y, base.mi,
                  "transformed", f"{transform} on {on} of: {base.description}", sample)


def channel_task(u: float, *, dim: int = 8, u_bar: float = 1.0, I_max: float = 2.0,
                 name: str | None = None) -> MITask:
    """:class:`~noisescale.simulate.GaussianChannel` (one channel, x in ``dim`` dimensions)
    sampled at depth ``u``: the truth is ``channel.mi(u)``, the noise law exactly."""
    from .gaussian import GaussianChannel

    channel = GaussianChannel(u_bar=u_bar, I_max=I_max, dim=dim)
    name = name or f"channel-{dim}x1-u{u:g}"

    def sample(n: int, seed: int):
        return channel.sample(n, u, seed=seed)

    return MITask(name, dim, channel.n_channels, float(channel.mi(u)), "channel",
                  f"GaussianChannel(u_bar={u_bar:g}, I_max={I_max:g}, dim={dim}) at u={u:g}",
                  sample)


def tasks(quick: bool = False) -> list[MITask]:
    """The calibration benchmark's tasks (``quick``: five of them, one per family)."""
    s1 = normal_task(1, 1, name="normal-1x1")
    s3, s5, s25 = (normal_task(d, d, pairs=min(d, 2)) for d in (3, 5, 25))
    t2 = {dof: student_task(2, 2, dof) for dof in (1, 2, 3, 5)}
    ind3 = normal_task(3, 3, rho=0.0, name="independent-3x3")
    if quick:
        return [s1, s5, t2[2], transformed_task(normal_task(3, 3, pairs=2), "halfcube"), ind3]
    return [
        s1,
        normal_task(2, 2, pairs=2),
        s3,
        s5,
        s25,
        normal_task(2, 2, dense=0.5),
        normal_task(3, 3, dense=0.5),
        normal_task(5, 5, dense=0.5),
        normal_task(25, 25, dense=0.5),
        normal_task(3, 1, dense=0.5),
        *t2.values(),
        student_task(5, 5, 3, pairs=2),
        transformed_task(s3, "halfcube"),
        transformed_task(s25, "halfcube"),
        transformed_task(s3, "asinh"),
        transformed_task(t2[1], "asinh"),
        transformed_task(s3, "wiggly"),
        transformed_task(s5, "wiggly", on="x"),
        channel_task(0.1),
        channel_task(1.0),
        ind3,
        normal_task(25, 25, rho=0.0, name="independent-25x25"),
    ]


def task(name: str) -> MITask:
    """The task of :func:`tasks` called ``name``."""
    found = {t.name: t for t in tasks()}
    if name not in found:
        raise KeyError(f"no MI task {name!r}; tasks: {sorted(found)}")
    return found[name]


__all__ = ["MITask", "TRANSFORMS", "WIGGLY", "Wiggly", "asinh", "channel_task",
           "dense_covariance", "gaussian_mi", "half_cube", "half_cube_inverse", "normal_task",
           "sparse_covariance", "student_t_correction", "student_task", "task", "tasks",
           "transformed_task"]
