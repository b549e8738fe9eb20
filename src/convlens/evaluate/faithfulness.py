"""Faithfulness: does removing what a map ranks first change the model's answer most? Batched over
images and perturbation steps on the model's device.

- **Deletion / insertion** (Petsiuk et al. 2018, RISE): pixels are removed from the image (set to
  ``fill``) in the map's order, or inserted into a blurred copy, and the softmax probability of the
  explained class is taken at a fixed grid of shares of pixels switched, ``0, *shares, 1``; the score
  is the curve's area over the share axis (trapezoids; deletion: lower is better, insertion: higher).
  The default grid steps by 1% of the pixels where the curves move (on the demos' 32-48 px images
  they fall within the first fifth of the pixels) and coarser later. Pixels go tile by tile
  (``patch``, the tile's mean relevance; region perturbation, Samek et al. 2017): scattered single
  pixels, which is how a random map removes them, take the image out of what the model knows and
  make random maps hard to beat for reasons unrelated to which pixels matter. With ``patch=0`` and
  equal shares, deletion's curve is Quantus's ``PixelFlipping`` curve (plus the unperturbed start),
  see ``docs/trust.md``.
- **ROAD** (Rong et al. 2022, "remove and debias"): the most (MoRF) or least (LeRF) relevant
  share of pixels is removed and filled by noisy linear imputation, which hides the shape of the
  removed region from the model; the score is the mean LeRF probability minus the mean MoRF
  probability over ``road_percentages`` (higher is better, a random map scores about 0).

The curves' ends do not depend on the map (the image, the filled image, the blurred image): they are
computed once per :class:`Probe`, shared by every map scored on it. Pixels tied in a map are ordered
by one seeded random permutation, so that a flat region (a LIME superpixel, a CAM's zeros) is not
removed in raster order. Written here because Quantus runs these one step (ROAD: one image) at a
time in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2.functional import gaussian_blur

from convlens.evaluate.imputation import noisy_linear_imputation
from convlens.evaluate.scores import rounded, scores

FILLS = ("black", "mean")
#: Forward-pass size on a CPU, where chunks that stay in cache run faster. CPU ms per image, chunks of
#: 32 / 64 / 128 / 256 (1 thread, busy machine): demo FER CNN 1.13 / 1.04 / 1.29 / 1.87, ResNet-18 at
#: 32 px 1.81 / 1.28 / 1.10 / 1.16. A GPU takes all images at once.
CPU_MODEL_BATCH_SIZE = 64
#: Shares of pixels switched between the curves' fixed ends 0 and 1: 1% steps over the first 3%, where
#: the demos' curves fall fastest, 2-5% steps up to a quarter, then halves. 9 points: 18 forward passes
#: per image and map for both curves, 24 with ROAD's 3 shares (the ends are computed once per image).
SHARES = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.25, 0.5]


@dataclass(frozen=True)
class FaithfulnessParams:
    """Deletion and insertion take the class probability after switching each of ``shares`` (strictly
    increasing, strictly between 0 and 1; 0 and 1 are always added) of the pixels, tile by tile, tiles
    of side ``patch`` times the image side (0: pixel by pixel); removed pixels become the dataset's
    ``black`` or its ``mean`` (zero model input); insertion starts from the image blurred with a
    Gaussian of ``blur_sigma`` times the image side (Petsiuk et al.: sigma 5 px in an 11 px kernel on
    224 px images, 0.022 nominal, 0.014 effective; that leaves the demos' 32-48 px images readable,
    0.1 brings them to about chance); ROAD removes each of ``road_percentages`` (shares in (0, 1)) and imputes
    with noise of std ``road_noise`` (model-input units); ``random_draws`` random maps per image,
    averaged per image, make the random baseline; ``batch_size`` images per forward pass (None:
    ``CPU_MODEL_BATCH_SIZE`` on a CPU, where small chunks stay in cache, all at once on a GPU);
    ``seed`` draws the random maps, the order of tied pixels and ROAD's noise."""

    shares: list[float] = field(default_factory=lambda: list(SHARES))
    patch: float = 0.25
    fill: str = "mean"
    blur_sigma: float = 0.1
    road_percentages: list[float] = field(default_factory=lambda: [0.2, 0.5, 0.8])
    road_noise: float = 0.01
    random_draws: int = 8
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.random_draws < 1 or (self.batch_size or 1) < 1:
            raise ValueError("random_draws and batch_size must be >= 1")
        if not 0 <= self.patch <= 1:
            raise ValueError(f"patch={self.patch}: give the tile side as a share of the image side, in [0, 1]")
        if self.fill not in FILLS:
            raise ValueError(f"fill={self.fill!r}; choose one of {', '.join(FILLS)}")
        if not self.shares or not all(low < high for low, high in pairwise(self.grid)):
            raise ValueError(f"shares={self.shares}: give one or more increasing shares strictly between 0 and 1")
        if not self.road_percentages or not all(0 < p < 1 for p in self.road_percentages):
            raise ValueError(f"road_percentages={self.road_percentages}: give shares strictly between 0 and 1")
        if self.blur_sigma <= 0 or self.road_noise < 0:
            raise ValueError("blur_sigma must be > 0 and road_noise >= 0")

    @property
    def grid(self) -> list[float]:
        """The shares the curves are taken at, ends included."""
        return [0.0, *self.shares, 1.0]


