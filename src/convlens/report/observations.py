"""Observations derived from the test numbers: accuracy with its 95% interval and against the majority-class
baseline (``scipy.stats.binomtest``: Wilson interval, one-sided test) and chance, the class-balanced numbers
where the test set is imbalanced (with the classes that make the difference), classes predicted far more or
less often than they occur, a collapsed model, the best and worst classes (ties named), whether recall follows
how often each class was seen in training (with the classes out of line), and the most confused class pairs.

Ties are broken by label order, so the same numbers always give the same sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, pearsonr, permutation_test, rankdata

from convlens.report.format import p_value

#: A model that gives one class to at least this share of the test images has collapsed onto it.
COLLAPSE_SHARE = 0.9
#: Accuracy "beats" the majority-class baseline when a one-sided binomial test gives p below this.
SIGNIFICANCE = 0.05
#: Accuracy this many points above balanced accuracy is said to lean on the classes with most test images.
IMBALANCE_GAP = 0.05
#: A class predicted at least this many times as often as it occurs (or at most its inverse) is named.
PREDICTION_RATIO = 1.2
#: A training set whose largest class has fewer than this many times the smallest's images is called balanced.
IMBALANCE_RATIO = 1.5
#: Up to this many classes the frequency-recall permutation test is exact (8! pairings), beyond it seeded resamples.
EXACT_CLASSES = 8


@dataclass(frozen=True)
class ConfusedPair:
    """``count`` test images of class ``true`` predicted as ``predicted``; ``share`` of all images of ``true``."""

    true: str
    predicted: str
    count: int
    share: float


def ranked_classes(per_class_accuracy: Mapping[str, float]) -> list[tuple[str, float]]:
    """Classes by decreasing accuracy (label order among equals)."""
    return sorted(per_class_accuracy.items(), key=lambda item: -item[1])


def confused_pairs(confusion: np.ndarray, class_names: Sequence[str], k: int = 3) -> list[ConfusedPair]:
    """The ``k`` largest off-diagonal cells of the confusion matrix (rows: true, columns: predicted)."""
    totals = np.maximum(confusion.sum(axis=1), 1)
    cells = [
        (int(confusion[row, column]), row, column)
        for row in range(len(class_names))
        for column in range(len(class_names))
        if row != column and confusion[row, column] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [
        ConfusedPair(class_names[row], class_names[column], count, count / float(totals[row]))
        for count, row, column in cells[:k]
    ]


def most_confused_with(confusion: np.ndarray, class_names: Sequence[str], label: int) -> list[ConfusedPair]:
    """The classes that images of ``label`` are most often mistaken for (several when tied, in label
    order), none if they are never mistaken."""
    pairs = [pair for pair in confused_pairs(confusion, class_names, k=confusion.size)
             if pair.true == class_names[label]]  # fmt: skip
    return [pair for pair in pairs if pair.count == pairs[0].count] if pairs else []


def wilson(successes: int, total: int) -> tuple[float, float]:
    """The 95% Wilson interval of a proportion (``scipy.stats.binomtest``)."""
    interval = binomtest(int(successes), max(int(total), 1)).proportion_ci(0.95, "wilson")
    return float(interval.low), float(interval.high)


def accuracy_bounds(accuracy: float, images: int) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy recorded as a fraction of ``images`` (metrics.json's)."""
    return wilson(round(accuracy * images), images)


def accuracy_interval(confusion: np.ndarray) -> tuple[float, float]:
    """The 95% Wilson interval of the test accuracy, the diagonal's share of the confusion matrix."""
    return wilson(np.trace(confusion), confusion.sum())


def collapse(confusion: np.ndarray, class_names: Sequence[str]) -> tuple[str, float] | None:
    """The class a collapsed model predicts for nearly every test image, and that share; None if not collapsed."""
    predicted = confusion.sum(axis=0)
    share = predicted.max() / max(predicted.sum(), 1)
    return (class_names[int(predicted.argmax())], float(share)) if share >= COLLAPSE_SHARE else None


