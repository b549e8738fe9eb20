"""Maps computed afresh, for the evaluation's sample and for the metrics that change the model or the
input (the randomization cascade, max-sensitivity): a registered method run with the settings the
visualize stage recorded.

The randomization cascade compares more than one view of a map (:meth:`Recompute.views`), as Adebayo
et al. and Quantus do: magnitudes (the absolute value of a signed map such as gradient x input, where
the localisation map keeps only its positive part), the signed map where there is one, and a CAM at its
layer's own resolution (bilinear upsampling to the input smooths both maps alike and inflates their
similarity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlens.explain.attribution import AttributionMaps
from convlens.explain.cam import CamMaps
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
        result = self._result(model, inputs, targets)
        return {layer or "": _tensor(maps, inputs.device) for layer, maps in result.localisation_maps().items()}

    def views(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, dict[str, Tensor]]:
        """Per layer, the views randomization compares (each (B, h, w) float32): ``absolute`` (the
        magnitudes), and where the method has them ``signed`` and ``native`` (a CAM at its layer's size)."""
        result = self._result(model, inputs, targets)
        found = {layer or "": {"absolute": _tensor(maps, inputs.device)}
                 for layer, maps in result.localisation_maps().items()}  # fmt: skip
        if isinstance(result, AttributionMaps) and result.signed:
            signed = _tensor(result.maps, inputs.device)
            found[""] = {"absolute": signed.abs(), "signed": signed}
        if isinstance(result, CamMaps):
            for layer, size in result.sizes.items():
                if layer in found:
                    found[layer]["native"] = F.adaptive_avg_pool2d(found[layer]["absolute"][:, None], size)[:, 0]
        return found

    def _result(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> Any:
        batch = ExplainBatch(inputs, targets, self.black, self.num_classes)
        spec = METHODS[self.name]
        return load(spec.localise or spec.compute)(model, batch, self.params)


def _tensor(maps: Any, device: torch.device) -> Tensor:
    return torch.as_tensor(np.asarray(maps, dtype=np.float32)).to(device)
