"""A one-cycle pct_start with which no run could end is refused before training, naming the key."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR

from convlens.config import ConfigError, validate

LR = 0.1


def step_to_the_end(optimizer: Optimizer, scheduler: OneCycleLR, steps: int) -> None:
    """As Lightning steps a per-batch schedule: once after each optimizer step, the last one included."""
    for _ in range(steps):
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler.pct_start=1.0"], r"scheduler.pct_start=1.0 must be a number in \[0, 1\)"),
        (["scheduler.pct_start=-0.1"], r"scheduler.pct_start=-0.1 must be a number in \[0, 1\)"),
        (["scheduler.pct_start=most"], r"scheduler.pct_start=most must be a number in \[0, 1\)"),
        (["+scheduler.three_phase=true", "scheduler.pct_start=0.6"], r"pct_start=0.6 .* \[0, 0.5\] with three_phase"),
    ],
)
def test_a_one_cycle_that_cannot_end_is_refused(compose_train, overrides: list[str], message: str) -> None:
    cfg = compose_train("experiment=demo_faces", *overrides, "paths.output_dir=unused")
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.parametrize(("pct_start", "three_phase", "steps"), [(1.0, False, 10), (0.6, True, 5)])
def test_the_refused_pct_start_values_break_torch(pct_start: float, three_phase: bool, steps: int) -> None:
    """Why they are refused: torch divides by zero at the end of the run (if it stops, relax the check)."""
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=LR)
    scheduler = OneCycleLR(optimizer, LR, total_steps=steps, pct_start=pct_start, three_phase=three_phase)
    with pytest.raises(ZeroDivisionError):
        step_to_the_end(optimizer, scheduler, steps)


def test_every_valid_one_cycle_setting_validates(compose_train) -> None:
    for overrides in (["scheduler.pct_start=0"], ["scheduler.pct_start=0.99"], ["+scheduler.three_phase=true",
                      "scheduler.pct_start=0.5"]):  # fmt: skip
        validate(compose_train("experiment=demo_faces", *overrides, "paths.output_dir=unused"))