def observations(
    test_accuracy: float | None,
    per_class_accuracy: Mapping[str, float],
    confusion: np.ndarray | None,
    names: Sequence[str],
    balanced: Mapping[str, float | None] | None = None,
    train_counts: Sequence[int] | None = None,
) -> list[str]:
    """Sentences for the results section (the confusions are the Findings'); ``balanced`` holds the test's
    ``balanced_acc`` and ``macro_f1`` where the run recorded them, ``train_counts`` the training images per class."""
    ranking = ranked_classes(per_class_accuracy)
    if test_accuracy is None or not ranking:
        return []
    collapsed = collapse(confusion, names) if confusion is not None else None
    rates = _prediction_rates(confusion, names) if confusion is not None and collapsed is None else []
    if confusion is not None and collapsed is None:
        lines = [_against_majority(confusion, names), *_class_balanced(test_accuracy, balanced or {}, confusion, names)]
        lines += rates
    else:
        lines = [_against_chance(test_accuracy, len(names), collapsed)]
    if collapsed is None:
        lines += _extremes(ranking, _class_intervals(confusion, names) if confusion is not None else {})
    if collapsed is None and confusion is not None and train_counts is not None:
        lines += _frequency(confusion, names, train_counts)
    never = _unlisted_never_predicted(confusion, names, rates) if confusion is not None else []
    return lines + ([f"The model never predicts {', '.join(f'**{name}**' for name in never)} on the test set."]
                    if never else [])  # fmt: skip


def _against_chance(accuracy: float, classes: int, collapsed: tuple[str, float] | None) -> str:
    chance = 1 / classes
    if collapsed:
        name, share = collapsed
        return (
            f"**The model has collapsed onto one class:** it predicts **{name}** for {share:.1%} of the test images. "
            f"Its test accuracy of {accuracy:.1%} is about {name}'s share of the test set, not evidence that it "
            "tells the classes apart; the maps below explain a model that has learnt little."
        )
    return (
        f"Test accuracy {accuracy:.1%} is {accuracy / chance:.1f} times the chance level of {chance:.1%} "
        f"(uniform guessing among {classes} classes)."
    )


def _against_majority(confusion: np.ndarray, names: Sequence[str]) -> str:
    """Test accuracy against always answering the test set's most frequent class, tested (one-sided
    binomial test of the correct count against that class's share)."""
    counts, correct = confusion.sum(axis=1), int(np.trace(confusion))
    total, largest = int(counts.sum()), int(counts.argmax())
    low, high = accuracy_interval(confusion)
    share = counts[largest] / max(total, 1)
    p = binomtest(correct, total, share, alternative="greater").pvalue
    baseline = (f"the majority-class baseline of {share:.1%} (always answering **{names[largest]}**; uniform "
                f"guessing among {len(names)} classes: {1 / len(names):.1%})")  # fmt: skip
    if counts.min() == counts.max():
        baseline = (f"the majority-class baseline of {share:.1%} (the test classes are balanced: any constant answer "
                    f"scores it, as does uniform guessing among {len(names)} classes)")  # fmt: skip
    test = f"one-sided binomial test on {total:,} test images, p {p_value(p)}"
    accuracy = f"Test accuracy {correct / total:.1%} [95% interval {low:.1%}-{high:.1%}, n = {total:,}]"
    if p < SIGNIFICANCE:
        return f"{accuracy} beats {baseline}: {test}."
    return (f"{accuracy} is not shown to beat {baseline}: {test}, not below {SIGNIFICANCE}; the model may "
            "have learnt little beyond the class frequencies.")  # fmt: skip


