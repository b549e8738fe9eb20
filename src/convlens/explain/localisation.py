"""How well a map points at the ground-truth evidence of synthetic images (their class-defining masks).

The "energy-based pointing game": the share of a non-negative map's mass inside the mask, next to
the mask's share of the image, which is what a uniform map would score; together they say how much
better than chance the map points.
"""

from __future__ import annotations

import numpy as np

from convlens.explain.method import Localising
from convlens.text import slug


def mask_scores(maps: np.ndarray, masks: np.ndarray) -> list[dict[str, float]]:
    """Per image, ``mask_energy`` of a non-negative (B, H, W) map and ``mask_area`` of its (B, H, W) mask."""
    energy = (maps * masks).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)
    return [
        {"mask_energy": round(float(e), 4), "mask_area": round(float(m.mean()), 4)}
        for e, m in zip(energy, masks, strict=True)
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
