"""One LightningModule for every classification task: loss, torchmetrics, optimizer and schedule."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from convlens.training.console import epoch_line
from convlens.training.conv_grad import hook_batched_weight_grads
from convlens.training.optim import OptimizerFactory, SchedulerFactory, build_optimizer, build_scheduler

log = logging.getLogger(__name__)

#: The data splits the module keeps metrics for.
METRIC_SPLITS = ("train", "val", "test")
#: State-dict prefix of the duplicate weights that checkpoints written before 0.1.x held (the network
#: registered a second time as ``_forward``); dropped on loading.
LEGACY_DUPLICATE_PREFIX = "_forward."


#: Test metrics beside accuracy that weigh every class alike (torchmetrics' macro averages), in metrics.json's ``test``.
BALANCED_METRICS = ("balanced_acc", "macro_f1")


def class_accuracy_key(label: int) -> str:
    """``callback_metrics`` key of one class's test accuracy."""
    return f"test/class_acc/{label}"


def confusion_key(true: int, predicted: int) -> str:
    """``callback_metrics`` key of one cell of the test confusion matrix (a count)."""
    return f"test/confusion/{true}/{predicted}"


def _split_metrics(num_classes: int, stage: str) -> MetricCollection:
    """Accuracy for every stage; per-class accuracy and the confusion matrix only where they are reported
    (val, test), because they count with ``bincount``, which makes the host wait for the GPU. Input
    validation is off for the same reason (it inspects values); the inputs are our own logits and labels."""
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
    if stage != "train":
        metrics["per_class_acc"] = MulticlassAccuracy(num_classes, average="none", validate_args=False)
        metrics["confusion"] = MulticlassConfusionMatrix(num_classes, validate_args=False)
    if stage == "test":  # what accuracy hides on imbalanced data (FER2013): the mean recall and macro-F1
        metrics["balanced_acc"] = MulticlassAccuracy(num_classes, average="macro", validate_args=False)
        metrics["macro_f1"] = MulticlassF1Score(num_classes, average="macro", validate_args=False)
    return MetricCollection(metrics)


