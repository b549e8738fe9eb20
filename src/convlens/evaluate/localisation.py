"""Localisation: how well a map points at the ground-truth evidence (the class-defining masks of the
synthetic data), batched over images on the maps' device.

Three metrics, defined as Quantus 0.6 defines them (``PointingGame``, ``RelevanceMassAccuracy``,
``RelevanceRankAccuracy``), with one deliberate difference (``docs/trust.md``): pixels tied at the
maximum (pointing game) or at the rank-accuracy cut-off count fractionally, with their expected
share over the orders of the ties, rather than all (Quantus's pointing game: a flat map always
hits) or in whatever order a sort leaves them; so a map without information, flat or zero,
scores the chance level. Written here because Quantus evaluates one image at a
time in numpy; ``tests/test_evaluate_quantus.py`` checks that the numbers agree.

The chance level of all three is the mask's share of the image (``mask_area``): what a map that knows nothing
(uniform, or a random ordering of the pixels) scores in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from convlens.evaluate.scores import scores
from convlens.explain.localisation import mask_area
from convlens.explain.localisation import relevance_mass as mass_inside

METRICS = ("pointing_game", "relevance_mass", "rank_accuracy")
#: The band along the image edge (share of the side) where :func:`peak_at_border` looks for a map's peak.
BORDER_SHARE = 1 / 16


@dataclass(frozen=True)
class LocalisationParams:
    """``random_draws`` random maps per image, drawn from ``seed`` and averaged per image, make the
    random baseline (localisation metrics are cheap, so many draws smooth it)."""

    random_draws: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.random_draws < 1:
            raise ValueError(f"random_draws={self.random_draws} must be >= 1")


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image (B,): whether the map's maximum lies inside the mask; pixels tied at the maximum share
    the hit (the expected hit under a random choice among them), so a flat map scores the mask area.
    NaN for an empty mask. ``maps`` (B, H, W) non-negative, ``masks`` (B, H, W) bool."""
    flat, inside = maps.flatten(1), masks.flatten(1)
    peak = flat == flat.amax(dim=1, keepdim=True)
    hit = (peak & inside).sum(dim=1) / peak.sum(dim=1)
    return _where_mask(hit, inside)


def relevance_mass(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image (B,): the share of the map's total inside the mask, as the visualize stage's
    ``mask_energy`` (:func:`convlens.explain.localisation.relevance_mass`: a zero map scores the mask
    area); NaN for an empty mask."""
    return _where_mask(mass_inside(maps, masks), masks.flatten(1))


def rank_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image (B,): of the k pixels ranked highest (k = mask size), the share inside the mask.
    Pixels tied with the k-th value count with the weight that fills the k places (their expected
    share under a random order of the ties); an empty mask gives NaN."""
    flat, inside = maps.flatten(1), masks.flatten(1)
    k = inside.sum(dim=1)
    ordered = flat.sort(dim=1, descending=True).values
    cut = ordered.gather(1, (k - 1).clamp_min(0)[:, None])
    above, tied = flat > cut, flat == cut
    places = (k - above.sum(dim=1)).to(maps.dtype)
    tied_weight = places / tied.sum(dim=1).to(maps.dtype)
    inside_count = (above & inside).sum(dim=1) + tied_weight * (tied & inside).sum(dim=1)
    return _where_mask(inside_count / k.clamp_min(1), inside)


def border_band(height: int, width: int, device: torch.device) -> Tensor:
    """(H, W) bool: the pixels within ``BORDER_SHARE`` of the shorter side (at least 1 px) of the edge."""
    pixels = max(1, round(BORDER_SHARE * min(height, width)))
    band = torch.ones(height, width, dtype=torch.bool, device=device)
    band[pixels:-pixels, pixels:-pixels] = False
    return band


def peak_at_border(maps: Tensor) -> Tensor:
    """Per image (B,): the share of the map's maximal pixels in the :func:`border_band` (NaN for a flat
    map): maps that peak at the image edge, away from any object, point at an artefact, not evidence."""
    band = border_band(*maps.shape[-2:], maps.device).expand_as(maps)
    flat = maps.flatten(1).amax(dim=1) == maps.flatten(1).amin(dim=1)
    return torch.where(flat, torch.nan, pointing_game(maps, band))


def _where_mask(values: Tensor, inside: Tensor) -> Tensor:
    values = values.float()
    return torch.where(inside.any(dim=1), values, torch.full_like(values, torch.nan))


def all_metrics(maps: Tensor, masks: Tensor) -> dict[str, Tensor]:
    """Every metric's per-image values (B,) for ``maps`` (B, H, W)."""
    return {"pointing_game": pointing_game(maps, masks), "relevance_mass": relevance_mass(maps, masks),
            "rank_accuracy": rank_accuracy(maps, masks)}  # fmt: skip


def random_baseline(masks: Tensor, draws: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Every metric's per-image values (B,) for uniform random maps, averaged over ``draws`` draws."""
    count, height, width = masks.shape
    noise = torch.rand((draws, count, height, width), generator=generator, device=masks.device)
    repeated = masks.expand(draws, -1, -1, -1).reshape(-1, height, width)
    values = all_metrics(noise.reshape(-1, height, width), repeated)
    return {name: metric.reshape(draws, count).mean(dim=0) for name, metric in values.items()}


def localisation(maps: Tensor, masks: Tensor, baselines: dict[str, dict[str, Tensor]]) -> dict[str, Any]:
    """The JSON record of one method-layer: each metric tested against each of ``baselines`` (by name,
    random maps first: per metric the per-image values (B,) on the same images), with the chance level."""
    cells = {name: (values, {baseline: found[name] for baseline, found in baselines.items()}, "higher")
             for name, values in all_metrics(maps, masks).items()}  # fmt: skip
    return scores(cells, chance=mask_area(masks))
