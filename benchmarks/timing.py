"""Interleaved timing: every speed is reported as a ratio against a baseline measured in the same
process, in alternating windows (A, B, A, B, ...), so that a busy shared machine slows both sides alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock windows measure finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Window:
    """One timed window: how many images were trained on in how many seconds."""

    images: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def interleaver(steps: int, warmup: int, others: dict[str, Callable[[], Any]], device: torch.device) -> Any:
    """A Lightning callback that times windows of ``steps`` training steps of the Trainer it runs in and,
    after each window, calls every function in ``others`` once (each measures itself and returns its
    result, e.g. a ``Window``): windows alternate A, B, A, B, ... Time spent in ``others`` is excluded
    from the Trainer's windows, which run from one ``on_train_batch_end`` to another and so include the
    batch fetch, the transform, the step and Lightning's hooks."""
    import pytorch_lightning as pl

    class Interleave(pl.Callback):
        def __init__(self) -> None:
            self.results: dict[str, list[Any]] = {"lightning": [], **{name: [] for name in others}}
            self.done = 0
            self.images = 0
            self.started = 0.0

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.done += 1
            self.images += len(batch[1])
            if self.done < warmup or (self.done - warmup) % steps:
                return
            sync(device)
            if self.done > warmup:
                self.results["lightning"].append(Window(self.images, time.perf_counter() - self.started))
                for name, run in others.items():
                    self.results[name].append(run())
            self.images = 0
            sync(device)
            self.started = time.perf_counter()

    return Interleave()


def summarize_windows(windows: list[Window]) -> dict[str, Any]:
    rates = [w.rate for w in windows]
    return {
        "images_per_s_median": statistics.median(rates),
        "images_per_s_windows": [round(r, 3) for r in rates],
        "window_seconds": [round(w.seconds, 2) for w in windows],
    }


def paired_ratio(numerator: list[Window], denominator: list[Window]) -> dict[str, float]:
    """Median and range of the per-round ratios (each round: adjacent windows of both sides)."""
    ratios = [a.rate / b.rate for a, b in zip(numerator, denominator, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
