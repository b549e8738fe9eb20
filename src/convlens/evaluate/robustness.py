"""Robustness: max-sensitivity (Yeh et al. 2019), how far a map moves under small input noise.

For each image, ``samples`` copies get uniform noise in [-radius, radius] (model-input units, the
default is Quantus's ``MaxSensitivity`` bound); the method explains all copies in one batch, and the
score is the largest ``||map(x + noise) - map(x)|| / ||map(x)||`` (Frobenius norms) over the copies,
as Quantus defines it. Lower is better; the reference is uniform random maps drawn afresh for every
copy, i.e. a map that has nothing to do with the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from convlens.evaluate.recompute import Recompute
from convlens.registry import costly_methods


@dataclass(frozen=True)
class RobustnessParams:
    """``samples`` noisy copies of each of the first ``images`` images, noise uniform in
    [-``radius``, ``radius``] in model-input units, drawn from ``seed``; methods in ``skip`` (default:
    those registered ``costly``, whose maps cost too much to compute ``samples`` times) are left out,
    with that reason recorded."""

    images: int = 3
    samples: int = 3
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
