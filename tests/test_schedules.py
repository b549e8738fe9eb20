"""One-cycle at any run length: it steps to the run's end, or the run trains at the constant rate and the
warning names the keys that lengthen it; a pct_start with which no run could end is refused up front."""

from __future__ import annotations

import logging
import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR

from convlens.config import ConfigError, validate
from convlens.training.optim import build_scheduler

LR = 0.1


def one_cycle(steps: int, **keywords: object) -> tuple[Optimizer, dict | None]:
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=LR, momentum=0.9)
    trainer = SimpleNamespace(estimated_stepping_batches=steps)  # what build_scheduler asks of the trainer
    return optimizer, build_scheduler(partial(OneCycleLR, **keywords), optimizer, trainer)


def step_to_the_end(optimizer: Optimizer, scheduler: OneCycleLR, steps: int) -> None:
    """As Lightning steps a per-batch schedule: once after each optimizer step, the last one included."""
    for _ in range(steps):
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(
    ("pct_start", "three_phase"),
    [(0.0, False), (0.1, False), (0.2, False), (0.3, False), (0.5, False), (0.99, False), (0.0, True), (0.2, True),
     (0.5, True)],
)  # fmt: skip
def test_one_cycle_builds_and_ends_or_falls_back_at_every_run_length(pct_start: float, three_phase: bool) -> None:
    for steps in range(41):
        optimizer, config = one_cycle(steps, pct_start=pct_start, three_phase=three_phase)
        too_short = steps == 0 or 0 < pct_start * steps <= 1
        assert (config is None) == too_short, steps
        if config is not None:
            step_to_the_end(optimizer, config["scheduler"], steps)
            assert all(0 <= group["lr"] <= LR and math.isfinite(group["lr"]) for group in optimizer.param_groups)


def test_a_run_too_short_to_warm_up_trains_at_the_constant_rate_saying_why(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="convlens.training.optim"):
        optimizer, config = one_cycle(5, pct_start=0.2)  # torch's warm-up would end at step 0.2 x 5 - 1 = 0
    assert config is None and [group["lr"] for group in optimizer.param_groups] == [LR]
    assert "this run has 5" in caplog.text and "give it >= 6 steps" in caplog.text
    keys = ("max_epochs", "limit_train_batches", "accumulate_grad_batches")
    assert all(f"trainer.{key}" in caplog.text for key in keys) and "scheduler.pct_start" in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="convlens.training.optim"):
        _, config = one_cycle(6, pct_start=0.2)
    assert isinstance(config["scheduler"], OneCycleLR) and config["scheduler"].total_steps == 6
    assert config["interval"] == "step" and not caplog.text


def test_no_warm_up_and_no_training_steps_are_not_warned_about(caplog) -> None:
    """pct_start=0 asks for no warm-up (an integer 0, as the command line gives it, included: torch wants
    a float); limit_train_batches=0 trains nothing, so there is nothing to schedule."""
    with caplog.at_level(logging.WARNING, logger="convlens.training.optim"):
        _, config = one_cycle(1, pct_start=0)
        assert isinstance(config["scheduler"], OneCycleLR)
        assert one_cycle(0, pct_start=0.0)[1] is None and one_cycle(0, pct_start=0.2)[1] is None
    assert not caplog.text


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
