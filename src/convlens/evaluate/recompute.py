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
from convlens.explain.method import ExplainBatch, MethodParams, at_machine_defaults
from convlens.registry import METHODS, load, method_settings

#: Images per call of a method: enough to fill a batch, few enough that a 224-px ResNet's activations and
#: gradients fit in a few GiB (a method's own batching, e.g. Integrated Gradients' steps, works within it).
BATCH_SIZE = 32


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
        """The method as the manifest's ``methods.<name>.parameters`` ran it, but for the settings that
        change only its speed, which take this machine's defaults (:func:`at_machine_defaults`)."""
        return cls(name, at_machine_defaults(method_settings(name, parameters)), black, num_classes)

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """``{layer ('' for a single map): (B, H, W) float32}`` on the inputs' device."""
        views = self.views(model, inputs, targets)
        return {layer: found["localised"] for layer, found in views.items()}

    def views(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, dict[str, Tensor]]:
        """Per layer, the ``localised`` map (what the evaluation scores) and the views randomization
        compares (each (B, h, w) float32): ``absolute`` (the magnitudes), and where the method has them
        ``signed`` and ``native`` (a CAM at its layer's size); :data:`BATCH_SIZE` images per call."""
        chunks = [self._views(model, *batch) for batch in zip(inputs.split(BATCH_SIZE), targets.split(BATCH_SIZE),
                                                               strict=True)]  # fmt: skip
        return {layer: {view: torch.cat([chunk[layer][view] for chunk in chunks]) for view in views}
                for layer, views in chunks[0].items()}  # fmt: skip

    def _views(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, dict[str, Tensor]]:
        result = self._result(model, inputs, targets)
        found = {layer or "": dict.fromkeys(("localised", "absolute"), _tensor(maps, inputs.device))
                 for layer, maps in result.localisation_maps().items()}  # fmt: skip
        if isinstance(result, AttributionMaps) and result.signed:
            signed = _tensor(result.maps, inputs.device)
            found[""] |= {"absolute": signed.abs(), "signed": signed}
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
