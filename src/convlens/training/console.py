"""What a person follows while training: one log line per epoch (console and ``train.log``), a
progress bar only where a terminal shows it, and known third-party noise filtered out."""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Mapping
from typing import Any

#: Warnings of the pinned libraries that say nothing about the user's run (a library's own deprecations).
KNOWN_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # pytorch_lightning's pytree use, torch 2.14
)
#: Lightning's advertisements, logged at INFO on every run.
ADVERTISEMENTS = re.compile(r"litlogger|Lightning Experiments platform")


def quiet_third_party() -> None:
    """Filter the known warnings and Lightning's tips for this process."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertisements) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdvertisements())


class _DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not ADVERTISEMENTS.search(record.getMessage())


def progress_bar_shown(enabled: bool) -> bool:
    """The bar redraws itself many times a second: in a file (``make train > log``) that is kilobytes of
    frames per epoch, so it is drawn only on a terminal; the epoch lines say the same once."""
    return enabled and sys.stdout.isatty()


def epoch_line(epoch: int, max_epochs: int, metrics: Mapping[str, Any], lr: float | None, seconds: float) -> str:
    """``epoch 3/10: train loss 0.912 acc 0.672 | val loss 0.801 acc 0.713 | lr 0.0400 | 12.3 s``; the
    val part only when ``metrics`` holds this epoch's validation."""
    parts = [f"epoch {epoch + 1}/{max_epochs}: train {_pair(metrics, 'train')}"]
    if "val/acc" in metrics:
        parts.append(f"val {_pair(metrics, 'val')}")
    if lr is not None:
        parts.append(f"lr {lr:.4g}")
    parts.append(f"{seconds:.1f} s")
    return " | ".join(parts)


def _pair(metrics: Mapping[str, Any], split: str) -> str:
    return f"loss {float(metrics[f'{split}/loss']):.4f} acc {float(metrics[f'{split}/acc']):.4f}"
