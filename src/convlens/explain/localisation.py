"""How well a map points at the ground-truth evidence of synthetic images (their class-defining masks).

The "energy-based pointing game" (relevance mass): the share of a non-negative map's mass inside the
mask, next to the mask's share of the image, which is what a uniform map would score; together they
say how much better than chance the map points. The evaluate stage scores the same
:func:`relevance_mass` against random maps (:mod:`convlens.evaluate.localisation`), on masks brought
to the input size by the same :func:`resize_masks`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from convlens.explain.method import Localising
from convlens.text import slug


def resize_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Ground-truth masks (N, h, w) at the model's input ``size`` (nearest neighbour), as bool."""
    return F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5


def mask_area(masks: Tensor) -> Tensor:
    """Per image (B,): the mask's share of the image, the chance level of relevance mass."""
    return masks.flatten(1).float().mean(dim=1)


def relevance_mass(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image (B,): the share of a non-negative map's (B, H, W) total inside its (B, H, W) bool mask.
    A zero map says as little as a flat one, so it scores what a flat map does: the mask area."""
    flat, inside = maps.flatten(1), masks.flatten(1)
    total = flat.sum(dim=1)
    within = (flat * inside).sum(dim=1)
    return torch.where(total > 0, within / total.clamp_min(torch.finfo(maps.dtype).tiny), mask_area(masks))


def mask_scores(maps: np.ndarray, masks: np.ndarray) -> list[dict[str, float]]:
    """Per image, ``mask_energy`` (:func:`relevance_mass`) of a non-negative (B, H, W) map and ``mask_area``
    of its (B, H, W) mask (bool, or 0/1)."""
    inside = torch.from_numpy(np.asarray(masks, dtype=bool))
    energy = relevance_mass(torch.from_numpy(np.asarray(maps, dtype=np.float64)), inside)
    return [
        {"mask_energy": round(float(e), 4), "mask_area": round(float(a), 4)}
        for e, a in zip(energy, mask_area(inside), strict=True)
    ]


def localisation_scores(result: object, masks: np.ndarray) -> list[dict[str, float]]:
    """Per image of ``result`` (a :class:`~convlens.explain.method.Localising` result), the mask
    scores of each of its maps: ``mask_energy`` for a single map, ``mask_energy_<layer>`` per layer;
    empty dicts for results without maps."""
    if not isinstance(result, Localising):
        return [{} for _ in masks]
    scores: list[dict[str, float]] = [{} for _ in masks]
    for layer, maps in result.localisation_maps().items():
        key = "mask_energy" if layer is None else f"mask_energy_{slug(layer)}"
        for row, score in enumerate(mask_scores(maps, masks)):
            scores[row] |= {key: score["mask_energy"], "mask_area": score["mask_area"]}
    return scores
