"""A small transformer on rank-ordered gene tokens (Geneformer-style rank-value encoding).

Tokens: each cell is normalized to 10,000 counts; every gene is divided by its median over the
training cells where it is expressed (so ubiquitous genes do not dominate), and the cell becomes
the sequence of its expressed genes ordered by that value, highest first, cut to ``max_len``
tokens ([CLS] included, so ``max_len`` - 1 genes at most) and padded. The vocabulary is the
HVGs chosen on the training cells (seurat_v3).

Model: gene-token embedding + learned rank-position embedding -> a pre-norm transformer encoder
(2 layers, 4 heads, width 128, feed-forward ``ff_width`` = 2 · width, ReLU by default) -> a
linear head over the vocabulary. Pre-training masks 15 % of each cell's tokens (80 % replaced by
[MASK], 10 % by a random gene, 10 % kept) and minimizes the cross-entropy of the masked genes
with AdamW, at a constant learning rate by default or after ``warmup_steps`` of linear warm-up
and/or with linear decay to 0 (``lr_schedule="linear"``, as transformers'
``get_linear_schedule_with_warmup``); the masked-gene loss on validation cells
(``fit(validation=)``'s, or else a seeded split) decides early stopping. The embedding is the
mean of the final layer over a cell's non-padding tokens (a leading [CLS] token included, so a
cell without expressed genes still has one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int
from .._internal.devices import torch_device
from .training import seeded, train
from .preprocess import DEFAULT_N_GENES, select_hvg
from .trained import TrainedModel

PAD, MASK, CLS, N_SPECIAL = 0, 1, 2, 3
ACTIVATIONS = ("relu", "gelu")
LR_SCHEDULES = ("constant", "linear")


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """The learning rate of optimizer step ``step`` (0-based) as a fraction of ``lr``: rising
    linearly from 0 over ``warmup_steps`` steps, then 1 (``"constant"``) or falling linearly
    to 0 at step ``total_steps`` (``"linear"``), as transformers'
    ``get_constant_schedule_with_warmup`` and ``get_linear_schedule_with_warmup``."""
    if step < warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def gene_medians(X: sp.csr_matrix) -> np.ndarray:
    """Per gene, the median of its normalized (to 1e4) values over the cells expressing it."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    norm = sp.csr_matrix(sp.diags(1e4 / np.maximum(totals, 1.0)) @ X).tocsc()
    med = np.ones(X.shape[1])
    for g in range(X.shape[1]):
        vals = norm.data[norm.indptr[g]:norm.indptr[g + 1]]
        if vals.size:
            med[g] = np.median(vals)
    return med


