"""Projecting a feature map back to pixel space: deconvnet, plain backprop and guided backprop.

Captum's ``NeuronDeconvolution`` is the deconvnet of Zeiler & Fergus (2014): its backward pass
rectifies the signal at every ReLU, routes it through max-pool switches (the gradient of max-pool)
and applies the transposed convolutions (the gradient of a convolution). ``NeuronGradient`` and
``NeuronGuidedBackprop`` differ only in the ReLU rule, so all three share one code path here.
The selector sends the chosen channel's feature map itself back (other channels zero), as in the paper.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Self

import torch
from captum.attr import NeuronDeconvolution, NeuronGradient, NeuronGuidedBackprop
from torch import Tensor, nn

from convlens.explain.features import top_channels
from convlens.explain.method import ExplainBatch, FeatureLayersParams, MethodParams, NotApplicable
from convlens.models.conventions import conforming
from convlens.models.layers import check_channels, eval_mode, model_device, resolve_layer

Method = Literal["deconvnet", "gradient", "guided_backprop"]
#: ``map``: send the whole feature map back; ``max``: only its strongest activation.
Signal = Literal["map", "max"]

_ATTRIBUTIONS: dict[str, type[NeuronDeconvolution | NeuronGradient | NeuronGuidedBackprop]] = {
    "deconvnet": NeuronDeconvolution,
    "gradient": NeuronGradient,
    "guided_backprop": NeuronGuidedBackprop,
}


@dataclass(frozen=True)
class Projections:
    """Pixel-space projections of ``k`` channels per image (CPU tensors).

    ``channels``: (B, k) channel indices; ``images``: (B, k, C, H, W), same space as the input.
    """

    layer: str
    method: str
    channels: Tensor
    images: Tensor


@conforming
def project_channel(
    model: nn.Module,
    images: Tensor,
    layer: str,
    channels: int | Sequence[int] | Tensor,
    method: Method = "deconvnet",
    signal: Signal = "map",
) -> Tensor:
    """(B, C, H, W) projection of channel ``channels[b]`` of ``layer`` for image ``b``.

    ``channels`` may be one int for all images.
    """
    if method not in _ATTRIBUTIONS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(_ATTRIBUTIONS)}")
    device = model_device(model)
    index = torch.as_tensor(channels, device=device).long().expand(len(images))
    attribution = _ATTRIBUTIONS[method](model, resolve_layer(model, layer))
    with eval_mode(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        inputs = images.detach().to(device).requires_grad_(True)
        projection = attribution.attribute(inputs, neuron_selector=_selector(index, layer, signal))
    return projection.detach().cpu()


@conforming
def project_top_channels(
    model: nn.Module,
    images: Tensor,
    layer: str,
    top_k: int = 4,
    method: Method = "deconvnet",
    signal: Signal = "map",
) -> Projections:
    """Projections of each image's ``top_k`` most active channels of ``layer`` (Zeiler & Fergus, Fig. 2)."""
    chosen = top_channels(model, images, layer, top_k)
    projected = [project_channel(model, images, layer, chosen[:, j], method, signal) for j in range(chosen.shape[1])]
    return Projections(layer, method, chosen, torch.stack(projected, dim=1))


@conforming
def compare_methods(
    model: nn.Module,
    images: Tensor,
    layer: str,
    channels: int | Sequence[int] | Tensor,
    methods: Sequence[Method] = ("gradient", "guided_backprop", "deconvnet"),
    signal: Signal = "map",
) -> dict[str, Tensor]:
    """The same feature map projected by each of ``methods``: ``{method: (B, C, H, W)}``."""
    return {method: project_channel(model, images, layer, channels, method, signal) for method in methods}


@conforming
def residual_vs_shortcut(
    model: nn.Module,
    images: Tensor,
    block: str,
    channels: int | Sequence[int] | Tensor | None = None,
    method: Method = "deconvnet",
    signal: Signal = "map",
) -> dict[str, Tensor]:
    """A residual block's feature map projected through both paths, the residual path only and the
    shortcut only: ``{"full", "residual", "shortcut": (B, C, H, W)}``.

    The other path's output is detached by a temporary forward hook (forward values, hence ReLU
    masks and pool switches, are unchanged); the hook is removed even on error. ``channels``
    defaults to each image's most active channel of the block output.
    """
    module = _residual_block(model, block)
    chosen = top_channels(model, images, block, 1)[:, 0] if channels is None else channels
    projections = {"full": project_channel(model, images, block, chosen, method, signal)}
    for path, other in (("residual", module.shortcut), ("shortcut", module.residual)):
        with _detached_output(other):
            projections[path] = project_channel(model, images, block, chosen, method, signal)
    return projections


def _selector(channels: Tensor, layer: str, signal: Signal) -> Callable[[Tensor], Tensor]:
    """Captum neuron selector: per image, the chosen channel's map weighted by itself (its gradient
    is the map, Zeiler & Fergus's input to the deconvnet) or its maximum."""

    def select(output: Tensor) -> Tensor:
        check_channels(output, channels.tolist(), layer)
        maps = output[torch.arange(len(output), device=output.device), channels].flatten(1)
        return (maps * maps.detach()).sum(1) if signal == "map" else maps.amax(1)

    return select


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the model's residual blocks (modules with a ``shortcut``), in definition order."""
    return [name for name, module in model.named_modules() if hasattr(module, "shortcut")]


def _residual_block(model: nn.Module, block: str) -> nn.Module:
    module = resolve_layer(model, block)
    if not all(isinstance(getattr(module, path, None), nn.Module) for path in ("residual", "shortcut")):
        blocks = ", ".join(residual_blocks(model))
        raise ValueError(f"layer {block!r} is not a residual block (needs 'residual' and 'shortcut'); blocks: {blocks}")
    return module


