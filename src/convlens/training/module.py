"""One LightningModule for every classification task: loss, torchmetrics, optimizer and schedule."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from convlens.training.conv_grad import hook_batched_weight_grads

STAGES = ("train", "val", "test")


def _stage_metrics(num_classes: int, stage: str) -> MetricCollection:
    """Accuracy for every stage; per-class accuracy and the confusion matrix only where they are reported
    (val, test), because they count with ``bincount``, which makes the host wait for the GPU. Input
    validation is off for the same reason (it inspects values); the inputs are our own logits and labels."""
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
    if stage != "train":
        metrics["per_class_acc"] = MulticlassAccuracy(num_classes, average="none", validate_args=False)
        metrics["confusion"] = MulticlassConfusionMatrix(num_classes, validate_args=False)
    return MetricCollection(metrics)


class ClassifierModule(pl.LightningModule):
    """Cross-entropy classifier around ``net``; logs ``<stage>/loss`` and ``<stage>/acc`` per epoch,
    the validation confusion matrix as a TensorBoard figure, and keeps the test results for metrics.json.

    Test batches of shape (V, B, C, H, W) are test-time-augmented views; their softmax is averaged.
    With ``batched_weight_grad``, fp32 training on the CPU computes the weight gradients of convolutions
    on tiny maps in one matrix product (see :mod:`convlens.training.conv_grad`).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        class_names: list[str],
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        batched_weight_grad: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._forward = torch.compile(self.net) if compile else self.net
        num_classes = len(class_names)
        # ModuleDict keys must not shadow nn.Module attributes such as ``train``, hence the suffix.
        self.metrics = nn.ModuleDict({f"{stage}_metrics": _stage_metrics(num_classes, stage) for stage in STAGES})
        # Updated with per-sample losses, so the mean is exact without batch weights, which this NaN-check-free
        # mode ignores (the NaN check would make the host wait for the GPU at every step).
        self.losses = nn.ModuleDict({f"{stage}_loss": MeanMetric(nan_strategy="disable") for stage in STAGES})
        self.test_results: dict[str, Any] = {}
        self._weight_grad_hooks: list[RemovableHandle] = []

    def on_fit_start(self) -> None:
        if self.hparams.batched_weight_grad and self.device.type == "cpu" and self.trainer.precision == "32-true":
            self._weight_grad_hooks = hook_batched_weight_grads(self.net)

    def on_fit_end(self) -> None:
        for handle in self._weight_grad_hooks:
            handle.remove()
        self._weight_grad_hooks = []

    def forward(self, x: Tensor) -> Tensor:
        return self._forward(x.contiguous(memory_format=self.memory_format))

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
        if batch_idx % self.trainer.log_every_n_steps == 0:
            # Lightning turns progress-bar values into floats at every step; a value on the GPU would make
            # the host wait for each step to finish. A host copy every N steps waits only then.
            self.log("train/loss_step", loss.detach().cpu(), prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def _epoch_end(self, stage: str) -> dict[str, Tensor]:
        results = self.metrics[f"{stage}_metrics"].compute()
        loss = self.losses[f"{stage}_loss"].compute()
        self.log(f"{stage}/loss", loss, prog_bar=stage != "train")
        self.log(f"{stage}/acc", results["acc"], prog_bar=True)
        self.metrics[f"{stage}_metrics"].reset()
        self.losses[f"{stage}_loss"].reset()
        return {"loss": loss, **results}

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        results = self._epoch_end("val")
        if not self.trainer.sanity_checking:
            self._log_confusion_figure(results["confusion"])

    def on_test_epoch_end(self) -> None:
        results = self._epoch_end("test")
        self.test_results = {key: value.cpu() for key, value in results.items()}

    def _log_confusion_figure(self, confusion: Tensor) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger

        from convlens.figures.confusion import confusion_matrix_figure

        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                figure = confusion_matrix_figure(confusion.cpu().numpy(), self.hparams.class_names)
                logger.experiment.add_figure("val/confusion_matrix", figure, self.current_epoch)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.parameters(), self.hparams.optimizer)
        scheduler = build_scheduler(optimizer, self.hparams.scheduler, self.trainer)
        config: dict[str, Any] = {"optimizer": optimizer}
        if scheduler is not None:
            config["lr_scheduler"] = scheduler
        return config


def build_optimizer(parameters: Any, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW; weight decay skips biases and norm weights (1-D tensors).

    Fused (one kernel per parameter instead of one per update term) where torch has fused kernels for
    the parameters' device (CPU, CUDA): same update, read and written once, several times faster."""
    parameters = list(parameters)
    decay = [p for p in parameters if p.ndim > 1]
    no_decay = [p for p in parameters if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    fused = True if all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters) else None
    name = str(settings["name"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=settings["lr"], momentum=settings["momentum"], nesterov=settings["nesterov"],
                               fused=fused)  # fmt: skip
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=settings["lr"], betas=tuple(settings["betas"]), fused=fused)
    raise ValueError(f"module.optimizer.name={name} is not one of sgd, adamw")


def build_scheduler(optimizer: torch.optim.Optimizer, settings: dict[str, Any], trainer: pl.Trainer) -> dict | None:
    """The learning-rate schedule as Lightning's scheduler dict (per step for one-cycle, else per epoch)."""
    name = str(settings["name"])
    epochs = trainer.max_epochs
    if name == "none":
        return None
    if name == "onecycle":
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=trainer.estimated_stepping_batches,
            pct_start=settings["pct_start"],
            div_factor=settings["div_factor"],
            final_div_factor=settings["final_div_factor"],
        )
        return {"scheduler": schedule, "interval": "step"}
    if name == "cosine":
        warmup = settings["warmup_epochs"]
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs - warmup), settings["min_lr"])
        if warmup == 0:
            return {"scheduler": cosine, "interval": "epoch"}
        ramp = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0 / (warmup + 1), 1.0, warmup)
        schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])
        return {"scheduler": schedule, "interval": "epoch"}
    if name == "step":
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, settings["step_size"], settings["gamma"])
        return {"scheduler": schedule, "interval": "epoch"}
    if name == "plateau":
        schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=settings["factor"], patience=settings["patience"], min_lr=settings["min_lr"]
        )
        return {"scheduler": schedule, "interval": "epoch", "monitor": "val/acc"}
    raise ValueError(f"module.scheduler.name={name} is not one of none, onecycle, cosine, step, plateau")
