"""Batched image transforms that run on the training device.

Hand-written because torchvision's v2 transforms draw one random parameter per call, not per
sample of a batch; here every sample of a uint8 batch gets its own crop, flip, rotation and
erasing in a handful of tensor ops, so a 2-core host never starves the GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Test-time augmentation: how many views each test image is evaluated on.
TTA_VIEWS = {"none": 1, "hflip": 2, "ten_crop": 10}
#: How the crop augmentation fills the padding (``F.pad`` modes): ``constant`` black, or the image's own
#: edge pixels repeated (``replicate``) or mirrored (``reflect``), which puts no black frame on the images.
CROP_FILLS = ("constant", "replicate", "reflect")


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation, applied at the images' native resolution before resizing."""

    crop_padding: int = 0
    crop_fill: str = "constant"
    hflip: bool = False
    rotate_degrees: float = 0.0
    erase_prob: float = 0.0
    erase_scale: tuple[float, float] = (0.02, 0.2)

    def __post_init__(self) -> None:
        if self.crop_fill not in CROP_FILLS:
            raise ValueError(f"data.augment.crop_fill={self.crop_fill!r}; choose one of {', '.join(CROP_FILLS)}")


class BatchTransform:
    """uint8 (B,C,H,W) -> normalized float model input at ``image_size``; augments when training."""

    def __init__(
        self,
        image_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: AugmentSettings,
    ) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment
        self._constants: dict[torch.device, tuple[Tensor, Tensor, Tensor, Tensor]] = {}

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """mean, std, 1 / (255 std), mean / std on ``device``, copied there once: a per-batch host-to-GPU
        copy would make the host wait for the GPU at every step."""
        if device not in self._constants:
            mean, std = self.mean.to(device), self.std.to(device)
            self._constants[device] = (mean, std, 1 / (255 * std), mean / std)
        return self._constants[device]

    def __call__(self, images: Tensor, train: bool, generator: torch.Generator | None = None) -> Tensor:
        if train and self.augment.crop_padding > 0:
            images = random_crop(images, self.augment.crop_padding, generator, self.augment.crop_fill)
        if train and self.augment.hflip:
            images = random_hflip(images, generator)
        # Training batches are made channels_last, the model's layout: upsampling then writes it directly
        # (faster than NCHW on the CPU) and the model need not copy its input. Evaluation batches keep
        # their layout for the explain stage, which may reshape them.
        x = images.to(torch.float32, memory_format=torch.channels_last if train else torch.preserve_format)
        if train and self.augment.rotate_degrees > 0:
            x = random_rotate(x, self.augment.rotate_degrees, generator)
        # Normalize at the native resolution, before upsampling: interpolation weights sum to one, so this
        # equals normalizing afterwards (up to float rounding) at 1/49 of the cost for CIFAR-10 at 224.
        _, _, scale, shift = self._on(x.device)
        x = resize(x * scale - shift, self.image_size)
        if train and self.augment.erase_prob > 0:
            x = random_erase(x, self.augment.erase_prob, self.augment.erase_scale, generator)
        return x

    def views(self, images: Tensor, kind: str) -> Tensor:
        """Test-time views (V, B, C, H, W): ``hflip`` adds the mirror; ``ten_crop`` takes the centre
        and four corner crops of the padded image (the training crops' extremes, with their fill) and their mirrors."""
        if kind == "none":
            return self(images, train=False)[None]
        if kind == "hflip":
            return torch.stack([self(images, train=False), self(images.flip(-1), train=False)])
        pad = max(self.augment.crop_padding, 1)
        padded = F.pad(images, (pad, pad, pad, pad), mode=self.augment.crop_fill)
        height, width = images.shape[-2:]
        crops = [padded[..., top : top + height, left : left + width]
                 for top, left in ((pad, pad), (0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad))]  # fmt: skip
        crops += [crop.flip(-1) for crop in crops]
        return torch.stack([self(crop, train=False) for crop in crops])

    def to_display(self, x: Tensor) -> Tensor:
        """Undo the normalization: model input -> [0, 1] images for figures."""
        mean, std, _, _ = self._on(x.device)
        return (x * std + mean).clamp(0, 1)


def _rand(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator).to(device, non_blocking=True)


def random_crop(
    images: Tensor, padding: int, generator: torch.Generator | None = None, fill: str = "constant"
) -> Tensor:
    """Pad by ``padding`` (``fill``: an ``F.pad`` mode of :data:`CROP_FILLS`) and crop back to the original
    size at a per-sample random offset (one ``gather`` over the flattened padded images)."""
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode=fill)
    offsets = (_rand((batch, 2), images.device, generator) * (2 * padding + 1)).long()
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)
    cols = offsets[:, 1, None] + torch.arange(width, device=images.device)
    index = rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]
    index = index.view(batch, 1, height * width).expand(batch, channels, height * width)
    return padded.flatten(2).gather(2, index).view(batch, channels, height, width)


def random_hflip(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    flip = _rand((images.shape[0],), images.device, generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_rotate(x: Tensor, degrees: float, generator: torch.Generator | None = None) -> Tensor:
    """Rotate each float image by a uniform angle in [-degrees, degrees] (bilinear, zero fill: black
    for unnormalized pixels)."""
    angles = (_rand((x.shape[0],), x.device, generator) * 2 - 1) * math.radians(degrees)
    cos, sin = angles.cos(), angles.sin()
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erase(
    x: Tensor, prob: float, scale: tuple[float, float], generator: torch.Generator | None = None
) -> Tensor:
    """Random erasing (Zhong et al. 2017): zero a random square covering ``scale`` of the image."""
    batch, _, height, width = x.shape
    draws = _rand((batch, 4), x.device, generator)
    area = (scale[0] + draws[:, 0] * (scale[1] - scale[0])) * height * width
    side = area.sqrt().clamp(max=min(height, width))
    top = draws[:, 1] * (height - side)
    left = draws[:, 2] * (width - side)
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + side)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + side)[:, None, None])
    )
    erase = inside & (draws[:, 3] < prob)[:, None, None]
    return x.masked_fill(erase[:, None], 0.0)


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize to ``size`` x ``size`` (antialiased when shrinking); no-op at that size."""
    if x.shape[-2:] == (size, size):
        return x
    shrinking = size < x.shape[-1]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)
