"""The optimizer and learning-rate schedule from the config's ``_partial_`` nodes (conf/optimizer/,
conf/scheduler/): Hydra builds each as a ``functools.partial`` of its torch class, and this adapter
adds only what the training run knows. A new optimizer or scheduler is one YAML file.

- Optimizer: weight decay applies to weights only, not to biases and norm weights (1-D tensors), so
  the parameters go in two groups; ``fused=True`` (one kernel per parameter instead of one per update
  term: same update, several times faster) where the class takes it and torch has fused kernels for
  the parameters' device (CPU, CUDA).
- OneCycleLR: ``max_lr`` is the optimizer's lr, ``total_steps`` the whole run's, stepped every batch.
  A run too short for its warm-up (``pct_start x total_steps <= 1``: torch then divides by zero)
  trains at the constant rate instead, with a warning naming the keys that lengthen it.
- ReduceLROnPlateau: watches :data:`MONITOR`. Every other scheduler steps once per epoch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

log = logging.getLogger(__name__)

#: The metric the plateau scheduler (and the best checkpoint) follow.
MONITOR = "val/acc"
#: OneCycleLR's own default share of warm-up steps (when the config does not set ``pct_start``).
ONE_CYCLE_PCT_START = 0.3

OptimizerFactory = Callable[..., Optimizer]
SchedulerFactory = Callable[..., Any]


def build_optimizer(factory: OptimizerFactory, parameters: Iterable[torch.nn.Parameter]) -> Optimizer:
    """``factory(param_groups)``: decayed weights and undecayed 1-D tensors, fused where possible."""
    parameters = list(parameters)
    weight_decay = _keywords(factory).get("weight_decay", 0.0)
    groups = [
        {"params": [p for p in parameters if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0},
    ]
    fusable = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    if fusable and _takes(factory, "fused") and "fused" not in _keywords(factory):
        return factory(groups, fused=True)
    return factory(groups)


def build_scheduler(factory: SchedulerFactory | None, optimizer: Optimizer, trainer: pl.Trainer) -> dict | None:
    """Lightning's scheduler dict for ``factory(optimizer)``, or None without a schedule."""
    if factory is None:
        return None
    if _builds(factory, OneCycleLR):
        steps = int(trainer.estimated_stepping_batches)
        if not _one_cycle_fits(factory, steps):
            return None
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return {"scheduler": factory(optimizer, max_lr=max_lr, total_steps=steps), "interval": "step"}
    config = {"scheduler": factory(optimizer), "interval": "epoch"}
    if _builds(factory, ReduceLROnPlateau):
        config["monitor"] = MONITOR
    return config


def _one_cycle_fits(factory: SchedulerFactory, steps: int) -> bool:
    """Whether OneCycleLR's warm-up phase spans more than one of the run's ``steps`` (torch's phase
    boundary is ``pct_start * steps - 1``; at 0 its first step divides by zero); warns when not."""
    pct_start = _keywords(factory).get("pct_start", ONE_CYCLE_PCT_START)
    if pct_start * steps > 1:
        return True
    needed = int(1 / pct_start) + 1
    log.warning(
        "scheduler=onecycle needs more than 1/pct_start = %.0f optimizer steps to warm up; this run has %d "
        "(trainer.max_epochs x trainer.limit_train_batches, over accumulate_grad_batches). Training at the "
        "constant rate optimizer.lr instead; for the one-cycle schedule give it >= %d steps or raise "
        "scheduler.pct_start.",
        1 / pct_start, steps, needed,
    )  # fmt: skip
    return False


def _keywords(factory: Callable[..., Any]) -> dict[str, Any]:
    return factory.keywords if isinstance(factory, partial) else {}


def _target(factory: Callable[..., Any]) -> Callable[..., Any]:
    return factory.func if isinstance(factory, partial) else factory


def _takes(factory: Callable[..., Any], name: str) -> bool:
    return name in inspect.signature(_target(factory)).parameters


def _builds(factory: Callable[..., Any], cls: type) -> bool:
    target = _target(factory)
    return isinstance(target, type) and issubclass(target, cls)