class ClassifierModule(pl.LightningModule):
    """Cross-entropy classifier around ``net``; logs ``<stage>/loss`` and ``<stage>/acc`` per epoch,
    the validation confusion matrix as a TensorBoard figure, and the test set's per-class accuracy and
    confusion matrix into ``trainer.callback_metrics`` (keys :func:`class_accuracy_key`, :func:`confusion_key`).

    Test batches of shape (V, B, C, H, W) are test-time-augmented views; their softmax is averaged.
    ``optimizer`` and ``scheduler`` are factories (Hydra ``_partial_`` nodes, see :mod:`convlens.training.optim`).
    ``compile`` compiles ``net`` in place, so its weights stay registered once, as ``net.*``.
    With ``batched_weight_grad``, fp32 training on the CPU computes the weight gradients of convolutions
    on tiny maps in one matrix product (see :mod:`convlens.training.conv_grad`).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None,
        class_names: list[str],
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        batched_weight_grad: bool = True,
    ) -> None:
        super().__init__()
        # The factories are not hyperparameters: checkpoints hold plain data only (they load with weights_only).
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        if compile:
            self.net.compile()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        num_classes = len(class_names)
        # ModuleDict keys must not shadow nn.Module attributes such as ``train``, hence the suffix.
        self.metrics = nn.ModuleDict(
            {f"{split}_metrics": _split_metrics(num_classes, split) for split in METRIC_SPLITS}
        )
        # Updated with per-sample losses, so the mean is exact without batch weights, which this NaN-check-free
        # mode ignores (the NaN check would make the host wait for the GPU at every step).
        self.losses = nn.ModuleDict({f"{split}_loss": MeanMetric(nan_strategy="disable") for split in METRIC_SPLITS})
        self._weight_grad_hooks: list[RemovableHandle] = []
        self._epoch_started = time.perf_counter()
        self._last_validation: tuple[int, dict[str, Tensor]] = (-1, {})

    def on_fit_start(self) -> None:
        if self.hparams.batched_weight_grad and self.device.type == "cpu" and self.trainer.precision == "32-true":
            self._weight_grad_hooks = hook_batched_weight_grads(self.net)

    def on_fit_end(self) -> None:
        for handle in self._weight_grad_hooks:
            handle.remove()
        self._weight_grad_hooks = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def _step(self, stage: str, batch: tuple[Tensor, Tensor]) -> Tensor:
        images, labels = batch
        if images.ndim == 5:  # test-time-augmented views
            views = images.flatten(0, 1)
            probs = self(views).float().softmax(-1).view(images.shape[0], labels.shape[0], -1).mean(0)
            logits = probs.clamp_min(1e-12).log()
            losses = F.nll_loss(logits, labels, reduction="none")
        else:
            logits = self(images).float()
            smoothing = self.hparams.label_smoothing if stage == "train" else 0.0
            losses = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        self.losses[f"{stage}_loss"].update(losses.detach())
        self.metrics[f"{stage}_metrics"].update(logits.detach(), labels)
        return losses.mean()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step("train", batch)
        # The logger reads the value every log_every_n_steps steps (at the global step of the other scalars).
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        if batch_idx % self.trainer.log_every_n_steps == 0:
            # Lightning turns progress-bar values into floats at every step; a value on the GPU would make
            # the host wait for each step to finish. A host copy every N steps waits only then.
            self.log("loss", loss.detach().cpu(), prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def _epoch_end(self, stage: str) -> dict[str, Tensor]:
        """The epoch's numbers over all DDP processes: torchmetrics synchronizes on ``compute``, so every
        rank logs the same values (``sync_dist`` averages equal values, and tells Lightning they are global)."""
        results = self.metrics[f"{stage}_metrics"].compute()
        loss = self.losses[f"{stage}_loss"].compute()
        self.log(f"{stage}/loss", loss, prog_bar=stage != "train", sync_dist=True)
        self.log(f"{stage}/acc", results["acc"], prog_bar=True, sync_dist=True)
        self.metrics[f"{stage}_metrics"].reset()
        self.losses[f"{stage}_loss"].reset()
        return {"loss": loss, **results}

    def on_train_epoch_start(self) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        """One line per epoch for the console and ``train.log`` (validation runs before this hook)."""
        train = self._epoch_end("train")
        metrics = {"train/loss": train["loss"], "train/acc": train["acc"]}
        validated, val = self._last_validation
        if validated == self.current_epoch:
            metrics |= {"val/loss": val["loss"], "val/acc": val["acc"]}
        lr = self.optimizers().param_groups[0]["lr"] if self.trainer.optimizers else None
        seconds = time.perf_counter() - self._epoch_started
        if self.trainer.is_global_zero:  # one line per epoch, not one per DDP process
            log.info(epoch_line(self.current_epoch, self.trainer.max_epochs, metrics, lr, seconds))

    def on_validation_epoch_end(self) -> None:
        results = self._epoch_end("val")
        if not self.trainer.sanity_checking:
            self._last_validation = (self.current_epoch, results)
            self._log_confusion_figure("val", results["confusion"])

    def on_test_epoch_end(self) -> None:
        results = self._epoch_end("test")
        cells = results["confusion"].float()
        values = {class_accuracy_key(label): acc for label, acc in enumerate(results["per_class_acc"])}
        values |= {f"test/{name}": results[name] for name in BALANCED_METRICS}
        values |= {confusion_key(true, pred): cells[true, pred] for true, pred in np.ndindex(cells.shape)}
        self.log_dict(values, logger=False, sync_dist=True)
        self._log_confusion_figure("test", results["confusion"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints of earlier versions hold every weight twice (``net.*`` and ``_forward.*``): keep ``net.*``."""
        state = checkpoint["state_dict"]
        for key in [key for key in state if key.startswith(LEGACY_DUPLICATE_PREFIX)]:
            del state[key]

    def _log_confusion_figure(self, split: str, confusion: Tensor) -> None:
        """The confusion matrix as a TensorBoard image at the step Lightning gives the epoch's scalars.

        That step is the loop's count of batches stepped, which lags ``global_step`` by one during the
        validation inside an epoch; Lightning has no public name for it (tests/test_train.py checks it)."""
        from pytorch_lightning.loggers import TensorBoardLogger

        from convlens.figures.confusion import confusion_matrix_figure

        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                figure = confusion_matrix_figure(confusion.cpu().numpy(), self.hparams.class_names)
                step = self.trainer.fit_loop.epoch_loop._batches_that_stepped
                logger.experiment.add_figure(f"{split}/confusion_matrix", figure, step)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.optimizer_factory, self.parameters())
        scheduler = build_scheduler(self.scheduler_factory, optimizer, self.trainer)
        return {"optimizer": optimizer} | ({"lr_scheduler": scheduler} if scheduler else {})
