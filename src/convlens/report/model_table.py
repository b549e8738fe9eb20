"""The model table: each top-level stage's output shape, parameters and multiply-adds.

The model is built from the run's resolved config (no weights needed: shapes and counts depend on
the architecture only) and fed one zero image of the training input size. Forward hooks record
what enters and leaves each stage; multiply-adds are counted per stage with PyTorch's
``FlopCounterMode`` (it counts 2 FLOPs per multiply-add of convolutions and matrix products).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from convlens.untrusted import instantiate_allowed


@dataclass(frozen=True)
class StageRow:
    """One stage (or the ``total``): ``output_shape`` without the batch dimension."""

    name: str
    output_shape: tuple[int, ...]
    parameters: int
    macs: int


def model_rows(model_config: DictConfig, channels: int, image_size: int) -> list[StageRow]:
    """Rows for every top-level stage of the configured model at ``channels x image_size^2``, then the total."""
    model = instantiate_allowed(model_config, "model").eval()
    inputs = _stage_inputs(model, torch.zeros(1, channels, image_size, image_size))
    rows = [_stage_row(name, stage, inputs[name]) for name, stage in model.named_children() if name in inputs]
    total = StageRow(
        "total",
        rows[-1].output_shape if rows else (),
        sum(p.numel() for p in model.parameters()),
        sum(row.macs for row in rows),
    )
    return [*rows, total]


def _stage_inputs(model: nn.Module, image: Tensor) -> dict[str, Tensor]:
    """The tensor each top-level stage receives in one forward pass (stages the pass skips are absent)."""
    inputs: dict[str, Tensor] = {}
    handles = [stage.register_forward_pre_hook(_recorder(inputs, name)) for name, stage in model.named_children()]
    try:
        with torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def _recorder(inputs: dict[str, Tensor], name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
    def record(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
        inputs.setdefault(name, args[0])

    return record


def _stage_row(name: str, stage: nn.Module, stage_input: Tensor) -> StageRow:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        output = stage(stage_input)
    parameters = sum(p.numel() for p in stage.parameters())
    return StageRow(name, tuple(output.shape[1:]), parameters, counter.get_total_flops() // 2)
