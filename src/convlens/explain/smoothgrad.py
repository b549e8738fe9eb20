"""SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image, on vanilla
and on guided gradients (captum's ``Saliency`` and ``GuidedBackprop``).

The noise tunnel is written here rather than taken from captum's ``NoiseTunnel``, which takes one noise
std per input tensor: with the paper's std (a share of each image's own value range) that means one
call per image, ``samples_batch_size`` copies of one small image per pass. Here one seeded noise
pattern per copy, scaled by each image's own range, goes through the model for every image of the
batch at once, so an image's map still does not depend on the other images of the batch, and a pass
holds ``samples_batch_size`` noisy images whichever images they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import GradientAttribution, GuidedBackprop, Saliency
from torch import Tensor, nn

from convlens.explain.attribution import AttributionMaps, Targets, _attribute, as_target_tensor, saliency_map
from convlens.explain.method import ExplainBatch, MethodParams, at_least
from convlens.models.conventions import conforming


@dataclass(frozen=True)
class SmoothGradMaps:
    """SmoothGrad saliency (B, H, W) on vanilla and on guided gradients."""

    vanilla: np.ndarray
    guided: np.ndarray

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        return {None: self.vanilla}


@dataclass(frozen=True)
class SmoothGradParams(MethodParams):
    """``samples`` noisy copies per image (Smilkov et al. use >= 25), noise std ``noise_level`` times
    the image's value range, ``samples_batch_size`` noisy images per forward pass, noise drawn from ``seed``."""

    samples: int = 25
    noise_level: float = 0.15
    samples_batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        at_least("samples", self.samples, 25, "SmoothGrad needs at least 25 noise samples")
        at_least("samples_batch_size", self.samples_batch_size, 1)


@conforming
def smoothgrad(
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    *,
    guided: bool = False,
    samples: int = 25,
    noise_level: float = 0.15,
    samples_batch_size: int = 64,
    seed: int = 0,
) -> Tensor:
    """The signed gradient (guided: guided backprop's) averaged over ``samples`` noisy copies of each
    image (B, C, H, W); noise std ``noise_level`` times each image's own value range, the noise drawn
    from ``seed`` without touching the global random state."""
    method: GradientAttribution = GuidedBackprop(model) if guided else Saliency(model)
    extra = {} if guided else {"abs": False}
    targets = as_target_tensor(targets, len(images), torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((samples, *images.shape[1:]), generator=generator).to(images.device)
    stdevs = noise_level * (images.flatten(1).amax(dim=1) - images.flatten(1).amin(dim=1))
    noisy = (images[None] + stdevs[None, :, None, None, None] * noise[:, None]).flatten(0, 1)
    repeated = targets.repeat(samples)
    gradients = torch.cat([
        _attribute(method, model, chunk, chunk_targets, **extra)
        for chunk, chunk_targets in zip(noisy.split(samples_batch_size), repeated.split(samples_batch_size),
                                        strict=True)
    ])  # fmt: skip
    return gradients.reshape(samples, *images.shape).mean(dim=0)


def _settings(params: SmoothGradParams) -> dict[str, object]:
    return {"samples": params.samples, "noise_level": params.noise_level,
            "samples_batch_size": params.samples_batch_size, "seed": params.seed}  # fmt: skip


@conforming
def explain_smoothgrad(model: nn.Module, batch: ExplainBatch, params: SmoothGradParams) -> SmoothGradMaps:
    """SmoothGrad on vanilla and on guided gradients, reduced to saliency maps."""
    vanilla = smoothgrad(model, batch.inputs, batch.targets, **_settings(params))
    guided = smoothgrad(model, batch.inputs, batch.targets, guided=True, **_settings(params))
    return SmoothGradMaps(saliency_map(vanilla).numpy(), saliency_map(guided).numpy())


@conforming
def localise_smoothgrad(model: nn.Module, batch: ExplainBatch, params: SmoothGradParams) -> AttributionMaps:
    """The map the evaluation scores (vanilla SmoothGrad's saliency) without the guided variant the
    figure also shows: half the model passes."""
    return AttributionMaps(saliency_map(smoothgrad(model, batch.inputs, batch.targets, **_settings(params))).numpy())
