"""Finite or failed: training whose loss or weights stop being finite numbers ends with an error.

A learning rate far too high (``optimizer.lr=1e9``) makes the loss NaN within a few steps, and every
weight after it; without a check such a run finishes, writes NaN metrics and moves ``latest`` to a
model that computes NaN everywhere. :class:`FiniteTraining` stops it instead: the run then has no
``metrics.json`` (a failed run, which ``latest`` never names), and the error says what diverged and the
fix. Lightning's ``detect_anomaly`` is not needed for that, and would slow every step.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from convlens.config import ConfigError
from convlens.untrusted import non_finite


class DivergedError(ConfigError):
    """Training diverged (a non-finite loss or weights); the fix is in the config: a lower learning rate."""


class FiniteTraining(pl.Callback):
    """Checks every batch's training loss and, when training ends, the weights; raises
    :class:`DivergedError` at the first check that finds a non-finite number.

    The loss is checked on its device and read by the host only every ``trainer.log_every_n_steps``
    batches and at each epoch's end, when the module reads its values anyway: no extra wait for the GPU.
    ``lr`` is the configured ``optimizer.lr``, for the message.
    """

    def __init__(self, lr: float | None) -> None:
        self.lr = lr
        self._finite: Tensor | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        finite = torch.isfinite(loss.detach()).all()
        self._finite = finite if self._finite is None else self._finite & finite
        if batch_idx % trainer.log_every_n_steps == 0:
            self._check_loss(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_loss(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        diverged = non_finite(pl_module.state_dict())
        if diverged:
            shown = ", ".join(diverged[:3]) + (", ..." if len(diverged) > 3 else "")
            message = f"training diverged: {len(diverged)} weight tensors are NaN or infinite ({shown}). "
            raise DivergedError(message + self._fix())

    def _check_loss(self, trainer: pl.Trainer) -> None:
        if self._finite is not None and not bool(self._finite):
            raise DivergedError(
                f"training diverged: the training loss became NaN or infinite by step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}). " + self._fix()
            )

    def _fix(self) -> str:
        lower = f" (now {self.lr:g}; try {self.lr / 10:g})" if self.lr else ""
        return (
            f"Train again with a lower optimizer.lr{lower}. The run keeps its checkpoints but gets no metrics.json: "
            "it failed, and `latest` still names the last finished run."
        )