@dataclass(frozen=True)
class Probe:
    """What every faithfulness metric perturbs: the model, the images (B, C, H, W) on its device, the
    classes explained (B,), the deletion fill (1 or B, C, H, W), and the seed of its random draws.
    ``cache`` keeps what does not depend on the map (see :func:`ends`)."""

    model: nn.Module
    inputs: Tensor
    targets: Tensor
    fill: Tensor
    seed: int = 0
    cache: dict[float, dict[str, Tensor]] = field(default_factory=dict, repr=False, compare=False)

    def subset(self, rows: Tensor) -> Probe:
        """The probe of the images at ``rows`` (a method's), with the ends already computed for them."""
        fill = self.fill if len(self.fill) == 1 else self.fill[rows]
        cache = {sigma: {name: values[rows] for name, values in found.items()} for sigma, found in self.cache.items()}
        return Probe(self.model, self.inputs[rows], self.targets[rows], fill, self.seed, cache)

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
    """Deletion and insertion curves (B, len(grid)) at the shares ``params.grid`` of pixels, taken in
    the order of ``ranks`` (B, H*W); the map-independent ends come from :func:`ends`."""
    fixed = ends(probe, params)
    deletion = switch_curve(probe, ranks, probe.inputs, probe.fill, params)
    insertion = switch_curve(probe, ranks, fixed["blurred_image"], probe.inputs, params)
    return {
        "deletion": torch.cat([fixed["image"][:, None], deletion, fixed["filled"][:, None]], dim=1),
        "insertion": torch.cat([fixed["blurred"][:, None], insertion, fixed["image"][:, None]], dim=1),
    }


def ends(probe: Probe, params: FaithfulnessParams) -> dict[str, Tensor]:
    """The class probability (B,) of the ``image``, the ``filled`` image (deletion's end) and the
    ``blurred`` image (insertion's start, kept as ``blurred_image``): the same for every map, so
    computed once per probe and blur."""
    if params.blur_sigma not in probe.cache:
        start = blurred(probe.inputs, params.blur_sigma)
        images = torch.cat([probe.inputs, probe.fill.expand_as(probe.inputs), start])
        probabilities = class_probability(probe.model, images, probe.targets.repeat(3), params.batch_size)
        found = dict(zip(("image", "filled", "blurred"), probabilities.split(len(probe.inputs)), strict=True))
        probe.cache[params.blur_sigma] = found | {"blurred_image": start}
    return probe.cache[params.blur_sigma]


def switch_curve(probe: Probe, ranks: Tensor, start: Tensor, end: Tensor, params: FaithfulnessParams) -> Tensor:
    """(B, len(shares)): the class probability after the pixels ranked first, each of ``params.shares``
    of them, switch from ``start`` to ``end`` (each (B or 1, C, H, W)); all of them in one batch."""
    count, channels, height, width = probe.inputs.shape
    shares = torch.tensor(params.shares, device=ranks.device)
    switched = (ranks[:, None] < (shares * height * width).round()[None, :, None]).reshape(count, -1, 1, height, width)
    images = torch.where(switched, end[:, None], start[:, None]).reshape(-1, channels, height, width)
    targets = probe.targets.repeat_interleave(len(params.shares))
    return class_probability(probe.model, images, targets, params.batch_size).reshape(count, -1)


def blurred(images: Tensor, sigma_share: float) -> Tensor:
    """Insertion's start: a Gaussian blur of ``sigma_share`` times the image side (kernel 3 sigma wide
    each way, at most the image; reflected at the border)."""
    side = min(images.shape[-2:])
    sigma = sigma_share * side
    kernel = min(2 * int(3 * sigma) + 1, 2 * side - 1)
    return gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def area(curve: Tensor, grid: list[float]) -> Tensor:
    """Area under (B, len(grid)) curves taken at the shares ``grid`` (trapezoids over the share axis)."""
    return torch.trapezoid(curve, x=torch.tensor(grid, device=curve.device, dtype=curve.dtype), dim=1)


