"""The networks of the generator prior: the up-convolutional generator, its discriminator and the
denoising autoencoder on the code, sized for 32-48 px images and seeded without the global RNG.

The generator follows Dosovitskiy & Brox (2016), the one Nguyen et al. (2016) use in DGN-AM: a
fully connected layer lifts the code to a small feature map, then up-convolutions double its size
until it reaches the image's. No library ships such a generator for an arbitrary encoder, so it is
written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Slope of the leaky ReLUs (Dosovitskiy & Brox 2016 use 0.3; DCGAN's 0.2 trained as well here).
LEAKY_SLOPE = 0.2


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(LEAKY_SLOPE)


class UpConvGenerator(nn.Module):
    """Code (B, code_dim) -> image (B, channels, size, size) in [0, 1].

    ``widths`` are the channels at each resolution, from the first feature map (``ceil(size /
    2**(len(widths) - 1))`` pixels wide) to the last, at ``size`` (or the next multiple, resized).
    A spatial code (``code_shape`` (C, h, w), e.g. ``layer3``) enters as the feature map it is,
    resized to the first resolution and mixed by a 3x3 convolution: each position draws its own
    neighbourhood, where a fully connected layer would have to learn that locality from a few hundred
    CPU steps. Beside the up-convolutions a linear path maps the code to a half-resolution image: on a CPU
    budget of a few hundred steps it carries the coarse layout that the up-convolutions alone did not
    learn (on the demo faces they stayed at the mean image's error); both paths start at zero (a grey
    image, see :func:`seeded_init_`) until training fits the linear one in closed form
    (:func:`convlens.generator.training.fit_coarse_path_`).
    """

    def __init__(
        self, code_dim: int, channels: int, size: int, widths: Sequence[int] = (32, 16, 8),
        code_shape: Sequence[int] = (),
    ) -> None:  # fmt: skip
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"generator widths {list(widths)} need at least two resolutions")
        if code_shape and (len(code_shape) != 3 or math.prod(code_shape) != code_dim):
            raise ValueError(f"code_shape {list(code_shape)} must be (C, h, w) with C * h * w = code_dim {code_dim}")
        self.code_dim, self.channels, self.size, self.widths = code_dim, channels, size, list(widths)
        self.code_shape = list(code_shape)
        base = math.ceil(size / 2 ** (len(widths) - 1))
        self.project = _spatial_projection(code_shape, widths[0], base) if code_shape else nn.Sequential(
            nn.Linear(code_dim, widths[0] * base * base), _leaky(), nn.Unflatten(1, (widths[0], base, base))
        )  # fmt: skip
        self.up = nn.Sequential()
        for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
            block = nn.Sequential()
            block.add_module("upsample", nn.Upsample(scale_factor=2, mode="nearest"))
            block.add_module("upconv", nn.Conv2d(width_in, width_out, 3, padding=1))
            block.add_module("relu1", _leaky())
            block.add_module("conv", nn.Conv2d(width_out, width_out, 3, padding=1))
            block.add_module("relu2", _leaky())
            self.up.add_module(f"block{index}", block)
        self.to_image = nn.Conv2d(widths[-1], channels, 3, padding=1)
        self.coarse_size = math.ceil(size / 2)
        self.coarse = nn.Linear(code_dim, channels * self.coarse_size**2)

    def forward(self, code: Tensor) -> Tensor:
        x = self.to_image(self.up(self.project(code)))
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        coarse = self.coarse(code).unflatten(1, (self.channels, self.coarse_size, self.coarse_size))
        x = x + F.interpolate(coarse, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (torch.tanh(x) + 1) / 2


def _spatial_projection(code_shape: Sequence[int], width: int, base: int) -> nn.Sequential:
    """A flattened (C, h, w) code back to its map, resized to ``base`` pixels, to ``width`` channels."""
    return nn.Sequential(
        nn.Unflatten(1, tuple(code_shape)), nn.Upsample(size=(base, base), mode="nearest"),
        nn.Conv2d(code_shape[0], width, 3, padding=1), _leaky(),
    )  # fmt: skip


class Discriminator(nn.Module):
    """Image (B, channels, H, W) in [0, 1] -> one real-vs-generated logit per image: strided
    convolutions, global average pooling, a linear layer."""

    def __init__(self, channels: int, widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        self.features = nn.Sequential()
        for index, width in enumerate(widths, start=1):
            self.features.add_module(f"conv{index}", nn.Conv2d(channels, width, 4, 2, 1))
            self.features.add_module(f"relu{index}", _leaky())
            channels = width
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images * 2 - 1))[:, 0]


class CodeDenoiser(nn.Module):
    """The denoising autoencoder R of PPGN-h (Nguyen et al. 2017) on standardized codes: trained to map
    ``z + noise`` back to ``z``, so ``R(z) - z`` points towards likelier codes."""

    def __init__(self, code_dim: int, hidden: int) -> None:
        super().__init__()
        self.code_dim, self.hidden = code_dim, hidden
        self.net = nn.Sequential(
            nn.Linear(code_dim, hidden), _leaky(), nn.Linear(hidden, hidden), _leaky(), nn.Linear(hidden, code_dim)
        )

    def forward(self, code: Tensor) -> Tensor:
        return self.net(code)


def seeded_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """He initialization for leaky ReLUs (biases 0) drawn from ``generator``, so a network's starting
    weights depend on the seed alone, not on the global RNG; a generator's two output layers start at
    zero (a grey image, no saturated tanh); returns ``module``."""
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.ndim < 2:
                parameter.zero_()
            else:
                nn.init.kaiming_normal_(parameter, a=LEAKY_SLOPE, generator=generator)
        if isinstance(module, UpConvGenerator):
            module.to_image.weight.zero_()
            module.coarse.weight.zero_()
    return module
