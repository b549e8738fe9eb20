"""What a checkpoint must hold beyond Lightning's own state for a resumed run to continue exactly as
the uninterrupted one would: the random number generators' states and the training time so far.

Lightning restores weights, optimizer, schedule and loop counters, but not the generators: a resumed
run re-seeds them at its start, so its augmentation, dropout and the data loader's seeds draw other
numbers than the uninterrupted run did. :class:`ResumeState` saves the generators' states with every
checkpoint and restores them on resume (before the first resumed batch). Written here because neither
Lightning nor torch offers it as a callback. States are stored as tensors and plain containers, so
checkpoints still load with ``weights_only=True``.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def rng_states() -> dict[str, Any]:
    """The states of torch's CPU (and initialized CUDA) generators, numpy's and Python's."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned (CUDA states only where CUDA is in use)."""
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeState(pl.Callback):
    """Saves the generators' states and the training seconds so far with every checkpoint; restores both
    when training resumes from one. :attr:`train_seconds` counts every part of a resumed run."""

    def __init__(self) -> None:
        self.earlier_seconds = 0.0
        self._started: float | None = None
        self._seconds = 0.0

    @property
    def train_seconds(self) -> float:
        """Training time (``fit``) of this run, including the parts before any resume."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.earlier_seconds + self._seconds + running

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._seconds += time.perf_counter() - self._started
        self._started = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states(), "train_seconds": self.train_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_states(state_dict["rng"])
        self.earlier_seconds = float(state_dict["train_seconds"])
