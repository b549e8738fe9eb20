"""Feature maps of chosen layers, and which channels respond most to an image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convlens.explain.method import ExplainBatch, FeatureLayersParams
from convlens.models.conventions import conforming
from convlens.models.layers import capture_activations, default_feature_layers, eval_mode, model_device


@dataclass(frozen=True)
class FeatureMaps:
    """One layer's response to a batch (CPU tensors).

    ``maps``: (B, C, H, W) activations; ``mean_activation``: (B, C) spatial mean per channel;
    ``top_channels``: (B, k) channel indices sorted by decreasing mean activation.
    """

    layer: str
    maps: Tensor
    mean_activation: Tensor
    top_channels: Tensor


@conforming
def feature_maps(
    model: nn.Module, images: Tensor, layers: Sequence[str] | None = None, top_k: int = 8
) -> dict[str, FeatureMaps]:
    """Activations of ``layers`` (default: stem ReLU and conv5_x output) for ``images``, one forward pass."""
    names = list(layers) if layers is not None else default_feature_layers(model)
    with eval_mode(model), torch.no_grad(), capture_activations(model, names) as captured:
        model(images.to(model_device(model)))
    return {name: _summarize(name, captured[name].float().cpu(), top_k) for name in names}


@conforming
def top_channels(model: nn.Module, images: Tensor, layer: str, top_k: int) -> Tensor:
    """(B, k) indices of the ``top_k`` channels of ``layer`` with the largest mean activation."""
    return feature_maps(model, images, [layer], top_k)[layer].top_channels


def _summarize(name: str, maps: Tensor, top_k: int) -> FeatureMaps:
    if maps.dim() != 4:
        raise ValueError(f"layer {name!r} gives {tuple(maps.shape)}, expected (B, C, H, W) feature maps")
    mean = maps.mean(dim=(2, 3))
    k = min(top_k, maps.shape[1])
    return FeatureMaps(name, maps, mean, mean.topk(k, dim=1).indices)


@dataclass(frozen=True)
class ActivationChartParams(FeatureLayersParams):
    """``top_k`` channels with the largest mean activation are highlighted, for the first image of
    each of the first ``images`` classes."""

    top_k: int = 8
    images: int = 1


@dataclass(frozen=True)
class FeatureMapsParams(ActivationChartParams):
    """As the chart, plus ``shown`` channels in each grid (the ``top_k`` first)."""

    shown: int = 16


@conforming
def explain_feature_maps(model: nn.Module, batch: ExplainBatch, params: FeatureMapsParams) -> dict[str, FeatureMaps]:
    """The ``feature_maps`` method: each layer's activations for the batch."""
    return feature_maps(model, batch.inputs, params.layers, params.top_k)


@conforming
def explain_activation_chart(
    model: nn.Module, batch: ExplainBatch, params: ActivationChartParams
) -> dict[str, FeatureMaps]:
    """The ``activation_chart`` method: each layer's mean activation per channel for the batch."""
    return feature_maps(model, batch.inputs, params.layers, params.top_k)