@contextmanager
def _detached_output(module: nn.Module) -> Iterator[None]:
    """Cut gradients through ``module`` without changing its forward output."""
    handle = module.register_forward_hook(lambda _module, _inputs, output: output.detach())
    try:
        yield
    finally:
        handle.remove()


# --- the registered methods ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeconvnetParams(FeatureLayersParams):
    """The ``top_k`` most active channels of each layer, for the first image of each of the first
    ``images`` classes."""

    top_k: int = 4
    images: int = 2


@dataclass(frozen=True)
class DeconvnetPathsParams(MethodParams):
    """A residual ``block`` (None: the model's last), for the first image of each of the first ``images`` classes."""

    block: str | None = None
    images: int = 2

    def resolved(self, model: nn.Module) -> Self:
        blocks = residual_blocks(model)
        return dataclasses.replace(self, block=self.block or (blocks[-1] if blocks else None))


@dataclass(frozen=True)
class ReconstructionParams(FeatureLayersParams):
    """Each layer's most active channel, for the first image of each of the first ``images`` classes."""

    images: int = 2


@dataclass(frozen=True)
class PathProjections:
    """A residual ``block``'s top channel projected through ``paths`` ``{"full", "residual", "shortcut"}``."""

    block: str
    paths: dict[str, Tensor]


@dataclass(frozen=True)
class Reconstructions:
    """Per layer, each image's most active ``channels`` (B,) and their projections ``images`` (B, C, H, W)."""

    rule: str
    channels: dict[str, Tensor]
    images: dict[str, Tensor]


def residual_paths_reason(model: nn.Module) -> str | None:
    """Why ``deconvnet_paths`` cannot apply to ``model`` (it has no residual block), or None."""
    if residual_blocks(model):
        return None
    return f"{type(model).__name__} has no residual block, so there is no shortcut path to compare"


#: Top channels whose projections correlate above this on average (pairwise, per image) are said to project alike.
ALIKE_PROJECTIONS = 0.9


def projection_alikeness(projections: Projections) -> float | None:
    """The mean over images of the mean pairwise Pearson correlation between the projections of an image's top
    channels (None with fewer than two channels): near 1, the channels project to one and the same picture."""
    flat = projections.images.flatten(2).double()  # (B, k, pixels)
    count = flat.shape[1]
    if count < 2:
        return None
    centred = flat - flat.mean(dim=-1, keepdim=True)
    unit = centred / centred.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    correlations = unit @ unit.transpose(1, 2)  # (B, k, k)
    return float(correlations[:, ~torch.eye(count, dtype=torch.bool)].mean())


@dataclass(frozen=True)
class TopChannelProjections:
    """Deconvnet projections of each image's top channels, per layer; a note names the layers where those
    channels all project to nearly the same picture (a grader read four near-identical panels as four channels)."""

    layers: dict[str, Projections]

    def notes(self) -> list[str]:
        """One note for the layers whose projections correlate above :data:`ALIKE_PROJECTIONS` on average."""
        correlations = {layer: projection_alikeness(found) for layer, found in self.layers.items()}
        alike = {layer: value for layer, value in correlations.items() if (value or 0.0) > ALIKE_PROJECTIONS}
        if not alike:
            return []
        images = len(next(iter(self.layers.values())).images)
        named = ", ".join(f"{layer} (r = {value:.2f})" for layer, value in alike.items())
        return [f"at {named} the top channels' projections are nearly the same picture (mean pairwise Pearson "
                f"correlation over {images} images, above {ALIKE_PROJECTIONS:g}): whichever channel it starts from, "
                "the deconvnet draws nearly one picture there, so those panels do not tell the channels apart (Nie "
                "et al. 2018 show that deconvnet and guided backprop largely reconstruct parts of the image rather "
                "than what a unit detects); read them as one picture, not channel by channel"]  # fmt: skip


@conforming
def explain_deconvnet(model: nn.Module, batch: ExplainBatch, params: DeconvnetParams) -> TopChannelProjections:
    """Deconvnet projections (Zeiler & Fergus) of each image's ``top_k`` most active channels per layer."""
    layers = params.resolved(model).layers or []
    return TopChannelProjections(
        {layer: project_top_channels(model, batch.inputs, layer, params.top_k, "deconvnet") for layer in layers}
    )


@conforming
def explain_deconvnet_paths(model: nn.Module, batch: ExplainBatch, params: DeconvnetPathsParams) -> PathProjections:
    """A residual block's top channel projected back through both paths, the residual path only and
    the shortcut only."""
    block = params.resolved(model).block
    if block is None:
        raise NotApplicable(residual_paths_reason(model))
    return PathProjections(block, residual_vs_shortcut(model, batch.inputs, block))


@conforming
def explain_backprop_reconstruction(
    model: nn.Module, batch: ExplainBatch, params: ReconstructionParams
) -> Reconstructions:
    """Each layer's most active channel reconstructed by plain backprop (its gradient w.r.t. the input)."""
    return _reconstruct(model, batch, params, "gradient")


@conforming
def explain_guided_reconstruction(
    model: nn.Module, batch: ExplainBatch, params: ReconstructionParams
) -> Reconstructions:
    """Each layer's most active channel reconstructed by guided backprop."""
    return _reconstruct(model, batch, params, "guided_backprop")


def _reconstruct(model: nn.Module, batch: ExplainBatch, params: ReconstructionParams, rule: Method) -> Reconstructions:
    layers = params.resolved(model).layers or []
    channels = {layer: top_channels(model, batch.inputs, layer, 1)[:, 0] for layer in layers}
    images = {layer: project_channel(model, batch.inputs, layer, channels[layer], rule) for layer in layers}
    return Reconstructions(rule, channels, images)