def _class_balanced(
    accuracy: float, balanced: Mapping[str, float | None], confusion: np.ndarray, names: Sequence[str]
) -> list[str]:  # fmt: skip
    """Balanced accuracy (mean recall) and macro-F1, and, where accuracy is well above it, the classes that
    make the difference: class c adds (its share of the test images - 1/classes) x its recall to accuracy
    minus balanced accuracy, so the terms sum to the gap exactly."""
    recall, f1 = balanced.get("balanced_acc"), balanced.get("macro_f1")
    if recall is None or f1 is None:
        return []
    line = (f"Weighing every class alike: balanced accuracy (mean recall over the {len(names)} classes) {recall:.1%}, "
            f"macro-F1 {f1:.3f}.")  # fmt: skip
    if accuracy - recall >= IMBALANCE_GAP:
        gap, least = 100 * (accuracy - recall), 100 * IMBALANCE_GAP
        line += (f" Accuracy is {gap:.1f} percentage points above balanced accuracy (at least {least:.0f}): it counts "
                 "each class by its test images, balanced accuracy each class once; "
                 f"{_gap_makers(confusion, names)}.")  # fmt: skip
    return [line]


def class_recall(confusion: np.ndarray) -> np.ndarray:
    """Each class's recall (right answers over its images; 0 for a class without any), in label order."""
    return np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)


def _gap_makers(confusion: np.ndarray, names: Sequence[str]) -> str:
    """The classes, largest term first, whose terms of the accuracy gap (see :func:`_class_balanced`) make
    up at least half of it, each with its share of the test images, its recall and its term."""
    counts = confusion.sum(axis=1)
    shares, recalls = counts / max(counts.sum(), 1), class_recall(confusion)
    terms = (shares - 1 / len(names)) * recalls
    named: list[int] = []
    for label in np.argsort(-terms, kind="stable"):
        if terms[named].sum() >= terms.sum() / 2 or terms[label] <= 0:
            break
        named.append(int(label))
    described = ", ".join(f"**{names[label]}** ({shares[label]:.1%} of the test images, {recalls[label]:.1%} correct: "
                          f"+{100 * terms[label]:.1f} points)" for label in named)  # fmt: skip
    return f"the {'class' if len(named) == 1 else 'classes'} adding most to the difference: {described}"


def _prediction_rates(confusion: np.ndarray, names: Sequence[str]) -> list[str]:
    """The classes predicted at least :data:`PREDICTION_RATIO` times as often as they occur, and those
    predicted at most its inverse, a class never predicted included and called so (FER2013's Disgust, 0x, was
    left out while Fear's 0.19x was named; then a line of its own said it a third time, after this list and the
    worst class). A class never predicted always makes this line: the observations say it here only."""
    predicted, occurring = confusion.sum(axis=0), confusion.sum(axis=1)
    ratios = predicted / np.maximum(occurring, 1)
    more = [label for label in range(len(names)) if occurring[label] and ratios[label] >= PREDICTION_RATIO]
    fewer = [label for label in range(len(names)) if occurring[label] and ratios[label] <= 1 / PREDICTION_RATIO]
    if not more and not fewer:
        return []

    def listed(labels: list[int]) -> str:
        return ", ".join(f"**{names[label]}** ({_rate(predicted[label], occurring[label], ratios[label])})"
                         for label in labels)  # fmt: skip

    parts = [f"Predicted at least {PREDICTION_RATIO} times as often as {_they(more)}: {listed(more)}"] if more else []
    parts += [f"at most {1 / PREDICTION_RATIO:.2f} times as often as {_they(fewer)}: {listed(fewer)}"] if fewer else []
    sentence = "; ".join(parts)
    return [f"{sentence[0].upper()}{sentence[1:]}. The per-class table's precision column says how many of each "
            "class's predictions are right."]  # fmt: skip


def _rate(predicted: int, occurring: int, ratio: float) -> str:
    if not predicted:
        return f"never predicted; {occurring:,} test images"
    return f"{predicted:,} predictions, {occurring:,} test images: {ratio:.2f}x"


def _they(labels: list[int]) -> str:
    return "it occurs" if len(labels) == 1 else "they occur"


def tied_extremes(ranking: list[tuple[str, float]]) -> tuple[list[str], float, list[str], float]:
    """The classes tied at the best accuracy, that accuracy, the classes tied at the worst, and that one."""
    best, worst = ranking[0][1], ranking[-1][1]
    top = [name for name, accuracy in ranking if accuracy == best]
    bottom = [name for name, accuracy in ranking if accuracy == worst]
    return top, best, bottom, worst


