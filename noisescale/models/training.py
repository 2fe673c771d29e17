"""What the torch-trained parts (VAE, transformer, latent MI, the image sweep) share: seeded
torch state, thread limits, an MLP builder and the training loop with early stopping.
Devices are resolved by :func:`noisescale._internal.devices.torch_device`."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np


_EPOCH_LISTENER: contextvars.ContextVar[Callable[[int, int], None] | None] = \
    contextvars.ContextVar("noisescale_epoch_listener", default=None)


@contextlib.contextmanager
def epoch_listener(listener: Callable[[int, int], None]):
    """Inside, every :func:`train` loop calls ``listener(epochs_done, epochs)`` after each
    epoch (a sweep shows it as the job's stage); scoped to this thread and context."""
    token = _EPOCH_LISTENER.set(listener)
    try:
        yield
    finally:
        _EPOCH_LISTENER.reset(token)


@contextlib.contextmanager
def seeded(seed: int, device):
    """torch's global generators seeded with ``seed`` inside, restored on exit (so a fit
    neither depends on nor disturbs the caller's random state)."""
    import torch

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op thread count set to ``threads`` inside, restored on exit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def mlp(sizes: Sequence[int], *, activation: str = "leaky_relu",
        last_activation: bool = False):
    """A torch MLP: Linear layers of widths ``sizes`` (input first) with ``activation``
    (``"relu"`` or ``"leaky_relu"``, slope 0.2) between them, and after the last one too when
    ``last_activation``. The layers are created in order, so a seed fixes the weights."""
    from torch import nn

    if activation not in ("relu", "leaky_relu"):
        raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {activation!r}")
    layers: list = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def train(
    module,
    optimizer,
    *,
    batches: Callable[[int], Iterable],
    loss: Callable[[object, int], object],
    validate: Callable[[int], float],
    epochs: int,
    patience: int,
    patience_from: int = 0,
    max_seconds: float | None = None,
    progress: bool = False,
    desc: str = "training",
    scheduler=None,
) -> dict:
    """Minimize ``loss(batch, epoch)`` over ``batches(epoch)`` for up to ``epochs`` epochs.

    After each epoch ``validate(epoch)`` gives the validation loss; the weights of the best one
    are restored at the end. Training stops early when it has not improved for ``patience``
    epochs (counted from epoch ``patience_from`` on, e.g. after a KL warm-up) or when
    ``max_seconds`` have passed (checked after every batch). ``scheduler`` (a torch learning
    rate scheduler of ``optimizer``, or None) steps after every optimizer step. Returns the
    history: train_loss and val_loss per epoch, best_epoch, epochs_run, stopped ("patience",
    "time" or "epochs"), seconds, and with a scheduler lr: the learning rate of the last step
    of each epoch.
    """
    import torch
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    history: dict = {"train_loss": [], "val_loss": []}
    if scheduler is not None:
        history["lr"] = []
        step_lr = optimizer.param_groups[0]["lr"]
    best, best_state, best_epoch, waited, stopped = np.inf, None, -1, 0, "epochs"
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    listener = _EPOCH_LISTENER.get()
    out_of_time = False
    for epoch in bar:
        module.train()
        total, count = 0.0, 0
        for batch in batches(epoch):
            value = loss(batch, epoch)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if scheduler is not None:
                step_lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += float(value.detach())
            count += 1
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                out_of_time = True  # stop mid-epoch; the partial epoch is still validated
                break
        module.eval()
        with torch.no_grad():
            val = float(validate(epoch))
        history["train_loss"].append(total / max(count, 1))
        if scheduler is not None:
            history["lr"].append(step_lr)
        history["val_loss"].append(val)
        bar.set_postfix(val_loss=f"{val:.4g}")
        if listener is not None:
            listener(epoch + 1, epochs)
        if val < best:
            best, best_epoch, waited = val, epoch, 0
            best_state = {k: t.detach().clone() for k, t in module.state_dict().items()}
        elif epoch >= patience_from:
            waited += 1
            if waited >= patience:
                stopped = "patience"
                break
        if out_of_time:
            stopped = "time"
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history.update(best_epoch=best_epoch, epochs_run=len(history["val_loss"]), stopped=stopped,
                   seconds=time.perf_counter() - t0)
    return history
