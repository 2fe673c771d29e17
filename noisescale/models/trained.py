"""What the torch-trained models (VAE, transformer) share: training options, epoch budget,
the training / validation cells, in memory or from a RowStream (minibatches out of core)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp

from .._internal.checks import check_int
from .._internal.devices import torch_device
from .._internal.seeding import derive_seed, split
from ..io.streams import RowStream
from .base import RepresentationModel


TRAINING_OPTIONS = ("epochs", "min_epochs", "max_epochs", "cell_epochs", "batch_size", "lr",
                    "validation_fraction", "patience", "max_seconds", "device", "progress")


class StreamSplit(NamedTuple):
    """The training and validation cells of a RowStream fit (see
    :meth:`TrainedModel._stream_split`)."""

    held: np.ndarray | None  # (n_cells,) bool: stream rows held out for validation, or None
    validation: sp.csr_matrix  # the validation cells' counts of the selected genes
    n_train: int
    apart: str  # how the validation cells were set apart, for messages
    has_counts: bool  # whether the training cells have a count in the selected genes


class TrainedModel(RepresentationModel):
    """A model trained by gradient descent with early stopping on validation cells: those of
    ``fit(validation=)``, or else a seeded ``validation_fraction`` of the training cells."""

    # Epoch budget when epochs=None: round(cell_epochs / n_cells) clipped to
    # [min_epochs, max_epochs], i.e. epochs inversely proportional to the cells, with a floor
    # and a cap. BUDGET = (cell_epochs, max_epochs) when the constructor leaves them None.
    BUDGET: ClassVar[tuple[float, int]]

    def _set_training(self, *, epochs, min_epochs, max_epochs, cell_epochs, batch_size, lr,
                      validation_fraction, patience, max_seconds, device, progress,
                      min_batch: int = 1) -> None:
        self.epochs = None if epochs is None else check_int("epochs", epochs)
        self.min_epochs = check_int("min_epochs", min_epochs)
        self.max_epochs = None if max_epochs is None else check_int("max_epochs", max_epochs)
        if self.max_epochs is not None and self.max_epochs < self.min_epochs:
            raise ValueError(f"max_epochs ({max_epochs}) must be >= min_epochs ({min_epochs})")
        self.cell_epochs = None if cell_epochs is None else check_int("cell_epochs",
                                                                      cell_epochs)
        self.batch_size = check_int("batch_size", batch_size, min_batch)
        self._min_batch = min_batch
        self.lr = float(lr)
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got "
                             f"{validation_fraction!r}")
        self.validation_fraction = float(validation_fraction)
        self.patience = check_int("patience", patience)
        if max_seconds is not None and not max_seconds >= 0:
            raise ValueError(f"max_seconds must be >= 0 or None, got {max_seconds!r}")
        self.max_seconds = max_seconds
        torch_device(device)
        self.device, self.progress = device, bool(progress)
        self._net = None

    #: The fewest training cells a fit can use (after the validation split).
    MIN_TRAINING_CELLS: ClassVar[int] = 1

    def _check_fit_shape(self, n_cells: int | None, n_genes: int | None,
                         n_validation: int | None = None) -> None:
        if n_cells is None:
            return
        if n_validation is not None:  # every cell trains; fit(validation=) validates
            if n_cells < self.MIN_TRAINING_CELLS:
                raise ValueError(f"{self._what()} needs at least {self.MIN_TRAINING_CELLS} "
                                 f"training cells, got {n_cells}")
            return
        held = int(round(n_cells * self.validation_fraction))  # as _internal.seeding.split
        train = n_cells - held
        if held < 1 or train < self.MIN_TRAINING_CELLS:
            raise ValueError(
                f"{self._what()}: {n_cells} cells are too few for a training and a validation "
                f"split: validation_fraction={self.validation_fraction:g} holds out {held} and "
                f"leaves {train} for training; it needs at least 1 validation and "
                f"{self.MIN_TRAINING_CELLS} training cell{'s' * (self.MIN_TRAINING_CELLS > 1)} "
                f"(use more cells, change validation_fraction or pass fit(validation=))")

    def _training_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TRAINING_OPTIONS}

    def epoch_budget(self, n_cells: int) -> int:
        """Epochs for n_cells training cells: the given ``epochs``, or the budget rule
        round(cell_epochs / n_cells) clipped to [min_epochs, max_epochs] (each None: the
        model's BUDGET)."""
        if self.epochs is not None:
            return self.epochs
        total = self.BUDGET[0] if self.cell_epochs is None else self.cell_epochs
        cap = self.BUDGET[1] if self.max_epochs is None else self.max_epochs
        return int(np.clip(round(total / max(n_cells, 1)), self.min_epochs, cap))

    def _training_split(self, X: sp.csr_matrix, seed: int, validation: sp.csr_matrix | None
                        ) -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
        """(training counts, validation counts, a note for messages): all of X and the given
        ``validation``, or else X's rows split (seeded) with ``validation_fraction`` held out.
        The early stopping and the epoch budget see only these two sets."""
        if validation is not None:
            return X, validation, f"{validation.shape[0]} given validation cells apart"
        keep, held = split(X.shape[0], self.validation_fraction, seed, "validation")
        assert keep.size >= self.MIN_TRAINING_CELLS and held.size >= 1  # check_fit_shape
        return X[keep], X[held], f"the {held.size} validation cells left out"

    def _stream_split(self, stream: RowStream, seed: int, validation: sp.csr_matrix | None,
                      genes: np.ndarray) -> StreamSplit:
        """:meth:`_training_split` of a stream, columns ``genes`` only: all of its cells train
        and ``validation`` validates, or else the same seeded ``validation_fraction`` of its
        rows is collected into memory (in one pass, in stream order) and skipped in
        training."""
        if validation is not None:  # genes were selected among those the training cells have
            return StreamSplit(None, sp.csr_matrix(validation[:, genes]), stream.n_cells,
                               f"{validation.shape[0]} given validation cells apart", True)
        keep, held = split(stream.n_cells, self.validation_fraction, seed, "validation")
        assert keep.size >= self.MIN_TRAINING_CELLS and held.size >= 1  # check_fit_shape
        mask = np.zeros(stream.n_cells, dtype=bool)
        mask[held] = True
        parts, nnz = [], 0
        for positions, X in stream.chunks(with_positions=True):
            sub, out = sp.csr_matrix(X[:, genes]), mask[positions]
            parts.append(sub[out])
            nnz += sub[~out].nnz
        return StreamSplit(mask, sp.csr_matrix(sp.vstack(parts, format="csr")), keep.size,
                           f"the {held.size} validation cells left out", nnz > 0)

    def _stream_batches(self, stream: RowStream, genes: np.ndarray, held: np.ndarray | None,
                        seed: int, epoch: int) -> Iterator[sp.csr_matrix]:
        """One epoch's minibatches (columns ``genes``) of ``batch_size`` training cells: the
        stream's chunks in a seeded order, their rows shuffled, held rows skipped; cells
        left over at a chunk's end join the next chunk's, and a last batch smaller than the
        model's smallest (2 with BatchNorm) is dropped."""
        size, pending, n = self.batch_size, [], 0
        for positions, X in stream.chunks(seed=derive_seed(seed, "stream", "epoch", epoch),
                                           with_positions=True):
            if held is not None:
                X = X[~held[positions]]
            pending.append(sp.csr_matrix(X[:, genes]))
            n += X.shape[0]
            if n >= size:
                block = sp.vstack(pending, format="csr") if len(pending) > 1 else pending[0]
                cut = n - n % size
                for i in range(0, cut, size):
                    yield block[i:i + size]
                pending, n = [block[cut:]], n - cut
        if n >= self._min_batch:
            yield sp.vstack(pending, format="csr") if len(pending) > 1 else pending[0]
