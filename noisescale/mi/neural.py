"""Neural variational lower bounds on mutual information: InfoNCE and MINE (NWJ or DV), in torch.

A critic T(x, y) is trained to maximize a lower bound on I(x; y); the estimate is the bound of
the trained critic on **held-out** samples, so overfitting cannot inflate it. Steps (shared with
:func:`~noisescale.mi.lmi`):

1. standardize every column (constant columns become 0) and clip to ±``clip``;
2. split the samples (seeded) into training, validation and held-out sets;
3. train the critic with Adam on the negated bound over minibatches, keeping the weights of the
   best validation bound (early stopping with ``patience``);
4. evaluate the bound on the held-out samples, in bits.

Critics: ``"separable"`` is ``f(x) · g(y)`` (two MLPs to ``embed_dim``), ``"concat"`` an MLP on
``[x, y]``. Hidden widths default to 2·dim clamped to [64, 512] (then half that, at least 16).

Bounds (nats; p the joint, q the product of the marginals):

- **InfoNCE** (van den Oord et al. 2018; Poole et al. 2019): for a batch of B pairs,
  ``I ≥ mean_i [T(x_i, y_i) − log (1/B) Σ_k T-exp(x_i, y_k)]``, the other y's of the batch
  being the negatives. It can never exceed log B: a low-variance bound, biased low whenever
  I is not far below log B. Training uses in-batch negatives (B = ``batch_size``).
- **NWJ** (Nguyen, Wainwright & Jordan 2010; "f-MINE"): ``I ≥ E_p[T] − e⁻¹ E_q[e^T]``,
  unbiased for a fixed critic but of high variance once I is large (the variance of e^T grows
  like e^I).
- **DV** (Donsker–Varadhan, MINE: Belghazi et al. 2018): ``I ≥ E_p[T] − log E_q[e^T]``, trained
  with MINE's exponential moving average (rate ``_EMA``) of E_q[e^T] in the denominator of the
  gradient; the sample estimate of log E_q[e^T] is biased low (the bound slightly optimistic).

**Held-out evaluation** (:class:`~noisescale.mi.result.HeldOutFit`). The held-out pairs are dealt
(strided, pair j to block j mod n_blocks) into the fewest blocks of at most :data:`EVAL_BATCH`
(4096) pairs, as equal as possible. InfoNCE is computed in each block with all the other pairs
of the block as negatives and averaged over pairs, so it is capped at the pair-weighted mean of
log2(block size), i.e. log2(n_eval) for up to 4096 held-out pairs (``details["cap_bits"]``).
NWJ and DV take the product of the marginals from :data:`MARGINAL_SHUFFLES` (16) seeded
derangements of the held-out pairs (x_j, y_π(j)) with π(j) ≠ j (stream ``("null",
"marginals")``), i.e. 16·n_eval product-of-marginals pairs; the same pairs whatever the critic.

**Calibration** (``calibrate=True``, the default). A critic trained to be sharp on dependent
data gives a strongly *negative* bound on pairs that are independent (on a shuffled pairing the
bound tends to −KL(q‖p), −3.3 bits for a 1-bit Gaussian), so the raw bound of a fixed critic is
useless as a null. The held-out value is therefore the bound of the best rescaled critic a·T,
a ≥ 0, with a fitted on the evaluated pairs (a concave 1-D maximization, Newton's method): a = 1
is the raw bound, a = 0 the constant critic, whose bound is exactly 0. The estimate is thus ≥ 0
and ≥ the raw bound, a shuffled pairing gives ≈ 0, and a critic overconfident on held-out data
is shrunk. One parameter fitted on n_eval pairs makes the estimate optimistic by O(1/n_eval)
nats, negligible next to the bounds' own bias. For NWJ the best offset b of a·T + b has a closed
form and turns the NWJ bound into the DV bound of a·T, so calibrated NWJ and DV evaluate the
trained critic the same way (they differ in training). ``calibrate=False`` gives the raw bound.

If x or y is constant (all rows equal after step 1) the MI is exactly 0 and nothing is trained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .._internal.checks import check_int, check_number, check_seed
from .._internal.devices import torch_device
from .._internal.seeding import generator
from ..models.training import mlp, seeded
from ..models.training import train as train_loop
from ._samples import as_samples
from ._ties import is_constant
from .lmi import _scaled, _split, _widths
from .result import HeldOutFit

LN2 = math.log(2.0)
#: Largest block of held-out pairs an InfoNCE bound is computed over (caps it at log2 4096 = 12).
EVAL_BATCH = 4096
#: Seeded derangements of the evaluated pairs that give NWJ/DV their product-of-marginals pairs.
MARGINAL_SHUFFLES = 16
#: Rate of MINE's moving average of E_q[e^T] (Belghazi et al. 2018) in the DV gradient.
_EMA = 0.01
CRITICS = ("separable", "concat")
BOUNDS = ("nwj", "dv")
_ROWS = 1024  # rows of a block's score matrix handled at once in float64


# --- critics -----------------------------------------------------------------------------------

def _critic(kind: str, dx: int, dy: int, embed_dim: int, hidden: int | None):
    from torch import nn

    if kind == "separable":
        hx, hx2 = _widths(dx, hidden)
        hy, hy2 = _widths(dy, hidden)
        return nn.ModuleDict({"f": mlp([dx, hx, hx2, embed_dim]),
                              "g": mlp([dy, hy, hy2, embed_dim])})
    h, h2 = _widths(dx + dy, hidden)
    return nn.ModuleDict({"t": mlp([dx + dy, h, h2, 1])})


def _pair_scores(net, x, y):
    """T(x_j, y_j) for aligned rows, shape (B,)."""
    import torch

    if "f" in net:
        return (net["f"](x) * net["g"](y)).sum(dim=1)
    return net["t"](torch.cat([x, y], dim=1))[:, 0]


def _matrix_scores(net, x, y):
    """T(x_i, y_k) for every pair, shape (B_x, B_y); the concat critic's first layer is split
    into its x and y parts so the input is never tiled."""
    import torch

    if "f" in net:
        return net["f"](x) @ net["g"](y).T
    t = net["t"]
    first = t[0]
    dx = x.shape[1]
    hx = x @ first.weight[:, :dx].T
    hy = y @ first.weight[:, dx:].T + first.bias
    out = []
    step = max(1, (1 << 22) // max(1, y.shape[0] * first.out_features))
    for i in range(0, x.shape[0], step):
        out.append(t[1:](hx[i:i + step, None, :] + hy[None, :, :])[..., 0])
    return out[0] if len(out) == 1 else torch.cat(out, dim=0)


# --- bounds on scores (float64, nats) ----------------------------------------------------------

def _blocks(m: int) -> list[np.ndarray]:
    """Positions 0..m-1 dealt into the fewest blocks of at most EVAL_BATCH (strided)."""
    n_blocks = max(1, -(-m // EVAL_BATCH))
    return [np.arange(b, m, n_blocks) for b in range(n_blocks)]


def _infonce_terms(blocks: list, a: float) -> tuple[float, float, float]:
    """InfoNCE of the rescaled critic a·T on score blocks (each (B, B), positives on the
    diagonal), and its first and second derivatives in a; all means over pairs, nats."""
    import torch

    g = g1 = g2 = 0.0
    m = sum(s.shape[0] for s in blocks)
    for s in blocks:
        b = s.shape[0]
        for i in range(0, b, _ROWS):
            rows = s[i:i + _ROWS].double()
            diag = torch.diagonal(s, offset=0)[i:i + _ROWS].double()
            z = a * rows
            lse = torch.logsumexp(z, dim=1)
            w = torch.exp(z - lse[:, None])
            mean = (w * rows).sum(dim=1)
            var = (w * (rows - mean[:, None]) ** 2).sum(dim=1)
            g += float((a * diag - lse + math.log(b)).sum())
            g1 += float((diag - mean).sum())
            g2 -= float(var.sum())
    return g / m, g1 / m, g2 / m


def _dv_terms(joint, marg, a: float) -> tuple[float, float, float]:
    """DV bound of a·T (joint and product-of-marginals scores) and its derivatives in a."""
    import torch

    j, q = joint.double(), marg.double()
    z = a * q
    lse = torch.logsumexp(z, dim=0)
    w = torch.exp(z - lse)
    mean = float((w * q).sum())
    var = float((w * (q - mean) ** 2).sum())
    jm = float(j.mean())
    return a * jm - (float(lse) - math.log(q.numel())), jm - mean, -var


def _nwj_raw(joint, marg) -> float:
    import torch

    q = marg.double()
    return float(joint.double().mean() - torch.exp(q - 1.0).mean())


def _maximize(terms: Callable[[float], tuple[float, float, float]]) -> tuple[float, float]:
    """(max over a >= 0 of the concave g(a), argmax): projected Newton with backtracking from
    a = 1; g(0) = 0, so the maximum is >= 0."""
    a = 1.0
    g, g1, g2 = terms(a)
    best = (g, a)
    for _ in range(60):
        if g2 < -1e-300:
            step = -g1 / g2
        else:
            step = math.copysign(max(a, 1.0), g1)
        new = max(0.0, a + step)
        for _ in range(40):
            ng, ng1, ng2 = terms(new)
            if ng >= g - 1e-15 * max(1.0, abs(g)):
                break
            new = 0.5 * (a + new)
        else:
            break
        done = abs(new - a) <= 1e-9 * max(1.0, a)
        a, g, g1, g2 = new, ng, ng1, ng2
        if g > best[0]:
            best = (g, a)
        if done or (a == 0.0 and g1 <= 0):
            break
    if best[0] <= 0.0:
        return 0.0, 0.0
    return best


def _derangements(m: int, seed: int) -> list[np.ndarray]:
    """MARGINAL_SHUFFLES seeded permutations of range(m) without fixed points: a random cycle
    order σ and shift s, π(σ_k) = σ_(k+s mod m)."""
    out = []
    for r in range(MARGINAL_SHUFFLES):
        gen = generator(seed, "null", "marginals", m, block=r)
        sigma = gen.permutation(m)
        shift = 1 + int(gen.integers(m - 1))
        pi = np.empty(m, dtype=np.int64)
        pi[sigma] = np.roll(sigma, -shift)
        out.append(pi)
    return out


def _check_pairs(ix, iy, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    ix = np.asarray(ix)
    iy = np.asarray(iy)
    for name, v in (("ix", ix), ("iy", iy)):
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be a 1-D integer index array, got dtype {v.dtype} and "
                            f"shape {v.shape}")
        if v.size and (v.min() < 0 or v.max() >= n_eval):
            raise ValueError(f"{name} indexes outside the {n_eval} evaluation samples")
    if ix.size != iy.size:
        raise ValueError(f"ix and iy must have the same length, got {ix.size} and {iy.size}")
    if ix.size < 2:
        raise ValueError(f"need at least 2 pairs to evaluate a bound, got {ix.size}")
    return ix.astype(np.int64), iy.astype(np.int64)


# --- the shared fit ----------------------------------------------------------------------------

def _options(kind: str, critic, bound, embed_dim, hidden, epochs, patience, batch_size, lr,
             clip, calibrate, progress) -> None:
    if critic not in CRITICS:
        raise ValueError(f"critic must be 'separable' or 'concat', got {critic!r}")
    if kind == "mine" and bound not in BOUNDS:
        raise ValueError(f"bound must be 'nwj' or 'dv', got {bound!r}")
    for name, v in (("embed_dim", embed_dim), ("epochs", epochs), ("patience", patience),
                    ("batch_size", batch_size)):
        check_int(name, v)
    if hidden is not None:
        check_int("hidden", hidden)
    check_number("lr", lr, positive=True)
    check_number("clip", clip, positive=True)
    for name, v in (("calibrate", calibrate), ("progress", progress)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} must be True or False, got {v!r}")


def _fit(kind: str, x, y, *, critic: str, bound: str, embed_dim: int, hidden: int | None,
         test_fraction: float, validation_fraction: float, epochs: int, patience: int,
         batch_size: int, lr: float, clip: float, calibrate: bool, seed: int, device: str,
         progress: bool) -> HeldOutFit:
    import torch

    seed = check_seed(seed)
    xs = as_samples("x", x)
    n = xs.shape[0]
    ys = as_samples("y", y, n)
    _options(kind, critic, bound, embed_dim, hidden, epochs, patience, batch_size, lr, clip,
             calibrate, progress)
    train, val, test = _split(n, test_fraction, validation_fraction, seed)
    if min(test.size, val.size) < 2:
        raise ValueError(f"{n} samples are too few: the held-out and validation sets need at "
                         f"least 2 samples each (got {test.size} and {val.size})")
    dev = torch_device(device)
    t0 = time.perf_counter()
    name = "InfoNCE" if kind == "infonce" else f"MINE ({bound.upper()})"
    sx, sy = _scaled(xs, clip), _scaled(ys, clip)
    details: dict[str, Any] = {"estimator": name, "critic": critic, "calibrate": calibrate,
                               "test_index": test}
    if kind == "infonce":
        details["cap_bits"] = _cap_bits(test.size)
    constant = [v for v, a in (("x", sx), ("y", sy)) if is_constant(a)]
    if constant:  # I(x; y) = 0 exactly: nothing to learn
        history = {"train_loss": [], "val_loss": [], "best_epoch": -1, "epochs_run": 0,
                   "stopped": "constant", "constant": constant, "seconds": 0.0}

        def zero(ix, iy):
            _check_pairs(ix, iy, test.size)
            return 0.0

        details.update(history=history, raw_bits=0.0, scale=0.0,
                       seconds=time.perf_counter() - t0)
        return HeldOutFit(mi=0.0, n_eval=int(test.size), evaluate=zero, details=details)

    tx = torch.from_numpy(sx).to(dev)
    ty = torch.from_numpy(sy).to(dev)
    train_idx = torch.from_numpy(train).to(dev)

    with seeded(seed, dev):
        net = _critic(critic, xs.shape[1], ys.shape[1], embed_dim, hidden).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        shuffle = torch.Generator().manual_seed(seed)

        def batches(epoch):
            order = train_idx[torch.randperm(train_idx.numel(), generator=shuffle).to(dev)]
            return (order[i:i + batch_size] for i in range(0, order.numel(), batch_size))

        if kind == "infonce":
            loss = _infonce_loss(net, tx, ty)
        else:
            loss = _mine_loss(net, tx, ty, bound)

        def validate(epoch):
            return -_bound_on(kind, bound, _Scores(net, tx, ty), val, val, 1.0, seed)[0]

        history = train_loop(net, opt, batches=batches, loss=loss, validate=validate,
                             epochs=epochs, patience=patience, progress=progress, desc=name)
    net.eval()
    with torch.no_grad():  # the held-out samples; the separable critic's embeddings, once
        at = torch.from_numpy(test).to(dev)
        held = _Scores(net, tx[at], ty[at], embedded=critic == "separable")
    scale_arg = None if calibrate else 1.0

    @torch.no_grad()
    def evaluate(ix, iy) -> float:
        ix, iy = _check_pairs(ix, iy, test.size)
        return float(_bound_on(kind, bound, held, ix, iy, scale_arg, seed)[0] / LN2)

    rows = np.arange(test.size)
    with torch.no_grad():
        raw = _bound_on(kind, bound, held, rows, rows, 1.0, seed)[0] / LN2
        value, scale = _bound_on(kind, bound, held, rows, rows, scale_arg, seed)
    mi = float(value / LN2)  # what evaluate(arange, arange) returns, bit for bit
    details.update(history=history, raw_bits=float(raw), scale=float(scale),
                   seconds=time.perf_counter() - t0)
    if kind == "mine":
        details.update(bound=bound, marginal_pairs=MARGINAL_SHUFFLES * int(test.size))
    return HeldOutFit(mi=mi, n_eval=int(test.size), evaluate=evaluate, details=details)


class _Scores:
    """A critic's scores on pairs of rows of (x, y): ``pair(ix, iy)`` T(x[ix_j], y[iy_j]) and
    ``matrix(ix, iy)`` T(x[ix_i], y[iy_k]). ``embedded``: the separable critic's embeddings
    f(x), g(y) are computed once here and re-evaluation needs no forward pass."""

    def __init__(self, net, x, y, *, embedded: bool = False):
        self.net, self.x, self.y = net, x, y
        self.fx = self.gy = None
        if embedded:
            self.fx, self.gy = net["f"](x), net["g"](y)
            self.x = self.y = None

    def _rows(self, a, idx):
        import torch

        return a[torch.from_numpy(idx).to(a.device)]

    def pair(self, ix, iy):
        if self.fx is not None:
            return (self._rows(self.fx, ix) * self._rows(self.gy, iy)).sum(dim=1)
        return _pair_scores(self.net, self._rows(self.x, ix), self._rows(self.y, iy))

    def matrix(self, ix, iy):
        if self.fx is not None:
            return self._rows(self.fx, ix) @ self._rows(self.gy, iy).T
        return _matrix_scores(self.net, self._rows(self.x, ix), self._rows(self.y, iy))


def _bound_on(kind: str, bound: str, scores: _Scores, ix: np.ndarray, iy: np.ndarray,
              scale: float | None, seed: int) -> tuple[float, float]:
    """(bound in nats, a) of the critic on the pairs (x[ix_j], y[iy_j]): the critic times
    ``scale``, or (None) times the best a >= 0. InfoNCE in strided blocks of <= EVAL_BATCH
    pairs; NWJ/DV with the MARGINAL_SHUFFLES seeded derangements as product of marginals."""
    import torch

    if kind == "infonce":
        blocks = [scores.matrix(ix[b], iy[b]) for b in _blocks(ix.size)]
        terms = lambda a: _infonce_terms(blocks, a)  # noqa: E731
    else:
        joint = scores.pair(ix, iy)
        marg = torch.cat([scores.pair(ix, iy[pi]) for pi in _derangements(ix.size, seed)])
        if scale is not None and bound == "nwj":
            return _nwj_raw(joint, marg), 1.0
        terms = lambda a: _dv_terms(joint, marg, a)  # noqa: E731
    if scale is not None:
        return terms(scale)[0], scale
    return _maximize(terms)


def _cap_bits(m: int) -> float:
    """The InfoNCE cap of m evaluated pairs: the pair-weighted mean of log2(block size)."""
    sizes, counts = np.unique([b.size for b in _blocks(m)], return_counts=True)
    if sizes.size == 1:
        return math.log2(int(sizes[0]))
    return float(sum(int(c * s) * math.log2(int(s)) for s, c in zip(sizes, counts)) / m)


def _infonce_loss(net, tx, ty):
    import torch

    def loss(b, epoch):
        s = _matrix_scores(net, tx[b], ty[b])
        return -(torch.diagonal(s) - torch.logsumexp(s, dim=1)).mean() - math.log(b.numel())

    return loss


def _mine_loss(net, tx, ty, bound: str):
    """The negated NWJ or DV bound of a batch; q from all off-diagonal pairs of the batch for
    the separable critic, from the batch's pairs shifted by one (x_j, y_j+1) for concat. DV:
    the value is the bound, its gradient MINE's, E_q[e^T] of the denominator replaced by a
    moving average (kept in log space)."""
    import torch

    state: dict[str, float] = {}

    def loss(b, epoch):
        x, y = tx[b], ty[b]
        k = b.numel()
        if "f" in net:
            s = _matrix_scores(net, x, y)
            joint = torch.diagonal(s)
            off = ~torch.eye(k, dtype=torch.bool, device=s.device)
            marg = s[off] if k > 1 else s.reshape(-1)
        else:
            joint = _pair_scores(net, x, y)
            marg = _pair_scores(net, x, y.roll(1, dims=0))
        if bound == "nwj":
            return -(joint.mean() - torch.exp(marg - 1.0).mean())
        lme = torch.logsumexp(marg, dim=0) - math.log(marg.numel())  # log E_q[e^T]
        cur = float(lme.detach())
        prev = state.get("log_ma")
        state["log_ma"] = cur if prev is None else float(np.logaddexp(
            math.log1p(-_EMA) + prev, math.log(_EMA) + cur))
        ratio = torch.exp(lme - state["log_ma"])  # E_q[e^T] / moving average; value ~1
        surrogate = lme.detach() + ratio - ratio.detach()  # value log E_q e^T, MINE's gradient
        return -(joint.mean() - surrogate)

    return loss


# --- public ------------------------------------------------------------------------------------

_DOC_OPTIONS = """
    ``test_fraction`` of the samples are held out for the estimate, ``validation_fraction`` of
    the rest decides early stopping (``patience`` epochs without a better validation bound;
    the best weights are kept). ``critic``: ``"separable"`` f(x)·g(y) with ``embed_dim``-wide
    embeddings or ``"concat"`` an MLP on [x, y]; ``hidden`` the first hidden width (default
    2·dim in [64, 512]). Inputs are z-scored and clipped to ±``clip``. ``calibrate``: the
    held-out value is that of the best rescaled critic a·T, a ≥ 0 (see the module docstring;
    False: the raw bound). Reproducible for a seed on the same device and thread count;
    ``device="auto"`` uses CUDA when torch sees it; ``progress`` shows a bar over epochs.
    Constant x or y: exactly 0 without training."""


def fit_infonce(
    x,
    y,
    *,
    critic: str = "separable",
    embed_dim: int = 32,
    hidden: int | None = None,
    test_fraction: float = 0.5,
    validation_fraction: float = 0.2,
    epochs: int = 300,
    patience: int = 30,
    batch_size: int = 512,
    lr: float = 1e-3,
    clip: float = 10.0,
    calibrate: bool = True,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> HeldOutFit:
    """InfoNCE lower bound on I(x; y), in bits, of a critic trained with in-batch negatives,
    evaluated on the held-out samples.

    Bound: ``mean_i [T(x_i, y_i) − log mean_k exp T(x_i, y_k)]`` over blocks of at most 4096
    held-out pairs (the block's other y's are the negatives), capped at log2(block size):
    ``details["cap_bits"]``, log2(n_eval) up to 4096 held-out samples. Biased low, strongly so
    as I approaches the cap; low variance. x (N, dx) and y (N, dy) are continuous (one-hot
    encode a label as float).
    """
    return _fit("infonce", x, y, critic=critic, bound="nwj", embed_dim=embed_dim, hidden=hidden,
                test_fraction=test_fraction, validation_fraction=validation_fraction,
                epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, clip=clip,
                calibrate=calibrate, seed=seed, device=device, progress=progress)


def infonce(x, y, **options) -> float:
    """:func:`fit_infonce`'s held-out estimate in bits (InfoNCE, capped at log2 of the
    evaluation block, at most 12 bits); ``options`` are :func:`fit_infonce`'s."""
    return fit_infonce(x, y, **options).mi


