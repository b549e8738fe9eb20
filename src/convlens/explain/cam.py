"""Class activation maps with the grad-cam package: Grad-CAM, LayerCAM and Guided Grad-CAM.

Every stage gets its own map (grad-cam would average several layers into one), all from one forward
and backward pass per method: grad-cam computes its per-layer maps in that pass, and only its averaging
is replaced. Each map is normalized to [0, 1] per image and bilinearly upsampled to the input size by
grad-cam (``cv2.resize``), exactly as a call for that layer alone would. Maps are returned as
``{layer: Tensor (B, H, W)}``.
Guided Grad-CAM is the product of a Grad-CAM map and captum's guided backprop, which grad-cam
offers only for one image at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from convlens.explain.attribution import Targets, as_target_tensor, guided_gradients
from convlens.explain.method import ExplainBatch, MethodParams, NotApplicable
from convlens.models.conventions import conforming
from convlens.models.layers import (
    capture_activations,
    default_cam_layers,
    eval_mode,
    frozen_parameters,
    model_device,
    pooled_stages,
    resolve_layer,
)

#: Smallest layer output (positions per side) whose class activation map can locate anything: a 1x1
#: map is constant, a 2x2 map only tells the quadrants apart, and on the 33 px shapes demo the 3x3
#: layer3 drew the same four-corner pattern on every image and scored below random maps on pointing
#: game (issue 23); from 5x5 a cell is a fifth of the side, smaller than the objects. (A 3x3 layer4 of
#: the 65 px demo did locate, 0.80-0.86 over 5 seeds: benchmarks/shapes_resolution.py; 5x5 is the issue's bar.)
MIN_CAM_SIZE = 5


@conforming
def grad_cam(model: nn.Module, images: Tensor, targets: Targets, layers: Sequence[str]) -> dict[str, Tensor]:
    """Grad-CAM (Selvaraju et al. 2017): relu(sum_k mean_ij(dY/dA_k) A_k) for each layer."""
    return _cams(_PerLayerGradCAM, model, images, targets, layers)


@conforming
def layer_cam(model: nn.Module, images: Tensor, targets: Targets, layers: Sequence[str]) -> dict[str, Tensor]:
    """LayerCAM (Jiang et al. 2021): relu(sum_k relu(dY/dA_k) * A_k), element-wise weights, so
    early layers give fine-grained maps too."""
    return _cams(_PerLayerLayerCAM, model, images, targets, layers)


@conforming
def guided_grad_cam(
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    layers: Sequence[str],
    guided: Tensor | None = None,
) -> dict[str, Tensor]:
    """Guided Grad-CAM: guided backprop (B, C, H, W) masked by each layer's Grad-CAM map.

    Pass ``guided`` (from :func:`~convlens.explain.attribution.guided_gradients`) to reuse it.
    """
    if guided is None:
        guided = guided_gradients(model, images, targets)
    cams = grad_cam(model, images, targets, layers)
    return {layer: guided * cam.unsqueeze(1) for layer, cam in cams.items()}


class _PerLayer(BaseCAM):
    """A grad-cam method that returns its per-layer maps (B, L, H, W) instead of their average, each
    rescaled by grad-cam's own aggregation of that layer alone, i.e. as a one-layer call returns it."""

    def aggregate_multi_layers(self, cam_per_target_layer: list[np.ndarray]) -> np.ndarray:
        aggregate = super().aggregate_multi_layers
        return np.stack([aggregate([cam]) for cam in cam_per_target_layer], axis=1)


class _PerLayerGradCAM(_PerLayer, GradCAM):
    """Grad-CAM, one map per target layer."""


class _PerLayerLayerCAM(_PerLayer, LayerCAM):
    """LayerCAM, one map per target layer."""


def _cams(
    method: type[_PerLayer], model: nn.Module, images: Tensor, targets: Targets, layers: Sequence[str]
) -> dict[str, Tensor]:
    """One grad-cam method on all ``layers`` in one forward and backward pass; hooks are released and
    gradients cleared afterwards. grad-cam pairs its i-th target layer with the i-th activation to
    arrive, so the maps are labelled in the order the layers ran (recorded by ``ran``); a layer run
    twice (a reused module) would shift that pairing, so it may only be mapped alone, as before."""
    device = model_device(model)
    classes = as_target_tensor(targets, len(images), device).tolist()
    inputs = images.to(device).detach().requires_grad_()
    with eval_mode(model), frozen_parameters(model), capture_activations(model, layers) as ran:
        cam = method(model=model, target_layers=[resolve_layer(model, layer) for layer in layers])
        try:
            maps = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(c) for c in classes])
            arrived = len(cam.activations_and_grads.activations)
        finally:
            cam.activations_and_grads.release()
            model.zero_grad(set_to_none=True)
    if len(layers) > 1 and not arrived == len(ran) == len(layers):
        raise ValueError(f"layers {list(layers)}: to share a pass, each must be listed once and run once")
    by_layer = {layer: torch.from_numpy(maps[:, index]) for index, layer in enumerate(ran)}
    return {layer: by_layer[layer] for layer in layers}


# --- the registered methods ------------------------------------------------------------------------


