"""Latent mutual information (LMI; Gowri et al., NeurIPS 2024), in torch.

High-dimensional x and y are each compressed by an autoencoder whose latent must also predict
the other variable (cross-prediction), so the latents keep what x and y share; KSG is then
estimated on the latents of held-out samples. Steps:

1. standardize every column (constant columns become 0) and clip to ±``clip``;
2. split the samples (seeded) into training, validation and held-out sets;
3. train both autoencoders jointly with Adam on
   ``MSE(x̂, x) + MSE(ŷ, y) + cross_weight · (MSE(y from z_x, y) + MSE(x from z_y, x))``,
   keeping the weights of the best validation loss (early stopping with ``patience``);
4. embed the held-out samples and return KSG (:func:`noisescale.mi.ksg`) on (z_x, z_y).

If x or y is constant (all rows equal after step 1) the MI is exactly 0 and nothing is trained
(see :func:`lmi`). Latents that are constant (an encoder that maps every sample to one point)
give 0 through KSG; latents in which more than half of the held-out samples share their point
with another sample give a :class:`~noisescale.mi.TiesWarning`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._internal.checks import check_int, check_seed
from .._internal.devices import torch_device
from .._internal.seeding import split
from ..models.training import mlp, seeded
from ..models.training import train as train_loop
from ._samples import as_samples, check_k, standardize_
from ._ties import is_constant
from .ksg import _ksg, _resolve_knn, prepare


@dataclass
class LMIResult:
    """An LMI estimate and what it was computed from."""

    mi: float  # bits: the mean of ``pointwise``
    pointwise: np.ndarray  # per held-out sample, bits
    test_index: np.ndarray  # rows of the input that were held out (order of ``pointwise``)
    zx: np.ndarray  # latents of the held-out samples
    zy: np.ndarray
    # per-epoch train_loss, val_loss; best_epoch, epochs_run, stopped ("constant": not trained)
    history: dict = field(default_factory=dict)
    seconds: float = 0.0


def _widths(dim: int, hidden: int | None) -> tuple[int, int]:
    h = hidden if hidden is not None else int(min(512, max(64, 2 * dim)))
    return h, max(h // 2, 16)


def _paired_autoencoder(dx: int, dy: int, latent_dim: int, hidden: int | None):
    """Two autoencoders plus cross-predictors (a torch ModuleDict)."""
    from torch import nn

    hx, hx2 = _widths(dx, hidden)
    hy, hy2 = _widths(dy, hidden)
    return nn.ModuleDict({
        "enc_x": mlp([dx, hx, hx2, latent_dim]),
        "dec_x": mlp([latent_dim, hx2, hx, dx]),
        "enc_y": mlp([dy, hy, hy2, latent_dim]),
        "dec_y": mlp([latent_dim, hy2, hy, dy]),
        "x_to_y": mlp([latent_dim, hy2, hy, dy]),
        "y_to_x": mlp([latent_dim, hx2, hx, dx]),
    })


def _pair_loss(net, x, y, cross_weight: float):
    from torch.nn.functional import mse_loss

    zx, zy = net["enc_x"](x), net["enc_y"](y)
    own = mse_loss(net["dec_x"](zx), x) + mse_loss(net["dec_y"](zy), y)
    cross = mse_loss(net["x_to_y"](zx), y) + mse_loss(net["y_to_x"](zy), x)
    return own + cross_weight * cross


def _split(n: int, test_fraction: float, validation_fraction: float, seed: int):
    for name, f in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0 < f < 1:
            raise ValueError(f"{name} must be in (0, 1), got {f!r}")
    rest, test = split(n, test_fraction, seed, "test")
    keep, held = split(rest.size, validation_fraction, seed, "validation")
    train, val = rest[keep], rest[held]
    if min(train.size, val.size) < 1:
        raise ValueError(f"{n} samples are too few to split into training, validation and "
                         f"held-out sets")
    return train, val, test


def _scaled(a: np.ndarray, clip: float) -> np.ndarray:
    """z-scored (constant columns 0), clipped to ±clip, float32; ``a`` is left as it was."""
    out = a.copy()
    standardize_(out)
    return np.clip(out, -clip, clip).astype(np.float32)


def lmi(
    x,
    y,
    *,
    latent_dim: int = 8,
    k: int = 3,
    test_fraction: float = 0.5,
    validation_fraction: float = 0.2,
    epochs: int = 300,
    patience: int = 30,
    batch_size: int = 512,
    lr: float = 1e-3,
    hidden: int | None = None,
    cross_weight: float = 1.0,
    clip: float = 10.0,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    _y_is_labels: bool = False,
) -> LMIResult:
    """Latent MI between x (N, dx) and y (N, dy), in bits, on held-out samples.

    ``test_fraction`` of the samples are held out for the estimate; ``validation_fraction`` of
    the rest decides early stopping. Hidden widths default to 2·dim clamped to [64, 512] per
    variable. Reproducible for a seed on the same device and thread count; ``device="auto"``
    uses CUDA when torch sees it. ``progress`` shows a bar over epochs.

    If x or y is constant (all rows equal after standardization and clipping) the MI is exactly
    0 and no network is trained: ``mi`` is 0.0, ``pointwise`` zeros for the held-out samples
    (``test_index`` is the usual split), ``zx`` and ``zy`` are zeros of shape
    (held-out, latent_dim) (a constant is encoded as one point; KSG on them gives 0 too) and
    ``history`` has no epochs: ``epochs_run`` 0, ``best_epoch`` -1, ``stopped`` "constant" and
    ``constant`` naming the variable(s). ``_y_is_labels`` (set by
    :func:`~noisescale.mi.mi_discrete`): y is one-hot labels, whose ties are expected.
    """
    import torch

    seed = check_seed(seed)
    xs = as_samples("x", x)
    n = xs.shape[0]
    ys = as_samples("y", y, n)
    for name, v in (("latent_dim", latent_dim), ("epochs", epochs), ("patience", patience),
                    ("batch_size", batch_size)):
        check_int(name, v)
    train, val, test = _split(n, test_fraction, validation_fraction, seed)
    check_k(k, test.size)
    dev = torch_device(device)
    t0 = time.perf_counter()
    sx, sy = _scaled(xs, clip), _scaled(ys, clip)
    constant = [name for name, a in (("x", sx), ("y", sy)) if is_constant(a)]
    if constant:  # I(x; y) = 0 exactly: nothing to learn
        zeros = np.zeros((test.size, latent_dim))
        history = {"train_loss": [], "val_loss": [], "best_epoch": -1, "epochs_run": 0,
                   "stopped": "constant", "constant": constant, "seconds": 0.0}
        return LMIResult(mi=0.0, pointwise=np.zeros(test.size), test_index=test, zx=zeros,
                         zy=zeros.copy(), history=history, seconds=time.perf_counter() - t0)
    tx = torch.from_numpy(sx).to(dev)
    ty = torch.from_numpy(sy).to(dev)
    train_idx = torch.from_numpy(train).to(dev)
    val_idx = torch.from_numpy(val).to(dev)

    with seeded(seed, dev):
        net = _paired_autoencoder(xs.shape[1], ys.shape[1], latent_dim, hidden).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        shuffle = torch.Generator().manual_seed(seed)

        def batches(epoch):
            order = train_idx[torch.randperm(train_idx.numel(), generator=shuffle).to(dev)]
            return (order[i:i + batch_size] for i in range(0, order.numel(), batch_size))

        def validate(epoch):
            total = 0.0
            for i in range(0, val_idx.numel(), 8192):
                b = val_idx[i:i + 8192]
                total += float(_pair_loss(net, tx[b], ty[b], cross_weight)) * b.numel()
            return total / val_idx.numel()

        history = train_loop(net, opt, batches=batches,
                             loss=lambda b, epoch: _pair_loss(net, tx[b], ty[b], cross_weight),
                             validate=validate, epochs=epochs, patience=patience,
                             progress=progress, desc="LMI")
        with torch.no_grad():
            idx = torch.from_numpy(test).to(dev)
            zx = net["enc_x"](tx[idx]).double().cpu().numpy()
            zy = net["enc_y"](ty[idx]).double().cpu().numpy()
    note = ("Tied inputs, or an encoder that maps many samples to one point, give tied "
            "latents. ")
    values = _ksg(prepare("zx", zx, None, standardize=True),
                  prepare("zy", zy, zx.shape[0], standardize=True), k, pointwise=True,
                  jitter=1e-10, seed=seed, knn=_resolve_knn("auto"), threads=0,
                  who="lmi (KSG on the held-out latents)", names=("zx", "zy"),
                  warn_y=not _y_is_labels, note=note)
    return LMIResult(mi=float(np.mean(values)), pointwise=values, test_index=test, zx=zx, zy=zy,
                     history=history, seconds=time.perf_counter() - t0)