def _class_intervals(confusion: np.ndarray, names: Sequence[str]) -> dict[str, tuple[float, float, int]]:
    """Per class its recall's 95% Wilson interval and its test images (classes with test images only)."""
    found = {}
    for label, name in enumerate(names):
        total = int(confusion[label].sum())
        if total:
            found[name] = (*wilson(confusion[label, label], total), total)
    return found


def _extremes(ranking: list[tuple[str, float]], intervals: Mapping[str, tuple[float, float, int]]) -> list[str]:
    """Best and worst recognized classes, naming every class tied at the top or the bottom, each single one
    with its 95% interval, and whether every worst class's interval overlaps every best class's (a spread within
    the test set's noise; said for ties too: the shapes demo's cross and ring at 99/100 against eight classes at
    100/100 went without it)."""
    top, best, bottom, worst = tied_extremes(ranking)
    if best == worst:
        return [f"Every class is recognized equally well ({best:.1%} of its test images correct)."]
    known = all(name in intervals for name in (*top, *bottom))
    overlaps = known and min(intervals[name][1] for name in bottom) >= max(intervals[name][0] for name in top)
    overlap = "; their 95% intervals overlap, so the spread is within the test set's noise" if overlaps else ""
    return [
        f"Best recognized {_classes(top)} ({best:.1%} of {'its' if len(top) == 1 else 'their'} test images correct"
        f"{', a tie' if len(top) > 1 else _interval(intervals.get(top[0]))}).",
        f"Worst recognized {_classes(bottom)} ({worst:.1%} correct{', a tie' if len(bottom) > 1 else ''}"
        f"{_interval(intervals.get(bottom[0])) if len(bottom) == 1 else ''}); the spread between best and worst is "
        f"{100 * (best - worst):.1f} percentage points{overlap}.",
    ]


def _frequency(confusion: np.ndarray, names: Sequence[str], train_counts: Sequence[int]) -> list[str]:
    """Whether the classes seen most in training are the ones recognised best (the FER assignment asks why some
    expressions are recognised better than others; FER2013's Fear, 14% of the training images, got 3% recall), said
    only where some class's recall is above another's beyond the test set's noise (their 95% intervals apart): on a
    balanced training set frequency cannot be the reason; else the Spearman correlation of the classes' training
    shares and recalls, with a one-sided permutation test, and the classes out of line with their share; then the same
    test of the classes' shares of the predictions (FER2013: Disgust never predicted, Happy the most), which says
    whether the model's answers lean to the classes it saw most."""
    intervals = _class_intervals(confusion, names)
    if not intervals or max(low for low, _, _ in intervals.values()) <= min(high for _, high, _ in intervals.values()):
        return []
    labels = [label for label, name in enumerate(names) if name in intervals]
    shares = np.asarray(train_counts, dtype=float)[labels] / sum(train_counts)
    recalls = class_recall(confusion)[labels]
    if shares.max() < IMBALANCE_RATIO * shares.min():
        return [f"The training classes are about equally represented ({shares.min():.1%}-{shares.max():.1%} of the "
                f"training images each, the largest under {IMBALANCE_RATIO}x the smallest): the differences in recall "
                "do not come from how often each class was seen in training."]  # fmt: skip
    if len(labels) < 3:
        return []
    rises, measured = _rank_test(shares, recalls)
    if rises:
        line = (f"Recall rises with a class's share of the training images ({measured}): the classes seen most are "
                "recognised best.")  # fmt: skip
    else:
        line = (f"Recall is not shown to rise with a class's share of the training images ({measured}; over "
                f"{len(labels)} classes only a strong trend can be shown).")  # fmt: skip
    line += _out_of_line([names[label] for label in labels], shares, recalls)
    follows, measured = _rank_test(shares, confusion[:, labels].sum(axis=0) / confusion.sum())
    between = "between a class's share of the training images and its share of the test predictions"
    answers = (f"The model's answers follow the training shares ({measured}, {between}): it answers most often what "
               "it saw most often." if follows else
               f"The model's answers are not shown to follow the training shares ({measured}, {between}).")  # fmt: skip
    return [line, answers]


