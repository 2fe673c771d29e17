"""The noise law for images: digits seen through imaging noise (:mod:`noisescale.simulate.images`).

:func:`noise_sweep` trains a small MLP from scratch on the noisy training images at each budget
u to classify the digit, takes its penultimate layer on the noisy held-out images, estimates
the MI with the labels (:func:`noisescale.mi.mi_discrete`) and fits the noise law
(:func:`noisescale.laws.fit_noise_law`) to MI against u. The network is built and trained
with the models' own pieces (:func:`noisescale.models.training.mlp` and ``train``, the loop
the VAE, the transformer and LMI use). Everything is seeded: the held-out split (purpose
``"test"``), the validation split (``"validation"``), the noise and the network (torch, with
the caller's random state restored afterwards); on the CPU the same seed gives the same table
except for the ``seconds`` column.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._internal.checks import check_int, check_seed
from .._internal.devices import torch_device
from .._internal.seeding import split
from ..models.training import mlp, seeded, torch_threads, train
from ..simulate.images import (
    NOISES,
    apply_noise,
    check_budget,
    default_levels,
    downsample,
    load_images,
)

if TYPE_CHECKING:  # imported where used, so that the CLI's parser stays quick to build
    import pandas as pd
    from matplotlib.figure import Figure

    from ..laws import LawFit

def _train_and_embed(x_train, y_train, x_test, *, hidden, epochs, patience, batch_size, lr,
                     validation_fraction, seed, dev) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit the MLP classifier on (x_train, y_train); penultimate features and predicted
    classes of x_test, and the training history."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    mean, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd[sd == 0] = 1.0

    def tensor(a):
        return torch.from_numpy(((a - mean) / sd).astype(np.float32)).to(dev)

    keep, held = split(x_train.shape[0], validation_fraction, seed, "validation")
    xt, yt = tensor(x_train), torch.from_numpy(y_train).to(dev)
    n_classes = int(y_train.max()) + 1
    with seeded(seed, dev):
        net = nn.ModuleDict({"body": mlp([x_train.shape[1], *hidden], activation="relu",
                                        last_activation=True),
                               "head": nn.Linear(hidden[-1], n_classes)}).to(dev)
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

    from ..laws import fit_noise_law
    from ..mi import mi_discrete

    images, labels = load_images(dataset)
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if n_images is not None:
        n_images = check_int("n_images", n_images, minimum=20)
        images, labels = images[:n_images], labels[:n_images]
    levels = default_levels(noise, images.shape[1:]) if levels is None else levels
    levels = [check_budget(u) for u in np.atleast_1d(np.asarray(levels, dtype=object))]
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
    dev = torch_device(device)
    threads = check_int("threads", threads)

    rows = []
    with tqdm(total=len(seeds) * len(levels), desc=f"{dataset} {noise}", unit="level",
              disable=not progress) as bar, torch_threads(threads):
        for seed in seeds:
            train_idx, test_idx = split(labels.size, test_fraction, seed, "test")
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
    a matplotlib Figure (:func:`noisescale.report.plots.scaling_curves` with u on the x axis)."""
    from ..report.plots import scaling_curves

    noises = table["noise"].unique()
    title = f"{' / '.join(table['dataset'].unique())}: {' / '.join(noises)} noise"
    fig = scaling_curves(table, x="u", fits={"all": fit} if fit is not None else None,
                         title=title)
    fig.axes[0].set_xlabel(U_LABELS.get(noises[0], "u") if noises.size == 1 else "u")
    return fig