def rank_tokens(X: sp.csr_matrix, medians: np.ndarray, max_len: int) -> np.ndarray:
    """(n_cells, max_len) int64 tokens: CLS, then genes (id + N_SPECIAL) by decreasing
    normalized value (ties by gene index), then PAD. CLS keeps a cell without expressed genes
    from being all padding."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    tokens = np.full((X.shape[0], max_len), PAD, dtype=np.int64)
    tokens[:, 0] = CLS
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        genes, vals = X.indices[lo:hi], X.data[lo:hi]
        keep = vals > 0
        genes, vals = genes[keep], vals[keep] * (1e4 / max(totals[i], 1.0)) / medians[genes[keep]]
        order = np.lexsort((genes, -vals))[:max_len - 1]
        tokens[i, 1:1 + order.size] = genes[order] + N_SPECIAL
    return tokens


def _network(vocab: int, max_len: int, width: int, n_layers: int, n_heads: int, dropout: float,
             ff_width: int, activation: str):
    import torch
    from torch import nn

    class RankTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(vocab, width, padding_idx=PAD)
            self.positions = nn.Parameter(0.02 * torch.randn(max_len, width))
            layer = nn.TransformerEncoderLayer(width, n_heads, dim_feedforward=ff_width,
                                               dropout=dropout, activation=activation,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab)

        def hidden(self, tok):
            h = self.tokens(tok) + self.positions[: tok.shape[1]]
            return self.norm(self.encoder(h, src_key_padding_mask=tok == PAD))

        def pooled(self, tok):
            h = self.hidden(tok)
            mask = (tok != PAD).unsqueeze(-1).to(h.dtype)
            return (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    return RankTransformer()


class Transformer(TrainedModel):
    """Rank-token transformer pre-trained by masked gene prediction; mean-pooled embedding.

    ``max_len``: tokens per cell, the leading [CLS] included (Geneformer's input size).
    ``width``: hidden size, also the embedding's dimensions. ``ff_width``: the feed-forward
    (intermediate) size of each layer, None for 2 · width. ``activation``: of the feed-forward
    layers, "relu" or "gelu". ``warmup_steps``: optimizer steps of linear learning rate
    warm-up from 0 (0: none). ``lr_schedule``: "constant" after the warm-up, or "linear"
    decay to 0 over the planned steps (epoch budget x batches per epoch; early stopping may
    end training before). Epoch budget (``epochs=None``): round(cell_epochs / n_cells) in
    [min_epochs, max_epochs], by default round(20 · 10,000 / n_cells) in [min_epochs, 20].
    """

    name = "transformer"
    # round(20 · 10,000 / cells) epochs in [min_epochs, 20]: on a CPU an epoch of 2,500 cells
    # takes ~15 s
    BUDGET = (20 * 10_000, 20)

    def __init__(
        self,
        n_top_genes: int = DEFAULT_N_GENES,
        *,
        max_len: int = 128,
        width: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        ff_width: int | None = None,
        activation: str = "relu",
        dropout: float = 0.1,
        mask_fraction: float = 0.15,
        epochs: int | None = None,
        min_epochs: int = 3,
        max_epochs: int | None = None,
        cell_epochs: int | None = None,
        batch_size: int = 64,
        lr: float = 3e-4,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        validation_fraction: float = 0.1,
        patience: int = 5,
        max_seconds: float | None = None,
        device: str = "auto",
        progress: bool = False,
    ):
        super().__init__()
        self.n_top_genes = check_int("n_top_genes", n_top_genes)
        self.max_len = check_int("max_len", max_len, 2)
        self.width = check_int("width", width)
        self.n_layers = check_int("n_layers", n_layers)
        self.n_heads = check_int("n_heads", n_heads)
        if self.width % self.n_heads:
            raise ValueError(f"width ({width}) must be a multiple of n_heads ({n_heads})")
        self.ff_width = None if ff_width is None else check_int("ff_width", ff_width)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.activation = activation
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be 'constant' or 'linear', got "
                             f"{lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.dropout = float(dropout)
        if not 0 < mask_fraction < 1:
            raise ValueError(f"mask_fraction must be in (0, 1), got {mask_fraction!r}")
        self.mask_fraction = float(mask_fraction)
        self._set_training(epochs=epochs, min_epochs=min_epochs, max_epochs=max_epochs,
                           cell_epochs=cell_epochs, batch_size=batch_size, lr=lr,
                           validation_fraction=validation_fraction, patience=patience,
                           max_seconds=max_seconds, device=device, progress=progress)
        self.hvg_: np.ndarray | None = None
        self.medians_: np.ndarray | None = None

    @property
    def n_dims(self) -> int:
        return self.width

    def params(self) -> dict[str, Any]:
        keys = ("max_len", "width", "n_layers", "n_heads", "ff_width", "activation",
                "dropout", "mask_fraction", "warmup_steps", "lr_schedule")
        return {"n_top_genes": self.n_top_genes, **{k: getattr(self, k) for k in keys},
                **self._training_params()}

    def _network(self, vocab: int):
        return _network(vocab, self.max_len, self.width, self.n_layers, self.n_heads,
                        self.dropout, 2 * self.width if self.ff_width is None else self.ff_width,
                        self.activation)

    def _tokens(self, X: sp.csr_matrix) -> np.ndarray:
        return rank_tokens(sp.csr_matrix(X[:, self.hvg_]), self.medians_, self.max_len)

    def _fit(self, X: sp.csr_matrix, seed: int,
             validation: sp.csr_matrix | None = None) -> None:
        import torch
        from torch.nn.functional import cross_entropy

        self.hvg_ = select_hvg(X, self.n_top_genes)
        self.medians_ = gene_medians(sp.csr_matrix(X[:, self.hvg_]))
        train_X, val_X, apart = self._training_split(X, seed, validation)
        tokens = torch.from_numpy(self._tokens(train_X))
        val_tok = torch.from_numpy(self._tokens(val_X))
        n_train, n_held = tokens.shape[0], val_tok.shape[0]
        if not (tokens[:, 1:] != PAD).any():
            raise ValueError(f"none of the {n_train} training cells ({apart}) has a count in "
                             f"the {len(self.hvg_)} selected genes: no gene tokens to train on")
        vocab = len(self.hvg_) + N_SPECIAL
        dev = torch_device(self.device)
        epochs = self.epoch_budget(n_train)
        with seeded(seed, dev):
            net = self._network(vocab).to(dev)
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=0.01)
            scheduler = None
            if self.warmup_steps > 0 or self.lr_schedule != "constant":
                total = epochs * -(-n_train // self.batch_size)  # planned optimizer steps
                scheduler = torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda step: lr_factor(step, self.warmup_steps, total,
                                                self.lr_schedule))
            gen = torch.Generator().manual_seed(seed)
            # Fixed masks for the validation cells, so the validation loss is comparable.
            val_in, val_target = self._mask(val_tok, vocab, torch.Generator().manual_seed(seed + 1))

            def batches(epoch):
                order = torch.randperm(n_train, generator=gen)
                for i in range(0, order.numel(), self.batch_size):
                    tok = tokens[order[i:i + self.batch_size]]
                    inp, target = self._mask(tok, vocab, gen)
                    yield inp.to(dev), target.to(dev)

            def loss(batch, epoch):
                inp, target = batch
                sel = target != -100  # the head runs on masked positions only
                return cross_entropy(net.head(net.hidden(inp)[sel]), target[sel])

            def validate(epoch):
                total, count = 0.0, 0
                for i in range(0, n_held, 256):
                    inp, target = val_in[i:i + 256].to(dev), val_target[i:i + 256].to(dev)
                    sel = target != -100
                    total += float(cross_entropy(net.head(net.hidden(inp)[sel]), target[sel],
                                                 reduction="sum"))
                    count += int(sel.sum())
                return total / max(count, 1)

            self.history = train(net, opt, batches=batches, loss=loss, validate=validate,
                                 epochs=epochs, patience=self.patience,
                                 max_seconds=self.max_seconds, progress=self.progress,
                                 desc="transformer", scheduler=scheduler)
        self.history["epoch_budget"] = epochs
        self.history["training_cells"], self.history["validation_cells"] = n_train, n_held
        self._net = net.cpu().eval()

    def _mask(self, tok, vocab: int, gen):
        """BERT-style masking of non-padding tokens; targets are -100 where not masked."""
        import torch

        real = (tok != PAD) & (tok != CLS)
        chosen = (torch.rand(tok.shape, generator=gen) < self.mask_fraction) & real
        # every cell with genes gets at least one masked position (its first gene)
        none = real.any(dim=1) & ~chosen.any(dim=1)
        chosen[none, 1] = True
        target = torch.where(chosen, tok, torch.full_like(tok, -100))
        roll = torch.rand(tok.shape, generator=gen)
        random_genes = torch.randint(N_SPECIAL, vocab, tok.shape, generator=gen)
        inp = torch.where(chosen & (roll < 0.8), torch.full_like(tok, MASK), tok)
        inp = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_genes, inp)
        return inp, target

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        import torch

        tokens = torch.from_numpy(self._tokens(X))
        out = np.empty((tokens.shape[0], self.width), dtype=np.float32)
        with torch.no_grad():
            for i in range(0, tokens.shape[0], 512):
                out[i:i + 512] = self._net.pooled(tokens[i:i + 512]).numpy()
        return out

    def _state(self) -> dict[str, Any]:
        import torch

        return {"hvg": torch.from_numpy(self.hvg_), "medians": torch.from_numpy(self.medians_),
                "net": self._net.state_dict()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.hvg_ = state["hvg"].numpy()
        self.medians_ = state["medians"].numpy()
        net = self._network(len(self.hvg_) + N_SPECIAL)
        net.load_state_dict(state["net"])
        self._net = net.eval()
