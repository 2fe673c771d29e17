"""What the torch-trained parts (latent MI, VAE, transformer) share: device choice, seeding
and the training loop with early stopping."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

import numpy as np


def resolve_device(device: str):
    """``"auto"`` (CUDA when torch sees it), ``"cpu"`` or ``"cuda"`` as a torch.device."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch sees no CUDA device")
    return torch.device(device)


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


def split_indices(n: int, fraction: float, seed: int, stream: int):
    """Seeded split of range(n) into (kept, held) with round(n * fraction) held, both sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    gen = np.random.Generator(np.random.Philox(key=np.array([seed, stream], dtype=np.uint64)))
    order = gen.permutation(n)
    n_held = int(round(n * fraction))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


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
) -> dict:
    """Minimize ``loss(batch, epoch)`` over ``batches(epoch)`` for up to ``epochs`` epochs.

    After each epoch ``validate(epoch)`` gives the validation loss; the weights of the best one
    are restored at the end. Training stops early when it has not improved for ``patience``
    epochs (counted from epoch ``patience_from`` on, e.g. after a KL warm-up) or when
    ``max_seconds`` have passed (checked after every batch). Returns the history: train_loss
    and val_loss per epoch, best_epoch, epochs_run, stopped ("patience", "time" or "epochs"),
    seconds.
    """
    import torch
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    history: dict = {"train_loss": [], "val_loss": []}
    best, best_state, best_epoch, waited, stopped = np.inf, None, -1, 0, "epochs"
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    out_of_time = False
    for epoch in bar:
        module.train()
        total, count = 0.0, 0
        for batch in batches(epoch):
            value = loss(batch, epoch)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            total += float(value.detach())
            count += 1
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                out_of_time = True  # stop mid-epoch; the partial epoch is still validated
                break
        module.eval()
        with torch.no_grad():
            val = float(validate(epoch))
        history["train_loss"].append(total / max(count, 1))
        history["val_loss"].append(val)
        bar.set_postfix(val_loss=f"{val:.4g}")
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
