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
from collections.abc import Sequence
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
#: Permutation tests per scipy call: more share the fixed cost further, but scipy holds every resample
#: of every test of a call in memory (RESAMPLES x tests x 2n values).
BATCH = 16

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
    return paired_tests([(values, baseline, better)], seed)[0]


def paired_tests(pairs: Sequence[tuple[np.ndarray, np.ndarray, Better]], seed: int = 0) -> list[PairedTest]:
    """:func:`paired_test` of each ``(values, baseline, better)``, the same results in less time: the
    permutation tests on equally many images go through ``scipy.stats.permutation_test`` together along
    a batch axis, where the sign flips, drawn per observation from the same seed, are shared (a call's
    fixed cost, most of a single test's, is paid once per batch)."""
    differences = [_differences(*pair) for pair in pairs]
    tests: list[PairedTest | None] = [None] * len(pairs)
    for n in {len(found) for found in differences}:
        rows = [index for index, found in enumerate(differences) if len(found) == n]
        for chunk in (rows[start : start + BATCH] for start in range(0, len(rows), BATCH)):
            stacked = np.stack([differences[index] for index in chunk]).reshape(len(chunk), n)
            for index, test in zip(chunk, _tests(stacked, seed), strict=True):
                tests[index] = test
    return tests  # type: ignore[return-value]


def _differences(values: np.ndarray, baseline: np.ndarray, better: Better) -> np.ndarray:
    """The finite pairs' differences in the better direction."""
    values, baseline = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    kept = np.isfinite(values) & np.isfinite(baseline)
    return (1.0 if better == "higher" else -1.0) * (values[kept] - baseline[kept])


def _tests(differences: np.ndarray, seed: int) -> list[PairedTest]:
    """The tests of (T, n) differences, one row each."""
    count, n = differences.shape
    means = differences.mean(axis=1) if n else np.full(count, np.nan)
    if n < MIN_IMAGES:
        return [PairedTest(n, float(mean) if n else None, None, None, None, None) for mean in means]
    (lows, highs), p_values = _intervals(differences, seed), _p_values(differences, seed)
    spreads = differences.std(axis=1, ddof=1)
    return [
        PairedTest(n, float(mean), float(low), float(high), float(mean) / spread if spread > 0 else None, float(p))
        for mean, low, high, spread, p in zip(means, lows, highs, spreads, p_values, strict=True)
    ]


def _intervals(differences: np.ndarray, seed: int) -> tuple[list[float], list[float]]:
    """Per row, :func:`_interval`: one bootstrap per test, since batched BCa breaks the many ties of
    small samples' resampled means differently (intervals of 8 images moved by up to 0.003)."""
    found = [_interval(row, seed) for row in differences]
    return [low for low, _ in found], [high for _, high in found]


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


def _p_values(differences: np.ndarray, seed: int) -> np.ndarray:
    """Per row, the two-sided sign-flip permutation p-value of the mean difference (no difference under
    the null); 1 where every difference is 0."""
    p_values = np.ones(len(differences))
    tested = np.flatnonzero(differences.any(axis=1))
    if len(tested):
        p_values[tested] = stats.permutation_test(
            (differences[tested],),
            np.mean,
            permutation_type="samples",
            n_resamples=RESAMPLES,
            alternative="two-sided",
            vectorized=True,
            axis=-1,
            rng=np.random.default_rng(seed),
        ).pvalue
    return p_values


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
