"""The two training pipelines the speed benchmarks compare, built the same way by every script: the
plain baseline (torchvision transforms on PIL images in DataLoader workers, NCHW, a hand-written loop)
and the convlens pipeline under a Lightning Trainer; the optimizer settings they share, and the FLOPs
of one training step, which turn their speeds into a share of the machine's ceiling."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from cifar10_data import Loaded, cifar10_settings
from timing import Window, sync
from torch import Tensor, nn

#: The optimizer of every speed benchmark (the cifar10_resnet18 recipe's SGD; lr lowered so that random
#: synthetic labels cannot blow the weights up into NaNs, which would change the speed of the arithmetic).
OPTIMIZER = {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
LABEL_SMOOTHING = 0.1


def sgd(parameters: Any, settings: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, **settings)


# ----------------------------------------------------------------------------------------------------------------
# The plain baseline: torchvision transforms on PIL images in DataLoader workers, NCHW, a hand-written loop


class PILImages(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10.__getitem__`` does: uint8 HWC array -> PIL image -> transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable[[Any], Tensor]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def plain_transform(image_size: int, padding: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=padding),
            transforms.RandomHorizontalFlip(),
            transforms.Resize(image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def plain_loader(data: Loaded, image_size: int, batch_size: int, workers: int, device: torch.device) -> Any:
    conf = cifar10_settings()
    transform = plain_transform(image_size, conf["augment"]["crop_padding"], conf["mean"], conf["std"])
    dataset = PILImages(data.arrays.train.images, data.arrays.train.labels, transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


class PlainLoop:
    """The plain baseline's training loop, run in windows.

    Each window starts a fresh DataLoader iterator (its workers are shut down between windows, so they
    never steal CPU from the other pipeline's windows), trains ``warmup`` untimed steps while the workers
    fill their queue, then times ``steps`` steps.
    """

    def __init__(
        self,
        model: nn.Module,
        loader: Any,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        label_smoothing: float,
    ) -> None:
        self.model, self.loader, self.optimizer, self.device = model, loader, optimizer, device
        self.label_smoothing = label_smoothing

    def step(self, images: Tensor, labels: Tensor) -> None:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        loss = F.cross_entropy(self.model(images), labels, label_smoothing=self.label_smoothing)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def window(self, steps: int, warmup: int = 1) -> Window:
        self.model.train()
        batches = iter(self.loader)
        for _ in range(warmup):
            self.step(*next(batches))
        sync(self.device)
        started = time.perf_counter()
        images = 0
        for _ in range(steps):
            batch = next(batches)
            self.step(*batch)
            images += len(batch[1])
        sync(self.device)
        seconds = time.perf_counter() - started
        del batches  # shuts the workers down
        return Window(images, seconds)


# ----------------------------------------------------------------------------------------------------------------
# The convlens pipeline under a Lightning Trainer


def resolve_precision(device: torch.device, requested: str, image_size: int) -> str:
    """``auto``: what `make train` uses on this device for the benchmarks' ResNet-18 (trainer.precision=auto:
    on the CPU, the faster of fp32 and bf16 in a probe of its convolutions); else ``requested``."""
    from convlens.models import ResNet
    from convlens.training.run import resolve_precision as resolve

    return resolve(requested, device.type, ResNet(18, 10), (3, image_size, image_size))[0]


def classifier(net: nn.Module, channels_last: bool = True, compile: bool = False) -> Any:
    from convlens.training.module import ClassifierModule

    return ClassifierModule(
        net,
        functools.partial(torch.optim.SGD, **OPTIMIZER),
        None,
        [str(i) for i in range(net.num_classes)],
        LABEL_SMOOTHING,
        channels_last=channels_last,
        compile=compile,
    )


def bench_trainer(device: torch.device, precision: str, max_steps: int, callbacks: list[Any]) -> Any:
    """A Trainer as `make train` builds it, minus what writes files (logger, checkpoints, progress bar)."""
    import logging

    import pytorch_lightning as pl

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        log_every_n_steps=10,  # as conf/trainer/default.yaml
        callbacks=callbacks,
    )


# ----------------------------------------------------------------------------------------------------------------
# Work per image


def train_flops_per_image(net: nn.Module, channels: int, image_size: int) -> float:
    """FLOPs of one training step (forward + backward) per image, counted by torch's FlopCounterMode
    (convolutions and matmuls; 1 multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2
    x = torch.randn(batch, channels, image_size, image_size)
    labels = torch.zeros(batch, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(net(x), labels).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch
