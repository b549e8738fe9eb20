"""Gradient attributions of a class score w.r.t. the input pixels, computed with captum.

Every function takes model input ``images`` (B, C, H, W) and ``targets`` (one class per image),
runs on the model's device and returns detached CPU tensors of the input's shape (B, C, H, W), so
1- and 3-channel models are handled alike. :func:`saliency_map` and :func:`contribution_map`
reduce the channels for display; :func:`guided_backprop_maps` derives the four views of guided
backprop. Only those reductions are written here; the gradients themselves are captum's.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from captum.attr import (
    GradientAttribution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    Saliency,
)
from torch import Tensor, nn

from convlens.explain.method import TIME_ONLY, ExplainBatch, MethodParams, at_least
from convlens.explain.routing import PoolRouting, pool_routing
from convlens.models.conventions import conforming
from convlens.models.layers import eval_mode, model_device

Targets = Tensor | Sequence[int]


@conforming
def vanilla_gradients(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """d score_target / d input (Simonyan et al. 2014), signed; the basis of the saliency map."""
    return _attribute(Saliency(model), model, images, targets, abs=False)


@conforming
def guided_gradients(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """Guided backprop (Springenberg et al. 2015): ReLUs pass back only positive gradients."""
    return _attribute(GuidedBackprop(model), model, images, targets)


@conforming
def gradient_x_input(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """Gradient times input (Shrikumar et al. 2016): first-order contribution of each pixel."""
    return _attribute(InputXGradient(model), model, images, targets)


@conforming
def integrated_gradients(
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    *,
    baselines: Tensor | float = 0.0,
    steps: int = 50,
    internal_batch_size: int | None = None,
) -> Tensor:
    """Integrated Gradients (Sundararajan et al. 2017) from ``baselines`` (e.g. a black image in
    model-input space); ``internal_batch_size`` path points go through the model at once (None: the
    device's default, :func:`path_points_per_pass`)."""
    device = model_device(model)
    if isinstance(baselines, Tensor):
        baselines = baselines.to(device)
    return _attribute(
        IntegratedGradients(model),
        model,
        images,
        targets,
        baselines=baselines,
        n_steps=steps,
        internal_batch_size=internal_batch_size or path_points_per_pass(device),
    )


#: Path points per forward pass of Integrated Gradients when none is set. On the CPU, chunks that stay in
#: cache: for 32 images x 32 steps on a 2-core Xeon, the 48 px FER CNN costs the same per image at 32, 64
#: or 128 points and 1.3-1.5x at 256, 1.7-2x at 1024; a 33 px half-width ResNet-18 is within 6% of its
#: best (256) at 128. On an accelerator the earlier default (not measured there; 1024 points of a 224 px ResNet
#: at once could exhaust its memory).
PATH_POINTS_PER_PASS = {"cpu": 128, "accelerator": 256}


def path_points_per_pass(device: torch.device) -> int:
    """Integrated Gradients' default internal batch on ``device`` (:data:`PATH_POINTS_PER_PASS`)."""
    return PATH_POINTS_PER_PASS["cpu" if device.type == "cpu" else "accelerator"]


@dataclass(frozen=True)
class GuidedBackpropMaps:
    """The four views of guided backprop: ``gradients`` (B, C, H, W, signed, shown in colour),
    ``grayscale`` (B, H, W, max |g| over channels), ``positive`` and ``negative`` (B, C, H, W,
    the positive part of g and of -g)."""

    gradients: Tensor
    grayscale: Tensor
    positive: Tensor
    negative: Tensor

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        return {None: self.grayscale.numpy()}


def guided_backprop_maps(gradients: Tensor) -> GuidedBackpropMaps:
    """Split guided gradients into the views of Springenberg et al. / Zeiler-Fergus style figures."""
    return GuidedBackpropMaps(gradients, saliency_map(gradients), gradients.clamp(min=0), (-gradients).clamp(min=0))


def saliency_map(attributions: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H, W): max |a| over channels, Simonyan et al.'s saliency map."""
    return attributions.abs().amax(dim=1)


def contribution_map(attributions: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H, W): signed sum over channels, a pixel's total contribution
    (for gradient x input and Integrated Gradients, whose pixel sums add up to the score change)."""
    return attributions.sum(dim=1)


def as_target_tensor(targets: Targets, count: int, device: torch.device) -> Tensor:
    """``targets`` as an int64 tensor of one class per image; a ``ValueError`` on a count mismatch."""
    tensor = torch.as_tensor(targets, dtype=torch.long).reshape(-1).to(device)
    if len(tensor) != count:
        raise ValueError(f"got {len(tensor)} targets for {count} images; give one class per image")
    return tensor


def _attribute(
    method: GradientAttribution,
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    **kwargs: object,
) -> Tensor:
    """Run a captum attribution in eval mode on the model's device; detached CPU result."""
    device = model_device(model)
    target = as_target_tensor(targets, len(images), device)
    with eval_mode(model), _quiet_captum():
        attributions = method.attribute(images.to(device), target=target, **kwargs)
    return attributions.detach().cpu()


@contextmanager
def _quiet_captum() -> Iterator[None]:
    """captum warns on every call that it hooks ReLUs (guided backprop) or turns on the inputs'
    ``requires_grad``; both are the intent here, so the warnings would only bury real ones."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
        yield


# --- the registered methods ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionMaps:
    """One (B, H, W) map per image: magnitudes (``signed`` False) or signed contributions."""

    maps: np.ndarray
    signed: bool = False
    #: How the model's first max-pool routes the gradient (saliency only; :mod:`convlens.explain.routing`).
    routing: PoolRouting | None = None

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        """Where the evidence *for* the class lies: the map, or its positive part when signed."""
        return {None: np.clip(self.maps, 0, None) if self.signed else self.maps}

    def notes(self) -> list[str]:
        return [] if self.routing is None else self.routing.notes()


@dataclass(frozen=True)
class SaliencyParams(MethodParams):
    """Vanilla gradient saliency has no settings."""


@dataclass(frozen=True)
class GuidedBackpropParams(MethodParams):
    """Guided backprop has no settings."""


@dataclass(frozen=True)
class GradientXInputParams(MethodParams):
    """Gradient x input has no settings."""


@dataclass(frozen=True)
class IntegratedGradientsParams(MethodParams):
    """``steps`` points on the path from the ``baseline`` (``black`` image or ``mean``, the zero model
    input), ``internal_batch_size`` of them per forward pass (None: the device's default, which
    changes the time, not the map)."""

    steps: int = 32
    internal_batch_size: int | None = field(default=None, metadata={TIME_ONLY: True})
    baseline: str = "black"

    def __post_init__(self) -> None:
        at_least("steps", self.steps, 1)
        if self.internal_batch_size is not None:
            at_least("internal_batch_size", self.internal_batch_size, 1)
        if self.baseline not in ("black", "mean"):
            raise ValueError(f"baseline={self.baseline!r}; choose 'black' or 'mean'")


@conforming
def explain_saliency(model: nn.Module, batch: ExplainBatch, params: SaliencyParams) -> AttributionMaps:
    """Vanilla gradient saliency (Simonyan et al.): max |d score / d pixel| over channels, and how the
    first max-pool routed the gradient (the figure's blocks, :mod:`convlens.explain.routing`)."""
    targets = as_target_tensor(batch.targets, len(batch.inputs), model_device(model))
    return dataclasses.replace(
        localise_saliency(model, batch, params), routing=pool_routing(model, batch.inputs, targets)
    )


@conforming
def localise_saliency(model: nn.Module, batch: ExplainBatch, params: SaliencyParams) -> AttributionMaps:
    """The map the evaluation scores, without the routing only the figure's note needs."""
    return AttributionMaps(saliency_map(vanilla_gradients(model, batch.inputs, batch.targets)).numpy())


@conforming
def explain_guided_backprop(model: nn.Module, batch: ExplainBatch, params: GuidedBackpropParams) -> GuidedBackpropMaps:
    """Guided backprop: colour gradients, grayscale saliency, positive and negative saliency."""
    return guided_backprop_maps(guided_gradients(model, batch.inputs, batch.targets))


@conforming
def explain_gradient_x_input(model: nn.Module, batch: ExplainBatch, params: GradientXInputParams) -> AttributionMaps:
    """Gradient x input, summed over channels: each pixel's signed first-order contribution."""
    return AttributionMaps(contribution_map(gradient_x_input(model, batch.inputs, batch.targets)).numpy(), signed=True)


@conforming
def explain_integrated_gradients(
    model: nn.Module, batch: ExplainBatch, params: IntegratedGradientsParams
) -> AttributionMaps:
    """Integrated Gradients from a black image or the mean image (zero model input), summed over channels."""
    baseline = batch.black if params.baseline == "black" else 0.0
    attributions = integrated_gradients(
        model,
        batch.inputs,
        batch.targets,
        baselines=baseline,
        steps=params.steps,
        internal_batch_size=params.internal_batch_size,
    )
    return AttributionMaps(contribution_map(attributions).numpy(), signed=True)