@dataclass(frozen=True)
class CamParams(MethodParams):
    """The layers that get a map each; None: ``layer2..layer4``, each before its pooling where the stage
    ends with one (:func:`~convlens.models.layers.default_cam_layers`)."""

    layers: list[str] | None = None

    def resolved(self, model: nn.Module) -> Self:
        return dataclasses.replace(self, layers=list(self.layers) if self.layers else default_cam_layers(model))


@dataclass(frozen=True)
class CamMaps:
    """Per layer, maps (B, H, W) at input resolution and the ``sizes`` (h, w) they were computed at;
    ``skipped``: the configured layers whose maps are too small to locate anything, with the reason."""

    maps: dict[str, Tensor]
    sizes: dict[str, tuple[int, int]]
    skipped: dict[str, str] = field(default_factory=dict)
    #: The mapped layers that stand for a stage ending in pooling, with the stage (:func:`pooled_stages`).
    pooled: dict[str, str] = field(default_factory=dict)

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        return {layer: maps.numpy() for layer, maps in self.maps.items()}

    def notes(self) -> list[str]:
        return layer_notes(self.skipped, self.pooled)


@dataclass(frozen=True)
class GuidedCamImages:
    """Guided Grad-CAM per layer: (B, C, H, W) gradient images; ``sizes`` and ``skipped`` as above."""

    images: dict[str, Tensor]
    sizes: dict[str, tuple[int, int]]
    skipped: dict[str, str] = field(default_factory=dict)
    pooled: dict[str, str] = field(default_factory=dict)

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        """|guided Grad-CAM|, max over channels: where the class evidence of each layer lies."""
        return {layer: images.abs().amax(dim=1).numpy() for layer, images in self.images.items()}

    def notes(self) -> list[str]:
        return layer_notes(self.skipped, self.pooled)


def layer_notes(skipped: dict[str, str], pooled: dict[str, str]) -> list[str]:
    """What the report says about the layers: why some are left out, and which stand for a stage that ends
    in pooling (said only where one does: a ResNet's stages end with a block)."""
    if not pooled:
        return list(skipped.values())
    stages, layers = list(pooled.values()), ", ".join(pooled)
    subject = (
        f"{stages[0]} ends with pooling, so it is"
        if len(stages) == 1
        else (", ".join(stages[:-1]) + f" and {stages[-1]} end with pooling, so each is")
    )
    return [*skipped.values(), (
        f"{subject} mapped at its last layer before the pooling ({layers}): Grad-CAM's "
        "last convolutional layer (Selvaraju et al. take VGG-16's relu5_3, not pool5), a finer map than the "
        "pooled output's"
    )]  # fmt: skip


@conforming
def explain_grad_cam(model: nn.Module, batch: ExplainBatch, params: CamParams) -> CamMaps:
    """Grad-CAM of each layer large enough to locate anything, upsampled bilinearly to the input."""
    layers, sizes, skipped = mappable_layers(model, batch, params.resolved(model).layers or [])
    return CamMaps(grad_cam(model, batch.inputs, batch.targets, layers), sizes, skipped, pooled_stages(model, layers))


@conforming
def explain_layer_cam(model: nn.Module, batch: ExplainBatch, params: CamParams) -> CamMaps:
    """LayerCAM of each layer large enough to locate anything, upsampled bilinearly to the input."""
    layers, sizes, skipped = mappable_layers(model, batch, params.resolved(model).layers or [])
    return CamMaps(layer_cam(model, batch.inputs, batch.targets, layers), sizes, skipped, pooled_stages(model, layers))


@conforming
def explain_guided_grad_cam(model: nn.Module, batch: ExplainBatch, params: CamParams) -> GuidedCamImages:
    """Guided Grad-CAM of each layer large enough: guided backprop masked by the layer's Grad-CAM."""
    layers, sizes, skipped = mappable_layers(model, batch, params.resolved(model).layers or [])
    return GuidedCamImages(
        guided_grad_cam(model, batch.inputs, batch.targets, layers), sizes, skipped, pooled_stages(model, layers)
    )


def mappable_layers(
    model: nn.Module, batch: ExplainBatch, layers: Sequence[str]
) -> tuple[list[str], dict[str, tuple[int, int]], dict[str, str]]:
    """The layers whose output is at least ``MIN_CAM_SIZE`` positions on each side at the batch's input
    size, their sizes, and why the others are skipped; ``NotApplicable`` when none is left."""
    sizes = map_sizes(model, batch, layers)
    skipped = {
        layer: f"{layer} is {height}x{width} at {batch.inputs.shape[-1]} px input: a class activation map needs at "
        f"least {MIN_CAM_SIZE}x{MIN_CAM_SIZE} positions to show where anything is, so it is left out"
        for layer, (height, width) in sizes.items()
        if min(height, width) < MIN_CAM_SIZE
    }
    kept = [layer for layer in layers if layer not in skipped]
    if not kept:
        raise NotApplicable(" ".join(skipped.values()))
    return kept, sizes, skipped


def map_sizes(model: nn.Module, batch: ExplainBatch, layers: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The (h, w) of each layer's output for the batch's input size (one forward pass of one image)."""
    with eval_mode(model), capture_activations(model, list(layers)) as captured, torch.no_grad():
        model(batch.inputs[:1].to(model_device(model)))
    return {layer: tuple(captured[layer].shape[-2:]) for layer in layers}
