"""Gradient attributions of a class score w.r.t. the input pixels, computed with captum.

Every function takes model input ``images`` (B, C, H, W) and ``targets`` (one class per image),
runs on the model's device and returns detached CPU tensors of the input's shape (B, C, H, W), so
1- and 3-channel models are handled alike. :func:`saliency_map` and :func:`contribution_map`
reduce the channels for display; :func:`guided_backprop_maps` derives the four views of guided
backprop. Only those reductions are written here; the gradients themselves are captum's.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from captum.attr import (
    GradientAttribution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)
from torch import Tensor, nn

from convlens.explain.layers import eval_mode, model_device

Targets = Tensor | Sequence[int]


def vanilla_gradients(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """d score_target / d input (Simonyan et al. 2014), signed; the basis of the saliency map."""
    return _attribute(Saliency(model), model, images, targets, abs=False)


def guided_gradients(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """Guided backprop (Springenberg et al. 2015): ReLUs pass back only positive gradients."""
    return _attribute(GuidedBackprop(model), model, images, targets)


def smoothgrad(
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    *,
    guided: bool = False,
    samples: int = 25,
    noise_level: float = 0.15,
    samples_batch_size: int | None = None,
    seed: int = 0,
) -> Tensor:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over ``samples`` noisy copies.

    The noise std is ``noise_level`` times the value range of the batch (captum takes one std per
    input tensor); ``samples_batch_size`` noisy copies of every image go through the model at once.
    ``seed`` fixes the noise without touching the global random state.
    """
    method = GuidedBackprop(model) if guided else Saliency(model)
    stdev = noise_level * float(images.max() - images.min())
    device = model_device(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        extra = {} if guided else {"abs": False}
        return _attribute(
            NoiseTunnel(method),
            model,
            images,
            targets,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=samples_batch_size,
            stdevs=stdev,
            **extra,
        )


def gradient_x_input(model: nn.Module, images: Tensor, targets: Targets) -> Tensor:
    """Gradient times input (Shrikumar et al. 2016): first-order contribution of each pixel."""
    return _attribute(InputXGradient(model), model, images, targets)


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
    model-input space); ``internal_batch_size`` path points go through the model at once."""
    if isinstance(baselines, Tensor):
        baselines = baselines.to(model_device(model))
    return _attribute(
        IntegratedGradients(model),
        model,
        images,
        targets,
        baselines=baselines,
        n_steps=steps,
        internal_batch_size=internal_batch_size,
    )


@dataclass(frozen=True)
class GuidedBackpropMaps:
    """The four views of guided backprop: ``gradients`` (B, C, H, W, signed, shown in colour),
    ``grayscale`` (B, H, W, max |g| over channels), ``positive`` and ``negative`` (B, C, H, W,
    the positive part of g and of -g)."""

    gradients: Tensor
    grayscale: Tensor
    positive: Tensor
    negative: Tensor


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
    method: GradientAttribution | NoiseTunnel,
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
