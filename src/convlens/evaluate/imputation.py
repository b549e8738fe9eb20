"""ROAD's noisy linear imputation (Rong et al. 2022), batched: removed pixels take the weighted mean
of their 8 neighbours (1/6 for the 4 direct ones, 1/12 for the diagonals, border neighbours left
out), solved jointly for every removed pixel, plus a little Gaussian noise.

The reference implementation (``road_evaluation``, copied into Quantus 0.6 as
``noisy_linear_imputation``) builds a sparse system per image and channel and solves it with
scipy on the CPU. Here all systems of a batch are solved together on the device by conjugate
gradients, whose matrix-vector product is one 3x3 stencil (the system is symmetric positive
definite while any pixel is kept); ``tests/test_evaluate_quantus.py`` checks the solution
against Quantus's. On a CPU the systems go in chunks small enough to stay in the cache
(:data:`CPU_CHUNK_BYTES`); a GPU takes them all at once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: Bytes of one (systems, 1, H, W) vector per chunk of systems on a CPU. Conjugate gradients streams
#: about five such vectors per iteration; chunks that stay in the cache go about three times as fast as
#: one batch of every system (``benchmarks/imputation_chunks.py``: 2.94x at 768 KiB, 2.85x at 2 MiB, 2.41x
#: at 256 KiB, 2.16x at 8 MiB; 65-px RGB ROAD work, one thread, AMD EPYC with 1 MiB of L2 per core).
CPU_CHUNK_BYTES = 768 * 1024


def neighbour_sum(values: Tensor) -> Tensor:
    """The weighted sum of each pixel's 8 neighbours in (..., H, W), 1/6 for the direct and 1/12 for
    the diagonal ones (Rong et al.), zero outside the image: ``[1 2 1] x [1 2 1] / 12`` minus the
    centre (:func:`block_sum`)."""
    return (block_sum(values) - 4 * values) / 12


def block_sum(values: Tensor) -> Tensor:
    """``[1 2 1] x [1 2 1]`` applied to (..., H, W), zero outside the image, as two 1-D passes of shifted
    in-place additions (no padded copy: faster than a 3x3 convolution of one channel, or than slicing a
    padded image, on the CPU)."""
    rows = 2 * values
    rows[..., :, 1:] += values[..., :, :-1]
    rows[..., :, :-1] += values[..., :, 1:]
    block = 2 * rows
    block[..., 1:, :] += rows[..., :-1, :]
    block[..., :-1, :] += rows[..., 1:, :]
    return block


def noisy_linear_imputation(
    images: Tensor,
    removed: Tensor,
    noise: float,
    generator: torch.Generator,
    iterations: int = 500,
    tolerance: float = 2e-4,
) -> Tensor:
    """``images`` (M, C, H, W) with the pixels of ``removed`` (M, H, W) imputed, plus ``noise`` times
    standard normal noise there. Conjugate gradients stop after ``iterations`` or when every
    system's residual is below ``tolerance`` times its right-hand side: a residual criterion, so the
    imputed values are close to the exact solution but not within a stated bound of it everywhere (the
    error is largest in big holes); ``tests/test_evaluate_quantus.py`` checks the solution against
    Quantus's and, at the default tolerance, within 0.02 of a tight solve, ROAD's own noise scale."""
    count, channels, height, width = images.shape
    unknown = removed[:, None].expand(-1, channels, -1, -1).reshape(-1, 1, height, width).to(images.dtype)
    flat = images.reshape(-1, 1, height, width)
    # The system: (weight sum) x - (neighbour sum of x) on the unknown pixels, written as
    # ((12 weight sum + 4) x - block_sum(x)) / 12 with the 1/12 folded into the masks handed to the
    # solver: three fused in-place passes after the block sum instead of six.
    diagonal = 12 * neighbour_sum(torch.ones_like(flat[:1])) + 4

    def operator(values: Tensor, twelfths: Tensor) -> Tensor:
        return block_sum(values).neg_().addcmul_(diagonal, values).mul_(twelfths)

    rhs = unknown * neighbour_sum(flat * (1 - unknown))
    start = unknown * _known_mean(flat, unknown)
    size = len(flat) if flat.device.type != "cpu" else max(1, CPU_CHUNK_BYTES // flat[0].nbytes)
    solution = torch.cat([
        _conjugate_gradients(operator, *chunk, iterations, tolerance)
        for chunk in zip(rhs.split(size), start.split(size), (unknown / 12).split(size), strict=True)
    ])  # fmt: skip
    jitter = noise * torch.randn(flat.shape, generator=generator, device=flat.device, dtype=flat.dtype)
    filled = flat * (1 - unknown) + unknown * (solution + jitter)
    return filled.reshape(count, channels, height, width)


def _known_mean(flat: Tensor, unknown: Tensor) -> Tensor:
    """Each image channel's mean over its kept pixels: the starting guess."""
    known = 1 - unknown
    return (flat * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1)


def _conjugate_gradients(
    operator: Callable[[Tensor, Tensor], Tensor],
    rhs: Tensor,
    start: Tensor,
    masks: Tensor,
    iterations: int,
    tolerance: float,
) -> Tensor:
    """Batched conjugate gradients: one independent system per (image, channel), scalars per system;
    ``operator(values, masks)`` applies the systems that ``masks`` describes (one row per system, here
    its unknown pixels over 12; a subset of the rows, carried along as the batch shrinks) to
    ``values``. Systems that have converged leave the batch once they are a quarter of it: a small hole
    converges in a few iterations, a large one (ROAD's 80%) needs several times more, and the batch
    would otherwise carry the finished ones to the end."""
    tiny = torch.finfo(rhs.dtype).tiny
    solution = start.clone()
    rows = torch.arange(len(rhs), device=rhs.device)
    current = start.clone()
    residual = rhs - operator(current, masks)
    direction = residual.clone()
    power = _dot(residual, residual)
    goal = (tolerance**2) * _dot(rhs, rhs).clamp_min(tiny)
    for _ in range(iterations):
        done = (power <= goal).flatten()
        finished = int(done.sum())
        if finished == len(rows) or 4 * finished >= len(rows):
            solution[rows[done]] = current[done]
            if finished == len(rows):
                return solution
            keep = ~done
            rows, current, residual, direction = rows[keep], current[keep], residual[keep], direction[keep]
            power, goal, masks = power[keep], goal[keep], masks[keep]
        product = operator(direction, masks)
        step = power / _dot(direction, product).clamp_min(tiny)
        current.addcmul_(step, direction)
        residual.addcmul_(step, product, value=-1)
        new_power = _dot(residual, residual)
        direction.mul_(new_power / power.clamp_min(tiny)).add_(residual)
        power = new_power
    solution[rows] = current
    return solution


def _dot(first: Tensor, second: Tensor) -> Tensor:
    """Per system (S, 1, 1, 1): the dot product of two (S, 1, H, W) batches, without a product array."""
    return torch.linalg.vecdot(first.flatten(1), second.flatten(1))[:, None, None, None]
