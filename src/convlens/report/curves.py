"""Per-epoch learning curves read back from a run's TensorBoard event files.

Lightning logs the epoch-level ``train/*`` and ``val/*`` scalars at the last step of each epoch,
and the learning-rate monitors log ``lr-*`` at each epoch's first step and every ``log_every_n_steps``
steps (runs trained before 2026-12-06's evening: at each epoch's first step only). The steps of
``train/loss`` therefore mark the epochs; the evaluation of the best checkpoint after training logs
``val/*`` again at a later step, which matches no epoch and is left out (it is in metrics.json). The
training loss is also logged every ``log_every_n_steps`` steps (``train/loss_step``): it and the learning
rate are placed on the epoch axis by linear interpolation between the epochs' last steps, so a few epochs
still show their shape (a one-cycle rate peaks within the first epochs, between two epoch-start values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

CURVE_TAGS = ("train/loss", "train/acc", "val/loss", "val/acc")
STEP_LOSS_TAG = "train/loss_step"
EPOCH_TAG = "epoch"
LR_PREFIX = "lr-"


@dataclass(frozen=True)
class EpochCurves:
    """``epochs`` numbered from 1; ``values[tag]`` aligned with them (None where not logged).

    ``lr_tag`` names the learning-rate series in ``values`` (the first parameter group, the rate at each
    epoch's start), if any; ``step_loss`` the training loss and ``step_lr`` that rate every few steps as
    (epoch position, value), epoch k ending at k.
    """

    epochs: list[int]
    values: dict[str, list[float | None]]
    lr_tag: str | None
    step_loss: list[tuple[float, float]] = field(default_factory=list)
    step_lr: list[tuple[float, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epochs)


def read_epoch_curves(tensorboard_dir: Path) -> EpochCurves:
    """The per-epoch curves of a run; empty when the directory holds no training events."""
    if not tensorboard_dir.is_dir():
        return EpochCurves([], {}, None)
    events = EventAccumulator(str(tensorboard_dir), size_guidance={"scalars": 0, "images": 1}).Reload()
    scalars = {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    steps = sorted({step for step, _ in scalars.get("train/loss", [])})
    values = {tag: [_at_step(scalars.get(tag, []), step) for step in steps] for tag in CURVE_TAGS}
    lr_tag = min((tag for tag in scalars if tag.startswith(LR_PREFIX)), default=None)
    if lr_tag:
        values[lr_tag] = [_first_after(scalars[lr_tag], end) for end in [-1, *steps[:-1]]]
    step_loss = _on_epoch_axis(scalars.get(STEP_LOSS_TAG, []), steps)
    step_lr = _on_epoch_axis(scalars[lr_tag], steps) if lr_tag else []
    return EpochCurves(_epoch_numbers(scalars.get(EPOCH_TAG, []), steps), values, lr_tag, step_loss, step_lr)


def _on_epoch_axis(series: list[tuple[int, float]], epoch_ends: list[int]) -> list[tuple[float, float]]:
    """Each (step, value) as (epoch position, value): a step between the ends of epochs k and k + 1 lies
    between k and k + 1 in proportion (steps before the first epoch's end from 0); past the last end, left out."""
    if not epoch_ends:
        return []
    ends = [0, *epoch_ends]
    placed = []
    for step, value in sorted(series):
        k = next((index for index in range(1, len(ends)) if step <= ends[index]), None)
        if k is not None:
            placed.append((k - 1 + (step - ends[k - 1]) / max(ends[k] - ends[k - 1], 1), value))
    return placed


def _at_step(series: list[tuple[int, float]], step: int) -> float | None:
    """The first value logged at ``step`` (the epoch-end value, not a later re-evaluation)."""
    return next((value for at, value in series if at == step), None)


def _first_after(series: list[tuple[int, float]], step: int) -> float | None:
    """The first value logged after ``step`` (the previous epoch's last step): the learning rate at the
    epoch's start, whether the rate is logged once per epoch or every few steps."""
    later = [value for at, value in sorted(series, key=lambda item: item[0]) if at > step]
    return later[0] if later else None


def _epoch_numbers(epoch_series: list[tuple[int, float]], steps: list[int]) -> list[int]:
    """1-based epoch of each step, from Lightning's ``epoch`` scalar (position as fallback)."""
    numbers = []
    for position, step in enumerate(steps):
        epoch = _at_step(epoch_series, step)
        numbers.append(int(epoch) + 1 if epoch is not None else position + 1)
    return numbers
