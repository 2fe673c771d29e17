"""A variational autoencoder for UMI counts in the style of scVI (Lopez et al. 2018).

Encoder: log1p(counts of the HVGs) -> hidden layers (Linear, BatchNorm, ReLU, dropout) -> a
Gaussian posterior q(z | x) with ``n_dims`` dimensions; its mean is the embedding. Decoder:
z -> hidden -> softmax gene proportions ρ; the counts are negative binomial with mean
ℓ·ρ (ℓ: the cell's observed total over the HVGs) and one inverse dispersion θ per gene,
shared by all cells and learned with the weights (scVI's ``dispersion="gene"``), or
zero-inflated NB with per-cell-and-gene dropout logits (``likelihood="zinb"``). The loss is
−ELBO = −log p(x | z) + β·KL(q(z | x) ‖ N(0, I)) with β rising linearly from 0 to 1 over the
KL warm-up; Adam; the validation −ELBO (β = 1) decides early stopping, counted from the end of
the warm-up, and the best weights are kept. The validation cells are ``fit(validation=)``'s,
or else a seeded ``validation_fraction`` of the training cells. On a RowStream the minibatches
are read from the stream every epoch (``TrainedModel._stream_batches``).

Epoch budget (``epochs=None``): round(cell_epochs / n_cells) clipped to [min_epochs,
max_epochs], by default round(400 · 20,000 / n_cells) in [min_epochs, 400], the scVI heuristic
(epochs ∝ 1/N with a floor); ``cell_epochs=10**7, max_epochs=10**7, min_epochs=1`` is the
rule "max epochs = 10^7 / N" of Gowri, Yin & Klein. ``max_seconds`` caps the wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int
from .._internal.devices import torch_device
from ..io.streams import RowStream
from .preprocess import DEFAULT_N_GENES, select_hvg, select_hvg_stream
from .trained import TrainedModel
from .training import seeded, train


def log_nb(x, mu, theta, eps: float = 1e-8):
    """log NB(x; mean mu, inverse dispersion theta), elementwise."""
    import torch

    log_theta_mu = torch.log(theta + mu + eps)
    return (theta * (torch.log(theta + eps) - log_theta_mu)
            + x * (torch.log(mu + eps) - log_theta_mu)
            + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1.0))


def log_zinb(x, mu, theta, logits, eps: float = 1e-8):
    """log ZINB(x; mu, theta, dropout probability sigmoid(logits)), elementwise."""
    import torch
    from torch.nn.functional import softplus

    log_theta_mu = torch.log(theta + mu + eps)
    nb_zero = theta * (torch.log(theta + eps) - log_theta_mu)  # log NB(0)
    log_not_dropout = -softplus(logits)  # log(1 - pi), pi = sigmoid(logits)
    # log(pi + (1 - pi) NB(0)) = log(e^logits + NB(0)) - log(1 + e^logits)
    zero = torch.logaddexp(logits, nb_zero) + log_not_dropout
    nonzero = log_not_dropout + log_nb(x, mu, theta, eps)
    return torch.where(x < 0.5, zero, nonzero)


def _network(n_genes: int, n_dims: int, n_hidden: int, n_layers: int, dropout: float,
             zero_inflated: bool):
    import torch
    from torch import nn

    def stack(n_in: int, drop: float) -> nn.Sequential:
        layers: list = []
        for i in range(n_layers):
            layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden),
                       nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3), nn.ReLU()]
            if drop > 0:
                layers.append(nn.Dropout(drop))
        return nn.Sequential(*layers)

    net = nn.ModuleDict({
        "encoder": stack(n_genes, dropout),
        "mean": nn.Linear(n_hidden, n_dims),
        "log_var": nn.Linear(n_hidden, n_dims),
        "decoder": stack(n_dims, 0.0),
        "scale": nn.Linear(n_hidden, n_genes),
    })
    if zero_inflated:
        net["dropout"] = nn.Linear(n_hidden, n_genes)
    net.register_parameter("log_theta", nn.Parameter(torch.randn(n_genes)))
    return net


class VAE(TrainedModel):
    """scVI-style VAE with a negative binomial (or ZINB) likelihood; 16 latent dims."""

    name = "vae"
    BUDGET = (400 * 20_000, 400)  # scVI's rule
    MIN_TRAINING_CELLS = 2  # BatchNorm needs 2+ cells in a batch

    def __init__(
        self,
        n_dims: int = 16,
        n_top_genes: int = DEFAULT_N_GENES,
        *,
        likelihood: str = "nb",
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout: float = 0.1,
        epochs: int | None = None,
        min_epochs: int = 20,
        max_epochs: int | None = None,
        cell_epochs: int | None = None,
        kl_warmup: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        validation_fraction: float = 0.1,
        patience: int = 20,
        max_seconds: float | None = None,
        device: str = "auto",
        progress: bool = False,
    ):
        super().__init__()
        if likelihood not in ("nb", "zinb"):
            raise ValueError(f"likelihood must be 'nb' or 'zinb', got {likelihood!r}")
        self._n_dims = check_int("n_dims", n_dims)
        self.n_top_genes = check_int("n_top_genes", n_top_genes)
        self.likelihood = likelihood
        self.n_hidden = check_int("n_hidden", n_hidden)
        self.n_layers = check_int("n_layers", n_layers)
        self.dropout = float(dropout)
        self.kl_warmup = None if kl_warmup is None else check_int("kl_warmup", kl_warmup, 0)
        self.weight_decay = float(weight_decay)
        self._set_training(epochs=epochs, min_epochs=min_epochs, max_epochs=max_epochs,
                           cell_epochs=cell_epochs, batch_size=batch_size, lr=lr,
                           validation_fraction=validation_fraction, patience=patience,
                           max_seconds=max_seconds, device=device, progress=progress,
                           min_batch=2)  # BatchNorm needs 2+ cells
        self.hvg_: np.ndarray | None = None

    @property
    def n_dims(self) -> int:
        return self._n_dims

    def params(self) -> dict[str, Any]:
        keys = ("likelihood", "n_hidden", "n_layers", "dropout", "kl_warmup", "weight_decay")
        return {"n_dims": self._n_dims, "n_top_genes": self.n_top_genes,
                **{k: getattr(self, k) for k in keys}, **self._training_params()}

    # -- fitting ----------------------------------------------------------------------------
    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        import torch

        self.hvg_ = select_hvg(X, self.n_top_genes)
        train_X, val_X, apart = self._training_split(X, seed, validation)
        counts = sp.csr_matrix(train_X[:, self.hvg_])
        n_train = counts.shape[0]
        if counts.nnz == 0:
            self._nothing_to_train(n_train, apart)
        shuffle = torch.Generator().manual_seed(seed)
        drop_last = n_train % self.batch_size == 1  # BatchNorm needs 2+ cells per batch

        def batches(epoch):
            order = torch.randperm(n_train, generator=shuffle).numpy()
            stop = n_train - (1 if drop_last else 0)
            for i in range(0, stop, self.batch_size):
                yield counts[order[i:i + self.batch_size]]

        self._train(seed, n_train, sp.csr_matrix(val_X[:, self.hvg_]), batches)

    def _fit_stream(self, stream: RowStream, seed: int,
                    validation: sp.csr_matrix | None = None) -> None:
        """Minibatches read from the stream each epoch (:meth:`_stream_batches`)."""
        self.hvg_ = select_hvg_stream(stream, self.n_top_genes)
        part = self._stream_split(stream, seed, validation, self.hvg_)
        if not part.has_counts:
            self._nothing_to_train(part.n_train, part.apart)
        self._train(seed, part.n_train, part.validation,
                    lambda epoch: self._stream_batches(stream, self.hvg_, part.held, seed,
                                                       epoch))

    def _nothing_to_train(self, n_train: int, apart: str) -> None:
        raise ValueError(f"none of the {n_train} training cells ({apart}) has a count in the "
                         f"{len(self.hvg_)} selected genes: there is nothing to train on")

    def _train(self, seed: int, n_train: int, held: sp.csr_matrix,
               batches: Callable[[int], Iterable[sp.csr_matrix]]) -> None:
        """Train a new network on ``batches(epoch)`` (counts of the HVGs), early stopping on
        the validation counts ``held``."""
        import torch

        n_held = held.shape[0]
        dev = torch_device(self.device)
        epochs = self.epoch_budget(n_train)
        warmup = self.kl_warmup if self.kl_warmup is not None else max(1, epochs // 4)
        with seeded(seed, dev):
            net = _network(len(self.hvg_), self._n_dims, self.n_hidden, self.n_layers,
                           self.dropout, self.likelihood == "zinb").to(dev)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay,
                                   eps=0.01)

            def tensors(epoch):
                for counts in batches(epoch):
                    yield torch.from_numpy(counts.toarray()).to(dev)

            def loss(x, epoch):
                beta = min(1.0, epoch / warmup) if warmup > 0 else 1.0
                recon, kl = self._terms(net, x, sample=True)
                return (recon + beta * kl).mean()

            def validate(epoch):
                total = 0.0
                for i in range(0, n_held, 4096):
                    rows = np.arange(i, min(i + 4096, n_held))
                    recon, kl = self._terms(net, self._tensor(held, rows, dev), sample=False)
                    total += float((recon + kl).sum())
                return total / n_held

            self.history = train(net, opt, batches=tensors, loss=loss, validate=validate,
                                 epochs=epochs, patience=self.patience, patience_from=warmup,
                                 max_seconds=self.max_seconds, progress=self.progress,
                                 desc="VAE")
        self.history["kl_warmup"] = warmup
        self.history["epoch_budget"] = epochs
        self.history["training_cells"], self.history["validation_cells"] = n_train, n_held
        self._net = net.cpu().eval()

    @staticmethod
    def _tensor(counts: sp.csr_matrix, rows: np.ndarray, dev):
        import torch

        return torch.from_numpy(counts[rows].toarray()).to(dev)

    def _terms(self, net, x, *, sample: bool):
        """Per-cell reconstruction −log p(x | z) and KL; z sampled or the posterior mean."""
        import torch

        h = net["encoder"](torch.log1p(x))
        mean, log_var = net["mean"](h), net["log_var"](h).clamp(-20.0, 10.0)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean) if sample else mean
        d = net["decoder"](z)
        library = x.sum(dim=1, keepdim=True)
        mu = library * torch.softmax(net["scale"](d), dim=-1)
        theta = torch.exp(net.log_theta)
        if "dropout" in net:
            log_p = log_zinb(x, mu, theta, net["dropout"](d))
        else:
            log_p = log_nb(x, mu, theta)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1)
        return -log_p.sum(dim=1), kl

    def validation_elbo(self, counts, *, layer: str | None = None) -> float:
        """Mean −ELBO per cell (posterior mean z) of raw counts under the fitted model."""
        import torch

        from .base import CountsInput

        data = CountsInput(counts, layer)
        self._check_genes(data)
        sub = sp.csr_matrix(data.X[:, self.hvg_])
        total = 0.0
        with torch.no_grad():
            for i in range(0, sub.shape[0], 4096):
                rows = np.arange(i, min(i + 4096, sub.shape[0]))
                recon, kl = self._terms(self._net, self._tensor(sub, rows, "cpu"), sample=False)
                total += float((recon + kl).sum())
        return total / sub.shape[0]

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        import torch

        sub = sp.csr_matrix(X[:, self.hvg_])
        out = np.empty((sub.shape[0], self._n_dims), dtype=np.float32)
        with torch.no_grad():
            for i in range(0, sub.shape[0], 4096):
                rows = np.arange(i, min(i + 4096, sub.shape[0]))
                h = self._net["encoder"](torch.log1p(self._tensor(sub, rows, "cpu")))
                out[rows] = self._net["mean"](h).numpy()
        return out

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        import torch

        return {"hvg": torch.from_numpy(self.hvg_), "net": self._net.state_dict()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.hvg_ = state["hvg"].numpy()
        net = _network(len(self.hvg_), self._n_dims, self.n_hidden, self.n_layers, self.dropout,
                       self.likelihood == "zinb")
        net.load_state_dict(state["net"])
        self._net = net.eval()