def fit_mine(
    x,
    y,
    *,
    bound: str = "nwj",
    critic: str = "concat",
    embed_dim: int = 32,
    hidden: int | None = None,
    test_fraction: float = 0.5,
    validation_fraction: float = 0.2,
    epochs: int = 300,
    patience: int = 30,
    batch_size: int = 512,
    lr: float = 1e-3,
    clip: float = 10.0,
    calibrate: bool = True,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> HeldOutFit:
    """MINE-style lower bound on I(x; y), in bits, evaluated on the held-out samples.

    ``bound="nwj"``: ``E_p[T] − e⁻¹ E_q[e^T]`` (unbiased for a fixed critic, no cap, variance
    growing like e^I); ``"dv"``: ``E_p[T] − log E_q[e^T]`` trained with MINE's moving-average
    gradient (slightly optimistic on finite samples). q, the product of the marginals: in
    training all off-diagonal pairs of a batch (separable critic) or the batch's pairs shifted
    by one (concat); on the held-out set 16 seeded derangements of its pairs. Calibrated (the
    default), both are evaluated as the DV bound of the best rescaled critic.
    """
    return _fit("mine", x, y, critic=critic, bound=bound, embed_dim=embed_dim, hidden=hidden,
                test_fraction=test_fraction, validation_fraction=validation_fraction,
                epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, clip=clip,
                calibrate=calibrate, seed=seed, device=device, progress=progress)


def mine(x, y, **options) -> float:
    """:func:`fit_mine`'s held-out estimate in bits (NWJ or DV, no cap); ``options`` are
    :func:`fit_mine`'s."""
    return fit_mine(x, y, **options).mi


fit_infonce.__doc__ = (fit_infonce.__doc__ or "") + _DOC_OPTIONS
fit_mine.__doc__ = (fit_mine.__doc__ or "") + _DOC_OPTIONS
