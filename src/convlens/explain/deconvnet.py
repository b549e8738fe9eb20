"""Projecting a feature map back to pixel space: deconvnet, plain backprop and guided backprop.

Captum's ``NeuronDeconvolution`` is the deconvnet of Zeiler & Fergus (2014): its backward pass
rectifies the signal at every ReLU, routes it through max-pool switches (the gradient of max-pool)
and applies the transposed convolutions (the gradient of a convolution). ``NeuronGradient`` and
``NeuronGuidedBackprop`` differ only in the ReLU rule, so all three share one code path here.
The selector sends the chosen channel's feature map itself back (other channels zero), as in the paper.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import NeuronDeconvolution, NeuronGradient, NeuronGuidedBackprop
from torch import Tensor, nn

from convlens.explain.features import top_channels
from convlens.explain.layers import check_channels, eval_mode, model_device, resolve_layer

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


def _residual_block(model: nn.Module, block: str) -> nn.Module:
    module = resolve_layer(model, block)
    if not all(isinstance(getattr(module, path, None), nn.Module) for path in ("residual", "shortcut")):
        blocks = ", ".join(name for name, child in model.named_modules() if hasattr(child, "shortcut"))
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
