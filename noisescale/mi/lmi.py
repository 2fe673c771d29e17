"""Latent mutual information (LMI; Gowri et al., NeurIPS 2024), in torch.

High-dimensional x and y are each compressed by an encoder whose latent must predict the other
variable (cross-prediction), so the latents keep what x and y share; KSG is then estimated on
the latents of held-out samples. An information bottleneck (weight ``bottleneck``, β) makes the
latents keep *only* what is shared: KSG's downward bias grows with the dimension it is given,
so latent dimensions that carry the independent rest of x or y (or nothing) cost it dearly,
e.g. a dependence in 2 of 25 dimensions per side came out at 0.6 of 1.47 bits when the latents
also had to reconstruct their own input. Steps:

1. standardize every column (constant columns become 0) and clip to ±``clip``; with
   ``copula=True`` replace every column by the normal scores of its ranks first
   (:func:`noisescale.mi.gaussian.normal_scores`), which leaves the MI unchanged and tames
   heavy tails (Student-t with ν = 1 in 2 × 2: −1.15 → −0.05 bits at N = 5,000);
2. split the samples (seeded) into training, validation and held-out sets;
3. train both encoders and cross-predictors jointly with Adam on, per sample in nats,
   ``cross_weight · (½‖y − g_y(z_x)‖² + ½‖x − g_x(z_y)‖²) + β · (C_x + C_y + KL_x + KL_y)``
   (plus ``reconstruction_weight`` times the own-reconstruction terms ½‖x − d_x(z_x)‖² +
   ½‖y − d_y(z_y)‖², off by default), keeping the weights of the best validation loss (early
   stopping with ``patience``). Two Gaussian channels carry the bottleneck:

   * input channel: every standardized input column i passes through x_i + σ_i·ε with a
     learned σ_i; its capacity ½·log(1 + 1/σ_i²) summed over columns is C_x. A column that does
     not help the prediction is drowned (σ_i grows), so the encoder learns to ignore it; without
     this the encoder keeps a small, nonlinear trace of the unrelated columns in its latent,
     which was worth ~0.2 bits of lost MI on the 2-in-25 task;
   * latent channel (a variational information bottleneck): the encoder gives a mean μ(x) and a
     variance, z = μ + σ·ε during training, and KL_x is KL(N(μ, σ²) ‖ N(0, 1)) summed over
     latent dimensions; a latent dimension that is not needed collapses to the prior.

   With cross-prediction a Gaussian log-likelihood, β is an exchange rate: a channel is kept
   when it improves the prediction by more than β nats per nat it carries (for a pair of
   unit-variance Gaussians that is when ρ² > β). Validation: the same loss on the noise-free
   means;
4. keep the *active* latent dimensions: those whose mean KL on the validation set exceeds
   ``ACTIVE_NATS`` (the active-unit count of VAEs, measured in nats), at least the most active
   one per side; with ``bottleneck=0`` every dimension is kept;
5. embed the held-out samples (the means μ) and return KSG (:func:`noisescale.mi.ksg`) on the
   active dimensions of (z_x, z_y).

``bottleneck=0, reconstruction_weight=1`` is the original LMI objective (paired autoencoders,
all latent dimensions to KSG).

If x or y is constant (all rows equal after step 1) the MI is exactly 0 and nothing is trained
(see :func:`lmi`). Latents that are constant (an encoder that maps every sample to one point)
give 0 through KSG; latents in which more than half of the held-out samples share their point
with another sample give a :class:`~noisescale.mi.TiesWarning`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._internal.checks import check_bool, check_int, check_seed, check_threads
from .._internal.devices import torch_device
from .._internal.seeding import split
from ..models.training import mlp, seeded
from ..models.training import train as train_loop
from ._samples import as_samples, check_k, rank_normal, standardize_
from ._ties import is_constant
from .ksg import _ksg, _resolve_knn, prepare
from .result import HeldOutFit


@dataclass
class LMIResult:
    """An LMI estimate and what it was computed from."""

    mi: float  # bits: the mean of ``pointwise``
    pointwise: np.ndarray  # per held-out sample, bits
    test_index: np.ndarray  # rows of the input that were held out (order of ``pointwise``)
    zx: np.ndarray  # latent means of the held-out samples, every latent dimension
    zy: np.ndarray
    # per-epoch train_loss, val_loss; best_epoch, epochs_run, stopped ("constant": not trained);
    # latent_kl_x/_y (mean KL per latent dimension, nats), input_noise_x/_y (σ per column)
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    kept_x: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kept_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # the active latent dimensions (columns of zx, zy) that KSG was computed on


ACTIVE_NATS = 0.05  # a latent dimension carrying less (mean KL, nats) is inactive
_GATE_LR = 30.0  # the input-noise scales learn at this multiple of ``lr``: one per column
_GATE_INIT = -2.0  # initial log σ of the input channels (σ ≈ 0.14, capacity ≈ 2 nats)


def _widths(dim: int, hidden: int | None) -> tuple[int, int]:
    h = hidden if hidden is not None else int(min(512, max(64, 2 * dim)))
    return h, max(h // 2, 16)


def _paired_autoencoder(dx: int, dy: int, latent_dim: int, hidden: int | None):
    """Two encoders (mean and log-variance of the latent), own decoders, cross-predictors and
    the input channels' log σ (a torch ModuleDict)."""
    import torch
    from torch import nn

    hx, hx2 = _widths(dx, hidden)
    hy, hy2 = _widths(dy, hidden)
    return nn.ModuleDict({
        "enc_x": mlp([dx, hx, hx2, 2 * latent_dim]),
        "dec_x": mlp([latent_dim, hx2, hx, dx]),
        "enc_y": mlp([dy, hy, hy2, 2 * latent_dim]),
        "dec_y": mlp([latent_dim, hy2, hy, dy]),
        "x_to_y": mlp([latent_dim, hy2, hy, dy]),
        "y_to_x": mlp([latent_dim, hx2, hx, dx]),
        "noise": nn.ParameterDict({"x": nn.Parameter(torch.full((dx,), _GATE_INIT)),
                                   "y": nn.Parameter(torch.full((dy,), _GATE_INIT))}),
    })


