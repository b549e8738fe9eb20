"""Faithfulness: does removing what a map ranks first change the model's answer most? Batched over
images and perturbation steps on the model's device.

- **Deletion / insertion** (Petsiuk et al. 2018, RISE): pixels are removed from the image (set to
  ``fill``) in the map's order, or inserted into a blurred copy, ``steps`` equal shares at a time;
  the curve is the softmax probability of the explained class, the score its area over the share
  of pixels changed (deletion: lower is better, insertion: higher). Deletion's curve is Quantus's
  ``PixelFlipping`` curve (plus the unperturbed start), see ``docs/trust.md``.
- **ROAD** (Rong et al. 2022, "remove and debias"): the most (MoRF) or least (LeRF) relevant
  share of pixels is removed and filled by noisy linear imputation, which hides the shape of the
  removed region from the model; the score is the mean LeRF probability minus the mean MoRF
  probability over ``road_percentages`` (higher is better, a random map scores about 0).

Pixels tied in a map are ordered by one seeded random permutation, so that a flat region (LIME's
binary maps, a CAM's zeros) is not removed in raster order. Written here because Quantus runs
these one step (ROAD: one image) at a time in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.transforms.v2.functional import gaussian_blur

from convlens.evaluate.imputation import noisy_linear_imputation
from convlens.evaluate.scores import rounded, score

FILLS = ("black", "mean")
#: Forward-pass size on a CPU, where chunks that stay in cache run faster. CPU ms per image, chunks of
#: 32 / 64 / 128 / 256 (1 thread, busy machine): demo FER CNN 1.13 / 1.04 / 1.29 / 1.87, ResNet-18 at
#: 32 px 1.81 / 1.28 / 1.10 / 1.16. A GPU takes all images at once.
CPU_MODEL_BATCH_SIZE = 64


@dataclass(frozen=True)
class FaithfulnessParams:
    """``steps`` shares of pixels removed/inserted one after another; removed pixels become the
    dataset's ``black`` or its ``mean`` (zero model input); insertion starts from the image blurred
    with a Gaussian of ``blur_sigma`` times the image side; ROAD removes each of ``road_percentages``
    (shares in (0, 1)) and imputes with noise of std ``road_noise`` (model-input units);
    ``random_draws`` random maps per image, averaged per image, make the random baseline;
    ``batch_size`` images per forward pass (None: ``CPU_MODEL_BATCH_SIZE`` on a CPU, where small chunks
    stay in cache, all at once on a GPU);
    ``seed`` draws the random maps, the order of tied pixels and ROAD's noise."""

    steps: int = 10
    fill: str = "mean"
    blur_sigma: float = 0.1
    road_percentages: list[float] = field(default_factory=lambda: [0.2, 0.5, 0.8])
    road_noise: float = 0.01
    random_draws: int = 8
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.random_draws < 1 or (self.batch_size or 1) < 1:
            raise ValueError("steps, random_draws and batch_size must be >= 1")
        if self.fill not in FILLS:
            raise ValueError(f"fill={self.fill!r}; choose one of {', '.join(FILLS)}")
        if not self.road_percentages or not all(0 < p < 1 for p in self.road_percentages):
            raise ValueError(f"road_percentages={self.road_percentages}: give shares strictly between 0 and 1")
        if self.blur_sigma <= 0 or self.road_noise < 0:
            raise ValueError("blur_sigma must be > 0 and road_noise >= 0")


@dataclass(frozen=True)
class Probe:
    """What every faithfulness metric perturbs: the model, the images (B, C, H, W) on its device, the
    classes explained (B,), the deletion fill (1 or B, C, H, W), and the seed of its random draws."""

    model: nn.Module
    inputs: Tensor
    targets: Tensor
    fill: Tensor
    seed: int = 0

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator on the images' device for random ``stream`` (0: tie orders and ROAD
        noise, the same for every map; 1, 2, ...: the baseline's random maps)."""
        return torch.Generator(device=self.inputs.device).manual_seed(self.seed * 1000 + stream)


def pixel_ranks(maps: Tensor, generator: torch.Generator) -> Tensor:
    """(B, H, W) maps -> (B, H*W) rank of each pixel, 0 for the highest; ties in a seeded random order."""
    flat = maps.flatten(1)
    shuffle = torch.randperm(flat.shape[1], generator=generator, device=flat.device)
    order = shuffle[flat[:, shuffle].argsort(dim=1, descending=True, stable=True)]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def class_probability(model: nn.Module, images: Tensor, targets: Tensor, batch_size: int | None) -> Tensor:
    """Softmax probability (M,) of each image's class ``targets`` (M,), ``batch_size`` images at a time
    (None: see :class:`FaithfulnessParams`)."""
    batch_size = batch_size or (CPU_MODEL_BATCH_SIZE if images.device.type == "cpu" else len(images))
    with torch.inference_mode():
        chunks = [
            torch.softmax(model(chunk), dim=1).gather(1, labels[:, None])[:, 0]
            for chunk, labels in zip(images.split(batch_size), targets.split(batch_size), strict=True)
        ]
    return torch.cat(chunks).float()


