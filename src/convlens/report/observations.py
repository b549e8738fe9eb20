"""Observations derived from the test numbers: class ranking and the most confused class pairs.

Ties are broken by label order, so the same numbers always give the same sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


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


def most_confused_with(confusion: np.ndarray, class_names: Sequence[str], label: int) -> ConfusedPair | None:
    """The class that images of ``label`` are most often mistaken for, if they are ever mistaken."""
    pairs = confused_pairs(confusion, class_names, k=confusion.size)
    return next((pair for pair in pairs if pair.true == class_names[label]), None)


def observations(
    test_accuracy: float | None,
    per_class_accuracy: Mapping[str, float],
    confusion: np.ndarray | None,
    names: Sequence[str],
) -> list[str]:
    """Sentences for the results section: accuracy against chance, best and worst classes, the three
    most confused pairs."""
    ranking = ranked_classes(per_class_accuracy)
    if test_accuracy is None or not ranking:
        return []
    (best, best_acc), (worst, worst_acc) = ranking[0], ranking[-1]
    chance = 1 / len(names)
    lines = [
        f"Test accuracy {test_accuracy:.1%} is {test_accuracy / chance:.1f} times the chance level of "
        f"{chance:.1%} (uniform guessing among {len(names)} classes).",
        f"Best recognized class: **{best}** ({best_acc:.1%} of its test images correct).",
        f"Worst recognized class: **{worst}** ({worst_acc:.1%} correct); "
        f"the spread between best and worst is {best_acc - worst_acc:.1%}.",
    ]
    pairs = confused_pairs(confusion, names) if confusion is not None else []
    lines += [
        f"Confusion {rank}: **{pair.true}** taken for **{pair.predicted}** in {pair.count} test images "
        f"({pair.share:.1%} of {pair.true})."
        for rank, pair in enumerate(pairs, start=1)
    ]
    if confusion is not None and not pairs:
        lines.append("No test image is misclassified.")
    return lines
