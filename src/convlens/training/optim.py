"""The optimizer and learning-rate schedule from the config's ``_partial_`` nodes (conf/optimizer/,
conf/scheduler/): Hydra builds each as a ``functools.partial`` of its torch class, and this adapter
adds only what the training run knows. A new optimizer or scheduler is one YAML file.

- Optimizer: weight decay applies to weights only, not to biases and norm weights (1-D tensors), so
  the parameters go in two groups; ``fused=True`` (one kernel per parameter instead of one per update
  term: same update, several times faster) where the class takes it and torch has fused kernels for
  the parameters' device (CPU, CUDA).
- OneCycleLR: ``max_lr`` is the optimizer's lr, ``total_steps`` the whole run's, stepped every batch.
  A run too short for its warm-up (a smoke run of a few batches) trains at the constant rate instead,
  with a warning naming the keys that lengthen it: see :func:`_one_cycle_fits`.
- ReduceLROnPlateau: watches :data:`MONITOR`. Every other scheduler steps once per epoch.
"""

from __future__ import annotations

import inspect
import logging
import math
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
        return _one_cycle(factory, optimizer, int(trainer.estimated_stepping_batches))
    config = {"scheduler": factory(optimizer), "interval": "epoch"}
    if _builds(factory, ReduceLROnPlateau):
        config["monitor"] = MONITOR
    return config


def _one_cycle(factory: SchedulerFactory, optimizer: Optimizer, steps: int) -> dict | None:
    """OneCycleLR over the run's ``steps`` peaking at the optimizer's lr, or None (the constant rate)
    where it does not fit. ``pct_start`` goes in as a float: torch refuses ``scheduler.pct_start=0`` (an int)."""
    pct_start = float(_keywords(factory).get("pct_start", ONE_CYCLE_PCT_START))
    if not _one_cycle_fits(pct_start, steps):
        return None
    max_lr = [group["lr"] for group in optimizer.param_groups]
    scheduler = factory(optimizer, max_lr=max_lr, total_steps=steps, pct_start=pct_start)
    return {"scheduler": scheduler, "interval": "step"}


def _one_cycle_fits(pct_start: float, steps: int) -> bool:
    """Whether a one-cycle schedule of ``steps`` optimizer steps can warm up; warns when not.

    torch ends the warm-up at step ``pct_start x steps - 1``: at 0 its first step divides by zero, below 0
    it skips the warm-up and starts near the peak rate: neither is the schedule asked for. Such a run is a smoke
    test of a few batches, which a user expects to train, not to be refused or to need scheduler=none too:
    it trains at the constant rate optimizer.lr, and the warning says how to get the schedule. No training
    steps (trainer.limit_train_batches=0) need no schedule; pct_start=0 (no warm-up) fits any length."""
    if steps < 1:
        return False
    if pct_start == 0 or pct_start * steps > 1:
        return True
    log.warning(
        "scheduler=onecycle warms up over pct_start x steps, which needs more than 1/pct_start = %g optimizer "
        "steps; this run has %d (trainer.max_epochs x trainer.limit_train_batches, over "
        "trainer.accumulate_grad_batches). Training at the constant rate optimizer.lr instead; for the one-cycle "
        "schedule give it >= %d steps or raise scheduler.pct_start.",
        1 / pct_start, steps, math.floor(1 / pct_start) + 1,
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