def _encode(enc, a):
    """Latent mean and log-variance."""
    mu, logvar = enc(a).chunk(2, dim=1)
    return mu, logvar.clamp(-12.0, 6.0)


def _latent_kl(mu, logvar):
    """KL(N(mu, e^logvar) ‖ N(0, 1)) per sample and latent dimension, nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def _log_sigma(net, name):
    return net["noise"][name].clamp(-6.0, 6.0)


def _capacity(log_sigma):
    """Capacity of unit-variance inputs through x + σε, summed over columns, nats."""
    import torch

    return 0.5 * torch.log1p(torch.exp(-2.0 * log_sigma)).sum()


def _pair_loss(net, x, y, cross_weight: float, reconstruction_weight: float, beta: float,
               noisy: bool = True):
    """The training objective per sample (nats); ``noisy=False``: on the noise-free means (the
    validation loss)."""
    import torch

    def nll(a, b):  # unit-variance Gaussian, up to a constant
        return 0.5 * (a - b).square().sum(1).mean()

    bottleneck = beta > 0
    xin, yin = x, y  # the targets stay noise-free
    if bottleneck and noisy:
        xin = x + torch.randn_like(x) * _log_sigma(net, "x").exp()
        yin = y + torch.randn_like(y) * _log_sigma(net, "y").exp()
    (mx, lx), (my, ly) = _encode(net["enc_x"], xin), _encode(net["enc_y"], yin)
    if bottleneck and noisy:
        zx = mx + torch.randn_like(mx) * (0.5 * lx).exp()
        zy = my + torch.randn_like(my) * (0.5 * ly).exp()
    else:
        zx, zy = mx, my
    loss = cross_weight * (nll(net["x_to_y"](zx), y) + nll(net["y_to_x"](zy), x))
    if reconstruction_weight:
        loss = loss + reconstruction_weight * (nll(net["dec_x"](zx), x) +
                                               nll(net["dec_y"](zy), y))
    if bottleneck:
        info = (_capacity(_log_sigma(net, "x")) + _capacity(_log_sigma(net, "y")) +
                _latent_kl(mx, lx).sum(1).mean() + _latent_kl(my, ly).sum(1).mean())
        loss = loss + beta * info
    return loss


def _active(kl: np.ndarray, bottleneck: float) -> np.ndarray:
    """Active latent dimensions: mean KL above ACTIVE_NATS, at least the largest; all if no
    bottleneck."""
    if bottleneck == 0:
        return np.arange(kl.size)
    keep = np.flatnonzero(kl > ACTIVE_NATS)
    return keep if keep.size else np.array([int(np.argmax(kl))])


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
    bottleneck: float = 0.01,
    cross_weight: float = 1.0,
    reconstruction_weight: float = 0.0,
    clip: float = 10.0,
    copula: bool = False,
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

    ``bottleneck`` (β ≥ 0, nats per nat) prices the information the input and latent channels
    carry (module docstring, step 3): dependencies worth less than that to the cross-prediction
    (for Gaussian pairs: squared correlation below β) are dropped, and only the active latent
    dimensions go to KSG (``kept_x``, ``kept_y``; ``zx``, ``zy`` hold all of them). 0 turns the
    bottleneck off (no noise, every latent dimension kept). ``cross_weight`` and
    ``reconstruction_weight`` weight the cross-prediction and own-reconstruction terms;
    ``bottleneck=0, reconstruction_weight=1`` is the original LMI. ``copula=True`` trains on
    each column's rank normal scores instead of its standardized values (module docstring,
    step 1): the MI is the same, and outliers of heavy-tailed columns no longer squash the rest
    of the samples into a sliver of the clipped range.

    If x or y is constant (all rows equal after standardization and clipping) the MI is exactly
    0 and no network is trained: ``mi`` is 0.0, ``pointwise`` zeros for the held-out samples
    (``test_index`` is the usual split), ``zx`` and ``zy`` are zeros of shape
    (held-out, latent_dim) (a constant is encoded as one point; KSG on them gives 0 too) and
    ``history`` has no epochs: ``epochs_run`` 0, ``best_epoch`` -1, ``stopped`` "constant" and
    ``constant`` naming the variable(s); ``kept_x``, ``kept_y`` are empty. ``_y_is_labels`` (set by
    :func:`~noisescale.mi.mi_discrete`): y is one-hot labels, whose ties are expected.
    """
    import torch

    seed = check_seed(seed)
    xs = as_samples("x", x)
    n = xs.shape[0]
    ys = as_samples("y", y, n)
    copula = check_bool("copula", copula)
    for name, v in (("latent_dim", latent_dim), ("epochs", epochs), ("patience", patience),
                    ("batch_size", batch_size)):
        check_int(name, v)
    for name, v in (("bottleneck", bottleneck), ("cross_weight", cross_weight),
                    ("reconstruction_weight", reconstruction_weight)):
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    bottleneck = float(bottleneck)
    train, val, test = _split(n, test_fraction, validation_fraction, seed)
    check_k(k, test.size)
    dev = torch_device(device)
    t0 = time.perf_counter()
    if copula:  # rank normal scores, after every option is checked
        sx, sy = _scaled(rank_normal(xs), clip), _scaled(rank_normal(ys), clip)
    else:
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
        noise = list(net["noise"].parameters())
        rest = [p for name, p in net.named_parameters() if not name.startswith("noise.")]
        opt = torch.optim.Adam([{"params": rest},
                                {"params": noise, "lr": _GATE_LR * lr}], lr=lr)
        shuffle = torch.Generator().manual_seed(seed)

        def loss(a, b, noisy=True):
            return _pair_loss(net, a, b, cross_weight, reconstruction_weight, bottleneck, noisy)

        def batches(epoch):
            order = train_idx[torch.randperm(train_idx.numel(), generator=shuffle).to(dev)]
            return (order[i:i + batch_size] for i in range(0, order.numel(), batch_size))

        def validate(epoch):
            total = 0.0
            for i in range(0, val_idx.numel(), 8192):
                b = val_idx[i:i + 8192]
                total += float(loss(tx[b], ty[b], noisy=False)) * b.numel()
            return total / val_idx.numel()

        history = train_loop(net, opt, batches=batches,
                             loss=lambda b, epoch: loss(tx[b], ty[b]),
                             validate=validate, epochs=epochs, patience=patience,
                             progress=progress, desc="LMI")
        with torch.no_grad():
            idx = torch.from_numpy(test).to(dev)
            zx = _encode(net["enc_x"], tx[idx])[0].double().cpu().numpy()
            zy = _encode(net["enc_y"], ty[idx])[0].double().cpu().numpy()
            for name, enc, t in (("x", "enc_x", tx), ("y", "enc_y", ty)):
                kl = torch.zeros(latent_dim, dtype=torch.float64, device=dev)
                for i in range(0, val_idx.numel(), 8192):
                    b = val_idx[i:i + 8192]
                    kl += _latent_kl(*_encode(net[enc], t[b])).double().sum(0)
                history[f"latent_kl_{name}"] = (kl / val_idx.numel()).cpu().numpy()
                history[f"input_noise_{name}"] = (
                    _log_sigma(net, name).exp().double().cpu().numpy() if bottleneck
                    else np.zeros(t.shape[1]))
    kept_x = _active(history["latent_kl_x"], bottleneck)
    kept_y = _active(history["latent_kl_y"], bottleneck)
    values = _latent_ksg(zx[:, kept_x], zy[:, kept_y], k, seed, threads=0,
                         warn_y=not _y_is_labels)
    return LMIResult(mi=float(np.mean(values)), pointwise=values, test_index=test, zx=zx, zy=zy,
                     history=history, seconds=time.perf_counter() - t0, kept_x=kept_x,
                     kept_y=kept_y)


