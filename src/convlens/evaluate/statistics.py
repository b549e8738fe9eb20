"""Whether a map's per-image scores differ from a baseline's on the same images, as a statistician
would test it: the paired differences, a 95% bootstrap interval of their mean, a two-sided permutation
p-value, an effect size, and a Benjamini-Hochberg adjustment over every test of a table.

Every metric gives one value per image for a method's maps and one for a baseline (random maps, an
edge detector, a centred blob) on the same images; the differences are taken in the metric's better
direction, so a positive mean favours the method. All three statistics come from ``scipy.stats``:
``bootstrap`` (BCa; percentile where BCa is undefined), ``permutation_test`` on the differences alone
(sign flips, exact when ``2**n`` is within the resample budget) and ``false_discovery_control``.
Fewer than :data:`MIN_IMAGES` images is "too few images": no test, never a mark.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

#: Below this many images a difference is not tested (an exact sign-flip test on 7 images cannot go below p = 1/64).
MIN_IMAGES = 8
#: The false discovery rate the marks of a table are held to (Benjamini-Hochberg).
FDR = 0.05
CONFIDENCE = 0.95
#: Resamples for the bootstrap and the permutation test (the permutation test is exact below 2**n = this).
RESAMPLES = 4999

Better = Literal["higher", "lower"]
Mark = Literal["above", "below", "level", "too few images"]


@dataclass(frozen=True)
class PairedTest:
    """One comparison: ``n`` images, the mean paired difference in the better direction with its 95%
    interval (``low``, ``high``), the effect size (mean over standard deviation of the differences,
    Cohen's d_z; None when they do not vary: no spread to scale by, the difference is the same on every
    image) and the two-sided permutation p-value (None when not tested)."""

    n: int
    difference: float | None
    low: float | None
    high: float | None
    effect: float | None
    p: float | None

    @property
    def tested(self) -> bool:
        return self.p is not None


def paired_test(values: np.ndarray, baseline: np.ndarray, better: Better, seed: int = 0) -> PairedTest:
    """The paired comparison of ``values`` with ``baseline`` (both (B,), NaN where a metric does not
    apply to an image: such pairs are left out)."""
    values, baseline = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    kept = np.isfinite(values) & np.isfinite(baseline)
    differences = (1.0 if better == "higher" else -1.0) * (values[kept] - baseline[kept])
    n = len(differences)
    if n < MIN_IMAGES:
        mean = float(differences.mean()) if n else None
        return PairedTest(n, mean, None, None, None, None)
    low, high = _interval(differences, seed)
    spread = float(differences.std(ddof=1))
    effect = float(differences.mean()) / spread if spread > 0 else None
    return PairedTest(n, float(differences.mean()), low, high, effect, _p_value(differences, seed))


def _interval(differences: np.ndarray, seed: int) -> tuple[float, float]:
    """The 95% BCa bootstrap interval of the mean; percentile where BCa is undefined (few distinct values)."""
    if np.ptp(differences) == 0:
        return float(differences[0]), float(differences[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns (and returns NaN) on degenerate resamples
            found = stats.bootstrap(
                (differences,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                method=method, rng=np.random.default_rng(seed),
            ).confidence_interval  # fmt: skip
        if math.isfinite(found.low) and math.isfinite(found.high):
            break
    return float(found.low), float(found.high)


def _p_value(differences: np.ndarray, seed: int) -> float:
    """Two-sided sign-flip permutation p-value of the mean difference (no difference under the null)."""
    if not differences.any():
        return 1.0
    return float(
        stats.permutation_test(
            (differences,),
            np.mean,
            permutation_type="samples",
            n_resamples=RESAMPLES,
            alternative="two-sided",
            vectorized=True,
            rng=np.random.default_rng(seed),
        ).pvalue  # fmt: skip
    )


def adjust(p_values: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values over every tested comparison (None stays None)."""
    tested = [index for index, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if tested:
        found = stats.false_discovery_control([p_values[index] for index in tested], method="bh")
        for index, value in zip(tested, found, strict=True):
            adjusted[index] = float(value)
    return adjusted


def mark(test: PairedTest, adjusted_p: float | None) -> Mark:
    """``above``/``below`` the baseline when the adjusted p-value is under :data:`FDR` (the interval then
    lies on that side of 0 in all but rare cases), ``level`` otherwise; too few images is never a mark."""
    if not test.tested or adjusted_p is None:
        return "too few images"
    if adjusted_p >= FDR or test.difference == 0:
        return "level"
    return "above" if test.difference > 0 else "below"