def _rank_test(shares: np.ndarray, values: np.ndarray) -> tuple[bool, str]:
    """Whether ``values`` rise with ``shares`` over the classes (Spearman, one-sided permutation test, exact up to
    :data:`EXACT_CLASSES` classes), and the numbers as the sentence gives them. Spearman's ρ is Pearson's r of the
    ranks, so the test permutes the ranks of one side (both would repeat every pairing n! times) and takes scipy's
    ``pearsonr``, which is vectorised over the permutations where ``spearmanr`` is not."""
    ranks = rankdata(values)

    def spearman(permuted: np.ndarray, axis: int) -> np.ndarray:
        return pearsonr(permuted, np.broadcast_to(ranks, permuted.shape), axis=axis).statistic

    test = permutation_test((rankdata(shares),), spearman, permutation_type="pairings", vectorized=True,
                            alternative="greater", n_resamples=np.inf if len(shares) <= EXACT_CLASSES else 9999,
                            random_state=0)  # fmt: skip
    kind = "exact" if len(shares) <= EXACT_CLASSES else "seeded, 9,999 resamples,"
    measured = (f"Spearman ρ {test.statistic:.2f} over {len(shares)} classes, {kind} one-sided permutation test, "
                f"p {p_value(test.pvalue)}, threshold {SIGNIFICANCE}")  # fmt: skip
    return bool(test.pvalue < SIGNIFICANCE), measured


def _out_of_line(names: Sequence[str], shares: np.ndarray, recalls: np.ndarray) -> str:
    """The classes at or above the median training share with recall under the median recall, and those under the
    median share with recall above it: for them the number of training images does not account for the recall (a
    description, not a cause)."""
    share, recall = float(np.median(shares)), float(np.median(recalls))
    common = [index for index in range(len(names)) if shares[index] >= share and recalls[index] < recall]
    rare = [index for index in range(len(names)) if shares[index] < share and recalls[index] > recall]
    if not common and not rare:
        return ""
    named = [f"**{names[index]}** ({shares[index]:.1%} of the training images, {_against_median(shares[index], share)}"
             f", yet {recalls[index]:.1%} recall, under the median recall of {recall:.1%})"
             for index in common]  # fmt: skip
    named += [f"**{names[index]}** ({shares[index]:.1%} of the training images, under the median share, yet "
              f"{recalls[index]:.1%} recall, above the median recall of {recall:.1%})" for index in rare]  # fmt: skip
    return (f" Out of line with their share: {', '.join(named)}: for {'it' if len(named) == 1 else 'them'} the "
            f"number of training images does not account for the recall (a description of {len(names)} classes, not a "
            "cause); the per-class table and the Findings' confusions say where their images go.")  # fmt: skip


def _against_median(value: float, median: float) -> str:
    """``the median share`` for the median class itself (FER2013's Fear: "at least the median class's 14.3%" read
    oddly for 14.3%), else ``above the median share of 14.3%``."""
    return "the median share" if value == median else f"above the median share of {median:.1%}"


def _interval(found: tuple[float, float, int] | None) -> str:
    return "" if found is None else f", 95% interval {found[0]:.1%}-{found[1]:.1%} of {found[2]:,}"


def _classes(names: list[str]) -> str:
    return f"class: **{names[0]}**" if len(names) == 1 else "classes: " + ", ".join(f"**{name}**" for name in names)


def _unlisted_never_predicted(confusion: np.ndarray, names: Sequence[str], rates: list[str]) -> list[str]:
    """The classes never predicted that the prediction-rate line (``rates``) does not already call so: all of them
    without that line, else those without test images."""
    occurring = dict(zip(names, confusion.sum(axis=1), strict=True))
    return [name for name in never_predicted(confusion, names) if not rates or not occurring[name]]


def never_predicted(confusion: np.ndarray, names: Sequence[str]) -> list[str]:
    """The classes no test image is predicted as (none when every class is: an empty matrix says nothing)."""
    missing = [name for name, count in zip(names, confusion.sum(axis=0), strict=True) if count == 0]
    return [] if len(missing) == len(names) else missing