def road_images(probe: Probe, ranks: Tensor, params: FaithfulnessParams) -> Tensor:
    """(B, 2, P, C, H, W): each image with its most (``[:, 0]``, MoRF) or least (``[:, 1]``, LeRF)
    relevant pixels by ``ranks`` (B, H*W), each of ``road_percentages`` of them (rounded), imputed."""
    count, channels, height, width = probe.inputs.shape
    pixels = height * width
    removed_counts = (torch.tensor(params.road_percentages, device=ranks.device) * pixels).round()[None, :, None]
    removed = torch.cat([ranks[:, None] < removed_counts, ranks[:, None] >= pixels - removed_counts], dim=1)
    images = probe.inputs.repeat_interleave(removed.shape[1], dim=0)
    filled = noisy_linear_imputation(images, removed.reshape(-1, height, width), params.road_noise, probe.generator())
    return filled.reshape(count, 2, -1, channels, height, width)


def road_curves(probe: Probe, ranks: Tensor, params: FaithfulnessParams) -> dict[str, Tensor]:
    """MoRF and LeRF probabilities (B, P) of :func:`road_images`."""
    images = road_images(probe, ranks, params)
    targets = probe.targets.repeat_interleave(images[0, :, :, 0, 0, 0].numel())
    probabilities = class_probability(probe.model, images.flatten(0, 2), targets, params.batch_size)
    probabilities = probabilities.reshape(images.shape[:3])
    return {"morf": probabilities[:, 0], "lerf": probabilities[:, 1]}


def patch_means(maps: Tensor, share: float) -> Tensor:
    """(B, H, W) maps with every pixel given the mean of its square tile, of side ``share`` times the
    shorter image side (rounded; tiles from the top left, the last row and column of tiles may be
    smaller), so that pixels go tile by tile; unchanged where the side rounds to 1 pixel."""
    height, width = maps.shape[-2:]
    patch = round(share * min(height, width))
    if patch <= 1:
        return maps
    means = F.avg_pool2d(maps[:, None], patch, ceil_mode=True)[:, 0]
    return means.repeat_interleave(patch, dim=1).repeat_interleave(patch, dim=2)[:, :height, :width]


def per_image(probe: Probe, maps: Tensor, params: FaithfulnessParams, part: str | None = None) -> dict[str, Tensor]:
    """Per image (B,): ``deletion_auc``, ``insertion_auc`` and ``road``, and the curves they come from; a
    ``part`` of :data:`PARTS` gives only its own. Deletion and insertion go tile by tile (``patch``), ROAD
    pixel by pixel as Rong et al. define it; each draws its tie order afresh, so a part alone gives what it
    gives in the whole."""
    if part is not None and part not in PARTS:
        raise ValueError(f"faithfulness part {part!r}; parts: {', '.join(PARTS)}")
    found: dict[str, Tensor] = {}
    if part in (None, "perturbation"):
        curves = perturbation_curves(probe, pixel_ranks(patch_means(maps, params.patch), probe.generator()), params)
        found |= {
            "deletion_auc": area(curves["deletion"], params.grid),
            "insertion_auc": area(curves["insertion"], params.grid),
            **curves,
        }
    if part in (None, "road"):
        curves = road_curves(probe, pixel_ranks(maps, probe.generator()), params)
        found |= {"road": curves["lerf"].mean(dim=1) - curves["morf"].mean(dim=1), **curves}
    return found


def random_baseline(probe: Probe, params: FaithfulnessParams, part: str | None = None) -> dict[str, Tensor]:
    """:func:`per_image` of uniform random maps, averaged over ``random_draws`` draws."""
    count, _, height, width = probe.inputs.shape
    draws = []
    for draw in range(1, params.random_draws + 1):
        noise = torch.rand((count, height, width), generator=probe.generator(draw), device=probe.inputs.device)
        draws.append(per_image(probe, noise, params, part))
    return {name: torch.stack([draw[name] for draw in draws]).mean(dim=0) for name in draws[0]}


BETTER = {"deletion_auc": "lower", "insertion_auc": "higher", "road": "higher"}
CURVES = ("deletion", "insertion", "morf", "lerf")
#: The family's independent parts (:attr:`~convlens.evaluation_registry.FamilySpec.parts`): deletion and
#: insertion, and ROAD.
PARTS = ("perturbation", "road")


def faithfulness(
    values: dict[str, Tensor], baselines: dict[str, dict[str, Tensor]], params: FaithfulnessParams
) -> dict[str, Any]:
    """The JSON record of one method-layer: each score tested against each of ``baselines`` (by name,
    random maps first, each :func:`per_image` on the same images), and the mean curves."""
    record: dict[str, Any] = scores({
        name: (values[name], {baseline: found[name] for baseline, found in baselines.items()}, better)
        for name, better in BETTER.items() if name in values
    })  # fmt: skip
    return record | {"curves": mean_curves(values, params)}


def mean_curves(values: dict[str, Tensor], params: FaithfulnessParams) -> dict[str, list[float | None]]:
    """The curves of :func:`per_image` averaged over the images, with the shares they are taken at."""
    means = {name: [rounded(float(v)) for v in values[name].mean(dim=0)] for name in CURVES if name in values}
    return {"shares": params.grid, "road_percentages": list(params.road_percentages), **means}
