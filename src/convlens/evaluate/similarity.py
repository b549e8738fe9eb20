"""How alike two batches of maps are: Spearman rank correlation and SSIM, batched on the device.

Both are written here to run on whole batches of maps on the device; they reproduce
``scipy.stats.spearmanr`` (average ranks for ties) and ``skimage.metrics.structural_similarity``
(7x7 uniform window, sample covariance, the border where the window does not fit left out), which
``tests/test_evaluate_randomization.py`` checks. SSIM compares each map scaled by its maximum (so
both lie in [0, 1], data range 1), as Adebayo et al. compare normalised maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: SSIM's constants (Wang et al. 2004, skimage's defaults) and window side.
SSIM_K1, SSIM_K2, SSIM_WINDOW = 0.01, 0.03, 7


def average_ranks(values: Tensor) -> Tensor:
    """(B, N) -> ranks 1..N along each row (float64), tied values sharing their average rank."""
    ordered, order = values.sort(dim=1, stable=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.cumsum(dim=1) - 1
    positions = torch.arange(values.shape[1], device=values.device, dtype=torch.float64).expand_as(group)
    first = torch.full_like(positions, float(values.shape[1])).scatter_reduce(1, group, positions, "amin")
    last = torch.zeros_like(positions).scatter_reduce(1, group, positions, "amax")
    shared = ((first + last) / 2 + 1).gather(1, group)
    return torch.empty_like(shared).scatter_(1, order, shared)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rank correlation (B,) of maps ``a`` and ``b`` (B, ...); NaN where a map is constant."""
    ranks_a, ranks_b = average_ranks(a.flatten(1)), average_ranks(b.flatten(1))
    ranks_a = ranks_a - ranks_a.mean(dim=1, keepdim=True)
    ranks_b = ranks_b - ranks_b.mean(dim=1, keepdim=True)
    norm = (ranks_a.square().sum(dim=1) * ranks_b.square().sum(dim=1)).sqrt()
    correlation = (ranks_a * ranks_b).sum(dim=1) / norm
    return torch.where(norm > 0, correlation, torch.full_like(correlation, torch.nan)).float()


def unit_max(maps: Tensor) -> Tensor:
    """Non-negative (B, H, W) maps divided by their maximum (a zero map stays zero)."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(torch.finfo(maps.dtype).tiny)
    return maps / peak[:, None, None]


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean structural similarity (B,) of (B, H, W) maps ``a`` and ``b`` (as skimage computes it)."""
    x, y = a[:, None].double(), b[:, None].double()

    def local_mean(values: Tensor) -> Tensor:
        return F.avg_pool2d(values, SSIM_WINDOW, stride=1)

    mean_x, mean_y = local_mean(x), local_mean(y)
    samples = SSIM_WINDOW**2
    unbiased = samples / (samples - 1)
    var_x = unbiased * (local_mean(x * x) - mean_x * mean_x)
    var_y = unbiased * (local_mean(y * y) - mean_y * mean_y)
    cov = unbiased * (local_mean(x * y) - mean_x * mean_y)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=(1, 2, 3)).float()


def similarities(reference: Tensor, maps: Tensor) -> dict[str, Tensor]:
    """Spearman and SSIM (B,) of ``maps`` to ``reference`` (both (B, H, W), non-negative); NaN where
    either map is flat (SSIM would call two flat maps identical, but they show nothing to compare)."""
    flat = is_flat(reference) | is_flat(maps)
    structural = torch.where(flat, torch.nan, ssim(unit_max(reference), unit_max(maps)))
    return {"spearman": spearman(reference, maps), "ssim": structural}


def is_flat(maps: Tensor) -> Tensor:
    """Per map (B,): whether it is constant (no location at all, e.g. a CAM of a 1x1 layer)."""
    values = maps.flatten(1)
    return values.amax(dim=1) == values.amin(dim=1)


#: How much more alike across images than its reference (in Spearman) the whole 95% interval of the paired
#: difference must put a method's maps before they count as repeating a pattern of their own: with 64
#: images a difference of 0.05 is already significant, and too small to see in a figure.
ALIKE_MARGIN = 0.1


def alike_across_images(maps: Tensor) -> Tensor:
    """Per map (B,): Spearman's correlation of the map, divided by its maximum, with the mean of the other
    images' maps so divided (NaN with fewer than two maps). High values mean the method draws about the
    same pattern whatever the image (a layer's fixed grid or centre): read against the objects' masks,
    which are alike across images as far as the data puts its objects in the same place."""
    if len(maps) < 2:
        return torch.full((len(maps),), torch.nan, device=maps.device)
    scaled = unit_max(maps.float().clamp_min(0))
    others = (scaled.sum(dim=0, keepdim=True) - scaled) / (len(maps) - 1)
    return spearman(scaled, others)
