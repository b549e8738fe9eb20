"""How convincing synthesized images are to the classifier: its confidence in the intended class, and
realism as the distance, in its penultimate features, to the nearest training image (shared by the
generator-prior methods of :mod:`convlens.explain.generator`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convlens.models.layers import capture_activations, eval_mode, model_device


@torch.no_grad()
def judge(model: nn.Module, inputs: Tensor, classes: Tensor, feature_layer: str, reference: Tensor) -> dict:
    """Confidence, logit and nearest-training-image feature distance of model ``inputs`` (N) for ``classes`` (N)."""
    with eval_mode(model), capture_activations(model, [feature_layer]) as captured:
        logits = model(inputs.to(model_device(model)))
    rows, classes = torch.arange(len(inputs)), classes.to(logits.device)
    features = captured[feature_layer].flatten(1).float().cpu()
    return {
        "confidence": logits.softmax(1)[rows, classes].cpu(),
        "logit": logits[rows, classes].cpu(),
        "distance": nearest_distances(features, reference),
    }


def nearest_distances(features: Tensor, reference: Tensor) -> Tensor:
    """Euclidean distance (N,) from each of ``features`` (N, D) to its nearest row of ``reference``."""
    return torch.cat([torch.cdist(part, reference).amin(1) for part in features.split(500)])
