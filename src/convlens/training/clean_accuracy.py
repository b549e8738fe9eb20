"""The best checkpoint's accuracy on training images as validation sees them: un-augmented, in eval
mode, in the training precision. Set beside validation accuracy it tells overfitting; Lightning's
``train/acc`` cannot, being the running mean over the last epoch's augmented batches with dropout on,
both of which lower it for reasons that have nothing to do with fit. Written here because Lightning
has no pass over a split that logs nothing (``trainer.validate`` on the training images would write
them into the validation curves)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics.classification import MulticlassAccuracy

from convlens.data import ImageDataModule
from convlens.training.module import ClassifierModule


def clean_train_accuracy(
    trainer: pl.Trainer, module: ClassifierModule, datamodule: ImageDataModule, seed: int
) -> dict[str, Any]:
    """``acc`` of ``module`` (the best checkpoint, as the caller left it after testing) on ``images``
    training images drawn with ``seed``: as many as the validation split holds (at most all), so that the
    two accuracies are equally precise; ``acc`` None when there are none."""
    split = datamodule.split("train")
    count = min(len(split), len(datamodule.split("val")))
    if count == 0:
        return {"acc": None, "images": 0}
    chosen = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count]
    device = trainer.strategy.root_device
    module = module.to(device).eval()
    # The first process alone runs this (on all the chosen images): a sync with the others would wait forever.
    accuracy = MulticlassAccuracy(num_classes=datamodule.num_classes, average="micro", sync_on_compute=False)
    accuracy = accuracy.to(device)
    with torch.inference_mode(), trainer.precision_plugin.val_step_context():
        for rows in chosen.split(datamodule.eval_batch_size):
            rows = rows.to(split.images.device)
            inputs = datamodule.preprocess(split.images[rows].to(device))
            accuracy.update(module(inputs).float(), split.labels[rows].to(device))
    return {"acc": round(float(accuracy.compute()), 6), "images": count}
