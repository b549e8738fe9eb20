"""Robustness: max-sensitivity (Yeh et al. 2019), how far a map moves under small input noise.

For each image, ``samples`` copies get uniform noise in [-radius, radius] (model-input units, the
default is Quantus's ``MaxSensitivity`` bound); the method explains all copies in one batch, and the
score is the largest ``||map(x + noise) - map(x)|| / ||map(x)||`` (Frobenius norms) over the copies,
as Quantus defines it. Lower is better; the reference is uniform random maps drawn afresh for every
copy, i.e. a map that has nothing to do with the input. A second reference is the Sobel edge map of the
model input on the same noisy copies (:func:`edge_sensitivity`): a method no steadier than an edge
detector is steady for the image's sake, not the model's. Read with randomization: a constant map is
perfectly robust and says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlens.evaluate.recompute import Recompute
from convlens.registry import costly_methods


@dataclass(frozen=True)
class RobustnessParams:
    """``samples`` noisy copies of each of the first ``images`` images, noise uniform in
    [-``radius``, ``radius``] in model-input units, drawn from ``seed``; methods in ``skip`` (default:
    those registered ``costly``, whose maps cost too much to compute ``samples`` times) are left out,
    with that reason recorded."""

    images: int = 16
    samples: int = 20
    radius: float = 0.2
    seed: int = 0
    skip: list[str] = field(default_factory=costly_methods)

    def __post_init__(self) -> None:
        if self.images < 1 or self.samples < 1:
            raise ValueError("images and samples must be >= 1")
        if self.radius <= 0:
            raise ValueError(f"radius={self.radius} must be > 0")


def noisy_copies(inputs: Tensor, params: RobustnessParams) -> Tensor:
    """(samples * B, C, H, W): ``samples`` noisy copies of the batch, one after another."""
    generator = torch.Generator(device=inputs.device).manual_seed(params.seed)
    copies = inputs.repeat(params.samples, 1, 1, 1)
    noise = torch.rand(copies.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
    return copies + (2 * noise - 1) * params.radius


def relative_change(reference: Tensor, perturbed: Tensor, samples: int) -> Tensor:
    """Per image (B,): the largest Frobenius norm of ``perturbed - reference`` over the ``samples``
    copies ((samples * B, H, W), copy-major) relative to that of ``reference`` (B, H, W)."""
    changes = (perturbed.reshape(samples, *reference.shape) - reference).flatten(2).norm(dim=2)
    norm = reference.flatten(1).norm(dim=1)
    return torch.where(norm > 0, changes.amax(dim=0) / norm.clamp_min(torch.finfo(norm.dtype).tiny), torch.nan)


def max_sensitivity(
    recompute: Recompute, model: nn.Module, inputs: Tensor, targets: Tensor, reference: dict[str, Tensor],
    params: RobustnessParams,
) -> dict[str, Tensor]:  # fmt: skip
    """Per layer, per image (B,): the max-sensitivity of the method's maps ``reference`` (B, H, W)."""
    perturbed = recompute(model, noisy_copies(inputs, params), targets.repeat(params.samples))
    return {layer: relative_change(reference[layer], perturbed[layer], params.samples) for layer in reference}


def random_reference(shape: torch.Size, params: RobustnessParams, device: torch.device) -> Tensor:
    """Per image (B,): max-sensitivity of uniform random maps of ``shape`` (B, H, W), redrawn per copy."""
    generator = torch.Generator(device=device).manual_seed(params.seed + 1)
    reference = torch.rand(shape, generator=generator, device=device)
    redrawn = torch.rand((params.samples * shape[0], *shape[1:]), generator=generator, device=device)
    return relative_change(reference, redrawn, params.samples)


#: ``skimage.color.rgb2gray``'s luminance weights, applied to RGB model inputs.
LUMINANCE = (0.2125, 0.7154, 0.0721)


def edge_maps_of_inputs(inputs: Tensor) -> Tensor:
    """Sobel edge magnitude (B, H, W) of model inputs (B, 1 or 3, H, W), as ``skimage.filters.sobel``
    computes it (``sqrt((gx^2 + gy^2) / 2)`` with ``[1 2 1] / 4`` smoothing, edges repeated at the border)
    on the gray input or the luminance-weighted sum of the RGB channels; in torch, on the inputs' device."""
    weights = torch.tensor(LUMINANCE if inputs.shape[1] == 3 else (1.0,), device=inputs.device, dtype=inputs.dtype)
    gray = (inputs * weights[:, None, None]).sum(dim=1, keepdim=True)
    smooth = torch.tensor([1.0, 2.0, 1.0], device=inputs.device, dtype=inputs.dtype) / 4
    slope = torch.tensor([1.0, 0.0, -1.0], device=inputs.device, dtype=inputs.dtype)
    kernels = torch.stack([smooth[:, None] * slope[None, :], slope[:, None] * smooth[None, :]])[:, None]
    gradients = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.square().mean(dim=1).sqrt()


def edge_sensitivity(inputs: Tensor, params: RobustnessParams) -> Tensor:
    """Per image (B,): max-sensitivity of the Sobel edge maps of ``inputs`` on the very noisy copies
    :func:`max_sensitivity` explains (same seed), the model-free reference a method must beat."""
    perturbed = edge_maps_of_inputs(noisy_copies(inputs, params))
    return relative_change(edge_maps_of_inputs(inputs), perturbed, params.samples)