def _latent_ksg(zx: np.ndarray, zy: np.ndarray, k: int, seed: int, *, threads: int,
                warn_y: bool = True) -> np.ndarray:
    """Pointwise KSG on (the kept dimensions of) held-out latents: LMI's last step."""
    note = ("Tied inputs, or an encoder that maps many samples to one point, give tied "
            "latents. ")
    return _ksg(prepare("zx", zx, None, standardize=True),
                prepare("zy", zy, zx.shape[0], standardize=True), k, pointwise=True,
                jitter=1e-10, seed=seed, knn=_resolve_knn("auto"), threads=threads,
                who="lmi (KSG on the held-out latents)", names=("zx", "zy"), warn_y=warn_y,
                note=note)


def fit_lmi(x, y, *, k: int = 3, seed: int = 0, threads: int | None = None,
            **options) -> HeldOutFit:
    """:func:`lmi` as a :class:`~noisescale.mi.result.HeldOutFit`: ``evaluate(ix, iy)`` is
    KSG on the kept latent dimensions of the held-out pairs (zx[ix], zy[iy]), without
    retraining; the identity pairing gives ``mi``. ``options`` are :func:`lmi`'s; ``details``
    holds the :class:`LMIResult` as ``"result"`` and its ``history``."""
    import warnings

    from ._ties import TiesWarning

    res = lmi(x, y, k=k, seed=seed, **options)
    zx, zy = res.zx[:, res.kept_x], res.zy[:, res.kept_y]
    nthreads = check_threads(threads)

    def evaluate(ix, iy) -> float:
        if res.history.get("stopped") == "constant":
            return 0.0
        with warnings.catch_warnings():  # said once, by lmi itself
            warnings.simplefilter("ignore", TiesWarning)
            return float(np.mean(_latent_ksg(zx[ix], zy[iy], k, seed, threads=nthreads)))

    return HeldOutFit(mi=res.mi, n_eval=int(res.test_index.size), evaluate=evaluate,
                      details={"history": res.history, "result": res})
