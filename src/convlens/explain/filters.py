"""First-layer filter grids: the only weights that live in pixel space and can be shown directly."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convlens.explain.method import ExplainBatch, MethodParams
from convlens.models.conventions import conforming
from convlens.models.layers import first_conv_name, resolve_layer


@dataclass(frozen=True)
class FirstConvFilters:
    """The first convolution's filters, scaled for display (CPU tensors).

    ``images``: (N, kh, kw, C) in [0, 1], each filter min-max scaled over all its channels so
    colours keep their balance; an RGB image for 3-channel nets, grayscale for 1-channel nets,
    ``None`` for other channel counts. ``signed``: (N, C, kh, kw) in [-1, 1], each filter divided
    by its largest absolute weight, to show every input channel separately with a diverging map.
    """

    layer: str
    images: Tensor | None
    signed: Tensor


def first_conv_filters(model: nn.Module) -> FirstConvFilters:
    """The filters of the model's first ``nn.Conv2d`` (``stem.conv`` for convlens models)."""
    name = first_conv_name(model)
    weight = resolve_layer(model, name).weight.detach().float().cpu()
    images = _min_max_per_filter(weight).permute(0, 2, 3, 1) if weight.shape[1] in (1, 3) else None
    return FirstConvFilters(layer=name, images=images, signed=_max_abs_per_filter(weight))


def _min_max_per_filter(weight: Tensor) -> Tensor:
    flat = weight.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scale = torch.where(high > low, high - low, torch.ones_like(high))
    return (weight - low[:, None, None, None]) / scale[:, None, None, None]


def _max_abs_per_filter(weight: Tensor) -> Tensor:
    peak = weight.flatten(1).abs().max(1).values
    return weight / torch.where(peak > 0, peak, torch.ones_like(peak))[:, None, None, None]


@dataclass(frozen=True)
class FiltersParams(MethodParams):
    """The filter figures have no settings: the first convolution is the only one in pixel space."""


@conforming
def explain_filters(model: nn.Module, batch: ExplainBatch, params: FiltersParams) -> FirstConvFilters:
    """The ``filters`` method: the first convolution's filters (the images are not needed)."""
    return first_conv_filters(model)
