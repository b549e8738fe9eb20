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


#: Percentage points by which the deepest layer's share of zero activations must exceed (or fall short of)
#: the first layer's for the note to call the deeper layer sparser (or denser).
SPARSER_BY = 10.0


@dataclass(frozen=True)
class LayerResponses:
    """Each chosen layer's :class:`FeatureMaps` for the batch (in the order asked), with ``notes`` that
    measure how the layers respond: the share of zero activations (a ReLU's silence) and the channels
    silent on every image explained, layer by layer and first to deepest."""

    layers: dict[str, FeatureMaps]

    def notes(self) -> list[str]:
        if not self.layers:
            return []
        counted = _counted(self.layers)
        lines = [f"{name}: {_zero_share(found):.1f}% of the activations are zero and {_silent_channels(found)} "
                 f"everywhere on {counted}" for name, found in self.layers.items()]  # fmt: skip
        return lines + _depth_note(self.layers, counted)


@dataclass(frozen=True)
class ChannelRanking(LayerResponses):
    """The same responses read as the activation chart reads them: ``notes`` say how much of each layer's
    mean activation its most active channels carry, against what as many equal channels would (for a layer
    with more channels than are ranked)."""

    def notes(self) -> list[str]:
        return [_concentration(name, found, _counted(self.layers)) for name, found in self.layers.items()
                if found.top_channels.shape[1] < found.maps.shape[1]]  # fmt: skip


def _counted(layers: dict[str, FeatureMaps]) -> str:
    images = len(next(iter(layers.values())).maps)
    return "the image explained" if images == 1 else f"the {images} images explained"


def _concentration(name: str, found: FeatureMaps, counted: str) -> str:
    """The top channels' share of the summed mean activation (mean over images), and the equal share."""
    top = found.top_channels.shape[1]
    channels = found.mean_activation.shape[1]
    carried = found.mean_activation.gather(1, found.top_channels).sum(dim=1)
    total = found.mean_activation.sum(dim=1)
    share = float((carried / total.clamp_min(torch.finfo(total.dtype).tiny)).mean())  # a silent layer: 0
    equal = top / channels
    return (
        f"{name}: the {top} most active of its {channels} channels carry {share:.0%} of its mean activation on "
        f"{counted}, {share / equal:.1f}x the {equal:.1%} that {top} of {channels} equal channels would carry"
    )


def _zero_share(found: FeatureMaps) -> float:
    """Percentage of the layer's activations that are exactly 0."""
    return 100.0 * float((found.maps == 0).float().mean())


def _silent_channels(found: FeatureMaps) -> str:
    """``5 of its 10 channels are zero``: the channels whose activation is 0 at every position of every image."""
    silent = int((found.maps != 0).sum(dim=(0, 2, 3)).eq(0).sum())
    return f"{silent} of its {found.maps.shape[1]} channels {'is' if silent == 1 else 'are'} zero"


def _depth_note(layers: dict[str, FeatureMaps], counted: str) -> list[str]:
    """The first layer against the last (as listed), on the shares as printed: sparser, denser, or alike, by
    :data:`SPARSER_BY` points (a description of the images explained, not a test)."""
    if len(layers) < 2:
        return []
    (first, shallow), (last, deep) = next(iter(layers.items())), list(layers.items())[-1]
    change = round(_zero_share(deep), 1) - round(_zero_share(shallow), 1)
    rule = (f"the note calls a difference of more than {SPARSER_BY:g} points sparser or denser; a description of "
            f"{counted}, not a test")  # fmt: skip
    if abs(change) <= SPARSER_BY:
        return [f"{last} is about as sparse as {first} ({change:+.1f} points of zero activations; {rule})"]
    kind, units = ("sparser", "fewer") if change > 0 else ("denser", "more")
    return [f"{last} is {kind} than {first}: {change:+.1f} points of zero activations, so {units} of its units "
            f"respond ({rule})"]  # fmt: skip


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
def explain_feature_maps(model: nn.Module, batch: ExplainBatch, params: FeatureMapsParams) -> LayerResponses:
    """The ``feature_maps`` method: each layer's activations for the batch."""
    return LayerResponses(feature_maps(model, batch.inputs, params.layers, params.top_k))


@conforming
def explain_activation_chart(model: nn.Module, batch: ExplainBatch, params: ActivationChartParams) -> ChannelRanking:
    """The ``activation_chart`` method: each layer's mean activation per channel for the batch."""
    return ChannelRanking(feature_maps(model, batch.inputs, params.layers, params.top_k))
