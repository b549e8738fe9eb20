"""Class activation maps with the grad-cam package: Grad-CAM, LayerCAM and Guided Grad-CAM.

Each map is computed for one layer at a time (grad-cam would average several layers into one
map; here every stage gets its own), normalized to [0, 1] per image and bilinearly upsampled to
the input size by grad-cam (``cv2.resize``). Maps are returned as ``{layer: Tensor (B, H, W)}``.
Guided Grad-CAM is the product of a Grad-CAM map and captum's guided backprop, which grad-cam
offers only for one image at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from convlens.explain.attribution import Targets, as_target_tensor, guided_gradients
from convlens.explain.layers import eval_mode, model_device, resolve_layer


def grad_cam(model: nn.Module, images: Tensor, targets: Targets, layers: Sequence[str]) -> dict[str, Tensor]:
    """Grad-CAM (Selvaraju et al. 2017): relu(sum_k mean_ij(dY/dA_k) A_k) for each layer."""
    return {layer: _cam(GradCAM, model, images, targets, layer) for layer in layers}


def layer_cam(model: nn.Module, images: Tensor, targets: Targets, layers: Sequence[str]) -> dict[str, Tensor]:
    """LayerCAM (Jiang et al. 2021): relu(sum_k relu(dY/dA_k) * A_k), element-wise weights, so
    early layers give fine-grained maps too."""
    return {layer: _cam(LayerCAM, model, images, targets, layer) for layer in layers}


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


def _cam(method: type[BaseCAM], model: nn.Module, images: Tensor, targets: Targets, layer: str) -> Tensor:
    """One grad-cam method on one layer for a batch; hooks and parameter gradients are cleared afterwards."""
    target_layer = resolve_layer(model, layer)
    device = model_device(model)
    classes = as_target_tensor(targets, len(images), device).tolist()
    with eval_mode(model):
        cam = method(model=model, target_layers=[target_layer])
        try:
            maps = cam(input_tensor=images.to(device), targets=[ClassifierOutputTarget(c) for c in classes])
        finally:
            cam.activations_and_grads.release()
            model.zero_grad(set_to_none=True)
    return torch.from_numpy(maps)
