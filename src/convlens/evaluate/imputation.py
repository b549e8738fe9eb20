"""ROAD's noisy linear imputation (Rong et al. 2022), batched: removed pixels take the weighted mean
of their 8 neighbours (1/6 for the 4 direct ones, 1/12 for the diagonals, border neighbours left
out), solved jointly for every removed pixel, plus a little Gaussian noise.

The reference implementation (``road_evaluation``, copied into Quantus 0.6 as
``noisy_linear_imputation``) builds a sparse system per image and channel and solves it with
scipy on the CPU. Here all systems of a batch are solved together on the device by conjugate
gradients, whose matrix-vector product is one 3x3 convolution (the system is symmetric positive
definite while any pixel is kept); ``tests/test_evaluate_faithfulness.py`` checks the solution
against Quantus's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Neighbour weights of the imputation (Rong et al.): direct neighbours 1/6, diagonal ones 1/12.
NEIGHBOURS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


def noisy_linear_imputation(
    images: Tensor,
    removed: Tensor,
    noise: float,
    generator: torch.Generator,
    iterations: int = 500,
    tolerance: float = 1e-3,
) -> Tensor:
    """``images`` (M, C, H, W) with the pixels of ``removed`` (M, H, W) imputed, plus ``noise`` times
    standard normal noise there. Conjugate gradients stop after ``iterations`` or when every
    system's residual is below ``tolerance`` times its right-hand side: by default the imputed values
    are then within about 0.01 of the exact solution on unit-variance images, no more than the
    noise ROAD adds on purpose."""
    count, channels, height, width = images.shape
    kernel = torch.tensor(NEIGHBOURS, dtype=images.dtype, device=images.device)[None, None]
    unknown = removed[:, None].expand(-1, channels, -1, -1).reshape(-1, 1, height, width).to(images.dtype)
    flat = images.reshape(-1, 1, height, width)
    weight_sum = F.conv2d(torch.ones_like(flat[:1]), kernel, padding=1)

    def operator(values: Tensor) -> Tensor:
        return unknown * (weight_sum * values - F.conv2d(values, kernel, padding=1))

    rhs = unknown * F.conv2d(flat * (1 - unknown), kernel, padding=1)
    solution = _conjugate_gradients(operator, rhs, unknown * _known_mean(flat, unknown), iterations, tolerance)
    jitter = noise * torch.randn(flat.shape, generator=generator, device=flat.device, dtype=flat.dtype)
    filled = flat * (1 - unknown) + unknown * (solution + jitter)
    return filled.reshape(count, channels, height, width)


def _known_mean(flat: Tensor, unknown: Tensor) -> Tensor:
    """Each image channel's mean over its kept pixels: the starting guess."""
    known = 1 - unknown
    return (flat * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1)


def _conjugate_gradients(
    operator: Callable[[Tensor], Tensor], rhs: Tensor, start: Tensor, iterations: int, tolerance: float
) -> Tensor:
    """Batched conjugate gradients: one independent system per (image, channel), scalars per system."""
    dims = (1, 2, 3)
    solution = start
    residual = rhs - operator(solution)
    direction = residual
    power = (residual * residual).sum(dim=dims, keepdim=True)
    goal = (tolerance**2) * (rhs * rhs).sum(dim=dims, keepdim=True).clamp_min(torch.finfo(rhs.dtype).tiny)
    for _ in range(iterations):
        if bool((power <= goal).all()):
            break
        product = operator(direction)
        step = power / (direction * product).sum(dim=dims, keepdim=True).clamp_min(torch.finfo(rhs.dtype).tiny)
        solution = solution + step * direction
        residual = residual - step * product
        new_power = (residual * residual).sum(dim=dims, keepdim=True)
        direction = residual + (new_power / power.clamp_min(torch.finfo(rhs.dtype).tiny)) * direction
        power = new_power
    return solution
