"""What the torch-trained models (VAE, transformer) share: training options, epoch budget."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._internal.checks import check_int
from .._internal.devices import torch_device
from .base import RepresentationModel

TRAINING_OPTIONS = ("epochs", "min_epochs", "batch_size", "lr", "validation_fraction",
                    "patience", "max_seconds", "device", "progress")


class TrainedModel(RepresentationModel):
    """A model trained by gradient descent with early stopping on a validation split."""

    # Epoch budget when epochs=None: round(BUDGET[0] / n_cells) clipped to
    # [min_epochs, BUDGET[1]], i.e. epochs inversely proportional to the cells, with a floor.
    BUDGET: ClassVar[tuple[float, int]]

    def _set_training(self, *, epochs, min_epochs, batch_size, lr, validation_fraction,
                      patience, max_seconds, device, progress, min_batch: int = 1) -> None:
        self.epochs = None if epochs is None else check_int("epochs", epochs)
        self.min_epochs = check_int("min_epochs", min_epochs)
        self.batch_size = check_int("batch_size", batch_size, min_batch)
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

    def _check_fit_shape(self, n_cells: int | None, n_genes: int | None) -> None:
        if n_cells is None:
            return
        held = int(round(n_cells * self.validation_fraction))  # as _internal.seeding.split
        train = n_cells - held
        if held < 1 or train < self.MIN_TRAINING_CELLS:
            raise ValueError(
                f"{self._what()}: {n_cells} cells are too few for a training and a validation "
                f"split: validation_fraction={self.validation_fraction:g} holds out {held} and "
                f"leaves {train} for training; it needs at least 1 validation and "
                f"{self.MIN_TRAINING_CELLS} training cell{'s' * (self.MIN_TRAINING_CELLS > 1)} "
                f"(use more cells or change validation_fraction)")

    def _training_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TRAINING_OPTIONS}

    def epoch_budget(self, n_cells: int) -> int:
        """Epochs for n_cells training cells: the given ``epochs``, or the budget rule."""
        if self.epochs is not None:
            return self.epochs
        total, cap = self.BUDGET
        return int(np.clip(round(total / max(n_cells, 1)), self.min_epochs, cap))
