"""The paired tests behind every mark of the trust table (convlens.evaluate.statistics)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from convlens.evaluate.statistics import BATCH, MIN_IMAGES, RESAMPLES, adjust, mark, paired_test, paired_tests


def test_fewer_than_eight_images_are_never_marked() -> None:
    test = paired_test(np.ones(MIN_IMAGES - 1), np.zeros(MIN_IMAGES - 1), "higher")
    assert test.n == MIN_IMAGES - 1 and not test.tested and test.difference == 1.0
    assert mark(test, None) == "too few images"


def test_p_value_is_the_exact_two_sided_sign_flip_test() -> None:
    """On 8 images scipy enumerates all 256 sign patterns: the p-value equals a brute-force count."""
    differences = np.array([0.9, 0.4, -0.2, 1.3, 0.7, -0.1, 0.5, 0.8])
    observed = abs(differences.mean())
    flips = [abs((differences * signs).mean()) for signs in itertools.product((1, -1), repeat=8)]
    expected = np.mean([flip >= observed - 1e-12 for flip in flips])
    assert paired_test(differences, np.zeros(8), "higher").p == pytest.approx(expected)


def test_direction_interval_and_effect() -> None:
    rng = np.random.default_rng(0)
    baseline = rng.normal(0.5, 0.1, 64)
    better = baseline + rng.normal(0.2, 0.1, 64)
    higher = paired_test(better, baseline, "higher")
    assert higher.low < higher.difference < higher.high and 0.15 < higher.difference < 0.25
    assert higher.low > 0 and higher.effect > 1 and higher.p < 0.001
    assert mark(higher, higher.p) == "above"
    lower = paired_test(better, baseline, "lower")  # e.g. deletion AUC: higher values are worse
    assert lower.difference == pytest.approx(-higher.difference) and mark(lower, lower.p) == "below"


def test_identical_scores_are_level_not_marked() -> None:
    values = np.linspace(0, 1, 16)
    test = paired_test(values, values.copy(), "higher")
    assert test.p == 1.0 and test.low == test.high == 0.0 and mark(test, test.p) == "level"


def test_images_a_metric_does_not_apply_to_are_left_out() -> None:
    values = np.r_[np.full(10, 0.8), np.nan, np.nan]
    assert paired_test(values, np.full(12, 0.5), "higher").n == 10


def test_false_marks_under_the_null_stay_near_the_nominal_rate() -> None:
    """No true difference: about 5% of raw tests reject, and BH over the table marks almost none."""
    rng = np.random.default_rng(1)
    tests = [paired_test(rng.normal(size=16), rng.normal(size=16), "higher", seed=i) for i in range(300)]
    raw = np.mean([test.p < 0.05 for test in tests])
    assert 0.02 <= raw <= 0.09
    marks = [mark(test, p) for test, p in zip(tests, adjust([test.p for test in tests]), strict=True)]
    assert marks.count("level") >= 297


def test_adjustment_is_benjamini_hochberg_over_the_tested_cells() -> None:
    p_values = [0.01, None, 0.04, 0.03, 0.2]
    adjusted = adjust(p_values)
    assert adjusted[1] is None
    expected = stats.false_discovery_control([0.01, 0.04, 0.03, 0.2], method="bh")
    assert [adjusted[i] for i in (0, 2, 3, 4)] == pytest.approx(list(expected))


def test_batched_tests_give_each_test_its_own_scipy_p_value() -> None:
    """Tests batched along scipy's axis (several chunks of one size, sizes mixed, NaN pairs left out,
    a row of zero differences) get exactly the p-value of a scipy call on that test alone."""
    rng = np.random.default_rng(2)
    pairs = [(rng.normal(size=n) + 0.3 * rng.normal(), rng.normal(size=n), "higher") for n in [16] * (2 * BATCH + 3)]
    pairs += [(rng.normal(size=64), rng.normal(size=64), "lower"), (np.r_[np.nan, np.ones(9)], np.zeros(10), "higher")]
    pairs += [(np.ones(12), np.ones(12), "higher"), (np.ones(5), np.zeros(5), "higher")]
    for (values, baseline, better), test in zip(pairs, paired_tests(pairs), strict=True):
        kept = np.isfinite(values)
        differences = (1 if better == "higher" else -1) * (values[kept] - baseline[kept])
        assert test.n == len(differences) and test.difference == pytest.approx(differences.mean())
        if len(differences) < MIN_IMAGES:
            assert test.p is None
        elif not differences.any():
            assert test.p == 1.0
        else:
            alone = stats.permutation_test((differences,), np.mean, permutation_type="samples", vectorized=True,
                                           n_resamples=RESAMPLES, rng=np.random.default_rng(0))  # fmt: skip
            assert test.p == alone.pvalue
