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
cell without expressed genes still has one). On a RowStream the batches are read and tokenized
from the stream every epoch, and the gene medians are found exactly in a few passes
(:func:`stream_gene_medians`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int
from .._internal.devices import torch_device
from ..io.streams import RowStream
from .preprocess import DEFAULT_N_GENES, select_hvg, select_hvg_stream
from .trained import TrainedModel
from .training import seeded, train

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
    """Per gene, the median of its normalized (to 1e4) values over the cells expressing it
    (1 for a gene no cell expresses)."""
    norm = _normalized(X).tocsc()
    med = np.ones(X.shape[1])
    for g in range(X.shape[1]):
        vals = norm.data[norm.indptr[g]:norm.indptr[g + 1]]
        if vals.size:
            med[g] = np.median(vals)
    return med


def _normalized(X: sp.csr_matrix) -> sp.csr_matrix:
    """Each cell scaled to 1e4 counts over X's genes (in X's float dtype); row by row, so a
    chunk of cells gives the rows of the whole matrix."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1e4 / np.maximum(totals, 1.0)) @ X)


#: Sub-ranges a pass of :func:`stream_gene_medians` splits each range into (2**RADIX_BITS).
RADIX_BITS = 10


def stream_gene_medians(chunks: Callable[[], Iterable[sp.csr_matrix]], n_genes: int, *,
                        max_candidates: int = 1 << 24) -> np.ndarray:
    """:func:`gene_medians` of the rows of ``chunks()`` (called once per pass), exactly,
    without holding the values: a radix selection of the one or two middle values of each
    gene.

    Positive floats order as their bit patterns, so each wanted order statistic lies in a
    range of patterns, at first all of them. A pass counts, per gene, the values in each of
    2**RADIX_BITS equal parts of its ranges and narrows each range to the part holding its
    statistic; once the values left in the ranges number at most ``max_candidates`` (or each
    range is a single pattern) one more pass collects them and picks the statistics. Two or
    three passes in practice. Two middle values are averaged in their dtype, as np.median.
    """
    lo = np.zeros((2, n_genes), dtype=np.int64)  # each statistic's range: [lo, lo + 2**width)
    rank = np.zeros((2, n_genes), dtype=np.int64)  # its rank among the values in its range
    counted, dtype, width = None, None, None
    while True:
        hist = None
        for genes, values in _gene_values(chunks):
            if dtype is None:
                dtype = values.dtype
                width = 8 * dtype.itemsize - 1  # patterns of positive floats: [0, 2**width)
            if hist is None:
                shift = max(width - RADIX_BITS, 0)
                parts = 1 << (width - shift)
                hist = np.zeros((2, n_genes * parts), dtype=np.int64)
            bits = _bits(values)
            for s in range(1 if counted is None else 2):  # first pass: one range for both
                part = (bits - lo[s, genes]) >> shift
                inside = (bits >= lo[s, genes]) & (part < parts)
                hist[s] += np.bincount(genes[inside] * parts + part[inside],
                                       minlength=n_genes * parts)
        if hist is None:  # no cells
            return np.ones(n_genes)
        if counted is None:
            hist[1] = hist[0]
            counted = hist[0].reshape(n_genes, parts).sum(axis=1)
            rank[0], rank[1] = (counted - 1) // 2, counted // 2
        left, every = 0, np.arange(n_genes)
        for s in range(2):
            per_gene = hist[s].reshape(n_genes, parts)
            cum = per_gene.cumsum(axis=1)
            part = np.minimum((cum <= rank[s][:, None]).sum(axis=1), parts - 1)
            rank[s] -= np.where(part > 0, cum[every, part - 1], 0)
            lo[s] += part << shift
            left += int(per_gene[every, part].sum())
        width = shift
        if width == 0 or left <= max_candidates:
            break
    found = lo.copy()  # a range of one pattern is its value
    expressed = counted > 0
    if width > 0:
        kept: list[list[tuple[np.ndarray, np.ndarray]]] = [[], []]
        for genes, values in _gene_values(chunks):
            bits = _bits(values)
            for s in range(2):
                inside = (bits >= lo[s, genes]) & ((bits - lo[s, genes]) >> width == 0)
                kept[s].append((genes[inside], bits[inside]))
        for s in range(2):
            genes = np.concatenate([g for g, _ in kept[s]])
            bits = np.concatenate([b for _, b in kept[s]])
            order = np.lexsort((bits, genes))
            start = np.searchsorted(genes[order], every)
            found[s, expressed] = bits[order][start[expressed] + rank[s, expressed]]
    middle = found.astype(np.dtype(f"int{8 * dtype.itemsize}")).view(dtype)
    med = np.ones(n_genes)
    odd, even = counted % 2 == 1, expressed & (counted % 2 == 0)
    med[odd] = middle[0, odd]
    med[even] = (middle[0, even] + middle[1, even]) / 2
    return med


def _gene_values(chunks: Callable[[], Iterable[sp.csr_matrix]]
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(gene, value) of every stored normalized value, chunk by chunk."""
    for X in chunks():
        norm = _normalized(X)
        yield norm.indices.astype(np.int64), norm.data


def _bits(values: np.ndarray) -> np.ndarray:
    """The bit patterns of floats, as int64 (ordered as the values when positive)."""
    return values.view(np.dtype(f"int{8 * values.dtype.itemsize}")).astype(np.int64)


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

        self.hvg_ = select_hvg(X, self.n_top_genes)
        self.medians_ = gene_medians(sp.csr_matrix(X[:, self.hvg_]))
        train_X, val_X, apart = self._training_split(X, seed, validation)
        tokens = torch.from_numpy(self._tokens(train_X))
        val_tok = torch.from_numpy(self._tokens(val_X))
        n_train = tokens.shape[0]
        if not (tokens[:, 1:] != PAD).any():
            self._nothing_to_train(n_train, apart)
        gen = torch.Generator().manual_seed(seed)

        def batches(epoch):
            order = torch.randperm(n_train, generator=gen)
            for i in range(0, order.numel(), self.batch_size):
                yield tokens[order[i:i + self.batch_size]]

        self._train(seed, n_train, val_tok, batches, gen)

    def _fit_stream(self, stream: RowStream, seed: int,
                    validation: sp.csr_matrix | None = None) -> None:
        """Minibatches read from the stream each epoch (:meth:`_stream_batches`), tokenized
        as they come; the gene medians by :func:`stream_gene_medians`."""
        import torch

        self.hvg_ = hvg = select_hvg_stream(stream, self.n_top_genes)
        self.medians_ = stream_gene_medians(lambda: (X[:, hvg] for X in stream.chunks()),
                                            len(hvg))
        part = self._stream_split(stream, seed, validation, hvg)
        if not part.has_counts:  # every training cell would be [CLS] alone
            self._nothing_to_train(part.n_train, part.apart)

        def batches(epoch):
            for counts in self._stream_batches(stream, hvg, part.held, seed, epoch):
                yield torch.from_numpy(rank_tokens(counts, self.medians_, self.max_len))

        val_tok = torch.from_numpy(rank_tokens(part.validation, self.medians_, self.max_len))
        self._train(seed, part.n_train, val_tok, batches, torch.Generator().manual_seed(seed))

    def _nothing_to_train(self, n_train: int, apart: str) -> None:
        raise ValueError(f"none of the {n_train} training cells ({apart}) has a count in the "
                         f"{len(self.hvg_)} selected genes: no gene tokens to train on")

    def _train(self, seed: int, n_train: int, val_tok, batches: Callable[[int], Iterable],
               gen) -> None:
        """Pre-train a new network on the token batches ``batches(epoch)``, masked with the
        torch generator ``gen``; early stopping on the validation tokens ``val_tok``."""
        import torch
        from torch.nn.functional import cross_entropy

        n_held = val_tok.shape[0]
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
            # Fixed masks for the validation cells, so the validation loss is comparable.
            val_in, val_target = self._mask(val_tok, vocab, torch.Generator().manual_seed(seed + 1))

            def masked(epoch):
                for tok in batches(epoch):
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

            self.history = train(net, opt, batches=masked, loss=loss, validate=validate,
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