def perturbation_curves(probe: Probe, ranks: Tensor, params: FaithfulnessParams) -> dict[str, Tensor]:
    """Deletion and insertion curves (B, steps + 1) at the shares ``0, 1/steps, ..., 1`` of pixels,
    taken in the order of ``ranks`` (B, H*W)."""
    start = blurred(probe.inputs, params.blur_sigma)
    return {
        "deletion": switch_curve(probe, ranks, probe.inputs, probe.fill, params),
        "insertion": switch_curve(probe, ranks, start, probe.inputs, params),
    }


def switch_curve(probe: Probe, ranks: Tensor, start: Tensor, end: Tensor, params: FaithfulnessParams) -> Tensor:
    """(B, steps + 1): the class probability as the pixels ranked first switch from ``start`` to ``end``
    (each (B or 1, C, H, W)), ``0, 1/steps, ..., 1`` of them; all steps of all images in one batch."""
    count, channels, height, width = probe.inputs.shape
    shares = torch.linspace(0, 1, params.steps + 1, device=ranks.device)
    switched = (ranks[:, None] < (shares * height * width).round()[None, :, None]).reshape(count, -1, 1, height, width)
    images = torch.where(switched, end[:, None], start[:, None]).reshape(-1, channels, height, width)
    targets = probe.targets.repeat_interleave(params.steps + 1)
    return class_probability(probe.model, images, targets, params.batch_size).reshape(count, -1)


def blurred(images: Tensor, sigma_share: float) -> Tensor:
    """Insertion's start: a Gaussian blur of ``sigma_share`` times the image side (kernel 3 sigma wide
    each way, at most the image)."""
    side = min(images.shape[-2:])
    sigma = sigma_share * side
    kernel = min(2 * int(3 * sigma) + 1, 2 * side - 1)
    return gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def area(curve: Tensor) -> Tensor:
    """Area under (B, S + 1) curves sampled at equal steps over [0, 1]."""
    return torch.trapezoid(curve, dx=1 / (curve.shape[1] - 1), dim=1)


def road_curves(probe: Probe, ranks: Tensor, params: FaithfulnessParams) -> dict[str, Tensor]:
    """MoRF and LeRF probabilities (B, P) after removing the most or least relevant share of pixels
    (by ``ranks`` (B, H*W)) for each of ``road_percentages`` and imputing them."""
    count, channels, height, width = probe.inputs.shape
    pixels = height * width
    removed_counts = (torch.tensor(params.road_percentages, device=ranks.device) * pixels).round()[None, :, None]
    removed = torch.cat([ranks[:, None] < removed_counts, ranks[:, None] >= pixels - removed_counts], dim=1)
    images = probe.inputs.repeat_interleave(removed.shape[1], dim=0)
    noise = probe.generator()
    filled = noisy_linear_imputation(images, removed.reshape(-1, height, width), params.road_noise, noise)
    targets = probe.targets.repeat_interleave(removed.shape[1])
    probabilities = class_probability(probe.model, filled, targets, params.batch_size).reshape(count, 2, -1)
    return {"morf": probabilities[:, 0], "lerf": probabilities[:, 1]}


def per_image(probe: Probe, maps: Tensor, params: FaithfulnessParams) -> dict[str, Tensor]:
    """Per image (B,): ``deletion_auc``, ``insertion_auc`` and ``road``, and the curves they come from."""
    ranks = pixel_ranks(maps, probe.generator())
    curves = perturbation_curves(probe, ranks, params) | road_curves(probe, ranks, params)
    return {
        "deletion_auc": area(curves["deletion"]),
        "insertion_auc": area(curves["insertion"]),
        "road": curves["lerf"].mean(dim=1) - curves["morf"].mean(dim=1),
        **curves,
    }


def random_baseline(probe: Probe, params: FaithfulnessParams) -> dict[str, Tensor]:
    """:func:`per_image` of uniform random maps, averaged over ``random_draws`` draws."""
    count, _, height, width = probe.inputs.shape
    draws = []
    for draw in range(1, params.random_draws + 1):
        noise = torch.rand((count, height, width), generator=probe.generator(draw), device=probe.inputs.device)
        draws.append(per_image(probe, noise, params))
    return {name: torch.stack([draw[name] for draw in draws]).mean(dim=0) for name in draws[0]}


BETTER = {"deletion_auc": "lower", "insertion_auc": "higher", "road": "higher"}
CURVES = ("deletion", "insertion", "morf", "lerf")


def faithfulness(
    values: dict[str, Tensor], baselines: dict[str, dict[str, Tensor]], params: FaithfulnessParams
) -> dict[str, Any]:
    """The JSON record of one method-layer: each score tested against each of ``baselines`` (by name,
    random maps first, each :func:`per_image` on the same images), and the mean curves."""
    record: dict[str, Any] = {
        name: score(values[name], {baseline: found[name] for baseline, found in baselines.items()}, better)
        for name, better in BETTER.items()
    }
    return record | {"curves": mean_curves(values, params)}


def mean_curves(values: dict[str, Tensor], params: FaithfulnessParams) -> dict[str, list[float | None]]:
    """The curves of :func:`per_image` averaged over the images, with the shares they are taken at."""
    means = {name: [rounded(float(v)) for v in values[name].mean(dim=0)] for name in CURVES}
    shares = [round(i / params.steps, 4) for i in range(params.steps + 1)]
    return {"shares": shares, "road_percentages": list(params.road_percentages), **means}
