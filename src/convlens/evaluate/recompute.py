"""Maps computed afresh, for the metrics that change the model or the input (the randomization
cascade, max-sensitivity): a registered method run with the settings the visualize stage recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from convlens.explain.method import ExplainBatch, MethodParams
from convlens.registry import METHODS, load, method_settings


@dataclass(frozen=True)
class Recompute:
    """Method ``name`` with its recorded settings; ``black`` is the model input of a black image
    (1, C, H, W) and ``num_classes`` the model's, both of which some methods need."""

    name: str
    params: MethodParams
    black: Tensor
    num_classes: int

    @classmethod
    def recorded(cls, name: str, parameters: Mapping[str, Any], black: Tensor, num_classes: int) -> Recompute:
        """The method as the manifest's ``methods.<name>.parameters`` ran it."""
        return cls(name, method_settings(name, parameters), black, num_classes)

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """``{layer ('' for a single map): (B, H, W) float32}`` on the inputs' device."""
        batch = ExplainBatch(inputs, targets, self.black, self.num_classes)
        result = load(METHODS[self.name].compute)(model, batch, self.params)
        return {
            layer or "": torch.from_numpy(np.asarray(maps, dtype=np.float32)).to(inputs.device)
            for layer, maps in result.localisation_maps().items()
        }
