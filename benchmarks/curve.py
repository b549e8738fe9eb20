"""A Lightning callback that records the accuracy curve of a training run against wall time and stops
training before a time budget runs out (time_to_accuracy.py adds it to a run through the config)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn


class EpochCurve(pl.Callback):
    """Writes ``path`` (JSON) after every validation: per epoch the wall time since the start of
    ``fit``, the validation accuracy and loss, the learning rate and the training images/s of that epoch
    (training batches only, validation excluded). Stops after the epoch when one more epoch of the same
    length would end past ``time_budget_s`` seconds of training."""

    def __init__(self, path: str, time_budget_s: float | None = None) -> None:
        self.path = Path(path)
        self.time_budget_s = time_budget_s
        self.epochs: list[dict[str, Any]] = []
        self.fit_started = self.epoch_started = self.train_seconds = 0.0
        self.train_images = 0

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.fit_started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.epoch_started = time.perf_counter()
        self.train_images = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.train_images += len(batch[1])

    def on_validation_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.train_seconds = time.perf_counter() - self.epoch_started

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """After the module's own epoch-end hook has logged val/acc (callbacks' epoch-end hooks run first)."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:  # not the final trainer.validate()
            return
        metrics = trainer.callback_metrics
        now = time.perf_counter()
        self.epochs.append(
            {
                "epoch": trainer.current_epoch + 1,
                "seconds": round(now - self.fit_started, 2),
                "epoch_seconds": round(now - self.epoch_started, 2),
                "val_acc": _number(metrics.get("val/acc")),
                "val_loss": _number(metrics.get("val/loss")),
                "lr": trainer.optimizers[0].param_groups[0]["lr"],
                "train_images_per_s": round(self.train_images / self.train_seconds, 2) if self.train_seconds else None,
            }
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"epochs": self.epochs}, indent=1) + "\n")
        if self.time_budget_s is not None:
            last = self.epochs[-1]
            if last["seconds"] + last["epoch_seconds"] > self.time_budget_s:
                trainer.should_stop = True


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)
