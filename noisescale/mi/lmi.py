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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._samples import as_samples, check_k, check_seed
from .ksg import ksg


@dataclass
class LMIResult:
    """An LMI estimate and what it was computed from."""

    mi: float  # bits: the mean of ``pointwise``
    pointwise: np.ndarray  # per held-out sample, bits
    test_index: np.ndarray  # rows of the input that were held out (order of ``pointwise``)
    zx: np.ndarray  # latents of the held-out samples
    zy: np.ndarray
    history: dict = field(default_factory=dict)  # per-epoch train_loss, val_loss; best_epoch
    seconds: float = 0.0


def _mlp(sizes: list[int]):
    from torch import nn

    layers: list = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _widths(dim: int, hidden: int | None) -> tuple[int, int]:
    h = hidden if hidden is not None else int(min(512, max(64, 2 * dim)))
    return h, max(h // 2, 16)


class _PairedAutoencoder:
    """Two autoencoders plus cross-predictors, as plain torch modules."""

    def __init__(self, dx: int, dy: int, latent_dim: int, hidden: int | None):
        from torch import nn

        hx, hx2 = _widths(dx, hidden)
        hy, hy2 = _widths(dy, hidden)
        self.modules = nn.ModuleDict({
            "enc_x": _mlp([dx, hx, hx2, latent_dim]),
            "dec_x": _mlp([latent_dim, hx2, hx, dx]),
            "enc_y": _mlp([dy, hy, hy2, latent_dim]),
            "dec_y": _mlp([latent_dim, hy2, hy, dy]),
            "x_to_y": _mlp([latent_dim, hy2, hy, dy]),
            "y_to_x": _mlp([latent_dim, hx2, hx, dx]),
        })

    def loss(self, x, y, cross_weight: float):
        from torch.nn.functional import mse_loss

        m = self.modules
        zx, zy = m["enc_x"](x), m["enc_y"](y)
        own = mse_loss(m["dec_x"](zx), x) + mse_loss(m["dec_y"](zy), y)
        cross = mse_loss(m["x_to_y"](zx), y) + mse_loss(m["y_to_x"](zy), x)
        return own + cross_weight * cross


def _resolve_torch_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


def _split(n: int, test_fraction: float, validation_fraction: float, seed: int):
    for name, f in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0 < f < 1:
            raise ValueError(f"{name} must be in (0, 1), got {f!r}")
    perm = np.random.Generator(np.random.Philox(key=np.array([seed, 2], dtype=np.uint64)))
    order = perm.permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round((n - n_test) * validation_fraction))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if min(train.size, val.size) < 1:
        raise ValueError(f"{n} samples are too few to split into training, validation and "
                         f"held-out sets")
    return np.sort(train), np.sort(val), np.sort(test)


def _scaled(a: np.ndarray, clip: float) -> np.ndarray:
    a = a - a.mean(axis=0)
    std = a.std(axis=0)
    std[std == 0] = 1.0
    return np.clip(a / std, -clip, clip).astype(np.float32)


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
) -> LMIResult:
    """Latent MI between x (N, dx) and y (N, dy), in bits, on held-out samples.

    ``test_fraction`` of the samples are held out for the estimate; ``validation_fraction`` of
    the rest decides early stopping. Hidden widths default to 2·dim clamped to [64, 512] per
    variable. Reproducible for a seed on the same device and thread count; ``device="auto"``
    uses CUDA when torch sees it. ``progress`` shows a bar over epochs.
    """
    import torch

    seed = check_seed(seed)
    xs = as_samples("x", x)
    n = xs.shape[0]
    ys = as_samples("y", y, n)
    for name, v in (("latent_dim", latent_dim), ("epochs", epochs), ("patience", patience),
                    ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    train, val, test = _split(n, test_fraction, validation_fraction, seed)
    check_k(k, test.size)
    dev = _resolve_torch_device(device)
    t0 = time.perf_counter()
    tx = torch.from_numpy(_scaled(xs, clip)).to(dev)
    ty = torch.from_numpy(_scaled(ys, clip)).to(dev)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        net = _PairedAutoencoder(xs.shape[1], ys.shape[1], latent_dim, hidden)
        net.modules.to(dev)
        opt = torch.optim.Adam(net.modules.parameters(), lr=lr)
        shuffle = torch.Generator().manual_seed(seed)
        history = _train(net, opt, tx, ty, train, val, epochs=epochs, patience=patience,
                         batch_size=batch_size, cross_weight=cross_weight, shuffle=shuffle,
                         progress=progress)
        net.modules.eval()
        with torch.no_grad():
            idx = torch.from_numpy(test).to(dev)
            zx = net.modules["enc_x"](tx[idx]).double().cpu().numpy()
            zy = net.modules["enc_y"](ty[idx]).double().cpu().numpy()
    values = ksg(zx, zy, k, pointwise=True, seed=seed)
    return LMIResult(mi=float(np.mean(values)), pointwise=values, test_index=test, zx=zx, zy=zy,
                     history=history, seconds=time.perf_counter() - t0)


def _train(net, opt, tx, ty, train, val, *, epochs, patience, batch_size, cross_weight,
           shuffle, progress) -> dict:
    import torch
    from tqdm.auto import tqdm

    dev = tx.device
    train_idx = torch.from_numpy(train).to(dev)
    val_idx = torch.from_numpy(val).to(dev)
    best, best_state, best_epoch, waited = np.inf, None, -1, 0
    history: dict = {"train_loss": [], "val_loss": []}
    bar = tqdm(range(epochs), desc="LMI", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        net.modules.train()
        order = train_idx[torch.randperm(train_idx.numel(), generator=shuffle).to(dev)]
        total = 0.0
        for start in range(0, order.numel(), batch_size):
            b = order[start:start + batch_size]
            loss = net.loss(tx[b], ty[b], cross_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
        net.modules.eval()
        with torch.no_grad():
            val_loss = 0.0
            for start in range(0, val_idx.numel(), 8192):
                b = val_idx[start:start + 8192]
                val_loss += float(net.loss(tx[b], ty[b], cross_weight)) * b.numel()
            val_loss /= val_idx.numel()
        history["train_loss"].append(total / order.numel())
        history["val_loss"].append(val_loss)
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if val_loss < best:
            best, best_epoch, waited = val_loss, epoch, 0
            best_state = {key: t.detach().clone() for key, t in net.modules.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    bar.close()
    if best_state is not None:
        net.modules.load_state_dict(best_state)
    history["best_epoch"] = best_epoch
    history["epochs_run"] = len(history["val_loss"])
    return history
