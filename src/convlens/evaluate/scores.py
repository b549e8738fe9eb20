"""How a metric's per-image values become a score next to its baseline, with a verdict.

Every metric gives one value per image for a method's maps and one for random maps on the same
images (the baseline); the difference is tested as a paired mean: the method is ``above`` (better
than) or ``below`` (worse than) its baseline when the mean difference in the metric's better
direction is more than ``MARGIN`` standard errors away from zero, ``level`` with it otherwise. With
the few images of a demo this says "distinguishable from random on these images", nothing more.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

#: Standard errors the paired mean difference must exceed to call a method above or below its baseline.
MARGIN = 2.0
Better = Literal["higher", "lower"]


def mean_and_se(values: Tensor) -> tuple[float, float]:
    """Mean and standard error of the finite values (NaN marks an image a metric does not apply to)."""
    finite = values[torch.isfinite(values)].double()
    if len(finite) == 0:
        return math.nan, math.nan
    se = float(finite.std(unbiased=True) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
    return float(finite.mean()), se


def mean_of(values: Tensor) -> float | None:
    """The rounded mean of the finite values (None when there are none), as the JSON records it."""
    return rounded(mean_and_se(values)[0])


def verdict(values: Tensor, baseline: Tensor, better: Better) -> str:
    """``above``, ``below`` or ``level``: the paired comparison of ``values`` with ``baseline`` (both (B,))."""
    sign = 1.0 if better == "higher" else -1.0
    difference, se = mean_and_se(sign * (values - baseline))
    threshold = MARGIN * (0.0 if math.isnan(se) else se)
    if difference > threshold:
        return "above"
    if difference < -threshold:
        return "below"
    return "level"


def score(values: Tensor, baseline: Tensor, better: Better, **extra: Tensor) -> dict[str, Any]:
    """The JSON record of one metric: mean and standard error of the method's values and of the
    baseline's, which direction is better, the verdict, the images counted, and ``extra`` per-image
    references (e.g. ``chance``, the mask area) as means."""
    value, se = mean_and_se(values)
    base, base_se = mean_and_se(baseline)
    record = {
        "value": rounded(value),
        "se": rounded(se),
        "baseline": rounded(base),
        "baseline_se": rounded(base_se),
        "better": better,
        "verdict": verdict(values, baseline, better),
        "images": int(torch.isfinite(values).sum()),
    }
    return record | {name: mean_of(reference) for name, reference in extra.items()}


def rounded(value: float, digits: int = 4) -> float | None:
    """``value`` to ``digits`` decimals; None for NaN and infinity (JSON has neither)."""
    return round(value, digits) if math.isfinite(value) else None
